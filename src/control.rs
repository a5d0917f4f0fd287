//! Run control: how far a run should go on, sent by the edge to every engine.

/// How far a run should go on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RunState {
    Running,
    /// Finish the current command, log out, don't reconnect.
    LogoutAndStop,
    /// Drop everything now.
    StopNow,
}
