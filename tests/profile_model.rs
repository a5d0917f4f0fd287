//! The TOML profile and the legacy `profile.conf`: loading, conversion, errors with
//! file:line:col, the example profiles, and dry-run plans.

use std::path::{Path, PathBuf};
use std::time::Duration;

use imaptest::profile::plan::{PlanOptions, write_plan, write_plan_file};
use imaptest::profile::schedule::{Schedule, ScheduleOptions};
use imaptest::profile::{self, Profile, ProfileError, convert, legacy};

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn plan_text(profile: &Profile, seed: u64, secs: u64) -> String {
    let mut out = Vec::new();
    let opts = PlanOptions {
        schedule: ScheduleOptions {
            seed: Some(seed),
            until: Some(Duration::from_secs(secs)),
            shard: None,
        },
    };
    write_plan(profile, &opts, &mut out).unwrap();
    String::from_utf8(out).unwrap()
}

fn toml_err(text: &str) -> String {
    let err = profile::from_toml_str(text, Path::new("bad.toml")).unwrap_err();
    err.to_string()
}

fn legacy_err(text: &str) -> String {
    legacy::from_str(text, Path::new("bad.conf"))
        .unwrap_err()
        .to_string()
}

/// `profiles/upstream.toml` is the conversion of ImapTest's shipped `profile.conf`
/// (regenerate with `IMAPTEST_UPDATE_PROFILES=1`).
#[test]
fn upstream_profile_converts_to_the_committed_toml() {
    for (conf, toml_name) in [
        ("profile.conf", "upstream.toml"),
        ("pop3-profile.conf", "upstream-pop3.toml"),
    ] {
        let conf_path = root().join("examples/legacy").join(conf);
        let text = std::fs::read_to_string(&conf_path).unwrap();
        let loaded = legacy::from_str(&text, &conf_path).unwrap();
        let converted = convert::to_toml(&loaded.profile, Some(&format!("examples/legacy/{conf}")));
        let toml_path = root().join("profiles").join(toml_name);
        if std::env::var_os("IMAPTEST_UPDATE_PROFILES").is_some() {
            std::fs::write(&toml_path, &converted).unwrap();
        }
        let committed = std::fs::read_to_string(&toml_path).unwrap_or_default();
        assert_eq!(
            committed, converted,
            "profiles/{toml_name} is stale: IMAPTEST_UPDATE_PROFILES=1 cargo test --test profile_model"
        );
        // And the TOML reads back into the same model.
        let back = profile::from_toml_str(&converted, &toml_path).unwrap();
        assert_eq!(back, loaded.profile);
    }
}

#[test]
fn upstream_profile_reads_every_key() {
    let path = root().join("examples/legacy/profile.conf");
    let (p, warnings) = profile::load(&path).unwrap();
    assert!(warnings.is_empty(), "{warnings:?}");
    assert_eq!(p.run.total_users, Some(1000));
    assert_eq!(p.run.rampup.0, Duration::from_secs(30));
    let lmtp = p.servers.lmtp.as_ref().unwrap();
    assert_eq!((lmtp.port, lmtp.max_parallel), (Some(24), Some(10)));
    assert_eq!(p.population_sizes(), vec![1000, 0]);
    let aggressive = &p.populations[0];
    assert_eq!(aggressive.name.get_ref(), "aggressive");
    assert_eq!(aggressive.reply, 50.0);
    assert_eq!(aggressive.filter_to_spam, 10.0);
    assert_eq!(
        aggressive.inbox_delivery.as_ref().unwrap().mean_secs(),
        10.0
    );
    assert_eq!(
        aggressive.session_length.as_ref().unwrap().mean_secs(),
        180.0
    );
    assert_eq!(p.clients.len(), 2);
    assert_eq!(p.clients[0].connections, 5);
    assert!(p.clients[0].fetch_on_open.as_deref() == Some("RFC822.SIZE BODY[]"));
    assert_eq!(aggressive.clients[1].share, 20.0);
}

#[test]
fn legacy_and_converted_toml_give_the_same_schedule() {
    for conf in ["profile.conf", "pop3-profile.conf"] {
        let path = root().join("examples/legacy").join(conf);
        let text = std::fs::read_to_string(&path).unwrap();
        let legacy = legacy::from_str(&text, &path).unwrap().profile;
        let toml_text = convert::to_toml(&legacy, None);
        let from_toml = profile::from_toml_str(&toml_text, Path::new("converted.toml")).unwrap();
        for seed in [1, 42] {
            let a = plan_text(&legacy, seed, 120);
            let b = plan_text(&from_toml, seed, 120);
            assert!(a.lines().count() > 100, "{conf}: plan too small:\n{a}");
            assert!(
                a == b,
                "{conf}: legacy and converted plans differ for seed {seed}"
            );
        }
        assert_ne!(plan_text(&legacy, 1, 60), plan_text(&legacy, 2, 60));
    }
}

#[test]
fn legacy_old_and_new_username_forms() {
    let conf = "lmtp_port = 24\ntotal_user_count = 3\nuser a {\n  username_format = u%{username_idx | lfill(3, '0')}@x\n  count = 100%\n}\nclient c {\n  count = 100%\n  connection_max_count = 1\n}\n";
    let p = legacy::from_str(conf, Path::new("a.conf")).unwrap().profile;
    let plan = plan_text(&p, 0, 10);
    assert!(plan.contains(",u001@x,"), "{plan}");
    assert!(plan.contains(",u003@x,"), "{plan}");
    let p = legacy::from_str(
        &conf.replace("u%{username_idx | lfill(3, '0')}@x", "test%n"),
        Path::new("a.conf"),
    )
    .unwrap()
    .profile;
    let plan = plan_text(&p, 0, 10);
    assert!(plan.contains(",test2,"), "{plan}");
}

#[test]
fn legacy_keys_the_c_tool_ignores_work() {
    let conf = "lmtp_port = 24\nlmtp_max_parallel_count = 0\ntotal_user_count = 10\nrampup_time = 0\n\
        user a {\n  name = renamed\n  username_format = u%n\n  user_count = 4\n  mail_write_size = 10k\n  mail_send_interval = 10s\n  username_start_index = 100\n}\n\
        user b {\n  username_format = v%n\n  count = 100%\n}\n\
        client c {\n  count = 100%\n  connection_max_count = 2\n  imap_idle = no\n  login_interval = 1min\n}\n";
    let loaded = legacy::from_str(conf, Path::new("x.conf")).unwrap();
    let p = &loaded.profile;
    assert_eq!(p.populations[0].name.get_ref(), "renamed");
    assert_eq!(p.populations[0].count, Some(4));
    assert_eq!(
        p.populations[0].write_size.as_ref().map(|s| s.mean()),
        Some(10240.0)
    );
    assert_eq!(p.populations[0].start_index, 100);
    assert_eq!(p.population_sizes(), vec![4, 10]);
    assert!(!p.clients[0].idle);
    assert_eq!(
        p.clients[0].poll_interval.as_ref().unwrap().mean_secs(),
        600.0
    );
    assert_eq!(
        p.clients[0].login_interval.as_ref().unwrap().mean_secs(),
        60.0
    );
    assert!(p.servers.lmtp.as_ref().unwrap().max_parallel.is_none());
    assert!(
        loaded.warnings.iter().any(|w| w.contains("imap_idle")),
        "{:?}",
        loaded.warnings
    );
    let plan = plan_text(p, 0, 30);
    assert!(plan.contains(",u100,"), "{plan}");
}

#[test]
fn legacy_errors_name_file_line_and_column() {
    let base = "lmtp_port = 24\ntotal_user_count = 10\nuser a {\n  username_format = u%n\n  count = 100%\n}\nclient c {\n  count = 100%\n  connection_max_count = 1\n}\n";
    legacy::from_str(base, Path::new("bad.conf")).unwrap();
    let e = legacy_err(&base.replace("total_user_count", "total_users"));
    assert!(
        e.starts_with("bad.conf:2:1: Unknown setting: total_users"),
        "{e}"
    );
    let e = legacy_err(&base.replace("  count = 100%\n}\nclient", "  count = 100\n}\nclient"));
    assert!(
        e.starts_with("bad.conf:5:11: Invalid value for setting 'count'"),
        "{e}"
    );
    assert!(e.contains("Only nn% values"), "{e}");
    let e = legacy_err(&base.replace("username_format = u%n", "mail_session_length = 10"));
    assert!(e.starts_with("bad.conf:4:25:"), "{e}");
    let e = legacy_err(&base.replace("  username_format = u%n\n", ""));
    assert!(
        e.contains("bad.conf:3:1: Either username_format or userfile must be set"),
        "{e}"
    );
    let e = legacy_err(&base.replace("client c {", "server c {"));
    assert!(
        e.starts_with("bad.conf:7:1: Unknown section: server"),
        "{e}"
    );
    let e = legacy_err(&base.replace(
        "  count = 100%\n  connection",
        "  count = 50%\n  connection",
    ));
    assert!(
        e.contains("client { count } total must be at least 100% (now is 50%)"),
        "{e}"
    );
    let e = legacy_err(&base.replace("lmtp_port = 24\n", ""));
    assert!(e.contains("lmtp_port setting missing"), "{e}");
    let e = legacy_err(&base.replace("u%n", "u%x"));
    assert!(
        e.starts_with("bad.conf:3:1:") && e.contains("username template"),
        "{e}"
    );
}

const GOOD: &str = r#"
[run]
duration = "1h"
total_users = 10

[[population]]
name = "p"
share = 100
username = "u%{username_idx}"
clients = [{ client = "c" }]
inbox_delivery = { per_day = 55 }

[[client]]
name = "c"
"#;

#[test]
fn toml_errors_name_file_line_and_column() {
    profile::from_toml_str(GOOD, Path::new("bad.toml")).unwrap();
    let e = toml_err(&GOOD.replace("total_users", "total_userz"));
    assert!(
        e.starts_with("bad.toml:4:1: unknown field `total_userz`"),
        "{e}"
    );
    let e = toml_err(&GOOD.replace("\"1h\"", "\"1 parsec\""));
    assert!(
        e.starts_with("bad.toml:3:12: unknown unit \"parsec\""),
        "{e}"
    );
    let e = toml_err(&GOOD.replace("duration = \"1h\"", "duration = 10"));
    assert!(
        e.starts_with("bad.toml:3:12:") && e.contains("needs a unit"),
        "{e}"
    );
    let e = toml_err(&GOOD.replace("{ per_day = 55 }", "{ dist = \"weibull\", mean = \"1s\" }"));
    assert!(
        e.starts_with("bad.toml:11:18:")
            && e.contains("`mean` does not apply to dist = \"weibull\""),
        "{e}"
    );
    let e = toml_err(&GOOD.replace("{ per_day = 55 }", "{ dist = \"gausian\", mean = \"1s\" }"));
    assert!(
        e.starts_with("bad.toml:11:27:") && e.contains("unknown variant `gausian`"),
        "{e}"
    );
    let e = toml_err(&GOOD.replace(
        "{ per_day = 55 }",
        "{ dist = \"pareto\", shape = 0.5, scale = \"1s\" }",
    ));
    assert!(
        e.starts_with("bad.toml:11:18:") && e.contains("above 1"),
        "{e}"
    );
    let e = toml_err(&GOOD.replace(
        "{ per_day = 55 }",
        "{ dist = \"exponential\", meen = \"1s\" }",
    ));
    assert!(
        e.starts_with("bad.toml:11:") && e.contains("unknown field `meen`"),
        "{e}"
    );
    let e = toml_err(&GOOD.replace("{ client = \"c\" }", "{ client = \"thunderbird\" }"));
    assert!(
        e.starts_with("bad.toml:10:23: unknown client \"thunderbird\" (defined: c)"),
        "{e}"
    );
    let e = toml_err(&GOOD.replace("share = 100", "share = 90"));
    assert!(
        e.starts_with("bad.toml:7:8: population shares must add up to 100 %"),
        "{e}"
    );
    let e = toml_err(&GOOD.replace("name = \"c\"", "name = \"c\"\nidle = false"));
    assert!(
        e.starts_with("bad.toml:14:8:") && e.contains("needs a `poll_interval`"),
        "{e}"
    );
    let e = toml_err(&GOOD.replace("u%{username_idx}", "u%{user}"));
    assert!(
        e.starts_with("bad.toml:7:8:") && e.contains("unknown variable"),
        "{e}"
    );
    let e = toml_err(&format!("{GOOD}\n[activity]\nhourly = [1, 2]\n"));
    assert!(
        e.starts_with("bad.toml:17:10: activity.hourly needs 24 values"),
        "{e}"
    );
    let e = toml_err(&GOOD.replace("[[client]]", "[[clients]]"));
    assert!(
        e.starts_with("bad.toml:13:3: unknown field `clients`"),
        "{e}"
    );
    // Loading by path names the file.
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("office.toml");
    std::fs::write(&path, GOOD.replace("total_users", "userz")).unwrap();
    match profile::load(&path) {
        Err(ProfileError::At {
            path: p,
            line: 4,
            col: 1,
            ..
        }) => assert_eq!(p, path),
        other => panic!("{other:?}"),
    }
}

#[test]
fn empirical_distribution_reads_a_csv_next_to_the_profile() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("gaps.csv"),
        "secs,other\n1.5,x\n3,y\n10s,z\n",
    )
    .unwrap();
    let text = GOOD.replace(
        "{ per_day = 55 }",
        "{ dist = \"empirical\", csv = \"gaps.csv\", column = \"secs\" }",
    );
    let path = dir.path().join("e.toml");
    std::fs::write(&path, &text).unwrap();
    let (p, _) = profile::load(&path).unwrap();
    let d = p.populations[0].inbox_delivery.as_ref().unwrap();
    assert!((d.mean_secs() - 14.5 / 3.0).abs() < 1e-9);
    std::fs::write(dir.path().join("gaps.csv"), "secs\n1\nsoon\n").unwrap();
    let e = profile::load(&path).unwrap_err().to_string();
    assert!(e.contains("gaps.csv:3: \"soon\" is not a number"), "{e}");
}

#[test]
fn example_profiles_load_and_plan() {
    let mut names = Vec::new();
    for entry in std::fs::read_dir(root().join("profiles")).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_none_or(|e| e != "toml") {
            continue;
        }
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(
            text.starts_with("#:schema ../schemas/profile.schema.json\n"),
            "{}",
            path.display()
        );
        let (p, _) = profile::load(&path).unwrap_or_else(|e| panic!("{e}"));
        let actions = Schedule::new(
            &p,
            ScheduleOptions {
                until: Some(Duration::from_secs(300)),
                ..ScheduleOptions::default()
            },
        )
        .count();
        assert!(actions > 0, "{}: empty plan", path.display());
        names.push(path.file_name().unwrap().to_string_lossy().into_owned());
    }
    names.sort();
    for wanted in [
        "lmtp-bench.toml",
        "mobile.toml",
        "office.toml",
        "pop3.toml",
        "upstream.toml",
    ] {
        assert!(
            names.iter().any(|n| n == wanted),
            "profiles/{wanted} missing: {names:?}"
        );
    }
}

/// A dry run writes the plan without connecting anywhere: the profile names a server
/// that does not exist, and the plan is written all the same.
#[test]
fn dry_run_plan_is_written_without_connecting() {
    let text = GOOD.replace(
        "[run]",
        "[servers]\nhost = \"unreachable.invalid\"\n[servers.lmtp]\nport = 1\n\n[run]",
    );
    let p = profile::from_toml_str(&text, Path::new("p.toml")).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("plan.csv");
    let summary = write_plan_file(&p, &PlanOptions::default(), &out).unwrap();
    let plan = std::fs::read_to_string(&out).unwrap();
    let mut lines = plan.lines();
    assert_eq!(
        lines.next(),
        Some("time_s,user,username,population,client,action,detail,depends_on")
    );
    assert_eq!(lines.count() as u64, summary.actions);
    assert_eq!(summary.users, 10);
    assert_eq!(summary.by_action["login"], 10);
    assert!(plan.contains(",u1,p,c,login,connections=1"), "{plan}");
    assert!(summary.to_text().contains("deliver_inbox"));
    // Actions on a delivered message say which delivery they wait for; others don't.
    for row in plan.lines().skip(1) {
        let fields: Vec<&str> = row.split(',').collect();
        let depends = fields[fields.len() - 1];
        match fields[5] {
            "read" | "delete" | "move_to_spam" | "reply" | "filter_to_spam" => {
                let msg = fields[6].split(' ').next().unwrap();
                assert_eq!(depends, format!("delivery {msg}"), "{row}");
            }
            _ => assert_eq!(depends, "", "{row}"),
        }
    }
    assert!(
        summary.by_action.get("read").is_some_and(|&n| n > 0),
        "{plan}"
    );
    // Without a period a plan is refused.
    let p = profile::from_toml_str(
        &GOOD.replace("duration = \"1h\"\n", ""),
        Path::new("p.toml"),
    )
    .unwrap();
    assert!(write_plan(&p, &PlanOptions::default(), &mut Vec::new()).is_err());
}

#[test]
fn cli_entry_points() {
    let conf = root().join("examples/legacy/pop3-profile.conf");
    let (text, warnings) = profile::convert_file(&conf).unwrap();
    assert!(text.starts_with(convert::SCHEMA_DIRECTIVE));
    assert!(
        warnings.iter().any(|w| w.contains("defined twice")),
        "{warnings:?}"
    );
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("plan.csv");
    let (summary, _) = profile::dry_run(
        &conf,
        &out,
        Some(3),
        Some(Duration::from_secs(60)),
        None,
        None,
    )
    .unwrap();
    assert_eq!(summary.users, 10);
    assert!(summary.by_action["check_mail"] >= 10);
    assert!(std::fs::read_to_string(&out).unwrap().lines().count() as u64 == summary.actions + 1);
    let e = profile::dry_run(
        Path::new("/nonexistent/p.toml"),
        &out,
        None,
        None,
        None,
        None,
    )
    .unwrap_err();
    assert!(e.to_string().starts_with("/nonexistent/p.toml: "), "{e}");
}

#[test]
fn zero_intervals_are_refused() {
    let e = toml_err(&GOOD.replace("{ per_day = 55 }", "\"0s\""));
    assert!(
        e.starts_with("bad.toml:7:8:") && e.contains("inbox_delivery must have a mean above 0"),
        "{e}"
    );
    let e = toml_err(&GOOD.replace("name = \"c\"", "name = \"c\"\nprotocol = \"pop3\""));
    assert!(e.contains("POP3 clients need a `login_interval`"), "{e}");
}
