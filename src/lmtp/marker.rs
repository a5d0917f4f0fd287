//! The delivery marker: a header put at the top of a delivered message so whoever later
//! reads it (over IMAP or POP3) can tell which delivery it was and measure the
//! end-to-end latency.
//!
//! ```text
//! X-Imaptest-Delivery: <id> <send time in nanoseconds since the Unix epoch>
//! ```

use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// The marker header's field name.
pub const MARKER_HEADER: &str = "X-Imaptest-Delivery";

/// The marker value for delivery `id` sent at `sent`: `"<id> <unix-ns>"`.
pub fn marker(id: u64, sent: SystemTime) -> String {
    let ns = sent
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .as_nanos();
    format!("{id} {ns}")
}

/// `message` with `X-Imaptest-Delivery: <marker>` CRLF in front of its first header.
/// CR, LF and NUL in `marker` become spaces, so the header stays one line.
pub fn with_marker(message: &[u8], marker: &str) -> Vec<u8> {
    let mut out = Vec::with_capacity(MARKER_HEADER.len() + marker.len() + 4 + message.len());
    out.extend_from_slice(MARKER_HEADER.as_bytes());
    out.extend_from_slice(b": ");
    out.extend(marker.bytes().map(|b| {
        if matches!(b, b'\r' | b'\n' | 0) {
            b' '
        } else {
            b
        }
    }));
    out.extend_from_slice(b"\r\n");
    out.extend_from_slice(message);
    out
}

/// `message` with its `Message-ID` field (folded lines included) replaced by
/// `Message-ID: <message_id>`, put first. Every delivery gets its own id, so the same
/// source message delivered twice (and given different trace headers by the server) is
/// not taken for one message whose size changed.
pub fn with_message_id(message: &[u8], message_id: &str) -> Vec<u8> {
    let mut out = Vec::with_capacity(message.len() + message_id.len() + 16);
    out.extend_from_slice(b"Message-ID: <");
    out.extend(
        message_id
            .bytes()
            .filter(|b| !matches!(b, b'\r' | b'\n' | 0 | b'<' | b'>')),
    );
    out.extend_from_slice(b">\r\n");
    let mut rest = message;
    let mut in_header = true;
    let mut dropping = false;
    while !rest.is_empty() {
        let end = memchr::memchr(b'\n', rest).map_or(rest.len(), |i| i + 1);
        let (line, tail) = rest.split_at(end);
        rest = tail;
        if in_header {
            let content = line.strip_suffix(b"\n").unwrap_or(line);
            let content = content.strip_suffix(b"\r").unwrap_or(content);
            if content.is_empty() {
                in_header = false;
                dropping = false;
            } else if content[0] == b' ' || content[0] == b'\t' {
                if dropping {
                    continue;
                }
            } else {
                dropping = memchr::memchr(b':', content).is_some_and(|colon| {
                    content[..colon]
                        .trim_ascii_end()
                        .eq_ignore_ascii_case(b"Message-ID")
                });
                if dropping {
                    continue;
                }
            }
        }
        out.extend_from_slice(line);
    }
    out
}

/// Finds the marker header in a message's header block (or the whole message: the
/// search stops at the first empty line) and returns the delivery id and send time.
/// The field name is matched case-insensitively; folded values are unfolded.
pub fn parse_marker(header: &[u8]) -> Option<(u64, SystemTime)> {
    let value = header_value(header, MARKER_HEADER.as_bytes())?;
    let text = std::str::from_utf8(&value).ok()?;
    let mut words = text.split_ascii_whitespace();
    let id = words.next()?.parse().ok()?;
    let ns: u128 = words.next()?.parse().ok()?;
    if words.next().is_some() {
        return None;
    }
    let secs = u64::try_from(ns / 1_000_000_000).ok()?;
    let nanos = (ns % 1_000_000_000) as u32;
    let sent = UNIX_EPOCH.checked_add(Duration::new(secs, nanos))?;
    Some((id, sent))
}

/// The unfolded value of the first `name:` field of the header block.
fn header_value(header: &[u8], name: &[u8]) -> Option<Vec<u8>> {
    let mut lines = header
        .split(|&b| b == b'\n')
        .map(|l| l.strip_suffix(b"\r").unwrap_or(l));
    while let Some(line) = lines.next() {
        if line.is_empty() {
            return None;
        }
        let Some(colon) = memchr::memchr(b':', line) else {
            continue;
        };
        if !line[..colon].trim_ascii_end().eq_ignore_ascii_case(name) {
            continue;
        }
        let mut value = line[colon + 1..].to_vec();
        for next in lines.by_ref() {
            if next.first().is_some_and(|b| *b == b' ' || *b == b'\t') {
                value.push(b' ');
                value.extend_from_slice(next);
            } else {
                break;
            }
        }
        return Some(value);
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip() {
        let sent = UNIX_EPOCH + Duration::new(1_763_781_234, 123_456_789);
        let m = marker(42, sent);
        assert_eq!(m, "42 1763781234123456789");
        let msg = with_marker(b"Subject: hi\r\n\r\nbody\r\n", &m);
        assert!(msg.starts_with(b"X-Imaptest-Delivery: 42 1763781234123456789\r\nSubject: hi"));
        assert_eq!(parse_marker(&msg), Some((42, sent)));
    }

    #[test]
    fn after_other_headers_folded_and_case() {
        let sent = UNIX_EPOCH + Duration::from_nanos(5);
        let msg = b"Return-Path: <>\nDelivered-To: u\nx-imaptest-delivery:\n  7\n\t5\nSubject: s\n\nX-Imaptest-Delivery: 9 9\n";
        assert_eq!(parse_marker(msg), Some((7, sent)));
    }

    #[test]
    fn absent_or_malformed() {
        assert_eq!(
            parse_marker(b"Subject: x\r\n\r\nX-Imaptest-Delivery: 1 2\r\n"),
            None
        );
        assert_eq!(parse_marker(b"X-Imaptest-Delivery: x 2\r\n"), None);
        assert_eq!(parse_marker(b"X-Imaptest-Delivery: 1\r\n"), None);
        assert_eq!(parse_marker(b"X-Imaptest-Delivery: 1 2 3\r\n"), None);
        assert_eq!(
            parse_marker(b"X-Imaptest-Delivery: 1 999999999999999999999999999999999999\r\n"),
            None
        );
        assert_eq!(parse_marker(b""), None);
    }

    #[test]
    fn message_id_is_replaced_with_its_folded_lines_only_in_the_header() {
        let msg = b"Subject: s\r\nmessage-id:\r\n <old@x>\r\nTo: t\r\n\r\nMessage-ID: <body@x>\r\n";
        let out = with_message_id(msg, "new.1@imaptest");
        assert_eq!(
            out,
            b"Message-ID: <new.1@imaptest>\r\nSubject: s\r\nTo: t\r\n\r\nMessage-ID: <body@x>\r\n"
        );
        assert_eq!(
            with_message_id(b"Subject: s\r\n\r\nb", "a<b>"),
            b"Message-ID: <ab>\r\nSubject: s\r\n\r\nb"
        );
    }

    #[test]
    fn marker_stays_one_line() {
        let msg = with_marker(b"\r\n", "a\r\nb");
        assert_eq!(msg, b"X-Imaptest-Delivery: a  b\r\n\r\n");
    }
}
