//! Server misbehaviour a real Dovecot never shows, played by the scriptable server:
//! greeting garbage, a connection closed in the middle of a literal, a BYE at random,
//! an endless line, a slow drip of bytes, a bogus STARTTLS reply followed by injected
//! bytes. The IMAP readers and the stress engine must report an error and go on.

use std::process::Stdio;
use std::time::Duration;

use imaptest::config::{TlsMode, TlsSettings};
use imaptest::conversation::{ServerOptions, ServerReport, ServerScript, Transcript, bind};
use imaptest::imap::client::{ClientOptions, ImapClient};
use imaptest::net::Endpoint;
use tokio::task::JoinHandle;

type ServerTask = JoinHandle<Result<ServerReport, imaptest::conversation::ServerFailure>>;

async fn serve(script: &str, connections: Option<usize>) -> (u16, ServerTask) {
    let script = ServerScript::parse("misbehaving.server", script).expect("server script");
    let (addr, task) = bind(
        script,
        ServerOptions {
            connections,
            timeout: Duration::from_secs(10),
            ..ServerOptions::default()
        },
        Transcript::discard(),
    )
    .await
    .expect("bind");
    (addr.port(), task)
}

async fn endpoint(port: u16, mode: TlsMode) -> Endpoint {
    Endpoint::resolve(
        "127.0.0.1",
        "127.0.0.1",
        port,
        &TlsSettings {
            mode,
            accept_any_cert: true,
            ca_file: None,
        },
        Duration::from_secs(5),
    )
    .await
    .expect("endpoint")
}

fn client_options(timeout: Duration) -> ClientOptions {
    ClientOptions {
        timeout,
        ..ClientOptions::default()
    }
}

/// Connects with the IMAP client and runs NOOP; returns the first error's text.
async fn imap_error(script: &str, mode: TlsMode, timeout: Duration) -> String {
    let (port, task) = serve(script, Some(1)).await;
    let ep = endpoint(port, mode).await;
    let result = async {
        let mut client = ImapClient::connect(&ep, 1, &client_options(timeout)).await?;
        client.simple("NOOP").await?;
        client.simple("NOOP").await
    }
    .await;
    task.abort();
    match result {
        Ok(done) => panic!("no error; last reply: {}", done.line),
        Err(e) => e.to_string(),
    }
}

const GREETING: &str = "> * OK [CAPABILITY IMAP4rev1 LITERAL+] fake server ready\n";

#[tokio::test]
async fn reader_greeting_garbage() {
    let err = imap_error(
        ">\\x00\\xFF\\x1B[2Jnot an imap server\n>*eof\n",
        TlsMode::Plain,
        Duration::from_secs(5),
    )
    .await;
    assert!(err.starts_with("malformed banner: "), "{err}");
}

#[tokio::test]
async fn reader_connection_closed_in_the_middle_of_a_literal() {
    let script =
        format!("{GREETING}<1.1 NOOP\n>* 1 FETCH (BODY[] {{100}}\n>>0123456789abcdefghij\n>*eof\n");
    let err = imap_error(&script, TlsMode::Plain, Duration::from_secs(5)).await;
    assert_eq!(
        err,
        "connection closed by server in the middle of a response: connection closed mid-literal (20 of 100 bytes received) in response: * 1 FETCH (BODY[] {100}\\r\\n0123456789abcdefghij"
    );
}

#[tokio::test]
async fn reader_bye_at_random() {
    // Instead of the greeting.
    let err = imap_error(
        "> * BYE Too many connections\n>*eof\n",
        TlsMode::Plain,
        Duration::from_secs(5),
    )
    .await;
    assert_eq!(err, "server said BYE: * BYE Too many connections");
    // In the middle of a command: the BYE text is kept for the error.
    let script = format!("{GREETING}<1.1 NOOP\n> * BYE Server shutting down at random\n>*eof\n");
    let err = imap_error(&script, TlsMode::Plain, Duration::from_secs(5)).await;
    assert_eq!(err, "server said BYE: * BYE Server shutting down at random");
}

#[tokio::test]
async fn reader_endless_line() {
    // Three megabytes before the line ends: the line is discarded, not kept.
    let script =
        format!("{GREETING}<1.1 NOOP\n*fill 3000000 * 1 EXISTS\n>\n> 1.1 OK done\n>*eof\n");
    let err = imap_error(&script, TlsMode::Plain, Duration::from_secs(5)).await;
    assert!(
        err.starts_with("response line longer than 1048576 bytes (3000002 bytes discarded): * 1 EXISTS* 1 EXISTS"),
        "{err}"
    );
    // A line that never ends: the connection closes in the middle of it.
    let script = format!("{GREETING}<1.1 NOOP\n*fill 3000000 * 1 EXISTS\n>*eof\n");
    let err = imap_error(&script, TlsMode::Plain, Duration::from_secs(5)).await;
    assert!(
        err.starts_with("connection closed by server in the middle of a response: connection closed mid-line in response: * 1 EXISTS"),
        "{err}"
    );
}

#[tokio::test]
async fn reader_slow_drip_is_fine_until_it_stalls() {
    // Every byte 2 ms apart: the reader assembles the lines; then the server stalls
    // longer than the client's timeout.
    let script = format!(
        "*drip 0.002\n{GREETING}<1.1 NOOP\n> * 3 EXISTS\n> 1.1 OK NOOP done\n<1.2 NOOP\n>>* 4 EXI\n*sleep 3\n"
    );
    let err = imap_error(&script, TlsMode::Plain, Duration::from_millis(800)).await;
    assert_eq!(
        err,
        "server sent 7 bytes of a response without ending it and did not complete it within 800ms"
    );
}

#[tokio::test]
async fn reader_bogus_starttls_reply_with_injected_bytes() {
    let script = "> * OK [CAPABILITY IMAP4rev1 STARTTLS] ready\n<1.1 STARTTLS\n>>1.1 OK Begin TLS now\\r\\n* 1 EXISTS\\r\\n\n*sleep 2\n";
    let err = imap_error(script, TlsMode::StartTls, Duration::from_secs(5)).await;
    assert!(
        err.starts_with("server sent 12 bytes after its STARTTLS reply"),
        "{err}"
    );
}

/// The preflight connection (id 0): greeting, LOGIN, LOGOUT.
const PREFLIGHT: &str = "> * OK [CAPABILITY IMAP4rev1 LITERAL+] fake server ready
<0.1 LOGIN
> 0.1 OK Logged in
<0.2 LOGOUT
> * BYE Logging out
> 0.2 OK Logout completed
*eof
";

/// Runs the stress engine (one client, two seconds) against a server playing
/// `PREFLIGHT`, then `misbehaviour` on the engine's first connection, then a greeting
/// that closes at once on its second, which shows the engine went on. Returns stderr.
async fn engine_run(misbehaviour: &str, extra: &[&str]) -> (Option<i32>, String) {
    let script =
        format!("{PREFLIGHT}{misbehaviour}\n> * OK [CAPABILITY IMAP4rev1] back again\n>*eof\n");
    let (port, task) = serve(&script, Some(3)).await;
    let mut command = tokio::process::Command::new(env!("CARGO_BIN_EXE_imaptest"));
    command
        .args([
            "host=127.0.0.1".to_owned(),
            format!("port={port}"),
            "user=u".to_owned(),
            "pass=p".to_owned(),
            "clients=1".to_owned(),
            "secs=2".to_owned(),
            "random_msg_size=2000".to_owned(),
        ])
        .args(extra)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    let child = command.spawn().expect("run imaptest");
    let out = tokio::time::timeout(Duration::from_secs(30), child.wait_with_output())
        .await
        .expect("imaptest exits by itself")
        .expect("imaptest output");
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    let served = tokio::time::timeout(Duration::from_secs(5), task).await;
    if let Ok(Ok(result)) = served {
        // All three connections came: the engine reconnected after the error.
        let report = result.unwrap_or_else(|e| panic!("server: {e}\nstderr: {stderr}"));
        assert_eq!(report.connections, 3, "{stderr}");
    } else {
        panic!("the engine did not reconnect after the error\nstderr: {stderr}");
    }
    assert!(!stderr.contains("panicked"), "{stderr}");
    (out.status.code(), stderr)
}

fn assert_error_line(stderr: &str, prefix: &str, needle: &str) {
    assert!(
        stderr
            .lines()
            .any(|l| l.starts_with(prefix) && l.contains(needle)),
        "no `{prefix}…{needle}` line in:\n{stderr}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn engine_greeting_garbage() {
    let (code, stderr) = engine_run(">\\x00\\xFFgarbage\n>*eof", &[]).await;
    assert_eq!(
        code,
        Some(i32::from(imaptest::exit::NOTHING_WORKED)),
        "no login ever succeeded: {stderr}"
    );
    assert_error_line(&stderr, "Error: u[1]: ", "malformed banner");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn engine_connection_closed_in_the_middle_of_a_literal() {
    let (code, stderr) = engine_run(
        "> * OK [CAPABILITY IMAP4rev1] ready\n<1.1 LOGIN\n>* 1 FETCH (BODY[] {100}\n>>0123456789abcdefghij\n>*eof",
        &[],
    )
    .await;
    assert_eq!(
        code,
        Some(i32::from(imaptest::exit::NOTHING_WORKED)),
        "no login ever succeeded: {stderr}"
    );
    assert_error_line(
        &stderr,
        "Error: u[1]: ",
        "LOGIN: connection closed by server in the middle of a response: connection closed mid-literal (20 of 100 bytes received)",
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn engine_bye_at_random() {
    let (code, stderr) = engine_run(
        "> * OK [CAPABILITY IMAP4rev1] ready\n<1.1 LOGIN\n> * BYE Random goodbye\n>*eof",
        &[],
    )
    .await;
    assert_eq!(
        code,
        Some(i32::from(imaptest::exit::NOTHING_WORKED)),
        "no login ever succeeded: {stderr}"
    );
    assert_error_line(
        &stderr,
        "Error: u[1]: ",
        "LOGIN: server said BYE: * BYE Random goodbye",
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn engine_endless_line() {
    let (code, stderr) = engine_run(
        "> * OK [CAPABILITY IMAP4rev1] ready\n<1.1 LOGIN\n*fill 3000000 * OK\n>\n>*eof",
        &[],
    )
    .await;
    assert_eq!(
        code,
        Some(i32::from(imaptest::exit::NOTHING_WORKED)),
        "no login ever succeeded: {stderr}"
    );
    assert_error_line(
        &stderr,
        "Error: u[1]: ",
        "LOGIN: response line longer than 1048576 bytes (3000002 bytes discarded): * OK* OK",
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn engine_bogus_starttls_reply_is_fatal_at_preflight() {
    // The preflight connection meets the injection: the run cannot start.
    let script = "> * OK [CAPABILITY IMAP4rev1 STARTTLS] ready\n<0.1 STARTTLS\n>>0.1 OK Begin TLS now\\r\\n* 1 EXISTS\\r\\n\n*sleep 1\n";
    let (port, task) = serve(script, Some(1)).await;
    let out = tokio::time::timeout(
        Duration::from_secs(30),
        tokio::process::Command::new(env!("CARGO_BIN_EXE_imaptest"))
            .args([
                "host=127.0.0.1".to_owned(),
                format!("port={port}"),
                "starttls".to_owned(),
                "ssl=any-cert".to_owned(),
                "user=u".to_owned(),
                "pass=p".to_owned(),
                "clients=1".to_owned(),
                "secs=2".to_owned(),
                "random_msg_size=2000".to_owned(),
            ])
            .stdin(Stdio::null())
            .output(),
    )
    .await
    .expect("imaptest exits by itself")
    .expect("run imaptest");
    task.abort();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(89), "{stderr}");
    assert_error_line(
        &stderr,
        "Fatal: ",
        "server sent 12 bytes after its STARTTLS reply, before the TLS handshake",
    );
}

#[tokio::test]
async fn reader_goes_on_after_an_overlong_line() {
    let script = format!(
        "{GREETING}<1.1 NOOP\n*fill 2000000 * 1 EXISTS\n>\n> 1.1 OK done\n<1.2 NOOP\n> 1.2 OK still in sync\n*eof\n"
    );
    let (port, task) = serve(&script, Some(1)).await;
    let ep = endpoint(port, TlsMode::Plain).await;
    let mut client = ImapClient::connect(&ep, 1, &client_options(Duration::from_secs(5)))
        .await
        .expect("greeting");
    let err = client.simple("NOOP").await.expect_err("overlong line");
    assert!(
        err.to_string()
            .starts_with("response line longer than 1048576 bytes (2000002 bytes discarded)"),
        "{err}"
    );
    // The overlong response was discarded whole and the client waited for the tagged
    // reply before reporting it: the stream is still in sync.
    assert!(!client.stream().has_buffered_input());
    let done = client.simple("NOOP").await.expect("NOOP after the error");
    assert_eq!(done.line, "1.2 OK still in sync");
    drop(client);
    let served = task.await.unwrap().expect("server script");
    assert_eq!(served.lines_received, 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn engine_slow_drip_then_stall() {
    let (code, stderr) = engine_run(
        "*drip 0.003\n> * OK [CAPABILITY IMAP4rev1] slowly ready\n<1.1 LOGIN\n> 1.1 OK Logged in slowly\n*drip 0\n*sleep 3\n>*eof",
        &["timeout=1"],
    )
    .await;
    assert_eq!(code, Some(0), "{stderr}");
    assert_error_line(
        &stderr,
        "Error: u[1]: ",
        "no reply from server within 1s, waiting for command: 1.2 ",
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn engine_shows_stalled_connections_on_the_console() {
    // Logged in, then LOGOUT is never answered: the server goes quiet for 25 s.
    let script = format!(
        "{PREFLIGHT}> * OK [CAPABILITY IMAP4rev1] ready\n<1.1 LOGIN\n> 1.1 OK Logged in\n<1.2 LOGOUT\n*sleep 25\n>*eof\n"
    );
    let (port, _task) = serve(&script, Some(2)).await;
    let out = tokio::time::timeout(
        Duration::from_secs(60),
        tokio::process::Command::new(env!("CARGO_BIN_EXE_imaptest"))
            .args([
                "host=127.0.0.1".to_owned(),
                format!("port={port}"),
                "user=u".to_owned(),
                "pass=p".to_owned(),
                "clients=1".to_owned(),
                "secs=19,1".to_owned(),
                "timeout=40".to_owned(),
                "-".to_owned(),
                "select=0".to_owned(),
            ])
            .stdin(Stdio::null())
            .kill_on_drop(true)
            .output(),
    )
    .await
    .expect("imaptest exits by itself")
    .expect("imaptest output");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("(1 stalled >3s)"), "{stdout}");
    let stall_line = stdout
        .lines()
        .find(|l| l.starts_with(" - 1 stalled for "))
        .unwrap_or_else(|| panic!("no stall line in {stdout}"));
    assert!(
        stall_line.ends_with(" secs in command: 1.2 LOGOUT"),
        "{stall_line}"
    );
}
