//! The server's CAPABILITY list, with the checks the client needs.
//!
//! Stored compactly because every connection keeps one: a single upper-cased,
//! space-separated string (Dovecot announces about forty names) plus a bit set for the
//! names the engines test on every command.

/// Capability names tested on hot paths, one bit each.
const KNOWN: [&str; 12] = [
    "LITERAL+",
    "SASL-IR",
    "MULTIAPPEND",
    "MOVE",
    "IMAP4REV2",
    "CONDSTORE",
    "QRESYNC",
    "STARTTLS",
    "IDLE",
    "UIDPLUS",
    "ESEARCH",
    "IMAP4REV1",
];

/// Capabilities as announced (upper-cased for comparison, original order kept).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Capabilities {
    text: Box<str>,
    known: u16,
}

impl Capabilities {
    pub fn from_atoms<'a>(atoms: impl IntoIterator<Item = &'a [u8]>) -> Self {
        let mut text = String::new();
        let mut known = 0u16;
        for atom in atoms {
            let name = String::from_utf8_lossy(atom).to_ascii_uppercase();
            if let Some(bit) = KNOWN.iter().position(|k| *k == name) {
                known |= 1 << bit;
            }
            if !text.is_empty() {
                text.push(' ');
            }
            text.push_str(&name);
        }
        Capabilities {
            text: text.into_boxed_str(),
            known,
        }
    }

    pub fn is_empty(&self) -> bool {
        self.text.is_empty()
    }

    /// True if `name` (any case) was announced.
    pub fn has(&self, name: &str) -> bool {
        match KNOWN.iter().position(|k| k.eq_ignore_ascii_case(name)) {
            Some(bit) => self.known & (1 << bit) != 0,
            None => self.names().any(|n| n.eq_ignore_ascii_case(name)),
        }
    }

    /// The announced names, upper-cased, in the server's order.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.text.split(' ').filter(|n| !n.is_empty())
    }

    /// True if `AUTH=<mech>` was announced.
    pub fn has_auth(&self, mech: &str) -> bool {
        self.names().any(|n| {
            n.strip_prefix("AUTH=")
                .is_some_and(|m| m.eq_ignore_ascii_case(mech))
        })
    }

    pub fn literal_plus(&self) -> bool {
        self.has("LITERAL+")
    }

    pub fn sasl_ir(&self) -> bool {
        self.has("SASL-IR")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn case_insensitive_lookups() {
        let caps = Capabilities::from_atoms([
            &b"IMAP4rev1"[..],
            b"literal+",
            b"SASL-IR",
            b"AUTH=SCRAM-SHA-256",
            b"X-Custom",
        ]);
        assert!(caps.has("imap4rev1"));
        assert!(caps.literal_plus());
        assert!(caps.sasl_ir());
        assert!(caps.has("x-custom"));
        assert!(!caps.has("MOVE"));
        assert!(!caps.has("X-CUSTOM2"));
        assert!(caps.has_auth("scram-sha-256"));
        assert!(!caps.has_auth("PLAIN"));
        assert_eq!(
            caps.names().collect::<Vec<_>>(),
            [
                "IMAP4REV1",
                "LITERAL+",
                "SASL-IR",
                "AUTH=SCRAM-SHA-256",
                "X-CUSTOM"
            ]
        );
    }
}
