//! `PLAIN` (RFC 4616): `authzid NUL authcid NUL password` in one message.

use super::{Credentials, Mechanism, SaslError, check_no_nul};

/// The PLAIN mechanism. Sends everything as the initial response.
pub struct Plain {
    message: Vec<u8>,
    /// The message may be handed out once more by `step`, for servers without SASL-IR.
    resend_left: bool,
}

impl Plain {
    /// Errors if any credential contains a NUL byte.
    pub fn new(creds: Credentials) -> Result<Self, SaslError> {
        let authzid = creds.authzid.as_deref().unwrap_or("");
        check_no_nul("authorization identity", authzid)?;
        check_no_nul("user name", &creds.authcid)?;
        check_no_nul("password", &creds.password)?;
        let mut message =
            Vec::with_capacity(authzid.len() + creds.authcid.len() + creds.password.len() + 2);
        message.extend_from_slice(authzid.as_bytes());
        message.push(0);
        message.extend_from_slice(creds.authcid.as_bytes());
        message.push(0);
        message.extend_from_slice(creds.password.as_bytes());
        Ok(Plain {
            message,
            resend_left: true,
        })
    }
}

impl Mechanism for Plain {
    fn name(&self) -> &'static str {
        "PLAIN"
    }

    fn initial_response(&mut self) -> Option<Vec<u8>> {
        Some(self.message.clone())
    }

    fn step(&mut self, challenge: &[u8]) -> Result<Vec<u8>, SaslError> {
        if challenge.is_empty() && self.resend_left {
            self.resend_left = false;
            Ok(self.message.clone())
        } else {
            Err(SaslError::UnexpectedChallenge {
                mechanism: "PLAIN",
                state: "credentials already sent",
            })
        }
    }

    fn finish(&mut self) -> Result<(), SaslError> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_message() {
        let mut m = Plain::new(Credentials::new("tim", "tanstaaftanstaaf")).unwrap();
        assert_eq!(
            m.initial_response().unwrap(),
            b"\0tim\0tanstaaftanstaaf".to_vec()
        );
        let mut m = Plain::new(Credentials::master("Ursel", "Kurt", "xipj3plmq")).unwrap();
        assert_eq!(
            m.initial_response().unwrap(),
            b"Ursel\0Kurt\0xipj3plmq".to_vec()
        );
        assert!(m.finish().is_ok());
    }

    #[test]
    fn plain_without_sasl_ir() {
        let mut m = Plain::new(Credentials::new("u", "p")).unwrap();
        assert_eq!(m.step(b"").unwrap(), b"\0u\0p".to_vec());
        assert!(m.step(b"").is_err());
        let mut m = Plain::new(Credentials::new("u", "p")).unwrap();
        assert!(m.step(b"nonsense").is_err());
    }
}
