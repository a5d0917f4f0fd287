//! The console sink: ImapTest's per-second counter lines on stdout, reports on stderr.

use std::io::{self, Write};

use crate::metrics::{Interval, Report, Severity, Sink, SizeFigures, SkipReason};
use crate::states::{Probabilities, State};

/// Prints counters in the C tool's layout:
///
/// ```text
/// Logi List Stat Sele Fetc Fet2 Stor Dele Expu Appe Logo
/// 100%  50%  50% 100% 100% 100%  50% 100% 100% 100% 100%
///                          30%                 5%
///   12    6    5   12   12   17    6   12   12   12   12  10/ 10
/// ```
pub struct Console<O: Write + Send, E: Write + Send> {
    out: O,
    err: E,
    columns: Vec<State>,
    probabilities: Option<Probabilities>,
    clients: u64,
    lines: u64,
    since_average: Interval,
    bold: bool,
    /// Profile mode: users and LMTP queue on the per-second line, deliveries in Totals.
    profile: bool,
    /// Error and warning lines printed per second (the rest are only counted).
    budget: crate::limits::PrintBudget,
    /// Errors and warnings the budget held back since it was last said.
    held: (u64, u64),
    /// Profile mode: the run's length and ramp-up, for the progress on each line.
    period: Option<std::time::Duration>,
    rampup: std::time::Duration,
}

impl Console<io::Stdout, io::Stderr> {
    /// A console on stdout/stderr. `probabilities` is shown in the header (stress mode).
    pub fn stdio(columns: Vec<State>, probabilities: Option<Probabilities>, clients: u64) -> Self {
        use std::io::IsTerminal;
        let bold = io::stdout().is_terminal() && std::env::var_os("NO_COLOR").is_none();
        let mut console = Console::new(io::stdout(), io::stderr(), columns, probabilities, clients);
        console.bold = bold;
        console
    }
}

impl<O: Write + Send, E: Write + Send> Console<O, E> {
    pub fn new(
        out: O,
        err: E,
        columns: Vec<State>,
        probabilities: Option<Probabilities>,
        clients: u64,
    ) -> Self {
        Console {
            out,
            err,
            columns,
            probabilities,
            clients,
            lines: 0,
            since_average: Interval::new(),
            bold: false,
            profile: false,
            budget: crate::limits::PrintBudget::default(),
            held: (0, 0),
            period: None,
            rampup: std::time::Duration::ZERO,
        }
    }

    /// Adds profile mode's figures: users and queued deliveries each second, the
    /// delivery and schedule summary after Totals.
    /// `period` is the run's length (if known), `rampup` the profile's ramp-up: each
    /// line says how far the run is and in which phase.
    pub fn with_profile(
        mut self,
        period: Option<std::time::Duration>,
        rampup: std::time::Duration,
    ) -> Self {
        self.profile = true;
        self.period = period;
        self.rampup = rampup;
        self
    }

    /// ` [12s/60s steady]`: elapsed and total time, and the phase.
    fn progress(&self, elapsed_secs: u64) -> String {
        let phase = if elapsed_secs <= self.rampup.as_secs() && !self.rampup.is_zero() {
            "ramp-up"
        } else if self.period.is_some_and(|p| elapsed_secs > p.as_secs()) {
            "stopping"
        } else {
            "steady"
        };
        match self.period {
            Some(p) => format!(" [{elapsed_secs}s/{}s {phase}]", p.as_secs()),
            None => format!(" [{elapsed_secs}s {phase}]"),
        }
    }

    /// The visible columns for a set of probabilities: every non-zero state but BANNER.
    pub fn visible_columns(probabilities: &Probabilities) -> Vec<State> {
        State::all()
            .filter(|&s| s != State::Banner && probabilities.get(s) > 0)
            .collect()
    }

    fn header(&mut self) -> io::Result<()> {
        let mut line = String::new();
        for s in &self.columns {
            line.push_str(s.short());
            line.push(' ');
        }
        writeln!(self.out, "{}", line.trim_end())?;
        if let Some(p) = &self.probabilities {
            let mut line = String::new();
            for &s in &self.columns {
                line.push_str(&format!("{:3}% ", p.get(s)));
            }
            writeln!(self.out, "{}", line.trim_end())?;
            if self.columns.iter().any(|&s| p.again(s) > 0) {
                let mut line = String::new();
                for &s in &self.columns {
                    match p.again(s) {
                        0 => line.push_str("     "),
                        a => line.push_str(&format!("{a:3}% ")),
                    }
                }
                writeln!(self.out, "{}", line.trim_end())?;
            }
        }
        Ok(())
    }

    fn average_line(&mut self) -> io::Result<()> {
        let mut line = String::new();
        for &s in &self.columns {
            line.push_str(&format!("{:4} ", self.since_average.column(s).avg_ms()));
        }
        line.push_str("ms/cmd avg");
        if self.bold {
            writeln!(self.out, "\x1b[1m{line}\x1b[0m")?;
        } else {
            writeln!(self.out, "{line}")?;
        }
        self.since_average = Interval::new();
        Ok(())
    }

    fn counts_line(&mut self, interval: &Interval) -> io::Result<()> {
        let mut line = String::new();
        for &s in &self.columns {
            line.push_str(&format!("{:4} ", interval.column(s).count));
        }
        line.push_str(&format!("{:3}/{:3}", interval.active, interval.open));
        if self.profile {
            line.push_str(&self.progress(interval.elapsed_secs));
            line.push_str(&format!(" users {}", interval.users));
            if interval.queued > 0 {
                line.push_str(&format!(" ({} LMTP queued)", interval.queued));
            }
        }
        if interval.stalled > 0 {
            line.push_str(&format!(" ({} stalled >3s)", interval.stalled));
        }
        if interval.slots_used < self.clients {
            line.push_str(&format!(
                " [{}%]",
                interval.slots_used * 100 / self.clients.max(1)
            ));
        }
        writeln!(self.out, "{line}")?;
        for stalled in &interval.stalled_lines {
            writeln!(self.out, "{stalled}")?;
        }
        Ok(())
    }

    fn write_interval(&mut self, interval: &Interval) -> io::Result<()> {
        if self.lines.is_multiple_of(10) {
            if self.lines > 0 {
                self.average_line()?;
            }
            writeln!(self.out)?;
            self.header()?;
            writeln!(self.out)?;
        }
        self.since_average.add(interval);
        self.counts_line(interval)?;
        self.lines += 1;
        self.out.flush()
    }

    fn write_totals(&mut self, totals: &Interval) -> io::Result<()> {
        self.average_line()?;
        writeln!(self.out)?;
        writeln!(self.out, "Totals:")?;
        writeln!(self.out)?;
        self.header()?;
        let mut line = String::new();
        for &s in &self.columns {
            line.push_str(&format!("{:4} ", totals.column(s).count));
        }
        writeln!(self.out, "{}", line.trim_end())?;
        if self.profile {
            self.profile_totals(totals)?;
        }
        if let Some(line) = errors_by_kind(totals) {
            writeln!(self.out, "{line}")?;
        }
        write!(self.out, "{}", latency_table(totals))?;
        self.out.flush()
    }

    fn profile_totals(&mut self, totals: &Interval) -> io::Result<()> {
        let d = &totals.deliveries;
        let ms = |us: u64| us as f64 / 1000.0;
        writeln!(self.out)?;
        writeln!(
            self.out,
            "Deliveries: {} offered, {} delivered, {} refused, {} failed, {} waited for a slot (longest {:.1} ms)",
            d.offered,
            d.delivered,
            d.refused,
            d.failed,
            d.late,
            ms(d.wait_max_us)
        )?;
        if d.seen.count > 0 {
            writeln!(
                self.out,
                "Delivery latency (LMTP transaction start -> seen by the client, {} messages): p50 {:.1} ms, p90 {:.1} ms, p99 {:.1} ms, max {:.1} ms",
                d.seen.count,
                ms(d.seen.at(0.5)),
                ms(d.seen.at(0.9)),
                ms(d.seen.at(0.99)),
                ms(d.seen.max())
            )?;
        }
        if d.lateness.count > 0 {
            writeln!(
                self.out,
                "Schedule lateness ({} actions): p50 {:.3} ms, p99 {:.3} ms, max {:.3} ms",
                d.lateness.count,
                ms(d.lateness.at(0.5)),
                ms(d.lateness.at(0.99)),
                ms(d.lateness.max())
            )?;
        }
        if let Some(line) = skipped_by_reason(totals) {
            writeln!(self.out, "{line}")?;
        }
        for (what, sizes) in [
            ("Delivered", &totals.delivered_sizes),
            ("Written", &totals.written_sizes),
        ] {
            if let Some(line) = size_histogram(what, sizes) {
                writeln!(self.out, "{line}")?;
            }
        }
        Ok(())
    }
}

impl<O: Write + Send, E: Write + Send> Console<O, E> {
    /// One line for the reports the budget held back (they are counted in Totals).
    fn say_suppressed(&mut self) {
        self.budget.take_suppressed();
        let (errors, warnings) = std::mem::take(&mut self.held);
        if errors + warnings > 0 {
            let _ = writeln!(
                self.err,
                "Warning: {errors} more error and {warnings} more warning lines not shown (more than {} a second; all are counted in Totals)",
                crate::limits::MAX_REPORTS_PER_SECOND
            );
        }
    }
}

/// Run-level latency percentiles of every op that was timed, after Totals.
pub fn latency_table(totals: &Interval) -> String {
    use std::fmt::Write as _;
    let rows: Vec<(String, &crate::metrics::Latency)> = totals
        .active_ops()
        .filter(|(_, f)| f.latency.count > 0)
        .map(|(op, f)| (op.to_string(), &f.latency))
        .collect();
    if rows.is_empty() {
        return String::new();
    }
    let width = rows.iter().map(|(n, _)| n.len()).max().unwrap_or(0).max(7);
    let ms = |us: u64| format!("{:.1}", us as f64 / 1000.0);
    let mut out = String::from("\nLatency over the whole run (ms):\n");
    let _ = writeln!(
        out,
        "  {:<width$} {:>8} {:>8} {:>8} {:>8} {:>8} {:>8} {:>8}",
        "command", "count", "p50", "p90", "p95", "p99", "p99.9", "max"
    );
    for (name, l) in rows {
        let _ = writeln!(
            out,
            "  {:<width$} {:>8} {:>8} {:>8} {:>8} {:>8} {:>8} {:>8}",
            name,
            l.count,
            ms(l.at(0.5)),
            ms(l.at(0.9)),
            ms(l.at(0.95)),
            ms(l.at(0.99)),
            ms(l.at(0.999)),
            ms(l.max())
        );
    }
    out
}

/// `Errors by kind: uid-changed 3, search-missing 1` (most frequent first), or `None`
/// when there were no errors.
pub fn errors_by_kind(totals: &Interval) -> Option<String> {
    let seen = totals.error_kinds_seen();
    if seen.is_empty() {
        return None;
    }
    let list: Vec<String> = seen
        .iter()
        .map(|(kind, n)| format!("{} {n}", kind.name()))
        .collect();
    Some(format!("Errors by kind: {}", list.join(", ")))
}

/// `Skipped actions: not-yet-visible 3, session-down 1`, or `None` when none were.
pub fn skipped_by_reason(totals: &Interval) -> Option<String> {
    let list: Vec<String> = SkipReason::ALL
        .iter()
        .map(|&r| (r, totals.skipped[r as usize]))
        .filter(|&(_, n)| n > 0)
        .map(|(r, n)| format!("{} {n}", r.name()))
        .collect();
    (!list.is_empty()).then(|| format!("Skipped actions: {}", list.join(", ")))
}

/// `Delivered sizes (n messages, mean … bytes): <1k 3, <2k 10, …` (power-of-two
/// buckets), or `None` when nothing was sent.
pub fn size_histogram(what: &str, sizes: &SizeFigures) -> Option<String> {
    if sizes.count == 0 {
        return None;
    }
    let bucket = |i: usize| {
        let top = 1u64 << (i + 1);
        match top {
            t if t >= 1 << 30 => format!("<{}G", t >> 30),
            t if t >= 1 << 20 => format!("<{}M", t >> 20),
            t if t >= 1 << 10 => format!("<{}k", t >> 10),
            t => format!("<{t}"),
        }
    };
    let parts: Vec<String> = sizes
        .buckets
        .iter()
        .enumerate()
        .filter(|&(_, &n)| n > 0)
        .map(|(i, n)| format!("{} {n}", bucket(i)))
        .collect();
    Some(format!(
        "{what} sizes ({} messages, mean {} bytes, max {}): {}",
        sizes.count,
        sizes.sum / sizes.count,
        sizes.max,
        parts.join(", ")
    ))
}

/// `Error: user[conn]: message: line`, as the C tool prints it.
pub fn format_report(report: &Report) -> String {
    let prefix = match report.severity {
        Severity::Error => "Error",
        Severity::Warning => "Warning",
        Severity::Info => "Info",
    };
    let mut text = format!("{prefix}: ");
    match (&report.user, report.connection) {
        (Some(user), Some(conn)) => text.push_str(&format!("{user}[{conn}]: ")),
        (None, Some(conn)) => text.push_str(&format!("[{conn}]: ")),
        (Some(user), None) => text.push_str(&format!("{user}: ")),
        (None, None) => {}
    }
    text.push_str(&report.message);
    if let Some(line) = &report.line {
        text.push_str(": ");
        text.push_str(&crate::text::inert(line, crate::text::QUOTE_MAX));
    }
    // Server text is inert: no control character reaches the terminal.
    crate::text::escape_controls(&text)
}

impl<O: Write + Send, E: Write + Send> Sink for Console<O, E> {
    fn interval(&mut self, interval: &Interval) {
        self.say_suppressed();
        let _ = self.write_interval(interval);
    }

    fn report(&mut self, report: &Report) {
        if report.severity == Severity::Info || self.budget.allow(std::time::Instant::now()) {
            let _ = writeln!(self.err, "{}", format_report(report));
        } else if report.severity == Severity::Error {
            self.held.0 += 1;
        } else {
            self.held.1 += 1;
        }
    }

    fn finish(&mut self, totals: &Interval) {
        self.say_suppressed();
        let _ = self.write_totals(totals);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metrics::{ErrorKind, Event, Outcome};
    use crate::ops::Op;
    use std::sync::{Arc, Mutex};

    #[derive(Clone, Default)]
    struct Shared(Arc<Mutex<Vec<u8>>>);
    impl Write for Shared {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn default_header_and_lines() {
        let p = Probabilities::default();
        let cols = Console::<Shared, Shared>::visible_columns(&p);
        let shorts: Vec<_> = cols.iter().map(|s| s.short()).collect();
        assert_eq!(
            shorts.join(" "),
            "Logi List Stat Sele Fetc Fet2 Copy Stor Dele Expu Appe Logo"
        );
        let out = Shared::default();
        let mut console = Console::new(out.clone(), Shared::default(), cols, Some(p), 10);
        let mut iv = Interval::new();
        let now = std::time::Instant::now();
        iv.record(&Event::Command {
            op: Op::Imap(State::Login),
            outcome: Outcome::Ok,
            intended: now,
            started: now,
            finished: now + std::time::Duration::from_millis(3),
        });
        iv.active = 4;
        iv.open = 5;
        iv.slots_used = 5;
        console.interval(&iv);
        console.finish(&iv);
        let text = String::from_utf8(out.0.lock().unwrap().clone()).unwrap();
        assert!(text.contains("Logi List Stat Sele Fetc Fet2 Copy Stor Dele Expu Appe Logo\n"));
        assert!(text.contains("100%  50%  50% 100% 100% 100%  33%  50% 100% 100% 100% 100%\n"));
        assert!(text.contains("\n   1    0    0"), "{text}");
        assert!(text.contains("  4/  5 [50%]\n"), "{text}");
        assert!(text.contains("   3    0"), "average line: {text}");
        assert!(text.contains("Totals:\n"));
        assert!(!text.contains("Errors by kind"), "{text}");
    }

    #[test]
    fn totals_list_error_kinds_after_the_counts() {
        let out = Shared::default();
        let mut console = Console::new(out.clone(), Shared::default(), vec![State::Login], None, 1);
        let mut totals = Interval::new();
        for kind in [
            ErrorKind::SearchMissing,
            ErrorKind::UidChanged,
            ErrorKind::UidChanged,
            ErrorKind::UidChanged,
        ] {
            totals.record(&Event::Report(Report {
                severity: Severity::Error,
                user: None,
                connection: None,
                message: "m".into(),
                line: None,
                kind: Some(kind),
            }));
        }
        console.finish(&totals);
        let text = String::from_utf8(out.0.lock().unwrap().clone()).unwrap();
        assert!(
            text.ends_with("Logi\n   0\nErrors by kind: uid-changed 3, search-missing 1\n"),
            "{text}"
        );
    }

    #[test]
    fn server_text_in_reports_is_inert_and_short() {
        let r = Report {
            severity: Severity::Error,
            user: Some("u".into()),
            connection: Some(1),
            message: "error parsing input".into(),
            line: Some(format!("* OK \x1b]0;owned\x07{}", "(".repeat(200_000))),
            kind: Some(ErrorKind::Protocol),
        };
        let text = format_report(&r);
        assert!(!text.chars().any(char::is_control), "{text:?}");
        assert!(text.starts_with("Error: u[1]: error parsing input: * OK \\x1b]0;owned\\x07(("));
        assert!(text.len() < 500, "{}", text.len());
        assert!(text.ends_with("… (200015 bytes)"), "{text}");
    }

    #[test]
    fn a_flood_of_reports_prints_a_hundred_a_second_and_says_so() {
        let err = Shared::default();
        let mut console = Console::new(Shared::default(), err.clone(), vec![State::Login], None, 1);
        let report = Report {
            severity: Severity::Error,
            user: None,
            connection: Some(1),
            message: "BAD received".into(),
            line: None,
            kind: Some(ErrorKind::BadReply),
        };
        for _ in 0..1000 {
            console.report(&report);
        }
        console.interval(&Interval::new());
        let text = String::from_utf8(err.0.lock().unwrap().clone()).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 101, "{text}");
        assert_eq!(
            lines[100],
            "Warning: 900 more error and 0 more warning lines not shown (more than 100 a second; all are counted in Totals)"
        );
    }

    #[test]
    fn report_format_names_user_and_connection() {
        let r = Report {
            severity: Severity::Error,
            user: Some("testuser1".into()),
            connection: Some(7),
            message: "SELECT failed".into(),
            line: Some("7.3 NO no such mailbox".into()),
            kind: Some(ErrorKind::CommandFailed),
        };
        assert_eq!(
            format_report(&r),
            "Error: testuser1[7]: SELECT failed: 7.3 NO no such mailbox"
        );
    }
}
