//! Client SASL mechanisms.
//!
//! [`mechanism`] builds a [`Mechanism`] by name (`PLAIN`, `LOGIN`, `SCRAM-SHA-1`,
//! `SCRAM-SHA-256`, case-insensitive). The IMAP code drives it:
//!
//! 1. [`Mechanism::initial_response`]: the client-first message. Send it as SASL-IR
//!    when the server advertises it; otherwise send it in answer to the first empty
//!    `+` challenge (or call [`Mechanism::step`] with that empty challenge, which
//!    returns the same message once).
//! 2. [`Mechanism::step`] for every further `+` challenge (base64-decoded by the
//!    caller); the returned bytes are raw, the caller base64-encodes them.
//! 3. [`Mechanism::finish`] on the tagged OK. For SCRAM this fails unless the server
//!    proved it knows the password (a valid `v=` signature). When the server sent its
//!    server-final message as additional data in the OK (`OK [SASL ...]`-style), pass
//!    it through [`Mechanism::step`] first and ignore the (empty) response.
//!
//! Salted passwords are expensive (PBKDF2); a shared [`ScramCache`] keeps the derived
//! keys per (hash, password, salt, iterations) so repeated logins skip PBKDF2, as
//! RFC 5802 §5.1 allows clients to do.
//!
//! No SASLprep is applied: user names and passwords are sent as their UTF-8 bytes,
//! which is what SASLprep yields for the ASCII names a test setup uses.

mod login;
mod plain;
mod scram;

pub use login::Login;
pub use plain::Plain;
pub use scram::{DEFAULT_CACHE_CAPACITY, MAX_ITERATIONS, ScramCache, ScramClient, ScramHash};

use std::fmt;

/// The mechanisms [`mechanism`] knows, in their canonical spelling.
pub const MECHANISMS: &[&str] = &["PLAIN", "LOGIN", "SCRAM-SHA-1", "SCRAM-SHA-256"];

/// A SASL mechanism imaptest can run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SaslMech {
    Plain,
    Login,
    ScramSha1,
    ScramSha256,
}

impl SaslMech {
    pub const ALL: [SaslMech; 4] = [
        SaslMech::Plain,
        SaslMech::Login,
        SaslMech::ScramSha1,
        SaslMech::ScramSha256,
    ];

    /// The canonical name (`SCRAM-SHA-256`).
    pub fn name(self) -> &'static str {
        MECHANISMS[self as usize]
    }

    /// The mechanism called `name`, case-insensitively.
    pub fn from_name(name: &str) -> Option<SaslMech> {
        Self::ALL
            .into_iter()
            .find(|m| m.name().eq_ignore_ascii_case(name))
    }
}

/// Who logs in, and as whom.
#[derive(Clone, PartialEq, Eq)]
pub struct Credentials {
    /// Authentication identity: the user, or the master user's name.
    pub authcid: String,
    pub password: String,
    /// Authorization identity: with a master login, the user to act as.
    pub authzid: Option<String>,
}

impl Credentials {
    /// A plain user login.
    pub fn new(user: impl Into<String>, password: impl Into<String>) -> Self {
        Credentials {
            authcid: user.into(),
            password: password.into(),
            authzid: None,
        }
    }

    /// A master user login: authenticate as `master` with `password`, act as `user`.
    pub fn master(
        user: impl Into<String>,
        master: impl Into<String>,
        password: impl Into<String>,
    ) -> Self {
        Credentials {
            authcid: master.into(),
            password: password.into(),
            authzid: Some(user.into()),
        }
    }
}

impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Credentials")
            .field("authcid", &self.authcid)
            .field("password", &"***")
            .field("authzid", &self.authzid)
            .finish()
    }
}

/// A client SASL mechanism in progress. One instance per authentication attempt.
pub trait Mechanism: Send {
    /// The IANA name: `"PLAIN"`, `"LOGIN"`, `"SCRAM-SHA-1"` or `"SCRAM-SHA-256"`.
    fn name(&self) -> &'static str;
    /// The client-first message, sent as SASL-IR if the server supports it (else sent
    /// after the first empty `+` challenge). `None` = no initial response.
    fn initial_response(&mut self) -> Option<Vec<u8>>;
    /// Feed one decoded server challenge, get the (raw, not base64) response.
    fn step(&mut self, challenge: &[u8]) -> Result<Vec<u8>, SaslError>;
    /// Called on the tagged OK. For SCRAM, checks that a valid server signature was
    /// seen; `Err` if the server never authenticated itself.
    fn finish(&mut self) -> Result<(), SaslError>;
}

/// Builds the mechanism called `name` (case-insensitive).
///
/// Errors: [`SaslError::Unsupported`] for an unknown name,
/// [`SaslError::InvalidCredentials`] for credentials the mechanism cannot encode
/// (a NUL byte anywhere, or an empty SCRAM user name).
pub fn mechanism(
    name: &str,
    creds: Credentials,
    cache: &ScramCache,
) -> Result<Box<dyn Mechanism>, SaslError> {
    if name.eq_ignore_ascii_case("PLAIN") {
        Ok(Box::new(Plain::new(creds)?))
    } else if name.eq_ignore_ascii_case("LOGIN") {
        Ok(Box::new(Login::new(creds)?))
    } else if name.eq_ignore_ascii_case("SCRAM-SHA-1") {
        Ok(Box::new(ScramClient::new(ScramHash::Sha1, creds, cache)?))
    } else if name.eq_ignore_ascii_case("SCRAM-SHA-256") {
        Ok(Box::new(ScramClient::new(ScramHash::Sha256, creds, cache)?))
    } else {
        Err(SaslError::Unsupported(name.to_owned()))
    }
}

/// Why an authentication exchange failed on the client side.
#[derive(thiserror::Error, Debug, Clone, PartialEq, Eq)]
pub enum SaslError {
    #[error("unsupported SASL mechanism {0:?}")]
    Unsupported(String),
    #[error("credentials unusable with SASL: {0}")]
    InvalidCredentials(String),
    #[error("malformed {message} message: {reason}")]
    Malformed {
        /// Which server message: `"server-first"`, `"server-final"`, ...
        message: &'static str,
        reason: String,
    },
    #[error("server nonce does not extend the client nonce")]
    NonceMismatch,
    #[error("server requires unsupported SCRAM extension {0:?}")]
    MandatoryExtension(String),
    #[error("SCRAM iteration count {0} is too low")]
    IterationsTooLow(u32),
    #[error("SCRAM iteration count {count} is above the limit of {max}")]
    IterationsTooHigh { count: u64, max: u32 },
    #[error("server signature mismatch: the server does not know the password")]
    ServerSignatureMismatch,
    #[error("server reported SCRAM error: {0}")]
    ServerError(String),
    #[error("{mechanism}: unexpected server challenge ({state})")]
    UnexpectedChallenge {
        mechanism: &'static str,
        state: &'static str,
    },
    #[error("{0}: server accepted the login without authenticating itself")]
    ServerNotAuthenticated(&'static str),
}

/// Rejects strings that cannot travel in SASL messages.
fn check_no_nul(what: &str, value: &str) -> Result<(), SaslError> {
    if value.contains('\0') {
        Err(SaslError::InvalidCredentials(format!(
            "{what} contains a NUL byte"
        )))
    } else {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mechanism_names_case_insensitive() {
        let cache = ScramCache::default();
        for name in MECHANISMS {
            let m = mechanism(&name.to_lowercase(), Credentials::new("u", "p"), &cache).unwrap();
            assert_eq!(m.name(), *name);
        }
        assert_eq!(
            mechanism("CRAM-MD5", Credentials::new("u", "p"), &cache).err(),
            Some(SaslError::Unsupported("CRAM-MD5".into()))
        );
    }

    #[test]
    fn credentials_debug_hides_password() {
        let c = Credentials::master("user", "admin", "s3cret");
        let s = format!("{c:?}");
        assert!(!s.contains("s3cret"), "{s}");
        assert!(s.contains("***") && s.contains("admin") && s.contains("user"));
    }

    #[test]
    fn nul_rejected() {
        let cache = ScramCache::default();
        for name in MECHANISMS {
            assert!(matches!(
                mechanism(name, Credentials::new("u\0x", "p"), &cache),
                Err(SaslError::InvalidCredentials(_))
            ));
            assert!(matches!(
                mechanism(name, Credentials::new("u", "p\0"), &cache),
                Err(SaslError::InvalidCredentials(_))
            ));
        }
    }
}
