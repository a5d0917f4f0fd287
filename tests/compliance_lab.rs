//! `imaptest compliance` against the three labs: each measurement must match the
//! matrix committed under `docs/compliance/` (verdicts and answers; timings only as
//! their band), and a lie told by a proxy must change the answer it is about.

mod common;
#[path = "support/lying_proxy.rs"]
mod lying_proxy;

use std::path::Path;
use std::process::Command;

use imaptest::compliance::{Matrix, Verdict, differences};
use lying_proxy::{Lie, LyingProxy};

/// Runs the battery as the binary does and reads its JSON matrix.
fn measure(port: u16, user: &str) -> Matrix {
    let out_path = std::env::temp_dir().join(format!(
        "imaptest-compliance-{}-{port}.json",
        std::process::id()
    ));
    let out = Command::new(common::imaptest_bin())
        .args([
            "compliance".to_owned(),
            "host=127.0.0.1".into(),
            format!("port={port}"),
            format!("user={user}"),
            "pass=pass".into(),
            "format=json".into(),
            format!("out={}", out_path.display()),
        ])
        .output()
        .expect("run imaptest compliance");
    assert!(
        out.status.success(),
        "imaptest compliance failed: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let text = std::fs::read_to_string(&out_path).expect("matrix written");
    let _ = std::fs::remove_file(&out_path);
    serde_json::from_str(&text).expect("matrix parses")
}

fn committed(name: &str) -> Matrix {
    let path = common::repo_root().join("docs/compliance").join(name);
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn assert_matches(name: &str, measured: &Matrix) {
    let expected = committed(name);
    let diffs = differences(&expected, measured);
    assert!(
        diffs.is_empty(),
        "the battery's answers differ from docs/compliance/{name} (re-measure with \
         `imaptest compliance … format=json out=docs/compliance/{name}` if the change \
         is intended):\n  {}",
        diffs.join("\n  ")
    );
    assert!(
        measured.checks.iter().all(|c| c.verdict != Verdict::Error),
        "a check could not run: {measured:#?}"
    );
}

#[test]
fn dovecot_matches_the_committed_matrix() {
    let lab = common::lab();
    let user = common::fresh_user();
    let measured = measure(lab.imap_port, &user);
    assert!(measured.server.contains("Dovecot"), "{}", measured.server);
    assert_matches("dovecot-2.3.json", &measured);
}

#[test]
fn cyrus_matches_the_committed_matrix() {
    let lab = common::servers::cyrus_lab();
    let user = lab.fresh_user();
    let measured = measure(lab.imap_port, &user);
    assert!(measured.server.contains("Cyrus"), "{}", measured.server);
    assert_matches("cyrus-3.6.json", &measured);
}

#[test]
fn courier_matches_the_committed_matrix() {
    let lab = common::servers::courier_lab();
    let user = lab.fresh_user();
    let measured = measure(lab.imap_port, &user);
    assert!(measured.server.contains("Courier"), "{}", measured.server);
    assert_matches("courier-5.0.json", &measured);
    // Courier's stand-in for an expunged message is named as the quirk it is.
    let fetch = measured
        .checks
        .iter()
        .find(|c| c.id == "expunged-fetch")
        .expect("expunged-fetch row");
    assert!(
        fetch.detail.contains("expunged-message-fabricated"),
        "{fetch:?}"
    );
}

/// A proxy that puts `\Recent` on every FETCH FLAGS makes both sessions see it: the
/// battery must say so, and only that row may change (COMPRESS aside: the proxy reads
/// responses and cannot follow a deflated stream).
#[test]
fn a_lie_about_recent_changes_that_answer_only() {
    let lab = common::lab();
    let proxy = LyingProxy::start(lab.imap_addr(), Lie::Recent);
    let user = common::fresh_user();
    let measured = measure(proxy.port(), &user);
    assert!(proxy.lies() > 0, "the lie never came up");
    let diffs: Vec<String> = differences(&committed("dovecot-2.3.json"), &measured)
        .into_iter()
        .filter(|d| !d.starts_with("compress:"))
        .collect();
    assert_eq!(diffs.len(), 1, "{diffs:#?}");
    assert!(
        diffs[0].starts_with(
            "recent: expected pass \"exactly one session\", got deviation \"both sessions\""
        ),
        "{}",
        diffs[0]
    );
}

/// `expect=` exits 9 naming the row when the server answers differently, 0 when not.
#[test]
fn expect_exits_with_its_own_status_on_a_difference() {
    let lab = common::lab();
    let dir =
        std::env::temp_dir().join(format!("imaptest-compliance-expect-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let mut expected = committed("dovecot-2.3.json");
    let row = expected
        .checks
        .iter_mut()
        .find(|c| c.id == "uidplus")
        .unwrap();
    row.answer = "no APPENDUID".into();
    let path = dir.join("expected.json");
    std::fs::write(&path, serde_json::to_string(&expected).unwrap()).unwrap();
    let run = |expect: &Path| {
        Command::new(common::imaptest_bin())
            .args([
                "compliance".to_owned(),
                "host=127.0.0.1".into(),
                format!("port={}", lab.imap_port),
                format!("user={}", common::fresh_user()),
                "pass=pass".into(),
                format!("expect={}", expect.display()),
            ])
            .output()
            .unwrap()
    };
    let out = run(&path);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(
        out.status.code(),
        Some(i32::from(imaptest::exit::MATRIX_DIFFERS)),
        "{stderr}"
    );
    assert!(
        stderr.contains("Differs: uidplus: expected pass \"no APPENDUID\""),
        "{stderr}"
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("uidplus"), "{stdout}");
    let out = run(&common::repo_root().join("docs/compliance/dovecot-2.3.json"));
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let _ = std::fs::remove_dir_all(&dir);
}
