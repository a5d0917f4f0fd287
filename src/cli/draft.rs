//! The parser's working copy of the settings: every key's value as given, whatever
//! the mode. [`Draft::into_settings`] checks that each key given means something in
//! the chosen mode and builds the mode's own [`crate::config::Settings`].

use std::path::PathBuf;
use std::time::Duration;

use super::error::CliError;
use crate::config::{CsvFormat, RunTime, TlsMode, TlsSettings, UserSettings};
use crate::slo::Slo;
use crate::states::Probabilities;

/// Every key's value as parsed, before the mode is known; [`Draft::into_settings`]
/// turns it into the settings of one mode.
#[derive(Debug, Clone, PartialEq)]
pub struct Draft {
    pub host: String,
    /// `hostip=`: the address actually connected to (default: `host`).
    pub hostip: Option<String>,
    /// `port=`; `None` means the protocol's default (143, or 993 with implicit TLS).
    pub port: Option<u16>,
    pub tls: TlsSettings,
    pub user: UserSettings,
    pub clients: u32,
    pub secs: Option<RunTime>,
    pub seed: Option<u64>,
    pub msgs: u32,
    pub mbox: PathBuf,
    pub random_msg_size: u64,
    /// `box=`: the mailbox under test.
    pub mailbox: String,
    pub copybox: Option<String>,
    /// `rawlog` / `rawlog=DIR`: per-connection protocol logs in this directory.
    pub rawlog: Option<PathBuf>,
    pub probabilities: Probabilities,
    /// `random`: pick states at random instead of walking the table in order.
    pub random_states: bool,
    pub no_pipelining: bool,
    pub no_tracking: bool,
    pub disconnect_quit: bool,
    pub error_quit: bool,
    pub own_msgs: bool,
    pub own_flags: bool,
    pub qresync: bool,
    pub imap4rev2: bool,
    pub checkpoint: Option<Duration>,
    pub stalled_disconnect_timeout: Option<Duration>,
    pub test: Option<PathBuf>,
    pub profile: Option<PathBuf>,
    pub output: Option<PathBuf>,
    pub csv: Option<PathBuf>,
    /// `session_csv=`: profile mode's per-session CSV.
    pub session_csv: Option<PathBuf>,
    /// `junit=FILE`: scripted test results as JUnit XML.
    pub junit: Option<PathBuf>,
    /// `plan=FILE`: with `dry_run`, write a profile's schedule here instead of running it.
    pub plan: Option<PathBuf>,
    /// `dry_run`: plan a profile without connecting.
    pub dry_run: bool,
    /// Largest server literal kept in memory; larger ones are skipped, their size kept.
    pub max_literal: usize,
    /// Connect and command timeout.
    pub timeout: Duration,
    /// `summary=FILE`: the JSON run summary.
    pub summary: Option<PathBuf>,
    /// `csv_format=long|wide`.
    pub csv_format: CsvFormat,
    /// `slo=`: objectives, in the order given.
    pub slos: Vec<Slo>,
    /// `warmup=`.
    pub warmup: Option<Duration>,
    /// `overwrite`: outputs may replace existing files.
    pub overwrite: bool,
    /// `shard=I/N`, or from `$JOB_COMPLETION_INDEX` and `$IMAPTEST_SHARDS`.
    pub shard: Option<crate::shard::Shard>,
    /// `start_at=`.
    pub start_at: Option<std::time::SystemTime>,
    /// `report=FILE`: the HTML report.
    pub report: Option<PathBuf>,
    /// `server_pid=`/`server_cgroup=`.
    pub server_usage: Option<crate::usage::ServerSource>,
}

impl Default for Draft {
    fn default() -> Self {
        Draft {
            host: "127.0.0.1".to_owned(),
            hostip: None,
            port: None,
            tls: TlsSettings::default(),
            user: UserSettings::default(),
            clients: 10,
            secs: None,
            seed: None,
            msgs: 30,
            mbox: default_mbox_path(),
            random_msg_size: 0,
            mailbox: "INBOX".to_owned(),
            copybox: None,
            rawlog: None,
            probabilities: Probabilities::default(),
            random_states: false,
            no_pipelining: false,
            no_tracking: false,
            disconnect_quit: false,
            error_quit: false,
            own_msgs: false,
            own_flags: false,
            qresync: false,
            imap4rev2: false,
            checkpoint: None,
            stalled_disconnect_timeout: None,
            test: None,
            profile: None,
            output: None,
            csv: None,
            session_csv: None,
            junit: None,
            plan: None,
            dry_run: false,
            max_literal: 32 * 1024,
            timeout: Duration::from_secs(30),
            summary: None,
            csv_format: CsvFormat::Long,
            slos: Vec::new(),
            warmup: None,
            overwrite: false,
            shard: None,
            start_at: None,
            report: None,
            server_usage: None,
        }
    }
}

impl Draft {
    /// The IMAP port to use.
    pub fn imap_port(&self) -> u16 {
        self.port.unwrap_or(match self.tls.mode {
            TlsMode::Implicit => 993,
            _ => 143,
        })
    }

    /// The address to connect to.
    pub fn connect_host(&self) -> &str {
        self.hostip.as_deref().unwrap_or(&self.host)
    }
}

fn default_mbox_path() -> PathBuf {
    match std::env::var_os("HOME") {
        Some(home) => PathBuf::from(home).join("mail/dovecot-crlf"),
        None => PathBuf::from("dovecot-crlf"),
    }
}

/// A mode, for the table of keys that only some modes use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ModeKind {
    Stress,
    Scripted,
    Profile,
}

impl ModeKind {
    pub fn describe(self) -> &'static str {
        match self {
            ModeKind::Stress => "stress mode (no test= or profile=)",
            ModeKind::Scripted => "scripted tests (test=DIR)",
            ModeKind::Profile => "profile mode (profile=FILE)",
        }
    }
}

use ModeKind::{Profile as P, Scripted as T, Stress as S};

/// Keys that mean something only in some modes; every other key works in every mode.
pub const MODE_KEYS: &[(&str, &[ModeKind])] = &[
    ("user", &[S, T]),
    ("users", &[S, P]),
    ("domains", &[S, T]),
    ("userfile", &[S, T]),
    ("user2", &[T]),
    ("master", &[S, T]),
    ("clients", &[S, P]),
    ("stalled_disconnect_timeout", &[S]),
    ("box", &[S, T]),
    ("copybox", &[S]),
    ("mbox", &[S, P]),
    ("random_msg_size", &[S, P]),
    ("msgs", &[S]),
    ("secs", &[S, P]),
    ("checkpoint", &[S]),
    ("junit", &[T]),
    ("plan", &[P]),
    ("dry_run", &[P]),
    ("session_csv", &[P]),
    ("output", &[S, P]),
    ("csv", &[S, P]),
    ("csv_format", &[S, P]),
    ("random", &[S]),
    ("no_pipelining", &[S]),
    ("no_tracking", &[S, P]),
    ("disconnect_quit", &[S]),
    ("error_quit", &[S, P]),
    ("own_msgs", &[S]),
    ("own_flags", &[S]),
    ("qresync", &[S, T]),
    ("imap4rev2", &[S, T]),
    ("shard", &[S, P]),
    ("start_at", &[S, P]),
];

/// The modes `key` means something in.
pub fn modes_of(key: &str) -> &'static [ModeKind] {
    MODE_KEYS
        .iter()
        .find(|(k, _)| *k == key)
        .map_or(&[S, T, P], |(_, modes)| modes)
}

impl Draft {
    /// The mode the arguments chose.
    pub fn mode_kind(&self) -> ModeKind {
        match (&self.test, &self.profile) {
            (Some(_), _) => ModeKind::Scripted,
            (None, Some(_)) => ModeKind::Profile,
            (None, None) => ModeKind::Stress,
        }
    }

    /// The settings of the chosen mode. `given` names the keys given on the command
    /// line (`state` for state names); a key the mode does not use is an error that
    /// names the modes it needs, so a typo'd mode never runs silently without it.
    pub fn into_settings(
        self,
        given: &[&'static str],
        command_line: Vec<String>,
    ) -> Result<crate::config::Settings, CliError> {
        use crate::config::{
            Common, Mode, Outputs, ProfileSettings, ScriptedSettings, Settings, StressSettings,
        };
        let kind = self.mode_kind();
        for key in given {
            let modes = if *key == "state" {
                &[S][..]
            } else {
                modes_of(key)
            };
            if !modes.contains(&kind) {
                return Err(CliError::KeyNotInMode {
                    key: (*key).to_owned(),
                    mode: kind.describe(),
                    needs: modes
                        .iter()
                        .map(|m| m.describe())
                        .collect::<Vec<_>>()
                        .join(" or "),
                });
            }
        }
        if self.plan.is_some() && !self.dry_run {
            return Err(CliError::PlanWithoutDryRun);
        }
        let common = Common {
            host: self.host,
            hostip: self.hostip,
            port: self.port,
            tls: self.tls,
            user: self.user,
            seed: self.seed,
            timeout: self.timeout,
            rawlog: self.rawlog,
            max_literal: self.max_literal,
            error_quit: self.error_quit,
            outputs: Outputs {
                csv: self.csv,
                csv_format: self.csv_format,
                output: self.output,
                summary: self.summary,
                report: self.report,
            },
            slos: self.slos,
            warmup: self.warmup,
            overwrite: self.overwrite,
            shard: self.shard,
            start_at: self.start_at,
            server_usage: self.server_usage,
            command_line,
        };
        let mode = match kind {
            ModeKind::Scripted => Mode::Scripted(ScriptedSettings {
                path: self.test.unwrap_or_default(),
                junit: self.junit,
                mailbox: self.mailbox,
                qresync: self.qresync,
                imap4rev2: self.imap4rev2,
            }),
            ModeKind::Profile => Mode::Profile(ProfileSettings {
                path: self.profile.unwrap_or_default(),
                secs: self.secs,
                mbox: self.mbox,
                random_msg_size: self.random_msg_size,
                no_tracking: self.no_tracking,
                dry_run: self.dry_run,
                plan: self.plan,
                session_csv: self.session_csv,
                clients: given.contains(&"clients").then_some(self.clients),
                users: given
                    .contains(&"users")
                    .then(|| u64::from(common.user.users.1 - common.user.users.0) + 1),
            }),
            ModeKind::Stress => Mode::Stress(StressSettings {
                clients: self.clients,
                secs: self.secs,
                msgs: self.msgs,
                mbox: self.mbox,
                random_msg_size: self.random_msg_size,
                mailbox: self.mailbox,
                copybox: self.copybox,
                probabilities: self.probabilities,
                random_states: self.random_states,
                no_pipelining: self.no_pipelining,
                no_tracking: self.no_tracking,
                disconnect_quit: self.disconnect_quit,
                own_msgs: self.own_msgs,
                own_flags: self.own_flags,
                qresync: self.qresync,
                imap4rev2: self.imap4rev2,
                checkpoint: self.checkpoint,
                stalled_disconnect_timeout: self.stalled_disconnect_timeout,
            }),
        };
        Ok(Settings { common, mode })
    }
}
