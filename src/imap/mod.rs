//! IMAP client protocol: response framing and parsing, command encoding, framed streams.
//!
//! Nothing here knows about scheduling, engines or the console.
//!
//! Reading responses takes three steps:
//! [`framer::Framer`] cuts the byte stream into [`framer::RawResponse`]s
//! (bounded memory, never loses sync), [`token`] turns one into a borrowed
//! [`token::Arg`] tree, and [`response`] gives typed views of what the
//! engines need. [`stream::ImapStream`] runs the framer on a connection and
//! [`client::ImapClient`] speaks tagged commands over it.

pub mod capability;
pub mod client;
pub mod command;
pub mod framer;
pub mod response;
pub mod stream;
pub mod token;

pub use capability::Capabilities;
pub use client::{ClientError, ClientOptions, Completion, ImapClient};
pub use framer::{FrameError, Framer, FramerLimits, Progress, RawResponse, Truncation};
pub use response::{Code, FetchItem, RespText, Response, SeqSet, Status, Untagged};
pub use stream::{ImapStream, StreamError};
pub use token::{Arg, ParseError, ParseErrorKind};
