//! The one table of legacy keys and flags: the parser looks keys up here and the
//! help text is printed from it, so the two cannot drift apart.

use std::path::PathBuf;
use std::time::Duration;

use crate::config::RunTime;

use super::error::{CliError, shown};

/// Help-text group of a key, in the order upstream prints them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Group {
    AuthUsers,
    Connection,
    Mailbox,
    Testing,
    Flags,
}

impl Group {
    /// All groups in help order.
    pub const ALL: [Group; 5] = [
        Group::AuthUsers,
        Group::Connection,
        Group::Mailbox,
        Group::Testing,
        Group::Flags,
    ];

    /// The group's heading in the help text.
    pub fn title(self) -> &'static str {
        match self {
            Group::AuthUsers => "Authentication & Users",
            Group::Connection => "Connection & Network",
            Group::Mailbox => "Mailbox & Message Source",
            Group::Testing => "Testing & Control",
            Group::Flags => "Flags & Behavior",
        }
    }
}

/// Which forms of an argument a key accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// Exact bare word only (`random`).
    Flag,
    /// `key=value` only, with a non-empty value.
    Value,
    /// Bare word or `key=value` (`ssl`, `rawlog=DIR`).
    FlagOrValue,
}

/// One argument as split by the parser.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Arg<'a> {
    /// The whole argument as given.
    pub raw: &'a str,
    /// The value after the first `=`, if any.
    pub value: Option<&'a str>,
}

impl Arg<'_> {
    fn value(&self) -> &str {
        self.value.unwrap_or("")
    }
}

/// What the parser has learned so far, beyond the [`super::draft::Draft`].
#[derive(Debug, Clone, Default)]
pub(crate) struct Seen {
    /// `ssl` (Some(false)) or `ssl=any-cert` (Some(true)).
    pub ssl: Option<bool>,
    /// `starttls`.
    pub starttls: bool,
    /// `mech=` given explicitly.
    pub mech: bool,
    /// `box=` given explicitly.
    pub mailbox: bool,
    /// Every key and flag given (`state` for state names, `-` included), in order.
    pub given: Vec<&'static str>,
}

/// The parser's working state.
#[derive(Debug, Clone)]
pub(crate) struct Builder {
    pub settings: super::draft::Draft,
    pub seen: Seen,
    /// `$HOME`, for `~/` in paths.
    pub home: Option<PathBuf>,
}

type Apply = fn(&mut Builder, Arg<'_>) -> Result<(), CliError>;

/// One legacy key or flag.
#[derive(Clone, Copy)]
pub struct KeySpec {
    /// The key, exactly as typed (case-sensitive).
    pub name: &'static str,
    pub group: Group,
    pub kind: Kind,
    /// Placeholder for the value in help and error texts (`N`, `FILE`); empty for flags.
    pub hint: &'static str,
    /// Default shown in brackets in the help text; empty for none.
    pub default: &'static str,
    /// One-line description.
    pub help: &'static str,
    pub(crate) apply: Apply,
}

impl std::fmt::Debug for KeySpec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KeySpec")
            .field("name", &self.name)
            .field("group", &self.group)
            .field("kind", &self.kind)
            .finish_non_exhaustive()
    }
}

impl KeySpec {
    /// How the key is written in help: `clients=N`, `random`, `ssl[=any-cert]`.
    pub fn synopsis(&self) -> String {
        match self.kind {
            Kind::Flag => self.name.to_owned(),
            Kind::Value => format!("{}={}", self.name, self.hint),
            Kind::FlagOrValue => format!("{}[={}]", self.name, self.hint),
        }
    }
}

/// Finds a key or flag by its exact name.
pub fn find(name: &str) -> Option<&'static KeySpec> {
    KEYS.iter().find(|k| k.name == name)
}

const fn key(
    name: &'static str,
    group: Group,
    kind: Kind,
    hint: &'static str,
    default: &'static str,
    help: &'static str,
    apply: Apply,
) -> KeySpec {
    KeySpec {
        name,
        group,
        kind,
        hint,
        default,
        help,
        apply,
    }
}

const fn flag(name: &'static str, help: &'static str, apply: Apply) -> KeySpec {
    key(name, Group::Flags, Kind::Flag, "", "", help, apply)
}

use Group::{AuthUsers, Connection, Mailbox, Testing};
use Kind::{Flag, FlagOrValue, Value};

/// Every legacy key and flag, in help order within each group.
pub static KEYS: &[KeySpec] = &[
    // Authentication & Users
    key(
        "user",
        AuthUsers,
        Value,
        "TEMPLATE",
        "$USER",
        "User name; %d/%i take numbers from users=, domains=",
        |b, a| {
            check_user_template(a)?;
            b.settings.user.template = a.value().to_owned();
            Ok(())
        },
    ),
    key(
        "users",
        AuthUsers,
        Value,
        "N|A-B",
        "1-99",
        "Numbers for the first %d in user=: 1..N or A..B",
        |b, a| {
            b.settings.user.users = range(a, "users range")?;
            Ok(())
        },
    ),
    key(
        "domains",
        AuthUsers,
        Value,
        "N|A-B",
        "1-99",
        "Numbers for the second %d in user=: 1..N or A..B",
        |b, a| {
            b.settings.user.domains = range(a, "domains range")?;
            Ok(())
        },
    ),
    key(
        "userfile",
        AuthUsers,
        Value,
        "FILE",
        "",
        "Take users from FILE: `user` or `user:password` lines",
        |b, a| {
            b.settings.user.userfile = Some(b.path(a));
            Ok(())
        },
    ),
    key(
        "user2",
        AuthUsers,
        Value,
        "NAME",
        "",
        "Second user name, for scripted tests",
        |b, a| {
            b.settings.user.user2 = Some(a.value().to_owned());
            Ok(())
        },
    ),
    key(
        "pass",
        AuthUsers,
        Value,
        "PASSWORD",
        "pass",
        "Password of users without one in the user file (ps shows it!)",
        |b, a| {
            b.settings.user.password = a.value().to_owned();
            Ok(())
        },
    ),
    key(
        "pass_file",
        AuthUsers,
        Value,
        "FILE",
        "",
        "Read pass= from the first line of FILE (owner-only permissions)",
        |b, a| {
            let path = b.path(a);
            b.settings.user.password = crate::secrets::read_pass_file(&path)
                .map_err(|e| invalid(a, "pass_file", format!("a readable password file: {e}")))?;
            Ok(())
        },
    ),
    key(
        "master",
        AuthUsers,
        Value,
        "USER",
        "",
        "Authenticate as this master user on behalf of each user",
        |b, a| {
            b.settings.user.master = Some(a.value().to_owned());
            Ok(())
        },
    ),
    key(
        "mech",
        AuthUsers,
        Value,
        "MECH",
        "LOGIN",
        "Exactly LOGIN sends LOGIN, others AUTHENTICATE (auth=100: PLAIN)",
        |b, a| {
            b.settings.user.mech =
                crate::config::Mech::parse(a.value()).ok_or_else(|| CliError::UnknownMech {
                    mech: shown(a.value()),
                })?;
            b.seen.mech = true;
            Ok(())
        },
    ),
    // Connection & Network
    key(
        "host",
        Connection,
        Value,
        "HOST",
        "127.0.0.1",
        "Server name; also the TLS server name",
        |b, a| {
            b.settings.host = a.value().to_owned();
            Ok(())
        },
    ),
    key(
        "hostip",
        Connection,
        Value,
        "ADDR",
        "host",
        "Address to connect to, if not host's",
        |b, a| {
            b.settings.hostip = Some(a.value().to_owned());
            Ok(())
        },
    ),
    key(
        "port",
        Connection,
        Value,
        "PORT",
        "143, 993 with ssl",
        "Server port",
        |b, a| {
            const EXPECTED: &str = "a port number from 1 to 65535";
            let port: u16 = number(a, "port").map_err(|_| invalid(a, "port", EXPECTED))?;
            if port == 0 {
                return Err(invalid(a, "port", EXPECTED));
            }
            b.settings.port = Some(port);
            Ok(())
        },
    ),
    key(
        "ssl",
        Connection,
        FlagOrValue,
        "any-cert",
        "",
        "TLS on connect; any-cert: accept any certificate (also with starttls)",
        |b, a| {
            match a.value {
                None => b.seen.ssl = Some(false),
                Some("any-cert") => b.seen.ssl = Some(true),
                Some(other) => {
                    return Err(CliError::InvalidSsl {
                        value: shown(other),
                    });
                }
            }
            Ok(())
        },
    ),
    key(
        "starttls",
        Connection,
        Flag,
        "",
        "",
        "Connect in plain text, then upgrade with STARTTLS",
        |b, _| {
            b.seen.starttls = true;
            Ok(())
        },
    ),
    key(
        "ssl_ca_file",
        Connection,
        Value,
        "FILE",
        "",
        "Trust the PEM CA certificates in FILE instead of the system's",
        |b, a| {
            b.settings.tls.ca_file = Some(b.path(a));
            Ok(())
        },
    ),
    key(
        "clients",
        Connection,
        Value,
        "N",
        "10",
        "Number of concurrent connections",
        |b, a| {
            let n: u32 = number(a, "clients count")?;
            if n == 0 {
                return Err(invalid(a, "clients count", "a whole number of at least 1"));
            }
            b.settings.clients = n;
            Ok(())
        },
    ),
    key(
        "timeout",
        Connection,
        Value,
        "SECS|DURATION",
        "30s",
        "Connect and command timeout, in seconds or like 500ms or 2m",
        |b, a| {
            b.settings.timeout = duration(a, "timeout")?;
            Ok(())
        },
    ),
    key(
        "stalled_disconnect_timeout",
        Connection,
        Value,
        "SECS",
        "0 = off",
        "Disconnect connections that had no I/O for SECS seconds",
        |b, a| {
            b.settings.stalled_disconnect_timeout = optional_secs(a, "stalled disconnect timeout")?;
            Ok(())
        },
    ),
    key(
        "max_literal",
        Connection,
        Value,
        "BYTES",
        "32768",
        "Largest server literal kept in memory",
        |b, a| {
            b.settings.max_literal = number(a, "max_literal size")?;
            Ok(())
        },
    ),
    // Mailbox & Message Source
    key(
        "box",
        Mailbox,
        Value,
        "MAILBOX",
        "INBOX, test=: imaptest",
        "Mailbox under test (%{client_idx}: slot number)",
        |b, a| {
            b.settings.mailbox = a.value().to_owned();
            b.seen.mailbox = true;
            Ok(())
        },
    ),
    key(
        "copybox",
        Mailbox,
        Value,
        "MAILBOX",
        "",
        "Destination of COPY and MOVE; without it both are off",
        |b, a| {
            b.settings.copybox = Some(a.value().to_owned());
            Ok(())
        },
    ),
    key(
        "mbox",
        Mailbox,
        Value,
        "FILE",
        "~/mail/dovecot-crlf",
        "mbox file whose messages are appended",
        |b, a| {
            b.settings.mbox = b.path(a);
            Ok(())
        },
    ),
    key(
        "random_msg_size",
        Mailbox,
        Value,
        "BYTES",
        "0 = off",
        "Append random messages of 1..BYTES bytes, not the mbox's",
        |b, a| {
            let size = number(a, "random_msg_size")?;
            b.settings.random_msg_size = crate::limits::message_size("random_msg_size", size)
                .map_err(|e| invalid(a, "random_msg_size", format!("at most {} bytes", e.limit)))?;
            Ok(())
        },
    ),
    key(
        "msgs",
        Mailbox,
        Value,
        "N",
        "30",
        "Number of messages to keep in the mailbox",
        |b, a| {
            b.settings.msgs = number(a, "msgs count")?;
            Ok(())
        },
    ),
    // Testing & Control
    key(
        "secs",
        Testing,
        Value,
        "N[,F]",
        "run forever; F=30",
        "Stop after N s, then wait at most F s for logouts",
        |b, a| {
            b.settings.secs = Some(secs(a)?);
            Ok(())
        },
    ),
    key(
        "seed",
        Testing,
        Value,
        "N",
        "",
        "Random seed, for reproducible runs",
        |b, a| {
            b.settings.seed = Some(number(a, "seed")?);
            Ok(())
        },
    ),
    key(
        "checkpoint",
        Testing,
        Value,
        "SECS",
        "0 = off",
        "Check every SECS seconds that all sessions agree",
        |b, a| {
            b.settings.checkpoint = optional_secs(a, "checkpoint interval")?;
            Ok(())
        },
    ),
    key(
        "test",
        Testing,
        Value,
        "PATH",
        "",
        "Run the scripted tests in this file or directory",
        |b, a| {
            b.settings.test = Some(b.path(a));
            Ok(())
        },
    ),
    key(
        "profile",
        Testing,
        Value,
        "FILE",
        "",
        "Simulate the users and clients described in this profile",
        |b, a| {
            b.settings.profile = Some(b.path(a));
            Ok(())
        },
    ),
    key(
        "junit",
        Testing,
        Value,
        "FILE",
        "",
        "With test=: write the results as JUnit XML",
        |b, a| {
            b.settings.junit = Some(b.path(a));
            Ok(())
        },
    ),
    key(
        "plan",
        Testing,
        Value,
        "FILE",
        "",
        "With profile= and dry_run: write the schedule (time, user, action) as CSV",
        |b, a| {
            b.settings.plan = Some(b.path(a));
            Ok(())
        },
    ),
    key(
        "output",
        Testing,
        Value,
        "FILE",
        "",
        "Write per-second results to FILE",
        |b, a| {
            b.settings.output = Some(b.path(a));
            Ok(())
        },
    ),
    key(
        "csv",
        Testing,
        Value,
        "FILE",
        "",
        "Write per-second results as CSV to FILE",
        |b, a| {
            b.settings.csv = Some(b.path(a));
            Ok(())
        },
    ),
    key(
        "session_csv",
        Testing,
        Value,
        "FILE",
        "",
        "Profile mode: write one CSV row per client session to FILE",
        |b, a| {
            b.settings.session_csv = Some(b.path(a));
            Ok(())
        },
    ),
    key(
        "summary",
        Testing,
        Value,
        "FILE",
        "",
        "Write the run summary (JSON, schemas/summary.schema.json) to FILE",
        |b, a| {
            b.settings.summary = Some(b.path(a));
            Ok(())
        },
    ),
    key(
        "report",
        Testing,
        Value,
        "FILE",
        "",
        "Write a self-contained HTML report (charts, tables) to FILE",
        |b, a| {
            b.settings.report = Some(b.path(a));
            Ok(())
        },
    ),
    key(
        "server_pid",
        Testing,
        Value,
        "PID",
        "",
        "Sample this local server and its children: CPU, RSS, I/O each second",
        |b, a| {
            let pid = number(a, "server_pid")?;
            b.settings.server_usage = Some(crate::usage::ServerSource::ProcessTree(pid));
            Ok(())
        },
    ),
    key(
        "server_cgroup",
        Testing,
        Value,
        "DIR",
        "",
        "Sample the server's cgroup v2 directory instead of server_pid=",
        |b, a| {
            b.settings.server_usage = Some(crate::usage::ServerSource::Cgroup(b.path(a)));
            Ok(())
        },
    ),
    key(
        "csv_format",
        Testing,
        Value,
        "long|wide",
        "long",
        "CSV layout: a row per command per second, or one row per second",
        |b, a| {
            b.settings.csv_format = match a.value() {
                "long" => crate::config::CsvFormat::Long,
                "wide" => crate::config::CsvFormat::Wide,
                other => return Err(invalid_value(a, "csv_format", other, "long or wide")),
            };
            Ok(())
        },
    ),
    key(
        "slo",
        Testing,
        Value,
        "EXPR[;EXPR…]",
        "",
        "Objective checked after the run, e.g. \"imap.LOGIN.p99<500ms\"",
        |b, a| {
            let slos = crate::slo::Slo::parse_list(a.value())?;
            b.settings.slos.extend(slos);
            Ok(())
        },
    ),
    key(
        "warmup",
        Testing,
        Value,
        "DURATION",
        "",
        "Leave the first DURATION out of SLO verdicts (0: none; profile: ramp-up)",
        |b, a| {
            // `warmup=0` counts the whole run (a profile's default is its ramp-up).
            b.settings.warmup = Some(if a.value() == "0" {
                Duration::ZERO
            } else {
                duration(a, "warmup")?
            });
            Ok(())
        },
    ),
    key(
        "shard",
        Testing,
        Value,
        "I/N",
        "",
        "Run shard I of N: users with index % N == I (env IMAPTEST_SHARDS)",
        |b, a| {
            b.settings.shard = Some(
                crate::shard::Shard::parse(a.value())
                    .map_err(|_| invalid(a, "shard", "I/N with 0 <= I < N, such as 0/4"))?,
            );
            Ok(())
        },
    ),
    key(
        "start_at",
        Testing,
        Value,
        "TIME",
        "",
        "Wait until TIME (RFC 3339 or unix seconds), then start: shards line up",
        |b, a| {
            let at = crate::shard::parse_start_at(a.value(), std::time::SystemTime::now())
                .map_err(|e| CliError::StartAt(e.to_string()))?;
            b.settings.start_at = Some(at);
            Ok(())
        },
    ),
    key(
        "rawlog",
        Testing,
        FlagOrValue,
        "DIR",
        "",
        "Write rawlog.N protocol logs to DIR (alone: current directory)",
        |b, a| {
            b.settings.rawlog = Some(match a.value {
                None => PathBuf::from("."),
                Some(_) => b.path(a),
            });
            Ok(())
        },
    ),
    // Flags & Behavior
    flag(
        "random",
        "Pick the next state at random instead of in table order",
        |b, _| {
            b.settings.random_states = true;
            Ok(())
        },
    ),
    flag("no_pipelining", "Send one command at a time", |b, _| {
        b.settings.no_pipelining = true;
        Ok(())
    }),
    flag(
        "dry_run",
        "With profile=: plan the schedule without connecting (see plan=)",
        |b, _| {
            b.settings.dry_run = true;
            Ok(())
        },
    ),
    flag(
        "no_tracking",
        "Do not track FETCH replies (saves memory)",
        |b, _| {
            b.settings.no_tracking = true;
            Ok(())
        },
    ),
    flag(
        "disconnect_quit",
        "Exit when a logged-in connection is lost",
        |b, _| {
            b.settings.disconnect_quit = true;
            Ok(())
        },
    ),
    flag(
        "overwrite",
        "Let csv=, output=, summary= and other outputs replace existing files",
        |b, _| {
            b.settings.overwrite = true;
            Ok(())
        },
    ),
    flag("error_quit", "Exit on the first error", |b, _| {
        b.settings.error_quit = true;
        Ok(())
    }),
    flag(
        "own_msgs",
        "Check that each session's messages are left alone by the others",
        |b, _| {
            b.settings.own_msgs = true;
            Ok(())
        },
    ),
    flag(
        "own_flags",
        "Check that each session's flags are left alone by the others",
        |b, _| {
            b.settings.own_flags = true;
            Ok(())
        },
    ),
    flag(
        "qresync",
        "ENABLE QRESYNC after login and use QRESYNC SELECT",
        |b, _| {
            b.settings.qresync = true;
            Ok(())
        },
    ),
    flag(
        "imap4rev2",
        "ENABLE IMAP4REV2 after login (implies qresync)",
        |b, _| {
            b.settings.imap4rev2 = true;
            Ok(())
        },
    ),
];

/// Keys of `imaptest mbox-gen`: (name, hint, default, help).
pub static MBOX_GEN_KEYS: &[(&str, &str, &str, &str)] = &[
    ("out", "FILE", "", "Write the mbox to FILE (required)"),
    ("count", "N", "1000", "Number of messages"),
    ("seed", "S", "1", "Random seed"),
];

/// Synopsis of `mbox-gen`, for help and error texts.
pub const MBOX_GEN_USAGE: &str = "imaptest mbox-gen out=FILE [count=N] [seed=S] [overwrite]";

impl Builder {
    /// The value as a path, with a leading `~` or `~/` replaced by `$HOME`.
    pub(crate) fn path(&self, a: Arg<'_>) -> PathBuf {
        expand_home(a.value(), self.home.as_deref())
    }
}

/// A leading `~` or `~/` replaced by `home` (unchanged without a home).
pub(crate) fn expand_home(value: &str, home: Option<&std::path::Path>) -> PathBuf {
    match (home, value.strip_prefix('~')) {
        (Some(home), Some("")) => home.to_path_buf(),
        (Some(home), Some(rest)) if rest.starts_with('/') => {
            home.join(rest.trim_start_matches('/'))
        }
        _ => PathBuf::from(value),
    }
}

/// An "invalid VALUE in ARG" error for this argument's value.
pub(crate) fn invalid(a: Arg<'_>, what: &'static str, expected: impl Into<String>) -> CliError {
    invalid_value(a, what, a.value(), expected)
}

/// An "invalid VALUE in ARG" error for part of this argument's value.
pub(crate) fn invalid_value(
    a: Arg<'_>,
    what: &'static str,
    value: &str,
    expected: impl Into<String>,
) -> CliError {
    CliError::InvalidValue {
        what,
        value: shown(value),
        arg: shown(a.raw),
        expected: expected.into(),
    }
}

/// Unsigned integer types the parser reads.
pub(crate) trait Unsigned: TryFrom<u64> {
    const MAX: u64;
}

macro_rules! unsigned {
    ($($t:ty),*) => {$(
        impl Unsigned for $t {
            const MAX: u64 = <$t>::MAX as u64;
        }
    )*};
}
unsigned!(u8, u16, u32, u64, usize);

/// Parses `text` as a strict unsigned decimal (digits only).
pub(crate) fn parse_unsigned<T: Unsigned>(
    a: Arg<'_>,
    what: &'static str,
    text: &str,
) -> Result<T, CliError> {
    if text.is_empty() || !text.bytes().all(|c| c.is_ascii_digit()) {
        return Err(invalid_value(a, what, text, "a whole number"));
    }
    text.parse::<u64>()
        .ok()
        .and_then(|n| T::try_from(n).ok())
        .ok_or_else(|| {
            invalid_value(
                a,
                what,
                text,
                format!("a whole number no larger than {}", T::MAX),
            )
        })
}

/// The whole value as a strict unsigned decimal.
fn number<T: Unsigned>(a: Arg<'_>, what: &'static str) -> Result<T, CliError> {
    parse_unsigned(a, what, a.value())
}

/// `N` (1..=N, N ≥ 1) or `A-B` (A..=B, A ≤ B).
fn range(a: Arg<'_>, what: &'static str) -> Result<(u32, u32), CliError> {
    let value = a.value();
    const EXPECTED: &str = "N (meaning 1-N) or A-B with A <= B";
    match value.split_once('-') {
        None => {
            let n: u32 = parse_unsigned(a, what, value).map_err(|_| invalid(a, what, EXPECTED))?;
            if n == 0 {
                return Err(invalid(a, what, "N of at least 1, or A-B with A <= B"));
            }
            Ok((1, n))
        }
        Some((low, high)) => {
            let low: u32 = parse_unsigned(a, what, low).map_err(|_| invalid(a, what, EXPECTED))?;
            let high: u32 =
                parse_unsigned(a, what, high).map_err(|_| invalid(a, what, EXPECTED))?;
            if low > high {
                return Err(invalid(a, what, EXPECTED));
            }
            Ok((low, high))
        }
    }
}

/// Whole seconds, `0` meaning off.
fn optional_secs(a: Arg<'_>, what: &'static str) -> Result<Option<Duration>, CliError> {
    let secs = seconds(a, what, a.value())?;
    Ok((secs > 0).then(|| Duration::from_secs(secs)))
}

/// Longest time any key takes, in seconds (about 31 years): larger ones would
/// overflow `Instant` arithmetic in the engines.
pub(crate) const MAX_SECS: u64 = 1_000_000_000;

/// Too-large text for second values.
const TOO_LONG: &str = "a whole number of seconds no larger than 1000000000";

/// `text` as whole seconds, at most [`MAX_SECS`].
fn seconds(a: Arg<'_>, what: &'static str, text: &str) -> Result<u64, CliError> {
    let secs: u64 = parse_unsigned(a, what, text)?;
    if secs > MAX_SECS {
        return Err(invalid_value(a, what, text, TOO_LONG));
    }
    Ok(secs)
}

/// Whole seconds (`30`) or a humantime duration (`500ms`, `2m 30s`), above zero.
pub(crate) fn duration(a: Arg<'_>, what: &'static str) -> Result<Duration, CliError> {
    const EXPECTED: &str = "seconds or a duration such as 500ms or 2m, above zero";
    let value = a.value();
    let d = if value.bytes().all(|c| c.is_ascii_digit()) {
        Duration::from_secs(seconds(a, what, value)?)
    } else {
        humantime::parse_duration(value).map_err(|_| invalid(a, what, EXPECTED))?
    };
    if d.is_zero() {
        return Err(invalid(a, what, EXPECTED));
    }
    if d > Duration::from_secs(MAX_SECS) {
        return Err(invalid(a, what, "a duration no longer than 1000000000s"));
    }
    Ok(d)
}

/// Default grace period after `secs=N`.
pub(crate) const DEFAULT_STOP_GRACE: u64 = 30;

/// `N` or `N,F`: N ≥ 1 seconds of running, F seconds of grace.
fn secs(a: Arg<'_>) -> Result<RunTime, CliError> {
    let value = a.value();
    let (run, grace) = match value.split_once(',') {
        None => (value, None),
        Some((run, grace)) => (run, Some(grace)),
    };
    let run = seconds(a, "secs", run)?;
    if run == 0 {
        return Err(invalid_value(
            a,
            "secs",
            "0",
            "at least 1 second (leave secs out to run until interrupted)",
        ));
    }
    let grace: u64 = match grace {
        None => DEFAULT_STOP_GRACE,
        Some(grace) => seconds(a, "secs final wait", grace)?,
    };
    Ok(RunTime {
        run: Duration::from_secs(run),
        stop_grace: Duration::from_secs(grace),
    })
}

/// Widest `%Nd` in a `user=` template (as [`crate::users`] allows).
const MAX_USER_WIDTH: usize = 64;

/// A `user=` template allows `%%` and at most two `%d`/`%i`, each with optional
/// width digits (`%04d`), as upstream.
fn check_user_template(a: Arg<'_>) -> Result<(), CliError> {
    const EXPECTED: &str = "at most two %d or %i (with an optional width up to 64, such as %04d), and %% for a percent sign";
    let mut conversions = 0;
    let mut chars = a.value().chars().peekable();
    while let Some(c) = chars.next() {
        if c != '%' {
            continue;
        }
        if chars.next_if_eq(&'%').is_some() {
            continue;
        }
        let mut width = 0usize;
        while let Some(digit) = chars.next_if(char::is_ascii_digit) {
            width = width * 10 + (digit as usize - '0' as usize);
            if width > MAX_USER_WIDTH {
                return Err(invalid(a, "user template", EXPECTED));
            }
        }
        match chars.next() {
            Some('d' | 'i') => conversions += 1,
            _ => return Err(invalid(a, "user template", EXPECTED)),
        }
    }
    if conversions > 2 {
        return Err(invalid(a, "user template", EXPECTED));
    }
    Ok(())
}
