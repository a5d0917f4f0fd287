//! Fix-ups after the last argument: the probability table, the login columns and
//! checks that need all arguments together.

use super::draft::Draft as Settings;
use crate::config::Mech;
use crate::sasl::SaslMech;
use crate::states::State;

use super::error::{CliError, shown};
use super::keys::Seen;

/// Mailbox of scripted tests when `box=` is not given.
pub use crate::config::TEST_MAILBOX;

/// Applies the post-parse fix-ups to settings built by any front end. `mech` is
/// treated as not given explicitly when it is the default `LOGIN`, and `box` when it
/// is the default `INBOX`.
pub fn finalize(settings: &mut Settings) -> Result<(), CliError> {
    let seen = Seen {
        mech: settings.user.mech != Mech::Command,
        mailbox: settings.mailbox != "INBOX",
        ..Seen::default()
    };
    finalize_with(settings, &seen)
}

/// The fix-ups, in order:
///
/// 1. `test=` and `profile=` exclude each other.
/// 2. `imap4rev2` implies `qresync`.
/// 3. Without `copybox`, COPY and MOVE get probability 0 (upstream forgot MOVE and
///    crashed when it ran).
/// 4. CHECKPOINT gets probability 100 if `checkpoint` is on, else 0.
/// 5. Login columns: `master` ⇒ AUTHENTICATE=100, LOGIN=0; else LOGIN≠100 ⇒
///    AUTHENTICATE=100−LOGIN; else AUTHENTICATE≠0 ⇒ LOGIN=100−AUTHENTICATE.
/// 6. No explicit `mech` and AUTHENTICATE always (LOGIN never) ⇒ `mech=PLAIN`, as
///    upstream's documentation promises for `auth=100`.
/// 7. `mech` other than exactly `LOGIN` ⇒ AUTHENTICATE=100, LOGIN=0, so the column
///    shown is the command used.
/// 8. Every state from LIST through LOGOUT at 0 ⇒ error.
/// 9. A user name is needed: `user=`, `$USER` or `userfile=`.
/// 10. With `test=`: no `%` in `user`, and the mailbox defaults to `imaptest`.
pub(crate) fn finalize_with(settings: &mut Settings, seen: &Seen) -> Result<(), CliError> {
    if settings.test.is_some() && settings.profile.is_some() {
        return Err(CliError::TestAndProfile);
    }
    if settings.imap4rev2 {
        settings.qresync = true;
    }

    let p = &mut settings.probabilities;
    if settings.copybox.is_none() {
        p.set(State::Copy, 0, None);
        p.set(State::Move, 0, None);
    }
    let checkpoint = if settings.checkpoint.is_some() {
        100
    } else {
        0
    };
    p.set(State::Checkpoint, checkpoint, None);

    let login = p.get(State::Login);
    let auth = p.get(State::Authenticate);
    if settings.user.master.is_some() {
        p.set(State::Authenticate, 100, None);
        p.set(State::Login, 0, None);
    } else if login != 100 {
        p.set(State::Authenticate, 100u8.saturating_sub(login), None);
    } else if auth != 0 {
        p.set(State::Login, 100u8.saturating_sub(auth), None);
    }
    if !seen.mech
        && settings.user.mech == Mech::Command
        && p.get(State::Authenticate) >= 100
        && p.get(State::Login) == 0
    {
        settings.user.mech = Mech::Sasl(SaslMech::Plain);
    }
    if settings.user.mech != Mech::Command {
        p.set(State::Authenticate, 100, None);
        p.set(State::Login, 0, None);
    }

    let all_zero = crate::states::STATES
        .iter()
        .filter(|s| s.state >= State::List && s.state <= State::Logout)
        .all(|s| p.get(s.state) == 0);
    if all_zero {
        return Err(CliError::InvalidProbabilities);
    }

    // A profile names its own users.
    if settings.user.template.is_empty()
        && settings.user.userfile.is_none()
        && settings.profile.is_none()
    {
        return Err(CliError::MissingUsername);
    }
    if settings.test.is_some() {
        if settings.user.template.contains('%') {
            return Err(CliError::PercentInTestUser {
                user: shown(&settings.user.template),
            });
        }
        if !seen.mailbox {
            settings.mailbox = TEST_MAILBOX.to_owned();
        }
    }
    Ok(())
}
