//! A sequential POP3 client (RFC 1939) on a [`LineStream`], with CAPA (RFC 2449),
//! STLS (RFC 2595) and SASL AUTH (RFC 5034).

use std::path::PathBuf;
use std::time::{Duration, Instant};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use tokio::io::{AsyncRead, AsyncWrite};

use crate::config::TlsMode;
use crate::net::lines::{self, DEFAULT_MAX_LINE, LineError, LineStream, quote};
use crate::net::{Endpoint, NetError, PhaseTimes, Transport};
use crate::ops::{Op, Outcome, Phase, Pop3Command, Server, TimingLog};
use crate::sasl::{self, Credentials, Mechanism, SaslError, ScramCache};

/// What went wrong on a POP3 connection. Every message names the command and quotes
/// the server line involved.
#[derive(Debug, thiserror::Error)]
pub enum Pop3Error {
    #[error("{doing}: {source}")]
    Io { doing: String, source: LineError },
    /// The server answered `-ERR`.
    #[error("{command} failed: {line}")]
    Err { command: String, line: String },
    #[error("{command}: malformed reply: {line:?}")]
    Malformed { command: String, line: String },
    #[error("{command}: reply larger than {limit} bytes")]
    TooLarge { command: String, limit: usize },
    #[error("{command}: reply has more than {limit} lines")]
    TooManyLines { command: String, limit: usize },
    #[error("{command}: no complete reply within {limit:?} (timeout= bounds the whole reply)")]
    Deadline { command: String, limit: Duration },
    #[error("malformed banner: {0:?}")]
    BadGreeting(String),
    #[error("AUTH {mech} failed: {source}")]
    Sasl { mech: String, source: SaslError },
    #[error("invalid argument {0:?}: contains CR, LF or NUL")]
    InvalidArgument(String),
    #[error("{0}")]
    Connect(#[from] NetError),
}

impl Pop3Error {
    /// The connection phase a failed [`Pop3Client::connect`] was in.
    pub fn failed_phase(&self) -> Phase {
        match self {
            Pop3Error::Connect(e) if e.is_tls() => Phase::Tls,
            Pop3Error::Connect(_) => Phase::Connect,
            _ => Phase::Greeting,
        }
    }
}

impl From<lines::OpenError> for Pop3Error {
    fn from(e: lines::OpenError) -> Self {
        match e {
            lines::OpenError::Connect(e) => Pop3Error::Connect(e),
            lines::OpenError::Rawlog(source) => Pop3Error::Io {
                doing: "opening the rawlog".into(),
                source,
            },
        }
    }
}

impl Pop3Error {
    /// True if the connection can still be used: the server answered `-ERR`.
    pub fn is_recoverable(&self) -> bool {
        matches!(self, Pop3Error::Err { .. } | Pop3Error::InvalidArgument(_))
    }

    /// The server's `-ERR` line, if that is what the error is.
    pub fn err_line(&self) -> Option<&str> {
        match self {
            Pop3Error::Err { line, .. } => Some(line),
            _ => None,
        }
    }
}

/// Connection options shared by every POP3 connection of a run.
#[derive(Debug, Clone)]
pub struct Pop3Options {
    /// Limit on every read and write, and on each whole reply (`timeout=`).
    pub timeout: Duration,
    pub rawlog_dir: Option<PathBuf>,
    /// Longest line accepted (status lines and message lines), CRLF excluded.
    pub max_line: usize,
    /// Largest RETR/TOP reply accepted, after dot-unstuffing.
    pub max_message: usize,
    /// Most lines accepted in a CAPA, LIST, UIDL or AUTH listing.
    pub max_list_lines: usize,
    /// Send the SASL initial response with AUTH (RFC 5034) when CAPA lists `SASL`.
    pub sasl_ir: bool,
}

impl Default for Pop3Options {
    fn default() -> Self {
        Pop3Options {
            timeout: Duration::from_secs(30),
            rawlog_dir: None,
            max_line: DEFAULT_MAX_LINE,
            max_message: 64 * 1024 * 1024,
            max_list_lines: 1_000_000,
            sasl_ir: true,
        }
    }
}

/// Runs `reading` (a reply of `command`) within `limit` in total.
async fn within<T>(
    limit: Duration,
    command: &str,
    reading: impl Future<Output = T>,
) -> Result<T, Pop3Error> {
    within_as(limit, limit, command, reading).await
}

/// [`within`] with `left` of a total `limit` remaining.
async fn within_as<T>(
    left: Duration,
    limit: Duration,
    command: &str,
    reading: impl Future<Output = T>,
) -> Result<T, Pop3Error> {
    tokio::time::timeout(left, reading)
        .await
        .map_err(|_| Pop3Error::Deadline {
            command: command.to_owned(),
            limit,
        })
}

/// Most bytes kept from one CAPA, LIST, UIDL or AUTH listing.
const MAX_LISTING_BYTES: usize = 64 * 1024 * 1024;

/// Largest buffer allocated up front for a RETR reply on the server's word.
const PREALLOCATE_MAX: u64 = 1024 * 1024;

/// The CAPA listing: one entry per line, `TAG [args...]`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Pop3Capabilities {
    entries: Vec<(String, Vec<String>)>,
}

impl Pop3Capabilities {
    /// Builds the list from CAPA lines.
    pub fn from_lines<'a>(lines: impl IntoIterator<Item = &'a str>) -> Self {
        let entries = lines
            .into_iter()
            .filter_map(|line| {
                let mut words = line.split_ascii_whitespace();
                let tag = words.next()?.to_ascii_uppercase();
                Some((tag, words.map(str::to_owned).collect()))
            })
            .collect();
        Pop3Capabilities { entries }
    }

    /// True if the tag (case-insensitive) was listed.
    pub fn has(&self, tag: &str) -> bool {
        self.args(tag).is_some()
    }

    /// The arguments of a tag.
    pub fn args(&self, tag: &str) -> Option<&[String]> {
        self.entries
            .iter()
            .find(|(t, _)| t.eq_ignore_ascii_case(tag))
            .map(|(_, a)| a.as_slice())
    }

    /// The mechanisms of the `SASL` line (empty without one).
    pub fn sasl_mechanisms(&self) -> &[String] {
        self.args("SASL").unwrap_or(&[])
    }

    /// True if `SASL` lists `mech` (case-insensitive).
    pub fn has_sasl(&self, mech: &str) -> bool {
        self.sasl_mechanisms()
            .iter()
            .any(|m| m.eq_ignore_ascii_case(mech))
    }

    pub fn iter(&self) -> impl Iterator<Item = (&str, &[String])> {
        self.entries.iter().map(|(t, a)| (t.as_str(), a.as_slice()))
    }
}

/// `STAT`: the maildrop's message count and size in octets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stat {
    pub count: u32,
    pub size: u64,
}

/// A `LIST` line: message number and size in octets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ListEntry {
    pub msg: u32,
    pub size: u64,
}

/// A `UIDL` line: message number and unique id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UidlEntry {
    pub msg: u32,
    pub uid: String,
}

/// A retrieved message (RETR or TOP).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Retrieved {
    /// The message, dot-unstuffed, every line ending in CRLF.
    pub data: Vec<u8>,
    /// The size the `+OK` line to RETR announced (`+OK 1234 octets`), if it did;
    /// always `None` for TOP.
    pub announced_size: Option<u64>,
}

/// A connected POP3 client, past the greeting (and STLS when asked for).
#[derive(Debug)]
pub struct Pop3Client<S = Transport> {
    stream: LineStream<S>,
    id: u64,
    options: Pop3Options,
    greeting: String,
    capabilities: Option<Pop3Capabilities>,
    timings: TimingLog,
}

impl Pop3Client<Transport> {
    /// Connects and reads the `+OK` greeting; when the endpoint's mode is STARTTLS,
    /// sends STLS and upgrades. `id` names the rawlog (`rawlog.<id>`). No CAPA is sent:
    /// call [`Pop3Client::capa`] to learn the capabilities.
    pub async fn connect(
        endpoint: &Endpoint,
        id: u64,
        options: &Pop3Options,
    ) -> Result<Self, Pop3Error> {
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
        client.timings.phases(Server::Pop3, &times);
        if endpoint.mode() == TlsMode::StartTls {
            return client.stls(endpoint).await;
        }
        Ok(client)
    }

    /// `STLS` and the TLS handshake. Bytes after the `+OK` before the handshake are an
    /// error. Known capabilities are discarded (RFC 2595 §4).
    pub async fn stls(mut self, endpoint: &Endpoint) -> Result<Self, Pop3Error> {
        let started = Instant::now();
        let result = self.simple("STLS").await;
        self.log(Pop3Command::Stls, started, &result);
        result?;
        let started = Instant::now();
        let upgraded = self.stream.start_tls(endpoint).await;
        self.timings.tls(Server::Pop3, started, upgraded.is_ok());
        self.stream = upgraded.map_err(|source| Pop3Error::Io {
            doing: "STLS".into(),
            source,
        })?;
        self.capabilities = None;
        Ok(self)
    }

    pub fn is_tls(&self) -> bool {
        self.stream.is_tls()
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> Pop3Client<S> {
    /// Reads the greeting on an open stream. It must start with `+OK`; an APOP
    /// timestamp in it is ignored.
    pub async fn start(
        mut stream: LineStream<S>,
        id: u64,
        options: &Pop3Options,
    ) -> Result<Self, Pop3Error> {
        let waiting = Instant::now();
        let line = within(
            options.timeout,
            "reading the greeting",
            stream.read_line(options.max_line),
        )
        .await?
        .map_err(|source| Pop3Error::Io {
            doing: "reading the greeting".into(),
            source,
        })?;
        let greeting = match status(line) {
            Some(Ok(text)) => String::from_utf8_lossy(text).into_owned(),
            _ => return Err(Pop3Error::BadGreeting(quote(line))),
        };
        let mut timings = TimingLog::default();
        timings.done(
            Op::Phase(Server::Pop3, Phase::Greeting),
            Outcome::Ok,
            waiting,
        );
        Ok(Pop3Client {
            stream,
            id,
            options: options.clone(),
            greeting,
            capabilities: None,
            timings,
        })
    }

    pub fn id(&self) -> u64 {
        self.id
    }

    /// The commands sent and connection phases passed since the last call.
    pub fn timings(&mut self) -> &mut TimingLog {
        &mut self.timings
    }

    fn log<T>(&mut self, command: Pop3Command, started: Instant, result: &Result<T, Pop3Error>) {
        let outcome = match result {
            Ok(_) => Outcome::Ok,
            Err(Pop3Error::Err { .. }) => Outcome::No,
            Err(_) => Outcome::Failed,
        };
        self.timings.done(Op::Pop3(command), outcome, started);
    }

    /// The text of the greeting after `+OK `.
    pub fn greeting(&self) -> &str {
        &self.greeting
    }

    /// The capabilities from the last CAPA, if one was sent (since TLS started).
    pub fn capabilities(&self) -> Option<&Pop3Capabilities> {
        self.capabilities.as_ref()
    }

    pub fn stream(&mut self) -> &mut LineStream<S> {
        &mut self.stream
    }

    /// Sends a command line (without CRLF) and reads its single-line reply: the text
    /// after `+OK`, or [`Pop3Error::Err`] quoting the `-ERR` line.
    pub async fn simple(&mut self, line: &str) -> Result<String, Pop3Error> {
        self.send_line(line, None, line).await?;
        self.read_status(line).await
    }

    async fn send_line(
        &mut self,
        line: &str,
        secret_from: Option<usize>,
        command: &str,
    ) -> Result<(), Pop3Error> {
        if line.bytes().any(|b| matches!(b, b'\r' | b'\n' | 0)) {
            // Don't echo a password in the error.
            return Err(Pop3Error::InvalidArgument(match secret_from {
                Some(at) => format!("{}<hidden>", &line[..at.min(line.len())]),
                None => line.to_owned(),
            }));
        }
        let mut bytes = Vec::with_capacity(line.len() + 2);
        bytes.extend_from_slice(line.as_bytes());
        bytes.extend_from_slice(b"\r\n");
        self.stream
            .send(&bytes, secret_from)
            .await
            .map_err(|source| Pop3Error::Io {
                doing: format!("sending {command}"),
                source,
            })
    }

    async fn read_line(&mut self, command: &str) -> Result<&[u8], Pop3Error> {
        self.stream
            .read_line(self.options.max_line)
            .await
            .map_err(|source| Pop3Error::Io {
                doing: format!("reading the reply to {command}"),
                source,
            })
    }

    /// Reads a status line: `+OK text` → text, `-ERR` → error, else malformed.
    async fn read_status(&mut self, command: &str) -> Result<String, Pop3Error> {
        let limit = self.options.timeout;
        let line = within(limit, command, self.read_line(command)).await??;
        match status(line) {
            Some(Ok(text)) => Ok(String::from_utf8_lossy(text).into_owned()),
            Some(Err(())) => Err(Pop3Error::Err {
                command: command.to_owned(),
                line: quote(line),
            }),
            None => Err(Pop3Error::Malformed {
                command: command.to_owned(),
                line: quote(line),
            }),
        }
    }

    /// Reads the lines of a multi-line reply up to the `.` line, dot-unstuffed, passing
    /// each to `each`. At most `max_lines` lines and `max_bytes` bytes (CRLF counted).
    /// The whole reply must arrive within the timeout.
    async fn read_multiline(
        &mut self,
        command: &str,
        max_lines: usize,
        max_bytes: usize,
        each: impl FnMut(&[u8]) -> Result<(), Pop3Error>,
    ) -> Result<(), Pop3Error> {
        let limit = self.options.timeout;
        let lines = self.read_multiline_lines(command, max_lines, max_bytes, each);
        within(limit, command, lines).await?
    }

    async fn read_multiline_lines(
        &mut self,
        command: &str,
        max_lines: usize,
        max_bytes: usize,
        mut each: impl FnMut(&[u8]) -> Result<(), Pop3Error>,
    ) -> Result<(), Pop3Error> {
        let max_line = self.options.max_line;
        let mut lines = 0usize;
        let mut bytes = 0usize;
        loop {
            let line = self
                .stream
                .read_line(max_line)
                .await
                .map_err(|source| Pop3Error::Io {
                    doing: format!("reading the reply to {command} (before its final \".\")"),
                    source,
                })?;
            let line = match line {
                b"." => return Ok(()),
                [b'.', rest @ ..] => rest,
                _ => line,
            };
            lines += 1;
            bytes += line.len() + 2;
            if lines > max_lines {
                return Err(Pop3Error::TooManyLines {
                    command: command.to_owned(),
                    limit: max_lines,
                });
            }
            if bytes > max_bytes {
                return Err(Pop3Error::TooLarge {
                    command: command.to_owned(),
                    limit: max_bytes,
                });
            }
            each(line)?;
        }
    }

    /// Multi-line reply as lossily decoded lines (listings).
    async fn read_listing(&mut self, command: &str) -> Result<Vec<String>, Pop3Error> {
        let mut out = Vec::new();
        let limit = self.options.max_list_lines;
        let bytes = limit.saturating_mul(256).min(MAX_LISTING_BYTES);
        self.read_multiline(command, limit, bytes, |line| {
            out.push(String::from_utf8_lossy(line).into_owned());
            Ok(())
        })
        .await?;
        Ok(out)
    }

    /// `CAPA`: reads and stores the capability list.
    pub async fn capa(&mut self) -> Result<&Pop3Capabilities, Pop3Error> {
        let started = Instant::now();
        let result = self.capa_untimed().await;
        self.log(Pop3Command::Capa, started, &result);
        result?;
        Ok(self.capabilities.get_or_insert_with(Default::default))
    }

    async fn capa_untimed(&mut self) -> Result<(), Pop3Error> {
        self.simple("CAPA").await?;
        let lines = self.read_listing("CAPA").await?;
        let caps = Pop3Capabilities::from_lines(lines.iter().map(String::as_str));
        self.capabilities = Some(caps);
        Ok(())
    }

    /// `USER name` then `PASS password`; the password never reaches the rawlog.
    /// Returns the text of the `+OK` to PASS.
    pub async fn user_pass(&mut self, user: &str, password: &str) -> Result<String, Pop3Error> {
        let line = format!("USER {user}");
        let started = Instant::now();
        let result = match self.send_line(&line, None, "USER").await {
            Ok(()) => self.read_status(&line).await,
            Err(e) => Err(e),
        };
        self.log(Pop3Command::User, started, &result);
        result?;
        let line = format!("PASS {password}");
        let started = Instant::now();
        let result = match self.send_line(&line, Some(5), "PASS").await {
            Ok(()) => self.read_status("PASS").await,
            Err(e) => Err(e),
        };
        self.log(Pop3Command::Pass, started, &result);
        result
    }

    /// `AUTH <mech>` (RFC 5034). The initial response goes on the command line when
    /// the options allow it and the last CAPA listed `SASL` (and the line stays within
    /// 255 octets); otherwise it answers the first, empty, `+` challenge. Every client
    /// response is masked in the rawlog. Returns the text of the final `+OK`.
    pub async fn authenticate(&mut self, mech: &mut dyn Mechanism) -> Result<String, Pop3Error> {
        let started = Instant::now();
        let result = self.authenticate_untimed(mech).await;
        self.log(Pop3Command::Auth, started, &result);
        result
    }

    async fn authenticate_untimed(
        &mut self,
        mech: &mut dyn Mechanism,
    ) -> Result<String, Pop3Error> {
        let name = mech.name();
        let command = format!("AUTH {name}");
        let sasl_err = |source| Pop3Error::Sasl {
            mech: name.to_owned(),
            source,
        };
        let ir_offered = self.capabilities.as_ref().is_some_and(|c| c.has("SASL"));
        let mut pending = mech.initial_response();
        let mut line = command.clone();
        let mut secret_from = None;
        if let Some(ir) = &pending {
            let encoded = if ir.is_empty() {
                "=".to_owned()
            } else {
                BASE64.encode(ir)
            };
            // RFC 5034 §4: a command line is at most 255 octets.
            if self.options.sasl_ir && ir_offered && line.len() + 1 + encoded.len() + 2 <= 255 {
                line.push(' ');
                secret_from = Some(line.len());
                line.push_str(&encoded);
                pending = None;
            }
        }
        self.send_line(&line, secret_from, &command).await?;
        let limit = self.options.timeout;
        let started = tokio::time::Instant::now();
        loop {
            // The whole exchange is bounded: a server may not challenge without end.
            let left = limit.saturating_sub(started.elapsed());
            let reply = within_as(left, limit, &command, self.read_line(&command)).await??;
            if let Some(result) = status(reply) {
                return match result {
                    Ok(text) => {
                        let text = String::from_utf8_lossy(text).into_owned();
                        mech.finish().map_err(sasl_err)?;
                        Ok(text)
                    }
                    Err(()) => Err(Pop3Error::Err {
                        command,
                        line: quote(reply),
                    }),
                };
            }
            let challenge = match reply {
                b"+" => Some(&b""[..]),
                [b'+', b' ', rest @ ..] => Some(rest.trim_ascii()),
                _ => None,
            };
            let Some(challenge) = challenge else {
                return Err(Pop3Error::Malformed {
                    command,
                    line: quote(reply),
                });
            };
            let answer = match pending.take() {
                Some(ir) => Ok(ir),
                None => match BASE64.decode(challenge) {
                    Ok(decoded) => mech.step(&decoded).map_err(sasl_err),
                    Err(_) => Err(Pop3Error::Malformed {
                        command: command.clone(),
                        line: format!("invalid base64 in SASL challenge: {}", quote(reply)),
                    }),
                },
            };
            match answer {
                Ok(answer) => {
                    let mut out = BASE64.encode(&answer).into_bytes();
                    out.extend_from_slice(b"\r\n");
                    self.stream
                        .send(&out, Some(0))
                        .await
                        .map_err(|source| Pop3Error::Io {
                            doing: format!("sending the {name} response"),
                            source,
                        })?;
                }
                Err(e) => {
                    // Cancel (RFC 5034 §4) and read the -ERR so the connection stays usable.
                    self.stream
                        .send(b"*\r\n", None)
                        .await
                        .map_err(|source| Pop3Error::Io {
                            doing: format!("cancelling {command}"),
                            source,
                        })?;
                    let _ = self.read_status(&command).await;
                    return Err(e);
                }
            }
        }
    }

    /// Builds the named SASL mechanism for `creds` and runs [`Self::authenticate`].
    pub async fn auth(
        &mut self,
        mech: &str,
        creds: Credentials,
        cache: &ScramCache,
    ) -> Result<String, Pop3Error> {
        let mut mechanism =
            sasl::mechanism(mech, creds, cache).map_err(|source| Pop3Error::Sasl {
                mech: mech.to_owned(),
                source,
            })?;
        self.authenticate(mechanism.as_mut()).await
    }

    /// `STAT`.
    pub async fn stat(&mut self) -> Result<Stat, Pop3Error> {
        let started = Instant::now();
        let result = self.stat_untimed().await;
        self.log(Pop3Command::Stat, started, &result);
        result
    }

    async fn stat_untimed(&mut self) -> Result<Stat, Pop3Error> {
        let text = self.simple("STAT").await?;
        let mut words = text.split_ascii_whitespace();
        let count = words.next().and_then(|w| w.parse().ok());
        let size = words.next().and_then(|w| w.parse().ok());
        match (count, size) {
            (Some(count), Some(size)) => Ok(Stat { count, size }),
            _ => Err(Pop3Error::Malformed {
                command: "STAT".into(),
                line: format!("+OK {text}"),
            }),
        }
    }

    /// `LIST`: every message's number and size.
    pub async fn list(&mut self) -> Result<Vec<ListEntry>, Pop3Error> {
        let started = Instant::now();
        let result = self.list_untimed().await;
        self.log(Pop3Command::List, started, &result);
        result
    }

    async fn list_untimed(&mut self) -> Result<Vec<ListEntry>, Pop3Error> {
        self.simple("LIST").await?;
        let lines = self.read_listing("LIST").await?;
        lines
            .iter()
            .map(|l| parse_list_entry(l).ok_or_else(|| malformed("LIST", l)))
            .collect()
    }

    /// `LIST n`.
    pub async fn list_one(&mut self, msg: u32) -> Result<ListEntry, Pop3Error> {
        let started = Instant::now();
        let result = self.list_one_untimed(msg).await;
        self.log(Pop3Command::List, started, &result);
        result
    }

    async fn list_one_untimed(&mut self, msg: u32) -> Result<ListEntry, Pop3Error> {
        let command = format!("LIST {msg}");
        let text = self.simple(&command).await?;
        parse_list_entry(&text).ok_or_else(|| malformed(&command, &format!("+OK {text}")))
    }

    /// `UIDL`: every message's number and unique id.
    pub async fn uidl(&mut self) -> Result<Vec<UidlEntry>, Pop3Error> {
        let started = Instant::now();
        let result = self.uidl_untimed().await;
        self.log(Pop3Command::Uidl, started, &result);
        result
    }

    async fn uidl_untimed(&mut self) -> Result<Vec<UidlEntry>, Pop3Error> {
        self.simple("UIDL").await?;
        let lines = self.read_listing("UIDL").await?;
        lines
            .iter()
            .map(|l| parse_uidl_entry(l).ok_or_else(|| malformed("UIDL", l)))
            .collect()
    }

    /// `UIDL n`.
    pub async fn uidl_one(&mut self, msg: u32) -> Result<UidlEntry, Pop3Error> {
        let started = Instant::now();
        let result = self.uidl_one_untimed(msg).await;
        self.log(Pop3Command::Uidl, started, &result);
        result
    }

    async fn uidl_one_untimed(&mut self, msg: u32) -> Result<UidlEntry, Pop3Error> {
        let command = format!("UIDL {msg}");
        let text = self.simple(&command).await?;
        parse_uidl_entry(&text).ok_or_else(|| malformed(&command, &format!("+OK {text}")))
    }

    /// `RETR n`: the whole message, dot-unstuffed, at most `max_message` bytes.
    pub async fn retr(&mut self, msg: u32) -> Result<Retrieved, Pop3Error> {
        let started = Instant::now();
        let result = self.retr_untimed(msg).await;
        self.log(Pop3Command::Retr, started, &result);
        result
    }

    async fn retr_untimed(&mut self, msg: u32) -> Result<Retrieved, Pop3Error> {
        self.retrieve(format!("RETR {msg}")).await
    }

    /// `TOP n lines`: the header and the first `lines` body lines.
    pub async fn top(&mut self, msg: u32, lines: u32) -> Result<Retrieved, Pop3Error> {
        let started = Instant::now();
        let result = self.top_untimed(msg, lines).await;
        self.log(Pop3Command::Top, started, &result);
        result
    }

    async fn top_untimed(&mut self, msg: u32, lines: u32) -> Result<Retrieved, Pop3Error> {
        self.retrieve(format!("TOP {msg} {lines}")).await
    }

    async fn retrieve(&mut self, command: String) -> Result<Retrieved, Pop3Error> {
        let text = self.simple(&command).await?;
        // `+OK 1234 octets` (RFC 1939 §7 example); TOP's `+OK` says nothing reliable.
        let announced_size = if command.starts_with("RETR") {
            text.split_ascii_whitespace()
                .next()
                .and_then(|w| w.parse().ok())
        } else {
            None
        };
        let max = self.options.max_message;
        // Trust the announced size for the first allocation only up to a point.
        let mut data = Vec::with_capacity(
            announced_size.map_or(0, |n: u64| n.min(max as u64).min(PREALLOCATE_MAX) as usize),
        );
        self.read_multiline(&command, usize::MAX, max, |line| {
            data.extend_from_slice(line);
            data.extend_from_slice(b"\r\n");
            Ok(())
        })
        .await?;
        Ok(Retrieved {
            data,
            announced_size,
        })
    }

    /// `DELE n`: marks the message; it is removed at QUIT.
    pub async fn dele(&mut self, msg: u32) -> Result<String, Pop3Error> {
        let started = Instant::now();
        let result = self.dele_untimed(msg).await;
        self.log(Pop3Command::Dele, started, &result);
        result
    }

    async fn dele_untimed(&mut self, msg: u32) -> Result<String, Pop3Error> {
        self.simple(&format!("DELE {msg}")).await
    }

    /// `NOOP`.
    pub async fn noop(&mut self) -> Result<String, Pop3Error> {
        let started = Instant::now();
        let result = self.noop_untimed().await;
        self.log(Pop3Command::Noop, started, &result);
        result
    }

    async fn noop_untimed(&mut self) -> Result<String, Pop3Error> {
        self.simple("NOOP").await
    }

    /// `RSET`: unmarks deleted messages.
    pub async fn rset(&mut self) -> Result<String, Pop3Error> {
        let started = Instant::now();
        let result = self.rset_untimed().await;
        self.log(Pop3Command::Rset, started, &result);
        result
    }

    async fn rset_untimed(&mut self) -> Result<String, Pop3Error> {
        self.simple("RSET").await
    }

    /// `QUIT`: the server commits deletions (UPDATE state) and answers `+OK`; `-ERR`
    /// means some deletions failed. The connection is closed either way.
    pub async fn quit(mut self) -> Result<String, Pop3Error> {
        let result = self.simple("QUIT").await;
        self.stream.shutdown().await;
        result
    }
}

/// `+OK[ text]` → `Some(Ok(text))`, `-ERR[ text]` → `Some(Err(()))`, else `None`.
fn status(line: &[u8]) -> Option<Result<&[u8], ()>> {
    let word_end = line.iter().position(|b| *b == b' ').unwrap_or(line.len());
    let rest = line.get(word_end + 1..).unwrap_or(b"");
    let word = &line[..word_end];
    if word.eq_ignore_ascii_case(b"+OK") {
        Some(Ok(rest))
    } else if word.eq_ignore_ascii_case(b"-ERR") {
        Some(Err(()))
    } else {
        None
    }
}

fn malformed(command: &str, line: &str) -> Pop3Error {
    Pop3Error::Malformed {
        command: command.to_owned(),
        line: line.to_owned(),
    }
}

fn parse_list_entry(text: &str) -> Option<ListEntry> {
    let mut words = text.split_ascii_whitespace();
    let msg = words.next()?.parse().ok()?;
    let size = words.next()?.parse().ok()?;
    Some(ListEntry { msg, size })
}

fn parse_uidl_entry(text: &str) -> Option<UidlEntry> {
    let mut words = text.split_ascii_whitespace();
    let msg = words.next()?.parse().ok()?;
    let uid = words.next()?;
    // RFC 1939 §7: 1 to 70 characters in the range 0x21 to 0x7E.
    if uid.len() > 70 || !uid.bytes().all(|b| (0x21..=0x7e).contains(&b)) {
        return None;
    }
    Some(UidlEntry {
        msg,
        uid: uid.to_owned(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::SocketAddr;
    use tokio::io::{AsyncReadExt, AsyncWriteExt, DuplexStream, duplex};

    fn addr() -> SocketAddr {
        "127.0.0.1:110".parse().unwrap()
    }

    /// A scripted server: sends `script` at once, closes its side, and returns what the
    /// client wrote until the client closes.
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
        (
            LineStream::new(client, addr(), None, Duration::from_secs(5)),
            handle,
        )
    }

    async fn client_with(
        script: &[u8],
        options: &Pop3Options,
    ) -> (Pop3Client<DuplexStream>, tokio::task::JoinHandle<Vec<u8>>) {
        let mut full = b"+OK ready <1.2@host>\r\n".to_vec();
        full.extend_from_slice(script);
        let (stream, server) = scripted(&full);
        let client = Pop3Client::start(stream, 1, options).await.unwrap();
        (client, server)
    }

    async fn client(script: &[u8]) -> (Pop3Client<DuplexStream>, tokio::task::JoinHandle<Vec<u8>>) {
        client_with(script, &Pop3Options::default()).await
    }

    async fn sent(c: Pop3Client<DuplexStream>, server: tokio::task::JoinHandle<Vec<u8>>) -> String {
        drop(c);
        String::from_utf8(server.await.unwrap()).unwrap()
    }

    #[tokio::test]
    async fn greeting() {
        let (c, _) = client(b"").await;
        assert_eq!(c.greeting(), "ready <1.2@host>");
        for bad in [&b"* OK imap\r\n"[..], b"-ERR busy\r\n", b"+OKAY\r\n"] {
            let (stream, _) = scripted(bad);
            let err = Pop3Client::start(stream, 1, &Pop3Options::default())
                .await
                .unwrap_err();
            assert!(matches!(err, Pop3Error::BadGreeting(_)), "{err}");
        }
        let (stream, _) = scripted(b"");
        let err = Pop3Client::start(stream, 1, &Pop3Options::default())
            .await
            .unwrap_err();
        assert_eq!(
            err.to_string(),
            "reading the greeting: connection closed by server"
        );
    }

    #[tokio::test]
    async fn capa_and_stat_and_listings() {
        let (mut c, server) = client(
            b"+OK\r\nTOP\r\nUIDL\r\nSASL PLAIN SCRAM-SHA-256\r\n.\r\n\
              +OK 2 320\r\n\
              +OK 2 messages\r\n1 120\r\n2 200\r\n.\r\n\
              +OK\r\n1 abc\r\n2 de.f\r\n.\r\n\
              +OK 2 200\r\n",
        )
        .await;
        let caps = c.capa().await.unwrap();
        assert!(caps.has("uidl") && caps.has_sasl("scram-sha-256") && !caps.has("STLS"));
        assert_eq!(
            c.stat().await.unwrap(),
            Stat {
                count: 2,
                size: 320
            }
        );
        let list = c.list().await.unwrap();
        assert_eq!(list[1], ListEntry { msg: 2, size: 200 });
        let uidl = c.uidl().await.unwrap();
        assert_eq!(uidl[1].uid, "de.f");
        assert_eq!(c.list_one(2).await.unwrap().size, 200);
        assert_eq!(
            sent(c, server).await,
            "CAPA\r\nSTAT\r\nLIST\r\nUIDL\r\nLIST 2\r\n"
        );
    }

    /// A server that sends `bytes` one at a time, `every` apart, then stays open.
    fn dripping(bytes: &'static [u8], every: Duration) -> LineStream<DuplexStream> {
        let (client, mut server) = duplex(1 << 16);
        tokio::spawn(async move {
            for b in bytes {
                if server.write_all(&[*b]).await.is_err() {
                    return;
                }
                tokio::time::sleep(every).await;
            }
            std::future::pending::<()>().await;
        });
        LineStream::new(client, addr(), None, Duration::from_secs(5))
    }

    #[tokio::test(start_paused = true)]
    async fn a_dripping_reply_ends_at_the_timeout() {
        // Each byte within the read timeout, the whole greeting not.
        let options = Pop3Options {
            timeout: Duration::from_secs(5),
            ..Pop3Options::default()
        };
        let stream = dripping(
            b"+OK a greeting that takes a minute\r\n",
            Duration::from_secs(2),
        );
        let err = Pop3Client::start(stream, 1, &options).await.unwrap_err();
        assert_eq!(
            err.to_string(),
            "reading the greeting: no complete reply within 5s (timeout= bounds the whole reply)"
        );
    }

    #[tokio::test]
    async fn err_lines_are_quoted() {
        let (mut c, _) =
            client(b"-ERR [AUTH] Authentication failed.\r\n-ERR no such message\r\n").await;
        let err = c.user_pass("u", "secret").await.unwrap_err();
        assert_eq!(
            err.to_string(),
            "USER u failed: -ERR [AUTH] Authentication failed."
        );
        assert!(err.is_recoverable());
        let err = c.retr(9).await.unwrap_err();
        assert_eq!(err.to_string(), "RETR 9 failed: -ERR no such message");
    }

    #[tokio::test]
    async fn retr_unstuffs() {
        let (mut c, _) =
            client(b"+OK 30 octets\r\nA: b\r\n\r\n..x\r\n..\r\n...\r\nend\r\n.\r\n").await;
        let r = c.retr(1).await.unwrap();
        assert_eq!(r.data, b"A: b\r\n\r\n.x\r\n.\r\n..\r\nend\r\n");
        assert_eq!(r.announced_size, Some(30));
    }

    #[tokio::test]
    async fn missing_dot_terminator_is_an_error() {
        let (mut c, _) = client(b"+OK\r\nline\r\nmore\r\n").await;
        let err = c.retr(1).await.unwrap_err();
        assert!(
            matches!(
                &err,
                Pop3Error::Io {
                    source: LineError::Closed,
                    ..
                }
            ),
            "{err}"
        );
        assert!(err.to_string().contains("RETR 1"), "{err}");
        let (mut c, _) = client(b"+OK\r\n1 a\r\n2 b").await;
        let err = c.uidl().await.unwrap_err();
        assert!(
            matches!(
                &err,
                Pop3Error::Io {
                    source: LineError::Truncated { .. },
                    ..
                }
            ),
            "{err}"
        );
    }

    #[tokio::test]
    async fn bounds() {
        let options = Pop3Options {
            max_line: 100,
            max_message: 1000,
            max_list_lines: 3,
            ..Pop3Options::default()
        };
        let mut long = b"+OK\r\n".to_vec();
        long.extend(std::iter::repeat_n(b'x', 101));
        long.extend_from_slice(b"\r\n.\r\n");
        let (mut c, _) = client_with(&long, &options).await;
        let err = c.retr(1).await.unwrap_err();
        assert!(
            matches!(
                &err,
                Pop3Error::Io {
                    source: LineError::TooLong { limit: 100, .. },
                    ..
                }
            ),
            "{err}"
        );
        let mut big = b"+OK\r\n".to_vec();
        for _ in 0..20 {
            big.extend_from_slice(&[b'y'; 80]);
            big.extend_from_slice(b"\r\n");
        }
        big.extend_from_slice(b".\r\n");
        let (mut c, _) = client_with(&big, &options).await;
        let err = c.retr(1).await.unwrap_err();
        assert!(
            matches!(err, Pop3Error::TooLarge { limit: 1000, .. }),
            "{err}"
        );
        let (mut c, _) = client_with(b"+OK\r\n1 a\r\n2 b\r\n3 c\r\n4 d\r\n.\r\n", &options).await;
        let err = c.uidl().await.unwrap_err();
        assert!(
            matches!(err, Pop3Error::TooManyLines { limit: 3, .. }),
            "{err}"
        );
    }

    #[tokio::test]
    async fn malformed_replies() {
        let (mut c, _) = client(b"OK 1 2\r\n").await;
        let err = c.stat().await.unwrap_err();
        assert_eq!(err.to_string(), "STAT: malformed reply: \"OK 1 2\"");
        let (mut c, _) = client(b"+OK one two\r\n").await;
        assert!(matches!(c.stat().await, Err(Pop3Error::Malformed { .. })));
        let (mut c, _) = client(b"+OK\r\n1 has space\r\nx y\r\n.\r\n").await;
        // "1 has" parses (extra words ignored), "x y" does not.
        assert!(matches!(c.uidl().await, Err(Pop3Error::Malformed { .. })));
        let (mut c, _) = client(b"+OK\r\n1\r\n.\r\n").await;
        assert!(matches!(c.list().await, Err(Pop3Error::Malformed { .. })));
    }

    #[tokio::test]
    async fn auth_plain_without_initial_response() {
        // No CAPA: the initial response answers the empty challenge.
        let (mut c, server) = client(b"+ \r\n+OK Logged in.\r\n").await;
        let cache = ScramCache::default();
        let text = c
            .auth("PLAIN", Credentials::new("u", "p"), &cache)
            .await
            .unwrap();
        assert_eq!(text, "Logged in.");
        assert_eq!(sent(c, server).await, "AUTH PLAIN\r\nAHUAcA==\r\n");
    }

    #[tokio::test]
    async fn auth_plain_with_initial_response() {
        let (mut c, server) = client(b"+OK\r\nSASL PLAIN\r\n.\r\n+OK Logged in.\r\n").await;
        c.capa().await.unwrap();
        let cache = ScramCache::default();
        c.auth("PLAIN", Credentials::new("u", "p"), &cache)
            .await
            .unwrap();
        assert_eq!(sent(c, server).await, "CAPA\r\nAUTH PLAIN AHUAcA==\r\n");
    }

    #[tokio::test]
    async fn auth_bad_challenge_cancels() {
        let (mut c, server) = client(b"+ \r\n+ !!notbase64\r\n-ERR cancelled\r\n").await;
        let cache = ScramCache::default();
        let err = c
            .auth("SCRAM-SHA-256", Credentials::new("u", "p"), &cache)
            .await
            .unwrap_err();
        assert!(err.to_string().contains("invalid base64"), "{err}");
        let out = sent(c, server).await;
        assert!(out.starts_with("AUTH SCRAM-SHA-256\r\n"), "{out}");
        assert!(out.ends_with("\r\n*\r\n"), "{out}");
    }

    #[tokio::test]
    async fn auth_failure_and_garbage() {
        let (mut c, _) = client(b"+ \r\n-ERR [AUTH] Authentication failed.\r\n").await;
        let cache = ScramCache::default();
        let err = c
            .auth("PLAIN", Credentials::new("u", "p"), &cache)
            .await
            .unwrap_err();
        assert_eq!(
            err.to_string(),
            "AUTH PLAIN failed: -ERR [AUTH] Authentication failed."
        );
        let (mut c, _) = client(b"* what\r\n").await;
        let err = c
            .auth("PLAIN", Credentials::new("u", "p"), &cache)
            .await
            .unwrap_err();
        assert!(matches!(err, Pop3Error::Malformed { .. }), "{err}");
    }

    #[tokio::test]
    async fn arguments_cannot_inject_commands() {
        let (mut c, _) = client(b"").await;
        let err = c.user_pass("u\r\nDELE 1", "p").await.unwrap_err();
        assert!(matches!(err, Pop3Error::InvalidArgument(_)));
        let err = c.user_pass("u", "p\r\nx").await;
        // USER goes out (EOF follows), so the error is about its reply, not PASS.
        assert!(err.is_err());
    }
    /// Random scripts built from reply fragments: every outcome is a value, never a
    /// panic or a hang.
    #[tokio::test]
    async fn random_replies_never_panic() {
        const PIECES: &[&[u8]] = &[
            b"+OK",
            b"-ERR",
            b"+",
            b"+ ",
            b"*",
            b" ",
            b"\r\n",
            b"\n",
            b"\r",
            b".",
            b"..",
            b"1 ",
            b"2 100",
            b"abc",
            b"\0",
            b"\xff",
            b"SASL PLAIN\r\n",
            b".\r\n",
            b"+OK 3 octets\r\n",
            b"+ AAAA\r\n",
            b"+ dj1=\r\n",
            b"4294967296 1\r\n",
        ];
        let mut seed: u64 = 0x2545_f491_4f6c_dd1d;
        let mut next = move || {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed
        };
        let cache = ScramCache::default();
        for round in 0..400 {
            let mut script = b"+OK hi\r\n".to_vec();
            for _ in 0..(next() % 40) {
                script.extend_from_slice(PIECES[(next() % PIECES.len() as u64) as usize]);
            }
            let options = Pop3Options {
                max_line: 64,
                max_message: 200,
                max_list_lines: 5,
                ..Pop3Options::default()
            };
            let (stream, _server) = scripted(&script);
            let Ok(mut c) = Pop3Client::start(stream, 1, &options).await else {
                continue;
            };
            let _ = match round % 5 {
                0 => c.capa().await.map(|_| ()),
                1 => c.uidl().await.map(|_| ()),
                2 => c.retr(1).await.map(|_| ()),
                3 => c.stat().await.map(|_| ()),
                _ => {
                    let mech = if next() % 2 == 0 {
                        "PLAIN"
                    } else {
                        "SCRAM-SHA-1"
                    };
                    c.auth(mech, Credentials::new("u", "p"), &cache)
                        .await
                        .map(|_| ())
                }
            };
            let _ = c.list().await;
        }
    }
}
