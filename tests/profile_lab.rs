//! Profile mode against the lab Dovecot: what imaptest reports must match what the
//! server stored, and each client type must do what its profile says.

mod common;

use std::collections::HashMap;

use common::{client_commands, csv_deliveries};
use std::path::Path;
use std::process::Command;
use std::sync::Mutex;

/// Profile runs take a few seconds each and load Dovecot; one at a time keeps their
/// timing honest.
static SERIAL: Mutex<()> = Mutex::new(());

/// `count` fresh users written to a user file in `dir`.
fn user_file(dir: &Path, name: &str, count: usize) -> (std::path::PathBuf, Vec<String>) {
    let users: Vec<String> = (0..count).map(|_| common::fresh_user()).collect();
    let path = dir.join(format!("{name}.users"));
    std::fs::write(&path, users.join("\n") + "\n").unwrap();
    (path, users)
}

fn write_mbox(dir: &Path) -> std::path::PathBuf {
    let path = dir.join("profile.mbox");
    let status = Command::new(common::imaptest_bin())
        .args(["mbox-gen", &format!("out={}", path.display()), "count=40"])
        .status()
        .unwrap();
    assert!(status.success());
    path
}

struct Run {
    stdout: String,
    stderr: String,
    csv: String,
    sessions: String,
}

/// Runs `imaptest profile=…` against the lab with csv= and session_csv=.
fn run_profile(dir: &Path, profile: &str) -> Run {
    let lab = common::lab();
    let path = dir.join("run.toml");
    let text = profile
        .replace("@IMAP@", &lab.imap_port.to_string())
        .replace("@POP3@", &lab.pop3_port.to_string())
        .replace("@LMTP@", &lab.lmtp_port.to_string());
    std::fs::write(&path, text).unwrap();
    let mbox = write_mbox(dir);
    let csv = dir.join("timeline.csv");
    let sessions = dir.join("sessions.csv");
    let out = Command::new(common::imaptest_bin())
        .args([
            &format!("profile={}", path.display()),
            &format!("host={}", lab.host),
            &format!("pass={}", lab.user_password),
            &format!("mbox={}", mbox.display()),
            &format!("csv={}", csv.display()),
            &format!("session_csv={}", sessions.display()),
        ])
        .output()
        .unwrap();
    let run = Run {
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        csv: std::fs::read_to_string(&csv).unwrap_or_default(),
        sessions: std::fs::read_to_string(&sessions).unwrap_or_default(),
    };
    assert!(
        out.status.success(),
        "exit {:?}\nstdout:\n{}\nstderr:\n{}",
        out.status,
        run.stdout,
        run.stderr
    );
    assert!(
        !run.stderr.contains("Error:"),
        "a correct server gave errors:\n{}",
        run.stderr
    );
    run
}

fn count(commands: &HashMap<String, u64>, name: &str) -> u64 {
    commands.get(name).copied().unwrap_or(0)
}

/// Sums the session CSV's `commands` per client.
fn session_commands(sessions: &str) -> HashMap<String, (u64, u64)> {
    let mut reader = csv::Reader::from_reader(sessions.as_bytes());
    let mut out: HashMap<String, (u64, u64)> = HashMap::new();
    for row in reader.records() {
        let row = row.unwrap();
        let entry = out.entry(row[2].to_owned()).or_default();
        entry.0 += 1;
        entry.1 += row[7].parse::<u64>().unwrap();
    }
    out
}

#[test]
fn lmtp_deliveries_reported_equal_messages_stored() {
    let _serial = SERIAL.lock().unwrap_or_else(|p| p.into_inner());
    let dir = tempfile::tempdir().unwrap();
    let (imap_users_file, imap_users) = user_file(dir.path(), "imap", 4);
    let (pop_users_file, pop_users) = user_file(dir.path(), "pop", 3);
    let profile = format!(
        r#"
[run]
duration = "4s"
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
count = 4
userfile = "{}"
clients = [{{ client = "thunderbird" }}]
inbox_delivery = {{ dist = "exponential", mean = "250ms" }}
spam_delivery = "1s"

[[population]]
name = "downloaders"
count = 3
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
        imap_users_file.display(),
        pop_users_file.display()
    );
    let run = run_profile(dir.path(), &profile);

    let (offered, delivered, refused, failed) = csv_deliveries(&run.csv);
    assert!(
        delivered >= 20,
        "too few deliveries to mean anything: {delivered}"
    );
    assert_eq!((refused, failed), (0, 0));
    assert_eq!(
        offered, delivered,
        "every offered delivery is accounted for"
    );

    let mut stored = 0;
    for user in &imap_users {
        let inbox = common::messages(user, "INBOX");
        let spam = common::messages(user, "Spam");
        assert!(inbox > 0 && spam > 0, "{user}: INBOX {inbox}, Spam {spam}");
        stored += inbox + spam;
    }
    for user in &pop_users {
        // pop3_keep: downloaded mail stays.
        let inbox = common::messages(user, "INBOX");
        assert!(inbox > 0, "{user}: INBOX {inbox}");
        stored += inbox;
    }
    assert_eq!(
        stored, delivered,
        "imaptest reported {delivered} deliveries, Dovecot stored {stored}"
    );
    let totals = run.stdout.split("Totals:").nth(1).unwrap();
    assert!(
        totals.contains(&format!("{delivered} delivered, 0 refused, 0 failed")),
        "{totals}"
    );
    // The IDLE clients saw their mail: end-to-end latency was measured.
    assert!(
        run.stdout
            .contains("Delivery latency (LMTP transaction start -> seen by the client"),
        "{}",
        run.stdout
    );
}

#[test]
fn client_types_behave_as_configured() {
    let _serial = SERIAL.lock().unwrap_or_else(|p| p.into_inner());
    let dir = tempfile::tempdir().unwrap();
    let (idle_file, _) = user_file(dir.path(), "idle", 3);
    let (poll_file, _) = user_file(dir.path(), "poll", 3);
    let (pop_file, pop_users) = user_file(dir.path(), "pop", 2);
    let profile = format!(
        r#"
[run]
duration = "4s"
rampup = "300ms"
seed = 5

[servers.imap]
port = @IMAP@
[servers.pop3]
port = @POP3@
[servers.lmtp]
port = @LMTP@

[[population]]
name = "desk"
count = 3
userfile = "{}"
clients = [{{ client = "desktop" }}]
inbox_delivery = "500ms"

[[population]]
name = "web"
count = 3
userfile = "{}"
clients = [{{ client = "webmail" }}]
inbox_delivery = "500ms"

[[population]]
name = "pop"
count = 2
userfile = "{}"
clients = [{{ client = "pop" }}]
inbox_delivery = "300ms"

[[client]]
name = "desktop"
connections = 1

[[client]]
name = "webmail"
idle = false
poll_interval = "400ms"
cache = false

[[client]]
name = "pop"
protocol = "pop3"
login_interval = "700ms"
"#,
        idle_file.display(),
        poll_file.display(),
        pop_file.display()
    );
    let run = run_profile(dir.path(), &profile);
    let clients = client_commands(&run.stdout);

    let (sessions, desktop) = &clients["desktop"];
    assert_eq!(*sessions, 3, "one session per desktop user: {desktop:?}");
    assert!(
        count(desktop, "IDLE") >= 6,
        "IDLE clients idle: {desktop:?}"
    );
    assert_eq!(
        count(desktop, "NOOP"),
        0,
        "IDLE clients don't poll: {desktop:?}"
    );
    assert_eq!(count(desktop, "LOGIN"), 3);

    let (_, web) = &clients["webmail"];
    assert_eq!(count(web, "IDLE"), 0, "polling clients don't IDLE: {web:?}");
    assert!(
        count(web, "NOOP") >= 15,
        "3 users polling every 400 ms for 4 s: {web:?}"
    );
    // Webmail re-fetches at every check: one FETCH per poll at least once mail is there.
    assert!(count(web, "FETCH") >= count(web, "NOOP") / 2, "{web:?}");

    let (pop_sessions, pop) = &clients["pop"];
    assert!(*pop_sessions >= 8, "2 users every 700 ms for 4 s: {pop:?}");
    for cmd in ["USER", "PASS", "STAT", "UIDL", "QUIT"] {
        assert_eq!(
            count(pop, cmd),
            *pop_sessions,
            "{cmd} once per session: {pop:?}"
        );
    }
    assert_eq!(
        count(pop, "RETR"),
        count(pop, "DELE"),
        "no pop3_keep: {pop:?}"
    );
    assert!(count(pop, "RETR") > 0);
    for imap_only in ["IDLE", "NOOP", "SELECT", "FETCH"] {
        assert_eq!(count(pop, imap_only), 0, "{imap_only} from POP3: {pop:?}");
    }
    // Downloaded mail was deleted: what is left arrived after the last download.
    let left: u64 = pop_users.iter().map(|u| common::messages(u, "INBOX")).sum();
    let (_, delivered, _, _) = csv_deliveries(&run.csv);
    assert!(left + count(pop, "DELE") <= delivered, "left {left}");

    // The per-session CSV adds up to the same commands per client type.
    let sessions = session_commands(&run.sessions);
    for (name, (n, commands)) in &clients {
        let (rows, sum) = sessions.get(name).copied().unwrap_or_default();
        assert_eq!(rows, *n, "{name}: session rows");
        assert_eq!(sum, commands.values().sum::<u64>(), "{name}: commands");
    }
}

/// A client's session task ends at logout and the next session starts from what it
/// left: a keeping POP3 client that logs in again and again downloads each message
/// once, because the UIDLs it downloaded are handed from session to session.
#[test]
fn what_a_client_remembers_spans_its_sessions() {
    let _serial = SERIAL.lock().unwrap_or_else(|p| p.into_inner());
    let dir = tempfile::tempdir().unwrap();
    let (pop_file, pop_users) = user_file(dir.path(), "keep", 2);
    let profile = format!(
        r#"
[run]
duration = "4s"
rampup = "200ms"
seed = 9

[servers.pop3]
port = @POP3@
[servers.lmtp]
port = @LMTP@

[[population]]
name = "keepers"
count = 2
userfile = "{}"
clients = [{{ client = "pop" }}]
inbox_delivery = "300ms"
session_length = "100ms"

[[client]]
name = "pop"
protocol = "pop3"
login_interval = "400ms"
pop3_keep = true
"#,
        pop_file.display()
    );
    let run = run_profile(dir.path(), &profile);
    let clients = client_commands(&run.stdout);
    let (sessions, pop) = &clients["pop"];
    let (_, delivered, _, _) = csv_deliveries(&run.csv);
    assert!(*sessions >= 10, "2 users every 400 ms for 4 s: {pop:?}");
    assert!(delivered >= 10, "{delivered} deliveries");
    assert!(count(pop, "RETR") > 0, "{pop:?}");
    assert_eq!(count(pop, "DELE"), 0, "pop3_keep: {pop:?}");
    // Forgetting between sessions would download everything kept again each time.
    assert!(
        count(pop, "RETR") <= delivered,
        "{} RETR for {delivered} messages over {sessions} sessions",
        count(pop, "RETR")
    );
    let kept: u64 = pop_users.iter().map(|u| common::messages(u, "INBOX")).sum();
    assert_eq!(kept, delivered);
}

#[test]
fn mail_actions_and_drafts_reach_the_server() {
    let _serial = SERIAL.lock().unwrap_or_else(|p| p.into_inner());
    let dir = tempfile::tempdir().unwrap();
    let (file, users) = user_file(dir.path(), "office", 3);
    let profile = format!(
        r#"
[run]
duration = "5s"
rampup = "300ms"
seed = 3

[servers.imap]
port = @IMAP@
[servers.lmtp]
port = @LMTP@

[[population]]
name = "office"
count = 3
userfile = "{}"
clients = [{{ client = "thunderbird" }}]
inbox_delivery = "300ms"
action_delay = "200ms"
action_repeat_delay = "200ms"
delete = 40
move_to_spam = 50
reply = 100
send = "1s"
write_duration = "300ms"

[[client]]
name = "thunderbird"
connections = 2
fetch_on_arrival = "UID FLAGS ENVELOPE"
fetch_on_open = "BODY.PEEK[]"
"#,
        file.display()
    );
    let run = run_profile(dir.path(), &profile);
    let clients = client_commands(&run.stdout);
    let (_, tb) = &clients["thunderbird"];
    let (_, delivered, _, _) = csv_deliveries(&run.csv);
    assert!(count(tb, "FETCH2") > 0, "mail was read: {tb:?}");
    assert!(count(tb, "MOVE") > 0, "mail was moved: {tb:?}");
    assert!(count(tb, "APPEND") > 0, "drafts were written: {tb:?}");

    let (mut inbox, mut spam, mut sent, mut drafts) = (0, 0, 0, 0);
    for user in &users {
        inbox += common::messages(user, "INBOX");
        spam += common::messages(user, "Spam");
        sent += common::messages(user, "Sent");
        drafts += common::messages(user, "Drafts");
    }
    // Every delivered message is in INBOX, or was expunged, or moved to Spam.
    let expunged_from_inbox = count(tb, "EXPUNGE") - sent.min(count(tb, "EXPUNGE"));
    assert_eq!(spam, count(tb, "MOVE"), "Spam holds exactly the moved mail");
    assert!(sent > 0, "drafts were sent");
    // Each sent draft is appended twice (Drafts, then Sent) and expunged from Drafts.
    assert_eq!(
        sent + drafts + sent,
        count(tb, "APPEND"),
        "APPEND {}: Sent {sent}, Drafts {drafts}",
        count(tb, "APPEND")
    );
    assert_eq!(
        inbox + expunged_from_inbox + spam,
        delivered,
        "INBOX {inbox} + expunged {expunged_from_inbox} + moved {spam} vs delivered {delivered}"
    );
}

/// Every ready profile in `profiles/` runs against the lab as the README shows (here
/// for three seconds each): no error, and it did what it is for.
#[test]
fn ready_profiles_run_against_the_lab() {
    let _serial = SERIAL.lock().unwrap_or_else(|p| p.into_inner());
    let lab = common::lab();
    let dir = tempfile::tempdir().unwrap();
    let mbox = write_mbox(dir.path());
    // The client type that must have had sessions within three seconds (None: the
    // profile only delivers).
    for (name, active_client) in [
        ("office", Some("thunderbird")),
        ("mobile", Some("ios")),
        ("pop3", Some("delete")),
        ("lmtp-bench", None),
        ("upstream-lab", Some("Thunderbird")),
    ] {
        let profile = common::repo_root().join(format!("profiles/{name}.toml"));
        let out = Command::new(common::imaptest_bin())
            .args([
                &format!("profile={}", profile.display()),
                &format!("mbox={}", mbox.display()),
                &format!("ssl_ca_file={}", lab.ca_file.display()),
                "secs=3",
            ])
            .output()
            .unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "{name}: {stdout}\n{stderr}");
        assert!(!stderr.contains("Error:"), "{name}: {stderr}");
        match active_client {
            Some(client) => {
                let (sessions, commands) = &client_commands(&stdout)[client];
                assert!(*sessions > 0 && !commands.is_empty(), "{name}: {stdout}");
            }
            None => {
                let (offered, delivered, ..) = deliveries_line(&stdout);
                assert!(offered > 100 && delivered == offered, "{name}: {stdout}");
            }
        }
    }
}

/// (offered, delivered) from the Totals' `Deliveries:` line.
fn deliveries_line(stdout: &str) -> (u64, u64) {
    let line = stdout
        .lines()
        .find(|l| l.starts_with("Deliveries: "))
        .expect("Deliveries line");
    let numbers: Vec<u64> = line
        .split(|c: char| !c.is_ascii_digit())
        .filter_map(|w| w.parse().ok())
        .collect();
    (numbers[0], numbers[1])
}
