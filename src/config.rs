//! Validated settings for a run, filled by the command-line parser ([`crate::cli`]).

use std::path::PathBuf;
use std::time::Duration;

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
    /// `mech=`: `LOGIN` (exact) uses the LOGIN command, anything else AUTHENTICATE.
    pub mech: String,
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
            mech: "LOGIN".to_owned(),
        }
    }
}

/// `secs=N[,F]`: run for N seconds, then give clients F more seconds to log out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RunTime {
    pub run: Duration,
    pub stop_grace: Duration,
}

/// Everything a run needs, after parsing and validation.
#[derive(Debug, Clone, PartialEq)]
pub struct Settings {
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
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
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
        }
    }
}

impl Settings {
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
