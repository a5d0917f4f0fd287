//! Total time limits: a command, a reply or a start-up step must complete by its
//! deadline, however the server spaces its bytes. Each read still waits at most the
//! connection's own timeout; the deadline bounds them all together, so a server that
//! drips a byte a second, or floods without ever finishing, cannot keep a wait alive.

use std::time::Duration;

use tokio::time::Instant;

/// A point in time a wait must end by, and the limit it came from (for messages).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Deadline {
    at: Instant,
    limit: Duration,
}

impl Deadline {
    /// `limit` from now (an absurd limit is capped at about a century).
    pub fn after(limit: Duration) -> Self {
        let now = Instant::now();
        let at = now
            .checked_add(limit)
            .unwrap_or_else(|| now + Duration::from_secs(100 * 365 * 86_400));
        Deadline { at, limit }
    }

    /// `limit` from `start` (e.g. when a command was sent).
    pub fn from_start(start: std::time::Instant, limit: Duration) -> Self {
        let start = Instant::from_std(start);
        let at = start
            .checked_add(limit)
            .unwrap_or_else(|| start + Duration::from_secs(100 * 365 * 86_400));
        Deadline { at, limit }
    }

    /// The total time allowed.
    pub fn limit(&self) -> Duration {
        self.limit
    }

    pub fn at(&self) -> Instant {
        self.at
    }

    /// Time left (zero once past).
    pub fn remaining(&self) -> Duration {
        self.at.saturating_duration_since(Instant::now())
    }

    pub fn is_past(&self) -> bool {
        Instant::now() >= self.at
    }

    /// How long the next read may wait: its own `idle` limit (None: none), and never
    /// past the deadline. The flag says the deadline is the tighter bound.
    pub fn read_wait(
        deadline: Option<Deadline>,
        idle: Option<Duration>,
    ) -> (Option<Duration>, bool) {
        match (deadline.map(|d| d.remaining()), idle) {
            (Some(left), Some(idle)) if left < idle => (Some(left), true),
            (Some(left), None) => (Some(left), true),
            (_, idle) => (idle, false),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn the_tighter_bound_wins() {
        let d = Deadline::after(Duration::from_secs(10));
        assert_eq!(
            Deadline::read_wait(Some(d), Some(Duration::from_secs(3))),
            (Some(Duration::from_secs(3)), false)
        );
        tokio::time::advance(Duration::from_secs(8)).await;
        assert_eq!(
            Deadline::read_wait(Some(d), Some(Duration::from_secs(3))),
            (Some(Duration::from_secs(2)), true)
        );
        assert_eq!(
            Deadline::read_wait(Some(d), None),
            (Some(Duration::from_secs(2)), true)
        );
        assert_eq!(Deadline::read_wait(None, None), (None, false));
        tokio::time::advance(Duration::from_secs(3)).await;
        assert!(d.is_past());
        assert_eq!(d.remaining(), Duration::ZERO);
        assert_eq!(d.limit(), Duration::from_secs(10));
        // An absurd limit does not overflow.
        assert!(!Deadline::after(Duration::MAX).is_past());
    }
}
