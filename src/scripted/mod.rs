//! Scripted tests (`test=DIR`): ImapTest's test-file grammar and verdicts.

pub mod args;
pub mod matcher;
pub mod parser;
