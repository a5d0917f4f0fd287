//! The upstream ImapTest suites (`../shared/imaptest-suite/{release-2.3,main}`, read in
//! place) against the lab Dovecot 2.3.19: the verdicts of the C tool.
//!
//! `$IMAPTEST_SUITE_DIR` overrides where the suites are looked for. A missing suite
//! skips the test with a note, except under CI (`CI` set), where it is an error.

use std::path::{Path, PathBuf};
use std::time::Duration;

use imaptest::config::Settings;
use imaptest::scripted::report::Summary;

mod common;

fn suite(name: &str) -> Option<PathBuf> {
    let dir = match std::env::var_os("IMAPTEST_SUITE_DIR") {
        Some(dir) => PathBuf::from(dir).join(name),
        None => common::repo_root()
            .join("../shared/imaptest-suite")
            .join(name),
    };
    if dir.exists() {
        return Some(dir);
    }
    if std::env::var_os("CI").is_some() {
        panic!(
            "{} not found (CI needs ../shared beside the clone)",
            dir.display()
        );
    }
    eprintln!("skipping: {} not found", dir.display());
    None
}

fn settings(user: &str, test: &Path) -> Settings {
    let lab = common::lab();
    let mut s = Settings {
        host: lab.host.into(),
        port: Some(lab.imap_port),
        mailbox: "imaptest".into(),
        test: Some(test.to_owned()),
        timeout: Duration::from_secs(30),
        ..Settings::default()
    };
    s.user.template = user.into();
    s.user.password = lab.user_password.into();
    s
}

#[tokio::test]
async fn release_2_3_suite_gives_the_c_tools_verdicts() {
    let Some(dir) = suite("release-2.3") else {
        return;
    };
    let settings = settings(&common::fresh_user(), &dir);
    let results = imaptest::scripted::run_tests(&settings, false)
        .await
        .unwrap();
    let failures: Vec<String> = results.iter().flat_map(|r| r.failures.clone()).collect();
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
    // The C tool on the same server: URLAUTH, URLAUTH=BINARY and CONTEXT=SORT are
    // not announced, urlauth2 needs user2=.
    assert_eq!(
        Summary::from_results(&results).lines(),
        "71 test groups: 0 failed, 4 skipped due to missing capabilities\n\
         base protocol: 0/457 individual commands failed\n\
         extensions: 0/330 individual commands failed"
    );

    // The public entry point: exit status 0 and a JUnit report.
    let junit = tempfile::NamedTempFile::new().unwrap();
    let status = imaptest::scripted::run(&settings, Some(junit.path()))
        .await
        .unwrap();
    assert_eq!(status, 0);
    let xml = std::fs::read_to_string(junit.path()).unwrap();
    assert!(
        xml.contains("tests=\"71\" failures=\"0\" errors=\"0\" skipped=\"4\""),
        "{xml}"
    );
    assert!(xml.contains("<testcase classname=\"release-2.3\" name=\"append\""));
}

#[tokio::test]
async fn main_suite_passes() {
    let Some(dir) = suite("main") else { return };
    let settings = settings(&common::fresh_user(), &dir);
    let results = imaptest::scripted::run_tests(&settings, false)
        .await
        .unwrap();
    let failures: Vec<String> = results.iter().flat_map(|r| r.failures.clone()).collect();
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
    assert_eq!(
        Summary::from_results(&results).lines(),
        "72 test groups: 0 failed, 4 skipped due to missing capabilities\n\
         base protocol: 0/460 individual commands failed\n\
         extensions: 0/329 individual commands failed"
    );
}
