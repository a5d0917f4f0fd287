//! QRESYNC (RFC 7162): the offline cache a closed view leaves in its storage, and the
//! verification of the `SELECT "box" (QRESYNC (uidvalidity modseq))` that resumes it.
//!
//! The cache is saved with the HIGHESTMODSEQ of the SELECT that started the view, not
//! with the highest MODSEQ seen since: everything in the view was told after that
//! SELECT, and every change the view may not have heard of yet (a flag change or an
//! expunge still queued in the server when the view closed) came after it, with a
//! higher mod-sequence, so a correct server reports it on resync. Folding later
//! MODSEQs in would make a correct server look like it lost changes.
//!
//! After the resync every check is exact: it only uses what some session was told
//! before the QRESYNC SELECT was sent, so concurrent changes during the SELECT can't
//! make a correct server look wrong.
//! * A cached UID that another session saw expunged before the SELECT was sent must
//!   be in `VANISHED (EARLIER)` (`qresync-missed-expunge`).
//! * The SELECT's EXISTS can't be below the cache minus VANISHED, and a FETCH's UID
//!   can't skip cached UIDs (`qresync-missed-expunge`).
//! * A cached UID another session saw with a MODSEQ above the cache's HIGHESTMODSEQ
//!   before the SELECT was sent must be FETCHed (or VANISHED) (`qresync-missed-flags`).
//! * `VANISHED (EARLIER)` can't name a UID at or above the SELECT's UIDNEXT
//!   (`vanished-unknown-uid`). Other UIDs the cache doesn't have are legal (RFC 7162
//!   lets the server send a superset; Dovecot sends ranges).
//!
//! Whatever a resync misses otherwise shows up later as flag or MODSEQ differences
//! (checkpoints, `own_flags`, `own_msgs`).

use std::collections::HashSet;
use std::sync::Arc;

use super::flags::MsgState;
use super::{View, lock};
use crate::imap::response::SeqSet;
use crate::metrics::ErrorKind;

/// A closed view's state, for the next QRESYNC SELECT of its storage.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OfflineCache {
    pub uidvalidity: u32,
    /// The HIGHESTMODSEQ of the SELECT that started the view.
    pub highestmodseq: u64,
    /// In sequence order.
    pub msgs: Vec<CachedMsg>,
}

/// One message of an [`OfflineCache`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CachedMsg {
    pub uid: u32,
    /// 0: not known.
    pub modseq: u64,
    /// Flags and keywords as the server spelled them, without `\Recent`; `None`:
    /// not known (the restored view doesn't know them either).
    pub flags: Option<Vec<String>>,
}

/// A QRESYNC SELECT in progress.
#[derive(Debug)]
pub(super) struct Resync {
    cache: Arc<OfflineCache>,
    /// Cached UIDs another session saw with a higher MODSEQ than the cache's
    /// HIGHESTMODSEQ before the SELECT was sent, with that MODSEQ.
    must_fetch: Vec<(u32, u64)>,
    /// Cached UIDs another session saw expunged before the SELECT was sent.
    must_vanish: Vec<u32>,
    /// `None` until the UIDVALIDITY decides; then whether the cache was restored.
    restored: Option<bool>,
    /// The SELECT's EXISTS, held back until the restored view is complete.
    deferred_exists: Option<u32>,
    uidnext: Option<u32>,
    /// UIDs FETCHed and VANISHED during the SELECT.
    fetched: HashSet<u32>,
    vanished: usize,
}

impl View {
    /// The storage's offline cache, if it can be resumed (same UIDVALIDITY as known).
    pub fn offline_cache(&self) -> Option<Arc<OfflineCache>> {
        let storage = lock(&self.storage);
        let cache = storage.offline_cache.clone()?;
        (storage.uidvalidity == Some(cache.uidvalidity)).then_some(cache)
    }

    /// A SELECT was sent, with `cache`'s QRESYNC parameters if any. Takes note of what
    /// other sessions know now, before the server can have seen the SELECT.
    pub fn select_sent(&mut self, cache: Option<Arc<OfflineCache>>) {
        self.resync_next = cache.map(|cache| {
            let storage = lock(&self.storage);
            let mut must_fetch = Vec::new();
            let mut must_vanish = Vec::new();
            for m in &cache.msgs {
                if storage.expunged.contains(&m.uid) {
                    must_vanish.push(m.uid);
                } else if let Some(meta) = storage.uids.get(&m.uid)
                    && meta.seen_modseq > cache.highestmodseq
                {
                    must_fetch.push((m.uid, meta.seen_modseq));
                }
            }
            drop(storage);
            Resync {
                cache,
                must_fetch,
                must_vanish,
                restored: None,
                deferred_exists: None,
                uidnext: None,
                fetched: HashSet::new(),
                vanished: 0,
            }
        });
    }

    /// The selection is complete and clean: the view can become an offline cache.
    pub fn is_selected(&self) -> bool {
        self.selected
    }

    /// `[HIGHESTMODSEQ n]` of the SELECT response (0: NOMODSEQ).
    pub fn select_highestmodseq(&mut self, n: u64) {
        self.select_modseq = n;
    }

    /// `[UIDNEXT n]` of the SELECT response.
    pub fn select_uidnext(&mut self, n: u32) {
        if let Some(r) = self.resync.as_mut() {
            r.uidnext = Some(n);
        }
    }

    /// The selection ends cleanly (LOGOUT, another SELECT): saves the view as the
    /// storage's offline cache if every UID is known and the SELECT gave a
    /// HIGHESTMODSEQ. True if saved.
    pub fn save_offline_cache(&mut self) -> bool {
        if !self.selected
            || self.select_modseq == 0
            || self.resync.is_some()
            || !self.stores.is_empty()
            || self.uids.contains(&0)
        {
            return false;
        }
        let msgs = self
            .uids
            .iter()
            .zip(&self.msgs)
            .map(|(&uid, m)| CachedMsg {
                uid,
                modseq: m.modseq,
                flags: m.flags_known.then(|| self.flag_names(m.flags)),
            })
            .collect::<Vec<_>>();
        let mut storage = lock(&self.storage);
        let Some(uidvalidity) = storage.uidvalidity else {
            return false;
        };
        let cache = OfflineCache {
            uidvalidity,
            highestmodseq: self.select_modseq,
            msgs,
        };
        let note = format!(
            "qresync: offline cache saved: UIDVALIDITY {uidvalidity} HIGHESTMODSEQ {}, {} messages",
            cache.highestmodseq,
            cache.msgs.len()
        );
        storage.offline_cache = Some(Arc::new(cache));
        drop(storage);
        self.notes.push(note);
        true
    }

    /// True while a QRESYNC SELECT holds back the SELECT's EXISTS.
    pub(super) fn resync_defers_exists(&mut self, n: u32) -> bool {
        match self.resync.as_mut() {
            Some(r) if r.restored != Some(false) => {
                r.deferred_exists = Some(n);
                true
            }
            _ => false,
        }
    }

    /// `[UIDVALIDITY v]` during a QRESYNC SELECT: restores the cache if it matches.
    pub(super) fn resync_uidvalidity(&mut self, v: u32) {
        let Some(r) = self.resync.as_mut() else {
            return;
        };
        if r.restored.is_some() {
            return;
        }
        if r.cache.uidvalidity != v {
            r.restored = Some(false);
            let deferred = r.deferred_exists.take();
            self.resync = None;
            if let Some(n) = deferred {
                self.exists_now(n);
            }
            return;
        }
        r.restored = Some(true);
        let cache = r.cache.clone();
        self.uids = cache.msgs.iter().map(|m| m.uid).collect();
        self.known_end = self.uids.len();
        let mut msgs = Vec::with_capacity(cache.msgs.len());
        for m in &cache.msgs {
            let mut bits = 0;
            let mut known = m.flags.is_some();
            for f in m.flags.iter().flatten() {
                match super::flags::system_bit(f.as_bytes()).or_else(|| {
                    if f.starts_with('\\') {
                        None
                    } else {
                        self.keyword_bit(f.as_bytes())
                    }
                }) {
                    Some(bit) => bits |= bit,
                    None => known = false,
                }
            }
            msgs.push(MsgState {
                modseq: m.modseq,
                flags: bits,
                flags_known: known,
                flags_epoch: 0,
            });
        }
        self.msgs = msgs;
        self.notes.push(format!(
            "qresync: offline cache restored: UIDVALIDITY {v} HIGHESTMODSEQ {}, {} messages",
            cache.highestmodseq,
            cache.msgs.len()
        ));
    }

    /// `* VANISHED (EARLIER) uids`: outside a QRESYNC SELECT (a `UID FETCH ...
    /// (VANISHED)` we never send) it is ignored.
    pub fn vanished_earlier(&mut self, uids: &SeqSet) {
        let Some(r) = self.resync.as_ref() else {
            return;
        };
        if r.restored != Some(true) {
            return;
        }
        if let Some(next) = r.uidnext
            && let Some(&(_, hi)) = uids
                .0
                .iter()
                .filter(|&&(_, hi)| hi != u32::MAX)
                .find(|&&(_, hi)| hi >= next)
        {
            self.error(
                ErrorKind::VanishedUnknownUid,
                format!(
                    "{}: VANISHED (EARLIER) UID {hi}: expected UIDs below the SELECT's UIDNEXT {next}",
                    self.who(0, 0, None)
                ),
            );
        }
        let mut idx = 0;
        let mut removed = 0;
        let storage_arc = self.storage.clone();
        let mut storage = lock(&storage_arc);
        while idx < self.uids.len() {
            let uid = self.uids[idx];
            if uid != 0 && uids.contains(uid) {
                self.remove_seq(idx);
                storage.expunged(uid);
                removed += 1;
            } else {
                idx += 1;
            }
        }
        drop(storage);
        if let Some(r) = self.resync.as_mut() {
            r.vanished += removed;
        }
    }

    /// A FETCH during a restored QRESYNC SELECT: applies the held-back EXISTS when the
    /// FETCH is beyond the restored messages, notes its UID, and finds cached UIDs the
    /// FETCH's UID skips (expunges VANISHED didn't report).
    pub(super) fn resync_fetch(&mut self, seq: u32, uid: Option<u32>) {
        let Some(r) = self.resync.as_mut() else {
            return;
        };
        if r.restored != Some(true) {
            return;
        }
        if let Some(u) = uid {
            r.fetched.insert(u);
        }
        if seq > self.count()
            && let Some(n) = self.resync.as_mut().and_then(|r| r.deferred_exists.take())
        {
            self.resync_exists(n);
        }
        let Some(u) = uid else {
            return;
        };
        let idx = (seq as usize).saturating_sub(1);
        let mut skipped = Vec::new();
        while let Some(&w) = self.uids.get(idx) {
            if w == 0 || w >= u {
                break;
            }
            skipped.push(w);
            self.remove_seq(idx);
        }
        if skipped.is_empty() {
            return;
        }
        let mut storage = lock(&self.storage);
        for &w in &skipped {
            storage.expunged(w);
        }
        drop(storage);
        let q = self.resync_text();
        self.missed_expunges(&skipped, |w| {
            format!("{q}: FETCH gave seq {seq} UID {u}, skipping cached UID {w}: expected UID {w} in VANISHED (EARLIER)")
        });
    }

    fn missed_expunges(&mut self, uids: &[u32], why: impl Fn(u32) -> String) {
        for &uid in uids {
            let message = format!("{}: {}", self.who(0, uid, None), why(uid));
            self.error(ErrorKind::QresyncMissedExpunge, message);
        }
    }

    fn resync_text(&self) -> String {
        self.resync
            .as_ref()
            .map(|r| label(&r.cache))
            .unwrap_or_default()
    }

    /// The held-back EXISTS of a restored QRESYNC SELECT.
    fn resync_exists(&mut self, n: u32) {
        let count = self.count();
        if n >= count {
            self.exists_now(n);
            return;
        }
        let q = self.resync_text();
        self.error(
            ErrorKind::QresyncMissedExpunge,
            format!(
                "{}: {q}: EXISTS {n}, but the cache minus VANISHED (EARLIER) has {count} messages: expected every expunge since HIGHESTMODSEQ in VANISHED (EARLIER)",
                self.who(0, 0, None)
            ),
        );
        // Believe the server from now on.
        self.uids.truncate(n as usize);
        self.known_end = self.known_end.min(n as usize);
        self.msgs.truncate(n as usize);
    }

    /// The SELECT completed (`ok`): finishes a QRESYNC SELECT's checks.
    pub(super) fn resync_done(&mut self, ok: bool) {
        let Some(mut r) = self.resync.take() else {
            return;
        };
        if !ok {
            return;
        }
        if r.restored != Some(true) {
            if let Some(n) = r.deferred_exists {
                self.exists_now(n);
            }
            return;
        }
        let q = label(&r.cache);
        // Known to be gone before the SELECT was sent, still in the view.
        let mut missed = Vec::new();
        for &uid in &r.must_vanish {
            if let Some(idx) = self.uids.iter().position(|&u| u == uid) {
                self.remove_seq(idx);
                missed.push(uid);
            }
        }
        self.missed_expunges(&missed, |_| {
            format!("{q}: not in VANISHED (EARLIER): expected it there, another session saw it expunged before the SELECT")
        });
        if let Some(n) = r.deferred_exists.take() {
            self.resync = Some(r);
            self.resync_exists(n);
            r = match self.resync.take() {
                Some(r) => r,
                None => return,
            };
        }
        for &(uid, modseq) in &r.must_fetch {
            if r.fetched.contains(&uid) || !self.uids.contains(&uid) {
                continue;
            }
            let message_id = self.message_id(uid);
            self.error(
                ErrorKind::QresyncMissedFlags,
                format!(
                    "{}: {q}: no FETCH for it: expected one, another session saw MODSEQ {modseq} (above {}) before the SELECT",
                    self.who(0, uid, message_id.as_deref()),
                    r.cache.highestmodseq
                ),
            );
        }
        self.notes.push(format!(
            "qresync: resync done: {} vanished, {} fetched, {} messages; checked {} expunges and {} changes other sessions saw",
            r.vanished,
            r.fetched.len(),
            self.count(),
            r.must_vanish.len(),
            r.must_fetch.len()
        ));
    }
}

/// `QRESYNC SELECT (uidvalidity modseq)` for findings.
fn label(cache: &OfflineCache) -> String {
    format!(
        "QRESYNC SELECT ({} {})",
        cache.uidvalidity, cache.highestmodseq
    )
}
