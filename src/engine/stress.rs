//! Classic stress mode: `clients` connection slots, each running sessions that walk the
//! state table with the configured probabilities. This first engine runs one command at
//! a time per connection over the core states (LOGIN/AUTHENTICATE, LIST, STATUS, SELECT,
//! FETCH, FETCH2, STORE, DELETE, EXPUNGE, APPEND, NOOP, CHECK, LOGOUT).

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use rand::{RngExt, SeedableRng};
use rand_xoshiro::Xoshiro256PlusPlus;
use tokio::sync::{mpsc, watch};
use tokio::task::JoinSet;

use super::states::{Level, State};
use crate::config::Settings;
use crate::imap::client::{ClientError, ClientOptions, Completion, ImapClient, LoginRequest};
use crate::imap::command::quoted;
use crate::imap::response::{Response, Status, Untagged};
use crate::mail::MessageSource;
use crate::metrics::{Event, Metrics, Outcome, Report, Severity};
use crate::net::Endpoint;
use crate::sasl::ScramCache;
use crate::users::{User, UserPicker};

/// How far a run should go on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RunState {
    Running,
    /// Finish the current command, log out, don't reconnect.
    LogoutAndStop,
    /// Drop everything now.
    StopNow,
}

/// Everything the sessions of a run share.
pub struct StressContext {
    pub settings: Arc<Settings>,
    pub endpoint: Arc<Endpoint>,
    pub users: Arc<UserPicker>,
    pub messages: Arc<dyn MessageSource>,
    pub scram_cache: ScramCache,
    pub metrics: Metrics,
    pub client_options: ClientOptions,
}

/// Connection slots opened at once; more open as logins succeed (like the C tool).
const INITIAL_SLOTS: u32 = 100;
/// Slots opened per successful login during ramp-up.
const SLOTS_PER_LOGIN: u32 = 3;

/// Runs until `run_state` says stop and every slot has ended.
pub async fn run(ctx: Arc<StressContext>, run_state: watch::Receiver<RunState>) {
    let clients = ctx.settings.clients.max(1);
    let (start_tx, mut start_rx) = mpsc::unbounded_channel::<u32>();
    let next_slot = Arc::new(AtomicU32::new(0));
    let ramp = Ramp {
        next_slot: next_slot.clone(),
        clients,
        start_tx,
    };
    ramp.open(INITIAL_SLOTS.min(clients));
    let mut tasks = JoinSet::new();
    let connection_ids = Arc::new(AtomicU64::new(1));
    let mut stopping = false;
    loop {
        tokio::select! {
            Some(slot) = start_rx.recv() => {
                if stopping {
                    continue;
                }
                ctx.metrics.gauges.slots_used.fetch_add(1, Ordering::Relaxed);
                let slot_task = Slot {
                    ctx: ctx.clone(),
                    rng: slot_rng(ctx.settings.seed, slot),
                    ramp: ramp.clone(),
                    connection_ids: connection_ids.clone(),
                    run_state: run_state.clone(),
                };
                tasks.spawn(slot_task.run());
            }
            Some(_) = tasks.join_next(), if !tasks.is_empty() => {
                if stopping && tasks.is_empty() {
                    break;
                }
            }
            state = wait_change(run_state.clone()) => match state {
                RunState::StopNow => {
                    tasks.abort_all();
                    while tasks.join_next().await.is_some() {}
                    break;
                }
                _ => {
                    stopping = true;
                    if tasks.is_empty() {
                        break;
                    }
                }
            },
        }
    }
}

/// Waits until the run state differs from what this loop already acted on.
async fn wait_change(mut rx: watch::Receiver<RunState>) -> RunState {
    let seen = *rx.borrow_and_update();
    if seen == RunState::StopNow {
        return seen;
    }
    let target = if seen == RunState::Running {
        |s: &RunState| *s != RunState::Running
    } else {
        |s: &RunState| *s == RunState::StopNow
    };
    match rx.wait_for(target).await {
        Ok(s) => *s,
        // The sender is gone: nobody can stop us any more, so stop now.
        Err(_) => RunState::StopNow,
    }
}

/// One reproducible random stream per slot: the same seed gives the same command stream.
fn slot_rng(seed: Option<u64>, slot: u32) -> Xoshiro256PlusPlus {
    match seed {
        Some(seed) => {
            let mut rng = Xoshiro256PlusPlus::seed_from_u64(seed);
            for _ in 0..slot {
                rng.jump();
            }
            rng
        }
        None => Xoshiro256PlusPlus::from_rng(&mut rand::rng()),
    }
}

#[derive(Clone)]
struct Ramp {
    next_slot: Arc<AtomicU32>,
    clients: u32,
    start_tx: mpsc::UnboundedSender<u32>,
}

impl Ramp {
    fn open(&self, n: u32) {
        for _ in 0..n {
            let slot = self.next_slot.fetch_add(1, Ordering::Relaxed);
            if slot >= self.clients {
                return;
            }
            let _ = self.start_tx.send(slot);
        }
    }
}

struct Slot {
    ctx: Arc<StressContext>,
    rng: Xoshiro256PlusPlus,
    ramp: Ramp,
    connection_ids: Arc<AtomicU64>,
    run_state: watch::Receiver<RunState>,
}

/// Why a session ended.
enum SessionEnd {
    /// LOGOUT done: the next session uses a new user.
    LoggedOut,
    /// Connection lost or protocol error: reconnect as the same user.
    Dropped,
}

/// A connection-level failure, with what was being done.
struct Failure {
    state: Option<State>,
    error: ClientError,
}

impl Slot {
    async fn run(mut self) {
        let mut user = self.ctx.users.pick(&mut self.rng);
        let mut ramped = false;
        loop {
            if *self.run_state.borrow() != RunState::Running {
                return;
            }
            let id = self.connection_ids.fetch_add(1, Ordering::Relaxed);
            let end = self.session(&user, id, &mut ramped).await;
            match end {
                SessionEnd::LoggedOut => user = self.ctx.users.pick(&mut self.rng),
                SessionEnd::Dropped => {
                    if self.ctx.settings.disconnect_quit {
                        return;
                    }
                    // Don't spin on a server that refuses us.
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            }
        }
    }

    fn report(
        &self,
        user: &User,
        id: u64,
        severity: Severity,
        message: String,
        line: Option<String>,
    ) {
        self.ctx.metrics.report(Report {
            severity,
            user: Some(user.name.clone()),
            connection: Some(id),
            message,
            line,
        });
    }

    fn command_event(&self, state: State, started: Instant, outcome: Outcome) {
        self.ctx.metrics.send(Event::Command {
            state,
            outcome,
            intended: started,
            started,
            finished: Instant::now(),
        });
    }

    async fn session(&mut self, user: &User, id: u64, ramped: &mut bool) -> SessionEnd {
        let metrics = self.ctx.metrics.clone();
        let client = ImapClient::connect(&self.ctx.endpoint, id, &self.ctx.client_options).await;
        let mut client = match client {
            Ok(c) => c,
            Err(e) => {
                self.report(user, id, Severity::Error, e.to_string(), None);
                return SessionEnd::Dropped;
            }
        };
        metrics.send(Event::Connected);
        metrics.gauges.open.fetch_add(1, Ordering::Relaxed);
        metrics.gauges.active.fetch_add(1, Ordering::Relaxed);
        let mut session = Session {
            msgs: 0,
            level: if client.preauth() {
                Level::Auth
            } else {
                Level::NonAuth
            },
        };
        let end = match self.walk(&mut client, &mut session, user, ramped).await {
            Ok(end) => end,
            Err(failure) => {
                let what = failure
                    .state
                    .map(|s| format!("{}: ", s.name()))
                    .unwrap_or_default();
                self.report(
                    user,
                    id,
                    Severity::Error,
                    format!("{what}{}", failure.error),
                    None,
                );
                SessionEnd::Dropped
            }
        };
        metrics.gauges.open.fetch_sub(1, Ordering::Relaxed);
        metrics.gauges.active.fetch_sub(1, Ordering::Relaxed);
        metrics.send(Event::Disconnected);
        end
    }

    /// The sequential walk: after login, step through the table, running each state
    /// with its probability, until LOGOUT runs.
    async fn walk(
        &mut self,
        client: &mut ImapClient,
        session: &mut Session,
        user: &User,
        ramped: &mut bool,
    ) -> Result<SessionEnd, Failure> {
        let id = client.id();
        if session.level == Level::NonAuth {
            let state = if self.ctx.settings.user.mech == "LOGIN"
                && self.ctx.settings.user.master.is_none()
            {
                State::Login
            } else {
                State::Authenticate
            };
            let started = Instant::now();
            let request = LoginRequest {
                user: &user.name,
                password: &user.password,
                mech: &self.ctx.settings.user.mech,
                master: self.ctx.settings.user.master.as_deref(),
                scram_cache: &self.ctx.scram_cache,
            };
            let done = client.log_in(&request).await.map_err(|error| Failure {
                state: Some(state),
                error,
            })?;
            self.command_event(state, started, outcome(&done));
            if !done.is_ok() {
                self.report(
                    user,
                    id,
                    Severity::Error,
                    format!("{} failed", state.name()),
                    Some(done.line),
                );
                return Ok(SessionEnd::Dropped);
            }
            session.level = Level::Auth;
            if !*ramped {
                *ramped = true;
                self.ramp.open(SLOTS_PER_LOGIN);
            }
        }
        let probabilities = self.ctx.settings.probabilities.clone();
        let mut state = State::Login;
        loop {
            if *self.run_state.borrow() != RunState::Running {
                return self.logout(client, user).await;
            }
            state = next_state(state);
            let info = state.info();
            if !self.chance(probabilities.get(state)) {
                continue;
            }
            if info.level > session.level {
                continue;
            }
            if state == State::Logout {
                return self.logout(client, user).await;
            }
            loop {
                self.execute(state, client, session, user).await?;
                if !self.chance(probabilities.again(state)) {
                    break;
                }
            }
        }
    }

    fn chance(&mut self, percent: u8) -> bool {
        self.rng.random_range(0..100u32) < u32::from(percent)
    }

    async fn logout(
        &mut self,
        client: &mut ImapClient,
        user: &User,
    ) -> Result<SessionEnd, Failure> {
        let started = Instant::now();
        match client.logout().await {
            Ok(done) => {
                self.command_event(State::Logout, started, outcome(&done));
                Ok(SessionEnd::LoggedOut)
            }
            Err(error) => {
                self.report(
                    user,
                    client.id(),
                    Severity::Error,
                    format!("LOGOUT: {error}"),
                    None,
                );
                Ok(SessionEnd::Dropped)
            }
        }
    }

    /// Runs one state's command and records it.
    async fn execute(
        &mut self,
        state: State,
        client: &mut ImapClient,
        session: &mut Session,
        user: &User,
    ) -> Result<(), Failure> {
        let settings = self.ctx.settings.clone();
        let mailbox = quoted(&settings.mailbox);
        let line = match state {
            State::List => "LIST \"\" *".to_owned(),
            State::Status => format!("STATUS {mailbox} (MESSAGES UNSEEN RECENT)"),
            State::Select => format!("SELECT {mailbox}"),
            State::Fetch => {
                let Some(set) = self.random_set(session.msgs, 100) else {
                    return Ok(());
                };
                format!("FETCH {set} ({})", self.fetch_items())
            }
            State::Fetch2 => {
                if session.msgs == 0 {
                    return Ok(());
                }
                let n = self.rng.random_range(1..=session.msgs);
                let item = FETCH2_ITEMS[self.rng.random_range(0..FETCH2_ITEMS.len())];
                format!("FETCH {n} (UID {item})")
            }
            State::Store => {
                let limit = if session.msgs < 10 {
                    session.msgs
                } else {
                    (session.msgs / 5).min(50)
                };
                if limit == 0 {
                    return Ok(());
                }
                let count = self.rng.random_range(0..limit);
                let Some(set) = self.random_set(session.msgs, count) else {
                    return Ok(());
                };
                let op = ["+", "-", ""][self.rng.random_range(0..3)];
                let silent = if self.rng.random_bool(0.5) {
                    ".SILENT"
                } else {
                    ""
                };
                let flags: Vec<&str> = ["\\Answered", "\\Flagged", "\\Seen", "\\Draft"]
                    .into_iter()
                    .filter(|_| self.rng.random_bool(0.5))
                    .collect();
                format!("STORE {set} {op}FLAGS{silent} ({})", flags.join(" "))
            }
            State::Delete => {
                let p = &settings.probabilities;
                let (append, delete) = (
                    u32::from(p.get(State::Append)),
                    u32::from(p.get(State::Delete)).max(1),
                );
                let mut bound = 1 + (append + delete / 2) / delete;
                if session.msgs > settings.msgs + 5 {
                    bound += session.msgs - settings.msgs;
                }
                let count = self.rng.random_range(0..bound).min(1000);
                if count == 0 {
                    return Ok(());
                }
                let Some(set) = self.random_set(session.msgs, count) else {
                    return Ok(());
                };
                format!("STORE {set} +FLAGS.SILENT \\Deleted")
            }
            State::Expunge => "EXPUNGE".to_owned(),
            State::Noop => "NOOP".to_owned(),
            State::Check => "CHECK".to_owned(),
            State::Append => return self.append(client, session, user).await,
            // The remaining states come with the full state machine.
            _ => return Ok(()),
        };
        if state.info().level == Level::Selected && session.level != Level::Selected {
            return Ok(());
        }
        let started = Instant::now();
        let done = client.simple(&line).await.map_err(|error| Failure {
            state: Some(state),
            error,
        })?;
        self.command_event(state, started, outcome(&done));
        session.observe(&done);
        match done.status {
            Status::Ok => {
                if state == State::Select {
                    session.level = Level::Selected;
                }
            }
            Status::Bad => {
                self.report(
                    user,
                    client.id(),
                    Severity::Error,
                    format!("BAD reply for command: {line}"),
                    Some(done.line),
                );
            }
            _ => {
                self.report(
                    user,
                    client.id(),
                    Severity::Error,
                    format!("{} failed", state.name()),
                    Some(done.line),
                );
            }
        }
        Ok(())
    }

    async fn append(
        &mut self,
        client: &mut ImapClient,
        session: &mut Session,
        user: &User,
    ) -> Result<(), Failure> {
        let target = self.ctx.settings.msgs;
        if session.msgs - session.msgs / 8 >= target {
            return Ok(());
        }
        let message = self.ctx.messages.next_message(&mut self.rng);
        let (tag, mut builder) = client.command("APPEND");
        builder = builder.string(self.ctx.settings.mailbox.as_bytes());
        if self.rng.random_bool(0.5) {
            builder = builder.raw(&format!("\"{}\"", message.date.imap_format()));
        }
        let parts = builder.literal(&message.data).finish();
        let started = Instant::now();
        let done = client.run(&tag, parts).await.map_err(|error| Failure {
            state: Some(State::Append),
            error,
        })?;
        self.command_event(State::Append, started, outcome(&done));
        session.observe(&done);
        if !done.is_ok() {
            self.report(
                user,
                client.id(),
                Severity::Error,
                "APPEND failed".to_owned(),
                Some(done.line),
            );
        }
        Ok(())
    }

    /// Up to `count` random sequence numbers in 1..=msgs, merged into ranges.
    fn random_set(&mut self, msgs: u32, count: u32) -> Option<String> {
        if msgs == 0 || count == 0 {
            return None;
        }
        let count = count.min(msgs);
        let mut picked: Vec<u32> = (0..count * 3)
            .map(|_| self.rng.random_range(1..=msgs))
            .take(count as usize)
            .collect();
        picked.sort_unstable();
        picked.dedup();
        Some(format_ranges(&picked))
    }

    fn fetch_items(&mut self) -> String {
        let n = self.rng.random_range(1..=4);
        let mut items = Vec::with_capacity(n);
        for _ in 0..n {
            if self.rng.random_range(0..4) < 3 {
                items.push(FETCH_ITEMS[self.rng.random_range(0..FETCH_ITEMS.len())].to_owned());
            } else {
                let k = self.rng.random_range(1..=4);
                let headers: Vec<&str> = (0..k)
                    .map(|_| HEADERS[self.rng.random_range(0..HEADERS.len())])
                    .collect();
                items.push(format!("BODY.PEEK[HEADER.FIELDS ({})]", headers.join(" ")));
            }
        }
        items.join(" ")
    }
}

const FETCH_ITEMS: [&str; 7] = [
    "UID",
    "FLAGS",
    "ENVELOPE",
    "INTERNALDATE",
    "BODY",
    "BODYSTRUCTURE",
    "RFC822.SIZE",
];
const HEADERS: [&str; 7] = [
    "From",
    "To",
    "Cc",
    "Subject",
    "References",
    "In-Reply-To",
    "Message-ID",
];
const FETCH2_ITEMS: [&str; 5] = [
    "BODY.PEEK[HEADER]",
    "RFC822.HEADER",
    "BODY.PEEK[]",
    "BODY.PEEK[1]",
    "BODY.PEEK[TEXT]",
];

/// The state after `state` in the sequential walk, wrapping from LOGOUT to COMPRESS.
fn next_state(state: State) -> State {
    let next = state as usize + 1;
    if state >= State::Logout || next >= State::COUNT {
        return State::Compress;
    }
    State::all().nth(next).unwrap_or(State::Compress)
}

/// Per-connection mailbox facts this engine needs.
struct Session {
    msgs: u32,
    level: Level,
}

impl Session {
    /// Follows EXISTS and EXPUNGE so message sets stay within the mailbox.
    fn observe(&mut self, done: &Completion) {
        for response in &done.untagged {
            match response.parse() {
                Ok(Response::Untagged(Untagged::Exists(n))) => self.msgs = n,
                Ok(Response::Untagged(Untagged::Expunge(_))) => {
                    self.msgs = self.msgs.saturating_sub(1)
                }
                _ => {}
            }
        }
    }
}

fn outcome(done: &Completion) -> Outcome {
    match done.status {
        Status::Ok => Outcome::Ok,
        Status::No => Outcome::No,
        _ => Outcome::Bad,
    }
}

/// `1,3:5,9` from sorted, deduplicated numbers.
pub fn format_ranges(sorted: &[u32]) -> String {
    let mut out = String::new();
    let mut i = 0;
    while i < sorted.len() {
        let start = sorted[i];
        let mut end = start;
        while i + 1 < sorted.len() && sorted[i + 1] == end + 1 {
            i += 1;
            end = sorted[i];
        }
        if !out.is_empty() {
            out.push(',');
        }
        if start == end {
            out.push_str(&start.to_string());
        } else {
            out.push_str(&format!("{start}:{end}"));
        }
        i += 1;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_merge() {
        assert_eq!(format_ranges(&[1, 2, 3, 5, 7, 8]), "1:3,5,7:8");
        assert_eq!(format_ranges(&[4]), "4");
        assert_eq!(format_ranges(&[]), "");
    }

    #[test]
    fn walk_wraps_after_logout() {
        assert_eq!(next_state(State::Login), State::Compress);
        assert_eq!(next_state(State::Select), State::UidFetch);
        assert_eq!(next_state(State::Logout), State::Compress);
    }

    #[test]
    fn seeded_slots_are_reproducible_and_distinct() {
        let a: u64 = slot_rng(Some(7), 3).random();
        let b: u64 = slot_rng(Some(7), 3).random();
        let c: u64 = slot_rng(Some(7), 4).random();
        assert_eq!(a, b);
        assert_ne!(a, c);
    }
}
