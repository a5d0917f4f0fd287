//! IMAP client protocol: response framing and parsing, command encoding, framed streams.
//!
//! Nothing here knows about scheduling, engines or the console.
