//! The LMTP client against the real lab Dovecot; deliveries are checked over IMAP.

mod common;

use std::time::{Duration, SystemTime};

use imaptest::config::{TlsMode, TlsSettings};
use imaptest::imap::client::{ClientOptions, ImapClient, expect_ok};
use imaptest::imap::{Arg, FetchItem, Response, Untagged};
use imaptest::lmtp::{self, LmtpClient, LmtpError, LmtpOptions};
use imaptest::net::Endpoint;

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

async fn lmtp_client(options: &LmtpOptions) -> LmtpClient {
    let ep = endpoint(common::lab().lmtp_port, TlsMode::Plain).await;
    LmtpClient::connect(&ep, 1, options).await.expect("connect")
}

fn message(subject: &str, body: &str) -> Vec<u8> {
    format!(
        "From: sender@example.com\r\nTo: rcpt@example.com\r\nSubject: {subject}\r\n\
         Message-ID: <{subject}@imaptest>\r\n\r\n{body}"
    )
    .into_bytes()
}

async fn imap_login(user: &str) -> ImapClient {
    let lab = common::lab();
    let ep = endpoint(lab.imap_port, TlsMode::Plain).await;
    let mut client = ImapClient::connect(&ep, 2, &ClientOptions::default())
        .await
        .expect("imap connect");
    let done = client.login(user, lab.user_password).await.unwrap();
    expect_ok("LOGIN", &done).unwrap();
    client
}

/// `STATUS INBOX (MESSAGES)` for `user`.
async fn inbox_messages(user: &str) -> u64 {
    let mut client = imap_login(user).await;
    let done = client.simple("STATUS INBOX (MESSAGES)").await.unwrap();
    expect_ok("STATUS", &done).unwrap();
    let count = done
        .untagged
        .iter()
        .find_map(|r| match r.parse() {
            Ok(Response::Untagged(Untagged::MailboxStatus { items, .. })) => items
                .iter()
                .find(|(k, _)| k.eq_ignore_ascii_case(b"MESSAGES"))
                .map(|(_, v)| *v),
            _ => None,
        })
        .expect("STATUS MESSAGES");
    let _ = client.logout().await;
    count
}

/// `FETCH seq <section>` in INBOX for `user`: the section's bytes.
async fn fetch_section(user: &str, seq: u32, section: &str) -> Vec<u8> {
    let mut client = imap_login(user).await;
    let done = client.simple("EXAMINE INBOX").await.unwrap();
    expect_ok("EXAMINE", &done).unwrap();
    let done = client
        .simple(&format!("FETCH {seq} {section}"))
        .await
        .unwrap();
    expect_ok("FETCH", &done).unwrap();
    let data = done
        .untagged
        .iter()
        .find_map(|r| match r.parse() {
            Ok(Response::Untagged(Untagged::Fetch { items, .. })) => {
                items.iter().find_map(|item| match item {
                    FetchItem::Section {
                        data: Arg::Literal(bytes),
                        ..
                    } => Some(bytes.to_vec()),
                    FetchItem::Section {
                        data: Arg::Quoted(bytes),
                        ..
                    } => Some(bytes.to_vec()),
                    _ => None,
                })
            }
            _ => None,
        })
        .expect("FETCH data");
    let _ = client.logout().await;
    data
}

#[tokio::test]
async fn greeting_and_lhlo_capabilities() {
    let client = lmtp_client(&LmtpOptions::default()).await;
    assert_eq!(client.greeting().code, 220);
    let ext = client.extensions();
    for kw in ["PIPELINING", "8BITMIME", "ENHANCEDSTATUSCODES", "STARTTLS"] {
        assert!(ext.has(kw), "{kw} missing: {ext:?}");
    }
    let reply = client.quit().await.unwrap();
    assert_eq!(reply.code, 221);
}

#[tokio::test]
async fn delivered_message_is_seen_over_imap() {
    let user = common::fresh_user();
    let mut client = lmtp_client(&LmtpOptions::default()).await;
    let delivery = client
        .deliver("", &[&user], &message("one", "hello\r\n"))
        .await
        .unwrap();
    assert!(delivery.data_sent);
    assert!(delivery.all_delivered(), "{delivery:?}");
    let (rcpt, reply) = &delivery.per_recipient[0];
    assert_eq!(rcpt, &user);
    assert_eq!(reply.code, 250);
    assert_eq!(reply.enhanced.map(|e| e.class), Some(2));
    assert!(delivery.timings.total >= delivery.timings.envelope);
    client.quit().await.unwrap();
    assert_eq!(inbox_messages(&user).await, 1);
}

#[tokio::test]
async fn deliver_once_opens_and_closes_a_connection() {
    let user = common::fresh_user();
    let ep = endpoint(common::lab().lmtp_port, TlsMode::Plain).await;
    for i in 0..3 {
        let delivery = LmtpClient::deliver_once(
            &ep,
            20 + i,
            &LmtpOptions::default(),
            "",
            &[&user],
            &message(&format!("once{i}"), "o\r\n"),
        )
        .await
        .unwrap();
        assert!(delivery.all_delivered());
    }
    assert_eq!(inbox_messages(&user).await, 3);
}

#[tokio::test]
async fn two_recipients_get_two_replies_pipelined_or_not() {
    for pipelining in [true, false] {
        let (a, b) = (common::fresh_user(), common::fresh_user());
        let options = LmtpOptions {
            pipelining,
            ..LmtpOptions::default()
        };
        let mut client = lmtp_client(&options).await;
        let delivery = client
            .deliver("sender@example.com", &[&a, &b], &message("two", "x\r\n"))
            .await
            .unwrap();
        assert_eq!(delivery.per_recipient.len(), 2);
        assert_eq!(delivery.delivered(), 2, "{delivery:?}");
        assert_eq!(delivery.reply_for(&a).unwrap().code, 250);
        assert_eq!(delivery.reply_for(&b).unwrap().code, 250);
        // Two deliveries on one connection.
        let again = client
            .deliver("", &[&a], &message("three", "y\r\n"))
            .await
            .unwrap();
        assert!(again.all_delivered());
        client.quit().await.unwrap();
        assert_eq!(inbox_messages(&a).await, 2, "pipelining={pipelining}");
        assert_eq!(inbox_messages(&b).await, 1, "pipelining={pipelining}");
    }
}

#[tokio::test]
async fn unknown_recipient_is_refused_at_rcpt_and_the_other_delivered() {
    for pipelining in [true, false] {
        let user = common::fresh_user();
        let options = LmtpOptions {
            pipelining,
            ..LmtpOptions::default()
        };
        let mut client = lmtp_client(&options).await;
        let delivery = client
            .deliver("", &["nosuchuser", &user], &message("mixed", "z\r\n"))
            .await
            .unwrap();
        assert!(delivery.data_sent);
        let refused = delivery.reply_for("nosuchuser").unwrap();
        assert!(refused.is_permanent(), "{refused}");
        assert_eq!(
            refused.enhanced.map(|e| e.to_string()).as_deref(),
            Some("5.1.1")
        );
        assert!(refused.to_string().contains("nosuchuser"), "{refused}");
        assert_eq!(delivery.rcpt[0].code, refused.code, "refused at RCPT");
        assert_eq!(delivery.reply_for(&user).unwrap().code, 250);
        assert_eq!(delivery.delivered(), 1);

        // Only unknown recipients: nothing is sent, the connection stays usable.
        let none = client
            .deliver("", &["nosuchuser"], &message("none", "z\r\n"))
            .await
            .unwrap();
        assert!(!none.data_sent);
        assert_eq!(none.delivered(), 0);
        let again = client
            .deliver("", &[&user], &message("after", "z\r\n"))
            .await
            .unwrap();
        assert!(again.all_delivered(), "{again:?}");
        client.quit().await.unwrap();
        assert_eq!(inbox_messages(&user).await, 2);
    }
}

#[tokio::test]
async fn starttls_with_the_lab_ca() {
    let user = common::fresh_user();
    let ep = endpoint(common::lab().lmtp_port, TlsMode::StartTls).await;
    let mut client = LmtpClient::connect(&ep, 3, &LmtpOptions::default())
        .await
        .unwrap();
    assert!(client.is_tls());
    assert!(!client.extensions().has("STARTTLS"), "LHLO was repeated");
    assert!(client.extensions().has("PIPELINING"));
    let delivery = client
        .deliver("", &[&user], &message("tls", "secret\r\n"))
        .await
        .unwrap();
    assert!(delivery.all_delivered());
    client.quit().await.unwrap();
    assert_eq!(inbox_messages(&user).await, 1);
}

#[tokio::test]
async fn starttls_with_an_untrusted_certificate_fails() {
    let tls = TlsSettings {
        mode: TlsMode::StartTls,
        accept_any_cert: false,
        ca_file: Some(common::repo_root().join("tests/data/no-such-ca.pem")),
    };
    // No CA file at all: endpoint construction fails and names the file.
    let err = Endpoint::resolve("localhost", "127.0.0.1", 1, &tls, Duration::from_secs(1))
        .await
        .unwrap_err();
    assert!(err.to_string().contains("no-such-ca.pem"), "{err}");
    // The wrong server name: the handshake fails, the error says so.
    let tls = TlsSettings {
        mode: TlsMode::StartTls,
        accept_any_cert: false,
        ca_file: Some(common::lab().ca_file.clone()),
    };
    let ep = Endpoint::resolve(
        "wrong.example",
        "127.0.0.1",
        common::lab().lmtp_port,
        &tls,
        Duration::from_secs(10),
    )
    .await
    .unwrap();
    let err = LmtpClient::connect(&ep, 4, &LmtpOptions::default())
        .await
        .unwrap_err();
    assert!(matches!(err, LmtpError::Io { .. }), "{err}");
    assert!(
        err.to_string().starts_with("STARTTLS: TLS handshake"),
        "{err}"
    );
}

#[tokio::test]
async fn dot_stuffing_round_trip() {
    let user = common::fresh_user();
    let body = ".leading dot\r\n..two dots\r\n.\r\nmiddle\r\n. space\r\nlast.\r\n";
    let mut client = lmtp_client(&LmtpOptions::default()).await;
    let delivery = client
        .deliver("", &[&user], &message("dots", body))
        .await
        .unwrap();
    assert!(delivery.all_delivered());
    client.quit().await.unwrap();
    let text = fetch_section(&user, 1, "BODY.PEEK[TEXT]").await;
    assert_eq!(String::from_utf8_lossy(&text), body);
    let whole = fetch_section(&user, 1, "BODY.PEEK[]").await;
    assert!(whole.ends_with(body.as_bytes()));
}

#[tokio::test]
async fn marker_header_survives_and_parses() {
    let user = common::fresh_user();
    let sent = SystemTime::now();
    let marked = lmtp::with_marker(&message("marker", "m\r\n"), &lmtp::marker(4242, sent));
    let mut client = lmtp_client(&LmtpOptions::default()).await;
    assert!(
        client
            .deliver("", &[&user], &marked)
            .await
            .unwrap()
            .all_delivered()
    );
    client.quit().await.unwrap();
    let header = fetch_section(&user, 1, "BODY.PEEK[HEADER]").await;
    let (id, at) = lmtp::parse_marker(&header).expect("marker in the delivered header");
    assert_eq!(id, 4242);
    assert_eq!(at, sent);
    let latency = SystemTime::now().duration_since(at).unwrap();
    assert!(latency < Duration::from_secs(60), "{latency:?}");
}

#[tokio::test]
async fn eight_bit_body_is_declared() {
    let user = common::fresh_user();
    let body = "gr\u{fc}\u{df}e\r\n";
    let dir = tempfile::tempdir().unwrap();
    let options = LmtpOptions {
        rawlog_dir: Some(dir.path().to_owned()),
        ..LmtpOptions::default()
    };
    let ep = endpoint(common::lab().lmtp_port, TlsMode::Plain).await;
    let mut client = LmtpClient::connect(&ep, 78, &options).await.unwrap();
    assert!(
        client
            .deliver("", &[&user], &message("8bit", body))
            .await
            .unwrap()
            .all_delivered()
    );
    client.quit().await.unwrap();
    let log = std::fs::read_to_string(dir.path().join("rawlog.78")).unwrap();
    assert!(log.contains("C: MAIL FROM:<> BODY=8BITMIME"), "{log}");
    let text = fetch_section(&user, 1, "BODY.PEEK[TEXT]").await;
    assert_eq!(text, body.as_bytes());
}

#[tokio::test]
async fn rset_noop_and_a_transaction_left_open() {
    for pipelining in [false, true] {
        let options = LmtpOptions {
            pipelining,
            ..LmtpOptions::default()
        };
        let mut client = lmtp_client(&options).await;
        assert!(client.noop().await.unwrap().is_positive());
        assert!(client.rset().await.unwrap().is_positive());
        let reply = client.command("MAIL FROM:<>").await.unwrap();
        assert!(reply.is_positive());
        // A second MAIL inside a transaction is refused.
        let err = client
            .deliver("", &["testuser1"], b"Subject: x\r\n\r\nx\r\n")
            .await
            .unwrap_err();
        if pipelining {
            // RCPT and DATA were accepted for the open transaction: the client must
            // not send the message, and closes the connection instead.
            assert!(matches!(err, LmtpError::Protocol(_)), "{err}");
            assert!(!err.is_recoverable());
            assert!(err.to_string().contains("503"), "{err}");
        } else {
            assert!(err.is_recoverable(), "{err}");
            assert!(
                err.to_string().starts_with("MAIL FROM:<> rejected: 503"),
                "{err}"
            );
            client.quit().await.unwrap();
        }
    }
}

#[tokio::test]
async fn rawlog_records_the_session() {
    let dir = tempfile::tempdir().unwrap();
    let options = LmtpOptions {
        rawlog_dir: Some(dir.path().to_owned()),
        ..LmtpOptions::default()
    };
    let ep = endpoint(common::lab().lmtp_port, TlsMode::Plain).await;
    let user = common::fresh_user();
    let mut client = LmtpClient::connect(&ep, 77, &options).await.unwrap();
    client
        .deliver("", &[&user], &message("log", ".dot\r\n"))
        .await
        .unwrap();
    client.quit().await.unwrap();
    let log = std::fs::read_to_string(dir.path().join("rawlog.77")).unwrap();
    for want in [
        "S: 220 ",
        "C: LHLO localhost",
        "C: MAIL FROM:<>",
        &format!("C: RCPT TO:<{user}>"),
        "C: ..dot",
        "S: 221 ",
    ] {
        assert!(log.contains(want), "{want:?} missing in\n{log}");
    }
}

/// A fake server on a local port: sends `greeting`, then answers each line read with
/// the next entry of `replies` (one write each).
async fn fake_server(greeting: &'static [u8], replies: Vec<&'static [u8]>) -> u16 {
    use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move {
        let (sock, _) = listener.accept().await.unwrap();
        let (read, mut write) = sock.into_split();
        let mut read = BufReader::new(read);
        write.write_all(greeting).await.unwrap();
        for reply in replies {
            let mut line = String::new();
            if read.read_line(&mut line).await.unwrap_or(0) == 0 {
                return;
            }
            write.write_all(reply).await.unwrap();
        }
        let mut rest = Vec::new();
        let _ = tokio::io::AsyncReadExt::read_to_end(&mut read, &mut rest).await;
    });
    port
}

#[tokio::test]
async fn starttls_response_injection_is_refused() {
    let port = fake_server(
        b"220 fake\r\n",
        vec![
            b"250-fake\r\n250 STARTTLS\r\n",
            b"220 2.0.0 go ahead\r\n250 2.1.0 injected\r\n",
        ],
    )
    .await;
    let ep = endpoint(port, TlsMode::StartTls).await;
    let err = LmtpClient::connect(&ep, 5, &LmtpOptions::default())
        .await
        .unwrap_err();
    assert!(
        err.to_string().contains("possible response injection"),
        "{err}"
    );
}

#[tokio::test]
async fn starttls_not_offered() {
    let port = fake_server(b"220 fake\r\n", vec![b"250-fake\r\n250 PIPELINING\r\n"]).await;
    let ep = endpoint(port, TlsMode::StartTls).await;
    let err = LmtpClient::connect(&ep, 6, &LmtpOptions::default())
        .await
        .unwrap_err();
    assert!(matches!(err, LmtpError::NoStartTls(_)), "{err}");
}
