//! `random_msg_size=N`: messages of random bytes.

use bytes::Bytes;

use super::{MailDate, MboxError, Message, MessageSource};

/// Messages of 1..=`max_size` random bytes (NUL and 8-bit included) with no headers.
///
/// Line endings are always CRLF: a CR or LF byte at position `i` becomes CR at `i` and
/// LF at `i + 1` (overwriting that byte), except in the last position, where it becomes
/// a space. The size drawn is therefore exactly the size returned. The internal date is
/// the current time at `+0000`. For a given `rng` state the bytes are deterministic.
#[derive(Clone, Debug)]
pub struct RandomMessages {
    max_size: u64,
}

impl RandomMessages {
    /// A source of messages of at most `max_size` bytes; 0 is taken as 1.
    pub fn new(max_size: u64) -> Self {
        RandomMessages {
            max_size: max_size.max(1),
        }
    }

    /// The largest message size this source produces.
    pub fn max_size(&self) -> u64 {
        self.max_size
    }

    /// Only the message bytes, drawn from `rng`.
    pub fn random_body(&self, rng: &mut dyn rand::Rng) -> Vec<u8> {
        let size = usize::try_from(uniform_1_to(rng, self.max_size)).unwrap_or(usize::MAX);
        let mut body = vec![0u8; size];
        rng.fill_bytes(&mut body);
        let mut i = 0;
        while i < size {
            if body[i] == b'\r' || body[i] == b'\n' {
                if i + 1 == size {
                    body[i] = b' ';
                } else {
                    body[i] = b'\r';
                    body[i + 1] = b'\n';
                    i += 1;
                }
            }
            i += 1;
        }
        body
    }
}

/// Uniform in `1..=max` (`max >= 1`) by rejection, without modulo bias.
fn uniform_1_to(rng: &mut dyn rand::Rng, max: u64) -> u64 {
    if max <= 1 {
        return 1;
    }
    // Reject the top partial zone so every residue is equally likely.
    let zone = u64::MAX - (u64::MAX - max + 1) % max;
    loop {
        let v = rng.next_u64();
        if v <= zone {
            return v % max + 1;
        }
    }
}

impl MessageSource for RandomMessages {
    fn next_message(&self, rng: &mut dyn rand::Rng) -> Result<Message, MboxError> {
        Ok(Message {
            data: Bytes::from(self.random_body(rng)),
            date: MailDate::now_utc(),
        })
    }

    fn len_hint(&self) -> Option<usize> {
        None
    }
}
