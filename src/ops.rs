//! What imaptest counts and times: every operation of every protocol, each under its own
//! name. An [`Op`] is an IMAP state's command, a POP3 or LMTP command, a connection phase
//! (TCP connect, TLS handshake, greeting wait) of a server, or a profile action.
//!
//! Metrics keep one figure per op, indexed densely by [`Op::index`], so recording stays
//! an array access. Outputs name an op by [`Op::protocol`] and [`Op::name`]:
//! `imap LOGIN`, `pop3 RETR`, `lmtp DATA`, `imap CONNECT`, `action read`; SLO metrics use
//! the same names (`imap.LOGIN.p99`).

use std::time::Instant;

use crate::net::PhaseTimes;
use crate::states::State;

/// How an op ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Ok,
    /// The server refused (IMAP NO, POP3 -ERR, SMTP 4xx/5xx).
    No,
    /// IMAP BAD.
    Bad,
    /// No reply: the connection failed or the reply was malformed.
    Failed,
}

/// One op a protocol client performed, with when it started and ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timed {
    pub op: Op,
    pub outcome: Outcome,
    pub started: Instant,
    pub finished: Instant,
}

/// What a protocol client did since its owner last looked: clients append every
/// command they send on their own (CAPA, USER, LHLO, RCPT, …) and the phases of
/// opening the connection; the engine drains it into metrics.
#[derive(Debug, Clone, Default)]
pub struct TimingLog {
    entries: Vec<Timed>,
}

impl TimingLog {
    pub fn push(&mut self, op: Op, outcome: Outcome, started: Instant, finished: Instant) {
        self.entries.push(Timed {
            op,
            outcome,
            started,
            finished,
        });
    }

    /// Logs `op` as started at `started` and ended now.
    pub fn done(&mut self, op: Op, outcome: Outcome, started: Instant) {
        self.push(op, outcome, started, Instant::now());
    }

    /// Logs a STARTTLS-style TLS handshake that began at `started` and just ended.
    pub fn tls(&mut self, server: Server, started: Instant, ok: bool) {
        let outcome = if ok { Outcome::Ok } else { Outcome::Failed };
        self.done(Op::Phase(server, Phase::Tls), outcome, started);
    }

    /// Logs the connect and TLS phases the transport noted.
    pub fn phases(&mut self, server: Server, times: &PhaseTimes) {
        for (phase, span) in [
            (Phase::Connect, times.connect),
            (Phase::Tls, times.tls),
            (Phase::Greeting, times.greeting),
        ] {
            if let Some((started, finished)) = span {
                self.push(Op::Phase(server, phase), Outcome::Ok, started, finished);
            }
        }
    }

    /// Takes every entry logged so far.
    pub fn drain(&mut self) -> std::vec::Drain<'_, Timed> {
        self.entries.drain(..)
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

/// A protocol column: which server (or the profile scheduler) an op belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Protocol {
    Imap,
    Pop3,
    Lmtp,
    /// Profile actions (a user reading a mail, checking for new mail, …).
    Action,
}

impl Protocol {
    pub const ALL: [Protocol; 4] = [
        Protocol::Imap,
        Protocol::Pop3,
        Protocol::Lmtp,
        Protocol::Action,
    ];

    /// The lower-case name used in CSV, summaries and SLO metrics.
    pub fn name(self) -> &'static str {
        match self {
            Protocol::Imap => "imap",
            Protocol::Pop3 => "pop3",
            Protocol::Lmtp => "lmtp",
            Protocol::Action => "action",
        }
    }

    pub fn from_name(name: &str) -> Option<Protocol> {
        Protocol::ALL
            .into_iter()
            .find(|p| p.name().eq_ignore_ascii_case(name))
    }
}

/// A server protocol, for connection phases.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Server {
    Imap,
    Pop3,
    Lmtp,
}

impl Server {
    pub const ALL: [Server; 3] = [Server::Imap, Server::Pop3, Server::Lmtp];

    pub fn protocol(self) -> Protocol {
        match self {
            Server::Imap => Protocol::Imap,
            Server::Pop3 => Protocol::Pop3,
            Server::Lmtp => Protocol::Lmtp,
        }
    }
}

/// A phase of opening a connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Phase {
    /// TCP connect.
    Connect,
    /// TLS handshake (implicit TLS, or after STARTTLS/STLS).
    Tls,
    /// From the connection being open to the server's greeting.
    Greeting,
}

impl Phase {
    pub const ALL: [Phase; 3] = [Phase::Connect, Phase::Tls, Phase::Greeting];

    pub fn name(self) -> &'static str {
        match self {
            Phase::Connect => "CONNECT",
            Phase::Tls => "TLS",
            Phase::Greeting => "GREETING",
        }
    }
}

/// Declares a plain enum with an `ALL` list and upper/lower-case names.
macro_rules! named_enum {
    ($(#[$meta:meta])* $name:ident { $($(#[$vmeta:meta])* $variant:ident => $text:literal),+ $(,)? }) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub enum $name {
            $($(#[$vmeta])* $variant),+
        }

        impl $name {
            pub const ALL: &'static [$name] = &[$($name::$variant),+];

            pub fn name(self) -> &'static str {
                match self {
                    $($name::$variant => $text),+
                }
            }
        }
    };
}

named_enum! {
    /// A POP3 command (RFC 1939, RFC 2449, RFC 2595, RFC 5034).
    Pop3Command {
        Capa => "CAPA",
        Stls => "STLS",
        User => "USER",
        Pass => "PASS",
        Auth => "AUTH",
        Stat => "STAT",
        List => "LIST",
        Uidl => "UIDL",
        Retr => "RETR",
        Top => "TOP",
        Dele => "DELE",
        Noop => "NOOP",
        Rset => "RSET",
        Quit => "QUIT",
    }
}

named_enum! {
    /// An LMTP command (RFC 2033), and the whole mail transaction.
    LmtpCommand {
        Lhlo => "LHLO",
        StartTls => "STARTTLS",
        /// `MAIL FROM`, to its reply.
        Mail => "MAIL",
        /// One `RCPT TO` (one per recipient), to its reply.
        Rcpt => "RCPT",
        /// From the end of the message to the last recipient's final reply.
        Data => "DATA",
        /// A whole delivery: `MAIL FROM` to the last final reply.
        Transaction => "TRANSACTION",
        Rset => "RSET",
        Quit => "QUIT",
    }
}

named_enum! {
    /// A profile action, timed from the scheduler handing it over to its end.
    ActionKind {
        Login => "login",
        Logout => "logout",
        CheckMail => "check_mail",
        DeliverInbox => "deliver_inbox",
        DeliverSpam => "deliver_spam",
        FilterToSpam => "filter_to_spam",
        Read => "read",
        Delete => "delete",
        MoveToSpam => "move_to_spam",
        Reply => "reply",
        WriteDraft => "write_draft",
        SendDraft => "send_draft",
    }
}

/// One counted and timed operation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Op {
    /// An IMAP command, by the stress state it belongs to.
    Imap(State),
    Pop3(Pop3Command),
    Lmtp(LmtpCommand),
    /// Opening a connection to a server.
    Phase(Server, Phase),
    Action(ActionKind),
}

const POP3_BASE: usize = State::COUNT;
const LMTP_BASE: usize = POP3_BASE + Pop3Command::ALL.len();
const PHASE_BASE: usize = LMTP_BASE + LmtpCommand::ALL.len();
const ACTION_BASE: usize = PHASE_BASE + Server::ALL.len() * Phase::ALL.len();

impl Op {
    /// Number of ops; figures are kept in arrays of this length.
    pub const COUNT: usize = ACTION_BASE + ActionKind::ALL.len();

    /// The dense index of this op, below [`Op::COUNT`].
    pub fn index(self) -> usize {
        match self {
            Op::Imap(state) => state as usize,
            Op::Pop3(c) => POP3_BASE + c as usize,
            Op::Lmtp(c) => LMTP_BASE + c as usize,
            Op::Phase(server, phase) => {
                PHASE_BASE + server as usize * Phase::ALL.len() + phase as usize
            }
            Op::Action(a) => ACTION_BASE + a as usize,
        }
    }

    /// The op at `index` (the inverse of [`Op::index`]).
    pub fn from_index(index: usize) -> Option<Op> {
        if index < POP3_BASE {
            State::all().nth(index).map(Op::Imap)
        } else if index < LMTP_BASE {
            Some(Op::Pop3(Pop3Command::ALL[index - POP3_BASE]))
        } else if index < PHASE_BASE {
            Some(Op::Lmtp(LmtpCommand::ALL[index - LMTP_BASE]))
        } else if index < ACTION_BASE {
            let i = index - PHASE_BASE;
            Some(Op::Phase(
                Server::ALL[i / Phase::ALL.len()],
                Phase::ALL[i % Phase::ALL.len()],
            ))
        } else {
            ActionKind::ALL
                .get(index - ACTION_BASE)
                .copied()
                .map(Op::Action)
        }
    }

    /// Every op, in index order.
    pub fn all() -> impl Iterator<Item = Op> {
        (0..Op::COUNT).filter_map(Op::from_index)
    }

    pub fn protocol(self) -> Protocol {
        match self {
            Op::Imap(_) => Protocol::Imap,
            Op::Pop3(_) => Protocol::Pop3,
            Op::Lmtp(_) => Protocol::Lmtp,
            Op::Phase(server, _) => server.protocol(),
            Op::Action(_) => Protocol::Action,
        }
    }

    /// The op's own name within its protocol (`LOGIN`, `RETR`, `DATA`, `CONNECT`, `read`).
    pub fn name(self) -> &'static str {
        match self {
            Op::Imap(state) => state.name(),
            Op::Pop3(c) => c.name(),
            Op::Lmtp(c) => c.name(),
            Op::Phase(_, phase) => phase.name(),
            Op::Action(a) => a.name(),
        }
    }

    /// `protocol.NAME`, as SLO metrics and summaries name it (`imap.LOGIN`).
    pub fn key(self) -> String {
        format!("{}.{}", self.protocol().name(), self.name())
    }

    /// Finds an op by protocol and name (names case-insensitively; IMAP also by the
    /// state's short name).
    pub fn find(protocol: Protocol, name: &str) -> Option<Op> {
        Op::all().find(|op| {
            op.protocol() == protocol
                && (op.name().eq_ignore_ascii_case(name)
                    || matches!(op, Op::Imap(s) if s.short().eq_ignore_ascii_case(name)))
        })
    }

    /// The op of an IMAP command line (without its tag), by its verb: `UID FETCH …` is
    /// UIDFETCH, `CREATE` is MCREATE and so on; `None` for verbs outside the table.
    pub fn for_imap_command(line: &[u8]) -> Option<Op> {
        let mut words = line.split(|b| *b == b' ');
        let mut verb = words.next()?.to_ascii_uppercase();
        let uid = verb == b"UID";
        if uid {
            verb = words.next()?.to_ascii_uppercase();
        }
        let state = match verb.as_slice() {
            b"LOGIN" => State::Login,
            b"AUTHENTICATE" => State::Authenticate,
            b"COMPRESS" => State::Compress,
            b"LIST" | b"LSUB" => State::List,
            b"CREATE" => State::MCreate,
            b"DELETE" => State::MDelete,
            b"RENAME" => State::MRename,
            b"SUBSCRIBE" | b"UNSUBSCRIBE" => State::MSubs,
            b"STATUS" => State::Status,
            b"SELECT" | b"EXAMINE" => State::Select,
            b"FETCH" if uid => State::UidFetch,
            b"FETCH" => State::Fetch,
            b"SEARCH" => State::Search,
            b"SORT" => State::Sort,
            b"THREAD" => State::Thread,
            b"COPY" => State::Copy,
            b"MOVE" => State::Move,
            b"STORE" => State::Store,
            b"EXPUNGE" => State::Expunge,
            b"APPEND" => State::Append,
            b"NOOP" => State::Noop,
            b"IDLE" => State::Idle,
            b"CHECK" => State::Check,
            b"LOGOUT" => State::Logout,
            _ => return None,
        };
        Some(Op::Imap(state))
    }

    /// The classic console column this op is counted under, if any: IMAP states are
    /// their own column; POP3 commands use the IMAP column closest in meaning, as the C
    /// tool's profile mode does; LMTP transactions the LMTP column.
    pub fn console_column(self) -> Option<State> {
        match self {
            Op::Imap(state) => Some(state),
            Op::Pop3(c) => match c {
                Pop3Command::User | Pop3Command::Pass => Some(State::Login),
                Pop3Command::Auth => Some(State::Authenticate),
                Pop3Command::Stat => Some(State::Status),
                Pop3Command::List => Some(State::List),
                Pop3Command::Uidl => Some(State::Select),
                Pop3Command::Retr | Pop3Command::Top => Some(State::Fetch2),
                Pop3Command::Dele => Some(State::Expunge),
                Pop3Command::Quit => Some(State::Logout),
                Pop3Command::Capa | Pop3Command::Stls | Pop3Command::Noop | Pop3Command::Rset => {
                    None
                }
            },
            Op::Lmtp(LmtpCommand::Transaction) => Some(State::Lmtp),
            Op::Lmtp(_) | Op::Phase(..) | Op::Action(_) => None,
        }
    }
}

impl std::fmt::Display for Op {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {}", self.protocol().name(), self.name())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn indexes_are_dense_and_invertible() {
        let all: Vec<Op> = Op::all().collect();
        assert_eq!(all.len(), Op::COUNT);
        for (i, op) in all.iter().enumerate() {
            assert_eq!(op.index(), i, "{op}");
            assert_eq!(Op::from_index(i), Some(*op));
        }
        assert_eq!(Op::from_index(Op::COUNT), None);
    }

    #[test]
    fn names_are_unique_per_protocol() {
        let mut keys: Vec<String> = Op::all().map(Op::key).collect();
        let n = keys.len();
        keys.sort();
        keys.dedup();
        assert_eq!(keys.len(), n);
    }

    #[test]
    fn find_by_protocol_and_name() {
        assert_eq!(
            Op::find(Protocol::Imap, "login"),
            Some(Op::Imap(State::Login))
        );
        assert_eq!(
            Op::find(Protocol::Imap, "Fet2"),
            Some(Op::Imap(State::Fetch2))
        );
        assert_eq!(
            Op::find(Protocol::Pop3, "RETR"),
            Some(Op::Pop3(Pop3Command::Retr))
        );
        assert_eq!(
            Op::find(Protocol::Lmtp, "connect"),
            Some(Op::Phase(Server::Lmtp, Phase::Connect))
        );
        assert_eq!(
            Op::find(Protocol::Action, "read"),
            Some(Op::Action(ActionKind::Read))
        );
        assert_eq!(Op::find(Protocol::Pop3, "FETCH"), None);
    }

    #[test]
    fn imap_command_lines_map_to_their_state() {
        let op = |line: &str| Op::for_imap_command(line.as_bytes());
        assert_eq!(op("uid fetch 1:* FLAGS"), Some(Op::Imap(State::UidFetch)));
        assert_eq!(op("FETCH 1 BODY[]"), Some(Op::Imap(State::Fetch)));
        assert_eq!(op("UID EXPUNGE 3"), Some(Op::Imap(State::Expunge)));
        assert_eq!(op("create box"), Some(Op::Imap(State::MCreate)));
        assert_eq!(op("EXAMINE INBOX"), Some(Op::Imap(State::Select)));
        assert_eq!(op("GETQUOTAROOT INBOX"), None);
    }
}
