//! Classic stress mode against the real lab Dovecot: every state sends its command and is
//! counted, the classic command lines behave as ImapTest users expect, and a seed makes
//! the command stream reproducible.

mod common;

use std::collections::HashMap;
use std::process::{Command, Output};

use imaptest::config::TlsSettings;
use imaptest::imap::client::{ClientOptions, ImapClient};
use imaptest::net::Endpoint;

fn imaptest(args: &[String]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_imaptest"))
        .args(args)
        .output()
        .expect("run imaptest")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// Arguments for a short run as `user` against the lab.
fn base_args(user: &str, secs: u32) -> Vec<String> {
    let lab = common::lab();
    vec![
        "host=127.0.0.1".into(),
        format!("port={}", lab.imap_port),
        format!("user={user}"),
        format!("pass={}", lab.user_password),
        "clients=2".into(),
        format!("secs={secs}"),
    ]
}

/// The Totals block as short name → count.
fn totals(stdout: &str) -> HashMap<String, u64> {
    let block = stdout
        .split("Totals:")
        .nth(1)
        .unwrap_or_else(|| panic!("no Totals in: {stdout}"));
    let lines: Vec<&str> = block.lines().filter(|l| !l.trim().is_empty()).collect();
    let names: Vec<&str> = lines[0].split_whitespace().collect();
    // The header, probability lines (with %), then the counts.
    let counts: Vec<u64> = lines[1..]
        .iter()
        .find(|l| !l.contains('%'))
        .unwrap()
        .split_whitespace()
        .map(|n| n.parse().unwrap())
        .collect();
    assert_eq!(names.len(), counts.len(), "{block}");
    names.into_iter().map(String::from).zip(counts).collect()
}

/// Runs and asserts a clean exit without errors; returns the totals.
fn run_clean(args: &[String]) -> HashMap<String, u64> {
    let out = imaptest(args);
    let stdout = text(&out.stdout);
    let stderr = text(&out.stderr);
    assert_eq!(
        out.status.code(),
        Some(0),
        "args {args:?}\n{stdout}\n{stderr}"
    );
    assert!(!stderr.contains("Error:"), "args {args:?}\n{stderr}");
    totals(&stdout)
}

fn mbox() -> &'static str {
    static MBOX: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    MBOX.get_or_init(|| {
        let path =
            std::env::temp_dir().join(format!("imaptest-states-{}.mbox", std::process::id()));
        let out = imaptest(&[
            "mbox-gen".into(),
            format!("out={}", path.display()),
            "count=40".into(),
            "seed=11".into(),
            // The path holds the pid: one left by an earlier run goes.
            "overwrite".into(),
        ]);
        assert!(out.status.success(), "{}", text(&out.stderr));
        path.display().to_string()
    })
}

#[test]
fn every_state_alone_is_sent_and_counted() {
    // (state arguments, the column that must count, extra arguments)
    let cases: &[(&[&str], &str)] = &[
        (&["list"], "List"),
        (&["mcreate"], "MCre"),
        (&["mcreate", "mdelete"], "MDel"),
        (&["mcreate", "mrename"], "MRen"),
        (&["mcreate", "msubs"], "MSub"),
        (&["status"], "Stat"),
        (&["uidfetch"], "UIDF"),
        (&["fetch"], "Fetc"),
        (&["fetch2"], "Fet2"),
        (&["search"], "Sear"),
        (&["sort"], "Sort"),
        (&["thread"], "Thre"),
        (&["copy", "copybox=Trash"], "Copy"),
        (&["move", "copybox=Trash"], "Move"),
        (&["store"], "Stor"),
        (&["delete", "append=100,0"], "Dele"),
        (&["expunge"], "Expu"),
        (&["noop"], "Noop"),
        (&["idle"], "Idle"),
        (&["check"], "Chec"),
        (&["delay"], "Dela"),
        (&["disconnect"], "Disc"),
    ];
    for (states, column) in cases {
        let user = common::fresh_user();
        let mut args = base_args(&user, 1);
        args.push(format!("mbox={}", mbox()));
        args.push("-".into());
        // A few appends keep the mailbox non-empty for the selected-state commands.
        args.push("append=20,0".into());
        args.extend(states.iter().map(|s| s.to_string()));
        let totals = run_clean(&args);
        let count = totals.get(*column).copied().unwrap_or(0);
        assert!(
            count > 0,
            "{column} not counted with {states:?}: {totals:?}"
        );
    }
}

#[test]
fn dash_select_zero_only_logs_in_and_out() {
    let user = common::fresh_user();
    let mut args = base_args(&user, 2);
    args.extend(["-".into(), "select=0".into()]);
    let totals = run_clean(&args);
    let names: Vec<&str> = {
        let mut n: Vec<&str> = totals.keys().map(String::as_str).collect();
        n.sort_unstable();
        n
    };
    assert_eq!(names, ["Logi", "Logo"], "{totals:?}");
    assert!(totals["Logi"] > 10, "{totals:?}");
    assert!(totals["Logo"] > 10, "{totals:?}");
}

async fn message_count(user: &str, mailbox: &str) -> u32 {
    let lab = common::lab();
    let ep = Endpoint::resolve(
        "127.0.0.1",
        "127.0.0.1",
        lab.imap_port,
        &TlsSettings::default(),
        std::time::Duration::from_secs(10),
    )
    .await
    .unwrap();
    let mut client = ImapClient::connect(&ep, 1, &ClientOptions::default())
        .await
        .unwrap();
    assert!(client.login(user, lab.user_password).await.unwrap().is_ok());
    let done = client
        .simple(&format!("STATUS {mailbox} (MESSAGES)"))
        .await
        .unwrap();
    if !done.is_ok() {
        return 0;
    }
    let line = String::from_utf8_lossy(done.untagged[0].bytes()).into_owned();
    line.split("MESSAGES ")
        .nth(1)
        .and_then(|rest| rest.trim_end_matches([')', '\r', '\n']).parse().ok())
        .unwrap_or_else(|| panic!("no MESSAGES in {line}"))
}

#[tokio::test(flavor = "multi_thread")]
async fn append_only_really_adds_messages() {
    let user = common::fresh_user();
    let before = message_count(&user, "INBOX").await;
    let mut args = base_args(&user, 2);
    args.extend([
        format!("mbox={}", mbox()),
        "-".into(),
        "append=100,0".into(),
        "logout=0".into(),
        "msgs=10000000".into(),
    ]);
    let totals = tokio::task::spawn_blocking(move || run_clean(&args))
        .await
        .unwrap();
    let after = message_count(&user, "INBOX").await;
    assert!(totals["Appe"] > 0, "{totals:?}");
    assert!(
        u64::from(after - before) >= totals["Appe"],
        "STATUS says {before} -> {after} messages, imaptest counted {} APPENDs",
        totals["Appe"]
    );
}

/// Messages larger than the read-whole size are streamed from the mbox file while
/// APPEND sends them: what arrives is byte for byte the message (LF endings made CRLF).
#[tokio::test(flavor = "multi_thread")]
async fn streamed_appends_arrive_byte_exact() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("large.mbox");
    let mut text = String::new();
    for (n, size) in [(1, 300_000), (2, 500), (3, 150_000)] {
        text.push_str(&format!(
            "From a@b Thu Jan  {n} 00:00:00 2009\nSubject: m{n}\n\n"
        ));
        let mut i = 0;
        while text.len() < size * n {
            let end = if i % 3 == 0 { "\r\n" } else { "\n" };
            text.push_str(&format!("{n} line {i} {}{end}", "x".repeat(i % 80)));
            i += 1;
        }
    }
    std::fs::write(&path, &text).unwrap();
    let mbox = imaptest::mail::Mbox::open(&path).unwrap();
    let messages: Vec<Vec<u8>> = mbox.iter().map(|m| m.unwrap().data.to_vec()).collect();
    assert!(messages.iter().filter(|m| m.len() > 100_000).count() >= 2);

    let user = common::fresh_user();
    let mut args = base_args(&user, 2);
    args.extend([
        format!("mbox={}", path.display()),
        "-".into(),
        "append=100,0".into(),
        "logout=0".into(),
        "msgs=10000000".into(),
    ]);
    let totals = tokio::task::spawn_blocking(move || run_clean(&args))
        .await
        .unwrap();
    assert!(totals["Appe"] >= 3, "{totals:?}");

    let lab = common::lab();
    let ep = Endpoint::resolve(
        "127.0.0.1",
        "127.0.0.1",
        lab.imap_port,
        &TlsSettings::default(),
        std::time::Duration::from_secs(10),
    )
    .await
    .unwrap();
    let mut options = ClientOptions::default();
    options.limits.max_literal = 1 << 20;
    let mut client = ImapClient::connect(&ep, 1, &options).await.unwrap();
    assert!(
        client
            .login(&user, lab.user_password)
            .await
            .unwrap()
            .is_ok()
    );
    let selected = client.simple("SELECT INBOX").await.unwrap();
    assert!(selected.is_ok());
    let exists = selected
        .untagged
        .iter()
        .find_map(|r| {
            let text = String::from_utf8_lossy(r.bytes()).into_owned();
            text.strip_prefix("* ")?
                .strip_suffix(" EXISTS\r\n")?
                .parse::<u32>()
                .ok()
        })
        .expect("EXISTS in the SELECT reply");
    assert!(exists >= 3, "{exists} messages");
    // One message per FETCH: a reply to one command is bounded (docs/limits.md), and
    // the run appended many of the large messages.
    for seq in 1..=exists.min(12) {
        let done = client
            .simple(&format!("FETCH {seq} (BODY.PEEK[])"))
            .await
            .unwrap();
        assert!(done.is_ok(), "{}", done.line);
        let bytes = done.untagged.first().expect("a FETCH response").bytes();
        assert!(
            messages
                .iter()
                .any(|m| memchr::memmem::find(bytes, m).is_some()),
            "message {seq} is none of the mbox's ({} bytes)",
            bytes.len()
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn copybox_receives_copies() {
    let user = common::fresh_user();
    let mut args = base_args(&user, 2);
    args.extend([
        format!("mbox={}", mbox()),
        "copybox=Copies".into(),
        "-".into(),
        "append=100,0".into(),
        "copy=100".into(),
    ]);
    let totals = tokio::task::spawn_blocking(move || run_clean(&args))
        .await
        .unwrap();
    assert!(totals["Copy"] > 0, "{totals:?}");
    assert!(message_count(&user, "Copies").await > 0);
}

#[test]
fn same_seed_sends_the_same_commands() {
    let mut logs = Vec::new();
    for run in 0..2 {
        let user = common::fresh_user();
        let dir = tempfile::tempdir().unwrap();
        let mut args = base_args(&user, 2);
        args.extend([
            format!("mbox={}", mbox()),
            "clients=1".into(),
            "seed=42".into(),
            format!("rawlog={}", dir.path().display()),
            "search=30".into(),
            "sort=30".into(),
            "noop=20".into(),
        ]);
        run_clean(&args);
        // Connection 1's client lines, without timestamps and user names.
        let log = std::fs::read_to_string(dir.path().join("rawlog.1")).unwrap();
        let commands: Vec<String> = log
            .lines()
            .filter_map(|l| l.split_once(' ').map(|(_, rest)| rest))
            .filter(|l| l.starts_with("C: "))
            .map(|l| l.replace(&user, "USER"))
            .collect();
        assert!(commands.len() > 5, "run {run}: {commands:?}");
        logs.push(commands);
    }
    assert_eq!(logs[0], logs[1]);
}

#[test]
fn first_sigint_logs_out_and_prints_totals() {
    let user = common::fresh_user();
    let mut args = base_args(&user, 30);
    args.extend([
        "-".into(),
        "select=0".into(),
        "noop=100".into(),
        "logout=1".into(),
    ]);
    let child = Command::new(env!("CARGO_BIN_EXE_imaptest"))
        .args(&args)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("start imaptest");
    std::thread::sleep(std::time::Duration::from_secs(2));
    // SAFETY: sending a signal to our own child process.
    let rc = unsafe { libc::kill(child.id() as libc::pid_t, libc::SIGINT) };
    assert_eq!(rc, 0);
    let started = std::time::Instant::now();
    let out = child.wait_with_output().expect("wait");
    let stdout = text(&out.stdout);
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stdout}\n{stderr}");
    assert!(
        started.elapsed() < std::time::Duration::from_secs(10),
        "clients did not log out promptly"
    );
    assert!(
        stderr.contains("Received SIGINT - waiting for existing clients to finish"),
        "{stderr}"
    );
    let totals = totals(&stdout);
    assert!(totals["Noop"] > 0, "{totals:?}");
    // Every session that logged in also logged out.
    assert_eq!(totals["Logi"], totals["Logo"], "{totals:?}");
}

#[test]
fn compress_deflate_keeps_the_session_working() {
    let user = common::fresh_user();
    let dir = tempfile::tempdir().unwrap();
    let mut args = base_args(&user, 2);
    args.extend([
        format!("mbox={}", mbox()),
        format!("rawlog={}", dir.path().display()),
        "compress=100".into(),
        "noop=50".into(),
    ]);
    let totals = run_clean(&args);
    assert!(totals["Comp"] > 0, "{totals:?}");
    // Commands after COMPRESS were answered: FETCH and LOGOUT still count.
    assert!(totals["Fetc"] > 0 && totals["Logo"] > 0, "{totals:?}");
    let log = std::fs::read_to_string(dir.path().join("rawlog.1")).unwrap();
    let switch = log
        .find("COMPRESS DEFLATE started")
        .expect("compression started");
    // The rawlog shows the inflated conversation after the switch.
    assert!(log[switch..].contains("S: * BYE"), "{log}");
}
