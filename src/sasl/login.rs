//! `LOGIN` (draft-murchison-sasl-login): the user name, then the password, each in
//! answer to one server challenge. The challenge texts ("Username:", "Password:")
//! are not interpreted; only their order matters.

use super::{Credentials, Mechanism, SaslError, check_no_nul};

/// The LOGIN mechanism. No initial response.
pub struct Login {
    creds: Credentials,
    answered: u8,
}

impl Login {
    /// Errors if a credential contains a NUL byte, or if an authorization identity
    /// (master user) is given: LOGIN cannot carry one. For Dovecot master users put
    /// `user*master` (the server's separator) in the user name instead.
    pub fn new(creds: Credentials) -> Result<Self, SaslError> {
        check_no_nul("user name", &creds.authcid)?;
        check_no_nul("password", &creds.password)?;
        if creds.authzid.is_some() {
            return Err(SaslError::InvalidCredentials(
                "LOGIN cannot send an authorization identity (master user)".into(),
            ));
        }
        Ok(Login { creds, answered: 0 })
    }
}

impl Mechanism for Login {
    fn name(&self) -> &'static str {
        "LOGIN"
    }

    fn initial_response(&mut self) -> Option<Vec<u8>> {
        None
    }

    fn step(&mut self, _challenge: &[u8]) -> Result<Vec<u8>, SaslError> {
        let answer = match self.answered {
            0 => self.creds.authcid.as_bytes().to_vec(),
            1 => self.creds.password.as_bytes().to_vec(),
            _ => {
                return Err(SaslError::UnexpectedChallenge {
                    mechanism: "LOGIN",
                    state: "user name and password already sent",
                });
            }
        };
        self.answered += 1;
        Ok(answer)
    }

    fn finish(&mut self) -> Result<(), SaslError> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn login_answers_in_order() {
        let mut m = Login::new(Credentials::new("user", "pw")).unwrap();
        assert_eq!(m.initial_response(), None);
        // Texts are ignored: order decides.
        assert_eq!(m.step(b"Password:").unwrap(), b"user".to_vec());
        assert_eq!(m.step(b"").unwrap(), b"pw".to_vec());
        assert!(matches!(
            m.step(b"Username:"),
            Err(SaslError::UnexpectedChallenge { .. })
        ));
        assert!(m.finish().is_ok());
    }

    #[test]
    fn login_rejects_master() {
        assert!(Login::new(Credentials::master("u", "m", "p")).is_err());
    }
}
