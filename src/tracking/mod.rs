//! State tracking: what each connection has been told about its mailbox, checked
//! against everything the server says later and against what other connections of the
//! same user were told.
//!
//! * [`Registry`]: shared by every connection of a run. Holds one [`Storage`] per
//!   user+mailbox (static data per UID, who saw `\Recent`, UIDs seen expunged) and the
//!   static data per Message-ID (the same message appended twice must look the same).
//! * [`View`]: one per connection: the sequence → UID map driven by EXISTS, EXPUNGE and
//!   VANISHED, per-message MODSEQ, the keywords announced by FLAGS, and the SEARCH
//!   being verified.
//!
//! Checks never panic and never stop a run: every finding is a [`Finding`] the
//! connection turns into a report.

pub mod checkpoint;
pub mod content;
pub mod date;
pub mod flags;
pub mod qresync;
pub mod search;
mod view;

pub use view::{Finding, View, header_field_names, write_arg};

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex, MutexGuard};

use crate::metrics::ErrorKind;

/// Longest excerpt of a value quoted in a finding.
const EXCERPT: usize = 300;
/// Expunged UIDs remembered per storage before the set is forgotten.
const MAX_EXPUNGED: usize = 100_000;
/// Message-IDs whose static data is remembered across mailboxes before the map is
/// forgotten (a server inventing Message-IDs must not grow it without end).
const MAX_MESSAGE_IDS: usize = 1_000_000;
/// The static items compared as text: their error kind and name.
const ENVELOPE: (ErrorKind, &str) = (ErrorKind::EnvelopeChanged, "ENVELOPE");
const BODY: (ErrorKind, &str) = (ErrorKind::BodyChanged, "BODY");
const BODYSTRUCTURE: (ErrorKind, &str) = (ErrorKind::BodystructureChanged, "BODYSTRUCTURE");

fn unix_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// Static data of a message (the same for every copy of it).
#[derive(Debug, Default)]
pub struct StaticData {
    pub size: Option<u64>,
    pub envelope: Option<Box<[u8]>>,
    pub body: Option<Box<[u8]>>,
    pub bodystructure: Option<Box<[u8]>>,
    /// For per-Message-ID data: the user and UID each item was first seen with, in
    /// the order size, ENVELOPE, BODY, BODYSTRUCTURE.
    pub origins: [Option<(Box<str>, u32)>; 4],
}

/// A `BODY[HEADER.FIELDS (...)]` section name and the reply.
pub type HeaderReply = (Box<[u8]>, Box<[u8]>);

/// What is known about one UID of a storage.
#[derive(Debug, Default)]
pub struct UidMeta {
    pub message_id: Option<Box<[u8]>>,
    pub internaldate: Option<(i64, Box<[u8]>)>,
    pub sent: Option<i64>,
    pub data: StaticData,
    /// The connection that saw `\Recent` on it first.
    pub recent_owner: Option<u64>,
    /// A second session was reported; report each UID once.
    pub recent_reported: bool,
    /// `own_msgs`: the owner's last view of the flags (sorted, lowercase, no
    /// `\Recent`), kept across the owner slot's sessions; `None` after its own STORE.
    pub owner_flags: Option<Vec<Box<[u8]>>>,
    /// `own_msgs`: the owner's last MODSEQ; 0 after its own STORE.
    pub owner_modseq: u64,
    /// `BODY[HEADER.FIELDS (...)]` replies by section name.
    pub headers: Vec<HeaderReply>,
    /// `qresync`: the highest MODSEQ any session was told.
    pub seen_modseq: u64,
    /// Unix time its static data was first received.
    pub first_seen: i64,
    /// The bytes imaptest sent for it (APPENDUID or an LMTP delivery).
    pub truth: Option<Arc<content::Truth>>,
    /// Content items already checked against `truth`.
    pub truth_checked: content::Checked,
}

/// One user's mailbox, shared by every connection that selects it.
#[derive(Debug, Default)]
pub struct Storage {
    pub uidvalidity: Option<u32>,
    pub uids: HashMap<u32, UidMeta>,
    pub expunged: HashSet<u32>,
    pub checkpoint: checkpoint::CheckpointState,
    /// Wakes connections holding for a checkpoint.
    pub notify: Arc<tokio::sync::Notify>,
    /// `qresync`: the last view saved for QRESYNC SELECTs.
    pub offline_cache: Option<Arc<qresync::OfflineCache>>,
}

impl Storage {
    fn expunged(&mut self, uid: u32) {
        self.uids.remove(&uid);
        if self.expunged.len() >= MAX_EXPUNGED {
            self.expunged.clear();
        }
        self.expunged.insert(uid);
    }
}

/// A storage as the connections share it.
pub type SharedStorage = Arc<Mutex<Storage>>;

/// Everything tracking shares across the connections of a run.
#[derive(Debug, Default)]
pub struct Registry {
    storages: Mutex<HashMap<(String, String), SharedStorage>>,
    messages: Mutex<HashMap<Box<[u8]>, StaticData>>,
    truths: Mutex<content::TruthCache>,
    /// Messages delivered over LMTP (profile mode), by marker id.
    deliveries: Mutex<Deliveries>,
}

/// LMTP deliveries remembered for content truth, up to
/// [`crate::limits::MAX_DELIVERY_TRUTH_BYTES`] of messages in a run.
#[derive(Debug, Default)]
struct Deliveries {
    by_marker: HashMap<u64, Arc<content::Truth>>,
    bytes: u64,
}

impl Registry {
    pub fn new() -> Arc<Self> {
        Arc::new(Registry::default())
    }

    /// The storage of `user`'s `mailbox`, created on first use.
    pub fn storage(&self, user: &str, mailbox: &str) -> Arc<Mutex<Storage>> {
        let mut map = lock(&self.storages);
        if let Some(s) = map.get(&(user.to_owned(), mailbox.to_owned())) {
            return s.clone();
        }
        let s = Arc::new(Mutex::new(Storage::default()));
        map.insert((user.to_owned(), mailbox.to_owned()), s.clone());
        s
    }

    /// A new per-connection view of `user`'s `mailbox`.
    pub fn view(self: &Arc<Self>, user: &str, mailbox: &str, connection: u64) -> View {
        let storage = self.storage(user, mailbox);
        let notify = {
            let mut s = lock(&storage);
            s.checkpoint.live.insert(connection);
            s.notify.clone()
        };
        View {
            registry: self.clone(),
            storage,
            notify,
            checkpoint: None,
            check_round: 0,
            checkpoints_passed: 0,
            user: user.into(),
            mailbox: mailbox.into(),
            connection,
            uids: Vec::new(),
            known_end: 0,
            msgs: Vec::new(),
            kw_names: Vec::new(),
            owned: Vec::new(),
            own_msgs: None,
            stores: Vec::new(),
            flags_epoch: 0,
            keywords: Vec::new(),
            flags_seen: false,
            imap4rev2: false,
            qresync: false,
            selected: false,
            select_modseq: 0,
            resync_next: None,
            resync: None,
            notes: Vec::new(),
            search: None,
            appends: Vec::new(),
            scratch: Vec::new(),
            findings: Vec::new(),
            limit_exceeded: false,
        }
    }

    /// Profile mode: delivery `marker` carried `bytes` (the server may put trace
    /// headers above them).
    /// Past the byte bound a delivery goes unchecked (the checked ones stay checked to
    /// the end of the run, so the bound is not a window that forgets).
    pub fn delivered(&self, marker: u64, bytes: bytes::Bytes) {
        let mut deliveries = lock(&self.deliveries);
        let size = bytes.len() as u64;
        if deliveries.bytes + size > crate::limits::MAX_DELIVERY_TRUTH_BYTES {
            return;
        }
        deliveries.bytes += size;
        deliveries
            .by_marker
            .insert(marker, Arc::new(content::Truth::new(bytes, true)));
    }

    /// The shared expectation of a message imaptest sends.
    pub fn truth(&self, bytes: &bytes::Bytes, prepend_allowed: bool) -> Arc<content::Truth> {
        lock(&self.truths).get(bytes, prepend_allowed)
    }
}

#[cfg(test)]
mod tests;
