//! Known deviations of real servers ("quirks"), each reported under an error kind of
//! its own so that a report says what happened instead of listing its side effects.
//! `docs/servers.md` has the table (server, version, behaviour, RFC section); the
//! recognisers here are what imaptest matches. Quirks are still errors: an SLO may
//! exclude a kind, nothing hides them.

use crate::imap::response::FetchItem;
use crate::imap::token::Arg;
use crate::metrics::ErrorKind;

/// One known server deviation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Quirk {
    pub kind: ErrorKind,
    /// Server and version seen with it.
    pub server: &'static str,
    /// The RFC section it deviates from.
    pub rfc: &'static str,
}

/// Every known quirk, in the order of `docs/servers.md`.
pub const QUIRKS: &[Quirk] = &[
    Quirk {
        kind: ErrorKind::ExpungedMessageFabricated,
        server: "Courier-IMAP 5.0.13",
        rfc: "RFC 2180 §4.1, RFC 3501 §2.3.1.1",
    },
    Quirk {
        kind: ErrorKind::PartTakesBoundaryCr,
        server: "Courier-IMAP 5.0.13",
        rfc: "RFC 2046 §5.1.1, RFC 3501 §7.4.2 (body-fld-octets)",
    },
    Quirk {
        kind: ErrorKind::DefaultEncoding8bit,
        server: "Courier-IMAP 5.0.13",
        rfc: "RFC 2045 §6.1, RFC 3501 §7.4.2 (body-fld-enc)",
    },
    Quirk {
        kind: ErrorKind::TildeAtomBad,
        server: "Courier-IMAP 5.0.13",
        rfc: "RFC 3501 §9 (ATOM-CHAR, list-mailbox), §6.3.8",
    },
    Quirk {
        kind: ErrorKind::DeleteSaysExists,
        server: "Cyrus IMAP 3.6.1",
        rfc: "RFC 3501 §6.3.4",
    },
    Quirk {
        kind: ErrorKind::GenurlauthRefused,
        server: "Cyrus IMAP 3.6.1",
        rfc: "RFC 4467 §7 (GENURLAUTH), §6 (RESETKEY)",
    },
    Quirk {
        kind: ErrorKind::SearchSizeMerge,
        server: "Dovecot 2.3.19",
        rfc: "RFC 3501 §6.4.4",
    },
];

/// The quirk of a kind, if the kind is one.
pub fn quirk(kind: ErrorKind) -> Option<&'static Quirk> {
    QUIRKS.iter().find(|q| q.kind == kind)
}

/// A failed command (tagged `NO` or `BAD`) that a known quirk explains. `command` is
/// the command line without its tag, `status` `NO`/`BAD`, `text` the reply's text.
pub fn failed_command(command: &[u8], status: &[u8], text: &[u8]) -> Option<ErrorKind> {
    let mut words = command.split(|&b| b == b' ').filter(|w| !w.is_empty());
    let mut name = words.next()?;
    if name.eq_ignore_ascii_case(b"UID") {
        name = words.next()?;
    }
    let no = status.eq_ignore_ascii_case(b"NO");
    let bad = status.eq_ignore_ascii_case(b"BAD");
    if no && name.eq_ignore_ascii_case(b"DELETE") && contains(text, b"already exists") {
        return Some(ErrorKind::DeleteSaysExists);
    }
    if no && name.eq_ignore_ascii_case(b"GENURLAUTH") && contains(text, b"error authorizing") {
        return Some(ErrorKind::GenurlauthRefused);
    }
    // `LIST "" ~foo`, `SELECT ~foo`: `~` is an ATOM-CHAR, so `~foo` is a legal atom
    // (a mailbox name or list-mailbox), not the start of a `~{n}` binary literal.
    if bad && words.any(|w| w.starts_with(b"~") && !w.starts_with(b"~{")) {
        return Some(ErrorKind::TildeAtomBad);
    }
    None
}

/// Courier's stand-in for a message another session expunged: "From: System
/// Administrator <root@localhost>", "Subject: message unavailable", a 52-byte text
/// part, 129 bytes in all, INTERNALDATE now. True if any item of a FETCH reply is
/// recognisably part of it (a size or date alone is not).
pub fn fabricated_expunged(items: &[FetchItem<'_>]) -> bool {
    const SUBJECT: &[u8] = b"message unavailable";
    const TEXT: &[u8] = b"This message is no longer available on the server.";
    items.iter().any(|item| match item {
        FetchItem::Envelope(env) => env
            .as_list()
            .and_then(|f| f.get(1))
            .and_then(Arg::as_nstring)
            .flatten()
            .is_some_and(|s| s.eq_ignore_ascii_case(SUBJECT)),
        FetchItem::Section { data, .. } => data.as_nstring().flatten().is_some_and(|text| {
            contains(text, b"Subject: message unavailable") || text.trim_ascii() == TEXT
        }),
        FetchItem::Body(b) | FetchItem::BodyStructure(b) => {
            // ("text" "plain" NIL NIL NIL "8bit" 52 1 ...): the text part alone.
            b.as_list().is_some_and(|f| {
                let is = |i: usize, s: &[u8]| {
                    f[i].as_nstring()
                        .flatten()
                        .is_some_and(|v| v.eq_ignore_ascii_case(s))
                };
                f.len() >= 8
                    && is(0, b"text")
                    && is(1, b"plain")
                    && f[2].is_nil()
                    && f[6].as_number() == Some(52)
                    && f[7].as_number() == Some(1)
            })
        }
        _ => false,
    })
}

/// The size of Courier's stand-in: a size that changes to exactly this is taken for it.
pub const STAND_IN_SIZE: u64 = 129;

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack
        .windows(needle.len())
        .any(|w| w.eq_ignore_ascii_case(needle))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::imap::response::{Response, Untagged, parse};

    fn items_of(line: &str, check: impl FnOnce(&[FetchItem<'_>])) {
        let data = format!("{line}\r\n");
        let Ok(Response::Untagged(Untagged::Fetch { items, .. })) = parse(data.as_bytes()) else {
            panic!("not a FETCH: {line}");
        };
        check(&items);
    }

    #[test]
    fn courier_stand_in_is_recognised_by_any_of_its_parts() {
        // Recorded from Courier-IMAP 5.0.13 (scripts/courier-lab).
        for line in [
            "* 1 FETCH (UID 1 ENVELOPE (NIL \"message unavailable\" ((\"System Administrator\" NIL \"root\" \"localhost\")) ((\"System Administrator\" NIL \"root\" \"localhost\")) ((\"System Administrator\" NIL \"root\" \"localhost\")) NIL NIL NIL NIL NIL))",
            "* 1 FETCH (BODYSTRUCTURE (\"text\" \"plain\" NIL NIL NIL \"8bit\" 52 1 NIL NIL NIL))",
            "* 1 FETCH (BODY (\"text\" \"plain\" NIL NIL NIL \"8bit\" 52 1))",
            "* 1 FETCH (BODY[TEXT] {52}\r\nThis message is no longer available on the server.\r\n)",
            "* 1 FETCH (BODY[HEADER.FIELDS (\"From\" \"Subject\")] {77}\r\nFrom: System Administrator <root@localhost>\r\nSubject: message unavailable\r\n\r\n)",
        ] {
            items_of(line, |items| assert!(fabricated_expunged(items), "{line}"));
        }
        for line in [
            "* 1 FETCH (UID 1 RFC822.SIZE 129)",
            "* 1 FETCH (ENVELOPE (NIL \"hello\" NIL NIL NIL NIL NIL NIL NIL NIL))",
            "* 1 FETCH (BODY (\"text\" \"plain\" (\"charset\" \"us-ascii\") NIL NIL \"7bit\" 52 1))",
        ] {
            items_of(line, |items| assert!(!fabricated_expunged(items), "{line}"));
        }
    }

    #[test]
    fn failed_commands_are_matched_to_their_quirk() {
        let q =
            |c: &str, s: &str, t: &str| failed_command(c.as_bytes(), s.as_bytes(), t.as_bytes());
        assert_eq!(
            q("DELETE foo/bar", "NO", "Mailbox already exists"),
            Some(ErrorKind::DeleteSaysExists)
        );
        assert_eq!(q("DELETE foo", "NO", "Mailbox does not exist"), None);
        assert_eq!(
            q(
                "GENURLAUTH \"imap://u@h/INBOX/;uid=1;urlauth=user+u\" INTERNAL",
                "NO",
                "Error authorizing imap://u@h/INBOX/;uid=1;urlauth=user+u: not a cyrusdb error"
            ),
            Some(ErrorKind::GenurlauthRefused)
        );
        assert_eq!(
            q("LIST \"\" ~foo", "BAD", "Invalid command"),
            Some(ErrorKind::TildeAtomBad)
        );
        assert_eq!(
            q("SELECT ~foo", "BAD", "Invalid command"),
            Some(ErrorKind::TildeAtomBad)
        );
        assert_eq!(q("LIST \"\" foo", "BAD", "Invalid command"), None);
        assert_eq!(q("APPEND x ~{3}", "BAD", "Invalid command"), None);
        assert_eq!(q("LIST \"\" ~foo", "NO", "x"), None);
        for quirk in QUIRKS {
            assert!(!quirk.rfc.is_empty() && !quirk.server.is_empty());
            assert_eq!(super::quirk(quirk.kind), Some(quirk));
        }
    }
}
