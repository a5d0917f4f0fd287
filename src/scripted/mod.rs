//! Scripted tests (`test=DIR` or `test=FILE`): ImapTest's test-file grammar, run
//! against a server with the C tool's verdicts.
//!
//! * [`parser`]: test files (header, the three command forms, untagged expectations,
//!   `{{{` literals, `!ifenv`/`!sleep`/`!output` directives) into [`parser::Test`].
//! * [`args`]: the IMAP tokenizer used for expected and received data alike.
//! * [`matcher`]: variables, `$` wildcards, relative sequences and list directives.
//! * [`runner`]: connections, setup for `state:`, command groups and checks.
//! * [`report`]: per-test lines, the summary and JUnit XML.
//! * [`mbox`]: the messages setup and `append` commands use.
//!
//! Output: a line per test on stdout (`pass`, `FAIL`, `skip`), failure reports in the
//! C tool's format on stderr (`*** Test <name> command <g>/<n> (line <l>)`, the
//! reason, the element that differed, the command), then the C tool's three summary
//! lines. Exit status 2 if any test failed.
//!
//! Tests run one after another, as the C tool runs them: they share the user and the
//! test mailbox, so running them in parallel would make them clobber each other.
//! Each test logs in as one user (picked from `user=`/`userfile=`), shared by its
//! connections unless a `user N:` header says otherwise.
//!
//! Behaviour kept from the C tool because verdicts depend on it:
//! * values compare as C strings: a NUL byte in a `~{n}` literal ends the value;
//! * an unset variable in a command fails it, and the command is still sent as far
//!   as it was expanded;
//! * a tagged BAD that the script did not expect (`bad`) ends the test, as does
//!   server input the mailbox view rejects (message count dropping, EXPUNGE out of
//!   range, a UID changing for a sequence): the C tool drops the connection;
//! * a failure does not stop the test; later groups still run and count.
//!
//! Compatibility between the two upstream suites (both run unchanged):
//! * in multi-connection tests a deferred tagged reply may omit the connection
//!   number (the release-2.3 suite does); when given it must match;
//! * the `$modseqN` ordering rule applies only to tests whose `$modseqN` names
//!   appear in increasing order (see [`parser::modseq_rule_applies`]);
//! * greeting checks, `$]` and `${case:...}` (newer tool only) are always available.
//!
//! Differences on purpose: a malformed file is reported (`Error: <path> line <n>:
//! <what>`) and counted as a failed test while the other files still run (the C tool
//! stops); unknown `!directives` and a greeting check after the first group are
//! parse errors; the per-command timeout is `timeout=` (30 s by default).

pub mod args;
pub mod matcher;
pub mod mbox;
pub mod parser;
pub mod report;
pub mod runner;

use std::path::{Path, PathBuf};

use anyhow::Context;

use rand::SeedableRng;
use rand_xoshiro::Xoshiro256PlusPlus;

use crate::config::{Common, Mech, ScriptedSettings};
use crate::control::{RunState, stopped};
use crate::imap::client::{ClientOptions, LoginRequest, start_up_login};
use crate::metrics::Metrics;
use crate::net::Endpoint;
use crate::sasl::ScramCache;
use crate::users::UserPicker;
use parser::DEFAULT_MBOX;
pub use report::{Outcome, Summary, TestResult};
use runner::{RunContext, TestRun};

/// Test files named by `test=`: a directory's entries (not hidden, not `*.mbox`, not
/// sub-directories) in byte order, or the one file. Also returns the default mbox.
pub fn discover(path: &Path) -> anyhow::Result<(Vec<PathBuf>, PathBuf)> {
    let meta = std::fs::metadata(path).with_context(|| format!("stat({})", path.display()))?;
    if !meta.is_dir() {
        let dir = path.parent().unwrap_or(Path::new(""));
        return Ok((vec![path.to_owned()], dir.join(DEFAULT_MBOX)));
    }
    let mut names = Vec::new();
    for entry in std::fs::read_dir(path).with_context(|| format!("opendir({})", path.display()))? {
        let entry = entry.with_context(|| format!("readdir({})", path.display()))?;
        let name = entry.file_name();
        let bytes = name.as_encoded_bytes();
        if bytes.starts_with(b".") || bytes.ends_with(b".mbox") {
            continue;
        }
        if entry.path().is_dir() {
            continue;
        }
        names.push(name);
    }
    names.sort_by(|a, b| a.as_encoded_bytes().cmp(b.as_encoded_bytes()));
    let files = names.into_iter().map(|n| path.join(n)).collect();
    Ok((files, path.join(DEFAULT_MBOX)))
}

/// Runs every test under `scripted.path` and returns the results. `on_result` sees
/// each result as its test finishes (the edge prints it); `metrics`, when given, gets
/// every command's reply time; once `stop` leaves `Running`, no further test starts,
/// and [`RunState::StopNow`] drops the test under way. A login with the first user
/// comes first: a wrong password is one error, not a failed first test.
pub async fn run_tests(
    common: &Common,
    scripted: &ScriptedSettings,
    metrics: Option<&Metrics>,
    mut stop: tokio::sync::watch::Receiver<RunState>,
    mut on_result: impl FnMut(&TestResult),
) -> anyhow::Result<Vec<TestResult>> {
    let test_path = scripted.path.as_path();
    let users = UserPicker::from_settings(&common.user)?;
    let mut rng = match common.seed {
        Some(seed) => Xoshiro256PlusPlus::seed_from_u64(seed),
        None => Xoshiro256PlusPlus::from_rng(&mut rand::rng()),
    };
    let (files, default_mbox) = discover(test_path)?;
    let endpoint = Endpoint::resolve(
        &common.host,
        common.connect_host(),
        common.imap_port(),
        &common.tls,
        common.timeout,
    )
    .await
    .context("cannot prepare the server endpoint")?;
    // A wrong password or an unreachable server is one clear error, not a failed
    // first test.
    let first = users.user_by_index(0);
    let login = LoginRequest {
        user: &first.name,
        password: &first.password,
        mech: Mech::Command,
        master: None,
        scram_cache: &ScramCache::default(),
    };
    let options = ClientOptions {
        timeout: common.timeout,
        ..ClientOptions::default()
    };
    let check = start_up_login(&endpoint, &options, &login);
    tokio::select! {
        result = check => {
            let _ = result?.logout().await;
        }
        () = stopped(&mut stop, RunState::LogoutAndStop) => return Ok(Vec::new()),
    }
    let mut ctx = RunContext {
        common,
        scripted,
        metrics,
        endpoint: &endpoint,
        next_conn_id: 1,
    };
    let mut results: Vec<TestResult> = Vec::with_capacity(files.len());
    for file in &files {
        // Asked to stop: the tests so far are the result.
        if *stop.borrow() != RunState::Running {
            break;
        }
        let result = match parser::parse_file(file, &default_mbox) {
            Err(e) => TestResult::malformed(file, e.to_string()),
            Ok(test) => {
                // One user per test, shared by its connections (they must see the
                // same mailbox); `user N:` headers override it per connection.
                let user = users.pick(&mut rng);
                let run = TestRun::new(&mut ctx, &test, user).run();
                tokio::select! {
                    result = run => result,
                    () = stopped(&mut stop, RunState::StopNow) => break,
                }
            }
        };
        on_result(&result);
        results.push(result);
    }
    Ok(results)
}
