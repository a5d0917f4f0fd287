//! Classic stress mode: `clients` connection slots, each running sessions that walk the
//! state table with the configured probabilities. A slot connects and logs in, then a
//! [`connection::Connection`] pipelines the planned commands until LOGOUT; the slot then
//! reconnects (with a new user after LOGOUT, the same user after a failure).
//!
//! Layout: [`plan`] chooses states, [`commands`] builds each state's command,
//! [`connection`] sends, pipelines and checks replies. Everything is reported as
//! [`crate::metrics::Event`]s; nothing here prints.

pub mod commands;
pub mod connection;
pub mod plan;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use rand::SeedableRng;
use rand_xoshiro::Xoshiro256PlusPlus;
use tokio::sync::{mpsc, watch};
use tokio::task::JoinSet;

use connection::Connection;

use crate::config::{Common, Mech, StressSettings};
use crate::control::RunState;
use crate::imap::client::{ClientOptions, ImapClient, LoginRequest};
use crate::mail::MessageSource;
use crate::metrics::{ErrorKind, Event, Metrics, Outcome, Report, Severity};
use crate::net::Endpoint;
use crate::ops::{Op, Server};
use crate::sasl::ScramCache;
use crate::states::State;
use crate::users::{User, UserPicker};

/// Everything the sessions of a run share.
pub struct StressContext {
    /// The server, users and outputs.
    pub common: Arc<Common>,
    pub settings: Arc<StressSettings>,
    pub endpoint: Arc<Endpoint>,
    pub users: Arc<UserPicker>,
    pub messages: Arc<dyn MessageSource>,
    pub scram_cache: ScramCache,
    pub metrics: Metrics,
    pub client_options: ClientOptions,
    /// Set when `disconnect_quit` saw a connection drop: the run must end.
    pub quit: AtomicBool,
    /// Mailbox models shared by every connection (unused with `no_tracking`).
    pub tracking: Arc<crate::tracking::Registry>,
}

/// Connection slots opened at once; more open as logins succeed (like the C tool).
const INITIAL_SLOTS: u32 = 100;
/// Slots opened per successful login during ramp-up.
const SLOTS_PER_LOGIN: u32 = 3;

/// Runs until `run_state` says stop and every slot has ended.
pub async fn run(ctx: Arc<StressContext>, run_state: watch::Receiver<RunState>) {
    let clients = ctx.settings.clients.max(1);
    let (start_tx, mut start_rx) = mpsc::unbounded_channel::<u32>();
    let next_slot = Arc::new(AtomicU32::new(0));
    let ramp = Ramp {
        next_slot: next_slot.clone(),
        clients,
        start_tx,
    };
    ramp.open(INITIAL_SLOTS.min(clients));
    let mut tasks = JoinSet::new();
    let connection_ids = Arc::new(AtomicU64::new(1));
    // One receiver for the whole loop: `changed()` is cancel-safe, so a change that
    // arrives while another branch runs is still seen.
    let mut state_rx = run_state.clone();
    let mut stopping = false;
    loop {
        if !stopping && *state_rx.borrow_and_update() != RunState::Running {
            stopping = true;
        }
        if *state_rx.borrow() == RunState::StopNow {
            tasks.abort_all();
            while tasks.join_next().await.is_some() {}
            break;
        }
        if stopping && tasks.is_empty() {
            break;
        }
        tokio::select! {
            Some(slot) = start_rx.recv() => {
                if stopping {
                    continue;
                }
                ctx.metrics.gauges.slots_used.fetch_add(1, Ordering::Relaxed);
                let slot_task = Slot {
                    ctx: ctx.clone(),
                    rng: slot_rng(ctx.common.seed, slot),
                    ramp: ramp.clone(),
                    connection_ids: connection_ids.clone(),
                    run_state: run_state.clone(),
                    index: slot,
                };
                tasks.spawn(slot_task.run());
            }
            Some(_) = tasks.join_next(), if !tasks.is_empty() => {}
            changed = state_rx.changed() => {
                if changed.is_err() {
                    // The sender is gone: nobody can stop us any more, so stop now.
                    tasks.abort_all();
                    while tasks.join_next().await.is_some() {}
                    break;
                }
            }
        }
    }
}

/// One reproducible random stream per slot: the same seed gives the same command stream.
fn slot_rng(seed: Option<u64>, slot: u32) -> Xoshiro256PlusPlus {
    match seed {
        Some(seed) => {
            let mut rng = Xoshiro256PlusPlus::seed_from_u64(seed);
            for _ in 0..slot {
                rng.jump();
            }
            rng
        }
        None => Xoshiro256PlusPlus::from_rng(&mut rand::rng()),
    }
}

#[derive(Clone)]
struct Ramp {
    next_slot: Arc<AtomicU32>,
    clients: u32,
    start_tx: mpsc::UnboundedSender<u32>,
}

impl Ramp {
    fn open(&self, n: u32) {
        for _ in 0..n {
            let slot = self.next_slot.fetch_add(1, Ordering::Relaxed);
            if slot >= self.clients {
                return;
            }
            let _ = self.start_tx.send(slot);
        }
    }
}

struct Slot {
    ctx: Arc<StressContext>,
    rng: Xoshiro256PlusPlus,
    ramp: Ramp,
    connection_ids: Arc<AtomicU64>,
    run_state: watch::Receiver<RunState>,
    /// The slot number (owner id for `own_flags`).
    index: u32,
}

/// Why a session ended.
pub enum SessionEnd {
    /// LOGOUT done: the next session uses a new user.
    LoggedOut,
    /// Connection lost, protocol error or a random DISCONNECT: reconnect as the same user.
    Dropped,
}

impl Slot {
    async fn run(mut self) {
        let mut user = self.ctx.users.pick(&mut self.rng);
        let mut ramped = false;
        loop {
            if *self.run_state.borrow() != RunState::Running {
                return;
            }
            let id = self.connection_ids.fetch_add(1, Ordering::Relaxed);
            match self.session(&user, id, &mut ramped).await {
                SessionEnd::LoggedOut => user = self.ctx.users.pick(&mut self.rng),
                SessionEnd::Dropped => {
                    if self.ctx.settings.disconnect_quit {
                        self.ctx.quit.store(true, Ordering::Relaxed);
                        return;
                    }
                    // Don't spin on a server that refuses us.
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            }
        }
    }

    fn report(&self, user: &User, id: u64, kind: ErrorKind, message: String, line: Option<String>) {
        self.ctx.metrics.report(Report {
            severity: Severity::Error,
            user: Some(user.name.clone()),
            connection: Some(id),
            message,
            line,
            kind: Some(kind),
        });
    }

    async fn session(&mut self, user: &User, id: u64, ramped: &mut bool) -> SessionEnd {
        let metrics = self.ctx.metrics.clone();
        let started = Instant::now();
        let client =
            match ImapClient::connect(&self.ctx.endpoint, id, &self.ctx.client_options).await {
                Ok(c) => c,
                Err(e) => {
                    metrics.connect_failed(Server::Imap, e.failed_phase(), started);
                    self.report(user, id, ErrorKind::ConnectFailed, e.to_string(), None);
                    return SessionEnd::Dropped;
                }
            };
        metrics.phases(Server::Imap, client.phase_times());
        metrics.send(Event::Connected);
        metrics.gauges.connection_opened();
        let end = self.logged_in_session(client, user, id, ramped).await;
        let end = match end {
            Some(end) => end,
            None => SessionEnd::Dropped,
        };
        metrics.gauges.connection_closed();
        metrics.send(Event::Disconnected);
        end
    }

    /// Logs in, then hands the stream to a pipelining [`Connection`].
    async fn logged_in_session(
        &mut self,
        mut client: ImapClient,
        user: &User,
        id: u64,
        ramped: &mut bool,
    ) -> Option<SessionEnd> {
        if !client.preauth() {
            let settings = &self.ctx.common.user;
            let state = if settings.mech == Mech::Command && settings.master.is_none() {
                State::Login
            } else {
                State::Authenticate
            };
            let started = Instant::now();
            let request = LoginRequest {
                user: &user.name,
                password: &user.password,
                mech: settings.mech,
                master: settings.master.as_deref(),
                scram_cache: &self.ctx.scram_cache,
            };
            let done = match client.log_in(&request).await {
                Ok(done) => done,
                Err(e) => {
                    let message = format!("{}: {e}", state.name());
                    self.report(user, id, ErrorKind::LoginFailed, message, None);
                    return None;
                }
            };
            self.ctx.metrics.send(Event::Command {
                op: Op::Imap(state),
                outcome: if done.is_ok() {
                    Outcome::Ok
                } else {
                    Outcome::No
                },
                intended: started,
                started,
                finished: Instant::now(),
            });
            if !done.is_ok() {
                self.report(
                    user,
                    id,
                    ErrorKind::LoginFailed,
                    format!("{} failed", state.name()),
                    Some(done.line),
                );
                return None;
            }
        }
        if !*ramped {
            *ramped = true;
            self.ramp.open(SLOTS_PER_LOGIN);
        }
        let (stream, capabilities, next_tag) = client.into_parts();
        let ended = Connection::new(
            &self.ctx,
            &mut self.rng,
            &self.run_state,
            user,
            id,
            self.index,
            stream,
            capabilities,
            next_tag,
        )
        .run()
        .await;
        if let Some((kind, message, line)) = ended.error {
            self.report(user, id, kind, message, line);
        }
        Some(ended.end)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::RngExt;

    #[test]
    fn seeded_slots_are_reproducible_and_distinct() {
        let a: u64 = slot_rng(Some(7), 3).random();
        let b: u64 = slot_rng(Some(7), 3).random();
        let c: u64 = slot_rng(Some(7), 4).random();
        assert_eq!(a, b);
        assert_ne!(a, c);
    }
}
