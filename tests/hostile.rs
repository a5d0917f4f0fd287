//! The hardening suite: imaptest against hostile fake servers (`support/hostile.rs`)
//! and absurd inputs. Each case runs the real binary as a child process under a
//! wall-clock bound, checks its peak RSS (`ru_maxrss` from `wait4`), its exit and a
//! clear error, and prints its time and peak RSS.
//!
//! `harness = false`: a case starts imaptest through a launcher — this binary again,
//! started fresh — because `ru_maxrss` of a child started by `vfork`+`exec` also counts
//! the parent's peak RSS (Linux records the old mm's high-water mark at `exec`), and
//! the test process itself grows while its fake servers flood. The launcher is small,
//! so the figure is imaptest's own.
//!
//! Bounds: every time bound is at least 5× what the case takes here; the memory bound
//! is about 5× imaptest's usual peak (12–25 MB) and far below what the faults cost
//! before they were bounded (gigabytes).
//!
//! `cargo test --test hostile [FILTER...]` runs the cases whose name contains a filter
//! (all without one), four at a time; `HOSTILE_SHOW=1` also prints the first lines of
//! each case's stderr.

mod common;

#[path = "support/hostile.rs"]
mod hostile;

use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use hostile::{Fault, Phase};

/// Peak RSS allowed to any case.
const RSS_BOUND_MB: f64 = 120.0;
/// Cases run at once.
const PARALLEL: usize = 4;
/// Set in the launcher's environment: where to write the child's status and rusage.
const LAUNCH_ENV: &str = "IMAPTEST_HOSTILE_LAUNCH_REPORT";

fn main() -> ExitCode {
    if let Some(report) = std::env::var_os(LAUNCH_ENV) {
        return launcher(Path::new(&report));
    }
    let filters: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with('-'))
        .collect();
    let cases: Vec<(&str, fn())> = CASES
        .iter()
        .copied()
        .filter(|(name, _)| filters.is_empty() || filters.iter().any(|f| name.contains(f)))
        .collect();
    println!("running {} hostile cases", cases.len());
    let started = Instant::now();
    let queue = Mutex::new(cases.into_iter());
    let failed = Mutex::new(Vec::new());
    std::thread::scope(|scope| {
        for _ in 0..PARALLEL {
            scope.spawn(|| {
                loop {
                    let next = queue.lock().unwrap().next();
                    let Some((name, case)) = next else { break };
                    if std::panic::catch_unwind(case).is_err() {
                        failed.lock().unwrap().push(name);
                    }
                }
            });
        }
    });
    let failed = failed.into_inner().unwrap();
    println!(
        "hostile: {} failed, {:.1} s{}",
        failed.len(),
        started.elapsed().as_secs_f64(),
        if failed.is_empty() {
            String::new()
        } else {
            format!(": {}", failed.join(", "))
        }
    );
    if failed.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

/// Launcher mode: runs imaptest with this process's arguments, waits for it and writes
/// `<exit code or -signal> <ru_maxrss KB>` to `report`.
// The child is reaped by wait4 below (for its rusage), not by `Child::wait`.
#[allow(clippy::zombie_processes)]
fn launcher(report: &Path) -> ExitCode {
    let child = Command::new(common::imaptest_bin())
        .args(std::env::args_os().skip(1))
        .env_remove(LAUNCH_ENV)
        .spawn()
        .expect("spawn imaptest");
    let pid = child.id() as libc::pid_t;
    let mut status = 0;
    // SAFETY: plain struct for the kernel to fill.
    let mut rusage: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: our own child's pid and pointers to live locals.
    let rc = unsafe { libc::wait4(pid, &mut status, 0, &mut rusage) };
    assert_eq!(rc, pid, "wait4: {}", std::io::Error::last_os_error());
    let code = if libc::WIFEXITED(status) {
        libc::WEXITSTATUS(status)
    } else {
        -libc::WTERMSIG(status)
    };
    std::fs::write(report, format!("{code} {}", rusage.ru_maxrss)).expect("write report");
    ExitCode::SUCCESS
}

/// What a finished child did.
#[derive(Debug)]
struct Finished {
    name: String,
    status: Option<i32>,
    stdout: String,
    stderr: String,
    elapsed: Duration,
}

/// Runs imaptest with `args` (and `env`) through the launcher, kills it past `wall`
/// (the case then fails), prints the case's time and peak RSS, and checks what every
/// case must hold: the memory bound, no raw control bytes, no panic.
fn run_case(name: &str, args: &[String], env: &[(&str, &str)], wall: Duration) -> Finished {
    use std::os::unix::process::CommandExt;
    let dir = tempfile::tempdir().unwrap();
    let out_path = dir.path().join("stdout");
    let err_path = dir.path().join("stderr");
    let report = dir.path().join("report");
    let started = Instant::now();
    let mut command = Command::new(std::env::current_exe().unwrap());
    command
        .args(args)
        .env(LAUNCH_ENV, &report)
        .stdin(Stdio::null())
        .stdout(std::fs::File::create(&out_path).unwrap())
        .stderr(std::fs::File::create(&err_path).unwrap())
        // Its own process group, so a timeout kills imaptest too.
        .process_group(0);
    for (k, v) in env {
        command.env(k, v);
    }
    let mut launcher = command.spawn().expect("spawn the launcher");
    loop {
        if launcher.try_wait().expect("wait").is_some() {
            break;
        }
        if started.elapsed() > wall {
            // SAFETY: the launcher's process group (launcher and imaptest).
            unsafe { libc::kill(-(launcher.id() as libc::pid_t), libc::SIGKILL) };
            let _ = launcher.wait();
            let stderr = std::fs::read_to_string(&err_path).unwrap_or_default();
            panic!(
                "{name}: still running after {wall:?} (killed)\nargs: {args:?}\nstderr (tail): {}",
                tail(&stderr)
            );
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let elapsed = started.elapsed();
    let report = std::fs::read_to_string(&report).expect("launcher report");
    let (code, rss) = report.split_once(' ').expect("report format");
    let code: i32 = code.parse().unwrap();
    let max_rss_mb = rss.parse::<f64>().unwrap() / 1024.0;
    let stdout_bytes = std::fs::read(&out_path).unwrap();
    let stderr_bytes = std::fs::read(&err_path).unwrap();
    println!(
        "hostile case {name:<48} {:>6.2} s  peak RSS {max_rss_mb:>6.1} MB  exit {code:>3}  stderr {} bytes",
        elapsed.as_secs_f64(),
        stderr_bytes.len()
    );
    let stderr = String::from_utf8_lossy(&stderr_bytes).into_owned();
    if std::env::var_os("HOSTILE_SHOW").is_some() {
        for line in stderr.lines().take(3) {
            println!("    {line}");
        }
    }
    assert!(
        max_rss_mb < RSS_BOUND_MB,
        "{name}: peak RSS {max_rss_mb:.1} MB over the {RSS_BOUND_MB} MB bound"
    );
    // Server text is inert: no escape or bell reaches the terminal.
    for (what, bytes) in [("stdout", &stdout_bytes), ("stderr", &stderr_bytes)] {
        assert!(
            !bytes.iter().any(|&b| b == 0x1b || b == 0x07),
            "{name}: raw control bytes on {what}: {}",
            tail(&String::from_utf8_lossy(bytes))
        );
    }
    assert!(!stderr.contains("panicked"), "{name}: {stderr}");
    Finished {
        name: name.to_owned(),
        status: (code >= 0).then_some(code),
        stdout: String::from_utf8_lossy(&stdout_bytes).into_owned(),
        stderr,
        elapsed,
    }
}

impl Finished {
    fn stderr_has(&self, needle: &str) -> &Self {
        assert!(
            self.stderr.contains(needle),
            "{}: no `{needle}` in stderr:\n{}",
            self.name,
            tail(&self.stderr)
        );
        self
    }

    fn stdout_has(&self, needle: &str) -> &Self {
        assert!(
            self.stdout.contains(needle),
            "{}: no `{needle}` in stdout:\n{}",
            self.name,
            tail(&self.stdout)
        );
        self
    }

    fn status(&self, code: i32) -> &Self {
        assert_eq!(
            self.status,
            Some(code),
            "{}: stderr:\n{}",
            self.name,
            tail(&self.stderr)
        );
        self
    }

    /// The case took at most `bound` (≥ 5× the expected time).
    fn within(&self, bound: Duration) -> &Self {
        assert!(
            self.elapsed <= bound,
            "{}: took {:?}, bound {bound:?}",
            self.name,
            self.elapsed
        );
        self
    }

    /// Every stderr line is short: server lines are quoted, not repeated whole.
    fn short_lines(&self, max: usize) -> &Self {
        let longest = self.stderr.lines().map(str::len).max().unwrap_or(0);
        assert!(
            longest <= max,
            "{}: a {longest}-byte stderr line:\n{}",
            self.name,
            tail(&self.stderr)
        );
        self
    }
}

fn tail(text: &str) -> &str {
    let mut start = text.len().saturating_sub(3000);
    while !text.is_char_boundary(start) {
        start += 1;
    }
    &text[start..]
}

fn strings(args: &[&str]) -> Vec<String> {
    args.iter().map(|a| (*a).to_owned()).collect()
}

/// Stress mode against `port`: one client, `secs`, `timeout=1`, plus `extra`.
fn stress_args(port: u16, secs: &str, extra: &[&str]) -> Vec<String> {
    let mut args = strings(&[
        "host=127.0.0.1",
        "user=hostile",
        "pass=pass",
        "clients=1",
        "timeout=1",
        "random_msg_size=100",
    ]);
    args.push(format!("port={port}"));
    args.push(format!("secs={secs}"));
    args.extend(strings(extra));
    args
}

const DRIP: Fault = Fault::Drip {
    every: Duration::from_millis(300),
};

// --- start-up: greeting, capability, login -------------------------------------------

/// Faults before or during login make the start-up check fail: one `Fatal:` line with
/// the cause, exit 89, within a few seconds (`timeout=1`; 2 s for the whole check).
fn startup_case(name: &str, phase: Phase, fault: Fault, needle: &str) {
    let server = hostile::imap(phase, fault);
    let f = run_case(
        name,
        &stress_args(server.port, "30", &[]),
        &[],
        Duration::from_secs(30),
    );
    f.status(89)
        .stderr_has(needle)
        .within(Duration::from_secs(12))
        .short_lines(600);
    assert!(f.stderr.starts_with("Fatal: "), "{name}: {}", f.stderr);
}

fn greeting_drip() {
    startup_case(
        "greeting: drip 1 byte/300 ms",
        Phase::Greeting,
        DRIP,
        "bytes of a response without ending it and did not complete it within 1s",
    );
}

fn greeting_flood_without_crlf() {
    startup_case(
        "greeting: flood without CRLF",
        Phase::Greeting,
        Fault::FloodNoCrlf,
        "bytes of a response line without ending it (over the line limit; discarded) and did not complete it within 1s",
    );
}

fn greeting_flood_of_lines() {
    // The first line is a greeting; CAPABILITY then drowns in untagged lines.
    startup_case(
        "greeting: flood of lines",
        Phase::Greeting,
        Fault::FloodLines(b"* OK not a greeting yet\r\n".to_vec()),
        "Fatal: CAPABILITY: the server sent more than 16777216 bytes of untagged responses to one command (docs/limits.md)",
    );
}

fn greeting_50_mb_line() {
    startup_case(
        "greeting: a 50 MB line, then silence",
        Phase::Greeting,
        Fault::LongLine(50 * 1024 * 1024),
        "Fatal: no greeting: server sent 52428800 bytes of a response line without ending it (over the line limit; discarded) and did not complete it within 1s",
    );
}

fn greeting_endless_literal() {
    startup_case(
        "greeting: endless literal",
        Phase::Greeting,
        Fault::EndlessLiteral,
        "Fatal: no greeting: server announced a 1000000000000-byte literal and sent",
    );
}

fn plaintext_to_a_tls_port() {
    // A TLS port waits for the client's handshake: to a plaintext client it is silent.
    startup_case(
        "plaintext to a (silent) TLS port",
        Phase::Greeting,
        Fault::Silent,
        "Fatal: no greeting: no response from server within 1s (if this port expects TLS, add `ssl`)",
    );
}

fn capability_drip() {
    startup_case(
        "capability: drip",
        Phase::Capability,
        DRIP,
        "bytes of a response without ending it and did not complete it within 1s",
    );
}

fn login_drip() {
    startup_case(
        "login: drip",
        Phase::Login,
        DRIP,
        "bytes of a response without ending it and did not complete it within 1s",
    );
}

fn login_flood_of_lines() {
    startup_case(
        "login: flood of untagged lines",
        Phase::Login,
        Fault::FloodLines(b"* OK [ALERT] flood\r\n".to_vec()),
        "Fatal: LOGIN: the server sent more than 16777216 bytes of untagged responses to one command",
    );
}

fn login_refused_says_so() {
    startup_case(
        "login: refused",
        Phase::Login,
        Fault::Instead("{tag} NO [AUTHENTICATIONFAILED] Authentication failed.\r\n".into()),
        "Fatal: LOGIN as hostile failed: ",
    );
}

// --- stress sessions: select, fetch, idle --------------------------------------------

/// Faults after login: the start-up check passes, the engine's connections meet the
/// fault, each is reported and dropped, and `secs=3,1` ends the run (about 4–5 s).
fn session_case(name: &str, phase: Phase, fault: Fault, states: &[&str]) -> Finished {
    let server = hostile::imap(phase, fault);
    let mut extra = vec!["-"];
    extra.extend_from_slice(states);
    let f = run_case(
        name,
        &stress_args(server.port, "3,1", &extra),
        &[],
        Duration::from_secs(60),
    );
    f.within(Duration::from_secs(25)).short_lines(800);
    f.stdout_has("Totals:");
    f
}

fn select_flood_of_lines() {
    session_case(
        "select: flood of lines",
        Phase::Select,
        Fault::FloodLines(b"* OK flood\r\n".to_vec()),
        &[],
    )
    .stderr_has("command not completed within 1s (timeout= bounds each command's total time), waiting for command: ")
    .stderr_has(" SELECT ");
}

fn select_flood_without_crlf() {
    session_case(
        "select: flood without CRLF",
        Phase::Select,
        Fault::FloodNoCrlf,
        &[],
    )
    .stderr_has("bytes of a response line without ending it (over the line limit; discarded) and did not complete it within 1s, waiting for command: ");
}

fn select_drip() {
    session_case("select: drip", Phase::Select, DRIP, &[])
        .stderr_has("bytes of a response without ending it and did not complete it within 1s, waiting for command: ");
}

fn fetch_drip() {
    session_case("fetch: drip", Phase::Fetch, DRIP, &["fetch=100"])
        .stderr_has("did not complete it within 1s, waiting for command: ")
        .stderr_has(" FETCH ");
}

fn fetch_endless_literal() {
    session_case(
        "fetch: endless literal",
        Phase::Fetch,
        Fault::EndlessLiteral,
        &["fetch=100"],
    )
    .stderr_has("server announced a 1000000000000-byte literal and sent");
}

fn fetch_reset_mid_literal() {
    session_case(
        "fetch: reset mid-literal",
        Phase::Fetch,
        Fault::ResetMidLiteral,
        &["fetch=100"],
    )
    .stderr_has("Client disconnected: ");
}

fn idle_drip() {
    session_case("idle: drip", Phase::Idle, DRIP, &["idle=100"])
        .stderr_has("did not complete it within 1s, waiting for command: ")
        .stderr_has(" IDLE");
}

fn idle_flood_of_lines() {
    session_case(
        "idle: flood instead of +",
        Phase::Idle,
        Fault::FloodLines(b"* 3 EXISTS\r\n".to_vec()),
        &["idle=100"],
    )
    .stderr_has("command not completed within 1s");
}

/// Absurd numbers in every numeric field, one kind per connection (the engine
/// reconnects after each drop, so one run meets them all).
fn absurd_numbers() -> Vec<Vec<u8>> {
    [
        &b"* 4294967295 EXISTS\r\n"[..],
        b"* 4294967296 EXISTS\r\n",
        b"* 99999999999999999999999 EXPUNGE\r\n",
        b"* 4294967295 EXPUNGE\r\n",
        b"* 4294967295 FETCH (UID 4294967295 RFC822.SIZE 18446744073709551615 MODSEQ (18446744073709551615))\r\n",
        b"* 1 FETCH (UID 0 MODSEQ (0) RFC822.SIZE 99999999999999999999999)\r\n",
        b"* OK [UIDVALIDITY 4294967295] x\r\n* OK [UIDNEXT 4294967295] x\r\n* OK [HIGHESTMODSEQ 18446744073709551615] x\r\n",
        b"* OK [UIDVALIDITY 99999999999999999999] x\r\n",
        b"* SEARCH 4294967295 1 99999999999999999999\r\n",
        b"* VANISHED 1:4294967295\r\n",
        b"* VANISHED (EARLIER) 1:4294967295\r\n",
        b"* 1 FETCH (BODY[] {18446744073709551616}\r\n",
        b"* 1 FETCH (BODY[]<4294967295> {5}\r\nhello)\r\n",
        b"* 2 FETCH (BODY[] {99999999999}\r\n",
    ]
    .iter()
    .map(|v| v.to_vec())
    .collect()
}

fn select_absurd_numbers() {
    session_case(
        "select: absurd numbers in every field",
        Phase::Select,
        Fault::Before(absurd_numbers()),
        &["fetch=100"],
    )
    .stderr_has("EXISTS 4294967295 is more than the 1000000 messages imaptest tracks per mailbox")
    .stderr_has("literal size out of range")
    .stdout_has("limit-exceeded");
}

fn select_deep_nesting() {
    let mut line = b"* 1 FETCH (BODY ".to_vec();
    line.extend(std::iter::repeat_n(b'(', 200_000));
    line.extend_from_slice(b"\r\n");
    let f = session_case(
        "select: 200 KB of nesting",
        Phase::Select,
        Fault::Before(vec![line]),
        &[],
    );
    f.stderr_has("error parsing input: ");
    // Each error quotes at most a few hundred bytes of the line, with its length.
    assert!(f.stderr.len() < 2_000_000, "{} bytes", f.stderr.len());
}

fn select_control_bytes() {
    session_case(
        "select: control bytes",
        Phase::Select,
        Fault::Before(vec![
            b"* OK \x1b]0;owned\x07\x1b[2J\x08\x08 look\r\n* BAD \x1b[31mred\x1b[0m\x00\r\n"
                .to_vec(),
        ]),
        &[],
    )
    .stderr_has("BAD received: * BAD \\x1b[31mred\\x1b[0m\\x00");
}

fn secs_ends_a_run_against_a_flood() {
    // A long timeout: only secs= and its grace can end this run.
    let server = hostile::imap(Phase::Select, Fault::FloodLines(b"* OK flood\r\n".to_vec()));
    let mut args = stress_args(server.port, "2,1", &["-"]);
    args.retain(|a| a != "timeout=1");
    args.push("timeout=600".into());
    let f = run_case(
        "secs=2,1 against a flood (timeout=600)",
        &args,
        &[],
        Duration::from_secs(60),
    );
    // 2 s + 1 s grace (+ start-up): ends by itself, well before any timeout.
    f.within(Duration::from_secs(20)).stdout_has("Totals:");
}

// --- LMTP (profile mode) -------------------------------------------------------------

fn lmtp_profile(dir: &Path, port: u16, mean: &str, max_parallel: u32) -> PathBuf {
    let path = dir.join("lmtp.toml");
    std::fs::write(
        &path,
        format!(
            "[run]\nduration = \"1h\"\nseed = 1\ntotal_users = 20\n\n\
             [servers.lmtp]\nhost = \"127.0.0.1\"\nport = {port}\nmax_parallel = {max_parallel}\n\n\
             [[population]]\nname = \"p\"\nshare = 100\nusername = \"u%{{username_idx}}\"\n\
             clients = [{{ client = \"none\" }}]\n\
             inbox_delivery = {{ dist = \"exponential\", mean = \"{mean}\" }}\n\n\
             [[client]]\nname = \"none\"\nconnections = 0\n"
        ),
    )
    .unwrap();
    path
}

fn lmtp_case(name: &str, fault: Fault, mean: &str, max_parallel: u32, extra: &[&str]) -> Finished {
    let server = hostile::lmtp(fault);
    let dir = tempfile::tempdir().unwrap();
    let profile = lmtp_profile(dir.path(), server.port, mean, max_parallel);
    let mut args = vec![
        format!("profile={}", profile.display()),
        "host=127.0.0.1".into(),
        "random_msg_size=1000".into(),
        "secs=3,1".into(),
    ];
    args.extend(strings(extra));
    let f = run_case(name, &args, &[], Duration::from_secs(90));
    f.within(Duration::from_secs(25)).short_lines(800);
    f.stdout_has("Deliveries: ");
    f
}

fn lmtp_data_drip() {
    lmtp_case(
        "lmtp data: drip the reply",
        DRIP,
        "500ms",
        4,
        &["timeout=1"],
    )
    .stderr_has("no complete reply within 1s (timeout= bounds the whole reply)");
}

fn lmtp_data_silent() {
    // The server stops answering after the data; timeout= stays at its 30 s default:
    // secs=3,1 must still end the run, abandoning the deliveries in flight.
    lmtp_case("lmtp data: silent server", Fault::Silent, "200ms", 4, &[])
        .stderr_has("LMTP deliveries still waiting for the server at the end were abandoned");
}

fn lmtp_data_flood_of_lines() {
    lmtp_case(
        "lmtp data: endless multi-line reply",
        Fault::FloodLines(b"250-more\r\n".to_vec()),
        "500ms",
        4,
        &["timeout=1"],
    )
    .stderr_has("reply has more than 1000 lines");
}

fn lmtp_absurd_rate() {
    // A delivery every microsecond per user against a server that never answers:
    // deliveries in flight stop at the bound; the rest are counted failed, not queued.
    lmtp_case("lmtp: absurd rate (1 us)", Fault::Silent, "1us", 4, &[])
        .stderr_has("LMTP deliveries not attempted: 10000 were already in flight");
}

// --- absurd inputs, test= mode ---------------------------------------------------------

fn absurd_random_msg_size() {
    let f = run_case(
        "random_msg_size=81000000000",
        &strings(&["user=u", "random_msg_size=81000000000"]),
        &[],
        Duration::from_secs(30),
    );
    f.status(89)
        .stderr_has("invalid random_msg_size `81000000000` in `random_msg_size=81000000000`: expected at most 268435456 bytes")
        .within(Duration::from_secs(5));
}

fn test_dir(files: &[(&str, &str)]) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    for (name, text) in files {
        std::fs::write(dir.path().join(name), text).unwrap();
    }
    std::fs::write(
        dir.path().join("default.mbox"),
        "From a@b Mon Jan  1 00:00:00 2024\nSubject: x\n\nbody\n",
    )
    .unwrap();
    dir
}

fn test_mode(name: &str, phase: Phase, fault: Fault, files: &[(&str, &str)]) -> Finished {
    let server = hostile::imap(phase, fault);
    let dir = test_dir(files);
    let args = vec![
        "host=127.0.0.1".to_owned(),
        format!("port={}", server.port),
        "user=hostile".into(),
        "pass=pass".into(),
        "timeout=1".into(),
        format!("test={}", dir.path().display()),
    ];
    let f = run_case(name, &args, &[], Duration::from_secs(60));
    f.within(Duration::from_secs(15)).short_lines(2000);
    f
}

const SELECTED_TEST: &str = "state: selected\n\nok noop\n";

fn test_mode_wrong_password() {
    test_mode(
        "test=: wrong password",
        Phase::Login,
        Fault::Instead("{tag} NO [AUTHENTICATIONFAILED] Authentication failed.\r\n".into()),
        &[("t1", SELECTED_TEST)],
    )
    .status(89)
    .stderr_has("Fatal: LOGIN as hostile failed: ")
    .stderr_has("NO [AUTHENTICATIONFAILED] Authentication failed.");
}

fn test_mode_absurd_exists() {
    test_mode(
        "test=: EXISTS 4294967295",
        Phase::Select,
        Fault::Before(vec![b"* 4294967295 EXISTS\r\n".to_vec()]),
        &[("t1", SELECTED_TEST)],
    )
    .status(2)
    .stderr_has("EXISTS 4294967295 is more than the 1000000 messages imaptest tracks per mailbox");
}

fn test_mode_select_drip() {
    test_mode(
        "test=: drip at select",
        Phase::Select,
        DRIP,
        &[("t1", SELECTED_TEST)],
    )
    .status(2)
    .stderr_has("did not complete it within 1s");
}

fn test_mode_crlf_file() {
    test_mode(
        "test=: a CRLF test file",
        Phase::Fetch,
        Fault::Before(Vec::new()),
        &[("t1", "state: selected\r\n\r\nok noop\r\n")],
    )
    .status(2)
    .stderr_has(
        "line 1: the file has CRLF (Windows) line endings; test files need LF line endings",
    );
}

/// Every case, by name.
const CASES: &[(&str, fn())] = &[
    ("greeting_drip", greeting_drip),
    ("greeting_flood_without_crlf", greeting_flood_without_crlf),
    ("greeting_flood_of_lines", greeting_flood_of_lines),
    ("greeting_50_mb_line", greeting_50_mb_line),
    ("greeting_endless_literal", greeting_endless_literal),
    ("plaintext_to_a_tls_port", plaintext_to_a_tls_port),
    ("capability_drip", capability_drip),
    ("login_drip", login_drip),
    ("login_flood_of_lines", login_flood_of_lines),
    ("login_refused_says_so", login_refused_says_so),
    ("select_flood_of_lines", select_flood_of_lines),
    ("select_flood_without_crlf", select_flood_without_crlf),
    ("select_drip", select_drip),
    ("fetch_drip", fetch_drip),
    ("fetch_endless_literal", fetch_endless_literal),
    ("fetch_reset_mid_literal", fetch_reset_mid_literal),
    ("idle_drip", idle_drip),
    ("idle_flood_of_lines", idle_flood_of_lines),
    ("select_absurd_numbers", select_absurd_numbers),
    ("select_deep_nesting", select_deep_nesting),
    ("select_control_bytes", select_control_bytes),
    (
        "secs_ends_a_run_against_a_flood",
        secs_ends_a_run_against_a_flood,
    ),
    ("lmtp_data_drip", lmtp_data_drip),
    ("lmtp_data_silent", lmtp_data_silent),
    ("lmtp_data_flood_of_lines", lmtp_data_flood_of_lines),
    ("lmtp_absurd_rate", lmtp_absurd_rate),
    ("absurd_random_msg_size", absurd_random_msg_size),
    ("test_mode_wrong_password", test_mode_wrong_password),
    ("test_mode_absurd_exists", test_mode_absurd_exists),
    ("test_mode_select_drip", test_mode_select_drip),
    ("test_mode_crlf_file", test_mode_crlf_file),
];
