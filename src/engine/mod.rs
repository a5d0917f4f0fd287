//! Engines drive connections and emit [`crate::metrics::Event`]s. They never print.
//!
//! * [`stress`]: classic stress mode, clients walking the state table.
//! * [`profile_run`]: profile mode's runtime, playing a [`crate::profile`] schedule
//!   against the servers (the model and the scheduler live in [`crate::profile`]).

pub mod profile_run;
pub mod stress;
