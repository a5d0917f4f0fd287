//! The search for the largest passing user count, as a state machine that knows nothing
//! of running steps: it says which user count to run next and is told how it went.
//!
//! Ramp: `from`, then `growth` times more each step (capped at `to`) until a step
//! fails. Bisection: the middle of the last pass and the first fail, until they are
//! `resolution` apart (as a fraction of the pass, and at least one user). A failing
//! step is run again once and only the second result counts, so one noisy window
//! doesn't decide.

use super::document::Phase;

/// The search's bounds and pace.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Bounds {
    pub from: u64,
    pub to: u64,
    pub growth: f64,
    pub resolution: f64,
}

/// What to do next.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Next {
    Run {
        users: u64,
        phase: Phase,
        /// 2 for the re-run of a failed step.
        attempt: u32,
    },
    /// The search is over: see [`Search::passed`] and [`Search::failed`].
    Done,
}

#[derive(Debug, Clone)]
pub struct Search {
    bounds: Bounds,
    phase: Phase,
    /// The largest user count that passed.
    passed: Option<u64>,
    /// The smallest user count that failed (twice).
    failed: Option<u64>,
}

impl Search {
    pub fn new(bounds: Bounds) -> Search {
        Search {
            bounds,
            phase: Phase::Ramp,
            passed: None,
            failed: None,
        }
    }

    /// The first step.
    pub fn first(&self) -> Next {
        Next::Run {
            users: self.bounds.from.min(self.bounds.to),
            phase: Phase::Ramp,
            attempt: 1,
        }
    }

    pub fn passed(&self) -> Option<u64> {
        self.passed
    }

    pub fn failed(&self) -> Option<u64> {
        self.failed
    }

    /// Records how the step at `users` (attempt `attempt`) went and says what is next.
    pub fn record(&mut self, users: u64, attempt: u32, pass: bool) -> Next {
        if !pass && attempt == 1 {
            return Next::Run {
                users,
                phase: self.phase,
                attempt: 2,
            };
        }
        if pass {
            self.passed = Some(self.passed.map_or(users, |p| p.max(users)));
        } else {
            self.failed = Some(self.failed.map_or(users, |f| f.min(users)));
        }
        match (self.passed, self.failed) {
            (_, None) => {
                if users >= self.bounds.to {
                    return Next::Done;
                }
                let grown = (users as f64 * self.bounds.growth).ceil() as u64;
                Next::Run {
                    users: grown.max(users + 1).min(self.bounds.to),
                    phase: Phase::Ramp,
                    attempt: 1,
                }
            }
            (None, Some(_)) => Next::Done,
            (Some(lo), Some(hi)) => {
                let close = ((lo as f64 * self.bounds.resolution).ceil() as u64).max(1);
                if hi <= lo || hi - lo <= close {
                    return Next::Done;
                }
                self.phase = Phase::Bisect;
                Next::Run {
                    users: lo + (hi - lo) / 2,
                    phase: Phase::Bisect,
                    attempt: 1,
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Runs a search against a server that holds `limit` users; `flaky` fails the first
    /// attempt at these user counts (noise).
    fn run_search(bounds: Bounds, limit: u64, flaky: &[u64]) -> (Search, Vec<(u64, u32)>) {
        let mut search = Search::new(bounds);
        let mut next = search.first();
        let mut steps = Vec::new();
        while let Next::Run { users, attempt, .. } = next {
            steps.push((users, attempt));
            assert!(steps.len() < 100, "the search must end: {steps:?}");
            let noisy = attempt == 1 && flaky.contains(&users);
            next = search.record(users, attempt, users <= limit && !noisy);
        }
        (search, steps)
    }

    const BOUNDS: Bounds = Bounds {
        from: 50,
        to: 5000,
        growth: 2.0,
        resolution: 0.05,
    };

    #[test]
    fn finds_the_limit_within_the_resolution() {
        for limit in [50, 63, 99, 100, 101, 250, 777, 3000, 4999] {
            let (search, steps) = run_search(BOUNDS, limit, &[]);
            let lo = search.passed().unwrap();
            let hi = search.failed().unwrap();
            assert!(lo <= limit && limit < hi, "{limit}: {lo}..{hi} {steps:?}");
            assert!(
                hi - lo <= (lo as f64 * 0.05).ceil() as u64,
                "{limit}: {lo}..{hi}"
            );
        }
    }

    #[test]
    fn a_failed_step_is_run_again_and_noise_does_not_decide() {
        let (search, steps) = run_search(BOUNDS, 300, &[200]);
        assert_eq!(&steps[..4], &[(50, 1), (100, 1), (200, 1), (200, 2)]);
        assert!(search.passed().unwrap() >= 285, "{steps:?}");
        // Real failures are confirmed before they count.
        assert!(
            steps.contains(&(400, 1)) && steps.contains(&(400, 2)),
            "{steps:?}"
        );
    }

    #[test]
    fn bounds_end_the_search() {
        let (search, steps) = run_search(BOUNDS, 10_000, &[]);
        assert_eq!(search.passed(), Some(5000));
        assert_eq!(search.failed(), None);
        assert_eq!(steps.last(), Some(&(5000, 1)));
        let (search, steps) = run_search(BOUNDS, 10, &[]);
        assert_eq!(search.passed(), None);
        assert_eq!(search.failed(), Some(50));
        assert_eq!(steps, [(50, 1), (50, 2)]);
    }

    #[test]
    fn tiny_counts_still_progress() {
        let bounds = Bounds {
            from: 1,
            to: 20,
            growth: 1.1,
            resolution: 0.0,
        };
        let (search, _) = run_search(bounds, 7, &[]);
        assert_eq!((search.passed(), search.failed()), (Some(7), Some(8)));
    }
}
