//! Messages of a drawn size: built with mail-builder (a text body padded to the size,
//! optionally with a binary attachment), or the mbox message nearest in size.

use std::sync::Arc;

use bytes::Bytes;
use mail_builder::MessageBuilder;
use mail_builder::headers::raw::Raw;
use mail_builder::mime::MimePart;
use rand::{Rng as _, RngExt as _, SeedableRng as _};
use rand_xoshiro::Xoshiro256PlusPlus;

use super::{MailDate, Message, MessageSource};
use crate::profile::size::{SizeDistribution, SizeSource};

/// Words for the padding text (plain ASCII, so the body stays 7bit and grows 1:1).
const WORDS: [&str; 16] = [
    "capacity", "mailbox", "delivery", "message", "server", "profile", "planning", "report",
    "meeting", "weekly", "budget", "review", "draft", "update", "quarter", "notes",
];

/// Draws sizes and makes messages of them.
pub struct SizedMessages {
    size: SizeDistribution,
    /// Probability (0..=1) that a built message carries an attachment.
    attachments: f64,
    /// For [`SizeSource::Mbox`]: the source's messages sorted by size.
    by_size: Option<Vec<Message>>,
}

/// The smallest message built (headers and a line of text).
pub const MIN_BUILT: u64 = 512;

impl SizedMessages {
    /// `attachments_percent` is the share (0–100) of built messages with an attachment;
    /// `source` is read once, sorted by size, for [`SizeSource::Mbox`].
    pub fn new(
        size: SizeDistribution,
        attachments_percent: f64,
        how: SizeSource,
        source: &Arc<dyn MessageSource>,
    ) -> Self {
        let by_size = (how == SizeSource::Mbox).then(|| {
            let n = source.len_hint().unwrap_or(0).min(1_000_000);
            let mut rng = Xoshiro256PlusPlus::seed_from_u64(0);
            // A message the source cannot read is left out (its error shows where the
            // source is used on its own).
            let mut all: Vec<Message> = (0..n)
                .filter_map(|_| source.next_message(&mut rng).ok())
                .collect();
            all.sort_by_key(|m| m.data.len());
            all
        });
        SizedMessages {
            size,
            attachments: (attachments_percent / 100.0).clamp(0.0, 1.0),
            by_size,
        }
    }

    /// A size and whether to attach something.
    pub fn draw(&self, rng: &mut dyn rand::Rng) -> (u64, bool) {
        let size = self.size.sample(rng, MIN_BUILT);
        (
            size,
            self.attachments > 0.0 && rng.random_bool(self.attachments),
        )
    }

    /// A message of `size` bytes (CRLF line ends) built from `seed`; with the mbox
    /// source, the mbox message nearest in size.
    pub fn message_of(&self, size: u64, attach: bool, seed: u64) -> Message {
        let date = MailDate {
            unix: 1_767_225_600,
            offset_minutes: 0,
        };
        if let Some(sorted) = self.by_size.as_ref().filter(|s| !s.is_empty()) {
            let i = sorted.partition_point(|m| (m.data.len() as u64) < size);
            let pick = match (i.checked_sub(1), sorted.get(i)) {
                (Some(lo), Some(hi)) => {
                    if size - sorted[lo].data.len() as u64 <= hi.data.len() as u64 - size {
                        &sorted[lo]
                    } else {
                        hi
                    }
                }
                (Some(lo), None) => &sorted[lo],
                (None, Some(hi)) => hi,
                (None, None) => unreachable!("not empty"),
            };
            return pick.clone();
        }
        Message {
            data: Bytes::from(build(size, attach, seed)),
            date,
        }
    }
}

impl MessageSource for SizedMessages {
    fn next_message(&self, rng: &mut dyn rand::Rng) -> Result<Message, super::MboxError> {
        let (size, attach) = self.draw(rng);
        Ok(self.message_of(size, attach, rng.next_u64()))
    }

    fn len_hint(&self) -> Option<usize> {
        None
    }
}

/// A message of exactly `size` bytes when `size` ≥ [`MIN_BUILT`] (the first build
/// measures mail-builder's overhead, the second pads the text by the difference).
pub fn build(size: u64, attach: bool, seed: u64) -> Vec<u8> {
    let size = size.max(MIN_BUILT) as usize;
    // An attachment takes about 60 % of the message, base64 (4/3, plus line breaks).
    let attachment = if attach { (size * 6 / 10) * 57 / 78 } else { 0 };
    let mut attachment = attachment;
    let mut text_len = size.saturating_sub(attachment * 78 / 57 + 400).max(16);
    let mut message = compose(text_len, attachment, seed);
    for _ in 0..8 {
        let diff = size as i64 - message.len() as i64;
        if diff == 0 {
            break;
        }
        let next = text_len as i64 + diff;
        if next >= 16 {
            text_len = next as usize;
        } else {
            // Too small for this attachment: shrink it (base64 grows it by 78/57).
            let over = (16 - next) as usize;
            attachment = attachment.saturating_sub(over * 57 / 78 + 1);
            text_len = 16;
        }
        message = compose(text_len, attachment, seed);
    }
    message
}

fn compose(text_len: usize, attachment: usize, seed: u64) -> Vec<u8> {
    let mut rng = Xoshiro256PlusPlus::seed_from_u64(seed);
    let text = padding_text(text_len, &mut rng);
    let builder = MessageBuilder::new()
        .header("Date", Raw::new("Thu, 01 Jan 2026 00:00:00 +0000"))
        .from(("Load Test", "loadtest@example.org"))
        .to(("Recipient", "user@example.org"))
        .subject(format!("imaptest sized message {:016x}", seed))
        .message_id(format!("{seed:016x}@sized.imaptest"));
    let builder = if attachment > 0 {
        let mut data = vec![0u8; attachment];
        rng.fill_bytes(&mut data);
        builder.body(MimePart::new(
            "multipart/mixed",
            vec![
                MimePart::new("text/plain", text),
                MimePart::new("application/octet-stream", data).attachment("data.bin"),
            ],
        ))
    } else {
        builder.text_body(text)
    };
    builder.write_to_vec().unwrap_or_default()
}

/// ASCII words in lines of at most 72 characters, CRLF-terminated, exactly `len`
/// bytes long (`len` ≥ 2).
fn padding_text(len: usize, rng: &mut Xoshiro256PlusPlus) -> String {
    let mut out = String::with_capacity(len);
    let mut line = 0usize;
    while out.len() + 2 < len {
        let left = len - 2 - out.len();
        let word = WORDS[rng.random_range(0..WORDS.len())];
        if line > 0 && line + 1 + word.len() > 72 {
            if left < 3 {
                break;
            }
            out.push_str("\r\n");
            line = 0;
            continue;
        }
        let sep = usize::from(line > 0);
        if sep + word.len() > left {
            // Fill the rest of the size with a word fragment.
            let take = left.saturating_sub(sep);
            if take == 0 {
                break;
            }
            if sep == 1 {
                out.push(' ');
            }
            out.push_str(&"x".repeat(take));
            break;
        }
        if sep == 1 {
            out.push(' ');
        }
        out.push_str(word);
        line += sep + word.len();
    }
    while out.len() + 2 < len {
        out.push('x');
    }
    out.push_str("\r\n");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builds_exact_sizes() {
        for (size, attach) in [
            (512, false),
            (1000, false),
            (1500, true),
            (5000, true),
            (123_457, true),
            (20_001, false),
        ] {
            let m = build(size, attach, size);
            assert_eq!(m.len() as u64, size, "size {size} attach {attach}");
            assert!(
                m.windows(2)
                    .filter(|w| w[1] == b'\n')
                    .all(|w| w[0] == b'\r')
            );
            let parsed = mail_parser::MessageParser::default().parse(&m).unwrap();
            assert_eq!(parsed.attachment_count() > 0, attach, "size {size}");
        }
    }
}
