//! Reading messages from an mbox file, on demand.
//!
//! The file is scanned front to back through a bounded window only as far as the
//! messages handed out need (opening checks the first message), keeping where each
//! message's From_ line starts (4 bytes per message below 4 GiB, 8 above), so memory
//! does not grow with the size of the mbox and a multi-GB archive opens at once: a run
//! costs what the messages it uses cost. A message found invalid later is an error when
//! the scan reaches it ([`Mbox::scan_all`] checks the whole file up front). A message
//! is read when it is handed out, with positioned reads, every line re-ended with CRLF;
//! [`Mbox::stream`] hands out a large message as a [`MessageStream`] that is read chunk
//! by chunk while it is sent. The file must not change while it is in use (a message
//! that no longer reads as it did at open is an error).
//!
//! # Format accepted
//!
//! A message starts after a line that parses as an mbox From_ line
//! (`From sender Www Mmm dd hh:mm:ss yyyy`, see [`parse_from_line`]) of at most
//! [`MAX_FROM_LINE`] bytes, and runs up to, not including, the next such line; the blank
//! line before it belongs to the message. `>From ` lines are not unescaped. LF and CRLF
//! files give the same result. A message larger than [`MAX_MESSAGE_SIZE`] is an error,
//! so a file that is not an mbox (even an endless one, such as `/dev/zero`) is refused
//! after a bounded read.

use std::fs::File;
use std::io::{self, Read};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use bytes::Bytes;

use super::date::{MONTHS, unix_from_civil};
use super::{MailDate, Message, MessageSource};
use crate::net::BodySource;

/// The largest message accepted, in bytes as stored in the file.
pub const MAX_MESSAGE_SIZE: u64 = 64 << 20;
/// A longer line starting with `From ` is message text, not a From_ line.
pub const MAX_FROM_LINE: usize = 1024;
/// The scan window (kept until the scan reaches the end of the file).
const SCAN_WINDOW: usize = 64 * 1024;
/// Messages up to this size (From_ line included) are read whole; larger ones are
/// streamed in pieces of this size.
const READ_CHUNK: usize = 64 * 1024;

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
        line: u64,
        /// The start of the offending line, lossily decoded.
        text: String,
    },
    /// The last line of the file is a From_ line, so the last message would be empty.
    #[error("{}:{line}: mbox file ends with a From line", path.display())]
    EndsWithFromLine {
        /// The file.
        path: PathBuf,
        /// 1-based line number of that From_ line.
        line: u64,
    },
    /// A message (or what follows a From_ line) is larger than [`MAX_MESSAGE_SIZE`].
    #[error(
        "{}:{line}: the message starting here is larger than {} MiB (no From_ line follows); is this an mbox file?",
        path.display(), MAX_MESSAGE_SIZE >> 20
    )]
    TooLarge {
        /// The file.
        path: PathBuf,
        /// 1-based line number of the message's From_ line.
        line: u64,
    },
    /// A message no longer reads as it did when the file was opened.
    #[error("{}: message {number} changed since the file was opened", path.display())]
    Changed {
        /// The file.
        path: PathBuf,
        /// 1-based message number.
        number: usize,
    },
}

/// Where the bytes are: the open file, or memory ([`Mbox::from_bytes`]).
#[derive(Debug)]
enum Backing {
    File(File),
    Memory(Bytes),
}

impl Backing {
    /// Fills `buf` from `offset`; a short read (the file shrank) is `UnexpectedEof`.
    fn read_exact_at(&self, buf: &mut [u8], offset: u64) -> io::Result<()> {
        match self {
            Backing::File(file) => {
                use std::os::unix::fs::FileExt;
                file.read_exact_at(buf, offset)
            }
            Backing::Memory(data) => {
                let start = usize::try_from(offset).unwrap_or(usize::MAX);
                let src = start
                    .checked_add(buf.len())
                    .and_then(|end| data.get(start..end))
                    .ok_or(io::ErrorKind::UnexpectedEof)?;
                buf.copy_from_slice(src);
                Ok(())
            }
        }
    }

    /// Reads what there is at `offset` into `buf` (0 at the end).
    fn read_at(&self, buf: &mut [u8], offset: u64) -> io::Result<usize> {
        match self {
            Backing::File(file) => {
                use std::os::unix::fs::FileExt;
                file.read_at(buf, offset)
            }
            Backing::Memory(data) => {
                let start = usize::try_from(offset)
                    .unwrap_or(usize::MAX)
                    .min(data.len());
                let n = buf.len().min(data.len() - start);
                buf[..n].copy_from_slice(&data[start..start + n]);
                Ok(n)
            }
        }
    }
}

/// Reads a [`Backing`] front to back (for the scan).
struct BackingReader {
    backing: Arc<Backing>,
    pos: u64,
}

impl Read for BackingReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.backing.read_at(buf, self.pos)?;
        self.pos += n as u64;
        Ok(n)
    }
}

/// The messages of an mbox file, handed out in file order and wrapping around.
///
/// `Send + Sync`: share it in an `Arc`; the cursor is an atomic counter. The file is
/// scanned as far as the messages handed out need (the C tool reads it the same way,
/// front to back): a run that appends a hundred messages reads a hundred, not the whole
/// archive. Opening checks that the file starts with a message.
pub struct Mbox {
    path: PathBuf,
    backing: Arc<Backing>,
    index: std::sync::Mutex<Index>,
    cursor: AtomicUsize,
}

/// The longest prefix of a bad line quoted in [`MboxError::NotMbox`].
const QUOTE_MAX: usize = 80;

impl Mbox {
    /// Opens and indexes the mbox file at `path`; the messages are read later, when
    /// they are handed out.
    pub fn open(path: &Path) -> Result<Self, MboxError> {
        let io_error = |source| MboxError::Io {
            path: path.to_path_buf(),
            source,
        };
        let file = File::open(path).map_err(io_error)?;
        Self::with_backing(path.to_path_buf(), Backing::File(file))
    }

    /// Indexes an mbox held in memory; `name` stands for the path in errors.
    pub fn from_bytes(name: &str, data: &[u8]) -> Result<Self, MboxError> {
        let backing = Backing::Memory(Bytes::copy_from_slice(data));
        Self::with_backing(PathBuf::from(name), backing)
    }

    fn with_backing(path: PathBuf, backing: Backing) -> Result<Self, MboxError> {
        let mbox = Mbox {
            path,
            backing: Arc::new(backing),
            index: std::sync::Mutex::new(Index::default()),
            cursor: AtomicUsize::new(0),
        };
        let backing = mbox.backing.clone();
        mbox.lock_index().start(backing);
        // The first message must be there (an empty or foreign file fails here).
        mbox.stored_range(0)?;
        Ok(mbox)
    }

    fn lock_index(&self) -> std::sync::MutexGuard<'_, Index> {
        self.index.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The number of messages; at least 1. Scans the rest of the file if need be; after
    /// a scan error, the messages before it ([`Mbox::scan_all`] tells the error).
    pub fn len(&self) -> usize {
        let mut index = self.lock_index();
        let _ = index.reach(usize::MAX - 1);
        index.count()
    }

    /// Scans the rest of the file: the number of messages, or why a message after the
    /// ones handed out so far is not valid.
    pub fn scan_all(&self) -> Result<usize, MboxError> {
        let mut index = self.lock_index();
        index.reach(usize::MAX - 1).map_err(|e| {
            e.into_mbox_error(self.path.clone(), &self.backing, &mut index.failed_line)
        })?;
        Ok(index.count())
    }

    /// Always `false`: an mbox without messages fails to open.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The stored bytes of message `i % len()`: From_ line, then the message.
    fn stored_range(&self, i: usize) -> Result<(usize, u64, u64), MboxError> {
        let mut index = self.lock_index();
        index.reach(i).map_err(|e| {
            e.into_mbox_error(self.path.clone(), &self.backing, &mut index.failed_line)
        })?;
        let i = if i < index.count() {
            i
        } else {
            i % index.count().max(1)
        };
        Ok((i, index.starts.get(i), index.starts.get(i + 1)))
    }

    fn changed(&self, i: usize) -> MboxError {
        MboxError::Changed {
            path: self.path.clone(),
            number: i + 1,
        }
    }

    /// Reads `len` bytes at `offset`.
    fn read(&self, i: usize, offset: u64, len: u64) -> Result<Vec<u8>, MboxError> {
        let len = usize::try_from(len).map_err(|_| self.changed(i))?;
        let mut buf = vec![0; len];
        self.backing
            .read_exact_at(&mut buf, offset)
            .map_err(|source| match source.kind() {
                io::ErrorKind::UnexpectedEof => self.changed(i),
                _ => MboxError::Io {
                    path: self.path.clone(),
                    source,
                },
            })?;
        Ok(buf)
    }

    /// Message `i % len()` (0-based, in file order), read whole.
    pub fn get(&self, i: usize) -> Result<Message, MboxError> {
        let (i, start, end) = self.stored_range(i)?;
        let stored = self.read(i, start, end - start)?;
        let (date, text) = from_line_at(&stored, true).ok_or_else(|| self.changed(i))?;
        let body = &stored[text..];
        let mut data = Vec::with_capacity(body.len() + body.len() / 16 + 2);
        let last = crlf_into(body, false, &mut data);
        finish_crlf(last, &mut data);
        Ok(Message {
            data: Bytes::from(data),
            date,
        })
    }

    /// Message `i % len()` as a stream: small messages are read whole, large ones piece
    /// by piece while they are sent.
    pub fn stream(&self, i: usize) -> Result<MessageStream, MboxError> {
        let (i, start, end) = self.stored_range(i)?;
        if end - start <= READ_CHUNK as u64 {
            return self.get(i).map(MessageStream::from);
        }
        let head_len = (end - start).min(MAX_FROM_LINE as u64 + 1);
        let head = self.read(i, start, head_len)?;
        let (date, text) = from_line_at(&head, false).ok_or_else(|| self.changed(i))?;
        let text_start = start + text as u64;
        // The size announced up front: one pass counting the LFs that gain a CR.
        let mut len = end - text_start;
        let mut pos = text_start;
        let mut last = None;
        while pos < end {
            let piece = self.read(i, pos, (end - pos).min(READ_CHUNK as u64))?;
            len += bare_lfs(&piece, last == Some(b'\r'));
            last = piece.last().copied();
            pos += piece.len() as u64;
        }
        len += tail_len(last);
        Ok(MessageStream {
            date,
            remaining: len,
            body: Body::File(FileBody {
                mbox_path: self.path.clone(),
                number: i + 1,
                backing: self.backing.clone(),
                pos: text_start,
                end,
                last: None,
            }),
        })
    }

    /// The path (or name given to [`Mbox::from_bytes`]).
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The messages in file order, each read when the iterator reaches it; a scan
    /// error comes last, after the messages before it.
    pub fn iter(&self) -> impl Iterator<Item = Result<Message, MboxError>> + '_ {
        let scanned = self.scan_all();
        (0..self.len())
            .map(|i| self.get(i))
            .chain(scanned.err().map(Err))
    }
}

impl std::fmt::Debug for Mbox {
    /// A summary; the messages themselves are left out.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Mbox")
            .field("path", &self.path)
            .field("messages_found", &self.lock_index().count())
            .field("cursor", &self.cursor.load(Ordering::Relaxed))
            .finish()
    }
}

impl MessageSource for Mbox {
    /// The messages in file order, starting over after the last; `rng` is not used.
    fn next_message(&self, _rng: &mut dyn rand::Rng) -> Result<Message, MboxError> {
        let i = self.cursor.fetch_add(1, Ordering::Relaxed);
        self.get(i)
    }

    fn next_stream(&self, _rng: &mut dyn rand::Rng) -> Result<MessageStream, MboxError> {
        let i = self.cursor.fetch_add(1, Ordering::Relaxed);
        self.stream(i)
    }

    fn len_hint(&self) -> Option<usize> {
        Some(self.len())
    }
}

/// A message handed out as a [`BodySource`]: its CRLF size is known up front, its
/// bytes come from memory or, for a large mbox message, from the file while it is sent.
#[derive(Debug)]
pub struct MessageStream {
    /// The internal date to APPEND it with.
    pub date: MailDate,
    remaining: u64,
    body: Body,
}

#[derive(Debug)]
enum Body {
    Memory(Bytes),
    File(FileBody),
}

/// The part of a stored message not read yet.
#[derive(Debug)]
struct FileBody {
    mbox_path: PathBuf,
    number: usize,
    backing: Arc<Backing>,
    pos: u64,
    end: u64,
    /// The last stored byte converted so far.
    last: Option<u8>,
}

impl From<Message> for MessageStream {
    fn from(message: Message) -> Self {
        MessageStream {
            date: message.date,
            remaining: message.data.len() as u64,
            body: Body::Memory(message.data),
        }
    }
}

impl MessageStream {
    /// The message's size, CRLF line endings counted (what is still to come).
    pub fn len(&self) -> u64 {
        self.remaining
    }

    pub fn is_empty(&self) -> bool {
        self.remaining == 0
    }
}

impl BodySource for MessageStream {
    fn remaining(&self) -> u64 {
        self.remaining
    }

    fn read_into(&mut self, out: &mut Vec<u8>, max: usize) -> io::Result<()> {
        let before = out.len();
        match &mut self.body {
            Body::Memory(data) => {
                let piece = data.split_to(max.min(data.len()));
                out.extend_from_slice(&piece);
            }
            Body::File(file) => file.read_into(out, max.max(2))?,
        }
        let produced = (out.len() - before) as u64;
        if produced > self.remaining {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                "the message grew while it was sent",
            ));
        }
        self.remaining -= produced;
        Ok(())
    }
}

impl FileBody {
    /// Converts up to `max / 2` stored bytes (at most `max` with the added CRs), or the
    /// final line end once the stored bytes are done.
    fn read_into(&mut self, out: &mut Vec<u8>, max: usize) -> io::Result<()> {
        if self.pos >= self.end {
            finish_crlf(self.last, out);
            self.last = Some(b'\n');
            return Ok(());
        }
        let len = (self.end - self.pos).min((max / 2) as u64) as usize;
        let mut piece = vec![0; len];
        self.backing
            .read_exact_at(&mut piece, self.pos)
            .map_err(|e| {
                io::Error::new(
                    e.kind(),
                    format!("{}: message {}: {e}", self.mbox_path.display(), self.number),
                )
            })?;
        crlf_into(&piece, self.last == Some(b'\r'), out);
        self.last = piece.last().copied().or(self.last);
        self.pos += len as u64;
        Ok(())
    }
}

/// Appends `stored` to `out` with every LF that has no CR before it made CRLF;
/// `after_cr`: the byte before `stored` was CR. Returns the last byte of `stored`.
fn crlf_into(stored: &[u8], after_cr: bool, out: &mut Vec<u8>) -> Option<u8> {
    let mut copied = 0;
    for lf in memchr::memchr_iter(b'\n', stored) {
        let cr = if lf == 0 {
            after_cr
        } else {
            stored[lf - 1] == b'\r'
        };
        if !cr {
            out.extend_from_slice(&stored[copied..lf]);
            out.push(b'\r');
            copied = lf;
        }
    }
    out.extend_from_slice(&stored[copied..]);
    stored.last().copied()
}

/// LFs in `stored` without a CR before them.
fn bare_lfs(stored: &[u8], after_cr: bool) -> u64 {
    memchr::memchr_iter(b'\n', stored)
        .filter(|&lf| {
            if lf == 0 {
                !after_cr
            } else {
                stored[lf - 1] != b'\r'
            }
        })
        .count() as u64
}

/// The line end a message gets when its last line has none: CRLF, or LF after a CR.
fn tail_len(last: Option<u8>) -> u64 {
    match last {
        None | Some(b'\n') => 0,
        Some(b'\r') => 1,
        Some(_) => 2,
    }
}

fn finish_crlf(last: Option<u8>, out: &mut Vec<u8>) {
    match tail_len(last) {
        1 => out.push(b'\n'),
        2 => out.extend_from_slice(b"\r\n"),
        _ => {}
    }
}

/// If `data` starts with a From_ line, its date and length (line end included). The
/// line must end within [`MAX_FROM_LINE`] bytes; `at_end`: `data` runs to the end of
/// the file, so a last line without a line end counts too.
fn from_line_at(data: &[u8], at_end: bool) -> Option<(MailDate, usize)> {
    if !data.starts_with(b"From ") {
        return None;
    }
    let limit = data.len().min(MAX_FROM_LINE + 1);
    let (line, len) = match memchr::memchr(b'\n', &data[..limit]) {
        Some(lf) => (&data[..lf], lf + 1),
        None if at_end && data.len() <= MAX_FROM_LINE => (data, data.len()),
        None => return None,
    };
    let line = line.strip_suffix(b"\r").unwrap_or(line);
    parse_from_line(line).map(|date| (date, len))
}

/// File offsets, as `u32` while they fit (most mbox files are below 4 GiB).
#[derive(Debug)]
enum Offsets {
    Narrow(Vec<u32>),
    Wide(Vec<u64>),
}

impl Default for Offsets {
    fn default() -> Self {
        Offsets::Narrow(Vec::new())
    }
}

impl Offsets {
    fn push(&mut self, offset: u64) {
        match self {
            Offsets::Narrow(narrow) => match u32::try_from(offset) {
                Ok(offset) => narrow.push(offset),
                Err(_) => {
                    let mut wide: Vec<u64> = narrow.iter().map(|&o| u64::from(o)).collect();
                    wide.push(offset);
                    *self = Offsets::Wide(wide);
                }
            },
            Offsets::Wide(wide) => wide.push(offset),
        }
    }

    fn get(&self, i: usize) -> u64 {
        match self {
            Offsets::Narrow(narrow) => u64::from(narrow[i]),
            Offsets::Wide(wide) => wide[i],
        }
    }

    fn len(&self) -> usize {
        match self {
            Offsets::Narrow(narrow) => narrow.len(),
            Offsets::Wide(wide) => wide.len(),
        }
    }

    fn shrink_to_fit(&mut self) {
        match self {
            Offsets::Narrow(narrow) => narrow.shrink_to_fit(),
            Offsets::Wide(wide) => wide.shrink_to_fit(),
        }
    }
}

/// The messages found so far, and the scan that finds more.
#[derive(Default)]
struct Index {
    /// Where each message's From_ line starts; once the scan is done, then the end.
    starts: Offsets,
    /// `None` once the scan is done (or failed: then `failed`).
    scanner: Option<Box<Scanner>>,
    failed: Option<ScanError>,
    /// The line of `failed`, once counted.
    failed_line: Option<u64>,
}

impl Index {
    fn start(&mut self, backing: Arc<Backing>) {
        self.scanner = Some(Box::new(Scanner {
            window: Window {
                reader: BackingReader { backing, pos: 0 },
                buf: vec![0; SCAN_WINDOW],
                start: 0,
                end: 0,
                offset: 0,
                eof: false,
            },
            separator: memchr::memmem::Finder::new(SEPARATOR),
            last: None,
            at_line_start: true,
        }));
    }

    /// Messages whose start and end are known.
    fn count(&self) -> usize {
        self.starts.len().saturating_sub(1)
    }

    /// Scans until message `i` is known or the file is done.
    fn reach(&mut self, i: usize) -> Result<(), ScanError> {
        while self.starts.len() <= i.saturating_add(1) {
            if let Some(failed) = &self.failed {
                return Err(failed.clone());
            }
            let Some(scanner) = self.scanner.as_mut() else {
                return Ok(());
            };
            match scanner.next() {
                Ok(Step::Found(offset)) => self.starts.push(offset),
                Ok(Step::End(end)) => {
                    self.starts.push(end);
                    self.starts.shrink_to_fit();
                    // Frees the scan window.
                    self.scanner = None;
                }
                Err(e) => {
                    self.scanner = None;
                    self.failed = Some(e);
                }
            }
        }
        Ok(())
    }
}

/// Why a scan failed; positions are turned into line numbers only then.
#[derive(Debug, Clone)]
enum ScanError {
    /// An I/O error, kept as its kind and text (the scan error is kept and repeated).
    Io(io::ErrorKind, String),
    Empty,
    /// The first line, quoted.
    NotMbox(String),
    /// The file ends with the From_ line at this offset.
    EndsWithFromLine(u64),
    /// The message of the From_ line at this offset is too large.
    TooLarge(u64),
}

impl ScanError {
    /// The error for users; `line` caches the line number of an error found by the
    /// lazy scan (reported again each time a message past it is asked for).
    fn into_mbox_error(
        self,
        path: PathBuf,
        backing: &Backing,
        line: &mut Option<u64>,
    ) -> MboxError {
        let (offset, ends) = match self {
            ScanError::Io(kind, text) => {
                return MboxError::Io {
                    path,
                    source: io::Error::new(kind, text),
                };
            }
            ScanError::Empty => return MboxError::Empty { path },
            ScanError::NotMbox(text) => {
                return MboxError::NotMbox {
                    path,
                    line: 1,
                    text,
                };
            }
            ScanError::EndsWithFromLine(offset) => (offset, true),
            ScanError::TooLarge(offset) => (offset, false),
        };
        let found = match *line {
            Some(line) => Ok(line),
            None => line_at(backing, offset).inspect(|&found| *line = Some(found)),
        };
        match found {
            Ok(line) if ends => MboxError::EndsWithFromLine { path, line },
            Ok(line) => MboxError::TooLarge { path, line },
            Err(source) => MboxError::Io { path, source },
        }
    }
}

/// The 1-based number of the line starting at `offset` (only for error messages: it
/// reads everything before).
fn line_at(backing: &Backing, offset: u64) -> io::Result<u64> {
    let mut line = 1;
    let mut pos = 0;
    let mut buf = vec![0; SCAN_WINDOW];
    while pos < offset {
        let len = (offset - pos).min(SCAN_WINDOW as u64) as usize;
        backing.read_exact_at(&mut buf[..len], pos)?;
        line += memchr::memchr_iter(b'\n', &buf[..len]).count() as u64;
        pos += len as u64;
    }
    Ok(line)
}

/// A bounded read window over the file during the scan.
struct Window<R> {
    reader: R,
    buf: Vec<u8>,
    start: usize,
    end: usize,
    /// File offset of `buf[start]`.
    offset: u64,
    eof: bool,
}

impl<R: Read> Window<R> {
    fn data(&self) -> &[u8] {
        &self.buf[self.start..self.end]
    }

    fn consume(&mut self, n: usize) {
        self.start += n;
        self.offset += n as u64;
    }

    /// Makes at least `want` bytes available (fewer only at the end of the file).
    fn ensure(&mut self, want: usize) -> io::Result<()> {
        if self.end - self.start >= want || self.eof {
            return Ok(());
        }
        self.buf.copy_within(self.start..self.end, 0);
        self.end -= self.start;
        self.start = 0;
        while self.end < want && !self.eof {
            match self.reader.read(&mut self.buf[self.end..]) {
                Ok(0) => self.eof = true,
                Ok(n) => self.end += n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }
}

/// What separates messages, less the From_ line's date.
const SEPARATOR: &[u8] = b"\nFrom ";

/// The scan: a bounded window moving front to back, looking only at lines that start
/// with `From `.
struct Scanner {
    window: Window<BackingReader>,
    separator: memchr::memmem::Finder<'static>,
    /// The last From_ line: where it starts and where its message's text starts.
    last: Option<(u64, u64)>,
    at_line_start: bool,
}

/// What the scan found next.
enum Step {
    /// A From_ line at this offset.
    Found(u64),
    /// The end of the file, at this offset.
    End(u64),
}

impl Scanner {
    fn next(&mut self) -> Result<Step, ScanError> {
        let window = &mut self.window;
        loop {
            window
                .ensure(MAX_FROM_LINE + 1)
                .map_err(|e| ScanError::Io(e.kind(), e.to_string()))?;
            let data = window.data();
            if data.is_empty() {
                break;
            }
            if self.at_line_start {
                if let Some((_, len)) = from_line_at(data, window.eof) {
                    let from = window.offset;
                    self.last = Some((from, from + len as u64));
                    window.consume(len);
                    return Ok(Step::Found(from));
                }
                if self.last.is_none() {
                    let shown = &data[..data.len().min(QUOTE_MAX)];
                    let shown = match memchr::memchr(b'\n', shown) {
                        Some(lf) => &shown[..lf],
                        None => shown,
                    };
                    let shown = shown.strip_suffix(b"\r").unwrap_or(shown);
                    return Err(ScanError::NotMbox(
                        String::from_utf8_lossy(shown).into_owned(),
                    ));
                }
            }
            match self.separator.find(data) {
                Some(lf) => {
                    window.consume(lf + 1);
                    self.at_line_start = true;
                }
                None => {
                    // Keep what could be the start of a separator cut by the window.
                    let keep = if window.eof { 0 } else { SEPARATOR.len() - 1 };
                    window.consume(data.len() - keep.min(data.len()));
                    self.at_line_start = false;
                    if window.eof {
                        break;
                    }
                }
            }
            if let Some((from, text)) = self.last
                && window.offset - text > MAX_MESSAGE_SIZE
            {
                return Err(ScanError::TooLarge(from));
            }
        }
        match self.last {
            None => Err(ScanError::Empty),
            Some((from, text)) if text == window.offset => Err(ScanError::EndsWithFromLine(from)),
            Some(_) => Ok(Step::End(window.offset)),
        }
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
    fn offsets_widen_past_4_gib() {
        let mut offsets = Offsets::Narrow(Vec::new());
        offsets.push(7);
        offsets.push(u64::from(u32::MAX));
        assert!(matches!(offsets, Offsets::Narrow(_)));
        offsets.push(1 << 33);
        assert!(matches!(offsets, Offsets::Wide(_)));
        assert_eq!(
            (0..3).map(|i| offsets.get(i)).collect::<Vec<_>>(),
            [7, u64::from(u32::MAX), 1 << 33]
        );
        assert_eq!(offsets.len(), 3);
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
