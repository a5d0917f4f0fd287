//! Flags as a view knows them, and flag ownership for `own_flags`.

/// The system flags tracked (not `\Recent`), bits 0..5 of [`MsgState::flags`].
pub const SYSTEM_FLAGS: [&str; 5] = ["\\Answered", "\\Flagged", "\\Deleted", "\\Seen", "\\Draft"];
/// Bits 0..5 are the system flags; keywords follow.
pub const KEYWORD_BASE: usize = SYSTEM_FLAGS.len();
/// Keywords a view can track per selection; with more, flags become unknown.
pub const MAX_KEYWORDS: usize = 64 - KEYWORD_BASE;

/// Everything `own_flags` hands out: each gets one owner slot.
pub const OWNABLE: [&str; 10] = [
    "\\Answered",
    "\\Flagged",
    "\\Deleted",
    "\\Seen",
    "\\Draft",
    "$Label1",
    "$Label2",
    "$Label3",
    "$Label4",
    "$Label5",
];

/// The flags and keywords `slot` (of `clients`) owns: flag `i` belongs to slot
/// `i % clients`, so every flag has exactly one owner.
pub fn owned_by(slot: u32, clients: u32) -> Vec<&'static str> {
    let clients = clients.max(1);
    OWNABLE
        .iter()
        .enumerate()
        .filter(|(i, _)| *i as u32 % clients == slot % clients)
        .map(|(_, f)| *f)
        .collect()
}

/// Per-message state of a view.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct MsgState {
    /// Highest MODSEQ seen; 0 = none.
    pub modseq: u64,
    /// Bit set of flags (see [`SYSTEM_FLAGS`], keywords from [`KEYWORD_BASE`]).
    pub flags: u64,
    /// `flags` is what the server last said.
    pub flags_known: bool,
    /// The view's FETCH FLAGS counter when `flags` last came from the server.
    pub flags_epoch: u64,
}

/// What one of our STOREs changes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoreIntent {
    /// Sequence ranges, inclusive.
    pub set: Vec<(u32, u32)>,
    /// `+FLAGS` (true) or `-FLAGS` (false); replacing STOREs are not tracked.
    pub add: bool,
    /// Empty: a STORE whose effect is not tracked (replacing, or without
    /// `own_flags`): flags of its messages become unknown if it was silent.
    pub flags: Vec<&'static str>,
    pub silent: bool,
    /// The view's FETCH FLAGS counter when the STORE was sent (set by the view).
    pub sent_epoch: u64,
}

/// `own_msgs`: the UID's owner slot.
pub fn msg_owner(uid: u32, clients: u32) -> u32 {
    uid % clients.max(1)
}

/// Bit of a system flag name (case-insensitive), without `\Recent`.
pub fn system_bit(name: &[u8]) -> Option<u64> {
    SYSTEM_FLAGS
        .iter()
        .position(|f| f.as_bytes().eq_ignore_ascii_case(name))
        .map(|i| 1 << i)
}
