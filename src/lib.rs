//! imaptest: stress, verify and capacity-plan IMAP, POP3 and LMTP servers.
//!
//! A successor to Dovecot's ImapTest with the same `key=value` command line.
//!
//! # Layout
//!
//! A run flows one way: settings → engine (emits events) → aggregator → sinks → the
//! ending (summary, SLO verdicts, exit status). Dependencies point the same way: only
//! [`app`] imports [`engine`], the [`report`] sinks and the summary recorder (the
//! analyses, [`capacity`] and [`compare`], read summaries and borrow the report's number
//! formats); engines never import `app`, `report`, `summary` or `cli`; protocol modules
//! know nothing of engines.
//!
//! Vocabulary and plumbing:
//! * [`duration`]: the one duration parser (`10s`, `1h30m`, `250ms`).
//! * [`text`]: server text made inert (control characters escaped, long lines cut).
//! * [`states`]: the stress state table (names, probabilities, login levels).
//! * [`ops`]: every op imaptest counts and times: IMAP commands, POP3 and LMTP commands,
//!   connection phases, profile actions; the protocol clients' timing logs.
//! * [`control`]: [`control::RunState`], how far a run should go on.
//! * [`exit`]: the exit-status table.
//! * [`config`]: the validated settings: [`config::Common`] and a [`config::Mode`].
//!
//! Protocols (they know nothing of scheduling):
//! * [`net`]: TCP connects, TLS (rustls), STARTTLS upgrades, rawlogs and a bounded line
//!   reader for the text protocols. Knows no protocol.
//! * [`sasl`]: client SASL mechanisms (PLAIN, LOGIN, SCRAM-SHA-1, SCRAM-SHA-256).
//! * [`imap`]: the IMAP response framer, tokenizer and typed views, command encoding,
//!   and [`imap::ImapStream`], a framed IMAP connection.
//! * [`lmtp`]: the LMTP client (LHLO, STARTTLS, pipelined deliveries, one reply per
//!   recipient) and the delivery marker header.
//! * [`pop3`]: the POP3 client (CAPA, STLS, USER/PASS, SASL AUTH, STAT/LIST/UIDL/RETR/
//!   TOP/DELE).
//!
//! Inputs:
//! * [`users`]: user name templates and user files.
//! * [`mail`]: message sources (mbox, random bodies, sized messages) and the test mbox
//!   generator.
//! * [`profile`]: the profile model: TOML profiles, legacy `profile.conf` (lexer and
//!   converter), distributions, the scheduler and dry-run plans. The runtime that plays
//!   a schedule is [`engine::profile_run`].
//! * [`fit`]: `imaptest profile fit`: a profile fitted to a server's own logs.
//!
//! Checking servers:
//! * [`tracking`]: the shared model of every mailbox that checks each IMAP reply.
//! * [`quirks`]: known deviations of real servers, each under an error kind of its own
//!   (`docs/servers.md`).
//! * [`scripted`]: ImapTest's scripted tests (`test=`): parser, matcher, runner.
//! * [`compliance`]: `imaptest compliance`, a fixed battery of questions about a
//!   server, answered as a matrix.
//! * [`conversation`]: Exim-style client scripts and a scriptable server
//!   (`imaptest client`, `imaptest server`).
//!
//! The pipeline:
//! * [`metrics`]: the events engines emit and the per-second aggregation into sinks.
//! * [`engine`]: the engines (stress mode, profile runtime); they send
//!   [`metrics::Event`]s and never print.
//! * [`report`]: sinks that consume aggregated metrics (console, CSV timeline,
//!   `output=`, `session_csv=`) and the self-contained HTML report of summaries
//!   (`report=`, `imaptest report`).
//! * [`summary`]: the run summary (`summary=`): its JSON types, the recorder sink, the
//!   per-second timeline and the lossless histogram codec.
//! * [`slo`]: SLO expressions and their verdicts over a summary's timeline.
//! * [`shard`]: sharded runs (`shard=I/N`, `start_at=`): the user partition, split
//!   limits and the agreed start; [`summary::merge`] adds the shards' summaries up.
//! * [`usage`]: what processes cost, from `/proc`: the server under test
//!   (`server_pid=`, `server_cgroup=`) and the scheduling of imaptest's own threads.
//!
//! Answers from summaries:
//! * [`capacity`]: `imaptest capacity`: the search for the most users a server holds at
//!   its SLOs, step judgement, the tool-is-the-limit check, the capacity JSON.
//! * [`compare`]: `imaptest compare`: two summaries judged per command and per SLO.
//!
//! The edge:
//! * [`cli`]: the `key=value` command line and subcommands, into [`config::Settings`].
//! * [`app`]: the edge: one module per mode wiring settings, engine, sinks, signals and
//!   the ending ([`app::pipeline`]).
//!
//! Hardening:
//! * [`limits`]: the bounds on everything a server or user controls (`docs/limits.md`).
//! * [`secrets`]: passwords from `pass_file=` and the environment, off the command line.
//! * [`output_guard`]: output files checked against the inputs and each other before
//!   a run, so an output never destroys an input.

pub mod app;
pub mod capacity;
pub mod cli;
pub mod compare;
pub mod compliance;
pub mod config;
pub mod control;
pub mod conversation;
pub mod duration;
pub mod engine;
pub mod exit;
pub mod fit;
pub mod imap;
pub mod limits;
pub mod lmtp;
pub mod mail;
pub mod metrics;
pub mod net;
pub mod ops;
pub mod output_guard;
pub mod pop3;
pub mod profile;
pub mod quirks;
pub mod report;
pub mod sasl;
#[cfg(test)]
mod schema_drift;
pub mod scripted;
pub mod secrets;
pub mod shard;
pub mod slo;
pub mod states;
pub mod summary;
pub mod text;
pub mod tracking;
pub mod usage;
pub mod users;
