//! ImapTest's legacy `profile.conf`, loaded into the [`Profile`] model:
//! `lexer` splits the file into global entries and `user`/`client` sections,
//! `convert` reads every key into the model.
//!
//! Every key of ImapTest's profile grammar is read, including the ones the C tool parses
//! and ignores: `imap_idle = no` makes the client poll (every 10 minutes, Thunderbird's
//! default), `mail_write_size` sets the size of written mails, `user_count` gives an
//! absolute number of users to a block without `count`. Intervals become the `imaptest`
//! distribution (ImapTest's `weighted_rand` spread around the mean), `login_interval`
//! stays a constant as in ImapTest. Clients apply to every user block with ImapTest's
//! independent-inclusion rule. Username templates keep their form: both
//! `%{username_idx | lfill(3, '0')}` and the older `%n` expand.

mod convert;
mod lexer;

use std::path::Path;
use std::time::Duration;

use super::ProfileError;
use super::model::Profile;

/// A loaded legacy profile and the notes about how it was read.
#[derive(Debug, Clone)]
pub struct Legacy {
    pub profile: Profile,
    pub warnings: Vec<String>,
}

/// Polling interval given to `imap_idle = no` clients.
pub const LEGACY_POLL_INTERVAL: Duration = Duration::from_secs(600);

pub use convert::parse_time;

/// Parses a legacy `profile.conf`.
pub fn from_str(text: &str, path: &Path) -> Result<Legacy, ProfileError> {
    let err = |offset: usize, message: String| ProfileError::at(path, text, offset, message);
    let lexed = lexer::lex(text, &err)?;
    convert::convert(lexed, text, path, &err)
}
