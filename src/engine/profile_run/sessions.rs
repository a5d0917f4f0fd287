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

use std::collections::hash_map::Entry;
use std::collections::{HashMap, VecDeque};
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};

use tokio::sync::{Notify, oneshot};

use super::user::UserShared;
use super::{Ctx, Job, imap_session, pop3_session};
use crate::limits::MAX_SESSION_QUEUE;
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
        jobs: Arc<Jobs>,
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
    /// counted as skipped), the task is told to end once it has done the job. False
    /// when the session already has [`MAX_SESSION_QUEUE`] jobs waiting: `job` is dropped.
    pub fn route(
        &mut self,
        ctx: &Arc<Ctx>,
        handle: &tokio::runtime::Handle,
        user: &Arc<UserShared>,
        client: u16,
        job: Job,
    ) -> bool {
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
            return true;
        };
        let queued = jobs.push(job);
        let logged_out = match job.action.action {
            Action::Logout => true,
            Action::Login { .. } => false,
            _ => !was_online,
        };
        // Even when the Logout itself was dropped: the session ends after its queue.
        if logged_out {
            end(slot);
        }
        queued
    }
}

impl Drop for Sessions {
    /// The dispatcher is done: every running session logs out and ends.
    fn drop(&mut self) {
        for slot in self.slots.values() {
            if let Slot::Live { jobs, .. } = slot {
                jobs.close();
            }
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
    let jobs = Arc::new(Jobs::default());
    let (memory_tx, memory_rx) = oneshot::channel();
    let previous = match std::mem::replace(
        slot,
        Slot::Live {
            jobs: jobs.clone(),
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
        JobReceiver(jobs),
        previous,
        memory_tx,
    ));
}

/// Closes the task's jobs: it ends after the ones it has, leaving its memory.
fn end(slot: &mut Slot) {
    let placeholder = Slot::Offline(oneshot::channel().1);
    if let Slot::Live { memory, jobs } = std::mem::replace(slot, placeholder) {
        jobs.close();
        *slot = Slot::Offline(memory);
    }
}

/// The jobs queued for one session task. A plain queue rather than an mpsc channel,
/// whose first block (32 slots) alone is ~2 KB per session held open.
#[derive(Default)]
struct Jobs {
    queue: Mutex<Queue>,
    ready: Notify,
}

#[derive(Default)]
struct Queue {
    jobs: VecDeque<Job>,
    closed: bool,
}

impl Jobs {
    fn queue(&self) -> std::sync::MutexGuard<'_, Queue> {
        self.queue.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Queues `job` unless [`MAX_SESSION_QUEUE`] are already waiting.
    fn push(&self, job: Job) -> bool {
        {
            let mut queue = self.queue();
            if queue.jobs.len() >= MAX_SESSION_QUEUE {
                return false;
            }
            queue.jobs.push_back(job);
        }
        self.ready.notify_one();
        true
    }

    fn close(&self) {
        self.queue().closed = true;
        self.ready.notify_one();
    }
}

/// The session task's end of its [`Jobs`].
pub(super) struct JobReceiver(Arc<Jobs>);

impl JobReceiver {
    /// The next job; `None` once the queue is closed and empty. Cancel-safe.
    pub async fn recv(&mut self) -> Option<Job> {
        loop {
            {
                let mut queue = self.0.queue();
                if let Some(job) = queue.jobs.pop_front() {
                    return Some(job);
                }
                if queue.closed {
                    return None;
                }
            }
            // A push between the check and here leaves a permit: no wake-up is lost.
            self.0.ready.notified().await;
        }
    }

    /// The next job if one is queued now.
    pub fn try_recv(&mut self) -> Option<Job> {
        self.0.queue().jobs.pop_front()
    }

    pub fn is_empty(&self) -> bool {
        self.0.queue().jobs.is_empty()
    }
}

impl Drop for JobReceiver {
    /// Jobs pushed after the task ended (the run is stopping) are not kept.
    fn drop(&mut self) {
        let mut queue = self.0.queue();
        queue.closed = true;
        queue.jobs.clear();
    }
}

/// One session task: waits for the previous session's memory, runs, leaves its own.
async fn run(
    ctx: Arc<Ctx>,
    user: Arc<UserShared>,
    client: u16,
    jobs: JobReceiver,
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
