//! `imaptest capacity` against the lab Dovecot, with answers known in advance.
//!
//! * Behind a proxy that delays every server reply by 50 ms per open session past 50
//!   sessions, a NOOP answered with `n` users logged in takes about 50 ms × (n − 50), so
//!   `imap.NOOP.p99 < 500ms` holds below 60 users and breaks at 60: the search must land
//!   within ±10 % of that and name the SLO.
//! * Pinned with `taskset` to one core shared with a CPU hog that outranks it (`nice`),
//!   imaptest cannot keep up: the search must stop and say that the tool, not the
//!   server, is the limit (exit status 8), instead of blaming the server.
//!
//! Steps are short (2 s warm-up, 4 s measured): each test takes about a minute.

mod common;
#[path = "support/delay_proxy.rs"]
mod delay_proxy;

use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::Mutex;
use std::time::Duration;

use delay_proxy::{Delay, DelayProxy};
use imaptest::capacity::{CapacityReport, Outcome};

/// The tests load the lab (and one pins a hog to a core): one at a time.
static SERIAL: Mutex<()> = Mutex::new(());

/// Every user logged in for the whole step, one NOOP a second (no mail is written, so
/// the users' mailboxes are left as they are).
fn polling_profile(dir: &Path, port: u16, poll: &str) -> std::path::PathBuf {
    let path = dir.join("pollers.toml");
    std::fs::write(
        &path,
        format!(
            r#"[run]
total_users = 100

[servers.imap]
port = {port}

[[population]]
name = "pollers"
share = 100
username = "testuser%{{username_idx}}"
clients = [{{ client = "poller", share = 100 }}]

[[client]]
name = "poller"
idle = false
poll_interval = "{poll}"
"#
        ),
    )
    .unwrap();
    path
}

struct Search {
    status: Option<i32>,
    stdout: String,
    stderr: String,
    report: CapacityReport,
    html: String,
}

fn capacity(name: &str, mut command: Command, dir: &Path, args: &[String]) -> Search {
    let out_path = dir.join("capacity.json");
    let html_path = dir.join("capacity.html");
    let lab = common::lab();
    let started = std::time::Instant::now();
    let out = command
        .arg("capacity")
        .args(args)
        .args([
            format!("host={}", lab.host),
            format!("pass={}", lab.user_password),
            "random_msg_size=100".to_owned(),
            format!("out={}", out_path.display()),
            format!("report={}", html_path.display()),
        ])
        .stdin(Stdio::null())
        .output()
        .expect("run imaptest capacity");
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    eprintln!(
        "capacity took {:.0} s\n{stdout}\n{stderr}",
        started.elapsed().as_secs_f64()
    );
    let text = std::fs::read_to_string(&out_path)
        .unwrap_or_else(|e| panic!("no capacity JSON ({e})\nstdout:\n{stdout}\nstderr:\n{stderr}"));
    let report = CapacityReport::parse("capacity.json", &text).expect("the capacity JSON parses");
    let html = std::fs::read_to_string(&html_path).expect("the capacity report");
    // Kept to look at.
    let kept = Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("{name}.html"));
    std::fs::write(&kept, &html).unwrap();
    std::fs::write(kept.with_extension("json"), &text).unwrap();
    Search {
        status: out.status.code(),
        stdout,
        stderr,
        report,
        html,
    }
}

#[test]
fn capacity_finds_the_user_count_where_the_slo_breaks() {
    let _serial = SERIAL.lock().unwrap_or_else(|p| p.into_inner());
    let lab = common::lab();
    let delay = Delay {
        fixed: Duration::ZERO,
        per_session: Duration::from_millis(50),
        free_sessions: 50,
    };
    // The first session count whose delay alone reaches the 500 ms objective.
    let known = (0..1000)
        .find(|&n| delay.at(n) >= Duration::from_millis(500))
        .unwrap() as f64;
    assert_eq!(known, 60.0);
    let proxy = DelayProxy::start(lab.imap_addr(), delay);
    let dir = tempfile::tempdir().unwrap();
    let profile = polling_profile(dir.path(), proxy.port(), "1s");
    let search = capacity(
        "capacity-knee",
        Command::new(common::imaptest_bin()),
        dir.path(),
        &[
            format!("profile={}", profile.display()),
            "slo=imap.NOOP.p99 < 500ms".to_owned(),
            "from=32".to_owned(),
            "to=200".to_owned(),
            "resolution=10%".to_owned(),
            "warmup=2s".to_owned(),
            "step_secs=4s".to_owned(),
            format!("server_pid={}", dovecot_pid()),
        ],
    );
    let answer = &search.report.answer;
    assert_eq!(
        search.status,
        Some(0),
        "{}\n{}",
        search.stdout,
        search.stderr
    );
    assert_eq!(answer.outcome, Outcome::Found, "{}", answer.sentence);
    let holds = answer.holds_users.unwrap() as f64;
    assert!(
        (holds - known).abs() <= known * 0.10,
        "holds {holds} users, the proxy breaks the SLO at {known:.1}: {}",
        answer.sentence
    );
    let fails = answer.fails_users.unwrap();
    assert!(fails as f64 > holds);
    // It names the SLO that broke, with what it measured, in the sentence it prints.
    assert_eq!(answer.broken.len(), 1);
    assert_eq!(answer.broken[0].metric, "imap.NOOP.p99");
    assert!(answer.broken[0].observed.unwrap() >= 500_000.0);
    assert!(
        answer.sentence.starts_with(&format!(
            "holds {} users at imap.NOOP.p99 < 500ms (server CPU ",
            holds as u64
        )) && answer
            .sentence
            .contains(&format!("; fails at {fails} on imap.NOOP.p99 = ")),
        "{}",
        answer.sentence
    );
    assert!(search.stdout.contains(&answer.sentence));
    // The proxy really carried that many sessions at once.
    assert!(
        proxy.peak_sessions() >= fails,
        "peak {}",
        proxy.peak_sessions()
    );

    // Every failure was run twice before it counted; every step has its summary, whose
    // measured window saw the step's users polling.
    let steps = &search.report.steps;
    for (i, step) in steps.iter().enumerate() {
        if !step.pass && step.attempt == 1 {
            let again = &steps[i + 1];
            assert_eq!((again.users, again.attempt), (step.users, 2));
        }
        assert!(
            !step.tool.limited,
            "step {} tool-limited: {:?}",
            step.number, step.tool
        );
        assert_eq!(step.summary.warmup_secs, 2);
        let noops = step
            .summary
            .totals
            .commands
            .iter()
            .find(|c| c.name == "NOOP")
            .map_or(0, |c| c.ok);
        assert!(
            noops >= step.users * 2,
            "step {}: {} users sent {noops} NOOPs",
            step.number,
            step.users
        );
    }
    assert!(
        steps
            .iter()
            .any(|s| s.phase == imaptest::capacity::Phase::Bisect)
    );
    // The server's side of each window, beside the answer.
    assert!(
        steps
            .iter()
            .all(|s| s.server.as_ref().is_some_and(|u| u.rss_peak_kib > 0))
    );
    assert!(search.html.contains("data-chart=\"capacity-server-cpu\""));
    // The report carries the capacity curve with the knee marked.
    assert!(search.html.contains("data-chart=\"capacity-0\""));
    assert!(search.html.contains(&format!("holds {}", holds as u64)));
}

/// The lab Dovecot's master process.
fn dovecot_pid() -> String {
    std::fs::read_to_string(common::lab().dir.join("run/master.pid"))
        .expect("the lab's master.pid")
        .trim()
        .to_owned()
}

/// A CPU hog pinned to core 0; killed when dropped.
struct Hog(std::process::Child);

impl Drop for Hog {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn a_starved_tool_is_named_as_the_limit() {
    let _serial = SERIAL.lock().unwrap_or_else(|p| p.into_inner());
    let lab = common::lab();
    for tool in ["taskset", "nice"] {
        let found = Command::new("sh")
            .args(["-c", &format!("command -v {tool}")])
            .status()
            .is_ok_and(|s| s.success());
        assert!(
            found,
            "{tool} (util-linux/coreutils) is needed for this test"
        );
    }
    let _hog = Hog(Command::new("taskset")
        .args(["-c", "0", "sh", "-c", "while :; do :; done"])
        .spawn()
        .expect("start the CPU hog"));
    let dir = tempfile::tempdir().unwrap();
    // Ten NOOPs a second per user: work the tool cannot do at nice 19 beside the hog.
    let profile = polling_profile(dir.path(), lab.imap_port, "100ms");
    let mut command = Command::new("taskset");
    command
        .args(["-c", "0", "nice", "-n", "19"])
        .arg(common::imaptest_bin());
    let search = capacity(
        "capacity-starved",
        command,
        dir.path(),
        &[
            format!("profile={}", profile.display()),
            "slo=imap.NOOP.p99 < 100ms".to_owned(),
            "from=40".to_owned(),
            "to=160".to_owned(),
            "warmup=2s".to_owned(),
            "step_secs=4s".to_owned(),
        ],
    );
    let answer = &search.report.answer;
    assert_eq!(answer.outcome, Outcome::ToolLimited, "{}", answer.sentence);
    assert_eq!(
        search.status,
        Some(imaptest::exit::TOOL_LIMITED as i32),
        "{}",
        search.stderr
    );
    assert!(
        search
            .stdout
            .contains("the tool, not the server, is the limit"),
        "{}",
        search.stdout
    );
    let last = search.report.steps.last().unwrap();
    assert!(last.tool.limited);
    // The server is not blamed: no "fails at" answer.
    assert_eq!(answer.fails_users, None);
}
