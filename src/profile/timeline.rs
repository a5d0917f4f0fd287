//! Runs a schedule on tokio timers: each action is handed over at its intended time,
//! with its lateness (how much later than intended it was handed over).
//!
//! [`Precision::Timer`] uses plain `tokio::time::sleep_until` (1 ms timer wheel; works
//! with paused time in tests). [`Precision::Fine`] sleeps until shortly before the
//! deadline and then yields until it is reached, for sub-millisecond accuracy at the
//! cost of some CPU just before each action.
//!
//! [`run_blocking`] dispatches from a dedicated OS thread with `std::thread::sleep`
//! (high-resolution timers, typically 50-100 µs late) and almost no CPU; its handler
//! hands actions to the tokio runtime (e.g. `Handle::spawn` or a channel). It is the
//! precise choice for real runs; the async [`run`] is the one tests drive on paused time.
//!
//! [`LmtpQueue`] limits parallel LMTP deliveries: a delivery that finds all slots busy
//! waits for one, and the wait is its lateness — nothing is dropped.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio::time::Instant;

use super::schedule::ScheduledAction;

/// How precisely actions are handed over.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Precision {
    /// `sleep_until` only (≈1 ms resolution). Use with paused tokio time.
    Timer,
    /// Sleep until `spin` before the deadline, then yield to the runtime until it.
    Fine { spin: Duration },
}

impl Default for Precision {
    fn default() -> Self {
        Precision::Fine {
            spin: Duration::from_millis(1),
        }
    }
}

/// Hands every action of `schedule` to `handler` at `start + action.at`, with its
/// lateness. Returns the number of actions handed over. The handler must not block:
/// the runtime spawns the work (sessions, deliveries) and returns.
pub async fn run<I, F>(schedule: I, start: Instant, precision: Precision, mut handler: F) -> u64
where
    I: IntoIterator<Item = ScheduledAction>,
    F: FnMut(ScheduledAction, Duration),
{
    let mut count = 0;
    for action in schedule {
        let deadline = start + action.at;
        wait_until(deadline, precision).await;
        let lateness = Instant::now().saturating_duration_since(deadline);
        handler(action, lateness);
        count += 1;
    }
    count
}

/// Like [`run`], on the calling (dedicated) thread with `std::thread::sleep`, spinning
/// for the last `spin` before each deadline (0: no spinning). Stops early when `stop`
/// becomes true (checked at least every 50 ms). Returns the number of actions handed over.
pub fn run_blocking<I, F>(
    schedule: I,
    start: std::time::Instant,
    spin: Duration,
    stop: &std::sync::atomic::AtomicBool,
    mut handler: F,
) -> u64
where
    I: IntoIterator<Item = ScheduledAction>,
    F: FnMut(ScheduledAction, Duration),
{
    const SLICE: Duration = Duration::from_millis(50);
    let mut count = 0;
    for action in schedule {
        let deadline = start + action.at;
        loop {
            if stop.load(Ordering::Relaxed) {
                return count;
            }
            let now = std::time::Instant::now();
            if now >= deadline {
                break;
            }
            let wait = deadline - now;
            if wait > spin {
                std::thread::sleep((wait - spin).min(SLICE));
            } else {
                std::hint::spin_loop();
            }
        }
        let lateness = std::time::Instant::now().saturating_duration_since(deadline);
        handler(action, lateness);
        count += 1;
    }
    count
}

/// Waits until `deadline` with the given precision.
pub async fn wait_until(deadline: Instant, precision: Precision) {
    match precision {
        Precision::Timer => {
            if Instant::now() < deadline {
                tokio::time::sleep_until(deadline).await;
            }
        }
        Precision::Fine { spin } => {
            let now = Instant::now();
            if now >= deadline {
                return;
            }
            if deadline - now > spin {
                tokio::time::sleep_until(deadline - spin).await;
            }
            while Instant::now() < deadline {
                tokio::task::yield_now().await;
            }
        }
    }
}

/// Limits parallel LMTP deliveries (`servers.lmtp.max_parallel`) with a queue.
#[derive(Debug, Clone)]
pub struct LmtpQueue {
    slots: Option<Arc<Semaphore>>,
    waiting: Arc<AtomicU64>,
}

/// Permission to deliver; the slot is freed when dropped.
#[derive(Debug)]
pub struct DeliverySlot {
    _permit: Option<OwnedSemaphorePermit>,
    /// How long the delivery waited in the queue (zero: a slot was free at once).
    pub queued: Duration,
}

impl LmtpQueue {
    /// `None`: unlimited.
    pub fn new(max_parallel: Option<u32>) -> Self {
        LmtpQueue {
            slots: max_parallel.map(|n| Arc::new(Semaphore::new(n.max(1) as usize))),
            waiting: Arc::new(AtomicU64::new(0)),
        }
    }

    /// Waits for a free delivery slot.
    pub async fn acquire(&self) -> DeliverySlot {
        let Some(slots) = &self.slots else {
            return DeliverySlot {
                _permit: None,
                queued: Duration::ZERO,
            };
        };
        if let Ok(permit) = slots.clone().try_acquire_owned() {
            return DeliverySlot {
                _permit: Some(permit),
                queued: Duration::ZERO,
            };
        }
        let queued_at = Instant::now();
        self.waiting.fetch_add(1, Ordering::Relaxed);
        let permit = slots.clone().acquire_owned().await.ok();
        self.waiting.fetch_sub(1, Ordering::Relaxed);
        DeliverySlot {
            _permit: permit,
            queued: queued_at.elapsed(),
        }
    }

    /// Deliveries currently waiting for a slot.
    pub fn waiting(&self) -> u64 {
        self.waiting.load(Ordering::Relaxed)
    }
}
