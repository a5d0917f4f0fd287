//! Profile mode, first half: the profile model, its loaders and the scheduler.
//!
//! * [`model`]: the TOML profile ([`Profile`]), validated after parsing.
//! * [`distribution`]: intervals — constants or distributions, sampled in seconds.
//! * [`legacy`]: ImapTest's `profile.conf`, loaded into the same model.
//! * [`convert`]: a model written back as TOML (`imaptest profile convert`).
//! * [`schedule`]: per-user timelines from (profile, seed), generated lazily.
//! * [`timeline`]: runs a schedule on tokio timers, with lateness; the LMTP queue.
//! * [`plan`]: the dry-run plan writer.
//! * [`schema`]: the JSON Schema of the TOML profile.

pub mod convert;
pub mod distribution;
pub mod legacy;
pub mod model;
pub mod plan;
pub mod schedule;
pub mod schema;
pub mod size;
pub mod timeline;
pub mod username;

use std::ops::Range;
use std::path::{Path, PathBuf};

pub use distribution::Distribution;
pub use model::Profile;

/// Why a profile could not be loaded. Locations are `file:line:col` (1-based).
#[derive(thiserror::Error, Debug)]
pub enum ProfileError {
    #[error("{}: {source}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{}:{line}:{col}: {message}", path.display())]
    At {
        path: PathBuf,
        line: usize,
        col: usize,
        message: String,
    },
    #[error("{}: {message}", path.display())]
    Invalid { path: PathBuf, message: String },
}

impl ProfileError {
    /// An error at byte `offset` of `source`.
    pub fn at(path: &Path, source: &str, offset: usize, message: impl Into<String>) -> Self {
        let (line, col) = line_col(source, offset);
        ProfileError::At {
            path: path.to_owned(),
            line,
            col,
            message: message.into(),
        }
    }

    fn located(path: &Path, source: &str, span: Option<Range<usize>>, message: String) -> Self {
        match span {
            Some(span) => ProfileError::at(path, source, span.start, message),
            None => ProfileError::Invalid {
                path: path.to_owned(),
                message,
            },
        }
    }
}

/// 1-based line and column (in characters) of byte `offset`.
pub fn line_col(source: &str, offset: usize) -> (usize, usize) {
    let mut offset = offset.min(source.len());
    while !source.is_char_boundary(offset) {
        offset -= 1;
    }
    let before = &source[..offset];
    let line = before.matches('\n').count() + 1;
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    (line, before[line_start..].chars().count() + 1)
}

/// Whether `text` looks like a legacy `profile.conf` (a `user {` or `client {` section
/// line, and no TOML table header).
pub fn looks_legacy(text: &str) -> bool {
    let mut section = false;
    for line in text.lines().map(str::trim) {
        if line.starts_with('[') {
            return false;
        }
        if line.ends_with('{') && (line.starts_with("user") || line.starts_with("client")) {
            section = true;
        }
    }
    section
}

/// Parses a TOML profile; `path` names the file in errors and anchors relative paths.
pub fn from_toml_str(text: &str, path: &Path) -> Result<Profile, ProfileError> {
    let mut profile: Profile = toml::from_str(text).map_err(|e| {
        let message = e.message().trim_end().to_owned();
        ProfileError::located(path, text, e.span(), message)
    })?;
    finish(&mut profile, text, path)?;
    Ok(profile)
}

/// Resolves and validates a parsed profile (shared by the TOML and legacy loaders).
pub(crate) fn finish(profile: &mut Profile, text: &str, path: &Path) -> Result<(), ProfileError> {
    let base = path.parent().unwrap_or(Path::new("."));
    profile
        .resolve(base)
        .and_then(|()| profile.validate())
        .map_err(|e| ProfileError::located(path, text, e.span, e.message))
}

/// Loads a profile file: TOML, or a legacy `profile.conf` (by content or a `.conf`
/// extension). Legacy warnings are returned alongside.
pub fn load(path: &Path) -> Result<(Profile, Vec<String>), ProfileError> {
    let text = std::fs::read_to_string(path).map_err(|source| ProfileError::Io {
        path: path.to_owned(),
        source,
    })?;
    let is_toml = path.extension().is_some_and(|e| e == "toml");
    let is_conf = path.extension().is_some_and(|e| e == "conf");
    if is_conf || (!is_toml && looks_legacy(&text)) {
        let loaded = legacy::from_str(&text, path)?;
        Ok((loaded.profile, loaded.warnings))
    } else {
        Ok((from_toml_str(&text, path)?, Vec::new()))
    }
}

/// `imaptest profile convert FILE`: the TOML text of a legacy `profile.conf` (or of a
/// TOML profile, normalised), and the legacy loader's warnings for stderr.
pub fn convert_file(path: &Path) -> Result<(String, Vec<String>), ProfileError> {
    let (profile, warnings) = load(path)?;
    let name = path.display().to_string();
    Ok((convert::to_toml(&profile, Some(&name)), warnings))
}

/// `imaptest profile=FILE plan=OUT dry_run`: writes the schedule to `out` without
/// connecting anywhere. `seed` (`seed=`) overrides `run.seed`, `period` (`secs=`)
/// overrides `run.duration`, `users` (`users=`) scales the populations, `shard`
/// (`shard=`) plans only that shard's users. Returns the summary to print.
pub fn dry_run(
    profile_path: &Path,
    out: &Path,
    seed: Option<u64>,
    period: Option<std::time::Duration>,
    users: Option<u64>,
    shard: Option<crate::shard::Shard>,
) -> Result<(plan::PlanSummary, Vec<String>), ProfileError> {
    let (mut profile, warnings) = load(profile_path)?;
    if let Some(users) = users {
        profile.scale_users(users);
    }
    let opts = plan::PlanOptions {
        schedule: schedule::ScheduleOptions {
            seed,
            until: period,
            shard: shard.map(|s| (s.index, s.count)),
        },
    };
    let summary = plan::write_plan_file(&profile, &opts, out)?;
    Ok((summary, warnings))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn line_and_column() {
        let s = "a = 1\nbb = 2\n";
        assert_eq!(line_col(s, 0), (1, 1));
        assert_eq!(line_col(s, 6), (2, 1));
        assert_eq!(line_col(s, 9), (2, 4));
    }
}
