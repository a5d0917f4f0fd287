//! The example scripts in `examples/conversations/` against each other, and the
//! `client_main` / `server_main` entry points with their exit statuses.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use imaptest::config::{TlsMode, TlsSettings};
use imaptest::conversation::{
    self, ClientOptions, ClientScript, ServerOptions, ServerScript, Transcript, bind, run_script,
};

fn example(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("examples/conversations")
        .join(name)
}

async fn pair(server: &str, client: &str) {
    let script = ServerScript::load(&example(server)).unwrap();
    let (server_transcript, server_log) = Transcript::capture();
    let (addr, task) = bind(
        script,
        ServerOptions {
            timeout: Duration::from_secs(5),
            ..ServerOptions::default()
        },
        server_transcript,
    )
    .await
    .unwrap();
    let script = ClientScript::load(&example(client)).unwrap();
    let (mut transcript, log) = Transcript::capture();
    let options = ClientOptions {
        host: "127.0.0.1".to_owned(),
        port: addr.port(),
        tls: TlsSettings {
            mode: TlsMode::Plain,
            accept_any_cert: true,
            ca_file: None,
        },
        timeout: Duration::from_secs(5),
    };
    let result = run_script(&script, &options, &mut transcript).await;
    let served = task.await.unwrap();
    assert!(
        result.is_ok() && served.is_ok(),
        "client: {result:?}\nserver: {served:?}\n--- client ---\n{}\n--- server ---\n{}",
        log.text(),
        server_log.text()
    );
}

#[tokio::test]
async fn imap_example_against_the_imitating_server() {
    pair("imap.server", "imap.client").await;
}

#[tokio::test]
async fn smtp_example_with_starttls_and_pipelining() {
    pair("smtp.server", "smtp.client").await;
}

#[test]
fn every_example_parses() {
    for entry in std::fs::read_dir(example("")).unwrap() {
        let path = entry.unwrap().path();
        match path.extension().and_then(|e| e.to_str()) {
            Some("client") => {
                ClientScript::load(&path).unwrap();
            }
            Some("server") => {
                ServerScript::load(&path).unwrap();
            }
            _ => {}
        }
    }
}

fn args(list: &[&str]) -> Vec<String> {
    list.iter().map(|s| s.to_string()).collect()
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Runs `server_main` in a thread and `client_main` once it listens.
fn mains(server: &[String], client: impl Fn(u16) -> Vec<String>) -> (ExitCode, ExitCode) {
    let port = free_port();
    let mut server = server.to_vec();
    server.push(format!("port={port}"));
    server.push("timeout=5".to_owned());
    let server_thread = std::thread::spawn(move || conversation::server_main(&server).unwrap());
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(
            std::time::Instant::now() < deadline,
            "the server never listened"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    // That probe was the first connection: the server's first section ran against it.
    let client_code = conversation::client_main(&client(port)).unwrap();
    (server_thread.join().unwrap(), client_code)
}

#[test]
fn mains_exit_zero_when_both_scripts_match_and_two_on_a_mismatch() {
    let dir = tempfile::tempdir().unwrap();
    // Connection 1 is the readiness probe, which just closes; connection 2 is the client.
    let server = dir.path().join("s.server");
    std::fs::write(&server, "*eof\n> * OK hello\na1 NOOP\n> a1 OK\n>*eof\n").unwrap();
    let good = dir.path().join("good.client");
    std::fs::write(&good, "??? * OK hello\na1 NOOP\n??? a1 OK\n???*\n").unwrap();
    let server_args = args(&[server.to_str().unwrap()]);
    let (s, c) = mains(&server_args, |port| {
        args(&[
            good.to_str().unwrap(),
            "host=127.0.0.1",
            &format!("port={port}"),
        ])
    });
    assert_eq!((s, c), (ExitCode::SUCCESS, ExitCode::SUCCESS));

    let bad = dir.path().join("bad.client");
    std::fs::write(&bad, "??? * OK hello\na1 NOOP\n??? a1 NO\n").unwrap();
    let (s, c) = mains(&server_args, |port| {
        args(&[bad.to_str().unwrap(), &format!("port={port}")])
    });
    let mismatch = ExitCode::from(conversation::EXIT_MISMATCH);
    // The client fails at its line 3; the server saw everything it expected.
    assert_eq!((s, c), (ExitCode::SUCCESS, mismatch));

    let rude = dir.path().join("rude.client");
    std::fs::write(&rude, "??? * OK hello\na1 LOGOUT\n").unwrap();
    let (s, c) = mains(&server_args, |port| {
        args(&[rude.to_str().unwrap(), &format!("port={port}")])
    });
    assert_eq!((s, c), (mismatch, ExitCode::SUCCESS));
}

#[test]
fn mains_refuse_bad_arguments_and_scripts() {
    let err = conversation::client_main(&args(&["x.client"])).unwrap_err();
    assert!(err.to_string().starts_with("missing port="), "{err}");
    let err = conversation::client_main(&args(&["/nonexistent.client", "port=1"])).unwrap_err();
    assert!(
        err.to_string()
            .starts_with("cannot read script /nonexistent.client"),
        "{err}"
    );
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("bad.server");
    std::fs::write(&bad, "> ok\n*sleep forever\n").unwrap();
    let err = conversation::server_main(&args(&[bad.to_str().unwrap()])).unwrap_err();
    assert!(
        err.to_string()
            .ends_with("bad.server:2: `*sleep` needs a number of seconds, got `forever`"),
        "{err}"
    );
    let err =
        conversation::server_main(&args(&[bad.to_str().unwrap(), "host=8.8.8.8"])).unwrap_err();
    assert!(err.to_string().contains("loopback"), "{err}");
    // Nobody listens: the client cannot start.
    let good = dir.path().join("good.client");
    std::fs::write(&good, "??? x\n").unwrap();
    let port = free_port();
    let err = conversation::client_main(&args(&[good.to_str().unwrap(), &format!("port={port}")]))
        .unwrap_err();
    assert!(err.to_string().contains("failed"), "{err}");
}
