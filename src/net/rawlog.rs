//! Per-connection protocol logs (`rawlog`): both directions in one file, each line
//! prefixed with a timestamp and `C:` (client) or `S:` (server). Secrets are masked.

use std::fs::File;
use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

/// What replaces a masked secret in the log.
pub const MASK: &[u8] = b"<hidden>";

/// One connection's log file, `<dir>/rawlog.<connection id>`.
#[derive(Debug)]
pub struct Rawlog {
    path: PathBuf,
    out: BufWriter<File>,
    in_line_open: bool,
    out_line_open: bool,
}

impl Rawlog {
    pub fn create(dir: &Path, connection_id: u64) -> io::Result<Self> {
        let path = dir.join(format!("rawlog.{connection_id}"));
        let file = File::create(&path)?;
        Ok(Rawlog {
            path,
            out: BufWriter::new(file),
            in_line_open: false,
            out_line_open: false,
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Bytes received from the server.
    pub fn input(&mut self, bytes: &[u8]) {
        let mut open = self.in_line_open;
        let _ = write_lines(&mut self.out, b"S: ", bytes, &mut open);
        self.in_line_open = open;
        let _ = self.out.flush();
    }

    /// Bytes sent to the server; everything from `secret_from` up to the final line end
    /// is masked.
    pub fn output(&mut self, bytes: &[u8], secret_from: Option<usize>) {
        let mut open = self.out_line_open;
        let _ = match secret_from {
            Some(at) if at < bytes.len() => {
                let (shown, hidden) = bytes.split_at(at);
                // Everything up to the final line ending is secret: a password may
                // follow as a literal on the next line.
                let keep = hidden
                    .iter()
                    .rev()
                    .take_while(|&&b| b == b'\r' || b == b'\n')
                    .count();
                let tail = &hidden[hidden.len() - keep..];
                let mut masked = Vec::with_capacity(shown.len() + MASK.len() + tail.len());
                masked.extend_from_slice(shown);
                masked.extend_from_slice(MASK);
                masked.extend_from_slice(tail);
                write_lines(&mut self.out, b"C: ", &masked, &mut open)
            }
            _ => write_lines(&mut self.out, b"C: ", bytes, &mut open),
        };
        self.out_line_open = open;
        let _ = self.out.flush();
    }

    /// A note from the tool itself (e.g. "TLS started").
    pub fn note(&mut self, text: &str) {
        let _ = writeln!(self.out, "{} ** {text}", timestamp());
        let _ = self.out.flush();
    }
}

fn timestamp() -> String {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    format!("{}.{:06}", now.as_secs(), now.subsec_micros())
}

/// Writes `bytes` line by line, starting a prefixed line whenever the previous one ended.
fn write_lines(
    out: &mut impl Write,
    prefix: &[u8],
    bytes: &[u8],
    line_open: &mut bool,
) -> io::Result<()> {
    let mut rest = bytes;
    while !rest.is_empty() {
        if !*line_open {
            out.write_all(timestamp().as_bytes())?;
            out.write_all(b" ")?;
            out.write_all(prefix)?;
            *line_open = true;
        }
        match memchr::memchr(b'\n', rest) {
            Some(i) => {
                out.write_all(&rest[..=i])?;
                rest = &rest[i + 1..];
                *line_open = false;
            }
            None => {
                out.write_all(rest)?;
                rest = &[];
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn strip_times(log: &str) -> String {
        log.lines()
            .map(|l| l.split_once(' ').map_or(l, |(_, rest)| rest))
            .collect::<Vec<_>>()
            .join("\n")
    }

    #[test]
    fn masks_secret_and_prefixes_lines() {
        let dir = tempfile::tempdir().unwrap();
        let mut log = Rawlog::create(dir.path(), 7).unwrap();
        log.input(b"* OK ready\r\n");
        let line = b"7.1 LOGIN \"bob\" \"hunter2\"\r\n";
        log.output(line, Some(16));
        log.input(b"7.1 OK done\r\n* partial");
        log.input(b" line\r\n");
        drop(log);
        let text = std::fs::read_to_string(dir.path().join("rawlog.7")).unwrap();
        assert!(!text.contains("hunter2"), "{text}");
        assert_eq!(
            strip_times(&text),
            "S: * OK ready\nC: 7.1 LOGIN \"bob\" <hidden>\nS: 7.1 OK done\nS: * partial line"
        );
    }
}
