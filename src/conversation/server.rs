//! The scriptable fake server: `imaptest server SCRIPT port=…`. It listens on loopback
//! only, serves connections one after another, and stops at the first mismatch.

use std::io;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use rustls::ServerConfig;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use tokio_rustls::TlsAcceptor;

use super::conn::{Conn, ConnError, Read, StopTlsError, Stream};
use super::escape::{show, show_max};
use super::script::{Loc, ServerAction, ServerScript, ServerStep};
use super::transcript::Transcript;

/// How the server listens.
#[derive(Debug, Clone, PartialEq)]
pub struct ServerOptions {
    /// A loopback address (127.0.0.1 by default).
    pub host: IpAddr,
    /// 0 picks a free port; [`bind`] returns the address.
    pub port: u16,
    /// Connections served one after another; `None`: one per script section.
    pub connections: Option<usize>,
    /// For waiting for a connection and for each read or write.
    pub timeout: Duration,
    /// `ssl`: TLS right after accepting.
    pub tls_on_connect: bool,
    /// `cert=` and `key=` (PEM); without them a self-signed certificate for
    /// `localhost`, 127.0.0.1 and ::1 is generated.
    pub cert: Option<(PathBuf, PathBuf)>,
}

impl Default for ServerOptions {
    fn default() -> Self {
        ServerOptions {
            host: IpAddr::V4(Ipv4Addr::LOCALHOST),
            port: 0,
            connections: None,
            timeout: Duration::from_secs(10),
            tls_on_connect: false,
            cert: None,
        }
    }
}

/// Why the server stopped before its script was done.
#[derive(Debug, thiserror::Error)]
pub enum ServerFailure {
    #[error("{0} is not a loopback address: the script server listens on loopback only")]
    NotLoopback(IpAddr),
    #[error("cannot listen on {addr}: {source}")]
    Bind { addr: SocketAddr, source: io::Error },
    #[error(
        "connections={connections} is less than the {sections} connections the script describes (sections ending in `*eof` or `>*eof`)"
    )]
    TooFewConnections { connections: usize, sections: usize },
    #[error("TLS setup: {0}")]
    TlsSetup(String),
    #[error("no client connected within {}s (connection {number} of {total})", after.as_secs_f64())]
    AcceptTimeout {
        after: Duration,
        number: usize,
        total: usize,
    },
    #[error("accepting a connection failed: {0}")]
    Accept(io::Error),
    #[error(
        "{loc}: expected the client to send a line starting with \"{expected}\", received \"{received}\""
    )]
    Mismatch {
        loc: Loc,
        expected: String,
        received: String,
    },
    #[error("{loc}: expected the client to send \"{expected}\", received \"{received}\"")]
    BytesMismatch {
        loc: Loc,
        expected: String,
        received: String,
    },
    #[error("{loc}: expected {expected}, but the client closed the connection")]
    ClosedInstead { loc: Loc, expected: String },
    #[error("{loc}: expected the client to close the connection, received \"{received}\"")]
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
    #[error("{loc}: the client sent {count} bytes before the TLS handshake: \"{bytes}\"")]
    EarlyTlsData {
        loc: Loc,
        count: usize,
        bytes: String,
    },
    #[error("{loc}: TLS handshake failed: {reason}")]
    Handshake { loc: Loc, reason: String },
    #[error("TLS handshake on connect (connection {number}) failed: {reason}")]
    HandshakeOnConnect { number: usize, reason: String },
    #[error("{loc}: *stoptls: {source}")]
    StopTls { loc: Loc, source: StopTlsError },
}

/// What a server run did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ServerReport {
    pub connections: usize,
    pub lines_received: usize,
    pub bytes_sent: usize,
}

/// A TLS acceptor with the given certificate, or a generated one.
fn acceptor(cert: Option<&(PathBuf, PathBuf)>) -> Result<TlsAcceptor, ServerFailure> {
    let setup = |e: String| ServerFailure::TlsSetup(e);
    let (chain, key) = match cert {
        Some((cert_path, key_path)) => {
            let chain = CertificateDer::pem_file_iter(cert_path)
                .and_then(|it| it.collect::<Result<Vec<_>, _>>())
                .map_err(|e| setup(format!("cannot read cert {}: {e}", cert_path.display())))?;
            if chain.is_empty() {
                return Err(setup(format!(
                    "{} holds no certificate",
                    cert_path.display()
                )));
            }
            let key = PrivateKeyDer::from_pem_file(key_path)
                .map_err(|e| setup(format!("cannot read key {}: {e}", key_path.display())))?;
            (chain, key)
        }
        None => {
            let names = vec![
                "localhost".to_owned(),
                "127.0.0.1".to_owned(),
                "::1".to_owned(),
            ];
            let generated = rcgen::generate_simple_self_signed(names)
                .map_err(|e| setup(format!("cannot generate a certificate: {e}")))?;
            let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(
                generated.signing_key.serialize_der(),
            ));
            (vec![generated.cert.der().clone()], key)
        }
    };
    let config = ServerConfig::builder_with_provider(crate::net::tls::provider())
        .with_safe_default_protocol_versions()
        .map_err(|e| setup(e.to_string()))?
        .with_no_client_auth()
        .with_single_cert(chain, key)
        .map_err(|e| setup(e.to_string()))?;
    Ok(TlsAcceptor::from(Arc::new(config)))
}

/// Checks the options, listens, and returns the bound address and the task serving the
/// script. The task ends after the last connection, or at the first mismatch.
///
/// Tests start it in-process on port 0 and point a client at the returned address:
///
/// ```no_run
/// # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
/// use imaptest::conversation::{ServerOptions, ServerScript, Transcript, bind};
///
/// let script = ServerScript::parse("garbage.server", ">\\x00\\xFFnot IMAP\n>*eof\n")?;
/// let (addr, task) = bind(script, ServerOptions::default(), Transcript::discard()).await?;
/// // … connect the client under test to `addr` and check the error it reports …
/// let report = task.await??;
/// assert_eq!(report.connections, 1);
/// # let _ = addr;
/// # Ok(())
/// # }
/// ```
pub async fn bind(
    script: ServerScript,
    options: ServerOptions,
    transcript: Transcript,
) -> Result<(SocketAddr, JoinHandle<Result<ServerReport, ServerFailure>>), ServerFailure> {
    if !options.host.is_loopback() {
        return Err(ServerFailure::NotLoopback(options.host));
    }
    let sections = script.sections();
    let connections = options.connections.unwrap_or(sections.len());
    if connections < sections.len() {
        return Err(ServerFailure::TooFewConnections {
            connections,
            sections: sections.len(),
        });
    }
    let acceptor = if options.tls_on_connect || script.uses_tls() {
        Some(acceptor(options.cert.as_ref())?)
    } else {
        None
    };
    let addr = SocketAddr::new(options.host, options.port);
    let listener = TcpListener::bind(addr)
        .await
        .map_err(|source| ServerFailure::Bind { addr, source })?;
    let local = listener
        .local_addr()
        .map_err(|source| ServerFailure::Bind { addr, source })?;
    let server = Server {
        script,
        options,
        acceptor,
        transcript,
        report: ServerReport::default(),
    };
    let task = tokio::spawn(server.run(listener, sections, connections));
    Ok((local, task))
}

struct Server {
    script: ServerScript,
    options: ServerOptions,
    acceptor: Option<TlsAcceptor>,
    transcript: Transcript,
    report: ServerReport,
}

impl Server {
    async fn run(
        mut self,
        listener: TcpListener,
        sections: Vec<std::ops::Range<usize>>,
        connections: usize,
    ) -> Result<ServerReport, ServerFailure> {
        let timeout = self.options.timeout;
        for number in 1..=connections {
            let (tcp, peer) = match tokio::time::timeout(timeout, listener.accept()).await {
                Err(_) => {
                    return Err(ServerFailure::AcceptTimeout {
                        after: timeout,
                        number,
                        total: connections,
                    });
                }
                Ok(Err(e)) => return Err(ServerFailure::Accept(e)),
                Ok(Ok(accepted)) => accepted,
            };
            let _ = tcp.set_nodelay(true);
            self.transcript
                .line(&format!("Connection request from {peer}"));
            let stream = match (&self.acceptor, self.options.tls_on_connect) {
                (Some(acceptor), true) => {
                    match tokio::time::timeout(timeout, acceptor.accept(tcp)).await {
                        Ok(Ok(tls)) => Stream::ServerTls(Box::new(tls)),
                        Ok(Err(e)) => {
                            return Err(ServerFailure::HandshakeOnConnect {
                                number,
                                reason: e.to_string(),
                            });
                        }
                        Err(_) => {
                            return Err(ServerFailure::HandshakeOnConnect {
                                number,
                                reason: format!("timed out after {}s", timeout.as_secs_f64()),
                            });
                        }
                    }
                }
                _ => Stream::Plain(tcp),
            };
            let mut conn = Conn::new(stream, timeout);
            let range = sections[(number - 1) % sections.len()].clone();
            let steps = self.script.steps[range].to_vec();
            let mut closed = false;
            for step in &steps {
                self.step(&mut conn, step).await?;
                closed = step.action.ends_connection();
            }
            if !closed {
                conn.shutdown().await;
            }
            self.report.connections += 1;
            self.transcript.line("End of connection");
        }
        self.transcript.line("End of script");
        Ok(self.report)
    }

    async fn read_line(
        &mut self,
        conn: &mut Conn,
        loc: &Loc,
        what: &str,
    ) -> Result<Read, ServerFailure> {
        let read = conn.read_line().await.map_err(|e| match e {
            ConnError::Timeout(after) => ServerFailure::Timeout {
                loc: loc.clone(),
                what: what.to_owned(),
                after,
            },
            source => ServerFailure::Conn {
                loc: loc.clone(),
                what: format!("reading {what}"),
                source,
            },
        })?;
        match &read {
            Read::Line(line) => {
                self.report.lines_received += 1;
                self.transcript.line(&format!("<{}", show_max(line, 4000)));
            }
            Read::Eof => self.transcript.line("<(connection closed)"),
        }
        Ok(read)
    }

    async fn send(&mut self, conn: &mut Conn, loc: &Loc, data: &[u8]) -> Result<(), ServerFailure> {
        conn.write(data)
            .await
            .map_err(|source| ServerFailure::Conn {
                loc: loc.clone(),
                what: "sending".to_owned(),
                source,
            })?;
        self.report.bytes_sent += data.len();
        Ok(())
    }

    async fn step(&mut self, conn: &mut Conn, step: &ServerStep) -> Result<(), ServerFailure> {
        let loc = &step.loc;
        let closed = |expected: String| ServerFailure::ClosedInstead {
            loc: loc.clone(),
            expected,
        };
        match &step.action {
            ServerAction::Send(data) => {
                let shown = data.strip_suffix(b"\r\n").unwrap_or(data);
                self.transcript.line(&format!(">{}", show_max(shown, 4000)));
                self.send(conn, loc, data).await?;
            }
            ServerAction::Close => {
                self.transcript.line(">*eof");
                conn.shutdown().await;
            }
            ServerAction::Sleep(d) => {
                self.transcript.line(&format!("*sleep {}", d.as_secs_f64()));
                tokio::time::sleep(*d).await;
            }
            ServerAction::Data(n) => {
                let got = conn.discard(*n).await.map_err(|e| match e {
                    ConnError::Timeout(after) => ServerFailure::Timeout {
                        loc: loc.clone(),
                        what: format!("{n} bytes of data"),
                        after,
                    },
                    source => ServerFailure::Conn {
                        loc: loc.clone(),
                        what: "reading data".to_owned(),
                        source,
                    },
                })?;
                self.transcript.line(&format!("*data {got}"));
                if got < *n {
                    return Err(closed(format!("{n} bytes of data (got {got})")));
                }
            }
            ServerAction::ExpectEof => {
                if let Read::Line(line) = self
                    .read_line(conn, loc, "the client to close the connection")
                    .await?
                {
                    return Err(ServerFailure::NotClosed {
                        loc: loc.clone(),
                        received: show(&line),
                    });
                }
            }
            ServerAction::DotBlock => loop {
                match self.read_line(conn, loc, "a line with a lone dot").await? {
                    Read::Line(line) if line == b"." => break,
                    Read::Line(_) => {}
                    Read::Eof => return Err(closed("lines up to a lone dot".to_owned())),
                }
            },
            ServerAction::ExpectLine(prefix) => {
                let what = format!("a line starting with \"{}\"", show(prefix));
                match self.read_line(conn, loc, &what).await? {
                    Read::Line(line) if line.starts_with(prefix) => {}
                    Read::Line(line) => {
                        return Err(ServerFailure::Mismatch {
                            loc: loc.clone(),
                            expected: show(prefix),
                            received: show(&line),
                        });
                    }
                    Read::Eof => return Err(closed(what)),
                }
            }
            ServerAction::ExpectBytes(bytes) => {
                let read = conn.read_exact(bytes.len()).await.map_err(|e| match e {
                    ConnError::Timeout(after) => ServerFailure::Timeout {
                        loc: loc.clone(),
                        what: format!("\"{}\"", show(bytes)),
                        after,
                    },
                    source => ServerFailure::Conn {
                        loc: loc.clone(),
                        what: "reading".to_owned(),
                        source,
                    },
                })?;
                match read {
                    Ok(got) => {
                        self.transcript.line(&format!("<<{}", show(&got)));
                        if got != *bytes {
                            return Err(ServerFailure::BytesMismatch {
                                loc: loc.clone(),
                                expected: show(bytes),
                                received: show(&got),
                            });
                        }
                    }
                    Err(got) => {
                        return Err(closed(format!(
                            "\"{}\" (got \"{}\")",
                            show(bytes),
                            show(&got)
                        )));
                    }
                }
            }
            ServerAction::StartTls => {
                let buffered = conn.buffered();
                if !buffered.is_empty() {
                    return Err(ServerFailure::EarlyTlsData {
                        loc: loc.clone(),
                        count: buffered.len(),
                        bytes: show(buffered),
                    });
                }
                let handshake_failed = |reason: String| ServerFailure::Handshake {
                    loc: loc.clone(),
                    reason,
                };
                let (Some(acceptor), Some(tcp)) = (self.acceptor.clone(), conn.take_plain()) else {
                    return Err(handshake_failed("TLS is already active".to_owned()));
                };
                let timeout = self.options.timeout;
                match tokio::time::timeout(timeout, acceptor.accept(tcp)).await {
                    Ok(Ok(tls)) => conn.set_stream(Stream::ServerTls(Box::new(tls))),
                    Ok(Err(e)) => return Err(handshake_failed(e.to_string())),
                    Err(_) => {
                        return Err(handshake_failed(format!(
                            "timed out after {}s",
                            timeout.as_secs_f64()
                        )));
                    }
                }
                self.transcript.line("TLS started");
            }
            ServerAction::StopTls => {
                conn.stop_tls(false)
                    .await
                    .map_err(|source| ServerFailure::StopTls {
                        loc: loc.clone(),
                        source,
                    })?;
                self.transcript.line("TLS stopped");
            }
            ServerAction::Fill { len, pattern } => {
                self.transcript
                    .line(&format!("*fill {len} {}", show(pattern)));
                const CHUNK: usize = 64 * 1024;
                let mut left = *len;
                let mut offset = 0;
                while left > 0 {
                    let n = left.min(CHUNK);
                    let chunk: Vec<u8> = pattern
                        .iter()
                        .copied()
                        .cycle()
                        .skip(offset % pattern.len().max(1))
                        .take(n)
                        .collect();
                    self.send(conn, loc, &chunk).await?;
                    left -= n;
                    offset += n;
                }
            }
            ServerAction::Drip(d) => {
                self.transcript.line(&format!("*drip {}", d.as_secs_f64()));
                conn.drip = *d;
            }
            ServerAction::Comment(text) => self.transcript.comment(&format!("### {text}")),
        }
        Ok(())
    }
}
