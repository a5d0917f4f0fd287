//! `imaptest profile fit LOG… > fitted.toml`: a profile from a server's own logs.
//!
//! * [`reader`]: streams plain and gzip log files, oldest first, counting damage.
//! * [`dovecot`]: one Dovecot log line → a typed record.
//! * [`collect`]: records → sessions, deliveries, sizes (one pass, user names only as
//!   keys of a numbering).
//! * [`estimate`]: per client type: sessions, login gaps, deliveries, sizes, the
//!   hourly curve, in simulated and operational time.
//! * [`mle`]: maximum-likelihood fits of the profile's families, AIC, KS.
//! * [`write`](mod@write): the profile, annotated with n, KS and the runner-up of every fit.

pub mod collect;
pub mod dovecot;
pub mod estimate;
pub mod mle;
pub mod reader;
pub mod write;

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context as _, bail};

use crate::profile::model::TimeOfDay;

/// What `profile fit` was asked to do.
#[derive(Debug, Clone)]
pub struct FitOptions {
    pub logs: Vec<PathBuf>,
    /// `base=PROFILE`: servers, run settings and user names come from it.
    pub base: Option<PathBuf>,
    /// `time_compression=N`: the log came from a run at N simulated seconds per second;
    /// intervals are multiplied by N and rates are per simulated day.
    pub time_compression: f64,
    /// `start=HH:MM`: the simulated time of day of the log's first line (default: its
    /// own clock, or 00:00 with a time compression).
    pub start: Option<TimeOfDay>,
    /// `year=YYYY`: the year of stamps without one (default: this year).
    pub year: i32,
}

/// The result: the profile text and the summary for stderr.
pub struct Fitted {
    pub toml: String,
    pub summary: String,
}

const USAGE: &str = "usage: imaptest profile fit LOG... [base=PROFILE] [out=FILE [overwrite]] \
                     [time_compression=N] [start=HH:MM] [year=YYYY]";

/// `imaptest profile fit …` (the arguments after `fit`).
pub fn fit_main(args: &[String]) -> anyhow::Result<ExitCode> {
    let mut options = FitOptions {
        logs: Vec::new(),
        base: None,
        time_compression: 1.0,
        start: None,
        year: current_year(),
    };
    let mut out: Option<PathBuf> = None;
    let mut overwrite = false;
    for arg in args {
        match arg.split_once('=') {
            Some(("base", v)) => options.base = Some(PathBuf::from(v)),
            Some(("out", v)) => out = Some(PathBuf::from(v)),
            Some(("time_compression", v)) => {
                options.time_compression = v
                    .parse::<f64>()
                    .ok()
                    .filter(|c| c.is_finite() && *c > 0.0)
                    .with_context(|| format!("time_compression={v}: not a positive number"))?;
            }
            Some(("start", v)) => {
                let parsed: TimeOfDay = toml::Value::String(v.to_owned())
                    .try_into()
                    .map_err(|e: toml::de::Error| anyhow::anyhow!("start={v}: {}", e.message()))?;
                options.start = Some(parsed);
            }
            Some(("year", v)) => {
                options.year = v.parse().with_context(|| format!("year={v}: not a year"))?;
            }
            Some((key, _)) if !Path::new(arg).exists() => {
                bail!("profile fit: unknown setting {key:?}; {USAGE}")
            }
            _ if arg == "overwrite" => overwrite = true,
            _ => options.logs.push(PathBuf::from(arg)),
        }
    }
    if options.logs.is_empty() {
        bail!("profile fit: no log files given; {USAGE}");
    }
    if let Some(path) = &out
        && path.exists()
        && !overwrite
    {
        bail!("{} exists; add `overwrite` to replace it", path.display());
    }
    let fitted = fit_logs(&options, out.as_deref())?;
    eprint!("{}", fitted.summary);
    match out {
        Some(path) => std::fs::write(&path, &fitted.toml)
            .with_context(|| format!("cannot write {}", path.display()))?,
        None => print!("{}", fitted.toml),
    }
    Ok(ExitCode::SUCCESS)
}

/// Reads the logs and fits the profile. `out` (where it will be written) anchors the
/// check that the text loads as a profile.
pub fn fit_logs(options: &FitOptions, out: Option<&Path>) -> anyhow::Result<Fitted> {
    let base = match &options.base {
        Some(path) => {
            let (mut profile, _) = crate::profile::load(path)?;
            // Relative user files were resolved against the base; keep them absolute
            // so the fitted profile finds them wherever it is written.
            for p in &mut profile.populations {
                if let Some(f) = &mut p.userfile
                    && let Ok(abs) = std::fs::canonicalize(&*f)
                {
                    *f = abs;
                }
            }
            Some((profile, path.clone()))
        }
        None => None,
    };

    let mut collector = collect::Collector::new();
    let stats = reader::for_each_line(&options.logs, options.year, |line| match line {
        reader::Line::Text(text, year) => collector.feed(dovecot::parse_line(text, year)),
        reader::Line::Break => collector.lines_lost(),
    });
    let open = collector.finish();
    let estimates = estimate::estimate(
        &collector,
        &open,
        options.time_compression,
        options.start.map(|t| f64::from(t.0)),
    );
    let summary = summary(&stats, &collector, open.len());
    let Some(estimates) = estimates.filter(|e| e.groups.iter().any(|g| g.users > 0)) else {
        bail!(
            "no sessions or deliveries found in {} file(s)\n{summary}",
            options.logs.len()
        );
    };

    let mut header = vec![
        "Fitted by `imaptest profile fit` from a server's log: review every comment.".to_owned(),
        format!(
            "{} file(s), {} lines, {} used; {} users (names not kept); {:.2} simulated days.",
            stats.files,
            stats.lines,
            collector.counts.used,
            estimates.distinct_users,
            estimates.span / 86400.0
        ),
    ];
    if options.time_compression != 1.0 {
        header.push(format!(
            "The log came from a run at time_compression = {}: its intervals are multiplied by it, and per-day rates are per simulated day.",
            options.time_compression
        ));
    }
    if !estimates.precise {
        header.push(
            "Stamps are whole seconds: intervals are fitted as interval-censored (log_timestamp with %{usecs} gives exact ones)."
                .into(),
        );
    }
    header
        .push("KS p-values use the fitted parameters, so they are optimistic (Lilliefors).".into());
    let base_ref = base.as_ref().map(|(profile, path)| write::Base {
        profile,
        path: path.as_path(),
    });
    let toml = write::fitted_profile(
        &estimates,
        base_ref.as_ref(),
        &write::Header { lines: header },
    );

    let anchor = out
        .map(Path::to_path_buf)
        .unwrap_or_else(|| PathBuf::from("fitted.toml"));
    crate::profile::from_toml_str(&toml, &anchor).map_err(|e| {
        anyhow::anyhow!("the fitted profile does not load ({e}); this is a bug:\n{toml}")
    })?;
    Ok(Fitted { toml, summary })
}

/// The stderr summary: what was read, used and skipped.
fn summary(stats: &reader::ReadStats, c: &collect::Collector, still_open: usize) -> String {
    let n = &c.counts;
    let mut s = String::new();
    let _ = writeln!(
        s,
        "profile fit: {} file(s), {} lines ({} MB): {} used, {} known but not needed",
        stats.files,
        stats.lines,
        stats.bytes / 1_000_000,
        n.used,
        n.ignored
    );
    let skipped = [
        ("without a timestamp", n.no_timestamp),
        ("without `service: Level: message`", n.bad_shape),
        ("with a missing or malformed field", n.bad_field),
        ("of an unknown service", n.unknown),
        (
            "logouts whose login is not in the log",
            n.logout_without_login,
        ),
        (
            "sessions open where lines were lost (dropped)",
            n.lost_sessions,
        ),
        (
            "not UTF-8 (read with replacement characters)",
            stats.not_utf8,
        ),
        ("cut short at the end of a file", stats.cut_lines),
    ];
    for (what, count) in skipped {
        if count > 0 {
            let _ = writeln!(s, "  skipped {count} lines {what}");
        }
    }
    if still_open > 0 {
        let _ = writeln!(
            s,
            "  {still_open} sessions still open at the end (right-censored)"
        );
    }
    for (path, why) in &stats.damaged {
        let _ = writeln!(s, "  {}: read up to the damage: {why}", path.display());
    }
    s
}

fn current_year() -> i32 {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    // Days → civil year (good to a day at new year, which is all this default needs).
    (1970.0 + secs as f64 / (365.2425 * 86400.0)).floor() as i32
}
