//! Text from servers made safe to show: control characters escaped (so a server cannot
//! write to the user's terminal) and long text cut with its length said.

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
    fn long_text_is_cut_with_its_length() {
        let long = "x".repeat(1000);
        let shown = inert(&long, 10);
        assert_eq!(shown, format!("{}… (1000 bytes)", "x".repeat(10)));
    }
}
