//! LMTP client (RFC 2033): deliveries into the server under test.
//!
//! * [`client::LmtpClient`]: greeting, `LHLO`, STARTTLS, and [`client::LmtpClient::deliver`]
//!   (MAIL, RCPT per recipient, DATA, pipelined when offered) with one reply per
//!   accepted recipient.
//! * [`reply`]: reply lines, enhanced status codes, the LHLO extension list.
//! * [`mod@marker`]: the `X-Imaptest-Delivery` header that lets a reader measure
//!   end-to-end delivery latency.
//!
//! Nothing here knows about scheduling; engines drive it.

pub mod client;
pub mod marker;
pub mod reply;

pub use client::{Delivery, DeliveryTimings, LmtpClient, LmtpError, LmtpOptions, encode_data};
pub use marker::{MARKER_HEADER, marker, parse_marker, with_marker, with_message_id};
pub use reply::{EnhancedCode, Extensions, Reply};
