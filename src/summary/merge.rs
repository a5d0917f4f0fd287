//! `imaptest merge`: the summaries of a sharded run's shards added up into one summary
//! of the whole run, exactly.
//!
//! * Timelines align by unix second: every shard's seconds that ended in the same
//!   wall-clock second are added (counts summed, histograms merged losslessly, gauges
//!   such as open connections summed; a shard's own seconds that end in one wall-clock
//!   second are added first, its gauges taken from the later). `elapsed` counts from
//!   the earliest shard's start, so a late shard's seconds keep their place.
//! * Totals are recomputed from the merged timeline, as a run computes its own
//!   ([`Totals::from_interval`] of [`timeline::aggregate`]): percentiles come from the
//!   merged histograms, never from averaged percentiles. `connections.peak_open` is
//!   the highest sum of the shards' per-second peaks (an upper bound within a second).
//! * SLOs (every expression any shard had) are evaluated again on the merged timeline
//!   after the warm-up.
//! * The shards must be of one run: same mode, seed, profile (content hash), shard
//!   count, `start_at` and warm-up; anything else is refused. Shards absent from the
//!   inputs and shards whose run did not complete are named in [`MergeInfo`]; the
//!   merged summary is then incomplete.
//! * The exit status is the worst of the shards' (their SLO verdicts replaced by the
//!   merged ones), and [`crate::exit::SHARDS_MISSING`] when shards are missing.

use std::collections::BTreeMap;
use std::time::{Duration, UNIX_EPOCH};

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::recorder::EXAMPLES_PER_KIND;
use super::timeline::{self, Second, TimelineError};
use super::{
    ClientSessions, EndReason, ErrorExample, RunSummary, Timeline, Timestamp, ToolUsage, Totals,
};
use crate::exit;
use crate::metrics::Interval;
use crate::slo::Slo;

/// How a merged summary was put together.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct MergeInfo {
    /// The number of shards the run was split into.
    pub shard_count: u32,
    /// The shards merged, by index.
    pub shards: Vec<MergedShard>,
    /// Shard indices without a summary among the inputs.
    pub missing: Vec<u32>,
    /// Shards whose run did not complete (signal, `error_quit`, a failed output).
    pub incomplete: Vec<u32>,
}

/// One shard of a merged summary.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct MergedShard {
    pub index: u32,
    /// The file it was read from.
    pub file: String,
    pub run_id: String,
    pub complete: bool,
    pub ended_by: EndReason,
    pub exit_status: u8,
    pub start: Timestamp,
    /// How late after `start_at=` the shard started.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub started_late_secs: Option<f64>,
}

/// Why summaries could not be merged.
#[derive(Debug, thiserror::Error)]
pub enum MergeError {
    #[error("nothing to merge: give the shards' summary files")]
    NoInputs,
    #[error("{file}: not a shard's summary (no shard=I/N): only shards of one run merge")]
    NotAShard { file: String },
    #[error("{file} and {other} are both shard {index}/{count}")]
    DuplicateShard {
        index: u32,
        count: u32,
        file: String,
        other: String,
    },
    #[error("{file} is not of the same run as {first}: {what} {value} differs from {first_value}")]
    Mismatch {
        what: &'static str,
        file: String,
        value: String,
        first: String,
        first_value: String,
    },
    #[error("{file}: {source}")]
    Timeline { file: String, source: TimelineError },
}

/// Merges the summaries of a run's shards; each comes with the name of its file.
pub fn merge(inputs: &[(String, RunSummary)]) -> Result<RunSummary, MergeError> {
    let (first_file, first) = inputs.first().ok_or(MergeError::NoInputs)?;
    let shard_of = |file: &String, summary: &RunSummary| {
        summary
            .shard
            .ok_or_else(|| MergeError::NotAShard { file: file.clone() })
    };
    let count = shard_of(first_file, first)?.count;
    let mut by_index: BTreeMap<u32, (&String, &RunSummary)> = BTreeMap::new();
    for (file, summary) in inputs {
        let shard = shard_of(file, summary)?;
        check_same_run(first_file, first, file, summary)?;
        if let Some((other, _)) = by_index.insert(shard.index, (file, summary)) {
            return Err(MergeError::DuplicateShard {
                index: shard.index,
                count,
                file: file.clone(),
                other: other.clone(),
            });
        }
    }
    let shards: Vec<(&String, &RunSummary)> = by_index.values().copied().collect();

    let seconds = merge_timelines(&shards)?;
    let timeline_error = |source| MergeError::Timeline {
        file: "merged timeline".into(),
        source,
    };
    let totals = Totals::from_interval(&timeline::aggregate(&seconds, 0).map_err(timeline_error)?);
    let slo = merged_verdicts(&shards, &seconds, first.warmup_secs).map_err(timeline_error)?;

    let missing: Vec<u32> = (0..count).filter(|i| !by_index.contains_key(i)).collect();
    let incomplete: Vec<u32> = by_index
        .iter()
        .filter(|(_, (_, s))| !s.complete)
        .map(|(&i, _)| i)
        .collect();
    let mut status = shards
        .iter()
        .map(|(_, s)| match s.exit_status {
            exit::SLO_BREACHED => exit::OK,
            status => status,
        })
        .fold(exit::OK, exit::worst);
    if slo.iter().any(|v| !v.pass) {
        status = exit::worst(status, exit::SLO_BREACHED);
    }
    if !missing.is_empty() {
        status = exit::worst(status, exit::SHARDS_MISSING);
    }
    let start = shards
        .iter()
        .map(|(_, s)| &s.start)
        .min_by(|a, b| a.unix.total_cmp(&b.unix))
        .unwrap_or(&first.start)
        .clone();
    let end = shards
        .iter()
        .map(|(_, s)| &s.end)
        .max_by(|a, b| a.unix.total_cmp(&b.unix))
        .unwrap_or(&first.end)
        .clone();
    let ended_by = shards
        .iter()
        .map(|(_, s)| s.ended_by)
        .find(|r| !r.is_complete())
        .unwrap_or(first.ended_by);

    Ok(RunSummary {
        format: super::FORMAT.to_owned(),
        tool: super::ToolInfo::this(),
        run_id: merged_run_id(&shards),
        shard: None,
        merged: Some(MergeInfo {
            shard_count: count,
            shards: shards
                .iter()
                .map(|(file, s)| MergedShard {
                    index: s.shard.map_or(0, |sh| sh.index),
                    file: (*file).clone(),
                    run_id: s.run_id.clone(),
                    complete: s.complete,
                    ended_by: s.ended_by,
                    exit_status: s.exit_status,
                    start: s.start.clone(),
                    started_late_secs: s.started_late_secs,
                })
                .collect(),
            missing: missing.clone(),
            incomplete: incomplete.clone(),
        }),
        mode: first.mode,
        command_line: first
            .command_line
            .iter()
            .filter(|arg| !arg.starts_with("shard="))
            .cloned()
            .collect(),
        profile: first.profile.clone(),
        seed: first.seed,
        start_at: first.start_at.clone(),
        started_late_secs: None,
        duration_secs: (end.unix - start.unix).max(0.0),
        start,
        end,
        complete: missing.is_empty() && incomplete.is_empty(),
        ended_by,
        warmup_secs: first.warmup_secs,
        exit_status: status,
        totals,
        sessions: merge_sessions(&shards),
        error_examples: merge_examples(&shards),
        server: first.server.clone(),
        // Shards on one machine see the same server: its samples are one, not a sum.
        // Shards that sampled different servers (or none) have no single sampling.
        server_sampling: shards
            .iter()
            .all(|(_, s)| s.server_sampling == first.server_sampling)
            .then(|| first.server_sampling.clone())
            .flatten(),
        tool_usage: ToolUsage {
            cpu_user_secs: shards.iter().map(|(_, s)| s.tool_usage.cpu_user_secs).sum(),
            cpu_system_secs: shards
                .iter()
                .map(|(_, s)| s.tool_usage.cpu_system_secs)
                .sum(),
            peak_rss_kib: shards
                .iter()
                .map(|(_, s)| s.tool_usage.peak_rss_kib)
                .max()
                .unwrap_or(0),
        },
        slo,
        scripted: None,
        timeline: Timeline { seconds },
    })
}

/// Refuses a summary that is not of the same run as the first.
fn check_same_run(
    first_file: &str,
    first: &RunSummary,
    file: &str,
    summary: &RunSummary,
) -> Result<(), MergeError> {
    let shown = |v: &dyn std::fmt::Debug| format!("{v:?}");
    let profile_hash = |s: &RunSummary| s.profile.as_ref().map(|p| p.sha256.clone());
    // The instant in UTC: the same start written with an offset or as unix time agrees.
    let start_at = |s: &RunSummary| s.start_at.as_ref().map(|t| t.rfc3339.clone());
    let checks: [(&'static str, String, String); 6] = [
        ("mode", shown(&first.mode), shown(&summary.mode)),
        ("seed", shown(&first.seed), shown(&summary.seed)),
        (
            "profile (SHA-256)",
            shown(&profile_hash(first)),
            shown(&profile_hash(summary)),
        ),
        (
            "shard count",
            shown(&first.shard.map(|s| s.count)),
            shown(&summary.shard.map(|s| s.count)),
        ),
        (
            "start_at",
            shown(&start_at(first)),
            shown(&start_at(summary)),
        ),
        (
            "warm-up (s)",
            shown(&first.warmup_secs),
            shown(&summary.warmup_secs),
        ),
    ];
    for (what, first_value, value) in checks {
        if first_value != value {
            return Err(MergeError::Mismatch {
                what,
                file: file.to_owned(),
                value,
                first: first_file.to_owned(),
                first_value,
            });
        }
    }
    Ok(())
}

/// The shards' timelines added up by unix second, one wall-clock second at a time (an
/// hour of 25 shards never holds more than one second's histograms decoded).
fn merge_timelines(shards: &[(&String, &RunSummary)]) -> Result<Vec<Second>, MergeError> {
    // Where elapsed second 0 lies on the wall clock, for the earliest shard. The first
    // second places a shard's start (a last, partial second ends less than a second
    // after the one before it).
    let base = shards
        .iter()
        .filter_map(|(_, s)| s.timeline.seconds.first())
        .map(|first| first.unix.saturating_sub(first.elapsed))
        .min()
        .unwrap_or(0);
    // Each shard's seconds in wall-clock order, and how far each has been read.
    let timelines: Vec<Vec<&Second>> = shards
        .iter()
        .map(|(_, s)| {
            let mut seconds: Vec<&Second> = s.timeline.seconds.iter().collect();
            seconds.sort_by_key(|second| second.unix);
            seconds
        })
        .collect();
    let mut read = vec![0usize; shards.len()];
    let mut merged = Vec::new();
    loop {
        let next = timelines
            .iter()
            .zip(&read)
            .filter_map(|(seconds, &at)| seconds.get(at).map(|s| s.unix))
            .min();
        let Some(unix) = next else { break };
        let mut sum: Option<Interval> = None;
        for ((seconds, at), (file, _)) in timelines.iter().zip(&mut read).zip(shards) {
            // A shard's seconds ending in this wall-clock second (its last, partial one
            // may share it with the one before) are added first, keeping the later
            // gauges.
            let mut own: Option<Interval> = None;
            while let Some(second) = seconds.get(*at).filter(|s| s.unix == unix) {
                let interval = second
                    .to_interval()
                    .map_err(|source| MergeError::Timeline {
                        file: (*file).clone(),
                        source,
                    })?;
                match &mut own {
                    Some(earlier) => earlier.add(&interval),
                    None => own = Some(interval),
                }
                *at += 1;
            }
            match (&mut sum, own) {
                (Some(sum), Some(own)) => add_shard(sum, &own),
                (None, own) => sum = own,
                (Some(_), None) => {}
            }
        }
        if let Some(mut interval) = sum {
            interval.at = UNIX_EPOCH + Duration::from_secs(unix);
            interval.elapsed_secs = unix.saturating_sub(base);
            merged.push(Second::of(&interval));
        }
    }
    Ok(merged)
}

/// Adds another shard's second: its figures, and its gauges (connections open, users
/// with a session) to the sum of the shards' gauges.
fn add_shard(sum: &mut Interval, other: &Interval) {
    let peak = sum.open_peak + other.open_peak;
    sum.add_figures(other);
    sum.open_peak = peak;
    sum.active += other.active;
    sum.open += other.open;
    sum.slots_used += other.slots_used;
    sum.users += other.users;
    sum.queued += other.queued;
}

/// Every objective any shard had, in order of first appearance, on the merged data.
fn merged_verdicts(
    shards: &[(&String, &RunSummary)],
    seconds: &[Second],
    warmup_secs: u64,
) -> Result<Vec<super::SloVerdict>, TimelineError> {
    let mut slos: Vec<Slo> = Vec::new();
    for (_, summary) in shards {
        for verdict in &summary.slo {
            // Expressions in a summary were parsed by imaptest before its run.
            if let Ok(slo) = Slo::parse(&verdict.expression)
                && !slos.iter().any(|s| s.text == slo.text)
            {
                slos.push(slo);
            }
        }
    }
    crate::slo::verdicts(&slos, seconds, warmup_secs)
}

/// Sessions and commands per client type, summed.
fn merge_sessions(shards: &[(&String, &RunSummary)]) -> Vec<ClientSessions> {
    let mut merged: Vec<ClientSessions> = Vec::new();
    for (_, summary) in shards {
        for sessions in &summary.sessions {
            let found = merged
                .iter_mut()
                .find(|m| m.client == sessions.client && m.protocol == sessions.protocol);
            match found {
                Some(m) => {
                    m.sessions += sessions.sessions;
                    for (op, n) in &sessions.commands {
                        *m.commands.entry(op.clone()).or_default() += n;
                    }
                }
                None => merged.push(sessions.clone()),
            }
        }
    }
    merged
}

/// The first few examples of each error kind, shards in index order.
fn merge_examples(shards: &[(&String, &RunSummary)]) -> Vec<ErrorExample> {
    let mut per_kind: BTreeMap<&str, usize> = BTreeMap::new();
    let mut examples = Vec::new();
    for (_, summary) in shards {
        for example in &summary.error_examples {
            let seen = per_kind.entry(example.kind.as_str()).or_default();
            if *seen < EXAMPLES_PER_KIND {
                *seen += 1;
                examples.push(example.clone());
            }
        }
    }
    examples
}

/// A run id for the merged run: the same shards always give the same id.
fn merged_run_id(shards: &[(&String, &RunSummary)]) -> String {
    use sha2::Digest;
    let mut digest = sha2::Sha256::new();
    for (_, summary) in shards {
        digest.update(summary.run_id.as_bytes());
        digest.update(b"\n");
    }
    digest.finalize()[..16]
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

#[cfg(test)]
mod tests {
    use std::time::Instant;

    use super::*;
    use crate::metrics::{Event, Outcome, new_histogram};
    use crate::ops::Op;
    use crate::states::State;
    use crate::summary::{ServerIdentity, ShardInfo, SloVerdict, ToolInfo};

    const LOGIN: Op = Op::Imap(State::Login);
    const T0: u64 = 1_777_636_800;

    /// One second ending at `T0 + at` of a shard that started at `T0 + started`, with
    /// LOGINs taking `latencies` µs and `open` connections at its end.
    fn second(started: u64, at: u64, latencies: &[u64], open: u64) -> Second {
        let mut interval = Interval::new();
        for &us in latencies {
            let begun = Instant::now();
            interval.record(&Event::Command {
                op: LOGIN,
                outcome: Outcome::Ok,
                intended: begun,
                started: begun,
                finished: begun + Duration::from_micros(us),
            });
        }
        interval.open = open;
        interval.open_peak = open;
        interval.at = UNIX_EPOCH + Duration::from_secs(T0 + at);
        interval.elapsed_secs = at - started;
        Second::of(&interval)
    }

    fn shard(index: u32, count: u32, seconds: Vec<Second>, slo: &[&str]) -> (String, RunSummary) {
        let total = timeline::aggregate(&seconds, 0).unwrap();
        let verdicts: Vec<SloVerdict> = slo
            .iter()
            .map(|text| {
                Slo::parse(text)
                    .unwrap()
                    .verdict(&total, seconds.len() as f64)
            })
            .collect();
        let breached = verdicts.iter().any(|v| !v.pass);
        let at = |secs: u64| Timestamp::of(UNIX_EPOCH + Duration::from_secs(secs));
        let summary = RunSummary {
            format: crate::summary::FORMAT.into(),
            tool: ToolInfo::this(),
            run_id: format!("run-{index}"),
            shard: Some(ShardInfo { index, count }),
            merged: None,
            mode: crate::summary::RunMode::Stress,
            command_line: vec!["imaptest".into(), format!("shard={index}/{count}")],
            profile: None,
            seed: Some(7),
            start_at: Some(at(T0)),
            started_late_secs: Some(0.001),
            start: at(seconds[0].unix - seconds[0].elapsed),
            end: at(seconds.last().unwrap().unix),
            duration_secs: seconds.len() as f64,
            complete: true,
            ended_by: EndReason::Time,
            warmup_secs: 0,
            exit_status: if breached {
                exit::SLO_BREACHED
            } else {
                exit::OK
            },
            totals: Totals::from_interval(&total),
            sessions: Vec::new(),
            error_examples: Vec::new(),
            server: ServerIdentity::default(),
            server_sampling: None,
            tool_usage: ToolUsage::default(),
            slo: verdicts,
            scripted: None,
            timeline: Timeline { seconds },
        };
        (format!("shard-{index}.json"), summary)
    }

    #[test]
    fn counts_sum_and_histograms_merge_exactly() {
        let samples: [&[u64]; 3] = [&[100, 250, 90_000], &[7, 7, 7, 12_345], &[3_000_000]];
        let shards: Vec<(String, RunSummary)> = (0..3u32)
            .map(|i| {
                let s = samples[i as usize];
                let seconds = vec![second(0, 1, s, 2), second(0, 2, &s[..1], 1)];
                shard(i, 3, seconds, &[])
            })
            .collect();
        let merged = merge(&shards).unwrap();
        let login = merged.totals.command(LOGIN).unwrap();
        let each: u64 = shards
            .iter()
            .map(|(_, s)| s.totals.command(LOGIN).unwrap().count)
            .sum();
        assert_eq!(login.count, each);
        assert_eq!(login.count, 8 + 3);
        // One histogram of every sample any shard recorded.
        let mut all = new_histogram();
        for s in samples {
            for &us in s.iter().chain(&s[..1]) {
                all.record(us).unwrap();
            }
        }
        let merged_histogram =
            crate::summary::histogram::decode(login.latency.histogram.as_deref().unwrap()).unwrap();
        assert_eq!(merged_histogram, all);
        for (q, p) in [(0.5, login.latency.p50_us), (0.99, login.latency.p99_us)] {
            assert_eq!(p, all.value_at_quantile(q), "q{q}");
        }
        assert_eq!(login.latency.max_us, all.max());
        assert_eq!(merged.timeline.seconds.len(), 2);
        assert_eq!(merged.timeline.seconds[0].open, 6, "gauges add up");
        assert_eq!(merged.totals.connections.peak_open, 6);
        assert!(merged.complete);
        assert_eq!(merged.exit_status, exit::OK);
        let info = merged.merged.as_ref().unwrap();
        assert_eq!((info.shard_count, info.shards.len()), (3, 3));
        assert_eq!(merged.command_line, ["imaptest"]);
        assert_eq!(merged.shard, None);
        // Merging is deterministic.
        assert_eq!(merge(&shards).unwrap(), merged);
    }

    #[test]
    fn timelines_align_by_unix_second_and_late_shards_keep_their_place() {
        // Shard 1 started two seconds late. Each shard's last second is partial: it
        // ends in the same wall-clock second as the one before it.
        let partial = |started, at, latencies: &[u64], open, elapsed| {
            let mut s = second(started, at, latencies, open);
            s.elapsed = elapsed;
            s
        };
        let on_time = vec![
            second(0, 1, &[10], 1),
            second(0, 2, &[10], 1),
            second(0, 3, &[10], 2),
            partial(0, 3, &[10], 1, 4),
        ];
        let late = vec![
            second(2, 3, &[20], 4),
            second(2, 4, &[20], 5),
            partial(2, 4, &[20, 20], 3, 3),
        ];
        let merged = merge(&[
            shard(0, 2, on_time.clone(), &[]),
            shard(1, 2, late.clone(), &[]),
        ])
        .unwrap();
        // Either order of the inputs gives the same merge.
        assert_eq!(
            merged,
            merge(&[shard(1, 2, late, &[]), shard(0, 2, on_time, &[])]).unwrap()
        );
        let view: Vec<(u64, u64, u64, u64)> = merged
            .timeline
            .seconds
            .iter()
            .map(|s| (s.unix - T0, s.elapsed, s.ops["imap.LOGIN"].count, s.open))
            .collect();
        // A shard's records of one wall-clock second are added, its gauge the later.
        assert_eq!(
            view,
            [(1, 1, 1, 1), (2, 2, 1, 1), (3, 3, 3, 5), (4, 4, 3, 3)]
        );
        assert_eq!(merged.start.unix, T0 as f64);
    }

    #[test]
    fn slos_are_evaluated_again_on_the_merged_data() {
        let slo = ["imap.LOGIN.count >= 5"];
        let shards: Vec<_> = (0..2)
            .map(|i| shard(i, 2, vec![second(0, 1, &[1, 2, 3], 1)], &slo))
            .collect();
        assert!(
            shards.iter().all(|(_, s)| !s.slo[0].pass),
            "each shard alone fails"
        );
        let merged = merge(&shards).unwrap();
        assert_eq!(merged.slo.len(), 1);
        assert!(merged.slo[0].pass, "{:?}", merged.slo[0]);
        assert_eq!(merged.slo[0].observed, Some(6.0));
        assert_eq!(merged.exit_status, exit::OK);
    }

    #[test]
    fn missing_and_incomplete_shards_are_named() {
        let mut third = shard(2, 3, vec![second(0, 1, &[5], 1)], &[]);
        third.1.complete = false;
        third.1.ended_by = EndReason::Sigterm;
        third.1.exit_status = exit::INTERRUPTED;
        let merged = merge(&[shard(0, 3, vec![second(0, 1, &[5], 1)], &[]), third]).unwrap();
        let info = merged.merged.as_ref().unwrap();
        assert_eq!(info.missing, [1]);
        assert_eq!(info.incomplete, [2]);
        assert!(!merged.complete);
        assert_eq!(merged.ended_by, EndReason::Sigterm);
        assert_eq!(merged.exit_status, exit::SHARDS_MISSING);
    }

    #[test]
    fn summaries_of_different_runs_are_refused() {
        let base = || shard(0, 2, vec![second(0, 1, &[5], 1)], &[]);
        let other = |change: fn(&mut RunSummary)| {
            let mut s = shard(1, 2, vec![second(0, 1, &[5], 1)], &[]);
            change(&mut s.1);
            s
        };
        let refused = |inputs: &[(String, RunSummary)]| merge(inputs).unwrap_err().to_string();
        assert_eq!(
            refused(&[base(), other(|s| s.seed = Some(8))]),
            "shard-1.json is not of the same run as shard-0.json: seed Some(8) differs from Some(7)"
        );
        let e = refused(&[
            base(),
            other(|s| s.shard = Some(ShardInfo { index: 1, count: 3 })),
        ]);
        assert!(
            e.contains("shard count Some(3) differs from Some(2)"),
            "{e}"
        );
        let e = refused(&[
            base(),
            other(|s| s.start_at = Some(Timestamp::of(UNIX_EPOCH + Duration::from_secs(T0 + 60)))),
        ]);
        assert!(e.contains("start_at"), "{e}");
        let e = refused(&[
            base(),
            other(|s| {
                s.profile = Some(crate::summary::ProfileRef {
                    path: "p.toml".into(),
                    sha256: "ab".into(),
                })
            }),
        ]);
        assert!(e.contains("profile (SHA-256)"), "{e}");
        let e = refused(&[base(), other(|s| s.mode = crate::summary::RunMode::Profile)]);
        assert!(e.contains("mode Profile differs from Stress"), "{e}");
        assert_eq!(
            refused(&[base(), base()]),
            "shard-0.json and shard-0.json are both shard 0/2"
        );
        assert_eq!(
            refused(&[other(|s| s.shard = None)]),
            "shard-1.json: not a shard's summary (no shard=I/N): only shards of one run merge"
        );
        assert_eq!(
            refused(&[]),
            "nothing to merge: give the shards' summary files"
        );
    }
}
