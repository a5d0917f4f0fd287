//! The sink that records what a summary needs while the run goes on: each second as a
//! compact [`Second`] (the histograms encoded at once, so an hour costs megabytes, not
//! the ~190 KB per live histogram) and the first few errors of each kind.

use std::sync::{Arc, Mutex};

use super::{ErrorExample, Second};
use crate::metrics::{ErrorKind, Interval, Report, Severity, Sink};

/// Examples kept per error kind.
pub const EXAMPLES_PER_KIND: usize = 3;
/// Longest server line kept in an example, in bytes.
pub const EXAMPLE_LINE_MAX: usize = 300;

/// What the recorder collected, taken by the edge after the run.
#[derive(Debug, Default)]
pub struct Recorded {
    pub seconds: Vec<Second>,
    pub examples: Vec<ErrorExample>,
    /// Set when the run is over.
    pub finished: bool,
}

/// Records seconds and error examples; share the handle from [`SummaryRecorder::new`]
/// to take them at the end (or at any time, for a summary of a run cut short).
pub struct SummaryRecorder {
    recorded: Arc<Mutex<Recorded>>,
    per_kind: [usize; ErrorKind::COUNT],
    elapsed: u64,
}

impl SummaryRecorder {
    pub fn new() -> (Self, Arc<Mutex<Recorded>>) {
        let recorded = Arc::new(Mutex::new(Recorded::default()));
        (
            SummaryRecorder {
                recorded: recorded.clone(),
                per_kind: [0; ErrorKind::COUNT],
                elapsed: 0,
            },
            recorded,
        )
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Recorded> {
        self.recorded.lock().unwrap_or_else(|p| p.into_inner())
    }
}

impl Sink for SummaryRecorder {
    fn interval(&mut self, interval: &Interval) {
        self.elapsed = interval.elapsed_secs;
        let second = Second::of(interval);
        self.lock().seconds.push(second);
    }

    fn report(&mut self, report: &Report) {
        if report.severity != Severity::Error {
            return;
        }
        let kind = report.kind.unwrap_or(ErrorKind::Other);
        let seen = &mut self.per_kind[kind as usize];
        if *seen >= EXAMPLES_PER_KIND {
            return;
        }
        *seen += 1;
        let example = ErrorExample {
            kind: kind.name().to_owned(),
            user: report.user.clone(),
            connection: report.connection,
            message: crate::text::inert(&report.message, EXAMPLE_LINE_MAX * 2),
            line: report
                .line
                .as_deref()
                .map(|l| crate::text::inert(l, EXAMPLE_LINE_MAX)),
            elapsed_secs: self.elapsed,
        };
        self.lock().examples.push(example);
    }

    fn finish(&mut self, _totals: &Interval) {
        self.lock().finished = true;
    }
}
