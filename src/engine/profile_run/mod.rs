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
//! Delivered messages carry the [`marker`](mod@crate::lmtp::marker) header with (user, message
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

use rand::{RngExt as _, SeedableRng as _};
use rand_xoshiro::Xoshiro256PlusPlus;
use tokio::sync::watch;

use crate::config::Mech;
use crate::control::RunState;
use crate::imap::client::ClientOptions;
use crate::limits::{MAX_DELIVERIES_IN_FLIGHT, MAX_SESSION_QUEUE};
use crate::lmtp::{LmtpClient, LmtpOptions};
use crate::mail::MessageSource;
use crate::metrics::{DeliveryEvent, ErrorKind, Event, Metrics, Report, Severity, SkipReason};
use crate::net::Endpoint;
use crate::ops::{Op, TimingLog};
use crate::pop3::Pop3Options;
use crate::profile::Profile;
use crate::profile::model::Protocol;
use crate::profile::schedule::{
    Action, Directory, Mailbox, Schedule, ScheduleOptions, ScheduledAction, splitmix64,
};
use crate::profile::timeline::{LmtpQueue, run_blocking};
use crate::sasl::ScramCache;

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
    pub mech: Mech,
    pub imap_options: ClientOptions,
    pub pop3_options: Pop3Options,
    pub lmtp_options: LmtpOptions,
    /// How long sessions get to log out at the end before they are dropped.
    pub stop_grace: Duration,
    /// Spin this long before each action for sub-millisecond handover.
    pub spin: Duration,
    /// Check every IMAP reply against the mailbox model (`no_tracking` turns it off).
    pub tracking: bool,
    /// `clients=`: most client sessions open at once; a login waits for a free one.
    pub max_sessions: Option<u32>,
}

/// What a run did, per client type (for the summary after Totals).
#[derive(Debug, Clone)]
pub struct Summary {
    pub clients: Vec<ClientSummary>,
    /// Actions handed over by the scheduler (planned within the run).
    pub actions: u64,
    /// Actions carried out (whatever the server answered).
    pub done: u64,
    /// Actions that could not happen (by reason in the metrics' Totals); `done +
    /// skipped == actions`.
    pub skipped: u64,
}

/// Commands of one client type.
#[derive(Debug, Clone)]
pub struct ClientSummary {
    pub name: String,
    pub protocol: Protocol,
    pub sessions: u64,
    /// Commands sent, per op (connection phases included), in index order.
    pub commands: Vec<(Op, u64)>,
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
    mech: Mech,
    /// `clients=`: a permit per open client session, when capped.
    session_slots: Option<Arc<tokio::sync::Semaphore>>,
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
    done: AtomicU64,
    /// Per population: (first global user index, users).
    population_range: Vec<(u32, u32)>,
    /// Per population: sized messages when it sets `delivery_size`.
    delivery_sources: Vec<Option<crate::mail::sized::SizedMessages>>,
    directory: Arc<Directory>,
    next_connection: AtomicU64,
    /// Deliveries in flight (waited for at the end).
    deliveries: AtomicU64,
    deliveries_done: tokio::sync::Notify,
    /// Session tasks running (waited for at the end).
    live_sessions: AtomicU64,
    sessions_done: tokio::sync::Notify,
    /// Set when the sessions still running must end at once (grace period over).
    end_sessions: watch::Sender<bool>,
    /// Set when the run is over: deliveries still in flight end at once.
    abandon: watch::Sender<bool>,
    /// Deliveries ended by `abandon`.
    abandoned: AtomicU64,
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
    /// Until every session and every delivery has ended.
    async fn all_ended(&self) {
        until_zero(&self.live_sessions, &self.sessions_done).await;
        until_zero(&self.deliveries, &self.deliveries_done).await;
    }

    fn connection_id(&self) -> u64 {
        self.next_connection.fetch_add(1, Ordering::Relaxed)
    }

    fn count_command(&self, client: u16, op: Op) {
        if let Some(c) = self.counters.get(client as usize) {
            c.commands[op.index()].fetch_add(1, Ordering::Relaxed);
        }
    }

    /// A command finished: its timeline event and the client type's count.
    fn command_done(
        &self,
        client: u16,
        op: Op,
        outcome: crate::metrics::Outcome,
        intended: Instant,
        started: Instant,
    ) {
        self.metrics.send(Event::Command {
            op,
            outcome,
            intended,
            started,
            finished: Instant::now(),
        });
        if !matches!(op, Op::Action(_)) {
            self.count_command(client, op);
        }
    }

    /// Records what a protocol client logged (its own commands and connection
    /// phases) and counts the commands for the client type; returns how many.
    fn timed(&self, client: u16, log: &mut TimingLog) -> u64 {
        let mut n = 0;
        let entries: Vec<_> = log.drain().collect();
        for t in &entries {
            if !matches!(t.op, Op::Phase(..)) {
                self.count_command(client, t.op);
                n += 1;
            }
        }
        self.metrics.timed(entries);
        n
    }

    /// A scheduled action ended: its row, timed from its planned instant.
    fn action_row(&self, action: &Action, ok: bool, intended: Instant, started: Instant) {
        let outcome = if ok {
            crate::metrics::Outcome::Ok
        } else {
            crate::metrics::Outcome::Failed
        };
        self.metrics.send(Event::Command {
            op: Op::Action(action.kind()),
            outcome,
            intended,
            started,
            finished: Instant::now(),
        });
    }

    /// A client connection opened (past the greeting) or closed.
    fn connection_opened(&self) {
        let gauges = &self.metrics.gauges;
        gauges.connection_opened();
        self.metrics.send(Event::Connected);
    }

    fn connection_closed(&self) {
        let gauges = &self.metrics.gauges;
        gauges.connection_closed();
        self.metrics.send(Event::Disconnected);
    }

    /// A scheduled action that could not happen.
    fn skip(&self, reason: SkipReason) {
        self.skipped.fetch_add(1, Ordering::Relaxed);
        self.metrics.send(Event::ActionSkipped { reason });
    }

    /// A scheduled action was carried out (whatever the server answered).
    fn action_done(&self) {
        self.done.fetch_add(1, Ordering::Relaxed);
    }

    /// After a session performed one job: done unless it counted a skip (`before` and
    /// `after` are the session's skip counts around the job).
    fn done_unless_skipped(&self, before: u64, after: u64) {
        if after == before {
            self.action_done();
        }
    }

    /// The job just received and every one still queued: skipped, the run is ending.
    fn skip_remaining(&self, jobs: &mut sessions::JobReceiver) {
        self.skip(SkipReason::RunEnded);
        while jobs.try_recv().is_some() {
            self.skip(SkipReason::RunEnded);
        }
    }

    /// Further recipients of a delivery to `user` (its population's
    /// `delivery_recipients`): other users of the same population, drawn from the
    /// delivery's own seed.
    fn co_recipients(&self, user: &UserShared, msg: u32, to: Mailbox) -> Vec<String> {
        let pop = user.population as usize;
        let Some(recipients) = self
            .profile
            .populations
            .get(pop)
            .and_then(|p| p.delivery_recipients.as_ref())
        else {
            return Vec::new();
        };
        let (first, size) = self.population_range[pop];
        let mut rng = Xoshiro256PlusPlus::seed_from_u64(splitmix64(
            self.seed ^ user.marker_id(msg) ^ 0x5EC1_91E7,
        ));
        let want = (recipients.sample(&mut rng).saturating_sub(1)).min(size.saturating_sub(1));
        let mut chosen: Vec<u32> = Vec::with_capacity(want as usize);
        while (chosen.len() as u32) < want {
            let other = first + rng.random_range(0..size);
            if other != user.index && !chosen.contains(&other) {
                chosen.push(other);
            }
        }
        chosen
            .into_iter()
            .map(|i| {
                let name = self.directory.user(i).0;
                match to {
                    Mailbox::Inbox => name,
                    Mailbox::Spam => delivery::with_detail(&name, "Spam"),
                }
            })
            .collect()
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

    /// Waits for a session slot when `clients=` caps them (None: no cap, or stopping).
    async fn session_slot(&self) -> Option<tokio::sync::OwnedSemaphorePermit> {
        let slots = self.session_slots.clone()?;
        slots.acquire_owned().await.ok()
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
            p.write_size.as_ref().map(|size| {
                Arc::new(crate::mail::sized::SizedMessages::new(
                    size.clone(),
                    p.write_attachments,
                    p.size_source,
                    &run.messages,
                )) as Arc<dyn MessageSource>
            })
        })
        .collect();
    let delivery_sources = run
        .profile
        .populations
        .iter()
        .map(|p| {
            p.delivery_size.as_ref().map(|size| {
                crate::mail::sized::SizedMessages::new(
                    size.clone(),
                    p.delivery_attachments,
                    p.size_source,
                    &run.messages,
                )
            })
        })
        .collect();
    let population_range = {
        let mut first = 0u32;
        run.profile
            .population_sizes()
            .into_iter()
            .map(|n| {
                let range = (first, n);
                first = first.saturating_add(n);
                range
            })
            .collect()
    };
    let directory = Arc::new(run.directory);
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
        session_slots: run
            .max_sessions
            .map(|n| Arc::new(tokio::sync::Semaphore::new(n.max(1) as usize))),
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
                commands: (0..Op::COUNT).map(|_| AtomicU64::new(0)).collect(),
            })
            .collect(),
        metrics,
        skipped: AtomicU64::new(0),
        done: AtomicU64::new(0),
        population_range,
        delivery_sources,
        directory: directory.clone(),
        next_connection: AtomicU64::new(1),
        deliveries: AtomicU64::new(0),
        deliveries_done: tokio::sync::Notify::new(),
        live_sessions: AtomicU64::new(0),
        sessions_done: tokio::sync::Notify::new(),
        end_sessions: watch::Sender::new(false),
        abandon: watch::Sender::new(false),
        abandoned: AtomicU64::new(0),
        stop_now: state.clone(),
        started: std::time::SystemTime::now(),
        tracking: run.tracking.then(crate::tracking::Registry::new),
        run_id: std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos() as u64),
    });

    let schedule = Schedule::from_arc(run.profile.clone(), run.schedule);
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
    tokio::select! {
        () = ctx.all_ended() => {}
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
    // Sessions still running end at once (their queued jobs are dropped).
    ctx.end_sessions.send_replace(true);
    // Deliveries hold the metrics too: end them now, or a server that stopped
    // answering would keep the run alive for a reply timeout per queued delivery.
    ctx.abandon.send_replace(true);
    let _ = tokio::time::timeout(Duration::from_secs(1), ctx.all_ended()).await;
    let abandoned = ctx.abandoned.load(Ordering::Relaxed);
    if abandoned > 0 {
        ctx.metrics.report(Report {
            severity: Severity::Info,
            user: None,
            connection: None,
            message: format!(
                "{abandoned} LMTP deliveries still waiting for the server at the end were abandoned (skipped: run-ended)"
            ),
            line: None,
            kind: None,
        });
    }
    // Actions still queued in sessions ended at once (the grace period ran out) never ran.
    let accounted = ctx.done.load(Ordering::Relaxed) + ctx.skipped.load(Ordering::Relaxed);
    for _ in accounted..actions {
        ctx.skip(SkipReason::RunEnded);
    }
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
                commands: Op::all()
                    .zip(&counters.commands)
                    .map(|(s, n)| (s, n.load(Ordering::Relaxed)))
                    .filter(|(_, n)| *n > 0)
                    .collect(),
            })
            .collect(),
        actions,
        done: ctx.done.load(Ordering::Relaxed),
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
    let mut over_limit = OverLimit::default();
    let mut behind_at_end = None;
    let actions = run_blocking(schedule, start, spin, stop, |action, lateness| {
        // An action still due when the run is over: the rate is more than the
        // dispatcher can hand out, and secs= must end the run anyway.
        if end.is_some_and(|end| start.elapsed() > end) {
            behind_at_end = Some(lateness);
            stop.store(true, Ordering::Relaxed);
            return;
        }
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
                if to == Mailbox::Inbox {
                    user.mail().set_fate(msg, user::Fate::InFlight);
                }
                ctx.metrics
                    .send(Event::Delivery(DeliveryEvent::Offered { recipients: 1 }));
                if ctx.deliveries.load(Ordering::Acquire) >= MAX_DELIVERIES_IN_FLIGHT {
                    // Each waiting delivery holds its message: past the bound the
                    // rate is more than the server (or max_parallel) can take.
                    delivery::not_attempted(ctx, &user, to, msg);
                    over_limit.deliveries += 1;
                    over_limit.report(ctx);
                    return;
                }
                ctx.deliveries.fetch_add(1, Ordering::AcqRel);
                handle.spawn(delivery::deliver(ctx.clone(), user, to, msg, intended));
            }
            (_, Some(client)) => {
                let job = Job { action, intended };
                if !sessions.route(ctx, handle, &user, client, job) {
                    ctx.skip(SkipReason::OverLimit);
                    over_limit.actions += 1;
                    over_limit.report(ctx);
                }
            }
            (_, None) => ctx.skip(SkipReason::SessionDown),
        }
    });
    over_limit.flush(ctx);
    if let Some(behind) = behind_at_end {
        let message = format!(
            "the profile's rate is more than imaptest can hand out: at the end of the run the schedule was {:.1} s behind (the actions still due were dropped)",
            behind.as_secs_f64()
        );
        ctx.metrics.report(Report {
            severity: Severity::Warning,
            user: None,
            connection: None,
            message,
            line: None,
            kind: None,
        });
    }
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

/// Actions the dispatcher dropped at a bound, reported a line a second (an absurd
/// rate drops millions: one report each would flood the metrics channel).
#[derive(Default)]
struct OverLimit {
    deliveries: u64,
    actions: u64,
    last: Option<Instant>,
}

impl OverLimit {
    /// Reports what was dropped once a second has passed since the first drop.
    fn report(&mut self, ctx: &Ctx) {
        let now = Instant::now();
        match self.last {
            None => self.last = Some(now),
            Some(at) if now.duration_since(at) >= Duration::from_secs(1) => {
                self.last = Some(now);
                self.flush(ctx);
            }
            Some(_) => {}
        }
    }

    fn flush(&mut self, ctx: &Ctx) {
        let report = |message: String| {
            ctx.metrics.report(Report {
                severity: Severity::Error,
                user: None,
                connection: None,
                message,
                line: None,
                kind: Some(ErrorKind::LimitExceeded),
            });
        };
        if self.deliveries > 0 {
            report(format!(
                "{} LMTP deliveries not attempted: {MAX_DELIVERIES_IN_FLIGHT} were already in flight (the server, or max_parallel, can't keep up with the profile's rate; docs/limits.md)",
                std::mem::take(&mut self.deliveries)
            ));
        }
        if self.actions > 0 {
            report(format!(
                "{} actions skipped: {MAX_SESSION_QUEUE} were already waiting for their session (stuck, or slower than the schedule; docs/limits.md)",
                std::mem::take(&mut self.actions)
            ));
        }
    }
}

/// What one session did, for its [`crate::metrics::SessionRecord`].
#[derive(Debug, Default)]
struct SessionTally {
    start: Option<std::time::SystemTime>,
    /// The `clients=` slot the session holds while open.
    slot: Option<tokio::sync::OwnedSemaphorePermit>,
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
        self.slot = None;
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

/// Until `count` is 0; whoever lowers it notifies `done`.
async fn until_zero(count: &AtomicU64, done: &tokio::sync::Notify) {
    while count.load(Ordering::Acquire) > 0 {
        let notified = done.notified();
        if count.load(Ordering::Acquire) == 0 {
            break;
        }
        notified.await;
    }
}
