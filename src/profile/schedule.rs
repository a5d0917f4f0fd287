//! The scheduler: a pure function of (profile, seed) → a time-ordered stream of
//! [`ScheduledAction`]s, generated lazily.
//!
//! Every user has a small state (its clients' sessions, the next delivery / send times,
//! pending mail actions) and its own random stream, `Xoshiro256PlusPlus` seeded from
//! SplitMix64 of (seed, user index). A binary heap holds each user's next event time, so
//! memory grows with users, not with events, and the schedule of a user does not depend
//! on any other user: a run can be split across machines by user (`shard`) and the union
//! of the shards is the single-machine schedule.
//!
//! # Model
//!
//! * Time is wall-clock time since the start of the run, in nanoseconds. Profile
//!   intervals are simulated time, divided by `run.time_compression`; arrival processes
//!   (deliveries, sent mail, login gaps, polls) also follow the `[activity]` curve.
//! * Users of a population log in for the first time spread over `run.rampup`
//!   (user k of n at rampup·(k+1)/n); their delivery and send timers start then too.
//! * Each client of a user has its own session: IMAP clients log in, stay for
//!   `session_length` (absent: to the end), log out and log in again after
//!   `login_interval`; POP3 clients log in, download (`CheckMail`) and log out at once.
//! * A delivered INBOX mail is noticed at once while an IDLE client is logged in, at the
//!   next poll of a polling client, or at the next login. Noticed mail is moved to Spam
//!   by a filter (`filter_to_spam` %) or read after `action_delay`; `action_repeat_delay`
//!   later it is deleted, moved to Spam or replied to (rolled in that order, at most one).
//!   Replies and sent mail are written to Drafts and sent `write_duration` later.
//!   Actions that fall due while the user has no IMAP session wait for the next login.
//!
//! # Consuming a schedule (the runtime)
//!
//! Run it with [`super::timeline::run_blocking`] on a dedicated thread (sub-millisecond
//! handover, ~1 % of a core for 100 000 mostly idle users) or the async
//! [`super::timeline::run`]; hand each action to the user's task and report
//! `start + action.at` as the intended time of the commands it causes, so lateness is
//! measured from the plan (no coordinated omission). An action for a user whose previous
//! action is still running queues behind it. LMTP deliveries take a slot of a
//! [`super::timeline::LmtpQueue`] first; the queue wait is part of their lateness.
//! Usernames and passwords come from [`Directory`].

use std::cmp::Reverse;
use std::collections::{BinaryHeap, VecDeque};
use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use rand::{RngExt as _, SeedableRng as _};
use rand_xoshiro::Xoshiro256PlusPlus;

use super::distribution::Distribution;
use super::model::{ClientSelection, Profile, Protocol};
use super::username::UsernameTemplate;

/// Never.
const NEVER: u64 = u64::MAX;

/// Which mailbox an LMTP delivery goes to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Mailbox {
    Inbox,
    /// `user+Spam`.
    Spam,
}

/// What a user does. `msg` numbers a user's INBOX deliveries from 1; `draft` numbers
/// the mails the user writes from 1.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Action {
    /// Open `connections` connections and log in (IMAP: SELECT and IDLE).
    Login { connections: u32 },
    /// Log out every connection of the client.
    Logout,
    /// Poll for new mail (IMAP) or download it (POP3: UIDL, RETR, DELE unless kept).
    CheckMail,
    /// LMTP delivery of message `msg` (0 for Spam deliveries).
    Deliver { to: Mailbox, msg: u32 },
    /// A filter moves a newly seen mail to Spam.
    FilterToSpam { msg: u32 },
    /// Open the mail: FETCH `fetch_on_open`, set `\Seen`.
    Read { msg: u32 },
    /// `\Deleted` + UID EXPUNGE.
    Delete { msg: u32 },
    /// UID MOVE to Spam.
    MoveToSpam { msg: u32 },
    /// Start a reply: write `draft` to Drafts and set `\Answered` on `msg`.
    Reply { msg: u32, draft: u32 },
    /// Start writing a new mail: APPEND `draft` to Drafts.
    WriteDraft { draft: u32 },
    /// Send `draft`: APPEND to Sent, delete it from Drafts.
    SendDraft { draft: u32 },
}

impl Action {
    /// A short name (the plan's `action` column).
    pub fn name(&self) -> &'static str {
        match self {
            Action::Login { .. } => "login",
            Action::Logout => "logout",
            Action::CheckMail => "check_mail",
            Action::Deliver {
                to: Mailbox::Inbox, ..
            } => "deliver_inbox",
            Action::Deliver {
                to: Mailbox::Spam, ..
            } => "deliver_spam",
            Action::FilterToSpam { .. } => "filter_to_spam",
            Action::Read { .. } => "read",
            Action::Delete { .. } => "delete",
            Action::MoveToSpam { .. } => "move_to_spam",
            Action::Reply { .. } => "reply",
            Action::WriteDraft { .. } => "write_draft",
            Action::SendDraft { .. } => "send_draft",
        }
    }

    /// The action's row in the metrics.
    pub fn kind(&self) -> crate::ops::ActionKind {
        use crate::ops::ActionKind;
        match self {
            Action::Login { .. } => ActionKind::Login,
            Action::Logout => ActionKind::Logout,
            Action::CheckMail => ActionKind::CheckMail,
            Action::Deliver {
                to: Mailbox::Inbox, ..
            } => ActionKind::DeliverInbox,
            Action::Deliver {
                to: Mailbox::Spam, ..
            } => ActionKind::DeliverSpam,
            Action::FilterToSpam { .. } => ActionKind::FilterToSpam,
            Action::Read { .. } => ActionKind::Read,
            Action::Delete { .. } => ActionKind::Delete,
            Action::MoveToSpam { .. } => ActionKind::MoveToSpam,
            Action::Reply { .. } => ActionKind::Reply,
            Action::WriteDraft { .. } => ActionKind::WriteDraft,
            Action::SendDraft { .. } => ActionKind::SendDraft,
        }
    }

    /// The INBOX message this action acts on: it can happen only once that delivery
    /// has ended and the message is visible (the dry-run plan's `depends_on`).
    pub fn delivered_msg(&self) -> Option<u32> {
        match *self {
            Action::FilterToSpam { msg }
            | Action::Read { msg }
            | Action::Delete { msg }
            | Action::MoveToSpam { msg }
            | Action::Reply { msg, .. } => Some(msg),
            _ => None,
        }
    }

    /// All action names, in a fixed order (for summaries).
    pub const NAMES: [&'static str; 12] = [
        "login",
        "logout",
        "check_mail",
        "deliver_inbox",
        "deliver_spam",
        "filter_to_spam",
        "read",
        "delete",
        "move_to_spam",
        "reply",
        "write_draft",
        "send_draft",
    ];
}

impl fmt::Display for Action {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())?;
        match *self {
            Action::Login { connections } => write!(f, " connections={connections}"),
            Action::Deliver { msg, .. } if msg > 0 => write!(f, " msg={msg}"),
            Action::FilterToSpam { msg }
            | Action::Read { msg }
            | Action::Delete { msg }
            | Action::MoveToSpam { msg } => write!(f, " msg={msg}"),
            Action::Reply { msg, draft } => write!(f, " msg={msg} draft={draft}"),
            Action::WriteDraft { draft } | Action::SendDraft { draft } => {
                write!(f, " draft={draft}")
            }
            _ => Ok(()),
        }
    }
}

/// One planned action.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ScheduledAction {
    /// Intended time, since the start of the run.
    pub at: Duration,
    /// Global user index (0-based, populations in order).
    pub user: u32,
    pub population: u16,
    /// The client that acts (`None` for deliveries).
    pub client: Option<u16>,
    pub action: Action,
}

/// Options of a schedule.
#[derive(Debug, Clone, Copy, Default)]
pub struct ScheduleOptions {
    /// Overrides `run.seed` (default seed when both are absent: 0).
    pub seed: Option<u64>,
    /// Stop after this time (default `run.duration`; `None` in both: never).
    pub until: Option<Duration>,
    /// `(i, n)`: only users with `user % n == i`.
    pub shard: Option<(u32, u32)>,
}

/// The reaction delay of a population without `action_delay`: from noticing new mail
/// to opening it, log-normal with mean 2 min and std dev 4 min (most mail is opened
/// within minutes, some much later). Never 0, so a read never races its delivery.
pub fn default_action_delay() -> Distribution {
    use crate::duration::Dur;
    Distribution::LogNormal {
        mean: Dur(Duration::from_secs(120)),
        std_dev: Dur(Duration::from_secs(240)),
    }
}

/// SplitMix64 finaliser.
pub fn splitmix64(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// The random stream of user `user` under `seed`.
pub fn user_rng(seed: u64, user: u32) -> Xoshiro256PlusPlus {
    Xoshiro256PlusPlus::seed_from_u64(splitmix64(
        seed ^ splitmix64(u64::from(user) ^ 0x5EED_0000_0000_0000),
    ))
}

/// Converts simulated intervals to wall-clock time.
#[derive(Debug, Clone)]
pub struct Clock {
    compression: f64,
    /// Simulated seconds since midnight at the start of the run.
    start: f64,
    /// Hourly activity, normalised to mean 1.
    hourly: Option<[f64; 24]>,
}

impl Clock {
    pub fn new(profile: &Profile) -> Self {
        let hourly = profile.activity.as_ref().map(|a| {
            let h = a.hourly.get_ref();
            let mean = h.iter().sum::<f64>() / 24.0;
            let mut out = [0.0; 24];
            for (o, v) in out.iter_mut().zip(h) {
                *o = v / mean;
            }
            out
        });
        Clock {
            compression: profile.run.time_compression,
            start: profile
                .activity
                .as_ref()
                .map_or(0.0, |a| f64::from(a.start.0)),
            hourly,
        }
    }

    /// Wall-clock ns of the event `sim_secs` simulated seconds after `now_ns`; `warped`
    /// intervals are operational time of the activity curve.
    pub fn after(&self, now_ns: u64, sim_secs: f64, warped: bool) -> u64 {
        let real_secs = match (&self.hourly, warped) {
            (Some(hourly), true) => {
                let p0 = self.start + now_ns as f64 * 1e-9 * self.compression;
                let mut p = p0;
                let mut need = sim_secs;
                let days = (need / 86400.0).floor();
                p += days * 86400.0;
                need -= days * 86400.0;
                for _ in 0..50 {
                    let hour = ((p / 3600.0).floor() as i64).rem_euclid(24) as usize;
                    let left = 3600.0 - p.rem_euclid(3600.0);
                    let capacity = hourly[hour] * left;
                    if capacity >= need && hourly[hour] > 0.0 {
                        p += need / hourly[hour];
                        need = 0.0;
                        break;
                    }
                    need -= capacity;
                    p += left;
                }
                if need > 0.0 {
                    p += need;
                }
                (p - p0) / self.compression
            }
            _ => sim_secs / self.compression,
        };
        let t = now_ns as f64 + real_secs * 1e9;
        if t >= u64::MAX as f64 {
            NEVER - 1
        } else {
            t.round() as u64
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Step {
    /// Seen by a client: filter or schedule the read.
    Notice,
    Read,
    FollowUp,
    /// A new mail to write.
    Write,
    Send,
}

#[derive(Debug, Clone, Copy)]
struct Pending {
    at: u64,
    step: Step,
    /// Message number, or draft number for `Write`/`Send`.
    id: u32,
}

#[derive(Debug, Clone)]
struct Slot {
    client: u16,
    logged_in: bool,
    next_login: u64,
    next_logout: u64,
    next_poll: u64,
}

#[derive(Debug, Clone)]
struct UserState {
    rng: Xoshiro256PlusPlus,
    population: u16,
    slots: Vec<Slot>,
    next_inbox: u64,
    next_spam: u64,
    next_send: u64,
    /// Timed mail actions of open sessions.
    pending: Vec<Pending>,
    /// Mail and drafts waiting for a session (for `Notice`: not seen yet).
    waiting: Vec<(Step, u32)>,
    msgs: u32,
    drafts: u32,
    /// Whether one of the user's clients is IMAP and can connect (otherwise nothing
    /// waits for a session).
    reads_mail: bool,
}

/// Precomputed per-population behaviour.
struct PopPlan {
    session_length: Option<Distribution>,
    inbox: Option<Distribution>,
    spam: Option<Distribution>,
    send: Option<Distribution>,
    write_duration: Option<Distribution>,
    action_delay: Option<Distribution>,
    repeat_delay: Option<Distribution>,
    delete: f64,
    move_to_spam: f64,
    reply: f64,
    filter: f64,
    /// (client index, share)
    mix: Vec<(u16, f64)>,
    selection: ClientSelection,
}

/// The lazily generated schedule of a profile; iterate it for actions in time order.
pub struct Schedule {
    profile: Arc<Profile>,
    clock: Clock,
    pops: Vec<PopPlan>,
    users: Vec<UserState>,
    /// First global user index of each population.
    offsets: Vec<u32>,
    /// (next event time, user slot) — the slot indexes `users`.
    heap: BinaryHeap<Reverse<(u64, u32)>>,
    /// Global user index of each slot.
    user_ids: Vec<u32>,
    out: VecDeque<ScheduledAction>,
    until: u64,
}

impl Schedule {
    /// Builds the schedule of a validated profile (kept as a shared copy, so the
    /// schedule is `'static` and can run on its own thread).
    pub fn new(profile: &Profile, opts: ScheduleOptions) -> Self {
        Self::from_arc(Arc::new(profile.clone()), opts)
    }

    /// Builds the schedule of a shared validated profile.
    pub fn from_arc(profile: Arc<Profile>, opts: ScheduleOptions) -> Self {
        let seed = opts.seed.or(profile.run.seed).unwrap_or(0);
        let clock = Clock::new(&profile);
        let until = opts
            .until
            .or(profile.run.duration.map(|d| d.0))
            .map_or(NEVER - 1, |d| {
                u64::try_from(d.as_nanos()).unwrap_or(NEVER - 1)
            });
        let pops: Vec<PopPlan> = profile
            .populations
            .iter()
            .map(|p| PopPlan {
                session_length: p.session_length.clone(),
                inbox: p.inbox_delivery.clone(),
                spam: p.spam_delivery.clone(),
                send: p.send.clone(),
                write_duration: p.write_duration.clone(),
                action_delay: Some(p.action_delay.clone().unwrap_or_else(default_action_delay)),
                repeat_delay: p.action_repeat_delay.clone(),
                delete: p.delete / 100.0,
                move_to_spam: p.move_to_spam / 100.0,
                reply: p.reply / 100.0,
                filter: p.filter_to_spam / 100.0,
                mix: p
                    .clients
                    .iter()
                    .filter_map(|c| {
                        Some((profile.client_index(c.client.get_ref())? as u16, c.share))
                    })
                    .collect(),
                selection: p.client_selection,
            })
            .collect();
        let sizes = profile.population_sizes();
        let mut offsets = Vec::with_capacity(sizes.len());
        let mut total = 0u32;
        for &n in &sizes {
            offsets.push(total);
            total = total.saturating_add(n);
        }
        let rampup = profile.run.rampup.0.as_nanos() as f64;
        let mut users = Vec::new();
        let mut user_ids = Vec::new();
        let mut heap = BinaryHeap::new();
        for (p, &n) in sizes.iter().enumerate() {
            for k in 0..n {
                let user = offsets[p] + k;
                if let Some((i, shards)) = opts.shard
                    && shards > 0
                    && user % shards != i
                {
                    continue;
                }
                let start = (rampup * f64::from(k + 1) / f64::from(n)).round() as u64;
                let state = new_user(&profile, &pops[p], &clock, seed, user, p as u16, start);
                let slot = users.len() as u32;
                let next = next_time(&state);
                users.push(state);
                user_ids.push(user);
                if next != NEVER {
                    heap.push(Reverse((next, slot)));
                }
            }
        }
        Schedule {
            profile,
            clock,
            pops,
            users,
            offsets,
            heap,
            user_ids,
            out: VecDeque::new(),
            until,
        }
    }

    /// When the schedule ends (`None`: never), since the start of the run.
    pub fn end(&self) -> Option<Duration> {
        (self.until < NEVER - 1).then(|| Duration::from_nanos(self.until))
    }

    /// Number of users in this schedule (this shard).
    pub fn users(&self) -> usize {
        self.users.len()
    }

    /// Population index and index within the population of a global user.
    pub fn locate(&self, user: u32) -> (usize, u32) {
        let p = self
            .offsets
            .partition_point(|&o| o <= user)
            .saturating_sub(1);
        (p, user - self.offsets[p])
    }

    /// The profile this schedule runs.
    pub fn profile(&self) -> &Profile {
        &self.profile
    }

    fn process(&mut self, slot: u32, now: u64) {
        let user_id = self.user_ids[slot as usize];
        let state = &mut self.users[slot as usize];
        let pop = &self.pops[state.population as usize];
        let clients = &self.profile.clients;
        let clock = &self.clock;
        let out = &mut self.out;
        let population = state.population;
        let emit = |out: &mut VecDeque<ScheduledAction>, client: Option<u16>, action: Action| {
            out.push_back(ScheduledAction {
                at: Duration::from_nanos(now),
                user: user_id,
                population,
                client,
                action,
            });
        };
        let sample = |rng: &mut Xoshiro256PlusPlus, d: Option<&Distribution>| {
            d.map_or(0.0, |d| d.sample(rng))
        };

        // 1. Sessions (logins before logouts before polls; clients in order).
        for i in 0..state.slots.len() {
            let slot = &state.slots[i];
            let client = &clients[slot.client as usize];
            let cidx = Some(slot.client);
            if slot.next_login <= now {
                let connections = client.connections;
                emit(out, cidx, Action::Login { connections });
                match client.protocol {
                    Protocol::Pop3 => {
                        // Download what was delivered; POP3 mail is never acted upon,
                        // and unless kept it is gone for the user's IMAP clients too.
                        if !client.pop3_keep {
                            state.waiting.retain(|(s, _)| {
                                !matches!(s, Step::Notice | Step::Read | Step::FollowUp)
                            });
                            state
                                .pending
                                .retain(|p| matches!(p.step, Step::Write | Step::Send));
                        }
                        emit(out, cidx, Action::CheckMail);
                        emit(out, cidx, Action::Logout);
                        let gap = sample(&mut state.rng, client.login_interval.as_ref());
                        state.slots[i].next_login = clock.after(now, gap, true).max(now + 1);
                    }
                    Protocol::Imap => {
                        let s = &mut state.slots[i];
                        s.logged_in = true;
                        s.next_login = NEVER;
                        s.next_logout = match &pop.session_length {
                            Some(d) => clock.after(now, d.sample(&mut state.rng), false),
                            None => NEVER,
                        };
                        s.next_poll = match &client.poll_interval {
                            Some(d) if !client.idle => {
                                clock.after(now, d.sample(&mut state.rng), true)
                            }
                            _ => NEVER,
                        };
                        resume_waiting(state, pop, clock, now, out, user_id, cidx);
                    }
                }
                continue;
            }
            if slot.next_logout <= now {
                emit(out, cidx, Action::Logout);
                let gap = sample(&mut state.rng, client.login_interval.as_ref());
                let s = &mut state.slots[i];
                s.logged_in = false;
                s.next_logout = NEVER;
                s.next_poll = NEVER;
                s.next_login = clock.after(now, gap, true).max(now + 1);
                continue;
            }
            if slot.next_poll <= now {
                emit(out, cidx, Action::CheckMail);
                let gap = sample(&mut state.rng, client.poll_interval.as_ref());
                state.slots[i].next_poll = clock.after(now, gap, true).max(now + 1);
                resume_waiting(state, pop, clock, now, out, user_id, cidx);
            }
        }
        // 2. Deliveries.
        if state.next_inbox <= now {
            state.msgs += 1;
            let msg = state.msgs;
            emit(
                out,
                None,
                Action::Deliver {
                    to: Mailbox::Inbox,
                    msg,
                },
            );
            let gap = sample(&mut state.rng, pop.inbox.as_ref());
            state.next_inbox = clock.after(now, gap, true).max(now + 1);
            match idle_client(state, clients) {
                Some(c) => notice(state, pop, clock, now, out, user_id, Some(c), msg),
                // Users without a client that can connect never see their mail.
                None if state.reads_mail => state.waiting.push((Step::Notice, msg)),
                None => {}
            }
        }
        if state.next_spam <= now {
            emit(
                out,
                None,
                Action::Deliver {
                    to: Mailbox::Spam,
                    msg: 0,
                },
            );
            let gap = sample(&mut state.rng, pop.spam.as_ref());
            state.next_spam = clock.after(now, gap, true).max(now + 1);
        }
        // 3. Writing new mail.
        if state.next_send <= now {
            let gap = sample(&mut state.rng, pop.send.as_ref());
            state.next_send = clock.after(now, gap, true).max(now + 1);
            state.drafts += 1;
            let draft = state.drafts;
            match imap_client(state, clients) {
                Some(c) => write_draft(state, pop, clock, now, out, user_id, Some(c), None, draft),
                None if state.reads_mail => state.waiting.push((Step::Write, draft)),
                None => {}
            }
        }
        // 4. Due mail actions, in time order.
        while let Some(pos) = state
            .pending
            .iter()
            .enumerate()
            .filter(|(_, p)| p.at <= now)
            .min_by_key(|(_, p)| p.at)
            .map(|(i, _)| i)
        {
            let p = state.pending.remove(pos);
            let Some(c) = imap_client(state, clients) else {
                state.waiting.push((p.step, p.id));
                continue;
            };
            let cidx = Some(c);
            match p.step {
                Step::Notice => notice(state, pop, clock, now, out, user_id, cidx, p.id),
                Step::Read => {
                    emit(out, cidx, Action::Read { msg: p.id });
                    let delay = sample(&mut state.rng, pop.repeat_delay.as_ref());
                    state.pending.push(Pending {
                        at: clock.after(now, delay, false),
                        step: Step::FollowUp,
                        id: p.id,
                    });
                }
                Step::FollowUp => {
                    let msg = p.id;
                    if state.rng.random_bool(pop.delete) {
                        emit(out, cidx, Action::Delete { msg });
                    } else if state.rng.random_bool(pop.move_to_spam) {
                        emit(out, cidx, Action::MoveToSpam { msg });
                    } else if state.rng.random_bool(pop.reply) {
                        state.drafts += 1;
                        let draft = state.drafts;
                        write_draft(state, pop, clock, now, out, user_id, cidx, Some(msg), draft);
                    }
                }
                Step::Write => write_draft(state, pop, clock, now, out, user_id, cidx, None, p.id),
                Step::Send => emit(out, cidx, Action::SendDraft { draft: p.id }),
            }
        }
    }
}

fn emit_at(
    out: &mut VecDeque<ScheduledAction>,
    now: u64,
    user: u32,
    population: u16,
    client: Option<u16>,
    action: Action,
) {
    out.push_back(ScheduledAction {
        at: Duration::from_nanos(now),
        user,
        population,
        client,
        action,
    });
}

/// A noticed INBOX mail: filtered to Spam, or read after `action_delay`.
#[allow(clippy::too_many_arguments)]
fn notice(
    state: &mut UserState,
    pop: &PopPlan,
    clock: &Clock,
    now: u64,
    out: &mut VecDeque<ScheduledAction>,
    user: u32,
    client: Option<u16>,
    msg: u32,
) {
    if pop.filter > 0.0 && state.rng.random_bool(pop.filter) {
        emit_at(
            out,
            now,
            user,
            state.population,
            client,
            Action::FilterToSpam { msg },
        );
        return;
    }
    let delay = pop
        .action_delay
        .as_ref()
        .map_or(0.0, |d| d.sample(&mut state.rng));
    state.pending.push(Pending {
        at: clock.after(now, delay, false),
        step: Step::Read,
        id: msg,
    });
}

/// Writes a draft (a reply when `reply_to` is set) and plans its sending.
#[allow(clippy::too_many_arguments)]
fn write_draft(
    state: &mut UserState,
    pop: &PopPlan,
    clock: &Clock,
    now: u64,
    out: &mut VecDeque<ScheduledAction>,
    user: u32,
    client: Option<u16>,
    reply_to: Option<u32>,
    draft: u32,
) {
    let action = match reply_to {
        Some(msg) => Action::Reply { msg, draft },
        None => Action::WriteDraft { draft },
    };
    emit_at(out, now, user, state.population, client, action);
    let duration = pop
        .write_duration
        .as_ref()
        .map_or(0.0, |d| d.sample(&mut state.rng));
    state.pending.push(Pending {
        at: clock.after(now, duration, false),
        step: Step::Send,
        id: draft,
    });
}

/// A session started or polled: everything waiting gets going.
fn resume_waiting(
    state: &mut UserState,
    pop: &PopPlan,
    clock: &Clock,
    now: u64,
    out: &mut VecDeque<ScheduledAction>,
    user: u32,
    client: Option<u16>,
) {
    let waiting = std::mem::take(&mut state.waiting);
    for (step, id) in waiting {
        match step {
            Step::Notice => notice(state, pop, clock, now, out, user, client, id),
            Step::Read | Step::FollowUp => {
                let d = if step == Step::Read {
                    &pop.action_delay
                } else {
                    &pop.repeat_delay
                };
                let delay = d.as_ref().map_or(0.0, |d| d.sample(&mut state.rng));
                state.pending.push(Pending {
                    at: clock.after(now, delay, false),
                    step,
                    id,
                });
            }
            Step::Write | Step::Send => state.pending.push(Pending { at: now, step, id }),
        }
    }
}

/// The first logged-in IMAP client.
fn imap_client(state: &UserState, clients: &[super::model::ClientType]) -> Option<u16> {
    state
        .slots
        .iter()
        .find(|s| s.logged_in && clients[s.client as usize].protocol == Protocol::Imap)
        .map(|s| s.client)
}

/// The first logged-in IMAP client that IDLEs (sees new mail at once).
fn idle_client(state: &UserState, clients: &[super::model::ClientType]) -> Option<u16> {
    state
        .slots
        .iter()
        .find(|s| {
            let c = &clients[s.client as usize];
            s.logged_in && c.protocol == Protocol::Imap && c.idle
        })
        .map(|s| s.client)
}

fn next_time(state: &UserState) -> u64 {
    let mut t = state.next_inbox.min(state.next_spam).min(state.next_send);
    for s in &state.slots {
        t = t.min(s.next_login).min(s.next_logout).min(s.next_poll);
    }
    for p in &state.pending {
        t = t.min(p.at);
    }
    t
}

fn pick_clients(rng: &mut Xoshiro256PlusPlus, pop: &PopPlan) -> Vec<u16> {
    match pop.selection {
        ClientSelection::One => {
            let total: f64 = pop.mix.iter().map(|(_, s)| s).sum();
            let mut x = rng.random::<f64>() * total;
            for &(c, s) in &pop.mix {
                if x < s {
                    return vec![c];
                }
                x -= s;
            }
            pop.mix
                .iter()
                .rev()
                .find(|(_, s)| *s > 0.0)
                .map(|&(c, _)| vec![c])
                .unwrap_or_default()
        }
        ClientSelection::Independent => {
            for _ in 0..1000 {
                let chosen: Vec<u16> = pop
                    .mix
                    .iter()
                    .filter(|&&(_, s)| rng.random::<f64>() * 100.0 < s)
                    .map(|&(c, _)| c)
                    .collect();
                if !chosen.is_empty() {
                    return chosen;
                }
            }
            pop.mix
                .iter()
                .max_by(|a, b| a.1.total_cmp(&b.1))
                .map(|&(c, _)| vec![c])
                .unwrap_or_default()
        }
    }
}

#[allow(clippy::too_many_arguments)]
fn new_user(
    profile: &Profile,
    pop: &PopPlan,
    clock: &Clock,
    seed: u64,
    user: u32,
    population: u16,
    start: u64,
) -> UserState {
    let mut rng = user_rng(seed, user);
    let chosen = pick_clients(&mut rng, pop);
    let reads_mail = chosen.iter().any(|&c| {
        let client = &profile.clients[c as usize];
        client.protocol == Protocol::Imap && client.connections > 0
    });
    let slots = chosen
        .into_iter()
        .map(|client| Slot {
            client,
            logged_in: false,
            next_login: if profile.clients[client as usize].connections == 0 {
                NEVER
            } else {
                start
            },
            next_logout: NEVER,
            next_poll: NEVER,
        })
        .collect();
    let mut first = |d: Option<&Distribution>| match d {
        Some(d) => clock.after(start, d.first_sample(&mut rng), true),
        None => NEVER,
    };
    let next_inbox = first(pop.inbox.as_ref());
    let next_spam = first(pop.spam.as_ref());
    let next_send = first(pop.send.as_ref());
    UserState {
        rng,
        population,
        slots,
        next_inbox,
        next_spam,
        next_send,
        pending: Vec::new(),
        waiting: Vec::new(),
        msgs: 0,
        drafts: 0,
        reads_mail,
    }
}

impl Iterator for Schedule {
    type Item = ScheduledAction;

    fn next(&mut self) -> Option<ScheduledAction> {
        loop {
            if let Some(action) = self.out.pop_front() {
                return Some(action);
            }
            let Reverse((at, slot)) = *self.heap.peek()?;
            if at > self.until {
                self.heap.clear();
                return None;
            }
            self.process(slot, at);
            let next = next_time(&self.users[slot as usize]);
            if next == NEVER {
                self.heap.pop();
            } else if let Some(mut top) = self.heap.peek_mut() {
                // Replacing the top sifts it down once (cheaper than pop + push).
                *top = Reverse((next.max(at), slot));
            }
        }
    }
}

/// Usernames and passwords of a profile's users.
pub struct Directory {
    pops: Vec<PopUsers>,
    offsets: Vec<u32>,
}

enum PopUsers {
    Template {
        template: UsernameTemplate,
        start: u32,
        password: Option<String>,
    },
    File(Vec<(String, Option<String>)>),
}

impl Directory {
    /// Reads user files (each needs at least as many entries as its population).
    pub fn new(profile: &Profile) -> Result<Self, String> {
        let sizes = profile.population_sizes();
        let mut offsets = Vec::new();
        let mut total = 0u32;
        let mut pops = Vec::new();
        for (p, &n) in profile.populations.iter().zip(&sizes) {
            offsets.push(total);
            total = total.saturating_add(n);
            pops.push(match (&p.userfile, &p.username) {
                (Some(file), _) => {
                    let entries = crate::users::read_userfile(file).map_err(|e| e.to_string())?;
                    if entries.len() < n as usize {
                        return Err(format!(
                            "population {:?}: {} has {} users, {} needed",
                            p.name.get_ref(),
                            file.display(),
                            entries.len(),
                            n
                        ));
                    }
                    PopUsers::File(
                        entries
                            .into_iter()
                            .take(n as usize)
                            .map(|e| (e.user, e.password.or_else(|| p.password.clone())))
                            .collect(),
                    )
                }
                (None, Some(t)) => PopUsers::Template {
                    template: UsernameTemplate::parse(t)?,
                    start: p.start_index,
                    password: p.password.clone(),
                },
                (None, None) => {
                    return Err(format!(
                        "population {:?} has no users source",
                        p.name.get_ref()
                    ));
                }
            });
        }
        Ok(Directory { pops, offsets })
    }

    /// Username and password (`None`: the global `pass=`) of global user `user`.
    pub fn user(&self, user: u32) -> (String, Option<&str>) {
        let p = self
            .offsets
            .partition_point(|&o| o <= user)
            .saturating_sub(1);
        let k = user - self.offsets[p];
        match &self.pops[p] {
            PopUsers::Template {
                template,
                start,
                password,
            } => (
                template.expand(u64::from(*start) + u64::from(k)),
                password.as_deref(),
            ),
            PopUsers::File(entries) => {
                let (name, pw) = &entries[k as usize];
                (name.clone(), pw.as_deref())
            }
        }
    }
}
