//! The run summary (`summary=FILE`): one JSON document per run, the common input of
//! the HTML report, capacity search, run comparison and shard merge.
//!
//! It holds the run's identity (tool, command line with passwords masked, profile hash,
//! seed, start and end), its totals per op (counts, exact latency percentiles and the
//! histogram itself, losslessly encoded), errors by kind with examples, connections,
//! deliveries, the server's identity, the tool's own cost, SLO verdicts, and a timeline
//! of every second ([`timeline::Second`]) with per-op counts and histograms. Totals are
//! always the sum of the timeline's seconds ([`Totals::from_interval`] of
//! [`timeline::aggregate`]), so anything computed from a window of the timeline (SLOs
//! after a warm-up, merged shards) uses exactly the same arithmetic.
//!
//! The schema is `schemas/summary.schema.json`, generated from these types.

pub mod histogram;
pub mod merge;
pub mod recorder;
pub mod timeline;

use std::collections::BTreeMap;
use std::path::Path;
use std::time::{SystemTime, UNIX_EPOCH};

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::metrics::{DeliveryFigures, ErrorKind, Interval, Latency};
use crate::ops::Op;

pub use recorder::{Recorded, SummaryRecorder};
pub use timeline::{Second, Timeline};

/// The `format` of summaries this version writes and reads.
pub const FORMAT: &str = "imaptest-summary/1";

/// Where the committed schema lives, relative to the crate root.
pub const SCHEMA_PATH: &str = "schemas/summary.schema.json";

/// One run's results.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RunSummary {
    /// Always `imaptest-summary/1`.
    pub format: String,
    pub tool: ToolInfo,
    /// A random id of this run (shards of one run have one id each).
    pub run_id: String,
    /// Set when the run was one shard of several.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shard: Option<ShardInfo>,
    /// Set on a summary made by `imaptest merge`: the shards it adds up.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub merged: Option<merge::MergeInfo>,
    pub mode: RunMode,
    /// The command line, passwords masked.
    pub command_line: Vec<String>,
    /// The profile of a profile run.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub profile: Option<ProfileRef>,
    /// `seed=` (or the profile's seed), if one was set.
    pub seed: Option<u64>,
    /// `start_at=`: the instant the run (every shard of it) was told to start at.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start_at: Option<Timestamp>,
    /// With `start_at=`: how many seconds after that instant this run's first second
    /// began (timer precision when on time; more for a shard that started late).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub started_late_secs: Option<f64>,
    pub start: Timestamp,
    pub end: Timestamp,
    pub duration_secs: f64,
    /// False when the run was cut short (signal, `error_quit`, a failed output).
    pub complete: bool,
    /// Why the run ended.
    pub ended_by: EndReason,
    /// Seconds at the start left out of SLO evaluation.
    pub warmup_secs: u64,
    /// The exit status imaptest returned (see the README's exit-status table).
    pub exit_status: u8,
    pub totals: Totals,
    /// Per client type of a profile run: sessions and commands.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub sessions: Vec<ClientSessions>,
    /// The first few errors of each kind.
    pub error_examples: Vec<ErrorExample>,
    /// What the servers said about themselves.
    pub server: ServerIdentity,
    /// What imaptest itself cost.
    pub tool_usage: ToolUsage,
    /// `server_pid=`/`server_cgroup=`: what was sampled (the figures are in the totals
    /// and the timeline).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub server_sampling: Option<ServerSampling>,
    pub slo: Vec<SloVerdict>,
    /// Scripted tests: the verdicts.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scripted: Option<ScriptedTotals>,
    pub timeline: Timeline,
}

/// What a scripted-test run (`test=`) found.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ScriptedTotals {
    /// Test groups (files) run.
    pub tests: u64,
    pub failed: u64,
    /// Skipped for missing capabilities.
    pub skipped: u64,
    pub base_commands: u64,
    pub base_failures: u64,
    pub extension_commands: u64,
    pub extension_failures: u64,
    /// Names of the failed tests.
    pub failed_tests: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ToolInfo {
    pub name: String,
    pub version: String,
}

impl ToolInfo {
    pub fn this() -> Self {
        ToolInfo {
            name: "imaptest".into(),
            version: env!("CARGO_PKG_VERSION").into(),
        }
    }
}

/// Shard `index` (0-based) of `count`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ShardInfo {
    pub index: u32,
    pub count: u32,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum RunMode {
    Stress,
    Profile,
    Scripted,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ProfileRef {
    pub path: String,
    /// SHA-256 of the profile file's bytes, hex.
    pub sha256: String,
}

/// An instant as RFC 3339 (UTC) and as unix time.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Timestamp {
    pub rfc3339: String,
    /// Seconds since the epoch, with fractions.
    pub unix: f64,
}

impl Timestamp {
    pub fn of(at: SystemTime) -> Self {
        let unix = at
            .duration_since(UNIX_EPOCH)
            .map_or(0.0, |d| d.as_secs_f64());
        Timestamp {
            rfc3339: humantime::format_rfc3339_millis(at).to_string(),
            unix,
        }
    }
}

/// Why a run ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum EndReason {
    /// `secs=` (or the profile's duration) was reached.
    Time,
    /// The engine ended by itself (scripted tests done, schedule done).
    Finished,
    Sigint,
    Sigterm,
    Sighup,
    /// `error_quit` stopped the run at the first error.
    ErrorQuit,
    /// `disconnect_quit` stopped the run at the first dropped connection.
    DisconnectQuit,
    /// An output file could not be written.
    OutputFailed,
}

impl EndReason {
    /// True if the run did what it was asked to do.
    pub fn is_complete(self) -> bool {
        matches!(self, EndReason::Time | EndReason::Finished)
    }
}

/// The whole run (or a window of it) added up.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Totals {
    /// Every op that ran, in table order.
    pub commands: Vec<CommandTotals>,
    pub errors: ErrorTotals,
    pub warnings: u64,
    pub connections: ConnectionTotals,
    /// Profile runs with LMTP deliveries.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deliveries: Option<DeliveryTotals>,
    /// Profile runs: how late the scheduler handed actions over.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub schedule_lateness: Option<LatencySummary>,
    /// Profile runs: scheduled actions that could not happen, by reason
    /// (`not-yet-visible`, `session-down`, …).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub skipped: BTreeMap<String, u64>,
    /// Profile runs: sizes of the messages delivered by LMTP.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub delivered_sizes: Option<Sizes>,
    /// Profile runs: sizes of the messages users wrote (APPEND).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub written_sizes: Option<Sizes>,
    /// With `server_pid=`/`server_cgroup=`: what the server used.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub server: Option<ServerTotals>,
}

/// What the server under test used over the run (or a window of it).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ServerTotals {
    /// CPU time of all its processes, on all cores, seconds.
    pub cpu_secs: f64,
    /// Mean CPU over the sampled time, % of one core (200 = two cores busy).
    pub cpu_mean_percent: f64,
    /// The busiest second's CPU, % of one core.
    pub cpu_peak_percent: f64,
    /// The most resident memory seen (summed over its processes), KiB.
    pub rss_peak_kib: u64,
    /// Storage bytes read and written.
    pub read_bytes: u64,
    pub write_bytes: u64,
}

impl ServerTotals {
    fn of(usage: &crate::usage::ServerUsage) -> ServerTotals {
        ServerTotals {
            cpu_secs: usage.cpu_us as f64 / 1e6,
            cpu_mean_percent: usage.cpu_percent(),
            cpu_peak_percent: usage.cpu_peak_percent,
            rss_peak_kib: usage.rss_peak_kib,
            read_bytes: usage.read_bytes,
            write_bytes: usage.write_bytes,
        }
    }
}

/// How the server's usage was sampled.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ServerSampling {
    /// `pid 1234 and descendants` or `cgroup /sys/fs/cgroup/…`.
    pub source: String,
    /// CPU cores online on the machine (so 150 % of one core reads as 75 % of two).
    pub cores: u32,
}

/// Message sizes in bytes: count, sum, largest, and a histogram of power-of-two
/// buckets (`buckets[i]` counts sizes from 2^i to 2^(i+1) - 1; bucket 0 also holds 0).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Sizes {
    pub count: u64,
    pub sum_bytes: u64,
    pub max_bytes: u64,
    /// Trailing empty buckets are left out.
    pub buckets: Vec<u64>,
}

impl Sizes {
    pub fn of(sizes: &crate::metrics::SizeFigures) -> Option<Sizes> {
        if sizes.count == 0 {
            return None;
        }
        let used = sizes
            .buckets
            .iter()
            .rposition(|&n| n > 0)
            .map_or(0, |i| i + 1);
        Some(Sizes {
            count: sizes.count,
            sum_bytes: sizes.sum,
            max_bytes: sizes.max,
            buckets: sizes.buckets[..used].to_vec(),
        })
    }

    pub fn to_figures(&self) -> crate::metrics::SizeFigures {
        let mut figures = crate::metrics::SizeFigures {
            count: self.count,
            sum: self.sum_bytes,
            max: self.max_bytes,
            ..Default::default()
        };
        for (mine, &n) in figures.buckets.iter_mut().zip(&self.buckets) {
            *mine = n;
        }
        figures
    }
}

/// Skips by reason name, only reasons that occurred.
pub fn skipped_by_name(interval: &Interval) -> BTreeMap<String, u64> {
    crate::metrics::SkipReason::ALL
        .iter()
        .map(|&r| (r.name().to_owned(), interval.skipped[r as usize]))
        .filter(|&(_, n)| n > 0)
        .collect()
}

/// One op over the run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CommandTotals {
    /// `imap`, `pop3`, `lmtp` or `action`.
    pub protocol: String,
    /// The op's own name (`LOGIN`, `RETR`, `DATA`, `CONNECT`, `read`).
    pub name: String,
    /// Counted events: OK replies, or events of ops without replies.
    pub count: u64,
    pub ok: u64,
    pub no: u64,
    pub bad: u64,
    /// No reply (connection failure, malformed reply).
    pub failed: u64,
    pub latency: LatencySummary,
}

/// Percentiles of a latency distribution, in µs, with the histogram they come from.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct LatencySummary {
    /// Values recorded.
    pub count: u64,
    /// Exact sum of the values (the histogram keeps 3 significant digits).
    pub sum_us: u64,
    pub mean_us: u64,
    pub p50_us: u64,
    pub p90_us: u64,
    pub p95_us: u64,
    pub p99_us: u64,
    pub p999_us: u64,
    pub max_us: u64,
    /// HdrHistogram V2 compressed, base64; absent when nothing was recorded.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub histogram: Option<String>,
}

impl LatencySummary {
    pub fn of(latency: &Latency) -> Self {
        LatencySummary {
            count: latency.count,
            sum_us: latency.sum_us,
            mean_us: latency.avg_us(),
            p50_us: latency.at(0.5),
            p90_us: latency.at(0.9),
            p95_us: latency.at(0.95),
            p99_us: latency.at(0.99),
            p999_us: latency.at(0.999),
            max_us: latency.max(),
            histogram: latency.histogram.as_deref().map(histogram::encode),
        }
    }

    /// The [`Latency`] this summary was made from.
    pub fn to_latency(&self) -> Result<Latency, histogram::HistogramError> {
        histogram::latency(self.histogram.as_deref(), self.count, self.sum_us)
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ErrorTotals {
    pub total: u64,
    /// Error kind name (`uid-changed`, …) → count; only kinds that occurred.
    pub by_kind: BTreeMap<String, u64>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ConnectionTotals {
    /// Connections that reached the greeting.
    pub opened: u64,
    /// Connection attempts that failed before the greeting.
    pub failed: u64,
    pub closed: u64,
    /// Most connections open at once.
    pub peak_open: u64,
}

/// LMTP deliveries of a profile run. Outcomes count recipients.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct DeliveryTotals {
    /// Transactions the schedule offered.
    pub offered: u64,
    /// Their recipients.
    pub offered_recipients: u64,
    pub delivered: u64,
    pub refused: u64,
    pub failed: u64,
    /// Offered recipients without an outcome at the end (queued or in flight).
    pub unfinished: u64,
    /// delivered / offered recipients (null when nothing was offered).
    pub delivered_ratio: Option<f64>,
    /// Transactions that waited for a free LMTP slot, and the longest wait.
    pub waited_for_slot: u64,
    pub wait_max_us: u64,
    /// From the start of the LMTP transaction to the user's client seeing the message.
    pub end_to_end: LatencySummary,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ClientSessions {
    pub client: String,
    /// `imap` or `pop3`.
    pub protocol: String,
    pub sessions: u64,
    /// `protocol.NAME` → commands sent.
    pub commands: BTreeMap<String, u64>,
}

/// One error, as printed on stderr.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ErrorExample {
    pub kind: String,
    pub user: Option<String>,
    pub connection: Option<u64>,
    pub message: String,
    /// The server line being processed (at most a few hundred bytes, control
    /// characters escaped).
    pub line: Option<String>,
    /// Seconds since the start of the run.
    pub elapsed_secs: u64,
}

/// What each server announced: greeting, capabilities and (IMAP) the ID reply.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ServerIdentity {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub imap: Option<ServerInfo>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pop3: Option<ServerInfo>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lmtp: Option<ServerInfo>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ServerInfo {
    /// `host:port`.
    pub address: String,
    pub greeting: String,
    pub capabilities: Vec<String>,
    /// The IMAP ID reply (RFC 2971), field → value.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub id: BTreeMap<String, String>,
}

/// The tool's own cost over the run (getrusage).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ToolUsage {
    pub cpu_user_secs: f64,
    pub cpu_system_secs: f64,
    pub peak_rss_kib: u64,
}

impl ToolUsage {
    /// This process's usage so far.
    pub fn now() -> Self {
        #[cfg(unix)]
        {
            // SAFETY: getrusage writes only the struct we pass.
            let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
            if unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut usage) } == 0 {
                let secs = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
                return ToolUsage {
                    cpu_user_secs: secs(usage.ru_utime),
                    cpu_system_secs: secs(usage.ru_stime),
                    peak_rss_kib: u64::try_from(usage.ru_maxrss).unwrap_or(0),
                };
            }
        }
        ToolUsage::default()
    }
}

/// One SLO's verdict.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SloVerdict {
    /// The expression as given (`imap.LOGIN.p99 < 500ms`).
    pub expression: String,
    pub metric: String,
    /// `<`, `<=`, `>`, `>=`, `==` or `!=`.
    pub comparison: String,
    /// The threshold in the metric's unit.
    pub threshold: f64,
    /// What the run measured, in the metric's unit (null: no data).
    pub observed: Option<f64>,
    /// `us` (latencies), `ratio` or `count`.
    pub unit: String,
    pub pass: bool,
}

impl Totals {
    /// Totals of an aggregated interval (a whole timeline, or a window of it).
    pub fn from_interval(total: &Interval) -> Totals {
        let commands = total
            .active_ops()
            .map(|(op, f)| CommandTotals {
                protocol: op.protocol().name().into(),
                name: op.name().into(),
                count: f.count,
                ok: f.ok,
                no: f.no,
                bad: f.bad,
                failed: f.failed,
                latency: LatencySummary::of(&f.latency),
            })
            .collect();
        let d = &total.deliveries;
        let deliveries = (d.offered > 0 || d.finished() > 0).then(|| delivery_totals(d));
        Totals {
            commands,
            errors: ErrorTotals {
                total: total.errors,
                by_kind: total
                    .error_kinds_seen()
                    .into_iter()
                    .map(|(k, n)| (k.name().to_owned(), n))
                    .collect(),
            },
            warnings: total.warnings,
            connections: ConnectionTotals {
                opened: total.connects,
                failed: total.connect_failures,
                closed: total.disconnects,
                peak_open: total.open_peak,
            },
            deliveries,
            schedule_lateness: (d.lateness.count > 0).then(|| LatencySummary::of(&d.lateness)),
            skipped: skipped_by_name(total),
            delivered_sizes: Sizes::of(&total.delivered_sizes),
            written_sizes: Sizes::of(&total.written_sizes),
            server: total.server.as_ref().map(ServerTotals::of),
        }
    }

    /// The totals of one op, if it ran.
    pub fn command(&self, op: Op) -> Option<&CommandTotals> {
        self.commands
            .iter()
            .find(|c| c.protocol == op.protocol().name() && c.name == op.name())
    }
}

fn delivery_totals(d: &DeliveryFigures) -> DeliveryTotals {
    DeliveryTotals {
        offered: d.offered,
        offered_recipients: d.offered_recipients,
        delivered: d.delivered,
        refused: d.refused,
        failed: d.failed,
        unfinished: d.offered_recipients.saturating_sub(d.finished()),
        delivered_ratio: (d.offered_recipients > 0)
            .then(|| d.delivered as f64 / d.offered_recipients as f64),
        waited_for_slot: d.late,
        wait_max_us: d.wait_max_us,
        end_to_end: LatencySummary::of(&d.seen),
    }
}

/// Why a summary file could not be read.
#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    #[error("cannot read {path}: {source}")]
    Io {
        path: String,
        source: std::io::Error,
    },
    #[error("{path}:{line}:{column}: not a run summary: {message}")]
    Json {
        path: String,
        line: usize,
        column: usize,
        message: String,
    },
    #[error("{path}: format {found:?} is not {FORMAT:?} (written by another imaptest version?)")]
    Format { path: String, found: String },
}

impl RunSummary {
    /// The summary as compact JSON with a final newline (`jq .` pretty-prints it; the
    /// timeline makes up most of it and indentation would double its size).
    pub fn to_json(&self) -> String {
        let mut text = serde_json::to_string(self).expect("a summary serialises");
        text.push('\n');
        text
    }

    /// Reads a summary file.
    pub fn read(path: &Path) -> Result<RunSummary, ReadError> {
        let name = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|source| ReadError::Io {
            path: name.clone(),
            source,
        })?;
        Self::parse(&name, &text)
    }

    /// Parses a summary; `name` is used in errors.
    pub fn parse(name: &str, text: &str) -> Result<RunSummary, ReadError> {
        // The format first, so an old or foreign file gets a clear message.
        if let Ok(value) = serde_json::from_str::<serde_json::Value>(text) {
            let found = value.get("format").and_then(|f| f.as_str()).unwrap_or("");
            if found != FORMAT {
                return Err(ReadError::Format {
                    path: name.to_owned(),
                    found: found.to_owned(),
                });
            }
        }
        serde_json::from_str(text).map_err(|e| ReadError::Json {
            path: name.to_owned(),
            line: e.line(),
            column: e.column(),
            message: e.to_string(),
        })
    }

    /// The error kinds named in the totals, as kinds.
    pub fn error_kinds(&self) -> impl Iterator<Item = (ErrorKind, u64)> + '_ {
        self.totals
            .errors
            .by_kind
            .iter()
            .filter_map(|(k, n)| ErrorKind::from_name(k).map(|k| (k, *n)))
    }
}

/// The JSON Schema of [`RunSummary`], pretty, with a final newline.
pub fn schema_json() -> String {
    let generator = schemars::generate::SchemaSettings::draft07().into_generator();
    let schema = generator.into_root_schema_for::<RunSummary>();
    let mut text = serde_json::to_string_pretty(&schema).expect("a schema serialises");
    text.push('\n');
    text
}

/// Masks secrets in a command line: the values of `pass=`, `master_pass=` and the like.
pub fn mask_command_line(args: impl IntoIterator<Item = String>) -> Vec<String> {
    const SECRET_KEYS: [&str; 3] = ["pass", "master_pass", "password"];
    args.into_iter()
        .map(|arg| match arg.split_once('=') {
            Some((key, _)) if SECRET_KEYS.contains(&key) => format!("{key}=***"),
            _ => arg,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn committed_schema_is_current() {
        crate::schema_drift::assert_committed(
            SCHEMA_PATH,
            &schema_json(),
            &format!(
                "summary types; regenerate it with\n    IMAPTEST_UPDATE_SCHEMA=1 cargo test --lib summary\n(or `imaptest schema summary > {SCHEMA_PATH}`)"
            ),
        );
    }

    #[test]
    fn passwords_are_masked() {
        let masked = mask_command_line(
            [
                "imaptest",
                "user=a",
                "pass=secret",
                "master_pass=x",
                "passes=3",
            ]
            .map(String::from),
        );
        assert_eq!(
            masked,
            [
                "imaptest",
                "user=a",
                "pass=***",
                "master_pass=***",
                "passes=3"
            ]
        );
    }
}
