//! A POP3 client of one user: log in, STAT, LIST, UIDL, RETR what is new (DELE unless the client
//! keeps mail), QUIT. Counted in ImapTest's columns (see [`super::ClientSummary`]).

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Instant;

use super::sessions::JobReceiver;
use super::user::UserShared;
use super::{Ctx, SessionTally};
use crate::config::Mech;
use crate::lmtp::parse_marker;
use crate::metrics::{DeliveryEvent, ErrorKind, Event, Outcome, SkipReason};
use crate::ops::{Op, Pop3Command, Server};
use crate::pop3::{Pop3Client, Pop3Error};
use crate::profile::schedule::Action;
use crate::sasl::Credentials;

struct Session {
    ctx: Arc<Ctx>,
    user: Arc<UserShared>,
    client: u16,
    keep: bool,
    conn: Option<Pop3Client>,
    /// UIDLs downloaded in earlier sessions (kept mail is not downloaded again).
    downloaded: HashSet<String>,
    tally: SessionTally,
    /// Actions skipped so far (an action that added none was done).
    skips: u64,
}

/// What a POP3 client keeps between its sessions (see [`super::sessions`]).
#[derive(Debug, Default)]
pub(super) struct Memory {
    /// UIDLs downloaded and kept on the server.
    downloaded: HashSet<String>,
}

/// Runs the client's session(s) until the job channel closes; returns what the next
/// session of this client starts from.
pub(super) async fn run(
    ctx: Arc<Ctx>,
    user: Arc<UserShared>,
    client: u16,
    mut jobs: JobReceiver,
    memory: Option<Memory>,
) -> Memory {
    let keep = ctx.profile.clients[client as usize].pop3_keep;
    let mut session = Session {
        ctx,
        user,
        client,
        keep,
        conn: None,
        downloaded: memory.unwrap_or_default().downloaded,
        tally: SessionTally::default(),
        skips: 0,
    };
    while let Some(job) = jobs.recv().await {
        if session.ctx.stopping_now() {
            session.ctx.skip_remaining(&mut jobs);
            break;
        }
        let started = Instant::now();
        let errors = session.tally.errors;
        let skips = session.skips;
        let action = job.action.action;
        match action {
            Action::Login { .. } => Box::pin(session.login()).await,
            Action::CheckMail => Box::pin(session.check_mail()).await,
            Action::Logout => Box::pin(session.logout(job.intended)).await,
            // The scheduler gives mail actions to IMAP clients only.
            _ => session.skip(SkipReason::SessionDown),
        }
        session.ctx.done_unless_skipped(skips, session.skips);
        if session.skips == skips {
            let ok = session.tally.errors == errors;
            session.ctx.action_row(&action, ok, job.intended, started);
        }
    }
    // The run ended with the session open: end it properly.
    Box::pin(session.logout(Instant::now())).await;
    Memory {
        downloaded: session.downloaded,
    }
}

impl Session {
    fn skip(&mut self, reason: SkipReason) {
        self.skips += 1;
        self.ctx.skip(reason);
    }

    /// Records the commands the client logged since the last call.
    fn record(&mut self, conn: &mut Pop3Client) {
        self.tally.commands += self.ctx.timed(self.client, conn.timings());
    }

    fn fail(&mut self, doing: &str, e: &Pop3Error) {
        let connection = self.conn.as_ref().map(Pop3Client::id);
        self.ctx.error(
            pop3_error_kind(e),
            &self.user.name,
            connection,
            format!("POP3 {doing} failed: {e}"),
            e.err_line().map(str::to_owned),
        );
        self.tally.errors += 1;
    }

    /// Closes the connection after a failure and ends the session.
    fn drop_connection(&mut self) {
        if let Some(mut conn) = self.conn.take() {
            self.add_bytes(&mut conn);
            self.closed();
        }
    }

    fn add_bytes(&mut self, conn: &mut Pop3Client) {
        let stream = conn.stream();
        self.tally.bytes_in += stream.bytes_in();
        self.tally.bytes_out += stream.bytes_out();
    }

    fn closed(&mut self) {
        self.ctx.connection_closed();
        self.user.session_closed(&self.ctx.metrics.gauges);
        self.tally.end(&self.ctx, &self.user, self.client, "pop3");
    }

    async fn login(&mut self) {
        if self.conn.is_some() {
            return;
        }
        let Some(endpoint) = self.ctx.endpoints.pop3.clone() else {
            self.skip(SkipReason::NoServer);
            return;
        };
        self.tally.begin();
        self.tally.slot = self.ctx.session_slot().await;
        let started = Instant::now();
        let id = self.ctx.connection_id();
        let mut conn = match Pop3Client::connect(&endpoint, id, &self.ctx.pop3_options).await {
            Ok(conn) => conn,
            Err(e) => {
                self.ctx
                    .metrics
                    .connect_failed(Server::Pop3, e.failed_phase(), started);
                self.fail("connect", &e);
                self.tally.end(&self.ctx, &self.user, self.client, "pop3");
                return;
            }
        };
        self.ctx.connection_opened();
        self.user.session_opened(&self.ctx.metrics.gauges);
        self.ctx.counters[self.client as usize]
            .sessions
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);

        let result = match self.ctx.mech {
            Mech::Command => conn.user_pass(&self.user.name, &self.user.password).await,
            Mech::Sasl(mech) => {
                let creds = Credentials {
                    authcid: self.user.name.clone(),
                    password: self.user.password.to_string(),
                    authzid: None,
                };
                conn.auth(mech.name(), creds, &self.ctx.scram_cache).await
            }
        };
        self.record(&mut conn);
        self.conn = Some(conn);
        match result {
            Ok(_) => {}
            Err(e) => {
                self.fail("login", &e);
                self.drop_connection();
            }
        }
    }

    async fn check_mail(&mut self) {
        let Some(mut conn) = self.conn.take() else {
            self.skip(SkipReason::SessionDown);
            return;
        };
        let result = self.download(&mut conn).await;
        self.record(&mut conn);
        self.conn = Some(conn);
        if let Err((doing, e)) = result {
            self.fail(&doing, &e);
            if !e.is_recoverable() {
                self.drop_connection();
            }
        }
    }

    async fn download(&mut self, conn: &mut Pop3Client) -> Result<(), (String, Pop3Error)> {
        // Like desktop clients: the size of the maildrop, the message sizes, then UIDs.
        let stat = conn.stat().await.map_err(|e| ("STAT".to_owned(), e))?;
        if stat.count > 0 {
            conn.list().await.map_err(|e| ("LIST".to_owned(), e))?;
        }
        let listing = conn.uidl().await.map_err(|e| ("UIDL".to_owned(), e))?;
        for entry in listing {
            if self.downloaded.contains(&entry.uid) {
                continue;
            }
            let message = conn
                .retr(entry.msg)
                .await
                .map_err(|e| (format!("RETR {}", entry.msg), e))?;
            if let Some(msg) = self.ctx.marker_msg(&self.user, parse_marker(&message.data)) {
                let mut mail = self.user.mail();
                // UID 0: POP3 has no IMAP UID; the message counts as seen.
                let latency = mail.seen(msg, 0, Instant::now());
                if !self.keep {
                    mail.forget(msg);
                }
                drop(mail);
                if let Some(latency) = latency {
                    self.ctx
                        .metrics
                        .send(Event::Delivery(DeliveryEvent::Seen { latency }));
                }
            }
            if self.keep {
                self.downloaded.insert(entry.uid);
            } else {
                conn.dele(entry.msg)
                    .await
                    .map_err(|e| (format!("DELE {}", entry.msg), e))?;
            }
        }
        Ok(())
    }

    async fn logout(&mut self, intended: Instant) {
        let Some(mut conn) = self.conn.take() else {
            return;
        };
        self.add_bytes(&mut conn);
        self.record(&mut conn);
        let started = Instant::now();
        let id = conn.id();
        let quit = Op::Pop3(Pop3Command::Quit);
        match conn.quit().await {
            Ok(_) => {
                self.ctx
                    .command_done(self.client, quit, Outcome::Ok, intended, started);
                self.tally.commands += 1;
            }
            Err(e) => {
                self.ctx
                    .command_done(self.client, quit, outcome_of(&e), intended, started);
                self.tally.commands += 1;
                self.ctx.error(
                    pop3_error_kind(&e),
                    &self.user.name,
                    Some(id),
                    format!("POP3 QUIT failed: {e}"),
                    e.err_line().map(str::to_owned),
                );
                self.tally.errors += 1;
            }
        }
        self.closed();
    }
}

/// The error kind of a POP3 failure.
fn pop3_error_kind(e: &Pop3Error) -> ErrorKind {
    match e {
        Pop3Error::Err { .. } => ErrorKind::CommandFailed,
        Pop3Error::Sasl { .. } => ErrorKind::LoginFailed,
        Pop3Error::Io { .. } => ErrorKind::Disconnected,
        Pop3Error::Connect(_) => ErrorKind::ConnectFailed,
        Pop3Error::Deadline { .. } => ErrorKind::NoReply,
        Pop3Error::TooLarge { .. } | Pop3Error::TooManyLines { .. } => ErrorKind::LimitExceeded,
        Pop3Error::Malformed { .. } | Pop3Error::BadGreeting(_) => ErrorKind::Protocol,
        Pop3Error::InvalidArgument(_) => ErrorKind::Other,
    }
}

fn outcome_of(e: &Pop3Error) -> Outcome {
    if e.err_line().is_some() {
        Outcome::No
    } else {
        Outcome::Failed
    }
}
