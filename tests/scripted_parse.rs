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
        assert!(
            std::env::var_os("CI").is_none(),
            "{} not found (CI needs ../shared beside the clone)",
            dir.display()
        );
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
        assert!(
            std::env::var_os("CI").is_none(),
            "{} not found (CI needs ../shared beside the clone)",
            dir.display()
        );
        eprintln!("skipping: {} not found", dir.display());
        return;
    }
    let tests = parse_suite(&dir);
    assert_eq!(tests.len(), 72);
}

mod fuzz {
    use std::path::{Path, PathBuf};

    use imaptest::scripted::{args, matcher, parser};
    use proptest::prelude::*;

    fn grammar_bytes() -> impl Strategy<Value = Vec<u8>> {
        let pieces = prop::sample::select(vec![
            "ok ",
            "no ",
            "bad ",
            "\"\" ",
            "tag1 ",
            "tag2 ",
            "1 ",
            "2 ",
            "* ",
            "! ",
            "? ",
            "fetch ",
            "(",
            ")",
            "$",
            "$x",
            "${y}",
            "$!unordered=2 ",
            "$!ban=a ",
            "{{{",
            "}}}",
            "~{{{",
            "{3}\r\nabc",
            "\"q\"",
            "\n",
            "\n\n",
            "state: auth\n",
            "connections: 2\n",
            "!ifenv PATH\n",
            "!else\n",
            "!endif\n",
            "!sleep 1ms\n",
            "!output $x\n",
            "nil ",
            "\0",
            "\u{e4}",
            "#c\n",
            "[a ",
            "]",
        ]);
        prop::collection::vec(pieces, 0..60).prop_map(|v| v.concat().into_bytes())
    }

    proptest! {
        #[test]
        fn parser_never_panics(data in prop_oneof![grammar_bytes(), prop::collection::vec(any::<u8>(), 0..400)]) {
            let _ = parser::parse_bytes(Path::new("t/x"), &data, PathBuf::from("m"), &|_| true);
        }

        #[test]
        fn tokenizer_and_matcher_never_panic(p in grammar_bytes(), input in grammar_bytes()) {
            let received = args::parse_lenient(&input);
            let _ = args::parse_strict(&input);
            if let Ok(pattern) = args::parse_strict(&p) {
                let mut vars = matcher::Vars::new(true);
                vars.reset_seqmap(3);
                let _ = vars.match_args(&pattern, &received, matcher::FULL, false);
                let _ = vars.match_args(&pattern, &received, matcher::FULL, true);
                let _ = vars.diagnose(&pattern, &received, false);
                let _ = vars.expand_all(&p, true);
                let _ = vars.expand_all(&p, false);
            }
        }
    }
}

#[test]
fn discovery_skips_mboxes_hidden_files_and_directories() {
    let dir = tempfile::tempdir().unwrap();
    for name in ["b", "a", "a.mbox", "default.mbox", ".hidden", "Z"] {
        std::fs::write(dir.path().join(name), "\nok noop\n").unwrap();
    }
    std::fs::create_dir(dir.path().join("broken")).unwrap();
    let (files, mbox) = imaptest::scripted::discover(dir.path()).unwrap();
    let names: Vec<_> = files
        .iter()
        .map(|f| f.file_name().unwrap().to_string_lossy().into_owned())
        .collect();
    assert_eq!(names, ["Z", "a", "b"]);
    assert_eq!(mbox, dir.path().join(DEFAULT_MBOX));
    let (files, mbox) = imaptest::scripted::discover(&dir.path().join("a")).unwrap();
    assert_eq!(files, [dir.path().join("a")]);
    assert_eq!(mbox, dir.path().join(DEFAULT_MBOX));
    // A test's own mbox wins over default.mbox.
    let t = parser::parse_file(&dir.path().join("a"), &mbox).unwrap();
    assert_eq!(t.mbox, dir.path().join("a.mbox"));
    let t = parser::parse_file(&dir.path().join("b"), &mbox).unwrap();
    assert_eq!(t.mbox, mbox);
}
