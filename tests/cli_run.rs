//! The `imaptest` binary end to end: a first stress run against the lab, and the one-line
//! errors for bad input.

mod common;

use std::process::{Command, Output};

fn imaptest(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_imaptest"))
        .args(args)
        .output()
        .expect("run imaptest")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// Asserts a fatal exit with exactly one line on stderr that contains every `needle`.
fn assert_one_line_error(out: &Output, needles: &[&str]) {
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(89), "stderr: {stderr}");
    let lines: Vec<&str> = stderr.lines().collect();
    assert_eq!(lines.len(), 1, "expected one line, got: {stderr}");
    for needle in needles {
        assert!(lines[0].contains(needle), "`{needle}` not in: {}", lines[0]);
    }
    assert!(!stderr.contains("panicked"), "{stderr}");
}

fn write_mbox(dir: &std::path::Path) -> std::path::PathBuf {
    let path = dir.join("test.mbox");
    let out = imaptest(&[
        "mbox-gen",
        &format!("out={}", path.display()),
        "count=60",
        "seed=3",
    ]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    path
}

/// `mbox-gen` keeps an existing file unless told `overwrite`, like every document
/// output.
#[test]
fn mbox_gen_refuses_an_existing_file_without_overwrite() {
    let dir = tempfile::tempdir().unwrap();
    let path = write_mbox(dir.path());
    let before = std::fs::read(&path).unwrap();
    let out = imaptest(&["mbox-gen", &format!("out={}", path.display()), "count=5"]);
    assert_eq!(out.status.code(), Some(89), "{}", text(&out.stderr));
    assert_one_line_error(&out, &["exists", "overwrite"]);
    assert_eq!(
        std::fs::read(&path).unwrap(),
        before,
        "the file was changed"
    );
    let out = imaptest(&[
        "mbox-gen",
        &format!("out={}", path.display()),
        "count=5",
        "overwrite",
    ]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(std::fs::read(&path).unwrap().len() < before.len());
}

#[test]
fn first_stress_run_against_the_lab() {
    let lab = common::lab();
    let dir = tempfile::tempdir().unwrap();
    let mbox = write_mbox(dir.path());
    let out = imaptest(&[
        "host=127.0.0.1",
        &format!("port={}", lab.imap_port),
        "user=testuser%d",
        "users=50",
        &format!("pass={}", lab.user_password),
        &format!("mbox={}", mbox.display()),
        "clients=10",
        "secs=4",
    ]);
    let stdout = text(&out.stdout);
    let stderr = text(&out.stderr);
    assert_eq!(
        out.status.code(),
        Some(0),
        "stdout: {stdout}\nstderr: {stderr}"
    );
    assert!(!stderr.contains("Error:"), "{stderr}");
    assert!(
        stdout.contains("Logi List Stat Sele Fetc Fet2 Stor Dele Expu Appe Logo"),
        "{stdout}"
    );
    let totals = stdout.split("Totals:").nth(1).expect("Totals block");
    // The names, the probability lines (with %), then the counts.
    let numbers: Vec<u64> = totals
        .lines()
        .filter(|l| !l.trim().is_empty())
        .skip(1)
        .find(|l| !l.contains('%'))
        .unwrap()
        .split_whitespace()
        .map(|n| n.parse().unwrap())
        .collect();
    assert_eq!(numbers.len(), 11, "{totals}");
    // LOGIN, SELECT, FETCH, APPEND and LOGOUT all happened.
    for (i, name) in [
        (0, "Logi"),
        (3, "Sele"),
        (4, "Fetc"),
        (9, "Appe"),
        (10, "Logo"),
    ] {
        assert!(numbers[i] > 0, "{name} is 0: {totals}");
    }
    // One counter line per second.
    assert!(stdout.matches("/ ").count() >= 3, "{stdout}");
}

#[test]
fn unreachable_host_is_one_line() {
    let out = imaptest(&[
        "host=127.0.0.1",
        "port=1",
        "user=u",
        "secs=1",
        "-",
        "select=0",
    ]);
    assert_one_line_error(&out, &["127.0.0.1:1", "refused"]);
}

#[test]
fn wrong_password_is_one_line() {
    let lab = common::lab();
    let out = imaptest(&[
        &format!("port={}", lab.imap_port),
        "user=testuser1",
        "pass=wrong-password",
        "secs=1",
        "-",
        "select=0",
    ]);
    assert_one_line_error(&out, &["testuser1", "failed"]);
}

#[test]
fn tls_failure_is_one_line() {
    let lab = common::lab();
    let out = imaptest(&[
        "host=localhost",
        &format!("port={}", lab.imaps_port),
        "ssl",
        "user=testuser1",
        "secs=1",
        "-",
        "select=0",
    ]);
    assert_one_line_error(&out, &["TLS handshake", "certificate"]);
}

#[test]
fn unknown_key_suggests_the_near_miss() {
    let out = imaptest(&["clints=10"]);
    assert_one_line_error(&out, &["clints", "clients"]);
}

#[test]
fn malformed_userfile_is_one_line() {
    let lab = common::lab();
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("users.txt");
    std::fs::write(&file, "").unwrap();
    let out = imaptest(&[
        &format!("port={}", lab.imap_port),
        "user=x",
        &format!("userfile={}", file.display()),
        "secs=1",
    ]);
    assert_one_line_error(&out, &["users.txt"]);
}

#[test]
fn malformed_mbox_is_one_line() {
    let lab = common::lab();
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("bad.mbox");
    std::fs::write(&file, "this is not an mbox\n").unwrap();
    let out = imaptest(&[
        &format!("port={}", lab.imap_port),
        "user=testuser%d",
        &format!("mbox={}", file.display()),
        "secs=1",
    ]);
    assert_one_line_error(&out, &["bad.mbox:1"]);
}

#[test]
fn help_lists_usage() {
    let out = imaptest(&["--help"]);
    assert!(out.status.success());
    assert!(text(&out.stdout).starts_with("Usage: imaptest"));
}

#[test]
fn profile_dry_run_writes_a_plan_without_connecting() {
    let dir = tempfile::tempdir().unwrap();
    let plan = dir.path().join("plan.csv");
    let profile = concat!(env!("CARGO_MANIFEST_DIR"), "/profiles/office.toml");
    // host= points nowhere reachable: a dry run must not need it.
    let out = imaptest(&[
        &format!("profile={profile}"),
        "host=127.0.0.1",
        "port=1",
        "dry_run",
        &format!("plan={}", plan.display()),
        "secs=30",
        "seed=7",
    ]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(
        text(&out.stdout).starts_with("plan: "),
        "{}",
        text(&out.stdout)
    );
    let csv = std::fs::read_to_string(&plan).unwrap();
    let mut lines = csv.lines();
    assert_eq!(
        lines.next(),
        Some("time_s,user,username,population,client,action,detail,depends_on")
    );
    assert!(lines.count() > 10, "{csv}");
}

#[test]
fn legacy_profile_converts_to_loadable_toml() {
    let legacy = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../shared/imaptest-suite/profile.conf"
    );
    let out = imaptest(&["profile", "convert", legacy]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let toml = text(&out.stdout);
    assert!(toml.starts_with("#:schema "), "{toml}");
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("converted.toml");
    std::fs::write(&path, &toml).unwrap();
    let (profile, _) = imaptest::profile::load(&path).expect("converted TOML loads");
    let _ = profile;
}

#[test]
fn schema_subcommand_prints_the_committed_schema() {
    let out = imaptest(&["schema"]);
    assert!(out.status.success());
    let committed = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/schemas/profile.schema.json"
    ))
    .unwrap();
    assert_eq!(text(&out.stdout), committed);
}

#[test]
fn upstream_suite_through_the_binary_matches_the_c_tool() {
    let lab = common::lab();
    let user = common::fresh_user();
    let dir = tempfile::tempdir().unwrap();
    let junit = dir.path().join("junit.xml");
    let suite = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../shared/imaptest-suite/release-2.3"
    );
    let out = imaptest(&[
        &format!("port={}", lab.imap_port),
        &format!("user={user}"),
        &format!("pass={}", lab.user_password),
        &format!("test={suite}"),
        &format!("junit={}", junit.display()),
    ]);
    let stdout = text(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{stdout}\n{}",
        text(&out.stderr)
    );
    assert!(stdout.contains("71 test groups: 0 failed"), "{stdout}");
    assert!(
        stdout.contains("base protocol: 0/457 individual commands failed"),
        "{stdout}"
    );
    assert!(
        stdout.contains("extensions: 0/330 individual commands failed"),
        "{stdout}"
    );
    let xml = std::fs::read_to_string(&junit).unwrap();
    assert!(xml.contains("tests=\"71\" failures=\"0\""), "{xml}");
}
