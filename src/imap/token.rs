//! Tokenizer: one framed response into a borrowed argument tree.
//!
//! The tree is generic on purpose: typed views ([`super::response`]) pick the
//! parts the engines need, everything else stays an [`Arg`] so unknown
//! responses are never fatal.
//!
//! Grammar covered (RFC 3501 §9, RFC 9051 §9, RFC 3516 for `literal8`):
//!
//! ```text
//! atom            = 1*ATOM-CHAR
//! ATOM-CHAR       = <any CHAR except atom-specials>
//! atom-specials   = "(" / ")" / "{" / SP / CTL / list-wildcards /
//!                   quoted-specials / resp-specials
//! quoted          = DQUOTE *QUOTED-CHAR DQUOTE
//! QUOTED-CHAR     = <any TEXT-CHAR except quoted-specials> /
//!                   "\" quoted-specials
//! literal         = "{" number64 ["+"] "}" CRLF *CHAR8
//! literal8        = "~{" number64 "}" CRLF *OCTET
//! nil             = "NIL"
//! list            = "(" [arg *(SP arg)] ")"
//! ```
//!
//! Leniency: atoms here also accept `%`, `*`, `\`, `]` and 8-bit bytes (flags
//! such as `\*`, sequence sets such as `1:*`, UTF-8 mailbox names), and a
//! `[...]` section may appear inside a FETCH item name
//! (`BODY[HEADER.FIELDS (TO)]<0>`, see [`Cursor::section_atom`]).
//! Runs of spaces count as one separator; trailing spaces are ignored.
//! Lists may follow a list without a space, as multipart BODYSTRUCTUREs do.

use std::borrow::Cow;
use std::fmt;

/// Deepest list nesting accepted; deeper input is a [`ParseError`], never a
/// stack overflow.
pub const MAX_DEPTH: usize = 100;

/// Longest excerpt of server bytes quoted in error messages.
const ERROR_EXCERPT: usize = 200;

/// One argument of a response, borrowed from the response bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Arg<'a> {
    /// Bare atom (also numbers, flags, sequence sets, `BODY[...]` names).
    Atom(&'a [u8]),
    /// Quoted string, unescaped; borrowed when it had no escapes.
    Quoted(Cow<'a, [u8]>),
    /// Literal (`{n}` or binary `~{n}`) content.
    Literal(&'a [u8]),
    /// A literal larger than the framer's cap: its content was dropped.
    SkippedLiteral {
        /// Size announced by the server (bytes that were skipped).
        size: u64,
    },
    /// `NIL` (any case).
    Nil,
    /// Parenthesised list.
    List(Vec<Arg<'a>>),
}

impl<'a> Arg<'a> {
    /// The atom's bytes, if this is an atom.
    pub fn as_atom(&self) -> Option<&'a [u8]> {
        match self {
            Arg::Atom(a) => Some(a),
            _ => None,
        }
    }

    /// String content of an atom, quoted string or literal.
    pub fn as_str_bytes(&self) -> Option<&[u8]> {
        match self {
            Arg::Atom(a) | Arg::Literal(a) => Some(a),
            Arg::Quoted(q) => Some(q),
            _ => None,
        }
    }

    /// `nstring` view: `Some(None)` for NIL, `Some(Some(..))` for a string.
    pub fn as_nstring(&self) -> Option<Option<&[u8]>> {
        match self {
            Arg::Nil => Some(None),
            Arg::Quoted(q) => Some(Some(q)),
            Arg::Literal(l) => Some(Some(l)),
            _ => None,
        }
    }

    /// Strict unsigned 32-bit number (an atom of digits only).
    pub fn as_number(&self) -> Option<u32> {
        self.as_atom().and_then(parse_u32)
    }

    /// Strict unsigned 64-bit number (an atom of digits only).
    pub fn as_number64(&self) -> Option<u64> {
        self.as_atom().and_then(parse_u64)
    }

    /// The items, if this is a list.
    pub fn as_list(&self) -> Option<&[Arg<'a>]> {
        match self {
            Arg::List(l) => Some(l),
            _ => None,
        }
    }

    /// True for `NIL`.
    pub fn is_nil(&self) -> bool {
        matches!(self, Arg::Nil)
    }

    /// Size of a literal, kept or skipped.
    pub fn literal_size(&self) -> Option<u64> {
        match self {
            Arg::Literal(l) => Some(l.len() as u64),
            Arg::SkippedLiteral { size } => Some(*size),
            _ => None,
        }
    }
}

/// Strict decimal u64: digits only, no sign, overflow is `None`.
pub fn parse_u64(s: &[u8]) -> Option<u64> {
    if s.is_empty() {
        return None;
    }
    s.iter().try_fold(0u64, |n, &b| {
        if b.is_ascii_digit() {
            n.checked_mul(10)?.checked_add(u64::from(b - b'0'))
        } else {
            None
        }
    })
}

/// Strict decimal u32: digits only, no sign, overflow is `None`.
pub fn parse_u32(s: &[u8]) -> Option<u32> {
    parse_u64(s).and_then(|n| u32::try_from(n).ok())
}

/// Why a response did not parse.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ParseErrorKind {
    /// Something else was found where this was required.
    Expected(&'static str),
    /// A number does not fit its type.
    NumberOverflow,
    /// Lists nested deeper than [`MAX_DEPTH`].
    TooDeep,
    /// A quoted string ran into the end of the line.
    UnterminatedQuoted,
    /// A literal marker is malformed or its content is missing.
    BadLiteral,
    /// Bytes after a complete response.
    TrailingData,
    /// A response code (`[...]`) is malformed.
    BadCode,
    /// A sequence set is malformed.
    BadSeqSet,
    /// Nothing to parse.
    Empty,
}

impl fmt::Display for ParseErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ParseErrorKind::Expected(what) => write!(f, "expected {what}"),
            ParseErrorKind::NumberOverflow => f.write_str("number too large"),
            ParseErrorKind::TooDeep => write!(f, "lists nested deeper than {MAX_DEPTH}"),
            ParseErrorKind::UnterminatedQuoted => f.write_str("unterminated quoted string"),
            ParseErrorKind::BadLiteral => f.write_str("malformed or incomplete literal"),
            ParseErrorKind::TrailingData => f.write_str("unexpected data after response"),
            ParseErrorKind::BadCode => f.write_str("malformed response code"),
            ParseErrorKind::BadSeqSet => f.write_str("malformed sequence set"),
            ParseErrorKind::Empty => f.write_str("empty response"),
        }
    }
}

/// A response that did not parse. The framer is unaffected: the next
/// response parses independently.
#[derive(thiserror::Error, Debug, Clone, PartialEq, Eq)]
#[error("{reason} at byte {offset} of: {line}")]
pub struct ParseError {
    /// What went wrong.
    pub reason: ParseErrorKind,
    /// The response's first line, lossy and escaped, at most ~200 bytes.
    pub line: String,
    /// Byte offset into the response where parsing stopped.
    pub offset: usize,
}

/// Escaped, truncated rendering of server bytes for error messages.
pub(crate) fn escape(bytes: &[u8]) -> String {
    let shown = bytes.get(..ERROR_EXCERPT).unwrap_or(bytes);
    let mut s = shown.escape_ascii().to_string();
    if shown.len() < bytes.len() {
        s.push_str(&format!("... ({} bytes)", bytes.len()));
    }
    s
}

/// The first line of `data`, without its line ending.
pub(crate) fn first_line(data: &[u8]) -> &[u8] {
    let line = match memchr::memchr(b'\n', data) {
        Some(i) => data.get(..i).unwrap_or(data),
        None => data,
    };
    line.strip_suffix(b"\r").unwrap_or(line)
}

/// Atom bytes, as a table: this test runs once per byte of every atom.
static ATOM_CHARS: [bool; 256] = {
    let mut t = [false; 256];
    let mut b = 0;
    while b < 256 {
        let c = b as u8;
        t[b] = c >= 0x80 || (c > b' ' && c < 0x7f && !matches!(c, b'(' | b')' | b'{' | b'"'));
        b += 1;
    }
    t
};

pub(crate) fn is_atom_char(b: u8) -> bool {
    ATOM_CHARS[usize::from(b)]
}

/// Reading position inside one response's bytes.
///
/// `skipped` lists `(offset, size)` of literals the framer dropped; the
/// offset is where their content would have started in `data`.
#[derive(Debug, Clone)]
pub struct Cursor<'a> {
    data: &'a [u8],
    pos: usize,
    skipped: &'a [(usize, u64)],
    /// Items of the lists being read, innermost last: each finished list is
    /// copied out in one exact-size allocation instead of growing a Vec.
    stack: Vec<Arg<'a>>,
}

type Result<T> = std::result::Result<T, ParseError>;

impl<'a> Cursor<'a> {
    /// A cursor at the start of `data`.
    pub fn new(data: &'a [u8], skipped: &'a [(usize, u64)]) -> Self {
        Cursor {
            data,
            pos: 0,
            skipped,
            stack: Vec::new(),
        }
    }

    /// Current byte offset.
    pub fn pos(&self) -> usize {
        self.pos
    }

    /// Next byte, if any.
    pub fn peek(&self) -> Option<u8> {
        self.data.get(self.pos).copied()
    }

    fn peek_at(&self, off: usize) -> Option<u8> {
        self.data.get(self.pos.saturating_add(off)).copied()
    }

    fn rest(&self) -> &'a [u8] {
        self.data.get(self.pos..).unwrap_or_default()
    }

    /// Moves to `pos` (clamped to the end of the data).
    pub fn set_pos(&mut self, pos: usize) {
        self.pos = pos.min(self.data.len());
    }

    /// `data[from..to]`, empty when out of range.
    pub fn slice(&self, from: usize, to: usize) -> &'a [u8] {
        self.data.get(from..to).unwrap_or_default()
    }

    /// An error at the current position, carrying the first line.
    #[cold]
    #[inline(never)]
    pub fn error(&self, reason: ParseErrorKind) -> ParseError {
        ParseError {
            reason,
            line: escape(first_line(self.data)),
            offset: self.pos,
        }
    }

    fn expected(&self, what: &'static str) -> ParseError {
        self.error(ParseErrorKind::Expected(what))
    }

    /// Consumes `b` if it is next.
    pub fn eat(&mut self, b: u8) -> bool {
        if self.peek() == Some(b) {
            self.pos += 1;
            true
        } else {
            false
        }
    }

    /// Consumes `b` or fails with "expected `what`".
    pub fn expect(&mut self, b: u8, what: &'static str) -> Result<()> {
        if self.eat(b) {
            Ok(())
        } else {
            Err(self.expected(what))
        }
    }

    /// Skips spaces; true if there were any.
    pub fn skip_spaces(&mut self) -> bool {
        let start = self.pos;
        while self.peek() == Some(b' ') {
            self.pos += 1;
        }
        self.pos != start
    }

    /// One or more spaces.
    pub fn sp(&mut self) -> Result<()> {
        if self.skip_spaces() {
            Ok(())
        } else {
            Err(self.expected("SP"))
        }
    }

    /// Skips spaces; true at CR, LF or the end of the data.
    pub fn at_eol(&mut self) -> bool {
        self.skip_spaces();
        matches!(self.peek(), None | Some(b'\r' | b'\n'))
    }

    /// Requires the end of the response (trailing spaces allowed).
    pub fn end(&mut self) -> Result<()> {
        if self.at_eol() {
            Ok(())
        } else {
            Err(self.error(ParseErrorKind::TrailingData))
        }
    }

    /// The rest of the current line, without CRLF (`text` in resp-text).
    pub fn rest_of_line(&mut self) -> &'a [u8] {
        let rest = self.rest();
        let end = memchr::memchr(b'\n', rest).unwrap_or(rest.len());
        self.pos += end;
        let line = rest.get(..end).unwrap_or(rest);
        line.strip_suffix(b"\r").unwrap_or(line)
    }

    /// `atom` (in the ASTRING-CHAR sense: `]` and `[` included).
    pub fn atom(&mut self) -> Result<&'a [u8]> {
        let start = self.pos;
        let rest = self.rest();
        let len = rest
            .iter()
            .position(|&b| !is_atom_char(b))
            .unwrap_or(rest.len());
        self.pos += len;
        if len == 0 {
            Err(self.expected("atom"))
        } else {
            Ok(self.slice(start, self.pos))
        }
    }

    /// A FETCH item name: an atom whose `[...]` section may hold spaces and
    /// parentheses, with any `<origin>` after it
    /// (`BODY[HEADER.FIELDS (TO FROM)]<0>`).
    pub fn section_atom(&mut self) -> Result<&'a [u8]> {
        let start = self.pos;
        loop {
            let rest = self.rest();
            self.pos += rest
                .iter()
                .position(|&b| b == b'[' || !is_atom_char(b))
                .unwrap_or(rest.len());
            if self.peek() != Some(b'[') {
                break;
            }
            // A section runs to its "]"; a lone "[" is an ordinary char.
            let open = self.pos;
            self.pos += 1;
            if self.skip_section().is_err() {
                self.pos = open + 1;
            }
        }
        if self.pos == start {
            Err(self.expected("atom"))
        } else {
            Ok(self.slice(start, self.pos))
        }
    }

    /// Skips a section's content up to and including `]`. Header field
    /// names in it may be quoted strings or literals (`header-fld-name =
    /// astring`).
    fn skip_section(&mut self) -> Result<()> {
        loop {
            match self.peek() {
                Some(b']') => {
                    self.pos += 1;
                    return Ok(());
                }
                Some(b'"') => {
                    self.quoted_raw()?;
                }
                _ if self.at_literal() => {
                    self.literal()?;
                }
                Some(b'\r' | b'\n') | None => return Err(self.expected("]")),
                Some(_) => self.pos += 1,
            }
        }
    }

    /// `number64`: strict decimal, overflow is an error.
    pub fn number64(&mut self) -> Result<u64> {
        let start = self.pos;
        let mut n: u64 = 0;
        while let Some(b @ b'0'..=b'9') = self.peek() {
            n = n
                .checked_mul(10)
                .and_then(|n| n.checked_add(u64::from(b - b'0')))
                .ok_or_else(|| self.error(ParseErrorKind::NumberOverflow))?;
            self.pos += 1;
        }
        // "12abc" is not a number: reject digits running into an atom.
        if self.pos == start
            || self
                .peek()
                .is_some_and(|b| is_atom_char(b) && !matches!(b, b']' | b'}' | b'+'))
        {
            self.pos = start;
            return Err(self.expected("number"));
        }
        Ok(n)
    }

    /// `number`: strict decimal u32.
    pub fn number(&mut self) -> Result<u32> {
        let start = self.pos;
        let n = self.number64()?;
        u32::try_from(n).map_err(|_| {
            self.pos = start;
            self.error(ParseErrorKind::NumberOverflow)
        })
    }

    /// Finds the closing quote of a quoted string starting at `self.pos`
    /// (just after the opening quote). Returns (end index, saw escapes).
    fn scan_quoted(&self) -> Result<(usize, bool)> {
        let rest = self.rest();
        let mut i = 0;
        let mut escaped = false;
        loop {
            let tail = rest.get(i..).unwrap_or_default();
            match memchr::memchr3(b'"', b'\\', b'\n', tail) {
                Some(j) => {
                    let at = i + j;
                    match rest.get(at) {
                        Some(b'"') => return Ok((self.pos + at, escaped)),
                        Some(b'\\') => {
                            escaped = true;
                            match rest.get(at + 1) {
                                Some(b'\n' | b'\r') | None => break,
                                Some(_) => i = at + 2,
                            }
                        }
                        _ => break,
                    }
                }
                None => break,
            }
        }
        Err(self.error(ParseErrorKind::UnterminatedQuoted))
    }

    /// `quoted`, unescaped; borrowed unless it contained escapes.
    pub fn quoted(&mut self) -> Result<Cow<'a, [u8]>> {
        self.expect(b'"', "quoted string")?;
        let (end, escaped) = self.scan_quoted()?;
        let raw = self.slice(self.pos, end);
        self.pos = end + 1;
        if !escaped {
            return Ok(Cow::Borrowed(raw));
        }
        let mut out = Vec::with_capacity(raw.len());
        let mut it = raw.iter();
        while let Some(&b) = it.next() {
            if b == b'\\' {
                // Only \" and \\ are defined; keep other pairs verbatim.
                match it.next() {
                    Some(&c @ (b'"' | b'\\')) => out.push(c),
                    Some(&c) => out.extend_from_slice(&[b'\\', c]),
                    None => out.push(b),
                }
            } else {
                out.push(b);
            }
        }
        Ok(Cow::Owned(out))
    }

    /// `quoted` without unescaping (for tags and dates, which never escape).
    pub fn quoted_raw(&mut self) -> Result<&'a [u8]> {
        self.expect(b'"', "quoted string")?;
        let (end, _) = self.scan_quoted()?;
        let raw = self.slice(self.pos, end);
        self.pos = end + 1;
        Ok(raw)
    }

    /// `literal` / `literal8`. A literal the framer skipped becomes
    /// [`Arg::SkippedLiteral`].
    pub fn literal(&mut self) -> Result<Arg<'a>> {
        self.eat(b'~');
        self.expect(b'{', "literal")?;
        let size = self
            .number64()
            .map_err(|_| self.error(ParseErrorKind::BadLiteral))?;
        self.eat(b'+');
        self.expect(b'}', "} of literal")?;
        self.eat(b'\r');
        self.expect(b'\n', "CRLF after literal size")?;
        let start = self.pos;
        if let Ok(i) = self.skipped.binary_search_by_key(&start, |&(off, _)| off)
            && let Some(&(_, skipped)) = self.skipped.get(i)
            && skipped == size
        {
            return Ok(Arg::SkippedLiteral { size });
        }
        let end = usize::try_from(size)
            .ok()
            .and_then(|n| start.checked_add(n))
            .filter(|&end| end <= self.data.len())
            .ok_or_else(|| self.error(ParseErrorKind::BadLiteral))?;
        self.pos = end;
        Ok(Arg::Literal(self.slice(start, end)))
    }

    fn at_literal(&self) -> bool {
        match self.peek() {
            Some(b'{') => true,
            Some(b'~') => self.peek_at(1) == Some(b'{'),
            _ => false,
        }
    }

    /// Any argument: list, quoted, literal, NIL or atom.
    pub fn arg(&mut self) -> Result<Arg<'a>> {
        self.arg_at(0)
    }

    fn arg_at(&mut self, depth: usize) -> Result<Arg<'a>> {
        match self.peek() {
            Some(b'(') => {
                if depth >= MAX_DEPTH {
                    return Err(self.error(ParseErrorKind::TooDeep));
                }
                self.pos += 1;
                self.list_body(depth + 1).map(Arg::List)
            }
            Some(b'"') => self.quoted().map(Arg::Quoted),
            _ if self.at_literal() => self.literal(),
            _ => {
                let a = self.atom()?;
                Ok(if a.eq_ignore_ascii_case(b"NIL") {
                    Arg::Nil
                } else {
                    Arg::Atom(a)
                })
            }
        }
    }

    /// Items after an opening parenthesis, up to and including `)`.
    fn list_body(&mut self, depth: usize) -> Result<Vec<Arg<'a>>> {
        self.skip_spaces();
        if self.eat(b')') {
            return Ok(Vec::new());
        }
        let base = self.stack.len();
        let result = self.list_items(depth);
        let items = self.stack.drain(base..).collect();
        result.map(|()| items)
    }

    fn list_items(&mut self, depth: usize) -> Result<()> {
        loop {
            let item = self.arg_at(depth)?;
            let was_list = matches!(item, Arg::List(_));
            self.stack.push(item);
            let spaced = self.skip_spaces();
            if self.eat(b')') {
                return Ok(());
            }
            // body-type-mpart = 1*body SP media-subtype: bodies are adjacent.
            if !spaced && !was_list {
                return Err(self.expected("SP or )"));
            }
        }
    }

    /// `astring`: atom, quoted or literal (an atom `NIL` stays an atom).
    pub fn astring(&mut self) -> Result<Arg<'a>> {
        match self.peek() {
            Some(b'"') => self.quoted().map(Arg::Quoted),
            _ if self.at_literal() => self.literal(),
            _ => self.atom().map(Arg::Atom),
        }
    }

    /// String bytes without unescaping: atom, quoted or kept literal.
    pub fn string_raw(&mut self) -> Result<&'a [u8]> {
        match self.peek() {
            Some(b'"') => self.quoted_raw(),
            _ if self.at_literal() => match self.literal()? {
                Arg::Literal(l) => Ok(l),
                _ => Err(self.error(ParseErrorKind::BadLiteral)),
            },
            _ => self.atom(),
        }
    }

    /// `"(" [atom *(SP atom)] ")"`, e.g. flag lists.
    pub fn atom_list(&mut self) -> Result<Vec<&'a [u8]>> {
        self.expect(b'(', "(")?;
        let mut atoms = Vec::new();
        loop {
            self.skip_spaces();
            if self.eat(b')') {
                return Ok(atoms);
            }
            if !atoms.is_empty() && self.data.get(self.pos.wrapping_sub(1)) != Some(&b' ') {
                return Err(self.expected("SP or )"));
            }
            atoms.push(self.atom()?);
        }
    }

    /// Space-separated atoms up to the end of the line.
    pub fn atoms_to_eol(&mut self) -> Result<Vec<&'a [u8]>> {
        let mut atoms = Vec::new();
        while !self.at_eol() {
            atoms.push(self.atom()?);
        }
        Ok(atoms)
    }

    /// Arguments up to the end of the response line.
    pub fn args_to_eol(&mut self) -> Result<Vec<Arg<'a>>> {
        let mut args = Vec::new();
        while !self.at_eol() {
            args.push(self.arg()?);
        }
        Ok(args)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn arg(s: &[u8]) -> Result<Arg<'_>> {
        Cursor::new(s, &[]).arg()
    }

    #[test]
    fn atoms_and_nil() {
        assert_eq!(arg(b"FOO").unwrap(), Arg::Atom(b"FOO"));
        assert_eq!(arg(b"nil").unwrap(), Arg::Nil);
        assert_eq!(arg(b"\\Seen").unwrap(), Arg::Atom(b"\\Seen"));
        let mut c = Cursor::new(b"BODY[HEADER.FIELDS (TO FROM)]<0> x", &[]);
        assert_eq!(
            c.section_atom().unwrap(),
            b"BODY[HEADER.FIELDS (TO FROM)]<0>"
        );
        let mut c = Cursor::new(b"BODY[HEADER x", &[]);
        assert_eq!(c.section_atom().unwrap(), b"BODY[HEADER");
        assert_eq!(arg(b"[Gmail]/Sent x").unwrap(), Arg::Atom(b"[Gmail]/Sent"));
        let raw = b"BODY[HEADER.FIELDS (\"A]\" {2}\r\n]x)]<1> x";
        let mut c = Cursor::new(raw, &[]);
        assert_eq!(c.section_atom().unwrap(), &raw[..raw.len() - 2]);
        assert!(arg(b")").is_err());
    }

    #[test]
    fn quoted_escapes() {
        assert_eq!(arg(b"\"a b\"").unwrap(), Arg::Quoted(Cow::Borrowed(b"a b")));
        let q = arg(br#""say \"hi\" \\o/""#).unwrap();
        assert_eq!(q, Arg::Quoted(Cow::Owned(br#"say "hi" \o/"#.to_vec())));
        assert!(arg(b"\"open").is_err());
        assert!(arg(b"\"open\r\n\"").is_err());
        assert!(arg(b"\"x\\").is_err());
    }

    #[test]
    fn literals() {
        assert_eq!(arg(b"{3}\r\nabc").unwrap(), Arg::Literal(b"abc"));
        assert_eq!(arg(b"{3+}\r\nabc").unwrap(), Arg::Literal(b"abc"));
        assert_eq!(arg(b"~{3}\r\na\0c").unwrap(), Arg::Literal(b"a\0c"));
        assert_eq!(arg(b"{0}\r\n").unwrap(), Arg::Literal(b""));
        assert!(arg(b"{4}\r\nabc").is_err());
        assert!(arg(b"{99999999999999999999999}\r\n").is_err());
        let skipped = [(5usize, 1000u64)];
        assert_eq!(
            Cursor::new(b"{1000}\r\n", &skipped[..])
                .arg()
                .unwrap_err()
                .reason,
            ParseErrorKind::BadLiteral
        );
        let skipped = [(8usize, 1000u64)];
        assert_eq!(
            Cursor::new(b"{1000}\r\n", &skipped[..]).arg().unwrap(),
            Arg::SkippedLiteral { size: 1000 }
        );
    }

    #[test]
    fn lists() {
        let a = arg(b"(a (b \"c\") NIL ( ) (x)(y))").unwrap();
        assert_eq!(
            a,
            Arg::List(vec![
                Arg::Atom(b"a"),
                Arg::List(vec![Arg::Atom(b"b"), Arg::Quoted(Cow::Borrowed(b"c"))]),
                Arg::Nil,
                Arg::List(vec![]),
                Arg::List(vec![Arg::Atom(b"x")]),
                Arg::List(vec![Arg::Atom(b"y")]),
            ])
        );
        assert!(arg(b"(a\"b\")").is_err());
        assert!(arg(b"(a").is_err());
    }

    #[test]
    fn depth_is_bounded() {
        let ok = format!("{}{}", "(".repeat(MAX_DEPTH), ")".repeat(MAX_DEPTH));
        assert!(arg(ok.as_bytes()).is_ok());
        let deep = format!("{}{}", "(".repeat(MAX_DEPTH + 1), ")".repeat(MAX_DEPTH + 1));
        assert_eq!(
            arg(deep.as_bytes()).unwrap_err().reason,
            ParseErrorKind::TooDeep
        );
        let huge = "(".repeat(100_000);
        assert!(arg(huge.as_bytes()).is_err());
    }

    #[test]
    fn numbers() {
        let mut c = Cursor::new(b"4294967295 4294967296 12a", &[]);
        assert_eq!(c.number().unwrap(), u32::MAX);
        c.sp().unwrap();
        assert_eq!(
            c.number().unwrap_err().reason,
            ParseErrorKind::NumberOverflow
        );
        assert_eq!(c.number64().unwrap(), 4_294_967_296);
        c.sp().unwrap();
        assert!(c.number().is_err());
        assert_eq!(parse_u64(b"18446744073709551615"), Some(u64::MAX));
        assert_eq!(parse_u64(b"18446744073709551616"), None);
        assert_eq!(parse_u32(b"-1"), None);
        assert_eq!(parse_u32(b""), None);
    }

    #[test]
    fn helpers() {
        let a = arg(b"(\"x\" {1}\r\ny 7 NIL)").unwrap();
        let l = a.as_list().unwrap();
        assert_eq!(l[0].as_str_bytes(), Some(&b"x"[..]));
        assert_eq!(l[1].as_nstring(), Some(Some(&b"y"[..])));
        assert_eq!(l[1].literal_size(), Some(1));
        assert_eq!(l[2].as_number(), Some(7));
        assert_eq!(l[3].as_nstring(), Some(None));
        assert!(l[3].is_nil());
    }

    #[test]
    fn escape_truncates() {
        let long = vec![b'x'; 500];
        let e = escape(&long);
        assert!(e.len() < 250 && e.ends_with("(500 bytes)"));
        assert_eq!(escape(b"a\r\n\xff"), "a\\r\\n\\xff");
    }
}
