//! Engines drive connections and emit [`crate::metrics::Event`]s. They never print.
//!
//! * [`stress`]: classic stress mode, clients walking the state table.
//! * [`profile_run`]: profile mode's runtime, playing a [`crate::profile`] schedule
//!   against the servers (the model and the scheduler live in [`crate::profile`]).

pub mod profile_run;
pub mod stress;

/// The runtime a run needs. Stress mode and scripted tests run on one thread, as the
/// C tool does: per command the work is small next to the system calls, and one
/// thread saves the cross-thread wake-ups a work-stealing pool pays on every reply
/// (context switches per command drop from ~0.6 to ~0.35; CPU per command by ~10 %).
/// Profile mode keeps the multi-threaded pool (its scheduler hands work across tasks).
pub fn runtime(settings: &crate::config::Settings) -> std::io::Result<tokio::runtime::Runtime> {
    if settings.profile.is_some() {
        tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build()
    } else {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
    }
}
