//! The CSV timeline sink (`csv=FILE`): one RFC 4180 file, one header row, then for every
//! second one row per command state that had any activity, one row per kind of error
//! reported, and one connections row.
//!
//! Columns (the same header for every row; columns a row kind doesn't use are empty):
//!
//! | column | `command` rows | `connections` rows | `error` rows |
//! |---|---|---|---|
//! | `unix_time` | wall-clock end of the second, whole seconds since the epoch | same | same |
//! | `elapsed_s` | seconds since the run started (1, 2, …; the last may be partial) | same | same |
//! | `kind` | `command` | `connections` | `error` |
//! | `command` | state name (`LOGIN`, `FETCH2`, …) | empty | error kind (`uid-changed`, `command-failed`, …) |
//! | `count` | events, as in the console columns | empty | errors of that kind this second |
//! | `ok`, `no`, `bad` | tagged replies by status | empty | empty |
//! | `failed` | commands without a tagged reply | empty | empty |
//! | `errors` | same as `failed` (error reports are not attributed to commands) | error reports this second | empty |
//! | `avg_us`, `p50_us`, `p90_us`, `p99_us`, `max_us` | reply latency of timed commands; empty if none | empty | empty |
//! | `active`, `open` | empty | connections past the greeting / open, at the end of the second | empty |
//! | `connects`, `disconnects` | empty | this second | empty |
//! | `users` | empty | profile mode: users with a session open | empty |
//! | `queued`, `late` | empty | empty | empty |
//!
//! `error` rows count error reports by the check that found them (see
//! [`ErrorKind`](crate::metrics::ErrorKind) for the kinds): one row per kind that occurred
//! in the second, most frequent first, before the connections row. A second's `error`
//! counts add up to its connections row's `errors`; summed over the file they give the
//! `Errors by kind` line after the console's `Totals`.
//!
//! Profile mode (`imaptest profile=…`) adds two rows per second:
//!
//! | column | `deliveries` rows | `actions` rows |
//! |---|---|---|
//! | `count` | LMTP deliveries the schedule offered | scheduled actions handed over |
//! | `ok`, `no`, `failed` | accepted, refused (4xx/5xx), no answer | empty |
//! | `errors` | same as `failed` | empty |
//! | latency columns | end-to-end delivery latency: LMTP transaction started → message seen by the user's client | lateness: handed over after the planned time |
//! | `queued` | deliveries waiting for a free LMTP slot at the end of the second | empty |
//! | `late` | deliveries finished this second that had to wait for a slot | empty |
//!
//! Command states with no activity in a second (no count and nothing timed) get no row,
//! which keeps files small; the connections row is written every second, so a second is
//! complete when its connections row is there and `elapsed_s` never skips. Summing
//! `count` per command over the file gives the console's `Totals` line.
//!
//! Each second's rows are written to the file with one `write` and flushed, so a run that
//! is killed keeps every completed second.

use std::fs::File;
use std::io::Write;
use std::path::Path;
use std::time::UNIX_EPOCH;

use anyhow::Context;

use crate::metrics::{Interval, Latency, Report, Sink};
use crate::states::State;

/// The header row, in column order.
pub const HEADER: [&str; 22] = [
    "unix_time",
    "elapsed_s",
    "kind",
    "command",
    "count",
    "ok",
    "no",
    "bad",
    "failed",
    "errors",
    "avg_us",
    "p50_us",
    "p90_us",
    "p99_us",
    "max_us",
    "active",
    "open",
    "connects",
    "disconnects",
    "users",
    "queued",
    "late",
];

/// Writes the CSV timeline to any writer (a file for `csv=`).
pub struct CsvTimeline<W: Write + Send> {
    out: W,
    /// Where the rows go, for error messages.
    name: String,
    /// One second's rows, written to `out` in one go.
    buf: Vec<u8>,
    /// Set after the first write error: the error is printed once, then rows are dropped.
    failed: bool,
    /// Profile mode: write `deliveries` and `actions` rows and the `users` column.
    profile: bool,
}

impl CsvTimeline<File> {
    /// Creates (or truncates) `path` and writes the header row.
    pub fn create(path: &Path) -> anyhow::Result<Self> {
        let file =
            File::create(path).with_context(|| format!("cannot create {}", path.display()))?;
        Self::new(file, path.display().to_string())
    }
}

impl<W: Write + Send> CsvTimeline<W> {
    /// A timeline on `out`; the header row is written (and flushed) at once.
    pub fn new(out: W, name: String) -> anyhow::Result<Self> {
        let mut sink = CsvTimeline {
            out,
            name,
            buf: Vec::with_capacity(8 * 1024),
            failed: false,
            profile: false,
        };
        {
            let mut w = csv::Writer::from_writer(&mut sink.buf);
            w.write_record(HEADER)?;
            w.flush()?;
        }
        sink.commit()
            .with_context(|| format!("cannot write {}", sink.name))?;
        Ok(sink)
    }

    /// Adds profile mode's rows (`deliveries`, `actions`) and `users` column.
    pub fn with_profile_rows(mut self) -> Self {
        self.profile = true;
        self
    }

    /// The underlying writer (tests read back what was written).
    pub fn get_ref(&self) -> &W {
        &self.out
    }

    /// Writes the buffered rows with one `write_all` and flushes.
    fn commit(&mut self) -> std::io::Result<()> {
        let result = self
            .out
            .write_all(&self.buf)
            .and_then(|()| self.out.flush());
        self.buf.clear();
        result
    }

    fn rows(&mut self, interval: &Interval) -> csv::Result<()> {
        let unix_time = interval
            .at
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs())
            .to_string();
        let elapsed = interval.elapsed_secs.to_string();
        let mut w = csv::Writer::from_writer(&mut self.buf);
        for state in State::all() {
            let f = interval.state(state);
            if f.count == 0 && f.timed() == 0 {
                continue;
            }
            let mut row: Vec<String> = Vec::with_capacity(HEADER.len());
            row.extend([
                unix_time.clone(),
                elapsed.clone(),
                "command".to_owned(),
                state.name().to_owned(),
            ]);
            row.extend([f.count, f.ok, f.no, f.bad, f.failed, f.failed].map(|n| n.to_string()));
            row.extend(latency_columns(&f.latency));
            row.extend(std::iter::repeat_n(String::new(), 7));
            w.write_record(&row)?;
        }
        for (kind, count) in interval.error_kinds_seen() {
            let mut row: Vec<String> = Vec::with_capacity(HEADER.len());
            row.extend([
                unix_time.clone(),
                elapsed.clone(),
                "error".to_owned(),
                kind.name().to_owned(),
                count.to_string(),
            ]);
            row.resize(HEADER.len(), String::new());
            w.write_record(&row)?;
        }
        let mut row: Vec<String> =
            vec![unix_time.clone(), elapsed.clone(), "connections".to_owned()];
        row.extend(std::iter::repeat_n(String::new(), 6));
        row.push(interval.errors.to_string());
        row.extend(std::iter::repeat_n(String::new(), 5));
        row.extend(
            [
                interval.active,
                interval.open,
                interval.connects,
                interval.disconnects,
            ]
            .map(|n| n.to_string()),
        );
        row.push(if self.profile {
            interval.users.to_string()
        } else {
            String::new()
        });
        row.extend(std::iter::repeat_n(String::new(), 2));
        w.write_record(&row)?;
        if self.profile {
            let d = &interval.deliveries;
            let mut row: Vec<String> = vec![
                unix_time.clone(),
                elapsed.clone(),
                "deliveries".to_owned(),
                String::new(),
            ];
            row.extend([d.offered, d.delivered, d.refused].map(|n| n.to_string()));
            row.push(String::new());
            row.extend([d.failed, d.failed].map(|n| n.to_string()));
            row.extend(latency_columns(&d.seen));
            row.extend(std::iter::repeat_n(String::new(), 5));
            row.extend([interval.queued, d.late].map(|n| n.to_string()));
            w.write_record(&row)?;
            let mut row: Vec<String> =
                vec![unix_time, elapsed, "actions".to_owned(), String::new()];
            row.push(d.lateness.count.to_string());
            row.extend(std::iter::repeat_n(String::new(), 5));
            row.extend(latency_columns(&d.lateness));
            row.extend(std::iter::repeat_n(String::new(), 7));
            w.write_record(&row)?;
        }
        w.flush()?;
        Ok(())
    }

    fn write_interval(&mut self, interval: &Interval) {
        if self.failed {
            return;
        }
        let result = match self.rows(interval) {
            Ok(()) => self.commit(),
            Err(e) => Err(std::io::Error::other(e)),
        };
        if let Err(e) = result {
            self.failed = true;
            eprintln!(
                "Error: csv: cannot write {}: {e}; no more rows are written",
                self.name
            );
        }
    }
}

/// `avg_us`, `p50_us`, `p90_us`, `p99_us`, `max_us`; empty when nothing was recorded.
fn latency_columns(l: &Latency) -> [String; 5] {
    if l.count == 0 {
        return Default::default();
    }
    [
        l.avg_us().to_string(),
        l.at(0.5).to_string(),
        l.at(0.9).to_string(),
        l.at(0.99).to_string(),
        l.max().to_string(),
    ]
}

impl<W: Write + Send> Sink for CsvTimeline<W> {
    fn interval(&mut self, interval: &Interval) {
        self.write_interval(interval);
    }

    fn report(&mut self, _report: &Report) {}

    fn finish(&mut self, _totals: &Interval) {
        if !self.failed {
            let _ = self.out.flush();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metrics::{ErrorKind, Event, Outcome, Severity};
    use std::time::{Duration, Instant};

    fn command(iv: &mut Interval, state: State, outcome: Outcome, ms: u64) {
        let now = Instant::now();
        iv.record(&Event::Command {
            state,
            outcome,
            intended: now,
            started: now,
            finished: now + Duration::from_millis(ms),
        });
    }

    fn text(sink: &CsvTimeline<Vec<u8>>) -> String {
        String::from_utf8(sink.get_ref().clone()).unwrap()
    }

    #[test]
    fn header_only_when_nothing_ran() {
        let sink = CsvTimeline::new(Vec::new(), "mem".into()).unwrap();
        assert_eq!(text(&sink), format!("{}\n", HEADER.join(",")));
    }

    #[test]
    fn rows_for_active_states_and_connections() {
        let mut sink = CsvTimeline::new(Vec::new(), "mem".into()).unwrap();
        let mut iv = Interval::new();
        iv.elapsed_secs = 1;
        iv.at = UNIX_EPOCH + Duration::from_secs(1_700_000_000);
        command(&mut iv, State::Login, Outcome::Ok, 2);
        command(&mut iv, State::Login, Outcome::No, 4);
        iv.record(&Event::Count {
            state: State::Delay,
        });
        iv.record(&Event::Connected);
        iv.record(&Event::Report(Report {
            severity: Severity::Error,
            user: None,
            connection: None,
            message: "x".into(),
            line: None,
            kind: Some(ErrorKind::Protocol),
        }));
        iv.active = 3;
        iv.open = 4;
        sink.interval(&iv);
        let text = text(&sink);
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 5, "{text}");
        assert_eq!(
            lines[1],
            "1700000000,1,command,LOGIN,1,1,1,0,0,0,3000,2000,4001,4001,4001,,,,,,,"
        );
        assert_eq!(
            lines[2],
            "1700000000,1,command,DELAY,1,0,0,0,0,0,,,,,,,,,,,,"
        );
        assert_eq!(lines[3], "1700000000,1,error,protocol,1,,,,,,,,,,,,,,,,,");
        assert_eq!(lines[4], "1700000000,1,connections,,,,,,,1,,,,,,3,4,1,0,,,");
        for line in &lines {
            assert_eq!(line.split(',').count(), HEADER.len(), "{line}");
        }
    }

    fn report(iv: &mut Interval, severity: Severity, kind: Option<ErrorKind>) {
        iv.record(&Event::Report(Report {
            severity,
            user: Some("testuser1".into()),
            connection: Some(1),
            message: "m".into(),
            line: None,
            kind,
        }));
    }

    /// The `kind`, `command` and `count` columns of the `error` rows of `text`.
    fn error_rows(text: &str) -> Vec<(String, String, String)> {
        text.lines()
            .map(|l| l.split(',').collect::<Vec<_>>())
            .filter(|c| c[2] == "error")
            .map(|c| {
                assert!(c[5..].iter().all(|v| v.is_empty()), "{c:?}");
                (c[1].to_owned(), c[3].to_owned(), c[4].to_owned())
            })
            .collect()
    }

    #[test]
    fn error_rows_count_each_kind_per_second() {
        let mut sink = CsvTimeline::new(Vec::new(), "mem".into()).unwrap();
        let mut first = Interval::new();
        first.elapsed_secs = 1;
        first.at = UNIX_EPOCH;
        report(&mut first, Severity::Error, Some(ErrorKind::SearchMissing));
        report(&mut first, Severity::Error, Some(ErrorKind::UidChanged));
        report(&mut first, Severity::Error, Some(ErrorKind::UidChanged));
        // Warnings are not errors; an error without a kind is `other`.
        report(&mut first, Severity::Warning, None);
        report(&mut first, Severity::Error, None);
        sink.interval(&first);
        let mut second = Interval::new();
        second.elapsed_secs = 2;
        second.at = UNIX_EPOCH;
        sink.interval(&second);
        let mut third = Interval::new();
        third.elapsed_secs = 3;
        third.at = UNIX_EPOCH;
        report(
            &mut third,
            Severity::Error,
            Some(ErrorKind::CheckpointMismatch),
        );
        sink.interval(&third);
        let text = text(&sink);
        let row = |s: &str, k: &str, n: &str| (s.to_owned(), k.to_owned(), n.to_owned());
        assert_eq!(
            error_rows(&text),
            [
                row("1", "uid-changed", "2"),
                row("1", "search-missing", "1"),
                row("1", "other", "1"),
                row("3", "checkpoint-mismatch", "1"),
            ],
            "{text}"
        );
        // Before the second's connections row, which carries the same total.
        let lines: Vec<&str> = text.lines().collect();
        assert!(lines[4].starts_with("0,1,connections,,,,,,,4,"), "{text}");
        assert!(
            lines[6].starts_with("0,3,error,checkpoint-mismatch,1"),
            "{text}"
        );
        for line in &lines {
            assert_eq!(line.split(',').count(), HEADER.len(), "{line}");
        }
    }

    struct Broken;
    impl Write for Broken {
        fn write(&mut self, _: &[u8]) -> std::io::Result<usize> {
            Err(std::io::Error::other("disk full"))
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn unwritable_output_is_an_error_at_creation() {
        assert!(CsvTimeline::new(Broken, "broken".into()).is_err());
    }
}
