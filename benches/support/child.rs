//! What the benchmarks that run the release binary as a child process share: starting
//! it with captured output, its CPU (`getrusage(RUSAGE_CHILDREN)`) and RSS
//! (`/proc/<pid>/status`), and the descriptor limit.
#![allow(dead_code)]

use std::io::Read;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

pub const BIN: &str = env!("CARGO_BIN_EXE_imaptest");

/// The child's output, read to the end on threads so it never blocks on a full pipe.
pub type Output = std::thread::JoinHandle<String>;

/// Starts the binary with `args`, stdin closed; returns it with its stdout and stderr.
pub fn spawn(args: &[String]) -> Result<(Child, Output, Output), String> {
    let mut child = Command::new(BIN)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("cannot start {BIN}: {e}"))?;
    let stdout = reader(child.stdout.take());
    let stderr = reader(child.stderr.take());
    Ok((child, stdout, stderr))
}

/// Reads a pipe to the end on a thread, so the child never blocks on a full pipe.
fn reader<R: Read + Send + 'static>(pipe: Option<R>) -> Output {
    std::thread::spawn(move || {
        let mut text = String::new();
        if let Some(mut pipe) = pipe {
            let mut bytes = Vec::new();
            let _ = pipe.read_to_end(&mut bytes);
            text = String::from_utf8_lossy(&bytes).into_owned();
        }
        text
    })
}

pub fn env_u64(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// A `/proc/<pid>/status` field in KiB (`VmRSS`, `VmHWM`).
pub fn status_kib(pid: u32, field: &str) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status
        .lines()
        .find(|l| l.strip_prefix(field).is_some_and(|r| r.starts_with(':')))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// VmRSS of a process in KiB (`None` where /proc is missing or the process is gone).
pub fn rss_kib(pid: u32) -> Option<u64> {
    status_kib(pid, "VmRSS")
}

/// VmRSS of this process in KiB (0 where /proc is missing).
pub fn own_rss_kib() -> u64 {
    rss_kib(std::process::id()).unwrap_or(0)
}

fn rusage_cpu(who: libc::c_int) -> Duration {
    // SAFETY: getrusage only writes the struct we pass; all-zero is a valid rusage.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    if unsafe { libc::getrusage(who, &mut usage) } != 0 {
        return Duration::ZERO;
    }
    let tv = |t: libc::timeval| {
        Duration::from_secs(t.tv_sec as u64) + Duration::from_micros(t.tv_usec as u64)
    };
    tv(usage.ru_utime) + tv(usage.ru_stime)
}

/// User+sys CPU of every child waited for so far.
pub fn children_cpu() -> Duration {
    rusage_cpu(libc::RUSAGE_CHILDREN)
}

/// User+sys CPU of this process (the in-process null server).
pub fn self_cpu() -> Duration {
    rusage_cpu(libc::RUSAGE_SELF)
}

/// Raises the soft descriptor limit to the hard one (children inherit it).
pub fn raise_fd_limit() {
    // SAFETY: getrlimit/setrlimit only read/write the struct we pass.
    unsafe {
        let mut limit: libc::rlimit = std::mem::zeroed();
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) == 0 && limit.rlim_cur < limit.rlim_max
        {
            limit.rlim_cur = limit.rlim_max;
            libc::setrlimit(libc::RLIMIT_NOFILE, &limit);
        }
    }
}

/// The soft descriptor limit of this process.
pub fn fd_limit() -> u64 {
    // SAFETY: getrlimit only writes the struct we pass.
    unsafe {
        let mut limit: libc::rlimit = std::mem::zeroed();
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) == 0 {
            limit.rlim_cur
        } else {
            0
        }
    }
}

/// The start of a benchmark's `main`: `None` (after a note) without `--bench`, since
/// `cargo test --all-targets` runs bench targets that way and they would load the
/// machine for minutes; else raises the descriptor limit and returns the name filters
/// (the arguments not starting with `-`) and a temporary directory.
pub fn start(bench: &str) -> Option<(Vec<String>, tempfile::TempDir)> {
    if !std::env::args().any(|a| a == "--bench") {
        println!("{bench} benchmarks run with `cargo bench --bench {bench}`; skipped");
        return None;
    }
    raise_fd_limit();
    let filters = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with('-'))
        .collect();
    match tempfile::tempdir() {
        Ok(dir) => Some((filters, dir)),
        Err(e) => {
            eprintln!("cannot create a temporary directory: {e}");
            None
        }
    }
}

/// `N CPU(s), load A B C`.
pub fn machine() -> String {
    format!(
        "{} CPU(s), load {}",
        std::thread::available_parallelism().map_or(0, |n| n.get()),
        std::fs::read_to_string("/proc/loadavg")
            .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
            .unwrap_or_default()
    )
}

/// Waits for `child` to exit, calling `sample` with its pid every 100 ms meanwhile;
/// kills it past `deadline`.
pub fn wait_sampling(
    child: &mut Child,
    deadline: std::time::Instant,
    mut sample: impl FnMut(u32),
) -> Result<std::process::ExitStatus, String> {
    loop {
        sample(child.id());
        match child.try_wait() {
            Ok(Some(status)) => return Ok(status),
            Ok(None) if std::time::Instant::now() > deadline => {
                let _ = child.kill();
                let _ = child.wait();
                return Err("did not stop in time; killed".into());
            }
            Ok(None) => std::thread::sleep(Duration::from_millis(100)),
            Err(e) => return Err(e.to_string()),
        }
    }
}
