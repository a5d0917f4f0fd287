//! Profile mode's runtime: runs a profile's schedule against the servers.
//!
//! A dispatcher thread ([`crate::profile::timeline::run_blocking`]) hands every
//! scheduled action over at its planned time. LMTP deliveries become tasks of their
//! own (through the [`LmtpQueue`], so a delivery that finds every slot busy waits and
//! is counted late, never dropped). Every other action goes to the task of its (user,
//! client) session, which performs the actions of that client in order, so an action
//! whose predecessor is still running queues behind it. Commands report the planned
//! time as their intended time, so lateness is measured from the plan.
//!
//! Delivered messages carry the [`crate::lmtp::marker`] header with (user, message
//! number); the receiving client maps the message number to its UID, which later mail
//! actions (read, delete, move, reply) of the schedule refer to, and reports the
//! end-to-end delivery latency.

mod delivery;
mod imap_session;
mod pop3_session;
mod sessions;
mod user;

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use tokio::sync::watch;

use crate::control::RunState;
use crate::imap::client::ClientOptions;
use crate::lmtp::{LmtpClient, LmtpOptions};
use crate::mail::MessageSource;
use crate::metrics::{DeliveryEvent, ErrorKind, Event, Metrics, Report, Severity};
use crate::net::Endpoint;
use crate::pop3::Pop3Options;
use crate::profile::Profile;
use crate::profile::model::Protocol;
use crate::profile::schedule::{Action, Directory, Schedule, ScheduleOptions, ScheduledAction};
use crate::profile::timeline::{LmtpQueue, run_blocking};
use crate::sasl::ScramCache;
use crate::states::State;

use user::UserShared;

/// The servers of a run (absent: no client of the profile uses it).
#[derive(Debug, Default)]
pub struct Endpoints {
    pub imap: Option<Arc<Endpoint>>,
    pub pop3: Option<Arc<Endpoint>>,
    pub lmtp: Option<Arc<Endpoint>>,
}

/// Everything a profile run needs.
pub struct ProfileRun {
    pub profile: Arc<Profile>,
    pub schedule: ScheduleOptions,
    pub directory: Directory,
    pub endpoints: Endpoints,
    /// Messages to deliver and to write (per population: `write_size` overrides).
    pub messages: Arc<dyn MessageSource>,
    /// Password of users without one of their own (`pass=`).
    pub default_password: String,
    /// `mech=`: LOGIN (IMAP LOGIN, POP3 USER/PASS) or a SASL mechanism.
    pub mech: String,
    pub imap_options: ClientOptions,
    pub pop3_options: Pop3Options,
    pub lmtp_options: LmtpOptions,
    /// How long sessions get to log out at the end before they are dropped.
    pub stop_grace: Duration,
    /// Spin this long before each action for sub-millisecond handover.
    pub spin: Duration,
    /// Check every IMAP reply against the mailbox model (`no_tracking` turns it off).
    pub tracking: bool,
}

/// What a run did, per client type (for the summary after Totals).
#[derive(Debug, Clone)]
pub struct Summary {
    pub clients: Vec<ClientSummary>,
    /// Actions handed over by the scheduler.
    pub actions: u64,
    /// Mail actions skipped because their message was unknown or gone (deleted by a
    /// POP3 client, or its delivery failed), or the session was down.
    pub skipped: u64,
}

/// Commands of one client type.
#[derive(Debug, Clone)]
pub struct ClientSummary {
    pub name: String,
    pub protocol: Protocol,
    pub sessions: u64,
    /// Commands per state (POP3 commands use ImapTest's columns: USER/PASS under
    /// LOGIN, AUTH under AUTHENTICATE, STAT under STATUS, LIST under LIST, UIDL under
    /// SELECT, RETR under FETCH2, DELE under EXPUNGE, QUIT under LOGOUT).
    pub commands: Vec<(State, u64)>,
}

impl ClientSummary {
    /// The protocol's own name for a counted state.
    pub fn command_name(&self, state: State) -> &'static str {
        match (self.protocol, state) {
            (Protocol::Pop3, State::Login) => "USER/PASS",
            (Protocol::Pop3, State::Authenticate) => "AUTH",
            (Protocol::Pop3, State::Status) => "STAT",
            (Protocol::Pop3, State::List) => "LIST",
            (Protocol::Pop3, State::Select) => "UIDL",
            (Protocol::Pop3, State::Fetch2) => "RETR",
            (Protocol::Pop3, State::Expunge) => "DELE",
            (Protocol::Pop3, State::Logout) => "QUIT",
            _ => state.name(),
        }
    }
}

/// Per client type counters.
struct ClientCounters {
    sessions: AtomicU64,
    commands: Vec<AtomicU64>,
}

/// Shared by every task of a run.
struct Ctx {
    profile: Arc<Profile>,
    seed: u64,
    endpoints: Endpoints,
    messages: Arc<dyn MessageSource>,
    /// Per population: its own source when it sets `write_size`.
    write_sources: Vec<Option<Arc<dyn MessageSource>>>,
    mech: String,
    scram_cache: ScramCache,
    imap_options: ClientOptions,
    pop3_options: Pop3Options,
    lmtp_options: LmtpOptions,
    lmtp_queue: LmtpQueue,
    /// Idle LMTP connections for reuse.
    lmtp_pool: std::sync::Mutex<Vec<LmtpClient>>,
    lmtp_pool_max: usize,
    metrics: Metrics,
    counters: Vec<ClientCounters>,
    skipped: AtomicU64,
    next_connection: AtomicU64,
    /// Deliveries in flight (waited for at the end).
    deliveries: AtomicU64,
    deliveries_done: tokio::sync::Notify,
    /// Session tasks running (waited for at the end).
    live_sessions: AtomicU64,
    sessions_done: tokio::sync::Notify,
    /// Set when the sessions still running must end at once (grace period over).
    end_sessions: watch::Sender<bool>,
    /// Set to drop everything at once (second SIGINT, grace period over).
    stop_now: watch::Receiver<RunState>,
    /// Markers sent before this are from earlier runs (same users, same numbers).
    started: std::time::SystemTime,
    /// Tells this run's delivered messages apart from earlier runs' (Message-IDs).
    run_id: u64,
    /// The mailbox models IMAP replies are checked against.
    tracking: Option<Arc<crate::tracking::Registry>>,
}

impl Ctx {
    fn connection_id(&self) -> u64 {
        self.next_connection.fetch_add(1, Ordering::Relaxed)
    }

    fn count_command(&self, client: u16, state: State) {
        if let Some(c) = self.counters.get(client as usize) {
            c.commands[state as usize].fetch_add(1, Ordering::Relaxed);
        }
    }

    /// A command finished: its timeline event and the client type's count.
    fn command_done(
        &self,
        client: u16,
        state: State,
        outcome: crate::metrics::Outcome,
        intended: Instant,
        started: Instant,
    ) {
        self.metrics.send(Event::Command {
            state,
            outcome,
            intended,
            started,
            finished: Instant::now(),
        });
        self.count_command(client, state);
    }

    /// A client connection opened (past the greeting) or closed.
    fn connection_opened(&self) {
        let gauges = &self.metrics.gauges;
        gauges.open.fetch_add(1, Ordering::Relaxed);
        gauges.active.fetch_add(1, Ordering::Relaxed);
        self.metrics.send(Event::Connected);
    }

    fn connection_closed(&self) {
        let gauges = &self.metrics.gauges;
        gauges.open.fetch_sub(1, Ordering::Relaxed);
        gauges.active.fetch_sub(1, Ordering::Relaxed);
        self.metrics.send(Event::Disconnected);
    }

    fn skip(&self) {
        self.skipped.fetch_add(1, Ordering::Relaxed);
    }

    fn error(
        &self,
        kind: ErrorKind,
        user: &str,
        connection: Option<u64>,
        message: String,
        line: Option<String>,
    ) {
        self.metrics.report(Report {
            severity: Severity::Error,
            user: Some(user.to_owned()),
            connection,
            message,
            line,
            kind: Some(kind),
        });
    }

    /// The message number of a delivery marker, if it is `user`'s from this run.
    fn marker_msg(
        &self,
        user: &UserShared,
        marker: Option<(u64, std::time::SystemTime)>,
    ) -> Option<u32> {
        let (id, sent) = marker?;
        if sent < self.started {
            return None;
        }
        user.marker_msg(id)
    }

    fn stopping_now(&self) -> bool {
        *self.stop_now.borrow() == RunState::StopNow
    }
}

/// One action for a session task, with the instant it was planned for.
#[derive(Debug, Clone, Copy)]
struct Job {
    action: ScheduledAction,
    intended: Instant,
}

/// Runs the schedule until it ends or `state` leaves `Running`, then lets sessions log
/// out (up to `stop_grace`) and waits for deliveries in flight.
pub async fn run(
    run: ProfileRun,
    metrics: Metrics,
    mut state: watch::Receiver<RunState>,
) -> Summary {
    let seed = run.schedule.seed.or(run.profile.run.seed).unwrap_or(0);
    let write_sources = run
        .profile
        .populations
        .iter()
        .map(|p| {
            p.write_size.map(|size| {
                Arc::new(crate::mail::RandomMessages::new(size.max(1))) as Arc<dyn MessageSource>
            })
        })
        .collect();
    let lmtp_max = run
        .profile
        .servers
        .lmtp
        .as_ref()
        .and_then(|l| l.max_parallel);
    let ctx = Arc::new(Ctx {
        profile: run.profile.clone(),
        seed,
        endpoints: run.endpoints,
        messages: run.messages,
        write_sources,
        mech: run.mech,
        scram_cache: ScramCache::default(),
        imap_options: run.imap_options,
        pop3_options: run.pop3_options,
        lmtp_options: run.lmtp_options,
        lmtp_queue: LmtpQueue::new(lmtp_max),
        lmtp_pool: std::sync::Mutex::new(Vec::new()),
        lmtp_pool_max: lmtp_max.map_or(64, |n| n as usize),
        counters: run
            .profile
            .clients
            .iter()
            .map(|_| ClientCounters {
                sessions: AtomicU64::new(0),
                commands: (0..State::COUNT).map(|_| AtomicU64::new(0)).collect(),
            })
            .collect(),
        metrics,
        skipped: AtomicU64::new(0),
        next_connection: AtomicU64::new(1),
        deliveries: AtomicU64::new(0),
        deliveries_done: tokio::sync::Notify::new(),
        live_sessions: AtomicU64::new(0),
        sessions_done: tokio::sync::Notify::new(),
        end_sessions: watch::channel(false).0,
        stop_now: state.clone(),
        started: std::time::SystemTime::now(),
        tracking: run.tracking.then(crate::tracking::Registry::new),
        run_id: std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos() as u64),
    });

    let schedule = Schedule::from_arc(run.profile.clone(), run.schedule);
    let directory = Arc::new(run.directory);
    let stop = Arc::new(AtomicBool::new(false));
    let handle = tokio::runtime::Handle::current();
    let dispatcher = {
        let ctx = ctx.clone();
        let stop = stop.clone();
        let password = run.default_password;
        let spin = run.spin;
        tokio::task::spawn_blocking(move || {
            dispatch(schedule, &ctx, &directory, &password, spin, &stop, &handle)
        })
    };

    // Stop handing out actions when the run is told to stop.
    let watcher = {
        let stop = stop.clone();
        tokio::spawn(async move {
            while *state.borrow_and_update() == RunState::Running {
                if state.changed().await.is_err() {
                    break;
                }
            }
            stop.store(true, Ordering::Relaxed);
        })
    };

    let actions = match dispatcher.await {
        Ok(actions) => actions,
        Err(e) => {
            let message = format!("profile dispatcher failed: {e}");
            ctx.error(ErrorKind::Other, "-", None, message, None);
            0
        }
    };
    watcher.abort();

    // Sessions see their channels closed and log out; give them the grace period.
    let wait_all = async {
        while ctx.live_sessions.load(Ordering::Acquire) > 0 {
            let notified = ctx.sessions_done.notified();
            if ctx.live_sessions.load(Ordering::Acquire) == 0 {
                break;
            }
            notified.await;
        }
        while ctx.deliveries.load(Ordering::Acquire) > 0 {
            let notified = ctx.deliveries_done.notified();
            if ctx.deliveries.load(Ordering::Acquire) == 0 {
                break;
            }
            notified.await;
        }
    };
    tokio::select! {
        () = wait_all => {}
        () = tokio::time::sleep(run.stop_grace) => {
            ctx.metrics.report(Report {
                severity: Severity::Info,
                user: None,
                connection: None,
                message: "Second timeout triggered while trying to stop - stopping immediately".into(),
                line: None,
                kind: None,
            });
        }
        () = until_stop_now(ctx.stop_now.clone()) => {}
    }
    ctx.end_sessions.send_replace(true);
    ctx.lmtp_pool
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .clear();

    Summary {
        clients: ctx
            .profile
            .clients
            .iter()
            .zip(&ctx.counters)
            .map(|(c, counters)| ClientSummary {
                name: c.name.get_ref().clone(),
                protocol: c.protocol,
                sessions: counters.sessions.load(Ordering::Relaxed),
                commands: State::all()
                    .zip(&counters.commands)
                    .map(|(s, n)| (s, n.load(Ordering::Relaxed)))
                    .filter(|(_, n)| *n > 0)
                    .collect(),
            })
            .collect(),
        actions,
        skipped: ctx.skipped.load(Ordering::Relaxed),
    }
}

/// Resolves when the run is told to stop at once.
async fn until_stop_now(mut state: watch::Receiver<RunState>) {
    while *state.borrow_and_update() != RunState::StopNow {
        if state.changed().await.is_err() {
            std::future::pending::<()>().await;
        }
    }
}

/// The dispatcher thread: hands actions over at their time. Returns the number of
/// actions handed over (the session tasks' channels are closed on return).
fn dispatch(
    schedule: Schedule,
    ctx: &Arc<Ctx>,
    directory: &Directory,
    default_password: &str,
    spin: Duration,
    stop: &AtomicBool,
    handle: &tokio::runtime::Handle,
) -> u64 {
    let mut users: HashMap<u32, Arc<UserShared>> = HashMap::new();
    let mut sessions = sessions::Sessions::default();
    let default_password: Arc<str> = Arc::from(default_password);
    let population_names: Vec<Arc<str>> = ctx
        .profile
        .populations
        .iter()
        .map(|p| Arc::from(p.name.get_ref().as_str()))
        .collect();
    let start = Instant::now();
    let end = schedule.end();
    let actions = run_blocking(schedule, start, spin, stop, |action, lateness| {
        ctx.metrics.send(Event::Action { lateness });
        let intended = start + action.at;
        let user = users
            .entry(action.user)
            .or_insert_with(|| {
                let (name, password) = directory.user(action.user);
                let population = population_names
                    .get(action.population as usize)
                    .cloned()
                    .unwrap_or_else(|| Arc::from(""));
                Arc::new(UserShared::new(
                    action.user,
                    name,
                    password.map_or_else(|| default_password.clone(), Arc::from),
                    action.population,
                    population,
                ))
            })
            .clone();
        match (action.action, action.client) {
            (Action::Deliver { to, msg }, _) => {
                ctx.metrics.send(Event::Delivery(DeliveryEvent::Offered));
                ctx.deliveries.fetch_add(1, Ordering::AcqRel);
                handle.spawn(delivery::deliver(ctx.clone(), user, to, msg, intended));
            }
            (_, Some(client)) => {
                sessions.route(ctx, handle, &user, client, Job { action, intended });
            }
            (_, None) => ctx.skip(),
        }
    });
    // The run lasts its whole period even when nothing more is planned (sessions stay
    // logged in): wait for its end, or for the stop.
    while !stop.load(Ordering::Relaxed) {
        let left = end.map(|end| (start + end).saturating_duration_since(Instant::now()));
        if left.is_some_and(|left| left.is_zero()) {
            break;
        }
        std::thread::sleep(left.unwrap_or(Duration::MAX).min(Duration::from_millis(50)));
    }
    actions
}

/// What one session did, for its [`crate::metrics::SessionRecord`].
#[derive(Debug, Default)]
struct SessionTally {
    start: Option<std::time::SystemTime>,
    commands: u64,
    errors: u64,
    bytes_in: u64,
    bytes_out: u64,
}

impl SessionTally {
    fn begin(&mut self) {
        *self = SessionTally {
            start: Some(std::time::SystemTime::now()),
            ..SessionTally::default()
        };
    }

    /// Emits the session record if a session was open.
    fn end(&mut self, ctx: &Ctx, user: &UserShared, client: u16, protocol: &'static str) {
        let Some(start) = self.start.take() else {
            return;
        };
        ctx.metrics.session(crate::metrics::SessionRecord {
            user: user.name.clone(),
            population: user.population_name.to_string(),
            client: ctx.profile.clients[client as usize].name.get_ref().clone(),
            protocol,
            start,
            end: std::time::SystemTime::now(),
            commands: self.commands,
            bytes_in: self.bytes_in,
            bytes_out: self.bytes_out,
            errors: self.errors,
        });
    }
}
