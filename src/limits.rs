//! Bounds on everything a server or a user controls, in one place (documented for
//! users in `docs/limits.md`). A server that goes past one gets an error of kind
//! `limit-exceeded` and loses its connection; a user's absurd value is refused before
//! the run starts. Bounds that belong to one codec (line and literal sizes) live there
//! and are listed in `docs/limits.md` too.

use std::time::Duration;

/// Messages the mailbox model (and the `test=` runner) tracks per selected mailbox.
/// An `EXISTS` beyond it would cost memory for every sequence number (about 36 bytes
/// each): the connection is dropped instead. Use `no_tracking` for larger mailboxes.
pub const MAX_TRACKED_MESSAGES: u32 = 1_000_000;

/// Untagged data kept while one IMAP command is answered by the sequential client
/// (profile sessions, start-up checks): bytes kept plus a fixed cost per response.
pub const MAX_UNTAGGED_BYTES_PER_COMMAND: usize = 16 * 1024 * 1024;
/// What one kept response costs besides its bytes (for the bound above).
pub const UNTAGGED_OVERHEAD: usize = 64;

/// Largest message `random_msg_size=` (and a profile's `write_size`) may ask for.
pub const MAX_MESSAGE_SIZE: u64 = 256 * 1024 * 1024;

/// LMTP deliveries of a profile run in flight at once (queued for a slot or being
/// delivered). Beyond it a delivery is not attempted: it counts as failed with a
/// `limit-exceeded` error (the server, or `max_parallel`, can't keep up with the rate).
pub const MAX_DELIVERIES_IN_FLIGHT: u64 = 10_000;

/// Actions queued for one (user, client) session of a profile run while an earlier
/// one still runs. Beyond it actions are skipped with a `limit-exceeded` error.
pub const MAX_SESSION_QUEUE: usize = 1_000;

/// Bytes of LMTP-delivered messages a profile run keeps to check what IMAP clients are
/// later told about them (content truth). Deliveries past it go unchecked: a long run
/// would otherwise hold every message it ever delivered.
pub const MAX_DELIVERY_TRUTH_BYTES: u64 = 64 * 1024 * 1024;

/// Users a profile may simulate (the schedule keeps about 200 bytes per user).
pub const MAX_PROFILE_USERS: u64 = 5_000_000;

/// Connections one profile client session opens (`connections =`).
pub const MAX_CONNECTIONS_PER_CLIENT: u32 = 100;

/// Actions a dry-run plan may hold (about 60 bytes each in `plan.csv`: 3 GB at most).
pub const MAX_PLAN_ACTIONS: u64 = 50_000_000;

/// Error and warning lines printed on the console per second; later ones in the same
/// second are only counted (in Totals and the CSV) and one line says how many.
pub const MAX_REPORTS_PER_SECOND: u32 = 100;

/// How often a planned IDLE is renewed (RFC 2177 asks for less than 29 minutes), so
/// an IDLE that the server keeps busy still ends in time.
pub const IDLE_RENEW: Duration = Duration::from_secs(25 * 60);

/// How many report lines the console may print: [`MAX_REPORTS_PER_SECOND`] per
/// second, the rest only counted (and said so once a second).
#[derive(Debug)]
pub struct PrintBudget {
    window: std::time::Instant,
    printed: u32,
    suppressed: u64,
}

impl Default for PrintBudget {
    fn default() -> Self {
        PrintBudget {
            window: std::time::Instant::now(),
            printed: 0,
            suppressed: 0,
        }
    }
}

impl PrintBudget {
    /// True if one more line may be printed at `now`; otherwise it is counted.
    pub fn allow(&mut self, now: std::time::Instant) -> bool {
        if now.duration_since(self.window) >= Duration::from_secs(1) {
            self.window = now;
            self.printed = 0;
        }
        if self.printed < MAX_REPORTS_PER_SECOND {
            self.printed += 1;
            true
        } else {
            self.suppressed += 1;
            false
        }
    }

    /// Lines not printed since the last call.
    pub fn take_suppressed(&mut self) -> u64 {
        std::mem::take(&mut self.suppressed)
    }
}

/// Why a value given by the user is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{what}={value} is more than the {limit} bytes imaptest allows (docs/limits.md)")]
pub struct TooLarge {
    pub what: &'static str,
    pub value: u64,
    pub limit: u64,
}

/// Checks a message size asked for by `what` (`random_msg_size`, `write_size`).
pub fn message_size(what: &'static str, value: u64) -> Result<u64, TooLarge> {
    if value > MAX_MESSAGE_SIZE {
        return Err(TooLarge {
            what,
            value,
            limit: MAX_MESSAGE_SIZE,
        });
    }
    Ok(value)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn report_lines_are_printed_up_to_the_budget_per_second() {
        let start = std::time::Instant::now();
        let mut budget = PrintBudget::default();
        let allowed = (0..250).filter(|_| budget.allow(start)).count();
        assert_eq!(allowed, MAX_REPORTS_PER_SECOND as usize);
        assert_eq!(budget.take_suppressed(), 150);
        assert_eq!(budget.take_suppressed(), 0);
        // A new second, a new budget.
        assert!(budget.allow(start + Duration::from_millis(1001)));
    }

    #[test]
    fn absurd_message_sizes_are_refused() {
        assert_eq!(message_size("random_msg_size", 4096), Ok(4096));
        let e = message_size("random_msg_size", 81_000_000_000).unwrap_err();
        assert_eq!(
            e.to_string(),
            "random_msg_size=81000000000 is more than the 268435456 bytes imaptest allows (docs/limits.md)"
        );
    }
}
