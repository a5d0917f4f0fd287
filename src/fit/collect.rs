//! Turns parsed log records into sessions, deliveries and sizes, in one pass.
//!
//! Memory grows with the sessions and deliveries of the log (a few dozen bytes each)
//! and with the sessions open at any one time; user names are kept only as keys of
//! the index that numbers them.

use std::collections::HashMap;

use super::dovecot::{Folder, Proto, Record, Stamp, Unparsed};

/// A finished IMAP or POP3 session.
#[derive(Debug, Clone, Copy)]
pub struct Session {
    pub user: u32,
    pub proto: Proto,
    /// Index into [`Collector::client_names`].
    pub client: u16,
    pub start: f64,
    pub end: f64,
    pub bytes_in: u64,
    pub bytes_out: u64,
    pub retrieved: u64,
    pub deleted: u64,
    /// Whether both stamps had a fraction of a second.
    pub precise: bool,
}

/// A session still open when the log ended.
#[derive(Debug, Clone, Copy)]
pub struct OpenSession {
    pub user: u32,
    pub proto: Proto,
    pub client: u16,
    pub start: f64,
    pub precise: bool,
}

/// One recipient's delivery.
#[derive(Debug, Clone, Copy)]
pub struct Delivery {
    pub user: u32,
    pub at: f64,
    pub folder: Folder,
    pub precise: bool,
}

/// Counts of lines by what became of them.
#[derive(Debug, Default, Clone)]
pub struct LineCounts {
    pub used: u64,
    /// Known kinds `profile fit` has no use for.
    pub ignored: u64,
    pub no_timestamp: u64,
    pub bad_shape: u64,
    pub bad_field: u64,
    pub unknown: u64,
    /// Logouts of sessions whose login was not in the log (before its start).
    pub logout_without_login: u64,
    /// Sessions open where lines were lost (their end is unknown: dropped).
    pub lost_sessions: u64,
}

/// Everything gathered from the log.
#[derive(Debug, Default)]
pub struct Collector {
    users: HashMap<String, u32>,
    /// Client names: "imap" and "pop3" for sessions without an `ID`, then ID names.
    pub client_names: Vec<String>,
    pending_ids: HashMap<String, (u16, f64)>,
    open: HashMap<String, OpenSession>,
    transactions: HashMap<String, (u32, f64)>,
    pub sessions: Vec<Session>,
    pub deliveries: Vec<Delivery>,
    /// Delivered message sizes (`mail_log` `size=`): (user, bytes).
    pub sizes: Vec<(u32, f64)>,
    /// Recipients of each LMTP transaction.
    pub recipients: Vec<u32>,
    /// `mail_log` expunges per user, by protocol (IMAP, POP3).
    pub expunges: HashMap<(u32, Proto), u64>,
    pub first: Option<f64>,
    pub last: f64,
    /// Whether every stamp had a fraction of a second.
    pub all_precise: bool,
    pub counts: LineCounts,
    /// Where lines were lost: (last stamp before, first stamp after). Intervals across
    /// them are not observations.
    pub holes: Vec<(f64, f64)>,
    hole_open: bool,
    since_sweep: u32,
}

/// Pre-login IDs and LMTP transactions older than this are settled.
const SETTLE_SECS: f64 = 600.0;

impl Collector {
    pub fn new() -> Self {
        Collector {
            client_names: vec!["imap".into(), "pop3".into()],
            all_precise: true,
            ..Collector::default()
        }
    }

    /// Number of distinct users seen.
    pub fn user_count(&self) -> usize {
        self.users.len()
    }

    fn user(&mut self, name: &str) -> u32 {
        if let Some(&i) = self.users.get(name) {
            return i;
        }
        let i = self.users.len() as u32;
        self.users.insert(name.to_owned(), i);
        i
    }

    fn client(&mut self, name: &str) -> u16 {
        let name = client_key(name);
        match self.client_names.iter().position(|n| *n == name) {
            Some(i) => i as u16,
            None => {
                self.client_names.push(name);
                (self.client_names.len() - 1) as u16
            }
        }
    }

    /// Feeds one parsed line.
    pub fn feed(&mut self, parsed: Result<(Stamp, Record<'_>), Unparsed>) {
        let (stamp, record) = match parsed {
            Ok(p) => p,
            Err(why) => {
                let c = &mut self.counts;
                *match why {
                    Unparsed::Timestamp => &mut c.no_timestamp,
                    Unparsed::Shape => &mut c.bad_shape,
                    Unparsed::Field => &mut c.bad_field,
                    Unparsed::Unknown => &mut c.unknown,
                } += 1;
                return;
            }
        };
        let t = stamp.secs;
        if self.hole_open {
            if let Some(hole) = self.holes.last_mut() {
                hole.1 = t;
            }
            self.hole_open = false;
        }
        self.first.get_or_insert(t);
        self.last = self.last.max(t);
        self.all_precise &= stamp.precise;
        self.since_sweep += 1;
        if self.since_sweep >= 100_000 {
            self.since_sweep = 0;
            self.settle(t - SETTLE_SECS);
        }
        match record {
            Record::Ignored => {
                self.counts.ignored += 1;
                return;
            }
            Record::Login {
                proto,
                user,
                session,
            } => {
                let user = self.user(user);
                let client = match self.pending_ids.remove(session) {
                    Some((c, _)) => c,
                    None => proto as u16,
                };
                self.open.insert(
                    session.to_owned(),
                    OpenSession {
                        user,
                        proto,
                        client,
                        start: t,
                        precise: stamp.precise,
                    },
                );
            }
            Record::ClientId { session, name } => {
                let client = self.client(name);
                match self.open.get_mut(session) {
                    Some(open) => open.client = client,
                    None => {
                        self.pending_ids.insert(session.to_owned(), (client, t));
                    }
                }
            }
            Record::Logout {
                proto,
                session,
                bytes_in,
                bytes_out,
                retrieved,
                deleted,
                ..
            } => match self.open.remove(session) {
                Some(open) => self.sessions.push(Session {
                    user: open.user,
                    proto,
                    client: open.client,
                    start: open.start,
                    end: t.max(open.start),
                    bytes_in,
                    bytes_out,
                    retrieved,
                    deleted,
                    precise: open.precise && stamp.precise,
                }),
                None => {
                    self.counts.logout_without_login += 1;
                    return;
                }
            },
            Record::Delivered {
                user,
                transaction,
                folder,
            } => {
                let user = self.user(user);
                self.deliveries.push(Delivery {
                    user,
                    at: t,
                    folder,
                    precise: stamp.precise,
                });
                let entry = self
                    .transactions
                    .entry(transaction.to_owned())
                    .or_insert((0, t));
                entry.0 += 1;
                entry.1 = t;
            }
            Record::DeliveredSize { user, size } => {
                let user = self.user(user);
                self.sizes.push((user, size as f64));
            }
            Record::Expunged { proto, user } => {
                let user = self.user(user);
                *self.expunges.entry((user, proto)).or_default() += 1;
            }
        }
        self.counts.used += 1;
    }

    /// Lines are missing from here on: sessions open now will never be seen to end.
    pub fn lines_lost(&mut self) {
        if self.first.is_none() || self.hole_open {
            return;
        }
        self.counts.lost_sessions += self.open.len() as u64;
        self.open.clear();
        self.pending_ids.clear();
        self.holes.push((self.last, f64::INFINITY));
        self.hole_open = true;
    }

    /// Whether (a, b) spans lost lines.
    pub fn spans_hole(&self, a: f64, b: f64) -> bool {
        self.holes.iter().any(|&(lo, hi)| a <= hi && b >= lo)
    }

    /// Moves transactions and pre-login IDs last seen before `before` out of the maps.
    fn settle(&mut self, before: f64) {
        let recipients = &mut self.recipients;
        self.transactions.retain(|_, &mut (count, last)| {
            if last < before {
                recipients.push(count);
                false
            } else {
                true
            }
        });
        self.pending_ids.retain(|_, &mut (_, at)| at >= before);
    }

    /// Ends the pass: settles everything and returns the sessions still open.
    pub fn finish(&mut self) -> Vec<OpenSession> {
        self.settle(f64::INFINITY);
        // Lines lost at the very end: the log's end is where they were lost.
        if self.hole_open {
            self.holes.pop();
            self.hole_open = false;
        }
        self.sessions.sort_by(|a, b| {
            (a.user, a.start)
                .partial_cmp(&(b.user, b.start))
                .unwrap_or(std::cmp::Ordering::Equal)
        });
        self.deliveries.sort_by(|a, b| {
            (a.user, a.at)
                .partial_cmp(&(b.user, b.at))
                .unwrap_or(std::cmp::Ordering::Equal)
        });
        let mut open: Vec<OpenSession> = self.open.drain().map(|(_, s)| s).collect();
        open.sort_by(|a, b| {
            (a.user, a.start)
                .partial_cmp(&(b.user, b.start))
                .unwrap_or(std::cmp::Ordering::Equal)
        });
        open
    }
}

/// A client name as a profile `[[client]]` name: lower case, letters, digits and `-`.
fn client_key(name: &str) -> String {
    let mut key: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_lowercase()
            } else {
                '-'
            }
        })
        .collect();
    key.truncate(40);
    let key = key.trim_matches('-').to_owned();
    if key.is_empty() || key == "imap" || key == "pop3" {
        format!("id-{key}")
    } else {
        key
    }
}
