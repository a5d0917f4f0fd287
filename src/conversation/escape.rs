//! Backslash escapes in script lines, and a printable form of protocol bytes.

/// Escapes of lines sent to the peer: `\r`, `\n`, `\xHH` and `\\` become bytes; a
/// backslash before any other character is kept as written, so IMAP flags such as
/// `\Seen` go out unchanged.
pub fn send_escapes(text: &str) -> Vec<u8> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let b = bytes[i];
        if b != b'\\' || i + 1 >= bytes.len() {
            out.push(b);
            i += 1;
            continue;
        }
        match bytes[i + 1] {
            b'r' => {
                out.push(b'\r');
                i += 2;
            }
            b'n' => {
                out.push(b'\n');
                i += 2;
            }
            b'\\' => {
                out.push(b'\\');
                i += 2;
            }
            b'x' => match hex_pair(bytes, i + 2) {
                Some(v) => {
                    out.push(v);
                    i += 4;
                }
                None => {
                    out.extend_from_slice(b"\\x");
                    i += 2;
                }
            },
            _ => {
                out.push(b'\\');
                i += 1;
            }
        }
    }
    out
}

/// `:eval:` lines: the full escape set, and nothing is appended.
///
/// `\r \n \t \0 \e \a \\`, `\xHH` (one or two hex digits), `\x{HHHH}` (a Unicode code
/// point, sent as UTF-8) and `\NNN` (one to three octal digits). A backslash before any
/// other character stands for that character.
pub fn eval_escapes(text: &str) -> Result<Vec<u8>, String> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let b = bytes[i];
        if b != b'\\' {
            out.push(b);
            i += 1;
            continue;
        }
        let Some(&c) = bytes.get(i + 1) else {
            return Err("a lone backslash ends the line".to_owned());
        };
        i += 2;
        match c {
            b'r' => out.push(b'\r'),
            b'n' => out.push(b'\n'),
            b't' => out.push(b'\t'),
            b'e' => out.push(0x1b),
            b'a' => out.push(0x07),
            b'x' if bytes.get(i) == Some(&b'{') => {
                let end = bytes[i..]
                    .iter()
                    .position(|&b| b == b'}')
                    .ok_or_else(|| "`\\x{` without a closing `}`".to_owned())?;
                let hex = &text[i + 1..i + end];
                let cp = u32::from_str_radix(hex, 16)
                    .ok()
                    .and_then(char::from_u32)
                    .ok_or_else(|| format!("`\\x{{{hex}}}` is not a Unicode code point"))?;
                let mut utf8 = [0u8; 4];
                out.extend_from_slice(cp.encode_utf8(&mut utf8).as_bytes());
                i += end + 1;
            }
            b'x' => {
                let mut value = 0u8;
                let mut n = 0;
                while n < 2 {
                    match bytes.get(i).and_then(|&b| hex_digit(b)) {
                        Some(d) => value = value * 16 + d,
                        None => break,
                    }
                    i += 1;
                    n += 1;
                }
                if n == 0 {
                    return Err("`\\x` without hex digits".to_owned());
                }
                out.push(value);
            }
            b'0'..=b'7' => {
                let mut value: u32 = u32::from(c - b'0');
                let mut n = 1;
                while n < 3 {
                    match bytes.get(i) {
                        Some(&d @ b'0'..=b'7') => value = value * 8 + u32::from(d - b'0'),
                        _ => break,
                    }
                    i += 1;
                    n += 1;
                }
                let byte = u8::try_from(value)
                    .map_err(|_| format!("octal escape \\{value:o} is larger than a byte"))?;
                out.push(byte);
            }
            other => out.push(other),
        }
    }
    Ok(out)
}

fn hex_digit(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

fn hex_pair(bytes: &[u8], at: usize) -> Option<u8> {
    let hi = hex_digit(*bytes.get(at)?)?;
    let lo = hex_digit(*bytes.get(at + 1)?)?;
    Some(hi * 16 + lo)
}

/// Protocol bytes as one printable line: UTF-8 where valid, control characters and
/// invalid bytes as `\r`, `\n`, `\t` or `\xHH`; at most `max` bytes are shown.
pub fn show(bytes: &[u8]) -> String {
    show_max(bytes, 400)
}

/// [`show`] with an explicit limit.
pub fn show_max(bytes: &[u8], max: usize) -> String {
    let (shown, cut) = if bytes.len() > max {
        (&bytes[..max], bytes.len() - max)
    } else {
        (bytes, 0)
    };
    let mut out = String::with_capacity(shown.len() + 8);
    for chunk in shown.utf8_chunks() {
        for c in chunk.valid().chars() {
            match c {
                '\r' => out.push_str("\\r"),
                '\n' => out.push_str("\\n"),
                '\t' => out.push_str("\\t"),
                c if c.is_control() => {
                    let mut buf = [0u8; 4];
                    for b in c.encode_utf8(&mut buf).bytes() {
                        out.push_str(&format!("\\x{b:02X}"));
                    }
                }
                c => out.push(c),
            }
        }
        for b in chunk.invalid() {
            out.push_str(&format!("\\x{b:02X}"));
        }
    }
    if cut > 0 {
        out.push_str(&format!("… ({cut} more bytes)"));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn send_escapes_keep_other_backslashes() {
        assert_eq!(send_escapes(r"a\r\nb"), b"a\r\nb");
        assert_eq!(send_escapes(r"\x41\x7a"), b"Az");
        assert_eq!(send_escapes(r"(\Seen \Deleted)"), br"(\Seen \Deleted)");
        assert_eq!(send_escapes(r"a\\r"), br"a\r");
        assert_eq!(send_escapes(r"\xZZ\"), br"\xZZ\");
        assert_eq!(send_escapes(r"\x4"), br"\x4");
    }

    #[test]
    fn eval_escapes_full_set() {
        assert_eq!(eval_escapes(r"\x41\101\r\n").unwrap(), b"AA\r\n");
        assert_eq!(eval_escapes(r"\t\0\e\q\\").unwrap(), b"\t\0\x1bq\\");
        assert_eq!(eval_escapes(r"\x{e9}").unwrap(), "é".as_bytes());
        assert_eq!(eval_escapes(r"\xa").unwrap(), b"\n");
        assert!(eval_escapes(r"abc\").is_err());
        assert!(eval_escapes(r"\777").is_err());
        assert!(eval_escapes(r"\x{110000}").is_err());
        assert!(eval_escapes(r"\x{41").is_err());
        assert!(eval_escapes(r"\xg").is_err());
    }

    #[test]
    fn show_escapes_controls_and_invalid_bytes() {
        assert_eq!(show(b"a\r\n\x00\xffb"), r"a\r\n\x00\xFFb");
        assert_eq!(show_max(b"abcdef", 3), "abc… (3 more bytes)");
    }

    proptest::proptest! {
        #[test]
        fn escapes_never_panic(text in "[\\\\xX{}0-9a-fA-F rnte]{0,24}") {
            let _ = send_escapes(&text);
            let _ = eval_escapes(&text);
        }

        #[test]
        fn show_never_panics(bytes in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..64), max in 0usize..70) {
            let _ = show_max(&bytes, max);
        }

        #[test]
        fn plain_text_passes_unchanged(text in "[a-zA-Z0-9 ()*.]{0,40}") {
            proptest::prop_assert_eq!(send_escapes(&text), text.as_bytes().to_vec());
            proptest::prop_assert_eq!(eval_escapes(&text).unwrap(), text.as_bytes().to_vec());
        }
    }
}
