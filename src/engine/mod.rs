//! Engines drive connections and emit [`crate::metrics::Event`]s. They never print.

pub mod profile;
pub mod states;
pub mod stress;
