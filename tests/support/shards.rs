//! Sharded profile runs against the lab: a small profile of fresh users, shard
//! processes started together, and the checks that a merge adds the shards up exactly.
//! Used by `tests/shard.rs` and `tests/kubernetes.rs` (with `mod common;` beside it).

#![allow(dead_code)]

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Output};
use std::time::{Duration, Instant, SystemTime};

use hdrhistogram::Histogram;
use imaptest::summary::histogram::decode;
use imaptest::summary::timeline::SecondLatency;
use imaptest::summary::{LatencySummary, RunSummary, Second};

use super::common;

/// How long a sharded lab run may take before the test gives up on it: the runs last
/// a few seconds, so this only catches a hang.
pub const LIVENESS: Duration = Duration::from_secs(180);

/// A profile of `users` fresh lab users (a user file, one IDLE connection each) with
/// INBOX deliveries of `recipients` (a profile's `delivery_recipients`) and reads,
/// lasting `duration`; LMTP parallelism `max_parallel` for the whole run. Returns the
/// profile's path and the users in file order (user `k` belongs to shard `k % N`).
pub fn lab_profile(
    dir: &Path,
    users: usize,
    duration: &str,
    max_parallel: u32,
    recipients: &str,
) -> (PathBuf, Vec<String>) {
    let lab = common::lab();
    let names: Vec<String> = (0..users).map(|_| common::fresh_user()).collect();
    let userfile = dir.join("users.txt");
    std::fs::write(&userfile, names.join("\n") + "\n").unwrap();
    let profile = format!(
        r#"
[run]
duration = "{duration}"
rampup = "1s"
seed = 17

[servers.imap]
port = {imap}
[servers.lmtp]
port = {lmtp}
max_parallel = {max_parallel}

[[population]]
name = "lab"
count = {users}
userfile = "{userfile}"
clients = [{{ client = "desktop" }}]
inbox_delivery = {{ dist = "exponential", mean = "600ms" }}
delivery_recipients = {recipients}
action_delay = "100ms"

[[client]]
name = "desktop"
connections = 1
fetch_on_arrival = "UID FLAGS RFC822.SIZE"
fetch_on_open = "BODY.PEEK[]"

[[slo]]
objective = "lmtp.delivered_ratio >= 1"
"#,
        imap = lab.imap_port,
        lmtp = lab.lmtp_port,
        userfile = userfile.display(),
    );
    let path = dir.join("profile.toml");
    std::fs::write(&path, profile).unwrap();
    (path, names)
}

/// A test mbox in `dir`.
pub fn mbox(dir: &Path) -> PathBuf {
    let path = dir.join("test.mbox");
    let status = std::process::Command::new(common::imaptest_bin())
        .args(["mbox-gen", &format!("out={}", path.display()), "count=40"])
        .status()
        .unwrap();
    assert!(status.success());
    path
}

/// An instant `lead` from now, on a whole second, as unix seconds.
pub fn start_at_unix(lead: Duration) -> u64 {
    let now = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap();
    (now + lead).as_secs() + 1
}

/// Waits for every child (at most [`LIVENESS`] in all, then kills the rest and fails).
pub fn wait_all(children: Vec<(String, Child)>) -> Vec<(String, Output)> {
    let deadline = Instant::now() + LIVENESS;
    let mut outputs = Vec::new();
    for (name, mut child) in children {
        loop {
            if child.try_wait().unwrap().is_some() {
                break;
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                panic!("{name} did not end within {LIVENESS:?}");
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        outputs.push((name, child.wait_with_output().unwrap()));
    }
    outputs
}

/// Fails with the output of any run that did not exit 0 or printed an error.
pub fn assert_clean(outputs: &[(String, Output)]) {
    for (name, out) in outputs {
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            out.status.success() && !stderr.contains("Error:"),
            "{name}: {:?}\nstdout:\n{}\nstderr:\n{stderr}",
            out.status,
            String::from_utf8_lossy(&out.stdout)
        );
    }
}

pub fn read_summary(path: &Path) -> RunSummary {
    RunSummary::read(path).unwrap_or_else(|e| panic!("{e}"))
}

/// INBOX messages Dovecot stored for `users`.
pub fn stored(users: &[&String]) -> u64 {
    users.iter().map(|u| common::messages(u, "INBOX")).sum()
}

/// The checks every merge must pass: each op's and the deliveries' counts are the sum
/// of the shards', and each histogram is the one built from every second every shard
/// recorded (and from the shards' own totals).
pub fn assert_merged_adds_up(merged: &RunSummary, shards: &[RunSummary]) {
    let mut ops: Vec<(String, String)> = merged
        .totals
        .commands
        .iter()
        .map(|c| (c.protocol.clone(), c.name.clone()))
        .collect();
    for shard in shards {
        for c in &shard.totals.commands {
            assert!(
                ops.contains(&(c.protocol.clone(), c.name.clone())),
                "{}.{} is missing from the merge",
                c.protocol,
                c.name
            );
        }
    }
    ops.sort();
    for (protocol, name) in &ops {
        let key = format!("{protocol}.{name}");
        let find = |s: &RunSummary| {
            s.totals
                .commands
                .iter()
                .find(|c| &c.protocol == protocol && &c.name == name)
                .cloned()
        };
        let m = find(merged).unwrap();
        let each: Vec<_> = shards.iter().filter_map(find).collect();
        let sum = |f: fn(&imaptest::summary::CommandTotals) -> u64| each.iter().map(f).sum::<u64>();
        assert_eq!(
            (m.count, m.ok, m.no, m.bad, m.failed),
            (
                sum(|c| c.count),
                sum(|c| c.ok),
                sum(|c| c.no),
                sum(|c| c.bad),
                sum(|c| c.failed)
            ),
            "{key}: merged counts are the sum of the shards'"
        );
        // Every second of every shard, added into one histogram.
        let from_seconds =
            seconds_histogram(shards, |second| second.ops.get(&key)?.latency.as_ref());
        let from_totals = histogram_of(each.iter().filter_map(|c| c.latency.histogram.clone()));
        assert_same_latency(&key, &m.latency, &from_seconds);
        assert_eq!(
            from_totals, from_seconds,
            "{key}: shards' totals vs their seconds"
        );
    }
    // The timelines line up by unix second: each merged second is the sum of the
    // shards' seconds that ended in it.
    let mut per_second: BTreeMap<(u64, String), u64> = BTreeMap::new();
    for shard in shards {
        for second in &shard.timeline.seconds {
            for (key, op) in &second.ops {
                *per_second.entry((second.unix, key.clone())).or_default() += op.count;
            }
        }
    }
    let merged_per_second: BTreeMap<(u64, String), u64> = merged
        .timeline
        .seconds
        .iter()
        .flat_map(|s| s.ops.iter().map(|(k, op)| ((s.unix, k.clone()), op.count)))
        .collect();
    assert_eq!(merged_per_second, per_second, "per unix second and op");
    let d = merged
        .totals
        .deliveries
        .as_ref()
        .expect("merged deliveries");
    let shard_deliveries: Vec<_> = shards
        .iter()
        .map(|s| {
            s.totals
                .deliveries
                .clone()
                .unwrap_or_else(|| panic!("a shard without deliveries"))
        })
        .collect();
    let sum = |f: fn(&imaptest::summary::DeliveryTotals) -> u64| {
        shard_deliveries.iter().map(f).sum::<u64>()
    };
    assert_eq!(
        (
            d.offered,
            d.offered_recipients,
            d.delivered,
            d.refused,
            d.failed
        ),
        (
            sum(|d| d.offered),
            sum(|d| d.offered_recipients),
            sum(|d| d.delivered),
            sum(|d| d.refused),
            sum(|d| d.failed)
        ),
        "merged deliveries are the sum of the shards'"
    );
    let seen = seconds_histogram(shards, |second| {
        second.deliveries.as_ref()?.end_to_end.as_ref()
    });
    assert_same_latency("delivery end-to-end", &d.end_to_end, &seen);
    assert_eq!(
        merged.totals.errors.total,
        shards.iter().map(|s| s.totals.errors.total).sum::<u64>()
    );
}

/// One latency of every second of every shard, added into one histogram.
fn seconds_histogram(
    shards: &[RunSummary],
    latency: impl Fn(&Second) -> Option<&SecondLatency>,
) -> Histogram<u64> {
    histogram_of(shards.iter().flat_map(|s| {
        s.timeline
            .seconds
            .iter()
            .filter_map(&latency)
            .map(|l| l.histogram.clone())
    }))
}

/// The histograms (base64 V2) added into one.
fn histogram_of(encoded: impl Iterator<Item = String>) -> Histogram<u64> {
    let mut all = imaptest::metrics::new_histogram();
    for text in encoded {
        all.add(decode(&text).unwrap()).unwrap();
    }
    all
}

/// The merged latency is exactly the histogram built from the samples: same
/// histogram, same percentiles.
fn assert_same_latency(what: &str, merged: &LatencySummary, samples: &Histogram<u64>) {
    assert_eq!(merged.count, samples.len(), "{what}: count");
    if samples.is_empty() {
        return;
    }
    let histogram = decode(merged.histogram.as_deref().expect("a histogram")).unwrap();
    assert_eq!(&histogram, samples, "{what}: merged histogram");
    let percentiles = BTreeMap::from([
        ("p50", (merged.p50_us, 0.5)),
        ("p90", (merged.p90_us, 0.9)),
        ("p99", (merged.p99_us, 0.99)),
        ("p99.9", (merged.p999_us, 0.999)),
    ]);
    for (name, (value, q)) in percentiles {
        assert_eq!(value, samples.value_at_quantile(q), "{what}: {name}");
    }
    assert_eq!(merged.max_us, samples.max(), "{what}: max");
}
