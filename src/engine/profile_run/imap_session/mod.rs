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
//! Every reply on a selected mailbox is checked against the shared mailbox model
//! ([`crate::tracking`], as in stress mode; `no_tracking` turns it off).
//!
//! A failed connection ends the session (every connection is closed) with an error
//! naming the user, connection and command; the next scheduled login starts over.

use std::collections::HashSet;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use rand::SeedableRng as _;
use rand_xoshiro::Xoshiro256PlusPlus;

use super::sessions::JobReceiver;
use super::user::UserShared;
use super::{Ctx, Job, SessionTally};
use crate::config::Mech;
use crate::imap::client::{ClientError, Completion, ImapClient, LoginRequest};
use crate::imap::command::CommandPart;
use crate::imap::framer::RawResponse;
use crate::imap::response::{Code, FetchItem, Response, Status, Untagged};
use crate::imap::stream::StreamError;
use crate::limits::IDLE_RENEW;
use crate::lmtp::{MARKER_HEADER, parse_marker};
use crate::metrics::ConnectionStatus;
use crate::metrics::{DeliveryEvent, ErrorKind, Event, Outcome, SkipReason};
use crate::ops::{Op, Server};
use crate::profile::model::ClientType;
use crate::profile::schedule::{Action, splitmix64};
use crate::states::State;
use crate::tracking::View;

mod actions;

/// First wait before a client reconnects after losing its session; it doubles up to
/// [`RECONNECT_MAX`] while reconnecting fails.
const RECONNECT_FIRST: Duration = Duration::from_secs(1);
const RECONNECT_MAX: Duration = Duration::from_secs(60);
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
    /// When the IDLE started: it is renewed [`IDLE_RENEW`] later, however busy the
    /// server keeps it.
    idle_since: tokio::time::Instant,
    exists: u32,
    /// EXISTS when new mail was last fetched (EXPUNGEs lower both): more means new mail.
    fetched_exists: u32,
    /// The next UID to fetch new mail from (one past the highest UID fetched).
    uidnext: u32,
    /// UIDNEXT announced by SELECT.
    server_uidnext: u32,
    uidvalidity: u32,
    /// The selected mailbox's model, checking every reply (None: `no_tracking`).
    view: Option<View>,
    /// For the console's stalled-connection count.
    status: Arc<ConnectionStatus>,
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
    /// Connections of the last login (a reconnect opens as many).
    connections: u32,
    /// After a lost session: when to log in again, and the wait after that.
    reconnect: Option<(tokio::time::Instant, Duration)>,
    /// The server refused IDLE: this session polls only when told to.
    idle_refused: bool,
    /// Actions skipped so far (an action that added none was done).
    skips: u64,
}

/// What an IMAP client keeps between its sessions (see [`super::sessions`]).
#[derive(Debug)]
pub(super) struct Memory {
    cache: Option<(u32, u32)>,
    rng: Xoshiro256PlusPlus,
    idle_refused: bool,
}

/// Runs the client's session(s) until the job channel closes; returns what the next
/// session of this client starts from.
pub(super) async fn run(
    ctx: Arc<Ctx>,
    user: Arc<UserShared>,
    client: u16,
    mut jobs: JobReceiver,
    memory: Option<Memory>,
) -> Memory {
    let memory = memory.unwrap_or_else(|| Memory {
        cache: None,
        rng: Xoshiro256PlusPlus::seed_from_u64(splitmix64(
            ctx.seed ^ (u64::from(user.index) << 16) ^ u64::from(client) ^ 0xD4AF_7000,
        )),
        idle_refused: false,
    });
    let mut session = Session {
        ctx,
        user,
        client,
        conns: Vec::new(),
        mailboxes: HashSet::new(),
        cache: memory.cache,
        rng: memory.rng,
        tally: SessionTally::default(),
        connections: 1,
        reconnect: None,
        idle_refused: memory.idle_refused,
        skips: 0,
    };
    // Each step is boxed: the task itself stays small while idle (a task per user and
    // client, possibly 100 000 of them); a step's state lives only while it runs.
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
                () = tokio::time::sleep_until(conn.idle_since + IDLE_RENEW) => {
                    Box::pin(session.leave_idle(Instant::now())).await;
                    continue;
                }
            }
        } else if let Some((at, _)) = session.reconnect {
            tokio::select! {
                job = jobs.recv() => job,
                () = tokio::time::sleep_until(at) => {
                    Box::pin(session.login(session.connections, Instant::now())).await;
                    continue;
                }
            }
        } else {
            jobs.recv().await
        };
        let Some(job) = job else { break };
        if session.ctx.stopping_now() {
            session.ctx.skip_remaining(&mut jobs);
            session.conns.clear();
            return session.memory();
        }
        let skips = session.skips;
        Box::pin(session.perform(job)).await;
        session.ctx.done_unless_skipped(skips, session.skips);
    }
    Box::pin(session.logout(Instant::now())).await;
    session.memory()
}

impl Session {
    fn memory(self) -> Memory {
        Memory {
            cache: self.cache,
            rng: self.rng,
            idle_refused: self.idle_refused,
        }
    }

    fn skip(&mut self, reason: SkipReason) {
        self.skips += 1;
        self.ctx.skip(reason);
    }

    fn kind(&self) -> &ClientType {
        &self.ctx.profile.clients[self.client as usize]
    }

    fn idling(&self) -> bool {
        self.conns.first().is_some_and(|c| c.idle_tag.is_some())
    }

    async fn perform(&mut self, job: Job) {
        let started = Instant::now();
        let errors = self.tally.errors;
        let action = job.action.action;
        self.perform_action(job).await;
        let ok = self.tally.errors == errors;
        self.ctx.action_row(&action, ok, job.intended, started);
    }

    async fn perform_action(&mut self, job: Job) {
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
            // Deliveries go to delivery tasks, never to a session.
            Action::Deliver { .. } => self.skip(SkipReason::SessionDown),
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
        // Waiting for this reply: shown as stalled when the server goes quiet.
        let number = tag
            .rsplit('.')
            .next()
            .and_then(|n| n.parse().ok())
            .unwrap_or(0);
        conn.status.set_waiting(Some((number, &line)));
        let result = conn.client.run(&tag, parts).await;
        conn.status.set_waiting(None);
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
                if self.dropped_over_limit(c) {
                    return None;
                }
                if !done.is_ok() && !tolerated(state, &done) {
                    let id = self.conns[c].client.id();
                    let message = format!("{line} failed");
                    let reply = Some(done.line.clone());
                    self.report_error(ErrorKind::CommandFailed, Some(id), message, reply);
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
        self.ctx
            .command_done(self.client, Op::Imap(state), outcome, intended, started);
        self.tally.commands += 1;
    }

    /// Reports an error on this session (and counts it for the session CSV).
    fn report_error(
        &mut self,
        kind: ErrorKind,
        connection: Option<u64>,
        message: String,
        line: Option<String>,
    ) {
        self.ctx
            .error(kind, &self.user.name, connection, message, line);
        self.tally.errors += 1;
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
        self.report_error(client_error_kind(e), id, format!("{doing}: {e}"), None);
        self.close_all();
    }

    /// Drops every connection and ends the session after a failure; the client logs in
    /// again after a while, as real clients do.
    fn close_all(&mut self) {
        let wait = self
            .reconnect
            .map_or(RECONNECT_FIRST, |(_, next)| next)
            .min(RECONNECT_MAX);
        self.reconnect = Some((tokio::time::Instant::now() + wait, wait * 2));
        let gauges = &self.ctx.metrics.gauges;
        for mut conn in self.conns.drain(..) {
            self.ctx.connection_closed();
            let stream = conn.client.stream();
            self.tally.bytes_in += stream.bytes_in();
            self.tally.bytes_out += stream.bytes_out();
        }
        if self.tally.start.is_some() {
            self.user.session_closed(gauges);
        }
        self.tally.end(&self.ctx, &self.user, self.client, "imap");
    }

    /// Connection `c`'s model was pushed past a bound (reported with the findings):
    /// the session ends as after a failure. True if it did.
    fn dropped_over_limit(&mut self, c: usize) -> bool {
        let over = self
            .conns
            .get(c)
            .and_then(|conn| conn.view.as_ref())
            .is_some_and(View::limit_exceeded);
        if over {
            self.close_all();
        }
        over
    }

    /// Learns EXISTS, EXPUNGE, UIDNEXT, UIDVALIDITY and delivered messages.
    fn absorb(&mut self, c: usize, untagged: &[RawResponse]) {
        let mut seen = Vec::new();
        let mut findings = Vec::new();
        let conn = &mut self.conns[c];
        for raw in untagged {
            let Ok(Response::Untagged(u)) = raw.parse() else {
                continue;
            };
            if let Some(view) = conn.view.as_mut() {
                check(view, &u);
                if !view.findings.is_empty() {
                    let line = crate::text::quote(raw.first_line());
                    findings.extend(view.findings.drain(..).map(|f| (f, line.clone())));
                }
            }
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
                        if let (Some(view), Some((id, _))) = (conn.view.as_mut(), marker) {
                            view.delivery_seen(uid, id);
                        }
                        if let Some(msg) = self.ctx.marker_msg(&self.user, marker) {
                            seen.push((msg, uid));
                        }
                    }
                }
                _ => {}
            }
        }
        let id = conn.client.id();
        for (finding, line) in findings {
            self.ctx.metrics.report(crate::metrics::Report {
                severity: finding.severity,
                user: Some(self.user.name.clone()),
                connection: Some(id),
                message: finding.message,
                line: Some(line),
                kind: finding.kind,
            });
            if finding.severity == crate::metrics::Severity::Error {
                self.tally.errors += 1;
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
        if !self.kind().idle || self.idle_refused || self.conns.is_empty() || self.idling() {
            return;
        }
        let started = Instant::now();
        let result = self.conns[0].client.idle().await;
        match result {
            Ok((tag, untagged)) => {
                self.count(State::Idle, Outcome::Ok, started, started);
                self.absorb(0, &untagged);
                if self.dropped_over_limit(0) {
                    return;
                }
                self.conns[0].idle_tag = Some(tag);
                self.conns[0].idle_since = tokio::time::Instant::now();
                // Mail may have arrived between the last command and IDLE.
                if self.has_new_mail() && self.leave_idle(started).await {
                    self.fetch_new(0, started).await;
                }
            }
            Err(ClientError::Failed { line, .. }) => {
                self.count(State::Idle, Outcome::No, started, started);
                let id = self.conns[0].client.id();
                let refused = "IDLE refused".into();
                self.report_error(ErrorKind::CommandFailed, Some(id), refused, Some(line));
                // Don't retry IDLE in a loop: new mail is seen at the next action.
                self.idle_refused = true;
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
                !self.dropped_over_limit(c)
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
                let message = format!("malformed response in IDLE: {e}");
                self.report_error(ErrorKind::Protocol, Some(id), message, None);
                return;
            }
            Err(e) => {
                self.lost(0, "IDLE", &ClientError::Stream(e));
                return;
            }
        };
        let tagged = matches!(response.parse(), Ok(Response::Tagged { .. }));
        self.absorb(0, std::slice::from_ref(&response));
        if self.dropped_over_limit(0) {
            return;
        }
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
        self.connections = connections;
        let Some(endpoint) = self.ctx.endpoints.imap.clone() else {
            self.skip(SkipReason::NoServer);
            return;
        };
        self.tally.begin();
        self.tally.slot = self.ctx.session_slot().await;
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
                    self.ctx
                        .metrics
                        .connect_failed(Server::Imap, e.failed_phase(), started);
                    let message = format!("connect failed: {e}");
                    self.report_error(ErrorKind::ConnectFailed, Some(id), message, None);
                    self.close_all();
                    return;
                }
            };
            self.ctx.connection_opened();
            self.ctx.metrics.phases(Server::Imap, client.phase_times());
            let status = self.ctx.metrics.watch_connection(id);
            client.stream().observe(status.clone());
            let request = LoginRequest {
                user: &self.user.name,
                password: &self.user.password,
                mech: self.ctx.mech,
                master: None,
                scram_cache: &self.ctx.scram_cache,
            };
            let state = if self.ctx.mech == Mech::Command {
                State::Login
            } else {
                State::Authenticate
            };
            let started = Instant::now();
            let result = client.log_in(&request).await;
            self.conns.push(Conn {
                client,
                mailbox: INBOX,
                idle_tag: None,
                idle_since: tokio::time::Instant::now(),
                exists: 0,
                fetched_exists: 0,
                uidnext: 1,
                server_uidnext: 1,
                uidvalidity: 0,
                view: None,
                status,
            });
            let c = self.conns.len() - 1;
            match result {
                Ok(done) if done.is_ok() => self.count(state, Outcome::Ok, at, started),
                Ok(done) => {
                    self.count(state, Outcome::No, at, started);
                    let failed = "login failed".into();
                    self.report_error(ErrorKind::LoginFailed, Some(id), failed, Some(done.line));
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
        if !self.conns.is_empty() {
            // Logged in: the back-off starts over (a failure keeps it growing).
            self.reconnect = None;
        }
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
            let tracking = self.ctx.tracking.as_ref();
            let conn = &mut self.conns[c];
            // A new selection: a new model of `mailbox` (the old one's findings are in).
            conn.view = tracking.map(|r| r.view(&self.user.name, mailbox, conn.client.id()));
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
        if let Some(view) = self.conns.get_mut(c).and_then(|conn| conn.view.as_mut()) {
            view.set_selected(true);
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
            self.skip(SkipReason::SessionDown);
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
        // The schedule ends the session: no reconnect either.
        self.reconnect = None;
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
                let message = format!("LOGOUT: {e}");
                self.report_error(client_error_kind(&e), Some(conn.client.id()), message, None);
            }
            let stream = conn.client.stream();
            self.tally.bytes_in += stream.bytes_in();
            self.tally.bytes_out += stream.bytes_out();
            self.ctx.connection_closed();
        }
        self.user.session_closed(&gauges);
        self.tally.end(&self.ctx, &self.user, self.client, "imap");
    }
}

/// Feeds one untagged response to the mailbox model.
fn check(view: &mut View, untagged: &Untagged<'_>) {
    match untagged {
        Untagged::Exists(n) => view.exists(*n),
        Untagged::Expunge(n) => view.expunge(*n),
        Untagged::Vanished {
            earlier: false,
            uids,
        } => view.vanished(uids),
        Untagged::Fetch { seq, items } => view.fetch(*seq, items),
        Untagged::Flags(flags) => view.flags(flags),
        Untagged::Status { text, .. } => match &text.code {
            Some(Code::PermanentFlags(flags)) => view.permanent_flags(flags),
            Some(Code::UidValidity(v)) => view.uidvalidity(*v),
            _ => {}
        },
        _ => {}
    }
}

/// The error kind of a failed IMAP exchange.
fn client_error_kind(e: &ClientError) -> ErrorKind {
    match e {
        ClientError::Stream(
            StreamError::Timeout(_)
            | StreamError::Deadline(_)
            | StreamError::Incomplete { .. }
            | StreamError::WriteTimeout(_),
        ) => ErrorKind::NoReply,
        ClientError::NoGreeting { .. } => ErrorKind::ConnectFailed,
        ClientError::TooMuchData { .. } => ErrorKind::LimitExceeded,
        ClientError::Stream(StreamError::Net(_)) | ClientError::NoStartTls => {
            ErrorKind::ConnectFailed
        }
        ClientError::Stream(
            StreamError::Closed
            | StreamError::Truncated(_)
            | StreamError::Read(_)
            | StreamError::Write(_),
        ) => ErrorKind::Disconnected,
        ClientError::Stream(_)
        | ClientError::BadGreeting(_)
        | ClientError::UnexpectedTag(_)
        | ClientError::Parse(_)
        | ClientError::UnexpectedContinuation(_) => ErrorKind::Protocol,
        ClientError::Bye(_) => ErrorKind::UnexpectedBye,
        ClientError::StartTlsRefused(_) | ClientError::Failed { .. } => ErrorKind::CommandFailed,
        ClientError::Sasl { .. } => ErrorKind::LoginFailed,
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

/// The mailbox name of a `* LIST` response.
fn listed_name(raw: &RawResponse) -> Option<String> {
    match raw.parse() {
        Ok(Response::Untagged(Untagged::List { mailbox, .. })) => mailbox
            .as_str_bytes()
            .map(|name| String::from_utf8_lossy(name).into_owned()),
        _ => None,
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
    fn listed_names_quoted_or_not() {
        let name = |line: &str| listed_name(&RawResponse::from_bytes(line.to_owned()));
        assert_eq!(
            name("* LIST (\\HasNoChildren) \".\" Spam\r\n"),
            Some("Spam".into())
        );
        assert_eq!(
            name("* LIST () \"/\" \"My Box\"\r\n"),
            Some("My Box".into())
        );
        assert_eq!(name("* 3 EXISTS\r\n"), None);
    }

    #[test]
    fn command_lines_lose_tag_and_literal() {
        let parts = vec![CommandPart::new(
            b"7.3 APPEND \"Drafts\" (\\Draft) {12+}\r\nhello".to_vec(),
        )];
        assert_eq!(command_line(&parts), "APPEND \"Drafts\" (\\Draft)");
    }
}
