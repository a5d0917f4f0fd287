//! Mutation check: in every upstream test (both suites) that runs on the lab, change
//! one number (by +1000, so that it cannot coincide with another reply, which one reply
//! may satisfy) in the first expected untagged reply that has one; the test must then
//! fail. A runner that passes everything would pass the suite too, but not this.

use std::path::PathBuf;
use std::time::Duration;

use imaptest::config::{Common, ScriptedSettings};
use imaptest::control::RunState;
use imaptest::scripted::report::Outcome;

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
    assert!(
        std::env::var_os("CI").is_none(),
        "{} not found (CI needs ../shared beside the clone)",
        dir.display()
    );
    eprintln!("skipping: {} not found", dir.display());
    None
}

/// Adds 1000 to the first plain number (not a `$` variable, not inside `{{{` blocks)
/// in the first `* ` line that has one. Returns the new text and the mutated line.
fn mutate(text: &[u8]) -> Option<(Vec<u8>, usize)> {
    let mut out = Vec::with_capacity(text.len() + 1);
    let mut done = None;
    let mut in_block = false;
    for (i, line) in text.split_inclusive(|&b| b == b'\n').enumerate() {
        let body = line.strip_suffix(b"\n").unwrap_or(line);
        if in_block {
            in_block = !body.starts_with(b"}}}");
        } else if body.ends_with(b"{{{") {
            in_block = true;
        }
        if done.is_some() || in_block || !body.starts_with(b"* ") {
            out.extend_from_slice(line);
            continue;
        }
        let s = String::from_utf8_lossy(line).into_owned();
        let mut words: Vec<String> = s.split(' ').map(str::to_owned).collect();
        let pos = words.iter().position(|w| {
            let core = w.trim_matches(|c| c == '(' || c == ')' || c == '\n');
            !core.is_empty() && core.bytes().all(|b| b.is_ascii_digit()) && core.len() < 9
        });
        match pos {
            Some(p) => {
                let w = &words[p];
                let core = w.trim_matches(|c| c == '(' || c == ')' || c == '\n');
                let n: u64 = core.parse().unwrap();
                words[p] = w.replacen(core, &(n + 1000).to_string(), 1);
                out.extend_from_slice(words.join(" ").as_bytes());
                done = Some(i + 1);
            }
            None => out.extend_from_slice(line),
        }
    }
    done.map(|l| (out, l))
}

/// Turns the expected status of the first `ok <command>` line (form 1, with or
/// without a connection number) into `no`.
fn mutate_status(text: &[u8]) -> Option<(Vec<u8>, usize)> {
    let mut out = Vec::with_capacity(text.len());
    let mut done = None;
    let mut header = true;
    for (i, line) in text.split_inclusive(|&b| b == b'\n').enumerate() {
        let body = line.strip_suffix(b"\n").unwrap_or(line);
        if body.is_empty() {
            header = false;
        }
        let s = String::from_utf8_lossy(line);
        let (conn, rest) = match s.split_once(' ') {
            Some((c, r)) if c.bytes().all(|b| b.is_ascii_digit()) && !c.is_empty() => {
                (format!("{c} "), r.to_owned())
            }
            _ => (String::new(), s.clone().into_owned()),
        };
        let lower = rest.to_ascii_lowercase();
        if done.is_none() && !header && lower.starts_with("ok ") && lower.len() > 4 {
            out.extend_from_slice(format!("{conn}no {}", &rest[3..]).as_bytes());
            done = Some(i + 1);
        } else {
            out.extend_from_slice(line);
        }
    }
    done.map(|l| (out, l))
}

#[tokio::test]
async fn every_upstream_test_with_a_wrong_status_fails() {
    check_mutants(mutate_status).await;
}

#[tokio::test]
async fn every_mutated_upstream_test_fails() {
    check_mutants(mutate).await;
}

/// A mutation: the changed file and the changed line, or `None` to leave it out.
type Mutator = fn(&[u8]) -> Option<(Vec<u8>, usize)>;

async fn check_mutants(mutate: Mutator) {
    for name in ["release-2.3", "main"] {
        if let Some(dir) = suite(name) {
            check_suite_mutants(&dir, mutate).await;
        }
    }
}

async fn check_suite_mutants(dir: &std::path::Path, mutate: Mutator) {
    let tmp = tempfile::tempdir().unwrap();
    let mut mutated = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let entry = entry.unwrap();
        if entry.path().is_dir() {
            continue;
        }
        let name = entry.file_name().into_string().unwrap();
        let data = std::fs::read(entry.path()).unwrap();
        if name.ends_with(".mbox") {
            std::fs::write(tmp.path().join(&name), data).unwrap();
        } else if let Some((text, line)) = mutate(&data) {
            std::fs::write(tmp.path().join(&name), text).unwrap();
            mutated.push((name, line));
        }
    }
    assert!(mutated.len() > 50, "only {} files mutated", mutated.len());
    let lab = common::lab();
    let mut settings = Common {
        host: lab.host.into(),
        port: Some(lab.imap_port),
        timeout: Duration::from_secs(30),
        ..Common::default()
    };
    settings.user.template = common::fresh_user();
    settings.user.password = lab.user_password.into();
    let scripted = ScriptedSettings::new(tmp.path().to_owned());
    let (_keep, running) = tokio::sync::watch::channel(RunState::Running);
    let results = imaptest::scripted::run_tests(&settings, &scripted, None, running, |_| {})
        .await
        .unwrap();
    let survivors: Vec<String> = results
        .iter()
        .filter(|r| r.outcome == Outcome::Passed)
        .map(|r| {
            let line = mutated.iter().find(|m| m.0 == r.name).map_or(0, |m| m.1);
            format!("{} (line {line})", r.name)
        })
        .collect();
    assert!(
        survivors.is_empty(),
        "mutants that still pass: {survivors:?}"
    );
}
