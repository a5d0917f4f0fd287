//! Streaming framer: cuts the server byte stream into complete responses.
//!
//! A response is one line, or several when lines end in a literal marker:
//!
//! ```text
//! response-line = *(line-part literal-marker CRLF literal-data) line-part CRLF
//! literal-marker = ["~"] "{" number64 ["+"] "}"   ; RFC 9051 literal, RFC 3516 literal8
//! literal-data   = <exactly number64 octets>
//! ```
//!
//! Memory is bounded: line bytes of one response (literal data excluded) may
//! not exceed [`FramerLimits::max_line`]; a literal above
//! [`FramerLimits::max_literal`] is skipped as it streams past and only its
//! size is kept. Kept literals of one response may total at most `max_line`
//! bytes; later ones are skipped too, so one response never holds more than
//! about twice `max_line`.
//!
//! Errors are per response: the offending response is consumed (literals
//! included, as far as its markers can be read) and the next call starts at
//! the following response, so the stream never loses sync. A bare LF is
//! accepted as a line end.

use bytes::{Buf, Bytes, BytesMut};
use std::fmt;

use super::response::Response;
use super::token::{ParseError, escape, first_line};

/// Bytes of the offending response kept for error messages.
const HEAD_KEEP: usize = 200;
/// Bytes kept from the end of a discarded line, enough to spot a literal marker.
const TAIL_KEEP: usize = 64;

/// Memory limits for one response.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FramerLimits {
    /// Longest response line (all its lines together, literal data excluded).
    pub max_line: usize,
    /// Literals larger than this are skipped; their size is kept.
    pub max_literal: usize,
}

impl Default for FramerLimits {
    fn default() -> Self {
        FramerLimits {
            max_line: 1024 * 1024,
            max_literal: 32 * 1024,
        }
    }
}

/// Where the connection closed inside a response.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Truncation {
    /// Inside a line (no CRLF yet).
    MidLine,
    /// Inside a literal's data.
    MidLiteral {
        /// Announced literal size.
        size: u64,
        /// Bytes of it that did arrive.
        received: u64,
    },
}

impl fmt::Display for Truncation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Truncation::MidLine => f.write_str("mid-line"),
            Truncation::MidLiteral { size, received } => {
                write!(f, "mid-literal ({received} of {size} bytes received)")
            }
        }
    }
}

/// How far an incomplete response got ([`Framer::progress`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Progress {
    /// Wire bytes of the response received so far.
    pub received: u64,
    /// Inside a literal: (announced size, bytes of it received).
    pub literal: Option<(u64, u64)>,
    /// The response is already longer than the line limit (being discarded).
    pub over_limit: bool,
}

impl fmt::Display for Progress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.literal {
            Some((size, got)) => write!(
                f,
                "server announced a {size}-byte literal and sent {got} bytes of it"
            ),
            None if self.over_limit => write!(
                f,
                "server sent {} bytes of a response line without ending it (over the line limit; discarded)",
                self.received
            ),
            None => write!(
                f,
                "server sent {} bytes of a response without ending it",
                self.received
            ),
        }
    }
}

/// A response that could not be framed. The framer has already consumed it.
#[derive(thiserror::Error, Debug, Clone, PartialEq, Eq)]
pub enum FrameError {
    /// A response line exceeded [`FramerLimits::max_line`]; it was discarded.
    #[error("response line longer than {limit} bytes ({len} bytes discarded): {}", escape(.head))]
    LineTooLong {
        /// The configured limit.
        limit: usize,
        /// Wire bytes discarded (the whole response).
        len: u64,
        /// First bytes of the response.
        head: Vec<u8>,
    },
    /// The stream ended inside a response.
    #[error("connection closed {what} in response: {}", escape(.head))]
    Truncated {
        /// Where it ended.
        what: Truncation,
        /// First bytes of the incomplete response.
        head: Vec<u8>,
    },
    /// A literal size does not fit in 64 bits; the line was treated as the
    /// end of the response.
    #[error("literal size out of range in response: {}", escape(.line))]
    BadLiteral {
        /// First bytes of the response.
        line: Vec<u8>,
    },
}

/// One complete server response: its line(s) plus kept literal bytes.
/// Skipped literals leave their marker (`{n}` CRLF) but no data.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RawResponse {
    data: Bytes,
    /// (offset in `data` where the literal data would start, size).
    skipped: Vec<(usize, u64)>,
    wire_len: u64,
}

impl RawResponse {
    /// Wraps one complete response (all literals present).
    pub fn from_bytes(data: impl Into<Bytes>) -> Self {
        let data = data.into();
        let wire_len = data.len() as u64;
        RawResponse {
            data,
            skipped: Vec::new(),
            wire_len,
        }
    }

    /// Wire bytes as kept (skipped literal data missing).
    pub fn bytes(&self) -> &[u8] {
        &self.data
    }

    /// The kept bytes, shareable without copying.
    pub fn to_bytes(&self) -> Bytes {
        self.data.clone()
    }

    /// The first line without its line ending.
    pub fn first_line(&self) -> &[u8] {
        first_line(&self.data)
    }

    /// Parses into typed views borrowing from `self`.
    pub fn parse(&self) -> Result<Response<'_>, ParseError> {
        super::response::parse_with_skipped(&self.data, &self.skipped)
    }

    /// Wire size, skipped literal bytes included.
    pub fn len(&self) -> usize {
        usize::try_from(self.wire_len).unwrap_or(usize::MAX)
    }

    /// Never true for a framed response (it has at least a line ending).
    pub fn is_empty(&self) -> bool {
        self.wire_len == 0
    }

    /// Skipped literals as (offset in [`bytes`](Self::bytes), size).
    pub fn skipped_literals(&self) -> &[(usize, u64)] {
        &self.skipped
    }

    /// The tag of a tagged response, without a full parse (still available
    /// when [`parse`](Self::parse) fails, so commands can be completed).
    pub fn tag(&self) -> Option<&[u8]> {
        let line = self.first_line();
        let end = memchr::memchr(b' ', line).unwrap_or(line.len());
        let tag = line.get(..end)?;
        match tag.first() {
            None | Some(b'*' | b'+') => None,
            Some(_) => Some(tag),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// Reading a line; `Framer::scan` says how far it has been searched.
    Line,
    /// Inside literal data.
    Literal {
        size: u64,
        remaining: u64,
        keep: bool,
    },
}

/// Discarding an over-long response; only its head and size are kept.
#[derive(Debug)]
struct Discard {
    head: Vec<u8>,
    len: u64,
    /// Last bytes of the current line, to find a literal marker at its end.
    tail: Vec<u8>,
}

/// Streaming framer; keeps state between calls (e.g. inside a skipped literal).
#[derive(Debug)]
pub struct Framer {
    limits: FramerLimits,
    state: State,
    /// Start of the current response moved out of the caller's buffer
    /// (only when a literal was skipped in the middle of it).
    pending: BytesMut,
    /// Bytes at the front of `buf` that belong to the current response and
    /// are complete (finished lines and kept literals).
    pos: usize,
    /// `buf[pos..scan]` holds no LF: where to resume searching.
    scan: usize,
    line_bytes: usize,
    kept_literal_bytes: usize,
    skipped_bytes: u64,
    skipped: Vec<(usize, u64)>,
    discard: Option<Discard>,
}

enum Marker {
    None,
    Literal(u64),
    Overflow,
}

/// Looks for `["~"] "{" digits ["+"] "}"` at the end of a line (CR stripped).
fn literal_marker(line: &[u8]) -> Marker {
    let line = line.strip_suffix(b"\r").unwrap_or(line);
    let Some(inner) = line.strip_suffix(b"}") else {
        return Marker::None;
    };
    let Some(open) = memchr::memrchr(b'{', inner) else {
        return Marker::None;
    };
    let digits = inner.get(open + 1..).unwrap_or_default();
    let digits = digits.strip_suffix(b"+").unwrap_or(digits);
    if digits.is_empty() || !digits.iter().all(u8::is_ascii_digit) {
        return Marker::None;
    }
    match super::token::parse_u64(digits) {
        Some(n) => Marker::Literal(n),
        None => Marker::Overflow,
    }
}

fn push_tail(tail: &mut Vec<u8>, bytes: &[u8]) {
    let keep = bytes.len().min(TAIL_KEEP);
    tail.extend_from_slice(bytes.get(bytes.len() - keep..).unwrap_or_default());
    let excess = tail.len().saturating_sub(TAIL_KEEP);
    tail.drain(..excess);
}

impl Framer {
    /// A framer with the given limits.
    pub fn new(limits: FramerLimits) -> Self {
        Framer {
            limits,
            state: State::Line,
            pending: BytesMut::new(),
            pos: 0,
            scan: 0,
            line_bytes: 0,
            kept_literal_bytes: 0,
            skipped_bytes: 0,
            skipped: Vec::new(),
            discard: None,
        }
    }

    /// The limits in use.
    pub fn limits(&self) -> FramerLimits {
        self.limits
    }

    /// True when no response is partially read.
    pub fn is_idle(&self) -> bool {
        self.state == State::Line
            && self.pos == 0
            && self.scan == 0
            && self.pending.is_empty()
            && self.discard.is_none()
    }

    /// What has arrived of a response that is not complete yet (`buf`: the caller's
    /// buffer), or `None` between responses: for errors when the server stops (or
    /// keeps going) in the middle of one.
    pub fn progress(&self, buf: &[u8]) -> Option<Progress> {
        if self.is_idle() && buf.is_empty() {
            return None;
        }
        let mut received = self.pending.len() as u64 + buf.len() as u64;
        let literal = match self.state {
            State::Literal {
                size,
                remaining,
                keep: false,
            } => {
                let got = size - remaining;
                // Earlier skipped literals arrived whole; this one in part.
                received += self.skipped_bytes.saturating_sub(remaining);
                Some((size, got))
            }
            State::Literal {
                size, keep: true, ..
            } => {
                received += self.skipped_bytes;
                let got = (buf.len().saturating_sub(self.pos) as u64).min(size);
                Some((size, got))
            }
            State::Line => {
                received += self.skipped_bytes;
                None
            }
        };
        if let Some(d) = &self.discard {
            received += d.len;
        }
        Some(Progress {
            received,
            literal,
            over_limit: self.discard.is_some(),
        })
    }

    fn reset(&mut self) {
        self.state = State::Line;
        self.pos = 0;
        self.scan = 0;
        self.line_bytes = 0;
        self.kept_literal_bytes = 0;
        self.skipped_bytes = 0;
        self.skipped.clear();
        self.discard = None;
        self.pending.clear();
    }

    /// Takes `buf[..end]` (plus pending bytes) as the finished response.
    fn take(&mut self, buf: &mut BytesMut, end: usize) -> RawResponse {
        let mut data = buf.split_to(end.min(buf.len()));
        if !self.pending.is_empty() {
            let mut head = std::mem::take(&mut self.pending);
            head.unsplit(data);
            data = head;
        }
        let wire_len = data.len() as u64 + self.skipped_bytes;
        let skipped = std::mem::take(&mut self.skipped);
        self.reset();
        RawResponse {
            data: data.freeze(),
            skipped,
            wire_len,
        }
    }

    /// First bytes of the current response, for error messages.
    fn head(&self, buf: &[u8]) -> Vec<u8> {
        if let Some(d) = &self.discard {
            return d.head.clone();
        }
        let mut head: Vec<u8> = self.pending.iter().take(HEAD_KEEP).copied().collect();
        let more = HEAD_KEEP - head.len();
        head.extend(buf.iter().take(more));
        head
    }

    /// Switches to discarding: drops the current response up to `upto` in `buf`.
    fn start_discard(&mut self, buf: &mut BytesMut, upto: usize) {
        let upto = upto.min(buf.len());
        let head = self.head(buf);
        let mut tail = Vec::with_capacity(TAIL_KEEP);
        push_tail(
            &mut tail,
            buf.get(self.pos.min(upto)..upto).unwrap_or_default(),
        );
        let len = self.pending.len() as u64 + upto as u64 + self.skipped_bytes;
        buf.advance(upto);
        self.reset();
        self.discard = Some(Discard { head, len, tail });
    }

    /// Takes one complete response out of `buf`, consuming its bytes.
    /// `Ok(None)`: more input needed (everything so far is remembered, the
    /// buffer is not rescanned). After `Err`, the offending response has
    /// been consumed and the next call continues with the following one.
    pub fn next_response(&mut self, buf: &mut BytesMut) -> Result<Option<RawResponse>, FrameError> {
        // A caller that shrank the buffer under us: start over rather than panic.
        if self.pos > buf.len() || self.scan > buf.len() {
            self.reset();
        }
        loop {
            match self.state {
                State::Literal {
                    remaining,
                    keep: true,
                    ..
                } => {
                    let avail = (buf.len() - self.pos) as u64;
                    if avail < remaining {
                        return Ok(None);
                    }
                    // remaining <= avail <= usize::MAX here
                    self.pos += remaining as usize;
                    self.scan = self.pos;
                    self.state = State::Line;
                }
                State::Literal {
                    size,
                    remaining,
                    keep: false,
                } => {
                    // Everything before the literal was moved out: pos == 0.
                    let n = remaining.min(buf.len() as u64);
                    buf.advance(n as usize);
                    if let Some(d) = &mut self.discard {
                        d.len += n;
                    }
                    let remaining = remaining - n;
                    if remaining > 0 {
                        self.state = State::Literal {
                            size,
                            remaining,
                            keep: false,
                        };
                        return Ok(None);
                    }
                    self.state = State::Line;
                    self.pos = 0;
                    self.scan = 0;
                }
                State::Line if self.discard.is_some() => {
                    if let Some(result) = self.discard_line(buf) {
                        return result;
                    }
                }
                State::Line => {
                    let from = self.scan;
                    let Some(i) = memchr::memchr(b'\n', buf.get(from..).unwrap_or_default()) else {
                        self.scan = buf.len();
                        if self.line_bytes + (buf.len() - self.pos) > self.limits.max_line {
                            self.start_discard(buf, buf.len());
                            continue;
                        }
                        return Ok(None);
                    };
                    let lf = from + i;
                    let seg_len = lf + 1 - self.pos;
                    if self.line_bytes + seg_len > self.limits.max_line {
                        self.start_discard(buf, lf);
                        continue;
                    }
                    self.line_bytes += seg_len;
                    match literal_marker(buf.get(self.pos..lf).unwrap_or_default()) {
                        Marker::None => return Ok(Some(self.take(buf, lf + 1))),
                        Marker::Overflow => {
                            let resp = self.take(buf, lf + 1);
                            let line = resp.bytes().iter().take(HEAD_KEEP).copied().collect();
                            return Err(FrameError::BadLiteral { line });
                        }
                        Marker::Literal(size) => {
                            self.pos = lf + 1;
                            self.scan = self.pos;
                            let keep = usize::try_from(size).is_ok_and(|n| {
                                n <= self.limits.max_literal
                                    && self.kept_literal_bytes + n <= self.limits.max_line
                            });
                            if keep {
                                self.kept_literal_bytes += size as usize;
                            } else {
                                // Move the response so far aside; the literal
                                // data is then dropped from the front of buf.
                                let done = buf.split_to(self.pos);
                                self.pending.unsplit(done);
                                self.pos = 0;
                                self.scan = 0;
                                self.skipped.push((self.pending.len(), size));
                                self.skipped_bytes = self.skipped_bytes.saturating_add(size);
                            }
                            self.state = State::Literal {
                                size,
                                remaining: size,
                                keep,
                            };
                        }
                    }
                }
            }
        }
    }

    /// One step of discarding a line. `None`: continue the main loop.
    fn discard_line(
        &mut self,
        buf: &mut BytesMut,
    ) -> Option<Result<Option<RawResponse>, FrameError>> {
        let d = self.discard.as_mut()?;
        match memchr::memchr(b'\n', buf) {
            None => {
                push_tail(&mut d.tail, buf);
                d.len += buf.len() as u64;
                buf.clear();
                Some(Ok(None))
            }
            Some(lf) => {
                push_tail(&mut d.tail, buf.get(..lf).unwrap_or_default());
                d.len += lf as u64 + 1;
                buf.advance(lf + 1);
                // The line may end in a literal marker: skip its data too.
                let marker = literal_marker(&d.tail);
                d.tail.clear();
                match marker {
                    Marker::Literal(size) => {
                        self.state = State::Literal {
                            size,
                            remaining: size,
                            keep: false,
                        };
                        None
                    }
                    Marker::None | Marker::Overflow => {
                        let d = self.discard.take()?;
                        self.reset();
                        Some(Err(FrameError::LineTooLong {
                            limit: self.limits.max_line,
                            len: d.len,
                            head: d.head,
                        }))
                    }
                }
            }
        }
    }

    /// Call at EOF, after [`next_response`](Self::next_response) returned
    /// `Ok(None)`. `Ok(())` if nothing was pending; otherwise
    /// [`FrameError::Truncated`] saying whether the stream ended mid-line
    /// or mid-literal. Clears `buf` and the framer state either way.
    pub fn finish(&mut self, buf: &mut BytesMut) -> Result<(), FrameError> {
        let result = match self.state {
            State::Literal {
                size,
                remaining,
                keep,
            } => {
                let avail = if keep {
                    buf.len().saturating_sub(self.pos) as u64
                } else {
                    0
                };
                Err(FrameError::Truncated {
                    what: Truncation::MidLiteral {
                        size,
                        received: size - remaining + avail.min(remaining),
                    },
                    head: self.head(buf),
                })
            }
            State::Line if self.is_idle() && buf.is_empty() => Ok(()),
            State::Line => Err(FrameError::Truncated {
                what: Truncation::MidLine,
                head: self.head(buf),
            }),
        };
        self.reset();
        buf.clear();
        result
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn small() -> FramerLimits {
        FramerLimits {
            max_line: 64,
            max_literal: 8,
        }
    }

    #[test]
    fn lines_and_literals() {
        let mut f = Framer::new(FramerLimits::default());
        let mut buf = BytesMut::from(&b"* OK hi\r\n* 1 FETCH (BODY[] {3}\r\nabc)\r\nA1 OK"[..]);
        let r = f.next_response(&mut buf).unwrap().unwrap();
        assert_eq!(r.bytes(), b"* OK hi\r\n");
        let r = f.next_response(&mut buf).unwrap().unwrap();
        assert_eq!(r.bytes(), b"* 1 FETCH (BODY[] {3}\r\nabc)\r\n");
        assert_eq!(r.first_line(), b"* 1 FETCH (BODY[] {3}");
        assert!(f.next_response(&mut buf).unwrap().is_none());
        buf.extend_from_slice(b"\r\n");
        let r = f.next_response(&mut buf).unwrap().unwrap();
        assert_eq!(r.tag(), Some(&b"A1"[..]));
        assert!(buf.is_empty());
        assert!(f.finish(&mut buf).is_ok());
    }

    #[test]
    fn skipped_literal() {
        let mut f = Framer::new(small());
        let mut buf = BytesMut::from(&b"* 1 FETCH (BODY[] {10}\r\n0123"[..]);
        assert!(f.next_response(&mut buf).unwrap().is_none());
        assert!(buf.is_empty());
        buf.extend_from_slice(b"456789 UID 5)\r\n* 2 EXISTS\r\n");
        let r = f.next_response(&mut buf).unwrap().unwrap();
        assert_eq!(r.bytes(), b"* 1 FETCH (BODY[] {10}\r\n UID 5)\r\n");
        assert_eq!(r.len(), r.bytes().len() + 10);
        assert_eq!(r.skipped_literals(), &[(24, 10)]);
        let r = f.next_response(&mut buf).unwrap().unwrap();
        assert_eq!(r.bytes(), b"* 2 EXISTS\r\n");
    }

    #[test]
    fn long_line_discarded_with_literal() {
        let mut f = Framer::new(small());
        let mut line = vec![b'x'; 100];
        line.extend_from_slice(b" {4}\r\nabcd more\r\n* 3 EXISTS\r\n");
        let mut buf = BytesMut::from(&line[..]);
        match f.next_response(&mut buf) {
            Err(FrameError::LineTooLong { len, head, .. }) => {
                assert_eq!(len, 100 + 6 + 4 + 7);
                assert!(head.starts_with(b"xxx"));
            }
            other => panic!("{other:?}"),
        }
        let r = f.next_response(&mut buf).unwrap().unwrap();
        assert_eq!(r.bytes(), b"* 3 EXISTS\r\n");
    }

    #[test]
    fn overflowing_literal_size() {
        let mut f = Framer::new(small());
        let mut buf = BytesMut::from(&b"* X {99999999999999999999999}\r\n* 1 EXISTS\r\n"[..]);
        let e = f.next_response(&mut buf).unwrap_err();
        assert!(matches!(e, FrameError::BadLiteral { .. }));
        assert!(e.to_string().contains("99999"));
        let r = f.next_response(&mut buf).unwrap().unwrap();
        assert_eq!(r.bytes(), b"* 1 EXISTS\r\n");
    }

    #[test]
    fn truncated() {
        let mut f = Framer::new(FramerLimits::default());
        let mut buf = BytesMut::from(&b"* 1 FETCH (BODY[] {10}\r\nabc"[..]);
        assert!(f.next_response(&mut buf).unwrap().is_none());
        let e = f.finish(&mut buf).unwrap_err();
        assert_eq!(
            e,
            FrameError::Truncated {
                what: Truncation::MidLiteral {
                    size: 10,
                    received: 3
                },
                head: b"* 1 FETCH (BODY[] {10}\r\nabc".to_vec()
            }
        );
        assert!(
            e.to_string()
                .contains("mid-literal (3 of 10 bytes received)")
        );
        let mut buf = BytesMut::from(&b"* OK half"[..]);
        assert!(f.next_response(&mut buf).unwrap().is_none());
        assert!(matches!(
            f.finish(&mut buf),
            Err(FrameError::Truncated {
                what: Truncation::MidLine,
                ..
            })
        ));
        assert!(f.finish(&mut buf).is_ok());
    }

    #[test]
    fn markers() {
        assert!(matches!(literal_marker(b"a {5}"), Marker::Literal(5)));
        assert!(matches!(literal_marker(b"a {5+}\r"), Marker::Literal(5)));
        assert!(matches!(literal_marker(b"a ~{5}"), Marker::Literal(5)));
        assert!(matches!(literal_marker(b"a {}"), Marker::None));
        assert!(matches!(literal_marker(b"a {x}"), Marker::None));
        assert!(matches!(literal_marker(b"}"), Marker::None));
    }
}
