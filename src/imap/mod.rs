//! IMAP client protocol: response framing and parsing, command encoding, framed streams.
//!
//! Nothing here knows about scheduling, engines or the console.

pub mod capability;
pub mod client;
pub mod command;
pub mod stream;

pub use capability::Capabilities;
pub use client::{ClientError, ClientOptions, Completion, ImapClient};
pub use stream::{ImapStream, StreamError};
pub mod framer;
pub mod response;
