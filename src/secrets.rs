//! Passwords off the command line: `pass=` is visible to every local user in `ps`, so
//! the password (and, with `master=`, the master user's password) can come from
//! `pass_file=FILE` (readable by its owner only) or from the environment
//! (`IMAPTEST_PASS`, `IMAPTEST_MASTER_PASS`), which only the owner can read in
//! `/proc/<pid>/environ`.

use std::os::unix::fs::MetadataExt;
use std::path::Path;

/// The password of every user without one in the user file.
pub const PASS_ENV: &str = "IMAPTEST_PASS";
/// With `master=`: the master user's password (what is sent with each login).
pub const MASTER_PASS_ENV: &str = "IMAPTEST_MASTER_PASS";

/// Why `pass_file=` cannot be used.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum PassFileError {
    #[error("cannot read it: {0}")]
    Read(String),
    #[error("other users can read it (mode {mode:04o}): make it owner-only, e.g. chmod 600 {path}")]
    Readable { mode: u32, path: String },
    #[error("it belongs to another user (uid {owner}), not to the one running imaptest")]
    NotOwner { owner: u32 },
    #[error("its first line is empty")]
    Empty,
}

/// Reads the password from the first line of `path` (line end excluded). The file must
/// belong to the user running imaptest and be unreadable by group and others.
pub fn read_pass_file(path: &Path) -> Result<String, PassFileError> {
    let meta = std::fs::metadata(path).map_err(|e| PassFileError::Read(e.to_string()))?;
    // SAFETY: geteuid has no preconditions and cannot fail.
    let me = unsafe { libc::geteuid() };
    if meta.uid() != me {
        return Err(PassFileError::NotOwner { owner: meta.uid() });
    }
    let mode = meta.mode() & 0o7777;
    if mode & 0o077 != 0 {
        return Err(PassFileError::Readable {
            mode,
            path: path.display().to_string(),
        });
    }
    let text = std::fs::read(path).map_err(|e| PassFileError::Read(e.to_string()))?;
    let line = text.split(|&b| b == b'\n').next().unwrap_or_default();
    let line = line.strip_suffix(b"\r").unwrap_or(line);
    if line.is_empty() {
        return Err(PassFileError::Empty);
    }
    String::from_utf8(line.to_vec()).map_err(|_| PassFileError::Read("not UTF-8".into()))
}

/// The password from the environment when the command line gave none: with a master
/// user `IMAPTEST_MASTER_PASS` first, then `IMAPTEST_PASS`. `env` reads a variable.
pub fn from_env(master: bool, env: impl Fn(&str) -> Option<String>) -> Option<String> {
    let master_pass = if master { env(MASTER_PASS_ENV) } else { None };
    master_pass
        .or_else(|| env(PASS_ENV))
        .filter(|p| !p.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn pass_files_must_be_owner_only() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("pass");
        std::fs::write(&path, "s3cret\r\nignored\n").unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        let e = read_pass_file(&path).unwrap_err();
        assert_eq!(
            e.to_string(),
            format!(
                "other users can read it (mode 0644): make it owner-only, e.g. chmod 600 {}",
                path.display()
            )
        );
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
        assert_eq!(read_pass_file(&path).unwrap(), "s3cret");
        std::fs::write(&path, "\n").unwrap();
        assert_eq!(read_pass_file(&path), Err(PassFileError::Empty));
        assert!(matches!(
            read_pass_file(&dir.path().join("missing")),
            Err(PassFileError::Read(_))
        ));
    }

    #[test]
    fn environment_passwords() {
        let env = |name: &str| match name {
            PASS_ENV => Some("user-pass".to_owned()),
            MASTER_PASS_ENV => Some("master-pass".to_owned()),
            _ => None,
        };
        assert_eq!(from_env(false, env).as_deref(), Some("user-pass"));
        assert_eq!(from_env(true, env).as_deref(), Some("master-pass"));
        let only_user = |name: &str| (name == PASS_ENV).then(|| "p".to_owned());
        assert_eq!(from_env(true, only_user).as_deref(), Some("p"));
        assert_eq!(from_env(false, |_| Some(String::new())), None);
        assert_eq!(from_env(false, |_| None), None);
    }
}
