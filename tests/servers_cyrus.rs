//! imaptest against a real Cyrus IMAP 3.6 (`scripts/cyrus-lab`): the scripted suite
//! gives the verdicts `docs/servers.md` lists, the stress runs report no error that is
//! not a named quirk, and POP3/LMTP profile runs agree with what Cyrus stored.
//! Without the lab (not root, no packages) these tests fail; they never skip.

mod common;

use common::servers::{
    check_suite_verdicts, client_command_count, cyrus_lab, run_profile, run_stress,
};

#[tokio::test(flavor = "multi_thread")]
async fn release_2_3_suite_gives_the_documented_verdicts() {
    check_suite_verdicts(cyrus_lab(), "release-2.3").await;
}

#[test]
fn default_mix_reports_no_unnamed_error() {
    let run = run_stress(cyrus_lab(), 20, 10, &[]);
    assert!(run.stdout.contains("Totals:"), "{}", run.stdout);
    assert!(run.error_kinds().is_empty(), "{}", run.stderr);
}

#[test]
fn checkpoints_agree() {
    let run = run_stress(cyrus_lab(), 10, 5, &["checkpoint=1", "logout=0"]);
    assert!(run.error_kinds().is_empty(), "{}", run.stderr);
}

#[test]
fn lmtp_deliveries_told_equal_messages_stored_and_pop3_downloads_them() {
    let lab = cyrus_lab();
    let dir = tempfile::tempdir().unwrap();
    let (imap_file, imap_users) = lab.user_file(dir.path(), "imap", 3);
    let (pop_file, pop_users) = lab.user_file(dir.path(), "pop", 2);
    let profile = format!(
        r#"
[run]
duration = "6s"
rampup = "500ms"
seed = 11

[servers.imap]
port = @IMAP@
[servers.pop3]
port = @POP3@
[servers.lmtp]
port = @LMTP@
max_parallel = 2

[[population]]
name = "readers"
count = 3
userfile = "{}"
clients = [{{ client = "thunderbird" }}]
inbox_delivery = {{ dist = "exponential", mean = "300ms" }}
spam_delivery = "1s"

[[population]]
name = "downloaders"
count = 2
userfile = "{}"
clients = [{{ client = "pop" }}]
inbox_delivery = "400ms"

[[client]]
name = "thunderbird"
connections = 2
fetch_on_arrival = "UID FLAGS RFC822.SIZE BODY.PEEK[HEADER]"

[[client]]
name = "pop"
protocol = "pop3"
login_interval = "1s"
pop3_keep = true
"#,
        imap_file.display(),
        pop_file.display()
    );
    let (run, (offered, delivered, refused, failed)) = run_profile(lab, dir.path(), &profile);
    run.assert_only_quirks();
    assert!(run.error_kinds().is_empty(), "{}", run.stderr);
    assert!(
        delivered >= 20,
        "too few deliveries to mean anything: {delivered}"
    );
    assert_eq!((offered, refused, failed), (delivered, 0, 0));
    let mut stored = 0;
    for user in &imap_users {
        let inbox = lab.messages(user, "INBOX");
        let spam = lab.messages(user, "Spam");
        assert!(inbox > 0 && spam > 0, "{user}: INBOX {inbox}, Spam {spam}");
        stored += inbox + spam;
    }
    for user in &pop_users {
        let inbox = lab.messages(user, "INBOX");
        assert!(inbox > 0, "{user}: INBOX {inbox}");
        stored += inbox;
    }
    assert_eq!(
        stored, delivered,
        "imaptest reported {delivered} deliveries, Cyrus stored {stored}"
    );
    // The POP3 clients downloaded mail (RETR) from what LMTP delivered.
    let retr = client_command_count(&run, "pop", "RETR");
    assert!(retr > 0, "{}", run.stdout);
}
