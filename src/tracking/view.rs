//! [`View`]: one connection's view of its selected mailbox, and the checks of every
//! reply against it and against the shared [`Storage`] of the mailbox.

use std::collections::HashSet;
use std::fmt::Write as _;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use super::flags::{MsgState, StoreIntent};
use super::search::{Facts, SearchKey};
use super::*;
use crate::imap::response::{FetchItem, SeqSet};
use crate::imap::token::Arg;
use crate::limits::MAX_TRACKED_MESSAGES;
use crate::metrics::{ErrorKind, Severity};
use crate::quirks;

impl Drop for View {
    fn drop(&mut self) {
        let mut s = lock(&self.storage);
        let me = self.connection;
        s.checkpoint.live.remove(&me);
        s.checkpoint.selected.remove(&me);
        if let Some(round) = s.checkpoint.round.as_mut() {
            round.members.retain(|m| *m != me);
            round.idle.remove(&me);
        }
        s.notify.notify_waiters();
    }
}

/// One finding: an error (the server lied) or a warning.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finding {
    pub severity: Severity,
    /// Set on errors.
    pub kind: Option<ErrorKind>,
    pub message: String,
}

#[derive(Debug)]
pub(super) struct PendingSearch {
    pub(super) key: Vec<SearchKey>,
    pub(super) replied: bool,
    /// Messages that must have matched but were not returned (checked at the tagged OK).
    pub(super) missing: Vec<(u32, u32)>,
}

/// One connection's view of its selected mailbox.
#[derive(Debug)]
pub struct View {
    pub(super) registry: Arc<Registry>,
    pub(super) storage: Arc<Mutex<Storage>>,
    pub(super) notify: Arc<tokio::sync::Notify>,
    /// `checkpoint=N`: the interval.
    pub checkpoint: Option<Duration>,
    /// The round this connection sent its CHECK for.
    pub(super) check_round: u64,
    /// Checkpoints this connection took part in that found nothing (for `ChkP`).
    pub checkpoints_passed: u32,
    pub(super) user: Box<str>,
    pub(super) mailbox: Box<str>,
    pub(super) connection: u64,
    /// Sequence − 1 → UID; 0 = not known yet.
    pub(super) uids: Vec<u32>,
    /// Every UID of `uids` from this index on is unknown: a new UID's order check
    /// looks no further (a FETCH 1:* of a big mailbox would be quadratic otherwise).
    pub(super) known_end: usize,
    /// Sequence − 1 → MODSEQ and flags.
    pub(super) msgs: Vec<MsgState>,
    /// Keywords seen in this selection; bit `5 + i` of [`MsgState::flags`] is `kw_names[i]`.
    pub(super) kw_names: Vec<Box<[u8]>>,
    /// `own_flags`: the flags and keywords this connection's slot owns.
    pub owned: Vec<&'static str>,
    /// `own_msgs`: (this slot, clients): a UID belongs to slot `uid % clients`.
    pub own_msgs: Option<(u32, u32)>,
    /// FETCH FLAGS seen so far in this view.
    pub(super) flags_epoch: u64,
    /// Our STOREs in flight (tag number, what they change).
    pub(super) stores: Vec<(u32, StoreIntent)>,
    /// Keywords announced by the last untagged FLAGS.
    pub(super) keywords: Vec<Box<[u8]>>,
    pub(super) flags_seen: bool,
    /// IMAP4rev2: `\Recent` is gone; FETCH FLAGS may still carry it and is ignored.
    pub imap4rev2: bool,
    /// QRESYNC is on: MODSEQs are shared for checking resyncs.
    pub qresync: bool,
    /// The SELECT completed.
    pub(super) selected: bool,
    /// HIGHESTMODSEQ of the SELECT (0: none).
    pub(super) select_modseq: u64,
    /// The QRESYNC SELECT sent, waiting for its turn.
    pub(super) resync_next: Option<qresync::Resync>,
    /// The QRESYNC SELECT being answered.
    pub(super) resync: Option<qresync::Resync>,
    /// Notes for the rawlog since the caller last took them.
    pub notes: Vec<String>,
    pub(super) search: Option<PendingSearch>,
    /// APPENDs in flight: tag number and the messages, in order.
    pub(super) appends: Vec<(u32, Vec<bytes::Bytes>)>,
    pub(super) scratch: Vec<u8>,
    /// Findings since the caller last took them.
    pub findings: Vec<Finding>,
    /// See [`View::limit_exceeded`].
    pub(super) limit_exceeded: bool,
}

impl View {
    /// Messages in the view.
    pub fn count(&self) -> u32 {
        u32::try_from(self.uids.len()).unwrap_or(u32::MAX)
    }

    /// A SELECT is starting: everything about the old selection is forgotten.
    pub fn reset(&mut self) {
        self.uids.clear();
        self.known_end = 0;
        self.msgs.clear();
        self.kw_names.clear();
        self.stores.clear();
        self.keywords.clear();
        self.flags_seen = false;
        self.search = None;
        self.selected = false;
        self.select_modseq = 0;
        self.resync = self.resync_next.take();
        self.set_selected(false);
    }

    /// The SELECT completed (`ok`: with OK).
    pub fn select_done(&mut self, ok: bool) {
        self.resync_done(ok);
        if ok {
            self.selected = true;
            self.set_selected(true);
        }
    }

    /// The SELECT completed (true) or a new one starts (false).
    pub fn set_selected(&mut self, selected: bool) {
        let mut s = lock(&self.storage);
        if selected {
            s.checkpoint.selected.insert(self.connection);
        } else {
            s.checkpoint.selected.remove(&self.connection);
        }
    }

    /// Waits for checkpoint progress of this storage.
    pub fn notified(&self) -> Arc<tokio::sync::Notify> {
        self.notify.clone()
    }

    /// What to do about checkpoints before sending more (`idle`: nothing in flight).
    pub fn checkpoint_gate(&mut self, idle: bool) -> checkpoint::Gate {
        use checkpoint::{Gate, ROUND_TIMEOUT, Round};
        let Some(interval) = self.checkpoint else {
            return Gate::Open;
        };
        let now = Instant::now();
        let storage_arc = self.storage.clone();
        let mut s = lock(&storage_arc);
        let me = self.connection;
        let cp = &mut s.checkpoint;
        if cp.round.is_none() {
            let next = *cp.next.get_or_insert(now + interval);
            if now < next {
                return Gate::Open;
            }
            let members: Vec<u64> = cp.selected.iter().copied().collect();
            if members.is_empty() {
                cp.next = Some(now + interval);
                return Gate::Open;
            }
            cp.rounds += 1;
            cp.round = Some(Round {
                id: cp.rounds,
                started: now,
                members,
                idle: HashSet::new(),
                checking: false,
                snapshots: Vec::new(),
            });
        }
        let live = cp.live.clone();
        let Some(round) = cp.round.as_mut() else {
            return Gate::Open;
        };
        if now.duration_since(round.started) > ROUND_TIMEOUT {
            cp.round = None;
            cp.next = Some(now + interval);
            s.notify.notify_waiters();
            drop(s);
            self.findings.push(Finding {
                severity: Severity::Warning,
                kind: None,
                message: format!(
                    "checkpoint of mailbox \"{}\" abandoned: connections didn't go idle within {ROUND_TIMEOUT:?}",
                    self.mailbox
                ),
            });
            return Gate::Open;
        }
        if idle {
            round.idle.insert(me);
        }
        round.members.retain(|m| live.contains(m));
        if !round.checking && live.iter().all(|c| round.idle.contains(c)) {
            round.checking = true;
            s.notify.notify_waiters();
        }
        let Some(round) = s.checkpoint.round.as_ref() else {
            return Gate::Open;
        };
        if round.checking && round.members.contains(&me) && self.check_round != round.id {
            self.check_round = round.id;
            return Gate::SendCheck;
        }
        drop(s);
        if self.try_finish_checkpoint() {
            return Gate::Open;
        }
        Gate::Hold
    }

    /// Our checkpoint CHECK completed: hand in the view.
    pub fn checkpoint_checked(&mut self) {
        let snapshot = checkpoint::Snapshot {
            connection: self.connection,
            uids: self.uids.clone(),
            flags: self
                .msgs
                .iter()
                .map(|m| {
                    m.flags_known.then(|| {
                        let mut v: Vec<Box<[u8]>> = self
                            .flag_names(m.flags)
                            .into_iter()
                            .map(|n| n.to_ascii_lowercase().into_bytes().into_boxed_slice())
                            .collect();
                        v.sort_unstable();
                        v
                    })
                })
                .collect(),
            modseqs: self.msgs.iter().map(|m| m.modseq).collect(),
        };
        {
            let mut s = lock(&self.storage);
            if let Some(round) = s.checkpoint.round.as_mut()
                && round.members.contains(&self.connection)
            {
                round.snapshots.push(snapshot);
            }
        }
        self.try_finish_checkpoint();
    }

    /// Compares when every member has handed in its view; true if the round ended.
    pub(super) fn try_finish_checkpoint(&mut self) -> bool {
        let Some(interval) = self.checkpoint else {
            return true;
        };
        let mut s = lock(&self.storage);
        let Some(round) = s.checkpoint.round.as_ref() else {
            return true;
        };
        let done = round.checking
            && round
                .members
                .iter()
                .all(|m| round.snapshots.iter().any(|snap| snap.connection == *m));
        if !done {
            return false;
        }
        let Some(round) = s.checkpoint.round.take() else {
            return true;
        };
        s.checkpoint.next = Some(Instant::now() + interval);
        s.notify.notify_waiters();
        drop(s);
        let snaps: Vec<_> = round
            .snapshots
            .into_iter()
            .filter(|snap| round.members.contains(&snap.connection))
            .collect();
        let errors = checkpoint::compare(&self.mailbox, &snaps);
        if errors.is_empty() {
            self.checkpoints_passed += u32::try_from(snaps.len()).unwrap_or(u32::MAX);
        }
        for e in errors {
            self.error(ErrorKind::CheckpointMismatch, e);
        }
        true
    }

    pub(super) fn error(&mut self, kind: ErrorKind, message: String) {
        self.findings.push(Finding {
            severity: Severity::Error,
            kind: Some(kind),
            message,
        });
    }

    /// `mailbox "INBOX" seq 3 UID 7 Message-ID <x@y>` for messages.
    pub(super) fn who(&self, seq: u32, uid: u32, message_id: Option<&[u8]>) -> String {
        let mut s = format!("mailbox \"{}\"", self.mailbox);
        if seq != 0 {
            let _ = write!(s, " seq {seq}");
        }
        if uid != 0 {
            let _ = write!(s, " UID {uid}");
        }
        if let Some(id) = message_id {
            let _ = write!(s, " Message-ID {}", String::from_utf8_lossy(id));
        }
        s
    }

    /// `* n EXISTS`
    pub fn exists(&mut self, n: u32) {
        if self.resync_defers_exists(n) {
            return;
        }
        self.exists_now(n);
    }

    pub(super) fn exists_now(&mut self, n: u32) {
        let count = self.count();
        if n < count {
            self.error(ErrorKind::ExistsShrank, format!(
                "{}: message count dropped without EXPUNGE: expected at least {count} messages, EXISTS says {n}",
                self.who(0, 0, None)
            ));
            // Believe the server from now on, or every later line would be an error too.
            self.uids.truncate(n as usize);
            self.known_end = self.known_end.min(n as usize);
            self.msgs.truncate(n as usize);
            return;
        }
        if n > MAX_TRACKED_MESSAGES {
            // Every sequence number costs memory: past the bound the connection must go.
            if !self.limit_exceeded {
                self.limit_exceeded = true;
                self.error(
                    ErrorKind::LimitExceeded,
                    format!(
                        "{}: EXISTS {n} is more than the {MAX_TRACKED_MESSAGES} messages imaptest tracks per mailbox (docs/limits.md; no_tracking turns tracking off)",
                        self.who(0, 0, None)
                    ),
                );
            }
            return;
        }
        self.uids.resize(n as usize, 0);
        self.msgs.resize(n as usize, MsgState::default());
    }

    /// The server went past a bound of the model (an EXISTS beyond
    /// [`MAX_TRACKED_MESSAGES`]): the finding is reported, the connection must be
    /// dropped.
    pub fn limit_exceeded(&self) -> bool {
        self.limit_exceeded
    }

    /// `* n EXPUNGE`
    pub fn expunge(&mut self, n: u32) {
        let count = self.count();
        if n == 0 || n > count {
            self.error(
                ErrorKind::ExpungeBeyondExists,
                format!(
                    "{}: EXPUNGE of seq {n}: expected a sequence in 1..={count}",
                    self.who(0, 0, None)
                ),
            );
            return;
        }
        let idx = (n - 1) as usize;
        let uid = self.remove_seq(idx);
        if uid != 0 {
            lock(&self.storage).expunged(uid);
        }
    }

    /// `* VANISHED uids` (not EARLIER): removes each UID that is in the view. A UID not
    /// known yet removes one unknown entry from the gap where it would be.
    pub fn vanished(&mut self, uids: &SeqSet) {
        let storage_arc = self.storage.clone();
        let mut storage = lock(&storage_arc);
        let mut unknown = Vec::new();
        for &(a, b) in &uids.0 {
            let (a, b) = (a.min(b), a.max(b));
            // `*` and huge ranges: only UIDs up to the highest in the view matter.
            let top = self.uids.iter().copied().max().unwrap_or(0).max(a);
            let open_ended = b == u32::MAX;
            let b = if open_ended { top } else { b };
            if b.saturating_sub(a) > 1_000_000 {
                continue;
            }
            for uid in a..=b {
                // Entries after the last known UID below `uid` and before the first
                // known UID at or above it.
                let mut gap_start = 0;
                let mut found = None;
                for (i, &u) in self.uids.iter().enumerate() {
                    if u == 0 {
                        continue;
                    }
                    if u < uid {
                        gap_start = i + 1;
                    } else {
                        found = Some(i);
                        break;
                    }
                }
                let gap_end = found.unwrap_or(self.uids.len());
                let remove = match found {
                    Some(i) if self.uids[i] == uid => Some(i),
                    // An unknown entry in the gap may be this UID; unknown entries are
                    // interchangeable, so removing the first is exact.
                    _ if gap_end > gap_start => Some(gap_start),
                    _ => None,
                };
                if let Some(i) = remove {
                    self.remove_seq(i);
                    storage.expunged(uid);
                } else if !open_ended {
                    unknown.push(uid);
                }
            }
        }
        drop(storage);
        // Like EXPUNGE, VANISHED removes messages the view has: a UID with no place
        // to be in it never existed for this session.
        for uid in unknown {
            self.error(
                ErrorKind::VanishedUnknownUid,
                format!(
                    "{}: VANISHED UID {uid}: expected a UID of the mailbox, the view has no place for it",
                    self.who(0, 0, None)
                ),
            );
        }
    }

    /// Untagged `FLAGS (...)`: the keywords the mailbox knows.
    pub fn flags(&mut self, flags: &[&[u8]]) {
        // A keyword that disappears while a message still has it. A message one of
        // our STOREs in flight may have taken it from does not count: a server may
        // drop a keyword no message has as soon as that STORE is done, before its
        // tagged OK (and a .SILENT one sends no FETCH at all).
        let storing = |seq: usize| {
            self.stores.iter().any(|(_, s)| {
                s.set
                    .iter()
                    .any(|&(a, b)| (a..=b).contains(&(seq as u32 + 1)))
            })
        };
        for (i, kw) in self.kw_names.iter().enumerate() {
            if flags.iter().any(|f| f.eq_ignore_ascii_case(kw)) {
                continue;
            }
            let bit = 1u64 << (flags::KEYWORD_BASE + i);
            let users = self
                .msgs
                .iter()
                .enumerate()
                .filter(|(seq, m)| m.flags_known && m.flags & bit != 0 && !storing(*seq))
                .count();
            if users > 0 {
                let kw = String::from_utf8_lossy(kw).into_owned();
                let message = format!(
                    "mailbox \"{}\": keyword {kw} dropped from FLAGS: expected it to stay, {users} message(s) still have it",
                    self.mailbox
                );
                self.findings.push(Finding {
                    severity: Severity::Error,
                    kind: Some(ErrorKind::KeywordDropped),
                    message,
                });
            }
        }
        self.keywords.clear();
        self.keywords.extend(
            flags
                .iter()
                .filter(|f| !f.starts_with(b"\\"))
                .map(|f| Box::<[u8]>::from(*f)),
        );
        self.flags_seen = true;
    }

    /// `[PERMANENTFLAGS (...)]`: keywords must have been announced by FLAGS first.
    pub fn permanent_flags(&mut self, flags: &[&[u8]]) {
        if !self.flags_seen {
            return;
        }
        for f in flags {
            if !f.starts_with(b"\\") && !self.has_keyword(f) {
                let kw = String::from_utf8_lossy(f).into_owned();
                self.error(
                    ErrorKind::UnannouncedPermanentFlag,
                    format!(
                        "{}: PERMANENTFLAGS keyword {kw} was not announced by FLAGS",
                        self.who(0, 0, None)
                    ),
                );
            }
        }
    }

    pub(super) fn has_keyword(&self, kw: &[u8]) -> bool {
        self.keywords.iter().any(|k| k.eq_ignore_ascii_case(kw))
    }

    /// `[UIDVALIDITY n]`: the same storage keeps its UIDVALIDITY.
    pub fn uidvalidity(&mut self, v: u32) {
        let mut storage = lock(&self.storage);
        match storage.uidvalidity {
            Some(old) if old != v => {
                storage.uidvalidity = Some(v);
                storage.uids.clear();
                storage.expunged.clear();
                storage.offline_cache = None;
                drop(storage);
                self.error(
                    ErrorKind::UidvalidityChanged,
                    format!(
                        "{}: UIDVALIDITY changed: expected {old}, got {v}",
                        self.who(0, 0, None)
                    ),
                );
            }
            _ => {
                storage.uidvalidity = Some(v);
                drop(storage);
            }
        }
        self.resync_uidvalidity(v);
    }

    /// `* seq FETCH (items)`
    pub fn fetch(&mut self, seq: u32, items: &[FetchItem<'_>]) {
        if self.resync.is_some() {
            let uid = items.iter().find_map(|i| match i {
                FetchItem::Uid(u) => Some(*u),
                _ => None,
            });
            self.resync_fetch(seq, uid);
        }
        let count = self.count();
        if seq == 0 || seq > count {
            self.error(
                ErrorKind::FetchBeyondExists,
                format!(
                    "{}: FETCH for seq {seq} beyond EXISTS: expected a sequence in 1..={count}",
                    self.who(0, 0, None)
                ),
            );
            return;
        }
        let idx = (seq - 1) as usize;
        let mut uid = self.uids[idx];
        if quirks::fabricated_expunged(items) {
            // A made-up message says nothing about the real one: report it once,
            // under its own name, and keep it out of every model.
            for item in items {
                if let FetchItem::Uid(u) = item {
                    uid = self.fetched_uid(idx, *u);
                }
            }
            let who = self.who(seq, uid, None);
            self.error(
                ErrorKind::ExpungedMessageFabricated,
                format!(
                    "{who}: FETCH returned a made-up \"message unavailable\" message instead of \
                     the message's own data: expected its data, or NO, for a message another \
                     session expunged (RFC 2180 §4.1)"
                ),
            );
            return;
        }
        let mut statics = false;
        for item in items {
            match item {
                FetchItem::Uid(u) => uid = self.fetched_uid(idx, *u),
                FetchItem::Envelope(_)
                | FetchItem::InternalDate(_)
                | FetchItem::Rfc822Size(_)
                | FetchItem::Body(_)
                | FetchItem::BodyStructure(_)
                | FetchItem::Section { .. } => statics = true,
                _ => {}
            }
        }
        for item in items {
            match item {
                FetchItem::ModSeq(m) => self.fetched_modseq(idx, uid, *m),
                FetchItem::Flags(flags) => self.fetched_flags(seq, uid, flags),
                _ => {}
            }
        }
        if uid != 0 && statics {
            self.fetched_static(seq, uid, items);
        }
    }

    pub(super) fn fetched_uid(&mut self, idx: usize, u: u32) -> u32 {
        let seq = idx as u32 + 1;
        let known = self.uids[idx];
        if u == 0 {
            self.error(
                ErrorKind::InvalidUid,
                format!(
                    "{}: FETCH returned invalid UID 0",
                    self.who(seq, known, None)
                ),
            );
            return known;
        }
        if known != 0 {
            if known != u {
                self.error(
                    ErrorKind::UidChanged,
                    format!(
                        "{}: UID changed for seq {seq}: expected UID {known}, got {u}",
                        self.who(seq, known, None)
                    ),
                );
            }
            return known;
        }
        let lower = self.uids[..idx]
            .iter()
            .rposition(|&x| x != 0)
            .map(|i| (i, self.uids[i]));
        let upper = self.uids[idx + 1..self.known_end.max(idx + 1)]
            .iter()
            .position(|&x| x != 0)
            .map(|i| (idx + 1 + i, self.uids[idx + 1 + i]));
        if let Some((i, l)) = lower.filter(|&(_, l)| l >= u) {
            self.error(
                ErrorKind::UidOrder,
                format!(
                    "{}: UID {u} out of order: seq {} has UID {l}, expected a UID above it",
                    self.who(seq, 0, None),
                    i + 1
                ),
            );
            return 0;
        }
        if let Some((i, h)) = upper.filter(|&(_, h)| h <= u) {
            self.error(
                ErrorKind::UidOrder,
                format!(
                    "{}: UID {u} out of order: seq {} has UID {h}, expected a UID below it",
                    self.who(seq, 0, None),
                    i + 1
                ),
            );
            return 0;
        }
        self.uids[idx] = u;
        self.known_end = self.known_end.max(idx + 1);
        u
    }

    /// Removes sequence `idx + 1` from the view; returns its UID (0 if unknown).
    pub(super) fn remove_seq(&mut self, idx: usize) -> u32 {
        if idx < self.known_end {
            self.known_end -= 1;
        }
        self.msgs.remove(idx);
        self.uids.remove(idx)
    }

    pub(super) fn fetched_modseq(&mut self, idx: usize, uid: u32, m: u64) {
        let seq = idx as u32 + 1;
        let old = self.msgs[idx].modseq;
        if m == 0 {
            self.error(
                ErrorKind::InvalidModseq,
                format!("{}: invalid MODSEQ 0", self.who(seq, uid, None)),
            );
        } else if m < old {
            self.error(
                ErrorKind::ModseqBackwards,
                format!(
                    "{}: MODSEQ went backwards: expected at least {old}, got {m}",
                    self.who(seq, uid, None)
                ),
            );
        } else {
            self.msgs[idx].modseq = m;
            if self.qresync && uid != 0 {
                let mut storage = lock(&self.storage);
                let meta = storage.uids.entry(uid).or_default();
                meta.seen_modseq = meta.seen_modseq.max(m);
            }
        }
        if self.owns_msg(uid) && self.stores.is_empty() {
            let mut storage = lock(&self.storage);
            let meta = storage.uids.entry(uid).or_default();
            let before = std::mem::replace(&mut meta.owner_modseq, m);
            drop(storage);
            if before != 0 && m != before && m >= old {
                self.error(ErrorKind::OwnedModseqChanged, format!(
                    "{}: MODSEQ of owned message changed by another session: expected {before}, got {m}",
                    self.who(seq, uid, None)
                ));
            }
        }
    }

    pub(super) fn fetched_flags(&mut self, seq: u32, uid: u32, flags: &[&[u8]]) {
        let mut bits = 0u64;
        let mut complete = true;
        for flag in flags {
            if flag.starts_with(b"\\") {
                if let Some(bit) = flags::system_bit(flag) {
                    bits |= bit;
                } else if flag.eq_ignore_ascii_case(b"\\Recent") {
                    if uid != 0 && !self.imap4rev2 {
                        self.recent(seq, uid);
                    }
                } else {
                    let f = String::from_utf8_lossy(flag).into_owned();
                    self.error(
                        ErrorKind::InvalidFlag,
                        format!(
                            "{}: invalid system flag {f} in FETCH FLAGS",
                            self.who(seq, uid, None)
                        ),
                    );
                }
                continue;
            }
            if self.flags_seen && !self.has_keyword(flag) {
                let kw = String::from_utf8_lossy(flag).into_owned();
                self.error(
                    ErrorKind::UnannouncedKeyword,
                    format!(
                        "{}: keyword {kw} used in FETCH FLAGS without being announced by FLAGS",
                        self.who(seq, uid, None)
                    ),
                );
                // Report each keyword once per selection.
                self.keywords.push(Box::from(*flag));
            }
            match self.keyword_bit(flag) {
                Some(bit) => bits |= bit,
                None => complete = false,
            }
        }
        let idx = (seq - 1) as usize;
        let Some(state) = self.msgs.get(idx).copied() else {
            return;
        };
        if state.flags_known && complete && !self.owned.is_empty() && self.stores.is_empty() {
            let owned = self.owned_mask();
            let changed = (state.flags ^ bits) & owned;
            if changed != 0 {
                let message_id = self.message_id(uid);
                for name in self.flag_names(changed) {
                    let was = if state.flags & self.name_bit(&name) != 0 {
                        "set"
                    } else {
                        "clear"
                    };
                    let now = if was == "set" { "clear" } else { "set" };
                    self.error(ErrorKind::OwnedFlagChanged, format!(
                        "{}: owned flag {name} changed by another session: expected it {was}, got it {now}",
                        self.who(seq, uid, message_id.as_deref())
                    ));
                }
            }
        }
        if complete && self.stores.is_empty() && self.owns_msg(uid) {
            let mut names: Vec<Box<[u8]>> = flags
                .iter()
                .filter(|f| !f.eq_ignore_ascii_case(b"\\Recent"))
                .map(|f| f.to_ascii_lowercase().into_boxed_slice())
                .collect();
            names.sort_unstable();
            let mut storage = lock(&self.storage);
            let meta = storage.uids.entry(uid).or_default();
            let before = meta.owner_flags.replace(names.clone());
            let message_id = meta.message_id.clone();
            drop(storage);
            if let Some(before) = before.filter(|b| *b != names) {
                let text = |v: &[Box<[u8]>]| {
                    v.iter()
                        .map(|f| String::from_utf8_lossy(f).into_owned())
                        .collect::<Vec<_>>()
                        .join(" ")
                };
                self.error(ErrorKind::OwnedMessageChanged, format!(
                    "{}: flags of owned message changed by another session: expected ({}), got ({})",
                    self.who(seq, uid, message_id.as_deref()),
                    text(&before),
                    text(&names)
                ));
            }
        }
        self.flags_epoch += 1;
        let epoch = self.flags_epoch;
        if let Some(m) = self.msgs.get_mut(idx) {
            m.flags = bits;
            m.flags_known = complete;
            m.flags_epoch = epoch;
        }
    }

    /// `own_msgs`: this connection's slot owns `uid`.
    pub(super) fn owns_msg(&self, uid: u32) -> bool {
        uid != 0
            && self.own_msgs.is_some_and(|(slot, clients)| {
                flags::msg_owner(uid, clients) == slot % clients.max(1)
            })
    }

    /// `own_msgs`: sequences of messages this slot owns (UID known, not seen expunged).
    pub fn owned_seqs(&self) -> Vec<u32> {
        let storage = lock(&self.storage);
        self.uids
            .iter()
            .enumerate()
            .filter(|&(_, &uid)| self.owns_msg(uid) && !storage.expunged.contains(&uid))
            .map(|(i, _)| i as u32 + 1)
            .collect()
    }

    /// The bit of a keyword, registering it in this selection; `None` past the limit.
    pub(super) fn keyword_bit(&mut self, kw: &[u8]) -> Option<u64> {
        let i = match self
            .kw_names
            .iter()
            .position(|k| k.eq_ignore_ascii_case(kw))
        {
            Some(i) => i,
            None if self.kw_names.len() < flags::MAX_KEYWORDS => {
                self.kw_names.push(Box::from(kw));
                self.kw_names.len() - 1
            }
            None => return None,
        };
        Some(1 << (flags::KEYWORD_BASE + i))
    }

    pub(super) fn name_bit(&mut self, name: &str) -> u64 {
        flags::system_bit(name.as_bytes())
            .or_else(|| self.keyword_bit(name.as_bytes()))
            .unwrap_or(0)
    }

    pub(super) fn owned_mask(&mut self) -> u64 {
        let owned = std::mem::take(&mut self.owned);
        let mask = owned.iter().fold(0, |m, f| m | self.name_bit(f));
        self.owned = owned;
        mask
    }

    pub(super) fn flag_names(&self, bits: u64) -> Vec<String> {
        let mut names = Vec::new();
        for (i, f) in flags::SYSTEM_FLAGS.iter().enumerate() {
            if bits & (1 << i) != 0 {
                names.push((*f).to_owned());
            }
        }
        for (i, k) in self.kw_names.iter().enumerate() {
            if bits & (1 << (flags::KEYWORD_BASE + i)) != 0 {
                names.push(String::from_utf8_lossy(k).into_owned());
            }
        }
        names
    }

    pub(super) fn message_id(&self, uid: u32) -> Option<Box<[u8]>> {
        if uid == 0 {
            return None;
        }
        lock(&self.storage)
            .uids
            .get(&uid)
            .and_then(|m| m.message_id.clone())
    }

    /// One of our STOREs (tag `number`) was sent.
    pub fn store_sent(&mut self, number: u32, mut intent: StoreIntent) {
        intent.sent_epoch = self.flags_epoch;
        self.stores.push((number, intent));
    }

    /// Our STORE `number` completed. With `own_flags`, every message of its set whose
    /// flags are known must now show the change: a STORE that changed nothing needs no
    /// FETCH (RFC 3501), so only what is known is checked.
    pub fn store_done(&mut self, number: u32, ok: bool, expungeissued: bool) {
        let Some(i) = self.stores.iter().position(|(n, _)| *n == number) else {
            return;
        };
        let (_, intent) = self.stores.swap_remove(i);
        let count = self.count();
        // Whatever it did, our STORE may have changed flags and MODSEQs silently.
        let owner = self.own_msgs.is_some();
        let mut storage = lock(&self.storage);
        for &(a, b) in &intent.set {
            for seq in a.max(1)..=b.min(count) {
                let idx = (seq - 1) as usize;
                let m = &mut self.msgs[idx];
                if intent.silent {
                    // The new MODSEQ (and for untracked STOREs the flags) never came.
                    m.modseq = 0;
                    if intent.flags.is_empty() {
                        m.flags_known = false;
                    }
                }
                let uid = self.uids[idx];
                if owner
                    && uid != 0
                    && let Some(meta) = storage.uids.get_mut(&uid)
                {
                    meta.owner_flags = None;
                    meta.owner_modseq = 0;
                }
            }
        }
        drop(storage);
        if !ok {
            return;
        }
        let mask = intent.flags.iter().fold(0, |m, f| m | self.name_bit(f));
        if mask == 0 {
            return;
        }
        let others_in_flight = !self.stores.is_empty();
        let storage_arc = self.storage.clone();
        for &(a, b) in &intent.set {
            for seq in a.max(1)..=b.min(count) {
                let idx = (seq - 1) as usize;
                let uid = self.uids[idx];
                let state = self.msgs[idx];
                if !state.flags_known {
                    continue;
                }
                // Pipelined commands: a FETCH that came while the STORE was in flight
                // may be older or newer than its change, and another STORE of ours
                // may change the same flags; then only the server's word counts.
                let raced = state.flags_epoch > intent.sent_epoch || others_in_flight;
                if intent.silent {
                    let m = &mut self.msgs[idx];
                    if raced {
                        m.flags_known = false;
                    } else if intent.add {
                        m.flags |= mask;
                    } else {
                        m.flags &= !mask;
                    }
                    continue;
                }
                if others_in_flight {
                    continue;
                }
                let expunged = uid != 0 && lock(&storage_arc).expunged.contains(&uid);
                let have = state.flags & mask;
                let wrong = if intent.add { mask & !have } else { have };
                if wrong != 0 && !expungeissued && !expunged {
                    let message_id = self.message_id(uid);
                    let (op, want) = if intent.add {
                        ("+FLAGS", "set")
                    } else {
                        ("-FLAGS", "clear")
                    };
                    for name in self.flag_names(wrong) {
                        self.error(ErrorKind::StoreNotApplied, format!(
                            "{}: STORE {op} didn't update {name}: expected it {want} after the STORE, the server's flags say otherwise",
                            self.who(seq, uid, message_id.as_deref())
                        ));
                    }
                }
            }
        }
    }

    pub(super) fn recent(&mut self, seq: u32, uid: u32) {
        let mut storage = lock(&self.storage);
        let meta = storage.uids.entry(uid).or_default();
        match meta.recent_owner {
            None => meta.recent_owner = Some(self.connection),
            Some(owner) if owner != self.connection && !meta.recent_reported => {
                meta.recent_reported = true;
                let message_id = meta.message_id.clone();
                drop(storage);
                self.error(ErrorKind::RecentDuplicate, format!(
                    "{}: \\Recent flag in multiple sessions: expected only in connection {owner}, also seen in connection {}",
                    self.who(seq, uid, message_id.as_deref()),
                    self.connection
                ));
            }
            Some(_) => {}
        }
    }

    pub(super) fn fetched_static(&mut self, seq: u32, uid: u32, items: &[FetchItem<'_>]) {
        let storage_arc = self.storage.clone();
        let mut storage = lock(&storage_arc);
        let meta = storage.uids.entry(uid).or_default();
        if meta.first_seen == 0 {
            meta.first_seen = unix_now();
        }
        let mut errors: Vec<(ErrorKind, String)> = Vec::new();
        let scratch = &mut self.scratch;
        // The Message-ID first: later items are reported with it.
        for item in items {
            if let FetchItem::Envelope(env) = item
                && let Some(fields) = env.as_list()
                && !fields.iter().all(Arg::is_nil)
            {
                if let Some(Some(id)) = fields.get(9).and_then(Arg::as_nstring) {
                    match &meta.message_id {
                        Some(old) if !old.eq_ignore_ascii_case(id) => errors.push((
                            ErrorKind::MessageIdChanged,
                            format!(
                                "Message-ID changed: expected {}, got {}",
                                excerpt(old),
                                excerpt(id)
                            ),
                        )),
                        Some(_) => {}
                        None => meta.message_id = Some(Box::from(id)),
                    }
                }
                if meta.sent.is_none()
                    && let Some(Some(d)) = fields.first().and_then(Arg::as_nstring)
                {
                    meta.sent = date::parse_rfc5322(d);
                }
            }
        }
        let mut checked: [Option<&'static str>; 5] = [None; 5];
        for item in items {
            match item {
                FetchItem::InternalDate(d) => match date::parse_internaldate(d) {
                    None => errors.push((
                        ErrorKind::InvalidInternaldate,
                        format!("broken INTERNALDATE {}", excerpt(d)),
                    )),
                    Some(0) => {}
                    Some(t) => match &meta.internaldate {
                        Some((old, text)) if *old != t => errors.push((
                            // A message cannot have arrived after it was first seen:
                            // such a date belongs to a made-up stand-in (Courier's,
                            // dated at the FETCH). So is a date of this very moment
                            // that replaces one a little before it (a message appended
                            // just now) or days before it (an appended message keeps
                            // the date it was given; the stand-in is new).
                            if t > meta.first_seen
                                || ((t - unix_now()).abs() <= 5
                                    && t > *old
                                    && (t - *old <= 600 || t - *old > 86_400))
                            {
                                ErrorKind::ExpungedMessageFabricated
                            } else {
                                ErrorKind::InternaldateChanged
                            },
                            format!(
                                "INTERNALDATE changed: expected \"{}\", got \"{}\"",
                                String::from_utf8_lossy(text),
                                String::from_utf8_lossy(d)
                            ),
                        )),
                        Some(_) => {}
                        None => meta.internaldate = Some((t, Box::from(d.trim_ascii()))),
                    },
                },
                FetchItem::Rfc822Size(s) if *s != 0 => {
                    check_size(&mut meta.data.size, *s, "RFC822.SIZE", &mut errors);
                    checked[0] = Some("RFC822.SIZE");
                }
                FetchItem::Section {
                    name,
                    origin: None,
                    data,
                } if name.eq_ignore_ascii_case(b"BODY[]")
                    || name.eq_ignore_ascii_case(b"RFC822") =>
                {
                    if let Some(len) = data.literal_size().filter(|&l| l > 0) {
                        check_size(&mut meta.data.size, len, "BODY[] size", &mut errors);
                        checked[0] = Some("RFC822.SIZE");
                    }
                }
                FetchItem::Section {
                    name,
                    origin: None,
                    data,
                } if is_header_fields(name) => {
                    let Some(Some(text)) = data.as_nstring() else {
                        continue;
                    };
                    if text.is_empty() {
                        continue;
                    }
                    if let Some(h) = unexpected_header(name, text) {
                        errors.push((
                            ErrorKind::UnexpectedHeader,
                            format!(
                                "{} reply has header {h}: expected only the headers asked for",
                                String::from_utf8_lossy(name)
                            ),
                        ));
                    }
                    let section = canonical_header_section(name);
                    match meta
                        .headers
                        .iter()
                        .find(|(n, _)| n.eq_ignore_ascii_case(&section))
                    {
                        Some((_, old)) if **old != *text => errors.push((
                            ErrorKind::HeaderChanged,
                            format!(
                                "{} changed: expected '{}', got '{}'",
                                String::from_utf8_lossy(name),
                                excerpt(old).trim_end(),
                                excerpt(text).trim_end()
                            ),
                        )),
                        Some(_) => {}
                        None => meta.headers.push((section, Box::from(text))),
                    }
                }
                FetchItem::Envelope(env) if !is_placeholder_envelope(env) => {
                    scratch.clear();
                    write_arg(env, scratch);
                    check_text(&mut meta.data.envelope, scratch, ENVELOPE, &mut errors);
                    checked[1] = Some("ENVELOPE");
                }
                FetchItem::Body(b) => {
                    scratch.clear();
                    write_arg(b, scratch);
                    if !is_placeholder_body(scratch) {
                        check_text(&mut meta.data.body, scratch, BODY, &mut errors);
                        checked[2] = Some("BODY");
                    }
                }
                FetchItem::BodyStructure(b) => {
                    scratch.clear();
                    write_arg(b, scratch);
                    if !is_placeholder_body(scratch) {
                        check_text(
                            &mut meta.data.bodystructure,
                            scratch,
                            BODYSTRUCTURE,
                            &mut errors,
                        );
                        checked[3] = Some("BODYSTRUCTURE");
                    }
                }
                _ => {}
            }
        }
        // An expunged message's placeholder (RFC 2180 §4.1.3) says nothing of content.
        let mut placeholder = || {
            items.iter().any(|item| match item {
                FetchItem::Envelope(e) => is_placeholder_envelope(e),
                FetchItem::Body(b) | FetchItem::BodyStructure(b) => {
                    scratch.clear();
                    write_arg(b, scratch);
                    is_placeholder_body(scratch)
                }
                FetchItem::Rfc822Size(size) => *size == 0,
                _ => false,
            })
        };
        if let Some(truth) = meta.truth.clone()
            && !placeholder()
        {
            let mut mismatches = Vec::new();
            for item in items {
                content::check_item(&truth, item, &mut meta.truth_checked, &mut mismatches);
            }
            errors.extend(mismatches.into_iter().map(|m| {
                (
                    m.quirk.unwrap_or(ErrorKind::ContentMismatch),
                    format!("{m} (message imaptest wrote)"),
                )
            }));
        }
        // Copies with the same Message-ID must agree (only items that agreed per UID).
        if errors.is_empty()
            && let Some(id) = &meta.message_id
            && checked.iter().any(Option::is_some)
        {
            let mut messages = lock(&self.registry.messages);
            if messages.len() >= MAX_MESSAGE_IDS && !messages.contains_key(id) {
                messages.clear();
            }
            let global = match messages.get_mut(id) {
                Some(g) => g,
                None => messages.entry(id.clone()).or_default(),
            };
            // Each item is compared with the copy it was first seen with; a difference
            // is reported whichever copy came first (only a copy can't differ from
            // itself: the per-UID check above already agreed).
            let mut cross = Vec::new();
            let mut item = |i: usize, found: &mut Changes| {
                let origin = &mut global.origins[i];
                let (user, first_uid) = origin.get_or_insert_with(|| (self.user.clone(), uid));
                if *user == self.user && *first_uid == uid {
                    found.clear();
                    return;
                }
                for (kind, e) in found.drain(..) {
                    cross.push((
                        kind,
                        format!(
                            "{e} (as seen for user {user} UID {first_uid} with the same Message-ID)"
                        ),
                    ));
                }
            };
            let mut found = Vec::new();
            if let Some(s) = meta.data.size {
                check_size(&mut global.size, s, "RFC822.SIZE", &mut found);
                item(0, &mut found);
            }
            for (i, (mine, theirs, name)) in [
                (&meta.data.envelope, &mut global.envelope, ENVELOPE),
                (&meta.data.body, &mut global.body, BODY),
                (
                    &meta.data.bodystructure,
                    &mut global.bodystructure,
                    BODYSTRUCTURE,
                ),
            ]
            .into_iter()
            .enumerate()
            {
                if let Some(v) = mine {
                    check_text(theirs, v, name, &mut found);
                    item(i + 1, &mut found);
                }
            }
            errors.extend(cross.into_iter().map(|(kind, e)| match kind {
                ErrorKind::ExpungedMessageFabricated => (kind, e),
                _ => (ErrorKind::CopyDiffers, e),
            }));
        }
        if errors.is_empty() {
            return;
        }
        // One part recognised as the stand-in makes the whole reply the stand-in.
        if errors
            .iter()
            .any(|(k, _)| *k == ErrorKind::ExpungedMessageFabricated)
        {
            for (kind, _) in &mut errors {
                *kind = ErrorKind::ExpungedMessageFabricated;
            }
        }
        let message_id = meta.message_id.clone();
        drop(storage);
        for (kind, e) in errors {
            let who = self.who(seq, uid, message_id.as_deref());
            self.error(kind, format!("{who}: {e}"));
        }
    }

    /// An APPEND of these messages (in order) was sent with tag number `number`.
    pub fn append_sent(&mut self, number: u32, messages: Vec<bytes::Bytes>) {
        if !messages.is_empty() {
            self.appends.push((number, messages));
        }
    }

    /// The APPEND `number` completed; with APPENDUID for this mailbox, its UIDs hold
    /// the messages sent, whose content later replies are checked against.
    pub fn append_done(&mut self, number: u32, appenduid: Option<(u32, &SeqSet)>) {
        let Some(i) = self.appends.iter().position(|(n, _)| *n == number) else {
            return;
        };
        let (_, messages) = self.appends.swap_remove(i);
        let Some((validity, uids)) = appenduid else {
            return;
        };
        if uids.count() != messages.len() as u64 {
            return;
        }
        let truths: Vec<_> = messages
            .iter()
            .map(|m| self.registry.truth(m, false))
            .collect();
        let mut storage = lock(&self.storage);
        // Only where the mailbox's UIDVALIDITY is known and the same.
        if storage.uidvalidity != Some(validity) {
            return;
        }
        for (uid, truth) in uids.iter().zip(truths) {
            // Unchecked past the bound on messages held (docs/limits.md).
            let Some(truth) = truth else { continue };
            if storage.expunged.contains(&uid) {
                continue;
            }
            storage.uids.entry(uid).or_default().truth = Some(truth);
        }
    }

    /// Profile mode: `uid` showed the marker of LMTP delivery `marker`; later replies
    /// about it are checked against what was delivered.
    pub fn delivery_seen(&mut self, uid: u32, marker: u64) {
        let Some(truth) = lock(&self.registry.deliveries)
            .by_marker
            .get(&marker)
            .cloned()
        else {
            return;
        };
        let mut storage = lock(&self.storage);
        if storage.expunged.contains(&uid) {
            return;
        }
        let meta = storage.uids.entry(uid).or_default();
        if meta.truth.is_none() {
            meta.truth = Some(truth);
        }
    }

    /// A SEARCH with this query (root AND) was sent.
    pub fn search_sent(&mut self, key: Vec<SearchKey>) {
        self.search = Some(PendingSearch {
            key,
            replied: false,
            missing: Vec::new(),
        });
    }

    /// `* SEARCH nums` answering the pending SEARCH.
    pub fn search_reply(&mut self, nums: &[u32]) {
        let Some(mut pending) = self.search.take() else {
            return;
        };
        if pending.replied {
            self.error(
                ErrorKind::SearchDuplicateReply,
                format!("{}: duplicate SEARCH reply", self.who(0, 0, None)),
            );
            self.search = Some(pending);
            return;
        }
        pending.replied = true;
        let count = self.count();
        let mut sorted = nums.to_vec();
        sorted.sort_unstable();
        sorted.dedup();
        if let Some(&n) = sorted.iter().find(|&&n| n == 0 || n > count) {
            self.error(
                ErrorKind::SearchBeyondExists,
                format!(
                    "{}: SEARCH reply seq {n}: expected a sequence in 1..={count}",
                    self.who(0, 0, None)
                ),
            );
        }
        let storage_arc = self.storage.clone();
        let storage = lock(&storage_arc);
        let mut extra = Vec::new();
        // Dovecot 2.3's reading of the query, if it has one (a named quirk).
        let merged = search::dovecot_size_merge(&pending.key);
        let mut merge_answers = Vec::new();
        for (i, &uid) in self.uids.iter().enumerate() {
            let seq = i as u32 + 1;
            let meta = (uid != 0).then(|| storage.uids.get(&uid)).flatten();
            let facts = Facts {
                seq,
                size: meta.and_then(|m| m.data.size),
                internal: meta.and_then(|m| m.internaldate.as_ref().map(|d| d.0)),
                sent: meta.and_then(|m| m.sent),
            };
            let returned = sorted.binary_search(&seq).is_ok();
            let wrong = match search::and(&pending.key, &facts) {
                Some(true) if !returned => Some(&mut pending.missing),
                Some(false) if returned => Some(&mut extra),
                _ => None,
            };
            if let Some(list) = wrong {
                match &merged {
                    Some(m) if search::and(m, &facts) == Some(returned) => {
                        merge_answers.push((seq, uid))
                    }
                    _ => list.push((seq, uid)),
                }
            }
        }
        drop(storage);
        if !merge_answers.is_empty() {
            let query = query_text(&pending.key);
            for (seq, uid) in merge_answers {
                self.error(
                    ErrorKind::SearchSizeMerge,
                    format!(
                        "{}: SEARCH {query}: answered as if the size keys of one kind were \
                         merged into the looser one: expected each key to apply (RFC 3501 §6.4.4)",
                        self.who(seq, uid, None)
                    ),
                );
            }
        }
        if !extra.is_empty() {
            let query = query_text(&pending.key);
            for (seq, uid) in extra {
                self.error(
                    ErrorKind::SearchExtra,
                    format!(
                        "{}: SEARCH {query}: returned a message that cannot match",
                        self.who(seq, uid, None)
                    ),
                );
            }
        }
        self.search = Some(pending);
    }

    /// The pending SEARCH completed (`ok`: tagged OK; `expungeissued`: its code).
    pub fn search_done(&mut self, ok: bool, expungeissued: bool) {
        let Some(pending) = self.search.take() else {
            return;
        };
        if !ok {
            return;
        }
        let query = query_text(&pending.key);
        if !pending.replied {
            self.error(
                ErrorKind::SearchNoReply,
                format!(
                    "{}: SEARCH {query}: expected an untagged SEARCH reply, got none",
                    self.who(0, 0, None)
                ),
            );
            return;
        }
        if expungeissued {
            return;
        }
        let storage = lock(&self.storage);
        let missing: Vec<(u32, u32)> = pending
            .missing
            .iter()
            .copied()
            .filter(|(_, uid)| !storage.expunged.contains(uid))
            .collect();
        drop(storage);
        for (seq, uid) in missing {
            self.error(
                ErrorKind::SearchMissing,
                format!(
                    "{}: SEARCH {query}: result is missing a message that must match",
                    self.who(seq, uid, None)
                ),
            );
        }
    }
}

fn query_text(key: &[SearchKey]) -> String {
    let mut s = String::new();
    search::render_list(key, &mut s);
    s
}

/// Static data found changed: the kind and the message.
type Changes = Vec<(ErrorKind, String)>;

fn check_size(slot: &mut Option<u64>, new: u64, name: &str, errors: &mut Changes) {
    match *slot {
        // Courier's stand-in for an expunged message (129 bytes) on either side; the
        // real size is the one kept.
        Some(old)
            if old != new && (old == quirks::STAND_IN_SIZE || new == quirks::STAND_IN_SIZE) =>
        {
            errors.push((
                ErrorKind::ExpungedMessageFabricated,
                format!(
                    "{name} changed: expected {old}, got {new} (the size of a made-up stand-in)"
                ),
            ));
            if old == quirks::STAND_IN_SIZE {
                *slot = Some(new);
            }
        }
        Some(old) if old != new => errors.push((
            ErrorKind::SizeChanged,
            format!("{name} changed: expected {old}, got {new}"),
        )),
        Some(_) => {}
        None => *slot = Some(new),
    }
}

fn check_text(
    slot: &mut Option<Box<[u8]>>,
    new: &[u8],
    (kind, name): (ErrorKind, &str),
    errors: &mut Changes,
) {
    match slot {
        Some(old) if !old.eq_ignore_ascii_case(new) => errors.push((
            kind,
            format!(
                "{name} changed: expected '{}', got '{}'",
                excerpt(old),
                excerpt(new)
            ),
        )),
        Some(_) => {}
        None => *slot = Some(Box::from(new)),
    }
}

fn excerpt(b: &[u8]) -> String {
    let s = String::from_utf8_lossy(b);
    if s.chars().count() <= EXCERPT {
        s.into_owned()
    } else {
        let mut t: String = s.chars().take(EXCERPT).collect();
        t.push_str("...");
        t
    }
}

/// `BODY[HEADER.FIELDS (...)]` (not `.NOT`).
fn is_header_fields(name: &[u8]) -> bool {
    const P: &[u8] = b"BODY[HEADER.FIELDS (";
    name.get(..P.len())
        .is_some_and(|p| p.eq_ignore_ascii_case(P))
}

/// The field names of a `BODY[HEADER.FIELDS (...)]` section as the server echoed them.
/// Each is an astring (RFC 3501 §9 `header-fld-name`): an atom, a quoted string
/// (Courier echoes `("To")` for a request of `(To)`) or a literal. `None` if the list
/// does not parse.
pub fn header_field_names(name: &[u8]) -> Option<Vec<Vec<u8>>> {
    let open = name.iter().position(|&b| b == b'(')?;
    let mut rest = &name[open + 1..];
    let mut names = Vec::new();
    loop {
        rest = rest.trim_ascii_start();
        match *rest.first()? {
            b')' => return Some(names),
            b'"' => {
                let mut field = Vec::new();
                let mut i = 1;
                loop {
                    match *rest.get(i)? {
                        b'"' => break,
                        b'\\' => {
                            field.push(*rest.get(i + 1)?);
                            i += 2;
                        }
                        b => {
                            field.push(b);
                            i += 1;
                        }
                    }
                }
                names.push(field);
                rest = &rest[i + 1..];
            }
            b'{' => {
                let close = rest.iter().position(|&b| b == b'}')?;
                let size: usize = std::str::from_utf8(&rest[1..close])
                    .ok()?
                    .trim_end_matches('+')
                    .parse()
                    .ok()?;
                let start = close + 1 + rest.get(close + 1..)?.starts_with(b"\r\n") as usize * 2;
                names.push(rest.get(start..start + size)?.to_vec());
                rest = &rest[start + size..];
            }
            _ => {
                let end = rest
                    .iter()
                    .position(|&b| b == b' ' || b == b')')
                    .unwrap_or(rest.len());
                names.push(rest[..end].to_vec());
                rest = &rest[end..];
            }
        }
    }
}

/// A section name in one spelling for every way of echoing it: the field names of a
/// `HEADER.FIELDS` list unquoted (`BODY[HEADER.FIELDS ("To")]` is
/// `BODY[HEADER.FIELDS (To)]`).
fn canonical_header_section(name: &[u8]) -> Box<[u8]> {
    match header_field_names(name) {
        Some(fields) => {
            let mut out = b"BODY[HEADER.FIELDS (".to_vec();
            out.extend_from_slice(&fields.join(&b' '));
            out.extend_from_slice(b")]");
            out.into()
        }
        None => Box::from(name),
    }
}

/// A header in a HEADER.FIELDS reply that the section didn't ask for.
fn unexpected_header(name: &[u8], text: &[u8]) -> Option<String> {
    let asked = header_field_names(name)?;
    for line in text.split(|&b| b == b'\n') {
        if line.first().is_none_or(|b| b.is_ascii_whitespace()) {
            continue;
        }
        let Some(colon) = line.iter().position(|&b| b == b':') else {
            continue;
        };
        let header = line[..colon].trim_ascii();
        if !asked.iter().any(|a| a.eq_ignore_ascii_case(header)) {
            return Some(String::from_utf8_lossy(header).into_owned());
        }
    }
    None
}

/// ENVELOPE of ten NILs: what some servers send for an expunged message.
fn is_placeholder_envelope(env: &Arg<'_>) -> bool {
    env.as_list().is_none_or(|f| f.iter().all(Arg::is_nil))
}

/// BODY/BODYSTRUCTURE of an empty text/plain part: an expunged message's placeholder.
fn is_placeholder_body(serialized: &[u8]) -> bool {
    const EMPTY: &[u8] = b"(\"text\" \"plain\" NIL NIL NIL \"7bit\" 0 0";
    serialized == b"NIL"
        || serialized
            .get(..EMPTY.len())
            .is_some_and(|p| p.eq_ignore_ascii_case(EMPTY))
}

/// A canonical form of an argument: strings quoted whichever way they came.
pub fn write_arg(arg: &Arg<'_>, out: &mut Vec<u8>) {
    match arg {
        Arg::Atom(a) => out.extend_from_slice(a),
        Arg::Quoted(q) => write_quoted(q, out),
        Arg::Literal(l) => write_quoted(l, out),
        Arg::SkippedLiteral { size } => {
            let _ = write!(Bytes(out), "{{{size}}}");
        }
        Arg::Nil => out.extend_from_slice(b"NIL"),
        Arg::List(items) => {
            out.push(b'(');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(b' ');
                }
                write_arg(item, out);
            }
            out.push(b')');
        }
    }
}

fn write_quoted(s: &[u8], out: &mut Vec<u8>) {
    out.push(b'"');
    for &b in s {
        if b == b'"' || b == b'\\' {
            out.push(b'\\');
        }
        out.push(b);
    }
    out.push(b'"');
}

struct Bytes<'a>(&'a mut Vec<u8>);

impl std::fmt::Write for Bytes<'_> {
    fn write_str(&mut self, s: &str) -> std::fmt::Result {
        self.0.extend_from_slice(s.as_bytes());
        Ok(())
    }
}
