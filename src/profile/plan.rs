//! Dry-run plans: the generated schedule written as CSV, without any connection
//! (`imaptest profile=FILE plan=OUT dry_run`).

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::io::{self, Write};
use std::path::Path;
use std::time::Duration;

use super::ProfileError;
use super::model::Profile;
use super::schedule::{Action, Directory, Schedule, ScheduleOptions};
use crate::limits::MAX_PLAN_ACTIONS;

/// Options of a plan.
#[derive(Debug, Clone, Copy, Default)]
pub struct PlanOptions {
    pub schedule: ScheduleOptions,
}

/// Totals of a written plan.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct PlanSummary {
    pub users: usize,
    pub actions: u64,
    /// Time of the last action.
    pub last: Duration,
    /// The covered period (the `until` of the schedule, or the last action).
    pub period: Duration,
    pub by_action: BTreeMap<&'static str, u64>,
}

impl PlanSummary {
    /// A human summary: counts and rates per action.
    pub fn to_text(&self) -> String {
        let mut s = String::new();
        let secs = self.period.as_secs_f64().max(1e-9);
        let _ = writeln!(
            s,
            "plan: {} users, {} actions over {:.1} s ({:.1}/s)",
            self.users,
            self.actions,
            secs,
            self.actions as f64 / secs
        );
        for name in Action::NAMES {
            if let Some(n) = self.by_action.get(name) {
                let _ = writeln!(s, "  {name:<15} {n:>10}  {:>10.2}/s", *n as f64 / secs);
            }
        }
        s
    }
}

/// Writes the plan of `profile` as CSV:
/// `time_s,user,username,population,client,action,detail,depends_on`; `depends_on` is
/// `delivery msg=N` for actions on a delivered message (they wait for that delivery and
/// are skipped if it fails).
/// Needs a finite period: `run.duration` or `opts.schedule.until`.
pub fn write_plan(
    profile: &Profile,
    opts: &PlanOptions,
    out: &mut dyn Write,
) -> Result<PlanSummary, ProfileError> {
    write_plan_bounded(profile, opts, out, MAX_PLAN_ACTIONS)
}

/// [`write_plan`] refusing plans of more than `max_actions` actions.
fn write_plan_bounded(
    profile: &Profile,
    opts: &PlanOptions,
    out: &mut dyn Write,
    max_actions: u64,
) -> Result<PlanSummary, ProfileError> {
    let until = opts.schedule.until.or(profile.run.duration.map(|d| d.0));
    let Some(until) = until else {
        return Err(ProfileError::Invalid {
            path: "plan".into(),
            message: "a plan needs a period: set run.duration in the profile (or give secs=)"
                .into(),
        });
    };
    let directory = Directory::new(profile).map_err(|message| ProfileError::Invalid {
        path: "profile".into(),
        message,
    })?;
    let io_err = |source: io::Error| ProfileError::Io {
        path: "plan".into(),
        source,
    };
    let mut schedule_opts = opts.schedule;
    schedule_opts.until = Some(until);
    let schedule = Schedule::new(profile, schedule_opts);
    let mut summary = PlanSummary {
        users: schedule.users(),
        period: until,
        ..PlanSummary::default()
    };
    let mut out = io::BufWriter::new(out);
    writeln!(
        out,
        "time_s,user,username,population,client,action,detail,depends_on"
    )
    .map_err(io_err)?;
    let mut line = String::new();
    for a in schedule {
        // A typo in a rate (`1ms` for `1min`) shows early: past a million actions,
        // stop when the pace so far projects to well over the bound instead of
        // writing gigabytes first.
        if summary.actions >= max_actions / 50
            && summary.actions.is_multiple_of(max_actions / 50)
            && !a.at.is_zero()
        {
            let projected = summary.actions as f64 * until.as_secs_f64() / a.at.as_secs_f64();
            if projected > 3.0 * max_actions as f64 {
                out.flush().map_err(io_err)?;
                return Err(ProfileError::Invalid {
                    path: "plan".into(),
                    message: format!(
                        "{} actions in the first {:.1} s of the {:.1} s planned: about {:.0} in all, more than the {max_actions} a plan may hold (shorten secs= or lower the rates; docs/limits.md)",
                        summary.actions,
                        a.at.as_secs_f64(),
                        until.as_secs_f64(),
                        projected
                    ),
                });
            }
        }
        if summary.actions >= max_actions {
            out.flush().map_err(io_err)?;
            return Err(ProfileError::Invalid {
                path: "plan".into(),
                message: format!(
                    "more than {max_actions} actions by {:.1} s of the {:.1} s planned: the rates are too high for a plan (shorten secs= or lower the rates; docs/limits.md)",
                    a.at.as_secs_f64(),
                    until.as_secs_f64()
                ),
            });
        }
        line.clear();
        let (username, _) = directory.user(a.user);
        let population = profile.populations[a.population as usize].name.get_ref();
        let client = a
            .client
            .map_or("", |c| profile.clients[c as usize].name.get_ref().as_str());
        let detail = a.action.to_string();
        let detail = detail.split_once(' ').map_or("", |(_, d)| d);
        let _ = write!(
            line,
            "{}.{:06},{},{},{},{},{},{},",
            a.at.as_secs(),
            a.at.subsec_micros(),
            a.user,
            csv_field(&username),
            csv_field(population),
            csv_field(client),
            a.action.name(),
            detail
        );
        if let Some(msg) = a.action.delivered_msg() {
            let _ = write!(line, "delivery msg={msg}");
        }
        line.push('\n');
        out.write_all(line.as_bytes()).map_err(io_err)?;
        summary.actions += 1;
        summary.last = a.at;
        *summary.by_action.entry(a.action.name()).or_default() += 1;
    }
    out.flush().map_err(io_err)?;
    Ok(summary)
}

/// Writes the plan of `profile` to the file `path`.
pub fn write_plan_file(
    profile: &Profile,
    opts: &PlanOptions,
    path: &Path,
) -> Result<PlanSummary, ProfileError> {
    let mut file = std::fs::File::create(path).map_err(|source| ProfileError::Io {
        path: path.to_owned(),
        source,
    })?;
    write_plan(profile, opts, &mut file)
}

fn csv_field(s: &str) -> std::borrow::Cow<'_, str> {
    if s.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", s.replace('"', "\"\"")).into()
    } else {
        s.into()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn profile_delivering_every(mean: &str, duration: &str) -> Profile {
        super::super::from_toml_str(
            &format!(
                "[run]\nduration = \"{duration}\"\ntotal_users = 10\n\n\
                 [[population]]\nname = \"p\"\nshare = 100\nusername = \"u%{{username_idx}}\"\n\
                 clients = [{{ client = \"none\" }}]\n\
                 inbox_delivery = {{ dist = \"exponential\", mean = \"{mean}\" }}\n\n\
                 [[client]]\nname = \"none\"\nconnections = 0\n"
            ),
            Path::new("absurd.toml"),
        )
        .unwrap()
    }

    #[test]
    fn an_absurd_rate_is_refused_from_its_first_actions() {
        let profile = profile_delivering_every("1us", "1h");
        let mut out = Vec::new();
        let e = write_plan_bounded(&profile, &PlanOptions::default(), &mut out, 1000).unwrap_err();
        let text = e.to_string();
        assert!(
            text.contains("20 actions in the first 0.0 s of the 3600.0 s planned")
                && text.contains("more than the 1000 a plan may hold"),
            "{text}"
        );
        // The header and the 20 actions before the projection.
        assert_eq!(out.iter().filter(|&&b| b == b'\n').count(), 21);
    }

    #[test]
    fn a_plan_just_past_the_bound_is_cut_at_it() {
        // 10 users, one delivery a second each, for 150 s: about 1,500 actions, a pace
        // that projects under three times the bound of 1000, so only the bound stops it.
        let profile = profile_delivering_every("1s", "150s");
        let mut out = Vec::new();
        let e = write_plan_bounded(&profile, &PlanOptions::default(), &mut out, 1000).unwrap_err();
        assert!(e.to_string().contains("more than 1000 actions by"), "{e}");
        assert_eq!(out.iter().filter(|&&b| b == b'\n').count(), 1001);
        // Under the bound, the plan is whole.
        let profile = profile_delivering_every("1s", "50s");
        let mut out = Vec::new();
        let summary =
            write_plan_bounded(&profile, &PlanOptions::default(), &mut out, 1000).unwrap();
        assert!(
            summary.actions > 300 && summary.actions < 1000,
            "{}",
            summary.actions
        );
    }
}
