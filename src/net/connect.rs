//! Where connections go: resolved addresses (round robin), the TLS mode and connector.

use std::io;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use rustls::pki_types::ServerName;
use tokio::net::{TcpSocket, TcpStream, lookup_host};
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

/// When each phase of opening a connection started and ended, for the CONNECT, TLS
/// and GREETING rows of the metrics. Protocol clients fill in the greeting and a
/// STARTTLS handshake.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PhaseTimes {
    pub connect: Option<(Instant, Instant)>,
    pub tls: Option<(Instant, Instant)>,
    pub greeting: Option<(Instant, Instant)>,
}

impl NetError {
    /// True if the TLS handshake failed (not the TCP connect or name resolution).
    pub fn is_tls(&self) -> bool {
        matches!(
            self,
            NetError::Handshake { .. } | NetError::HandshakeTimeout { .. }
        )
    }
}

/// A server endpoint: where to connect and how to secure it. Built once per run.
pub struct Endpoint {
    host: String,
    addrs: Vec<SocketAddr>,
    next_addr: AtomicUsize,
    mode: TlsMode,
    tls: Option<(TlsConnector, ServerName<'static>)>,
    timeout: Duration,
    /// Spread source addresses over 127.0.0.1–127.0.0.254 (loopback targets only).
    spread_sources: bool,
    next_source: AtomicUsize,
}

/// Beyond this many connections one source address runs out of ephemeral ports
/// (about 28 k by default, 64 k at most), so loopback runs spread their sources.
pub const SPREAD_SOURCES_ABOVE: u32 = 20_000;

/// `host:port` of the first address (the one named in messages).
impl std::fmt::Display for Endpoint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.addrs.first() {
            Some(addr) => write!(f, "{addr}"),
            None => f.write_str(&self.host),
        }
    }
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
            spread_sources: false,
            next_source: AtomicUsize::new(0),
        })
    }

    /// Binds each new connection to the next of 127.0.0.1–127.0.0.254 when the server
    /// is on IPv4 loopback (Linux routes all of 127/8 to `lo`), with
    /// `IP_BIND_ADDRESS_NO_PORT` so the port is chosen per 4-tuple at connect time.
    /// Returns whether spreading is on.
    pub fn spread_source_addresses(&mut self, enable: bool) -> bool {
        self.spread_sources = enable
            && self
                .addrs
                .iter()
                .all(|a| matches!(a.ip(), IpAddr::V4(ip) if ip.is_loopback()));
        self.spread_sources
    }

    async fn tcp_connect(&self, addr: SocketAddr) -> std::io::Result<TcpStream> {
        if !self.spread_sources {
            return TcpStream::connect(addr).await;
        }
        let n = self.next_source.fetch_add(1, Ordering::Relaxed) % 254;
        let source = Ipv4Addr::new(127, 0, 0, 1 + n as u8);
        let socket = TcpSocket::new_v4()?;
        bind_address_no_port(&socket)?;
        socket.bind(SocketAddr::new(IpAddr::V4(source), 0))?;
        socket.connect(addr).await
    }

    pub fn mode(&self) -> TlsMode {
        self.mode
    }

    pub fn host(&self) -> &str {
        &self.host
    }

    /// Opens a connection to the next address; with implicit TLS the handshake is done.
    pub async fn connect(&self) -> Result<(Transport, SocketAddr), NetError> {
        self.connect_timed(&mut PhaseTimes::default()).await
    }

    /// [`Endpoint::connect`], noting when the TCP connect and the TLS handshake started
    /// and ended in `times`.
    pub async fn connect_timed(
        &self,
        times: &mut PhaseTimes,
    ) -> Result<(Transport, SocketAddr), NetError> {
        let i = self.next_addr.fetch_add(1, Ordering::Relaxed) % self.addrs.len();
        let addr = self.addrs[i];
        let started = Instant::now();
        let tcp = match tokio::time::timeout(self.timeout, self.tcp_connect(addr)).await {
            Ok(Ok(tcp)) => tcp,
            Ok(Err(source)) => return Err(NetError::Connect { addr, source }),
            Err(_) => {
                return Err(NetError::ConnectTimeout {
                    addr,
                    timeout: self.timeout,
                });
            }
        };
        times.connect = Some((started, Instant::now()));
        // Commands are small and latency is what we measure.
        let _ = tcp.set_nodelay(true);
        let transport = match self.mode {
            TlsMode::Implicit => {
                let started = Instant::now();
                let transport = self.handshake(tcp, addr).await?;
                times.tls = Some((started, Instant::now()));
                transport
            }
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

/// Sets `IP_BIND_ADDRESS_NO_PORT`: bind() picks no port, connect() does, so many
/// connections can share a source address as long as their 4-tuples differ.
fn bind_address_no_port(socket: &TcpSocket) -> std::io::Result<()> {
    use std::os::fd::AsRawFd;
    let on: libc::c_int = 1;
    // SAFETY: a valid socket descriptor and a pointer to a c_int that outlives the call,
    // with its exact size, as setsockopt(2) requires.
    let rc = unsafe {
        libc::setsockopt(
            socket.as_raw_fd(),
            libc::IPPROTO_IP,
            libc::IP_BIND_ADDRESS_NO_PORT,
            (&on as *const libc::c_int).cast(),
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        )
    };
    if rc == 0 {
        Ok(())
    } else {
        Err(std::io::Error::last_os_error())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn loopback_sources_are_spread() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let mut ep = Endpoint::resolve(
            "127.0.0.1",
            "127.0.0.1",
            port,
            &TlsSettings::default(),
            Duration::from_secs(5),
        )
        .await
        .unwrap();
        assert!(ep.spread_source_addresses(true));
        let mut peers = Vec::new();
        for _ in 0..3 {
            let (_conn, _) = ep.connect().await.unwrap();
            let (_, peer) = listener.accept().await.unwrap();
            peers.push(peer.ip());
        }
        let expected: Vec<IpAddr> = (1..=3)
            .map(|n| IpAddr::V4(Ipv4Addr::new(127, 0, 0, n)))
            .collect();
        assert_eq!(peers, expected);
    }

    #[tokio::test]
    async fn non_loopback_targets_are_never_spread() {
        let mut ep = Endpoint::resolve(
            "192.0.2.1",
            "192.0.2.1",
            143,
            &TlsSettings::default(),
            Duration::from_secs(1),
        )
        .await
        .unwrap();
        assert!(!ep.spread_source_addresses(true));
    }
}
