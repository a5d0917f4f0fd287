//! Stable-toolchain fuzzing of the input parsers: TOML profiles, legacy `profile.conf`,
//! scripted-test files and conversation scripts (the targets are in
//! `support/parser_fuzz.rs`, shared with the cargo-fuzz targets in `fuzz/`).
//!
//! Each target starts from the repository's own files of its kind and mutates them
//! (byte flips, insertions of tokens the grammars care about, deletions,
//! duplications, splices, truncations) for a fixed number of iterations from a fixed
//! seed, so a run is reproducible. A panic or a too-slow input fails the test and
//! writes the input to `target/fuzz-failures/`.
//!
//! `IMAPTEST_FUZZ_ITERATIONS` (default 2000 per target) and `IMAPTEST_FUZZ_SEED`
//! (default 1) change the amount and the inputs.

#[path = "support/parser_fuzz.rs"]
mod parser_fuzz;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use rand::{RngExt, SeedableRng};
use rand_xoshiro::Xoshiro256PlusPlus;

/// An input that takes longer than this is a failure (a parser must be about linear).
const SLOW: Duration = Duration::from_secs(2);

/// Tokens the grammars give meaning to: inserted whole, they reach deeper than bytes.
const TOKENS: &[&str] = &[
    "\n",
    "\r\n",
    "\r",
    " ",
    "\t",
    "=",
    "[",
    "]",
    "[[",
    "]]",
    "{",
    "}",
    "{{{",
    "}}}",
    "~{{{",
    "\"",
    "'",
    "\\",
    "#",
    "%",
    "%d",
    "%{username_idx}",
    "$",
    "${",
    "$1",
    "(",
    ")",
    "((((((((",
    ",",
    ":",
    ";",
    "*",
    "+",
    "-",
    ".",
    "!ifenv",
    "!endif",
    "!sleep",
    "!output",
    "ok",
    "no",
    "bad",
    "* ",
    "<<<",
    ">>>",
    "???",
    "+++",
    "<",
    ">",
    "*fill",
    "*drip",
    "*eof",
    "*sleep",
    "starttls",
    "stoptls",
    "connections:",
    "state:",
    "messages:",
    "capabilities:",
    "user ",
    "client ",
    "{ dist = \"exponential\", mean = \"1us\" }",
    "dist",
    "mean",
    "\"1us\"",
    "\"999999999h\"",
    "0",
    "-1",
    "4294967295",
    "4294967296",
    "18446744073709551616",
    "99999999999999999999999",
    "1e308",
    "nan",
    "inf",
    "-0.0",
    "0.000000001",
    "true",
    "false",
    "é",
    "\u{0}",
    "\u{1b}",
    "\u{feff}",
    "count = 100%",
    "= 4000000000",
    "total_users = ",
    "share = ",
    "connections = ",
    "duration = ",
    "time_compression = ",
];

fn iterations() -> usize {
    std::env::var("IMAPTEST_FUZZ_ITERATIONS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(2000)
}

fn seed() -> u64 {
    std::env::var("IMAPTEST_FUZZ_SEED")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1)
}

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The files of `dir` (recursively) that `keep` accepts.
fn files(dir: &Path, keep: &dyn Fn(&Path) -> bool) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    let Ok(entries) = std::fs::read_dir(dir) else {
        return out;
    };
    let mut paths: Vec<PathBuf> = entries.filter_map(|e| e.ok().map(|e| e.path())).collect();
    paths.sort();
    for path in paths {
        if path.is_dir() {
            out.extend(files(&path, keep));
        } else if keep(&path)
            && let Ok(bytes) = std::fs::read(&path)
        {
            out.push(bytes);
        }
    }
    out
}

fn ext(path: &Path, e: &str) -> bool {
    path.extension().is_some_and(|x| x == e)
}

/// One mutation of `input`, using `others` for splices.
fn mutate(rng: &mut Xoshiro256PlusPlus, input: &mut Vec<u8>, others: &[Vec<u8>]) {
    let len = input.len();
    let at = |rng: &mut Xoshiro256PlusPlus| rng.random_range(0..=len);
    match rng.random_range(0..8u32) {
        0 if len > 0 => {
            let i = rng.random_range(0..len);
            input[i] ^= 1 << rng.random_range(0..8u32);
        }
        1 => {
            let i = at(rng);
            input.insert(i, rng.random());
        }
        2 | 3 => {
            let i = at(rng);
            let token = TOKENS[rng.random_range(0..TOKENS.len())].as_bytes();
            input.splice(i..i, token.iter().copied());
        }
        4 if len > 0 => {
            let a = rng.random_range(0..len);
            let b = (a + rng.random_range(1..=64usize)).min(len);
            input.drain(a..b);
        }
        5 if len > 0 => {
            let a = rng.random_range(0..len);
            let b = (a + rng.random_range(1..=256usize)).min(len);
            let piece = input[a..b].to_vec();
            let i = at(rng);
            input.splice(i..i, piece);
        }
        6 if !others.is_empty() => {
            let other = &others[rng.random_range(0..others.len())];
            if !other.is_empty() {
                let a = rng.random_range(0..other.len());
                let b = (a + rng.random_range(1..=512usize)).min(other.len());
                let i = at(rng);
                input.splice(i..i, other[a..b].iter().copied());
            }
        }
        _ if len > 0 => input.truncate(rng.random_range(0..len)),
        _ => input.extend_from_slice(TOKENS[rng.random_range(0..TOKENS.len())].as_bytes()),
    }
}

/// Runs `target` on the seeds as they are, then on `iterations()` mutants.
fn fuzz(name: &str, seeds: Vec<Vec<u8>>, target: fn(&[u8]) -> bool) {
    assert!(!seeds.is_empty(), "{name}: no seed files found");
    let mut rng = Xoshiro256PlusPlus::seed_from_u64(seed() ^ fnv(name));
    let started = Instant::now();
    let n = iterations();
    let mut accepted = 0usize;
    let mut run = |input: &[u8], i: usize| {
        let t = Instant::now();
        match std::panic::catch_unwind(|| target(input)) {
            Ok(ok) => accepted += usize::from(ok),
            Err(_) => panic!(
                "{name}: input {i} made the parser fail: {}",
                save(name, i, input)
            ),
        }
        assert!(
            t.elapsed() < SLOW,
            "{name}: input {i} took {:?}: {}",
            t.elapsed(),
            save(name, i, input)
        );
    };
    for (i, s) in seeds.iter().enumerate() {
        run(s, i);
    }
    for i in 0..n {
        let mut input = seeds[rng.random_range(0..seeds.len())].clone();
        for _ in 0..rng.random_range(1..=8u32) {
            mutate(&mut rng, &mut input, &seeds);
        }
        run(&input, seeds.len() + i);
    }
    println!(
        "fuzz {name}: {} seeds + {n} mutants in {:.1} s, {accepted} accepted",
        seeds.len(),
        started.elapsed().as_secs_f64()
    );
}

fn fnv(s: &str) -> u64 {
    s.bytes().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3)
    })
}

fn save(name: &str, i: usize, input: &[u8]) -> String {
    let dir = root().join("target/fuzz-failures");
    let _ = std::fs::create_dir_all(&dir);
    let path = dir.join(format!("{name}-{i}"));
    let _ = std::fs::write(&path, input);
    format!("saved to {}", path.display())
}

#[test]
fn profile_toml() {
    let seeds = files(&root().join("profiles"), &|p| ext(p, "toml"));
    fuzz("profile_toml", seeds, parser_fuzz::profile_toml);
}

#[test]
fn legacy_profile() {
    let seeds = files(&root().join("examples/legacy"), &|p| ext(p, "conf"));
    fuzz("legacy_profile", seeds, parser_fuzz::legacy_profile);
}

#[test]
fn scripted_test() {
    let seeds = files(&root().join("tests/scripts"), &|p| {
        !ext(p, "mbox") && !ext(p, "md")
    });
    fuzz("scripted_test", seeds, parser_fuzz::scripted_test);
}

#[test]
fn conversation_client() {
    let seeds = files(&root().join("examples/conversations"), &|p| {
        ext(p, "client")
    });
    fuzz(
        "conversation_client",
        seeds,
        parser_fuzz::conversation_client,
    );
}

#[test]
fn conversation_server() {
    let seeds = files(&root().join("examples/conversations"), &|p| {
        ext(p, "server")
    });
    fuzz(
        "conversation_server",
        seeds,
        parser_fuzz::conversation_server,
    );
}
