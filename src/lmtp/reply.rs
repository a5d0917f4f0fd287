//! SMTP/LMTP replies (RFC 5321 §4.2): a three-digit code, `-` between the lines of a
//! multi-line reply and ` ` (or nothing) on the last; enhanced status codes (RFC 3463,
//! RFC 2034) such as `5.1.1`; the EHLO-style extension list of an LHLO reply.

use std::fmt;

/// An enhanced status code `class.subject.detail` (RFC 3463), e.g. `2.1.5`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct EnhancedCode {
    /// 2 (success), 4 (persistent transient failure) or 5 (permanent failure).
    pub class: u8,
    pub subject: u16,
    pub detail: u16,
}

impl EnhancedCode {
    /// Parses the code at the start of `text` (`"5.1.1 User unknown"`), returning it and
    /// the text after it (and after one space).
    pub fn parse_prefix(text: &str) -> Option<(EnhancedCode, &str)> {
        let end = text.find(' ').unwrap_or(text.len());
        let mut parts = text[..end].split('.');
        let class = parts.next()?;
        let subject = parts.next()?;
        let detail = parts.next()?;
        if parts.next().is_some() {
            return None;
        }
        let digits = |s: &str, max: usize| {
            !s.is_empty() && s.len() <= max && s.bytes().all(|b| b.is_ascii_digit())
        };
        if class.len() != 1 || !digits(class, 1) || !digits(subject, 3) || !digits(detail, 3) {
            return None;
        }
        let code = EnhancedCode {
            class: class.parse().ok()?,
            subject: subject.parse().ok()?,
            detail: detail.parse().ok()?,
        };
        if !matches!(code.class, 2 | 4 | 5) {
            return None;
        }
        let rest = text[end..].strip_prefix(' ').unwrap_or(&text[end..]);
        Some((code, rest))
    }
}

impl fmt::Display for EnhancedCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}.{}", self.class, self.subject, self.detail)
    }
}

/// A complete (possibly multi-line) reply.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reply {
    /// The three-digit reply code, 200..=599.
    pub code: u16,
    /// The enhanced status code at the start of the first line, if any (and if its
    /// class agrees with the reply code).
    pub enhanced: Option<EnhancedCode>,
    /// The text of each line after the code and separator, lossily decoded.
    pub lines: Vec<String>,
}

impl Reply {
    /// 2xx.
    pub fn is_positive(&self) -> bool {
        (200..300).contains(&self.code)
    }

    /// 3xx (e.g. 354 after DATA).
    pub fn is_intermediate(&self) -> bool {
        (300..400).contains(&self.code)
    }

    /// 4xx: try again later.
    pub fn is_transient(&self) -> bool {
        (400..500).contains(&self.code)
    }

    /// 5xx: don't try again.
    pub fn is_permanent(&self) -> bool {
        (500..600).contains(&self.code)
    }

    /// The human-readable text: all lines joined with a space, the enhanced code of
    /// the first line left out.
    pub fn text(&self) -> String {
        let mut out = String::new();
        for (i, line) in self.lines.iter().enumerate() {
            let line = match (i, self.enhanced) {
                (0, Some(_)) => EnhancedCode::parse_prefix(line).map_or(line.as_str(), |(_, t)| t),
                _ => line.as_str(),
            };
            if i > 0 {
                out.push(' ');
            }
            out.push_str(line);
        }
        out
    }
}

/// The reply as the server sent it, lines separated by ` / ` so errors stay one line:
/// `550 5.1.1 <x> User doesn't exist`.
impl fmt::Display for Reply {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let last = self.lines.len().saturating_sub(1);
        for (i, line) in self.lines.iter().enumerate() {
            if i > 0 {
                f.write_str(" / ")?;
            }
            let sep = if i == last { ' ' } else { '-' };
            if line.is_empty() && i == last {
                write!(f, "{}", self.code)?;
            } else {
                write!(f, "{}{sep}{line}", self.code)?;
            }
        }
        if self.lines.is_empty() {
            write!(f, "{}", self.code)?;
        }
        Ok(())
    }
}

/// One reply line, split: code, whether it is the last line, and the text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReplyLine<'a> {
    pub code: u16,
    pub last: bool,
    pub text: &'a [u8],
}

/// Why a reply line is malformed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum LineFault {
    #[error("reply code is not three digits from 200 to 599")]
    BadCode,
    #[error("reply code is not followed by a space, '-' or the line end")]
    BadSeparator,
}

/// Splits one reply line (without CRLF). The code must be `[2-5][0-5][0-9]`
/// (RFC 5321 §4.2); the separator `-` (more lines follow), ` ` or nothing (last line).
pub fn parse_line(line: &[u8]) -> Result<ReplyLine<'_>, LineFault> {
    let code = match line {
        [a @ b'2'..=b'5', b @ b'0'..=b'5', c @ b'0'..=b'9', ..] => {
            u16::from(a - b'0') * 100 + u16::from(b - b'0') * 10 + u16::from(c - b'0')
        }
        _ => return Err(LineFault::BadCode),
    };
    match line.get(3) {
        None => Ok(ReplyLine {
            code,
            last: true,
            text: b"",
        }),
        Some(b' ') => Ok(ReplyLine {
            code,
            last: true,
            text: &line[4..],
        }),
        Some(b'-') => Ok(ReplyLine {
            code,
            last: false,
            text: &line[4..],
        }),
        Some(_) => Err(LineFault::BadSeparator),
    }
}

/// Builds a [`Reply`] from its lines (all with the same code, which the caller checks).
pub(crate) fn build(code: u16, lines: Vec<String>) -> Reply {
    let enhanced = lines
        .first()
        .and_then(|l| EnhancedCode::parse_prefix(l))
        .map(|(e, _)| e)
        .filter(|e| u16::from(e.class) == code / 100);
    Reply {
        code,
        enhanced,
        lines,
    }
}

/// The service extensions of an LHLO (EHLO-style) reply: every line after the first
/// is `KEYWORD [params]`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Extensions {
    /// Upper-cased keyword and its parameters (may be empty).
    entries: Vec<(String, String)>,
}

impl Extensions {
    /// Reads the extension lines of a 250 reply to LHLO (the first line is the
    /// server's name and greeting text).
    pub fn from_lhlo(reply: &Reply) -> Self {
        let entries = reply
            .lines
            .iter()
            .skip(1)
            .filter_map(|line| {
                let line = line.trim();
                let (kw, params) = line.split_once(' ').unwrap_or((line, ""));
                (!kw.is_empty()).then(|| (kw.to_ascii_uppercase(), params.trim().to_owned()))
            })
            .collect();
        Extensions { entries }
    }

    /// True if the keyword (case-insensitive) was offered.
    /// The keywords offered, in the server's order.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.entries.iter().map(|(k, _)| k.as_str())
    }

    pub fn has(&self, keyword: &str) -> bool {
        self.params(keyword).is_some()
    }

    /// The parameters of a keyword, `Some("")` if it had none.
    pub fn params(&self, keyword: &str) -> Option<&str> {
        self.entries
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(keyword))
            .map(|(_, p)| p.as_str())
    }

    /// `SIZE n`: the largest message the server accepts; `Some(0)` means no limit.
    pub fn size_limit(&self) -> Option<u64> {
        self.params("SIZE")
            .map(|p| p.split_ascii_whitespace().next().unwrap_or("0"))
            .map(|n| n.parse().unwrap_or(0))
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Keyword and parameters, in the server's order.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        self.entries.iter().map(|(k, p)| (k.as_str(), p.as_str()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn line_forms() {
        assert_eq!(
            parse_line(b"250-PIPELINING"),
            Ok(ReplyLine {
                code: 250,
                last: false,
                text: b"PIPELINING"
            })
        );
        assert_eq!(
            parse_line(b"250 OK"),
            Ok(ReplyLine {
                code: 250,
                last: true,
                text: b"OK"
            })
        );
        assert_eq!(
            parse_line(b"354"),
            Ok(ReplyLine {
                code: 354,
                last: true,
                text: b""
            })
        );
        for bad in [
            &b""[..],
            b"25",
            b"abc OK",
            b"150 x",
            b"600 x",
            b"260 x",
            b"2500 x",
            b"+OK",
        ] {
            assert!(
                parse_line(bad).is_err(),
                "{:?}",
                String::from_utf8_lossy(bad)
            );
        }
        assert_eq!(parse_line(b"250_x"), Err(LineFault::BadSeparator));
    }

    #[test]
    fn enhanced_codes() {
        let r = build(550, vec!["5.1.1 <x> User doesn't exist: x".into()]);
        assert_eq!(
            r.enhanced,
            Some(EnhancedCode {
                class: 5,
                subject: 1,
                detail: 1
            })
        );
        assert_eq!(r.text(), "<x> User doesn't exist: x");
        assert_eq!(r.to_string(), "550 5.1.1 <x> User doesn't exist: x");
        assert!(r.is_permanent());
        // Class must agree with the code.
        assert_eq!(build(250, vec!["5.1.1 odd".into()]).enhanced, None);
        assert_eq!(build(250, vec!["2.1.0.1 odd".into()]).enhanced, None);
        assert_eq!(build(250, vec!["OK".into()]).enhanced, None);
        assert_eq!(build(250, vec!["2.0.0".into()]).text(), "");
        assert_eq!(
            EnhancedCode::parse_prefix("4.7.1000 x"),
            None,
            "detail is at most three digits"
        );
    }

    #[test]
    fn display_multi_line() {
        let r = build(
            250,
            vec!["localhost".into(), "PIPELINING".into(), "".into()],
        );
        assert_eq!(r.to_string(), "250-localhost / 250-PIPELINING / 250");
    }

    #[test]
    fn extensions() {
        let r = build(
            250,
            vec![
                "localhost".into(),
                "8BITMIME".into(),
                "pipelining".into(),
                "SIZE 1000000".into(),
                "STARTTLS".into(),
            ],
        );
        let e = Extensions::from_lhlo(&r);
        assert!(e.has("PIPELINING") && e.has("8bitmime") && e.has("STARTTLS"));
        assert!(!e.has("localhost") && !e.has("CHUNKING"));
        assert_eq!(e.size_limit(), Some(1_000_000));
        assert_eq!(e.iter().count(), 4);
    }
}
