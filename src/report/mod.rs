//! Sinks that consume aggregated metrics.
