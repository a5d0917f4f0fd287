//! Session tasks and what a client remembers while it is offline.
//!
//! A (user, client) session runs as a task only while the schedule has it logged in:
//! after its Logout the dispatcher drops the task's job channel, the task logs out, ends
//! and hands what spans sessions (the caching client's UIDVALIDITY/UIDNEXT, a keeping
//! POP3 client's downloaded UIDLs, the random stream) to a [`Memory`] of a few dozen
//! bytes. The next action of that client starts a new task from it. With a million
//! users mostly offline, memory is then per user a few hundred bytes, not a parked task
//! with its channel (~6.7 KB).
//!
//! The hand-over goes through a oneshot channel the old task fills when it ends, so a
//! new session never starts before the previous one has finished, and the actions of a
//! client are still performed in schedule order.

use std::collections::HashMap;
use std::collections::hash_map::Entry;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use tokio::sync::{mpsc, oneshot};

use super::user::UserShared;
use super::{Ctx, Job, imap_session, pop3_session};
use crate::profile::model::Protocol;
use crate::profile::schedule::Action;

/// What one client of a user remembers between sessions.
#[derive(Debug)]
pub(super) enum Memory {
    Imap(imap_session::Memory),
    Pop3(pop3_session::Memory),
}

/// One (user, client) as the dispatcher sees it.
enum Slot {
    /// A task runs the session: jobs go to it, and it fills `memory` when it ends.
    Live {
        jobs: mpsc::UnboundedSender<Job>,
        memory: oneshot::Receiver<Memory>,
    },
    /// No task: the memory of the last session (or its task's promise of it).
    Offline(oneshot::Receiver<Memory>),
}

/// The dispatcher's sessions: routes each action to its (user, client) task, starting
/// and ending tasks as the client logs in and out.
#[derive(Default)]
pub(super) struct Sessions {
    slots: HashMap<(u32, u16), Slot>,
}

impl Sessions {
    /// Hands `job` to the session of (`user`, `client`), starting its task if none runs.
    /// After a Logout, or any action of a client that is not logged in (it is only
    /// counted as skipped), the task is told to end once it has done the job.
    pub fn route(
        &mut self,
        ctx: &Arc<Ctx>,
        handle: &tokio::runtime::Handle,
        user: &Arc<UserShared>,
        client: u16,
        job: Job,
    ) {
        let (slot, was_online) = match self.slots.entry((user.index, client)) {
            Entry::Occupied(entry) => {
                let slot = entry.into_mut();
                let online = matches!(slot, Slot::Live { .. });
                if let Slot::Offline(_) = slot {
                    start(slot, ctx, handle, user, client);
                }
                (slot, online)
            }
            Entry::Vacant(entry) => {
                // A placeholder memory that is never filled: the session starts fresh.
                let slot = entry.insert(Slot::Offline(oneshot::channel().1));
                start(slot, ctx, handle, user, client);
                (slot, false)
            }
        };
        let Slot::Live { jobs, .. } = slot else {
            return;
        };
        // A closed channel means the task ended early (the run is stopping).
        let _ = jobs.send(job);
        let logged_out = match job.action.action {
            Action::Logout => true,
            Action::Login { .. } => false,
            _ => !was_online,
        };
        if logged_out {
            end(slot);
        }
    }
}

/// Starts the task of an offline slot, handing it the slot's memory.
fn start(
    slot: &mut Slot,
    ctx: &Arc<Ctx>,
    handle: &tokio::runtime::Handle,
    user: &Arc<UserShared>,
    client: u16,
) {
    let (jobs, rx) = mpsc::unbounded_channel();
    let (memory_tx, memory_rx) = oneshot::channel();
    let previous = match std::mem::replace(
        slot,
        Slot::Live {
            jobs,
            memory: memory_rx,
        },
    ) {
        Slot::Offline(previous) => previous,
        // Not reached: only offline slots are started.
        Slot::Live { memory, .. } => memory,
    };
    ctx.live_sessions.fetch_add(1, Ordering::AcqRel);
    handle.spawn(run(
        ctx.clone(),
        user.clone(),
        client,
        rx,
        previous,
        memory_tx,
    ));
}

/// Drops the task's job channel: it ends after the jobs it has, leaving its memory.
fn end(slot: &mut Slot) {
    let placeholder = Slot::Offline(oneshot::channel().1);
    if let Slot::Live { memory, .. } = std::mem::replace(slot, placeholder) {
        *slot = Slot::Offline(memory);
    }
}

/// One session task: waits for the previous session's memory, runs, leaves its own.
async fn run(
    ctx: Arc<Ctx>,
    user: Arc<UserShared>,
    client: u16,
    jobs: mpsc::UnboundedReceiver<Job>,
    previous: oneshot::Receiver<Memory>,
    memory_out: oneshot::Sender<Memory>,
) {
    let mut ended = ctx.end_sessions.subscribe();
    let session = async {
        // Err: no previous session (or it was dropped): start fresh.
        let memory = previous.await.ok();
        match ctx.profile.clients[client as usize].protocol {
            Protocol::Imap => {
                let memory = match memory {
                    Some(Memory::Imap(m)) => Some(m),
                    _ => None,
                };
                let left = imap_session::run(ctx.clone(), user, client, jobs, memory).await;
                Memory::Imap(left)
            }
            Protocol::Pop3 => {
                let memory = match memory {
                    Some(Memory::Pop3(m)) => Some(m),
                    _ => None,
                };
                let left = pop3_session::run(ctx.clone(), user, client, jobs, memory).await;
                Memory::Pop3(left)
            }
        }
    };
    tokio::select! {
        memory = session => {
            // The next session may not come (the run ends): nobody to tell then.
            let _ = memory_out.send(memory);
        }
        _ = ended.wait_for(|&end| end) => {}
    }
    if ctx.live_sessions.fetch_sub(1, Ordering::AcqRel) == 1 {
        ctx.sessions_done.notify_waiters();
    }
}
