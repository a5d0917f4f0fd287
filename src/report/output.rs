//! The legacy `output=FILE` sink, compatible with the C tool's results file.
//!
//! The first line names three tab-separated columns per visible state,
//! `<NAME> count`, `<NAME> replies` and `<NAME> msecs`; then every second one line of
//! three tab-separated integers per visible state: events this second, timed replies,
//! and their summed latency in milliseconds. The C tool's header named only two columns
//! per state (`count`, `msecs`) while its rows had three; the header here matches the
//! rows. The file is created with mode 0600, like the C tool's.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::Path;

use anyhow::Context;

use crate::metrics::{Interval, Report, Sink};
use crate::states::State;

/// Writes the C tool's per-second results file.
pub struct ResultsFile<W: Write + Send> {
    out: W,
    name: String,
    columns: Vec<State>,
    failure: Option<String>,
}

impl ResultsFile<File> {
    /// Creates (or truncates) `path` with mode 0600 and writes the header line.
    pub fn create(path: &Path, columns: Vec<State>) -> anyhow::Result<Self> {
        let mut options = OpenOptions::new();
        options.write(true).create(true).truncate(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt;
            options.mode(0o600);
        }
        let file = options
            .open(path)
            .with_context(|| format!("cannot create {}", path.display()))?;
        // The mode above applies only to a new file; the output guard may have created
        // it already (empty) when it checked the path was writable.
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            file.set_permissions(std::fs::Permissions::from_mode(0o600))
                .with_context(|| format!("cannot make {} private", path.display()))?;
        }
        Self::new(file, path.display().to_string(), columns)
    }
}

impl<W: Write + Send> ResultsFile<W> {
    /// A results file on `out` for `columns`; the header line is written at once.
    pub fn new(out: W, name: String, columns: Vec<State>) -> anyhow::Result<Self> {
        let mut sink = ResultsFile {
            out,
            name,
            columns,
            failure: None,
        };
        let header = header(&sink.columns);
        sink.out
            .write_all(header.as_bytes())
            .and_then(|()| sink.out.flush())
            .with_context(|| format!("cannot write {}", sink.name))?;
        Ok(sink)
    }

    /// The underlying writer (tests read back what was written).
    pub fn get_ref(&self) -> &W {
        &self.out
    }
}

/// `LOGIN count\tLOGIN replies\tLOGIN msecs\t…\n`
pub fn header(columns: &[State]) -> String {
    let mut fields = Vec::with_capacity(columns.len() * 3);
    for s in columns {
        for what in ["count", "replies", "msecs"] {
            fields.push(format!("{} {what}", s.name()));
        }
    }
    let mut line = fields.join("\t");
    line.push('\n');
    line
}

/// One second's line: events, timed replies and summed milliseconds per column.
pub fn line(columns: &[State], interval: &Interval) -> String {
    let mut fields = Vec::with_capacity(columns.len() * 3);
    for &s in columns {
        let f = interval.column(s);
        fields.push(f.count.to_string());
        fields.push(f.timed.to_string());
        fields.push((f.sum_us / 1000).to_string());
    }
    let mut line = fields.join("\t");
    line.push('\n');
    line
}

impl<W: Write + Send> Sink for ResultsFile<W> {
    fn interval(&mut self, interval: &Interval) {
        if self.failure.is_some() {
            return;
        }
        let line = line(&self.columns, interval);
        if let Err(e) = self
            .out
            .write_all(line.as_bytes())
            .and_then(|()| self.out.flush())
        {
            let failure = format!("output: cannot write {}: {e}", self.name);
            eprintln!("Error: {failure}; no more lines are written");
            self.failure = Some(failure);
        }
    }

    fn report(&mut self, _report: &Report) {}

    fn failure(&self) -> Option<String> {
        self.failure.clone()
    }

    fn finish(&mut self, _totals: &Interval) {}
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metrics::{Event, Outcome};
    use crate::ops::Op;
    use std::time::{Duration, Instant};

    #[test]
    fn header_has_three_columns_per_state_and_rows_match() {
        let columns = vec![State::Login, State::Fetch2, State::Logout];
        let mut sink = ResultsFile::new(Vec::new(), "mem".into(), columns).unwrap();
        let mut iv = Interval::new();
        let now = Instant::now();
        for (outcome, ms) in [(Outcome::Ok, 3), (Outcome::Ok, 4), (Outcome::No, 5)] {
            iv.record(&Event::Command {
                op: Op::Imap(State::Login),
                outcome,
                intended: now,
                started: now,
                finished: now + Duration::from_millis(ms),
            });
        }
        sink.interval(&iv);
        sink.interval(&Interval::new());
        let text = String::from_utf8(sink.get_ref().clone()).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(
            lines[0],
            "LOGIN count\tLOGIN replies\tLOGIN msecs\tFETCH2 count\tFETCH2 replies\t\
             FETCH2 msecs\tLOGOUT count\tLOGOUT replies\tLOGOUT msecs"
        );
        assert_eq!(lines[1], "2\t3\t12\t0\t0\t0\t0\t0\t0");
        assert_eq!(lines[2], "0\t0\t0\t0\t0\t0\t0\t0\t0");
        assert_eq!(lines.len(), 3);
    }
}
