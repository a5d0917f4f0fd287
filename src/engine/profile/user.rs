//! What the sessions and deliveries of one user share: who the user is, which UID each
//! delivered message got, and when it was handed to LMTP (for end-to-end latency).

use std::collections::HashMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use crate::metrics::Gauges;

/// One simulated user.
#[derive(Debug)]
pub(super) struct UserShared {
    pub index: u32,
    pub name: String,
    pub password: String,
    pub population: u16,
    pub population_name: String,
    pub mail: Mutex<UserMail>,
    /// Sessions open now (the user counts as active while any is).
    open_sessions: AtomicU32,
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
}

impl UserMail {
    /// Message `msg` is being handed to LMTP now (its end-to-end clock starts).
    pub fn submitted(&mut self, msg: u32, at: Instant) {
        self.submitted.insert(msg, at);
    }

    /// A client saw message `msg` as `uid`: the end-to-end latency on first sight.
    pub fn seen(&mut self, msg: u32, uid: u32, now: Instant) -> Option<Duration> {
        if self.inbox.insert(msg, uid).is_some() {
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
    }
}

impl UserShared {
    pub fn new(
        index: u32,
        name: String,
        password: String,
        population: u16,
        population_name: String,
    ) -> Self {
        UserShared {
            index,
            name,
            password,
            population,
            population_name,
            mail: Mutex::new(UserMail::default()),
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
