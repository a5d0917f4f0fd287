//! One logged-in connection of the stress engine: plans states, pipelines up to ten
//! commands under the RFC 3501 §5.5 rules, and handles every reply.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use rand::RngExt;
use rand_xoshiro::Xoshiro256PlusPlus;
use tokio::sync::watch;

use super::commands::{self, CommandContext};
use super::plan::Planner;
use super::{SessionEnd, StressContext};
use crate::control::RunState;
use crate::imap::client::lossy;
use crate::imap::command::{CommandPart, quoted};
use crate::imap::response::{Code, Response, Status, Untagged};
use crate::imap::{Capabilities, ImapStream, RawResponse, StreamError};
use crate::metrics::{ErrorKind, Event, Outcome, Report, Severity};
use crate::net::Deadline;
use crate::ops::Op;
use crate::states::{Level, State};
use crate::tracking::View;
use crate::tracking::checkpoint::Gate;
use crate::users::User;

/// Commands in flight per connection.
pub const MAX_PIPELINE: usize = 10;

/// Planned states consumed in a row without sending anything (an APPEND with the
/// mailbox at `msgs=`, SELECT when already selected, …) after which no state is taken
/// to apply: the connection waits instead of spinning through the walk.
const MAX_SILENT_STATES: u32 = 2 * State::COUNT as u32;
/// The first wait when no state applies; it doubles up to [`STARVED_WAIT_MAX`] while
/// nothing applies, and starts over once a command is sent.
const STARVED_WAIT_MIN: Duration = Duration::from_millis(10);
const STARVED_WAIT_MAX: Duration = Duration::from_secs(1);

/// NO texts some servers send for messages expunged by another session; not errors.
const EXPUNGED_NO_TEXTS: [&str; 5] = [
    "no longer exist",
    "No matching messages",
    "have been expunged",
    "have been deleted",
    "Document has been deleted",
];
const STORE_NO_TEXTS: [&str; 3] = [
    "Cannot store on expunged messages",
    "STORE completed",
    "STORE failed",
];

/// A command sent and not yet answered.
#[derive(Debug)]
struct Pending {
    number: u32,
    state: State,
    /// Internal commands (CREATE after TRYCREATE, ENABLE) are not counted. ENABLE is
    /// filed under BANNER, which has no column.
    counted: bool,
    started: Instant,
    line: String,
}

/// Why the connection loop stopped.
pub struct Ended {
    pub end: SessionEnd,
    /// An error to report (kind, message, server line).
    pub error: Option<(ErrorKind, String, Option<String>)>,
}

impl Ended {
    fn error(kind: ErrorKind, message: impl Into<String>, line: Option<String>) -> Self {
        Ended {
            end: SessionEnd::Dropped,
            error: Some((kind, message.into(), line)),
        }
    }
}

pub struct Connection<'a> {
    ctx: &'a StressContext,
    rng: &'a mut Xoshiro256PlusPlus,
    run_state: &'a watch::Receiver<RunState>,
    user: &'a User,
    id: u64,
    stream: ImapStream,
    capabilities: Capabilities,
    next_tag: u32,
    pending: VecDeque<Pending>,
    /// Parts of the command being sent that wait for a `+` continuation.
    waiting_parts: VecDeque<CommandPart>,
    level: Level,
    planner: Planner,
    /// A state chosen but not yet sendable (blocked by the pipelining rules).
    planned: Option<State>,
    msgs: u32,
    /// The hierarchy separator, once `LIST "" ""` told it (asked only when a state
    /// needs it).
    separator: Option<char>,
    keywords: bool,
    idle_done_sent: bool,
    logout_sent: bool,
    bye_seen: bool,
    nothing_runnable_reported: bool,
    /// No planned state applied ([`MAX_SILENT_STATES`] in a row): wait before planning
    /// again.
    starved: bool,
    /// The next wait when starved.
    starved_wait: Duration,
    /// Last I/O and the oldest outstanding command, for the console's stall lines.
    status: std::sync::Arc<crate::metrics::ConnectionStatus>,
    /// The mailbox model; `None` with `no_tracking`.
    view: Option<View>,
    /// The SELECT whose view reset was done (its number).
    select_reset: Option<u32>,
    /// Sending is held for a checkpoint of this mailbox.
    holding: bool,
    /// The tag number of our checkpoint CHECK.
    checkpoint_tag: Option<u32>,
    /// The server said `* ENABLED QRESYNC`.
    qresync_enabled: bool,
    /// A command could not be built (the mbox cannot be read): end the connection.
    failed: Option<Ended>,
}

impl<'a> Connection<'a> {
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        ctx: &'a StressContext,
        rng: &'a mut Xoshiro256PlusPlus,
        run_state: &'a watch::Receiver<RunState>,
        user: &'a User,
        id: u64,
        slot: u32,
        stream: ImapStream,
        capabilities: Capabilities,
        next_tag: u32,
    ) -> Self {
        Connection {
            planner: Planner::after_login(ctx.settings.random_states),
            ctx,
            rng,
            run_state,
            user,
            id,
            stream,
            capabilities,
            next_tag,
            pending: VecDeque::new(),
            waiting_parts: VecDeque::new(),
            level: Level::Auth,
            planned: None,
            msgs: 0,
            separator: None,
            keywords: false,
            idle_done_sent: false,
            logout_sent: false,
            bye_seen: false,
            nothing_runnable_reported: false,
            starved: false,
            starved_wait: STARVED_WAIT_MIN,
            status: ctx.metrics.watch_connection(id),
            view: (!ctx.settings.no_tracking).then(|| {
                let mut view = ctx.tracking.view(&user.name, &ctx.settings.mailbox, id);
                view.imap4rev2 = ctx.settings.imap4rev2;
                view.qresync = ctx.settings.qresync;
                if ctx.settings.own_flags {
                    view.owned = crate::tracking::flags::owned_by(slot, ctx.settings.clients);
                }
                if ctx.settings.own_msgs {
                    view.own_msgs = Some((slot, ctx.settings.clients.max(1)));
                }
                view.checkpoint = ctx.settings.checkpoint;
                view
            }),
            select_reset: None,
            holding: false,
            checkpoint_tag: None,
            qresync_enabled: false,
            failed: None,
        }
    }

    /// Runs until LOGOUT completes or the connection fails.
    pub async fn run(mut self) -> Ended {
        let ended = self.run_inner().await;
        self.stream.shutdown().await;
        ended
    }

    async fn run_inner(&mut self) -> Ended {
        if self.ctx.settings.imap4rev2 {
            self.send_internal(State::Banner, "ENABLE IMAP4REV2", false);
        }
        if self.ctx.settings.qresync {
            self.send_internal(State::Banner, "ENABLE QRESYNC", false);
        }
        let read_timeout = self
            .ctx
            .settings
            .stalled_disconnect_timeout
            .unwrap_or(self.ctx.common.timeout);
        // The oldest command must complete within this, however the server spaces
        // its bytes (a longer stall allowance stretches it).
        let command_limit = self.ctx.common.timeout.max(read_timeout);
        loop {
            // A flooding server keeps this loop busy without a pending read: see the
            // stop here too, not only when a read waits.
            if *self.run_state.borrow() == RunState::StopNow {
                return Ended {
                    end: SessionEnd::Dropped,
                    error: None,
                };
            }
            self.fill();
            if let Some(ended) = self.failed.take() {
                return ended;
            }
            if let Err(e) = self.stream.flush_queued().await {
                return Ended::error(ErrorKind::Disconnected, e.to_string(), None);
            }
            self.status.touch();
            self.status
                .set_waiting(self.pending.front().map(|p| (p.number, p.line.as_str())));
            if self.pending.is_empty() {
                if self.logout_sent {
                    return Ended {
                        end: SessionEnd::LoggedOut,
                        error: None,
                    };
                }
                if self.holding
                    && let Some(view) = self.view.as_ref()
                {
                    // Wait for the other connections of this mailbox (checkpoint).
                    let notify = view.notified();
                    let mut stop = self.run_state.clone();
                    tokio::select! {
                        _ = notify.notified() => {}
                        _ = tokio::time::sleep(Duration::from_millis(200)) => {}
                        _ = stop.changed() => {}
                    }
                    continue;
                }
                if self.starved {
                    // No state applies now (e.g. APPEND with the mailbox full): wait.
                    self.starved = false;
                    let mut stop = self.run_state.clone();
                    tokio::select! {
                        _ = tokio::time::sleep(self.starved_wait) => {}
                        _ = stop.changed() => {}
                    }
                    self.starved_wait = (self.starved_wait * 2).min(STARVED_WAIT_MAX);
                    continue;
                }
                // Nothing could be planned at all: leave cleanly.
                self.planned = Some(State::Logout);
                continue;
            }
            if self.chance(State::Delay) {
                self.count(State::Delay);
                let pause = self.rng.random_range(0..1000u64);
                tokio::time::sleep(Duration::from_millis(pause)).await;
            }
            let deadline = self
                .pending
                .front()
                .map(|p| Deadline::from_start(p.started, command_limit));
            let response = match self
                .stream
                .read_response_idle_by(Some(read_timeout), deadline)
                .await
            {
                Ok(r) => {
                    self.status.touch();
                    r
                }
                Err(StreamError::Frame(e)) => {
                    self.error(
                        ErrorKind::Protocol,
                        format!("error parsing input: {e}"),
                        None,
                    );
                    continue;
                }
                Err(StreamError::Closed) if self.logout_sent && self.bye_seen => {
                    return Ended {
                        end: SessionEnd::LoggedOut,
                        error: None,
                    };
                }
                Err(StreamError::Timeout(t)) => {
                    let waiting = self.pending.front().map(|p| p.line.clone());
                    return Ended::error(
                        ErrorKind::NoReply,
                        format!("no reply from server within {t:?}, waiting for command"),
                        waiting,
                    );
                }
                Err(e @ StreamError::Incomplete { .. }) => {
                    let waiting = self.pending.front().map(|p| p.line.clone());
                    return Ended::error(
                        ErrorKind::NoReply,
                        format!("{e}, waiting for command"),
                        waiting,
                    );
                }
                Err(StreamError::Deadline(t)) => {
                    let waiting = self.pending.front().map(|p| p.line.clone());
                    return Ended::error(
                        ErrorKind::NoReply,
                        format!(
                            "command not completed within {t:?} (timeout= bounds each command's total time), waiting for command"
                        ),
                        waiting,
                    );
                }
                Err(e) => {
                    let what = match &e {
                        StreamError::Closed => {
                            "Client disconnected: server closed the connection".to_owned()
                        }
                        other => format!("Client disconnected: {other}"),
                    };
                    return Ended::error(ErrorKind::Disconnected, what, None);
                }
            };
            let handled = self.handle(&response);
            self.report_findings(&response);
            if let Err(ended) = handled {
                return ended;
            }
            if self.view.as_ref().is_some_and(View::limit_exceeded) {
                // Reported with the findings; the model can't follow this server.
                return Ended {
                    end: SessionEnd::Dropped,
                    error: None,
                };
            }
            if !self.stream.has_buffered_input()
                && self.chance(State::Disconnect)
                && !self.logout_sent
            {
                self.count(State::Disconnect);
                return Ended {
                    end: SessionEnd::Dropped,
                    error: None,
                };
            }
        }
    }

    fn chance(&mut self, state: State) -> bool {
        let p = self.ctx.settings.probabilities.get(state);
        p > 0 && self.rng.random_range(0..100u32) < u32::from(p)
    }

    fn count(&self, state: State) {
        self.ctx.metrics.send(Event::Count {
            op: Op::Imap(state),
        });
    }

    fn report(
        &self,
        severity: Severity,
        kind: Option<ErrorKind>,
        message: String,
        line: Option<String>,
    ) {
        self.ctx.metrics.report(Report {
            severity,
            user: Some(self.user.name.clone()),
            connection: Some(self.id),
            message,
            line,
            kind,
        });
    }

    fn error(&self, kind: ErrorKind, message: String, line: Option<String>) {
        self.report(Severity::Error, Some(kind), message, line);
    }

    /// Turns the view's findings into reports carrying the server line.
    fn report_findings(&mut self, response: &RawResponse) {
        let Some(view) = self.view.as_mut() else {
            return;
        };
        for _ in 0..std::mem::take(&mut view.checkpoints_passed) {
            self.ctx.metrics.send(Event::Count {
                op: Op::Imap(State::Checkpoint),
            });
        }
        let Some(view) = self.view.as_mut() else {
            return;
        };
        if !view.notes.is_empty() {
            let notes = std::mem::take(&mut view.notes);
            if let Some(log) = self.stream.rawlog_mut() {
                for note in &notes {
                    log.note(note);
                }
            }
        }
        if view.findings.is_empty() {
            return;
        }
        let mut findings = std::mem::take(&mut view.findings);
        let line = lossy(response.first_line());
        for f in findings.drain(..) {
            self.report(f.severity, f.kind, f.message, Some(line.clone()));
        }
        if let Some(view) = self.view.as_mut() {
            view.findings = findings;
        }
    }

    /// A SELECT at the front of the queue starts a new view: every earlier reply is in.
    fn sync_select(&mut self) {
        if let Some(front) = self.pending.front()
            && front.state == State::Select
            && self.select_reset != Some(front.number)
        {
            self.select_reset = Some(front.number);
            self.maybe_save_offline_cache();
            if let Some(view) = self.view.as_mut() {
                view.reset();
            }
        }
    }

    /// The selection ends cleanly: with `qresync`, one time in three (drawn from the
    /// slot's random stream, so `seed=` repeats it) the view becomes the storage's
    /// offline cache for the next QRESYNC SELECT.
    fn maybe_save_offline_cache(&mut self) {
        if !self.ctx.settings.qresync {
            return;
        }
        let Some(view) = self.view.as_mut() else {
            return;
        };
        if view.is_selected() && self.rng.random_range(0..3u32) == 0 {
            view.save_offline_cache();
        }
    }

    /// The SELECT being answered is at the front of the queue.
    fn selecting(&self) -> bool {
        self.pending
            .front()
            .is_some_and(|p| p.state == State::Select && self.select_reset == Some(p.number))
    }

    fn take_tag(&mut self) -> (u32, String) {
        let n = self.next_tag;
        self.next_tag += 1;
        (n, format!("{}.{n}", self.id))
    }

    /// Queues an internal command (LIST "" "", ENABLE, CREATE).
    fn send_internal(&mut self, state: State, text: &str, counted: bool) {
        let (number, tag) = self.take_tag();
        let line = format!("{tag} {text}");
        self.stream.queue(format!("{line}\r\n").as_bytes(), None);
        self.pending.push_back(Pending {
            number,
            state,
            counted,
            started: Instant::now(),
            line,
        });
    }

    /// The level once every outstanding state change has completed.
    fn effective_level(&self) -> Level {
        self.pending
            .iter()
            .rev()
            .find_map(|p| target_level(p.state))
            .unwrap_or(self.level)
    }

    /// Sends as many planned commands as the pipelining rules allow.
    fn fill(&mut self) {
        self.holding = false;
        let mut silent = 0;
        if *self.run_state.borrow() == RunState::Running
            && !self.logout_sent
            && let Some(view) = self.view.as_mut()
        {
            match view.checkpoint_gate(self.pending.is_empty()) {
                Gate::Open => {}
                Gate::Hold => {
                    self.holding = true;
                    return;
                }
                Gate::SendCheck => {
                    self.checkpoint_tag = Some(self.next_tag);
                    self.send_internal(State::Check, "CHECK", false);
                    self.holding = true;
                    return;
                }
            }
        }
        loop {
            if self.pending.len() >= MAX_PIPELINE || !self.waiting_parts.is_empty() {
                return;
            }
            // Nothing follows IDLE or COMPRESS until they complete.
            if self
                .pending
                .iter()
                .any(|p| matches!(p.state, State::Idle | State::Compress))
            {
                return;
            }
            if self.ctx.settings.no_pipelining && !self.pending.is_empty() {
                return;
            }
            if self.logout_sent {
                return;
            }
            if *self.run_state.borrow() != RunState::Running {
                self.planned = Some(State::Logout);
            }
            let state = match self.planned {
                Some(state) => state,
                None => self.plan(),
            };
            self.planned = Some(state);
            if self.separator.is_none() && needs_separator(state) {
                // Learn the separator first; the state waits for the reply (can_send).
                if !self.pending.iter().any(|p| p.state == State::ListRoot) {
                    self.send_internal(State::ListRoot, "LIST \"\" \"\"", true);
                }
                if self.pending.len() >= MAX_PIPELINE {
                    return;
                }
            }
            if !self.can_send(state) {
                return;
            }
            self.planned = None;
            if self.send(state) {
                self.starved_wait = STARVED_WAIT_MIN;
            } else if self.failed.is_some() {
                return;
            } else {
                silent += 1;
                if silent >= MAX_SILENT_STATES {
                    self.starved = true;
                    return;
                }
            }
        }
    }

    fn plan(&mut self) -> State {
        let level = self.effective_level();
        let inline_append = self.capabilities.has("MULTIAPPEND");
        let probabilities = &self.ctx.settings.probabilities;
        match self
            .planner
            .next(self.rng, probabilities, level, inline_append)
        {
            Some(state) => state,
            None => {
                if !self.nothing_runnable_reported {
                    self.nothing_runnable_reported = true;
                    self.report(
                        Severity::Warning,
                        None,
                        format!("no state can run at level {level:?} with these probabilities; logging out"),
                        None,
                    );
                }
                State::Logout
            }
        }
    }

    /// RFC 3501 §5.5: what may be pipelined behind what is outstanding.
    fn can_send(&self, state: State) -> bool {
        if self.pending.is_empty() {
            return true;
        }
        let info = state.info();
        if matches!(state, State::Idle | State::Compress) {
            return false;
        }
        let changer = self
            .pending
            .iter()
            .find(|p| target_level(p.state).is_some());
        if target_level(state).is_some() {
            if changer.is_some() {
                return false;
            }
            // LOGOUT waits for everything; SELECT for selected-level commands.
            if state == State::Logout
                || self
                    .pending
                    .iter()
                    .any(|p| p.state.info().level == Level::Selected)
            {
                return false;
            }
        }
        if let Some(changer) = changer {
            let target = target_level(changer.state).unwrap_or(self.level);
            if info.level >= target || info.level > self.level {
                return false;
            }
        }
        if info.uses_msgset
            && self.pending.iter().any(|p| {
                let i = p.state.info();
                i.may_expunge || i.changes_level || p.state == State::ListRoot
            })
        {
            return false;
        }
        // Test mailbox names need the separator LIST "" "" is about to tell.
        if needs_separator(state) && self.pending.iter().any(|p| p.state == State::ListRoot) {
            return false;
        }
        if state == State::Search && self.pending.iter().any(|p| p.state == State::Search) {
            return false;
        }
        // own_msgs: STORE picks from messages with known owners; let FETCHes tell them.
        if matches!(state, State::Store | State::Delete)
            && self.view.as_ref().is_some_and(|v| v.own_msgs.is_some())
            && self.pending.iter().any(|p| {
                matches!(
                    p.state,
                    State::Select | State::UidFetch | State::Fetch | State::Fetch2
                )
            })
        {
            return false;
        }
        true
    }

    /// Sends `state`'s command; false if the state was consumed without sending
    /// anything.
    fn send(&mut self, state: State) -> bool {
        if state.info().level == Level::Selected && self.msgs == 0 {
            // Nothing to do in an empty mailbox: the state is consumed.
            return false;
        }
        if state == State::Select && self.level == Level::Selected {
            // Already selected: the walk goes on in this selection (as the C tool's
            // does), so a long-lived session hears other sessions' changes.
            return false;
        }
        // The tag is only used up when a command is really sent.
        let number = self.next_tag;
        let tag = format!("{}.{number}", self.id);
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs() as i64);
        if state == State::Logout {
            self.maybe_save_offline_cache();
        }
        let offline_cache = match &self.view {
            Some(view)
                if state == State::Select
                    && self.ctx.settings.qresync
                    && (self.qresync_enabled || self.capabilities.has("QRESYNC")) =>
            {
                view.offline_cache()
            }
            _ => None,
        };
        let own_seqs = match &self.view {
            Some(view)
                if view.own_msgs.is_some() && matches!(state, State::Store | State::Delete) =>
            {
                Some(view.owned_seqs())
            }
            _ => None,
        };
        let ctx = CommandContext {
            settings: &self.ctx.settings,
            capabilities: &self.capabilities,
            msgs: self.msgs,
            separator: self.separator.unwrap_or('/'),
            messages: self.ctx.messages.as_ref(),
            keywords: self.keywords,
            now,
            owned: self.view.as_ref().map_or(&[][..], |v| &v.owned[..]),
            own_seqs: own_seqs.as_deref(),
            own_seqs_wanted: self
                .view
                .as_ref()
                .is_some_and(|v| v.own_msgs.is_some() || v.checkpoint.is_some()),
            track_stores: self.view.is_some(),
            qresync: offline_cache
                .as_ref()
                .map(|c| (c.uidvalidity, c.highestmodseq)),
        };
        let built = match commands::build(state, &tag, &ctx, self.rng) {
            Ok(Some(built)) => built,
            Ok(None) => return false,
            Err(e) => {
                self.failed = Some(Ended::error(ErrorKind::Other, e.to_string(), None));
                return false;
            }
        };
        self.next_tag += 1;
        let mut parts = built.parts.into_iter();
        if let Some(first) = parts.next() {
            self.stream.queue_part(first);
        }
        self.waiting_parts.extend(parts);
        if state == State::Idle {
            self.idle_done_sent = false;
        }
        if state == State::Logout {
            self.logout_sent = true;
        }
        if let Some(view) = self.view.as_mut() {
            if let Some(keys) = built.search {
                view.search_sent(keys);
            }
            if let Some(intent) = built.store {
                view.store_sent(number, intent);
            }
            view.append_sent(number, built.appended);
            if state == State::Select {
                view.select_sent(offline_cache);
            }
        }
        self.pending.push_back(Pending {
            number,
            state,
            counted: true,
            started: Instant::now(),
            line: built.line,
        });
        self.sync_select();
        true
    }

    fn handle(&mut self, response: &RawResponse) -> Result<(), Ended> {
        let line = || lossy(response.first_line());
        let parsed = match response.parse() {
            Ok(p) => p,
            Err(e) => {
                // The parse error quotes the line already.
                self.error(
                    ErrorKind::Protocol,
                    format!("error parsing input: {e}"),
                    None,
                );
                return Ok(());
            }
        };
        match parsed {
            Response::Continuation(_) => {
                if let Some(part) = self.waiting_parts.pop_front() {
                    self.stream.queue_part(part);
                } else if self.pending.iter().any(|p| p.state == State::Idle)
                    && !self.idle_done_sent
                {
                    self.idle_done_sent = true;
                    self.stream.queue(b"DONE\r\n", None);
                } else {
                    return Err(Ended::error(
                        ErrorKind::Protocol,
                        "Unexpected continuation",
                        Some(line()),
                    ));
                }
            }
            Response::Tagged { tag, status, text } => {
                let number = parse_tag(tag, self.id).ok_or_else(|| unexpected_tagged(line()))?;
                let index = self
                    .pending
                    .iter()
                    .position(|p| p.number == number)
                    .ok_or_else(|| unexpected_tagged(line()))?;
                let pending = self
                    .pending
                    .remove(index)
                    .ok_or_else(|| unexpected_tagged(line()))?;
                self.sync_select();
                if pending.state == State::ListRoot {
                    // A NIL delimiter (or none at all) keeps the default.
                    self.separator.get_or_insert('/');
                }
                if self.checkpoint_tag == Some(pending.number) {
                    self.checkpoint_tag = None;
                    if let Some(view) = self.view.as_mut() {
                        view.checkpoint_checked();
                    }
                }
                if index == 0 && !self.waiting_parts.is_empty() && status != Status::Ok {
                    // The server refused a command before taking all its literals.
                    self.waiting_parts.clear();
                }
                if pending.counted {
                    self.ctx.metrics.send(Event::Command {
                        op: Op::Imap(pending.state),
                        outcome: match status {
                            Status::Ok => Outcome::Ok,
                            Status::No => Outcome::No,
                            _ => Outcome::Bad,
                        },
                        intended: pending.started,
                        started: pending.started,
                        finished: Instant::now(),
                    });
                }
                let code_trycreate = matches!(text.code, Some(Code::TryCreate));
                let appenduid = match &text.code {
                    Some(Code::AppendUid { uidvalidity, uids }) if status == Status::Ok => {
                        Some((*uidvalidity, uids))
                    }
                    _ => None,
                };
                let code_expungeissued = matches!(&text.code, Some(Code::Other { name, .. }) if name.eq_ignore_ascii_case(b"EXPUNGEISSUED"));
                let text = String::from_utf8_lossy(text.text).into_owned();
                if let Some(view) = self.view.as_mut() {
                    match pending.state {
                        State::Search => view.search_done(status == Status::Ok, code_expungeissued),
                        State::Store | State::Delete => view.store_done(
                            pending.number,
                            status == Status::Ok,
                            code_expungeissued,
                        ),
                        State::Select => {
                            view.select_done(status == Status::Ok);
                            self.msgs = view.count();
                        }
                        State::Append => view.append_done(pending.number, appenduid),
                        _ => {}
                    }
                }
                match status {
                    Status::Ok => self.on_ok(pending.state, &line())?,
                    Status::No => {
                        self.on_no(&pending, &text, code_trycreate, code_expungeissued, line())
                    }
                    _ => {
                        let message = format!("BAD reply for command: {}", pending.line);
                        let kind = crate::quirks::failed_command(
                            untagged_line(&pending.line),
                            b"BAD",
                            text.as_bytes(),
                        )
                        .unwrap_or(ErrorKind::BadReply);
                        // The session goes on where its state is still known, so one
                        // deviation does not hide the next.
                        if matches!(
                            pending.state,
                            State::Logout | State::Idle | State::Compress | State::Authenticate
                        ) {
                            return Err(Ended::error(kind, message, Some(line())));
                        }
                        self.error(kind, message, Some(line()));
                    }
                }
            }
            Response::Untagged(untagged) => self.on_untagged(untagged, line)?,
        }
        Ok(())
    }

    fn on_ok(&mut self, state: State, line: &str) -> Result<(), Ended> {
        match state {
            State::Compress => {
                self.stream.start_compress().map_err(|e| {
                    Ended::error(
                        ErrorKind::Protocol,
                        format!("COMPRESS: {e}"),
                        Some(line.to_owned()),
                    )
                })?;
            }
            State::Select => {
                self.level = Level::Selected;
            }
            State::Logout => {
                if !self.bye_seen {
                    return Err(Ended::error(
                        ErrorKind::Protocol,
                        "Server didn't send BYE",
                        Some(line.to_owned()),
                    ));
                }
                self.level = Level::NonAuth;
            }
            _ => {}
        }
        Ok(())
    }

    fn on_no(
        &mut self,
        pending: &Pending,
        text: &str,
        trycreate: bool,
        expungeissued: bool,
        line: String,
    ) {
        let state = pending.state;
        let tolerated = match state {
            State::MCreate | State::MDelete | State::MRename | State::MSubs => true,
            State::Copy | State::Move => {
                if trycreate && let Some(copybox) = self.ctx.settings.copybox.clone() {
                    self.send_internal(
                        State::MCreate,
                        &format!("CREATE {}", quoted(&copybox)),
                        false,
                    );
                }
                trycreate || expungeissued
            }
            State::Fetch | State::Fetch2 | State::UidFetch => {
                EXPUNGED_NO_TEXTS.iter().any(|t| text.contains(t))
            }
            State::Store | State::Delete => {
                STORE_NO_TEXTS.contains(&text) || EXPUNGED_NO_TEXTS.iter().any(|t| text.contains(t))
            }
            State::Banner => true,
            _ => false,
        };
        if !tolerated {
            let kind =
                crate::quirks::failed_command(untagged_line(&pending.line), b"NO", text.as_bytes())
                    .unwrap_or(ErrorKind::CommandFailed);
            self.error(kind, format!("{} failed", state.name()), Some(line));
        }
    }

    fn on_untagged(
        &mut self,
        untagged: Untagged<'_>,
        line: impl Fn() -> String,
    ) -> Result<(), Ended> {
        match untagged {
            Untagged::Status {
                status: Status::Bye,
                ..
            } => {
                if self.logout_sent && !self.bye_seen {
                    self.bye_seen = true;
                } else {
                    return Err(Ended::error(
                        ErrorKind::UnexpectedBye,
                        "Unexpected BYE",
                        Some(line()),
                    ));
                }
            }
            Untagged::Status {
                status: Status::Bad,
                ..
            } => {
                self.error(ErrorKind::BadReply, "BAD received".to_owned(), Some(line()));
            }
            Untagged::Status { text, .. } => match text.code {
                Some(Code::PermanentFlags(flags)) => {
                    self.keywords = flags.iter().any(|f| *f == b"\\*");
                    if let Some(view) = self.view.as_mut() {
                        view.permanent_flags(&flags);
                    }
                }
                Some(Code::UidValidity(v)) => {
                    if let Some(view) = self.view.as_mut() {
                        view.uidvalidity(v);
                        self.msgs = view.count();
                    }
                }
                Some(Code::HighestModSeq(n)) if self.selecting() => {
                    if let Some(view) = self.view.as_mut() {
                        view.select_highestmodseq(n);
                    }
                }
                Some(Code::UidNext(n)) if self.selecting() => {
                    if let Some(view) = self.view.as_mut() {
                        view.select_uidnext(n);
                    }
                }
                Some(Code::Capability(caps)) => {
                    self.capabilities = Capabilities::from_atoms(caps.iter().copied());
                }
                _ => {}
            },
            Untagged::Capability(caps) => {
                self.capabilities = Capabilities::from_atoms(caps.iter().copied());
            }
            Untagged::Exists(n) if self.view.is_some() => {
                if let Some(view) = self.view.as_mut() {
                    view.exists(n);
                    self.msgs = view.count();
                }
            }
            Untagged::Expunge(n) if self.view.is_some() => {
                if let Some(view) = self.view.as_mut() {
                    view.expunge(n);
                    self.msgs = view.count();
                }
            }
            Untagged::Vanished { earlier, uids } if self.view.is_some() => {
                if let Some(view) = self.view.as_mut() {
                    if earlier {
                        view.vanished_earlier(&uids);
                    } else {
                        view.vanished(&uids);
                    }
                    self.msgs = view.count();
                }
            }
            Untagged::Enabled(caps) if caps.iter().any(|c| c.eq_ignore_ascii_case(b"QRESYNC")) => {
                self.qresync_enabled = true;
            }
            Untagged::Fetch { seq, items } => {
                if let Some(view) = self.view.as_mut() {
                    view.fetch(seq, &items);
                    self.msgs = view.count();
                }
            }
            Untagged::Flags(flags) => {
                if let Some(view) = self.view.as_mut() {
                    view.flags(&flags);
                }
            }
            Untagged::Search { nums, .. } => {
                if let Some(view) = self.view.as_mut()
                    && line().starts_with("* SEARCH")
                {
                    view.search_reply(&nums);
                }
            }
            Untagged::Exists(n) => {
                if n < self.msgs {
                    self.error(
                        ErrorKind::ExistsShrank,
                        format!("Message count dropped {} -> {n}", self.msgs),
                        Some(line()),
                    );
                }
                self.msgs = n;
            }
            Untagged::Expunge(n) => {
                if n == 0 || n > self.msgs {
                    self.error(
                        ErrorKind::ExpungeBeyondExists,
                        format!("Tried to expunge sequence {n} with only {} msgs", self.msgs),
                        Some(line()),
                    );
                } else {
                    self.msgs -= 1;
                }
            }
            Untagged::Vanished {
                earlier: false,
                uids,
            } => {
                let gone = u32::try_from(uids.count()).unwrap_or(u32::MAX);
                self.msgs = self.msgs.saturating_sub(gone);
            }
            Untagged::List {
                delimiter: Some(d), ..
            } if self
                .pending
                .front()
                .is_some_and(|p| p.state == State::ListRoot) =>
            {
                self.separator = Some(char::from(d));
            }
            _ => {}
        }
        Ok(())
    }
}

/// The level a state change leads to, for the states that change it.
/// A command line without its tag.
fn untagged_line(line: &str) -> &[u8] {
    line.split_once(' ')
        .map_or(line, |(_, rest)| rest)
        .as_bytes()
}

fn unexpected_tagged(line: String) -> Ended {
    Ended::error(ErrorKind::Protocol, "Unexpected tagged reply", Some(line))
}

/// States whose commands name test mailboxes, built with the hierarchy separator.
fn needs_separator(state: State) -> bool {
    matches!(
        state,
        State::MCreate | State::MDelete | State::MRename | State::MSubs
    )
}

fn target_level(state: State) -> Option<Level> {
    match state {
        State::Select => Some(Level::Selected),
        State::Logout => Some(Level::NonAuth),
        State::Login | State::Authenticate => Some(Level::Auth),
        _ => None,
    }
}

/// `<id>.<n>` → n, if the id is this connection's.
fn parse_tag(tag: &[u8], id: u64) -> Option<u32> {
    let text = std::str::from_utf8(tag).ok()?;
    let (conn, n) = text.split_once('.')?;
    if conn.parse::<u64>().ok()? != id {
        return None;
    }
    n.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tags_belong_to_their_connection() {
        assert_eq!(parse_tag(b"7.12", 7), Some(12));
        assert_eq!(parse_tag(b"8.12", 7), None);
        assert_eq!(parse_tag(b"7x12", 7), None);
        assert_eq!(parse_tag(b"*", 7), None);
    }
}
