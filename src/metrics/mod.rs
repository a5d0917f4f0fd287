//! The metrics core shared by every mode: engines send [`Event`]s, the [`Aggregator`]
//! folds them into one [`Interval`] per second and hands intervals and reports to
//! [`Sink`]s (console, CSV, …). Engines never print.

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use hdrhistogram::Histogram;
use tokio::sync::mpsc;

pub use crate::ops::Outcome;
use crate::ops::{Op, Timed};

mod kind;
pub use kind::ErrorKind;

/// Severity of a report: an error is a finding about the server, a warning is advice.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Severity {
    Error,
    Warning,
    Info,
}

/// A problem seen on one connection (or globally when `connection` is None).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Report {
    pub severity: Severity,
    pub user: Option<String>,
    pub connection: Option<u64>,
    pub message: String,
    /// The server line being processed, if any.
    pub line: Option<String>,
    /// Which check an error comes from; `None` for warnings and info (an error without
    /// one is counted as [`ErrorKind::Other`]).
    pub kind: Option<ErrorKind>,
}

/// What engines emit.
#[derive(Debug, Clone)]
pub enum Event {
    /// A command, connection phase or profile action finished. `intended` is when the
    /// plan wanted it to start, `started` when it did. Commands and phases are timed
    /// from `started` (the server's own time); profile actions ([`Op::Action`]) are
    /// timed from `intended`, so an action the tool handed over late counts its wait
    /// (no coordinated omission). Lateness is `started - intended`.
    Command {
        op: Op,
        outcome: Outcome,
        intended: Instant,
        started: Instant,
        finished: Instant,
    },
    /// A counted event without latency (a DELAY started, a DISCONNECT, ...).
    Count {
        op: Op,
    },
    Connected,
    Disconnected,
    Report(Report),
    /// Profile mode: an LMTP delivery's progress.
    Delivery(DeliveryEvent),
    /// Profile mode: a scheduled action was handed over this much later than planned.
    Action {
        lateness: Duration,
    },
    /// A connection attempt failed before the server greeted (the CONNECT/TLS row
    /// counts it as failed; this counts the connection).
    ConnectFailed,
    /// Profile mode: a scheduled action that could not happen.
    ActionSkipped {
        reason: SkipReason,
    },
    /// Profile mode: a message of this many bytes was delivered (LMTP) or written
    /// (APPEND).
    MessageSent {
        bytes: u64,
        written: bool,
    },
}

/// Why a scheduled action did not happen (each counted; done + skipped == planned).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SkipReason {
    /// The message it acts on was not visible to the client: its delivery had not
    /// finished within the wait (retries included).
    NotYetVisible,
    /// The user's session was not logged in (or its connection had failed).
    SessionDown,
    /// The message was gone: deleted by a POP3 client, or removed by another action.
    MessageGone,
    /// The message's LMTP delivery was refused or failed.
    DeliveryFailed,
    /// The profile needs a server the run has no endpoint for.
    NoServer,
    /// The run ended before the action's turn came.
    RunEnded,
    /// A bound of imaptest was reached (docs/limits.md): deliveries in flight or
    /// actions queued for a session.
    OverLimit,
}

impl SkipReason {
    /// The reason with this name.
    pub fn from_name(name: &str) -> Option<SkipReason> {
        Self::ALL.into_iter().find(|r| r.name() == name)
    }

    pub const ALL: [SkipReason; 7] = [
        SkipReason::NotYetVisible,
        SkipReason::SessionDown,
        SkipReason::MessageGone,
        SkipReason::DeliveryFailed,
        SkipReason::NoServer,
        SkipReason::RunEnded,
        SkipReason::OverLimit,
    ];
    pub const COUNT: usize = Self::ALL.len();

    /// The stable name (`not-yet-visible`, …).
    pub const fn name(self) -> &'static str {
        match self {
            SkipReason::NotYetVisible => "not-yet-visible",
            SkipReason::SessionDown => "session-down",
            SkipReason::MessageGone => "message-gone",
            SkipReason::DeliveryFailed => "delivery-failed",
            SkipReason::NoServer => "no-server",
            SkipReason::RunEnded => "run-ended",
            SkipReason::OverLimit => "over-limit",
        }
    }
}

/// Sizes of messages sent, in power-of-two buckets (bucket `i`: sizes below 2^(i+1)).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SizeFigures {
    pub count: u64,
    pub sum: u64,
    pub max: u64,
    pub buckets: [u64; 40],
}

impl Default for SizeFigures {
    fn default() -> Self {
        SizeFigures {
            count: 0,
            sum: 0,
            max: 0,
            buckets: [0; 40],
        }
    }
}

impl SizeFigures {
    pub fn record(&mut self, bytes: u64) {
        self.count += 1;
        self.sum += bytes;
        self.max = self.max.max(bytes);
        let bucket = (64 - bytes.leading_zeros()).saturating_sub(1) as usize;
        self.buckets[bucket.min(39)] += 1;
    }

    pub fn add(&mut self, other: &SizeFigures) {
        self.count += other.count;
        self.sum += other.sum;
        self.max = self.max.max(other.max);
        for (mine, theirs) in self.buckets.iter_mut().zip(&other.buckets) {
            *mine += theirs;
        }
    }
}

/// The life of one LMTP delivery in profile mode. Outcomes count recipients: a
/// delivery to three recipients of which one is refused is two delivered, one refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeliveryEvent {
    /// The scheduler handed a delivery to `recipients` recipients over.
    Offered { recipients: u32 },
    /// The delivery went to this many more recipients in the same transaction
    /// (co-recipients drawn when it was sent).
    MoreRecipients { recipients: u32 },
    /// The transaction ended: recipients that got the message (2xx), that the server
    /// refused (4xx/5xx), and that got no answer (connection or protocol failure).
    /// `waited` is the time spent queued for a free LMTP slot.
    Finished {
        delivered: u32,
        refused: u32,
        failed: u32,
        waited: Duration,
    },
    /// The user's client saw the message `latency` after it was handed to the server
    /// (the start of the LMTP transaction).
    Seen { latency: Duration },
}

/// Connection gauges the engine updates directly (cheaper than events).
#[derive(Debug, Default)]
pub struct Gauges {
    /// Open connections.
    pub open: AtomicU64,
    /// Most connections open at once since the aggregator last looked.
    pub open_peak: AtomicU64,
    /// Open connections past the greeting.
    pub active: AtomicU64,
    /// Connection slots used at least once (ramp-up progress).
    pub slots_used: AtomicU64,
    /// Profile mode: users with at least one session open.
    pub users: AtomicU64,
    /// Profile mode: LMTP deliveries waiting for a free slot.
    pub queued: AtomicU64,
}

/// What one connection is doing, for the console's stalled-connection lines. The
/// engine touches it on every read and write; the aggregator looks once a second.
#[derive(Debug)]
pub struct ConnectionStatus {
    id: u64,
    epoch: Instant,
    last_io_ms: AtomicU64,
    /// The oldest command still waiting for its reply: (tag number, command line).
    waiting_for: Mutex<Option<(u32, String)>>,
}

impl crate::net::IoObserver for ConnectionStatus {
    fn io(&self) {
        self.touch();
    }
}

impl ConnectionStatus {
    /// Records I/O now.
    pub fn touch(&self) {
        let ms = self.epoch.elapsed().as_millis() as u64;
        self.last_io_ms.store(ms, Ordering::Relaxed);
    }

    /// Sets the oldest outstanding command; does nothing if it is unchanged.
    pub fn set_waiting(&self, oldest: Option<(u32, &str)>) {
        let mut waiting = self.waiting_for.lock().unwrap_or_else(|p| p.into_inner());
        let same = match (&*waiting, oldest) {
            (Some((a, _)), Some((b, _))) => *a == b,
            (None, None) => true,
            _ => false,
        };
        if !same {
            *waiting = oldest.map(|(n, line)| (n, line.to_owned()));
        }
    }

    /// Seconds since the last I/O and the command waited for, if one is outstanding.
    fn stall(&self, now_ms: u64) -> Option<(u64, String)> {
        let waiting = self.waiting_for.lock().unwrap_or_else(|p| p.into_inner());
        let (_, line) = waiting.as_ref()?;
        let idle_ms = now_ms.saturating_sub(self.last_io_ms.load(Ordering::Relaxed));
        Some((idle_ms / 1000, line.clone()))
    }
}

/// The connections the aggregator watches for stalls.
#[derive(Debug)]
struct StallWatch {
    epoch: Instant,
    connections: Mutex<Vec<std::sync::Weak<ConnectionStatus>>>,
}

/// A connection waiting longer than this counts as stalled on the per-second line.
const STALLED_AFTER_SECS: u64 = 3;
/// A connection waiting longer than this gets a line of its own.
const STALL_LINE_AFTER_SECS: u64 = 15;

impl Gauges {
    /// A connection opened past the greeting: counts it open and active.
    pub fn connection_opened(&self) {
        let open = self.open.fetch_add(1, Ordering::Relaxed) + 1;
        self.open_peak.fetch_max(open, Ordering::Relaxed);
        self.active.fetch_add(1, Ordering::Relaxed);
    }

    /// A connection counted by [`Gauges::connection_opened`] closed.
    pub fn connection_closed(&self) {
        self.open.fetch_sub(1, Ordering::Relaxed);
        self.active.fetch_sub(1, Ordering::Relaxed);
    }

    pub fn snapshot(&self) -> (u64, u64, u64) {
        (
            self.active.load(Ordering::Relaxed),
            self.open.load(Ordering::Relaxed),
            self.slots_used.load(Ordering::Relaxed),
        )
    }
}

/// A classic console column: the counts of the ops shown under it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ColumnFigures {
    pub count: u64,
    /// Commands timed (any outcome).
    pub timed: u64,
    /// Their summed latency, in µs.
    pub sum_us: u64,
}

impl ColumnFigures {
    /// Average latency in milliseconds, 0 if nothing was timed.
    pub fn avg_ms(&self) -> u64 {
        (self.sum_us / 1000).checked_div(self.timed).unwrap_or(0)
    }
}

/// One op's figures within one interval (or a whole run).
#[derive(Debug, Clone)]
pub struct OpFigures {
    /// Counted events: OK replies, or events of ops without replies (DELAY, …). The
    /// console's columns show this.
    pub count: u64,
    pub ok: u64,
    pub no: u64,
    pub bad: u64,
    pub failed: u64,
    /// Reply latency of every command timed (any outcome), in microseconds.
    pub latency: Latency,
    pub lateness_max_us: u64,
}

impl OpFigures {
    fn new() -> Self {
        OpFigures {
            count: 0,
            ok: 0,
            no: 0,
            bad: 0,
            failed: 0,
            latency: Latency::default(),
            lateness_max_us: 0,
        }
    }

    fn add(&mut self, other: &OpFigures) {
        self.count += other.count;
        self.ok += other.ok;
        self.no += other.no;
        self.bad += other.bad;
        self.failed += other.failed;
        self.latency.add(&other.latency);
        self.lateness_max_us = self.lateness_max_us.max(other.lateness_max_us);
    }

    /// True if anything was counted or timed.
    pub fn is_active(&self) -> bool {
        self.count > 0 || self.latency.count > 0
    }

    /// Commands timed (any outcome).
    pub fn timed(&self) -> u64 {
        self.latency.count
    }

    /// Average latency in milliseconds, 0 if nothing was timed.
    pub fn avg_ms(&self) -> u64 {
        (self.latency.sum_us / 1000)
            .checked_div(self.latency.count)
            .unwrap_or(0)
    }
}

/// 1 µs to 1 hour at 3 significant digits, the same everywhere so intervals merge.
pub fn new_histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, 3_600_000_000, 3).expect("static histogram bounds are valid")
}

/// Profile mode: LMTP deliveries and schedule lateness within one interval. Outcomes
/// count recipients; `offered` counts transactions and `offered_recipients` their
/// recipients.
#[derive(Debug, Clone, Default)]
pub struct DeliveryFigures {
    /// Deliveries (transactions) handed over by the scheduler.
    pub offered: u64,
    /// Recipients of the offered deliveries.
    pub offered_recipients: u64,
    /// Recipients that got the message (2xx).
    pub delivered: u64,
    /// Recipients the server refused (4xx/5xx).
    pub refused: u64,
    /// Recipients without an answer: connection or protocol failure.
    pub failed: u64,
    /// Finished deliveries that had to wait for a free LMTP slot.
    pub late: u64,
    /// Longest wait for a slot, in µs.
    pub wait_max_us: u64,
    /// End-to-end latency (handed to LMTP → seen by the user's client), in µs.
    pub seen: Latency,
    /// Lateness of every scheduled action handed over, in µs.
    pub lateness: Latency,
}

impl DeliveryFigures {
    /// Recipients with an outcome (delivered, refused or failed).
    pub fn finished(&self) -> u64 {
        self.delivered + self.refused + self.failed
    }
}

/// A latency histogram with an exact sum, allocated on the first value (a histogram is
/// ~190 KB and most states are idle in most seconds).
#[derive(Debug, Clone, Default)]
pub struct Latency {
    pub histogram: Option<Box<Histogram<u64>>>,
    pub count: u64,
    pub sum_us: u64,
}

impl Latency {
    pub fn record(&mut self, value: Duration) {
        let us = value.as_micros() as u64;
        self.histogram
            .get_or_insert_with(|| Box::new(new_histogram()))
            .saturating_record(us.max(1));
        self.count += 1;
        self.sum_us += us;
    }

    pub fn add(&mut self, other: &Latency) {
        if let Some(theirs) = &other.histogram {
            match &mut self.histogram {
                Some(mine) => {
                    let _ = mine.add(theirs.as_ref());
                }
                None => self.histogram = Some(theirs.clone()),
            }
        }
        self.count += other.count;
        self.sum_us += other.sum_us;
    }

    /// The value at quantile `q` in µs (0 if nothing was recorded).
    pub fn at(&self, q: f64) -> u64 {
        self.histogram
            .as_ref()
            .map_or(0, |h| h.value_at_quantile(q))
    }

    /// The largest value in µs (0 if nothing was recorded).
    pub fn max(&self) -> u64 {
        self.histogram.as_ref().map_or(0, |h| h.max())
    }

    /// The exact mean in µs (0 if nothing was recorded).
    pub fn avg_us(&self) -> u64 {
        self.sum_us.checked_div(self.count).unwrap_or(0)
    }
}

impl DeliveryFigures {
    fn record(&mut self, event: DeliveryEvent) {
        match event {
            DeliveryEvent::Offered { recipients } => {
                self.offered += 1;
                self.offered_recipients += u64::from(recipients);
            }
            DeliveryEvent::MoreRecipients { recipients } => {
                self.offered_recipients += u64::from(recipients);
            }
            DeliveryEvent::Finished {
                delivered,
                refused,
                failed,
                waited,
            } => {
                self.delivered += u64::from(delivered);
                self.refused += u64::from(refused);
                self.failed += u64::from(failed);
                if !waited.is_zero() {
                    self.late += 1;
                    self.wait_max_us = self.wait_max_us.max(waited.as_micros() as u64);
                }
            }
            DeliveryEvent::Seen { latency } => self.seen.record(latency),
        }
    }

    fn add(&mut self, other: &DeliveryFigures) {
        self.offered += other.offered;
        self.offered_recipients += other.offered_recipients;
        self.delivered += other.delivered;
        self.refused += other.refused;
        self.failed += other.failed;
        self.late += other.late;
        self.wait_max_us = self.wait_max_us.max(other.wait_max_us);
        self.seen.add(&other.seen);
        self.lateness.add(&other.lateness);
    }
}

/// Everything that happened in one second (or in a whole run, for totals).
#[derive(Debug, Clone)]
pub struct Interval {
    /// Seconds since the run started, at the end of this interval.
    pub elapsed_secs: u64,
    /// Wall-clock time at the end of this interval.
    pub at: SystemTime,
    /// Per op, indexed by [`Op::index`].
    pub ops: Vec<OpFigures>,
    pub connects: u64,
    /// Connection attempts that failed before the greeting.
    pub connect_failures: u64,
    pub disconnects: u64,
    pub errors: u64,
    pub warnings: u64,
    /// Connections waiting more than 3 s for a reply at the end of the interval.
    pub stalled: u64,
    /// ` - <id> stalled for <n> secs in command: <line>` for those waiting over 15 s.
    pub stalled_lines: Vec<String>,
    /// Gauges at the end of the interval: active, open, slots used.
    pub active: u64,
    pub open: u64,
    pub slots_used: u64,
    /// Most connections open at once (sampled at the end of each second, and raised
    /// by every connection that opens).
    pub open_peak: u64,
    /// Profile mode: deliveries and schedule lateness.
    pub deliveries: DeliveryFigures,
    /// Profile mode gauges at the end of the interval: users with a session open, LMTP
    /// deliveries queued.
    pub users: u64,
    pub queued: u64,
    /// Error reports by kind, indexed by `ErrorKind as usize`.
    pub error_kinds: [u64; ErrorKind::COUNT],
    /// Profile mode: skipped actions by reason, indexed by `SkipReason as usize`.
    pub skipped: [u64; SkipReason::COUNT],
    /// Profile mode: sizes of delivered and of written messages.
    pub delivered_sizes: SizeFigures,
    pub written_sizes: SizeFigures,
    /// `server_pid=`/`server_cgroup=`: what the server used in this interval.
    pub server: Option<crate::usage::ServerUsage>,
}

impl Interval {
    pub fn new() -> Self {
        Interval {
            elapsed_secs: 0,
            at: SystemTime::now(),
            ops: (0..Op::COUNT).map(|_| OpFigures::new()).collect(),
            connects: 0,
            connect_failures: 0,
            disconnects: 0,
            open_peak: 0,
            errors: 0,
            warnings: 0,
            stalled: 0,
            stalled_lines: Vec::new(),
            active: 0,
            open: 0,
            slots_used: 0,
            deliveries: DeliveryFigures::default(),
            users: 0,
            queued: 0,
            error_kinds: [0; ErrorKind::COUNT],
            skipped: [0; SkipReason::COUNT],
            delivered_sizes: SizeFigures::default(),
            written_sizes: SizeFigures::default(),
            server: None,
        }
    }

    pub fn op(&self, op: Op) -> &OpFigures {
        &self.ops[op.index()]
    }

    /// The ops that had any activity, in index order.
    pub fn active_ops(&self) -> impl Iterator<Item = (Op, &OpFigures)> {
        self.ops
            .iter()
            .enumerate()
            .filter(|(_, f)| f.is_active())
            .filter_map(|(i, f)| Op::from_index(i).map(|op| (op, f)))
    }

    /// The classic console column `state`: the ops shown under it (see
    /// [`Op::console_column`]) added up.
    pub fn column(&self, state: crate::states::State) -> ColumnFigures {
        let mut column = ColumnFigures::default();
        for (i, f) in self.ops.iter().enumerate() {
            if f.is_active() && Op::from_index(i).and_then(Op::console_column) == Some(state) {
                column.count += f.count;
                column.timed += f.latency.count;
                column.sum_us += f.latency.sum_us;
            }
        }
        column
    }

    /// Error reports of `kind` in this interval.
    pub fn errors_of(&self, kind: ErrorKind) -> u64 {
        self.error_kinds[kind as usize]
    }

    /// The kinds that occurred with their counts, most frequent first (ties in
    /// declaration order).
    pub fn error_kinds_seen(&self) -> Vec<(ErrorKind, u64)> {
        let mut seen: Vec<(ErrorKind, u64)> = ErrorKind::ALL
            .iter()
            .map(|&k| (k, self.errors_of(k)))
            .filter(|&(_, n)| n > 0)
            .collect();
        seen.sort_by_key(|&(_, n)| std::cmp::Reverse(n));
        seen
    }

    /// Folds one event into this interval.
    pub fn record(&mut self, event: &Event) {
        match event {
            Event::Command {
                op,
                outcome,
                intended,
                started,
                finished,
            } => {
                let f = &mut self.ops[op.index()];
                match outcome {
                    Outcome::Ok => {
                        f.ok += 1;
                        f.count += 1;
                    }
                    Outcome::No => f.no += 1,
                    Outcome::Bad => f.bad += 1,
                    Outcome::Failed => f.failed += 1,
                }
                let from = if matches!(op, Op::Action(_)) {
                    intended
                } else {
                    started
                };
                f.latency.record(finished.saturating_duration_since(*from));
                let late = started.saturating_duration_since(*intended).as_micros() as u64;
                f.lateness_max_us = f.lateness_max_us.max(late);
            }
            Event::Count { op } => self.ops[op.index()].count += 1,
            Event::ConnectFailed => self.connect_failures += 1,
            Event::Connected => self.connects += 1,
            Event::Disconnected => self.disconnects += 1,
            Event::Report(r) => match r.severity {
                Severity::Error => {
                    self.errors += 1;
                    self.error_kinds[r.kind.unwrap_or(ErrorKind::Other) as usize] += 1;
                }
                Severity::Warning => self.warnings += 1,
                Severity::Info => {}
            },
            Event::Delivery(d) => self.deliveries.record(*d),
            Event::Action { lateness } => self.deliveries.lateness.record(*lateness),
            Event::ActionSkipped { reason } => self.skipped[*reason as usize] += 1,
            Event::MessageSent { bytes, written } => {
                if *written {
                    self.written_sizes.record(*bytes);
                } else {
                    self.delivered_sizes.record(*bytes);
                }
            }
        }
    }

    /// Adds another interval's counts and latencies, keeping this one's time and gauges.
    pub fn add_figures(&mut self, other: &Interval) {
        for (mine, theirs) in self.ops.iter_mut().zip(&other.ops) {
            mine.add(theirs);
        }
        self.connects += other.connects;
        self.connect_failures += other.connect_failures;
        self.disconnects += other.disconnects;
        self.open_peak = self.open_peak.max(other.open_peak);
        self.errors += other.errors;
        self.warnings += other.warnings;
        self.deliveries.add(&other.deliveries);
        for (mine, theirs) in self.error_kinds.iter_mut().zip(&other.error_kinds) {
            *mine += theirs;
        }
        for (mine, theirs) in self.skipped.iter_mut().zip(&other.skipped) {
            *mine += theirs;
        }
        self.delivered_sizes.add(&other.delivered_sizes);
        self.written_sizes.add(&other.written_sizes);
        if let Some(theirs) = &other.server {
            self.server.get_or_insert_default().add(theirs);
        }
    }

    /// Adds a later interval (for totals and ten-second averages): its figures, and its
    /// time and gauges as the latest.
    pub fn add(&mut self, other: &Interval) {
        self.add_figures(other);
        self.elapsed_secs = other.elapsed_secs;
        self.at = other.at;
        self.stalled = other.stalled;
        self.active = other.active;
        self.open = other.open;
        self.slots_used = other.slots_used;
        self.users = other.users;
        self.queued = other.queued;
    }
}

impl Default for Interval {
    fn default() -> Self {
        Self::new()
    }
}

/// A consumer of metrics. Sinks run on the aggregator task; they may block briefly.
pub trait Sink: Send {
    /// One second is complete.
    fn interval(&mut self, interval: &Interval);
    /// A report arrived (printed at once by the console).
    fn report(&mut self, report: &Report);
    /// The run is over; `totals` covers all of it.
    fn finish(&mut self, totals: &Interval);
    /// Profile mode: a client session ended.
    fn session(&mut self, _session: &SessionRecord) {}
    /// Why the sink stopped writing (a full disk, a closed pipe), if it did.
    fn failure(&self) -> Option<String> {
        None
    }
}

/// What the aggregator hands back when the run is over.
#[derive(Debug)]
pub struct Finished {
    /// The whole run.
    pub totals: Interval,
    /// Sinks that failed to write, with why.
    pub output_failures: Vec<String>,
}

/// Profile mode: one client session of one user, from login to logout.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionRecord {
    pub user: String,
    pub population: String,
    pub client: String,
    /// `imap` or `pop3`.
    pub protocol: &'static str,
    pub start: SystemTime,
    pub end: SystemTime,
    /// Commands sent (all connections of the session).
    pub commands: u64,
    pub bytes_in: u64,
    pub bytes_out: u64,
    /// Commands that failed or were refused, and errors reported.
    pub errors: u64,
}

/// What goes through the aggregator's channel: rare things handled at once.
#[derive(Debug)]
enum Notice {
    Report(Report),
    Session(Box<SessionRecord>),
}

/// The sending side engines hold. Cloning is cheap.
///
/// Counted events go straight into a per-thread shard of the current second (an
/// uncontended lock and a histogram record, no allocation); reports, which are rare
/// and printed at once, go through a channel.
#[derive(Debug, Clone)]
pub struct Metrics {
    shards: Arc<[Mutex<Interval>]>,
    stalls: Arc<StallWatch>,
    reports: mpsc::UnboundedSender<Notice>,
    pub gauges: Arc<Gauges>,
    errors: Arc<AtomicU64>,
}

/// Shards of the current second: one per worker thread is enough to avoid contention.
const SHARDS: usize = 16;

thread_local! {
    static SHARD: usize = {
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        NEXT.fetch_add(1, Ordering::Relaxed) % SHARDS
    };
}

impl Metrics {
    pub fn send(&self, event: Event) {
        match event {
            Event::Report(report) => self.report(report),
            event => {
                let shard = SHARD.with(|s| *s);
                let mut interval = self.shards[shard]
                    .lock()
                    .unwrap_or_else(|poisoned| poisoned.into_inner());
                interval.record(&event);
            }
        }
    }

    /// Records ops a protocol client logged (see [`crate::ops::TimingLog`]).
    pub fn timed(&self, entries: impl IntoIterator<Item = Timed>) {
        let shard = SHARD.with(|s| *s);
        let mut interval = self.shards[shard]
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        for t in entries {
            interval.record(&Event::Command {
                op: t.op,
                outcome: t.outcome,
                intended: t.started,
                started: t.started,
                finished: t.finished,
            });
        }
    }

    /// Records the connect, TLS and greeting phases of a new connection.
    pub fn phases(&self, server: crate::ops::Server, times: &crate::net::PhaseTimes) {
        let mut log = crate::ops::TimingLog::default();
        log.phases(server, times);
        self.timed(log.drain());
    }

    /// Records a connection that could not be opened: the phase it failed in.
    pub fn connect_failed(
        &self,
        server: crate::ops::Server,
        phase: crate::ops::Phase,
        started: Instant,
    ) {
        self.send(Event::Command {
            op: Op::Phase(server, phase),
            outcome: Outcome::Failed,
            intended: started,
            started,
            finished: Instant::now(),
        });
        self.send(Event::ConnectFailed);
    }

    pub fn report(&self, report: Report) {
        if report.severity == Severity::Error {
            self.errors.fetch_add(1, Ordering::Relaxed);
        }
        // The aggregator outlives engines; a closed channel only happens at exit.
        let _ = self.reports.send(Notice::Report(report));
    }

    /// Profile mode: a session ended (for the per-session CSV).
    pub fn session(&self, session: SessionRecord) {
        let _ = self.reports.send(Notice::Session(Box::new(session)));
    }

    /// Registers a connection for stall watching; keep the returned status alive for
    /// the connection's lifetime.
    pub fn watch_connection(&self, id: u64) -> Arc<ConnectionStatus> {
        let status = Arc::new(ConnectionStatus {
            id,
            epoch: self.stalls.epoch,
            last_io_ms: AtomicU64::new(0),
            waiting_for: Mutex::new(None),
        });
        status.touch();
        let mut connections = self
            .stalls
            .connections
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        connections.push(Arc::downgrade(&status));
        status
    }

    /// Errors reported so far (for `error_quit`).
    pub fn error_count(&self) -> u64 {
        self.errors.load(Ordering::Relaxed)
    }
}

/// Moves everything recorded in `shards` since the last call into `into`.
fn drain_shards(shards: &[Mutex<Interval>], into: &mut Interval) {
    for shard in shards {
        let taken = {
            let mut interval = shard.lock().unwrap_or_else(|p| p.into_inner());
            std::mem::take(&mut *interval)
        };
        into.add_figures(&taken);
    }
}

/// Folds events into per-second intervals and feeds sinks.
pub struct Aggregator {
    reports: mpsc::UnboundedReceiver<Notice>,
    stalls: Arc<StallWatch>,
    /// A handle without a report sender, to drain the shards.
    shards: Arc<[Mutex<Interval>]>,
    gauges: Arc<Gauges>,
    sinks: Vec<Box<dyn Sink>>,
    tick: Duration,
    /// `server_pid=`/`server_cgroup=`: read once a second, as each second closes.
    server: Option<crate::usage::ServerSampler>,
}

/// Creates the engine-side handle and the aggregator that must be run.
pub fn channel(sinks: Vec<Box<dyn Sink>>) -> (Metrics, Aggregator) {
    let (tx, rx) = mpsc::unbounded_channel();
    let gauges = Arc::new(Gauges::default());
    let stalls = Arc::new(StallWatch {
        epoch: Instant::now(),
        connections: Mutex::new(Vec::new()),
    });
    let shards: Arc<[Mutex<Interval>]> = (0..SHARDS).map(|_| Mutex::new(Interval::new())).collect();
    (
        Metrics {
            shards: shards.clone(),
            stalls: stalls.clone(),
            reports: tx,
            gauges: gauges.clone(),
            errors: Arc::new(AtomicU64::new(0)),
        },
        Aggregator {
            reports: rx,
            stalls,
            shards,
            gauges,
            sinks,
            tick: Duration::from_secs(1),
            server: None,
        },
    )
}

impl Aggregator {
    /// Samples the server's CPU, memory and I/O as each second closes.
    pub fn with_server_sampler(mut self, sampler: crate::usage::ServerSampler) -> Self {
        self.server = Some(sampler);
        self
    }

    /// Runs until every [`Metrics`] handle is dropped, then emits the last partial
    /// interval and the totals. Returns the totals and the sinks that failed.
    pub async fn run(mut self) -> Finished {
        let start = tokio::time::Instant::now();
        let mut ticker = tokio::time::interval_at(start + self.tick, self.tick);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut current = Interval::new();
        let mut totals = Interval::new();
        let mut elapsed = 0;
        loop {
            tokio::select! {
                notice = self.reports.recv() => match notice {
                    Some(Notice::Report(report)) => self.record(&mut current, report),
                    Some(Notice::Session(session)) => {
                        for sink in &mut self.sinks {
                            sink.session(&session);
                        }
                    }
                    None => break,
                },
                _ = ticker.tick() => {
                    elapsed += 1;
                    self.close(&mut current, &mut totals, elapsed);
                }
            }
        }
        elapsed += 1;
        self.close(&mut current, &mut totals, elapsed);
        for sink in &mut self.sinks {
            sink.finish(&totals);
        }
        Finished {
            output_failures: self.sinks.iter().filter_map(|s| s.failure()).collect(),
            totals,
        }
    }

    fn record(&mut self, current: &mut Interval, report: Report) {
        for sink in &mut self.sinks {
            sink.report(&report);
        }
        current.record(&Event::Report(report));
    }

    /// Counts connections waiting too long for a reply and names the longest waits.
    fn find_stalls(&self, current: &mut Interval) {
        let now_ms = self.stalls.epoch.elapsed().as_millis() as u64;
        let mut connections = self
            .stalls
            .connections
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        connections.retain(|weak| weak.strong_count() > 0);
        for status in connections.iter().filter_map(|weak| weak.upgrade()) {
            let Some((idle, line)) = status.stall(now_ms) else {
                continue;
            };
            if idle > STALLED_AFTER_SECS {
                current.stalled += 1;
            }
            if idle > STALL_LINE_AFTER_SECS {
                current.stalled_lines.push(format!(
                    " - {} stalled for {idle} secs in command: {line}",
                    status.id
                ));
            }
        }
    }

    fn close(&mut self, current: &mut Interval, totals: &mut Interval, elapsed: u64) {
        drain_shards(&self.shards, current);
        self.find_stalls(current);
        let (active, open, slots) = self.gauges.snapshot();
        current.elapsed_secs = elapsed;
        current.at = SystemTime::now();
        current.active = active;
        current.open = open;
        current.slots_used = slots;
        current.open_peak = self
            .gauges
            .open_peak
            .swap(open, Ordering::Relaxed)
            .max(open);
        current.users = self.gauges.users.load(Ordering::Relaxed);
        current.queued = self.gauges.queued.load(Ordering::Relaxed);
        current.server = self.server.as_mut().and_then(|s| s.sample());
        for sink in &mut self.sinks {
            sink.interval(current);
        }
        totals.add(current);
        *current = Interval::new();
    }
}
