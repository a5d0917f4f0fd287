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

/// Resolves once `stop` reaches `level` (`LogoutAndStop` is reached by `StopNow` too),
/// for loops that select on it; never if the sender is gone without it.
pub async fn stopped(stop: &mut tokio::sync::watch::Receiver<RunState>, level: RunState) {
    let reached = |state: &RunState| match level {
        RunState::Running => true,
        RunState::LogoutAndStop => *state != RunState::Running,
        RunState::StopNow => *state == RunState::StopNow,
    };
    if stop.wait_for(reached).await.is_err() {
        std::future::pending::<()>().await;
    }
}
