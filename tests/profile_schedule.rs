//! The scheduler on paused tokio time: realised intervals follow the configured
//! distributions (Kolmogorov–Smirnov, statrs), realised rates over a simulated hour are
//! within 2 % of the profile, runs are reproducible and shardable, ramp-up spreads
//! first logins, and LMTP deliveries beyond `max_parallel` queue instead of dropping.

use std::collections::HashMap;
use std::path::Path;
use std::time::Duration;

use imaptest::profile::distribution::{empirical_cdf, imaptest_cdf};
use imaptest::profile::schedule::{Action, Mailbox, Schedule, ScheduleOptions, ScheduledAction};
use imaptest::profile::timeline::{self, LmtpQueue, Precision};
use imaptest::profile::{self, Distribution, Profile};
use statrs::distribution as sd;
use statrs::statistics::{Max, Min};
use statrs::stats_tests::NaNPolicy;
use statrs::stats_tests::ks_test::{KSOneSampleAlternativeMethod, ks_onesample};

fn load(text: &str, dir: &Path) -> Profile {
    let path = dir.join("p.toml");
    std::fs::write(&path, text).unwrap();
    profile::load(&path).unwrap_or_else(|e| panic!("{e}")).0
}

/// Deliveries only: users never log in, each gets INBOX mail at `interval`.
fn delivery_profile(users: u32, interval: &str, dir: &Path) -> Profile {
    load(
        &format!(
            r#"
[run]
total_users = {users}
seed = 5

[[population]]
name = "p"
share = 100
username = "u%n"
clients = [{{ client = "none" }}]
inbox_delivery = {interval}

[[client]]
name = "none"
connections = 0
"#
        ),
        dir,
    )
}

/// Runs the schedule on (paused) tokio time and returns every action with the instant
/// it was handed over, in seconds since the start, and the largest lateness.
async fn realise(profile: &Profile, until: Duration) -> (Vec<(f64, ScheduledAction)>, Duration) {
    let schedule = Schedule::new(
        profile,
        ScheduleOptions {
            until: Some(until),
            ..ScheduleOptions::default()
        },
    );
    let start = tokio::time::Instant::now();
    let mut seen = Vec::new();
    let mut worst = Duration::ZERO;
    timeline::run(schedule, start, Precision::Timer, |action, lateness| {
        worst = worst.max(lateness);
        seen.push(((tokio::time::Instant::now() - start).as_secs_f64(), action));
    })
    .await;
    (seen, worst)
}

/// Gaps between consecutive INBOX deliveries of each user.
fn delivery_gaps(seen: &[(f64, ScheduledAction)]) -> Vec<f64> {
    let mut last: HashMap<u32, f64> = HashMap::new();
    let mut gaps = Vec::new();
    for (t, a) in seen {
        if let Action::Deliver {
            to: Mailbox::Inbox, ..
        } = a.action
            && let Some(prev) = last.insert(a.user, *t)
        {
            gaps.push(t - prev);
        }
    }
    gaps
}

/// A CDF given as a closure, for KS against distributions statrs lacks.
struct Cdf<F: Fn(f64) -> f64>(F);
impl<F: Fn(f64) -> f64> Min<f64> for Cdf<F> {
    fn min(&self) -> f64 {
        0.0
    }
}
impl<F: Fn(f64) -> f64> Max<f64> for Cdf<F> {
    fn max(&self) -> f64 {
        f64::INFINITY
    }
}
impl<F: Fn(f64) -> f64> sd::ContinuousCDF<f64, f64> for Cdf<F> {
    fn cdf(&self, x: f64) -> f64 {
        (self.0)(x)
    }
}

fn ks<T: sd::ContinuousCDF<f64, f64>>(gaps: Vec<f64>, dist: &T) -> (f64, f64) {
    ks_onesample(
        gaps,
        dist,
        KSOneSampleAlternativeMethod::TwoSidedAsymptotic,
        NaNPolicy::Error,
    )
    .unwrap()
}

#[tokio::test(start_paused = true)]
async fn realised_intervals_pass_kolmogorov_smirnov() {
    let dir = tempfile::tempdir().unwrap();
    // Observed values for the empirical distribution.
    let observed: Vec<f64> = (0..400)
        .map(|i| 2.0 + ((i * 7919) % 400) as f64 * 0.05 + (i % 3) as f64)
        .collect();
    let csv: String = std::iter::once("secs".to_owned())
        .chain(observed.iter().map(|v| v.to_string()))
        .collect::<Vec<_>>()
        .join("\n");
    std::fs::write(dir.path().join("observed.csv"), csv).unwrap();
    let mut sorted = observed.clone();
    sorted.sort_by(f64::total_cmp);

    type Check = Box<dyn Fn(Vec<f64>) -> (f64, f64)>;
    let cases: Vec<(&str, &str, Check)> = vec![
        (
            "exponential",
            r#"{ dist = "exponential", mean = "10s" }"#,
            Box::new(|g| ks(g, &sd::Exp::new(0.1).unwrap())),
        ),
        (
            "per_day",
            r#"{ per_day = 8640 }"#,
            Box::new(|g| ks(g, &sd::Exp::new(0.1).unwrap())),
        ),
        (
            "uniform",
            r#"{ dist = "uniform", min = "5s", max = "15s" }"#,
            Box::new(|g| ks(g, &sd::Uniform::new(5.0, 15.0).unwrap())),
        ),
        (
            "normal",
            r#"{ dist = "normal", mean = "10s", std_dev = "2s" }"#,
            Box::new(|g| ks(g, &sd::Normal::new(10.0, 2.0).unwrap())),
        ),
        (
            "lognormal",
            r#"{ dist = "lognormal", mean = "10s", std_dev = "5s" }"#,
            Box::new(|g| {
                let (mu, sigma) = Distribution::lognormal_params(10.0, 5.0);
                ks(g, &sd::LogNormal::new(mu, sigma).unwrap())
            }),
        ),
        (
            "weibull",
            r#"{ dist = "weibull", shape = 1.5, scale = "10s" }"#,
            Box::new(|g| ks(g, &sd::Weibull::new(1.5, 10.0).unwrap())),
        ),
        (
            "pareto",
            r#"{ dist = "pareto", shape = 2.5, scale = "4s" }"#,
            Box::new(|g| ks(g, &sd::Pareto::new(4.0, 2.5).unwrap())),
        ),
        (
            "gamma",
            r#"{ dist = "gamma", shape = 2, scale = "5s" }"#,
            Box::new(|g| ks(g, &sd::Gamma::new(2.0, 1.0 / 5.0).unwrap())),
        ),
        (
            "empirical",
            r#"{ dist = "empirical", csv = "observed.csv", column = "secs" }"#,
            Box::new(move |g| ks(g, &Cdf(|x| empirical_cdf(&sorted, x)))),
        ),
        (
            "imaptest",
            r#"{ dist = "imaptest", mean = "10s" }"#,
            Box::new(|g| ks(g, &Cdf(|x| imaptest_cdf(10.0, x)))),
        ),
    ];
    let mut report = Vec::new();
    for (name, interval, check) in cases {
        let p = delivery_profile(100, interval, dir.path());
        let (seen, worst) = realise(&p, Duration::from_secs(600)).await;
        assert!(
            worst <= Duration::from_millis(1),
            "{name}: lateness {worst:?} on paused time"
        );
        let gaps = delivery_gaps(&seen);
        assert!(gaps.len() >= 3000, "{name}: only {} intervals", gaps.len());
        let n = gaps.len();
        let (d, p_value) = check(gaps);
        report.push(format!("{name:<12} n={n:<5} D={d:.4} p={p_value:.3}"));
        assert!(
            p_value > 0.01,
            "{name}: KS rejects the configured distribution: D={d} p={p_value}"
        );
    }
    eprintln!("KS results:\n  {}", report.join("\n  "));

    // The test has power: exponential gaps are not exponential with another mean, nor uniform.
    let p = delivery_profile(100, r#"{ dist = "exponential", mean = "10s" }"#, dir.path());
    let (seen, _) = realise(&p, Duration::from_secs(600)).await;
    let gaps = delivery_gaps(&seen);
    assert!(ks(gaps.clone(), &sd::Exp::new(1.0 / 11.0).unwrap()).1 < 1e-4);
    assert!(ks(gaps, &sd::Uniform::new(0.0, 20.0).unwrap()).1 < 1e-6);
}

#[tokio::test(start_paused = true)]
async fn realised_rates_over_a_simulated_hour_are_within_two_percent() {
    let dir = tempfile::tempdir().unwrap();
    let p = load(
        r#"
[run]
total_users = 1000
seed = 9

[[population]]
name = "p"
share = 100
username = "u%n"
clients = [{ client = "poller" }]
inbox_delivery = { per_hour = 30 }
spam_delivery = { dist = "gamma", shape = 2, scale = "1min" }
send = { dist = "uniform", min = "1min", max = "5min" }

[[client]]
name = "poller"
idle = false
poll_interval = { dist = "lognormal", mean = "1min", std_dev = "30s" }
"#,
        dir.path(),
    );
    let (seen, _) = realise(&p, Duration::from_secs(3600)).await;
    let mut counts: HashMap<&str, f64> = HashMap::new();
    for (_, a) in &seen {
        *counts.entry(a.action.name()).or_default() += 1.0;
    }
    // Expected per user-hour: 30 deliveries, 3600/120 spam, 3600/180 drafts, 60 polls.
    for (name, per_user_hour) in [
        ("deliver_inbox", 30.0),
        ("deliver_spam", 30.0),
        ("write_draft", 20.0),
        ("check_mail", 60.0),
    ] {
        let expected = per_user_hour * 1000.0;
        let got = counts.get(name).copied().unwrap_or(0.0);
        let err = (got - expected).abs() / expected;
        eprintln!("{name}: {got} (expected {expected}, {:.2} %)", err * 100.0);
        assert!(
            err < 0.02,
            "{name}: {got} vs {expected} ({:.2} %)",
            err * 100.0
        );
    }
}

#[tokio::test(start_paused = true)]
async fn time_compression_and_activity_curve_keep_daily_rates() {
    let dir = tempfile::tempdir().unwrap();
    let mut hourly = vec![1.0; 24];
    hourly[9] = 5.0;
    hourly[3] = 0.0;
    let p = load(
        &format!(
            r#"
[run]
total_users = 2000
seed = 2
time_compression = 24

[activity]
start = "00:00"
hourly = {hourly:?}

[[population]]
name = "p"
share = 100
username = "u%n"
clients = [{{ client = "none" }}]
inbox_delivery = {{ per_day = 24 }}

[[client]]
name = "none"
connections = 0
"#
        ),
        dir.path(),
    );
    // One simulated day = one real hour.
    let (seen, _) = realise(&p, Duration::from_secs(3600)).await;
    let mut per_hour = [0f64; 24];
    for (t, _) in &seen {
        per_hour[((t / 150.0) as usize).min(23)] += 1.0;
    }
    let total: f64 = per_hour.iter().sum();
    let expected = 24.0 * 2000.0;
    assert!(
        (total - expected).abs() / expected < 0.02,
        "{total} vs {expected}"
    );
    // Relative hourly activity sums to 27.
    let normal_hour = expected / 27.0; // 22 hours at 1, one at 5, one at 0
    assert_eq!(per_hour[3], 0.0, "inactive hour");
    assert!(
        (per_hour[9] / (5.0 * normal_hour) - 1.0).abs() < 0.03,
        "{per_hour:?}"
    );
    assert!(
        (per_hour[15] / normal_hour - 1.0).abs() < 0.06,
        "{per_hour:?}"
    );
}

fn sample_profile(dir: &Path) -> Profile {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("profiles/office.toml");
    let _ = dir;
    profile::load(&path).unwrap().0
}

#[test]
fn schedules_are_reproducible_and_shardable() {
    let dir = tempfile::tempdir().unwrap();
    let p = sample_profile(dir.path());
    let opts = |seed, shard| ScheduleOptions {
        seed: Some(seed),
        until: Some(Duration::from_secs(1800)),
        shard,
    };
    let full: Vec<ScheduledAction> = Schedule::new(&p, opts(4, None)).collect();
    assert!(full.len() > 1000);
    assert!(full.windows(2).all(|w| w[0].at <= w[1].at), "time order");
    assert_eq!(full, Schedule::new(&p, opts(4, None)).collect::<Vec<_>>());
    assert_ne!(full, Schedule::new(&p, opts(5, None)).collect::<Vec<_>>());
    let shards = 3;
    let mut union = 0;
    for i in 0..shards {
        let part: Vec<ScheduledAction> = Schedule::new(&p, opts(4, Some((i, shards)))).collect();
        let expected: Vec<ScheduledAction> = full
            .iter()
            .filter(|a| a.user % shards == i)
            .copied()
            .collect();
        assert_eq!(part, expected, "shard {i}/{shards}");
        union += part.len();
    }
    assert_eq!(union, full.len());
}

#[test]
fn rampup_spreads_first_logins() {
    let dir = tempfile::tempdir().unwrap();
    let p = load(
        r#"
[run]
total_users = 100
rampup = "60s"

[[population]]
name = "p"
share = 100
username = "u%n"
clients = [{ client = "c" }]

[[client]]
name = "c"
"#,
        dir.path(),
    );
    let logins: Vec<ScheduledAction> = Schedule::new(&p, ScheduleOptions::default())
        .filter(|a| matches!(a.action, Action::Login { .. }))
        .take(100)
        .collect();
    for (k, a) in logins.iter().enumerate() {
        assert_eq!(a.user, k as u32);
        assert_eq!(a.at, Duration::from_millis(600 * (k as u64 + 1)));
    }
}

#[test]
fn mail_actions_follow_deliveries() {
    let dir = tempfile::tempdir().unwrap();
    let p = load(
        r#"
[run]
total_users = 50
seed = 1

[[population]]
name = "p"
share = 100
username = "u%n"
clients = [{ client = "c" }]
inbox_delivery = "1min"
action_delay = "10s"
action_repeat_delay = "5s"
write_duration = "30s"
reply = 100

[[client]]
name = "c"
"#,
        dir.path(),
    );
    let actions: Vec<ScheduledAction> = Schedule::new(
        &p,
        ScheduleOptions {
            until: Some(Duration::from_secs(600)),
            ..ScheduleOptions::default()
        },
    )
    .filter(|a| a.user == 7)
    .collect();
    let at = |want: fn(&Action) -> bool| actions.iter().find(|a| want(&a.action)).unwrap().at;
    let delivered = at(|a| matches!(a, Action::Deliver { msg: 1, .. }));
    assert_eq!(
        at(|a| matches!(a, Action::Read { msg: 1 })),
        delivered + Duration::from_secs(10)
    );
    assert_eq!(
        at(|a| matches!(a, Action::Reply { msg: 1, draft: 1 })),
        delivered + Duration::from_secs(15)
    );
    assert_eq!(
        at(|a| matches!(a, Action::SendDraft { draft: 1 })),
        delivered + Duration::from_secs(45)
    );
}

#[tokio::test(start_paused = true)]
async fn lmtp_deliveries_beyond_max_parallel_queue_and_report_lateness() {
    let queue = LmtpQueue::new(Some(2));
    let mut tasks = Vec::new();
    for _ in 0..5 {
        let queue = queue.clone();
        tasks.push(tokio::spawn(async move {
            let slot = queue.acquire().await;
            tokio::time::sleep(Duration::from_secs(1)).await;
            slot.queued
        }));
    }
    tokio::task::yield_now().await;
    assert_eq!(queue.waiting(), 3);
    let mut queued = Vec::new();
    for t in tasks {
        queued.push(t.await.unwrap().as_secs());
    }
    queued.sort();
    assert_eq!(
        queued,
        vec![0, 0, 1, 1, 2],
        "every delivery ran; the late ones report their wait"
    );
    let unlimited = LmtpQueue::new(None);
    assert_eq!(unlimited.acquire().await.queued, Duration::ZERO);
}

/// The schedule is `'static + Send`: the blocking dispatcher runs it on its own thread
/// in real time and hands actions over in order, none early.
#[test]
fn blocking_dispatcher_runs_on_its_own_thread() {
    let dir = tempfile::tempdir().unwrap();
    let p = delivery_profile(
        20,
        r#"{ dist = "exponential", mean = "100ms" }"#,
        dir.path(),
    );
    let schedule = Schedule::new(
        &p,
        ScheduleOptions {
            until: Some(Duration::from_millis(300)),
            ..ScheduleOptions::default()
        },
    );
    let stop = std::sync::atomic::AtomicBool::new(false);
    let worker = std::thread::spawn(move || {
        let start = std::time::Instant::now();
        let mut seen = Vec::new();
        let n = timeline::run_blocking(
            schedule,
            start,
            Duration::ZERO,
            &stop,
            |action, lateness| {
                let elapsed = start.elapsed();
                assert!(elapsed >= action.at, "handed over early");
                seen.push((action.at, lateness));
            },
        );
        (n, seen)
    });
    let (n, seen) = worker.join().unwrap();
    assert!(n > 20, "{n} actions");
    assert_eq!(n as usize, seen.len());
    assert!(seen.windows(2).all(|w| w[0].0 <= w[1].0));
    // Stopping ends the dispatcher before the next action.
    let stop = std::sync::atomic::AtomicBool::new(true);
    let schedule = Schedule::new(&p, ScheduleOptions::default());
    assert_eq!(
        timeline::run_blocking(
            schedule,
            std::time::Instant::now() + Duration::from_secs(3600),
            Duration::ZERO,
            &stop,
            |_, _| {}
        ),
        0
    );
}
