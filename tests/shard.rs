//! Sharded runs (`shard=I/N`, `start_at=`, `imaptest merge`): the shards' plans add
//! up to the unsharded plan, stress shards keep to their own users, and three shard
//! processes started together against the lab merge into exactly the whole run.

mod common;
#[path = "support/shards.rs"]
mod shards;

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::Duration;

fn imaptest(args: &[String], env: &[(&str, String)]) -> Output {
    Command::new(common::imaptest_bin())
        .args(args)
        .envs(env.iter().map(|(k, v)| (*k, v.as_str())))
        .output()
        .unwrap()
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// The rows of a dry-run plan (`time_s,user,username,population,client,action,detail`).
fn plan_rows(path: &Path) -> Vec<Vec<String>> {
    let mut reader = csv::Reader::from_path(path).unwrap();
    reader
        .records()
        .map(|r| r.unwrap().iter().map(str::to_owned).collect())
        .collect()
}

/// Plans `profile` for 30 minutes as one process, then as N = 1, 2, 3 and 7 shards
/// (7 through the Job's environment, the others through `shard=`): the shards' rows
/// together are exactly the unsharded rows, and no user is in two shards.
#[test]
fn sharded_plans_add_up_to_the_unsharded_plan() {
    let dir = tempfile::tempdir().unwrap();
    let profile = common::repo_root().join("profiles/office.toml");
    let plan = |name: &str, extra: &[String], env: &[(&str, String)]| {
        let out = dir.path().join(name);
        let mut args = vec![
            format!("profile={}", profile.display()),
            "dry_run".to_owned(),
            format!("plan={}", out.display()),
            "secs=1800".to_owned(),
            "seed=9".to_owned(),
        ];
        args.extend_from_slice(extra);
        let run = imaptest(&args, env);
        assert!(run.status.success(), "{}", text(&run.stderr));
        plan_rows(&out)
    };
    let mut whole = plan("whole.csv", &[], &[]);
    assert!(
        whole.len() > 1000,
        "a plan worth splitting: {}",
        whole.len()
    );
    let actions: BTreeSet<&str> = whole.iter().map(|r| r[5].as_str()).collect();
    for action in [
        "login",
        "logout",
        "deliver_inbox",
        "deliver_spam",
        "read",
        "reply",
    ] {
        assert!(actions.contains(action), "the plan has {action}s");
    }
    whole.sort();
    for n in [1u32, 2, 3, 7] {
        let mut union = Vec::new();
        let mut shard_of_user: BTreeMap<String, u32> = BTreeMap::new();
        for i in 0..n {
            let name = format!("shard-{i}-of-{n}.csv");
            let rows = if n == 7 {
                let env = [
                    ("JOB_COMPLETION_INDEX", i.to_string()),
                    ("IMAPTEST_SHARDS", n.to_string()),
                ];
                plan(&name, &[], &env)
            } else {
                plan(&name, &[format!("shard={i}/{n}")], &[])
            };
            assert!(!rows.is_empty(), "shard {i}/{n} has work");
            for row in &rows {
                let first = *shard_of_user.entry(row[1].clone()).or_insert(i);
                assert_eq!(
                    first, i,
                    "user {} is in shards {first} and {i} of {n}",
                    row[1]
                );
                // Deliveries run in their recipient's shard: the stride of its index.
                assert_eq!(row[1].parse::<u32>().unwrap() % n, i, "{row:?}");
            }
            union.extend(rows);
        }
        union.sort();
        assert_eq!(union.len(), whole.len(), "{n} shards: as many actions");
        assert!(
            union == whole,
            "{n} shards: the same (time, user, action) rows"
        );
    }
}

/// Stress shards split `clients=` and log in only as their own users: shard 0 of 2
/// alone leaves the odd users' mail untouched (LOGIN, SELECT, LOGOUT only).
#[test]
fn stress_shards_log_in_only_as_their_own_users() {
    let lab = common::lab();
    let dir = tempfile::tempdir().unwrap();
    let users: Vec<String> = (0..6).map(|_| common::fresh_user()).collect();
    let userfile = dir.path().join("users.txt");
    std::fs::write(&userfile, users.join("\n") + "\n").unwrap();
    let stress = |shard: &str| {
        let summary = dir
            .path()
            .join(format!("stress-{}.json", shard.replace('/', "-")));
        let args = [
            format!("host={}", lab.host),
            format!("port={}", lab.imap_port),
            format!("userfile={}", userfile.display()),
            format!("pass={}", lab.user_password),
            "clients=5".into(),
            "secs=3".into(),
            "-".into(),
            format!("shard={shard}"),
            format!("summary={}", summary.display()),
        ];
        let run = imaptest(&args, &[]);
        assert!(run.status.success(), "{}", text(&run.stderr));
        shards::read_summary(&summary)
    };
    let homes = || -> Vec<bool> { users.iter().map(|u| lab.user_home(u).exists()).collect() };
    assert_eq!(homes(), [false; 6], "fresh users have no home yet");
    let first = stress("0/2");
    assert_eq!(homes(), [true, false, true, false, true, false]);
    let second = stress("1/2");
    assert_eq!(homes(), [true; 6]);
    for (summary, index) in [(&first, 0), (&second, 1)] {
        let shard = summary.shard.expect("the summary names its shard");
        assert_eq!((shard.index, shard.count), (index, 2));
        let logins = summary
            .totals
            .command(imaptest::ops::Op::Imap(imaptest::states::State::Login))
            .expect("logins");
        assert!(logins.ok > 10, "{logins:?}");
    }
    // clients=5 over 2 shards: 3 and 2 connection slots.
    assert!(
        first.totals.connections.peak_open <= 3,
        "{:?}",
        first.totals.connections
    );
    assert!(
        second.totals.connections.peak_open <= 2,
        "{:?}",
        second.totals.connections
    );
}

/// A shard launched after `start_at` starts at once and says how late it is, on
/// stderr and in its summary.
#[test]
fn a_late_shard_says_how_late_it_started() {
    let lab = common::lab();
    let dir = tempfile::tempdir().unwrap();
    let summary = dir.path().join("late.json");
    let start_at = shards::start_at_unix(Duration::ZERO) - 31;
    let run = imaptest(
        &[
            format!("host={}", lab.host),
            format!("port={}", lab.imap_port),
            format!("user={}", common::fresh_user()),
            format!("pass={}", lab.user_password),
            "clients=1".into(),
            "secs=1".into(),
            "-".into(),
            format!("start_at={start_at}"),
            format!("summary={}", summary.display()),
        ],
        &[],
    );
    let stderr = text(&run.stderr);
    assert!(run.status.success(), "{stderr}");
    assert!(stderr.contains("Warning: starting 3"), "{stderr}");
    let summary = shards::read_summary(&summary);
    let late = summary.started_late_secs.unwrap();
    assert!(late >= 30.0, "{late}");
    assert_eq!(summary.start_at.unwrap().unix, start_at as f64);
    assert_eq!(summary.shard, None, "start_at works without shards too");
}

/// Splits that would put two shards on one mailbox, or leave a shard nothing, are
/// refused before any connection.
#[test]
fn impossible_splits_are_refused() {
    let refused = |args: &[&str], needle: &str| {
        let args: Vec<String> = args.iter().map(|a| (*a).to_owned()).collect();
        let run = imaptest(&args, &[]);
        let stderr = text(&run.stderr);
        assert_eq!(run.status.code(), Some(89), "{args:?}: {stderr}");
        assert!(stderr.contains(needle), "{args:?}: {stderr}");
        assert_eq!(stderr.lines().count(), 1, "{stderr}");
    };
    // Port 9 (discard) is never reached: the split is checked first.
    let host = ["host=127.0.0.1", "port=9"];
    refused(
        &[&host[..], &["user=alice", "shard=0/2"]].concat(),
        "user=alice names one user: it cannot be split over 2 shards",
    );
    refused(
        &[&host[..], &["user=u%d", "users=3", "shard=0/4"]].concat(),
        "3 users cannot be split over 4 shards",
    );
    refused(
        &[&host[..], &["user=u%d", "clients=2", "shard=0/3"]].concat(),
        "clients=2 cannot be split over 3 shards",
    );
    let office = common::repo_root().join("profiles/office.toml");
    refused(
        &[&format!("profile={}", office.display()), "shard=0/200"],
        "users cannot be split over 200 shards: every shard needs at least one",
    );
    refused(
        &[&format!("profile={}", office.display()), "shard=0/25"],
        "[servers.lmtp] max_parallel = 20 cannot be split over 25 shards",
    );
}

/// Three shard processes started together with `start_at=` against the lab, with
/// deliveries to one or three recipients: each delivery runs once, in its first
/// recipient's shard, and every recipient is counted once (Dovecot stored exactly what
/// the shards reported); the merge is the sum of the shards, with histograms equal to
/// the one built from all their seconds.
#[test]
fn three_shards_started_together_merge_into_the_whole_run() {
    let dir = tempfile::tempdir().unwrap();
    let (profile, users) = shards::lab_profile(dir.path(), 9, "4s", 6, "{ 1 = 50, 3 = 50 }");
    let mbox = shards::mbox(dir.path());
    let lab = common::lab();
    let start_at = shards::start_at_unix(Duration::from_secs(3));
    let children = (0..3)
        .map(|i| {
            let summary = dir.path().join(format!("shard-{i}.json"));
            let child = Command::new(common::imaptest_bin())
                .args([
                    format!("profile={}", profile.display()),
                    format!("host={}", lab.host),
                    format!("pass={}", lab.user_password),
                    format!("mbox={}", mbox.display()),
                    format!("shard={i}/3"),
                    format!("start_at={start_at}"),
                    format!("summary={}", summary.display()),
                ])
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap();
            (format!("shard {i}/3"), child)
        })
        .collect();
    let outputs = shards::wait_all(children);
    shards::assert_clean(&outputs);
    let summaries: Vec<_> = (0..3)
        .map(|i| shards::read_summary(&dir.path().join(format!("shard-{i}.json"))))
        .collect();

    let merged_path = dir.path().join("merged.json");
    let merge = imaptest(
        &[
            "merge".into(),
            dir.path().join("shard-0.json").display().to_string(),
            dir.path().join("shard-1.json").display().to_string(),
            dir.path().join("shard-2.json").display().to_string(),
            format!("out={}", merged_path.display()),
        ],
        &[],
    );
    assert!(merge.status.success(), "{}", text(&merge.stderr));
    assert!(merge.stdout.is_empty(), "out= takes the document");
    let merged = shards::read_summary(&merged_path);

    for (i, summary) in summaries.iter().enumerate() {
        let shard = summary.shard.unwrap();
        assert_eq!((shard.index, shard.count), (i as u32, 3));
        let at = summary.start_at.as_ref().expect("start_at recorded");
        assert_eq!(at.unix, start_at as f64);
        assert!(summary.started_late_secs.is_some());
        // Waited for start_at (the slack covers the monotonic and wall clocks
        // drifting apart during the wait).
        assert!(
            summary.start.unix >= start_at as f64 - 0.05,
            "shard {i} started before start_at"
        );
        let delivered = summary.totals.deliveries.as_ref().unwrap().delivered;
        assert!(delivered > 0, "shard {i} delivered nothing");
    }
    let all: Vec<&String> = users.iter().collect();
    let d = merged.totals.deliveries.as_ref().unwrap();
    assert_eq!(
        shards::stored(&all),
        d.delivered,
        "merged deliveries vs Dovecot"
    );
    assert_eq!(d.offered_recipients, d.delivered);
    assert!(
        d.offered_recipients > d.offered,
        "some deliveries had several recipients: {d:?}"
    );
    shards::assert_merged_adds_up(&merged, &summaries);

    let info = merged.merged.as_ref().expect("merge info");
    assert_eq!((info.shard_count, info.shards.len()), (3, 3));
    assert!(info.missing.is_empty() && info.incomplete.is_empty());
    assert!(merged.complete);
    assert_eq!(merged.exit_status, 0);
    assert_eq!(merged.slo.len(), 1);
    assert!(merged.slo[0].pass, "{:?}", merged.slo);
    // One timeline on the wall clock, from the earliest shard's first second.
    let first = merged.timeline.seconds.first().unwrap();
    let earliest = summaries
        .iter()
        .map(|s| s.timeline.seconds[0].unix)
        .min()
        .unwrap();
    assert_eq!(first.unix, earliest);
    assert_eq!(first.elapsed, 1);

    // Without shard 1, the merge names it and exits 7.
    let partial = imaptest(
        &[
            "merge".into(),
            dir.path().join("shard-0.json").display().to_string(),
            dir.path().join("shard-2.json").display().to_string(),
        ],
        &[],
    );
    assert_eq!(partial.status.code(), Some(7), "{}", text(&partial.stderr));
    assert!(text(&partial.stderr).contains("missing shards: 1"));
    let partial: imaptest::summary::RunSummary =
        imaptest::summary::RunSummary::parse("stdout", &text(&partial.stdout)).unwrap();
    assert!(!partial.complete);
    assert_eq!(partial.merged.unwrap().missing, [1]);
}
