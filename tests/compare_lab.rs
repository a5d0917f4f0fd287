//! `imaptest compare` on lab runs: two runs of one configuration compare clean at the
//! default tolerance; a run through a proxy that adds 40 ms to every server reply is
//! flagged, command by command, with the regression exit status.
//!
//! The three runs go at the same time, each with its own fresh (empty) users, so
//! whatever else the host is doing weighs on all of them alike; each lasts 5 s.

mod common;
#[path = "support/delay_proxy.rs"]
mod delay_proxy;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Duration;

use delay_proxy::{Delay, DelayProxy};

/// A small stress mix (LOGIN, SELECT, FETCH, STATUS, APPEND, LOGOUT) for 5 s, as
/// fresh users.
fn stress(port: u16, dir: &Path, name: &str, summary: &Path) -> std::process::Child {
    let lab = common::lab();
    let users: Vec<String> = (0..6).map(|_| common::fresh_user()).collect();
    let userfile = dir.join(format!("{name}.users"));
    std::fs::write(&userfile, users.join("\n") + "\n").unwrap();
    Command::new(common::imaptest_bin())
        .args([
            format!("host={}", lab.host),
            format!("port={port}"),
            format!("userfile={}", userfile.display()),
            format!("pass={}", lab.user_password),
            "-".to_owned(),
            "fetch=50".to_owned(),
            "status=50".to_owned(),
            "append=50".to_owned(),
            "random_msg_size=2000".to_owned(),
            "clients=2".to_owned(),
            "secs=5".to_owned(),
            format!("summary={}", summary.display()),
        ])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("run imaptest")
}

fn compare(base: &Path, new: &Path) -> Output {
    Command::new(common::imaptest_bin())
        .args([
            "compare".to_owned(),
            base.display().to_string(),
            new.display().to_string(),
        ])
        .output()
        .expect("run imaptest compare")
}

#[test]
fn compare_flags_an_injected_delay_and_passes_a_rerun() {
    let lab = common::lab();
    let proxy = DelayProxy::start(lab.imap_addr(), Delay::fixed(Duration::from_millis(40)));
    let dir = tempfile::tempdir().unwrap();
    let path = |name: &str| -> PathBuf { dir.path().join(name) };
    let runs = [
        stress(lab.imap_port, dir.path(), "base", &path("base.json")),
        stress(lab.imap_port, dir.path(), "again", &path("again.json")),
        stress(proxy.port(), dir.path(), "slow", &path("slow.json")),
    ];
    for run in runs {
        let out = run.wait_with_output().unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    let clean = compare(&path("base.json"), &path("again.json"));
    let text = String::from_utf8_lossy(&clean.stdout);
    assert_eq!(clean.status.code(), Some(0), "{text}");
    assert!(
        text.contains("No regression beyond the tolerance."),
        "{text}"
    );
    assert!(text.contains("imap LOGIN"), "{text}");

    let slow = compare(&path("base.json"), &path("slow.json"));
    let text = String::from_utf8_lossy(&slow.stdout);
    assert_eq!(
        slow.status.code(),
        Some(imaptest::exit::REGRESSED as i32),
        "{text}"
    );
    // Every reply went through the proxy (the TCP connect to it did not): every median
    // judged is flagged, and the commands every session sends have samples enough.
    for row in text
        .lines()
        .filter(|l| l.starts_with("imap ") && !l.starts_with("imap CONNECT") && l.contains(" p50 "))
    {
        assert!(
            row.ends_with("WORSE") || row.ends_with("too few samples"),
            "{row}\n{text}"
        );
    }
    for command in ["LOGIN", "SELECT", "LOGOUT"] {
        let row = text
            .lines()
            .find(|l| l.starts_with(&format!("imap {command} ")) && l.contains(" p50 "))
            .unwrap_or_else(|| panic!("no p50 row for {command}:\n{text}"));
        assert!(row.ends_with("WORSE"), "{row}\n{text}");
    }
    assert!(text.contains("Regressed: imap "), "{text}");

    // The other way round it is an improvement, not a regression.
    let faster = compare(&path("slow.json"), &path("base.json"));
    let text = String::from_utf8_lossy(&faster.stdout);
    assert_eq!(faster.status.code(), Some(0), "{text}");
    assert!(text.contains("better"), "{text}");
}
