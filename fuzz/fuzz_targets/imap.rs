//! The main crate's reader modules, compiled in as they are: they refer to
//! each other only through `super::`, so the fuzz build needs no tokio or
//! rustls.
#![allow(dead_code)]

#[path = "../../src/imap/framer.rs"]
pub mod framer;
#[path = "../../src/imap/response.rs"]
pub mod response;
#[path = "../../src/imap/token.rs"]
pub mod token;
