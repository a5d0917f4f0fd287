//! The per-session CSV of profile mode (`session_csv=FILE`): one row per client session,
//! written (and flushed) when the session ends, so a killed run keeps every finished one.
//!
//! Columns: `user`, `population`, `client`, `protocol` (`imap`/`pop3`), `start_unix_ms`,
//! `end_unix_ms` (Unix time in milliseconds), `duration_ms`, `commands`, `bytes_in`, `bytes_out`,
//! `errors` (commands refused or failed, and errors reported on the session).

use std::fs::File;
use std::io::Write;
use std::path::Path;
use std::time::{SystemTime, UNIX_EPOCH};

use anyhow::Context;

use crate::metrics::{Interval, Report, SessionRecord, Sink};

/// The header row, in column order.
pub const HEADER: [&str; 11] = [
    "user",
    "population",
    "client",
    "protocol",
    "start_unix_ms",
    "end_unix_ms",
    "duration_ms",
    "commands",
    "bytes_in",
    "bytes_out",
    "errors",
];

/// Writes one CSV row per finished session.
pub struct SessionCsv<W: Write + Send> {
    out: csv::Writer<W>,
    name: String,
    failure: Option<String>,
}

impl SessionCsv<File> {
    /// Creates (or truncates) `path` and writes the header row.
    pub fn create(path: &Path) -> anyhow::Result<Self> {
        let file =
            File::create(path).with_context(|| format!("cannot create {}", path.display()))?;
        Self::new(file, path.display().to_string())
    }
}

impl<W: Write + Send> SessionCsv<W> {
    pub fn new(out: W, name: String) -> anyhow::Result<Self> {
        let mut out = csv::Writer::from_writer(out);
        out.write_record(HEADER)
            .and_then(|()| out.flush().map_err(Into::into))
            .with_context(|| format!("cannot write {name}"))?;
        Ok(SessionCsv {
            out,
            name,
            failure: None,
        })
    }

    /// The underlying writer (tests read back what was written).
    pub fn get_ref(&self) -> &W {
        self.out.get_ref()
    }
}

fn unix_ms(t: SystemTime) -> u128 {
    t.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis())
}

impl<W: Write + Send> Sink for SessionCsv<W> {
    fn interval(&mut self, _interval: &Interval) {}

    fn report(&mut self, _report: &Report) {}

    fn failure(&self) -> Option<String> {
        self.failure.clone()
    }

    fn finish(&mut self, _totals: &Interval) {
        let _ = self.out.flush();
    }

    fn session(&mut self, s: &SessionRecord) {
        if self.failure.is_some() {
            return;
        }
        let (start, end) = (unix_ms(s.start), unix_ms(s.end));
        let row = [
            s.user.clone(),
            s.population.clone(),
            s.client.clone(),
            s.protocol.to_owned(),
            start.to_string(),
            end.to_string(),
            end.saturating_sub(start).to_string(),
            s.commands.to_string(),
            s.bytes_in.to_string(),
            s.bytes_out.to_string(),
            s.errors.to_string(),
        ];
        let result = self
            .out
            .write_record(&row)
            .and_then(|()| self.out.flush().map_err(Into::into));
        if let Err(e) = result {
            let failure = format!("session_csv: cannot write {}: {e}", self.name);
            eprintln!("Error: {failure}; no more rows are written");
            self.failure = Some(failure);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn one_row_per_session_with_duration() {
        let mut sink = SessionCsv::new(Vec::new(), "mem".into()).unwrap();
        let start = UNIX_EPOCH + Duration::from_millis(1_700_000_000_000);
        sink.session(&SessionRecord {
            user: "testuser1".into(),
            population: "office".into(),
            client: "thunderbird, v2".into(),
            protocol: "imap",
            start,
            end: start + Duration::from_millis(1500),
            commands: 12,
            bytes_in: 3400,
            bytes_out: 560,
            errors: 1,
        });
        let text = String::from_utf8(sink.get_ref().clone()).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines[0], HEADER.join(","));
        assert_eq!(
            lines[1],
            "testuser1,office,\"thunderbird, v2\",imap,1700000000000,1700000001500,1500,12,3400,560,1"
        );
    }
}
