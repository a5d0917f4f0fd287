//! User names: `user=` templates and `userfile=` lists.
//!
//! * [`UserTemplate`]: a printf-like `user=` template such as `u%04d@d%d.org`, with
//!   up to two integer conversions filled from the `users=` and `domains=` ranges.
//! * [`read_userfile`]: `userfile=`, one `name` or `name:password` per line.
//! * [`UserPicker`]: chooses the user for each new connection.

use std::fmt;
use std::path::{Path, PathBuf};

use rand::RngExt as _;

/// Widths above this are refused (`%999999999d` would allocate gigabytes).
const MAX_WIDTH: usize = 64;

/// Why a user source could not be set up.
#[derive(thiserror::Error, Debug)]
pub enum UserError {
    /// A bad `user=` template; `position` is the 1-based character position of the
    /// offending `%`.
    #[error("user template {template:?}, position {position}: {reason}")]
    Template {
        template: String,
        position: usize,
        reason: String,
    },
    /// A bad `users=`/`domains=` range.
    #[error("invalid range {input:?}: {reason}")]
    Range { input: String, reason: String },
    /// The user file could not be read.
    #[error("{}: {source}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// A bad line in the user file (`line` is 1-based).
    #[error("{}:{line}: {reason}", path.display())]
    Line {
        path: PathBuf,
        line: usize,
        reason: String,
    },
    /// The user file has no entries.
    #[error("no usernames in {}", path.display())]
    NoUsers { path: PathBuf },
    /// [`UserPicker::new`] was given an empty user list.
    #[error("the user list is empty")]
    EmptyUserList,
    /// `shard=` with a template without `%d`: every shard would log in as that user.
    #[error(
        "user={template} names one user: it cannot be split over {shards} shards without \
         two of them sharing its mailbox (use a %d template with users=, or userfile=)"
    )]
    OneUserForShards { template: String, shards: u32 },
    /// `shard=` with fewer users than shards.
    #[error(
        "{users} users cannot be split over {shards} shards: every shard needs users of its own"
    )]
    TooFewUsersForShards { users: u64, shards: u32 },
    /// `shard=` with a user file that lists a user twice: two shards could share it.
    #[error(
        "users {first} and {second} of the user file are both {user:?}: with shard= two \
         shards could share that mailbox"
    )]
    DuplicateUserForShards {
        user: String,
        first: usize,
        second: usize,
    },
}

#[derive(Clone, Debug, PartialEq, Eq)]
enum Segment {
    Literal(String),
    /// `%d`/`%i` with an optional `0` flag and field width.
    Number {
        zero_pad: bool,
        width: usize,
    },
}

/// A parsed `user=` template: text with `%%` and at most two `%d`/`%i` conversions
/// (optional `0` flag and width, e.g. `%04d`). The first conversion takes the user
/// number, the second the domain number.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UserTemplate {
    source: String,
    segments: Vec<Segment>,
    conversions: usize,
}

impl UserTemplate {
    /// printf-like: `%%` and at most two integer conversions `%d`/`%i` with optional
    /// zero flag/width between (e.g. `u%04d@d%d.org`). Anything else is an error
    /// naming the template and the position of the offending `%`.
    pub fn parse(template: &str) -> Result<Self, UserError> {
        let error = |position: usize, reason: String| UserError::Template {
            template: template.to_owned(),
            position,
            reason,
        };
        let mut segments = Vec::new();
        let mut literal = String::new();
        let mut conversions = 0;
        let mut chars = template.chars().enumerate().peekable();
        while let Some((index, c)) = chars.next() {
            if c != '%' {
                literal.push(c);
                continue;
            }
            let position = index + 1;
            if chars.next_if(|&(_, c)| c == '%').is_some() {
                literal.push('%');
                continue;
            }
            let zero_pad = chars.next_if(|&(_, c)| c == '0').is_some();
            let mut width = 0usize;
            while let Some((_, digit)) = chars.next_if(|(_, c)| c.is_ascii_digit()) {
                width = width * 10 + (digit as usize - '0' as usize);
                if width > MAX_WIDTH {
                    return Err(error(
                        position,
                        format!("field width above the maximum of {MAX_WIDTH}"),
                    ));
                }
            }
            match chars.next() {
                Some((_, 'd' | 'i')) => {}
                Some((_, other)) => {
                    return Err(error(
                        position,
                        format!("unsupported conversion '%{other}' (only %d, %i and %%)"),
                    ));
                }
                None => {
                    return Err(error(
                        position,
                        "incomplete '%' conversion at the end".into(),
                    ));
                }
            }
            conversions += 1;
            if conversions > 2 {
                return Err(error(
                    position,
                    "more than two conversions (user and domain number)".into(),
                ));
            }
            if !literal.is_empty() {
                segments.push(Segment::Literal(std::mem::take(&mut literal)));
            }
            segments.push(Segment::Number { zero_pad, width });
        }
        if !literal.is_empty() {
            segments.push(Segment::Literal(literal));
        }
        Ok(UserTemplate {
            source: template.to_owned(),
            segments,
            conversions,
        })
    }

    /// Number of `%d`/`%i` conversions: 0, 1 or 2.
    pub fn conversions(&self) -> usize {
        self.conversions
    }

    /// The template as given.
    pub fn as_str(&self) -> &str {
        &self.source
    }

    /// Fills the first conversion with `first`, the second with `second`.
    pub fn expand(&self, first: u32, second: u32) -> String {
        use std::fmt::Write as _;
        let mut out = String::with_capacity(self.source.len() + 16);
        let mut values = [first, second].into_iter();
        for segment in &self.segments {
            match segment {
                Segment::Literal(text) => out.push_str(text),
                &Segment::Number { zero_pad, width } => {
                    let value = values.next().unwrap_or_default();
                    // Writing to a String cannot fail.
                    let _ = if zero_pad {
                        write!(out, "{value:0width$}")
                    } else {
                        write!(out, "{value:width$}")
                    };
                }
            }
        }
        out
    }
}

/// One line of a user file.
#[derive(Clone, PartialEq, Eq)]
pub struct UserFileEntry {
    pub user: String,
    /// `None` when the line has no `:`; the default password applies.
    pub password: Option<String>,
}

impl fmt::Debug for UserFileEntry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("UserFileEntry")
            .field("user", &self.user)
            .field("password", &self.password.as_ref().map(|_| "***"))
            .finish()
    }
}

/// Reads a user file: one entry per line, `name` or `name:password` (the password is
/// everything after the first `:`; a `{PLAIN}` prefix is stripped). Empty lines and
/// lines starting with `:` are ignored; `\r\n` line ends are accepted.
///
/// Errors name `file:line`: a blank user name, a NUL byte, invalid UTF-8. A file
/// without entries gives `no usernames in <file>`.
pub fn read_userfile(path: &Path) -> Result<Vec<UserFileEntry>, UserError> {
    let data = std::fs::read(path).map_err(|source| UserError::Io {
        path: path.to_owned(),
        source,
    })?;
    let mut entries = Vec::new();
    let mut lines = data.split(|&b| b == b'\n').enumerate().peekable();
    while let Some((index, line)) = lines.next() {
        if line.is_empty() && lines.peek().is_none() {
            break; // after the final newline
        }
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        if line.is_empty() || line[0] == b':' {
            continue;
        }
        let error = |reason: &str| UserError::Line {
            path: path.to_owned(),
            line: index + 1,
            reason: reason.to_owned(),
        };
        if line.contains(&0) {
            return Err(error("NUL byte in line"));
        }
        let line = std::str::from_utf8(line).map_err(|_| error("invalid UTF-8"))?;
        let (user, password) = match line.split_once(':') {
            Some((user, password)) => {
                let password = password.strip_prefix("{PLAIN}").unwrap_or(password);
                (user, Some(password.to_owned()))
            }
            None => (line, None),
        };
        if user.trim().is_empty() {
            return Err(error("empty user name"));
        }
        entries.push(UserFileEntry {
            user: user.to_owned(),
            password,
        });
    }
    if entries.is_empty() {
        return Err(UserError::NoUsers {
            path: path.to_owned(),
        });
    }
    Ok(entries)
}

/// A user to log in as.
#[derive(Clone, PartialEq, Eq)]
pub struct User {
    pub name: String,
    pub password: String,
}

impl fmt::Debug for User {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("User")
            .field("name", &self.name)
            .field("password", &"***")
            .finish()
    }
}

/// Where users come from.
#[derive(Clone, Debug)]
enum Source {
    Template {
        template: UserTemplate,
        users: (u32, u32),
        domains: (u32, u32),
    },
    File(Vec<UserFileEntry>),
}

/// Picks users for new connections: from the template (first conversion = a random
/// number in the users range, second = one in the domains range) or, when a user file
/// was given, a random line of it. Deterministic given a seeded rng.
#[derive(Clone, Debug)]
pub struct UserPicker {
    source: Source,
    default_password: String,
    /// With `shard=`: only the users whose index belongs to this shard.
    shard: Option<crate::shard::Shard>,
}

/// Number of values in an inclusive range, as u64 (a full u32 range has 2^32).
fn span((low, high): (u32, u32)) -> u64 {
    u64::from(high) - u64::from(low) + 1
}

fn check_range(what: &str, (low, high): (u32, u32)) -> Result<(), UserError> {
    if low > high {
        return Err(UserError::Range {
            input: format!("{low}-{high}"),
            reason: format!("{what} range starts after its end"),
        });
    }
    Ok(())
}

impl UserPicker {
    /// The users `user=`/`users=`/`domains=` or `userfile=` describe, with `pass=` for
    /// those without a password of their own.
    pub fn from_settings(user: &crate::config::UserSettings) -> anyhow::Result<Self> {
        let template = UserTemplate::parse(&user.template)?;
        let file = match &user.userfile {
            Some(path) => Some(read_userfile(path)?),
            None => None,
        };
        Ok(UserPicker::new(
            template,
            user.users,
            user.domains,
            file,
            user.password.clone(),
        )?)
    }

    /// `users`/`domains` are inclusive ranges for the template's first and second
    /// conversion. With `file`, the template and ranges are unused. Users without a
    /// password of their own get `default_password`.
    pub fn new(
        template: UserTemplate,
        users: (u32, u32),
        domains: (u32, u32),
        file: Option<Vec<UserFileEntry>>,
        default_password: String,
    ) -> Result<Self, UserError> {
        let source = match file {
            Some(entries) if entries.is_empty() => return Err(UserError::EmptyUserList),
            Some(entries) => Source::File(entries),
            None => {
                check_range("users", users)?;
                check_range("domains", domains)?;
                Source::Template {
                    template,
                    users,
                    domains,
                }
            }
        };
        Ok(UserPicker {
            source,
            default_password,
            shard: None,
        })
    }

    /// Only the users of `shard` (index `i` belongs to shard `i % N`, see
    /// [`crate::shard`]): refused when a shard would have no user of its own or two
    /// shards could share a mailbox.
    pub fn shard(mut self, shard: crate::shard::Shard) -> Result<Self, UserError> {
        if shard.count > 1 {
            match &self.source {
                Source::Template { template, .. } if template.conversions() == 0 => {
                    return Err(UserError::OneUserForShards {
                        template: template.as_str().to_owned(),
                        shards: shard.count,
                    });
                }
                Source::File(entries) => {
                    let mut seen = std::collections::HashMap::new();
                    for (line, entry) in entries.iter().enumerate() {
                        if let Some(first) = seen.insert(entry.user.as_str(), line) {
                            return Err(UserError::DuplicateUserForShards {
                                user: entry.user.clone(),
                                first: first + 1,
                                second: line + 1,
                            });
                        }
                    }
                }
                Source::Template { .. } => {}
            }
        }
        let users = self.total();
        if users < u64::from(shard.count) {
            return Err(UserError::TooFewUsersForShards {
                users,
                shards: shard.count,
            });
        }
        self.shard = Some(shard);
        Ok(self)
    }

    /// How many distinct users [`user_by_index`](Self::user_by_index) enumerates
    /// before wrapping around (for a template, only the ranges its conversions use;
    /// with a shard, only the shard's users).
    pub fn count(&self) -> u64 {
        match self.shard {
            Some(shard) => shard.users_of(self.total()),
            None => self.total(),
        }
    }

    /// The users of every shard.
    fn total(&self) -> u64 {
        match &self.source {
            Source::File(entries) => entries.len() as u64,
            Source::Template {
                template,
                users,
                domains,
            } => match template.conversions() {
                0 => 1,
                1 => span(*users),
                _ => span(*users) * span(*domains),
            },
        }
    }

    fn entry_user(&self, entry: &UserFileEntry) -> User {
        User {
            name: entry.user.clone(),
            password: entry
                .password
                .clone()
                .unwrap_or_else(|| self.default_password.clone()),
        }
    }

    fn template_user(&self, template: &UserTemplate, first: u32, second: u32) -> User {
        User {
            name: template.expand(first, second),
            password: self.default_password.clone(),
        }
    }

    /// A random user. Draws from `rng` only for the values the source needs.
    pub fn pick(&self, rng: &mut impl rand::Rng) -> User {
        if let Some(shard) = self.shard {
            let k = rng.random_range(0..self.count());
            return self.user_at(u64::from(shard.index) + k * u64::from(shard.count));
        }
        match &self.source {
            Source::File(entries) => self.entry_user(&entries[rng.random_range(0..entries.len())]),
            Source::Template {
                template,
                users,
                domains,
            } => {
                let first = if template.conversions() >= 1 {
                    rng.random_range(users.0..=users.1)
                } else {
                    users.0
                };
                let second = if template.conversions() >= 2 {
                    rng.random_range(domains.0..=domains.1)
                } else {
                    domains.0
                };
                self.template_user(template, first, second)
            }
        }
    }

    /// The `idx`-th user, wrapping around after [`count`](Self::count): the `idx`-th
    /// file line, or for a template the user number `users.0 + idx % users` with the
    /// domain number advancing each time the user numbers wrap. With a shard, the
    /// `idx`-th of the shard's users.
    pub fn user_by_index(&self, idx: u32) -> User {
        let idx = u64::from(idx);
        match self.shard {
            Some(shard) => {
                self.user_at(u64::from(shard.index) + (idx % self.count()) * u64::from(shard.count))
            }
            None => self.user_at(idx),
        }
    }

    /// User `idx` of all shards' users (wrapping around after them).
    fn user_at(&self, idx: u64) -> User {
        match &self.source {
            Source::File(entries) => {
                self.entry_user(&entries[(idx % entries.len() as u64) as usize])
            }
            Source::Template {
                template,
                users,
                domains,
            } => {
                let (nusers, ndomains) = (span(*users), span(*domains));
                // Both offsets are below a u32 span, so the sums fit in u32.
                let first = users.0 + (idx % nusers) as u32;
                let second = domains.0 + ((idx / nusers) % ndomains) as u32;
                self.template_user(template, first, second)
            }
        }
    }
}

/// Parses a `users=`/`domains=` value: `N` (meaning 1..=N, N ≥ 1) or `A-B`
/// (inclusive, A ≤ B).
pub fn parse_range(s: &str) -> Result<(u32, u32), UserError> {
    let error = |reason: &str| UserError::Range {
        input: s.to_owned(),
        reason: reason.to_owned(),
    };
    let number = |text: &str| -> Result<u32, UserError> {
        let text = text.trim();
        if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) {
            return Err(error("expected N or A-B with decimal numbers"));
        }
        text.parse()
            .map_err(|_| error("number too large (max 4294967295)"))
    };
    match s.split_once('-') {
        Some((low, high)) => {
            let (low, high) = (number(low)?, number(high)?);
            if low > high {
                return Err(error("range starts after its end"));
            }
            Ok((low, high))
        }
        None => {
            let n = number(s)?;
            if n == 0 {
                return Err(error("count must be at least 1"));
            }
            Ok((1, n))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;
    use rand_xoshiro::Xoshiro256PlusPlus;
    use std::io::Write;

    fn template_error(t: &str) -> (usize, String) {
        match UserTemplate::parse(t) {
            Err(UserError::Template {
                template,
                position,
                reason,
            }) => {
                assert_eq!(template, t);
                (position, reason)
            }
            other => panic!("{t:?}: expected a template error, got {other:?}"),
        }
    }

    #[test]
    fn template_expansion() {
        let cases: &[(&str, usize, u32, u32, &str)] = &[
            ("testuser", 0, 5, 6, "testuser"),
            ("", 0, 5, 6, ""),
            ("user%d", 1, 7, 9, "user7"),
            ("user%i", 1, 7, 9, "user7"),
            ("u%04d@d%d.org", 2, 42, 3, "u0042@d3.org"),
            ("%d", 1, 4294967295, 0, "4294967295"),
            ("%05d", 1, 123, 0, "00123"),
            ("%05d", 1, 1234567, 0, "1234567"),
            ("[%5d]", 1, 12, 0, "[   12]"),
            ("%0d|%d", 2, 0, 0, "0|0"),
            ("100%%", 0, 1, 2, "100%"),
            ("%%d%d%%", 1, 3, 0, "%d3%"),
            ("%d%d", 2, 1, 2, "12"),
            ("üser%d-ä", 1, 1, 0, "üser1-ä"),
        ];
        for &(t, conv, a, b, want) in cases {
            let template = UserTemplate::parse(t).unwrap();
            assert_eq!(template.conversions(), conv, "{t}");
            assert_eq!(template.expand(a, b), want, "{t}");
            assert_eq!(template.as_str(), t);
        }
    }

    #[test]
    fn template_errors() {
        assert_eq!(template_error("u%d%d%d").0, 6);
        assert!(template_error("u%d%d%d").1.contains("more than two"));
        let (pos, reason) = template_error("user%s");
        assert_eq!(pos, 5);
        assert!(reason.contains("%s"), "{reason}");
        let (pos, reason) = template_error("user%");
        assert_eq!(pos, 5);
        assert!(reason.contains("incomplete"), "{reason}");
        assert_eq!(template_error("äö%x").0, 3);
        assert_eq!(template_error("%-5d").0, 1);
        assert_eq!(template_error("%+d").0, 1);
        assert_eq!(template_error("%5").0, 1);
        assert_eq!(template_error("%05").0, 1);
        assert_eq!(template_error("%ld").0, 1);
        assert!(template_error("%99999999999999999999d").1.contains("width"));
        assert!(UserTemplate::parse("%64d").is_ok());
        assert!(template_error("%65d").1.contains("width"));
        let msg = UserTemplate::parse("a%q").unwrap_err().to_string();
        assert!(
            msg.contains("\"a%q\"") && msg.contains("position 2"),
            "{msg}"
        );
    }

    fn write_file(content: &[u8]) -> tempfile::NamedTempFile {
        let mut f = tempfile::NamedTempFile::new().unwrap();
        f.write_all(content).unwrap();
        f
    }

    #[test]
    fn userfile_parsing() {
        let f = write_file(
            b"alice\n:comment line\n\nbob:secret\ncarol:{PLAIN}pw:with:colons\r\n\
              dave:\neve:{SHA}x\nfrank@example.com:{PLAIN}\n",
        );
        let entries = read_userfile(f.path()).unwrap();
        let got: Vec<(&str, Option<&str>)> = entries
            .iter()
            .map(|e| (e.user.as_str(), e.password.as_deref()))
            .collect();
        assert_eq!(
            got,
            [
                ("alice", None),
                ("bob", Some("secret")),
                ("carol", Some("pw:with:colons")),
                ("dave", Some("")),
                ("eve", Some("{SHA}x")),
                ("frank@example.com", Some("")),
            ]
        );
        assert!(!format!("{entries:?}").contains("secret"));
        // No final newline.
        let f = write_file(b"solo:pw");
        assert_eq!(read_userfile(f.path()).unwrap().len(), 1);
    }

    fn line_error(content: &[u8]) -> (usize, String) {
        let f = write_file(content);
        let err = read_userfile(f.path()).unwrap_err();
        let msg = err.to_string();
        match err {
            UserError::Line { path, line, reason } => {
                assert_eq!(path, f.path());
                assert!(
                    msg.starts_with(&format!("{}:{line}: ", f.path().display())),
                    "{msg}"
                );
                (line, reason)
            }
            other => panic!("expected a line error, got {other:?}"),
        }
    }

    #[test]
    fn userfile_errors() {
        assert_eq!(line_error(b"ok\n  \n").0, 2);
        assert_eq!(line_error(b"ok\n:x\n\t:pw\n").0, 3);
        let (line, reason) = line_error(b"a\nb\nc\0d\n");
        assert_eq!((line, reason.as_str()), (3, "NUL byte in line"));
        let (line, reason) = line_error(b"a\r\n\xff\xfe:pw\r\n");
        assert_eq!((line, reason.as_str()), (2, "invalid UTF-8"));

        for empty in [&b""[..], b"\n\n", b":only\n:comments\n", b"\r\n"] {
            let f = write_file(empty);
            let err = read_userfile(f.path()).unwrap_err();
            assert!(matches!(err, UserError::NoUsers { .. }), "{err:?}");
            assert_eq!(
                err.to_string(),
                format!("no usernames in {}", f.path().display())
            );
        }

        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("nope.txt");
        let err = read_userfile(&missing).unwrap_err();
        assert!(matches!(err, UserError::Io { .. }));
        assert!(err.to_string().contains("nope.txt"), "{err}");
    }

    #[test]
    fn ranges() {
        assert_eq!(parse_range("99").unwrap(), (1, 99));
        assert_eq!(parse_range("1").unwrap(), (1, 1));
        assert_eq!(parse_range("5-10").unwrap(), (5, 10));
        assert_eq!(parse_range("0-0").unwrap(), (0, 0));
        assert_eq!(parse_range(" 7 - 8 ").unwrap(), (7, 8));
        assert_eq!(parse_range("4294967295").unwrap(), (1, u32::MAX));
        for bad in [
            "",
            "0",
            "-",
            "5-",
            "-5",
            "10-5",
            "x",
            "1-2-3",
            "4294967296",
            "+3",
            "1.5",
        ] {
            let err = parse_range(bad).unwrap_err();
            assert!(matches!(err, UserError::Range { .. }), "{bad:?}: {err:?}");
            assert!(err.to_string().contains(&format!("{bad:?}")), "{err}");
        }
    }

    #[test]
    fn user_debug_hides_password() {
        let u = User {
            name: "bob".into(),
            password: "hunter2".into(),
        };
        assert_eq!(format!("{u:?}"), r#"User { name: "bob", password: "***" }"#);
    }

    fn picker(t: &str, users: (u32, u32), domains: (u32, u32)) -> UserPicker {
        UserPicker::new(
            UserTemplate::parse(t).unwrap(),
            users,
            domains,
            None,
            "pw".into(),
        )
        .unwrap()
    }

    #[test]
    fn picker_template_ranges_and_determinism() {
        let p = picker("u%d@d%d", (3, 5), (7, 8));
        assert_eq!(p.count(), 6);
        let mut rng = Xoshiro256PlusPlus::seed_from_u64(1);
        let mut seen = std::collections::BTreeSet::new();
        let picks: Vec<User> = (0..200).map(|_| p.pick(&mut rng)).collect();
        for u in &picks {
            assert_eq!(u.password, "pw");
            seen.insert(u.name.clone());
        }
        let all: std::collections::BTreeSet<String> =
            (0..6).map(|i| p.user_by_index(i).name).collect();
        assert_eq!(seen, all);
        assert_eq!(all.len(), 6);
        let mut rng = Xoshiro256PlusPlus::seed_from_u64(1);
        let again: Vec<User> = (0..200).map(|_| p.pick(&mut rng)).collect();
        assert_eq!(picks, again);

        assert_eq!(p.user_by_index(0).name, "u3@d7");
        assert_eq!(p.user_by_index(2).name, "u5@d7");
        assert_eq!(p.user_by_index(3).name, "u3@d8");
        assert_eq!(p.user_by_index(6).name, "u3@d7");

        let p = picker("user%03d", (1, 99), (1, 1));
        assert_eq!(p.user_by_index(0).name, "user001");
        assert_eq!(p.user_by_index(98).name, "user099");
        assert_eq!(p.count(), 99);
        let single = picker("fixed", (1, 99), (1, 99));
        assert_eq!(single.count(), 1);
        assert_eq!(single.pick(&mut rng).name, "fixed");

        let full = picker("%d", (0, u32::MAX), (0, u32::MAX));
        assert_eq!(full.user_by_index(u32::MAX).name, u32::MAX.to_string());
        assert_eq!(full.count(), 1 << 32);
        full.pick(&mut rng);
    }

    #[test]
    fn picker_file() {
        let entries = vec![
            UserFileEntry {
                user: "a".into(),
                password: Some("pa".into()),
            },
            UserFileEntry {
                user: "b".into(),
                password: None,
            },
        ];
        let p = UserPicker::new(
            UserTemplate::parse("ignored%d").unwrap(),
            (5, 1), // unused with a file
            (1, 1),
            Some(entries),
            "default".into(),
        )
        .unwrap();
        assert_eq!(p.count(), 2);
        assert_eq!(
            p.user_by_index(0),
            User {
                name: "a".into(),
                password: "pa".into()
            }
        );
        assert_eq!(p.user_by_index(3).password, "default");
        let mut rng = Xoshiro256PlusPlus::seed_from_u64(7);
        let names: std::collections::BTreeSet<String> =
            (0..50).map(|_| p.pick(&mut rng).name).collect();
        assert_eq!(names.len(), 2);
    }

    #[test]
    fn picker_errors() {
        let t = || UserTemplate::parse("u%d").unwrap();
        assert!(UserPicker::new(t(), (5, 1), (1, 1), None, String::new()).is_err());
        assert!(UserPicker::new(t(), (1, 5), (2, 1), None, String::new()).is_err());
        assert!(matches!(
            UserPicker::new(t(), (1, 5), (1, 1), Some(vec![]), String::new()),
            Err(UserError::EmptyUserList)
        ));
    }

    #[test]
    fn shards_pick_only_their_own_users() {
        use crate::shard::Shard;
        let picker = |template: &str, users, domains| {
            UserPicker::new(
                UserTemplate::parse(template).unwrap(),
                users,
                domains,
                None,
                "p".into(),
            )
            .unwrap()
        };
        // users=1-10 over 3 shards: indices 0,3,6,9 / 1,4,7 / 2,5,8.
        let mut seen = std::collections::BTreeMap::new();
        for i in 0..3 {
            let p = picker("u%d", (1, 10), (1, 1))
                .shard(Shard::new(i, 3).unwrap())
                .unwrap();
            assert_eq!(p.count(), [4, 3, 3][i as usize]);
            let mut rng = Xoshiro256PlusPlus::seed_from_u64(u64::from(i));
            let picked: std::collections::BTreeSet<String> =
                (0..200).map(|_| p.pick(&mut rng).name).collect();
            let listed: std::collections::BTreeSet<String> = (0..p.count() as u32)
                .map(|k| p.user_by_index(k).name)
                .collect();
            assert_eq!(picked, listed, "shard {i} picks exactly its users");
            for name in listed {
                assert!(seen.insert(name, i).is_none(), "a user in two shards");
            }
        }
        assert_eq!(seen.len(), 10);
        assert_eq!(seen["u1"], 0);
        assert_eq!(seen["u5"], 1);
        assert_eq!(seen["u10"], 0);
        // Two conversions: the index runs over users x domains.
        let p = picker("u%d@d%d", (1, 2), (1, 3))
            .shard(Shard::new(1, 2).unwrap())
            .unwrap();
        let names: Vec<String> = (0..3).map(|k| p.user_by_index(k).name).collect();
        assert_eq!(names, ["u2@d1", "u2@d2", "u2@d3"]);
        // Shard 0 of 1 is the whole range, in the unsharded order.
        let whole = picker("u%d", (1, 10), (1, 1));
        let one = picker("u%d", (1, 10), (1, 1))
            .shard(Shard::new(0, 1).unwrap())
            .unwrap();
        for k in 0..10 {
            assert_eq!(whole.user_by_index(k), one.user_by_index(k));
        }
    }

    #[test]
    fn shards_never_share_a_mailbox() {
        use crate::shard::Shard;
        let two = Shard::new(1, 2).unwrap();
        let fixed = UserPicker::new(
            UserTemplate::parse("alice").unwrap(),
            (1, 9),
            (1, 1),
            None,
            "p".into(),
        )
        .unwrap();
        let e = fixed.clone().shard(two).unwrap_err().to_string();
        assert!(e.starts_with("user=alice names one user"), "{e}");
        // One shard of one is just the run.
        assert!(fixed.shard(Shard::new(0, 1).unwrap()).is_ok());
        let few = UserPicker::new(
            UserTemplate::parse("u%d").unwrap(),
            (1, 2),
            (1, 1),
            None,
            "p".into(),
        )
        .unwrap();
        assert_eq!(
            few.shard(Shard::new(0, 3).unwrap())
                .unwrap_err()
                .to_string(),
            "2 users cannot be split over 3 shards: every shard needs users of its own"
        );
        let entry = |user: &str| UserFileEntry {
            user: user.into(),
            password: None,
        };
        let file = UserPicker::new(
            UserTemplate::parse("x").unwrap(),
            (1, 1),
            (1, 1),
            Some(vec![entry("a"), entry("b"), entry("a")]),
            "p".into(),
        )
        .unwrap();
        assert_eq!(
            file.shard(two).unwrap_err().to_string(),
            "users 1 and 3 of the user file are both \"a\": with shard= two shards could share that mailbox"
        );
    }
}
