//! Transport: TCP connects, TLS, STARTTLS upgrades and rawlogs. Knows no protocol.

pub mod connect;
pub mod deflate;
pub mod inbound;
pub mod lines;
pub mod rawlog;
pub mod tls;
pub mod transport;

pub use connect::{Endpoint, NetError};
pub use lines::{LineError, LineStream};
pub use rawlog::Rawlog;
pub use transport::Transport;
