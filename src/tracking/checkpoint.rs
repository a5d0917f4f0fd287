//! `checkpoint=N`: every N seconds, per storage (user+mailbox), every connection of the
//! storage stops sending, the selected ones send CHECK once all are idle, and their
//! views are compared: message count, sequence → UID map, flags and MODSEQs.
//!
//! Nothing here can stop a run: a connection that leaves (LOGOUT, disconnect) is simply
//! dropped from the round, and a round that doesn't complete in [`ROUND_TIMEOUT`] is
//! abandoned with a warning.

use std::collections::HashSet;
use std::time::{Duration, Instant};

/// A round that takes longer is abandoned.
pub const ROUND_TIMEOUT: Duration = Duration::from_secs(30);

/// What a connection should do about a checkpoint now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Gate {
    /// No checkpoint in the way: send as usual.
    Open,
    /// Send nothing new; wait for the others.
    Hold,
    /// Everyone is idle: send CHECK now, then report with [`super::View::checkpoint_checked`].
    SendCheck,
}

/// One connection's view at the end of its CHECK.
#[derive(Debug, Clone)]
pub struct Snapshot {
    pub connection: u64,
    pub uids: Vec<u32>,
    /// Flags (lowercase, sorted, no `\Recent`) where known.
    pub flags: Vec<Option<Vec<Box<[u8]>>>>,
    pub modseqs: Vec<u64>,
}

#[derive(Debug)]
pub struct Round {
    /// Numbers rounds of a storage, from 1.
    pub id: u64,
    pub started: Instant,
    /// Connections selected when the round started: they CHECK and are compared.
    pub members: Vec<u64>,
    /// Connections with nothing in flight.
    pub idle: HashSet<u64>,
    /// Every live connection went idle: CHECKs may go.
    pub checking: bool,
    pub snapshots: Vec<Snapshot>,
}

/// Per-storage checkpoint state.
#[derive(Debug, Default)]
pub struct CheckpointState {
    /// Live connections of the storage.
    pub live: HashSet<u64>,
    /// Live connections with the mailbox selected.
    pub selected: HashSet<u64>,
    pub next: Option<Instant>,
    pub round: Option<Round>,
    /// Rounds started so far.
    pub rounds: u64,
}

/// Compares the snapshots; returns the errors (empty: all agree).
pub fn compare(mailbox: &str, snapshots: &[Snapshot]) -> Vec<String> {
    let mut errors = Vec::new();
    let Some(max) = snapshots.iter().map(|s| s.uids.len()).max() else {
        return errors;
    };
    for s in snapshots {
        if s.uids.len() < max {
            errors.push(format!(
                "checkpoint: mailbox \"{mailbox}\": connection {} has {} messages: expected {max} like the others",
                s.connection,
                s.uids.len()
            ));
        }
    }
    let Some((first, rest)) = snapshots.split_first() else {
        return errors;
    };
    for other in rest {
        let n = first.uids.len().min(other.uids.len());
        for i in 0..n {
            let seq = i + 1;
            let (a, b) = (first.uids[i], other.uids[i]);
            if a != 0 && b != 0 && a != b {
                errors.push(format!(
                    "checkpoint: mailbox \"{mailbox}\" seq {seq}: connection {} has UID {a}, connection {} has UID {b}",
                    first.connection, other.connection
                ));
                break;
            }
            let uid = if a != 0 { a } else { b };
            if let (Some(fa), Some(fb)) = (&first.flags[i], &other.flags[i])
                && fa != fb
            {
                errors.push(format!(
                    "checkpoint: mailbox \"{mailbox}\" seq {seq} UID {uid}: flags differ: connection {} has ({}), connection {} has ({})",
                    first.connection,
                    names(fa),
                    other.connection,
                    names(fb)
                ));
            }
            let (ma, mb) = (first.modseqs[i], other.modseqs[i]);
            if ma != 0 && mb != 0 && ma != mb {
                errors.push(format!(
                    "checkpoint: mailbox \"{mailbox}\" seq {seq} UID {uid}: MODSEQs differ: connection {} has {ma}, connection {} has {mb}",
                    first.connection, other.connection
                ));
            }
        }
    }
    errors
}

fn names(flags: &[Box<[u8]>]) -> String {
    flags
        .iter()
        .map(|f| String::from_utf8_lossy(f).into_owned())
        .collect::<Vec<_>>()
        .join(" ")
}
