//! From collected sessions and deliveries to fitted quantities per client type.
//!
//! Time is simulated time: wall-clock seconds of the log times `time_compression`
//! (1 for a production log). Arrival processes — login gaps and deliveries — are
//! measured in the operational time of the fitted hourly curve (an hour at twice the
//! mean activity counts double), which is how the scheduler draws them, so a daily
//! rhythm does not masquerade as a heavy tail.

use std::collections::HashMap;

use super::collect::{Collector, OpenSession, Session};
use super::dovecot::{Folder, Proto};
use super::mle::{FAMILIES, FitResult, Sample, fit};

/// How the log's clock maps to simulated time.
#[derive(Debug, Clone)]
pub struct TimeMap {
    t0: f64,
    compression: f64,
    /// Simulated seconds since midnight at `t0`.
    start_of_day: f64,
    /// Hourly activity (mean 1) and its cumulative operational seconds per hour.
    curve: Option<([f64; 24], [f64; 25])>,
}

impl TimeMap {
    pub fn new(t0: f64, compression: f64, start_of_day: Option<f64>) -> Self {
        TimeMap {
            t0,
            compression,
            start_of_day: start_of_day.unwrap_or(if compression == 1.0 {
                t0.rem_euclid(86400.0)
            } else {
                0.0
            }),
            curve: None,
        }
    }

    /// Simulated seconds since midnight of the first day.
    pub fn sim(&self, t: f64) -> f64 {
        self.start_of_day + (t - self.t0) * self.compression
    }

    /// Operational seconds (simulated seconds weighted by the activity curve).
    pub fn op(&self, t: f64) -> f64 {
        let s = self.sim(t);
        match &self.curve {
            None => s,
            Some((a, cum)) => {
                let day = (s / 86400.0).floor();
                let r = s - day * 86400.0;
                let h = ((r / 3600.0) as usize).min(23);
                day * 86400.0 + cum[h] + a[h] * (r - h as f64 * 3600.0)
            }
        }
    }

    fn set_curve(&mut self, hourly: [f64; 24]) {
        let mut cum = [0.0; 25];
        for h in 0..24 {
            cum[h + 1] = cum[h] + hourly[h] * 3600.0;
        }
        self.curve = Some((hourly, cum));
    }

    pub fn start_of_day(&self) -> f64 {
        self.start_of_day
    }
}

/// The fitted hourly curve.
#[derive(Debug, Clone)]
pub struct Curve {
    pub hourly: [f64; 24],
    /// What it was counted from, and how many.
    pub source: &'static str,
    pub events: usize,
}

/// Fitted quantities of one client type (a `[[client]]` and its `[[population]]`).
#[derive(Debug, Clone, Default)]
pub struct Group {
    pub name: String,
    /// `None`: users who only receive mail (no session in the log).
    pub proto: Option<Proto>,
    pub users: usize,
    pub daily_users: f64,
    pub sessions: usize,
    pub visits: usize,
    pub connections: u32,
    pub session_length: Option<FitResult>,
    pub login_interval: Option<FitResult>,
    pub inbox: Option<FitResult>,
    pub spam: Option<FitResult>,
    pub sizes: Option<FitResult>,
    pub logins_per_user_day: f64,
    pub inbox_per_user_day: f64,
    pub spam_per_user_day: f64,
    pub mean_in: f64,
    pub mean_out: f64,
    pub retrieved_per_session: f64,
    pub deleted_per_session: f64,
    pub expunged_per_session: f64,
    /// Expunges as a percentage of INBOX deliveries (IMAP), capped at 100.
    pub delete_percent: f64,
}

/// Everything `profile fit` writes.
#[derive(Debug, Clone)]
pub struct Estimates {
    pub time: TimeMap,
    /// Simulated seconds from the first to the last line.
    pub span: f64,
    pub precise: bool,
    pub curve: Option<Curve>,
    /// Why there is no curve.
    pub curve_note: Option<String>,
    pub groups: Vec<Group>,
    /// Recipients per LMTP transaction: (count, transactions).
    pub recipients: Vec<(u32, u64)>,
    pub distinct_users: usize,
}

/// Fits everything `collector` gathered (after [`Collector::finish`]).
pub fn estimate(
    c: &Collector,
    open: &[OpenSession],
    compression: f64,
    start_of_day: Option<f64>,
) -> Option<Estimates> {
    let first = c.first?;
    let mut time = TimeMap::new(first, compression, start_of_day);
    let covered = covered_spans(c);
    // Simulated seconds with lines (holes where lines were lost left out).
    let span = covered.iter().map(|(a, b)| b - a).sum::<f64>() * compression;
    let days = span / 86400.0;
    let precise = c.all_precise;

    let (curve, curve_note) = hourly_curve(c, &time, span);
    if let Some(curve) = &curve {
        time.set_curve(curve.hourly);
    }

    // Each user belongs to the client type they have most sessions with.
    let mut per_user: HashMap<u32, HashMap<u16, usize>> = HashMap::new();
    for s in &c.sessions {
        *per_user
            .entry(s.user)
            .or_default()
            .entry(s.client)
            .or_default() += 1;
    }
    let mut owner: HashMap<u32, u16> = per_user
        .iter()
        .map(|(&u, counts)| {
            let best = counts
                .iter()
                .max_by_key(|&(&client, &n)| (n, std::cmp::Reverse(client)))
                .map(|(&client, _)| client)
                .unwrap_or(0);
            (u, best)
        })
        .collect();
    const MAIL_ONLY: u16 = u16::MAX;
    for d in &c.deliveries {
        owner.entry(d.user).or_insert(MAIL_ONLY);
    }
    let mut group_ids: Vec<u16> = owner.values().copied().collect();
    group_ids.sort_unstable();
    group_ids.dedup();

    // Differences of whole-second stamps are known to the second (of simulated time:
    // `compression` seconds).
    let new_sample = || Sample {
        resolution: compression,
        ..Sample::default()
    };
    let push = |s: &mut Sample, v: f64, exact: bool| {
        if exact {
            s.exact.push(v);
        } else {
            s.rounded.push(v);
        }
    };

    let mut open_by: HashMap<(u32, u16), Vec<&OpenSession>> = HashMap::new();
    for o in open {
        open_by.entry((o.user, o.client)).or_default().push(o);
    }
    let mut groups = Vec::new();
    for gid in group_ids {
        let members: Vec<u32> = {
            let mut m: Vec<u32> = owner
                .iter()
                .filter(|&(_, &g)| g == gid)
                .map(|(&u, _)| u)
                .collect();
            m.sort_unstable();
            m
        };
        let is_member = |u: u32| owner.get(&u) == Some(&gid);
        let mut g = Group {
            name: if gid == MAIL_ONLY {
                "mail-only".into()
            } else {
                c.client_names[gid as usize].clone()
            },
            users: members.len(),
            daily_users: daily_active(c, &time, &is_member, days),
            ..Group::default()
        };
        let mut lengths = new_sample();
        let mut gaps = new_sample();
        let mut per_visit = Vec::new();
        let mut expunged = 0u64;
        if gid != MAIL_ONLY {
            let sessions: Vec<&Session> = c
                .sessions
                .iter()
                .filter(|s| s.client == gid && is_member(s.user))
                .collect();
            g.proto = sessions.first().map(|s| s.proto);
            g.sessions = sessions.len();
            let n = sessions.len().max(1) as f64;
            g.mean_in = sessions.iter().map(|s| s.bytes_in as f64).sum::<f64>() / n;
            g.mean_out = sessions.iter().map(|s| s.bytes_out as f64).sum::<f64>() / n;
            g.retrieved_per_session = sessions.iter().map(|s| s.retrieved as f64).sum::<f64>() / n;
            g.deleted_per_session = sessions.iter().map(|s| s.deleted as f64).sum::<f64>() / n;
            for user_sessions in sessions.chunk_by(|a, b| a.user == b.user) {
                let user = user_sessions[0].user;
                let still_open = open_by.get(&(user, gid)).map_or(&[][..], Vec::as_slice);
                let visits = merge_visits(user_sessions);
                for (i, v) in visits.iter().enumerate() {
                    per_visit.push(v.sessions);
                    push(&mut lengths, (v.end - v.start) * compression, v.precise);
                    match visits.get(i + 1) {
                        Some(next) if c.spans_hole(v.end, next.start) => {}
                        Some(next) => push(
                            &mut gaps,
                            time.op(next.start) - time.op(v.end),
                            v.precise && next.precise,
                        ),
                        None if still_open.is_empty() => {
                            gaps.right_censored.push(time.op(c.last) - time.op(v.end));
                        }
                        None => {}
                    }
                }
                g.visits += visits.len();
                for o in still_open {
                    lengths
                        .right_censored
                        .push((c.last - o.start) * compression);
                }
                if let Some(proto) = g.proto {
                    expunged += c.expunges.get(&(user, proto)).copied().unwrap_or(0);
                }
            }
            g.expunged_per_session = expunged as f64 / n;
            per_visit.sort_unstable();
            g.connections = per_visit
                .get(per_visit.len() / 2)
                .copied()
                .unwrap_or(1)
                .max(1);
            if g.proto == Some(Proto::Imap) {
                g.session_length = fit(&lengths, &FAMILIES);
            }
            g.login_interval = fit(&gaps, &FAMILIES);
        }
        let user_days = (g.users as f64 * days).max(f64::MIN_POSITIVE);
        g.logins_per_user_day = g.visits as f64 / user_days;
        for folder in [Folder::Inbox, Folder::Spam] {
            let mut sample = new_sample();
            let mut count = 0usize;
            for user_deliveries in c.deliveries.chunk_by(|a, b| a.user == b.user) {
                if !is_member(user_deliveries[0].user) {
                    continue;
                }
                let times: Vec<(f64, bool)> = user_deliveries
                    .iter()
                    .filter(|d| d.folder == folder)
                    .map(|d| (d.at, d.precise))
                    .collect();
                count += times.len();
                for w in times.windows(2) {
                    if !c.spans_hole(w[0].0, w[1].0) {
                        push(
                            &mut sample,
                            time.op(w[1].0) - time.op(w[0].0),
                            w[0].1 && w[1].1,
                        );
                    }
                }
                if let Some(&(last, _)) = times.last() {
                    sample.right_censored.push(time.op(c.last) - time.op(last));
                }
            }
            let result = fit(&sample, &FAMILIES);
            match folder {
                Folder::Inbox => {
                    g.inbox = result;
                    g.inbox_per_user_day = count as f64 / user_days;
                    if g.proto == Some(Proto::Imap) && count > 0 {
                        g.delete_percent = (100.0 * expunged as f64 / count as f64).min(100.0);
                    }
                }
                _ => {
                    g.spam = result;
                    g.spam_per_user_day = count as f64 / user_days;
                }
            }
        }
        let sizes: Vec<f64> = c
            .sizes
            .iter()
            .filter(|(u, _)| is_member(*u))
            .map(|&(_, s)| s)
            .collect();
        g.sizes = fit(
            &Sample {
                exact: sizes,
                ..Sample::default()
            },
            &FAMILIES,
        );
        groups.push(g);
    }

    let mut recipients: HashMap<u32, u64> = HashMap::new();
    for &r in &c.recipients {
        *recipients.entry(r).or_default() += 1;
    }
    let mut recipients: Vec<(u32, u64)> = recipients.into_iter().collect();
    recipients.sort_unstable();

    Some(Estimates {
        time,
        span,
        precise,
        curve,
        curve_note,
        groups,
        recipients,
        distinct_users: c.user_count(),
    })
}

/// The wall-clock spans of the log with lines: first to last, less the holes.
fn covered_spans(c: &Collector) -> Vec<(f64, f64)> {
    let mut spans = Vec::new();
    let mut from = c.first.unwrap_or(0.0);
    for &(lo, hi) in &c.holes {
        spans.push((from, lo.max(from)));
        from = hi.max(from);
    }
    spans.push((from, c.last.max(from)));
    spans
}

/// Sessions of one user and client that overlap in time: one login of a client with
/// several connections.
struct Visit {
    start: f64,
    end: f64,
    sessions: u32,
    precise: bool,
}

fn merge_visits(sessions: &[&Session]) -> Vec<Visit> {
    let mut visits: Vec<Visit> = Vec::new();
    for s in sessions {
        match visits.last_mut() {
            Some(v) if s.start <= v.end => {
                v.end = v.end.max(s.end);
                v.sessions += 1;
                v.precise &= s.precise;
            }
            _ => visits.push(Visit {
                start: s.start,
                end: s.end,
                sessions: 1,
                precise: s.precise,
            }),
        }
    }
    visits
}

/// Mean number of distinct active users per simulated day (days with at least half a
/// day in the log; the whole log when none has).
fn daily_active(c: &Collector, time: &TimeMap, is_member: &dyn Fn(u32) -> bool, days: f64) -> f64 {
    let mut per_day: HashMap<i64, std::collections::HashSet<u32>> = HashMap::new();
    let day_of = |t: f64| (time.sim(t) / 86400.0).floor() as i64;
    for s in c.sessions.iter().filter(|s| is_member(s.user)) {
        per_day.entry(day_of(s.start)).or_default().insert(s.user);
    }
    for d in c.deliveries.iter().filter(|d| is_member(d.user)) {
        per_day.entry(day_of(d.at)).or_default().insert(d.user);
    }
    let first_day = day_of(c.first.unwrap_or(0.0));
    let last_day = day_of(c.last);
    let covered = |day: i64| {
        let lo = (day as f64 * 86400.0).max(time.sim(c.first.unwrap_or(0.0)));
        let hi = ((day + 1) as f64 * 86400.0).min(time.sim(c.last));
        hi - lo >= 43200.0
    };
    let full: Vec<usize> = (first_day..=last_day)
        .filter(|&d| covered(d))
        .map(|d| per_day.get(&d).map_or(0, |u| u.len()))
        .collect();
    if days < 0.5 || full.is_empty() {
        let all: std::collections::HashSet<u32> = per_day.values().flatten().copied().collect();
        all.len() as f64
    } else {
        full.iter().sum::<usize>() as f64 / full.len() as f64
    }
}

/// Arrivals per simulated hour of day over the time each hour was in the log: from
/// deliveries when there are enough, else from logins. `None` unless every hour of
/// the day is covered.
fn hourly_curve(c: &Collector, time: &TimeMap, span: f64) -> (Option<Curve>, Option<String>) {
    if span < 86400.0 * 0.99 {
        return (
            None,
            Some(format!(
                "the log covers {:.1} simulated hours, less than a day: no [activity] curve",
                span / 3600.0
            )),
        );
    }
    let (times, source): (Vec<f64>, &'static str) = if c.deliveries.len() >= 480 {
        (
            c.deliveries.iter().map(|d| d.at).collect(),
            "LMTP deliveries",
        )
    } else {
        (c.sessions.iter().map(|s| s.start).collect(), "logins")
    };
    let mut counts = [0.0f64; 24];
    for t in &times {
        let h = (time.sim(*t).rem_euclid(86400.0) / 3600.0) as usize;
        counts[h.min(23)] += 1.0;
    }
    // Exposure: simulated seconds of each hour of day inside the log.
    let mut exposure = [0.0f64; 24];
    for (a, b) in covered_spans(c) {
        let (mut s, end) = (time.sim(a), time.sim(b));
        while s < end {
            let h = (s.rem_euclid(86400.0) / 3600.0) as usize;
            let next = ((s / 3600.0).floor() + 1.0) * 3600.0;
            exposure[h.min(23)] += next.min(end) - s;
            s = next;
        }
    }
    if exposure.iter().any(|&e| e < 600.0) {
        return (
            None,
            Some("some hour of the day is not in the log: no [activity] curve".into()),
        );
    }
    let mut hourly = [0.0; 24];
    for h in 0..24 {
        hourly[h] = counts[h] / exposure[h];
    }
    let mean = hourly.iter().sum::<f64>() / 24.0;
    if mean <= 0.0 {
        return (
            None,
            Some("no arrivals to draw an [activity] curve from".into()),
        );
    }
    for v in &mut hourly {
        *v = (*v / mean * 1000.0).round() / 1000.0;
    }
    (
        Some(Curve {
            hourly,
            source,
            events: times.len(),
        }),
        None,
    )
}
