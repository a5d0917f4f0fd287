//! imaptest against a real Courier-IMAP 5.0 (`scripts/courier-lab`): the scripted
//! suite gives the verdicts `docs/servers.md` lists, stress runs report no error that
//! is not a named quirk (Courier's made-up message for an expunged UID is one), and
//! POP3 profile runs download what is stored. Courier has no LMTP server: POP3 users'
//! mail is APPENDed over IMAP first. Without the lab these tests fail; never skip.

mod common;

use common::servers::{
    check_suite_verdicts, client_command_count, courier_lab, run_profile, run_stress,
};

#[tokio::test(flavor = "multi_thread")]
async fn release_2_3_suite_gives_the_documented_verdicts() {
    check_suite_verdicts(courier_lab(), "release-2.3").await;
}

#[test]
fn default_mix_reports_only_named_quirks() {
    // Courier quotes the header-field names it echoes: no unexpected-header any more.
    let run = run_stress(courier_lab(), 20, 10, &[]);
    assert!(run.stdout.contains("Totals:"), "{}", run.stdout);
    let kinds = run.error_kinds();
    assert!(!kinds.contains_key("unexpected-header"), "{kinds:?}");
}

#[test]
fn checkpoints_agree() {
    let run = run_stress(courier_lab(), 10, 5, &["checkpoint=1", "logout=0"]);
    run.assert_only_quirks();
}

#[test]
fn pop3_sessions_download_and_delete_what_is_stored() {
    let lab = courier_lab();
    let dir = tempfile::tempdir().unwrap();
    let (pop_file, users) = lab.user_file(dir.path(), "pop", 3);
    for user in &users {
        lab.append_messages(user, 5);
    }
    let profile = format!(
        r#"
[run]
duration = "4s"
rampup = "300ms"
seed = 5

[servers.pop3]
port = @POP3@

[[population]]
name = "pop"
count = 3
userfile = "{}"
clients = [{{ client = "pop" }}]

[[client]]
name = "pop"
protocol = "pop3"
login_interval = "1s"
"#,
        pop_file.display()
    );
    let (run, _) = run_profile(lab, dir.path(), &profile);
    run.assert_only_quirks();
    assert!(run.error_kinds().is_empty(), "{}", run.stderr);
    // Each user's five messages were downloaded and deleted, once.
    assert_eq!(
        client_command_count(&run, "pop", "RETR"),
        15,
        "{}",
        run.stdout
    );
    assert_eq!(
        client_command_count(&run, "pop", "DELE"),
        15,
        "{}",
        run.stdout
    );
    for user in &users {
        assert_eq!(lab.messages(user, "INBOX"), 0, "{user}");
    }
}
