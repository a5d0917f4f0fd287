//! Replays of real servers' replies (docs/servers.md): each named quirk is reported
//! under its own kind, the legal oddities are accepted, and a tagged BAD does not end
//! the session. Replies were recorded from the labs (`scripts/cyrus-lab`,
//! `scripts/courier-lab`); the quoted header-field echo is replayed by a proxy in
//! front of the real Dovecot lab.

mod common;
#[path = "support/lying_proxy.rs"]
mod lying_proxy;
#[path = "support/replay_server.rs"]
mod replay_server;

use std::path::Path;
use std::time::Duration;

use imaptest::config::{Common, ScriptedSettings};
use imaptest::control::RunState;
use imaptest::metrics::ErrorKind;
use imaptest::scripted::report::TestResult;
use lying_proxy::{Lie, LyingProxy};
use replay_server::{ReplayServer, reply, reply_once};

/// Runs one scripted test file (`name`: `text`) against `server`.
async fn run_script(server: &ReplayServer, name: &str, text: &str) -> TestResult {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join(name), text).unwrap();
    let mut settings = Common {
        host: "127.0.0.1".into(),
        port: Some(server.addr.port()),
        timeout: Duration::from_secs(10),
        ..Common::default()
    };
    settings.user.template = "testuser1".into();
    settings.user.password = "pass".into();
    let scripted = ScriptedSettings::new(dir.path().to_owned());
    let (_keep, running) = tokio::sync::watch::channel(RunState::Running);
    let mut results = imaptest::scripted::run_tests(&settings, &scripted, None, running, |_| {})
        .await
        .unwrap();
    assert_eq!(results.len(), 1, "{results:?}");
    results.remove(0)
}

fn failures(r: &TestResult) -> String {
    r.failures.join("\n")
}

#[tokio::test]
async fn courier_bad_for_a_tilde_atom_is_named() {
    // Courier-IMAP 5.0.13: `LIST "" ~foo` -> `BAD Invalid command`.
    let server = ReplayServer::start(
        "IMAP4rev1",
        vec![reply("LIST \"\" ~foo", &["{tag} BAD Invalid command"])],
    );
    let r = run_script(&server, "atoms", "state: auth\n\nok list \"\" ~foo\n").await;
    assert_eq!(r.quirks, vec![ErrorKind::TildeAtomBad], "{}", failures(&r));
    assert!(
        failures(&r).contains("known server quirk: tilde-atom-bad"),
        "{}",
        failures(&r)
    );
}

#[tokio::test]
async fn cyrus_delete_twice_within_a_second_is_named() {
    // Cyrus IMAP 3.6.1 with delete_mode: delayed (create, delete, create, delete).
    let server = ReplayServer::start(
        "IMAP4rev1",
        vec![
            reply_once("DELETE foo/bar", &["{tag} OK Completed"]),
            reply("DELETE foo/bar", &["{tag} NO Mailbox already exists"]),
        ],
    );
    let script = "state: auth\n\nok create foo/bar\nok delete foo/bar\nok create foo/bar\nok delete foo/bar\n";
    let r = run_script(&server, "delete-twice", script).await;
    assert_eq!(
        r.quirks,
        vec![ErrorKind::DeleteSaysExists],
        "{}",
        failures(&r)
    );
    assert_eq!(r.failures.len(), 1, "{}", failures(&r));
}

#[tokio::test]
async fn cyrus_refused_genurlauth_is_named() {
    // Cyrus IMAP 3.6.1: RESETKEY succeeds, GENURLAUTH still fails.
    let server = ReplayServer::start(
        "IMAP4rev1 URLAUTH",
        vec![
            reply("RESETKEY", &["{tag} OK [URLMECH INTERNAL] key removed"]),
            reply(
                "GENURLAUTH",
                &[
                    "{tag} NO Error authorizing imap://testuser1@127.0.0.1/imaptest/;uid=1;urlauth=user+testuser1: not a cyrusdb error",
                ],
            ),
        ],
    );
    let script = "capabilities: urlauth\nstate: auth\n\nok resetkey\n\
                  ok genurlauth \"imap://$username@$domain/INBOX/;uid=1;urlauth=user+$user\" internal\n\
                  * genurlauth $url\n";
    let r = run_script(&server, "urlauth", script).await;
    assert_eq!(
        r.quirks,
        vec![ErrorKind::GenurlauthRefused],
        "{}",
        failures(&r)
    );
}

#[tokio::test]
async fn nil_inbox_delimiter_binds_the_variable() {
    // A server whose INBOX has no hierarchy (RFC 3501 §7.2.2 allows NIL): upstream's
    // `list` test binds `$inboxsep` to it.
    let server = ReplayServer::start(
        "IMAP4rev1",
        vec![reply(
            "LIST \"\" INBOX",
            &["* LIST () NIL INBOX", "{tag} OK done"],
        )],
    );
    let script = "state: auth\n\nok list \"\" INBOX\n* list () $inboxsep INBOX\n\n\
                  ok list \"\" INBOX\n* list () $inboxsep INBOX\n";
    let r = run_script(&server, "list", script).await;
    assert!(r.failures.is_empty(), "{}", failures(&r));
}

#[tokio::test]
async fn a_tagged_bad_keeps_the_session_and_its_later_findings() {
    // One deviation (BAD for NOOP) must not hide the next (a wrong STATUS count).
    let server = ReplayServer::start(
        "IMAP4rev1",
        vec![
            reply("NOOP", &["{tag} BAD Unknown command"]),
            reply("STATUS", &["* STATUS INBOX (MESSAGES 2)", "{tag} OK done"]),
        ],
    );
    let script =
        "state: auth\n\nok noop\n\nok status INBOX (messages)\n* status INBOX (messages 1)\n";
    let r = run_script(&server, "bad", script).await;
    let text = failures(&r);
    assert!(text.contains("got 'BAD Unknown command'"), "{text}");
    assert!(
        text.contains("messages 1"),
        "the STATUS after the BAD was not checked:\n{text}"
    );
    assert!(!text.contains("Unexpected disconnection"), "{text}");
}

fn write_mbox(dir: &Path) -> std::path::PathBuf {
    let path = dir.join("quirks.mbox");
    let status = std::process::Command::new(common::imaptest_bin())
        .args([
            "mbox-gen".to_owned(),
            format!("out={}", path.display()),
            "count=60".into(),
            "seed=3".into(),
        ])
        .status()
        .unwrap();
    assert!(status.success());
    path
}

#[test]
fn courier_quoted_header_field_echo_is_accepted() {
    // The real Dovecot behind a proxy that echoes `BODY[HEADER.FIELDS ("To" "From")]`
    // as Courier does: a correct server, so no error at all.
    let lab = common::lab();
    let proxy = LyingProxy::start(lab.imap_addr(), Lie::QuoteHeaderFieldNames);
    let dir = tempfile::tempdir().unwrap();
    let mbox = write_mbox(dir.path());
    let users: Vec<String> = (0..3).map(|_| common::fresh_user()).collect();
    let userfile = dir.path().join("users");
    std::fs::write(&userfile, users.join("\n") + "\n").unwrap();
    let out = std::process::Command::new(common::imaptest_bin())
        .args([
            "host=127.0.0.1".to_owned(),
            format!("port={}", proxy.port()),
            format!("userfile={}", userfile.display()),
            format!("pass={}", lab.user_password),
            format!("mbox={}", mbox.display()),
            "clients=3".into(),
            "secs=5".into(),
            // FETCH2's HEADER.FIELDS and FETCH's random header lists.
            "fetch2=100".into(),
        ])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stdout}\n{stderr}");
    assert!(proxy.lies() > 20, "too few quoted echoes: {}", proxy.lies());
    assert!(!stderr.contains("Error:"), "{stderr}");
    assert!(!stdout.contains("Errors by kind"), "{stdout}");
}
