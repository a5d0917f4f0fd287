//! A sequential IMAP client on an [`ImapStream`]: greeting, CAPABILITY, STARTTLS,
//! LOGIN/AUTHENTICATE and tagged commands. Used by tests, scripted modes and the simple
//! parts of the engines; the stress engine pipelines on the stream directly.

use std::time::{Duration, Instant};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;

use super::capability::Capabilities;
use super::command::{CommandBuilder, CommandPart};
use super::framer::{FramerLimits, RawResponse};
use super::response::{Code, Response, Status, Untagged};
use super::stream::{ImapStream, StreamError};
use crate::config::{Mech, TlsMode};
use crate::limits::{MAX_UNTAGGED_BYTES_PER_COMMAND, UNTAGGED_OVERHEAD};
use crate::net::{Deadline, Endpoint, PhaseTimes, Rawlog};
use crate::sasl::{self, Credentials, Mechanism, SaslError, ScramCache};

/// What went wrong on an IMAP connection. Messages quote the server line involved.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("{0}")]
    Stream(#[from] StreamError),
    #[error("malformed banner: {0}")]
    BadGreeting(String),
    #[error("no greeting: {source}{hint}")]
    NoGreeting {
        source: StreamError,
        /// What the user may have got wrong, when the server sent nothing at all.
        hint: &'static str,
    },
    #[error("server said BYE: {0}")]
    Bye(String),
    #[error("unexpected tagged reply: {0}")]
    UnexpectedTag(String),
    #[error("error parsing input: {0}")]
    Parse(String),
    #[error("server does not announce STARTTLS")]
    NoStartTls,
    #[error("STARTTLS failed: {0}")]
    StartTlsRefused(String),
    #[error("{command} failed: {line}")]
    Failed { command: String, line: String },
    #[error("AUTHENTICATE {mech} failed: {source}")]
    Sasl { mech: String, source: SaslError },
    #[error("unexpected continuation: {0}")]
    UnexpectedContinuation(String),
    /// The untagged responses to one command went past
    /// [`crate::limits::MAX_UNTAGGED_BYTES_PER_COMMAND`].
    #[error(
        "{command}: the server sent more than {limit} bytes of untagged responses to one command (docs/limits.md)"
    )]
    TooMuchData { command: String, limit: usize },
}

impl ClientError {
    /// The connection phase a failed [`ImapClient::connect`] was in: the TCP connect,
    /// the TLS handshake, or (anything else) the greeting and STARTTLS exchange.
    pub fn failed_phase(&self) -> crate::ops::Phase {
        use crate::ops::Phase;
        match self {
            ClientError::Stream(StreamError::Net(e)) if e.is_tls() => Phase::Tls,
            ClientError::Stream(StreamError::Net(_)) => Phase::Connect,
            _ => Phase::Greeting,
        }
    }
}

/// The tagged reply to a command, with the untagged responses that came before it.
#[derive(Debug)]
pub struct Completion {
    pub status: Status,
    /// The whole tagged line, lossily decoded, for error messages.
    pub line: String,
    pub untagged: Vec<RawResponse>,
    pub elapsed: Duration,
}

impl Completion {
    pub fn is_ok(&self) -> bool {
        self.status == Status::Ok
    }
}

/// Connection options shared by every connection of a run.
#[derive(Debug, Clone)]
pub struct ClientOptions {
    pub limits: FramerLimits,
    pub timeout: Duration,
    pub rawlog_dir: Option<std::path::PathBuf>,
}

impl Default for ClientOptions {
    fn default() -> Self {
        ClientOptions {
            limits: FramerLimits::default(),
            timeout: Duration::from_secs(30),
            rawlog_dir: None,
        }
    }
}

/// A connected IMAP client.
#[derive(Debug)]
pub struct ImapClient {
    stream: ImapStream,
    id: u64,
    next_tag: u32,
    capabilities: Capabilities,
    preauth: bool,
    /// The greeting line, for the run summary's server identity.
    greeting: String,
    phase_times: PhaseTimes,
}

/// A server line as errors and reports quote it: control characters escaped, long lines
/// cut to an excerpt with their length ([`crate::text::quote`]).
pub(crate) fn lossy(bytes: &[u8]) -> String {
    crate::text::quote(bytes)
}

impl ImapClient {
    /// Connects, reads the greeting, learns capabilities and (in STARTTLS mode) upgrades.
    /// `id` is the connection's process-wide number, used in tags and rawlog names.
    pub async fn connect(
        endpoint: &Endpoint,
        id: u64,
        options: &ClientOptions,
    ) -> Result<Self, ClientError> {
        let mut phase_times = PhaseTimes::default();
        let (transport, peer) = endpoint
            .connect_timed(&mut phase_times)
            .await
            .map_err(StreamError::from)?;
        let rawlog = match &options.rawlog_dir {
            Some(dir) => Some(Rawlog::create(dir, id).map_err(|e| {
                StreamError::Write(std::io::Error::other(format!(
                    "cannot create rawlog in {}: {e}",
                    dir.display()
                )))
            })?),
            None => None,
        };
        let stream = ImapStream::new(transport, peer, options.limits, rawlog, options.timeout);
        let mut client = ImapClient {
            stream,
            id,
            next_tag: 1,
            capabilities: Capabilities::default(),
            preauth: false,
            greeting: String::new(),
            phase_times,
        };
        let waiting = Instant::now();
        client.read_greeting().await?;
        client.phase_times.greeting = Some((waiting, Instant::now()));
        if endpoint.mode() == TlsMode::StartTls {
            client = client.start_tls(endpoint).await?;
        }
        if client.capabilities.is_empty() {
            client.refresh_capabilities().await?;
        }
        Ok(client)
    }

    async fn read_greeting(&mut self) -> Result<(), ClientError> {
        let deadline = Deadline::after(self.stream.timeout());
        let greeting = match self.stream.read_response_by(Some(deadline)).await {
            Ok(greeting) => greeting,
            Err(e @ (StreamError::Timeout(_) | StreamError::Deadline(_))) => {
                // A TLS port waits for our handshake and says nothing.
                let hint = if self.stream.is_tls() {
                    ""
                } else {
                    " (if this port expects TLS, add `ssl`)"
                };
                return Err(ClientError::NoGreeting { source: e, hint });
            }
            Err(e @ StreamError::Incomplete { .. }) => {
                return Err(ClientError::NoGreeting {
                    source: e,
                    hint: "",
                });
            }
            Err(e) => return Err(e.into()),
        };
        let line = lossy(greeting.first_line());
        self.greeting = line.clone();
        match greeting.parse() {
            Ok(Response::Untagged(Untagged::Status { status, text }))
                if matches!(status, Status::Ok | Status::PreAuth) =>
            {
                self.preauth = status == Status::PreAuth;
                if let Some(Code::Capability(caps)) = &text.code {
                    self.capabilities = Capabilities::from_atoms(caps.iter().copied());
                }
                Ok(())
            }
            Ok(Response::Untagged(Untagged::Status {
                status: Status::Bye,
                ..
            })) => Err(ClientError::Bye(line)),
            _ => Err(ClientError::BadGreeting(line)),
        }
    }

    pub fn id(&self) -> u64 {
        self.id
    }

    /// The server's greeting line.
    pub fn greeting(&self) -> &str {
        &self.greeting
    }

    /// When the connect, TLS handshake (implicit or STARTTLS) and greeting wait
    /// started and ended.
    pub fn phase_times(&self) -> &PhaseTimes {
        &self.phase_times
    }

    pub fn capabilities(&self) -> &Capabilities {
        &self.capabilities
    }

    /// True if the greeting was PREAUTH.
    pub fn preauth(&self) -> bool {
        self.preauth
    }

    pub fn stream(&mut self) -> &mut ImapStream {
        &mut self.stream
    }

    /// Hands the connection over to code that pipelines on the stream itself: the
    /// stream, the capabilities and the number of the next tag.
    pub fn into_parts(self) -> (ImapStream, Capabilities, u32) {
        (self.stream, self.capabilities, self.next_tag)
    }

    /// Returns the next tag, `<connection id>.<n>` as the C tool does.
    pub fn next_tag(&mut self) -> String {
        let tag = format!("{}.{}", self.id, self.next_tag);
        self.next_tag += 1;
        tag
    }

    /// Starts a command with a fresh tag.
    pub fn command(&mut self, name: &str) -> (String, CommandBuilder) {
        let tag = self.next_tag();
        let builder = CommandBuilder::new(&tag, name, self.capabilities.literal_plus());
        (tag, builder)
    }

    /// Sends a simple command line (without tag and CRLF) and waits for its completion.
    pub async fn simple(&mut self, line: &str) -> Result<Completion, ClientError> {
        let (tag, builder) = self.command(line);
        self.run(&tag, builder.finish()).await
    }

    /// Sends a command's parts (waiting for `+` between them) and collects the replies.
    /// The whole command must complete within the stream's timeout.
    pub async fn run(
        &mut self,
        tag: &str,
        parts: Vec<CommandPart>,
    ) -> Result<Completion, ClientError> {
        let started = Instant::now();
        let deadline = Deadline::after(self.stream.timeout());
        let mut untagged = Collected::for_command(&parts);
        let last = parts.len().saturating_sub(1);
        for (i, part) in parts.into_iter().enumerate() {
            self.stream.send_part(part).await?;
            if i < last {
                // A synchronising literal: the server must ask for it first.
                loop {
                    let response = self.stream.read_response_by(Some(deadline)).await?;
                    match response.parse() {
                        Ok(Response::Continuation(_)) => break,
                        Ok(Response::Tagged { .. }) => {
                            return self.finish_tagged(tag, response, untagged.list, started);
                        }
                        _ => untagged.push(response)?,
                    }
                }
            }
        }
        self.collect(tag, untagged, started, deadline).await
    }

    /// Reads until the tagged reply of `tag`. A malformed response or a frame error does
    /// not end the wait: it is returned after the tagged reply, so the connection stays
    /// in sync. A BYE followed by the server closing is reported with the BYE's text.
    async fn collect(
        &mut self,
        tag: &str,
        mut untagged: Collected,
        started: Instant,
        deadline: Deadline,
    ) -> Result<Completion, ClientError> {
        let mut first_error: Option<ClientError> = None;
        let mut bye: Option<String> = None;
        loop {
            let response = match self.stream.read_response_by(Some(deadline)).await {
                Ok(response) => response,
                Err(e) if e.is_recoverable() => {
                    first_error.get_or_insert(ClientError::Stream(e));
                    continue;
                }
                Err(StreamError::Closed) if bye.is_some() => {
                    return Err(ClientError::Bye(bye.unwrap_or_default()));
                }
                // An earlier malformed response explains more than the close after it.
                Err(e) => return Err(first_error.unwrap_or(e.into())),
            };
            match response.parse() {
                Ok(Response::Tagged { .. }) => {
                    let done = self.finish_tagged(tag, response, untagged.list, started);
                    return match first_error {
                        Some(e) => Err(e),
                        None => done,
                    };
                }
                Ok(Response::Continuation(_)) => {
                    return Err(ClientError::UnexpectedContinuation(lossy(
                        response.first_line(),
                    )));
                }
                Ok(Response::Untagged(u)) => {
                    if matches!(
                        u,
                        Untagged::Status {
                            status: Status::Bye,
                            ..
                        }
                    ) {
                        bye = Some(lossy(response.first_line()));
                    }
                    self.note_untagged(&u);
                    drop(u);
                    untagged.push(response)?;
                }
                Err(e) => {
                    let ours = response.tag() == Some(tag.as_bytes());
                    let error = ClientError::Parse(e.to_string());
                    if ours {
                        return Err(first_error.unwrap_or(error));
                    }
                    first_error.get_or_insert(error);
                }
            }
        }
    }

    fn note_untagged(&mut self, untagged: &Untagged<'_>) {
        match untagged {
            Untagged::Capability(caps) => {
                self.capabilities = Capabilities::from_atoms(caps.iter().copied());
            }
            Untagged::Status { text, .. } => {
                if let Some(Code::Capability(caps)) = &text.code {
                    self.capabilities = Capabilities::from_atoms(caps.iter().copied());
                }
            }
            _ => {}
        }
    }

    fn finish_tagged(
        &mut self,
        tag: &str,
        response: RawResponse,
        untagged: Vec<RawResponse>,
        started: Instant,
    ) -> Result<Completion, ClientError> {
        let line = lossy(response.first_line());
        let (status, caps) = match response.parse() {
            Ok(Response::Tagged {
                tag: got,
                status,
                text,
            }) => {
                if got != tag.as_bytes() {
                    return Err(ClientError::UnexpectedTag(line));
                }
                let caps = match &text.code {
                    Some(Code::Capability(caps)) => {
                        Some(Capabilities::from_atoms(caps.iter().copied()))
                    }
                    _ => None,
                };
                (status, caps)
            }
            Ok(_) => return Err(ClientError::UnexpectedTag(line)),
            Err(e) => return Err(ClientError::Parse(e.to_string())),
        };
        if let Some(caps) = caps {
            self.capabilities = caps;
        }
        Ok(Completion {
            status,
            line,
            untagged,
            elapsed: started.elapsed(),
        })
    }

    /// Sends CAPABILITY and stores the answer.
    pub async fn refresh_capabilities(&mut self) -> Result<(), ClientError> {
        let done = self.simple("CAPABILITY").await?;
        expect_ok("CAPABILITY", &done)
    }

    async fn start_tls(mut self, endpoint: &Endpoint) -> Result<Self, ClientError> {
        if !self.capabilities.is_empty() && !self.capabilities.has("STARTTLS") {
            return Err(ClientError::NoStartTls);
        }
        let done = self.simple("STARTTLS").await?;
        if !done.is_ok() {
            return Err(ClientError::StartTlsRefused(done.line));
        }
        let started = Instant::now();
        self.stream = self.stream.start_tls(endpoint).await?;
        self.phase_times.tls = Some((started, Instant::now()));
        // RFC 3501 §6.2.1: capabilities learned before TLS must be discarded.
        self.capabilities = Capabilities::default();
        self.refresh_capabilities().await?;
        Ok(self)
    }

    /// `LOGIN user password`; the password never reaches the rawlog.
    pub async fn login(&mut self, user: &str, password: &str) -> Result<Completion, ClientError> {
        let (tag, builder) = self.command("LOGIN");
        let parts = builder
            .string(user.as_bytes())
            .secret(password.as_bytes())
            .finish();
        self.run(&tag, parts).await
    }

    /// `AUTHENTICATE <mech>` with SASL-IR when the server supports it. Every client
    /// response is masked in the rawlog.
    pub async fn authenticate(
        &mut self,
        mech: &mut dyn Mechanism,
    ) -> Result<Completion, ClientError> {
        let started = Instant::now();
        let name = mech.name();
        let tag = self.next_tag();
        let mut line = format!("{tag} AUTHENTICATE {name}");
        let mut secret_from = None;
        let initial = mech.initial_response();
        let mut pending_initial = None;
        match initial {
            Some(ir) if self.capabilities.sasl_ir() => {
                line.push(' ');
                secret_from = Some(line.len());
                line.push_str(&if ir.is_empty() {
                    "=".to_owned()
                } else {
                    BASE64.encode(&ir)
                });
            }
            Some(ir) => pending_initial = Some(ir),
            None => {}
        }
        line.push_str("\r\n");
        let deadline = Deadline::after(self.stream.timeout());
        self.stream.send(line.as_bytes(), secret_from).await?;
        let mut untagged = Collected::named("AUTHENTICATE");
        let sasl_err = |source| ClientError::Sasl {
            mech: name.to_owned(),
            source,
        };
        loop {
            let response = self.stream.read_response_by(Some(deadline)).await?;
            let parsed = response
                .parse()
                .map_err(|e| ClientError::Parse(e.to_string()))?;
            match parsed {
                Response::Continuation(text) => {
                    let answer = match pending_initial.take() {
                        Some(ir) => ir,
                        None => {
                            let challenge = BASE64.decode(text.text.trim_ascii()).map_err(|_| {
                                ClientError::Parse(format!(
                                    "invalid base64 in SASL challenge: {}",
                                    lossy(response.first_line())
                                ))
                            });
                            match challenge {
                                Ok(challenge) => mech.step(&challenge).map_err(sasl_err)?,
                                Err(e) => {
                                    // Cancel the exchange so the connection stays usable.
                                    self.stream.send(b"*\r\n", None).await?;
                                    return Err(e);
                                }
                            }
                        }
                    };
                    let mut out = BASE64.encode(&answer).into_bytes();
                    out.extend_from_slice(b"\r\n");
                    self.stream.send(&out, Some(0)).await?;
                }
                Response::Tagged { .. } => {
                    drop(parsed);
                    let done = self.finish_tagged(&tag, response, untagged.list, started)?;
                    if done.is_ok() {
                        mech.finish().map_err(sasl_err)?;
                    }
                    return Ok(done);
                }
                Response::Untagged(u) => {
                    self.note_untagged(&u);
                    drop(u);
                    untagged.push(response)?;
                }
            }
        }
    }

    /// Logs in as configured: LOGIN for `mech=LOGIN` (exact) without a master user,
    /// otherwise AUTHENTICATE with the named mechanism (PLAIN for master users).
    pub async fn log_in(&mut self, login: &LoginRequest<'_>) -> Result<Completion, ClientError> {
        let mech_name = match login.mech {
            Mech::Command if login.master.is_none() => {
                return self.login(login.user, login.password).await;
            }
            // A master user needs SASL's authorization identity.
            Mech::Command => "PLAIN",
            Mech::Sasl(m) => m.name(),
        };
        let creds = match login.master {
            Some(master) => Credentials {
                authcid: master.to_owned(),
                password: login.password.to_owned(),
                authzid: Some(login.user.to_owned()),
            },
            None => Credentials {
                authcid: login.user.to_owned(),
                password: login.password.to_owned(),
                authzid: None,
            },
        };
        let mut mech = sasl::mechanism(mech_name, creds, login.scram_cache).map_err(|source| {
            ClientError::Sasl {
                mech: mech_name.to_owned(),
                source,
            }
        })?;
        self.authenticate(mech.as_mut()).await
    }

    /// Sends IDLE (RFC 2177) and waits for the server's `+`. Returns the tag (for
    /// [`Self::idle_done`]) and the untagged responses that came before the `+`.
    pub async fn idle(&mut self) -> Result<(String, Vec<RawResponse>), ClientError> {
        let tag = self.next_tag();
        let started = Instant::now();
        self.stream
            .send(format!("{tag} IDLE\r\n").as_bytes(), None)
            .await?;
        let deadline = Deadline::after(self.stream.timeout());
        let mut untagged = Collected::named("IDLE");
        loop {
            let response = self.stream.read_response_by(Some(deadline)).await?;
            match response.parse() {
                Ok(Response::Continuation(_)) => return Ok((tag, untagged.list)),
                Ok(Response::Tagged { .. }) => {
                    let done = self.finish_tagged(&tag, response, untagged.list, started)?;
                    return Err(ClientError::Failed {
                        command: "IDLE".into(),
                        line: done.line,
                    });
                }
                _ => untagged.push(response)?,
            }
        }
    }

    /// Ends IDLE with `DONE` and waits for the IDLE command's tagged reply.
    pub async fn idle_done(&mut self, tag: &str) -> Result<Completion, ClientError> {
        let started = Instant::now();
        let deadline = Deadline::after(self.stream.timeout());
        self.stream.send(b"DONE\r\n", None).await?;
        self.collect(tag, Collected::named("IDLE"), started, deadline)
            .await
    }

    /// LOGOUT: the server must send BYE before its tagged OK.
    pub async fn logout(&mut self) -> Result<Completion, ClientError> {
        let done = self.simple("LOGOUT").await?;
        let saw_bye = done.untagged.iter().any(|r| {
            matches!(
                r.parse(),
                Ok(Response::Untagged(Untagged::Status {
                    status: Status::Bye,
                    ..
                }))
            )
        });
        if done.is_ok() && !saw_bye {
            return Err(ClientError::Failed {
                command: "LOGOUT".into(),
                line: format!("server didn't send BYE: {}", done.line),
            });
        }
        self.stream.shutdown().await;
        Ok(done)
    }
}

/// The untagged responses to one command, bounded by
/// [`MAX_UNTAGGED_BYTES_PER_COMMAND`] so a flooding server costs no more memory.
#[derive(Debug)]
struct Collected {
    list: Vec<RawResponse>,
    bytes: usize,
    /// The command's name, for the error.
    command: String,
}

impl Collected {
    fn named(command: &str) -> Self {
        Collected {
            list: Vec::new(),
            bytes: 0,
            command: command.to_owned(),
        }
    }

    /// Named after the command word of the first part (`<tag> NAME ...`); never more,
    /// so no argument (a password) ends up in a message.
    fn for_command(parts: &[CommandPart]) -> Self {
        let first = parts.first().map_or(&[][..], |p| &p.bytes[..]);
        let name = first
            .split(|b| *b == b' ' || *b == b'\r')
            .nth(1)
            .unwrap_or_default();
        Collected::named(&lossy(&name[..name.len().min(32)]))
    }

    fn push(&mut self, response: RawResponse) -> Result<(), ClientError> {
        self.bytes += response.bytes().len() + UNTAGGED_OVERHEAD;
        if self.bytes > MAX_UNTAGGED_BYTES_PER_COMMAND {
            return Err(ClientError::TooMuchData {
                command: self.command.clone(),
                limit: MAX_UNTAGGED_BYTES_PER_COMMAND,
            });
        }
        self.list.push(response);
        Ok(())
    }
}

/// Who logs in and how.
#[derive(Debug, Clone, Copy)]
pub struct LoginRequest<'a> {
    pub user: &'a str,
    pub password: &'a str,
    pub mech: Mech,
    pub master: Option<&'a str>,
    pub scram_cache: &'a ScramCache,
}

/// Why the start-up login ([`start_up_login`]) failed.
#[derive(Debug, thiserror::Error)]
pub enum StartUpError {
    #[error("{0}")]
    Client(#[from] ClientError),
    #[error("{how} as {user} failed: {line}")]
    LoginRefused {
        /// `LOGIN` or `AUTHENTICATE <mech>`.
        how: String,
        user: String,
        line: String,
    },
    #[error(
        "start-up check (connect, greeting, login) not done within {0:?} (twice timeout=, for all its steps together)"
    )]
    Timeout(Duration),
}

/// The start of the check before a run, so an unreachable server, a TLS failure or a
/// wrong password is one clear error instead of a stream of them: connection number 0
/// (no rawlog), logged in as `login` (unless the greeting was PREAUTH). Each step
/// (connect, TLS, greeting, each command) must be done within `options.timeout` and
/// all of them within twice that, whatever the server does. The caller logs out.
pub async fn start_up_login(
    endpoint: &Endpoint,
    options: &ClientOptions,
    login: &LoginRequest<'_>,
) -> Result<ImapClient, StartUpError> {
    let check = async {
        let options = ClientOptions {
            rawlog_dir: None,
            ..options.clone()
        };
        let mut client = ImapClient::connect(endpoint, 0, &options).await?;
        if client.preauth() {
            return Ok(client);
        }
        let done = client.log_in(login).await?;
        if !done.is_ok() {
            let how = match login.mech {
                Mech::Command if login.master.is_none() => "LOGIN".to_owned(),
                Mech::Command => "AUTHENTICATE PLAIN".to_owned(),
                Mech::Sasl(m) => format!("AUTHENTICATE {}", m.name()),
            };
            return Err(StartUpError::LoginRefused {
                how,
                user: login.user.to_owned(),
                line: done.line,
            });
        }
        Ok(client)
    };
    // The steps' own limits say more about what went wrong; this one catches a server
    // that keeps every step just inside its limit.
    let total = options.timeout.saturating_mul(2);
    tokio::time::timeout(total, check)
        .await
        .unwrap_or(Err(StartUpError::Timeout(total)))
}

/// Turns a non-OK completion into an error naming the command and the server line.
pub fn expect_ok(command: &str, done: &Completion) -> Result<(), ClientError> {
    if done.is_ok() {
        Ok(())
    } else {
        Err(ClientError::Failed {
            command: command.to_owned(),
            line: done.line.clone(),
        })
    }
}
