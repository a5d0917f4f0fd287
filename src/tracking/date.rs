//! Tolerant parsers for the dates tracking compares: IMAP `INTERNALDATE` and the
//! RFC 5322 `Date:` an ENVELOPE carries. Anything unparsable is `None` (unknown), never
//! an error of the server.

use crate::mail::date::{MONTHS, days_from_civil};

/// Unix seconds (UTC) of `dd-Mon-yyyy hh:mm:ss +zzzz`.
pub fn parse_internaldate(s: &[u8]) -> Option<i64> {
    let s = std::str::from_utf8(s).ok()?.trim();
    let (date, rest) = s.split_once(' ')?;
    let mut d = date.split('-');
    let day: u32 = d.next()?.trim().parse().ok()?;
    let month = month(d.next()?)?;
    let year: i64 = d.next()?.parse().ok()?;
    let mut r = rest.split_whitespace();
    let secs = time(r.next()?)?;
    let zone = zone(r.next()?)?;
    Some(days_from_civil(year, month, day) * 86_400 + secs - zone)
}

/// Unix seconds (UTC) of an RFC 5322 date (`[Day,] dd Mon yyyy hh:mm[:ss] zone`).
pub fn parse_rfc5322(s: &[u8]) -> Option<i64> {
    let s = std::str::from_utf8(s).ok()?;
    let s = match s.split_once(',') {
        Some((_, rest)) => rest,
        None => s,
    };
    let mut w = s.split_whitespace();
    let day: u32 = w.next()?.parse().ok()?;
    let month = month(w.next()?)?;
    let mut year: i64 = w.next()?.parse().ok()?;
    if year < 50 {
        year += 2000;
    } else if year < 1000 {
        year += 1900;
    }
    let secs = time(w.next()?)?;
    let zone = w.next().and_then(zone).unwrap_or(0);
    if !(1..=31).contains(&day) {
        return None;
    }
    Some(days_from_civil(year, month, day) * 86_400 + secs - zone)
}

fn month(s: &str) -> Option<u32> {
    let i = MONTHS.iter().position(|m| m.eq_ignore_ascii_case(s))?;
    u32::try_from(i + 1).ok()
}

fn time(s: &str) -> Option<i64> {
    let mut t = s.split(':');
    let h: i64 = t.next()?.parse().ok()?;
    let m: i64 = t.next()?.parse().ok()?;
    let sec: i64 = match t.next() {
        Some(x) => x.parse().ok()?,
        None => 0,
    };
    if h > 23 || m > 59 || sec > 60 {
        return None;
    }
    Some(h * 3600 + m * 60 + sec)
}

/// Zone offset in seconds east of UTC.
fn zone(s: &str) -> Option<i64> {
    let b = s.as_bytes();
    if b.len() == 5 && (b[0] == b'+' || b[0] == b'-') && b[1..].iter().all(u8::is_ascii_digit) {
        let h = i64::from(b[1] - b'0') * 10 + i64::from(b[2] - b'0');
        let m = i64::from(b[3] - b'0') * 10 + i64::from(b[4] - b'0');
        let off = h * 3600 + m * 60;
        return Some(if b[0] == b'-' { -off } else { off });
    }
    let hours = match s.to_ascii_uppercase().as_str() {
        "UT" | "GMT" | "Z" => 0,
        "EDT" => -4,
        "EST" | "CDT" => -5,
        "CST" | "MDT" => -6,
        "MST" | "PDT" => -7,
        "PST" => -8,
        _ => return None,
    };
    Some(hours * 3600)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn internaldate() {
        assert_eq!(
            parse_internaldate(b"14-Nov-2023 22:13:20 +0000"),
            Some(1_700_000_000)
        );
        assert_eq!(
            parse_internaldate(b" 4-Nov-2023 22:13:20 +0100"),
            Some(1_700_000_000 - 10 * 86_400 - 3600)
        );
        assert_eq!(parse_internaldate(b"garbage"), None);
    }

    #[test]
    fn rfc5322() {
        assert_eq!(
            parse_rfc5322(b"Tue, 14 Nov 2023 22:13:20 +0000"),
            Some(1_700_000_000)
        );
        assert_eq!(
            parse_rfc5322(b"14 Nov 2023 23:13 +0100"),
            Some(1_700_000_000 - 20)
        );
        assert_eq!(
            parse_rfc5322(b"Tue, 14 Nov 2023 22:13:20 EST"),
            Some(1_700_018_000)
        );
        assert_eq!(parse_rfc5322(b"yesterday"), None);
    }
}
