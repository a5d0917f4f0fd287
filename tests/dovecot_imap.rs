//! The connection layer and authentication against the real lab Dovecot.

mod common;

use std::time::Duration;

use imaptest::config::{TlsMode, TlsSettings};
use imaptest::imap::client::{ClientError, ClientOptions, ImapClient, LoginRequest};
use imaptest::net::Endpoint;
use imaptest::sasl::ScramCache;

async fn endpoint(host: &str, port: u16, tls: TlsSettings) -> Endpoint {
    Endpoint::resolve(host, "127.0.0.1", port, &tls, Duration::from_secs(10))
        .await
        .expect("resolve")
}

fn plain() -> TlsSettings {
    TlsSettings::default()
}

fn verified(mode: TlsMode) -> TlsSettings {
    TlsSettings {
        mode,
        accept_any_cert: false,
        ca_file: Some(common::lab().ca_file.clone()),
    }
}

async fn log_in(
    client: &mut ImapClient,
    user: &str,
    password: &str,
    mech: &str,
    master: Option<&str>,
) -> Result<imaptest::imap::Completion, ClientError> {
    let cache = ScramCache::default();
    client
        .log_in(&LoginRequest {
            user,
            password,
            mech: imaptest::config::Mech::parse(mech).expect("a known mech"),
            master,
            scram_cache: &cache,
        })
        .await
}

async fn connect_plain() -> ImapClient {
    let lab = common::lab();
    let ep = endpoint("127.0.0.1", lab.imap_port, plain()).await;
    ImapClient::connect(&ep, 1, &ClientOptions::default())
        .await
        .expect("connect")
}

#[tokio::test]
async fn login_command_succeeds_and_logout_sees_bye() {
    let lab = common::lab();
    let mut client = connect_plain().await;
    assert!(client.capabilities().has("IMAP4rev1"));
    let done = client.login("testuser1", lab.user_password).await.unwrap();
    assert!(done.is_ok(), "{}", done.line);
    let done = client.logout().await.unwrap();
    assert!(done.is_ok());
}

#[tokio::test]
async fn wrong_password_is_a_tagged_no() {
    let mut client = connect_plain().await;
    let done = client.login("testuser1", "not-the-password").await.unwrap();
    assert!(!done.is_ok(), "{}", done.line);
    assert!(done.line.contains("NO"), "{}", done.line);
}

#[tokio::test]
async fn authenticate_plain_scram_sha1_scram_sha256() {
    let lab = common::lab();
    for mech in ["PLAIN", "SCRAM-SHA-1", "SCRAM-SHA-256"] {
        let mut client = connect_plain().await;
        assert!(
            client.capabilities().has_auth(mech),
            "lab does not offer {mech}"
        );
        let done = log_in(&mut client, "testuser2", lab.user_password, mech, None)
            .await
            .unwrap_or_else(|e| panic!("{mech}: {e}"));
        assert!(done.is_ok(), "{mech}: {}", done.line);
        // The session is really authenticated: SELECT works.
        let done = client.simple("SELECT INBOX").await.unwrap();
        assert!(done.is_ok(), "{mech}: {}", done.line);
    }
}

#[tokio::test]
async fn scram_with_wrong_password_fails() {
    let mut client = connect_plain().await;
    let done = log_in(&mut client, "testuser2", "wrong", "SCRAM-SHA-256", None).await;
    match done {
        Ok(done) => assert!(!done.is_ok(), "{}", done.line),
        Err(e) => assert!(e.to_string().contains("SCRAM"), "{e}"),
    }
}

#[tokio::test]
async fn master_user_logs_in_on_behalf_of_a_user() {
    let lab = common::lab();
    for mech in ["LOGIN", "PLAIN", "SCRAM-SHA-256"] {
        let mut client = connect_plain().await;
        let done = log_in(
            &mut client,
            "testuser3",
            lab.master_password,
            mech,
            Some(lab.master_user),
        )
        .await
        .unwrap_or_else(|e| panic!("{mech}: {e}"));
        if mech == "SCRAM-SHA-256" && !done.is_ok() {
            // Dovecot 2.3 does not accept an authzid with SCRAM; PLAIN is the master path.
            continue;
        }
        assert!(done.is_ok(), "{mech}: {}", done.line);
        // We are testuser3, not the master: NAMESPACE/SELECT work on testuser3's INBOX.
        let done = client.simple("SELECT INBOX").await.unwrap();
        assert!(done.is_ok(), "{}", done.line);
    }
}

#[tokio::test]
async fn imaps_with_test_ca_is_verified() {
    let lab = common::lab();
    for host in ["localhost", "127.0.0.1"] {
        let ep = endpoint(host, lab.imaps_port, verified(TlsMode::Implicit)).await;
        let mut client = ImapClient::connect(&ep, 1, &ClientOptions::default())
            .await
            .unwrap_or_else(|e| panic!("{host}: {e}"));
        assert!(client.stream().is_tls());
        let done = client.login("testuser4", lab.user_password).await.unwrap();
        assert!(done.is_ok(), "{}", done.line);
    }
}

#[tokio::test]
async fn imaps_with_any_cert_needs_no_ca() {
    let lab = common::lab();
    let tls = TlsSettings {
        mode: TlsMode::Implicit,
        accept_any_cert: true,
        ca_file: None,
    };
    let ep = endpoint("localhost", lab.imaps_port, tls).await;
    let mut client = ImapClient::connect(&ep, 1, &ClientOptions::default())
        .await
        .expect("any-cert connect");
    assert!(client.stream().is_tls());
}

#[tokio::test]
async fn unverified_certificate_is_refused_by_default() {
    let lab = common::lab();
    let tls = TlsSettings {
        mode: TlsMode::Implicit,
        accept_any_cert: false,
        ca_file: None,
    };
    let ep = endpoint("localhost", lab.imaps_port, tls).await;
    let err = ImapClient::connect(&ep, 1, &ClientOptions::default())
        .await
        .expect_err("a self-made CA must not be trusted");
    let text = err.to_string();
    assert!(text.contains("TLS handshake"), "{text}");
    assert!(text.to_lowercase().contains("certificate"), "{text}");
}

#[tokio::test]
async fn wrong_host_name_is_refused_even_with_the_ca() {
    let lab = common::lab();
    let ep = endpoint(
        "mail.example.org",
        lab.imaps_port,
        verified(TlsMode::Implicit),
    )
    .await;
    let err = ImapClient::connect(&ep, 1, &ClientOptions::default())
        .await
        .expect_err("certificate is for localhost only");
    assert!(err.to_string().contains("TLS handshake"), "{err}");
}

#[tokio::test]
async fn starttls_upgrades_and_relearns_capabilities() {
    let lab = common::lab();
    let ep = endpoint("localhost", lab.imap_port, verified(TlsMode::StartTls)).await;
    let mut client = ImapClient::connect(&ep, 1, &ClientOptions::default())
        .await
        .expect("starttls");
    assert!(client.stream().is_tls());
    // After STARTTLS the server no longer offers STARTTLS.
    assert!(!client.capabilities().has("STARTTLS"));
    assert!(client.capabilities().has("IMAP4rev1"));
    let done = client.login("testuser5", lab.user_password).await.unwrap();
    assert!(done.is_ok(), "{}", done.line);
}

#[tokio::test]
async fn rawlog_masks_passwords_and_sasl_responses() {
    let lab = common::lab();
    let dir = tempfile::tempdir().unwrap();
    let ep = endpoint("127.0.0.1", lab.imap_port, plain()).await;
    let options = ClientOptions {
        rawlog_dir: Some(dir.path().to_owned()),
        ..ClientOptions::default()
    };
    let mut client = ImapClient::connect(&ep, 41, &options).await.unwrap();
    let done = client.login("testuser6", lab.user_password).await.unwrap();
    assert!(done.is_ok());
    client.logout().await.unwrap();
    let mut client = ImapClient::connect(&ep, 42, &options).await.unwrap();
    let done = log_in(&mut client, "testuser6", lab.user_password, "PLAIN", None)
        .await
        .unwrap();
    assert!(done.is_ok());
    client.logout().await.unwrap();

    let login_log = std::fs::read_to_string(dir.path().join("rawlog.41")).unwrap();
    assert!(
        login_log.contains("C: 41.1 LOGIN \"testuser6\" <hidden>"),
        "{login_log}"
    );
    assert!(login_log.contains("S: * OK"), "{login_log}");
    let plain_log = std::fs::read_to_string(dir.path().join("rawlog.42")).unwrap();
    assert!(
        plain_log.contains("AUTHENTICATE PLAIN <hidden>"),
        "{plain_log}"
    );
    use base64::Engine as _;
    let encoded = base64::engine::general_purpose::STANDARD
        .encode(format!("\0testuser6\0{}", lab.user_password));
    for log in [&login_log, &plain_log] {
        let quoted = format!("\"{}\"", lab.user_password);
        assert!(!log.contains(&quoted), "password in rawlog: {log}");
        assert!(!log.contains(&encoded), "SASL response in rawlog: {log}");
    }
}
