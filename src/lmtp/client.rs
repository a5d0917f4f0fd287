//! A sequential LMTP client (RFC 2033) on a [`LineStream`]: greeting, LHLO, STARTTLS
//! (RFC 3207), and mail transactions with one final reply per accepted recipient.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use tokio::io::{AsyncRead, AsyncWrite};

use super::reply::{self, Extensions, Reply};
use crate::config::TlsMode;
use crate::net::lines::{self, DEFAULT_MAX_LINE, LineError, LineStream, quote};
use crate::net::{Endpoint, NetError, PhaseTimes, Transport};
use crate::ops::{LmtpCommand, Op, Outcome, Phase, Server, TimingLog};

/// What went wrong on an LMTP connection. Every message names what was being done and
/// quotes the server's reply or line.
#[derive(Debug, thiserror::Error)]
pub enum LmtpError {
    #[error("{doing}: {source}")]
    Io { doing: String, source: LineError },
    #[error("{doing}: malformed reply ({reason}): {line:?}")]
    Malformed {
        doing: String,
        reason: String,
        line: String,
    },
    #[error("{doing}: reply has more than {limit} lines")]
    TooManyLines { doing: String, limit: usize },
    #[error("{doing}: no complete reply within {limit:?} (timeout= bounds the whole reply)")]
    Deadline { doing: String, limit: Duration },
    #[error("{doing} rejected: {reply}")]
    Rejected { doing: String, reply: Reply },
    #[error("server does not offer STARTTLS (LHLO reply: {0})")]
    NoStartTls(String),
    #[error("invalid address or command {0:?}: contains CR, LF or NUL")]
    InvalidArgument(String),
    #[error("{0}")]
    Connect(#[from] NetError),
    #[error("{0}")]
    Protocol(String),
}

impl LmtpError {
    /// The connection phase a failed [`LmtpClient::connect`] was in.
    pub fn failed_phase(&self) -> Phase {
        match self {
            LmtpError::Connect(e) if e.is_tls() => Phase::Tls,
            LmtpError::Connect(_) => Phase::Connect,
            _ => Phase::Greeting,
        }
    }
}

impl From<lines::OpenError> for LmtpError {
    fn from(e: lines::OpenError) -> Self {
        match e {
            lines::OpenError::Connect(e) => LmtpError::Connect(e),
            lines::OpenError::Rawlog(source) => LmtpError::Io {
                doing: "opening the rawlog".into(),
                source,
            },
        }
    }
}

impl LmtpError {
    /// True if the connection is still in a known state after this error (the server
    /// refused something; no transaction is open).
    pub fn is_recoverable(&self) -> bool {
        matches!(
            self,
            LmtpError::Rejected { .. } | LmtpError::InvalidArgument(_)
        )
    }

    /// The server reply behind the error, if any.
    pub fn reply(&self) -> Option<&Reply> {
        match self {
            LmtpError::Rejected { reply, .. } => Some(reply),
            _ => None,
        }
    }
}

/// What the greeting is called in errors.
const GREETING: &str = "reading the greeting";

/// Connection options shared by every LMTP connection of a run.
#[derive(Debug, Clone)]
pub struct LmtpOptions {
    /// Limit on every read and write, and on each whole reply (`timeout=`).
    pub timeout: Duration,
    pub rawlog_dir: Option<PathBuf>,
    /// The name sent with LHLO.
    pub lhlo_name: String,
    /// Pipeline MAIL, RCPT and DATA when the server offers PIPELINING.
    pub pipelining: bool,
    /// Longest reply line accepted, CRLF excluded.
    pub max_line: usize,
    /// Most lines accepted in one reply.
    pub max_reply_lines: usize,
}

impl Default for LmtpOptions {
    fn default() -> Self {
        LmtpOptions {
            timeout: Duration::from_secs(30),
            rawlog_dir: None,
            lhlo_name: "localhost".to_owned(),
            pipelining: true,
            max_line: DEFAULT_MAX_LINE,
            max_reply_lines: 1000,
        }
    }
}

/// Where the time of one delivery went.
#[derive(Debug, Clone, Copy)]
pub struct DeliveryTimings {
    /// When MAIL FROM was sent.
    pub started: Instant,
    /// From MAIL FROM to the last RCPT reply.
    pub envelope: Duration,
    /// From DATA to the server's 354 (zero when pipelined: DATA left with the envelope).
    pub data_go_ahead: Duration,
    /// From the end of the message (the final `.`) to the first recipient's reply.
    pub first_reply: Duration,
    /// From the end of the message to the last recipient's reply.
    pub last_reply: Duration,
    /// From MAIL FROM to the last reply.
    pub total: Duration,
}

/// The outcome of one mail transaction.
#[derive(Debug, Clone)]
pub struct Delivery {
    /// One entry per recipient, in the order given: the reply after the message for a
    /// recipient accepted at RCPT, else the RCPT reply that refused it.
    pub per_recipient: Vec<(String, Reply)>,
    /// The RCPT reply of each recipient, in the same order.
    pub rcpt: Vec<Reply>,
    /// True if the message was sent (at least one recipient was accepted).
    pub data_sent: bool,
    pub timings: DeliveryTimings,
}

impl Delivery {
    /// How many recipients got the message (2xx final reply).
    pub fn delivered(&self) -> usize {
        self.per_recipient
            .iter()
            .filter(|(_, r)| r.is_positive())
            .count()
    }

    /// True if every recipient got the message.
    pub fn all_delivered(&self) -> bool {
        self.delivered() == self.per_recipient.len()
    }

    /// The final reply for `recipient`.
    pub fn reply_for(&self, recipient: &str) -> Option<&Reply> {
        self.per_recipient
            .iter()
            .find(|(r, _)| r == recipient)
            .map(|(_, reply)| reply)
    }
}

/// A connected LMTP client, past LHLO (and STARTTLS when asked for).
#[derive(Debug)]
pub struct LmtpClient<S = Transport> {
    stream: LineStream<S>,
    id: u64,
    options: LmtpOptions,
    greeting: Reply,
    lhlo: Reply,
    extensions: Extensions,
    timings: TimingLog,
}

impl LmtpClient<Transport> {
    /// Connects, reads the 220 greeting, sends LHLO and, when the endpoint's mode is
    /// STARTTLS, upgrades and repeats LHLO. `id` names the rawlog (`rawlog.<id>`).
    pub async fn connect(
        endpoint: &Endpoint,
        id: u64,
        options: &LmtpOptions,
    ) -> Result<Self, LmtpError> {
        let mut times = PhaseTimes::default();
        let stream = LineStream::open(
            endpoint,
            id,
            options.rawlog_dir.as_deref(),
            options.timeout,
            &mut times,
        )
        .await?;
        let mut client = Self::start(stream, id, options).await?;
        client.timings.phases(Server::Lmtp, &times);
        if endpoint.mode() == TlsMode::StartTls {
            return client.start_tls(endpoint).await;
        }
        Ok(client)
    }

    /// One delivery on its own connection, as ImapTest's profile mode does: connect, LHLO,
    /// [`Self::deliver`], QUIT. A failed QUIT after the replies is ignored: the
    /// message was already delivered.
    pub async fn deliver_once(
        endpoint: &Endpoint,
        id: u64,
        options: &LmtpOptions,
        from: &str,
        recipients: &[&str],
        message: &[u8],
    ) -> Result<Delivery, LmtpError> {
        let mut client = Self::connect(endpoint, id, options).await?;
        let delivery = client.deliver(from, recipients, message).await?;
        let _ = client.quit().await;
        Ok(delivery)
    }

    /// `STARTTLS`, the TLS handshake and a new LHLO (RFC 3207 §4.2: what was learned
    /// before TLS is discarded). Bytes after the 220 before the handshake are an error.
    pub async fn start_tls(mut self, endpoint: &Endpoint) -> Result<Self, LmtpError> {
        if !self.extensions.has("STARTTLS") {
            return Err(LmtpError::NoStartTls(self.lhlo.to_string()));
        }
        let started = Instant::now();
        let reply = self.command("STARTTLS").await;
        self.log(LmtpCommand::StartTls, started, &reply);
        let reply = reply?;
        if reply.code != 220 {
            return Err(LmtpError::Rejected {
                doing: "STARTTLS".into(),
                reply,
            });
        }
        let started = Instant::now();
        let upgraded = self.stream.start_tls(endpoint).await;
        self.timings.tls(Server::Lmtp, started, upgraded.is_ok());
        self.stream = upgraded.map_err(|source| LmtpError::Io {
            doing: "STARTTLS".into(),
            source,
        })?;
        self.extensions = Extensions::default();
        self.lhlo().await?;
        Ok(self)
    }

    pub fn is_tls(&self) -> bool {
        self.stream.is_tls()
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> LmtpClient<S> {
    /// Runs the start of a session on an open stream: the greeting and LHLO.
    pub async fn start(
        stream: LineStream<S>,
        id: u64,
        options: &LmtpOptions,
    ) -> Result<Self, LmtpError> {
        let mut client = LmtpClient {
            stream,
            id,
            options: options.clone(),
            greeting: reply::build(0, Vec::new()),
            lhlo: reply::build(0, Vec::new()),
            extensions: Extensions::default(),
            timings: TimingLog::default(),
        };
        let waiting = Instant::now();
        let greeting = client.read_reply(GREETING).await?;
        client.timings.done(
            Op::Phase(Server::Lmtp, Phase::Greeting),
            Outcome::Ok,
            waiting,
        );
        if greeting.code != 220 {
            return Err(LmtpError::Rejected {
                doing: "greeting".into(),
                reply: greeting,
            });
        }
        client.greeting = greeting;
        client.lhlo().await?;
        Ok(client)
    }

    pub fn id(&self) -> u64 {
        self.id
    }

    /// The commands sent and connection phases passed since the last call.
    pub fn timings(&mut self) -> &mut TimingLog {
        &mut self.timings
    }

    /// Logs a command that got `reply` (or failed).
    fn log(&mut self, command: LmtpCommand, started: Instant, reply: &Result<Reply, LmtpError>) {
        let outcome = match reply {
            Ok(r) => reply_outcome(r),
            Err(LmtpError::Rejected { .. }) => Outcome::No,
            Err(_) => Outcome::Failed,
        };
        self.timings.done(Op::Lmtp(command), outcome, started);
    }

    /// The server's 220 greeting.
    pub fn greeting(&self) -> &Reply {
        &self.greeting
    }

    /// The extensions offered in the last LHLO reply.
    pub fn extensions(&self) -> &Extensions {
        &self.extensions
    }

    pub fn stream(&mut self) -> &mut LineStream<S> {
        &mut self.stream
    }

    /// Sends `LHLO <name>` and stores the extensions offered.
    pub async fn lhlo(&mut self) -> Result<&Extensions, LmtpError> {
        let line = format!("LHLO {}", self.options.lhlo_name);
        let started = Instant::now();
        let reply = self.command(&line).await;
        self.log(LmtpCommand::Lhlo, started, &reply);
        let reply = reply?;
        if reply.code != 250 {
            return Err(LmtpError::Rejected { doing: line, reply });
        }
        self.extensions = Extensions::from_lhlo(&reply);
        self.lhlo = reply;
        Ok(&self.extensions)
    }

    /// Sends one command line (without CRLF) and reads its reply, whatever the code.
    pub async fn command(&mut self, line: &str) -> Result<Reply, LmtpError> {
        check_line(line)?;
        self.stream
            .send(format!("{line}\r\n").as_bytes(), None)
            .await
            .map_err(|source| LmtpError::Io {
                doing: format!("sending {line}"),
                source,
            })?;
        self.read_reply(line).await
    }

    /// Reads one complete reply; `doing` names the command it answers, for errors
    /// (`GREETING` for the greeting). Each read waits at most the timeout, and so does
    /// the whole reply: a server dripping bytes cannot keep it open.
    async fn read_reply(&mut self, doing: &str) -> Result<Reply, LmtpError> {
        let limit = self.options.timeout;
        tokio::time::timeout(limit, self.read_reply_lines(doing))
            .await
            .unwrap_or_else(|_| {
                Err(LmtpError::Deadline {
                    doing: doing.to_owned(),
                    limit,
                })
            })
    }

    async fn read_reply_lines(&mut self, doing: &str) -> Result<Reply, LmtpError> {
        let reading = if doing == GREETING {
            GREETING.to_owned()
        } else {
            format!("reading the reply to {doing}")
        };
        let mut code = None;
        let mut lines = Vec::new();
        loop {
            if lines.len() >= self.options.max_reply_lines {
                return Err(LmtpError::TooManyLines {
                    doing: doing.to_owned(),
                    limit: self.options.max_reply_lines,
                });
            }
            let raw = self
                .stream
                .read_line(self.options.max_line)
                .await
                .map_err(|source| LmtpError::Io {
                    doing: reading.clone(),
                    source,
                })?;
            let parsed = reply::parse_line(raw).map_err(|fault| LmtpError::Malformed {
                doing: doing.to_owned(),
                reason: fault.to_string(),
                line: quote(raw),
            })?;
            match code {
                Some(c) if c != parsed.code => {
                    return Err(LmtpError::Malformed {
                        doing: doing.to_owned(),
                        reason: format!("code changes from {c} within a multi-line reply"),
                        line: quote(raw),
                    });
                }
                _ => code = Some(parsed.code),
            }
            lines.push(String::from_utf8_lossy(parsed.text).into_owned());
            if parsed.last {
                return Ok(reply::build(parsed.code, lines));
            }
        }
    }

    /// One mail transaction: `MAIL FROM`, `RCPT TO` per recipient, `DATA`, the
    /// dot-stuffed message, then one reply per accepted recipient. With PIPELINING the
    /// envelope and DATA leave in one write.
    ///
    /// `from` and each recipient are addresses with or without the angle brackets
    /// (`""` or `"<>"` is the null sender). Refusals of single recipients are part of
    /// the [`Delivery`]; a refused `MAIL FROM` or `DATA` is [`LmtpError::Rejected`]
    /// (the transaction is then reset and the connection stays usable). If no recipient
    /// is accepted, the transaction is reset and no message is sent.
    pub async fn deliver(
        &mut self,
        from: &str,
        recipients: &[&str],
        message: &[u8],
    ) -> Result<Delivery, LmtpError> {
        let started = Instant::now();
        let result = self.deliver_untimed(from, recipients, message).await;
        let outcome = match &result {
            Ok(d) if d.delivered() > 0 => Outcome::Ok,
            Ok(_) | Err(LmtpError::Rejected { .. }) => Outcome::No,
            Err(_) => Outcome::Failed,
        };
        self.timings
            .done(Op::Lmtp(LmtpCommand::Transaction), outcome, started);
        result
    }

    async fn deliver_untimed(
        &mut self,
        from: &str,
        recipients: &[&str],
        message: &[u8],
    ) -> Result<Delivery, LmtpError> {
        for addr in std::iter::once(&from).chain(recipients) {
            check_line(addr)?;
        }
        if recipients.is_empty() {
            return Err(LmtpError::Protocol(
                "a delivery needs at least one recipient".into(),
            ));
        }
        let mut mail = format!("MAIL FROM:{}", bracket(from));
        if self.extensions.has("SIZE") {
            mail.push_str(&format!(" SIZE={}", message.len()));
        }
        if self.extensions.has("8BITMIME") && message.iter().any(|b| *b >= 0x80) {
            mail.push_str(" BODY=8BITMIME");
        }
        let rcpt_lines: Vec<String> = recipients
            .iter()
            .map(|r| format!("RCPT TO:{}", bracket(r)))
            .collect();
        let pipelined = self.options.pipelining && self.extensions.has("PIPELINING");

        let started = Instant::now();
        let mut rcpt = Vec::with_capacity(recipients.len());
        let data_reply;
        let envelope;
        let data_go_ahead;
        if pipelined {
            self.stream.queue(format!("{mail}\r\n").as_bytes(), None);
            for line in &rcpt_lines {
                self.stream.queue(format!("{line}\r\n").as_bytes(), None);
            }
            self.stream.queue(b"DATA\r\n", None);
            self.stream.flush().await.map_err(|source| LmtpError::Io {
                doing: format!("sending {mail}"),
                source,
            })?;
            let mail_reply = self.read_reply(&mail).await?;
            self.timings.done(
                Op::Lmtp(LmtpCommand::Mail),
                reply_outcome(&mail_reply),
                started,
            );
            for line in &rcpt_lines {
                let reply = self.read_reply(line).await?;
                self.timings
                    .done(Op::Lmtp(LmtpCommand::Rcpt), reply_outcome(&reply), started);
                rcpt.push(reply);
            }
            envelope = started.elapsed();
            data_reply = self.read_reply("DATA").await?;
            data_go_ahead = Duration::ZERO;
            let accepted = rcpt.iter().any(Reply::is_positive);
            if data_reply.code == 354 && !(mail_reply.is_positive() && accepted) {
                // The server wants a message for an envelope that failed here (e.g. an
                // earlier transaction is still open). Ending the data would deliver
                // something; closing the connection aborts the transaction instead.
                self.stream.shutdown().await;
                return Err(LmtpError::Protocol(format!(
                    "{mail}: server accepted DATA for an envelope that failed \
                     (MAIL: {mail_reply}; DATA: {data_reply}); connection closed"
                )));
            }
            if !mail_reply.is_positive() {
                self.reset_after_failure().await?;
                return Err(LmtpError::Rejected {
                    doing: mail,
                    reply: mail_reply,
                });
            }
            if !accepted {
                self.reset_after_failure().await?;
                return Ok(refused_delivery(recipients, rcpt, started, envelope));
            }
        } else {
            let mail_reply = self.command(&mail).await;
            self.log(LmtpCommand::Mail, started, &mail_reply);
            let mail_reply = mail_reply?;
            if !mail_reply.is_positive() {
                return Err(LmtpError::Rejected {
                    doing: mail,
                    reply: mail_reply,
                });
            }
            for line in &rcpt_lines {
                let sent = Instant::now();
                let reply = self.command(line).await;
                self.log(LmtpCommand::Rcpt, sent, &reply);
                rcpt.push(reply?);
            }
            envelope = started.elapsed();
            if !rcpt.iter().any(Reply::is_positive) {
                self.reset_after_failure().await?;
                return Ok(refused_delivery(recipients, rcpt, started, envelope));
            }
            let sent = Instant::now();
            data_reply = self.command("DATA").await?;
            data_go_ahead = sent.elapsed();
        }
        if data_reply.code != 354 {
            self.reset_after_failure().await?;
            return Err(LmtpError::Rejected {
                doing: "DATA".into(),
                reply: data_reply,
            });
        }

        self.stream.queue_with(|out| encode_data(out, message));
        self.stream.flush().await.map_err(|source| LmtpError::Io {
            doing: "sending the message".into(),
            source,
        })?;
        let data_end = Instant::now();
        let mut per_recipient = Vec::with_capacity(recipients.len());
        let mut first_reply = None;
        for (recipient, rcpt_reply) in recipients.iter().zip(&rcpt) {
            let reply = if rcpt_reply.is_positive() {
                let doing = format!("end of DATA (reply for {})", bracket(recipient));
                let reply = self.read_reply(&doing).await?;
                first_reply.get_or_insert_with(|| data_end.elapsed());
                reply
            } else {
                rcpt_reply.clone()
            };
            per_recipient.push(((*recipient).to_owned(), reply));
        }
        let last_reply = data_end.elapsed();
        let outcome = if per_recipient.iter().any(|(_, r)| r.is_positive()) {
            Outcome::Ok
        } else {
            Outcome::No
        };
        self.timings
            .done(Op::Lmtp(LmtpCommand::Data), outcome, data_end);
        Ok(Delivery {
            per_recipient,
            rcpt,
            data_sent: true,
            timings: DeliveryTimings {
                started,
                envelope,
                data_go_ahead,
                first_reply: first_reply.unwrap_or_default(),
                last_reply,
                total: started.elapsed(),
            },
        })
    }

    /// RSET after a refused MAIL/DATA or when no recipient was accepted.
    async fn reset_after_failure(&mut self) -> Result<(), LmtpError> {
        let reply = self.rset().await?;
        if reply.is_positive() {
            Ok(())
        } else {
            Err(LmtpError::Rejected {
                doing: "RSET".into(),
                reply,
            })
        }
    }

    /// `RSET`: abandons the current transaction.
    pub async fn rset(&mut self) -> Result<Reply, LmtpError> {
        let started = Instant::now();
        let reply = self.command("RSET").await;
        self.log(LmtpCommand::Rset, started, &reply);
        reply
    }

    /// `NOOP`.
    pub async fn noop(&mut self) -> Result<Reply, LmtpError> {
        self.command("NOOP").await
    }

    /// `QUIT`, then closes the write side. The server's 221 is returned.
    pub async fn quit(mut self) -> Result<Reply, LmtpError> {
        let reply = self.command("QUIT").await?;
        self.stream.shutdown().await;
        if reply.code != 221 {
            return Err(LmtpError::Rejected {
                doing: "QUIT".into(),
                reply,
            });
        }
        Ok(reply)
    }
}

fn refused_delivery(
    recipients: &[&str],
    rcpt: Vec<Reply>,
    started: Instant,
    envelope: Duration,
) -> Delivery {
    Delivery {
        per_recipient: recipients
            .iter()
            .map(|r| (*r).to_owned())
            .zip(rcpt.iter().cloned())
            .collect(),
        rcpt,
        data_sent: false,
        timings: DeliveryTimings {
            started,
            envelope,
            data_go_ahead: Duration::ZERO,
            first_reply: Duration::ZERO,
            last_reply: Duration::ZERO,
            total: started.elapsed(),
        },
    }
}

/// 2xx/3xx is OK, anything else a refusal.
fn reply_outcome(reply: &Reply) -> Outcome {
    if reply.is_positive() || reply.code / 100 == 3 {
        Outcome::Ok
    } else {
        Outcome::No
    }
}

/// `<addr>`; already-bracketed addresses are kept, `""` is the null path `<>`.
fn bracket(addr: &str) -> String {
    if addr.starts_with('<') && addr.ends_with('>') {
        addr.to_owned()
    } else {
        format!("<{addr}>")
    }
}

/// Refuses text that would end the command line early or smuggle in another command.
fn check_line(text: &str) -> Result<(), LmtpError> {
    if text.bytes().any(|b| matches!(b, b'\r' | b'\n' | 0)) {
        Err(LmtpError::InvalidArgument(text.to_owned()))
    } else {
        Ok(())
    }
}

/// Appends the DATA encoding of `message` to `out`: every line ends in CRLF (bare LF
/// is completed), a line starting with `.` gets another `.` (RFC 5321 §4.5.2), an
/// unterminated last line is terminated, and the final `.` line follows.
pub fn encode_data(out: &mut Vec<u8>, message: &[u8]) {
    out.reserve(message.len() + message.len() / 512 + 8);
    let mut rest = message;
    while !rest.is_empty() {
        if rest[0] == b'.' {
            out.push(b'.');
        }
        match memchr::memchr(b'\n', rest) {
            Some(i) => {
                let line = &rest[..i];
                out.extend_from_slice(line);
                if line.last() != Some(&b'\r') {
                    out.push(b'\r');
                }
                out.push(b'\n');
                rest = &rest[i + 1..];
            }
            None => {
                out.extend_from_slice(rest);
                out.extend_from_slice(b"\r\n");
                rest = &[];
            }
        }
    }
    out.extend_from_slice(b".\r\n");
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::SocketAddr;
    use tokio::io::{AsyncReadExt, AsyncWriteExt, DuplexStream, duplex};

    fn encoded(message: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        encode_data(&mut out, message);
        out
    }

    #[test]
    fn dot_stuffing_and_line_ends() {
        assert_eq!(encoded(b""), b".\r\n");
        assert_eq!(encoded(b"a\r\n"), b"a\r\n.\r\n");
        assert_eq!(encoded(b"a"), b"a\r\n.\r\n");
        assert_eq!(encoded(b"a\nb\n"), b"a\r\nb\r\n.\r\n");
        assert_eq!(
            encoded(b"S: x\r\n\r\n.\r\n..two\r\n. dot\r\nend."),
            b"S: x\r\n\r\n..\r\n...two\r\n.. dot\r\nend.\r\n.\r\n"
        );
        assert_eq!(encoded(b".first"), b"..first\r\n.\r\n");
    }

    fn addr() -> SocketAddr {
        "127.0.0.1:24".parse().unwrap()
    }

    /// A scripted server: sends `script` (all of it, at once) and collects what the
    /// client writes until the client closes.
    fn scripted(script: &[u8]) -> (LineStream<DuplexStream>, tokio::task::JoinHandle<Vec<u8>>) {
        let (client, mut server) = duplex(1 << 20);
        let script = script.to_vec();
        let handle = tokio::spawn(async move {
            let _ = server.write_all(&script).await;
            let _ = server.shutdown().await;
            let mut got = Vec::new();
            let _ = server.read_to_end(&mut got).await;
            got
        });
        let stream = LineStream::new(client, addr(), None, Duration::from_secs(5));
        (stream, handle)
    }

    const HELLO: &[u8] =
        b"220 lmtp ready\r\n250-localhost\r\n250-PIPELINING\r\n250 ENHANCEDSTATUSCODES\r\n";

    async fn start(script: &[u8]) -> Result<LmtpClient<DuplexStream>, LmtpError> {
        let (stream, _server) = scripted(script);
        LmtpClient::start(stream, 1, &LmtpOptions::default()).await
    }

    #[tokio::test]
    async fn greeting_and_lhlo() {
        let c = start(HELLO).await.unwrap();
        assert_eq!(c.greeting().text(), "lmtp ready");
        assert!(c.extensions().has("PIPELINING"));
        assert!(c.extensions().has("ENHANCEDSTATUSCODES"));
        assert!(!c.extensions().has("STARTTLS"));
    }

    #[tokio::test(start_paused = true)]
    async fn a_dripping_reply_ends_at_the_timeout() {
        let (client, mut server) = duplex(1 << 16);
        tokio::spawn(async move {
            for b in b"220 a greeting that takes a minute\r\n" {
                if server.write_all(&[*b]).await.is_err() {
                    return;
                }
                tokio::time::sleep(Duration::from_secs(2)).await;
            }
            std::future::pending::<()>().await;
        });
        let stream = LineStream::new(client, addr(), None, Duration::from_secs(5));
        let options = LmtpOptions {
            timeout: Duration::from_secs(5),
            ..LmtpOptions::default()
        };
        let err = LmtpClient::start(stream, 1, &options).await.unwrap_err();
        assert_eq!(
            err.to_string(),
            "reading the greeting: no complete reply within 5s (timeout= bounds the whole reply)"
        );
    }

    #[tokio::test]
    async fn garbage_codes_are_errors() {
        for script in [
            &b"hello\r\n"[..],
            b"2x0 ready\r\n",
            b"220ready\r\n",
            b"+OK ready\r\n",
            b"\r\n",
            b"999 ready\r\n",
        ] {
            let err = start(script).await.unwrap_err();
            assert!(matches!(err, LmtpError::Malformed { .. }), "{err}");
            assert!(err.to_string().contains("reading the greeting"), "{err}");
        }
        let err = start(b"220-a\r\n221 b\r\n").await.unwrap_err();
        assert!(err.to_string().contains("code changes"), "{err}");
    }

    #[tokio::test]
    async fn closed_before_greeting() {
        let err = start(b"").await.unwrap_err();
        assert_eq!(
            err.to_string(),
            "reading the greeting: connection closed by server"
        );
    }

    #[tokio::test]
    async fn refused_greeting() {
        let err = start(b"554 5.3.2 go away\r\n").await.unwrap_err();
        assert_eq!(err.to_string(), "greeting rejected: 554 5.3.2 go away");
    }

    #[tokio::test]
    async fn overlong_line_is_an_error() {
        let mut script = b"220-".to_vec();
        script.extend(std::iter::repeat_n(b'x', DEFAULT_MAX_LINE + 10));
        script.extend_from_slice(b"\r\n220 ok\r\n");
        let err = start(&script).await.unwrap_err();
        assert!(
            matches!(
                &err,
                LmtpError::Io {
                    source: LineError::TooLong { .. },
                    ..
                }
            ),
            "{err}"
        );
    }

    #[tokio::test]
    async fn multi_line_reply_cut_by_eof() {
        let err = start(b"220 ready\r\n250-localhost\r\n250-PIPELINING\r\n")
            .await
            .unwrap_err();
        assert!(
            matches!(
                &err,
                LmtpError::Io {
                    source: LineError::Closed,
                    ..
                }
            ),
            "{err}"
        );
        assert!(err.to_string().contains("LHLO localhost"), "{err}");
        let err = start(b"220 ready\r\n250-localhost\r\n250-PIPEL")
            .await
            .unwrap_err();
        assert!(
            matches!(
                &err,
                LmtpError::Io {
                    source: LineError::Truncated { .. },
                    ..
                }
            ),
            "{err}"
        );
    }

    #[tokio::test]
    async fn endless_multi_line_reply_is_bounded() {
        let mut script = b"220 ready\r\n".to_vec();
        for _ in 0..2000 {
            script.extend_from_slice(b"250-X\r\n");
        }
        let err = start(&script).await.unwrap_err();
        assert!(
            matches!(err, LmtpError::TooManyLines { limit: 1000, .. }),
            "{err}"
        );
    }

    #[tokio::test]
    async fn pipelined_delivery_one_reply_per_accepted_recipient() {
        let mut script = HELLO.to_vec();
        script.extend_from_slice(
            b"250 2.1.0 OK\r\n250 2.1.5 OK\r\n550 5.1.1 <b> unknown\r\n250 2.1.5 OK\r\n\
              354 go\r\n250 2.0.0 <a> saved\r\n452 4.2.2 <c> over quota\r\n",
        );
        let (stream, server) = scripted(&script);
        let mut c = LmtpClient::start(stream, 1, &LmtpOptions::default())
            .await
            .unwrap();
        let d = c.deliver("", &["a", "b", "<c>"], b".hi\r\n").await.unwrap();
        assert!(d.data_sent);
        assert_eq!(d.delivered(), 1);
        assert_eq!(d.per_recipient[0].1.code, 250);
        assert_eq!(d.per_recipient[1].1.code, 550);
        assert_eq!(d.per_recipient[2].1.code, 452);
        assert_eq!(d.reply_for("<c>").unwrap().text(), "<c> over quota");
        assert_eq!(d.rcpt[2].code, 250);
        drop(c);
        let sent = server.await.unwrap();
        assert_eq!(
            String::from_utf8(sent).unwrap(),
            "LHLO localhost\r\nMAIL FROM:<>\r\nRCPT TO:<a>\r\nRCPT TO:<b>\r\nRCPT TO:<c>\r\n\
             DATA\r\n..hi\r\n.\r\n"
        );
    }

    #[tokio::test]
    async fn no_accepted_recipient_resets() {
        let mut script = HELLO.to_vec();
        script.extend_from_slice(
            b"250 OK\r\n550 5.1.1 no\r\n554 5.5.1 No valid recipients\r\n250 2.0.0 OK\r\n",
        );
        let (stream, server) = scripted(&script);
        let mut c = LmtpClient::start(stream, 1, &LmtpOptions::default())
            .await
            .unwrap();
        let d = c.deliver("<>", &["x"], b"m\r\n").await.unwrap();
        assert!(!d.data_sent);
        assert_eq!(d.delivered(), 0);
        assert_eq!(d.per_recipient[0].1.code, 550);
        drop(c);
        let sent = String::from_utf8(server.await.unwrap()).unwrap();
        assert!(sent.ends_with("DATA\r\nRSET\r\n"), "{sent}");
    }

    #[tokio::test]
    async fn missing_final_reply_is_an_error() {
        let mut script = HELLO.to_vec();
        script.extend_from_slice(b"250 OK\r\n250 OK\r\n250 OK\r\n354 go\r\n250 OK\r\n");
        let (stream, _server) = scripted(&script);
        let mut c = LmtpClient::start(stream, 1, &LmtpOptions::default())
            .await
            .unwrap();
        let err = c.deliver("", &["a", "b"], b"m\r\n").await.unwrap_err();
        assert!(
            err.to_string().contains("end of DATA (reply for <b>)"),
            "{err}"
        );
    }

    #[tokio::test]
    async fn rejected_mail_from_unpipelined() {
        let script = b"220 ready\r\n250 localhost\r\n451 4.3.0 try later\r\n";
        let (stream, server) = scripted(script);
        let mut c = LmtpClient::start(stream, 1, &LmtpOptions::default())
            .await
            .unwrap();
        let err = c.deliver("me@x", &["a"], b"m").await.unwrap_err();
        assert_eq!(
            err.to_string(),
            "MAIL FROM:<me@x> rejected: 451 4.3.0 try later"
        );
        assert!(err.is_recoverable());
        drop(c);
        let sent = String::from_utf8(server.await.unwrap()).unwrap();
        assert_eq!(sent, "LHLO localhost\r\nMAIL FROM:<me@x>\r\n");
    }

    #[tokio::test]
    async fn addresses_cannot_inject_commands() {
        let (stream, _server) = scripted(HELLO);
        let mut c = LmtpClient::start(stream, 1, &LmtpOptions::default())
            .await
            .unwrap();
        let err = c.deliver("", &["a>\r\nRSET"], b"m").await.unwrap_err();
        assert!(matches!(err, LmtpError::InvalidArgument(_)));
    }
    /// Random scripts built from reply fragments: every outcome is a value, never a
    /// panic or a hang.
    #[tokio::test]
    async fn random_replies_never_panic() {
        const PIECES: &[&[u8]] = &[
            b"220",
            b"250",
            b"354",
            b"550",
            b"999",
            b"2x0",
            b"-",
            b" ",
            b"\r\n",
            b"\n",
            b"\r",
            b"5.1.1",
            b"2.0.0 ",
            b"PIPELINING",
            b"STARTTLS",
            b".",
            b"\0",
            b"\xff\xfe",
            b"250-a\r\n",
            b"250 ok\r\n",
            b"220 hi\r\n",
            b"354 go\r\n",
        ];
        let mut seed: u64 = 0x9e37_79b9_7f4a_7c15;
        let mut next = move || {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed
        };
        for _ in 0..400 {
            let mut script = Vec::new();
            for _ in 0..(next() % 40) {
                script.extend_from_slice(PIECES[(next() % PIECES.len() as u64) as usize]);
            }
            let options = LmtpOptions {
                max_line: 64,
                max_reply_lines: 5,
                pipelining: next() % 2 == 0,
                ..LmtpOptions::default()
            };
            let (stream, _server) = scripted(&script);
            if let Ok(mut c) = LmtpClient::start(stream, 1, &options).await {
                let _ = c.deliver("", &["a", "b"], b"x\r\n.\r\n").await;
                let _ = c.rset().await;
            }
        }
    }
}
