//! The run summary (`summary=`), SLO verdicts and the planner CSV against the lab
//! Dovecot: the summary validates against `schemas/summary.schema.json`, its counts
//! agree with what the server stored and logged, run-level percentiles are the merge of
//! the per-second histograms, POP3 and LMTP have rows of their own, SLO breaches set
//! the exit status, and a run cut short by SIGINT still writes its summary.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::Mutex;
use std::time::Duration;

use imaptest::summary::{EndReason, RunSummary, timeline};

/// Runs here load Dovecot; one at a time keeps them honest.
static SERIAL: Mutex<()> = Mutex::new(());

fn imaptest(args: &[String]) -> Output {
    Command::new(common::imaptest_bin())
        .args(args)
        .stdin(Stdio::null())
        .output()
        .expect("run imaptest")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn lab_args(user: &str) -> Vec<String> {
    let lab = common::lab();
    vec![
        format!("host={}", lab.host),
        format!("port={}", lab.imap_port),
        format!("user={user}"),
        format!("pass={}", lab.user_password),
    ]
}

/// Reads the summary and checks it against the committed JSON Schema.
fn read_valid_summary(path: &Path) -> RunSummary {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let json: serde_json::Value = serde_json::from_str(&text).unwrap();
    let schema: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(common::repo_root().join("schemas/summary.schema.json")).unwrap(),
    )
    .unwrap();
    let validator = jsonschema::validator_for(&schema).expect("a valid schema");
    let errors: Vec<String> = validator
        .iter_errors(&json)
        .map(|e| e.to_string())
        .collect();
    assert!(errors.is_empty(), "summary breaks its schema: {errors:?}");
    RunSummary::read(path).unwrap()
}

fn dovecot_log() -> PathBuf {
    common::lab_dir().join("log/dovecot.log")
}

/// Dovecot's `Login: user=<user>,` log lines after byte `from` of its log (user names
/// are reused across test runs).
fn dovecot_logins(user: &str, from: u64) -> usize {
    let log = std::fs::read(dovecot_log()).unwrap();
    let log = String::from_utf8_lossy(&log[from as usize..]);
    let needle = format!("Login: user=<{user}>,");
    log.lines().filter(|l| l.contains(&needle)).count()
}

fn command<'a>(
    summary: &'a RunSummary,
    protocol: &str,
    name: &str,
) -> Option<&'a imaptest::summary::CommandTotals> {
    summary
        .totals
        .commands
        .iter()
        .find(|c| c.protocol == protocol && c.name == name)
}

/// Every command's run-level percentiles equal those of the merged per-second
/// histograms of the timeline (exactly: the histograms are lossless).
fn assert_totals_are_the_timeline(summary: &RunSummary) {
    let merged = timeline::aggregate(&summary.timeline.seconds, 0).unwrap();
    let again = imaptest::summary::Totals::from_interval(&merged);
    assert_eq!(again.commands.len(), summary.totals.commands.len());
    for (a, b) in again.commands.iter().zip(&summary.totals.commands) {
        assert_eq!((&a.protocol, &a.name), (&b.protocol, &b.name));
        assert_eq!(
            (a.count, a.ok, a.no, a.bad, a.failed),
            (b.count, b.ok, b.no, b.bad, b.failed)
        );
        let (x, y) = (&a.latency, &b.latency);
        assert_eq!(
            (
                x.p50_us, x.p90_us, x.p95_us, x.p99_us, x.p999_us, x.max_us, x.sum_us
            ),
            (
                y.p50_us, y.p90_us, y.p95_us, y.p99_us, y.p999_us, y.max_us, y.sum_us
            ),
            "{} {}",
            a.protocol,
            a.name
        );
    }
    assert_eq!(again.errors, summary.totals.errors);
    assert_eq!(again.deliveries, summary.totals.deliveries);
}

#[test]
fn stress_summary_validates_and_agrees_with_dovecot() {
    let _serial = SERIAL.lock().unwrap_or_else(|p| p.into_inner());
    let dir = tempfile::tempdir().unwrap();
    let user = common::fresh_user();
    let summary_path = dir.path().join("run.json");
    let mut args = lab_args(&user);
    args.extend([
        "-".into(),
        "append=100,0".into(),
        "random_msg_size=3000".into(),
        "clients=2".into(),
        "secs=3".into(),
        format!("summary={}", summary_path.display()),
        "seed=7".into(),
    ]);
    let log_start = std::fs::metadata(dovecot_log()).unwrap().len();
    let out = imaptest(&args);
    let stdout = text(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{stdout}\n{}",
        text(&out.stderr)
    );
    let summary = read_valid_summary(&summary_path);

    // Identity.
    assert_eq!(summary.format, "imaptest-summary/1");
    assert_eq!(summary.seed, Some(7));
    assert!(summary.complete && summary.ended_by == EndReason::Time);
    assert!(
        summary.command_line.iter().any(|a| a == "pass=***"),
        "{:?}",
        summary.command_line
    );
    let secret = format!("pass={}", common::lab().user_password);
    assert!(
        !summary.command_line.contains(&secret),
        "{:?}",
        summary.command_line
    );
    let imap = summary.server.imap.as_ref().expect("server identity");
    assert!(imap.greeting.contains("ready"), "{imap:?}");
    assert!(
        imap.capabilities
            .iter()
            .any(|c| c.eq_ignore_ascii_case("IMAP4rev1")),
        "{imap:?}"
    );
    assert!(
        imap.id.get("name").is_some_and(|n| n == "Dovecot"),
        "{imap:?}"
    );
    assert!(summary.tool_usage.peak_rss_kib > 0);

    // What the server stored and logged (before this test's own login for STATUS).
    let logged = dovecot_logins(&user, log_start);
    let appends = command(&summary, "imap", "APPEND").expect("APPEND row");
    assert!(appends.ok > 10, "{appends:?}");
    assert_eq!(
        appends.ok,
        common::messages(&user, "INBOX"),
        "APPENDs vs messages stored"
    );
    let logins = command(&summary, "imap", "LOGIN").expect("LOGIN row");
    // Plus the one login of the start-up check, which is not part of the run.
    assert_eq!(
        logins.ok as usize + 1,
        logged,
        "LOGINs vs Dovecot's log: {logins:?}"
    );
    let connect = command(&summary, "imap", "CONNECT").expect("CONNECT row");
    assert!(connect.ok >= logins.ok, "{connect:?}");
    assert_eq!(summary.totals.connections.opened, connect.ok);

    // Exact run-level percentiles, and a timeline covering the run.
    assert_totals_are_the_timeline(&summary);
    let elapsed: Vec<u64> = summary.timeline.seconds.iter().map(|s| s.elapsed).collect();
    assert_eq!(elapsed, (1..=elapsed.len() as u64).collect::<Vec<_>>());
    assert!(elapsed.len() >= 3);
    // The console prints them after Totals.
    assert!(
        stdout.contains("Latency over the whole run (ms):"),
        "{stdout}"
    );
    assert!(stdout.contains("imap APPEND"), "{stdout}");
}

#[test]
fn slo_breach_sets_its_exit_status_and_a_loose_slo_passes() {
    let _serial = SERIAL.lock().unwrap_or_else(|p| p.into_inner());
    let dir = tempfile::tempdir().unwrap();
    let user = common::fresh_user();
    let run = |slo: &str, name: &str| {
        let summary = dir.path().join(name);
        let mut args = lab_args(&user);
        args.extend([
            "-".into(),
            "select=0".into(),
            "clients=2".into(),
            "secs=2".into(),
            format!("slo={slo}"),
            format!("summary={}", summary.display()),
        ]);
        let out = imaptest(&args);
        (out, read_valid_summary(&summary))
    };
    let (out, summary) = run("imap.LOGIN.p99 < 1us; errors == 0", "tight.json");
    let stdout = text(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(i32::from(imaptest::exit::SLO_BREACHED)),
        "{stdout}"
    );
    assert!(stdout.contains("SLO verdicts:"), "{stdout}");
    assert!(
        stdout.contains("1 of 2 objectives met - SLO BREACHED"),
        "{stdout}"
    );
    assert_eq!(summary.exit_status, imaptest::exit::SLO_BREACHED);
    let verdict = &summary.slo[0];
    assert_eq!(verdict.metric, "imap.LOGIN.p99");
    assert!(
        !verdict.pass && verdict.observed.unwrap() >= 1.0,
        "{verdict:?}"
    );
    assert!(summary.slo[1].pass);

    let (out, summary) = run("imap.LOGIN.p99 < 60s", "loose.json");
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stdout));
    assert!(summary.slo[0].pass);
}

#[test]
fn bad_slo_is_refused_before_the_run_naming_the_valid_metrics() {
    let mut args = lab_args("nobody");
    args.push("slo=imap.LOGON.p99 < 5ms".into());
    let out = imaptest(&args);
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(89), "{stderr}");
    assert!(
        stderr.contains("unknown metric \"imap.LOGON.p99\""),
        "{stderr}"
    );
    assert!(stderr.contains("lmtp.{delivered_ratio"), "{stderr}");
}

#[test]
fn sigint_still_writes_the_summary_marked_incomplete() {
    let _serial = SERIAL.lock().unwrap_or_else(|p| p.into_inner());
    let dir = tempfile::tempdir().unwrap();
    let summary_path = dir.path().join("cut.json");
    let mut args = lab_args("testuser%d");
    args.extend([
        "users=20".into(),
        "-".into(),
        "select=0".into(),
        "clients=2".into(),
        format!("summary={}", summary_path.display()),
    ]);
    let child = Command::new(common::imaptest_bin())
        .args(&args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_secs(2));
    // SAFETY: signalling our own child.
    assert_eq!(
        unsafe { libc::kill(child.id() as libc::pid_t, libc::SIGINT) },
        0
    );
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    let summary = read_valid_summary(&summary_path);
    assert!(!summary.complete);
    assert_eq!(summary.ended_by, EndReason::Sigint);
    assert_eq!(summary.exit_status, imaptest::exit::INTERRUPTED);
    assert!(command(&summary, "imap", "LOGIN").is_some_and(|c| c.ok > 0));
}

#[test]
fn wide_csv_has_one_row_per_second_without_gaps() {
    let _serial = SERIAL.lock().unwrap_or_else(|p| p.into_inner());
    let dir = tempfile::tempdir().unwrap();
    let csv_path = dir.path().join("wide.csv");
    let mut args = lab_args("testuser%d");
    args.extend([
        "users=20".into(),
        "clients=3".into(),
        "secs=3".into(),
        "random_msg_size=2000".into(),
        "csv_format=wide".into(),
        format!("csv={}", csv_path.display()),
    ]);
    let out = imaptest(&args);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let mut reader = csv::Reader::from_path(&csv_path).unwrap();
    let header = reader.headers().unwrap().clone();
    for column in [
        "unix_time_s",
        "elapsed_s",
        "imap_LOGIN_ok_per_s",
        "imap_FETCH_p99_us",
        "imap_CONNECT_avg_us",
    ] {
        assert!(
            header.iter().any(|h| h == column),
            "no {column} in {header:?}"
        );
    }
    let elapsed = header.iter().position(|h| h == "elapsed_s").unwrap();
    let rows: Vec<csv::StringRecord> = reader.records().map(Result::unwrap).collect();
    assert!(rows.len() >= 3, "{rows:?}");
    for (i, row) in rows.iter().enumerate() {
        assert_eq!(row.len(), header.len());
        assert_eq!(
            row[elapsed].parse::<usize>().unwrap(),
            i + 1,
            "seconds must not skip"
        );
    }
    let logins = header
        .iter()
        .position(|h| h == "imap_LOGIN_ok_per_s")
        .unwrap();
    let total: u64 = rows.iter().map(|r| r[logins].parse::<u64>().unwrap()).sum();
    assert!(total > 0);
}

/// Writes a profile with the lab's ports substituted.
fn write_profile(dir: &Path, text: &str) -> PathBuf {
    let lab = common::lab();
    let path = dir.join("run.toml");
    let text = text
        .replace("@IMAP@", &lab.imap_port.to_string())
        .replace("@POP3@", &lab.pop3_port.to_string())
        .replace("@LMTP@", &lab.lmtp_port.to_string());
    std::fs::write(&path, text).unwrap();
    path
}

fn user_file(dir: &Path, name: &str, users: &[String]) -> PathBuf {
    let path = dir.join(format!("{name}.users"));
    std::fs::write(&path, users.join("\n") + "\n").unwrap();
    path
}

fn run_profile(profile: &Path, summary: &Path, extra: &[String]) -> Output {
    let lab = common::lab();
    let mut args = vec![
        format!("profile={}", profile.display()),
        format!("host={}", lab.host),
        format!("pass={}", lab.user_password),
        "random_msg_size=3000".to_owned(),
        format!("summary={}", summary.display()),
    ];
    args.extend(extra.iter().cloned());
    imaptest(&args)
}

#[test]
fn profile_summary_has_pop3_and_lmtp_rows_and_agrees_with_stored_mail() {
    let _serial = SERIAL.lock().unwrap_or_else(|p| p.into_inner());
    let dir = tempfile::tempdir().unwrap();
    let users: Vec<String> = (0..3).map(|_| common::fresh_user()).collect();
    let file = user_file(dir.path(), "pop", &users);
    let profile = write_profile(
        dir.path(),
        &format!(
            r#"
[run]
duration = "4s"
rampup = "500ms"
seed = 3

[servers.pop3]
port = @POP3@
[servers.lmtp]
port = @LMTP@

[[population]]
name = "downloaders"
count = 3
userfile = "{}"
clients = [{{ client = "pop" }}]
inbox_delivery = "300ms"

[[client]]
name = "pop"
protocol = "pop3"
login_interval = "1s"
pop3_keep = true

[[slo]]
objective = "lmtp.delivered_ratio >= 0.999"
"#,
            file.display()
        ),
    );
    let summary_path = dir.path().join("profile.json");
    let out = run_profile(&profile, &summary_path, &[]);
    let stdout = text(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{stdout}\n{}",
        text(&out.stderr)
    );
    let summary = read_valid_summary(&summary_path);
    assert!(
        summary
            .profile
            .as_ref()
            .is_some_and(|p| p.sha256.len() == 64)
    );
    assert_eq!(summary.warmup_secs, 0, "a 500 ms ramp-up is under a second");
    for (protocol, name) in [
        ("pop3", "USER"),
        ("pop3", "PASS"),
        ("pop3", "STAT"),
        ("pop3", "UIDL"),
        ("pop3", "RETR"),
        ("pop3", "QUIT"),
        ("pop3", "CONNECT"),
        ("pop3", "GREETING"),
        ("lmtp", "LHLO"),
        ("lmtp", "MAIL"),
        ("lmtp", "RCPT"),
        ("lmtp", "DATA"),
        ("lmtp", "TRANSACTION"),
        ("action", "login"),
        ("action", "check_mail"),
        ("action", "deliver_inbox"),
    ] {
        let row = command(&summary, protocol, name)
            .unwrap_or_else(|| panic!("no {protocol} {name} row in {:?}", summary.totals.commands));
        assert!(row.ok > 0, "{row:?}");
        assert!(row.latency.count > 0, "{row:?}");
    }
    // POP3 is never counted under IMAP's names.
    assert!(command(&summary, "imap", "LOGIN").is_none());
    assert!(command(&summary, "imap", "FETCH2").is_none());
    let deliveries = summary.totals.deliveries.as_ref().expect("deliveries");
    let stored: u64 = users.iter().map(|u| common::messages(u, "INBOX")).sum();
    assert!(deliveries.delivered >= 15, "{deliveries:?}");
    assert_eq!(deliveries.delivered, stored, "delivered vs stored");
    assert_eq!(deliveries.delivered_ratio, Some(1.0));
    assert!(summary.slo[0].pass, "{:?}", summary.slo);
    let sessions = &summary.sessions[0];
    assert_eq!(
        (sessions.client.as_str(), sessions.protocol.as_str()),
        ("pop", "pop3")
    );
    assert!(
        sessions.commands.get("pop3.RETR").is_some_and(|&n| n > 0),
        "{sessions:?}"
    );
    assert_totals_are_the_timeline(&summary);
}

#[test]
fn deliveries_to_unknown_users_fail_the_delivered_ratio_slo() {
    let _serial = SERIAL.lock().unwrap_or_else(|p| p.into_inner());
    let dir = tempfile::tempdir().unwrap();
    let users: Vec<String> = (0..2).map(|_| common::fresh_user()).collect();
    let file = user_file(dir.path(), "real", &users);
    let profile = write_profile(
        dir.path(),
        &format!(
            r#"
[run]
duration = "3s"
seed = 4

[servers.lmtp]
port = @LMTP@

[[population]]
name = "real"
count = 2
userfile = "{}"
clients = [{{ client = "none" }}]
inbox_delivery = "200ms"

[[population]]
name = "ghosts"
count = 2
username = "nosuchuser%{{username_idx}}"
clients = [{{ client = "none" }}]
inbox_delivery = "200ms"

[[client]]
name = "none"
connections = 0
"#,
            file.display()
        ),
    );
    let summary_path = dir.path().join("ghosts.json");
    let out = run_profile(
        &profile,
        &summary_path,
        &["slo=lmtp.delivered_ratio >= 0.999".to_owned()],
    );
    let stdout = text(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(i32::from(imaptest::exit::SLO_BREACHED)),
        "{stdout}\n{}",
        text(&out.stderr)
    );
    let summary = read_valid_summary(&summary_path);
    let verdict = &summary.slo[0];
    assert!(!verdict.pass, "{verdict:?}");
    let ratio = verdict.observed.unwrap();
    assert!(
        (0.2..0.8).contains(&ratio),
        "half the recipients are unknown: {ratio}"
    );
    let d = summary.totals.deliveries.as_ref().unwrap();
    assert!(d.refused > 0 && d.delivered > 0, "{d:?}");
    assert_eq!(
        d.delivered + d.refused + d.failed + d.unfinished,
        d.offered_recipients
    );
    assert!(
        summary
            .totals
            .errors
            .by_kind
            .contains_key("delivery-refused")
    );
}

#[test]
fn users_scales_the_population_and_clients_caps_open_sessions() {
    let _serial = SERIAL.lock().unwrap_or_else(|p| p.into_inner());
    let dir = tempfile::tempdir().unwrap();
    let profile = write_profile(
        dir.path(),
        r#"
[run]
duration = "3s"
rampup = "1s"
seed = 8
total_users = 10

[servers.imap]
port = @IMAP@

[[population]]
name = "a"
share = 70
username = "testuser%{username_idx}"
start_index = 900
clients = [{ client = "desk" }]

[[population]]
name = "b"
share = 30
username = "testuser%{username_idx}"
start_index = 950
clients = [{ client = "desk" }]

[[client]]
name = "desk"
connections = 1
"#,
    );
    // users=: the plan has exactly that many users, split 70/30.
    let plan = dir.path().join("plan.csv");
    let out = imaptest(&[
        format!("profile={}", profile.display()),
        "dry_run".into(),
        format!("plan={}", plan.display()),
        "users=40".into(),
    ]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let mut reader = csv::Reader::from_path(&plan).unwrap();
    let header = reader.headers().unwrap().clone();
    let (user, population) = (
        header.iter().position(|h| h == "user").unwrap(),
        header.iter().position(|h| h == "population").unwrap(),
    );
    let mut users = std::collections::BTreeMap::<String, std::collections::BTreeSet<String>>::new();
    for row in reader.records() {
        let row = row.unwrap();
        users
            .entry(row[population].to_owned())
            .or_default()
            .insert(row[user].to_owned());
    }
    assert_eq!(users["a"].len(), 28, "{users:?}");
    assert_eq!(users["b"].len(), 12, "{users:?}");

    // clients=: at most that many sessions open at once.
    let summary_path = dir.path().join("capped.json");
    let out = run_profile(&profile, &summary_path, &["clients=3".into()]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let summary = read_valid_summary(&summary_path);
    let most_users = summary
        .timeline
        .seconds
        .iter()
        .map(|s| s.users)
        .max()
        .unwrap();
    assert!(
        (1..=3).contains(&most_users),
        "{most_users} users online at once"
    );
    assert!(
        summary.totals.connections.peak_open <= 3,
        "{:?}",
        summary.totals.connections
    );
    // Without the cap, all ten log in.
    let summary_path = dir.path().join("free.json");
    let out = run_profile(&profile, &summary_path, &[]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let summary = read_valid_summary(&summary_path);
    let most_users = summary
        .timeline
        .seconds
        .iter()
        .map(|s| s.users)
        .max()
        .unwrap();
    assert_eq!(most_users, 10);
}

#[test]
fn profile_lines_say_where_the_run_is_and_secs_before_the_rampup_is_warned() {
    let _serial = SERIAL.lock().unwrap_or_else(|p| p.into_inner());
    let dir = tempfile::tempdir().unwrap();
    let users: Vec<String> = (0..2).map(|_| common::fresh_user()).collect();
    let file = user_file(dir.path(), "few", &users);
    let profile = write_profile(
        dir.path(),
        &format!(
            r#"
[run]
duration = "10s"
rampup = "6s"
seed = 2

[servers.imap]
port = @IMAP@

[[population]]
name = "few"
count = 2
userfile = "{}"
clients = [{{ client = "desk" }}]

[[client]]
name = "desk"
connections = 1
"#,
            file.display()
        ),
    );
    let summary_path = dir.path().join("short.json");
    let out = run_profile(&profile, &summary_path, &["secs=2".into()]);
    let (stdout, stderr) = (text(&out.stdout), text(&out.stderr));
    assert!(out.status.success(), "{stdout}\n{stderr}");
    assert!(
        stderr.contains("Warning: secs=2 ends the run before the profile's 6s ramp-up does"),
        "{stderr}"
    );
    assert!(stdout.contains("[1s/2s ramp-up]"), "{stdout}");
    // The verdicts leave the ramp-up out by default.
    let summary = read_valid_summary(&summary_path);
    assert_eq!(summary.warmup_secs, 6);
}
