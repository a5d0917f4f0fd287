//! `imaptest compliance`: a fixed, fast battery of the questions server authors and
//! buyers ask (what happens to a message another session expunged, who gets `\Recent`,
//! are flag changes atomic and announced, EXPUNGE/VANISHED ordering, UIDVALIDITY after
//! RENAME, IDLE delay, UIDPLUS, CONDSTORE/QRESYNC, LITERAL+, pipelining, COMPRESS, and
//! with `test=DIR` the scripted suite), answered as a [`Matrix`]: text or JSON
//! (`schemas/compliance.schema.json`).
//!
//! A matrix compares with another by [`differences`]: the checks, their verdicts and
//! their answers. Measured times are in an answer only as a band (`< 1 s`), the exact
//! figure in [`Check::measured_ms`], so a committed matrix stays comparable.

mod probes;
mod session;

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, bail};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::config::{Mode, Settings};
use crate::imap::{ClientOptions, FramerLimits};
use crate::net::Endpoint;
use crate::users::UserPicker;

pub use probes::PROBES;

/// Where the committed schema lives, relative to the repository root.
pub const SCHEMA_PATH: &str = "schemas/compliance.schema.json";

/// The answers of one server.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Matrix {
    /// The server's greeting text, as it names itself.
    pub server: String,
    /// `host:port` measured.
    pub target: String,
    /// The imaptest version that measured it.
    pub imaptest: String,
    /// One row per question, in the battery's order.
    pub checks: Vec<Check>,
}

/// One question and the server's answer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Check {
    /// Stable identifier (`expunged-fetch`, `idle-delay`, …).
    pub id: String,
    /// The question, in words.
    pub question: String,
    /// The RFC section that rules it.
    pub rfc: String,
    pub verdict: Verdict,
    /// What the server does, compact and stable: timing only as a band.
    pub answer: String,
    /// A measured time behind the answer, when the check measures one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub measured_ms: Option<f64>,
    /// What was seen, for a reader (server lines); not compared.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub detail: String,
}

/// How an answer stands against the RFCs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum Verdict {
    /// One of the behaviours the RFC allows.
    Pass,
    /// A behaviour no RFC allows.
    Deviation,
    /// The extension is not announced: nothing to check.
    Unsupported,
    /// Facts, not a rule (e.g. a measured delay).
    Info,
    /// The check could not run to an answer (connection, setup); `detail` says why.
    Error,
}

impl Verdict {
    pub fn name(self) -> &'static str {
        match self {
            Verdict::Pass => "pass",
            Verdict::Deviation => "deviation",
            Verdict::Unsupported => "unsupported",
            Verdict::Info => "info",
            Verdict::Error => "error",
        }
    }
}

/// The JSON Schema of [`Matrix`], pretty, with a final newline.
pub fn schema_json() -> String {
    let generator = schemars::generate::SchemaSettings::draft07().into_generator();
    let schema = generator.into_root_schema_for::<Matrix>();
    let mut text = serde_json::to_string_pretty(&schema).expect("a schema serialises");
    text.push('\n');
    text
}

/// How `expected` and `got` differ: rows missing or added, verdicts and answers that
/// changed. Empty when they agree (server name, target, times and details aside).
pub fn differences(expected: &Matrix, got: &Matrix) -> Vec<String> {
    let mut out = Vec::new();
    for e in &expected.checks {
        match got.checks.iter().find(|g| g.id == e.id) {
            None => out.push(format!("{}: missing (expected {})", e.id, e.answer)),
            Some(g) if g.verdict != e.verdict || g.answer != e.answer => out.push(format!(
                "{}: expected {} \"{}\", got {} \"{}\"{}",
                e.id,
                e.verdict.name(),
                e.answer,
                g.verdict.name(),
                g.answer,
                if g.detail.is_empty() {
                    String::new()
                } else {
                    format!(" ({})", g.detail)
                }
            )),
            Some(_) => {}
        }
    }
    for g in &got.checks {
        if !expected.checks.iter().any(|e| e.id == g.id) {
            out.push(format!("{}: not expected (got {})", g.id, g.answer));
        }
    }
    out
}

/// The matrix as a text table.
pub fn render_text(matrix: &Matrix) -> String {
    let id_w = matrix
        .checks
        .iter()
        .map(|c| c.id.len())
        .max()
        .unwrap_or(5)
        .max(5);
    let mut out = format!(
        "Compliance of {} ({})\n\n{:<id_w$}  {:<11}  Answer\n",
        matrix.server, matrix.target, "Check", "Verdict"
    );
    for c in &matrix.checks {
        out.push_str(&format!(
            "{:<id_w$}  {:<11}  {}\n",
            c.id,
            c.verdict.name(),
            c.answer
        ));
    }
    let notes: Vec<&Check> = matrix
        .checks
        .iter()
        .filter(|c| !c.detail.is_empty())
        .collect();
    if !notes.is_empty() {
        out.push_str("\nDetails:\n");
        for c in notes {
            out.push_str(&format!("  {}: {}\n", c.id, c.detail));
        }
    }
    out
}

/// Output format of `imaptest compliance`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Format {
    Text,
    Json,
}

const USAGE: &str = "usage: imaptest compliance host=HOST [port=N] [user=USER] [pass=PASS] \
                     [ssl|starttls] [test=DIR [box=NAME]] [format=text|json] [out=FILE] \
                     [expect=FILE.json]";

/// `imaptest compliance …` (the arguments after `compliance`). The connection keys are
/// the run's own (`host=`, `port=`, `user=`, `pass=`, `ssl`, `mech=`, `timeout=`, …).
pub fn compliance_main(args: &[String]) -> anyhow::Result<ExitCode> {
    let mut format = Format::Text;
    let mut out: Option<PathBuf> = None;
    let mut expect: Option<PathBuf> = None;
    let mut run_args = Vec::new();
    for arg in args {
        match arg.split_once('=') {
            Some(("format", "text")) => format = Format::Text,
            Some(("format", "json")) => format = Format::Json,
            Some(("format", other)) => bail!("format={other}: text or json; {USAGE}"),
            Some(("out", path)) if !path.is_empty() => out = Some(PathBuf::from(path)),
            Some(("expect", path)) if !path.is_empty() => expect = Some(PathBuf::from(path)),
            _ => run_args.push(arg.clone()),
        }
    }
    let expected: Option<Matrix> = match &expect {
        Some(path) => {
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("cannot read {}", path.display()))?;
            Some(
                serde_json::from_str(&text)
                    .with_context(|| format!("{}: not a compliance matrix", path.display()))?,
            )
        }
        None => None,
    };
    let settings = match crate::cli::parse(run_args).map_err(|e| anyhow::anyhow!("{e}; {USAGE}"))? {
        crate::cli::Command::Run(settings) => *settings,
        _ => bail!("{USAGE}"),
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    let matrix = runtime.block_on(run(&settings))?;
    let text = match format {
        Format::Text => render_text(&matrix),
        Format::Json => {
            let mut t = serde_json::to_string_pretty(&matrix)?;
            t.push('\n');
            t
        }
    };
    match &out {
        Some(path) => crate::app::pipeline::write_atomically(path, text.as_bytes())?,
        None => print!("{text}"),
    }
    if let Some(expected) = expected {
        let diffs = differences(&expected, &matrix);
        if !diffs.is_empty() {
            for d in &diffs {
                eprintln!("Differs: {d}");
            }
            return Ok(ExitCode::from(crate::exit::MATRIX_DIFFERS));
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// Runs the battery against the server `settings` name.
pub async fn run(settings: &Settings) -> anyhow::Result<Matrix> {
    let common = &settings.common;
    let endpoint = Endpoint::resolve(
        &common.host,
        common.connect_host(),
        common.imap_port(),
        &common.tls,
        common.timeout,
    )
    .await
    .context("cannot prepare the server endpoint")?;
    let options = ClientOptions {
        limits: FramerLimits {
            max_literal: common.max_literal,
            ..FramerLimits::default()
        },
        timeout: common.timeout,
        rawlog_dir: common.rawlog.clone(),
    };
    let user = UserPicker::from_settings(&common.user)?.user_by_index(0);
    let mut target = session::Target::new(
        endpoint,
        options,
        user.name,
        user.password,
        common.user.mech,
    );
    let mut first = target.session().await?;
    let server = first
        .client
        .greeting()
        .trim_start_matches("* OK ")
        .to_owned();
    target.prefix = probes::personal_prefix(&mut first).await;
    first.logout().await;
    let mut checks = Vec::new();
    for probe in PROBES {
        checks.extend(probes::run_probe(*probe, &target).await);
    }
    if let Mode::Scripted(scripted) = &settings.mode {
        checks.push(probes::scripted_suite(common, scripted).await);
    }
    Ok(Matrix {
        server: strip_capability(&server),
        target: format!("{}:{}", common.host, common.imap_port()),
        imaptest: env!("CARGO_PKG_VERSION").to_owned(),
        checks,
    })
}

/// The greeting without its `[CAPABILITY …]` code.
fn strip_capability(greeting: &str) -> String {
    match greeting.strip_prefix('[').and_then(|r| r.split_once("] ")) {
        Some((_, rest)) => rest.to_owned(),
        None => greeting.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn committed_schema_is_current() {
        crate::schema_drift::assert_committed(
            SCHEMA_PATH,
            &schema_json(),
            "compliance types; regenerate it with\n    IMAPTEST_UPDATE_SCHEMA=1 cargo test --lib compliance",
        );
    }

    fn check(id: &str, verdict: Verdict, answer: &str, ms: Option<f64>) -> Check {
        Check {
            id: id.into(),
            question: "?".into(),
            rfc: "RFC 3501".into(),
            verdict,
            answer: answer.into(),
            measured_ms: ms,
            detail: String::new(),
        }
    }

    fn matrix(checks: Vec<Check>) -> Matrix {
        Matrix {
            server: "x".into(),
            target: "127.0.0.1:143".into(),
            imaptest: "0".into(),
            checks,
        }
    }

    #[test]
    fn differences_ignore_times_and_details_but_not_answers() {
        let a = matrix(vec![
            check("idle-delay", Verdict::Info, "< 1 s", Some(3.0)),
            check("recent", Verdict::Pass, "exactly one session", None),
        ]);
        let mut b = a.clone();
        b.checks[0].measured_ms = Some(250.0);
        b.checks[1].detail = "seen by session 2".into();
        b.server = "other".into();
        assert!(differences(&a, &b).is_empty());
        b.checks[1].verdict = Verdict::Deviation;
        b.checks[1].answer = "both sessions".into();
        b.checks.push(check("extra", Verdict::Info, "x", None));
        let d = differences(&a, &b);
        assert_eq!(d.len(), 2, "{d:?}");
        assert!(d[0].starts_with("recent: expected pass \"exactly one session\""));
        assert!(d[1].starts_with("extra: not expected"));
        b.checks.remove(0);
        assert!(differences(&a, &b)[0].starts_with("idle-delay: missing"));
    }

    #[test]
    fn a_matrix_round_trips_through_json_and_renders() {
        let m = matrix(vec![check(
            "uidplus",
            Verdict::Pass,
            "APPENDUID, COPYUID",
            None,
        )]);
        let text = serde_json::to_string(&m).unwrap();
        assert_eq!(serde_json::from_str::<Matrix>(&text).unwrap(), m);
        let table = render_text(&m);
        assert!(
            table.contains("uidplus  pass         APPENDUID, COPYUID"),
            "{table}"
        );
    }

    #[test]
    fn greeting_loses_its_capability_code() {
        assert_eq!(
            strip_capability("[CAPABILITY IMAP4rev1 IDLE] Dovecot ready."),
            "Dovecot ready."
        );
        assert_eq!(strip_capability("Courier ready"), "Courier ready");
    }
}
