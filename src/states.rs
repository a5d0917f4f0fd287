//! The stress-mode state table: every command state with its short name, default
//! probabilities, the login level it needs and how it interacts with pipelining.

/// Connection login level a state needs before it can run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Level {
    NonAuth,
    Auth,
    Selected,
}

/// One state of the table, in column order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[repr(u8)]
pub enum State {
    Banner,
    Authenticate,
    Login,
    Compress,
    ListRoot,
    List,
    MCreate,
    MDelete,
    MRename,
    MSubs,
    Status,
    Select,
    UidFetch,
    Fetch,
    Fetch2,
    Search,
    Sort,
    Thread,
    Copy,
    Move,
    Store,
    Delete,
    Expunge,
    Append,
    Noop,
    Idle,
    Check,
    Logout,
    Disconnect,
    Delay,
    Checkpoint,
    Lmtp,
}

/// Static facts about a state.
#[derive(Debug, Clone, Copy)]
pub struct StateInfo {
    pub state: State,
    pub name: &'static str,
    pub short: &'static str,
    pub probability: u8,
    pub again: u8,
    pub level: Level,
    /// Changes the login level (LOGIN, AUTHENTICATE, SELECT, LOGOUT).
    pub changes_level: bool,
    /// Uses a message sequence set (must not be pipelined behind possible expunges).
    pub uses_msgset: bool,
    /// May cause untagged EXPUNGE responses.
    pub may_expunge: bool,
}

const fn info(
    state: State,
    name: &'static str,
    short: &'static str,
    probability: u8,
    again: u8,
    level: Level,
    flags: &'static str,
) -> StateInfo {
    let bytes = flags.as_bytes();
    let mut changes_level = false;
    let mut uses_msgset = false;
    let mut may_expunge = false;
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'C' => changes_level = true,
            b'M' => uses_msgset = true,
            b'E' => may_expunge = true,
            _ => {}
        }
        i += 1;
    }
    StateInfo {
        state,
        name,
        short,
        probability,
        again,
        level,
        changes_level,
        uses_msgset,
        may_expunge,
    }
}

use Level::{Auth, NonAuth, Selected};

/// The table, indexed by `State as usize`.
pub const STATES: [StateInfo; 32] = [
    info(State::Banner, "BANNER", "Bann", 0, 0, NonAuth, ""),
    info(
        State::Authenticate,
        "AUTHENTICATE",
        "Auth",
        0,
        0,
        NonAuth,
        "C",
    ),
    info(State::Login, "LOGIN", "Logi", 100, 0, NonAuth, "C"),
    info(State::Compress, "COMPRESS", "Comp", 0, 0, Auth, ""),
    info(State::ListRoot, "LISTROOT", "Root", 0, 0, Auth, "E"),
    info(State::List, "LIST", "List", 50, 0, Auth, "E"),
    info(State::MCreate, "MCREATE", "MCre", 0, 0, Auth, "E"),
    info(State::MDelete, "MDELETE", "MDel", 0, 0, Auth, "E"),
    info(State::MRename, "MRENAME", "MRen", 0, 0, Auth, "E"),
    info(State::MSubs, "MSUBS", "MSub", 0, 0, Auth, "E"),
    info(State::Status, "STATUS", "Stat", 50, 0, Auth, "E"),
    info(State::Select, "SELECT", "Sele", 100, 0, Auth, "C"),
    info(State::UidFetch, "UIDFETCH", "UIDF", 0, 0, Selected, "ME"),
    info(State::Fetch, "FETCH", "Fetc", 100, 0, Selected, "M"),
    info(State::Fetch2, "FETCH2", "Fet2", 100, 30, Selected, "M"),
    info(State::Search, "SEARCH", "Sear", 0, 0, Selected, "M"),
    info(State::Sort, "SORT", "Sort", 0, 0, Selected, "M"),
    info(State::Thread, "THREAD", "Thre", 0, 0, Selected, "M"),
    info(State::Copy, "COPY", "Copy", 33, 5, Selected, "ME"),
    info(State::Move, "MOVE", "Move", 0, 0, Selected, "ME"),
    info(State::Store, "STORE", "Stor", 50, 0, Selected, "M"),
    info(State::Delete, "DELETE", "Dele", 100, 0, Selected, "M"),
    info(State::Expunge, "EXPUNGE", "Expu", 100, 0, Selected, "E"),
    info(State::Append, "APPEND", "Appe", 100, 5, Auth, "E"),
    info(State::Noop, "NOOP", "Noop", 0, 0, Auth, "E"),
    info(State::Idle, "IDLE", "Idle", 0, 0, Auth, "E"),
    // RFC 3501 allows CHECK only in the selected state (the C tool marks it A).
    info(State::Check, "CHECK", "Chec", 0, 0, Selected, "E"),
    info(State::Logout, "LOGOUT", "Logo", 100, 0, NonAuth, "C"),
    info(State::Disconnect, "DISCONNECT", "Disc", 0, 0, NonAuth, ""),
    info(State::Delay, "DELAY", "Dela", 0, 0, NonAuth, ""),
    info(State::Checkpoint, "CHECKPOINT!", "ChkP", 0, 0, NonAuth, ""),
    info(State::Lmtp, "LMTP", "LMTP", 0, 0, NonAuth, ""),
];

impl State {
    /// Number of states.
    pub const COUNT: usize = STATES.len();

    /// All states in table order.
    pub fn all() -> impl Iterator<Item = State> {
        STATES.iter().map(|s| s.state)
    }

    pub fn info(self) -> &'static StateInfo {
        &STATES[self as usize]
    }

    pub fn name(self) -> &'static str {
        self.info().name
    }

    pub fn short(self) -> &'static str {
        self.info().short
    }

    /// Finds a state by its full or short name, case-insensitively.
    pub fn from_name(name: &str) -> Option<State> {
        STATES
            .iter()
            .find(|s| s.name.eq_ignore_ascii_case(name) || s.short.eq_ignore_ascii_case(name))
            .map(|s| s.state)
    }
}

/// Per-state probabilities (percent) and "again" probabilities as configured.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Probabilities {
    pub probability: [u8; State::COUNT],
    pub again: [u8; State::COUNT],
}

impl Default for Probabilities {
    fn default() -> Self {
        let mut probability = [0; State::COUNT];
        let mut again = [0; State::COUNT];
        for (i, s) in STATES.iter().enumerate() {
            probability[i] = s.probability;
            again[i] = s.again;
        }
        Probabilities { probability, again }
    }
}

impl Probabilities {
    pub fn get(&self, state: State) -> u8 {
        self.probability[state as usize]
    }

    pub fn again(&self, state: State) -> u8 {
        self.again[state as usize]
    }

    pub fn set(&mut self, state: State, probability: u8, again: Option<u8>) {
        self.probability[state as usize] = probability;
        if let Some(again) = again {
            self.again[state as usize] = again;
        }
    }

    /// The bare `-` argument: every state strictly between LOGIN and LOGOUT except
    /// SELECT gets probability 0.
    pub fn clear_between_login_and_logout(&mut self) {
        for s in STATES.iter() {
            if s.state > State::Login && s.state < State::Logout && s.state != State::Select {
                self.probability[s.state as usize] = 0;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_is_indexed_by_enum_order() {
        for (i, s) in STATES.iter().enumerate() {
            assert_eq!(s.state as usize, i, "{} is out of place", s.name);
        }
    }

    #[test]
    fn names_match_both_columns_in_any_case() {
        assert_eq!(State::from_name("fet2"), Some(State::Fetch2));
        assert_eq!(State::from_name("FETCH2"), Some(State::Fetch2));
        assert_eq!(State::from_name("Appe"), Some(State::Append));
        assert_eq!(State::from_name("checkpoint!"), Some(State::Checkpoint));
        assert_eq!(State::from_name("nosuch"), None);
    }

    #[test]
    fn dash_keeps_login_select_logout() {
        let mut p = Probabilities::default();
        p.clear_between_login_and_logout();
        assert_eq!(p.get(State::Login), 100);
        assert_eq!(p.get(State::Select), 100);
        assert_eq!(p.get(State::Logout), 100);
        assert_eq!(p.get(State::Fetch), 0);
        assert_eq!(p.get(State::Append), 0);
    }
}
