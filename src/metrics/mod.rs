//! Events emitted by engines and their per-second aggregation.
