//! The messages scripted tests append: a minimal mbox reader (each line re-ended with
//! CRLF, the From_ line's date used as the APPEND date).

use std::path::{Path, PathBuf};

/// One message to append.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MboxMessage {
    /// Message bytes, CRLF line endings.
    pub data: Vec<u8>,
    /// IMAP date-time (`dd-Mon-yyyy hh:mm:ss +zzzz`) from the From_ line.
    pub date: String,
}

/// Messages of one mbox file, handed out in order.
#[derive(Debug)]
pub struct MboxSource {
    path: PathBuf,
    messages: Vec<MboxMessage>,
    next: usize,
}

const MONTHS: [&str; 12] = [
    "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
];

/// Parses `From <sender> <Www Mmm dd hh:mm:ss yyyy> [+zzzz]` into an IMAP date-time.
pub fn from_line_date(line: &[u8]) -> Option<String> {
    let line = std::str::from_utf8(line.strip_prefix(b"From ")?).ok()?;
    let mut words = line.split_ascii_whitespace();
    let _sender = words.next()?;
    let _weekday = words.next()?;
    let month = words.next()?;
    let day: u32 = words.next()?.parse().ok()?;
    let time = words.next()?;
    let year: u32 = words.next()?.parse().ok()?;
    let zone = words.next();
    let month = MONTHS.iter().find(|m| m.eq_ignore_ascii_case(month))?;
    let mut hms = time.split(':').map(|p| p.parse::<u32>().ok());
    let (h, m) = (hms.next()??, hms.next()??);
    let s = hms.next().flatten().unwrap_or(0);
    if !(1..=31).contains(&day) || h > 23 || m > 59 || s > 60 {
        return None;
    }
    let zone = match zone {
        Some(z)
            if z.len() == 5
                && (z.starts_with('+') || z.starts_with('-'))
                && z[1..].bytes().all(|b| b.is_ascii_digit()) =>
        {
            z.to_owned()
        }
        _ => "+0000".to_owned(),
    };
    Some(format!(
        "{day:02}-{month}-{year:04} {h:02}:{m:02}:{s:02} {zone}"
    ))
}

impl MboxSource {
    pub fn open(path: &Path) -> Result<Self, String> {
        let data =
            std::fs::read(path).map_err(|e| format!("open({}) failed: {e}", path.display()))?;
        let messages = split(&data).map_err(|e| format!("{}: {e}", path.display()))?;
        Ok(MboxSource {
            path: path.to_owned(),
            messages,
            next: 0,
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// True when every message has been handed out once.
    pub fn at_end(&self) -> bool {
        self.next >= self.messages.len()
    }

    /// The next message; after the last one it starts over.
    pub fn next_message(&mut self) -> Option<MboxMessage> {
        if self.messages.is_empty() {
            return None;
        }
        if self.next >= self.messages.len() {
            self.next = 0;
        }
        let m = self.messages.get(self.next).cloned();
        self.next += 1;
        m
    }
}

/// Splits an mbox into messages.
pub fn split(data: &[u8]) -> Result<Vec<MboxMessage>, String> {
    if data.is_empty() {
        return Err("Empty mbox file".into());
    }
    let mut messages = Vec::new();
    let mut cur: Option<MboxMessage> = None;
    for raw in data.split_inclusive(|&b| b == b'\n') {
        let line = raw.strip_suffix(b"\n").unwrap_or(raw);
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        if let Some(date) = line
            .starts_with(b"From ")
            .then(|| from_line_date(line))
            .flatten()
        {
            if let Some(m) = cur.take() {
                messages.push(m);
            }
            cur = Some(MboxMessage {
                data: Vec::new(),
                date,
            });
            continue;
        }
        let Some(m) = cur.as_mut() else {
            return Err("Not a valid mbox file".into());
        };
        m.data.extend_from_slice(line);
        m.data.extend_from_slice(b"\r\n");
    }
    match cur {
        Some(m) if m.data.is_empty() => Err("mbox file ends with From-line".into()),
        Some(m) => {
            messages.push(m);
            Ok(messages)
        }
        None => Err("Not a valid mbox file".into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_and_dates() {
        let m = split(b"From a  Fri Feb 22 17:06:23 2008\nA: b\n\nbody\n\nFrom a  Sat Mar 24 23:00:00 2007 +0200\r\nX: y\r\n").unwrap();
        assert_eq!(m.len(), 2);
        assert_eq!(m[0].data, b"A: b\r\n\r\nbody\r\n\r\n");
        assert_eq!(m[0].date, "22-Feb-2008 17:06:23 +0000");
        assert_eq!(m[1].date, "24-Mar-2007 23:00:00 +0200");
        assert_eq!(m[1].data, b"X: y\r\n");
        assert!(split(b"").is_err());
        assert!(split(b"hello\n").is_err());
        assert!(split(b"From a  Fri Feb 22 17:06:23 2008\n").is_err());
    }
}
