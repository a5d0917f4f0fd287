//! Reported latencies are the server's, not the client's delayed-ACK timer: against a
//! server that writes each reply in two small segments with Nagle on (the second waits
//! for the client's ACK), every protocol connection must acknowledge at once. Without
//! `TCP_QUICKACK` each exchange costs ≥ 40 ms (Linux's minimum delayed-ACK time); with
//! it, well under a millisecond on loopback. The threshold, 10 ms on a median or mean
//! of many exchanges, sits 4× below the stall, so machine load cannot flip the result.

#[path = "support/delayed_ack_server.rs"]
mod delayed_ack_server;
#[path = "support/timeline.rs"]
mod timeline;

use std::process::Command;
use std::time::{Duration, Instant};

use delayed_ack_server::DelayedAckServer;
use imaptest::config::TlsSettings;
use imaptest::conversation::{ClientOptions, ClientScript, Transcript, run_script};
use imaptest::net::{Endpoint, LineStream};

/// Above this a median exchange is taken as a delayed-ACK stall (which costs ≥ 40 ms).
const STALL_THRESHOLD: Duration = Duration::from_millis(10);

fn median(mut values: Vec<Duration>) -> Duration {
    values.sort();
    values[values.len() / 2]
}

/// The stress engine's own figures: the NOOP p50 of each second of a `logout=0
/// noop=100` run, from the CSV timeline.
#[test]
fn stress_noop_latency_is_the_servers() {
    let server = DelayedAckServer::start().expect("start server");
    let dir = tempfile::tempdir().unwrap();
    let csv = dir.path().join("timeline.csv");
    let out = Command::new(env!("CARGO_BIN_EXE_imaptest"))
        .args([
            "host=127.0.0.1",
            &format!("port={}", server.port()),
            "user=tester",
            "pass=secret",
            "clients=2",
            "secs=3",
            &format!("csv={}", csv.display()),
            "-",
            "logout=0",
            "noop=100",
        ])
        .output()
        .expect("run imaptest");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "stdout: {stdout}\nstderr: {stderr}");
    let noop_rows: Vec<_> = timeline::rows(&csv)
        .into_iter()
        .filter(|r| {
            r["protocol"] == "imap" && r["name"] == "NOOP" && !r["latency_p50_us"].is_empty()
        })
        .collect();
    let noops: u64 = noop_rows
        .iter()
        .map(|r| timeline::number(r, "count_per_s"))
        .sum();
    let p50s = noop_rows
        .iter()
        .map(|r| Duration::from_micros(timeline::number(r, "latency_p50_us")))
        .collect();
    // 3 s of stalls would still give ~150 NOOPs; fewer means the run did not measure.
    assert!(noops >= 100, "only {noops} NOOPs: {stdout}");
    let p50 = median(p50s);
    assert!(
        p50 < STALL_THRESHOLD,
        "NOOP p50 {p50:?} over {noops} NOOPs: delayed ACKs are in the measurement"
    );
}

/// The line reader under the POP3 and LMTP clients: a NOOP answered in two segments.
#[tokio::test]
async fn line_stream_exchanges_do_not_wait_for_delayed_acks() {
    let server = DelayedAckServer::start().expect("start server");
    let endpoint = Endpoint::resolve(
        "127.0.0.1",
        "127.0.0.1",
        server.port(),
        &TlsSettings::default(),
        Duration::from_secs(10),
    )
    .await
    .unwrap();
    let (transport, peer) = endpoint.connect().await.unwrap();
    let mut lines = LineStream::new(transport, peer, None, Duration::from_secs(10));
    lines.read_line(1024).await.expect("greeting");
    let mut times = Vec::new();
    for i in 0..100 {
        let started = Instant::now();
        lines
            .send(format!("a{i} NOOP\r\n").as_bytes(), None)
            .await
            .unwrap();
        let untagged = lines.read_line(1024).await.unwrap().to_vec();
        assert_eq!(untagged, b"* 0 RECENT");
        let tagged = lines.read_line(1024).await.unwrap().to_vec();
        assert_eq!(tagged, format!("a{i} OK done").as_bytes());
        times.push(started.elapsed());
    }
    let p50 = median(times);
    assert!(p50 < STALL_THRESHOLD, "exchange p50 {p50:?}");
}

/// The conversation client (`imaptest client`): 100 exchanges of a script.
#[tokio::test]
async fn conversation_client_does_not_wait_for_delayed_acks() {
    let server = DelayedAckServer::start().expect("start server");
    const EXCHANGES: u32 = 100;
    let mut text = String::from("??? * OK\n");
    for i in 0..EXCHANGES {
        text.push_str(&format!("a{i} NOOP\n??? * 0 RECENT\n??? a{i} OK\n"));
    }
    let script = ClientScript::parse("latency", &text, std::path::Path::new(".")).unwrap();
    let options = ClientOptions {
        host: "127.0.0.1".into(),
        port: server.port(),
        tls: TlsSettings::default(),
        timeout: Duration::from_secs(10),
    };
    let started = Instant::now();
    run_script(&script, &options, &mut Transcript::discard())
        .await
        .expect("script runs to its end");
    let mean = started.elapsed() / EXCHANGES;
    assert!(mean < STALL_THRESHOLD, "mean exchange {mean:?}");
}
