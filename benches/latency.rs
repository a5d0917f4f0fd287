//! Per-command latency against a server whose replies wait for the client's ACK
//! (`tests/support/delayed_ack_server.rs`: Nagle on, untagged and tagged lines written
//! apart), side by side with the C ImapTest when its path is given: both tools must
//! report the server's speed, not the 40 ms delayed-ACK timer.
//!
//! ```text
//! cargo bench --bench latency
//! IMAPTEST_C=/path/to/c/imaptest cargo bench --bench latency
//! ```
//!
//! One client, `- logout=0 noop=100` for 5 s, runs alternating, 3 runs each. Both tools
//! pipeline the NOOPs, so wall time ÷ NOOPs (`ms/cmd`) is not a latency, but a stall
//! on every reply would show in it: with k commands in flight, 40 ms per reply allows
//! at most 25·k NOOPs/s. For imaptest also the median of its per-second NOOP p50
//! (`csv=`): the latency it reports.

#[path = "support/child.rs"]
mod child;
#[path = "../tests/support/delayed_ack_server.rs"]
mod delayed_ack_server;

use std::process::Command;
use std::time::{Duration, Instant};

use child::BIN;
use delayed_ack_server::DelayedAckServer;

const SECS: u64 = 5;
const RUNS: usize = 3;

fn main() {
    let Some((_, dir)) = child::start("latency") else {
        return;
    };
    let c_tool = std::env::var("IMAPTEST_C").ok();
    let server = match DelayedAckServer::start() {
        Ok(server) => server,
        Err(e) => {
            eprintln!("cannot start the delayed-ACK server: {e}");
            return;
        }
    };
    println!(
        "latency against a delayed-ACK server (1 client, NOOP, {SECS} s per run); {}\n",
        child::machine()
    );
    println!(
        "{:<9} {:>3} {:>8} {:>9} {:>12} {:>12}",
        "tool", "run", "NOOPs", "NOOP/s", "ms/cmd", "p50 ms (csv)"
    );
    let mut tools = vec![("imaptest", BIN.to_owned())];
    if let Some(path) = c_tool {
        tools.push(("C", path));
    }
    for run in 1..=RUNS {
        for (name, path) in &tools {
            let csv = dir.path().join(format!("{name}-{run}.csv"));
            match measure(path, server.port(), (*name == "imaptest").then_some(&csv)) {
                Ok((noops, wall, p50)) => {
                    let mean_ms = wall.as_secs_f64() * 1000.0 / noops.max(1) as f64;
                    println!(
                        "{name:<9} {run:>3} {noops:>8} {:>9.0} {mean_ms:>12.3} {:>12}",
                        noops as f64 / wall.as_secs_f64(),
                        p50.map_or("-".to_owned(), |p| format!("{p:.3}"))
                    );
                }
                Err(e) => println!("{name:<9} {run:>3} failed: {e}"),
            }
        }
    }
}

/// Runs `tool` for [`SECS`]; returns NOOPs done, the run's wall time and, with a CSV,
/// the median of the per-second NOOP p50 in ms.
fn measure(
    tool: &str,
    port: u16,
    csv: Option<&std::path::PathBuf>,
) -> Result<(u64, Duration, Option<f64>), String> {
    let mut command = Command::new(tool);
    command.args([
        "host=127.0.0.1".to_owned(),
        format!("port={port}"),
        "user=tester".to_owned(),
        "pass=secret".to_owned(),
        "clients=1".to_owned(),
        format!("secs={SECS}"),
    ]);
    if let Some(csv) = csv {
        command.arg(format!("csv={}", csv.display()));
    }
    command.args(["-", "logout=0", "noop=100"]);
    let started = Instant::now();
    let out = command.output().map_err(|e| format!("{tool}: {e}"))?;
    let wall = started.elapsed();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let noops = noop_total(&stdout).ok_or_else(|| {
        let stderr = String::from_utf8_lossy(&out.stderr);
        format!("no Totals: {}", stderr.lines().next().unwrap_or(""))
    })?;
    let p50 = csv.and_then(|csv| median_noop_p50_ms(csv));
    Ok((noops, wall, p50))
}

/// The NOOP column of the console's Totals (short name `Noop`).
fn noop_total(stdout: &str) -> Option<u64> {
    let block = stdout.split("Totals:").nth(1)?;
    let mut lines = block.lines().filter(|l| !l.trim().is_empty());
    let names: Vec<&str> = lines.next()?.split_whitespace().collect();
    let column = names.iter().position(|n| n.eq_ignore_ascii_case("Noop"))?;
    let counts = lines.find(|l| !l.contains('%'))?;
    counts.split_whitespace().nth(column)?.parse().ok()
}

fn median_noop_p50_ms(csv: &std::path::Path) -> Option<f64> {
    let text = std::fs::read_to_string(csv).ok()?;
    let mut lines = text.lines();
    let header: Vec<&str> = lines.next()?.split(',').collect();
    let command = header.iter().position(|h| *h == "name")?;
    let p50 = header.iter().position(|h| *h == "latency_p50_us")?;
    let mut values: Vec<f64> = lines
        .map(|l| l.split(',').collect::<Vec<_>>())
        .filter(|cells| cells.get(command) == Some(&"NOOP"))
        .filter_map(|cells| cells.get(p50)?.parse::<f64>().ok())
        .collect();
    values.sort_by(f64::total_cmp);
    values.get(values.len() / 2).map(|us| us / 1000.0)
}
