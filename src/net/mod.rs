//! Transport: TCP connects, TLS, STARTTLS upgrades and rawlogs. Knows no protocol.

pub mod body;
pub mod connect;
pub mod deadline;
pub mod deflate;
pub mod inbound;
pub mod lines;
pub mod rawlog;
pub mod tls;
pub mod transport;

pub use body::BodySource;
pub use connect::{Endpoint, NetError, PhaseTimes};
pub use deadline::Deadline;
pub use lines::{LineError, LineStream};
pub use rawlog::Rawlog;
pub use transport::Transport;

/// Told about every read and write of a connection (for stall watching), so the
/// transport needs to know nothing of metrics.
pub trait IoObserver: Send + Sync + std::fmt::Debug {
    fn io(&self);
}
