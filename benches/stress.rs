//! Stress benchmarks: the tool's own CPU per command and memory per connection.
//!
//! Runs the release `imaptest` binary as a child process for each scenario and measures
//! its user+sys CPU (`getrusage(RUSAGE_CHILDREN)` around the wait) and its RSS
//! (`/proc/<pid>/status` VmRSS, sampled while it runs). Completed commands are the sum
//! of the console `Totals` line. Scenarios whose prerequisite is missing (the lab Dovecot
//! on 127.0.0.1:10143/10993) are skipped with a note.
//!
//! ```text
//! cargo bench --bench stress                 # every scenario, each run twice
//! cargo bench --bench stress -- null idle    # only scenarios whose name contains a word
//! IMAPTEST_BENCH_SECS=5 IMAPTEST_BENCH_RUNS=1 cargo bench --bench stress
//! cargo bench --bench stress -- mbox         # peak RSS, 1 MB vs 1 GB mbox (only when named)
//! ```
//!
//! * CPU per command = child user+sys CPU ÷ completed commands, start-up, ramp-up and
//!   logout included.
//! * RSS per idle connection = (RSS with N idle clients − RSS with 1) ÷ (N − 1). "Idle"
//!   means logged in with one NOOP outstanding that the null server never answers
//!   (`- select=0 logout=0 noop=100` against a null server with NOOP answers off), which
//!   keeps connections open and quiet with any engine.
//! * The null server runs in this process on its own thread; its CPU is shown apart.
//! * **mbox** (only when named; writes a 1 GB mbox to a temporary directory): the
//!   default mix against the lab with a 1 MB and a 1 GB generated mbox, runs
//!   alternating; messages are read on demand, so the peak RSS (VmHWM, which counts
//!   touched mapped pages too) must not grow with the mbox. Each mbox gets its own
//!   hand-run users (testuser150–174, testuser175–199).

#[path = "support/child.rs"]
mod child;
#[path = "../tests/support/null_server.rs"]
mod null_server;

use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use child::{BIN, children_cpu, env_u64, rss_kib, self_cpu, spawn, status_kib};
use null_server::{NullOptions, NullServer};

const LAB_IMAP: &str = "127.0.0.1:10143";
const LAB_IMAPS: &str = "127.0.0.1:10993";
const LAB_CA: &str = "/tmp/imaptest-lab/ssl/ca.crt";

/// Where a scenario's server comes from.
#[derive(Clone, Copy, PartialEq)]
enum Server {
    Lab,
    LabTls,
    Null,
    /// The null server holding NOOPs: connections stay logged in and idle.
    NullIdle,
}

struct Scenario {
    name: &'static str,
    server: Server,
    clients: u32,
    /// Arguments besides host/port/clients/secs.
    args: Vec<String>,
    /// Run length for throughput scenarios.
    secs: u64,
}

/// What one run measured.
struct Measurement {
    wall: Duration,
    cpu: Duration,
    commands: u64,
    rss_peak_kib: u64,
    rss_kib: u64,
    server_cpu: Option<Duration>,
    note: String,
}

fn main() {
    let Some((filters, dir)) = child::start("stress") else {
        return;
    };
    let secs = env_u64("IMAPTEST_BENCH_SECS", 10).clamp(1, 30);
    let runs = env_u64("IMAPTEST_BENCH_RUNS", 2).max(1);

    let mbox = match generate_mbox(dir.path()) {
        Ok(m) => m,
        Err(e) => {
            eprintln!("mbox-gen failed: {e}");
            return;
        }
    };
    let lab = reachable(LAB_IMAP);
    let lab_tls = reachable(LAB_IMAPS) && Path::new(LAB_CA).exists();

    let mut scenarios = scenarios(&mbox, secs);
    if filters.iter().any(|f| f == "mbox") {
        match mbox_scenarios(dir.path(), secs, runs) {
            Ok(more) => scenarios.extend(more),
            Err(e) => eprintln!("mbox-gen failed: {e}"),
        }
    }
    println!(
        "imaptest stress benchmarks: {BIN}\n{runs} run(s) per scenario, {secs} s each; {}\n",
        child::machine()
    );
    println!(
        "{:<34} {:>3} {:>6} {:>9} {:>9} {:>8} {:>9} {:>9} {:>9} {:>8}  note",
        "scenario",
        "run",
        "wall s",
        "commands",
        "cmd/s",
        "CPU s",
        "µs/cmd",
        "RSS MiB",
        "peak MiB",
        "srv CPU"
    );
    let mut idle_baseline: Option<u64> = None;
    for scenario in &scenarios {
        if !filters.is_empty() && !filters.iter().any(|f| scenario.name.contains(f.as_str())) {
            continue;
        }
        let missing = match scenario.server {
            Server::Lab if !lab => Some(format!("skipped: no lab Dovecot on {LAB_IMAP}")),
            Server::LabTls if !lab_tls => Some(format!(
                "skipped: no lab Dovecot TLS on {LAB_IMAPS} or no {LAB_CA}"
            )),
            _ => None,
        };
        if let Some(note) = missing {
            println!("{:<34} {note}", scenario.name);
            continue;
        }
        for run in 1..=runs {
            let result = match scenario.server {
                Server::NullIdle => measure_idle(scenario),
                _ => measure_throughput(scenario),
            };
            match result {
                Ok(m) => {
                    print_row(scenario, run, &m, idle_baseline);
                    if scenario.server == Server::NullIdle && scenario.clients == 1 {
                        idle_baseline = Some(m.rss_kib);
                    }
                }
                Err(e) => println!("{:<34} {run:>3} failed: {e}", scenario.name),
            }
        }
    }
}

fn scenarios(mbox: &Path, secs: u64) -> Vec<Scenario> {
    let mbox = format!("mbox={}", mbox.display());
    let words = |s: &str| s.split_whitespace().map(str::to_owned).collect::<Vec<_>>();
    let lab_users = |n: u32| words(&format!("user=testuser%d users={n} pass=pass"));
    let with = |mut a: Vec<String>, b: Vec<String>| {
        a.extend(b);
        a
    };
    let noop_only = words("- select=0 logout=0 noop=100");
    vec![
        Scenario {
            name: "lab default mix, 10 clients",
            server: Server::Lab,
            clients: 10,
            args: with(lab_users(100), vec![mbox.clone()]),
            secs,
        },
        Scenario {
            name: "lab NOOP only, 1000 clients",
            server: Server::Lab,
            clients: 1000,
            args: with(lab_users(1000), noop_only.clone()),
            secs,
        },
        Scenario {
            name: "lab LOGIN+LOGOUT plain, 10 cl.",
            server: Server::Lab,
            clients: 10,
            args: with(lab_users(100), words("- select=0")),
            secs,
        },
        Scenario {
            name: "lab LOGIN+LOGOUT TLS, 10 cl.",
            server: Server::LabTls,
            clients: 10,
            args: with(
                lab_users(100),
                words(&format!("- select=0 ssl ssl_ca_file={LAB_CA}")),
            ),
            secs,
        },
        Scenario {
            name: "null default mix, 10 clients",
            server: Server::Null,
            clients: 10,
            args: with(lab_users(100), vec![mbox]),
            secs,
        },
        Scenario {
            name: "null NOOP only, 1000 clients",
            server: Server::Null,
            clients: 1000,
            args: with(lab_users(1000), noop_only.clone()),
            secs,
        },
        Scenario {
            name: "null idle, 1 client (baseline)",
            server: Server::NullIdle,
            clients: 1,
            args: with(lab_users(1000), noop_only.clone()),
            secs,
        },
        Scenario {
            name: "null idle, 1000 clients",
            server: Server::NullIdle,
            clients: 1000,
            args: with(lab_users(1000), noop_only.clone()),
            secs,
        },
        Scenario {
            name: "null idle, 10000 clients",
            server: Server::NullIdle,
            clients: 10_000,
            args: with(lab_users(10_000), noop_only),
            secs,
        },
    ]
}

/// The default mix with a small and a large mbox, alternating, `runs` times each.
fn mbox_scenarios(dir: &Path, secs: u64, runs: u64) -> Result<Vec<Scenario>, String> {
    let small = generate_mbox_sized(dir, "1mb.mbox", 40, 2)?;
    let large = generate_mbox_sized(dir, "1gb.mbox", 38_000, 2)?;
    let mut out = Vec::new();
    for _ in 0..runs {
        for (name, mbox, users) in [
            ("lab default mix, 1 MB mbox", &small, "150-174"),
            ("lab default mix, 1 GB mbox", &large, "175-199"),
        ] {
            out.push(Scenario {
                name,
                server: Server::Lab,
                clients: 10,
                args: [
                    "user=testuser%d".to_owned(),
                    format!("users={users}"),
                    "pass=pass".to_owned(),
                    format!("mbox={}", mbox.display()),
                ]
                .to_vec(),
                secs,
            });
        }
    }
    Ok(out)
}

fn print_row(scenario: &Scenario, run: u64, m: &Measurement, idle_baseline: Option<u64>) {
    let mib = |kib: u64| format!("{:.1}", kib as f64 / 1024.0);
    let (commands, rate, per_cmd) = if scenario.server == Server::NullIdle {
        ("-".to_owned(), "-".to_owned(), "-".to_owned())
    } else {
        (
            m.commands.to_string(),
            format!("{:.0}", m.commands as f64 / m.wall.as_secs_f64().max(0.001)),
            if m.commands == 0 {
                "-".to_owned()
            } else {
                format!("{:.1}", m.cpu.as_secs_f64() * 1e6 / m.commands as f64)
            },
        )
    };
    let mut note = m.note.clone();
    if scenario.server == Server::NullIdle && scenario.clients > 1 {
        let per_conn = m.rss_kib as f64 / f64::from(scenario.clients);
        note.push_str(&format!("RSS/conn {per_conn:.2} KiB"));
        if let Some(base) = idle_baseline {
            let marginal = m.rss_kib.saturating_sub(base) as f64 / f64::from(scenario.clients - 1);
            note.push_str(&format!(", above 1-client baseline {marginal:.2} KiB"));
        }
    }
    println!(
        "{:<34} {run:>3} {:>6.1} {commands:>9} {rate:>9} {:>8.2} {per_cmd:>9} {:>9} {:>9} {:>8}  {note}",
        scenario.name,
        m.wall.as_secs_f64(),
        m.cpu.as_secs_f64(),
        mib(m.rss_kib),
        mib(m.rss_peak_kib),
        m.server_cpu
            .map_or("-".to_owned(), |d| format!("{:.2}", d.as_secs_f64())),
    );
}

/// A run of `secs` seconds; the child exits by itself and prints its Totals.
fn measure_throughput(scenario: &Scenario) -> Result<Measurement, String> {
    let server = match scenario.server {
        Server::Null => Some(NullServer::start(NullOptions::default()).map_err(|e| e.to_string())?),
        _ => None,
    };
    let mut args = endpoint_args(scenario.server, server.as_ref());
    args.extend(scenario.args.iter().cloned());
    args.push(format!("clients={}", scenario.clients));
    args.push(format!("secs={},5", scenario.secs));

    let server_cpu_before = self_cpu();
    let cpu_before = children_cpu();
    let started = Instant::now();
    let (mut child, stdout, stderr) = spawn(&args)?;
    let deadline = started + Duration::from_secs(scenario.secs + 40);
    let mut peak = 0;
    let mut last = 0;
    let status = child::wait_sampling(&mut child, deadline, |pid| {
        if let Some(kib) = rss_kib(pid) {
            peak = peak.max(kib);
            last = kib;
        }
        // The high-water mark catches peaks between samples.
        peak = peak.max(status_kib(pid, "VmHWM").unwrap_or(0));
    })?;
    let wall = started.elapsed();
    let cpu = children_cpu().saturating_sub(cpu_before);
    let server_cpu = server.map(|s| {
        drop(s);
        self_cpu().saturating_sub(server_cpu_before)
    });
    let stdout = stdout.join().unwrap_or_default();
    let stderr = stderr.join().unwrap_or_default();
    let commands = totals(&stdout).ok_or_else(|| {
        format!(
            "no Totals ({status}); stderr: {}",
            stderr.lines().take(3).collect::<Vec<_>>().join(" | ")
        )
    })?;
    if std::env::var_os("IMAPTEST_BENCH_VERBOSE").is_some() {
        eprintln!(
            "--- {} stdout:\n{stdout}\n--- stderr:\n{stderr}",
            scenario.name
        );
    }
    let errors = stderr.lines().filter(|l| l.starts_with("Error:")).count();
    let mut note = if errors > 0 {
        format!("{errors} error lines; ")
    } else {
        String::new()
    };
    if stderr.contains("Second timeout triggered") {
        note.push_str("stop grace expired; ");
    }
    Ok(Measurement {
        wall,
        cpu,
        commands,
        rss_peak_kib: peak,
        rss_kib: last,
        server_cpu,
        note,
    })
}

/// Connects `clients` idle connections to the null server, waits until every one holds
/// a NOOP, samples RSS and kills the child.
fn measure_idle(scenario: &Scenario) -> Result<Measurement, String> {
    let server =
        NullServer::start(NullOptions { answer_noop: false }).map_err(|e| e.to_string())?;
    let mut args = endpoint_args(Server::NullIdle, Some(&server));
    args.extend(scenario.args.iter().cloned());
    args.push(format!("clients={}", scenario.clients));
    args.push("timeout=600".to_owned());

    let cpu_before = children_cpu();
    let started = Instant::now();
    let (mut child, stdout, stderr) = spawn(&args)?;
    let target = u64::from(scenario.clients);
    let deadline = started + Duration::from_secs(25);
    let mut peak = 0;
    let mut note = String::new();
    while server.stats.held.load(Ordering::Relaxed) < target {
        if let Some(kib) = rss_kib(child.id()) {
            peak = peak.max(kib);
        }
        if let Ok(Some(status)) = child.try_wait() {
            let stderr = stderr.join().unwrap_or_default();
            return Err(format!(
                "exited early ({status}): {}",
                stderr.lines().take(3).collect::<Vec<_>>().join(" | ")
            ));
        }
        if Instant::now() > deadline {
            note = format!(
                "only {} of {target} idle after 25 s; ",
                server.stats.held.load(Ordering::Relaxed)
            );
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let ramp = started.elapsed();
    // Let allocations settle, then take the highest of a few samples.
    std::thread::sleep(Duration::from_secs(2));
    let mut rss = 0;
    for _ in 0..5 {
        if let Some(kib) = rss_kib(child.id()) {
            rss = rss.max(kib);
            peak = peak.max(kib);
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    let _ = child.kill();
    let _ = child.wait();
    let cpu = children_cpu().saturating_sub(cpu_before);
    let _ = stdout.join();
    let _ = stderr.join();
    note.push_str(&format!("all idle after {:.1} s; ", ramp.as_secs_f64()));
    Ok(Measurement {
        wall: started.elapsed(),
        cpu,
        commands: 0,
        rss_peak_kib: peak,
        rss_kib: rss,
        server_cpu: None,
        note,
    })
}

fn endpoint_args(server: Server, null: Option<&NullServer>) -> Vec<String> {
    match (server, null) {
        (Server::Lab, _) => vec!["host=127.0.0.1".into(), "port=10143".into()],
        (Server::LabTls, _) => vec![
            "host=localhost".into(),
            "hostip=127.0.0.1".into(),
            "port=10993".into(),
        ],
        (_, Some(null)) => vec!["host=127.0.0.1".into(), format!("port={}", null.port())],
        (_, None) => vec![],
    }
}

/// The sum of the console's Totals line.
fn totals(stdout: &str) -> Option<u64> {
    let block = stdout.split("Totals:").nth(1)?;
    let line = block.lines().rev().find(|l| !l.trim().is_empty())?;
    line.split_whitespace()
        .map(|n| n.parse::<u64>().ok())
        .sum::<Option<u64>>()
}

fn generate_mbox(dir: &Path) -> Result<PathBuf, String> {
    generate_mbox_sized(dir, "bench.mbox", 100, 1)
}

fn generate_mbox_sized(dir: &Path, name: &str, count: u32, seed: u32) -> Result<PathBuf, String> {
    let path = dir.join(name);
    let out = Command::new(BIN)
        .args([
            "mbox-gen".to_owned(),
            format!("out={}", path.display()),
            format!("count={count}"),
            format!("seed={seed}"),
        ])
        .output()
        .map_err(|e| e.to_string())?;
    if !out.status.success() {
        return Err(String::from_utf8_lossy(&out.stderr).into_owned());
    }
    Ok(path)
}

fn reachable(addr: &str) -> bool {
    addr.parse::<SocketAddr>()
        .is_ok_and(|a| TcpStream::connect_timeout(&a, Duration::from_secs(1)).is_ok())
}
