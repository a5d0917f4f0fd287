//! The messages scripted tests append: a cursor over the one mbox reader,
//! [`crate::mail::Mbox`] (each line re-ended with CRLF, the From_ line's date used as
//! the APPEND date).

use std::path::Path;

use crate::mail::Mbox;

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
    mbox: Mbox,
    next: usize,
}

impl MboxSource {
    pub fn open(path: &Path) -> Result<Self, String> {
        let mbox = Mbox::open(path).map_err(|e| e.to_string())?;
        // A script may append every message: a bad one is an error before it starts.
        mbox.scan_all().map_err(|e| e.to_string())?;
        Ok(MboxSource { mbox, next: 0 })
    }

    pub fn path(&self) -> &Path {
        self.mbox.path()
    }

    /// True when every message has been handed out once.
    pub fn at_end(&self) -> bool {
        self.next >= self.mbox.len()
    }

    /// The next message; after the last one it starts over.
    pub fn next_message(&mut self) -> Result<MboxMessage, String> {
        if self.at_end() {
            self.next = 0;
        }
        let message = self.mbox.get(self.next).map_err(|e| e.to_string())?;
        self.next += 1;
        Ok(MboxMessage {
            data: message.data.to_vec(),
            date: message.date.imap_format(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hands_out_in_order_then_starts_over() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.mbox");
        std::fs::write(
            &path,
            "From a  Fri Feb 22 17:06:23 2008\nA: b\n\nbody\n\nFrom a  Sat Mar 24 23:00:00 2007 +0200\r\nX: y\r\n",
        )
        .unwrap();
        let mut source = MboxSource::open(&path).unwrap();
        let first = source.next_message().unwrap();
        assert_eq!(first.data, b"A: b\r\n\r\nbody\r\n\r\n");
        assert_eq!(first.date, "22-Feb-2008 17:06:23 +0000");
        assert!(!source.at_end());
        let second = source.next_message().unwrap();
        assert_eq!(second.date, "24-Mar-2007 23:00:00 +0200");
        assert_eq!(second.data, b"X: y\r\n");
        assert!(source.at_end());
        assert_eq!(source.next_message().unwrap(), first);
    }
}
