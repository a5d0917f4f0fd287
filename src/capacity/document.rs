//! The capacity JSON (`imaptest capacity … out=FILE`): the search's settings, every step
//! with its measured window and full run summary, and the answer. The schema is
//! `schemas/capacity.schema.json`, generated from these types.

use std::path::Path;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::summary::{ProfileRef, RunSummary, ServerTotals, SloVerdict, Timestamp, ToolInfo};

/// The `format` of capacity documents this version writes and reads.
pub const FORMAT: &str = "imaptest-capacity/1";

/// Where the committed schema lives, relative to the crate root.
pub const SCHEMA_PATH: &str = "schemas/capacity.schema.json";

/// One capacity search.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CapacityReport {
    /// Always `imaptest-capacity/1`.
    pub format: String,
    pub tool: ToolInfo,
    /// The command line, passwords masked.
    pub command_line: Vec<String>,
    pub profile: Option<ProfileRef>,
    /// Every objective a step must meet (`slo=` and the profile's `[[slo]]`).
    pub slos: Vec<String>,
    pub search: SearchSettings,
    pub start: Timestamp,
    pub end: Timestamp,
    /// Every step run, in order (re-runs included).
    pub steps: Vec<Step>,
    pub answer: Answer,
}

/// How the search was set up.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SearchSettings {
    /// First user count of the ramp.
    pub from: u64,
    /// Largest user count tried.
    pub to: u64,
    /// Each ramp step multiplies the users by this.
    pub growth: f64,
    /// Bisection stops when the last pass and the first fail are this close (a
    /// fraction of the pass).
    pub resolution: f64,
    /// Each step's warm-up (users log in spread over it; not measured), seconds.
    pub warmup_secs: u64,
    /// Each step's measured window, seconds.
    pub window_secs: u64,
    /// The tool is the limit when its schedule lateness p99 passes this (µs) …
    pub tool_lateness_bound_us: u64,
    /// … or its threads together waited for a CPU longer than this share of wall-clock
    /// time (0.25: 250 ms per second).
    pub tool_run_queue_bound: f64,
}

/// Whether a step belongs to the ramp or the bisection.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Phase {
    Ramp,
    Bisect,
}

impl Phase {
    pub fn name(self) -> &'static str {
        match self {
            Phase::Ramp => "ramp",
            Phase::Bisect => "bisect",
        }
    }
}

/// One step: the profile at `users` users.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Step {
    /// 1, 2, … in the order run.
    pub number: u32,
    pub users: u64,
    pub phase: Phase,
    /// 1, or 2 for the re-run of a failed step.
    pub attempt: u32,
    /// Every objective was met in the measured window (and the tool was not the limit).
    pub pass: bool,
    /// The measured window's length, seconds.
    pub window_secs: u64,
    /// Sessions started per second in the window (profile logins).
    pub sessions_per_sec: f64,
    /// Recipients delivered per second in the window.
    pub deliveries_per_sec: f64,
    /// Commands answered per second in the window (all protocols).
    pub commands_per_sec: f64,
    /// The objectives over the measured window.
    pub verdicts: Vec<SloVerdict>,
    pub tool: ToolHealth,
    /// With `server_pid=`/`server_cgroup=`: the server's usage in the window.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub server: Option<ServerTotals>,
    /// The step's exit status as a run of its own.
    pub exit_status: u8,
    /// The step's whole run summary (its `warmup_secs` is the step's warm-up).
    pub summary: RunSummary,
}

/// Was imaptest itself keeping up during the window?
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ToolHealth {
    /// How late the scheduler handed actions over, p99, µs (null: nothing scheduled).
    pub lateness_p99_us: Option<u64>,
    /// Share of its threads' runnable time spent waiting for a CPU (0–1).
    pub run_queue_share: f64,
    /// Its run-queue delay, summed over threads, per second of wall time, ms.
    pub run_queue_ms_per_sec: f64,
    /// Its CPU, % of one core.
    pub cpu_percent: f64,
    /// CPU cores online.
    pub cores: u32,
    /// The tool, not the server, was the limit in this step.
    pub limited: bool,
}

/// What the search found.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// A largest passing and a smallest failing user count, `resolution` apart.
    Found,
    /// Every step passed up to `to`: the capacity is at least that.
    AllPassed,
    /// Even `from` users failed.
    NonePassed,
    /// imaptest could not keep up before the server failed: the answer is a lower bound.
    ToolLimited,
    /// A signal stopped the search.
    Interrupted,
    /// A step could not run as a measurement (nothing worked, an output failed).
    StepFailed,
}

/// The answer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Answer {
    pub outcome: Outcome,
    /// The most users that met every objective.
    pub holds_users: Option<u64>,
    /// The fewest users that failed (twice).
    pub fails_users: Option<u64>,
    /// The objectives that broke at `fails_users`.
    pub broken: Vec<SloVerdict>,
    /// The answer in one sentence, as printed.
    pub sentence: String,
    /// The exit status of the search.
    pub exit_status: u8,
}

/// Why a capacity file could not be read.
#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    #[error("cannot read {path}: {source}")]
    Io {
        path: String,
        source: std::io::Error,
    },
    #[error("{path}:{line}:{column}: not a capacity document: {message}")]
    Json {
        path: String,
        line: usize,
        column: usize,
        message: String,
    },
}

impl CapacityReport {
    /// The document as pretty JSON with a final newline.
    pub fn to_json(&self) -> String {
        let mut text = serde_json::to_string_pretty(self).expect("a capacity report serialises");
        text.push('\n');
        text
    }

    /// Parses a capacity document; `name` is used in errors.
    pub fn parse(name: &str, text: &str) -> Result<CapacityReport, ReadError> {
        serde_json::from_str(text).map_err(|e| ReadError::Json {
            path: name.to_owned(),
            line: e.line(),
            column: e.column(),
            message: e.to_string(),
        })
    }

    /// Reads a capacity file.
    pub fn read(path: &Path) -> Result<CapacityReport, ReadError> {
        let name = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|source| ReadError::Io {
            path: name.clone(),
            source,
        })?;
        Self::parse(&name, &text)
    }

    /// The step that decided the answer's "holds" (the last attempt at those users).
    pub fn held_step(&self) -> Option<&Step> {
        let users = self.answer.holds_users?;
        self.steps.iter().rev().find(|s| s.users == users && s.pass)
    }

    /// The step that decided the answer's "fails".
    pub fn failed_step(&self) -> Option<&Step> {
        let users = self.answer.fails_users?;
        self.steps
            .iter()
            .rev()
            .find(|s| s.users == users && !s.pass)
    }
}

/// The JSON Schema of [`CapacityReport`], pretty, with a final newline.
pub fn schema_json() -> String {
    let generator = schemars::generate::SchemaSettings::draft07().into_generator();
    let schema = generator.into_root_schema_for::<CapacityReport>();
    let mut text = serde_json::to_string_pretty(&schema).expect("a schema serialises");
    text.push('\n');
    text
}

/// The `format` field of a JSON document, if it has one.
pub fn format_of(text: &str) -> Option<String> {
    let value: serde_json::Value = serde_json::from_str(text).ok()?;
    Some(value.get("format")?.as_str()?.to_owned())
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
                "capacity types; regenerate it with\n    IMAPTEST_UPDATE_SCHEMA=1 cargo test --lib capacity::document\n(or `imaptest schema capacity > {SCHEMA_PATH}`)"
            ),
        );
    }
}
