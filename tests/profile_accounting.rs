//! Every planned action of a profile run is done or skipped, with the skips by reason in
//! Totals: the ready profiles against the lab.

mod common;

use std::process::Command;

/// (planned, done, skipped) from `Actions: N planned, D done, S skipped …`, and the
/// sum of the `Skipped actions: reason n, …` line.
fn accounting(stdout: &str) -> ((u64, u64, u64), u64) {
    let line = stdout
        .lines()
        .find_map(|l| l.strip_prefix("Actions: "))
        .unwrap_or_else(|| panic!("no Actions line in\n{stdout}"));
    let numbers: Vec<u64> = line
        .split([' ', ','])
        .filter_map(|w| w.parse().ok())
        .collect();
    let by_reason: u64 = stdout
        .lines()
        .find_map(|l| l.strip_prefix("Skipped actions: "))
        .map_or(0, |l| {
            l.split(", ")
                .map(|part| {
                    part.rsplit_once(' ')
                        .and_then(|(_, n)| n.parse::<u64>().ok())
                        .unwrap_or_else(|| panic!("bad reason entry {part:?}"))
                })
                .sum()
        });
    ((numbers[0], numbers[1], numbers[2]), by_reason)
}

#[test]
fn ready_profiles_account_for_every_planned_action() {
    let lab = common::lab();
    let dir = tempfile::tempdir().unwrap();
    let mbox = dir.path().join("ready.mbox");
    let status = Command::new(common::imaptest_bin())
        .args(["mbox-gen", &format!("out={}", mbox.display()), "count=30"])
        .status()
        .unwrap();
    assert!(status.success());
    for name in ["office", "mobile", "pop3", "lmtp-bench", "upstream-lab"] {
        let profile = common::repo_root().join(format!("profiles/{name}.toml"));
        let out = Command::new(common::imaptest_bin())
            .args([
                &format!("profile={}", profile.display()),
                &format!("host={}", lab.host),
                &format!("pass={}", lab.user_password),
                &format!("mbox={}", mbox.display()),
                &format!("ssl_ca_file={}", lab.ca_file.display()),
                "secs=12",
            ])
            .output()
            .unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success(),
            "{name}: exit {:?}\n{stdout}\n{}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
        let ((planned, done, skipped), by_reason) = accounting(&stdout);
        assert!(planned > 0, "{name}: nothing planned\n{stdout}");
        assert_eq!(done + skipped, planned, "{name}:\n{stdout}");
        assert_eq!(by_reason, skipped, "{name}: reasons don't add up\n{stdout}");
    }
}
