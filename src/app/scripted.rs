//! Scripted tests at the edge: a line per test, the failures, the C tool's summary
//! lines, JUnit XML, and the common ending (summary, SLOs, exit status).

use std::time::Duration;

use anyhow::Context;
use tokio::sync::watch;

use super::pipeline::{Pipeline, RunFacts, conclude, scripted_totals, supervise};
use crate::config::{Common, ScriptedSettings};
use crate::control::RunState;
use crate::scripted::{Summary, TestResult, report};
use crate::summary::RunMode;

/// Runs every test of `test=`; returns the exit status.
pub async fn run(common: Common, scripted: ScriptedSettings) -> anyhow::Result<u8> {
    let pipeline = Pipeline::start(&common, Vec::new())?;
    let (state_tx, state_rx) = watch::channel(RunState::Running);
    let engine = {
        let common = common.clone();
        let scripted = scripted.clone();
        let metrics = pipeline.metrics.clone();
        tokio::spawn(async move {
            crate::scripted::run_tests(&common, &scripted, Some(&metrics), state_rx, print_result)
                .await
        })
    };
    let never = std::sync::atomic::AtomicBool::new(false);
    // After the first signal the current test finishes; a test gets this long.
    let grace = common.timeout.max(Duration::from_secs(10));
    let (ending, results) = supervise(
        &common,
        None,
        grace,
        &pipeline.metrics,
        &state_tx,
        engine,
        &never,
    )
    .await;
    let results: Vec<TestResult> = match results {
        Some(results) => results?,
        None => Vec::new(),
    };
    let summary = Summary::from_results(&results);
    println!("{}", summary.lines());
    if let Some(path) = &scripted.junit {
        let suite = scripted
            .path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| scripted.path.display().to_string());
        std::fs::write(path, report::junit_xml(&suite, &results))
            .with_context(|| format!("cannot write {}", path.display()))?;
    }
    let started = pipeline.started;
    let (finished, recorded) = pipeline.finish().await?;
    let facts = RunFacts {
        seed: common.seed,
        scripted: Some(scripted_totals(&results)),
        ..RunFacts::default()
    };
    Ok(conclude(
        &common,
        RunMode::Scripted,
        facts,
        started,
        ending,
        finished,
        recorded,
    )
    .status)
}

/// A test's failures (stderr) and its line (stdout), as the C tool prints them.
fn print_result(result: &TestResult) {
    if let crate::scripted::report::Outcome::Malformed(e) = &result.outcome {
        eprintln!("Error: {e}");
    }
    for f in &result.failures {
        eprintln!("{f}\n");
    }
    println!("{}", result.line());
}
