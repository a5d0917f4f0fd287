//! `imaptest capacity` at the edge. Each step runs in this process through the same
//! profile pipeline as `imaptest profile=…` ([`super::profile::execute`]), quietly, and
//! hands back its [`crate::summary::RunSummary`]; the search
//! ([`crate::capacity::search`]) picks the next user count. A row per step on stdout,
//! the answer at the end, the capacity JSON (`out=`) and the HTML report (`report=`).
//!
//! In-process rather than a child process per step: the summary comes back as a value
//! (no temporary files to parse), the tool's own run-queue delay is measured on the
//! threads that did the work, and a signal stops the step and the search together.

use std::path::Path;
use std::time::{Duration, Instant, SystemTime};

use super::pipeline::{Concluded, Signals, write_atomically};
use super::profile::{Presentation, execute, load};
use crate::capacity::search::{Next, Search};
use crate::capacity::{
    CapacityReport, CapacitySettings, Ending, SearchSettings, Step, ToolBounds, ToolSample, answer,
    measure, table_header, table_row, thousands,
};
use crate::config::{Outputs, RunTime};
use crate::duration::Dur;
use crate::exit;
use crate::metrics::{Interval, Report, Severity, Sink};
use crate::summary::{Timestamp, ToolInfo, mask_command_line};
use crate::usage::SchedTotals;

/// Time between steps, so the server closes the last step's sessions first.
const STEP_PAUSE: Duration = Duration::from_secs(2);
/// Longest a step's sessions get to log out after its window.
const STEP_STOP_GRACE: Duration = Duration::from_secs(10);
/// Errors of a step printed on stderr (the rest are counted in the table).
const ERRORS_SHOWN: usize = 3;

/// Runs the search; returns the exit status.
pub async fn run(settings: CapacitySettings) -> anyhow::Result<u8> {
    let base = load(&settings.profile.path)?;
    let profile_users = base.total_users();
    if profile_users == 0 {
        anyhow::bail!(
            "{}: the profile has no users to scale (give total_users or population counts)",
            settings.profile.path.display()
        );
    }
    let mut slos = settings.common.slos.clone();
    slos.extend(base.objectives());
    if slos.is_empty() {
        anyhow::bail!(
            "capacity needs at least one objective to hold: slo=\"imap.LOGIN.p99 < 500ms\" or [[slo]] in the profile"
        );
    }
    for path in [&settings.out, &settings.common.outputs.report]
        .into_iter()
        .flatten()
    {
        super::check_document_out(path, settings.common.overwrite, &[&settings.profile.path])?;
    }
    let bounds = settings.bounds(profile_users);
    let tool_bounds = ToolBounds {
        lateness_us: settings.tool_lateness.as_micros() as u64,
        run_queue: settings.tool_run_queue,
        cores: crate::usage::cores(),
    };
    let window_secs = settings.window.as_secs();
    let started = SystemTime::now();
    println!(
        "Capacity search: {} users ×{} up to {}, then bisection to {}%; each step {} warm-up + {} measured; objectives: {}",
        thousands(bounds.from),
        bounds.growth,
        thousands(bounds.to),
        bounds.resolution * 100.0,
        crate::duration::format_duration(settings.warmup),
        crate::duration::format_duration(settings.window),
        slos.iter()
            .map(|s| s.text.as_str())
            .collect::<Vec<_>>()
            .join("; ")
    );
    println!("{}", table_header(&slos));

    let mut search = Search::new(bounds);
    let mut next = search.first();
    let mut steps: Vec<Step> = Vec::new();
    let mut ending = Ending::Searched;
    let mut signals = Signals::new();
    while let Next::Run {
        users,
        phase,
        attempt,
    } = next
    {
        if !steps.is_empty() {
            tokio::select! {
                _ = tokio::time::sleep(STEP_PAUSE) => {}
                _ = signals.next() => {
                    ending = Ending::Interrupted;
                    break;
                }
            }
        }
        let number = steps.len() as u32 + 1;
        eprintln!(
            "step {number}: {} users ({}{})",
            thousands(users),
            phase.name(),
            if attempt > 1 { ", re-run" } else { "" }
        );
        let (concluded, tool) = run_step(&settings, &base, users).await?;
        let measured = measure(&concluded.summary, &slos, window_secs, tool, tool_bounds)
            .map_err(|e| anyhow::anyhow!("step {number}: {e}"))?;
        let step = Step {
            number,
            users,
            phase,
            attempt,
            pass: measured.pass(),
            window_secs,
            sessions_per_sec: measured.sessions_per_sec,
            deliveries_per_sec: measured.deliveries_per_sec,
            commands_per_sec: measured.commands_per_sec,
            verdicts: measured.verdicts,
            tool: measured.tool,
            server: measured.server,
            exit_status: concluded.status,
            summary: concluded.summary,
        };
        println!("{}", table_row(&step));
        let (status, pass, limited) = (step.exit_status, step.pass, step.tool.limited);
        steps.push(step);
        if status == exit::INTERRUPTED {
            ending = Ending::Interrupted;
            break;
        }
        if status != exit::OK && status != exit::SLO_BREACHED {
            ending = Ending::StepFailed(status);
            break;
        }
        if limited {
            ending = Ending::ToolLimited;
            break;
        }
        next = search.record(users, attempt, pass);
    }

    let answer = answer(
        &steps,
        &slos,
        search.passed(),
        search.failed(),
        bounds,
        ending,
    );
    println!("\n{}", answer.sentence);
    let mut status = answer.exit_status;
    let report = CapacityReport {
        format: crate::capacity::document::FORMAT.to_owned(),
        tool: ToolInfo::this(),
        command_line: mask_command_line(
            ["imaptest".to_owned(), "capacity".to_owned()]
                .into_iter()
                .chain(settings.common.command_line.iter().cloned()),
        ),
        profile: super::pipeline::profile_ref(&settings.profile.path),
        slos: slos.iter().map(|s| s.text.clone()).collect(),
        search: SearchSettings {
            from: bounds.from,
            to: bounds.to,
            growth: bounds.growth,
            resolution: bounds.resolution,
            warmup_secs: settings.warmup.as_secs(),
            window_secs,
            tool_lateness_bound_us: tool_bounds.lateness_us,
            tool_run_queue_bound: tool_bounds.run_queue,
        },
        start: Timestamp::of(started),
        end: Timestamp::of(SystemTime::now()),
        steps,
        answer,
    };
    let mut write = |what: &str, path: &Path, text: String| {
        if let Err(e) = write_atomically(path, text.as_bytes()) {
            eprintln!("Error: {what}: {e:#}");
            status = exit::worst(status, exit::OUTPUT_FAILED);
        }
    };
    if let Some(path) = &settings.out {
        write("capacity", path, report.to_json());
    }
    if let Some(path) = &settings.common.outputs.report {
        let html = crate::report::html::render(&crate::report::html::Input::capacity(&report));
        write("report", path, html);
    }
    Ok(status)
}

/// Runs the profile at `users` users: ramp-up over the warm-up, then the measured
/// window; no per-step files. Returns the step's ending and the tool's scheduling over
/// the window.
async fn run_step(
    settings: &CapacitySettings,
    base: &crate::profile::Profile,
    users: u64,
) -> anyhow::Result<(Concluded, Option<ToolSample>)> {
    let (warmup, window) = (settings.warmup, settings.window);
    let mut profile = base.clone();
    profile.scale_users(users);
    profile.run.rampup = Dur(warmup);
    profile.run.duration = Some(Dur(warmup + window));
    let mut common = settings.common.clone();
    common.outputs = Outputs::default();
    common.warmup = Some(warmup);
    common.command_line.insert(0, "capacity".to_owned());
    let mut profile_settings = settings.profile.clone();
    profile_settings.users = None;
    profile_settings.session_csv = None;
    profile_settings.secs = Some(RunTime {
        run: warmup + window,
        stop_grace: STEP_STOP_GRACE,
    });
    // The tool's own threads over the measured window, read beside the run.
    let sampler = tokio::spawn(async move {
        tokio::time::sleep(warmup).await;
        let (before, from) = (SchedTotals::now()?, Instant::now());
        tokio::time::sleep(window).await;
        let after = SchedTotals::now()?;
        Some(ToolSample {
            sched: after.since(&before),
            wall: from.elapsed(),
        })
    });
    let sink = Box::new(StepErrors::default());
    let concluded = execute(
        &common,
        &profile_settings,
        profile,
        Presentation::Quiet(sink),
    )
    .await;
    let tool = if sampler.is_finished() {
        sampler.await.ok().flatten()
    } else {
        sampler.abort();
        None
    };
    let concluded =
        concluded?.ok_or_else(|| anyhow::anyhow!("interrupted before the step started"))?;
    Ok((concluded, tool))
}

/// A step's console: its first few errors on stderr, nothing per second.
#[derive(Default)]
struct StepErrors {
    shown: usize,
}

impl Sink for StepErrors {
    fn interval(&mut self, _interval: &Interval) {}

    fn report(&mut self, report: &Report) {
        if report.severity == Severity::Error && self.shown < ERRORS_SHOWN {
            self.shown += 1;
            eprintln!("{}", crate::report::console::format_report(report));
        }
    }

    fn finish(&mut self, _totals: &Interval) {}
}
