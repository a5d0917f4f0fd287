//! The upstream ImapTest suites (`../shared/imaptest-suite/{release-2.3,main}`, read in
//! place) against the lab Dovecot 2.3.19: the verdicts of the C tool.
//!
//! `$IMAPTEST_SUITE_DIR` overrides where the suites are looked for. A missing suite
//! skips the test with a note, except under CI (`CI` set), where it is an error.

use std::path::{Path, PathBuf};
use std::time::Duration;

use imaptest::config::{Common, ScriptedSettings};
use imaptest::control::RunState;
use imaptest::scripted::report::{Summary, TestResult};

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

fn settings(user: &str, test: &Path) -> (Common, ScriptedSettings) {
    let lab = common::lab();
    let mut common = Common {
        host: lab.host.into(),
        port: Some(lab.imap_port),
        timeout: Duration::from_secs(30),
        ..Common::default()
    };
    common.user.template = user.into();
    common.user.password = lab.user_password.into();
    (common, ScriptedSettings::new(test.to_owned()))
}

async fn run_tests(settings: &(Common, ScriptedSettings)) -> Vec<TestResult> {
    let (_keep, running) = tokio::sync::watch::channel(RunState::Running);
    imaptest::scripted::run_tests(&settings.0, &settings.1, None, running, |_| {})
        .await
        .unwrap()
}

#[tokio::test]
async fn release_2_3_suite_gives_the_c_tools_verdicts() {
    let Some(dir) = suite("release-2.3") else {
        return;
    };
    let settings = settings(&common::fresh_user(), &dir);
    let results = run_tests(&settings).await;
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

    // The command line: exit status 0, a JUnit report and the verdicts in the summary.
    let out_dir = tempfile::tempdir().unwrap();
    let junit = out_dir.path().join("junit.xml");
    let summary_path = out_dir.path().join("summary.json");
    let lab = common::lab();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_imaptest"))
        .args([
            format!("host={}", lab.host),
            format!("port={}", lab.imap_port),
            format!("user={}", common::fresh_user()),
            format!("pass={}", lab.user_password),
            format!("test={}", dir.display()),
            format!("junit={}", junit.display()),
            format!("summary={}", summary_path.display()),
        ])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{stdout}");
    assert!(stdout.contains("71 test groups: 0 failed"), "{stdout}");
    let xml = std::fs::read_to_string(&junit).unwrap();
    assert!(
        xml.contains("tests=\"71\" failures=\"0\" errors=\"0\" skipped=\"4\""),
        "{xml}"
    );
    assert!(xml.contains("<testcase classname=\"release-2.3\" name=\"append\""));
    let summary = imaptest::summary::RunSummary::read(&summary_path).unwrap();
    let scripted = summary.scripted.expect("scripted section");
    assert_eq!(
        (scripted.tests, scripted.failed, scripted.skipped),
        (71, 0, 4)
    );
    assert_eq!((scripted.base_commands, scripted.base_failures), (457, 0));
    assert!(summary.complete);
    assert_eq!(summary.exit_status, 0);
}

#[tokio::test]
async fn main_suite_passes() {
    let Some(dir) = suite("main") else { return };
    let settings = settings(&common::fresh_user(), &dir);
    let results = run_tests(&settings).await;
    let failures: Vec<String> = results.iter().flat_map(|r| r.failures.clone()).collect();
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
    assert_eq!(
        Summary::from_results(&results).lines(),
        "72 test groups: 0 failed, 4 skipped due to missing capabilities\n\
         base protocol: 0/460 individual commands failed\n\
         extensions: 0/329 individual commands failed"
    );
}
