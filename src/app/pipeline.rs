//! The run pipeline every mode goes through: settings → engine (emits events) →
//! aggregator → sinks, then one ending: the SLO verdicts, the run summary and the exit
//! status, all computed from the same recorded seconds.

use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use anyhow::Context;
use tokio::sync::watch;

use crate::config::Common;
use crate::control::RunState;
use crate::exit;
use crate::metrics::{self, Finished, Interval, Metrics, Report, Severity, Sink};
use crate::ops::{Op, Pop3Command};
use crate::slo::{Slo, verdict_table};
use crate::states::State;
use crate::summary::{
    ClientSessions, EndReason, ProfileRef, Recorded, RunMode, RunSummary, ScriptedTotals,
    ServerIdentity, ServerSampling, SloVerdict, SummaryRecorder, Timeline, Timestamp, ToolInfo,
    ToolUsage, Totals, mask_command_line,
};

/// A running pipeline: the handle engines send to, and the aggregator feeding sinks.
pub struct Pipeline {
    pub metrics: Metrics,
    aggregator: tokio::task::JoinHandle<Finished>,
    recorded: Arc<Mutex<Recorded>>,
    pub started: SystemTime,
}

impl Pipeline {
    /// Starts the aggregator over `sinks` plus the summary recorder, sampling the
    /// server (`server_pid=`, `server_cgroup=`) as each second closes.
    pub fn start(common: &Common, mut sinks: Vec<Box<dyn Sink>>) -> anyhow::Result<Pipeline> {
        let sampler = common
            .server_usage
            .clone()
            .map(crate::usage::ServerSampler::new)
            .transpose()?;
        let (recorder, recorded) = SummaryRecorder::new();
        sinks.push(Box::new(recorder));
        let (metrics, mut aggregator) = metrics::channel(sinks);
        if let Some(sampler) = sampler {
            aggregator = aggregator.with_server_sampler(sampler);
        }
        Ok(Pipeline {
            metrics,
            aggregator: tokio::spawn(aggregator.run()),
            recorded,
            started: SystemTime::now(),
        })
    }

    /// Waits for the aggregator: every other [`Metrics`] handle must be gone.
    pub async fn finish(self) -> anyhow::Result<(Finished, Recorded)> {
        drop(self.metrics);
        let finished = self.aggregator.await.context("metrics aggregator failed")?;
        let recorded =
            std::mem::take(&mut *self.recorded.lock().unwrap_or_else(|p| p.into_inner()));
        Ok((finished, recorded))
    }
}

/// How a run ended, as the supervisor saw it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ending {
    pub reason: EndReason,
    /// The status so far (interrupted, errors), before SLOs and outputs.
    pub status: u8,
}

/// What the mode knows about its run, for the summary.
#[derive(Debug, Default)]
pub struct RunFacts {
    pub profile: Option<ProfileRef>,
    pub seed: Option<u64>,
    /// The warm-up when `warmup=` is not given (a profile's ramp-up).
    pub default_warmup: Duration,
    /// Objectives besides `slo=` (a profile's `[[slo]]`).
    pub extra_slos: Vec<Slo>,
    pub sessions: Vec<ClientSessions>,
    pub server: ServerIdentity,
    pub scripted: Option<ScriptedTotals>,
    /// The run needed logins (it is a failure when none succeeded).
    pub expects_logins: bool,
    /// Print nothing (a capacity step: the search prints its own table).
    pub quiet: bool,
}

/// What [`conclude`] decided: the exit status and the run's summary.
#[derive(Debug)]
pub struct Concluded {
    pub status: u8,
    pub summary: RunSummary,
}

/// Ends a run: SLO verdicts after the console's Totals, the summary (`summary=`) and
/// report (`report=`) files, and the exit status (see [`crate::exit`]).
pub fn conclude(
    common: &Common,
    mode: RunMode,
    facts: RunFacts,
    started: SystemTime,
    ending: Ending,
    finished: Finished,
    recorded: Recorded,
) -> Concluded {
    let warmup = common.warmup.unwrap_or(facts.default_warmup);
    let warmup_secs = warmup.as_secs();
    let mut status = ending.status;

    let mut slos = common.slos.clone();
    slos.extend(facts.extra_slos);
    let verdicts = evaluate(&slos, &recorded, warmup_secs);
    if !verdicts.is_empty() {
        if !facts.quiet {
            print!("{}", verdict_table(&verdicts));
        }
        if verdicts.iter().any(|v| !v.pass) {
            status = exit::worst(status, exit::SLO_BREACHED);
        }
    }
    if ending.reason.is_complete() && nothing_worked(&finished.totals, facts.expects_logins) {
        eprintln!("Error: nothing worked: no connection logged in and no delivery was accepted");
        status = exit::worst(status, exit::NOTHING_WORKED);
    }
    if let Some(scripted) = &facts.scripted
        && scripted.failed > 0
    {
        status = exit::worst(status, exit::ERRORS);
    }
    let mut reason = ending.reason;
    if !finished.output_failures.is_empty() {
        status = exit::worst(status, exit::OUTPUT_FAILED);
        if reason.is_complete() {
            reason = EndReason::OutputFailed;
        }
    }

    let mut summary = RunSummary {
        format: crate::summary::FORMAT.to_owned(),
        tool: ToolInfo::this(),
        run_id: run_id(),
        shard: common.shard.map(crate::shard::Shard::info),
        merged: None,
        mode,
        command_line: mask_command_line(
            std::iter::once("imaptest".to_owned()).chain(common.command_line.iter().cloned()),
        ),
        profile: facts.profile,
        seed: facts.seed.or(common.seed),
        start_at: common.start_at.map(Timestamp::of),
        started_late_secs: common.start_at.map(|at| late_by(at, started)),
        start: Timestamp::of(started),
        end: Timestamp::of(SystemTime::now()),
        duration_secs: started.elapsed().map_or(0.0, |d| d.as_secs_f64()),
        complete: reason.is_complete() && recorded.finished,
        ended_by: reason,
        warmup_secs,
        exit_status: status,
        totals: Totals::from_interval(&finished.totals),
        sessions: facts.sessions,
        error_examples: recorded.examples,
        server: facts.server,
        tool_usage: ToolUsage::now(),
        server_sampling: common.server_usage.as_ref().map(|source| ServerSampling {
            source: source.describe(),
            cores: crate::usage::cores(),
        }),
        slo: verdicts,
        scripted: facts.scripted,
        timeline: Timeline {
            seconds: recorded.seconds,
        },
    };
    let written = write_outputs(common, &summary);
    if written != exit::OK {
        status = exit::worst(status, written);
        summary.exit_status = status;
    }
    Concluded { status, summary }
}

/// Writes `summary=` and `report=`; returns [`exit::OUTPUT_FAILED`] if one failed.
fn write_outputs(common: &Common, summary: &RunSummary) -> u8 {
    let mut status = exit::OK;
    let mut write = |what: &str, path: &Path, bytes: &[u8]| {
        if let Err(e) = write_atomically(path, bytes) {
            eprintln!("Error: {what}: {e:#}");
            status = exit::OUTPUT_FAILED;
        }
    };
    if let Some(path) = &common.outputs.summary {
        write("summary", path, summary.to_json().as_bytes());
    }
    if let Some(path) = &common.outputs.report {
        let html = crate::report::html::render(&crate::report::html::Input::runs(&[summary]));
        write("report", path, html.as_bytes());
    }
    status
}

/// How long after `start_at` the run started (0 if not after it).
fn late_by(start_at: SystemTime, started: SystemTime) -> f64 {
    started
        .duration_since(start_at)
        .map_or(0.0, |d| d.as_secs_f64())
}

/// `start_at=`: waits for the agreed instant before the run's first second. A run
/// launched after it starts at once and says how late it is. Returns false if a
/// signal came first (the run must not start).
pub async fn wait_for_start(common: &Common) -> bool {
    let Some(start_at) = common.start_at else {
        return true;
    };
    let shown = humantime::format_rfc3339_millis(start_at);
    match start_at.duration_since(SystemTime::now()) {
        Ok(wait) => {
            eprintln!(
                "Waiting for start_at={shown} ({})",
                crate::duration::format_duration(Duration::from_millis(wait.as_millis() as u64))
            );
            let mut signals = Signals::new();
            tokio::select! {
                _ = tokio::time::sleep(wait) => true,
                signal = signals.next() => {
                    eprintln!("Received {} while waiting for start_at: not starting", signal_name(signal));
                    false
                }
            }
        }
        Err(late) => {
            eprintln!(
                "Warning: starting {:.1} s after start_at={shown}: this run's seconds are \
                 shifted against the other shards'",
                late.duration().as_secs_f64()
            );
            true
        }
    }
}

/// The verdict of each objective over the seconds after the warm-up.
fn evaluate(slos: &[Slo], recorded: &Recorded, warmup_secs: u64) -> Vec<SloVerdict> {
    crate::slo::verdicts(slos, &recorded.seconds, warmup_secs).unwrap_or_else(|e| {
        // Seconds this process recorded itself always decode; say so if not.
        eprintln!("Error: cannot evaluate SLOs: {e}");
        slos.iter()
            .map(|slo| slo.verdict(&Interval::new(), 0.0))
            .collect()
    })
}

/// True if the run tried to log in or deliver and never once succeeded.
fn nothing_worked(totals: &Interval, expects_logins: bool) -> bool {
    let logins = [
        Op::Imap(State::Login),
        Op::Imap(State::Authenticate),
        Op::Pop3(Pop3Command::Pass),
        Op::Pop3(Pop3Command::Auth),
    ];
    let logged_in: u64 = logins.iter().map(|&op| totals.op(op).ok).sum();
    let tried: u64 = logins
        .iter()
        .map(|&op| {
            let f = totals.op(op);
            f.ok + f.no + f.bad + f.failed
        })
        .sum::<u64>()
        + totals.connect_failures;
    let no_login = expects_logins && tried > 0 && logged_in == 0;
    let d = &totals.deliveries;
    let no_delivery = d.offered_recipients > 0 && d.delivered == 0 && d.finished() > 0;
    no_login || no_delivery
}

/// A random run id (128 bits, hex).
fn run_id() -> String {
    use rand::RngExt;
    let mut rng = rand::rng();
    format!("{:016x}{:016x}", rng.random::<u64>(), rng.random::<u64>())
}

/// Writes `path` through a temporary file in the same directory, so a reader never
/// sees half a document and a failure leaves no partial file.
pub fn write_atomically(path: &Path, bytes: &[u8]) -> anyhow::Result<()> {
    use std::io::Write;
    let dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let name = path
        .file_name()
        .map_or_else(|| "summary".into(), |n| n.to_string_lossy().into_owned());
    let tmp = dir.join(format!(".{name}.{}.tmp", std::process::id()));
    let result = (|| {
        let mut file = std::fs::File::create(&tmp)?;
        file.write_all(bytes)?;
        file.sync_all()?;
        std::fs::rename(&tmp, path)
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result.with_context(|| format!("cannot write {}", path.display()))
}

/// Watches the clock, signals, `error_quit` and `disconnect_quit` while the engine
/// runs. `run_for` ends the run (None: the engine ends by itself); the first signal
/// asks every session to log out (up to `grace`), the second stops at once.
pub async fn supervise<T>(
    common: &Common,
    run_for: Option<Duration>,
    grace: Duration,
    metrics: &Metrics,
    state_tx: &watch::Sender<RunState>,
    mut engine: tokio::task::JoinHandle<T>,
    quit: &std::sync::atomic::AtomicBool,
) -> (Ending, Option<T>) {
    let mut ending = Ending {
        reason: if run_for.is_some() {
            EndReason::Time
        } else {
            EndReason::Finished
        },
        status: exit::OK,
    };
    let deadline = run_for.map(|d| tokio::time::Instant::now() + d);
    let mut stop_deadline: Option<tokio::time::Instant> = None;
    let mut poll = tokio::time::interval(Duration::from_millis(100));
    let mut signals = Signals::new();
    let info = |message: String| {
        metrics.report(Report {
            severity: Severity::Info,
            user: None,
            connection: None,
            message,
            line: None,
            kind: None,
        })
    };
    loop {
        tokio::select! {
            done = &mut engine => return (ending, done.ok()),
            signal = signals.next() => {
                if *state_tx.borrow() == RunState::Running {
                    ending = Ending { reason: signal, status: exit::worst(ending.status, exit::INTERRUPTED) };
                    info(format!("Received {} - waiting for existing clients to finish", signal_name(signal)));
                    let _ = state_tx.send(RunState::LogoutAndStop);
                    stop_deadline = Some(tokio::time::Instant::now() + grace);
                } else {
                    if ending.reason.is_complete() {
                        ending.reason = signal;
                    }
                    ending.status = exit::worst(ending.status, exit::INTERRUPTED);
                    info(format!("Received second {} - stopping immediately", signal_name(signal)));
                    let _ = state_tx.send(RunState::StopNow);
                }
            }
            _ = poll.tick() => {
                let now = tokio::time::Instant::now();
                let running = *state_tx.borrow() == RunState::Running;
                if running && deadline.is_some_and(|d| now >= d) {
                    let _ = state_tx.send(RunState::LogoutAndStop);
                    stop_deadline = Some(now + grace);
                }
                if common.error_quit && metrics.error_count() > 0 && ending.reason != EndReason::ErrorQuit {
                    info("Exiting due to error_quit parameter".into());
                    ending = Ending { reason: EndReason::ErrorQuit, status: exit::worst(ending.status, exit::ERRORS) };
                    let _ = state_tx.send(RunState::StopNow);
                }
                if quit.load(std::sync::atomic::Ordering::Relaxed) && ending.reason != EndReason::DisconnectQuit {
                    info("Exiting due to disconnect_quit parameter".into());
                    ending = Ending { reason: EndReason::DisconnectQuit, status: exit::worst(ending.status, exit::INTERRUPTED) };
                    let _ = state_tx.send(RunState::StopNow);
                }
                if stop_deadline.is_some_and(|d| now >= d) && *state_tx.borrow() != RunState::StopNow {
                    info("Second timeout triggered while trying to stop - stopping immediately".into());
                    let _ = state_tx.send(RunState::StopNow);
                }
            }
        }
    }
}

fn signal_name(reason: EndReason) -> &'static str {
    match reason {
        EndReason::Sigterm => "SIGTERM",
        EndReason::Sighup => "SIGHUP",
        _ => "SIGINT",
    }
}

/// SIGINT, SIGTERM and SIGHUP as one stream of end reasons.
pub struct Signals {
    #[cfg(unix)]
    term: Option<tokio::signal::unix::Signal>,
    #[cfg(unix)]
    hup: Option<tokio::signal::unix::Signal>,
}

impl Signals {
    pub fn new() -> Signals {
        #[cfg(unix)]
        {
            use tokio::signal::unix::{SignalKind, signal};
            Signals {
                term: signal(SignalKind::terminate()).ok(),
                hup: signal(SignalKind::hangup()).ok(),
            }
        }
        #[cfg(not(unix))]
        Signals {}
    }

    /// The next signal.
    pub async fn next(&mut self) -> EndReason {
        #[cfg(unix)]
        {
            let term = async {
                match &mut self.term {
                    Some(s) => s.recv().await,
                    None => std::future::pending().await,
                }
            };
            let hup = async {
                match &mut self.hup {
                    Some(s) => s.recv().await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                _ = tokio::signal::ctrl_c() => EndReason::Sigint,
                _ = term => EndReason::Sigterm,
                _ = hup => EndReason::Sighup,
            }
        }
        #[cfg(not(unix))]
        {
            let _ = tokio::signal::ctrl_c().await;
            EndReason::Sigint
        }
    }
}

impl Default for Signals {
    fn default() -> Self {
        Self::new()
    }
}

/// The profile file's reference for the summary: its path and SHA-256.
pub fn profile_ref(path: &Path) -> Option<ProfileRef> {
    use sha2::Digest;
    let bytes = std::fs::read(path).ok()?;
    let digest = sha2::Sha256::digest(&bytes);
    Some(ProfileRef {
        path: path.display().to_string(),
        sha256: digest.iter().map(|b| format!("{b:02x}")).collect(),
    })
}

/// The scripted verdicts for the summary.
pub fn scripted_totals(results: &[crate::scripted::TestResult]) -> ScriptedTotals {
    let summary = crate::scripted::Summary::from_results(results);
    ScriptedTotals {
        tests: summary.tests as u64,
        failed: summary.failed as u64,
        skipped: summary.skipped as u64,
        base_commands: summary.base_commands as u64,
        base_failures: summary.base_failures as u64,
        extension_commands: summary.ext_commands as u64,
        extension_failures: summary.ext_failures as u64,
        failed_tests: results
            .iter()
            .filter(|r| r.is_failure())
            .map(|r| r.name.clone())
            .collect(),
    }
}
