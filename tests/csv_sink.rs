//! The `csv=` timeline and the `output=` results file: the CSV parses with a standard CSV
//! reader and its per-command sums equal the console Totals; a run killed with SIGKILL
//! leaves a valid CSV of complete seconds. Checked in-process with synthetic intervals,
//! against the in-tree null server, and against the lab Dovecot.

mod common;
#[path = "support/null_server.rs"]
mod null_server;

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use imaptest::config::CsvFormat;
use imaptest::metrics::{ErrorKind, Event, Interval, Outcome, Report, Severity, Sink};
use imaptest::ops::Op;
use imaptest::report::csv::HEADER;
use imaptest::report::{Console, CsvTimeline, ResultsFile};
use imaptest::states::{Probabilities, State};
use null_server::{NullOptions, NullServer};

#[derive(Clone, Default)]
struct Shared(Arc<Mutex<Vec<u8>>>);

impl Write for Shared {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Shared {
    fn text(&self) -> String {
        String::from_utf8(self.0.lock().unwrap().clone()).unwrap()
    }
}

/// One parsed CSV row, by column name.
type Row = BTreeMap<String, String>;

/// Parses with the `csv` crate, insisting on the fixed header and complete rows.
fn parse_csv(text: &str) -> Vec<Row> {
    let mut reader = csv::ReaderBuilder::new()
        .flexible(false)
        .from_reader(text.as_bytes());
    let header: Vec<String> = reader
        .headers()
        .expect("header row")
        .iter()
        .map(str::to_owned)
        .collect();
    assert_eq!(header, HEADER, "header");
    reader
        .records()
        .map(|r| {
            let r = r.unwrap_or_else(|e| panic!("bad CSV row: {e}\n{text}"));
            header
                .iter()
                .cloned()
                .zip(r.iter().map(str::to_owned))
                .collect()
        })
        .collect()
}

fn num(row: &Row, column: &str) -> u64 {
    row[column]
        .parse()
        .unwrap_or_else(|_| panic!("{column} is not a number in {row:?}"))
}

/// Per-command sum of `count_per_s` over the IMAP command rows, by state name.
fn count_sums(rows: &[Row]) -> BTreeMap<String, u64> {
    let mut sums = BTreeMap::new();
    for row in rows
        .iter()
        .filter(|r| r["kind"] == "command" && r["protocol"] == "imap")
    {
        if State::from_name(&row["name"]).is_some() {
            *sums.entry(row["name"].clone()).or_default() += num(row, "count_per_s");
        }
    }
    sums
}

/// Per-kind sum of `count` over the error rows, by kind name.
fn error_sums(rows: &[Row]) -> BTreeMap<String, u64> {
    let mut sums = BTreeMap::new();
    for row in rows.iter().filter(|r| r["kind"] == "error") {
        *sums.entry(row["name"].clone()).or_default() += num(row, "errors_per_s");
    }
    sums
}

/// Checks the shape every CSV must have: every op of the first second again in every
/// second (zeros, not gaps), error rows, then one connections row per second,
/// `elapsed_s` contiguous from 1, a second's error rows adding up to its errors.
/// Returns the number of seconds.
fn check_seconds(rows: &[Row]) -> u64 {
    let mut second = 1;
    let mut errors = 0;
    let mut ops_first: Vec<String> = Vec::new();
    let mut ops_now: Vec<String> = Vec::new();
    for row in rows {
        assert_eq!(num(row, "elapsed_s"), second, "{row:?}");
        num(row, "unix_time_s");
        match row["kind"].as_str() {
            "command" => {
                let protocol = imaptest::ops::Protocol::from_name(&row["protocol"]);
                let op = protocol.and_then(|p| Op::find(p, &row["name"]));
                assert!(op.is_some(), "{row:?}");
                ops_now.push(format!("{} {}", row["protocol"], row["name"]));
                let outcomes: u64 = ["ok_per_s", "no_per_s", "bad_per_s", "failed_per_s"]
                    .iter()
                    .map(|c| num(row, c))
                    .sum();
                if row["latency_p50_us"].is_empty() {
                    assert_eq!(outcomes, 0, "{row:?}");
                } else {
                    assert!(num(row, "latency_p50_us") <= num(row, "latency_p90_us"));
                    assert!(num(row, "latency_p90_us") <= num(row, "latency_p99_us"));
                    assert!(num(row, "latency_p99_us") <= num(row, "latency_max_us"));
                }
                assert!(row["connections_active"].is_empty());
            }
            "error" => {
                assert!(ErrorKind::from_name(&row["name"]).is_some(), "{row:?}");
                assert!(num(row, "errors_per_s") > 0, "{row:?}");
                assert!(row["connections_active"].is_empty());
                errors += num(row, "errors_per_s");
            }
            "connections" => {
                for c in [
                    "errors_per_s",
                    "connections_active",
                    "connections_open",
                    "connects_per_s",
                    "disconnects_per_s",
                ] {
                    num(row, c);
                }
                assert!(row["name"].is_empty() && row["count_per_s"].is_empty());
                assert_eq!(
                    num(row, "errors_per_s"),
                    errors,
                    "error rows of second {second}"
                );
                errors = 0;
                if second == 1 {
                    ops_first = ops_now.clone();
                } else {
                    for op in &ops_first {
                        assert!(ops_now.contains(op), "second {second} has no {op} row");
                    }
                }
                ops_now.clear();
                second += 1;
            }
            other => panic!("unknown kind {other}"),
        }
    }
    assert_eq!(
        rows.last().map(|r| r["kind"].as_str()),
        Some("connections"),
        "the last second is incomplete"
    );
    second - 1
}

/// The console's `Totals:` block as state name → count.
fn console_totals(stdout: &str) -> BTreeMap<String, u64> {
    let block = stdout
        .split("Totals:")
        .nth(1)
        .unwrap_or_else(|| panic!("no Totals in {stdout}"));
    let lines: Vec<&str> = block
        .lines()
        .filter(|l| !l.trim().is_empty() && !l.starts_with("Errors by kind:"))
        .collect();
    let names = lines.first().expect("Totals header");
    let counts = lines[1..]
        .iter()
        .find(|l| !l.contains('%'))
        .expect("Totals line");
    let names: Vec<&str> = names.split_whitespace().collect();
    let counts: Vec<u64> = counts
        .split_whitespace()
        .map(|n| n.parse().expect("Totals count"))
        .collect();
    assert_eq!(names.len(), counts.len(), "{block}");
    names
        .iter()
        .zip(counts)
        .map(|(short, n)| {
            let state = State::from_name(short).unwrap_or_else(|| panic!("column {short}"));
            (state.name().to_owned(), n)
        })
        .collect()
}

/// The console totals and the CSV sums agree: every console column equals its CSV sum,
/// and states missing from the console had no events in the CSV either, except the
/// `LIST "" ""` a connection may send (LISTROOT, never a column).
fn assert_sums_match(totals: &BTreeMap<String, u64>, sums: &BTreeMap<String, u64>) {
    for (name, total) in totals {
        assert_eq!(
            sums.get(name).copied().unwrap_or(0),
            *total,
            "{name}: CSV {sums:?} vs console {totals:?}"
        );
    }
    for (name, sum) in sums {
        if !totals.contains_key(name) && name != "LISTROOT" {
            assert_eq!(*sum, 0, "{name} counted in the CSV but not shown: {sums:?}");
        }
    }
}

fn command(iv: &mut Interval, state: State, outcome: Outcome, us: u64) {
    let now = Instant::now();
    iv.record(&Event::Command {
        op: Op::Imap(state),
        outcome,
        intended: now,
        started: now,
        finished: now + Duration::from_micros(us),
    });
}

#[test]
fn synthetic_intervals_sum_to_console_totals() {
    let probabilities = Probabilities::default();
    let columns = Console::<Shared, Shared>::visible_columns(&probabilities);
    let out = Shared::default();
    let csv_out = Shared::default();
    let mut console = Console::new(
        out.clone(),
        Shared::default(),
        columns.clone(),
        Some(probabilities),
        10,
    );
    let ops = columns.iter().map(|&s| Op::Imap(s)).collect();
    let mut csv = CsvTimeline::new(csv_out.clone(), "memory".into(), CsvFormat::Long, ops).unwrap();
    let mut totals = Interval::new();
    let outcomes = [
        Outcome::Ok,
        Outcome::Ok,
        Outcome::No,
        Outcome::Bad,
        Outcome::Failed,
    ];
    // A deterministic mix: second s runs state i (s*i) % 7 times, with varied outcomes.
    for second in 1..=25u64 {
        let mut iv = Interval::new();
        iv.elapsed_secs = second;
        iv.at = SystemTime::now();
        for (i, &state) in columns.iter().enumerate() {
            let n = (second * (i as u64 + 1)) % 7;
            for k in 0..n {
                let outcome = outcomes[((second + k) % 5) as usize];
                command(&mut iv, state, outcome, 100 + k * 900 + second);
            }
        }
        if second % 4 == 0 {
            iv.record(&Event::Count {
                op: Op::Imap(State::Delay),
            });
            // Seconds 4, 12, 20: one uid-changed; 8, 16, 24: two search-missing.
            let (kind, n) = if second % 8 == 0 {
                (ErrorKind::SearchMissing, 2)
            } else {
                (ErrorKind::UidChanged, 1)
            };
            for _ in 0..n {
                iv.record(&Event::Report(Report {
                    severity: Severity::Error,
                    user: None,
                    connection: Some(second),
                    message: "boom".into(),
                    line: None,
                    kind: Some(kind),
                }));
            }
        }
        iv.record(&Event::Connected);
        iv.active = second;
        iv.open = second + 1;
        iv.slots_used = 10;
        console.interval(&iv);
        csv.interval(&iv);
        totals.add(&iv);
    }
    console.finish(&totals);
    csv.finish(&totals);

    let rows = parse_csv(&csv_out.text());
    assert_eq!(check_seconds(&rows), 25);
    let sums = count_sums(&rows);
    let console = console_totals(&out.text());
    // DELAY is not a visible column, so it is only in the CSV.
    assert_eq!(sums.get("DELAY"), Some(&6));
    let mut without_delay = sums.clone();
    without_delay.remove("DELAY");
    assert_sums_match(&console, &without_delay);
    for state in State::all() {
        let f = totals.op(Op::Imap(state));
        let rows_of = || {
            rows.iter()
                .filter(|r| r["kind"] == "command" && r["name"] == state.name())
        };
        for (column, expected) in [
            ("count_per_s", f.count),
            ("ok_per_s", f.ok),
            ("no_per_s", f.no),
            ("bad_per_s", f.bad),
            ("failed_per_s", f.failed),
        ] {
            let sum: u64 = rows_of().map(|r| num(r, column)).sum();
            assert_eq!(sum, expected, "{} {column}", state.name());
        }
    }
    let connections = rows.iter().filter(|r| r["kind"] == "connections");
    assert_eq!(
        connections
            .clone()
            .map(|r| num(r, "errors_per_s"))
            .sum::<u64>(),
        9
    );
    assert_eq!(
        connections.map(|r| num(r, "connects_per_s")).sum::<u64>(),
        25
    );
    let errors = error_sums(&rows);
    assert_eq!(
        errors,
        BTreeMap::from([("search-missing".into(), 6), ("uid-changed".into(), 3)])
    );
    assert!(
        out.text()
            .contains("\nErrors by kind: search-missing 6, uid-changed 3\n"),
        "{}",
        out.text()
    );
}

#[test]
fn results_file_has_three_columns_per_state_on_every_line() {
    let columns = vec![State::Login, State::Select, State::Logout];
    let out = Shared::default();
    let mut sink = ResultsFile::new(out.clone(), "memory".into(), columns.clone()).unwrap();
    let mut iv = Interval::new();
    command(&mut iv, State::Select, Outcome::Ok, 2500);
    command(&mut iv, State::Select, Outcome::Bad, 1500);
    sink.interval(&iv);
    sink.finish(&iv);
    let text = out.text();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 2);
    assert_eq!(lines[0].split('\t').count(), 9);
    assert_eq!(lines[1], "0\t0\t0\t1\t2\t4\t0\t0\t0");
}

fn imaptest(args: &[String]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_imaptest"))
        .args(args)
        .output()
        .expect("run imaptest")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn write_mbox(dir: &Path) -> PathBuf {
    let path = dir.join("test.mbox");
    let out = imaptest(&[
        "mbox-gen".into(),
        format!("out={}", path.display()),
        "count=60".into(),
        "seed=3".into(),
    ]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    path
}

/// Runs a 3-second default-mix stress run with `csv=` and `output=` and checks both
/// files against the console totals.
fn run_and_compare(server_args: &[String], dir: &Path) {
    let mbox = write_mbox(dir);
    let csv_path = dir.join("timeline.csv");
    let output_path = dir.join("results.tsv");
    let mut args = server_args.to_vec();
    args.extend([
        "user=testuser%d".into(),
        "users=50".into(),
        format!("mbox={}", mbox.display()),
        "clients=10".into(),
        "secs=3".into(),
        format!("csv={}", csv_path.display()),
        format!("output={}", output_path.display()),
    ]);
    let out = imaptest(&args);
    let stdout = text(&out.stdout);
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stdout}\n{stderr}");
    let totals = console_totals(&stdout);
    assert!(totals["LOGIN"] > 0, "{stdout}");

    let rows = parse_csv(&std::fs::read_to_string(&csv_path).unwrap());
    let seconds = check_seconds(&rows);
    assert!(seconds >= 3, "{seconds} seconds");
    assert_sums_match(&totals, &count_sums(&rows));

    // output=: mode 0600, a 3-column header per visible state, one line per second with
    // the same per-state sums.
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&output_path)
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
    }
    let results = std::fs::read_to_string(&output_path).unwrap();
    let mut lines = results.lines();
    let header: Vec<&str> = lines.next().unwrap().split('\t').collect();
    assert_eq!(header.len(), totals.len() * 3, "{results}");
    let mut sums = vec![0u64; header.len()];
    let mut seconds_written = 0;
    for line in lines {
        let fields: Vec<u64> = line.split('\t').map(|n| n.parse().unwrap()).collect();
        assert_eq!(fields.len(), header.len(), "{line}");
        for (sum, n) in sums.iter_mut().zip(fields) {
            *sum += n;
        }
        seconds_written += 1;
    }
    assert_eq!(seconds_written, seconds);
    for (i, name) in header.iter().enumerate().step_by(3) {
        let state = name.strip_suffix(" count").expect("count column");
        assert_eq!(header[i + 1], format!("{state} replies"));
        assert_eq!(header[i + 2], format!("{state} msecs"));
        assert_eq!(sums[i], totals[state], "{state}");
        // Replies are at least the OKs among them (count ≤ replies, except for states
        // counted without replies, which the default mix doesn't have).
        assert!(sums[i + 1] >= sums[i], "{state}: {results}");
    }
}

/// Starts a default-mix run with `csv=`, SIGKILLs it after 3.5 s and checks the CSV holds
/// only complete seconds, contiguous from 1.
fn kill_and_check(server_args: &[String], dir: &Path) {
    let mbox = write_mbox(dir);
    let csv_path = dir.join("killed.csv");
    let mut args = server_args.to_vec();
    args.extend([
        "user=testuser%d".into(),
        "users=50".into(),
        format!("mbox={}", mbox.display()),
        "clients=10".into(),
        format!("csv={}", csv_path.display()),
    ]);
    let mut child = Command::new(env!("CARGO_BIN_EXE_imaptest"))
        .args(&args)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start imaptest");
    std::thread::sleep(Duration::from_millis(3500));
    child.kill().expect("SIGKILL");
    child.wait().unwrap();
    let text = std::fs::read_to_string(&csv_path).unwrap();
    assert!(text.ends_with('\n'), "torn last row: {text}");
    let rows = parse_csv(&text);
    let seconds = check_seconds(&rows);
    assert!((2..=4).contains(&seconds), "{seconds} seconds in {text}");
    assert!(
        count_sums(&rows).get("LOGIN").copied().unwrap_or(0) > 0,
        "{text}"
    );
}

fn null_args(server: &NullServer) -> Vec<String> {
    vec!["host=127.0.0.1".into(), format!("port={}", server.port())]
}

#[test]
fn csv_and_output_match_totals_against_the_null_server() {
    let server = NullServer::start(NullOptions::default()).unwrap();
    let dir = tempfile::tempdir().unwrap();
    run_and_compare(&null_args(&server), dir.path());
}

#[test]
fn killed_run_leaves_complete_seconds_against_the_null_server() {
    let server = NullServer::start(NullOptions::default()).unwrap();
    let dir = tempfile::tempdir().unwrap();
    kill_and_check(&null_args(&server), dir.path());
}

fn lab_args() -> Vec<String> {
    let lab = common::lab();
    vec![
        "host=127.0.0.1".into(),
        format!("port={}", lab.imap_port),
        format!("pass={}", lab.user_password),
    ]
}

#[test]
fn csv_and_output_match_totals_against_the_lab() {
    let args = lab_args();
    let dir = tempfile::tempdir().unwrap();
    run_and_compare(&args, dir.path());
}

#[test]
fn killed_run_leaves_complete_seconds_against_the_lab() {
    let args = lab_args();
    let dir = tempfile::tempdir().unwrap();
    kill_and_check(&args, dir.path());
}

#[test]
fn unwritable_csv_path_is_one_fatal_line() {
    let server = NullServer::start(NullOptions::default()).unwrap();
    let mut args = null_args(&server);
    args.extend([
        "user=testuser1".into(),
        "secs=1".into(),
        "-".into(),
        "select=0".into(),
        "csv=/nonexistent-dir/x.csv".into(),
    ]);
    let out = imaptest(&args);
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(89), "{stderr}");
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(stderr.contains("/nonexistent-dir/x.csv"), "{stderr}");
}
