//! POP3 client (RFC 1939) with CAPA (RFC 2449), STLS (RFC 2595) and SASL AUTH
//! (RFC 5034), for profile mode's `protocol = pop3` clients and for tests.
//!
//! [`client::Pop3Client`] is sequential: one command, one reply. Multi-line replies
//! (CAPA, LIST, UIDL, RETR, TOP) are read up to the `.` line, dot-unstuffed and
//! bounded in lines and bytes. Errors name the command and quote the `-ERR` line.

pub mod client;

pub use client::{
    ListEntry, Pop3Capabilities, Pop3Client, Pop3Error, Pop3Options, Retrieved, Stat, UidlEntry,
};
