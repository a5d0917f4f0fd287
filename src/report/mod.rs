//! Sinks that consume aggregated metrics.

pub mod console;

pub use console::Console;
