//! Encoding command arguments: atoms, quoted strings and literals.
//!
//! ```text
//! astring  = 1*ASTRING-CHAR / string
//! string   = quoted / literal
//! quoted   = DQUOTE *QUOTED-CHAR DQUOTE        ; `\` and `"` escaped
//! literal  = "{" number ["+"] "}" CRLF *CHAR8   ; `+`: LITERAL+ (no wait for "+ ")
//! ```

use crate::net::BodySource;

/// One piece of a command to send. A command with synchronising literals is sent in
/// several pieces: after each piece but the last the client waits for a `+` continuation.
#[derive(Debug)]
pub struct CommandPart {
    pub bytes: Vec<u8>,
    /// Offset from which `bytes` is masked in rawlogs (passwords, SASL responses).
    pub secret_from: Option<usize>,
    /// Literal bodies read from their source while they are sent (messages to APPEND),
    /// each followed by the bytes after it: `bytes`, body, bytes, body, bytes, ….
    pub streamed: Vec<(Box<dyn BodySource>, Vec<u8>)>,
}

impl CommandPart {
    /// A piece of plain bytes.
    pub fn new(bytes: Vec<u8>) -> Self {
        CommandPart {
            bytes,
            secret_from: None,
            streamed: Vec::new(),
        }
    }

    /// Where the next bytes go: after the last streamed body, or `bytes`.
    fn tail(&mut self) -> &mut Vec<u8> {
        match self.streamed.last_mut() {
            Some((_, after)) => after,
            None => &mut self.bytes,
        }
    }
}

/// A command being built: its pieces, split at synchronising literals.
#[derive(Debug, Default)]
pub struct CommandBuilder {
    parts: Vec<CommandPart>,
    literal_plus: bool,
}

impl CommandBuilder {
    /// Starts `<tag> <name>`. With `literal_plus`, literals never wait for a continuation.
    pub fn new(tag: &str, name: &str, literal_plus: bool) -> Self {
        let mut bytes = Vec::with_capacity(64);
        bytes.extend_from_slice(tag.as_bytes());
        bytes.push(b' ');
        bytes.extend_from_slice(name.as_bytes());
        CommandBuilder {
            parts: vec![CommandPart::new(bytes)],
            literal_plus,
        }
    }

    fn current(&mut self) -> &mut CommandPart {
        if self.parts.is_empty() {
            self.parts.push(CommandPart::new(Vec::new()));
        }
        let last = self.parts.len() - 1;
        &mut self.parts[last]
    }

    /// Appends raw text (already valid IMAP syntax), preceded by a space.
    pub fn raw(mut self, text: &str) -> Self {
        let tail = self.current().tail();
        tail.push(b' ');
        tail.extend_from_slice(text.as_bytes());
        self
    }

    /// Appends a string argument as quoted string or, when it cannot be quoted, a literal.
    pub fn string(self, value: &[u8]) -> Self {
        self.string_inner(value, false)
    }

    /// Like [`Self::string`], but the value is masked in rawlogs.
    pub fn secret(self, value: &[u8]) -> Self {
        self.string_inner(value, true)
    }

    /// Secrets are masked in `bytes` only, so they must come before any streamed body.
    fn string_inner(mut self, value: &[u8], secret: bool) -> Self {
        let part = self.current();
        let streaming = !part.streamed.is_empty();
        part.tail().push(b' ');
        if secret && !streaming && part.secret_from.is_none() {
            part.secret_from = Some(part.bytes.len());
        }
        if can_quote(value) {
            push_quoted(part.tail(), value);
            self
        } else {
            self.push_literal(value, secret)
        }
    }

    /// Appends `value` as a literal (never quoted): `{n+}` with LITERAL+, else `{n}`
    /// and a new part sent after the server's continuation.
    pub fn literal(mut self, value: &[u8]) -> Self {
        self.current().tail().push(b' ');
        self.push_literal(value, false)
    }

    /// Appends a literal whose bytes are read from `body` while it is sent.
    pub fn literal_body(mut self, body: Box<dyn BodySource>) -> Self {
        self.current().tail().push(b' ');
        self.literal_header(body.remaining());
        if self.literal_plus {
            self.current().streamed.push((body, Vec::new()));
        } else {
            let mut part = CommandPart::new(Vec::new());
            part.streamed.push((body, Vec::new()));
            self.parts.push(part);
        }
        self
    }

    /// `{n+}` or `{n}`, and CRLF.
    fn literal_header(&mut self, len: u64) {
        let plus = if self.literal_plus { "+" } else { "" };
        let tail = self.current().tail();
        tail.extend_from_slice(format!("{{{len}{plus}}}\r\n").as_bytes());
    }

    fn push_literal(mut self, value: &[u8], secret: bool) -> Self {
        self.literal_header(value.len() as u64);
        if self.literal_plus {
            self.current().tail().extend_from_slice(value);
        } else {
            let mut part = CommandPart::new(value.to_vec());
            part.secret_from = secret.then_some(0);
            self.parts.push(part);
        }
        self
    }

    /// Finishes the command with CRLF.
    pub fn finish(mut self) -> Vec<CommandPart> {
        self.current().tail().extend_from_slice(b"\r\n");
        self.parts
    }
}

/// True if `value` fits in a quoted string (no CR, LF, NUL or 8-bit bytes).
pub fn can_quote(value: &[u8]) -> bool {
    value
        .iter()
        .all(|&b| b != 0 && b != b'\r' && b != b'\n' && b < 0x80)
}

/// Appends `value` as a quoted string; `\` and `"` are escaped.
pub fn push_quoted(out: &mut Vec<u8>, value: &[u8]) {
    out.push(b'"');
    for &b in value {
        if b == b'"' || b == b'\\' {
            out.push(b'\\');
        }
        out.push(b);
    }
    out.push(b'"');
}

/// A quoted string as text, for commands built with `format!`.
pub fn quoted(value: &str) -> String {
    let mut out = Vec::with_capacity(value.len() + 2);
    push_quoted(&mut out, value.as_bytes());
    String::from_utf8(out).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quotes_and_escapes() {
        let parts = CommandBuilder::new("a1", "LOGIN", false)
            .string(b"us\"er")
            .secret(b"p\\w")
            .finish();
        assert_eq!(parts.len(), 1);
        assert_eq!(parts[0].bytes, b"a1 LOGIN \"us\\\"er\" \"p\\\\w\"\r\n");
        assert_eq!(parts[0].secret_from, Some(18));
    }

    #[test]
    fn eight_bit_becomes_literal() {
        let plus = CommandBuilder::new("a1", "LOGIN", true)
            .string(b"bob")
            .secret("pässword".as_bytes())
            .finish();
        assert_eq!(plus.len(), 1);
        assert!(plus[0].bytes.starts_with(b"a1 LOGIN \"bob\" {9+}\r\np"));

        let sync = CommandBuilder::new("a1", "LOGIN", false)
            .string(b"bob")
            .secret("pässword".as_bytes())
            .finish();
        assert_eq!(sync.len(), 2);
        assert_eq!(sync[0].bytes, b"a1 LOGIN \"bob\" {9}\r\n");
        assert_eq!(sync[1].bytes, "pässword\r\n".as_bytes());
        assert_eq!(sync[1].secret_from, Some(0));
    }
}
