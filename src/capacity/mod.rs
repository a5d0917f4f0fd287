//! `imaptest capacity`: the most users a server holds while meeting every SLO.
//!
//! The edge ([`crate::app`]) runs the profile in-process at the user counts the
//! [`search::Search`] asks for, each step a warm-up (users log in spread over it; not
//! measured) and a measured window; this module judges each step from its
//! [`RunSummary`] ([`measure`]), decides whether imaptest itself was the bottleneck
//! ([`ToolHealth`]), and words the answer ([`answer`]). The result is a
//! [`CapacityReport`] (`schemas/capacity.schema.json`).

pub mod document;
pub mod search;

use std::path::PathBuf;
use std::time::Duration;

use crate::config::{Common, ProfileSettings};
use crate::metrics::Interval;
use crate::ops::{ActionKind, Op};
use crate::slo::Slo;
use crate::summary::timeline::{self, TimelineError};
use crate::summary::{RunSummary, ServerTotals, SloVerdict, Totals};
use crate::usage::SchedTotals;

pub use document::{Answer, CapacityReport, Outcome, Phase, SearchSettings, Step, ToolHealth};

/// Default measured window of a step.
pub const DEFAULT_WINDOW: Duration = Duration::from_secs(60);
/// Default warm-up of a step.
pub const DEFAULT_WARMUP: Duration = Duration::from_secs(30);
/// Default ramp growth per step.
pub const DEFAULT_GROWTH: f64 = 2.0;
/// Default bisection resolution (a fraction of the passing user count).
pub const DEFAULT_RESOLUTION: f64 = 0.05;
/// Default bound on the tool's schedule lateness p99. A dispatcher on a busy shared host
/// wakes up to ~150 ms late now and then; a tool that cannot keep up falls further
/// behind.
pub const DEFAULT_TOOL_LATENESS: Duration = Duration::from_millis(500);
/// Default bound on the tool's run-queue delay (summed over its threads) as a share of
/// wall-clock time. Measured on a 2-core host at load 13: 17 % for a tool at ease;
/// 150 % for one pinned to a core beside a CPU hog.
pub const DEFAULT_TOOL_RUN_QUEUE: f64 = 0.5;

/// `imaptest capacity …`, parsed.
#[derive(Debug, Clone, PartialEq)]
pub struct CapacitySettings {
    /// The server, users, objectives and outputs (`report=` is the capacity report).
    pub common: Common,
    /// The profile, as profile mode takes it (`users=` and `secs=` are the search's).
    pub profile: ProfileSettings,
    /// `from=` (default: a quarter of the profile's users).
    pub from: Option<u64>,
    /// `to=` (default: 16 times the profile's users).
    pub to: Option<u64>,
    /// `growth=`.
    pub growth: f64,
    /// `resolution=`.
    pub resolution: f64,
    /// `step_secs=`: each step's measured window.
    pub window: Duration,
    /// `warmup=`: each step's warm-up.
    pub warmup: Duration,
    /// `out=`: the capacity JSON.
    pub out: Option<PathBuf>,
    /// `tool_lateness=`.
    pub tool_lateness: Duration,
    /// `tool_run_queue=`.
    pub tool_run_queue: f64,
}

impl CapacitySettings {
    pub fn new(common: Common, profile: ProfileSettings) -> CapacitySettings {
        CapacitySettings {
            common,
            profile,
            from: None,
            to: None,
            growth: DEFAULT_GROWTH,
            resolution: DEFAULT_RESOLUTION,
            window: DEFAULT_WINDOW,
            warmup: DEFAULT_WARMUP,
            out: None,
            tool_lateness: DEFAULT_TOOL_LATENESS,
            tool_run_queue: DEFAULT_TOOL_RUN_QUEUE,
        }
    }

    /// The search's bounds for a profile of `profile_users` users.
    pub fn bounds(&self, profile_users: u64) -> search::Bounds {
        let from = self.from.unwrap_or((profile_users / 4).max(1));
        let to = self
            .to
            .unwrap_or_else(|| profile_users.saturating_mul(16))
            .max(from);
        search::Bounds {
            from,
            to,
            growth: self.growth,
            resolution: self.resolution,
        }
    }
}

/// What a step's measured window showed.
#[derive(Debug, Clone, PartialEq)]
pub struct Measured {
    pub verdicts: Vec<SloVerdict>,
    pub sessions_per_sec: f64,
    pub deliveries_per_sec: f64,
    pub commands_per_sec: f64,
    pub tool: ToolHealth,
    pub server: Option<ServerTotals>,
}

impl Measured {
    /// Every objective met and the tool kept up.
    pub fn pass(&self) -> bool {
        !self.tool.limited && self.verdicts.iter().all(|v| v.pass)
    }
}

/// The tool's scheduling over the measured window.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ToolSample {
    /// [`SchedTotals`] at the window's end minus at its start.
    pub sched: SchedTotals,
    pub wall: Duration,
}

/// When the tool counts as the limit.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ToolBounds {
    /// Schedule lateness p99, µs.
    pub lateness_us: u64,
    /// Run-queue delay of all its threads per second of wall time (0.25: 250 ms/s).
    pub run_queue: f64,
    pub cores: u32,
}

/// The seconds of the measured window: after the warm-up, up to its end (the stop
/// that follows is not measured).
pub fn window(
    summary: &RunSummary,
    warmup_secs: u64,
    window_secs: u64,
) -> Result<Interval, TimelineError> {
    let end = warmup_secs + window_secs;
    timeline::aggregate(
        summary.timeline.seconds.iter().filter(|s| s.elapsed <= end),
        warmup_secs,
    )
}

/// Judges a step from its summary: the objectives over the measured window, its
/// throughput, and whether the tool kept up.
pub fn measure(
    summary: &RunSummary,
    slos: &[Slo],
    window_secs: u64,
    tool: Option<ToolSample>,
    bounds: ToolBounds,
) -> Result<Measured, TimelineError> {
    let interval = window(summary, summary.warmup_secs, window_secs)?;
    let measured_secs = summary
        .timeline
        .seconds
        .iter()
        .filter(|s| {
            s.elapsed > summary.warmup_secs && s.elapsed <= summary.warmup_secs + window_secs
        })
        .count()
        .max(1) as f64;
    let verdicts = slos
        .iter()
        .map(|slo| slo.verdict(&interval, measured_secs))
        .collect();
    let sessions = interval.op(Op::Action(ActionKind::Login));
    let sessions = sessions.ok + sessions.no + sessions.bad + sessions.failed;
    let commands: u64 = interval
        .active_ops()
        .filter(|(op, _)| matches!(op, Op::Imap(_) | Op::Pop3(_) | Op::Lmtp(_)))
        .map(|(_, f)| f.ok)
        .sum();
    let lateness = &interval.deliveries.lateness;
    let lateness_p99_us = (lateness.count > 0).then(|| lateness.at(0.99));
    Ok(Measured {
        verdicts,
        sessions_per_sec: sessions as f64 / measured_secs,
        deliveries_per_sec: interval.deliveries.delivered as f64 / measured_secs,
        commands_per_sec: commands as f64 / measured_secs,
        tool: tool_health(lateness_p99_us, tool, bounds),
        server: Totals::from_interval(&interval).server,
    })
}

/// Was the tool the limit? Either its scheduler handed actions over late (p99 past the
/// bound: it could not keep its own schedule), or its threads spent more time waiting
/// for a CPU than the bound allows (`/proc/self/task/*/schedstat`: replies sat unread
/// while the tool was starved, even if its dispatcher still woke in time). CPU share
/// alone misses a starved tool: a tool that gets 2 % of a core uses only 2 %.
pub fn tool_health(
    lateness_p99_us: Option<u64>,
    sample: Option<ToolSample>,
    bounds: ToolBounds,
) -> ToolHealth {
    let (share, per_sec, cpu) = match sample {
        Some(ToolSample { sched, wall }) if !wall.is_zero() => {
            let runnable = sched.run_queue_ns + sched.cpu_ns;
            let share = if runnable == 0 {
                0.0
            } else {
                sched.run_queue_ns as f64 / runnable as f64
            };
            let secs = wall.as_secs_f64();
            (
                share,
                sched.run_queue_ns as f64 / 1e6 / secs,
                sched.cpu_ns as f64 / 1e7 / secs,
            )
        }
        _ => (0.0, 0.0, 0.0),
    };
    let late = lateness_p99_us.is_some_and(|l| l > bounds.lateness_us);
    let starved = per_sec > bounds.run_queue * 1000.0;
    ToolHealth {
        lateness_p99_us,
        run_queue_share: share,
        run_queue_ms_per_sec: per_sec,
        cpu_percent: cpu,
        cores: bounds.cores,
        limited: late || starved,
    }
}

/// 4200 → `4,200`.
pub fn thousands(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// `1 core`, `2 cores`.
pub fn cores(n: u32) -> String {
    if n == 1 {
        "1 core".to_owned()
    } else {
        format!("{n} cores")
    }
}

/// `imap.LOGIN.p99 = 812ms`.
pub fn observed(verdict: &SloVerdict) -> String {
    format!(
        "{} = {}",
        verdict.metric,
        crate::report::html::observed_value(verdict)
    )
}

/// ` (server CPU 184% of one core, 92% of 2 cores)` when the server was sampled.
fn server_clause(step: Option<&Step>) -> String {
    match step.and_then(|s| s.server.as_ref().map(|u| (u, s.tool.cores))) {
        Some((usage, cores)) => format!(
            " (server CPU {:.0}% of one core, {:.0}% of {}; RSS peak {})",
            usage.cpu_mean_percent,
            usage.cpu_mean_percent / f64::from(cores.max(1)),
            self::cores(cores),
            crate::report::html::chart::format_kib(usage.rss_peak_kib as f64)
        ),
        None => String::new(),
    }
}

/// How the search ended, for [`answer`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ending {
    /// The search ran to its end.
    Searched,
    /// A step showed that the tool was the limit.
    ToolLimited,
    Interrupted,
    /// A step ended with this exit status (nothing worked, an output failed).
    StepFailed(u8),
}

/// The answer: outcome, sentence and exit status.
pub fn answer(
    steps: &[Step],
    slos: &[Slo],
    passed: Option<u64>,
    failed: Option<u64>,
    bounds: search::Bounds,
    ending: Ending,
) -> Answer {
    use crate::exit;
    let objectives = slos
        .iter()
        .map(|s| s.text.as_str())
        .collect::<Vec<_>>()
        .join(" and ");
    let held_step = passed.and_then(|u| steps.iter().rev().find(|s| s.users == u && s.pass));
    let failed_step = failed.and_then(|u| steps.iter().rev().find(|s| s.users == u && !s.pass));
    let broken: Vec<SloVerdict> = failed_step
        .map(|s| s.verdicts.iter().filter(|v| !v.pass).cloned().collect())
        .unwrap_or_default();
    let broken_text = broken
        .iter()
        .map(observed)
        .collect::<Vec<_>>()
        .join(" and ");
    let holds = |users: u64| {
        format!(
            "holds {} users at {objectives}{}",
            thousands(users),
            server_clause(held_step)
        )
    };
    let last = steps.last();
    let (outcome, sentence, status) = match ending {
        Ending::ToolLimited => {
            let step = last.expect("a tool-limited search ran a step");
            let t = &step.tool;
            let so_far = match passed {
                Some(users) => format!("; before that it {}", holds(users)),
                None => "; no step passed before".to_owned(),
            };
            (
                Outcome::ToolLimited,
                format!(
                    "the tool, not the server, is the limit: at {} users imaptest handed actions over {} late (p99) \
                     and its threads waited {:.0} ms per second for a CPU ({:.0}% of their runnable time; \
                     {:.0}% CPU of {}){so_far}. Give imaptest more CPU or split the load over \
                     several imaptest processes, and search again",
                    thousands(step.users),
                    crate::report::html::chart::format_latency(
                        t.lateness_p99_us.unwrap_or(0) as f64
                    ),
                    t.run_queue_ms_per_sec,
                    t.run_queue_share * 100.0,
                    t.cpu_percent,
                    cores(t.cores),
                ),
                exit::TOOL_LIMITED,
            )
        }
        Ending::Interrupted => (
            Outcome::Interrupted,
            match passed {
                Some(users) => format!("interrupted; so far the server {}", holds(users)),
                None => "interrupted before any step passed".to_owned(),
            },
            exit::INTERRUPTED,
        ),
        Ending::StepFailed(status) => (
            Outcome::StepFailed,
            format!(
                "the step at {} users could not be measured ({}); no answer",
                thousands(last.map_or(0, |s| s.users)),
                exit::meaning(status)
            ),
            status,
        ),
        Ending::Searched => match (passed, failed) {
            (Some(lo), Some(hi)) => (
                Outcome::Found,
                format!("{}; fails at {} on {broken_text}", holds(lo), thousands(hi)),
                exit::OK,
            ),
            (Some(lo), None) => (
                Outcome::AllPassed,
                format!(
                    "{} — every step passed up to to={}: raise to= to look further",
                    holds(lo),
                    thousands(bounds.to)
                ),
                exit::OK,
            ),
            (None, _) => (
                Outcome::NonePassed,
                format!(
                    "fails already at {} users (from=) on {broken_text}: lower from= to find the capacity",
                    thousands(bounds.from.min(bounds.to))
                ),
                exit::SLO_BREACHED,
            ),
        },
    };
    Answer {
        outcome,
        holds_users: passed,
        fails_users: failed,
        broken,
        sentence,
        exit_status: status,
    }
}

/// The per-step table: a header, then [`table_row`] per step.
pub fn table_header(slos: &[Slo]) -> String {
    let mut line = format!(
        "{:>4} {:>8} {:>6} {:>10} {:>12}",
        "step", "users", "phase", "sessions/s", "deliveries/s"
    );
    for slo in slos {
        line.push_str(&format!(" {:>16}", clip(&slo.metric_name, 16)));
    }
    line.push_str(&format!(
        " {:>9} {:>9} {:>9} {:>7}  result",
        "server", "late p99", "run-queue", "errors"
    ));
    line
}

/// One step's row.
pub fn table_row(step: &Step) -> String {
    let mut line = format!(
        "{:>4} {:>8} {:>6} {:>10.1} {:>12.1}",
        step.number,
        thousands(step.users),
        step.phase.name(),
        step.sessions_per_sec,
        step.deliveries_per_sec
    );
    for v in &step.verdicts {
        let value = match v.observed {
            Some(_) => crate::report::html::observed_value(v),
            None => "-".to_owned(),
        };
        let mark = if v.pass { "" } else { " ✗" };
        line.push_str(&format!(" {:>16}", format!("{value}{mark}")));
    }
    let server = step
        .server
        .as_ref()
        .map_or("-".to_owned(), |s| format!("{:.0}%", s.cpu_mean_percent));
    let result = if step.tool.limited {
        "tool-limited".to_owned()
    } else if step.pass {
        "pass".to_owned()
    } else if step.attempt == 1 {
        "fail (re-run)".to_owned()
    } else {
        "fail".to_owned()
    };
    let late = step.tool.lateness_p99_us.map_or("-".to_owned(), |l| {
        crate::report::html::chart::format_latency(l as f64)
    });
    let queue = format!("{:.0}ms/s", step.tool.run_queue_ms_per_sec);
    line.push_str(&format!(
        " {server:>9} {late:>9} {queue:>9} {:>7}  {result}",
        step.summary.totals.errors.total
    ));
    line
}

fn clip(text: &str, width: usize) -> String {
    if text.chars().count() <= width {
        text.to_owned()
    } else {
        let tail: String = text
            .chars()
            .rev()
            .take(width - 1)
            .collect::<Vec<_>>()
            .into_iter()
            .rev()
            .collect();
        format!("…{tail}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::usage::SchedTotals;

    const BOUNDS: ToolBounds = ToolBounds {
        lateness_us: 100_000,
        run_queue: 0.25,
        cores: 2,
    };

    fn sample(cpu_ms: u64, wait_ms: u64) -> Option<ToolSample> {
        Some(ToolSample {
            sched: SchedTotals {
                cpu_ns: cpu_ms * 1_000_000,
                run_queue_ns: wait_ms * 1_000_000,
                slices: 100,
            },
            wall: Duration::from_secs(10),
        })
    }

    #[test]
    fn a_starved_or_late_tool_is_the_limit_and_a_busy_server_is_not() {
        // Waiting 400 ms/s for a CPU, though on schedule: starved.
        let starved = tool_health(Some(2_000), sample(500, 4_000), BOUNDS);
        assert!(starved.limited);
        assert!((starved.run_queue_share - 0.888).abs() < 0.01);
        assert!((starved.run_queue_ms_per_sec - 400.0).abs() < 1e-9);
        assert!((starved.cpu_percent - 5.0).abs() < 1e-9);
        // Late: could not keep its schedule.
        assert!(tool_health(Some(900_000), sample(500, 10), BOUNDS).limited);
        // A busy server with a tool at ease: on time, little waiting.
        assert!(!tool_health(Some(2_000), sample(500, 200), BOUNDS).limited);
        // Nothing scheduled and no schedstat: nothing says the tool was the limit.
        assert!(!tool_health(None, None, BOUNDS).limited);
    }

    #[test]
    fn thousands_separators() {
        assert_eq!(thousands(0), "0");
        assert_eq!(thousands(999), "999");
        assert_eq!(thousands(4200), "4,200");
        assert_eq!(thousands(1_234_567), "1,234,567");
    }

    #[test]
    fn long_metric_names_are_clipped_from_the_left() {
        assert_eq!(clip("imap.LOGIN.p99", 16), "imap.LOGIN.p99");
        assert_eq!(clip("delivery.latency.p99.9", 10), "…ncy.p99.9");
    }
}
