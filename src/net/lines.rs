//! A line-oriented connection for text protocols (LMTP, POP3): a bounded CRLF line
//! reader and a write queue over any byte stream, with the optional rawlog.
//! Knows no protocol: no reply codes, no dot-stuffing.
//!
//! Lines end in LF; a CR before it is dropped too, so bare-LF servers are tolerated.
//! A line longer than the caller's bound is an error (the stream is then out of sync
//! and must be closed), so a server cannot make the client buffer without limit.

use std::io;
use std::net::SocketAddr;
use std::time::Duration;

use bytes::{Buf, BytesMut};
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt};

use super::inbound::{Inbound, ReadFailure};
use super::{Endpoint, NetError, Rawlog, Transport};

/// The default bound on one line, CRLF excluded.
pub const DEFAULT_MAX_LINE: usize = 64 * 1024;

/// How much of a server line error messages quote.
const QUOTE_MAX: usize = 200;

/// Why reading or writing a line failed.
#[derive(Debug, thiserror::Error)]
pub enum LineError {
    #[error("connection closed by server")]
    Closed,
    #[error("connection closed by server in the middle of a line: {partial:?}")]
    Truncated {
        /// The start of the unfinished line, lossily decoded.
        partial: String,
    },
    #[error("server line longer than {limit} bytes: {start:?}...")]
    TooLong {
        limit: usize,
        /// The start of the line, lossily decoded.
        start: String,
    },
    #[error("read failed: {0}")]
    Read(io::Error),
    #[error("write failed: {0}")]
    Write(io::Error),
    #[error("no reply from server within {0:?}")]
    Timeout(Duration),
    #[error(
        "server sent {0} bytes after its TLS go-ahead, before the TLS handshake (possible response injection)"
    )]
    StartTlsInjection(usize),
    #[error("TLS upgrade on a connection that already uses TLS")]
    AlreadyTls,
    #[error("{0}")]
    Net(#[from] NetError),
}

/// Lossy, shortened text of a server line for error messages.
pub fn quote(line: &[u8]) -> String {
    let cut = line.len().min(QUOTE_MAX);
    let mut s = String::from_utf8_lossy(&line[..cut]).into_owned();
    if cut < line.len() {
        s.push_str("...");
    }
    s
}

/// A connection read and written in lines. `S` is the byte stream: [`Transport`] for
/// real connections, anything else (e.g. `tokio::io::DuplexStream`) in tests.
#[derive(Debug)]
pub struct LineStream<S = Transport> {
    io: S,
    peer: SocketAddr,
    buf: BytesMut,
    /// Bytes at the front of `buf` that belong to the line last returned.
    consumed: usize,
    rawlog: Option<Rawlog>,
    timeout: Duration,
    bytes_in: u64,
    bytes_out: u64,
    inbound: Inbound,
    out: Vec<u8>,
}

impl<S: AsyncRead + AsyncWrite + Unpin> LineStream<S> {
    pub fn new(io: S, peer: SocketAddr, rawlog: Option<Rawlog>, timeout: Duration) -> Self {
        LineStream {
            io,
            peer,
            buf: BytesMut::new(),
            consumed: 0,
            rawlog,
            timeout,
            bytes_in: 0,
            bytes_out: 0,
            inbound: Inbound::default(),
            out: Vec::new(),
        }
    }

    pub fn peer(&self) -> SocketAddr {
        self.peer
    }

    pub fn bytes_in(&self) -> u64 {
        self.bytes_in
    }

    pub fn bytes_out(&self) -> u64 {
        self.bytes_out
    }

    pub fn timeout(&self) -> Duration {
        self.timeout
    }

    pub fn set_timeout(&mut self, timeout: Duration) {
        self.timeout = timeout;
    }

    pub fn rawlog_mut(&mut self) -> Option<&mut Rawlog> {
        self.rawlog.as_mut()
    }

    /// True if bytes are buffered beyond the line last returned.
    pub fn has_buffered_input(&self) -> bool {
        self.buf.len() > self.consumed
    }

    /// Reads the next line, without its line end. At most `max` bytes of content are
    /// accepted; a longer line is [`LineError::TooLong`]. Waits at most the stream's
    /// timeout for each read.
    pub async fn read_line(&mut self, max: usize) -> Result<&[u8], LineError> {
        self.buf.advance(self.consumed);
        self.consumed = 0;
        let mut scanned = 0;
        let end = loop {
            if let Some(i) = memchr::memchr(b'\n', &self.buf[scanned..]) {
                break scanned + i;
            }
            scanned = self.buf.len();
            // Content plus a CR may be buffered without the LF yet.
            if scanned > max.saturating_add(1) {
                return Err(LineError::TooLong {
                    limit: max,
                    start: quote(&self.buf[..QUOTE_MAX.min(scanned)]),
                });
            }
            if self.fill().await? == 0 {
                return Err(if self.buf.is_empty() {
                    LineError::Closed
                } else {
                    LineError::Truncated {
                        partial: quote(&self.buf),
                    }
                });
            }
        };
        let content = if end > 0 && self.buf[end - 1] == b'\r' {
            end - 1
        } else {
            end
        };
        if content > max {
            return Err(LineError::TooLong {
                limit: max,
                start: quote(&self.buf[..QUOTE_MAX.min(content)]),
            });
        }
        self.consumed = end + 1;
        Ok(&self.buf[..content])
    }

    async fn fill(&mut self) -> Result<usize, LineError> {
        let n = self
            .inbound
            .fill(
                &mut self.io,
                &mut self.buf,
                self.rawlog.as_mut(),
                Some(self.timeout),
            )
            .await
            .map_err(|failure| match failure {
                ReadFailure::Io(e) => LineError::Read(e),
                ReadFailure::Timeout(limit) => LineError::Timeout(limit),
            })?;
        self.bytes_in += n as u64;
        Ok(n)
    }

    /// Queues bytes for the next [`Self::flush`]; `secret_from` masks the rest of the
    /// line in the rawlog.
    pub fn queue(&mut self, bytes: &[u8], secret_from: Option<usize>) {
        if let Some(log) = &mut self.rawlog {
            log.output(bytes, secret_from);
        }
        self.out.extend_from_slice(bytes);
    }

    /// Queues whatever `write` appends to the output buffer (e.g. an encoded message,
    /// without an intermediate copy). Logged unmasked.
    pub fn queue_with(&mut self, write: impl FnOnce(&mut Vec<u8>)) {
        let start = self.out.len();
        write(&mut self.out);
        if let Some(log) = &mut self.rawlog {
            log.output(&self.out[start..], None);
        }
    }

    /// Sends bytes now (after anything already queued).
    pub async fn send(
        &mut self,
        bytes: &[u8],
        secret_from: Option<usize>,
    ) -> Result<(), LineError> {
        self.queue(bytes, secret_from);
        self.flush().await
    }

    /// Writes everything queued.
    pub async fn flush(&mut self) -> Result<(), LineError> {
        if self.out.is_empty() {
            return Ok(());
        }
        let write = async {
            self.io.write_all(&self.out).await?;
            self.io.flush().await
        };
        match tokio::time::timeout(self.timeout, write).await {
            Ok(r) => r.map_err(LineError::Write)?,
            Err(_) => return Err(LineError::Timeout(self.timeout)),
        }
        self.bytes_out += self.out.len() as u64;
        self.out.clear();
        // Don't keep a large message buffer around on an idle connection.
        if self.out.capacity() > 64 * 1024 {
            self.out = Vec::new();
        }
        Ok(())
    }

    /// Writes a note into the rawlog, if there is one.
    pub fn note(&mut self, text: &str) {
        if let Some(log) = &mut self.rawlog {
            log.note(text);
        }
    }

    /// Closes the write side; errors are of no interest at this point.
    pub async fn shutdown(&mut self) {
        let _ = self.io.shutdown().await;
    }

    /// The underlying byte stream.
    pub fn get_ref(&self) -> &S {
        &self.io
    }
}

impl LineStream<Transport> {
    pub fn is_tls(&self) -> bool {
        self.io.is_tls()
    }

    /// Upgrades to TLS after the server's go-ahead (LMTP `220`, POP3 `+OK` to STLS).
    /// Any byte the server sent after that line is an error: it would be plaintext
    /// injected into the protected session.
    pub async fn start_tls(self, endpoint: &Endpoint) -> Result<Self, LineError> {
        if self.has_buffered_input() {
            return Err(LineError::StartTlsInjection(self.buf.len() - self.consumed));
        }
        let LineStream {
            io,
            peer,
            mut rawlog,
            timeout,
            bytes_in,
            bytes_out,
            ..
        } = self;
        let tcp = match io {
            Transport::Plain(tcp) => tcp,
            Transport::Tls(_) => return Err(LineError::AlreadyTls),
        };
        let io = endpoint.handshake(tcp, peer).await?;
        if let Some(log) = &mut rawlog {
            log.note("TLS handshake done");
        }
        let mut upgraded = LineStream::new(io, peer, rawlog, timeout);
        upgraded.bytes_in = bytes_in;
        upgraded.bytes_out = bytes_out;
        Ok(upgraded)
    }
}

/// Opens `<dir>/rawlog.<id>` when a rawlog directory is configured.
/// Why [`LineStream::open`] failed.
#[derive(Debug)]
pub enum OpenError {
    Connect(NetError),
    Rawlog(LineError),
}

impl LineStream<Transport> {
    /// Connects to `endpoint` (with implicit TLS when configured) and opens the rawlog
    /// `rawlog.<id>` in `rawlog_dir`: the common start of the LMTP and POP3 clients.
    /// `times` gets the connect and implicit-TLS phases.
    pub async fn open(
        endpoint: &Endpoint,
        id: u64,
        rawlog_dir: Option<&std::path::Path>,
        timeout: Duration,
        times: &mut super::PhaseTimes,
    ) -> Result<Self, OpenError> {
        let (transport, peer) = endpoint
            .connect_timed(times)
            .await
            .map_err(OpenError::Connect)?;
        let rawlog = open_rawlog(rawlog_dir, id).map_err(OpenError::Rawlog)?;
        Ok(LineStream::new(transport, peer, rawlog, timeout))
    }
}

pub fn open_rawlog(dir: Option<&std::path::Path>, id: u64) -> Result<Option<Rawlog>, LineError> {
    match dir {
        Some(dir) => Rawlog::create(dir, id).map(Some).map_err(|e| {
            LineError::Write(io::Error::other(format!(
                "cannot create rawlog in {}: {e}",
                dir.display()
            )))
        }),
        None => Ok(None),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncWriteExt, DuplexStream, duplex};

    fn addr() -> SocketAddr {
        "127.0.0.1:1".parse().unwrap()
    }

    fn stream(server_bytes: &[u8]) -> LineStream<DuplexStream> {
        let (client, mut server) = duplex(1 << 20);
        let bytes = server_bytes.to_vec();
        tokio::spawn(async move {
            let _ = server.write_all(&bytes).await;
            let _ = server.shutdown().await;
            // Keep reading until the client is gone so its writes don't block.
            let mut sink = Vec::new();
            let _ = tokio::io::AsyncReadExt::read_to_end(&mut server, &mut sink).await;
        });
        LineStream::new(client, addr(), None, Duration::from_secs(5))
    }

    #[tokio::test]
    async fn crlf_and_bare_lf_lines() {
        let mut s = stream(b"one\r\ntwo\nthree\r\n\r\n");
        assert_eq!(s.read_line(100).await.unwrap(), b"one");
        assert_eq!(s.read_line(100).await.unwrap(), b"two");
        assert_eq!(s.read_line(100).await.unwrap(), b"three");
        assert_eq!(s.read_line(100).await.unwrap(), b"");
    }

    #[tokio::test]
    async fn eof_cases() {
        let mut s = stream(b"");
        assert!(matches!(s.read_line(100).await, Err(LineError::Closed)));
        let mut s = stream(b"partial");
        match s.read_line(100).await {
            Err(LineError::Truncated { partial }) => assert_eq!(partial, "partial"),
            other => panic!("{other:?}"),
        }
    }

    #[tokio::test]
    async fn line_bound() {
        let mut s = stream(b"12345\r\n123456\r\n");
        assert_eq!(s.read_line(5).await.unwrap(), b"12345");
        assert!(matches!(
            s.read_line(5).await,
            Err(LineError::TooLong { limit: 5, .. })
        ));
        // A huge line without LF fails once the bound is passed, not at EOF.
        let (client, mut server) = duplex(1 << 16);
        tokio::spawn(async move {
            let chunk = vec![b'x'; 4096];
            loop {
                if server.write_all(&chunk).await.is_err() {
                    break;
                }
            }
        });
        let mut s = LineStream::new(client, addr(), None, Duration::from_secs(5));
        assert!(matches!(
            s.read_line(100_000).await,
            Err(LineError::TooLong { limit: 100_000, .. })
        ));
    }

    #[tokio::test]
    async fn timeout() {
        let (client, _server) = duplex(64);
        let mut s = LineStream::new(client, addr(), None, Duration::from_millis(50));
        assert!(matches!(s.read_line(10).await, Err(LineError::Timeout(_))));
    }
}
