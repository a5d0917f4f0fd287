//! The project's own test scripts (`tests/scripts/`) against the lab Dovecot: every
//! grammar feature passes, every wrong expectation fails with a precise report, a
//! malformed file is reported by line while the other files still run.

use std::path::{Path, PathBuf};
use std::time::Duration;

use imaptest::config::{Common, ScriptedSettings};
use imaptest::control::RunState;

mod common;
use imaptest::scripted::report::{Outcome, TestResult};

fn scripts(dir: &str) -> PathBuf {
    common::repo_root().join("tests/scripts").join(dir)
}

fn settings(user: &str, timeout: Duration) -> Common {
    let mut s = Common {
        host: common::lab().host.into(),
        port: Some(common::lab().imap_port),
        timeout,
        ..Common::default()
    };
    s.user.template = user.into();
    s.user.password = common::lab().user_password.into();
    s
}

async fn run_with(settings: &Common, test: &Path) -> Vec<TestResult> {
    let scripted = ScriptedSettings::new(test.to_owned());
    let (_keep, running) = tokio::sync::watch::channel(RunState::Running);
    imaptest::scripted::run_tests(settings, &scripted, None, running, |_| {})
        .await
        .unwrap()
}

async fn run(user: &str, test: &Path, timeout: Duration) -> Vec<TestResult> {
    run_with(&settings(user, timeout), test).await
}

fn report(r: &TestResult) -> String {
    format!("{}\n{}", r.line(), r.failures.join("\n\n"))
}

#[tokio::test]
async fn grammar_features_pass() {
    let results = run(
        &common::fresh_user(),
        &scripts("pass"),
        Duration::from_secs(30),
    )
    .await;
    assert!(results.len() >= 15);
    for r in &results {
        if r.name.starts_with("skip-") {
            assert!(matches!(r.outcome, Outcome::Skipped(_)), "{}", report(r));
        } else {
            assert_eq!(r.outcome, Outcome::Passed, "{}", report(r));
            assert_eq!(r.commands_run, r.commands_total, "{}", report(r));
        }
    }
}

/// `# failures: N` and `# expect: text` lines of a script.
fn expectations(path: &Path) -> (usize, Vec<String>) {
    let text = std::fs::read_to_string(path).unwrap();
    let mut count = None;
    let mut expect = Vec::new();
    for line in text.lines() {
        if let Some(n) = line.strip_prefix("# failures: ") {
            count = Some(n.trim().parse().unwrap());
        } else if let Some(e) = line.strip_prefix("# expect: ") {
            expect.push(e.to_owned());
        }
    }
    (
        count.unwrap_or_else(|| panic!("{} has no # failures: line", path.display())),
        expect,
    )
}

fn check_failures(results: &[TestResult]) {
    for r in results {
        if std::env::var_os("IMAPTEST_SHOW_REPORTS").is_some() {
            eprintln!("{}\n", report(r));
        }
        let (count, expect) = expectations(&r.path);
        assert_eq!(
            r.outcome,
            Outcome::Failed,
            "{} must fail:\n{}",
            r.name,
            report(r)
        );
        assert_eq!(r.failures.len(), count, "{}", report(r));
        let text = r.failures.join("\n");
        for e in &expect {
            assert!(
                text.contains(e.as_str()),
                "{}: missing {e:?} in:\n{text}",
                r.name
            );
        }
    }
}

#[tokio::test]
async fn wrong_expectations_fail_precisely() {
    let results = run(
        &common::fresh_user(),
        &scripts("fail"),
        Duration::from_secs(30),
    )
    .await;
    assert!(results.len() >= 18);
    check_failures(&results);
}

#[tokio::test]
async fn command_timeout_fails() {
    let results = run(
        &common::fresh_user(),
        &scripts("timeout"),
        Duration::from_secs(1),
    )
    .await;
    assert_eq!(results.len(), 1);
    check_failures(&results);
}

#[tokio::test]
async fn malformed_file_is_reported_and_others_run() {
    let dir = scripts("malformed");
    let user = common::fresh_user();
    let results = run(&user, &dir, Duration::from_secs(30)).await;
    let outcomes: Vec<(&str, &Outcome)> = results
        .iter()
        .map(|r| (r.name.as_str(), &r.outcome))
        .collect();
    assert_eq!(outcomes.len(), 3);
    assert_eq!(outcomes[0], ("a-good", &Outcome::Passed));
    assert_eq!(outcomes[2], ("c-good", &Outcome::Passed));
    let want = format!("{} line 5: Missing ')'", dir.join("b-bad").display());
    assert_eq!(outcomes[1], ("b-bad", &Outcome::Malformed(want)));
    // The exit status says something failed.
    let lab = common::lab();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_imaptest"))
        .args([
            format!("host={}", lab.host),
            format!("port={}", lab.imap_port),
            format!("user={user}"),
            format!("pass={}", lab.user_password),
            format!("test={}", dir.display()),
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
}

#[tokio::test]
async fn runs_over_starttls_and_implicit_tls() {
    use imaptest::config::{TlsMode, TlsSettings};
    let lab = common::lab();
    let test = scripts("pass").join("forms");
    for (mode, port) in [
        (TlsMode::StartTls, lab.imap_port),
        (TlsMode::Implicit, lab.imaps_port),
    ] {
        let mut s = settings(&common::fresh_user(), Duration::from_secs(30));
        s.port = Some(port);
        s.tls = TlsSettings {
            mode,
            accept_any_cert: false,
            ca_file: Some(lab.ca_file.clone()),
        };
        let results = run_with(&s, &test).await;
        assert_eq!(results.len(), 1);
        assert_eq!(
            results[0].outcome,
            Outcome::Passed,
            "{mode:?}: {}",
            report(&results[0])
        );
    }
}
