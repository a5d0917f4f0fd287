//! The state walk as the C tool walks it, against the lab: with `logout=0` a connection
//! selects once and then loops over the states after SELECT, and when no state applies
//! (APPEND with the mailbox at `msgs=`) it waits instead of spinning. The lines are the
//! benchmark lines of the seeds; SELECTs are counted per connection from the `csv=`
//! timeline.

mod common;
#[path = "support/timeline.rs"]
mod timeline;

use std::collections::BTreeMap;
use std::process::Command;

/// Figures of one run: per-command counts and connections opened.
struct Run {
    counts: BTreeMap<String, u64>,
    connects: u64,
    cpu_secs: f64,
}

impl Run {
    fn count(&self, command: &str) -> u64 {
        self.counts.get(command).copied().unwrap_or(0)
    }
}

/// Runs `imaptest` against the lab with `args` for `secs` seconds and asserts a clean
/// run (exit 0, no error lines).
fn run(user_args: &[String], clients: u32, secs: u32, args: &[&str]) -> Run {
    let lab = common::lab();
    let dir = tempfile::tempdir().unwrap();
    let csv = dir.path().join("timeline.csv");
    let mut command = Command::new(env!("CARGO_BIN_EXE_imaptest"));
    command
        .arg("host=127.0.0.1")
        .arg(format!("port={}", lab.imap_port))
        .arg(format!("pass={}", lab.user_password))
        .args(user_args)
        .arg(format!("mbox={}", mbox().display()))
        .arg(format!("clients={clients}"))
        .arg(format!("secs={secs}"))
        .arg(format!("csv={}", csv.display()))
        .args(args);
    let stdout_path = dir.path().join("stdout");
    let stderr_path = dir.path().join("stderr");
    command
        .stdout(std::fs::File::create(&stdout_path).unwrap())
        .stderr(std::fs::File::create(&stderr_path).unwrap());
    let child = command.spawn().expect("run imaptest");
    let (success, cpu_secs) = wait_with_cpu_time(child);
    let stdout = std::fs::read_to_string(&stdout_path).unwrap();
    let stderr = std::fs::read_to_string(&stderr_path).unwrap();
    assert!(
        success && !stdout.contains("Error:"),
        "{args:?}\nstdout: {stdout}\nstderr: {stderr}"
    );
    let rows = timeline::rows(&csv);
    Run {
        counts: timeline::command_counts(&rows),
        connects: timeline::connection_sum(&rows, "connects_per_s"),
        cpu_secs,
    }
}

/// Waits for `child`; whether it exited with 0, and its user + system CPU seconds
/// (its own, not those of other tests' children running meanwhile).
fn wait_with_cpu_time(child: std::process::Child) -> (bool, f64) {
    let pid = child.id() as libc::pid_t;
    // SAFETY: wait4 on our own child's pid with valid pointers to a status word and a
    // zeroed rusage; the Child is not waited for elsewhere.
    let (rc, status, usage) = unsafe {
        let mut status = 0;
        let mut usage: libc::rusage = std::mem::zeroed();
        let rc = libc::wait4(pid, &mut status, 0, &mut usage);
        (rc, status, usage)
    };
    assert_eq!(rc, pid, "wait4: {}", std::io::Error::last_os_error());
    let secs = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
    let success = libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0;
    (success, secs(usage.ru_utime) + secs(usage.ru_stime))
}

fn mbox() -> std::path::PathBuf {
    static MBOX: std::sync::OnceLock<(tempfile::TempDir, std::path::PathBuf)> =
        std::sync::OnceLock::new();
    let (_, path) = MBOX.get_or_init(|| {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("walk.mbox");
        let out = Command::new(env!("CARGO_BIN_EXE_imaptest"))
            .args([
                "mbox-gen",
                &format!("out={}", path.display()),
                "count=50",
                "seed=4",
            ])
            .output()
            .expect("run mbox-gen");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        (dir, path)
    });
    path.clone()
}

fn fresh() -> Vec<String> {
    vec![format!("user={}", common::fresh_user())]
}

/// Asserts one SELECT per connection and no reconnects.
fn selected_once_per_connection(run: &Run, clients: u32) {
    assert_eq!(run.connects, u64::from(clients), "{:?}", run.counts);
    assert_eq!(run.count("SELECT"), u64::from(clients), "{:?}", run.counts);
}

#[test]
fn noop_loop_selects_once() {
    let run = run(&fresh(), 1, 3, &["-", "logout=0", "noop=100"]);
    selected_once_per_connection(&run, 1);
    // The C tool does ~80,000 NOOPs a second here; re-selecting gave one per SELECT.
    assert!(run.count("NOOP") > 100, "{:?}", run.counts);
}

#[test]
fn append_loop_selects_once() {
    let run = run(
        &fresh(),
        1,
        3,
        &["-", "append=100,0", "logout=0", "msgs=10000000"],
    );
    selected_once_per_connection(&run, 1);
    assert!(run.count("APPEND") > 20, "{:?}", run.counts);
}

/// Without `msgs=` the mailbox soon holds enough messages and APPEND no longer
/// applies: the connection waits (no SELECT spin, next to no CPU).
#[test]
fn full_mailbox_waits_instead_of_spinning() {
    let run = run(&fresh(), 1, 3, &["-", "append=100,0", "logout=0"]);
    selected_once_per_connection(&run, 1);
    assert!(run.count("APPEND") > 0, "{:?}", run.counts);
    // Spinning would burn a core for the whole run; waiting costs next to nothing.
    assert!(
        run.cpu_secs < 1.5,
        "{} CPU seconds in a 3 s run",
        run.cpu_secs
    );
}

#[test]
fn status_noop_with_delays_selects_once_per_connection() {
    // STATUS and NOOP change nothing, so the hand-run users 100..199 are safe to share.
    let users = ["user=testuser%d".to_owned(), "users=100-199".to_owned()];
    let run = run(
        &users,
        100,
        4,
        &["-", "logout=0", "status=50", "noop=50", "delay=100"],
    );
    selected_once_per_connection(&run, 100);
    assert!(
        run.count("STATUS") + run.count("NOOP") > 100,
        "{:?}",
        run.counts
    );
}

#[test]
fn default_mix_selects_once() {
    let run = run(&fresh(), 1, 3, &["logout=0"]);
    selected_once_per_connection(&run, 1);
    assert!(run.count("FETCH") > 10, "{:?}", run.counts);
}
