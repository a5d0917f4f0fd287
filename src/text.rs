//! Text from servers made safe to show: control characters escaped (so a server cannot
//! write to the user's terminal) and long text cut with its length said.

/// Bytes of a server line quoted in a message (its length is added when cut).
pub const QUOTE_MAX: usize = 300;

/// A server line as messages quote it: lossily decoded, control characters escaped, at
/// most [`QUOTE_MAX`] bytes of it, with its length when cut.
pub fn quote(bytes: &[u8]) -> String {
    inert(&String::from_utf8_lossy(bytes), QUOTE_MAX)
}

/// `text` with every control character escaped, however long.
pub fn escape_controls(text: &str) -> String {
    inert(text, usize::MAX)
}

/// `text` with control characters (and DEL) escaped as `\xNN` (`\r`, `\n`, `\t` as
/// such), cut to at most `max` bytes of output, with `… (N bytes)` when cut.
pub fn inert(text: &str, max: usize) -> String {
    let mut out = String::with_capacity(text.len().min(max) + 16);
    for c in text.chars() {
        if out.len() >= max {
            out.push_str(&format!("… ({} bytes)", text.len()));
            return out;
        }
        match c {
            '\r' => out.push_str("\\r"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            c if c.is_control() => out.push_str(&format!("\\x{:02x}", c as u32)),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::inert;

    #[test]
    fn control_characters_are_escaped() {
        assert_eq!(inert("a\x1b[31mb\x07\r\n", 100), "a\\x1b[31mb\\x07\\r\\n");
        assert_eq!(inert("\u{7f}\u{9b}", 100), "\\x7f\\x9b");
    }

    #[test]
    fn server_lines_are_quoted_short_and_inert() {
        use super::{QUOTE_MAX, escape_controls, quote};
        assert_eq!(
            quote(b"* OK \x1b[2J\x07hi\r\n"),
            "* OK \\x1b[2J\\x07hi\\r\\n"
        );
        assert_eq!(quote("Grüße".as_bytes()), "Grüße");
        assert_eq!(quote(b"bad \xff byte"), "bad \u{fffd} byte");
        let q = quote(&[b'('; 200_000]);
        assert_eq!(q, format!("{}… (200000 bytes)", "(".repeat(QUOTE_MAX)));
        assert_eq!(escape_controls(&"\x07".repeat(1000)).len(), 4000);
    }

    #[test]
    fn long_text_is_cut_with_its_length() {
        let long = "x".repeat(1000);
        let shown = inert(&long, 10);
        assert_eq!(shown, format!("{}… (1000 bytes)", "x".repeat(10)));
    }
}
