//! Every upstream test file parses, and the group counts match the C tool's totals.

use std::path::{Path, PathBuf};

use imaptest::scripted::parser::{self, DEFAULT_MBOX};

/// `../shared/imaptest-suite/<name>` next to the repository, or under
/// `$IMAPTEST_SUITE_DIR` when set (for checkouts that live elsewhere).
fn suite(name: &str) -> PathBuf {
    match std::env::var_os("IMAPTEST_SUITE_DIR") {
        Some(dir) => PathBuf::from(dir).join(name),
        None => Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../shared/imaptest-suite")
            .join(name),
    }
}

fn parse_suite(dir: &Path) -> Vec<parser::Test> {
    let mut names: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter(|n| !n.starts_with('.') && !n.ends_with(".mbox"))
        .collect();
    names.sort();
    names
        .iter()
        .filter(|n| !dir.join(n).is_dir())
        .map(|n| {
            parser::parse_file(&dir.join(n), &dir.join(DEFAULT_MBOX))
                .unwrap_or_else(|e| panic!("{e}"))
        })
        .collect()
}

#[test]
fn release_2_3_suite_parses() {
    let dir = suite("release-2.3");
    if !dir.exists() {
        eprintln!("skipping: {} not found", dir.display());
        return;
    }
    let tests = parse_suite(&dir);
    assert_eq!(tests.len(), 71);
    let base: usize = tests
        .iter()
        .filter(|t| t.required_capabilities.is_none())
        .map(|t| t.groups.len())
        .sum();
    let ext: usize = tests
        .iter()
        .filter(|t| t.required_capabilities.is_some())
        .map(|t| t.groups.len())
        .sum();
    eprintln!("base {base} ext {ext}");
    for t in &tests {
        eprintln!(
            "{} {} {:?}",
            t.name,
            t.groups.len(),
            t.required_capabilities
        );
    }
    assert_eq!(base, 457);
}

#[test]
fn main_suite_parses() {
    let dir = suite("main");
    if !dir.exists() {
        eprintln!("skipping: {} not found", dir.display());
        return;
    }
    let tests = parse_suite(&dir);
    assert_eq!(tests.len(), 72);
}
