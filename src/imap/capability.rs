//! The server's CAPABILITY list, with the checks the client needs.

/// Capabilities as announced (upper-cased for comparison, original order kept).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Capabilities {
    names: Vec<String>,
}

impl Capabilities {
    pub fn from_atoms<'a>(atoms: impl IntoIterator<Item = &'a [u8]>) -> Self {
        Capabilities {
            names: atoms
                .into_iter()
                .map(|a| String::from_utf8_lossy(a).to_ascii_uppercase())
                .collect(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.names.is_empty()
    }

    /// True if `name` (any case) was announced.
    pub fn has(&self, name: &str) -> bool {
        self.names.iter().any(|n| n.eq_ignore_ascii_case(name))
    }

    pub fn names(&self) -> &[String] {
        &self.names
    }

    /// True if `AUTH=<mech>` was announced.
    pub fn has_auth(&self, mech: &str) -> bool {
        self.names.iter().any(|n| {
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
        ]);
        assert!(caps.has("imap4rev1"));
        assert!(caps.literal_plus());
        assert!(caps.sasl_ir());
        assert!(caps.has_auth("scram-sha-256"));
        assert!(!caps.has_auth("PLAIN"));
    }
}
