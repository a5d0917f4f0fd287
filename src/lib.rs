//! imaptest: stress, verify and capacity-plan IMAP, POP3 and LMTP servers.
//!
//! A successor to Dovecot's ImapTest with the same `key=value` command line.
//!
//! # Layout
//!
//! * [`cli`]: the legacy `key=value` command line, turned into [`config::Settings`].
//! * [`config`]: the validated settings every mode runs from.
//! * [`net`]: TCP connects, TLS (rustls), STARTTLS upgrades, rawlogs and a bounded line
//!   reader for the text protocols. Knows no protocol.
//! * [`imap`]: the IMAP response framer, tokenizer and typed views, command encoding,
//!   and [`imap::ImapStream`], a framed IMAP connection. Knows nothing of scheduling.
//! * [`lmtp`]: the LMTP client (LHLO, STARTTLS, pipelined deliveries, one reply per
//!   recipient) and the delivery marker header.
//! * [`pop3`]: the POP3 client (CAPA, STLS, USER/PASS, SASL AUTH, STAT/LIST/UIDL/RETR/
//!   TOP/DELE).
//! * [`sasl`]: client SASL mechanisms (PLAIN, LOGIN, SCRAM-SHA-1, SCRAM-SHA-256).
//! * [`users`]: user name templates and user files.
//! * [`mail`]: message sources (mbox, random bodies) and the test mbox generator.
//! * [`states`]: the stress state table (names, probabilities, login levels), shared by
//!   the command line, engines and reports.
//! * [`control`]: [`control::RunState`], how far a run should go on.
//! * [`engine`]: the engines (stress mode, profile runtime); they send
//!   [`metrics::Event`]s and never print.
//! * [`metrics`]: the events engines emit and the per-second aggregation.
//! * [`report`]: sinks that consume aggregated metrics (console, CSV timeline, `output=`).
//! * [`profile`]: profile mode: the TOML profile, legacy `profile.conf`, the scheduler
//!   and dry-run plans.
//! * [`fit`]: `imaptest profile fit`: a profile fitted to a server's own logs.
//! * [`conversation`]: Exim-style client scripts and a scriptable server
//!   (`imaptest client`, `imaptest server`).
//! * [`quirks`]: known deviations of real servers, each under an error kind of its own
//!   (`docs/servers.md`).
//! * [`compliance`]: `imaptest compliance`, a fixed battery of questions about a
//!   server, answered as a matrix.
//! * [`app`]: the edge that wires settings, engines, sinks, signals and exit statuses.

pub mod app;
pub mod cli;
pub mod compliance;
pub mod config;
pub mod control;
pub mod conversation;
pub mod duration;
pub mod engine;
pub mod exit;
pub mod fit;
pub mod imap;
pub mod lmtp;
pub mod mail;
pub mod metrics;
pub mod net;
pub mod ops;
pub mod pop3;
pub mod profile;
pub mod quirks;
pub mod report;
pub mod sasl;
pub mod scripted;
pub mod slo;
pub mod states;
pub mod summary;
pub mod text;
pub mod tracking;
pub mod users;
