//! The fitted profile: a [`Profile`] built from the estimates, written with
//! [`crate::profile::convert`] and annotated with what each value rests on.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::path::Path;

use serde_spanned::Spanned;

use super::estimate::{Estimates, Group};
use super::mle::{Family, FitResult};
use crate::duration::Dur;
use crate::profile::model::{
    Activity, ClientShare, ClientType, Population, Profile, Protocol, Run, Servers, TimeOfDay,
};
use crate::profile::size::{Recipients, SizeDistribution};
use crate::profile::{Distribution, convert};

use super::dovecot::Proto;

/// Where a comment goes: a table and one of its keys.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum Section {
    Run,
    Activity,
    Population(usize),
    Client(usize),
}

#[derive(Default)]
struct Notes(HashMap<(Section, &'static str), Vec<String>>);

impl Notes {
    fn add(&mut self, section: Section, key: &'static str, line: String) {
        self.0.entry((section, key)).or_default().push(line);
    }
}

/// What the fitted profile takes from `base=PROFILE`.
pub struct Base<'a> {
    pub profile: &'a Profile,
    pub path: &'a Path,
}

/// The header lines: what was read, and how.
pub struct Header {
    pub lines: Vec<String>,
}

/// The fitted profile's TOML text.
pub fn fitted_profile(est: &Estimates, base: Option<&Base>, header: &Header) -> String {
    let mut notes = Notes::default();
    let run = match base {
        Some(b) => b.profile.run.clone(),
        None => {
            notes.add(
                Section::Run,
                "duration",
                "Run length and ramp-up are not in a log: review them.".into(),
            );
            Run {
                duration: Some(Dur(std::time::Duration::from_secs(3600))),
                rampup: Dur(std::time::Duration::from_secs(300)),
                ..Run::default()
            }
        }
    };
    let servers = base.map_or_else(Servers::default, |b| b.profile.servers.clone());
    let activity = est.curve.as_ref().map(|curve| {
        let start = base
            .and_then(|b| b.profile.activity.as_ref().map(|a| a.start))
            .unwrap_or(TimeOfDay(
                ((est.time.start_of_day().rem_euclid(86400.0) / 60.0).round() as u32 * 60) % 86400,
            ));
        notes.add(
            Section::Activity,
            "hourly",
            format!(
                "{} {} per simulated hour of day over the hours' time in the log, mean 1.",
                curve.events, curve.source
            ),
        );
        Activity {
            start,
            hourly: Spanned::new(0..0, curve.hourly.to_vec()),
        }
    });

    let users_from = base.and_then(|b| b.profile.populations.first());
    let mut start_index = users_from.map_or(1, |p| p.start_index);
    let mut populations = Vec::new();
    let mut clients = Vec::new();
    let groups: Vec<&Group> = est.groups.iter().filter(|g| g.users > 0).collect();
    for (i, g) in groups.iter().enumerate() {
        let count = (g.daily_users.round() as u32).max(1);
        let pop_section = Section::Population(i);
        notes.add(
            pop_section.clone(),
            "count",
            format!(
                "{} users in the log, {:.1} active per simulated day; {:.2} logins, {:.2} INBOX and {:.2} Spam deliveries per user per day.",
                g.users, g.daily_users, g.logins_per_user_day, g.inbox_per_user_day, g.spam_per_user_day
            ),
        );
        let (username, userfile, password) = match users_from {
            Some(p) => (p.username.clone(), p.userfile.clone(), p.password.clone()),
            None => {
                notes.add(
                    pop_section.clone(),
                    "username",
                    "No names from the log: give base=PROFILE, or set your own template.".into(),
                );
                (Some("user%{username_idx}".to_owned()), None, None)
            }
        };
        if userfile.is_some() && groups.len() > 1 {
            notes.add(
                pop_section.clone(),
                "userfile",
                "Every population takes the first users of this file: give each its own.".into(),
            );
        }
        let mut pop = Population {
            count: Some(count),
            username,
            start_index,
            userfile,
            password,
            clients: vec![ClientShare {
                client: Spanned::new(0..0, client_name(g)),
                share: 100.0,
            }],
            ..Population::named(Spanned::new(0..0, g.name.clone()))
        };
        start_index = start_index.saturating_add(count);
        if let Some(r) = &g.session_length {
            pop.session_length = interval(r, &mut notes, &pop_section, "session_length", false);
        }
        if let Some(r) = &g.inbox {
            pop.inbox_delivery = interval(r, &mut notes, &pop_section, "inbox_delivery", true);
        }
        if let Some(r) = &g.spam {
            pop.spam_delivery = interval(r, &mut notes, &pop_section, "spam_delivery", true);
        }
        if let Some(r) = &g.sizes {
            pop.delivery_size = r.best.fitted.to_distribution().map(SizeDistribution);
            if pop.delivery_size.is_some() {
                notes.add(pop_section.clone(), "delivery_size", describe(r, "bytes"));
            }
        }
        if !est.recipients.is_empty() && est.recipients.iter().any(|&(n, _)| n > 1) {
            let total: u64 = est.recipients.iter().map(|&(_, c)| c).sum();
            pop.delivery_recipients = Some(Recipients(
                est.recipients
                    .iter()
                    .map(|&(n, c)| (n, (10000.0 * c as f64 / total as f64).round() / 100.0))
                    .filter(|&(_, w)| w > 0.0)
                    .collect(),
            ));
            notes.add(
                pop_section.clone(),
                "delivery_recipients",
                format!("{total} LMTP transactions: % of them by number of recipients."),
            );
        }
        if g.proto == Some(Proto::Imap) && g.delete_percent > 0.0 {
            pop.delete = (g.delete_percent * 10.0).round() / 10.0;
            notes.add(
                pop_section.clone(),
                "delete",
                format!(
                    "IMAP expunges ({:.2} per session) as % of INBOX deliveries: reads are not in the log, so every delivery counts as read.",
                    g.expunged_per_session
                ),
            );
        }

        let client_section = Section::Client(i);
        let mut client = ClientType {
            name: Spanned::new(0..0, client_name(g)),
            protocol: match g.proto {
                Some(Proto::Pop3) => Protocol::Pop3,
                _ => Protocol::Imap,
            },
            connections: if g.proto.is_some() { g.connections } else { 0 },
            login_interval: None,
            idle: true,
            poll_interval: None,
            fetch_on_arrival: None,
            fetch_on_open: None,
            pop3_keep: g.proto == Some(Proto::Pop3) && g.deleted_per_session == 0.0,
            cache: true,
        };
        let mut bytes = format!(
            "{} sessions; per session {:.0} bytes in, {:.0} bytes out",
            g.sessions, g.mean_in, g.mean_out
        );
        match g.proto {
            Some(Proto::Pop3) => {
                let _ = write!(
                    bytes,
                    ", {:.2} messages retrieved, {:.2} deleted.",
                    g.retrieved_per_session, g.deleted_per_session
                );
            }
            Some(Proto::Imap) => {
                let _ = write!(bytes, ", {:.2} expunges.", g.expunged_per_session);
            }
            None => bytes = "Users who only receive mail: no sessions in the log.".into(),
        }
        notes.add(client_section.clone(), "connections", bytes);
        if let Some(r) = &g.login_interval {
            client.login_interval =
                interval(r, &mut notes, &client_section, "login_interval", false);
        }
        if client.protocol == Protocol::Pop3 && client.login_interval.is_none() {
            // A POP3 client needs one; one download a day when the log cannot tell.
            client.login_interval = Some(Distribution::PerDay(1.0));
            notes.add(
                client_section.clone(),
                "login_interval",
                "Too few POP3 logins per user to fit: one download a day assumed.".into(),
            );
        }
        populations.push(pop);
        clients.push(client);
    }

    let profile = Profile {
        run,
        servers,
        activity,
        populations,
        clients,
        // The base profile's objectives still apply to the fitted workload.
        slos: base.map_or_else(Vec::new, |b| b.profile.slos.clone()),
    };
    let text = convert::to_toml(&profile, None);
    let mut out = String::new();
    for line in &header.lines {
        let _ = writeln!(out, "# {line}");
    }
    if let Some(note) = &est.curve_note {
        let _ = writeln!(out, "# {note}");
    }
    annotate(&mut out, &text, &notes);
    out
}

/// A `[[client]]` name for a group (a population and its client share the name).
fn client_name(g: &Group) -> String {
    g.name.clone()
}

/// The profile interval of a fit, with its comment. Arrival processes fitted as
/// exponential are written as `per_day` rates.
fn interval(
    r: &FitResult,
    notes: &mut Notes,
    section: &Section,
    key: &'static str,
    arrivals: bool,
) -> Option<Distribution> {
    let dist = r
        .best
        .fitted
        .to_distribution()
        .or_else(|| r.runner_up.and_then(|c| c.fitted.to_distribution()))?;
    let dist = match dist {
        Distribution::Exponential { mean } if arrivals && mean.secs_f64() > 0.0 => {
            let per_day = 86400.0 / mean.secs_f64();
            Distribution::PerDay((per_day * 1e4).round() / 1e4)
        }
        d => d,
    };
    notes.add(section.clone(), key, describe(r, "s"));
    Some(dist)
}

/// `n=…, KS D=… p=…; runner-up …` for a comment.
fn describe(r: &FitResult, unit: &str) -> String {
    let best = &r.best;
    let mut s = format!("{} by AIC: n={}", best.fitted.family.name(), r.n);
    if r.censored > 0 {
        let _ = write!(s, " (+{} right-censored)", r.censored);
    }
    let _ = write!(
        s,
        ", mean {} {unit}, KS D={:.4} p={}",
        fmt_sig(best.fitted.mean()),
        r.ks_d,
        fmt_p(r.ks_p)
    );
    if r.interval_censored {
        s.push_str(", fitted interval-censored (whole-second stamps)");
    }
    match &r.runner_up {
        Some(c) => {
            let _ = write!(
                s,
                "; runner-up {} (ΔAIC {:.1})",
                c.fitted.family.name(),
                c.aic - best.aic
            );
        }
        None => s.push_str("; no runner-up"),
    }
    if best.fitted.family == Family::Pareto {
        s.push_str("; pareto: check the tail before trusting the mean");
    }
    s
}

fn fmt_sig(v: f64) -> String {
    if v.abs() >= 100.0 {
        format!("{v:.0}")
    } else {
        format!("{v:.3}")
    }
}

fn fmt_p(p: f64) -> String {
    if p < 0.001 {
        "<0.001".into()
    } else {
        format!("{p:.3}")
    }
}

/// Copies `text` to `out`, putting each note as a comment above its key.
fn annotate(out: &mut String, text: &str, notes: &Notes) {
    let (mut pops, mut clients) = (0usize, 0usize);
    let mut section = None;
    for line in text.lines() {
        match line.trim() {
            "[run]" => section = Some(Section::Run),
            "[activity]" => section = Some(Section::Activity),
            "[[population]]" => {
                section = Some(Section::Population(pops));
                pops += 1;
            }
            "[[client]]" => {
                section = Some(Section::Client(clients));
                clients += 1;
            }
            l if l.starts_with('[') => section = None,
            _ => {}
        }
        if let (Some(sec), Some((key, _))) = (&section, line.split_once(" = ")) {
            let key = key.trim();
            if let Some((_, lines)) = notes.0.iter().find(|((s, k), _)| s == sec && *k == key) {
                for l in lines {
                    let _ = writeln!(out, "# {l}");
                }
            }
        }
        let _ = writeln!(out, "{line}");
    }
}
