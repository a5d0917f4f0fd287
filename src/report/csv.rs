//! The CSV timeline sink (`csv=FILE`), ready for a spreadsheet: RFC 4180, one header
//! row, every column name carrying its unit (`_s` seconds, `_us` microseconds, `_per_s`
//! events in that second; gauges are named by what they count).
//!
//! `csv_format=long` (the default) writes, for every second, one row per op the run
//! can perform (the set is fixed at the start from the states, protocols and phases in
//! use: an idle op gets zeros, never a gap), then one `error` row per error kind that
//! occurred, then profile runs' `deliveries` and `schedule` rows and a `skipped` row
//! per reason actions were skipped for (`count_per_s`), then the
//! `connections` row, which ends the second. Columns a row kind doesn't use are empty;
//! latency columns are empty when nothing was timed. The README has the column table;
//! what the latency columns hold per row kind:
//!
//! * `command` rows of protocol `imap`, `pop3`, `lmtp`: from sending the command (or
//!   starting the connection phase) to its reply.
//! * `command` rows of protocol `action` (profile actions): from the planned instant
//!   to the action's end, so a tool that falls behind shows up.
//! * `deliveries` rows: end-to-end delivery latency, LMTP transaction start to the
//!   user's client seeing the message.
//! * `schedule` rows: how late the scheduler handed actions over.
//!
//! `csv_format=wide` writes one row per second: the connection and delivery columns,
//! then a group of columns per op (`imap_LOGIN_ok_per_s`, `imap_LOGIN_not_ok_per_s`,
//! `imap_LOGIN_avg_us`, `imap_LOGIN_p50_us`, `imap_LOGIN_p99_us`, `imap_LOGIN_max_us`),
//! ready to chart without a pivot table.
//!
//! Each second's rows go to the file in one `write` and are flushed, so a run that is
//! killed keeps every completed second.

use std::fs::File;
use std::io::Write;
use std::path::Path;
use std::time::UNIX_EPOCH;

use anyhow::Context;

use crate::config::CsvFormat;
use crate::metrics::{Interval, Latency, OpFigures, Report, Sink, SkipReason};
use crate::ops::Op;

/// The header row of `csv_format=long`, in column order.
pub const HEADER: [&str; 30] = [
    "unix_time_s",
    "elapsed_s",
    "kind",
    "protocol",
    "name",
    "count_per_s",
    "ok_per_s",
    "no_per_s",
    "bad_per_s",
    "failed_per_s",
    "latency_avg_us",
    "latency_p50_us",
    "latency_p90_us",
    "latency_p95_us",
    "latency_p99_us",
    "latency_max_us",
    "lateness_max_us",
    "errors_per_s",
    "warnings_per_s",
    "connections_active",
    "connections_open",
    "connections_open_peak",
    "connects_per_s",
    "connect_failures_per_s",
    "disconnects_per_s",
    "connections_stalled",
    "users_online",
    "deliveries_queued",
    "deliveries_waited_per_s",
    "delivery_wait_max_us",
];

/// With `server_pid=`/`server_cgroup=`: the server's columns, after the others (in
/// the `connections` row of the long format). CPU is in % of one core.
pub const SERVER_COLUMNS: [&str; 5] = [
    "server_cpu_percent",
    "server_rss_kib",
    "server_read_bytes_per_s",
    "server_write_bytes_per_s",
    "server_processes",
];

/// The server's columns of one second (empty when no sample was taken).
fn server_cells(interval: &Interval) -> [String; 5] {
    match &interval.server {
        Some(u) => [
            format!("{:.1}", u.cpu_percent()),
            u.rss_kib.to_string(),
            u.read_bytes.to_string(),
            u.write_bytes.to_string(),
            u.processes.to_string(),
        ],
        None => Default::default(),
    }
}

/// Column index by name, for building rows.
fn col(name: &str) -> usize {
    HEADER
        .iter()
        .position(|h| *h == name)
        .unwrap_or_else(|| panic!("no CSV column {name}"))
}

/// Writes the CSV timeline to any writer (a file for `csv=`).
pub struct CsvTimeline<W: Write + Send> {
    out: W,
    /// Where the rows go, for error messages.
    name: String,
    format: CsvFormat,
    /// The ops with a row (long) or column group (wide) every second.
    ops: Vec<Op>,
    /// One second's rows, written to `out` in one go.
    buf: Vec<u8>,
    /// Set after the first write error: the error is printed once, then rows are dropped.
    failure: Option<String>,
    /// Profile mode: `deliveries` and `schedule` rows.
    profile: bool,
    /// Wide: the header goes out with the first second (it depends on `profile`).
    header_written: bool,
    /// [`SERVER_COLUMNS`] at the end of each row.
    server: bool,
}

impl CsvTimeline<File> {
    /// Creates (or truncates) `path` and writes the header row; `server` adds the
    /// server's columns.
    pub fn create(
        path: &Path,
        format: CsvFormat,
        ops: Vec<Op>,
        server: bool,
    ) -> anyhow::Result<Self> {
        let file =
            File::create(path).with_context(|| format!("cannot create {}", path.display()))?;
        Self::build(file, path.display().to_string(), format, ops, server)
    }
}

impl<W: Write + Send> CsvTimeline<W> {
    /// A timeline on `out`; the header row is written (and flushed) at once.
    pub fn new(out: W, name: String, format: CsvFormat, ops: Vec<Op>) -> anyhow::Result<Self> {
        Self::build(out, name, format, ops, false)
    }

    /// A timeline on `out` with the server's columns ([`SERVER_COLUMNS`]).
    pub fn with_server_columns(
        out: W,
        name: String,
        format: CsvFormat,
        ops: Vec<Op>,
    ) -> anyhow::Result<Self> {
        Self::build(out, name, format, ops, true)
    }

    fn build(
        out: W,
        name: String,
        format: CsvFormat,
        ops: Vec<Op>,
        server: bool,
    ) -> anyhow::Result<Self> {
        let mut sink = CsvTimeline {
            out,
            name,
            format,
            ops,
            buf: Vec::with_capacity(8 * 1024),
            failure: None,
            profile: false,
            header_written: false,
            server,
        };
        sink.write_header()?;
        Ok(sink)
    }

    /// Adds profile mode's rows (`deliveries`, `schedule`) and columns.
    pub fn with_profile_rows(mut self) -> Self {
        self.profile = true;
        self
    }

    /// The underlying writer (tests read back what was written).
    pub fn get_ref(&self) -> &W {
        &self.out
    }

    fn write_header(&mut self) -> anyhow::Result<()> {
        if self.format == CsvFormat::Long {
            let server: &[&str] = if self.server { &SERVER_COLUMNS } else { &[] };
            let mut w = csv::Writer::from_writer(&mut self.buf);
            w.write_record(HEADER.iter().chain(server))?;
            w.flush()?;
            drop(w);
            self.commit()
                .with_context(|| format!("cannot write {}", self.name))?;
        }
        // Wide: written with the first second, once profile mode is known.
        Ok(())
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

    /// The ops of this second: the fixed set, then any other op that was active.
    fn ops_of<'a>(&'a self, interval: &'a Interval) -> impl Iterator<Item = (Op, &'a OpFigures)> {
        let extra = interval
            .active_ops()
            .filter(|(op, _)| !self.ops.contains(op));
        self.ops
            .iter()
            .map(|&op| (op, interval.op(op)))
            .chain(extra)
    }

    fn long_rows(&mut self, interval: &Interval) -> csv::Result<()> {
        let time = [
            unix_secs(interval).to_string(),
            interval.elapsed_secs.to_string(),
        ];
        let mut rows: Vec<Vec<String>> = Vec::new();
        let width = HEADER.len() + if self.server { SERVER_COLUMNS.len() } else { 0 };
        let new_row = |kind: &str, protocol: &str, name: &str| {
            let mut row = vec![String::new(); width];
            row[0].clone_from(&time[0]);
            row[1].clone_from(&time[1]);
            row[2] = kind.to_owned();
            row[3] = protocol.to_owned();
            row[4] = name.to_owned();
            row
        };
        for (op, f) in self.ops_of(interval) {
            let mut row = new_row("command", op.protocol().name(), op.name());
            put_counts(&mut row, [f.count, f.ok, f.no, f.bad, f.failed]);
            put_latency(&mut row, &f.latency);
            row[col("lateness_max_us")] = f.lateness_max_us.to_string();
            rows.push(row);
        }
        for (kind, count) in interval.error_kinds_seen() {
            let mut row = new_row("error", "", kind.name());
            row[col("errors_per_s")] = count.to_string();
            rows.push(row);
        }
        if self.profile {
            let d = &interval.deliveries;
            let mut row = new_row("deliveries", "lmtp", "recipients");
            put_counts(
                &mut row,
                [d.offered_recipients, d.delivered, d.refused, 0, d.failed],
            );
            put_latency(&mut row, &d.seen);
            row[col("deliveries_queued")] = interval.queued.to_string();
            row[col("deliveries_waited_per_s")] = d.late.to_string();
            row[col("delivery_wait_max_us")] = d.wait_max_us.to_string();
            rows.push(row);
            let mut row = new_row("schedule", "action", "handed_over");
            row[col("count_per_s")] = d.lateness.count.to_string();
            put_latency(&mut row, &d.lateness);
            rows.push(row);
            for reason in SkipReason::ALL {
                let n = interval.skipped[reason as usize];
                if n > 0 {
                    let mut row = new_row("skipped", "action", reason.name());
                    row[col("count_per_s")] = n.to_string();
                    rows.push(row);
                }
            }
        }
        let mut row = new_row("connections", "", "");
        for (name, value) in [
            ("errors_per_s", interval.errors),
            ("warnings_per_s", interval.warnings),
            ("connections_active", interval.active),
            ("connections_open", interval.open),
            ("connections_open_peak", interval.open_peak),
            ("connects_per_s", interval.connects),
            ("connect_failures_per_s", interval.connect_failures),
            ("disconnects_per_s", interval.disconnects),
            ("connections_stalled", interval.stalled),
        ] {
            row[col(name)] = value.to_string();
        }
        if self.profile {
            row[col("users_online")] = interval.users.to_string();
        }
        if self.server {
            for (i, cell) in server_cells(interval).into_iter().enumerate() {
                row[HEADER.len() + i] = cell;
            }
        }
        rows.push(row);
        let mut w = csv::Writer::from_writer(&mut self.buf);
        for row in rows {
            w.write_record(&row)?;
        }
        w.flush()?;
        Ok(())
    }

    /// The wide header: per-second columns, then a group per op.
    fn wide_header(&self) -> Vec<String> {
        let mut header: Vec<String> = [
            "unix_time_s",
            "elapsed_s",
            "errors_per_s",
            "warnings_per_s",
            "connections_active",
            "connections_open",
            "connections_open_peak",
            "connects_per_s",
            "connect_failures_per_s",
            "disconnects_per_s",
        ]
        .map(str::to_owned)
        .into();
        if self.profile {
            for name in [
                "users_online",
                "deliveries_queued",
                "delivery_recipients_per_s",
                "delivered_per_s",
                "delivery_refused_per_s",
                "delivery_failed_per_s",
                "delivery_latency_p50_us",
                "delivery_latency_p99_us",
                "schedule_lateness_p99_us",
                "schedule_lateness_max_us",
                "actions_skipped_per_s",
            ] {
                header.push(name.to_owned());
            }
        }
        if self.server {
            header.extend(SERVER_COLUMNS.map(str::to_owned));
        }
        for op in &self.ops {
            let prefix = format!("{}_{}", op.protocol().name(), op.name());
            for suffix in WIDE_GROUP {
                header.push(format!("{prefix}_{suffix}"));
            }
        }
        header
    }

    fn wide_row(&mut self, interval: &Interval) -> csv::Result<()> {
        let mut row: Vec<String> = [
            unix_secs(interval),
            interval.elapsed_secs,
            interval.errors,
            interval.warnings,
            interval.active,
            interval.open,
            interval.open_peak,
            interval.connects,
            interval.connect_failures,
            interval.disconnects,
        ]
        .map(|n| n.to_string())
        .into();
        if self.profile {
            let d = &interval.deliveries;
            row.extend(
                [
                    interval.users,
                    interval.queued,
                    d.offered_recipients,
                    d.delivered,
                    d.refused,
                    d.failed,
                ]
                .map(|n| n.to_string()),
            );
            row.extend([
                latency(&d.seen, |l| l.at(0.5)),
                latency(&d.seen, |l| l.at(0.99)),
                latency(&d.lateness, |l| l.at(0.99)),
                latency(&d.lateness, Latency::max),
                interval.skipped.iter().sum::<u64>().to_string(),
            ]);
        }
        if self.server {
            row.extend(server_cells(interval));
        }
        for &op in &self.ops {
            let f = interval.op(op);
            let l = &f.latency;
            row.extend([
                f.count.to_string(),
                (f.no + f.bad + f.failed).to_string(),
                latency(l, Latency::avg_us),
                latency(l, |l| l.at(0.5)),
                latency(l, |l| l.at(0.99)),
                latency(l, Latency::max),
            ]);
        }
        let header = (!self.header_written).then(|| self.wide_header());
        self.header_written = true;
        let mut w = csv::Writer::from_writer(&mut self.buf);
        if let Some(header) = header {
            w.write_record(header)?;
        }
        w.write_record(&row)?;
        w.flush()?;
        Ok(())
    }

    fn write_interval(&mut self, interval: &Interval) {
        if self.failure.is_some() {
            return;
        }
        let rows = match self.format {
            CsvFormat::Long => self.long_rows(interval),
            CsvFormat::Wide => self.wide_row(interval),
        };
        let result = match rows {
            Ok(()) => self.commit(),
            Err(e) => Err(std::io::Error::other(e)),
        };
        if let Err(e) = result {
            let failure = format!("csv: cannot write {}: {e}", self.name);
            eprintln!("Error: {failure}; no more rows are written");
            self.failure = Some(failure);
        }
    }
}

/// Column suffixes of an op's group in `csv_format=wide`.
pub const WIDE_GROUP: [&str; 6] = [
    "ok_per_s",
    "not_ok_per_s",
    "avg_us",
    "p50_us",
    "p99_us",
    "max_us",
];

fn unix_secs(interval: &Interval) -> u64 {
    interval
        .at
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

fn put_counts(row: &mut [String], counts: [u64; 5]) {
    for (i, n) in counts.into_iter().enumerate() {
        row[col("count_per_s") + i] = n.to_string();
    }
}

/// avg, p50, p90, p95, p99, max; left empty when nothing was recorded.
fn put_latency(row: &mut [String], l: &Latency) {
    if l.count == 0 {
        return;
    }
    let values = [
        l.avg_us(),
        l.at(0.5),
        l.at(0.9),
        l.at(0.95),
        l.at(0.99),
        l.max(),
    ];
    for (i, v) in values.into_iter().enumerate() {
        row[col("latency_avg_us") + i] = v.to_string();
    }
}

fn latency(l: &Latency, value: impl Fn(&Latency) -> u64) -> String {
    if l.count == 0 {
        String::new()
    } else {
        value(l).to_string()
    }
}

impl<W: Write + Send> Sink for CsvTimeline<W> {
    fn interval(&mut self, interval: &Interval) {
        self.write_interval(interval);
    }

    fn report(&mut self, _report: &Report) {}

    fn failure(&self) -> Option<String> {
        self.failure.clone()
    }

    fn finish(&mut self, _totals: &Interval) {
        if self.failure.is_none() {
            let _ = self.out.flush();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metrics::{ErrorKind, Event, Outcome, Severity};
    use crate::ops::{Phase, Server};
    use crate::states::State;
    use std::time::{Duration, Instant};

    fn command(iv: &mut Interval, op: Op, outcome: Outcome, ms: u64) {
        let now = Instant::now();
        iv.record(&Event::Command {
            op,
            outcome,
            intended: now,
            started: now,
            finished: now + Duration::from_millis(ms),
        });
    }

    fn text<W: Write + Send + AsRef<[u8]>>(sink: &CsvTimeline<W>) -> String {
        String::from_utf8(sink.get_ref().as_ref().to_vec()).unwrap()
    }

    fn second(n: u64) -> Interval {
        let mut iv = Interval::new();
        iv.elapsed_secs = n;
        iv.at = UNIX_EPOCH + Duration::from_secs(1_700_000_000 + n);
        iv
    }

    #[test]
    fn fixed_ops_get_a_row_every_second_even_when_idle() {
        let ops = vec![Op::Imap(State::Login), Op::Imap(State::Logout)];
        let mut sink = CsvTimeline::new(Vec::new(), "mem".into(), CsvFormat::Long, ops).unwrap();
        let mut iv = second(1);
        command(&mut iv, Op::Imap(State::Login), Outcome::Ok, 2);
        command(&mut iv, Op::Imap(State::Login), Outcome::No, 4);
        // Active but not in the fixed set: gets a row too.
        command(
            &mut iv,
            Op::Phase(Server::Imap, Phase::Connect),
            Outcome::Ok,
            1,
        );
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
        sink.interval(&second(2));
        let text = text(&sink);
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines[0], HEADER.join(","));
        assert_eq!(
            lines[1],
            "1700000001,1,command,imap,LOGIN,1,1,1,0,0,3000,2000,4001,4001,4001,4001,0,,,,,,,,,,,,,"
        );
        assert_eq!(
            lines[2],
            "1700000001,1,command,imap,LOGOUT,0,0,0,0,0,,,,,,,0,,,,,,,,,,,,,"
        );
        assert!(
            lines[3].starts_with("1700000001,1,command,imap,CONNECT,1,1,"),
            "{text}"
        );
        assert!(
            lines[4].starts_with("1700000001,1,error,,protocol,"),
            "{text}"
        );
        assert_eq!(
            lines[5],
            "1700000001,1,connections,,,,,,,,,,,,,,,1,0,3,4,0,1,0,0,0,,,,"
        );
        // The idle second: both fixed ops, zeros, and its connections row.
        assert_eq!(lines.len(), 9, "{text}");
        assert!(lines[6].starts_with("1700000002,2,command,imap,LOGIN,0,0,0,0,0,,"));
        assert!(lines[8].starts_with("1700000002,2,connections,"));
        for line in &lines {
            assert_eq!(line.split(',').count(), HEADER.len(), "{line}");
        }
    }

    #[test]
    fn wide_has_one_row_per_second_with_a_group_per_op() {
        let ops = vec![Op::Imap(State::Login), Op::Imap(State::Fetch)];
        let mut sink = CsvTimeline::new(Vec::new(), "mem".into(), CsvFormat::Wide, ops).unwrap();
        for n in 1..=3 {
            let mut iv = second(n);
            for _ in 0..n {
                command(&mut iv, Op::Imap(State::Fetch), Outcome::Ok, n);
            }
            sink.interval(&iv);
        }
        let text = text(&sink);
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 4, "{text}");
        let header: Vec<&str> = lines[0].split(',').collect();
        assert!(header.contains(&"imap_FETCH_ok_per_s"));
        assert!(header.contains(&"imap_LOGIN_p99_us"));
        let fetch = header
            .iter()
            .position(|h| *h == "imap_FETCH_ok_per_s")
            .unwrap();
        for (i, line) in lines[1..].iter().enumerate() {
            let cells: Vec<&str> = line.split(',').collect();
            assert_eq!(cells.len(), header.len());
            assert_eq!(cells[1], (i + 1).to_string());
            assert_eq!(cells[fetch], (i + 1).to_string());
        }
    }

    #[test]
    fn server_columns_end_each_connections_row_and_wide_row() {
        let mut iv = second(1);
        iv.server = Some(crate::usage::ServerUsage {
            cpu_us: 1_500_000,
            wall_us: 1_000_000,
            cpu_peak_percent: 150.0,
            rss_kib: 2048,
            rss_peak_kib: 2048,
            read_bytes: 10,
            write_bytes: 20,
            processes: 7,
        });
        let ops = vec![Op::Imap(State::Login)];
        let mut long =
            CsvTimeline::with_server_columns(Vec::new(), "m".into(), CsvFormat::Long, ops.clone())
                .unwrap();
        long.interval(&iv);
        let long = text(&long);
        let lines: Vec<&str> = long.lines().collect();
        assert!(lines[0].ends_with(&SERVER_COLUMNS.join(",")), "{long}");
        assert!(
            lines[1].ends_with(",,,,,"),
            "a command row leaves them empty: {long}"
        );
        assert!(lines[2].ends_with(",150.0,2048,10,20,7"), "{long}");
        let mut wide =
            CsvTimeline::with_server_columns(Vec::new(), "m".into(), CsvFormat::Wide, ops).unwrap();
        wide.interval(&iv);
        let wide = text(&wide);
        let (header, row) = wide.split_once('\n').unwrap();
        let header: Vec<&str> = header.split(',').collect();
        let row: Vec<&str> = row.trim_end().split(',').collect();
        let at = header
            .iter()
            .position(|h| *h == "server_cpu_percent")
            .unwrap();
        assert_eq!(&row[at..at + 5], ["150.0", "2048", "10", "20", "7"]);
    }

    #[test]
    fn a_write_error_is_kept_for_the_exit_status() {
        struct FailsLater(u32);
        impl Write for FailsLater {
            fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
                if self.0 == 0 {
                    return Err(std::io::Error::other("disk full"));
                }
                self.0 -= 1;
                Ok(buf.len())
            }
            fn flush(&mut self) -> std::io::Result<()> {
                Ok(())
            }
        }
        let mut sink = CsvTimeline::new(
            FailsLater(1),
            "full".into(),
            CsvFormat::Long,
            vec![Op::Imap(State::Login)],
        )
        .unwrap();
        assert_eq!(sink.failure(), None);
        sink.interval(&second(1));
        let failure = sink.failure().unwrap();
        assert!(failure.contains("disk full"), "{failure}");
    }
}
