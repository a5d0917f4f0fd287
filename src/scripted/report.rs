//! Results: the console line per test, the C tool's summary and JUnit XML.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::time::Duration;

use super::parser::Test;

/// How a test ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    Passed,
    Failed,
    /// Not run; the reason (missing capabilities, no user2).
    Skipped(String),
    /// The file did not parse; the message names file and line.
    Malformed(String),
}

/// The result of one test file.
#[derive(Debug, Clone)]
pub struct TestResult {
    pub name: String,
    pub path: PathBuf,
    /// Declares `capabilities:` (counted under "extensions").
    pub extension: bool,
    pub outcome: Outcome,
    /// Failure reports in the C tool's format (`*** Test ...`).
    pub failures: Vec<String>,
    /// Known server quirks (docs/servers.md) among the failures.
    pub quirks: Vec<crate::metrics::ErrorKind>,
    /// Command groups run ("individual commands").
    pub commands_run: usize,
    /// Command groups in the file.
    pub commands_total: usize,
    pub elapsed: Duration,
}

impl TestResult {
    /// True if the test failed or did not parse.
    pub fn is_failure(&self) -> bool {
        matches!(self.outcome, Outcome::Failed | Outcome::Malformed(_))
    }

    pub fn new(test: &Test) -> Self {
        TestResult {
            name: test.name.clone(),
            path: test.path.clone(),
            extension: test.required_capabilities.is_some(),
            outcome: Outcome::Passed,
            failures: Vec::new(),
            quirks: Vec::new(),
            commands_run: 0,
            commands_total: test.groups.len(),
            elapsed: Duration::ZERO,
        }
    }

    /// A file that did not parse.
    pub fn malformed(path: &Path, message: String) -> Self {
        TestResult {
            name: path
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default(),
            path: path.to_owned(),
            extension: false,
            outcome: Outcome::Malformed(message),
            failures: Vec::new(),
            quirks: Vec::new(),
            commands_run: 0,
            commands_total: 0,
            elapsed: Duration::ZERO,
        }
    }

    pub fn add_failure(&mut self, text: String) {
        self.failures.push(text);
        self.outcome = Outcome::Failed;
    }

    /// `command 3/9 (line 12): <reason>` of the first failure, on one line.
    pub fn first_failure(&self) -> String {
        let Some(f) = self.failures.first() else {
            return String::new();
        };
        let mut lines = f.lines();
        let head = lines.next().unwrap_or_default();
        let place = head
            .split_once(" command ")
            .map(|(_, p)| format!("command {p}"))
            .or_else(|| {
                head.split_once(" initialization failed: ")
                    .map(|(_, r)| format!("initialization: {r}"))
            })
            .unwrap_or_else(|| head.to_owned());
        match lines.next().and_then(|l| l.strip_prefix(" - failed: ")) {
            Some(reason) => format!("{place}: {reason}"),
            None => place,
        }
    }

    pub fn failed(&self) -> bool {
        matches!(self.outcome, Outcome::Failed | Outcome::Malformed(_))
    }

    /// The one-line console verdict.
    pub fn line(&self) -> String {
        match &self.outcome {
            Outcome::Passed => format!(
                "pass  {} ({} commands, {:.2}s)",
                self.name,
                self.commands_run,
                self.elapsed.as_secs_f64()
            ),
            Outcome::Failed => format!(
                "FAIL  {} ({} failures in {} commands; first: {})",
                self.name,
                self.failures.len(),
                self.commands_run,
                self.first_failure()
            ),
            Outcome::Skipped(why) => format!("skip  {} ({why})", self.name),
            Outcome::Malformed(msg) => format!("FAIL  {} (malformed: {msg})", self.name),
        }
    }
}

/// Totals as the C tool prints them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Summary {
    pub tests: usize,
    pub failed: usize,
    pub skipped: usize,
    pub base_failures: usize,
    pub base_commands: usize,
    pub ext_failures: usize,
    pub ext_commands: usize,
}

impl Summary {
    pub fn from_results(results: &[TestResult]) -> Self {
        let mut s = Summary {
            tests: results.len(),
            ..Summary::default()
        };
        for r in results {
            match r.outcome {
                Outcome::Failed | Outcome::Malformed(_) => s.failed += 1,
                Outcome::Skipped(_) => s.skipped += 1,
                Outcome::Passed => {}
            }
            if r.extension {
                s.ext_failures += r.failures.len();
                s.ext_commands += r.commands_run;
            } else {
                s.base_failures += r.failures.len();
                s.base_commands += r.commands_run;
            }
        }
        s
    }

    /// The three summary lines.
    pub fn lines(&self) -> String {
        format!(
            "{} test groups: {} failed, {} skipped due to missing capabilities\n\
             base protocol: {}/{} individual commands failed\n\
             extensions: {}/{} individual commands failed",
            self.tests,
            self.failed,
            self.skipped,
            self.base_failures,
            self.base_commands,
            self.ext_failures,
            self.ext_commands
        )
    }
}

fn xml_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            '\t' | '\n' | '\r' => out.push(c),
            c if (c as u32) < 0x20 || c == '\u{fffe}' || c == '\u{ffff}' => {
                let _ = write!(out, "\\x{:02x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out
}

/// JUnit XML: one `<testsuite>` named after the test directory, a `<testcase>` per file.
pub fn junit_xml(suite: &str, results: &[TestResult]) -> String {
    let summary = Summary::from_results(results);
    let total: f64 = results.iter().map(|r| r.elapsed.as_secs_f64()).sum();
    let errors = results
        .iter()
        .filter(|r| matches!(r.outcome, Outcome::Malformed(_)))
        .count();
    let mut x = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
    let _ = writeln!(
        x,
        "<testsuites name=\"imaptest\" tests=\"{}\" failures=\"{}\" errors=\"{errors}\" skipped=\"{}\" time=\"{total:.3}\">",
        summary.tests,
        summary.failed - errors,
        summary.skipped
    );
    let _ = writeln!(
        x,
        "  <testsuite name=\"{}\" tests=\"{}\" failures=\"{}\" errors=\"{errors}\" skipped=\"{}\" time=\"{total:.3}\">",
        xml_escape(suite),
        summary.tests,
        summary.failed - errors,
        summary.skipped
    );
    for r in results {
        let _ = write!(
            x,
            "    <testcase classname=\"{}\" name=\"{}\" file=\"{}\" time=\"{:.3}\"",
            xml_escape(suite),
            xml_escape(&r.name),
            xml_escape(&r.path.display().to_string()),
            r.elapsed.as_secs_f64()
        );
        match &r.outcome {
            Outcome::Passed => x.push_str("/>\n"),
            Outcome::Skipped(why) => {
                let _ = writeln!(
                    x,
                    ">\n      <skipped message=\"{}\"/>\n    </testcase>",
                    xml_escape(why)
                );
            }
            Outcome::Failed => {
                let first = r
                    .failures
                    .first()
                    .and_then(|f| {
                        f.lines()
                            .find(|l| l.starts_with(" - failed:"))
                            .or(f.lines().next())
                    })
                    .unwrap_or("failed")
                    .trim_start_matches(" - failed: ");
                let _ = writeln!(
                    x,
                    ">\n      <failure message=\"{}\" type=\"{} failures\">{}</failure>\n    </testcase>",
                    xml_escape(first),
                    r.failures.len(),
                    xml_escape(&r.failures.join("\n\n"))
                );
            }
            Outcome::Malformed(msg) => {
                let _ = writeln!(
                    x,
                    ">\n      <error message=\"{}\" type=\"malformed test file\"/>\n    </testcase>",
                    xml_escape(msg)
                );
            }
        }
    }
    x.push_str("  </testsuite>\n</testsuites>\n");
    x
}

#[cfg(test)]
mod tests {
    use super::*;

    fn result(name: &str, outcome: Outcome, ext: bool, fails: usize, cmds: usize) -> TestResult {
        TestResult {
            name: name.into(),
            path: PathBuf::from(format!("t/{name}")),
            extension: ext,
            outcome,
            failures: (0..fails)
                .map(|i| format!("*** Test {name} command {i}/1 (line 1)\n - failed: x <y>"))
                .collect(),
            quirks: Vec::new(),
            commands_run: cmds,
            commands_total: cmds,
            elapsed: Duration::from_millis(5),
        }
    }

    #[test]
    fn summary_and_junit() {
        let rs = vec![
            result("a", Outcome::Passed, false, 0, 3),
            result("b", Outcome::Failed, true, 2, 4),
            result(
                "c",
                Outcome::Skipped("missing capabilities: X".into()),
                true,
                0,
                0,
            ),
            result(
                "d",
                Outcome::Malformed("t/d line 3: Missing ')'".into()),
                false,
                0,
                0,
            ),
        ];
        let s = Summary::from_results(&rs);
        assert_eq!(
            rs[1].line(),
            "FAIL  b (2 failures in 4 commands; first: command 0/1 (line 1): x <y>)"
        );
        assert_eq!(
            s.lines(),
            "4 test groups: 2 failed, 1 skipped due to missing capabilities\nbase protocol: 0/3 individual commands failed\nextensions: 2/4 individual commands failed"
        );
        let x = junit_xml("suite", &rs);
        assert!(x.contains("<testcase classname=\"suite\" name=\"a\""));
        assert!(x.contains("<failure message=\"x &lt;y&gt;\" type=\"2 failures\">"));
        assert!(x.contains("<skipped message=\"missing capabilities: X\"/>"));
        assert!(x.contains("<error message=\"t/d line 3: Missing &apos;)&apos;\""));
        assert!(x.contains("tests=\"4\" failures=\"1\" errors=\"1\" skipped=\"1\""));
    }
}
