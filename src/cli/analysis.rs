//! The subcommands of capacity planning: `imaptest capacity …` (a profile run's keys
//! plus the search's own), `imaptest report FILE…` and `imaptest compare BASE NEW`.

use std::path::PathBuf;

use super::error::{CliError, shown};
use super::keys::{self, Arg};
use super::{Command, DocumentOut, Env};
use crate::capacity::CapacitySettings;

/// Usage of `imaptest capacity`.
pub const CAPACITY_USAGE: &str =
    "imaptest capacity profile=FILE slo=EXPR [from=N] [to=N] [step_secs=D] [warmup=D] [out=FILE]";
/// The search's other keys, for the help text.
pub const CAPACITY_MORE: &str =
    "capacity also: growth=X resolution=P% tool_lateness=D tool_run_queue=P% report=FILE";
/// Usage of `imaptest report`.
pub const REPORT_USAGE: &str =
    "imaptest report SUMMARY.json… | CAPACITY.json [out=FILE.html] [overwrite]";
/// Usage of `imaptest compare`.
pub const COMPARE_USAGE: &str =
    "imaptest compare BASE.json NEW.json [tolerance=P%] [min_change=DURATION]";

/// Keys of a profile run that the search sets itself, or that a search has no use for.
const NOT_IN_CAPACITY: &[(&str, &str)] = &[
    ("secs", "each step lasts warmup= plus step_secs="),
    ("users", "the search sets the users: give from= and to="),
    (
        "summary",
        "every step's summary is in the capacity JSON (out=)",
    ),
    (
        "csv",
        "steps write no per-second files; their summaries are in out=",
    ),
    (
        "output",
        "steps write no per-second files; their summaries are in out=",
    ),
    (
        "session_csv",
        "steps write no per-second files; their summaries are in out=",
    ),
    (
        "dry_run",
        "a search runs the profile: use imaptest profile=FILE dry_run to plan",
    ),
    (
        "plan",
        "a search runs the profile: use imaptest profile=FILE dry_run to plan",
    ),
];

/// `capacity …` (the arguments after `capacity`).
pub(crate) fn parse_capacity(args: &[String], env: &Env) -> Result<Command, CliError> {
    let mut own: Vec<(&str, Arg<'_>)> = Vec::new();
    let mut rest: Vec<String> = Vec::new();
    for raw in args {
        match raw.split_once('=') {
            Some((key, value))
                if matches!(
                    key,
                    "from"
                        | "to"
                        | "growth"
                        | "resolution"
                        | "step_secs"
                        | "out"
                        | "tool_lateness"
                        | "tool_run_queue"
                ) =>
            {
                if value.is_empty() {
                    return Err(CliError::MissingValue {
                        arg: shown(raw),
                        key: key.to_owned(),
                        hint: "VALUE".to_owned(),
                    });
                }
                own.push((
                    key,
                    Arg {
                        raw,
                        value: Some(value),
                    },
                ));
            }
            _ => rest.push(raw.clone()),
        }
    }
    let parsed = super::parse_draft(&rest, env)?;
    for key in &parsed.seen.given {
        if let Some((_, why)) = NOT_IN_CAPACITY.iter().find(|(k, _)| k == key) {
            return Err(CliError::NotInCapacity {
                key: (*key).to_owned(),
                why,
            });
        }
    }
    if parsed.settings.profile.is_none() {
        return Err(CliError::Usage {
            usage: CAPACITY_USAGE,
        });
    }
    let warmup = parsed.settings.warmup;
    let settings = parsed
        .settings
        .into_settings(&parsed.seen.given, args.to_vec())?;
    let crate::config::Mode::Profile(profile) = settings.mode else {
        return Err(CliError::Usage {
            usage: CAPACITY_USAGE,
        });
    };
    let mut capacity = CapacitySettings::new(settings.common, profile);
    if let Some(warmup) = warmup {
        capacity.warmup = warmup;
    }
    for (key, arg) in own {
        let value = arg.value.unwrap_or("");
        match key {
            "from" => capacity.from = Some(at_least_one(arg, "from")?),
            "to" => capacity.to = Some(at_least_one(arg, "to")?),
            "growth" => {
                capacity.growth = value
                    .parse::<f64>()
                    .ok()
                    .filter(|g| g.is_finite() && *g > 1.0 && *g <= 100.0)
                    .ok_or_else(|| {
                        keys::invalid(arg, "growth", "a factor above 1, e.g. 2 or 1.5")
                    })?;
            }
            "resolution" => capacity.resolution = share(arg, "resolution", 1.0)?,
            // Summed over threads, so it may pass 100 % of wall-clock time.
            "tool_run_queue" => capacity.tool_run_queue = share(arg, "tool_run_queue", 64.0)?,
            "step_secs" => capacity.window = keys::duration(arg, "step_secs")?,
            "tool_lateness" => capacity.tool_lateness = keys::duration(arg, "tool_lateness")?,
            _ => capacity.out = Some(keys::expand_home(value, env.home.as_deref())),
        }
    }
    if let (Some(from), Some(to)) = (capacity.from, capacity.to)
        && from > to
    {
        return Err(CliError::InvalidValue {
            what: "to",
            value: to.to_string(),
            arg: format!("from={from} to={to}"),
            expected: "a user count no smaller than from=".to_owned(),
        });
    }
    Ok(Command::Capacity(Box::new(capacity)))
}

fn at_least_one(arg: Arg<'_>, what: &'static str) -> Result<u64, CliError> {
    let n: u64 = keys::parse_unsigned(arg, what, arg.value.unwrap_or(""))?;
    if n == 0 {
        return Err(keys::invalid(arg, what, "a user count of at least 1"));
    }
    Ok(n)
}

/// `5%` or `0.05`: a share above 0 and below `max`.
fn share(arg: Arg<'_>, what: &'static str, max: f64) -> Result<f64, CliError> {
    let number = percent(arg.value.unwrap_or(""));
    number.filter(|f| *f > 0.0 && *f < max).ok_or_else(|| {
        keys::invalid(
            arg,
            what,
            format!(
                "a share such as 5% or 0.05, above 0 and below {}%",
                max * 100.0
            ),
        )
    })
}

/// `25%` → 0.25, `0.25` → 0.25.
fn percent(value: &str) -> Option<f64> {
    let number = match value.strip_suffix('%') {
        Some(p) => p.trim().parse::<f64>().ok().map(|p| p / 100.0),
        None => value.parse::<f64>().ok(),
    };
    number.filter(|n| n.is_finite())
}

/// `report FILE… [out=FILE] [overwrite]`.
pub(crate) fn parse_report(args: &[String], env: &Env) -> Result<Command, CliError> {
    let mut inputs = Vec::new();
    let mut out = DocumentOut::default();
    for raw in args {
        match raw.split_once('=') {
            Some(("out", path)) if !path.is_empty() => {
                out.path = Some(keys::expand_home(path, env.home.as_deref()));
            }
            None if raw == "overwrite" => out.overwrite = true,
            None => inputs.push(keys::expand_home(raw, env.home.as_deref())),
            _ => {
                return Err(CliError::Usage {
                    usage: REPORT_USAGE,
                });
            }
        }
    }
    if inputs.is_empty() {
        return Err(CliError::Usage {
            usage: REPORT_USAGE,
        });
    }
    Ok(Command::Report { inputs, out })
}

/// `compare BASE NEW [tolerance=P%] [min_change=DURATION]`.
pub(crate) fn parse_compare(args: &[String], env: &Env) -> Result<Command, CliError> {
    let mut files: Vec<PathBuf> = Vec::new();
    let mut tolerance = crate::compare::Tolerance::default();
    for raw in args {
        match raw.split_once('=') {
            Some(("tolerance", value)) if !value.is_empty() => {
                let arg = Arg {
                    raw,
                    value: Some(value),
                };
                tolerance.relative = percent(value).filter(|t| *t >= 0.0).ok_or_else(|| {
                    keys::invalid(arg, "tolerance", "a share such as 25% or 0.25")
                })?;
            }
            Some(("min_change", value)) if !value.is_empty() => {
                let arg = Arg {
                    raw,
                    value: Some(value),
                };
                tolerance.min_change_us = keys::duration(arg, "min_change")?.as_micros() as f64;
            }
            None => files.push(keys::expand_home(raw, env.home.as_deref())),
            _ => {
                return Err(CliError::Usage {
                    usage: COMPARE_USAGE,
                });
            }
        }
    }
    let [base, new] = <[PathBuf; 2]>::try_from(files).map_err(|_| CliError::Usage {
        usage: COMPARE_USAGE,
    })?;
    Ok(Command::Compare {
        base,
        new,
        tolerance,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> Result<Command, CliError> {
        let args: Vec<String> = args.iter().map(|s| s.to_string()).collect();
        super::super::parse_with_env(
            &args,
            &Env {
                home: Some(PathBuf::from("/home/t")),
                user: Some("t".into()),
                ..Env::default()
            },
        )
    }

    #[test]
    fn capacity_takes_its_keys_and_a_profile_runs() {
        let Command::Capacity(c) = parse(&[
            "capacity",
            "profile=p.toml",
            "slo=imap.LOGIN.p99<500ms",
            "from=50",
            "to=800",
            "growth=1.5",
            "resolution=10%",
            "step_secs=20s",
            "warmup=5",
            "out=~/cap.json",
            "report=r.html",
            "port=10143",
        ])
        .unwrap() else {
            panic!("not capacity")
        };
        assert_eq!((c.from, c.to), (Some(50), Some(800)));
        assert_eq!(c.growth, 1.5);
        assert!((c.resolution - 0.1).abs() < 1e-12);
        assert_eq!(c.window, std::time::Duration::from_secs(20));
        assert_eq!(c.warmup, std::time::Duration::from_secs(5));
        assert_eq!(c.out, Some(PathBuf::from("/home/t/cap.json")));
        assert_eq!(c.common.outputs.report, Some(PathBuf::from("r.html")));
        assert_eq!(c.common.port, Some(10143));
        assert_eq!(c.common.slos.len(), 1);
        assert_eq!(c.profile.path, PathBuf::from("p.toml"));
    }

    #[test]
    fn capacity_refuses_what_the_search_sets() {
        let e = parse(&["capacity", "profile=p.toml", "secs=60"]).unwrap_err();
        assert!(e.to_string().contains("step_secs="), "{e}");
        let e = parse(&["capacity", "profile=p.toml", "users=100"]).unwrap_err();
        assert!(e.to_string().contains("from="), "{e}");
        let e = parse(&["capacity", "slo=errors==0"]).unwrap_err();
        assert!(e.to_string().contains("profile=FILE"), "{e}");
        let e = parse(&["capacity", "profile=p", "from=10", "to=5"]).unwrap_err();
        assert!(e.to_string().contains("from="), "{e}");
        let e = parse(&["capacity", "profile=p", "growth=1"]).unwrap_err();
        assert!(e.to_string().contains("growth"), "{e}");
        let e = parse(&["capacity", "profile=p", "resolution=150%"]).unwrap_err();
        assert!(e.to_string().contains("resolution"), "{e}");
    }

    #[test]
    fn report_and_compare() {
        assert_eq!(
            parse(&["report", "a.json", "b.json", "out=r.html", "overwrite"]).unwrap(),
            Command::Report {
                inputs: vec![PathBuf::from("a.json"), PathBuf::from("b.json")],
                out: DocumentOut {
                    path: Some(PathBuf::from("r.html")),
                    overwrite: true
                }
            }
        );
        assert!(parse(&["report"]).is_err());
        let Command::Compare {
            base,
            new,
            tolerance,
        } = parse(&[
            "compare",
            "a.json",
            "b.json",
            "tolerance=10%",
            "min_change=2ms",
        ])
        .unwrap()
        else {
            panic!("not compare")
        };
        assert_eq!(
            (base, new),
            (PathBuf::from("a.json"), PathBuf::from("b.json"))
        );
        assert!((tolerance.relative - 0.1).abs() < 1e-12);
        assert_eq!(tolerance.min_change_us, 2000.0);
        assert!(parse(&["compare", "a.json"]).is_err());
        assert!(parse(&["compare", "a", "b", "c"]).is_err());
    }
}
