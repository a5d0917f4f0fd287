//! Where connections go: resolved addresses (round robin), the TLS mode and connector.

use std::io;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use rustls::pki_types::ServerName;
use tokio::net::{TcpStream, lookup_host};
use tokio_rustls::TlsConnector;

use super::Transport;
use super::tls::{self, TlsConfigError};
use crate::config::{TlsMode, TlsSettings};

/// Why a connection could not be made. Each variant names the address and the cause.
#[derive(Debug, thiserror::Error)]
pub enum NetError {
    #[error("cannot resolve {host}: {source}")]
    Resolve { host: String, source: io::Error },
    #[error("{host} resolved to no address")]
    NoAddress { host: String },
    #[error("connect({addr}) failed: {source}")]
    Connect { addr: SocketAddr, source: io::Error },
    #[error("connect({addr}) timed out after {timeout:?}")]
    ConnectTimeout { addr: SocketAddr, timeout: Duration },
    #[error("TLS handshake with {addr} failed: {source}")]
    Handshake { addr: SocketAddr, source: io::Error },
    #[error("TLS handshake with {addr} timed out after {timeout:?}")]
    HandshakeTimeout { addr: SocketAddr, timeout: Duration },
    #[error("{0}")]
    Config(#[from] TlsConfigError),
    #[error("{0}")]
    ServerName(String),
}

/// A server endpoint: where to connect and how to secure it. Built once per run.
pub struct Endpoint {
    host: String,
    addrs: Vec<SocketAddr>,
    next_addr: AtomicUsize,
    mode: TlsMode,
    tls: Option<(TlsConnector, ServerName<'static>)>,
    timeout: Duration,
}

impl std::fmt::Debug for Endpoint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Endpoint")
            .field("host", &self.host)
            .field("addrs", &self.addrs)
            .field("mode", &self.mode)
            .finish_non_exhaustive()
    }
}

impl Endpoint {
    /// Resolves `connect_host` (all its addresses are used round robin, one per
    /// connection) and prepares TLS with `tls_name` as SNI and certificate name.
    pub async fn resolve(
        tls_name: &str,
        connect_host: &str,
        port: u16,
        tls_settings: &TlsSettings,
        timeout: Duration,
    ) -> Result<Self, NetError> {
        let lookup = connect_host.trim_start_matches('[').trim_end_matches(']');
        let addrs: Vec<SocketAddr> = lookup_host((lookup, port))
            .await
            .map_err(|source| NetError::Resolve {
                host: connect_host.to_owned(),
                source,
            })?
            .collect();
        if addrs.is_empty() {
            return Err(NetError::NoAddress {
                host: connect_host.to_owned(),
            });
        }
        let tls = match tls_settings.mode {
            TlsMode::Plain => None,
            TlsMode::Implicit | TlsMode::StartTls => Some((
                tls::connector(tls_settings)?,
                tls::server_name(tls_name).map_err(NetError::ServerName)?,
            )),
        };
        Ok(Endpoint {
            host: tls_name.to_owned(),
            addrs,
            next_addr: AtomicUsize::new(0),
            mode: tls_settings.mode,
            tls,
            timeout,
        })
    }

    pub fn mode(&self) -> TlsMode {
        self.mode
    }

    pub fn host(&self) -> &str {
        &self.host
    }

    /// Opens a connection to the next address; with implicit TLS the handshake is done.
    pub async fn connect(&self) -> Result<(Transport, SocketAddr), NetError> {
        let i = self.next_addr.fetch_add(1, Ordering::Relaxed) % self.addrs.len();
        let addr = self.addrs[i];
        let tcp = match tokio::time::timeout(self.timeout, TcpStream::connect(addr)).await {
            Ok(Ok(tcp)) => tcp,
            Ok(Err(source)) => return Err(NetError::Connect { addr, source }),
            Err(_) => {
                return Err(NetError::ConnectTimeout {
                    addr,
                    timeout: self.timeout,
                });
            }
        };
        // Commands are small and latency is what we measure.
        let _ = tcp.set_nodelay(true);
        let transport = match self.mode {
            TlsMode::Implicit => self.handshake(tcp, addr).await?,
            TlsMode::Plain | TlsMode::StartTls => Transport::Plain(tcp),
        };
        Ok((transport, addr))
    }

    /// Runs the TLS handshake on an established TCP stream (STARTTLS, or implicit TLS).
    pub async fn handshake(&self, tcp: TcpStream, addr: SocketAddr) -> Result<Transport, NetError> {
        let (connector, name) = match &self.tls {
            Some(tls) => tls,
            None => {
                return Err(NetError::Handshake {
                    addr,
                    source: io::Error::other("TLS is not configured for this endpoint"),
                });
            }
        };
        match tokio::time::timeout(self.timeout, connector.connect(name.clone(), tcp)).await {
            Ok(Ok(tls)) => Ok(Transport::Tls(Box::new(tls))),
            Ok(Err(source)) => Err(NetError::Handshake { addr, source }),
            Err(_) => Err(NetError::HandshakeTimeout {
                addr,
                timeout: self.timeout,
            }),
        }
    }
}
