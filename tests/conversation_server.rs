//! Client scripts against the scriptable server, in-process on port 0: every line kind
//! of both script languages, TLS on connect, STARTTLS, stoptls, and the errors.

use std::path::Path;
use std::time::Duration;

use imaptest::config::{TlsMode, TlsSettings};
use imaptest::conversation::{
    ClientFailure, ClientOptions, ClientReport, ClientScript, ServerFailure, ServerOptions,
    ServerReport, ServerScript, Transcript, bind, run_script,
};

struct Outcome {
    client: Result<ClientReport, ClientFailure>,
    client_log: String,
    server: Result<ServerReport, ServerFailure>,
    server_log: String,
}

fn options(port: u16, tls: TlsMode) -> ClientOptions {
    ClientOptions {
        host: "127.0.0.1".to_owned(),
        port,
        tls: TlsSettings {
            mode: tls,
            accept_any_cert: true,
            ca_file: None,
        },
        timeout: Duration::from_secs(3),
    }
}

type ClientRun = (Result<ClientReport, ClientFailure>, String);

/// Runs one server script and several client scripts, one after another.
async fn converse_many(
    server: &str,
    server_options: ServerOptions,
    clients: &[(&str, TlsMode)],
    base_dir: &Path,
) -> (Vec<ClientRun>, Result<ServerReport, ServerFailure>, String) {
    let script = ServerScript::parse("server.script", server).expect("server script");
    let (server_transcript, server_log) = Transcript::capture();
    let (addr, task) = bind(script, server_options, server_transcript)
        .await
        .expect("bind");
    let mut runs = Vec::new();
    for (text, mode) in clients {
        let script = ClientScript::parse("client.script", text, base_dir).expect("client script");
        let (mut transcript, log) = Transcript::capture();
        let client = run_script(&script, &options(addr.port(), *mode), &mut transcript).await;
        runs.push((client, log.text()));
    }
    let server = tokio::time::timeout(Duration::from_secs(10), task)
        .await
        .expect("the server ends")
        .expect("the server task does not panic");
    (runs, server, server_log.text())
}

async fn converse_in(
    server: &str,
    options: ServerOptions,
    client: &str,
    mode: TlsMode,
    dir: &Path,
) -> Outcome {
    let options = ServerOptions {
        timeout: Duration::from_secs(3),
        ..options
    };
    let (mut runs, server, server_log) =
        converse_many(server, options, &[(client, mode)], dir).await;
    let (client, client_log) = runs.pop().expect("one run");
    Outcome {
        client,
        client_log,
        server,
        server_log,
    }
}

async fn converse(server: &str, client: &str) -> Outcome {
    converse_with(server, ServerOptions::default(), client, TlsMode::Plain).await
}

async fn converse_with(
    server: &str,
    server_options: ServerOptions,
    client: &str,
    mode: TlsMode,
) -> Outcome {
    converse_in(server, server_options, client, mode, Path::new(".")).await
}

fn ok(outcome: &Outcome) {
    if let Err(e) = &outcome.client {
        panic!(
            "client failed: {e}\n--- client ---\n{}\n--- server ---\n{}",
            outcome.client_log, outcome.server_log
        );
    }
    if let Err(e) = &outcome.server {
        panic!(
            "server failed: {e}\n--- client ---\n{}\n--- server ---\n{}",
            outcome.client_log, outcome.server_log
        );
    }
}

fn client_error(outcome: &Outcome) -> String {
    match &outcome.client {
        Ok(_) => panic!(
            "the client script passed\n--- client ---\n{}",
            outcome.client_log
        ),
        Err(e) => e.to_string(),
    }
}

fn server_error(outcome: &Outcome) -> String {
    match &outcome.server {
        Ok(_) => panic!(
            "the server script passed\n--- server ---\n{}",
            outcome.server_log
        ),
        Err(e) => e.to_string(),
    }
}

#[tokio::test]
async fn every_line_kind_of_both_scripts() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("login.inc"),
        "### included file\na1 LOGIN user pass\n??? a1 OK\n",
    )
    .unwrap();
    let server = r"> * OK [CAPABILITY IMAP4rev1] ready
### expecting the login from the included file
a1 LOGIN user
>a1 OK logged in
a2 NOOP
a3 NOOP
>* 1 EXISTS
>* 2 EXISTS
>LF>a2 OK lf only
>CR>a3 OK cr
>>, then LF\n
<<raw
*data 5
<12345 starts with a digit
250 sent as is
.
>* \Seen flags \x41\\
*sleep 0.2
a4 LOGOUT (\Seen)
>* BYE
>>a4 OK bye\r\n
*eof
";
    let client = r"??? * OK
<<< login.inc
### pipelined:
a2 NOOP\r\na3 NOOP
???? * 
??? a2 OK lf
??? a3 OK cr\r, then LF
>>> raw
:noeol:12
:eval:\063\x34\x{35}
+++ 0.1
:sleep:0.1
12345 starts with a digit
??? 250 sent
DATA line 1
..dot-stuffed
.
??? * \Seen flags A\
a4 LOGOUT (\Seen)
??? * BYE
??? a4 OK bye
";
    let outcome = converse_in(
        server,
        ServerOptions::default(),
        client,
        TlsMode::Plain,
        dir.path(),
    )
    .await;
    ok(&outcome);
    let log = &outcome.client_log;
    // `###` comments go to both stdout and stderr (here: the same buffer).
    assert_eq!(log.matches("### included file").count(), 2, "{log}");
    assert!(log.contains("<<< * 2 EXISTS"), "{log}");
    assert!(log.contains(">>> a2 NOOP\\r\\na3 NOOP"), "{log}");
    assert!(log.contains("End of script"), "{log}");
    let report = outcome.client.as_ref().unwrap();
    assert_eq!(report.lines_received, 10, "{log}");
    let server_log = &outcome.server_log;
    assert!(server_log.contains("*data 5"), "{server_log}");
    assert!(
        server_log.contains("### expecting the login"),
        "{server_log}"
    );
}

#[tokio::test]
async fn client_expects_close_and_server_closes() {
    let outcome = converse("> * BYE going away\n>*eof\n", "??? * BYE\n???*\n").await;
    ok(&outcome);
}

#[tokio::test]
async fn wrong_expectation_names_line_expected_and_received() {
    let outcome = converse(
        "> * OK ready\na1 LOGIN\n> a1 NO [AUTHENTICATIONFAILED] Authentication failed.\n*eof\n",
        "??? * OK\na1 LOGIN u p\n??? a1 OK\n",
    )
    .await;
    assert_eq!(
        client_error(&outcome),
        "client.script:3: expected a line starting with \"a1 OK\", received \"a1 NO [AUTHENTICATIONFAILED] Authentication failed.\""
    );
    // The client closed after its failure, as the server expected.
    assert!(outcome.server.is_ok());
}

#[tokio::test]
async fn client_reports_close_instead_of_line_and_line_instead_of_close() {
    let outcome = converse("> * OK\n>*eof\n", "??? * OK\n??? a1 OK\n").await;
    assert_eq!(
        client_error(&outcome),
        "client.script:2: expected a line starting with \"a1 OK\", but the server closed the connection"
    );
    let outcome = converse("> * OK\n> * BYE\n*eof\n", "??? * OK\n???*\n").await;
    assert_eq!(
        client_error(&outcome),
        "client.script:2: expected the server to close the connection, received \"* BYE\""
    );
}

#[tokio::test]
async fn client_times_out_with_the_line_it_waited_for() {
    let server = "> * OK\n*sleep 2\n>*eof\n";
    let script = ServerScript::parse("s", server).unwrap();
    let (addr, task) = bind(script, ServerOptions::default(), Transcript::discard())
        .await
        .unwrap();
    let client = ClientScript::parse("c", "??? * OK\n??? a1 OK\n", Path::new(".")).unwrap();
    let mut opts = options(addr.port(), TlsMode::Plain);
    opts.timeout = Duration::from_millis(300);
    let err = run_script(&client, &opts, &mut Transcript::discard())
        .await
        .unwrap_err()
        .to_string();
    assert_eq!(
        err,
        "c:2: timed out after 0.3s waiting for a line starting with \"a1 OK\""
    );
    task.abort();
}

#[tokio::test]
async fn server_reports_mismatch_with_its_script_line() {
    let outcome = converse(
        "> * OK\na1 LOGIN\n> a1 OK\n*eof\n",
        "??? * OK\na1 AUTHENTICATE PLAIN\n",
    )
    .await;
    assert_eq!(
        server_error(&outcome),
        "server.script:2: expected the client to send a line starting with \"a1 LOGIN\", received \"a1 AUTHENTICATE PLAIN\""
    );
}

#[tokio::test]
async fn server_reports_unexpected_close_and_unexpected_line() {
    let outcome = converse("> * OK\na1 LOGIN\n", "??? * OK\n").await;
    assert_eq!(
        server_error(&outcome),
        "server.script:2: expected a line starting with \"a1 LOGIN\", but the client closed the connection"
    );
    let outcome = converse("> * OK\n*eof\n", "??? * OK\na1 NOOP\n").await;
    assert_eq!(
        server_error(&outcome),
        "server.script:2: expected the client to close the connection, received \"a1 NOOP\""
    );
    let outcome = converse("> * OK\n<<abc\n", "??? * OK\n>>> abd\n").await;
    assert_eq!(
        server_error(&outcome),
        "server.script:2: expected the client to send \"abc\", received \"abd\""
    );
    let outcome = converse("> * OK\n*data 10\n", "??? * OK\n>>> 12345\n").await;
    assert_eq!(
        server_error(&outcome),
        "server.script:2: expected 10 bytes of data (got 5), but the client closed the connection"
    );
}

#[tokio::test]
async fn tls_on_connect() {
    let outcome = converse_with(
        "> * OK TLS from the start\na1 LOGOUT\n> * BYE\n> a1 OK\n*eof\n",
        ServerOptions {
            tls_on_connect: true,
            ..ServerOptions::default()
        },
        "??? * OK TLS\na1 LOGOUT\n??? * BYE\n??? a1 OK\n",
        TlsMode::Implicit,
    )
    .await;
    ok(&outcome);
    assert_eq!(outcome.client.as_ref().unwrap().tls_started, 1);
}

#[tokio::test]
async fn starttls_then_stoptls_then_plain_again() {
    let server = "> * OK [CAPABILITY IMAP4rev1 STARTTLS] ready
a1 STARTTLS
> a1 OK Begin TLS negotiation now
*starttls
a2 NOOP
> a2 OK inside TLS
*stoptls
a3 NOOP
> a3 OK plain again
*eof
";
    let client = "??? * OK
a1 STARTTLS
??? a1 OK
a2 NOOP
??? a2 OK inside TLS
stoptls
a3 NOOP
??? a3 OK plain again
";
    let outcome = converse_with(server, ServerOptions::default(), client, TlsMode::Plain).await;
    ok(&outcome);
    assert_eq!(outcome.client.as_ref().unwrap().tls_started, 1);
    assert!(outcome.client_log.contains("Succeeded in starting TLS"));
    assert!(outcome.client_log.contains("TLS stopped"));
}

#[tokio::test]
async fn smtp_and_pop3_style_starttls() {
    let server = "220 mx ESMTP\nEHLO\n250-mx\n250 STARTTLS\nSTARTTLS\n220 go ahead\n*starttls\nEHLO\n250 mx\nQUIT\n221 bye\n*eof\n";
    let client = "??? 220\nEHLO test\n???? 250-\n??? 250 STARTTLS\nSTARTTLS\n??? 220\nEHLO test\n??? 250\nQUIT\n??? 221\n";
    ok(&converse(server, client).await);
    let server = "> +OK POP3\nSTLS\n> +OK Begin TLS\n*starttls\nQUIT\n> +OK bye\n*eof\n";
    let client = "??? +OK\nSTLS\n??? +OK\nQUIT\n??? +OK\n";
    ok(&converse(server, client).await);
}

#[tokio::test]
async fn refused_starttls_stays_plain() {
    let server = "220 mx\nSTARTTLS\n454 TLS not available\nQUIT\n221 bye\n*eof\n";
    let client = "??? 220\nSTARTTLS\n??? 454\nQUIT\n??? 221\n";
    let outcome = converse(server, client).await;
    ok(&outcome);
    assert!(outcome.client_log.contains("Not starting TLS"));
}

#[tokio::test]
async fn starttls_wait_sends_without_switching() {
    let server =
        "> * OK\nSTARTTLS\n> a OK but no TLS here\na2 STARTTLS\n> a2 OK still plain\n*eof\n";
    let client =
        "??? * OK\nstarttls_wait\n??? a OK\nstarttls_wait a2 STARTTLS\n??? a2 OK still plain\n";
    let outcome = converse(server, client).await;
    ok(&outcome);
    assert_eq!(outcome.client.as_ref().unwrap().tls_started, 0);
}

#[tokio::test]
async fn bytes_injected_after_starttls_reply_are_an_error() {
    let server = "> * OK\na1 STARTTLS\n>>a1 OK Begin TLS\\r\\n* 1 EXISTS\\r\\n\n*sleep 0.5\n";
    let client = "??? * OK\na1 STARTTLS\n??? a1 OK\na2 NOOP\n";
    let outcome = converse(server, client).await;
    assert_eq!(
        client_error(&outcome),
        "client.script:3: the server sent 12 bytes after its STARTTLS reply, before the TLS handshake (injection?): \"* 1 EXISTS\\r\\n\""
    );
}

#[tokio::test]
async fn stoptls_without_tls_is_an_error() {
    let outcome = converse("> * OK\n*eof\n", "??? * OK\nstoptls\n").await;
    assert_eq!(
        client_error(&outcome),
        "client.script:2: stoptls: TLS is not active"
    );
}

#[tokio::test]
async fn endless_line_is_an_error_not_a_memory_sink() {
    let outcome = converse("*fill 3000000\n>*eof\n", "??? * OK\n").await;
    let err = client_error(&outcome);
    assert!(
        err.starts_with(
            "client.script:1: reading a line starting with \"* OK\": a line longer than"
        ),
        "{err}"
    );
}

#[tokio::test]
async fn slow_drip_of_bytes_still_makes_lines() {
    let outcome = converse(
        "*drip 0.01\n> * OK slowly\n*drip 0\n> * OK fast\n>*eof\n",
        "??? * OK slowly\n??? * OK fast\n???*\n",
    )
    .await;
    ok(&outcome);
}

#[tokio::test]
async fn sections_serve_serial_connections_and_repeat() {
    let server = "> * OK first\n*eof\n> * OK second\n>*eof\n";
    let (runs, server, server_log) = converse_many(
        server,
        ServerOptions {
            connections: Some(3),
            timeout: Duration::from_secs(3),
            ..ServerOptions::default()
        },
        &[
            ("??? * OK first\n", TlsMode::Plain),
            ("??? * OK second\n???*\n", TlsMode::Plain),
            ("??? * OK first\n", TlsMode::Plain),
        ],
        Path::new("."),
    )
    .await;
    for (client, log) in &runs {
        assert!(client.is_ok(), "{client:?}\n{log}");
    }
    assert_eq!(server.expect(&server_log).connections, 3);
}

#[tokio::test]
async fn server_refuses_non_loopback_and_too_few_connections() {
    let script = ServerScript::parse("s", "> hi\n").unwrap();
    let err = bind(
        script.clone(),
        ServerOptions {
            host: "192.0.2.1".parse().unwrap(),
            ..ServerOptions::default()
        },
        Transcript::discard(),
    )
    .await
    .unwrap_err()
    .to_string();
    assert_eq!(
        err,
        "192.0.2.1 is not a loopback address: the script server listens on loopback only"
    );
    let script = ServerScript::parse("s", "> a\n*eof\n> b\n*eof\n").unwrap();
    let err = bind(
        script,
        ServerOptions {
            connections: Some(1),
            ..ServerOptions::default()
        },
        Transcript::discard(),
    )
    .await
    .unwrap_err()
    .to_string();
    assert!(
        err.starts_with("connections=1 is less than the 2 connections"),
        "{err}"
    );
}

#[tokio::test]
async fn server_waits_only_as_long_as_its_timeout() {
    let script = ServerScript::parse("s", "> hi\n").unwrap();
    let (_, task) = bind(
        script,
        ServerOptions {
            timeout: Duration::from_millis(200),
            ..ServerOptions::default()
        },
        Transcript::discard(),
    )
    .await
    .unwrap();
    let err = task.await.unwrap().unwrap_err().to_string();
    assert_eq!(err, "no client connected within 0.2s (connection 1 of 1)");
}

#[tokio::test]
async fn connect_failure_is_reported() {
    // Bind and drop to get a port nobody listens on.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let client = ClientScript::parse("c", "??? x\n", Path::new(".")).unwrap();
    let err = run_script(
        &client,
        &options(port, TlsMode::Plain),
        &mut Transcript::discard(),
    )
    .await
    .unwrap_err();
    assert!(matches!(err, ClientFailure::Connect(_)), "{err}");
    assert!(
        err.to_string().contains(&format!("127.0.0.1:{port}")),
        "{err}"
    );
}

/// Arbitrary bytes from either peer end in a result, never a panic or a hang.
#[tokio::test]
async fn arbitrary_peer_bytes_give_errors_not_panics() {
    let mut seed: u64 = 0x9E37_79B9_7F4A_7C15;
    let mut next = move || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    };
    for round in 0..40 {
        let len = (next() % 200) as usize;
        let escaped: String = (0..len)
            .map(|_| format!("\\x{:02X}", next() as u8))
            .collect();
        // The server sends them; the client expects lines, skips some, expects a close.
        let server = format!(">>{escaped}\n>*eof\n");
        let outcome = converse(&server, "???? \\x00\n??? *\n??? \n???*\n").await;
        assert!(
            outcome.server.is_ok(),
            "round {round}: {:?}",
            outcome.server
        );
        // The client sends them; the server expects a line, a dot block, then a close.
        let client = format!(">>> {escaped}\n");
        let outcome = converse("<\\x01\n.\n*eof\n", &client).await;
        let _ = outcome.server.map_err(|e| e.to_string());
        assert!(
            outcome.client.is_ok(),
            "round {round}: {:?}",
            outcome.client
        );
    }
}

#[tokio::test]
async fn given_certificate_is_served_and_verified() {
    let dir = tempfile::tempdir().unwrap();
    let generated =
        rcgen::generate_simple_self_signed(vec!["127.0.0.1".to_owned(), "localhost".to_owned()])
            .unwrap();
    let cert = dir.path().join("cert.pem");
    let key = dir.path().join("key.pem");
    std::fs::write(&cert, generated.cert.pem()).unwrap();
    std::fs::write(&key, generated.signing_key.serialize_pem()).unwrap();
    let script = ServerScript::parse("s", "> * OK verified\n>*eof\n").unwrap();
    let (addr, task) = bind(
        script,
        ServerOptions {
            tls_on_connect: true,
            cert: Some((cert.clone(), key.clone())),
            ..ServerOptions::default()
        },
        Transcript::discard(),
    )
    .await
    .unwrap();
    let client = ClientScript::parse("c", "??? * OK verified\n???*\n", Path::new(".")).unwrap();
    let options = ClientOptions {
        tls: TlsSettings {
            mode: TlsMode::Implicit,
            accept_any_cert: false,
            ca_file: Some(cert.clone()),
        },
        ..options(addr.port(), TlsMode::Implicit)
    };
    run_script(&client, &options, &mut Transcript::discard())
        .await
        .expect("verified TLS");
    task.await.unwrap().expect("server");

    // A missing key file is a setup error naming the file.
    let script = ServerScript::parse("s", "> hi\n").unwrap();
    let err = bind(
        script,
        ServerOptions {
            tls_on_connect: true,
            cert: Some((cert, dir.path().join("missing.pem"))),
            ..ServerOptions::default()
        },
        Transcript::discard(),
    )
    .await
    .unwrap_err()
    .to_string();
    assert!(err.starts_with("TLS setup: cannot read key "), "{err}");
    assert!(err.contains("missing.pem"), "{err}");
}
