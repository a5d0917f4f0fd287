//! IMAP client protocol: response framing and parsing, command encoding, framed streams.
//!
//! Nothing here knows about scheduling, engines or the console.
//!
//! Reading responses takes three steps:
//! [`framer::Framer`] cuts the byte stream into [`framer::RawResponse`]s
//! (bounded memory, never loses sync), [`token`] turns one into a borrowed
//! [`token::Arg`] tree, and [`response`] gives typed views of what the
//! engines need.

pub mod framer;
pub mod response;
pub mod token;

pub use framer::{FrameError, Framer, FramerLimits, RawResponse, Truncation};
pub use response::{Code, FetchItem, RespText, Response, SeqSet, Status, Untagged};
pub use token::{Arg, ParseError, ParseErrorKind};
