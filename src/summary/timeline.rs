//! The summary's timeline: every second of the run with what the CSV has and the
//! histograms the CSV cannot hold, so windows of the run (SLOs after a warm-up) and
//! several runs (shards) add up exactly.

use std::collections::BTreeMap;
use std::time::{Duration, UNIX_EPOCH};

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::histogram::{self, HistogramError};
use crate::metrics::{ErrorKind, Interval, Latency, OpFigures, SkipReason};
use crate::ops::{Op, Protocol};
use crate::usage::ServerUsage;

/// Every second of a run, in order.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Timeline {
    pub seconds: Vec<Second>,
}

/// One second. Ops without activity are left out (read them as zeros).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Second {
    /// Wall-clock end of the second, whole seconds since the epoch.
    pub unix: u64,
    /// Seconds since the run started (1, 2, …; the last may be partial).
    pub elapsed: u64,
    /// Gauges at the end of the second.
    pub active: u64,
    pub open: u64,
    /// Most connections open at once during the second.
    pub open_peak: u64,
    /// Profile mode: users with a session open; LMTP deliveries waiting for a slot.
    pub users: u64,
    pub queued: u64,
    pub connects: u64,
    pub connect_failures: u64,
    pub disconnects: u64,
    pub errors: u64,
    pub warnings: u64,
    /// Error kind name → count.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub error_kinds: BTreeMap<String, u64>,
    /// `protocol.NAME` → figures.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub ops: BTreeMap<String, SecondOp>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deliveries: Option<SecondDeliveries>,
    /// Profile mode: lateness of the actions handed over in this second.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lateness: Option<SecondLatency>,
    /// Profile mode: actions skipped, by reason.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub skipped: BTreeMap<String, u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub delivered_sizes: Option<super::Sizes>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub written_sizes: Option<super::Sizes>,
    /// `server_pid=`/`server_cgroup=`: what the server used in this second.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub server: Option<SecondServer>,
}

/// The server's usage in one second.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SecondServer {
    /// CPU time of all the server's processes, on all cores, µs.
    pub cpu_us: u64,
    /// Wall-clock time the sample covers, µs (CPU % of one core = 100 · cpu_us / wall_us).
    pub wall_us: u64,
    /// Resident memory at the end of the second, KiB (summed over processes).
    pub rss_kib: u64,
    /// Storage bytes read and written in the second.
    pub read_bytes: u64,
    pub write_bytes: u64,
    /// Processes at the end of the second.
    pub processes: u64,
}

impl SecondServer {
    /// CPU in % of one core.
    pub fn cpu_percent(&self) -> f64 {
        self.to_usage().cpu_percent()
    }

    fn of(usage: &ServerUsage) -> SecondServer {
        SecondServer {
            cpu_us: usage.cpu_us,
            wall_us: usage.wall_us,
            rss_kib: usage.rss_kib,
            read_bytes: usage.read_bytes,
            write_bytes: usage.write_bytes,
            processes: usage.processes,
        }
    }

    fn to_usage(&self) -> ServerUsage {
        let usage = ServerUsage {
            cpu_us: self.cpu_us,
            wall_us: self.wall_us,
            cpu_peak_percent: 0.0,
            rss_kib: self.rss_kib,
            rss_peak_kib: self.rss_kib,
            read_bytes: self.read_bytes,
            write_bytes: self.write_bytes,
            processes: self.processes,
        };
        ServerUsage {
            cpu_peak_percent: usage.cpu_percent(),
            ..usage
        }
    }
}

/// One op in one second.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SecondOp {
    pub count: u64,
    pub ok: u64,
    pub no: u64,
    pub bad: u64,
    pub failed: u64,
    /// Longest lateness of the op's start behind its plan, µs.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub lateness_max_us: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub latency: Option<SecondLatency>,
}

/// A latency distribution within one second: exact count and sum, and the histogram.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SecondLatency {
    pub count: u64,
    pub sum_us: u64,
    /// HdrHistogram V2 compressed, base64.
    pub histogram: String,
}

/// Deliveries in one second (outcomes count recipients).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SecondDeliveries {
    pub offered: u64,
    pub offered_recipients: u64,
    pub delivered: u64,
    pub refused: u64,
    pub failed: u64,
    pub waited_for_slot: u64,
    pub wait_max_us: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub end_to_end: Option<SecondLatency>,
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

/// Why a second of a timeline could not be read back.
#[derive(Debug, thiserror::Error)]
pub enum TimelineError {
    #[error("second {elapsed}: unknown op {key:?}")]
    UnknownOp { elapsed: u64, key: String },
    #[error("second {elapsed}: {source}")]
    Histogram {
        elapsed: u64,
        source: HistogramError,
    },
}

fn latency_of(latency: &Latency) -> Option<SecondLatency> {
    let histogram = latency.histogram.as_deref()?;
    Some(SecondLatency {
        count: latency.count,
        sum_us: latency.sum_us,
        histogram: histogram::encode(histogram),
    })
}

fn latency_from(second: &Option<SecondLatency>) -> Result<Latency, HistogramError> {
    match second {
        Some(s) => histogram::latency(Some(&s.histogram), s.count, s.sum_us),
        None => Ok(Latency::default()),
    }
}

/// Looks an op up by its `protocol.NAME` key.
pub fn op_by_key(key: &str) -> Option<Op> {
    let (protocol, name) = key.split_once('.')?;
    Op::find(Protocol::from_name(protocol)?, name)
}

impl Second {
    /// The record of one closed interval.
    pub fn of(interval: &Interval) -> Second {
        let ops = interval
            .active_ops()
            .map(|(op, f)| {
                (
                    op.key(),
                    SecondOp {
                        count: f.count,
                        ok: f.ok,
                        no: f.no,
                        bad: f.bad,
                        failed: f.failed,
                        lateness_max_us: f.lateness_max_us,
                        latency: latency_of(&f.latency),
                    },
                )
            })
            .collect();
        let d = &interval.deliveries;
        let deliveries =
            (d.offered > 0 || d.finished() > 0 || d.seen.count > 0).then(|| SecondDeliveries {
                offered: d.offered,
                offered_recipients: d.offered_recipients,
                delivered: d.delivered,
                refused: d.refused,
                failed: d.failed,
                waited_for_slot: d.late,
                wait_max_us: d.wait_max_us,
                end_to_end: latency_of(&d.seen),
            });
        Second {
            unix: interval
                .at
                .duration_since(UNIX_EPOCH)
                .map_or(0, |d| d.as_secs()),
            elapsed: interval.elapsed_secs,
            active: interval.active,
            open: interval.open,
            open_peak: interval.open_peak,
            users: interval.users,
            queued: interval.queued,
            connects: interval.connects,
            connect_failures: interval.connect_failures,
            disconnects: interval.disconnects,
            errors: interval.errors,
            warnings: interval.warnings,
            error_kinds: interval
                .error_kinds_seen()
                .into_iter()
                .map(|(k, n)| (k.name().to_owned(), n))
                .collect(),
            ops,
            deliveries,
            lateness: latency_of(&interval.deliveries.lateness),
            skipped: super::skipped_by_name(interval),
            delivered_sizes: super::Sizes::of(&interval.delivered_sizes),
            written_sizes: super::Sizes::of(&interval.written_sizes),
            server: interval.server.as_ref().map(SecondServer::of),
        }
    }

    /// The interval this second was recorded from (stalls are not kept). Unknown error
    /// kinds (from a newer version) count as errors of kind `other`.
    pub fn to_interval(&self) -> Result<Interval, TimelineError> {
        let elapsed = self.elapsed;
        let hist = |source| TimelineError::Histogram { elapsed, source };
        let mut interval = Interval::new();
        interval.elapsed_secs = self.elapsed;
        interval.at = UNIX_EPOCH + Duration::from_secs(self.unix);
        interval.active = self.active;
        interval.open = self.open;
        interval.open_peak = self.open_peak;
        interval.users = self.users;
        interval.queued = self.queued;
        interval.connects = self.connects;
        interval.connect_failures = self.connect_failures;
        interval.disconnects = self.disconnects;
        interval.errors = self.errors;
        interval.warnings = self.warnings;
        for (name, n) in &self.error_kinds {
            let kind = ErrorKind::from_name(name).unwrap_or(ErrorKind::Other);
            interval.error_kinds[kind as usize] += n;
        }
        for (key, s) in &self.ops {
            let op = op_by_key(key).ok_or_else(|| TimelineError::UnknownOp {
                elapsed,
                key: key.clone(),
            })?;
            interval.ops[op.index()] = OpFigures {
                count: s.count,
                ok: s.ok,
                no: s.no,
                bad: s.bad,
                failed: s.failed,
                latency: latency_from(&s.latency).map_err(hist)?,
                lateness_max_us: s.lateness_max_us,
            };
        }
        if let Some(d) = &self.deliveries {
            let figures = &mut interval.deliveries;
            figures.offered = d.offered;
            figures.offered_recipients = d.offered_recipients;
            figures.delivered = d.delivered;
            figures.refused = d.refused;
            figures.failed = d.failed;
            figures.late = d.waited_for_slot;
            figures.wait_max_us = d.wait_max_us;
            figures.seen = latency_from(&d.end_to_end).map_err(hist)?;
        }
        interval.deliveries.lateness = latency_from(&self.lateness).map_err(hist)?;
        for (name, n) in &self.skipped {
            // A reason from a newer version is kept, under `run-ended`.
            let reason = SkipReason::from_name(name).unwrap_or(SkipReason::RunEnded);
            interval.skipped[reason as usize] += n;
        }
        if let Some(sizes) = &self.delivered_sizes {
            interval.delivered_sizes = sizes.to_figures();
        }
        if let Some(sizes) = &self.written_sizes {
            interval.written_sizes = sizes.to_figures();
        }
        interval.server = self.server.as_ref().map(SecondServer::to_usage);
        Ok(interval)
    }
}

/// Adds up the seconds whose `elapsed` is above `after` (0: all of them). The result's
/// gauges are the last second's; `open_peak` is the highest.
pub fn aggregate<'a>(
    seconds: impl IntoIterator<Item = &'a Second>,
    after: u64,
) -> Result<Interval, TimelineError> {
    let mut total = Interval::new();
    for second in seconds {
        if second.elapsed > after {
            total.add(&second.to_interval()?);
        }
    }
    Ok(total)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metrics::{DeliveryEvent, Event, Outcome};
    use crate::ops::{LmtpCommand, Pop3Command};
    use crate::states::State;
    use std::time::Instant;

    fn command(iv: &mut Interval, op: Op, outcome: Outcome, us: u64) {
        let started = Instant::now();
        iv.record(&Event::Command {
            op,
            outcome,
            intended: started,
            started,
            finished: started + Duration::from_micros(us),
        });
    }

    #[test]
    fn seconds_round_trip_and_add_up_to_the_totals() {
        let mut totals = Interval::new();
        let mut seconds = Vec::new();
        for s in 1..=5u64 {
            let mut iv = Interval::new();
            iv.elapsed_secs = s;
            for k in 0..s * 7 {
                command(
                    &mut iv,
                    Op::Imap(State::Login),
                    Outcome::Ok,
                    100 + k * 37 * s,
                );
                command(&mut iv, Op::Pop3(Pop3Command::Retr), Outcome::No, 5_000 + k);
            }
            command(&mut iv, Op::Lmtp(LmtpCommand::Data), Outcome::Failed, 77);
            iv.record(&Event::Delivery(DeliveryEvent::Offered { recipients: 3 }));
            iv.record(&Event::Delivery(DeliveryEvent::Finished {
                delivered: 2,
                refused: 1,
                failed: 0,
                waited: Duration::from_millis(s),
            }));
            iv.record(&Event::Delivery(DeliveryEvent::Seen {
                latency: Duration::from_millis(10 * s),
            }));
            iv.error_kinds[ErrorKind::UidChanged as usize] += s;
            iv.errors += s;
            let second = Second::of(&iv);
            let json = serde_json::to_string(&second).unwrap();
            let back: Second = serde_json::from_str(&json).unwrap();
            assert_eq!(back, second);
            assert_eq!(Second::of(&back.to_interval().unwrap()), second);
            totals.add(&iv);
            seconds.push(second);
        }
        let summed = aggregate(&seconds, 0).unwrap();
        for op in [Op::Imap(State::Login), Op::Pop3(Pop3Command::Retr)] {
            let (a, b) = (summed.op(op), totals.op(op));
            assert_eq!(
                (a.count, a.no, a.latency.count),
                (b.count, b.no, b.latency.count)
            );
            for q in [0.5, 0.99, 0.999, 1.0] {
                assert_eq!(a.latency.at(q), b.latency.at(q), "{op} q{q}");
            }
        }
        assert_eq!(summed.deliveries.delivered, 10);
        assert_eq!(summed.deliveries.offered_recipients, 15);
        assert_eq!(summed.errors_of(ErrorKind::UidChanged), 15);
        // A window: seconds 4 and 5 only.
        let window = aggregate(&seconds, 3).unwrap();
        assert_eq!(window.op(Op::Imap(State::Login)).count, 28 + 35);
    }
}
