//! Streams the lines of a set of log files (plain or gzip), oldest file first, and
//! counts what could not be read.

use std::fs::File;
use std::io::{self, BufRead, BufReader, Read};
use std::path::{Path, PathBuf};

use flate2::read::MultiGzDecoder;

use super::dovecot::{stamp_month, stamp_only};

/// What reading the files met, for the summary on stderr.
#[derive(Debug, Default, Clone)]
pub struct ReadStats {
    pub files: usize,
    pub lines: u64,
    pub bytes: u64,
    /// Lines that were not valid UTF-8 (read with replacement characters).
    pub not_utf8: u64,
    /// Files that ended in the middle of a line (that line is skipped).
    pub cut_lines: u64,
    /// Files that could not be read to the end: (file, why). A gzip file cut short
    /// is one; the lines before the damage are used.
    pub damaged: Vec<(PathBuf, String)>,
}

/// A log file and the first timestamp in it (for ordering rotated files).
struct Ordered {
    path: PathBuf,
    first: Option<f64>,
}

/// Opens `path`, decompressing gzip (by its magic bytes, not its name).
fn open(path: &Path) -> io::Result<Box<dyn BufRead>> {
    let mut file = BufReader::with_capacity(1 << 20, File::open(path)?);
    let gzip = file.fill_buf()?.starts_with(&[0x1f, 0x8b]);
    Ok(if gzip {
        Box::new(BufReader::with_capacity(1 << 20, MultiGzDecoder::new(file)))
    } else {
        Box::new(file)
    })
}

/// What the reader hands on.
pub enum Line<'a> {
    /// A complete line and the year for stamps without one.
    Text(&'a str, i32),
    /// Lines are missing here: a file ended in damage (or could not be opened).
    Break,
}

/// Calls `each` for every complete line of `paths`, files in the order of their first
/// timestamps (so `dovecot.log.2.gz dovecot.log.1 dovecot.log` may be given in any
/// order), and a [`Line::Break`] where lines are lost. The year for stamps without one
/// (`%b %d`) is `start_year`, rolled over when the month falls back from December to
/// January.
pub fn for_each_line(
    paths: &[PathBuf],
    start_year: i32,
    mut each: impl FnMut(Line<'_>),
) -> ReadStats {
    let mut stats = ReadStats {
        files: paths.len(),
        ..ReadStats::default()
    };
    let mut ordered: Vec<Ordered> = paths
        .iter()
        .map(|path| Ordered {
            path: path.clone(),
            first: first_stamp(path, start_year),
        })
        .collect();
    // Files without a timestamp go last; the sort is stable for equal stamps.
    ordered.sort_by(|a, b| match (a.first, b.first) {
        (Some(x), Some(y)) => x.total_cmp(&y),
        (Some(_), None) => std::cmp::Ordering::Less,
        (None, Some(_)) => std::cmp::Ordering::Greater,
        (None, None) => std::cmp::Ordering::Equal,
    });
    let mut year = start_year;
    let mut last_month = None;
    let mut buf = Vec::with_capacity(4096);
    for file in ordered {
        let mut reader = match open(&file.path) {
            Ok(r) => r,
            Err(e) => {
                stats.damaged.push((file.path, e.to_string()));
                each(Line::Break);
                continue;
            }
        };
        loop {
            buf.clear();
            match reader.read_until(b'\n', &mut buf) {
                Ok(0) => break,
                Ok(n) => {
                    stats.bytes += n as u64;
                    if buf.last() != Some(&b'\n') {
                        // The file ends inside this line (cut or still being written).
                        stats.cut_lines += 1;
                        each(Line::Break);
                        break;
                    }
                    buf.pop();
                    if buf.last() == Some(&b'\r') {
                        buf.pop();
                    }
                    stats.lines += 1;
                    let text = match std::str::from_utf8(&buf) {
                        Ok(s) => std::borrow::Cow::Borrowed(s),
                        Err(_) => {
                            stats.not_utf8 += 1;
                            String::from_utf8_lossy(&buf)
                        }
                    };
                    if let Some(m) = stamp_month(&text) {
                        if last_month == Some(12) && m == 1 {
                            year += 1;
                        }
                        last_month = Some(m);
                    }
                    each(Line::Text(&text, year));
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => {
                    if !buf.is_empty() {
                        stats.cut_lines += 1;
                    }
                    stats.damaged.push((file.path.clone(), e.to_string()));
                    each(Line::Break);
                    break;
                }
            }
        }
    }
    stats
}

/// The first timestamp among the first lines of `path`.
fn first_stamp(path: &Path, year: i32) -> Option<f64> {
    let reader = open(path).ok()?;
    let mut lines = reader.take(1 << 20).split(b'\n');
    for _ in 0..1000 {
        let line = lines.next()?.ok()?;
        let text = String::from_utf8_lossy(&line);
        if let Some(stamp) = stamp_only(&text, year) {
            return Some(stamp.secs);
        }
    }
    None
}
