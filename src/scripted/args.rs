//! A small IMAP argument tokenizer used on both sides of a comparison: the expected
//! replies in test files and the responses the server sends.
//!
//! It follows the splitting rules of Dovecot's IMAP parser (which the C tool uses for
//! both sides), so the two sides always have the same shape:
//!
//! * arguments are separated by spaces; a list may follow a list or atom directly;
//! * an atom runs to a space, CR, LF or (inside a list) `)`; every other byte is part
//!   of it, so `BODY[HEADER.FIELDS` `(FROM)` `]` are three arguments;
//! * `"..."` is a quoted string with `\` escapes (it may span lines);
//! * `{n}` / `{n+}` / `~{n}` followed by CRLF (or LF) and `n` bytes is a literal;
//! * an atom `NIL` (any case) is [`Arg::Nil`].
//!
//! Server input is tokenized leniently ([`parse_lenient`]): whatever cannot be read
//! as a string or literal becomes an atom, so a response never fails to tokenize.

use std::fmt;

/// One IMAP argument.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Arg {
    Atom(Vec<u8>),
    Str(Vec<u8>),
    Literal(Vec<u8>),
    Nil,
    List(Vec<Arg>),
}

impl Arg {
    /// Atom, string or literal content (not NIL, not a list).
    pub fn as_astring(&self) -> Option<&[u8]> {
        match self {
            Arg::Atom(s) | Arg::Str(s) | Arg::Literal(s) => Some(s),
            _ => None,
        }
    }

    pub fn as_atom(&self) -> Option<&[u8]> {
        match self {
            Arg::Atom(s) => Some(s),
            _ => None,
        }
    }

    pub fn as_list(&self) -> Option<&[Arg]> {
        match self {
            Arg::List(l) => Some(l),
            _ => None,
        }
    }
}

/// Why expected-reply text did not tokenize.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ArgsError {
    #[error("Missing '\"' (unterminated quoted string)")]
    UnterminatedQuoted,
    #[error("Missing ')'")]
    UnclosedList,
    #[error("Unexpected ')'")]
    UnexpectedClose,
    #[error("Invalid literal: {0}")]
    BadLiteral(&'static str),
    #[error("Lists nested too deeply")]
    TooDeep,
}

const MAX_DEPTH: usize = 100;

struct Parser<'a> {
    data: &'a [u8],
    pos: usize,
    lenient: bool,
}

/// Tokenizes expected-reply text strictly (errors for unterminated strings, bad
/// literals and unbalanced parentheses).
pub fn parse_strict(data: &[u8]) -> Result<Vec<Arg>, ArgsError> {
    Parser {
        data,
        pos: 0,
        lenient: false,
    }
    .top()
}

/// Tokenizes server input; never fails.
pub fn parse_lenient(data: &[u8]) -> Vec<Arg> {
    Parser {
        data,
        pos: 0,
        lenient: true,
    }
    .top()
    .unwrap_or_default()
}

impl Parser<'_> {
    fn peek(&self) -> Option<u8> {
        self.data.get(self.pos).copied()
    }

    fn skip_spaces(&mut self) {
        while matches!(self.peek(), Some(b' ' | b'\t')) {
            self.pos += 1;
        }
    }

    fn at_line_end(&self) -> bool {
        match self.peek() {
            None | Some(b'\n') => true,
            Some(b'\r') => matches!(self.data.get(self.pos + 1), None | Some(b'\n')),
            _ => false,
        }
    }

    fn top(&mut self) -> Result<Vec<Arg>, ArgsError> {
        let mut args = Vec::new();
        loop {
            self.skip_spaces();
            if self.at_line_end() {
                return Ok(args);
            }
            if self.peek() == Some(b')') {
                if !self.lenient {
                    return Err(ArgsError::UnexpectedClose);
                }
                // Part of an atom, as Dovecot's parser does with ATOM_ALLCHARS.
                args.push(self.atom(false));
                continue;
            }
            args.push(self.arg(0)?);
        }
    }

    fn arg(&mut self, depth: usize) -> Result<Arg, ArgsError> {
        match self.peek() {
            Some(b'(') => {
                if depth >= MAX_DEPTH {
                    if self.lenient {
                        return Ok(self.atom(true));
                    }
                    return Err(ArgsError::TooDeep);
                }
                self.pos += 1;
                let mut items = Vec::new();
                loop {
                    self.skip_spaces();
                    match self.peek() {
                        Some(b')') => {
                            self.pos += 1;
                            return Ok(Arg::List(items));
                        }
                        _ if self.at_line_end() => {
                            if self.lenient {
                                return Ok(Arg::List(items));
                            }
                            return Err(ArgsError::UnclosedList);
                        }
                        _ => items.push(self.arg(depth + 1)?),
                    }
                }
            }
            Some(b'"') => self.quoted(depth > 0),
            Some(b'{') => self.literal(depth > 0),
            Some(b'~') if self.data.get(self.pos + 1) == Some(&b'{') => self.literal(depth > 0),
            _ => Ok(self.atom(depth > 0)),
        }
    }

    fn atom(&mut self, in_list: bool) -> Arg {
        let start = self.pos;
        while let Some(b) = self.peek() {
            if b == b' ' || b == b'\n' || (b == b'\r' && self.at_line_end()) {
                break;
            }
            if b == b')' && in_list {
                break;
            }
            self.pos += 1;
        }
        if self.pos == start {
            // Cannot happen for a well-formed call, but never loop forever.
            self.pos += 1;
        }
        let atom = self.data.get(start..self.pos).unwrap_or_default().to_vec();
        if atom.eq_ignore_ascii_case(b"NIL") {
            Arg::Nil
        } else {
            Arg::Atom(atom)
        }
    }

    fn quoted(&mut self, in_list: bool) -> Result<Arg, ArgsError> {
        let start = self.pos;
        self.pos += 1;
        let mut out = Vec::new();
        while let Some(b) = self.peek() {
            match b {
                b'"' => {
                    self.pos += 1;
                    return Ok(Arg::Str(out));
                }
                b'\\' => {
                    match self.data.get(self.pos + 1) {
                        Some(&c) => out.push(c),
                        None => break,
                    }
                    self.pos += 2;
                }
                _ => {
                    out.push(b);
                    self.pos += 1;
                }
            }
        }
        if self.lenient {
            self.pos = start;
            // Unterminated: take the quote as the start of an atom.
            self.pos += 1;
            let rest = self.atom(in_list);
            let mut atom = vec![b'"'];
            match rest {
                Arg::Atom(a) => atom.extend(a),
                Arg::Nil => atom.extend_from_slice(b"NIL"),
                _ => {}
            }
            return Ok(Arg::Atom(atom));
        }
        Err(ArgsError::UnterminatedQuoted)
    }

    fn literal(&mut self, in_list: bool) -> Result<Arg, ArgsError> {
        let start = self.pos;
        match self.literal_inner() {
            Ok(arg) => Ok(arg),
            Err(e) if !self.lenient => Err(e),
            Err(_) => {
                self.pos = start;
                Ok(self.atom(in_list))
            }
        }
    }

    fn literal_inner(&mut self) -> Result<Arg, ArgsError> {
        if self.peek() == Some(b'~') {
            self.pos += 1;
        }
        self.pos += 1; // '{'
        let digits_start = self.pos;
        while matches!(self.peek(), Some(b'0'..=b'9')) {
            self.pos += 1;
        }
        let digits = self.data.get(digits_start..self.pos).unwrap_or_default();
        if digits.is_empty() {
            return Err(ArgsError::BadLiteral("missing size"));
        }
        let size: usize = std::str::from_utf8(digits)
            .ok()
            .and_then(|s| s.parse().ok())
            .ok_or(ArgsError::BadLiteral("size too large"))?;
        if self.peek() == Some(b'+') {
            self.pos += 1;
        }
        if self.peek() != Some(b'}') {
            return Err(ArgsError::BadLiteral("missing '}'"));
        }
        self.pos += 1;
        if self.peek() == Some(b'\r') {
            self.pos += 1;
        }
        if self.peek() != Some(b'\n') {
            return Err(ArgsError::BadLiteral("no line break after the size"));
        }
        self.pos += 1;
        let end = self
            .pos
            .checked_add(size)
            .filter(|&e| e <= self.data.len())
            .ok_or(ArgsError::BadLiteral("data shorter than its size"))?;
        let content = self.data.get(self.pos..end).unwrap_or_default().to_vec();
        self.pos = end;
        Ok(Arg::Literal(content))
    }
}

/// The first line of `data`, without its line ending.
pub fn first_line(data: &[u8]) -> &[u8] {
    let end = memchr::memchr(b'\n', data).unwrap_or(data.len());
    let line = &data[..end];
    line.strip_suffix(b"\r").unwrap_or(line)
}

/// Renders arguments back to IMAP-like text for messages.
pub struct Display<'a>(pub &'a [Arg]);

impl fmt::Display for Display<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, arg) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str(" ")?;
            }
            write!(f, "{}", DisplayArg(arg))?;
        }
        Ok(())
    }
}

/// Renders one argument.
pub struct DisplayArg<'a>(pub &'a Arg);

impl fmt::Display for DisplayArg<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            Arg::Atom(a) => f.write_str(&String::from_utf8_lossy(a)),
            Arg::Str(s) => {
                f.write_str("\"")?;
                for c in String::from_utf8_lossy(s).chars() {
                    match c {
                        '"' | '\\' => write!(f, "\\{c}")?,
                        '\r' => f.write_str("\\r")?,
                        '\n' => f.write_str("\\n")?,
                        _ => write!(f, "{c}")?,
                    }
                }
                f.write_str("\"")
            }
            Arg::Literal(l) => {
                write!(f, "{{{}}}\"", l.len())?;
                let shown = l.get(..300).unwrap_or(l);
                for c in String::from_utf8_lossy(shown).chars() {
                    match c {
                        '"' | '\\' => write!(f, "\\{c}")?,
                        '\r' => f.write_str("\\r")?,
                        '\n' => f.write_str("\\n")?,
                        _ => write!(f, "{c}")?,
                    }
                }
                if shown.len() < l.len() {
                    f.write_str("...")?;
                }
                f.write_str("\"")
            }
            Arg::Nil => f.write_str("NIL"),
            Arg::List(items) => write!(f, "({})", Display(items)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn atom(s: &str) -> Arg {
        Arg::Atom(s.as_bytes().to_vec())
    }

    #[test]
    fn dovecot_splitting() {
        let a = parse_strict(b"1 fetch (body[header.fields (from)] {3}\r\nabc)").unwrap();
        assert_eq!(
            a,
            vec![
                atom("1"),
                atom("fetch"),
                Arg::List(vec![
                    atom("body[header.fields"),
                    Arg::List(vec![atom("from")]),
                    atom("]"),
                    Arg::Literal(b"abc".to_vec()),
                ]),
            ]
        );
        let a = parse_strict(b"ok [read-write] nil \"a\\\"b\" ~{1}\r\nx").unwrap();
        assert_eq!(
            a,
            vec![
                atom("ok"),
                atom("[read-write]"),
                Arg::Nil,
                Arg::Str(b"a\"b".to_vec()),
                Arg::Literal(b"x".to_vec())
            ]
        );
    }

    #[test]
    fn strict_errors_and_lenient_recovery() {
        assert_eq!(parse_strict(b"(a"), Err(ArgsError::UnclosedList));
        assert_eq!(parse_strict(b"\"a"), Err(ArgsError::UnterminatedQuoted));
        assert!(parse_strict(b"{5}\r\nab").is_err());
        assert_eq!(parse_strict(b"a)"), Ok(vec![atom("a)")]));
        assert_eq!(parse_strict(b") a"), Err(ArgsError::UnexpectedClose));
        assert_eq!(parse_lenient(b"\"a b"), vec![atom("\"a"), atom("b")]);
        assert_eq!(parse_lenient(b"{5}\r\nab"), vec![atom("{5}")]);
        assert_eq!(
            parse_lenient(b"(a (b"),
            vec![Arg::List(vec![atom("a"), Arg::List(vec![atom("b")])])]
        );
        let deep = "(".repeat(500);
        let _ = parse_lenient(deep.as_bytes());
        assert!(parse_strict(deep.as_bytes()).is_err());
    }
}
