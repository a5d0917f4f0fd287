//! What the sessions and deliveries of one user share: who the user is, which UID each
//! delivered message got, and when it was handed to LMTP (for end-to-end latency).

use std::collections::HashMap;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::metrics::Gauges;

/// One simulated user.
#[derive(Debug)]
pub(super) struct UserShared {
    pub index: u32,
    pub name: String,
    /// Shared by the users without a password of their own (a million users: a
    /// million copies otherwise).
    pub password: Arc<str>,
    pub population: u16,
    /// Shared by the population's users.
    pub population_name: Arc<str>,
    pub mail: Mutex<UserMail>,
    /// Notified whenever one of the user's deliveries ends (accepted or not), for
    /// actions waiting on a message still in flight.
    pub delivery_ended: tokio::sync::Notify,
    /// Sessions open now (the user counts as active while any is).
    open_sessions: AtomicU32,
}

/// What became of a delivered message, as far as actions on it care.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Fate {
    /// Handed to the delivery task; the LMTP transaction has not ended.
    InFlight,
    /// Accepted by the server (the client may not have seen it yet).
    Delivered,
    /// Refused, or the delivery failed.
    Failed,
    /// Deleted or moved by an action, or downloaded and deleted by POP3.
    Gone,
}

/// The user's mail as the runtime knows it.
#[derive(Debug, Default)]
pub(super) struct UserMail {
    /// INBOX UID of each delivered message (by the schedule's message number), once a
    /// client has seen it.
    pub inbox: HashMap<u32, u32>,
    /// Messages handed to LMTP that no client has seen yet: when the transaction began.
    submitted: HashMap<u32, Instant>,
    /// Drafts UID of each draft (by the schedule's draft number).
    pub drafts: HashMap<u32, u32>,
    /// The fate of each message not yet seen by an IMAP client (and of gone ones).
    fates: HashMap<u32, Fate>,
}

impl UserMail {
    /// Message `msg` is being handed to LMTP now (its end-to-end clock starts).
    pub fn submitted(&mut self, msg: u32, at: Instant) {
        self.submitted.insert(msg, at);
    }

    /// A client saw message `msg` as `uid`: the end-to-end latency on first sight.
    pub fn seen(&mut self, msg: u32, uid: u32, now: Instant) -> Option<Duration> {
        // An IMAP UID replaces a POP3 sighting (UID 0), never the other way round.
        let known = match self.inbox.get(&msg) {
            Some(&old) => {
                if uid != 0 {
                    self.inbox.insert(msg, uid);
                }
                old != 0 || uid == 0
            }
            None => {
                self.inbox.insert(msg, uid);
                false
            }
        };
        if uid != 0 && self.fates.get(&msg) != Some(&Fate::Gone) {
            self.fates.remove(&msg);
        }
        if known {
            return None;
        }
        self.submitted
            .remove(&msg)
            .map(|at| now.saturating_duration_since(at))
    }

    /// The message is gone (deleted, moved, or downloaded and deleted over POP3).
    pub fn forget(&mut self, msg: u32) {
        self.inbox.remove(&msg);
        self.submitted.remove(&msg);
        self.fates.insert(msg, Fate::Gone);
    }

    /// The delivery of `msg` was refused or failed: no client will see it.
    pub fn delivery_failed(&mut self, msg: u32) {
        self.inbox.remove(&msg);
        self.submitted.remove(&msg);
        self.fates.insert(msg, Fate::Failed);
    }

    /// Records the fate of message `msg`.
    pub fn set_fate(&mut self, msg: u32, fate: Fate) {
        // A message already seen by IMAP (or gone) needs no delivery news.
        if self.inbox.get(&msg).is_some_and(|&uid| uid != 0)
            || self.fates.get(&msg) == Some(&Fate::Gone)
        {
            return;
        }
        self.fates.insert(msg, fate);
    }

    /// The fate of `msg` (`None`: never offered for delivery in this run).
    pub fn fate(&self, msg: u32) -> Option<Fate> {
        if self.inbox.get(&msg).is_some_and(|&uid| uid != 0) {
            return Some(Fate::Delivered);
        }
        self.fates.get(&msg).copied()
    }
}

impl UserShared {
    pub fn new(
        index: u32,
        name: String,
        password: Arc<str>,
        population: u16,
        population_name: Arc<str>,
    ) -> Self {
        UserShared {
            index,
            name,
            password,
            population,
            population_name,
            mail: Mutex::new(UserMail::default()),
            delivery_ended: tokio::sync::Notify::new(),
            open_sessions: AtomicU32::new(0),
        }
    }

    pub fn mail(&self) -> std::sync::MutexGuard<'_, UserMail> {
        self.mail.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// A session opened: the user becomes active with its first.
    pub fn session_opened(&self, gauges: &Gauges) {
        if self.open_sessions.fetch_add(1, Ordering::AcqRel) == 0 {
            gauges.users.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// A session closed: the user is inactive after its last.
    pub fn session_closed(&self, gauges: &Gauges) {
        if self.open_sessions.fetch_sub(1, Ordering::AcqRel) == 1 {
            gauges.users.fetch_sub(1, Ordering::Relaxed);
        }
    }

    /// The delivery marker id of message `msg`: (user index, message number).
    pub fn marker_id(&self, msg: u32) -> u64 {
        (u64::from(self.index) << 32) | u64::from(msg)
    }

    /// The message number in a marker id, if the marker is this user's.
    pub fn marker_msg(&self, id: u64) -> Option<u32> {
        ((id >> 32) as u32 == self.index).then_some(id as u32)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn latency_is_measured_once_from_submission() {
        let mut mail = UserMail::default();
        let t0 = Instant::now();
        mail.submitted(1, t0);
        let later = t0 + Duration::from_millis(40);
        assert_eq!(mail.seen(1, 7, later), Some(Duration::from_millis(40)));
        assert_eq!(mail.seen(1, 7, later), None, "a second sighting");
        assert_eq!(mail.inbox.get(&1), Some(&7));
        // Seen without a submission of this run (an old message): no latency.
        assert_eq!(mail.seen(2, 8, later), None);
    }

    #[test]
    fn an_imap_uid_replaces_a_pop3_sighting() {
        let mut mail = UserMail::default();
        let t0 = Instant::now();
        mail.submitted(3, t0);
        assert!(mail.seen(3, 0, t0).is_some(), "POP3 saw it first");
        assert_eq!(mail.seen(3, 9, t0), None);
        assert_eq!(mail.inbox.get(&3), Some(&9));
        assert_eq!(mail.seen(3, 0, t0), None);
        assert_eq!(mail.inbox.get(&3), Some(&9), "POP3 doesn't erase the UID");
        mail.forget(3);
        assert!(!mail.inbox.contains_key(&3));
    }

    #[test]
    fn marker_ids_carry_user_and_message() {
        let user = UserShared::new(5, "u".into(), "p".into(), 0, "pop".into());
        let id = user.marker_id(12);
        assert_eq!(user.marker_msg(id), Some(12));
        let other = UserShared::new(6, "v".into(), "p".into(), 0, "pop".into());
        assert_eq!(other.marker_msg(id), None);
    }
}
