//! Validated settings of a run, built by the command-line parser ([`crate::cli`]): what
//! every mode shares ([`Common`]) and what only one mode uses ([`Mode`]).

use std::path::PathBuf;
use std::time::Duration;

use crate::sasl::SaslMech;
use crate::slo::Slo;
use crate::states::Probabilities;

/// How the transport is secured.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum TlsMode {
    /// Plain TCP.
    #[default]
    Plain,
    /// TLS right after the TCP connect (`ssl`).
    Implicit,
    /// Plain connect, then STARTTLS (IMAP), STLS (POP3) or STARTTLS (LMTP).
    StartTls,
}

/// Certificate checking for TLS connections.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct TlsSettings {
    pub mode: TlsMode,
    /// `ssl=any-cert`: accept any certificate (signatures are still checked).
    pub accept_any_cert: bool,
    /// `ssl_ca_file=`: extra trust anchors (PEM). When given, the system store is not used.
    pub ca_file: Option<PathBuf>,
}

/// How clients log in (`mech=`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Mech {
    /// The protocol's own plaintext login: IMAP `LOGIN`, POP3 `USER`/`PASS`
    /// (`mech=LOGIN`, exactly, the default).
    #[default]
    Command,
    /// SASL: IMAP `AUTHENTICATE`, POP3 `AUTH`.
    Sasl(SaslMech),
}

impl Mech {
    /// Reads `mech=`: exactly `LOGIN` is the login command; any other spelling names a
    /// SASL mechanism (`login` is SASL LOGIN).
    pub fn parse(text: &str) -> Option<Mech> {
        if text == "LOGIN" {
            return Some(Mech::Command);
        }
        SaslMech::from_name(text).map(Mech::Sasl)
    }

    /// As `mech=` spells it (SASL LOGIN in lower case, to tell it from the command).
    pub fn name(self) -> &'static str {
        match self {
            Mech::Command => "LOGIN",
            Mech::Sasl(SaslMech::Login) => "login",
            Mech::Sasl(m) => m.name(),
        }
    }
}

/// Where user names come from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserSettings {
    /// `user=` template with up to two `%d`/`%i` conversions.
    pub template: String,
    /// `users=N` or `users=A-B` (inclusive), for the first conversion.
    pub users: (u32, u32),
    /// `domains=`, for the second conversion.
    pub domains: (u32, u32),
    /// `userfile=`: one `user` or `user:password` per line.
    pub userfile: Option<PathBuf>,
    /// `pass=`: password for every user without one in the user file.
    pub password: String,
    /// `user2=`: a second user, for scripted tests.
    pub user2: Option<String>,
    /// `master=`: log in as this master user on behalf of each user.
    pub master: Option<String>,
    pub mech: Mech,
}

impl Default for UserSettings {
    fn default() -> Self {
        UserSettings {
            template: std::env::var("USER").unwrap_or_default(),
            users: (1, 99),
            domains: (1, 99),
            userfile: None,
            password: "pass".to_owned(),
            user2: None,
            master: None,
            mech: Mech::Command,
        }
    }
}

/// `secs=N[,F]`: run for N seconds, then give clients F more seconds to log out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RunTime {
    pub run: Duration,
    pub stop_grace: Duration,
}

/// `csv_format=`: how the per-second CSV is laid out.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum CsvFormat {
    /// One row per op (and per error kind, deliveries, connections) per second.
    #[default]
    Long,
    /// One row per second, a group of columns per op.
    Wide,
}

/// Result files of a run.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Outputs {
    /// `csv=`: the per-second timeline.
    pub csv: Option<PathBuf>,
    pub csv_format: CsvFormat,
    /// `output=`: the C tool's tab-separated results file.
    pub output: Option<PathBuf>,
    /// `summary=`: the JSON run summary.
    pub summary: Option<PathBuf>,
    /// `report=`: the self-contained HTML report.
    pub report: Option<PathBuf>,
}

/// The server, users, outputs and objectives every mode has.
#[derive(Debug, Clone, PartialEq)]
pub struct Common {
    pub host: String,
    /// `hostip=`: the address actually connected to (default: `host`).
    pub hostip: Option<String>,
    /// `port=`; `None` means the protocol's default (143, or 993 with implicit TLS).
    pub port: Option<u16>,
    pub tls: TlsSettings,
    pub user: UserSettings,
    pub seed: Option<u64>,
    /// Connect and command timeout.
    pub timeout: Duration,
    /// `rawlog` / `rawlog=DIR`: per-connection protocol logs in this directory.
    pub rawlog: Option<PathBuf>,
    /// Largest server literal kept in memory; larger ones are skipped, their size kept.
    pub max_literal: usize,
    /// `error_quit`: stop at the first error.
    pub error_quit: bool,
    pub outputs: Outputs,
    /// `slo=`: objectives checked after the run.
    pub slos: Vec<Slo>,
    /// `warmup=`: the start of the run left out of SLO evaluation (default: none, or a
    /// profile's ramp-up).
    pub warmup: Option<Duration>,
    /// `overwrite`: outputs may replace existing files.
    pub overwrite: bool,
    /// `shard=I/N` (or `$JOB_COMPLETION_INDEX` of `$IMAPTEST_SHARDS`): run this part
    /// of the users ([`crate::shard`]).
    pub shard: Option<crate::shard::Shard>,
    /// `start_at=`: wait for this instant before the run starts.
    pub start_at: Option<std::time::SystemTime>,
    /// `server_pid=`/`server_cgroup=`: the local server whose CPU, memory and I/O are
    /// sampled every second.
    pub server_usage: Option<crate::usage::ServerSource>,
    /// The arguments as given (for the summary; passwords are masked there).
    pub command_line: Vec<String>,
}

impl Default for Common {
    fn default() -> Self {
        Common {
            host: "127.0.0.1".to_owned(),
            hostip: None,
            port: None,
            tls: TlsSettings::default(),
            user: UserSettings::default(),
            seed: None,
            timeout: Duration::from_secs(30),
            rawlog: None,
            max_literal: 32 * 1024,
            error_quit: false,
            outputs: Outputs::default(),
            slos: Vec::new(),
            warmup: None,
            overwrite: false,
            shard: None,
            start_at: None,
            server_usage: None,
            command_line: Vec::new(),
        }
    }
}

impl Common {
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

/// Classic stress mode: clients walking the state table.
#[derive(Debug, Clone, PartialEq)]
pub struct StressSettings {
    pub clients: u32,
    pub secs: Option<RunTime>,
    pub msgs: u32,
    pub mbox: PathBuf,
    pub random_msg_size: u64,
    /// `box=`: the mailbox under test.
    pub mailbox: String,
    pub copybox: Option<String>,
    pub probabilities: Probabilities,
    /// `random`: pick states at random instead of walking the table in order.
    pub random_states: bool,
    pub no_pipelining: bool,
    pub no_tracking: bool,
    pub disconnect_quit: bool,
    pub own_msgs: bool,
    pub own_flags: bool,
    pub qresync: bool,
    pub imap4rev2: bool,
    pub checkpoint: Option<Duration>,
    pub stalled_disconnect_timeout: Option<Duration>,
}

impl Default for StressSettings {
    fn default() -> Self {
        StressSettings {
            clients: 10,
            secs: None,
            msgs: 30,
            mbox: PathBuf::from("dovecot-crlf"),
            random_msg_size: 0,
            mailbox: "INBOX".to_owned(),
            copybox: None,
            probabilities: Probabilities::default(),
            random_states: false,
            no_pipelining: false,
            no_tracking: false,
            disconnect_quit: false,
            own_msgs: false,
            own_flags: false,
            qresync: false,
            imap4rev2: false,
            checkpoint: None,
            stalled_disconnect_timeout: None,
        }
    }
}

/// Mailbox of scripted tests when `box=` is not given.
pub const TEST_MAILBOX: &str = "imaptest";

/// Scripted tests (`test=DIR`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScriptedSettings {
    /// `test=`: a test file or a directory of them.
    pub path: PathBuf,
    /// `junit=FILE`: results as JUnit XML.
    pub junit: Option<PathBuf>,
    /// `box=` (default `imaptest`).
    pub mailbox: String,
    pub qresync: bool,
    pub imap4rev2: bool,
}

impl ScriptedSettings {
    pub fn new(path: PathBuf) -> Self {
        ScriptedSettings {
            path,
            junit: None,
            mailbox: TEST_MAILBOX.to_owned(),
            qresync: false,
            imap4rev2: false,
        }
    }
}

/// Profile mode (`profile=FILE`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProfileSettings {
    pub path: PathBuf,
    /// `secs=`: ends the run early (default: the profile's duration).
    pub secs: Option<RunTime>,
    pub mbox: PathBuf,
    pub random_msg_size: u64,
    pub no_tracking: bool,
    /// `dry_run`: plan without connecting.
    pub dry_run: bool,
    /// `plan=FILE` (with `dry_run`): where the plan goes (default `plan.csv`).
    pub plan: Option<PathBuf>,
    /// `session_csv=`: one row per client session.
    pub session_csv: Option<PathBuf>,
    /// `clients=`: most client sessions open at once (as in the C tool).
    pub clients: Option<u32>,
    /// `users=`: scale the populations to this many users in all, keeping their shares.
    pub users: Option<u64>,
}

impl ProfileSettings {
    pub fn new(path: PathBuf) -> Self {
        ProfileSettings {
            path,
            secs: None,
            mbox: PathBuf::from("dovecot-crlf"),
            random_msg_size: 0,
            no_tracking: false,
            dry_run: false,
            plan: None,
            session_csv: None,
            clients: None,
            users: None,
        }
    }
}

/// What a run does.
#[derive(Debug, Clone, PartialEq)]
pub enum Mode {
    Stress(StressSettings),
    Scripted(ScriptedSettings),
    Profile(ProfileSettings),
}

impl Mode {
    /// The mode's name in messages and summaries.
    pub fn name(&self) -> &'static str {
        match self {
            Mode::Stress(_) => "stress",
            Mode::Scripted(_) => "scripted",
            Mode::Profile(_) => "profile",
        }
    }
}

/// Everything a run needs, after parsing and validation.
#[derive(Debug, Clone, PartialEq)]
pub struct Settings {
    pub common: Common,
    pub mode: Mode,
}
