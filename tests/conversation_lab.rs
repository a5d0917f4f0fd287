//! Client scripts (the ones in `examples/conversations/`) against the real Dovecot lab:
//! IMAP, IMAPS, IMAP STARTTLS, POP3 (plain and STLS), LMTP (plain and STARTTLS), and
//! negative scripts whose errors name the script line, the expected and received text.

mod common;

use std::path::{Path, PathBuf};
use std::time::Duration;

use imaptest::config::{TlsMode, TlsSettings};
use imaptest::conversation::{ClientOptions, ClientScript, Transcript, run_script};

fn example(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("examples/conversations")
        .join(name)
}

fn options(port: u16, mode: TlsMode) -> ClientOptions {
    let lab = common::lab();
    ClientOptions {
        host: "127.0.0.1".to_owned(),
        port,
        tls: TlsSettings {
            mode,
            accept_any_cert: false,
            ca_file: Some(lab.ca_file.clone()),
        },
        timeout: Duration::from_secs(15),
    }
}

async fn run_example(name: &str, port: u16, mode: TlsMode) -> String {
    let script = ClientScript::load(&example(name)).expect("example script parses");
    let (mut transcript, log) = Transcript::capture();
    let result = run_script(&script, &options(port, mode), &mut transcript).await;
    let log = log.text();
    match result {
        Ok(_) => log,
        Err(e) => panic!("{name} failed: {e}\n--- transcript ---\n{log}"),
    }
}

async fn run_text(text: &str, port: u16, mode: TlsMode) -> (Result<(), String>, String) {
    let script = ClientScript::parse("negative.client", text, Path::new(".")).unwrap();
    let (mut transcript, log) = Transcript::capture();
    let result = run_script(&script, &options(port, mode), &mut transcript)
        .await
        .map(|_| ())
        .map_err(|e| e.to_string());
    (result, log.text())
}

#[tokio::test]
async fn imap_plain() {
    let log = run_example("imap.client", common::lab().imap_port, TlsMode::Plain).await;
    assert!(log.contains("<<< a2 OK [READ-WRITE]"), "{log}");
    assert!(log.contains("<<< (connection closed)"), "{log}");
}

#[tokio::test]
async fn imaps_tls_on_connect() {
    let log = run_example("imap.client", common::lab().imaps_port, TlsMode::Implicit).await;
    assert!(log.contains("(TLS)"), "{log}");
}

#[tokio::test]
async fn imap_starttls() {
    let log = run_example(
        "imap-starttls.client",
        common::lab().imap_port,
        TlsMode::Plain,
    )
    .await;
    assert!(log.contains("Succeeded in starting TLS"), "{log}");
}

#[tokio::test]
async fn pop3_plain_and_stls() {
    let lab = common::lab();
    run_example("pop3.client", lab.pop3_port, TlsMode::Plain).await;
    let log = run_example("pop3-stls.client", lab.pop3_port, TlsMode::StartTls).await;
    assert!(log.contains("Succeeded in starting TLS"), "{log}");
}

#[tokio::test]
async fn lmtp_delivery_and_starttls() {
    let lab = common::lab();
    let log = run_example("lmtp.client", lab.lmtp_port, TlsMode::Plain).await;
    assert!(log.contains(">>> ..a line that starts with a dot"), "{log}");
    let log = run_example("lmtp-starttls.client", lab.lmtp_port, TlsMode::Plain).await;
    assert!(log.contains("Succeeded in starting TLS"), "{log}");
}

#[tokio::test]
async fn wrong_expectation_names_line_expected_and_received() {
    let lab = common::lab();
    // No failed logins here: they would earn 127.0.0.1 an auth penalty for everyone.
    let (result, log) = run_text(
        "??? * OK\na1 NOOP\n??? a1 NO\n",
        lab.imap_port,
        TlsMode::Plain,
    )
    .await;
    let err = result.expect_err("NOOP answers OK");
    assert!(
        err.starts_with(
            "negative.client:3: expected a line starting with \"a1 NO\", received \"a1 OK NOOP completed"
        ),
        "{err}\n{log}"
    );
    let (result, _) = run_text("??? * BYE\n", lab.imaps_port, TlsMode::Implicit).await;
    let err = result.expect_err("Dovecot greets with OK");
    assert!(
        err.starts_with(
            "negative.client:1: expected a line starting with \"* BYE\", received \"* OK [CAPABILITY IMAP4rev1 "
        ),
        "{err}"
    );
    assert!(err.ends_with(" ready.\""), "{err}");

    let (result, _) = run_text("??? +OK\nBOGUS\n??? +OK\n", lab.pop3_port, TlsMode::Plain).await;
    let err = result.expect_err("POP3 rejects BOGUS");
    assert!(
        err.starts_with(
            "negative.client:3: expected a line starting with \"+OK\", received \"-ERR"
        ),
        "{err}"
    );

    let (result, _) = run_text("??? 220\nLHLO x\n???*\n", lab.lmtp_port, TlsMode::Plain).await;
    let err = result.expect_err("LMTP answers LHLO");
    assert!(
        err.starts_with(
            "negative.client:3: expected the server to close the connection, received \"250"
        ),
        "{err}"
    );
}

#[tokio::test]
async fn certificate_is_checked() {
    // Trusting an unrelated CA instead of the lab's, the STARTTLS handshake must fail,
    // and the error names the script line.
    let lab = common::lab();
    let script = ClientScript::parse(
        "verify.client",
        "??? * OK\na1 STARTTLS\n??? a1 OK\n",
        Path::new("."),
    )
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let other_ca = dir.path().join("other-ca.pem");
    let other = rcgen::generate_simple_self_signed(vec!["localhost".to_owned()]).unwrap();
    std::fs::write(&other_ca, other.cert.pem()).unwrap();
    let mut opts = options(lab.imap_port, TlsMode::Plain);
    opts.tls.ca_file = Some(other_ca);
    let err = run_script(&script, &opts, &mut Transcript::discard())
        .await
        .unwrap_err()
        .to_string();
    assert!(
        err.starts_with("verify.client:3: cannot start TLS: TLS handshake with 127.0.0.1:"),
        "{err}"
    );
}
