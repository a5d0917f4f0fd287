//! `imaptest client` and `imaptest server` as processes: exit statuses and what the user
//! sees. Ignored until `src/main.rs` dispatches the two subcommands to
//! `imaptest::conversation::{client_main, server_main}`; run with `--ignored`.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

fn imaptest() -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_imaptest"));
    command.stdin(Stdio::null());
    command
}

fn example(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("examples/conversations")
        .join(name)
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// One process pair at a time: a port found free can be taken by another test's
/// connection before the server binds it, and parallel runs on a loaded 2-core machine
/// stretch the servers' timeouts.
static ONE_AT_A_TIME: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn one_at_a_time() -> std::sync::MutexGuard<'static, ()> {
    ONE_AT_A_TIME.lock().unwrap_or_else(|p| p.into_inner())
}

/// Starts `imaptest server SCRIPT port=P` and waits until it listens (the readiness
/// probe is the script's first connection, so scripts here start with a probe section).
fn server(script: &Path, port: u16, extra: &[&str]) -> Child {
    let child = imaptest()
        .arg("server")
        .arg(script)
        .arg(format!("port={port}"))
        .arg("timeout=10")
        .args(extra)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start imaptest server");
    let deadline = Instant::now() + Duration::from_secs(10);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "the server never listened");
        std::thread::sleep(Duration::from_millis(20));
    }
    child
}

fn finish(child: Child) -> Output {
    child.wait_with_output().expect("server output")
}

fn with_probe(dir: &Path, name: &str) -> PathBuf {
    let body = std::fs::read_to_string(example(name)).unwrap();
    let path = dir.join(name);
    std::fs::write(&path, format!("*eof\n{body}")).unwrap();
    path
}

#[test]
fn imap_example_client_against_example_server() {
    let _turn = one_at_a_time();
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let srv = server(&with_probe(dir.path(), "imap.server"), port, &[]);
    let out = imaptest()
        .arg("client")
        .arg(example("imap.client"))
        .arg("host=127.0.0.1")
        .arg(format!("port={port}"))
        .output()
        .unwrap();
    let stdout = text(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{stdout}{}", text(&out.stderr));
    assert!(
        stdout.contains("<<< a2 OK [READ-WRITE] Select completed."),
        "{stdout}"
    );
    assert!(stdout.ends_with("End of script\n"), "{stdout}");
    // `###` comments go to stderr too.
    assert_eq!(
        text(&out.stderr),
        "### two commands in one write (pipelining)\n"
    );
    let served = finish(srv);
    let server_out = text(&served.stdout);
    assert_eq!(
        served.status.code(),
        Some(0),
        "{server_out}{}",
        text(&served.stderr)
    );
    assert!(
        server_out.starts_with(&format!("Listening on 127.0.0.1:{port}\n")),
        "{server_out}"
    );
    assert!(server_out.contains("<a5 LOGOUT"), "{server_out}");
}

#[test]
fn smtp_example_over_starttls() {
    let _turn = one_at_a_time();
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let srv = server(&with_probe(dir.path(), "smtp.server"), port, &[]);
    let out = imaptest()
        .arg("client")
        .arg(example("smtp.client"))
        .arg(format!("port={port}"))
        .arg("starttls")
        .arg("ssl=any-cert")
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}{}",
        text(&out.stdout),
        text(&out.stderr)
    );
    assert!(text(&out.stdout).contains("Succeeded in starting TLS"));
    assert_eq!(finish(srv).status.code(), Some(0));
}

#[test]
fn mismatches_exit_2_with_the_script_line_on_stderr() {
    let _turn = one_at_a_time();
    let dir = tempfile::tempdir().unwrap();
    let server_script = dir.path().join("s.server");
    std::fs::write(
        &server_script,
        "*eof\n> * OK hi\na1 NOOP\n> a1 NO [ALERT] nope\n>*eof\n",
    )
    .unwrap();
    let client_script = dir.path().join("c.client");
    std::fs::write(&client_script, "??? * OK\na1 NOOP\n??? a1 OK\n").unwrap();
    let port = free_port();
    let srv = server(&server_script, port, &[]);
    let out = imaptest()
        .arg("client")
        .arg(&client_script)
        .arg(format!("port={port}"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert_eq!(
        text(&out.stderr),
        format!(
            "Error: {}:3: expected a line starting with \"a1 OK\", received \"a1 NO [ALERT] nope\"\n",
            client_script.display()
        )
    );
    assert_eq!(finish(srv).status.code(), Some(0));

    // Now the server is the one that sees a wrong line.
    let port = free_port();
    let srv = server(&server_script, port, &[]);
    let rude = dir.path().join("rude.client");
    std::fs::write(&rude, "??? * OK\na1 LOGOUT\n").unwrap();
    let out = imaptest()
        .arg("client")
        .arg(&rude)
        .arg(format!("port={port}"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0));
    let served = finish(srv);
    assert_eq!(served.status.code(), Some(2));
    assert_eq!(
        text(&served.stderr),
        format!(
            "Error: {}:3: expected the client to send a line starting with \"a1 NOOP\", received \"a1 LOGOUT\"\n",
            server_script.display()
        )
    );
}

#[test]
fn bad_arguments_and_scripts_are_fatal() {
    let _turn = one_at_a_time();
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("bad.client");
    std::fs::write(&bad, "??? ok\n+++ soon\n").unwrap();
    for (args, needle) in [
        (
            vec!["client".to_owned(), "x.client".to_owned()],
            "missing port=".to_owned(),
        ),
        (
            vec![
                "client".to_owned(),
                bad.display().to_string(),
                "port=1".to_owned(),
            ],
            format!(
                "{}:2: `+++` needs a number of seconds, got `soon`",
                bad.display()
            ),
        ),
        (
            vec![
                "server".to_owned(),
                "x.server".to_owned(),
                "host=192.0.2.1".to_owned(),
            ],
            "the script server listens on loopback addresses only".to_owned(),
        ),
    ] {
        let out = imaptest().args(&args).output().unwrap();
        let stderr = text(&out.stderr);
        assert_eq!(out.status.code(), Some(89), "{args:?}: {stderr}");
        assert!(
            stderr.starts_with("Fatal: ") && stderr.contains(&needle),
            "{stderr}"
        );
        assert_eq!(stderr.lines().count(), 1, "{stderr}");
    }
    let out = imaptest().args(["client", "--help"]).output().unwrap();
    assert_eq!(out.status.code(), Some(0));
    assert!(text(&out.stdout).starts_with("usage: imaptest client SCRIPT"));
}
