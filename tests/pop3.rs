//! The POP3 client against the real lab Dovecot; mail arrives through the LMTP client.

mod common;

use std::time::{Duration, SystemTime};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use imaptest::config::{TlsMode, TlsSettings};
use imaptest::lmtp::{self, LmtpClient, LmtpOptions};
use imaptest::net::Endpoint;
use imaptest::pop3::{Pop3Client, Pop3Error, Pop3Options};
use imaptest::sasl::{Credentials, ScramCache};

async fn endpoint(port: u16, mode: TlsMode) -> Endpoint {
    let tls = TlsSettings {
        mode,
        accept_any_cert: false,
        ca_file: Some(common::lab().ca_file.clone()),
    };
    Endpoint::resolve(
        "localhost",
        "127.0.0.1",
        port,
        &tls,
        Duration::from_secs(10),
    )
    .await
    .expect("resolve")
}

async fn connect_with(mode: TlsMode, options: &Pop3Options) -> Pop3Client {
    let ep = endpoint(common::lab().pop3_port, mode).await;
    Pop3Client::connect(&ep, 1, options).await.expect("connect")
}

async fn connect() -> Pop3Client {
    connect_with(TlsMode::Plain, &Pop3Options::default()).await
}

/// Delivers `message` to `user` over LMTP.
async fn deliver(user: &str, message: &[u8]) {
    let ep = endpoint(common::lab().lmtp_port, TlsMode::Plain).await;
    let mut client = LmtpClient::connect(&ep, 9, &LmtpOptions::default())
        .await
        .unwrap();
    let delivery = client.deliver("", &[user], message).await.unwrap();
    assert!(delivery.all_delivered(), "{delivery:?}");
    client.quit().await.unwrap();
}

fn message(subject: &str, body: &str) -> Vec<u8> {
    format!(
        "From: sender@example.com\r\nTo: rcpt@example.com\r\nSubject: {subject}\r\n\
         Message-ID: <{subject}.pop3@imaptest>\r\n\r\n{body}"
    )
    .into_bytes()
}

/// The body of a message (after the first empty line).
fn body_of(message: &[u8]) -> &[u8] {
    let at = message
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("header end");
    &message[at + 4..]
}

#[tokio::test]
async fn greeting_and_capa() {
    let mut client = connect().await;
    assert!(client.greeting().contains("ready"), "{}", client.greeting());
    assert!(client.capabilities().is_none());
    let caps = client.capa().await.unwrap();
    for tag in ["TOP", "UIDL", "USER", "STLS", "PIPELINING", "RESP-CODES"] {
        assert!(caps.has(tag), "{tag} missing: {caps:?}");
    }
    assert!(caps.has_sasl("PLAIN") && caps.has_sasl("SCRAM-SHA-256"));
    client.quit().await.unwrap();
}

#[tokio::test]
async fn user_pass_and_empty_maildrop() {
    let user = common::fresh_user();
    let mut client = connect().await;
    client
        .user_pass(&user, common::lab().user_password)
        .await
        .unwrap();
    let stat = client.stat().await.unwrap();
    assert_eq!((stat.count, stat.size), (0, 0));
    assert!(client.list().await.unwrap().is_empty());
    assert!(client.uidl().await.unwrap().is_empty());
    client.noop().await.unwrap();
    let err = client.retr(1).await.unwrap_err();
    assert!(err.to_string().starts_with("RETR 1 failed: -ERR"), "{err}");
    assert!(err.is_recoverable());
    client.quit().await.unwrap();
}

#[tokio::test]
async fn wrong_password_quotes_the_err_line() {
    let mut client = connect().await;
    let err = client.user_pass("testuser1", "wrong").await.unwrap_err();
    assert!(matches!(err, Pop3Error::Err { .. }), "{err}");
    assert!(err.to_string().starts_with("PASS failed: -ERR"), "{err}");
    assert!(
        err.err_line().unwrap().contains("Authentication failed"),
        "{err}"
    );
    assert!(
        !err.to_string().contains("wrong"),
        "password in error: {err}"
    );

    let cache = ScramCache::default();
    for mech in ["PLAIN", "SCRAM-SHA-256"] {
        let err = client
            .auth(mech, Credentials::new("testuser1", "wrong"), &cache)
            .await
            .unwrap_err();
        assert!(
            err.to_string()
                .starts_with(&format!("AUTH {mech} failed: -ERR")),
            "{err}"
        );
    }
    // The connection is still usable after the failures.
    client
        .user_pass("testuser1", common::lab().user_password)
        .await
        .unwrap();
    client.quit().await.unwrap();
}

#[tokio::test]
async fn auth_plain_and_scram_with_and_without_initial_response() {
    let lab = common::lab();
    let cache = ScramCache::default();
    for mech in ["PLAIN", "SCRAM-SHA-1", "SCRAM-SHA-256"] {
        for capa_first in [true, false] {
            let mut client = connect().await;
            if capa_first {
                client.capa().await.unwrap();
            }
            let text = client
                .auth(
                    mech,
                    Credentials::new("testuser1", lab.user_password),
                    &cache,
                )
                .await
                .unwrap_or_else(|e| panic!("{mech} capa_first={capa_first}: {e}"));
            assert!(!text.is_empty());
            client.stat().await.unwrap();
            client.quit().await.unwrap();
        }
    }
}

#[tokio::test]
async fn stls_with_the_lab_ca() {
    let mut client = connect_with(TlsMode::StartTls, &Pop3Options::default()).await;
    assert!(client.is_tls());
    let caps = client.capa().await.unwrap();
    assert!(!caps.has("STLS"), "STLS offered inside TLS: {caps:?}");
    let cache = ScramCache::default();
    client
        .auth(
            "SCRAM-SHA-256",
            Credentials::new("testuser1", common::lab().user_password),
            &cache,
        )
        .await
        .unwrap();
    client.quit().await.unwrap();
}

#[tokio::test]
async fn delivered_message_stat_list_uidl_retr_top_dele() {
    let user = common::fresh_user();
    let body = "first line\r\n.dot line\r\n..two\r\n\r\nlast\r\n";
    let sent = SystemTime::now();
    let msg = lmtp::with_marker(&message("retr", body), &lmtp::marker(7, sent));
    deliver(&user, &msg).await;

    let lab = common::lab();
    let mut client = connect().await;
    client.user_pass(&user, lab.user_password).await.unwrap();
    let stat = client.stat().await.unwrap();
    assert_eq!(stat.count, 1);
    let list = client.list().await.unwrap();
    assert_eq!(list.len(), 1);
    assert_eq!((list[0].msg, list[0].size), (1, stat.size));
    assert_eq!(client.list_one(1).await.unwrap(), list[0]);
    let uidl = client.uidl().await.unwrap();
    assert_eq!(uidl.len(), 1);
    assert_eq!(client.uidl_one(1).await.unwrap(), uidl[0]);

    let got = client.retr(1).await.unwrap();
    assert_eq!(got.data.len() as u64, stat.size, "size as LIST said");
    assert_eq!(got.announced_size, Some(stat.size), "+OK <size> octets");
    assert_eq!(body_of(&got.data), body.as_bytes(), "body arrives exactly");
    // Dovecot adds headers (Return-Path, Delivered-To, Received) but keeps ours.
    assert!(got.data.ends_with(&msg[msg.len() - 200.min(msg.len())..]));
    assert_eq!(lmtp::parse_marker(&got.data), Some((7, sent)));

    let top = client.top(1, 1).await.unwrap();
    assert!(
        top.data.ends_with(b"\r\n\r\nfirst line\r\n"),
        "{:?}",
        top.data
    );
    assert_eq!(top.announced_size, None);
    let top0 = client.top(1, 0).await.unwrap();
    assert_eq!(body_of(&top0.data), b"");

    client.dele(1).await.unwrap();
    let err = client.retr(1).await.unwrap_err();
    assert!(err.to_string().contains("-ERR"), "{err}");
    client.rset().await.unwrap();
    assert_eq!(client.stat().await.unwrap().count, 1, "RSET undeletes");
    client.dele(1).await.unwrap();
    assert_eq!(
        client.stat().await.unwrap().count,
        0,
        "deleted ones are hidden"
    );
    client.quit().await.unwrap();

    let mut client = connect().await;
    client.user_pass(&user, lab.user_password).await.unwrap();
    let stat = client.stat().await.unwrap();
    assert_eq!((stat.count, stat.size), (0, 0), "QUIT committed DELE");
    client.quit().await.unwrap();
}

#[tokio::test]
async fn several_messages_in_order() {
    let user = common::fresh_user();
    for i in 0..3 {
        deliver(&user, &message(&format!("n{i}"), &format!("body {i}\r\n"))).await;
    }
    let mut client = connect().await;
    client
        .user_pass(&user, common::lab().user_password)
        .await
        .unwrap();
    let uidl = client.uidl().await.unwrap();
    assert_eq!(uidl.iter().map(|e| e.msg).collect::<Vec<_>>(), [1, 2, 3]);
    let mut uids: Vec<_> = uidl.iter().map(|e| e.uid.clone()).collect();
    uids.dedup();
    assert_eq!(uids.len(), 3, "unique ids");
    for (i, entry) in uidl.iter().enumerate() {
        let got = client.retr(entry.msg).await.unwrap();
        assert_eq!(body_of(&got.data), format!("body {i}\r\n").as_bytes());
    }
    client.quit().await.unwrap();
}

#[tokio::test]
async fn rawlog_masks_pass_and_auth() {
    let dir = tempfile::tempdir().unwrap();
    let options = Pop3Options {
        rawlog_dir: Some(dir.path().to_owned()),
        ..Pop3Options::default()
    };
    let password = common::lab().user_password;
    let ep = endpoint(common::lab().pop3_port, TlsMode::Plain).await;
    let cache = ScramCache::default();

    let mut client = Pop3Client::connect(&ep, 51, &options).await.unwrap();
    client.user_pass("testuser1", password).await.unwrap();
    client.quit().await.unwrap();

    let mut client = Pop3Client::connect(&ep, 52, &options).await.unwrap();
    client.capa().await.unwrap();
    client
        .auth("PLAIN", Credentials::new("testuser1", password), &cache)
        .await
        .unwrap();
    client.quit().await.unwrap();

    let mut client = Pop3Client::connect(&ep, 53, &options).await.unwrap();
    client
        .auth("PLAIN", Credentials::new("testuser1", password), &cache)
        .await
        .unwrap();
    client.quit().await.unwrap();

    let mut client = Pop3Client::connect(&ep, 54, &options).await.unwrap();
    client
        .auth(
            "SCRAM-SHA-256",
            Credentials::new("testuser1", password),
            &cache,
        )
        .await
        .unwrap();
    client.quit().await.unwrap();

    let read = |id: u32| std::fs::read_to_string(dir.path().join(format!("rawlog.{id}"))).unwrap();
    let plain_b64 = BASE64.encode(format!("\0testuser1\0{password}"));
    let user_log = read(51);
    assert!(user_log.contains("C: USER testuser1"), "{user_log}");
    assert!(user_log.contains("C: PASS <hidden>"), "{user_log}");
    assert!(
        !user_log.contains(&format!("PASS {password}")),
        "{user_log}"
    );
    let ir_log = read(52);
    assert!(ir_log.contains("C: AUTH PLAIN <hidden>"), "{ir_log}");
    let no_ir_log = read(53);
    assert!(no_ir_log.contains("C: AUTH PLAIN\r\n") || no_ir_log.contains("C: AUTH PLAIN\n"));
    assert!(no_ir_log.contains("C: <hidden>"), "{no_ir_log}");
    let scram_log = read(54);
    assert!(scram_log.contains("C: <hidden>"), "{scram_log}");
    assert!(!scram_log.contains("n,,n=testuser1"), "{scram_log}");
    for log in [&user_log, &ir_log, &no_ir_log, &scram_log] {
        assert!(!log.contains(&plain_b64), "SASL response in rawlog: {log}");
        assert!(log.contains("S: +OK"), "{log}");
    }
    // The SCRAM client-first message, base64-encoded, must not appear either.
    let first_b64_prefix = BASE64.encode("n,,n=testuser1,r=");
    assert!(!scram_log.contains(&first_b64_prefix[..16]), "{scram_log}");
}

#[tokio::test]
async fn stls_response_injection_is_refused() {
    use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move {
        let (sock, _) = listener.accept().await.unwrap();
        let (read, mut write) = sock.into_split();
        let mut read = BufReader::new(read);
        write.write_all(b"+OK fake\r\n").await.unwrap();
        let mut line = String::new();
        read.read_line(&mut line).await.unwrap();
        assert_eq!(line, "STLS\r\n");
        write
            .write_all(b"+OK Begin TLS negotiation now.\r\n+OK Logged in.\r\n")
            .await
            .unwrap();
        let mut rest = Vec::new();
        let _ = tokio::io::AsyncReadExt::read_to_end(&mut read, &mut rest).await;
    });
    let ep = endpoint(port, TlsMode::StartTls).await;
    let err = Pop3Client::connect(&ep, 7, &Pop3Options::default())
        .await
        .unwrap_err();
    assert!(
        err.to_string().contains("possible response injection"),
        "{err}"
    );
    assert!(err.to_string().starts_with("STLS"), "{err}");
}

/// Rough figures: `cargo test --release --test pop3 -- --ignored --nocapture`.
#[tokio::test]
#[ignore]
async fn throughput_figures() {
    use std::time::Instant;
    let user = common::fresh_user();
    let body: String = (0..60)
        .map(|i| format!("line {i:03} of a test body, some filler text here\r\n"))
        .collect();
    let msg = message("bulk", &body);
    let n = 1000u32;
    let ep = endpoint(common::lab().lmtp_port, TlsMode::Plain).await;

    // One connection, sequential deliveries.
    let mut lmtp_client = LmtpClient::connect(&ep, 10, &LmtpOptions::default())
        .await
        .unwrap();
    let started = Instant::now();
    for _ in 0..n / 2 {
        assert!(
            lmtp_client
                .deliver("", &[&user], &msg)
                .await
                .unwrap()
                .all_delivered()
        );
    }
    let one = started.elapsed();
    lmtp_client.quit().await.unwrap();
    // A new connection per delivery, 8 at a time (profile mode's pattern).
    let started = Instant::now();
    let mut tasks = Vec::new();
    for t in 0..8u32 {
        let (user, msg) = (user.clone(), msg.clone());
        tasks.push(tokio::spawn(async move {
            let ep = endpoint(common::lab().lmtp_port, TlsMode::Plain).await;
            for _ in 0..n / 2 / 8 {
                let mut c = LmtpClient::connect(&ep, 11 + u64::from(t), &LmtpOptions::default())
                    .await
                    .unwrap();
                assert!(c.deliver("", &[&user], &msg).await.unwrap().all_delivered());
                c.quit().await.unwrap();
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    let per_conn = started.elapsed();
    println!(
        "LMTP {} B: {:.0} deliveries/s on one connection, {:.0}/s with a connection each (8 parallel)",
        msg.len(),
        f64::from(n / 2) / one.as_secs_f64(),
        f64::from(n / 2) / per_conn.as_secs_f64()
    );

    let mut client = connect().await;
    client
        .user_pass(&user, common::lab().user_password)
        .await
        .unwrap();
    let count = client.stat().await.unwrap().count;
    let started = Instant::now();
    let mut bytes = 0;
    for i in 1..=count {
        bytes += client.retr(i).await.unwrap().data.len();
    }
    let elapsed = started.elapsed();
    println!(
        "POP3 RETR: {count} messages, {:.0} msgs/s, {:.1} MB/s",
        f64::from(count) / elapsed.as_secs_f64(),
        bytes as f64 / elapsed.as_secs_f64() / 1e6
    );
    let started = Instant::now();
    for i in 1..=count {
        client.dele(i).await.unwrap();
    }
    client.quit().await.unwrap();
    println!("POP3 DELE+QUIT: {:?}", started.elapsed());
}
