//! Reading messages from an mbox file.
//!
//! The file is indexed once at open: every line is copied, with a CRLF ending, into one
//! buffer that holds the messages back to back (the From_ lines themselves are left out),
//! and each message is recorded as a range of that buffer plus the internal date taken
//! from its From_ line. Handing a message out is then a [`Bytes::slice`]: no copy and
//! no allocation.
//!
//! # Format accepted
//!
//! A message starts after a line that parses as an mbox From_ line
//! (`From sender Www Mmm dd hh:mm:ss yyyy`, see [`parse_from_line`]) and runs up to, not
//! including, the next such line; the blank line before it belongs to the message.
//! `>From ` lines are not unescaped. LF and CRLF files give the same result.

use std::ops::Range;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};

use bytes::Bytes;

use super::date::{MONTHS, unix_from_civil};
use super::{MailDate, Message, MessageSource};

/// Why an mbox file could not be used. Displayed as `path:line: what`.
#[derive(thiserror::Error, Debug)]
pub enum MboxError {
    /// The file could not be read.
    #[error("{}: cannot read mbox file: {source}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// What the OS said.
        #[source]
        source: std::io::Error,
    },
    /// The file has no bytes at all.
    #[error("{}: empty mbox file", path.display())]
    Empty {
        /// The file.
        path: PathBuf,
    },
    /// The first line is not a From_ line.
    #[error("{}:{line}: not a valid mbox file: expected a From_ line, found {text:?}", path.display())]
    NotMbox {
        /// The file.
        path: PathBuf,
        /// 1-based line number (always 1).
        line: usize,
        /// The start of the offending line, lossily decoded.
        text: String,
    },
    /// The last line of the file is a From_ line, so the last message would be empty.
    #[error("{}:{line}: mbox file ends with a From line", path.display())]
    EndsWithFromLine {
        /// The file.
        path: PathBuf,
        /// 1-based line number of that From_ line.
        line: usize,
    },
}

#[derive(Clone, Debug)]
struct Entry {
    range: Range<usize>,
    date: MailDate,
}

/// The messages of an mbox file, handed out in file order and wrapping around.
///
/// `Send + Sync`: share it in an `Arc`; the cursor is an atomic counter.
pub struct Mbox {
    path: PathBuf,
    data: Bytes,
    entries: Vec<Entry>,
    cursor: AtomicUsize,
    max_size: usize,
}

/// The longest prefix of a bad line quoted in [`MboxError::NotMbox`].
const QUOTE_MAX: usize = 80;

impl Mbox {
    /// Reads and indexes the mbox file at `path`.
    pub fn open(path: &Path) -> Result<Self, MboxError> {
        let data = std::fs::read(path).map_err(|source| MboxError::Io {
            path: path.to_path_buf(),
            source,
        })?;
        Self::index(path.to_path_buf(), &data)
    }

    /// Indexes an mbox held in memory; `name` stands for the path in errors.
    pub fn from_bytes(name: &str, data: &[u8]) -> Result<Self, MboxError> {
        Self::index(PathBuf::from(name), data)
    }

    fn index(path: PathBuf, data: &[u8]) -> Result<Self, MboxError> {
        if data.is_empty() {
            return Err(MboxError::Empty { path });
        }
        // Every line grows by at most one byte (LF -> CRLF), plus CRLF for a last line
        // without a newline.
        let newlines = memchr::memchr_iter(b'\n', data).count();
        let mut buf: Vec<u8> = Vec::with_capacity(data.len() + newlines + 2);
        let mut entries: Vec<Entry> = Vec::new();
        // The open message: where it starts in `buf`, its date, its From_ line number.
        let mut open: Option<(usize, MailDate, usize)> = None;
        let mut max_size = 0usize;

        let mut pos = 0usize;
        let mut line_no = 0usize;
        while pos < data.len() {
            line_no += 1;
            let (line, next) = match memchr::memchr(b'\n', &data[pos..]) {
                Some(i) => (&data[pos..pos + i], pos + i + 1),
                None => (&data[pos..], data.len()),
            };
            pos = next;
            let line = line.strip_suffix(b"\r").unwrap_or(line);

            if let Some(date) = parse_from_line(line) {
                if let Some((start, date, _)) = open.take() {
                    max_size = max_size.max(buf.len() - start);
                    entries.push(Entry {
                        range: start..buf.len(),
                        date,
                    });
                }
                open = Some((buf.len(), date, line_no));
                continue;
            }
            if open.is_none() {
                let shown = &line[..line.len().min(QUOTE_MAX)];
                return Err(MboxError::NotMbox {
                    path,
                    line: line_no,
                    text: String::from_utf8_lossy(shown).into_owned(),
                });
            }
            buf.extend_from_slice(line);
            buf.extend_from_slice(b"\r\n");
        }

        match open {
            Some((start, _, from_line)) if start == buf.len() => Err(MboxError::EndsWithFromLine {
                path,
                line: from_line,
            }),
            Some((start, date, _)) => {
                max_size = max_size.max(buf.len() - start);
                entries.push(Entry {
                    range: start..buf.len(),
                    date,
                });
                Ok(Mbox {
                    path,
                    data: Bytes::from(buf),
                    entries,
                    cursor: AtomicUsize::new(0),
                    max_size,
                })
            }
            // Unreachable: a non-empty file has a first line, which either opened a
            // message or returned NotMbox. Report it as NotMbox rather than panic.
            None => Err(MboxError::NotMbox {
                path,
                line: 1,
                text: String::new(),
            }),
        }
    }

    /// The number of messages; at least 1.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Always `false`: an mbox without messages fails to open.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Message `i % len()` (0-based, in file order).
    pub fn get(&self, i: usize) -> Message {
        let entry = &self.entries[i % self.entries.len()];
        Message {
            data: self.data.slice(entry.range.clone()),
            date: entry.date,
        }
    }

    /// The path (or name given to [`Mbox::from_bytes`]).
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The total size of all messages, CRLF line endings counted.
    pub fn total_size(&self) -> u64 {
        self.data.len() as u64
    }

    /// The size of the largest message, CRLF line endings counted.
    pub fn max_message_size(&self) -> usize {
        self.max_size
    }

    /// The messages in file order.
    pub fn iter(&self) -> impl ExactSizeIterator<Item = Message> + '_ {
        self.entries.iter().map(|e| Message {
            data: self.data.slice(e.range.clone()),
            date: e.date,
        })
    }
}

impl std::fmt::Debug for Mbox {
    /// A summary; the messages themselves are left out.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Mbox")
            .field("path", &self.path)
            .field("messages", &self.entries.len())
            .field("total_size", &self.data.len())
            .field("max_message_size", &self.max_size)
            .field("cursor", &self.cursor.load(Ordering::Relaxed))
            .finish()
    }
}

impl MessageSource for Mbox {
    /// The messages in file order, starting over after the last; `rng` is not used.
    fn next_message(&self, _rng: &mut dyn rand::Rng) -> Message {
        let i = self.cursor.fetch_add(1, Ordering::Relaxed);
        self.get(i)
    }

    fn len_hint(&self) -> Option<usize> {
        Some(self.entries.len())
    }
}

/// Parses an mbox From_ line (without its line ending) and returns its date.
///
/// Accepted: `From <sender> <date>` where the date is
/// `Www Mmm dd hh:mm[:ss] [zone] yyyy [zone] [anything]`: any three letters for the
/// weekday, an English month name (any case), a day of one or two digits (possibly
/// space-padded), a zone either numeric (`+0200`, `-0700`) or a name (`UTC`, `PST`, taken
/// as `+0000`) before the year, or numeric after it. The sender may be empty or contain
/// spaces: the first position after a space where a date parses wins. A date without a
/// numeric zone is taken as UTC (`+0000`), which keeps results independent of the host's
/// time zone. `From MAILER-DAEMON Thu Jan  1 00:00:00 2009` parses.
pub fn parse_from_line(line: &[u8]) -> Option<MailDate> {
    let rest = line.strip_prefix(b"From ")?;
    // Shortest date: "Www Mmm d hh:mm yyyy" = 20 bytes.
    if rest.len() < 20 {
        return None;
    }
    if let Some(d) = parse_from_date(rest) {
        return Some(d);
    }
    memchr::memchr_iter(b' ', rest).find_map(|i| parse_from_date(&rest[i + 1..]))
}

/// A tiny cursor over the date part of a From_ line.
struct Cur<'a> {
    s: &'a [u8],
    i: usize,
}

impl Cur<'_> {
    fn peek(&self) -> Option<u8> {
        self.s.get(self.i).copied()
    }
    fn eat(&mut self, c: u8) -> bool {
        if self.peek() == Some(c) {
            self.i += 1;
            true
        } else {
            false
        }
    }
    fn spaces(&mut self) -> usize {
        let start = self.i;
        while self.peek() == Some(b' ') {
            self.i += 1;
        }
        self.i - start
    }
    /// Exactly `n` ASCII digits.
    fn digits(&mut self, n: usize) -> Option<u32> {
        let d = self.s.get(self.i..self.i + n)?;
        if !d.iter().all(u8::is_ascii_digit) {
            return None;
        }
        self.i += n;
        Some(d.iter().fold(0u32, |v, &c| v * 10 + u32::from(c - b'0')))
    }
    /// One or two ASCII digits.
    fn digits_1_2(&mut self) -> Option<u32> {
        let first = self.peek().filter(u8::is_ascii_digit)?;
        self.i += 1;
        let mut v = u32::from(first - b'0');
        if let Some(c) = self.peek().filter(u8::is_ascii_digit) {
            self.i += 1;
            v = v * 10 + u32::from(c - b'0');
        }
        Some(v)
    }
    fn alpha_run(&mut self) -> &[u8] {
        let start = self.i;
        while self.peek().is_some_and(|c| c.is_ascii_alphabetic()) {
            self.i += 1;
        }
        &self.s[start..self.i]
    }
    /// `+hhmm` or `-hhmm` as minutes east of UTC.
    fn numeric_zone(&mut self) -> Option<i16> {
        let save = self.i;
        let sign: i16 = match self.peek() {
            Some(b'+') => 1,
            Some(b'-') => -1,
            _ => return None,
        };
        self.i += 1;
        let (Some(hh), Some(mm)) = (self.digits(2), self.digits(2)) else {
            self.i = save;
            return None;
        };
        if hh > 23 || mm > 59 {
            self.i = save;
            return None;
        }
        Some(sign * (hh * 60 + mm) as i16)
    }
    fn at_end_or_space(&self) -> bool {
        matches!(self.peek(), None | Some(b' '))
    }
}

fn parse_from_date(s: &[u8]) -> Option<MailDate> {
    let mut c = Cur { s, i: 0 };
    // Weekday: three letters.
    let wd = c.alpha_run();
    if wd.len() != 3 || c.spaces() == 0 {
        return None;
    }
    // Month.
    let mon = c.alpha_run();
    let month = MONTHS
        .iter()
        .position(|m| m.as_bytes().eq_ignore_ascii_case(mon))? as u32
        + 1;
    if c.spaces() == 0 {
        return None;
    }
    // Day, then hh:mm[:ss].
    let day = c.digits_1_2()?;
    if c.spaces() == 0 {
        return None;
    }
    let hour = c.digits(2)?;
    if !c.eat(b':') {
        return None;
    }
    let minute = c.digits(2)?;
    let second = if c.eat(b':') { c.digits(2)? } else { 0 };
    if c.spaces() == 0 {
        return None;
    }
    // Optional zone before the year.
    let mut offset: i16 = 0;
    if let Some(z) = c.numeric_zone() {
        offset = z;
        if c.spaces() == 0 {
            return None;
        }
    } else if c.peek().is_some_and(|b| b.is_ascii_alphabetic()) {
        let name = c.alpha_run();
        if name.len() > 5 || c.spaces() == 0 {
            return None;
        }
    }
    // Year.
    let year = c.digits(4)?;
    if !c.at_end_or_space() {
        return None;
    }
    // Optional zone after the year; anything after a space is ignored.
    if c.spaces() > 0
        && let Some(z) = c.numeric_zone()
    {
        if !c.at_end_or_space() {
            return None;
        }
        offset = z;
    }

    if !(1..=31).contains(&day) || hour > 23 || minute > 59 || second > 60 {
        return None;
    }
    let local = unix_from_civil(i64::from(year), month, day, hour, minute, second);
    Some(MailDate {
        unix: local - i64::from(offset) * 60,
        offset_minutes: offset,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(line: &str) -> Option<(String, i16)> {
        parse_from_line(line.as_bytes()).map(|d| (d.imap_format(), d.offset_minutes))
    }

    #[test]
    fn from_lines() {
        assert_eq!(
            d("From MAILER-DAEMON Thu Jan  1 00:00:00 2009"),
            Some(("01-Jan-2009 00:00:00 +0000".into(), 0))
        );
        assert_eq!(
            d("From a@b Wed Jul 17 02:44:25 -0700 1996"),
            Some(("17-Jul-1996 02:44:25 -0700".into(), -420))
        );
        assert_eq!(
            d("From a@b Wed Jul 17 02:44:25 1996 +0200"),
            Some(("17-Jul-1996 02:44:25 +0200".into(), 120))
        );
        assert_eq!(
            d("From a@b Wed Jul 17 02:44 1996"),
            Some(("17-Jul-1996 02:44:00 +0000".into(), 0))
        );
        assert_eq!(
            d("From a b@c Wed Jul 17 02:44:25 1996"),
            Some(("17-Jul-1996 02:44:25 +0000".into(), 0))
        );
        assert_eq!(
            d("From a@b Wed Jul 17 02:44:25 PDT 1996"),
            Some(("17-Jul-1996 02:44:25 +0000".into(), 0))
        );
        assert_eq!(
            d("From a@b Wed Jul 17 02:44:25 1996 remote from x"),
            Some(("17-Jul-1996 02:44:25 +0000".into(), 0))
        );
        assert_eq!(d("From what I understand, this is fine"), None);
        assert_eq!(d("From: a@b"), None);
        assert_eq!(d(">From a@b Wed Jul 17 02:44:25 1996"), None);
        assert_eq!(d("From a@b Wed Foo 17 02:44:25 1996"), None);
        assert_eq!(d("From a@b Wed Jul 32 02:44:25 1996"), None);
        assert_eq!(d("From a@b Wed Jul 17 24:44:25 1996"), None);
        assert_eq!(d("From a@b Wed Jul 17 02:44:25 96"), None);
        assert_eq!(d("From a@b Wed Jul 17 02:44:25 19967"), None);
    }
}
