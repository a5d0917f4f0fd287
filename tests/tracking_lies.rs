//! State tracking against a lying server: the lab Dovecot behind a proxy that lies in
//! exactly one way per run. Every lie class must be reported as an error of its kind,
//! with the default command mix wherever the lie can show up in it, and counted under
//! that kind in the CSV timeline's `error` rows and the `Errors by kind` line; with the
//! proxy transparent (and against Dovecot directly) there must be no error at all.

mod common;
#[path = "support/lying_proxy.rs"]
mod lying_proxy;

use std::collections::BTreeMap;
use std::process::Command;

use common::totals_error_kinds;
use lying_proxy::{Lie, LyingProxy};

fn mbox() -> &'static str {
    static MBOX: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    MBOX.get_or_init(|| {
        let path =
            std::env::temp_dir().join(format!("imaptest-tracking-{}.mbox", std::process::id()));
        let out = Command::new(env!("CARGO_BIN_EXE_imaptest"))
            .args([
                "mbox-gen".to_owned(),
                format!("out={}", path.display()),
                "count=60".into(),
                "seed=5".into(),
                // The path holds the pid: one left by an earlier run goes.
                "overwrite".into(),
            ])
            .output()
            .expect("run mbox-gen");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        path.display().to_string()
    })
}

struct Run {
    errors: Vec<String>,
    /// Errors by kind, summed over the CSV timeline's `error` rows.
    kinds: BTreeMap<String, u64>,
    output: String,
}

/// Sums the `errors_per_s` of the `error` rows by kind (the `name` column).
fn csv_error_kinds(csv: &str) -> BTreeMap<String, u64> {
    let mut reader = csv::Reader::from_reader(csv.as_bytes());
    let header = reader.headers().expect("CSV header").clone();
    let column = |name: &str| header.iter().position(|h| h == name).expect(name);
    let (kind, command, count) = (column("kind"), column("name"), column("errors_per_s"));
    let mut kinds = BTreeMap::new();
    for record in reader.records() {
        let record = record.expect("CSV row");
        if &record[kind] == "error" {
            let n: u64 = record[count].parse().expect("error count");
            *kinds.entry(record[command].to_owned()).or_default() += n;
        }
    }
    kinds
}

/// OK replies to an IMAP command over the whole CSV timeline.
fn csv_command_ok(csv: &str, name: &str) -> u64 {
    let mut reader = csv::Reader::from_reader(csv.as_bytes());
    let header = reader.headers().expect("CSV header").clone();
    let column = |c: &str| header.iter().position(|h| h == c).expect(c);
    let (kind, protocol, command, ok) = (
        column("kind"),
        column("protocol"),
        column("name"),
        column("ok_per_s"),
    );
    reader
        .records()
        .map(|r| r.expect("CSV row"))
        .filter(|r| &r[kind] == "command" && &r[protocol] == "imap" && &r[command] == name)
        .map(|r| r[ok].parse::<u64>().expect("ok count"))
        .sum()
}

/// One run at a time: twenty runs of 4 clients at once on a 2-core machine change the
/// command interleaving so much that chance-driven lies go unseen.
static ONE_AT_A_TIME: std::sync::Mutex<()> = std::sync::Mutex::new(());

/// A bounded run of one fresh user's mailbox through `port`; `extra` adds arguments
/// (a later `seed=` overrides the default one).
fn run(port: u16, extra: &[&str]) -> Run {
    let _turn = ONE_AT_A_TIME.lock().unwrap_or_else(|p| p.into_inner());
    let lab = common::lab();
    let user = common::fresh_user();
    let csv_path = std::env::temp_dir().join(format!(
        "imaptest-tracking-{}-{port}.csv",
        std::process::id()
    ));
    let mut args = vec![
        "host=127.0.0.1".to_owned(),
        format!("port={port}"),
        format!("user={user}"),
        format!("pass={}", lab.user_password),
        "clients=4".into(),
        "secs=8".into(),
        "seed=7".into(),
        format!("mbox={}", mbox()),
        format!("csv={}", csv_path.display()),
    ];
    args.extend(extra.iter().map(|s| s.to_string()));
    let out = Command::new(env!("CARGO_BIN_EXE_imaptest"))
        .args(&args)
        .output()
        .expect("run imaptest");
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    let errors = stdout
        .lines()
        .chain(stderr.lines())
        .filter(|l| l.contains("Error"))
        // Dovecot itself gives up on an index lock when the 2-core machine is loaded;
        // that NO is the server's own report, not a finding about what it said.
        .filter(|l| !l.contains("NO [SERVERBUG] Timeout while waiting for lock"))
        .map(str::to_owned)
        .collect();
    let output = format!("args {args:?}\n--- stdout ---\n{stdout}\n--- stderr ---\n{stderr}");
    let csv = std::fs::read_to_string(&csv_path).unwrap_or_else(|e| panic!("{e}\n{output}"));
    let _ = std::fs::remove_file(&csv_path);
    let kinds = csv_error_kinds(&csv);
    // Every error report is counted once under its kind, in the CSV and in Totals.
    // Past 100 lines a second the console only counts them and says how many.
    let held: u64 = stderr
        .lines()
        .filter_map(|l| l.strip_prefix("Warning: ")?.split_once(" more error and "))
        .map(|(n, _)| n.parse::<u64>().unwrap())
        .sum();
    let reported = stderr.lines().filter(|l| l.starts_with("Error: ")).count() as u64 + held;
    assert_eq!(kinds.values().sum::<u64>(), reported, "{kinds:?}\n{output}");
    assert_eq!(totals_error_kinds(&stdout), kinds, "{output}");
    Run {
        errors,
        kinds,
        output,
    }
}

/// Runs through a proxy telling `lie` and asserts an error whose message contains one of
/// the texts of `kinds`, each such error counted under the kind paired with the first
/// text it contains; returns the matching errors.
fn caught(lie: Lie, extra: &[&str], kinds: &[(&str, &str)]) -> Vec<String> {
    // A lie shows only when the random command mix meets it (a FETCH of the changed
    // message, a second look at a MODSEQ): a run that happens not to is repeated once
    // with another seed. Either way the tool must report it.
    let mut outputs = Vec::new();
    for seed in ["seed=7", "seed=8"] {
        let proxy = LyingProxy::start(common::lab().imap_addr(), lie);
        let mut args = extra.to_vec();
        args.push(seed);
        let run = run(proxy.port(), &args);
        let lies = proxy.lies();
        drop(proxy);
        assert!(lies > 0, "{lie:?}: the proxy never lied\n{}", run.output);
        let matching: Vec<String> = run
            .errors
            .iter()
            .filter(|e| kinds.iter().any(|(text, _)| e.contains(text)))
            .cloned()
            .collect();
        if !matching.is_empty() {
            let mut expected: BTreeMap<&str, u64> = BTreeMap::new();
            for e in &matching {
                if let Some((_, kind)) = kinds.iter().find(|(text, _)| e.contains(text)) {
                    *expected.entry(kind).or_default() += 1;
                }
            }
            for (kind, reported) in expected {
                let counted = run.kinds.get(kind).copied().unwrap_or(0);
                assert!(
                    counted >= reported,
                    "{lie:?}: {reported} errors of kind {kind} but {counted} counted: {:?}\n{}",
                    run.kinds,
                    run.output
                );
            }
            return matching;
        }
        outputs.push(format!(
            "({lies} lies told) errors: {:#?}\n{}",
            run.errors, run.output
        ));
    }
    panic!(
        "{lie:?} not reported as any of {kinds:?} in two runs:\n{}",
        outputs.join("\n")
    )
}

#[test]
fn transparent_proxy_gives_no_errors() {
    let proxy = LyingProxy::start(common::lab().imap_addr(), Lie::Transparent);
    let run = run(proxy.port(), &["search=30"]);
    assert!(run.errors.is_empty(), "{:#?}\n{}", run.errors, run.output);
}

#[test]
fn dovecot_gives_no_errors_with_search_and_shared_users() {
    let lab = common::lab();
    let run = run(lab.imap_port, &["search=100", "uidfetch=100", "clients=6"]);
    assert!(run.errors.is_empty(), "{:#?}\n{}", run.errors, run.output);
}

/// `random_msg_size=` sends bytes IMAP cannot return as they are (NUL): Dovecot's
/// replacement is not a lie, and content truth must not call it one.
#[test]
fn dovecot_gives_no_errors_with_random_messages() {
    let lab = common::lab();
    let run = run(
        lab.imap_port,
        &["random_msg_size=200", "fetch=100", "fetch2=100"],
    );
    assert!(run.errors.is_empty(), "{:#?}\n{}", run.errors, run.output);
}

#[test]
fn different_uid_for_a_known_sequence() {
    caught(
        Lie::Uid,
        &[],
        &[
            ("UID changed", "uid-changed"),
            ("out of order", "uid-order"),
        ],
    );
}

#[test]
fn swallowed_expunge() {
    // In the default mix a session APPENDs and logs out right after its EXPUNGE, and the
    // APPEND's EXISTS then matches the inflated count: the lie only shows when the
    // session goes on to FETCH shifted sequence numbers, so sessions stay longer here.
    caught(
        Lie::SwallowExpunge,
        &["logout=10"],
        &[
            ("message count dropped", "exists-shrank"),
            ("UID changed", "uid-changed"),
            ("out of order", "uid-order"),
            ("beyond EXISTS", "fetch-beyond-exists"),
        ],
    );
}

#[test]
fn fetch_beyond_exists() {
    caught(
        Lie::FetchBeyondExists,
        &[],
        &[("beyond EXISTS", "fetch-beyond-exists")],
    );
}

#[test]
fn unannounced_keyword() {
    caught(
        Lie::UnannouncedKeyword,
        &[],
        &[(
            "keyword $Unannounced used in FETCH FLAGS without being announced by FLAGS",
            "unannounced-keyword",
        )],
    );
}

#[test]
fn changed_internaldate() {
    caught(
        Lie::InternalDate,
        &[],
        &[("INTERNALDATE changed", "internaldate-changed")],
    );
}

/// Static data that differs between copies of one Message-ID (each APPEND of the mbox
/// makes another copy) is reported as `copy-differs`, whatever the item.
const SAME_MESSAGE_ID: &str = "with the same Message-ID)";

#[test]
fn changed_rfc822_size() {
    caught(
        Lie::Rfc822Size,
        &[],
        &[
            (SAME_MESSAGE_ID, "copy-differs"),
            ("RFC822.SIZE changed", "size-changed"),
            ("BODY[] size changed", "size-changed"),
        ],
    );
}

#[test]
fn changed_envelope() {
    caught(
        Lie::Envelope,
        &[],
        &[
            (SAME_MESSAGE_ID, "copy-differs"),
            ("ENVELOPE changed", "envelope-changed"),
        ],
    );
}

#[test]
fn changed_bodystructure() {
    caught(
        Lie::BodyStructure,
        &[],
        &[
            (SAME_MESSAGE_ID, "copy-differs"),
            ("BODYSTRUCTURE changed", "bodystructure-changed"),
        ],
    );
}

/// A lie told every time (the server always agrees with itself) about a message
/// imaptest appended: only content truth can catch it, under its own kind, naming the
/// field; no consistency check may fire.
fn caught_by_content_truth(lie: Lie, field: &str) {
    let found = caught(
        lie,
        &["fetch=100"],
        &[("(message imaptest wrote)", "content-mismatch")],
    );
    assert!(
        found.iter().all(|e| e.contains(field)),
        "{lie:?}: expected every mismatch to name {field}: {found:#?}"
    );
}

#[test]
fn content_truth_catches_a_changed_bodystructure_parameter() {
    caught_by_content_truth(Lie::BodyStructureParameter, "parameter");
}

#[test]
fn content_truth_catches_a_changed_envelope_address() {
    caught_by_content_truth(Lie::EnvelopeAddress, "ENVELOPE from");
}

#[test]
fn recent_in_several_sessions() {
    let found = caught(
        Lie::Recent,
        &[],
        &[("\\Recent flag in multiple sessions", "recent-duplicate")],
    );
    // Tracking goes on after the first error: more messages are reported.
    let uids: std::collections::HashSet<&str> = found
        .iter()
        .filter_map(|e| e.split(" UID ").nth(1)?.split(':').next())
        .collect();
    assert!(uids.len() >= 2, "{found:#?}");
}

#[test]
fn modseq_going_backwards() {
    caught(
        Lie::ModSeqBackwards,
        &[],
        &[("MODSEQ went backwards", "modseq-backwards")],
    );
}

#[test]
fn search_result_missing_a_number() {
    // SEARCH is not in the default mix.
    caught(
        Lie::SearchMissing,
        &["search=100"],
        &[(
            "result is missing a message that must match",
            "search-missing",
        )],
    );
}

#[test]
fn exists_shrinking_without_expunge() {
    caught(
        Lie::ExistsShrinks,
        &[],
        &[("message count dropped", "exists-shrank")],
    );
}

#[test]
fn flag_silently_dropped_with_own_flags() {
    caught(
        Lie::DropFlag,
        &["own_flags"],
        &[
            ("owned flag", "owned-flag-changed"),
            ("didn't update", "store-not-applied"),
        ],
    );
}

#[test]
fn dovecot_gives_no_errors_with_own_flags() {
    let lab = common::lab();
    let run = run(lab.imap_port, &["own_flags", "clients=8", "store=100"]);
    assert!(run.errors.is_empty(), "{:#?}\n{}", run.errors, run.output);
}

#[test]
fn flag_silently_dropped_with_own_msgs() {
    caught(
        Lie::DropFlag,
        &["own_msgs"],
        &[("flags of owned message changed", "owned-message-changed")],
    );
}

#[test]
fn dovecot_gives_no_errors_with_own_msgs() {
    let lab = common::lab();
    let run = run(lab.imap_port, &["own_msgs", "clients=8"]);
    assert!(run.errors.is_empty(), "{:#?}\n{}", run.errors, run.output);
}

#[test]
fn checkpoint_finds_views_that_disagree() {
    // The dropped flag reaches some connections and not others.
    caught(
        Lie::DropFlag,
        &["checkpoint=1", "clients=6"],
        &[("checkpoint: ", "checkpoint-mismatch")],
    );
}

#[test]
fn dovecot_gives_no_errors_with_checkpoints_and_many_users() {
    // The C tool dies on an assertion with checkpoint=1 users=100.
    let lab = common::lab();
    // testuser1..100 are left for load runs like this one (see common::FRESH_USERS).
    let run = run(
        lab.imap_port,
        &["user=testuser%d", "users=100", "clients=30", "checkpoint=1"],
    );
    assert!(run.errors.is_empty(), "{:#?}\n{}", run.errors, run.output);
    assert!(run.output.contains("ChkP"), "{}", run.output);
}

/// QRESYNC runs: sessions know every UID (UIDFETCH), so closed views become offline
/// caches that later SELECTs resume.
const QRESYNC: [&str; 2] = ["qresync", "uidfetch=100"];

/// Counts over every rawlog of `dir`: QRESYNC SELECTs sent, caches restored, and the
/// resyncs' checks against what other sessions saw (expunges, changes).
fn qresync_rawlog_counts(dir: &std::path::Path) -> [u64; 4] {
    let mut counts = [0; 4];
    for entry in std::fs::read_dir(dir).expect("rawlog dir") {
        // Message bodies may be 8-bit.
        let bytes = std::fs::read(entry.expect("rawlog").path()).expect("rawlog");
        let text = String::from_utf8_lossy(&bytes);
        for line in text.lines() {
            if line.contains("C: ") && line.contains(" SELECT \"INBOX\" (QRESYNC (") {
                counts[0] += 1;
            }
            if line.contains("** qresync: offline cache restored") {
                counts[1] += 1;
            }
            if let Some(rest) = line.split("; checked ").nth(1) {
                let words: Vec<&str> = rest.split(' ').collect();
                counts[2] += words[0].parse::<u64>().expect("expunges checked");
                counts[3] += words[3].parse::<u64>().expect("changes checked");
            }
        }
    }
    counts
}

#[test]
fn dovecot_gives_no_errors_with_qresync_resyncs() {
    let lab = common::lab();
    // Dovecot 2.3 has no IMAP4rev2: `imap4rev2` runs its QRESYNC side against it.
    for mode in ["qresync", "imap4rev2"] {
        let dir = tempfile::tempdir().expect("tempdir");
        let rawlog = format!("rawlog={}", dir.path().display());
        let run = run(lab.imap_port, &[mode, "uidfetch=100", &rawlog]);
        assert!(run.errors.is_empty(), "{:#?}\n{}", run.errors, run.output);
        let [sent, restored, expunges, changes] = qresync_rawlog_counts(dir.path());
        // Resyncs happened, resumed the cache, and were checked against the other
        // sessions' knowledge.
        assert!(
            sent > 10 && restored > 10 && expunges > 0 && changes > 0,
            "{mode}: {sent} QRESYNC SELECTs, {restored} restored, {expunges} expunges and {changes} changes checked\n{}",
            run.output
        );
    }
}

#[test]
fn transparent_proxy_gives_no_errors_with_qresync() {
    let proxy = LyingProxy::start(common::lab().imap_addr(), Lie::Transparent);
    let mut args = QRESYNC.to_vec();
    args.push("store=100");
    let run = run(proxy.port(), &args);
    assert!(run.errors.is_empty(), "{:#?}\n{}", run.errors, run.output);
}

#[test]
fn qresync_select_swallowing_vanished_earlier() {
    caught(
        Lie::SwallowVanishedEarlier,
        &QRESYNC,
        &[("in VANISHED (EARLIER)", "qresync-missed-expunge")],
    );
}

#[test]
fn qresync_select_swallowing_a_changed_message() {
    caught(
        Lie::SwallowResyncFetch,
        &QRESYNC,
        &[("no FETCH for it", "qresync-missed-flags")],
    );
}

/// Profile mode: a message delivered over LMTP is checked, once an IMAP client has seen
/// its marker, against the bytes delivered (the server's trace headers allowed). The
/// lab's LMTP is reached directly; the IMAP side goes through the proxy.
fn profile_through(lie: Lie) -> (Run, u64) {
    let _turn = ONE_AT_A_TIME.lock().unwrap_or_else(|p| p.into_inner());
    let lab = common::lab();
    let proxy = LyingProxy::start(lab.imap_addr(), lie);
    let dir = tempfile::tempdir().unwrap();
    let users: Vec<String> = (0..3).map(|_| common::fresh_user()).collect();
    let user_file = dir.path().join("users");
    std::fs::write(&user_file, users.join("\n") + "\n").unwrap();
    let profile = dir.path().join("truth.toml");
    std::fs::write(
        &profile,
        format!(
            r#"
[run]
duration = "5s"
rampup = "300ms"
seed = 3

[servers.imap]
port = {imap}
[servers.lmtp]
port = {lmtp}

[[population]]
name = "readers"
count = 3
userfile = "{users}"
clients = [{{ client = "reader" }}]
inbox_delivery = "400ms"
action_delay = "200ms"

[[client]]
name = "reader"
connections = 1
fetch_on_arrival = "UID FLAGS"
fetch_on_open = "ENVELOPE BODYSTRUCTURE RFC822.SIZE BODY.PEEK[]"
"#,
            imap = proxy.port(),
            lmtp = lab.lmtp_port,
            users = user_file.display()
        ),
    )
    .unwrap();
    let csv_path = dir.path().join("timeline.csv");
    let args = vec![
        format!("profile={}", profile.display()),
        format!("host={}", lab.host),
        format!("pass={}", lab.user_password),
        format!("mbox={}", mbox()),
        format!("csv={}", csv_path.display()),
    ];
    let out = Command::new(env!("CARGO_BIN_EXE_imaptest"))
        .args(&args)
        .output()
        .expect("run imaptest");
    let lies = proxy.lies();
    drop(proxy);
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    let output = format!("args {args:?}\n--- stdout ---\n{stdout}\n--- stderr ---\n{stderr}");
    let csv = std::fs::read_to_string(&csv_path).unwrap_or_else(|e| panic!("{e}\n{output}"));
    let (_, delivered, _, _) = common::csv_deliveries(&csv);
    assert!(delivered >= 10, "too few deliveries: {delivered}\n{output}");
    let fetched = csv_command_ok(&csv, "FETCH2");
    assert!(
        fetched >= 5,
        "the readers read {fetched} messages\n{output}"
    );
    let errors = stdout
        .lines()
        .chain(stderr.lines())
        .filter(|l| l.contains("Error"))
        .map(str::to_owned)
        .collect();
    (
        Run {
            errors,
            kinds: csv_error_kinds(&csv),
            output,
        },
        lies,
    )
}

#[test]
fn profile_deliveries_read_back_as_delivered() {
    let (run, _) = profile_through(Lie::Transparent);
    assert!(run.errors.is_empty(), "{:#?}\n{}", run.errors, run.output);
}

#[test]
fn content_truth_catches_a_changed_envelope_address_of_a_delivery() {
    let (run, lies) = profile_through(Lie::EnvelopeAddress);
    assert!(lies > 0, "the proxy never lied\n{}", run.output);
    let mismatches: Vec<&String> = run
        .errors
        .iter()
        .filter(|e| e.contains("(message imaptest wrote)"))
        .collect();
    assert!(
        !mismatches.is_empty() && mismatches.iter().all(|e| e.contains("ENVELOPE from")),
        "{:#?}\n{}",
        run.errors,
        run.output
    );
    assert!(
        run.kinds.get("content-mismatch").copied().unwrap_or(0) >= mismatches.len() as u64,
        "{:?}\n{}",
        run.kinds,
        run.output
    );
}
