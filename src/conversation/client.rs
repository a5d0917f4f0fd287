//! Runs a client script against a server: `imaptest client SCRIPT host=… port=…`.

use std::net::SocketAddr;
use std::time::Duration;

use super::conn::{Conn, ConnError, Read, StopTlsError};
use super::escape::{show, show_max};
use super::script::{ClientAction, ClientScript, Loc};
use super::transcript::Transcript;
use tokio::sync::watch;

use crate::config::{TlsMode, TlsSettings};
use crate::control::{RunState, stopped};
use crate::net::{Endpoint, NetError};

/// Where and how the client connects.
#[derive(Debug, Clone, PartialEq)]
pub struct ClientOptions {
    pub host: String,
    pub port: u16,
    /// `ssl` starts TLS on connect; STARTTLS lines work in any mode.
    pub tls: TlsSettings,
    /// For the connect, the TLS handshake and each read or write.
    pub timeout: Duration,
}

/// Why a client script did not run to its end.
#[derive(Debug, thiserror::Error)]
pub enum ClientFailure {
    #[error("{0}")]
    Connect(#[from] NetError),
    #[error("{loc}: expected a line starting with \"{expected}\", received \"{received}\"")]
    Mismatch {
        loc: Loc,
        expected: String,
        received: String,
    },
    #[error(
        "{loc}: expected a line starting with \"{expected}\", but the server closed the connection"
    )]
    ClosedInstead { loc: Loc, expected: String },
    #[error("{loc}: expected the server to close the connection, received \"{received}\"")]
    NotClosed { loc: Loc, received: String },
    #[error("{loc}: timed out after {}s waiting for {what}", after.as_secs_f64())]
    Timeout {
        loc: Loc,
        what: String,
        after: Duration,
    },
    #[error("{loc}: {what}: {source}")]
    Conn {
        loc: Loc,
        what: String,
        source: ConnError,
    },
    #[error(
        "{loc}: the server sent {count} bytes after its STARTTLS reply, before the TLS handshake (injection?): \"{bytes}\""
    )]
    StartTlsInjection {
        loc: Loc,
        count: usize,
        bytes: String,
    },
    #[error("{loc}: cannot start TLS: {reason}")]
    StartTls { loc: Loc, reason: String },
    #[error("{loc}: stoptls: {source}")]
    StopTls { loc: Loc, source: StopTlsError },
    #[error("interrupted before the end of the script")]
    Interrupted,
}

/// What a successful run did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ClientReport {
    pub steps: usize,
    pub lines_received: usize,
    pub bytes_sent: usize,
    pub tls_started: usize,
}

/// Whether a reply line is positive (`2xx`, `+OK`, `tag OK`), negative, or neither
/// (untagged, continuation, anything else).
fn reply_outcome(line: &[u8]) -> Option<bool> {
    match line.first() {
        Some(b'2') => return Some(true),
        Some(b'4' | b'5') => return Some(false),
        _ => {}
    }
    if line.starts_with(b"+OK") {
        return Some(true);
    }
    if line.starts_with(b"-ERR") {
        return Some(false);
    }
    let mut words = line.split(|&b| b == b' ');
    let tag = words.next()?;
    if tag == b"*" || tag == b"+" || tag.is_empty() {
        return None;
    }
    let status = words.next()?;
    if status.eq_ignore_ascii_case(b"OK") {
        Some(true)
    } else if status.eq_ignore_ascii_case(b"NO") || status.eq_ignore_ascii_case(b"BAD") {
        Some(false)
    } else {
        None
    }
}

struct Session<'a> {
    conn: Conn,
    endpoint: Endpoint,
    addr: SocketAddr,
    pending: Option<Read>,
    starttls_armed: bool,
    report: ClientReport,
    transcript: &'a mut Transcript,
}

impl Session<'_> {
    async fn next(&mut self, loc: &Loc, what: impl Fn() -> String) -> Result<Read, ClientFailure> {
        if let Some(read) = self.pending.take() {
            return Ok(read);
        }
        // Each read waits at most the timeout, and so does the whole line: a server
        // dripping a byte at a time cannot keep the script waiting.
        let limit = self.conn.timeout;
        let read = tokio::time::timeout(limit, self.conn.read_line())
            .await
            .unwrap_or(Err(ConnError::Timeout(limit)));
        let read = read.map_err(|e| match e {
            ConnError::Timeout(after) => ClientFailure::Timeout {
                loc: loc.clone(),
                what: what(),
                after,
            },
            source => ClientFailure::Conn {
                loc: loc.clone(),
                what: format!("reading {}", what()),
                source,
            },
        })?;
        match &read {
            Read::Line(line) => {
                self.report.lines_received += 1;
                self.transcript
                    .line(&format!("<<< {}", show_max(line, 4000)));
            }
            Read::Eof => self.transcript.line("<<< (connection closed)"),
        }
        Ok(read)
    }

    async fn start_tls(&mut self, loc: &Loc) -> Result<(), ClientFailure> {
        let buffered = self.conn.buffered();
        if !buffered.is_empty() {
            return Err(ClientFailure::StartTlsInjection {
                loc: loc.clone(),
                count: buffered.len(),
                bytes: show(buffered),
            });
        }
        let Some(tcp) = self.conn.take_plain() else {
            return Err(ClientFailure::StartTls {
                loc: loc.clone(),
                reason: "TLS is already active".to_owned(),
            });
        };
        let transport =
            self.endpoint
                .handshake(tcp, self.addr)
                .await
                .map_err(|e| ClientFailure::StartTls {
                    loc: loc.clone(),
                    reason: e.to_string(),
                })?;
        self.conn.set_stream(transport.into());
        self.report.tls_started += 1;
        self.transcript.line("Succeeded in starting TLS");
        Ok(())
    }

    async fn step(&mut self, loc: &Loc, action: &ClientAction) -> Result<(), ClientFailure> {
        match action {
            ClientAction::Expect(prefix) => {
                let expected = || show(prefix);
                let what = || format!("a line starting with \"{}\"", show(prefix));
                match self.next(loc, what).await? {
                    Read::Eof => {
                        return Err(ClientFailure::ClosedInstead {
                            loc: loc.clone(),
                            expected: expected(),
                        });
                    }
                    Read::Line(line) => {
                        if !line.starts_with(prefix) {
                            return Err(ClientFailure::Mismatch {
                                loc: loc.clone(),
                                expected: expected(),
                                received: show(&line),
                            });
                        }
                        if self.starttls_armed {
                            match reply_outcome(&line) {
                                Some(true) => {
                                    self.starttls_armed = false;
                                    self.start_tls(loc).await?;
                                }
                                Some(false) => {
                                    self.starttls_armed = false;
                                    self.transcript.line("Not starting TLS");
                                }
                                None => {}
                            }
                        }
                    }
                }
            }
            ClientAction::ExpectRepeated(prefix) => loop {
                let what = || format!("a line starting with \"{}\"", show(prefix));
                match self.next(loc, what).await? {
                    Read::Line(line) if line.starts_with(prefix) => {}
                    other => {
                        self.pending = Some(other);
                        break;
                    }
                }
            },
            ClientAction::ExpectEof => {
                let what = || "the server to close the connection".to_owned();
                if let Read::Line(line) = self.next(loc, what).await? {
                    return Err(ClientFailure::NotClosed {
                        loc: loc.clone(),
                        received: show(&line),
                    });
                }
            }
            ClientAction::Sleep(d) => {
                self.transcript.line(&format!("+++ {}", d.as_secs_f64()));
                tokio::time::sleep(*d).await;
            }
            ClientAction::Send { data, starttls } => {
                let shown = data.strip_suffix(b"\r\n").unwrap_or(data);
                self.transcript
                    .line(&format!(">>> {}", show_max(shown, 4000)));
                self.conn
                    .write(data)
                    .await
                    .map_err(|source| ClientFailure::Conn {
                        loc: loc.clone(),
                        what: "sending".to_owned(),
                        source,
                    })?;
                self.report.bytes_sent += data.len();
                if *starttls {
                    self.starttls_armed = true;
                }
            }
            ClientAction::Comment(text) => self.transcript.comment(&format!("### {text}")),
            ClientAction::StopTls => {
                self.conn
                    .stop_tls(true)
                    .await
                    .map_err(|source| ClientFailure::StopTls {
                        loc: loc.clone(),
                        source,
                    })?;
                self.transcript.line("TLS stopped");
            }
        }
        Ok(())
    }
}

/// [`run_script`] that ends with [`ClientFailure::Interrupted`] as soon as `stop`
/// leaves [`RunState::Running`] (the lead's signal handling sends it).
pub async fn run_script_until(
    script: &ClientScript,
    options: &ClientOptions,
    transcript: &mut Transcript,
    mut stop: watch::Receiver<RunState>,
) -> Result<ClientReport, ClientFailure> {
    tokio::select! {
        result = run_script(script, options, transcript) => result,
        () = stopped(&mut stop, RunState::LogoutAndStop) => Err(ClientFailure::Interrupted),
    }
}

/// Connects and runs the script to its end. The error names the failing script line.
pub async fn run_script(
    script: &ClientScript,
    options: &ClientOptions,
    transcript: &mut Transcript,
) -> Result<ClientReport, ClientFailure> {
    let mut tls = options.tls.clone();
    if tls.mode == TlsMode::Plain && script.uses_tls() {
        tls.mode = TlsMode::StartTls;
    }
    let endpoint = Endpoint::resolve(
        &options.host,
        &options.host,
        options.port,
        &tls,
        options.timeout,
    )
    .await?;
    transcript.line(&format!(
        "Connecting to {} port {} ...",
        options.host, options.port
    ));
    let (transport, addr) = endpoint.connect().await?;
    let on_connect = transport.is_tls();
    transcript.line(&format!(
        "connected to {addr}{}",
        if on_connect { " (TLS)" } else { "" }
    ));
    let mut session = Session {
        conn: Conn::new(transport.into(), options.timeout),
        endpoint,
        addr,
        pending: None,
        starttls_armed: false,
        report: ClientReport {
            tls_started: usize::from(on_connect),
            ..ClientReport::default()
        },
        transcript,
    };
    for step in &script.steps {
        session.step(&step.loc, &step.action).await?;
        session.report.steps += 1;
    }
    session.conn.shutdown().await;
    session.transcript.line("End of script");
    Ok(session.report)
}

#[cfg(test)]
mod tests {
    use super::reply_outcome;

    #[test]
    fn reply_outcomes() {
        assert_eq!(reply_outcome(b"220 2.0.0 Ready to start TLS"), Some(true));
        assert_eq!(reply_outcome(b"454 4.7.0 TLS not available"), Some(false));
        assert_eq!(reply_outcome(b"+OK Begin TLS"), Some(true));
        assert_eq!(reply_outcome(b"-ERR no"), Some(false));
        assert_eq!(
            reply_outcome(b"a1 OK Begin TLS negotiation now."),
            Some(true)
        );
        assert_eq!(reply_outcome(b"a1 BAD no"), Some(false));
        assert_eq!(reply_outcome(b"* OK still here"), None);
        assert_eq!(reply_outcome(b"+ go ahead"), None);
        assert_eq!(reply_outcome(b""), None);
    }
}
