//! Server text made inert for consoles, logs and reports: control characters escaped,
//! long text cut to an excerpt that says how long the original was.
//!
//! A server decides what it sends; a line with ESC or BEL bytes must not reach a
//! terminal as it is, and a 200 KB line must not be repeated in every error about it.

/// Bytes of server text quoted in a message (the length of the whole is added).
pub const QUOTE_MAX: usize = 300;

/// A server line as messages quote it: lossily decoded, control characters escaped, at
/// most [`QUOTE_MAX`] bytes of it followed by `... (N bytes)` when it was longer.
pub fn quote(bytes: &[u8]) -> String {
    let shown = &bytes[..bytes.len().min(QUOTE_MAX)];
    let mut out = escape_controls(&String::from_utf8_lossy(shown));
    if shown.len() < bytes.len() {
        out.push_str(&format!("... ({} bytes)", bytes.len()));
    }
    out
}

/// Escapes every control character (C0, DEL, C1; tabs and line ends too) as `\xNN`
/// or `\u{NN}`, so the text stays on one line and drives no terminal.
pub fn escape_controls(text: &str) -> String {
    if !text.chars().any(char::is_control) {
        return text.to_owned();
    }
    let mut out = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        match c {
            '\r' => out.push_str("\\r"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            c if c.is_ascii_control() => out.push_str(&format!("\\x{:02x}", c as u32)),
            c if c.is_control() => out.push_str(&format!("\\u{{{:x}}}", c as u32)),
            c => out.push(c),
        }
    }
    out
}

/// [`escape_controls`] of already decoded text, cut to `max` bytes (at a character
/// boundary) with the original length when it was longer.
pub fn shorten(text: &str, max: usize) -> String {
    if text.len() <= max {
        return escape_controls(text);
    }
    let mut cut = max;
    while !text.is_char_boundary(cut) {
        cut -= 1;
    }
    format!(
        "{}... ({} bytes)",
        escape_controls(&text[..cut]),
        text.len()
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn control_characters_are_escaped() {
        assert_eq!(
            quote(b"* OK \x1b[2J\x07hi\r\n"),
            "* OK \\x1b[2J\\x07hi\\r\\n"
        );
        assert_eq!(escape_controls("a\u{9b}b\u{7f}"), "a\\u{9b}b\\x7f");
        // Printable text, UTF-8 included, is kept as it is.
        assert_eq!(quote("Grüße".as_bytes()), "Grüße");
        assert_eq!(quote(b"bad \xff byte"), "bad \u{fffd} byte");
    }

    #[test]
    fn long_lines_are_cut_with_their_length() {
        let line = vec![b'('; 200_000];
        let q = quote(&line);
        assert!(q.len() < QUOTE_MAX + 30, "{}", q.len());
        assert!(q.ends_with("... (200000 bytes)"), "{q}");
        let s = shorten("ééééé", 3);
        assert_eq!(s, "é... (10 bytes)");
        assert_eq!(shorten("ab\x1b", 10), "ab\\x1b");
    }
}
