//! Profile mode against misbehaving servers (fakes on loopback, for what a real server
//! won't do on demand) and interrupted runs: errors name the place, the run goes on,
//! counters stay consistent, nothing is lost.

mod common;

use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::process::{Command, Output};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// A fake LMTP server: every `refuse_every`-th RCPT gets 550, every `drop_every`-th
/// message is answered by closing the connection; everything else is accepted.
fn fake_lmtp(refuse_every: u64, drop_every: u64) -> (u16, Arc<AtomicU64>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let accepted = Arc::new(AtomicU64::new(0));
    let counters = (
        Arc::new(AtomicU64::new(0)),
        Arc::new(AtomicU64::new(0)),
        accepted.clone(),
    );
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(stream) = stream else { return };
            let counters = counters.clone();
            std::thread::spawn(move || {
                let _ = lmtp_session(stream, refuse_every, drop_every, &counters);
            });
        }
    });
    (port, accepted)
}

fn lmtp_session(
    stream: TcpStream,
    refuse_every: u64,
    drop_every: u64,
    (rcpts, messages, accepted): &(Arc<AtomicU64>, Arc<AtomicU64>, Arc<AtomicU64>),
) -> std::io::Result<()> {
    let mut reader = BufReader::new(stream.try_clone()?);
    let mut out = stream;
    out.write_all(b"220 fake LMTP\r\n")?;
    let mut recipient_ok = false;
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line)? == 0 {
            return Ok(());
        }
        let upper = line.to_ascii_uppercase();
        if upper.starts_with("LHLO") {
            out.write_all(b"250-fake\r\n250 8BITMIME\r\n")?;
        } else if upper.starts_with("MAIL") {
            out.write_all(b"250 2.1.0 ok\r\n")?;
        } else if upper.starts_with("RCPT") {
            let n = rcpts.fetch_add(1, Ordering::Relaxed) + 1;
            recipient_ok = n % refuse_every != 0;
            if recipient_ok {
                out.write_all(b"250 2.1.5 ok\r\n")?;
            } else {
                out.write_all(b"550 5.1.1 <x> mailbox unavailable (fake)\r\n")?;
            }
        } else if upper.starts_with("DATA") {
            if !recipient_ok {
                out.write_all(b"503 5.5.1 no valid recipients\r\n")?;
                continue;
            }
            out.write_all(b"354 go\r\n")?;
            // Message bytes need not be UTF-8 (random bodies are not).
            loop {
                let mut data = Vec::new();
                if reader.read_until(b'\n', &mut data)? == 0 {
                    return Ok(());
                }
                if data == b".\r\n" {
                    break;
                }
            }
            let n = messages.fetch_add(1, Ordering::Relaxed) + 1;
            if n % drop_every == 0 {
                return Ok(()); // closes the connection without a reply
            }
            accepted.fetch_add(1, Ordering::Relaxed);
            out.write_all(b"250 2.0.0 saved\r\n")?;
        } else if upper.starts_with("RSET") || upper.starts_with("NOOP") {
            out.write_all(b"250 ok\r\n")?;
        } else if upper.starts_with("QUIT") {
            out.write_all(b"221 bye\r\n")?;
            return Ok(());
        } else {
            out.write_all(b"500 what\r\n")?;
        }
    }
}

/// A fake IMAP server: LOGIN works; every second connection drops at SELECT.
fn fake_imap() -> u16 {
    fake_imap_with(Fault::DropEverySecondAtSelect)
}

#[derive(Clone, Copy, PartialEq)]
enum Fault {
    DropEverySecondAtSelect,
    /// NOOP is never answered (the connection stays open and quiet).
    HoldNoop,
}

fn fake_imap_with(fault: Fault) -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let connections = Arc::new(AtomicU64::new(0));
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(stream) = stream else { return };
            let n = connections.fetch_add(1, Ordering::Relaxed);
            std::thread::spawn(move || {
                let drop_at_select = fault == Fault::DropEverySecondAtSelect && n % 2 == 1;
                let _ = imap_session(stream, drop_at_select, fault == Fault::HoldNoop);
            });
        }
    });
    port
}

fn imap_session(stream: TcpStream, drop_at_select: bool, hold_noop: bool) -> std::io::Result<()> {
    let mut reader = BufReader::new(stream.try_clone()?);
    let mut out = stream;
    out.write_all(b"* OK [CAPABILITY IMAP4rev1 IDLE UIDPLUS MOVE] fake\r\n")?;
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line)? == 0 {
            return Ok(());
        }
        let mut words = line.split_whitespace();
        let (Some(tag), Some(cmd)) = (words.next(), words.next()) else {
            continue;
        };
        match cmd.to_ascii_uppercase().as_str() {
            "SELECT" if drop_at_select => return Ok(()),
            "NOOP" if hold_noop => {}
            "SELECT" => out.write_all(
                format!("* 0 EXISTS\r\n* OK [UIDVALIDITY 1] x\r\n* OK [UIDNEXT 1] x\r\n{tag} OK [READ-WRITE] selected\r\n").as_bytes(),
            )?,
            "LOGOUT" => {
                out.write_all(format!("* BYE bye\r\n{tag} OK done\r\n").as_bytes())?;
                return Ok(());
            }
            "IDLE" => {
                out.write_all(b"+ idling\r\n")?;
                let mut done = String::new();
                if reader.read_line(&mut done)? == 0 {
                    return Ok(());
                }
                out.write_all(format!("{tag} OK idle done\r\n").as_bytes())?;
            }
            _ => out.write_all(format!("{tag} OK done\r\n").as_bytes())?,
        }
    }
}

fn write_profile(dir: &Path, text: &str) -> std::path::PathBuf {
    let path = dir.join("faults.toml");
    std::fs::write(&path, text).unwrap();
    path
}

/// Runs `profile` against fake servers on 127.0.0.1 with random messages, plus `extra`.
fn run_fake(profile: &Path, extra: &[&str]) -> Output {
    let mut args = vec![
        format!("profile={}", profile.display()),
        "host=127.0.0.1".to_owned(),
        "random_msg_size=2000".to_owned(),
    ];
    args.extend(extra.iter().map(|a| (*a).to_owned()));
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    imaptest(&args)
}

fn imaptest(args: &[&str]) -> Output {
    Command::new(common::imaptest_bin())
        .args(args)
        .output()
        .unwrap()
}

/// Sums of the CSV's `deliveries` rows: (offered, delivered, refused, failed).
fn deliveries(csv: &str) -> (u64, u64, u64, u64) {
    let mut sums = (0, 0, 0, 0);
    for line in csv.lines().filter(|l| l.contains(",deliveries,")) {
        let f: Vec<&str> = line.split(',').collect();
        let n = |i: usize| f[i].parse::<u64>().unwrap_or(0);
        // count_per_s (recipients offered), ok_per_s, no_per_s, failed_per_s.
        sums.0 += n(5);
        sums.1 += n(6);
        sums.2 += n(7);
        sums.3 += n(9);
    }
    sums
}

#[test]
fn refused_and_dropped_deliveries_are_counted_and_the_run_goes_on() {
    let (port, accepted) = fake_lmtp(3, 5);
    let dir = tempfile::tempdir().unwrap();
    let profile = write_profile(
        dir.path(),
        &format!(
            r#"
[run]
duration = "2s"
seed = 1

[servers.lmtp]
port = {port}
max_parallel = 2

[[population]]
name = "recipients"
count = 4
username = "rcpt%{{username_idx}}@example.com"
clients = [{{ client = "none" }}]
inbox_delivery = "100ms"

[[client]]
name = "none"
connections = 0
"#
        ),
    );
    let csv = dir.path().join("t.csv");
    let out = run_fake(&profile, &[&format!("csv={}", csv.display())]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stdout}\n{stderr}");
    let (offered, delivered, refused, failed) = deliveries(&std::fs::read_to_string(&csv).unwrap());
    assert!(offered >= 60, "4 users every 100 ms for 2 s: {offered}");
    assert_eq!(
        offered,
        delivered + refused + failed,
        "every delivery accounted for"
    );
    assert!(
        refused > 0 && failed > 0,
        "refused {refused}, failed {failed}"
    );
    assert!(delivered > 0, "nothing was delivered");
    assert_eq!(
        delivered,
        accepted.load(Ordering::Relaxed),
        "delivered = saved by the server"
    );
    // Errors name the user, the recipient and the server's reply.
    assert!(
        stderr.contains("LMTP delivery to rcpt") && stderr.contains("refused: 550 5.1.1"),
        "{stderr}"
    );
    assert!(stderr.contains("connection closed"), "{stderr}");
    assert!(
        stdout.contains(&format!(
            "{offered} offered, {delivered} delivered, {refused} refused, {failed} failed"
        )),
        "{stdout}"
    );
    // Each refused delivery is one error of its kind; dropped ones are delivery-failed.
    let kinds = stdout
        .lines()
        .find_map(|l| l.strip_prefix("Errors by kind: "))
        .unwrap_or_else(|| panic!("no Errors by kind line: {stdout}"));
    assert!(
        kinds.contains(&format!("delivery-refused {refused}")),
        "{kinds}"
    );
    assert!(kinds.contains("delivery-failed "), "{kinds}");
}

#[test]
fn dropped_imap_sessions_are_reported_and_users_log_in_again() {
    let port = fake_imap();
    let dir = tempfile::tempdir().unwrap();
    let profile = write_profile(
        dir.path(),
        &format!(
            r#"
[run]
duration = "2s"
seed = 2

[servers.imap]
port = {port}

[[population]]
name = "users"
count = 3
username = "user%{{username_idx}}"
clients = [{{ client = "poller" }}]
session_length = "300ms"

[[client]]
name = "poller"
idle = false
poll_interval = "100ms"
login_interval = "100ms"
"#
        ),
    );
    let sessions = dir.path().join("s.csv");
    let out = run_fake(&profile, &[&format!("session_csv={}", sessions.display())]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stdout}\n{stderr}");
    // user[connection]: the command and what happened.
    let dropped = stderr
        .lines()
        .filter(|l| {
            l.starts_with("Error: user") && l.contains("SELECT \"INBOX\": connection closed")
        })
        .count();
    assert!(dropped >= 3, "{stderr}");
    // Sessions went on after the drops: more logins than users, and polls.
    let section = stdout.split("Client types:").nth(1).unwrap();
    let sessions_done: u64 = section
        .split("poller (imap): ")
        .nth(1)
        .and_then(|s| s.split(' ').next())
        .and_then(|n| n.parse().ok())
        .unwrap();
    assert!(sessions_done >= 9, "{stdout}");
    assert!(section.contains("NOOP"), "{stdout}");
    // Every session, dropped or not, has its CSV row, dropped ones with errors.
    let rows = std::fs::read_to_string(&sessions).unwrap();
    let rows: Vec<&str> = rows.lines().skip(1).collect();
    assert_eq!(rows.len() as u64, sessions_done, "{rows:?}");
    assert!(rows.iter().filter(|r| !r.ends_with(",0")).count() >= dropped);
}

#[test]
fn sigint_logs_out_and_prints_totals() {
    let lab = common::lab();
    let dir = tempfile::tempdir().unwrap();
    let user = common::fresh_user();
    let profile = write_profile(
        dir.path(),
        &format!(
            r#"
[run]
duration = "60s"
seed = 3

[servers.imap]
port = {}
[servers.lmtp]
port = {}

[[population]]
name = "one"
count = 1
username = "{user}"
clients = [{{ client = "idler" }}]
inbox_delivery = "200ms"

[[client]]
name = "idler"
"#,
            lab.imap_port, lab.lmtp_port
        ),
    );
    let sessions = dir.path().join("s.csv");
    let csv = dir.path().join("t.csv");
    let child = Command::new(common::imaptest_bin())
        .args([
            &format!("profile={}", profile.display()),
            &format!("host={}", lab.host),
            &format!("pass={}", lab.user_password),
            "random_msg_size=2000",
            &format!("session_csv={}", sessions.display()),
            &format!("csv={}", csv.display()),
        ])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_secs(2));
    // SAFETY: sending a signal to our own child.
    let rc = unsafe { libc::kill(child.id() as libc::pid_t, libc::SIGINT) };
    assert_eq!(rc, 0);
    let started = std::time::Instant::now();
    let out = child.wait_with_output().unwrap();
    assert!(
        started.elapsed() < Duration::from_secs(20),
        "SIGINT did not stop the run"
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stdout}\n{stderr}");
    assert!(
        stdout.contains("Totals:") && stdout.contains("Deliveries: "),
        "{stdout}"
    );
    // The session was logged out properly and written.
    let rows = std::fs::read_to_string(&sessions).unwrap();
    assert_eq!(rows.lines().count(), 2, "{rows}");
    assert!(
        rows.lines()
            .nth(1)
            .unwrap()
            .starts_with(&format!("{user},one,idler,imap,")),
        "{rows}"
    );
    assert!(!stderr.contains("Error:"), "{stderr}");
    let (offered, delivered, _, _) = deliveries(&std::fs::read_to_string(&csv).unwrap());
    assert!(
        offered >= 5 && offered == delivered,
        "{offered} {delivered}"
    );
}

#[path = "support/lying_proxy.rs"]
mod lying_proxy;

/// Profile mode checks replies against the mailbox model as stress mode does: a proxy
/// lying about sizes or UIDs is caught by a webmail client re-fetching its window.
#[test]
fn profile_sessions_catch_a_lying_server() {
    use lying_proxy::{Lie, LyingProxy};
    let lab = common::lab();
    for (lie, expected, kinds) in [
        (
            Lie::Rfc822Size,
            "RFC822.SIZE changed",
            &["size-changed"][..],
        ),
        (Lie::Uid, "UID", &["uid-changed", "uid-order"][..]),
    ] {
        let proxy = LyingProxy::start(lab.imap_addr(), lie);
        let dir = tempfile::tempdir().unwrap();
        let user = common::fresh_user();
        let profile = write_profile(
            dir.path(),
            &format!(
                r#"
[run]
duration = "3s"
seed = 4

[servers.imap]
port = {}
[servers.lmtp]
port = {}

[[population]]
name = "web"
count = 1
username = "{user}"
clients = [{{ client = "webmail" }}]
inbox_delivery = "250ms"

[[client]]
name = "webmail"
idle = false
poll_interval = "200ms"
cache = false
fetch_on_arrival = "UID FLAGS RFC822.SIZE"
"#,
                proxy.port(),
                lab.lmtp_port
            ),
        );
        let out = imaptest(&[
            &format!("profile={}", profile.display()),
            &format!("host={}", lab.host),
            &format!("pass={}", lab.user_password),
            "random_msg_size=2000",
        ]);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(proxy.lies() > 0, "{lie:?}: the lie never came up");
        let caught = stderr
            .lines()
            .any(|l| l.starts_with(&format!("Error: {user}[")) && l.contains(expected));
        assert!(caught, "{lie:?} not reported:\n{stderr}");
        // And counted under its kind after Totals.
        let stdout = String::from_utf8_lossy(&out.stdout);
        let counted = stdout
            .lines()
            .find_map(|l| l.strip_prefix("Errors by kind: "))
            .is_some_and(|l| kinds.iter().any(|k| l.contains(&format!("{k} "))));
        assert!(counted, "{lie:?} not counted as {kinds:?}:\n{stdout}");
    }
}

/// A client whose session is lost logs in again by itself (after 1 s, doubling while
/// it fails), even when the schedule keeps it logged in for the whole run.
#[test]
fn lost_sessions_reconnect_by_themselves() {
    let port = fake_imap();
    let dir = tempfile::tempdir().unwrap();
    let profile = write_profile(
        dir.path(),
        &format!(
            r#"
[run]
duration = "3500ms"
seed = 9

[servers.imap]
port = {port}

[[population]]
name = "users"
count = 4
username = "user%{{username_idx}}"
clients = [{{ client = "desktop" }}]

[[client]]
name = "desktop"
"#
        ),
    );
    let sessions = dir.path().join("s.csv");
    let out = run_fake(&profile, &[&format!("session_csv={}", sessions.display())]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stdout}\n{stderr}");
    let dropped = stderr.matches("connection closed").count();
    assert!(dropped >= 2, "{stderr}");
    // 4 scheduled logins, plus at least one reconnect per drop in the first 2.5 s.
    let rows = std::fs::read_to_string(&sessions).unwrap();
    let logins = rows.lines().skip(1).count();
    assert!(logins >= 4 + 2, "{logins} sessions:\n{rows}\n{stderr}");
    // Those that got through stayed logged in (IDLE) until the end and logged out.
    assert!(stdout.contains("IDLE"), "{stdout}");
    assert!(!stderr.contains("IDLE refused"), "{stderr}");
    let ended_at_the_end = rows
        .lines()
        .skip(1)
        .filter(|r| r.split(',').nth(6).and_then(|d| d.parse::<u64>().ok()) > Some(2000))
        .count();
    assert!(ended_at_the_end >= 2, "sessions that stayed: {rows}");
}

/// A server that stops answering shows on the console as a stalled connection, and
/// the run still ends on time.
#[test]
fn a_silent_server_shows_as_stalled() {
    let port = fake_imap_with(Fault::HoldNoop);
    let dir = tempfile::tempdir().unwrap();
    let profile = write_profile(
        dir.path(),
        &format!(
            r#"
[run]
duration = "6s"

[servers.imap]
port = {port}

[[population]]
name = "users"
count = 1
username = "user%{{username_idx}}"
clients = [{{ client = "poller" }}]

[[client]]
name = "poller"
idle = false
poll_interval = "500ms"
"#
        ),
    );
    let started = std::time::Instant::now();
    let out = run_fake(&profile, &["secs=6,1"]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("(1 stalled >3s)"), "{stdout}");
    assert!(
        started.elapsed() < Duration::from_secs(15),
        "the run did not end on time"
    );
    assert!(stdout.contains("Totals:"), "{stdout}");
}
