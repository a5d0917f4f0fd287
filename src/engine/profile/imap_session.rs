//! An IMAP client of one user, behaving like the configured program.
//!
//! * Login opens `connections` connections. The first selects INBOX and, for an IDLE
//!   client, waits in IDLE; further ones select Drafts, Sent, then INBOX (as ImapTest
//!   does) and serve the Drafts/Sent work.
//! * New mail: caching clients fetch `fetch_on_arrival` once per message (they remember
//!   UIDVALIDITY and UIDNEXT across sessions); clients with `cache = false` (webmail)
//!   re-fetch the newest 50 messages at every login and check. The delivery marker
//!   header is fetched along, to map the schedule's message numbers to UIDs and to
//!   measure end-to-end delivery latency.
//! * Mail actions: read (`fetch_on_open`, `\Seen`), delete (`\Deleted` + UID EXPUNGE),
//!   move to Spam (UID MOVE, or COPY + expunge), reply (`\Answered` + a draft), drafts
//!   (APPEND to Drafts, APPENDUID remembered) sent later (APPEND to Sent, the draft
//!   expunged).
//!
//! A failed connection ends the session (every connection is closed) with an error
//! naming the user, connection and command; the next scheduled login starts over.

use std::collections::HashSet;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use rand::SeedableRng as _;
use rand_xoshiro::Xoshiro256PlusPlus;
use tokio::sync::mpsc;

use super::user::UserShared;
use super::{Ctx, Job, SessionTally};
use crate::engine::states::State;
use crate::imap::client::{ClientError, Completion, ImapClient, LoginRequest};
use crate::imap::command::CommandPart;
use crate::imap::framer::RawResponse;
use crate::imap::response::{Code, FetchItem, Response, Status, Untagged};
use crate::imap::stream::StreamError;
use crate::lmtp::{MARKER_HEADER, parse_marker};
use crate::metrics::{DeliveryEvent, Event, Outcome};
use crate::profile::model::ClientType;
use crate::profile::schedule::{Action, splitmix64};

/// RFC 2177: re-issue IDLE at least every 29 minutes.
const IDLE_RENEW: Duration = Duration::from_secs(25 * 60);
/// Messages a non-caching client (re-)fetches at login and at each check.
const WINDOW: u32 = 50;

const INBOX: &str = "INBOX";
const DRAFTS: &str = "Drafts";
const SENT: &str = "Sent";
const SPAM: &str = "Spam";

struct Conn {
    client: ImapClient,
    /// The selected mailbox.
    mailbox: &'static str,
    /// The IDLE command's tag while idling.
    idle_tag: Option<String>,
    exists: u32,
    /// EXISTS when new mail was last fetched (EXPUNGEs lower both): more means new mail.
    fetched_exists: u32,
    /// The next UID to fetch new mail from (one past the highest UID fetched).
    uidnext: u32,
    /// UIDNEXT announced by SELECT.
    server_uidnext: u32,
    uidvalidity: u32,
}

struct Session {
    ctx: Arc<Ctx>,
    user: Arc<UserShared>,
    client: u16,
    conns: Vec<Conn>,
    /// Mailboxes known to exist (LIST at the first login of a session, CREATE).
    mailboxes: HashSet<String>,
    /// A caching client's memory of INBOX: (UIDVALIDITY, UIDNEXT).
    cache: Option<(u32, u32)>,
    rng: Xoshiro256PlusPlus,
    tally: SessionTally,
}

pub(super) async fn run(
    ctx: Arc<Ctx>,
    user: Arc<UserShared>,
    client: u16,
    mut jobs: mpsc::UnboundedReceiver<Job>,
) {
    let rng = Xoshiro256PlusPlus::seed_from_u64(splitmix64(
        ctx.seed ^ (u64::from(user.index) << 16) ^ u64::from(client) ^ 0xD4AF_7000,
    ));
    let mut session = Session {
        ctx,
        user,
        client,
        conns: Vec::new(),
        mailboxes: HashSet::new(),
        cache: None,
        rng,
        tally: SessionTally::default(),
    };
    // The task lives from the user's first action to the end of the run, logged in or
    // not: the work futures are boxed so the resting task stays small (~0.8 KB instead
    // of ~5 KB; `cargo bench --bench profile` measures RSS per user).
    loop {
        if jobs.is_empty() {
            Box::pin(session.fetch_if_new_mail()).await;
            Box::pin(session.ensure_idle()).await;
        }
        let job = if session.idling() {
            let conn = &mut session.conns[0];
            tokio::select! {
                job = jobs.recv() => job,
                response = conn.client.stream().read_response_within(None) => {
                    Box::pin(session.idle_response(response)).await;
                    continue;
                }
                () = tokio::time::sleep(IDLE_RENEW) => {
                    Box::pin(session.leave_idle(Instant::now())).await;
                    continue;
                }
            }
        } else {
            jobs.recv().await
        };
        let Some(job) = job else { break };
        if session.ctx.stopping_now() {
            session.conns.clear();
            return;
        }
        Box::pin(session.perform(job)).await;
    }
    Box::pin(session.logout(Instant::now())).await;
}

impl Session {
    fn kind(&self) -> &ClientType {
        &self.ctx.profile.clients[self.client as usize]
    }

    fn idling(&self) -> bool {
        self.conns.first().is_some_and(|c| c.idle_tag.is_some())
    }

    async fn perform(&mut self, job: Job) {
        let at = job.intended;
        match job.action.action {
            Action::Login { connections } => self.login(connections, at).await,
            Action::Logout => self.logout(at).await,
            Action::CheckMail => self.check_mail(at).await,
            Action::Read { msg } => self.read(msg, at).await,
            Action::Delete { msg } => self.delete(msg, at).await,
            Action::MoveToSpam { msg } | Action::FilterToSpam { msg } => {
                self.move_to_spam(msg, at).await;
            }
            Action::Reply { msg, draft } => self.reply(msg, draft, at).await,
            Action::WriteDraft { draft } => self.write_draft(draft, at).await,
            Action::SendDraft { draft } => self.send_draft(draft, at).await,
            Action::Deliver { .. } => self.ctx.skip(),
        }
    }

    // --- commands --------------------------------------------------------------------

    /// Runs one command on connection `c` (leaving IDLE first), times and counts it, and
    /// absorbs its untagged data. NO/BAD is reported and returned; a connection failure
    /// ends the session and returns `None`.
    async fn run(
        &mut self,
        c: usize,
        state: State,
        intended: Instant,
        build: impl FnOnce(&mut ImapClient) -> (String, Vec<CommandPart>),
    ) -> Option<Completion> {
        if c >= self.conns.len() {
            return None;
        }
        if self.conns[c].idle_tag.is_some() && !self.leave_idle_on(c, intended).await {
            return None;
        }
        let conn = &mut self.conns[c];
        let (tag, parts) = build(&mut conn.client);
        let line = command_line(&parts);
        let started = Instant::now();
        let result = conn.client.run(&tag, parts).await;
        let outcome = match &result {
            Ok(done) => match done.status {
                Status::Ok => Outcome::Ok,
                Status::No => Outcome::No,
                _ => Outcome::Bad,
            },
            Err(_) => Outcome::Failed,
        };
        self.count(state, outcome, intended, started);
        match result {
            Ok(done) => {
                self.absorb(c, &done.untagged);
                if !done.is_ok() && !tolerated(state, &done) {
                    let id = self.conns[c].client.id();
                    self.ctx.error(
                        &self.user.name,
                        Some(id),
                        format!("{line} failed"),
                        Some(done.line.clone()),
                    );
                    self.tally.errors += 1;
                }
                Some(done)
            }
            Err(e) => {
                self.lost(c, &line, &e);
                None
            }
        }
    }

    fn count(&mut self, state: State, outcome: Outcome, intended: Instant, started: Instant) {
        self.ctx.metrics.send(Event::Command {
            state,
            outcome,
            intended,
            started,
            finished: Instant::now(),
        });
        self.ctx.count_command(self.client, state);
        self.tally.commands += 1;
        if outcome == Outcome::Failed {
            self.tally.errors += 1;
        }
    }

    /// A simple command line (without tag).
    async fn simple(
        &mut self,
        c: usize,
        state: State,
        at: Instant,
        line: String,
    ) -> Option<Completion> {
        self.run(c, state, at, |client| {
            let (tag, builder) = client.command(&line);
            (tag, builder.finish())
        })
        .await
    }

    /// A connection failed: report it and end the session.
    fn lost(&mut self, c: usize, doing: &str, e: &ClientError) {
        let id = self.conns.get(c).map(|conn| conn.client.id());
        self.ctx
            .error(&self.user.name, id, format!("{doing}: {e}"), None);
        self.close_all();
    }

    /// Drops every connection and ends the session.
    fn close_all(&mut self) {
        let gauges = &self.ctx.metrics.gauges;
        for mut conn in self.conns.drain(..) {
            gauges.open.fetch_sub(1, Ordering::Relaxed);
            gauges.active.fetch_sub(1, Ordering::Relaxed);
            self.ctx.metrics.send(Event::Disconnected);
            let stream = conn.client.stream();
            self.tally.bytes_in += stream.bytes_in();
            self.tally.bytes_out += stream.bytes_out();
        }
        if self.tally.start.is_some() {
            self.user.session_closed(gauges);
        }
        self.tally.end(&self.ctx, &self.user, self.client, "imap");
    }

    /// Learns EXISTS, EXPUNGE, UIDNEXT, UIDVALIDITY and delivered messages.
    fn absorb(&mut self, c: usize, untagged: &[RawResponse]) {
        let mut seen = Vec::new();
        let conn = &mut self.conns[c];
        for raw in untagged {
            let Ok(Response::Untagged(u)) = raw.parse() else {
                continue;
            };
            match u {
                Untagged::Exists(n) => conn.exists = n,
                Untagged::Expunge(_) => {
                    conn.exists = conn.exists.saturating_sub(1);
                    conn.fetched_exists = conn.fetched_exists.saturating_sub(1);
                }
                Untagged::Status { text, .. } => match text.code {
                    Some(Code::UidNext(n)) => conn.server_uidnext = n,
                    Some(Code::UidValidity(v)) => conn.uidvalidity = v,
                    _ => {}
                },
                Untagged::Fetch { items, .. } if conn.mailbox == INBOX => {
                    let mut uid = None;
                    let mut marker = None;
                    for item in &items {
                        match item {
                            FetchItem::Uid(u) => uid = Some(*u),
                            FetchItem::Section { name, data, .. }
                                if contains_ignore_case(name, MARKER_HEADER.as_bytes()) =>
                            {
                                marker = data.as_nstring().flatten().and_then(parse_marker);
                            }
                            _ => {}
                        }
                    }
                    if let Some(uid) = uid {
                        conn.uidnext = conn.uidnext.max(uid.saturating_add(1));
                        if let Some(msg) = self.ctx.marker_msg(&self.user, marker) {
                            seen.push((msg, uid));
                        }
                    }
                }
                _ => {}
            }
        }
        if seen.is_empty() {
            return;
        }
        let now = Instant::now();
        let latencies: Vec<Duration> = {
            let mut mail = self.user.mail();
            seen.iter()
                .filter_map(|&(msg, uid)| mail.seen(msg, uid, now))
                .collect()
        };
        for latency in latencies {
            self.ctx
                .metrics
                .send(Event::Delivery(DeliveryEvent::Seen { latency }));
        }
    }

    // --- IDLE ------------------------------------------------------------------------

    /// Enters IDLE on the first connection of an IDLE client that is logged in.
    async fn ensure_idle(&mut self) {
        if !self.kind().idle || self.conns.is_empty() || self.idling() {
            return;
        }
        let started = Instant::now();
        let result = self.conns[0].client.idle().await;
        match result {
            Ok((tag, untagged)) => {
                self.count(State::Idle, Outcome::Ok, started, started);
                self.absorb(0, &untagged);
                self.conns[0].idle_tag = Some(tag);
                // Mail may have arrived between the last command and IDLE.
                if self.has_new_mail() && self.leave_idle(started).await {
                    self.fetch_new(0, started).await;
                }
            }
            Err(ClientError::Failed { line, .. }) => {
                self.count(State::Idle, Outcome::No, started, started);
                let id = self.conns[0].client.id();
                self.ctx
                    .error(&self.user.name, Some(id), "IDLE refused".into(), Some(line));
                self.tally.errors += 1;
                // Don't retry IDLE in a loop: behave like a polling client until logout.
                self.close_all();
            }
            Err(e) => {
                self.count(State::Idle, Outcome::Failed, started, started);
                self.lost(0, "IDLE", &e);
            }
        }
    }

    async fn leave_idle(&mut self, intended: Instant) -> bool {
        self.leave_idle_on(0, intended).await
    }

    /// Sends DONE and waits for the IDLE's completion.
    async fn leave_idle_on(&mut self, c: usize, _intended: Instant) -> bool {
        let Some(tag) = self.conns.get_mut(c).and_then(|conn| conn.idle_tag.take()) else {
            return true;
        };
        match self.conns[c].client.idle_done(&tag).await {
            Ok(done) => {
                self.absorb(c, &done.untagged);
                true
            }
            Err(e) => {
                self.lost(c, "DONE", &e);
                false
            }
        }
    }

    /// Something arrived while idling.
    async fn idle_response(&mut self, response: Result<RawResponse, StreamError>) {
        let response = match response {
            Ok(r) => r,
            Err(e) if e.is_recoverable() => {
                let id = self.conns[0].client.id();
                self.ctx.error(
                    &self.user.name,
                    Some(id),
                    format!("malformed response in IDLE: {e}"),
                    None,
                );
                self.tally.errors += 1;
                return;
            }
            Err(e) => {
                self.lost(0, "IDLE", &ClientError::Stream(e));
                return;
            }
        };
        let tagged = matches!(response.parse(), Ok(Response::Tagged { .. }));
        self.absorb(0, std::slice::from_ref(&response));
        if tagged {
            // The server ended the IDLE itself.
            self.conns[0].idle_tag = None;
            return;
        }
        if self.has_new_mail() {
            let now = Instant::now();
            if self.leave_idle(now).await {
                self.fetch_new(0, now).await;
            }
        }
    }

    /// INBOX on the first connection has more messages than when mail was last fetched.
    fn has_new_mail(&self) -> bool {
        self.conns
            .first()
            .is_some_and(|c| c.mailbox == INBOX && c.exists > c.fetched_exists)
    }

    /// Fetches mail announced by an earlier command's untagged EXISTS.
    async fn fetch_if_new_mail(&mut self) {
        if self.has_new_mail() {
            self.fetch_new(0, Instant::now()).await;
        }
    }

    // --- session ---------------------------------------------------------------------

    async fn login(&mut self, connections: u32, at: Instant) {
        if !self.conns.is_empty() {
            return;
        }
        let Some(endpoint) = self.ctx.endpoints.imap.clone() else {
            self.ctx.skip();
            return;
        };
        self.tally.begin();
        self.user.session_opened(&self.ctx.metrics.gauges);
        self.ctx.counters[self.client as usize]
            .sessions
            .fetch_add(1, Ordering::Relaxed);
        self.mailboxes.clear();
        for i in 0..connections.max(1) {
            let started = Instant::now();
            let id = self.ctx.connection_id();
            let mut client = match ImapClient::connect(&endpoint, id, &self.ctx.imap_options).await
            {
                Ok(client) => client,
                Err(e) => {
                    self.count(State::Login, Outcome::Failed, at, started);
                    self.ctx.error(
                        &self.user.name,
                        Some(id),
                        format!("connect failed: {e}"),
                        None,
                    );
                    self.close_all();
                    return;
                }
            };
            let gauges = &self.ctx.metrics.gauges;
            gauges.open.fetch_add(1, Ordering::Relaxed);
            gauges.active.fetch_add(1, Ordering::Relaxed);
            self.ctx.metrics.send(Event::Connected);
            let request = LoginRequest {
                user: &self.user.name,
                password: &self.user.password,
                mech: &self.ctx.mech,
                master: None,
                scram_cache: &self.ctx.scram_cache,
            };
            let state = if self.ctx.mech == "LOGIN" {
                State::Login
            } else {
                State::Authenticate
            };
            let result = client.log_in(&request).await;
            self.conns.push(Conn {
                client,
                mailbox: INBOX,
                idle_tag: None,
                exists: 0,
                fetched_exists: 0,
                uidnext: 1,
                server_uidnext: 1,
                uidvalidity: 0,
            });
            let c = self.conns.len() - 1;
            match result {
                Ok(done) if done.is_ok() => self.count(state, Outcome::Ok, at, started),
                Ok(done) => {
                    self.count(state, Outcome::No, at, started);
                    self.ctx.error(
                        &self.user.name,
                        Some(id),
                        "login failed".into(),
                        Some(done.line),
                    );
                    self.close_all();
                    return;
                }
                Err(e) => {
                    self.count(state, Outcome::Failed, at, started);
                    self.lost(c, "login", &e);
                    return;
                }
            }
            if i == 0 && !self.list_and_create(at).await {
                return;
            }
            let mailbox = self.mailbox_for(c);
            if !self.select(c, mailbox, at).await {
                return;
            }
        }
        self.initial_fetch(at).await;
    }

    /// LIST once per session, and CREATE the mailboxes the population needs.
    async fn list_and_create(&mut self, at: Instant) -> bool {
        let Some(done) = self
            .simple(0, State::List, at, "LIST \"\" \"*\"".into())
            .await
        else {
            return false;
        };
        for raw in &done.untagged {
            if let Some(name) = listed_name(raw) {
                self.mailboxes.insert(name);
            }
        }
        let pop = &self.ctx.profile.populations[self.user.population as usize];
        let mut wanted = Vec::new();
        if pop.spam_delivery.is_some() || pop.move_to_spam > 0.0 || pop.filter_to_spam > 0.0 {
            wanted.push(SPAM);
        }
        if pop.send.is_some() || pop.reply > 0.0 {
            wanted.extend([DRAFTS, SENT]);
        }
        for name in wanted {
            if !self.ensure_mailbox(0, name, at).await {
                return false;
            }
        }
        true
    }

    /// CREATEs `name` unless it is known to exist. False if the session ended.
    async fn ensure_mailbox(&mut self, c: usize, name: &str, at: Instant) -> bool {
        if self.mailboxes.contains(name) {
            return true;
        }
        let line = format!("CREATE {}", crate::imap::command::quoted(name));
        if self.simple(c, State::MCreate, at, line).await.is_none() {
            return false;
        }
        // Created, or it already existed ([ALREADYEXISTS]): either way it is there.
        self.mailboxes.insert(name.to_owned());
        true
    }

    /// INBOX unless another connection has it, then Drafts (for the draft work), then
    /// Sent, else INBOX (ImapTest tries Sent before Drafts).
    fn mailbox_for(&self, c: usize) -> &'static str {
        let taken = |name: &str| self.conns[..c].iter().any(|conn| conn.mailbox == name);
        for name in [INBOX, DRAFTS, SENT] {
            if !taken(name) && (name == INBOX || self.mailboxes.contains(name)) {
                return name;
            }
        }
        INBOX
    }

    async fn select(&mut self, c: usize, mailbox: &'static str, at: Instant) -> bool {
        {
            let conn = &mut self.conns[c];
            conn.mailbox = mailbox;
            conn.exists = 0;
            conn.uidnext = 1;
            conn.server_uidnext = 1;
            conn.uidvalidity = 0;
        }
        let line = format!("SELECT {}", crate::imap::command::quoted(mailbox));
        if self.simple(c, State::Select, at, line).await.is_none() {
            return false;
        }
        let cache = self.cache;
        let conn = &mut self.conns[c];
        conn.fetched_exists = conn.exists;
        // Back in INBOX (after visiting Drafts): what was fetched is still known.
        if mailbox == INBOX
            && let Some((validity, next)) = cache
            && validity == conn.uidvalidity
        {
            conn.uidnext = next;
        }
        true
    }

    /// What a client fetches when it opens INBOX: a caching client what arrived since
    /// its last session, others (and a caching client's first session) the newest
    /// messages.
    async fn initial_fetch(&mut self, at: Instant) {
        let Some(conn) = self.conns.first_mut() else {
            return;
        };
        let caching = self.ctx.profile.clients[self.client as usize].cache;
        match self.cache {
            Some((validity, next)) if caching && validity == conn.uidvalidity => {
                conn.uidnext = next;
                if next < conn.server_uidnext {
                    self.fetch_new(0, at).await;
                }
            }
            _ => self.fetch_window(at).await,
        }
    }

    /// FETCH the newest messages by sequence number.
    async fn fetch_window(&mut self, at: Instant) {
        let Some(conn) = self.conns.first() else {
            return;
        };
        let exists = conn.exists;
        if exists > 0 {
            let first = exists.saturating_sub(WINDOW - 1).max(1);
            let line = format!("FETCH {first}:{exists} {}", self.arrival_items());
            if self.simple(0, State::Fetch, at, line).await.is_none() {
                return;
            }
        }
        if let Some(conn) = self.conns.first_mut() {
            conn.fetched_exists = conn.fetched_exists.max(exists);
            conn.uidnext = conn.uidnext.max(conn.server_uidnext);
        }
        self.remember();
    }

    /// UID FETCH what arrived since the last known UIDNEXT.
    async fn fetch_new(&mut self, c: usize, at: Instant) {
        if !self.kind().cache {
            return self.fetch_window(at).await;
        }
        let Some(conn) = self.conns.get(c) else {
            return;
        };
        let exists = conn.exists;
        let line = format!("UID FETCH {}:* {}", conn.uidnext, self.arrival_items());
        if self.simple(c, State::Fetch, at, line).await.is_some() {
            if let Some(conn) = self.conns.get_mut(c) {
                conn.fetched_exists = conn.fetched_exists.max(exists);
            }
            self.remember();
        }
    }

    /// A caching client remembers INBOX's state.
    fn remember(&mut self) {
        if let Some(conn) = self.conns.first()
            && conn.mailbox == INBOX
        {
            self.cache = Some((conn.uidvalidity, conn.uidnext));
        }
    }

    /// `(UID <fetch_on_arrival> BODY.PEEK[HEADER.FIELDS (X-Imaptest-Delivery)])`.
    fn arrival_items(&self) -> String {
        let items = self.kind().fetch_on_arrival.as_deref().unwrap_or("FLAGS");
        let items = items.trim().trim_start_matches('(').trim_end_matches(')');
        let rest: Vec<&str> = items
            .split(' ')
            .filter(|w| !w.is_empty() && !w.eq_ignore_ascii_case("UID"))
            .collect();
        format!(
            "(UID {} BODY.PEEK[HEADER.FIELDS ({MARKER_HEADER})])",
            rest.join(" ")
        )
    }

    async fn check_mail(&mut self, at: Instant) {
        if self.conns.is_empty() {
            self.ctx.skip();
            return;
        }
        let before = self.conns[0].exists;
        if self
            .simple(0, State::Noop, at, "NOOP".into())
            .await
            .is_none()
        {
            return;
        }
        if !self.kind().cache || self.conns.first().is_some_and(|c| c.exists > before) {
            self.fetch_new(0, at).await;
        }
    }

    async fn logout(&mut self, at: Instant) {
        if self.conns.is_empty() {
            return;
        }
        for c in 0..self.conns.len() {
            if !self.leave_idle_on(c, at).await {
                return;
            }
        }
        let conns: Vec<Conn> = self.conns.drain(..).collect();
        let gauges = self.ctx.metrics.gauges.clone();
        for mut conn in conns {
            let started = Instant::now();
            let result = conn.client.logout().await;
            let outcome = match &result {
                Ok(done) if done.is_ok() => Outcome::Ok,
                Ok(_) => Outcome::No,
                Err(_) => Outcome::Failed,
            };
            self.count(State::Logout, outcome, at, started);
            if let Err(e) = result {
                self.ctx.error(
                    &self.user.name,
                    Some(conn.client.id()),
                    format!("LOGOUT: {e}"),
                    None,
                );
                self.tally.errors += 1;
            }
            let stream = conn.client.stream();
            self.tally.bytes_in += stream.bytes_in();
            self.tally.bytes_out += stream.bytes_out();
            gauges.open.fetch_sub(1, Ordering::Relaxed);
            gauges.active.fetch_sub(1, Ordering::Relaxed);
            self.ctx.metrics.send(Event::Disconnected);
        }
        self.user.session_closed(&gauges);
        self.tally.end(&self.ctx, &self.user, self.client, "imap");
    }

    // --- mail actions ----------------------------------------------------------------

    /// The UID of message `msg`, catching up with new mail once if it is not known yet.
    /// `None` (counted as skipped): not logged in, or the message is not there.
    async fn uid_of(&mut self, msg: u32, at: Instant) -> Option<u32> {
        if self.conns.is_empty() {
            self.ctx.skip();
            return None;
        }
        if let Some(&uid) = self.user.mail().inbox.get(&msg) {
            return Some(uid);
        }
        self.fetch_new(0, at).await;
        let uid = self.user.mail().inbox.get(&msg).copied();
        if uid.is_none() || uid == Some(0) {
            self.ctx.skip();
            return None;
        }
        uid
    }

    async fn read(&mut self, msg: u32, at: Instant) {
        let Some(uid) = self.uid_of(msg, at).await else {
            return;
        };
        let items = self
            .kind()
            .fetch_on_open
            .clone()
            .unwrap_or_else(|| "BODY.PEEK[]".to_owned());
        let items = parenthesised(&items);
        if self
            .simple(0, State::Fetch2, at, format!("UID FETCH {uid} {items}"))
            .await
            .is_none()
        {
            return;
        }
        let line = format!("UID STORE {uid} +FLAGS.SILENT (\\Seen)");
        self.simple(0, State::Store, at, line).await;
    }

    async fn delete(&mut self, msg: u32, at: Instant) {
        let Some(uid) = self.uid_of(msg, at).await else {
            return;
        };
        if self.expunge_uid(0, uid, at).await {
            self.user.mail().forget(msg);
        }
    }

    /// `\Deleted` and UID EXPUNGE (plain EXPUNGE without UIDPLUS).
    async fn expunge_uid(&mut self, c: usize, uid: u32, at: Instant) -> bool {
        let line = format!("UID STORE {uid} +FLAGS.SILENT (\\Deleted)");
        if self.simple(c, State::Delete, at, line).await.is_none() {
            return false;
        }
        let line = if self.conns[c].client.capabilities().has("UIDPLUS") {
            format!("UID EXPUNGE {uid}")
        } else {
            "EXPUNGE".to_owned()
        };
        self.simple(c, State::Expunge, at, line).await.is_some()
    }

    async fn move_to_spam(&mut self, msg: u32, at: Instant) {
        let Some(uid) = self.uid_of(msg, at).await else {
            return;
        };
        if !self.ensure_mailbox(0, SPAM, at).await {
            return;
        }
        let caps = self.conns[0].client.capabilities();
        let moved = if caps.has("MOVE") || caps.has("IMAP4rev2") {
            self.simple(0, State::Move, at, format!("UID MOVE {uid} {SPAM}"))
                .await
                .is_some_and(|done| done.is_ok())
        } else {
            let copied = self
                .simple(0, State::Copy, at, format!("UID COPY {uid} {SPAM}"))
                .await
                .is_some_and(|done| done.is_ok());
            copied && self.expunge_uid(0, uid, at).await
        };
        if moved {
            self.user.mail().forget(msg);
        }
    }

    async fn reply(&mut self, msg: u32, draft: u32, at: Instant) {
        if let Some(uid) = self.uid_of(msg, at).await {
            let line = format!("UID STORE {uid} +FLAGS.SILENT (\\Answered)");
            if self.simple(0, State::Store, at, line).await.is_none() {
                return;
            }
        }
        self.write_draft(draft, at).await;
    }

    /// The connection for Drafts/Sent work: one with Drafts selected, else the first.
    fn drafts_conn(&self) -> usize {
        self.conns
            .iter()
            .position(|c| c.mailbox == DRAFTS)
            .unwrap_or(0)
    }

    async fn append(&mut self, mailbox: &str, flags: &str, at: Instant) -> Option<u32> {
        let c = self.drafts_conn();
        let source = self.ctx.write_sources[self.user.population as usize]
            .clone()
            .unwrap_or_else(|| self.ctx.messages.clone());
        let message = source.next_message(&mut self.rng);
        let done = self
            .run(c, State::Append, at, |client| {
                let (tag, builder) = client.command("APPEND");
                let parts = builder
                    .string(mailbox.as_bytes())
                    .raw(flags)
                    .literal(&message.data)
                    .finish();
                (tag, parts)
            })
            .await?;
        if !done.is_ok() {
            return None;
        }
        appended_uid(&done.line)
    }

    async fn write_draft(&mut self, draft: u32, at: Instant) {
        if self.conns.is_empty() {
            self.ctx.skip();
            return;
        }
        if !self.ensure_mailbox(0, DRAFTS, at).await {
            return;
        }
        if let Some(uid) = self.append(DRAFTS, "(\\Draft)", at).await {
            self.user.mail().drafts.insert(draft, uid);
        }
    }

    async fn send_draft(&mut self, draft: u32, at: Instant) {
        if self.conns.is_empty() {
            self.ctx.skip();
            return;
        }
        if !self.ensure_mailbox(0, SENT, at).await {
            return;
        }
        if self.append(SENT, "(\\Seen)", at).await.is_none() && self.conns.is_empty() {
            return;
        }
        let Some(uid) = self.user.mail().drafts.remove(&draft) else {
            return;
        };
        let c = self.drafts_conn();
        if self.conns[c].mailbox == DRAFTS {
            self.expunge_uid(c, uid, at).await;
            return;
        }
        // One connection: visit Drafts and come back to INBOX.
        if self.select(c, DRAFTS, at).await && self.expunge_uid(c, uid, at).await {
            self.select(c, INBOX, at).await;
        }
    }
}

/// The command line up to the first literal, for error messages (never a password:
/// login errors are reported without it).
fn command_line(parts: &[CommandPart]) -> String {
    let first = parts.first().map_or(&[][..], |p| &p.bytes[..]);
    let end = first
        .iter()
        .position(|&b| b == b'\r' || b == b'{')
        .unwrap_or(first.len());
    let text = String::from_utf8_lossy(&first[..end]);
    // Drop the tag.
    text.split_once(' ')
        .map_or(text.as_ref(), |(_, rest)| rest)
        .trim_end()
        .to_owned()
}

/// NO replies that are part of normal operation.
fn tolerated(state: State, done: &Completion) -> bool {
    state == State::MCreate && done.line.to_ascii_uppercase().contains("ALREADYEXISTS")
}

/// The UID in a tagged `OK [APPENDUID v uid]`.
fn appended_uid(line: &str) -> Option<u32> {
    let data = format!("{line}\r\n");
    match crate::imap::response::parse(data.as_bytes()) {
        Ok(Response::Tagged { text, .. }) => match text.code {
            Some(Code::AppendUid { uids, .. }) => uids.ranges().first().map(|&(lo, _)| lo),
            _ => None,
        },
        _ => None,
    }
}

/// The mailbox name of a `* LIST` response.
fn listed_name(raw: &RawResponse) -> Option<String> {
    let line = raw.first_line();
    let text = String::from_utf8_lossy(line);
    let rest = text.strip_prefix("* LIST ")?;
    // `(flags) "sep" name`: the name is the last word, possibly quoted.
    let after_flags = &rest[rest.find(')')? + 1..];
    let after_sep = after_flags.trim_start();
    let name_part = if let Some(stripped) = after_sep.strip_prefix('"') {
        &stripped[stripped.find('"')? + 1..]
    } else {
        after_sep.split_once(' ')?.1
    };
    let name = name_part.trim().trim_end_matches(['\r', '\n']);
    Some(name.trim_matches('"').to_owned())
}

fn parenthesised(items: &str) -> String {
    let items = items.trim();
    if items.starts_with('(') {
        items.to_owned()
    } else {
        format!("({items})")
    }
}

fn contains_ignore_case(haystack: &[u8], needle: &[u8]) -> bool {
    haystack
        .windows(needle.len())
        .any(|w| w.eq_ignore_ascii_case(needle))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn appenduid_is_read_from_the_tagged_line() {
        assert_eq!(
            appended_uid("a1 OK [APPENDUID 1700000000 42] Append completed."),
            Some(42)
        );
        assert_eq!(appended_uid("a1 OK Append completed."), None);
    }

    #[test]
    fn command_lines_lose_tag_and_literal() {
        let parts = vec![CommandPart {
            bytes: b"7.3 APPEND \"Drafts\" (\\Draft) {12+}\r\nhello".to_vec(),
            secret_from: None,
        }];
        assert_eq!(command_line(&parts), "APPEND \"Drafts\" (\\Draft)");
    }

    #[test]
    fn fetch_items_are_parenthesised_once() {
        assert_eq!(parenthesised("BODY[]"), "(BODY[])");
        assert_eq!(parenthesised("(FLAGS UID)"), "(FLAGS UID)");
    }
}
