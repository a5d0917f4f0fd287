//! A byte stream (plain, client TLS or server TLS) with a read buffer, line reads and
//! timeouts, shared by the script client and the script server.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, ReadBuf};
use tokio::net::TcpStream;

use crate::net::Transport;

/// Longest line kept; a longer one is an error (an endless line must not eat memory).
pub const MAX_LINE: usize = 1 << 20;

/// The stream under a conversation.
pub enum Stream {
    Plain(TcpStream),
    ClientTls(Box<tokio_rustls::client::TlsStream<TcpStream>>),
    ServerTls(Box<tokio_rustls::server::TlsStream<TcpStream>>),
}

impl From<Transport> for Stream {
    fn from(t: Transport) -> Self {
        match t {
            Transport::Plain(tcp) => Stream::Plain(tcp),
            Transport::Tls(tls) => Stream::ClientTls(tls),
        }
    }
}

macro_rules! each {
    ($self:expr, $s:ident => $e:expr) => {
        match $self {
            Stream::Plain($s) => {
                let $s = &mut *$s;
                $e
            }
            Stream::ClientTls(b) => {
                let $s = &mut **b;
                $e
            }
            Stream::ServerTls(b) => {
                let $s = &mut **b;
                $e
            }
        }
    };
}

impl AsyncRead for Stream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let this = self.get_mut();
        let polled = each!(&mut *this, s => Pin::new(s).poll_read(cx, buf));
        if matches!(polled, Poll::Ready(Ok(()))) && buf.filled().len() > before {
            let tcp = match this {
                Stream::Plain(tcp) => &*tcp,
                Stream::ClientTls(tls) => tls.get_ref().0,
                Stream::ServerTls(tls) => tls.get_ref().0,
            };
            crate::net::transport::quick_ack(tcp);
        }
        polled
    }
}

impl AsyncWrite for Stream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        each!(self.get_mut(), s => Pin::new(s).poll_write(cx, buf))
    }
    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        each!(self.get_mut(), s => Pin::new(s).poll_flush(cx))
    }
    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        each!(self.get_mut(), s => Pin::new(s).poll_shutdown(cx))
    }
}

/// What a read produced.
#[derive(Debug, PartialEq, Eq)]
pub enum Read {
    /// A line without its line end (LF or CRLF); a last line without one at EOF too.
    Line(Vec<u8>),
    /// The peer closed the connection (or reset it).
    Eof,
}

/// Why a read or write failed.
#[derive(Debug, thiserror::Error)]
pub enum ConnError {
    #[error("timed out after {0:?}")]
    Timeout(Duration),
    #[error("a line longer than {MAX_LINE} bytes (no line end)")]
    LineTooLong,
    #[error("{0}")]
    Io(#[from] io::Error),
}

/// A conversation connection.
pub struct Conn {
    stream: Option<Stream>,
    buf: Vec<u8>,
    pos: usize,
    eof: bool,
    pub timeout: Duration,
    /// Pause between bytes sent (`*drip`); zero sends whole writes.
    pub drip: Duration,
}

fn is_eof_error(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::UnexpectedEof
            | io::ErrorKind::ConnectionReset
            | io::ErrorKind::ConnectionAborted
            | io::ErrorKind::BrokenPipe
    )
}

impl Conn {
    pub fn new(stream: Stream, timeout: Duration) -> Self {
        Conn {
            stream: Some(stream),
            buf: Vec::new(),
            pos: 0,
            eof: false,
            timeout,
            drip: Duration::ZERO,
        }
    }

    fn stream(&mut self) -> io::Result<&mut Stream> {
        self.stream
            .as_mut()
            .ok_or_else(|| io::Error::new(io::ErrorKind::NotConnected, "the connection is closed"))
    }

    pub fn is_tls(&self) -> bool {
        !matches!(self.stream, Some(Stream::Plain(_)) | None)
    }

    /// Bytes received but not consumed yet.
    pub fn buffered(&self) -> &[u8] {
        &self.buf[self.pos..]
    }

    /// Reads more bytes into the buffer; false at EOF.
    async fn fill(&mut self) -> Result<bool, ConnError> {
        if self.eof {
            return Ok(false);
        }
        if self.pos > 0 && self.pos == self.buf.len() {
            self.buf.clear();
            self.pos = 0;
        } else if self.pos > 64 * 1024 {
            self.buf.drain(..self.pos);
            self.pos = 0;
        }
        let timeout = self.timeout;
        let mut chunk = [0u8; 16 * 1024];
        let stream = self.stream()?;
        let n = match tokio::time::timeout(timeout, stream.read(&mut chunk)).await {
            Err(_) => return Err(ConnError::Timeout(timeout)),
            Ok(Ok(n)) => n,
            Ok(Err(e)) if is_eof_error(&e) => 0,
            Ok(Err(e)) => return Err(e.into()),
        };
        if n == 0 {
            self.eof = true;
            return Ok(false);
        }
        self.buf.extend_from_slice(&chunk[..n]);
        Ok(true)
    }

    /// The next line, without CRLF or LF.
    pub async fn read_line(&mut self) -> Result<Read, ConnError> {
        let mut scanned = 0;
        loop {
            let pending = &self.buf[self.pos..];
            if let Some(i) = memchr::memchr(b'\n', &pending[scanned..]) {
                let end = scanned + i;
                let mut line = pending[..end].to_vec();
                if line.last() == Some(&b'\r') {
                    line.pop();
                }
                self.pos += end + 1;
                return Ok(Read::Line(line));
            }
            scanned = pending.len();
            if scanned > MAX_LINE {
                return Err(ConnError::LineTooLong);
            }
            if !self.fill().await? {
                if self.pos == self.buf.len() {
                    return Ok(Read::Eof);
                }
                let line = self.buf[self.pos..].to_vec();
                self.pos = self.buf.len();
                return Ok(Read::Line(line));
            }
        }
    }

    /// Exactly `n` bytes; `Err` with what came if the peer closed first.
    pub async fn read_exact(&mut self, n: usize) -> Result<Result<Vec<u8>, Vec<u8>>, ConnError> {
        while self.buf.len() - self.pos < n {
            if !self.fill().await? {
                let got = self.buf[self.pos..].to_vec();
                self.pos = self.buf.len();
                return Ok(Err(got));
            }
        }
        let out = self.buf[self.pos..self.pos + n].to_vec();
        self.pos += n;
        Ok(Ok(out))
    }

    /// Reads and discards exactly `n` bytes; returns how many came before EOF.
    pub async fn discard(&mut self, mut n: usize) -> Result<usize, ConnError> {
        let total = n;
        loop {
            let have = (self.buf.len() - self.pos).min(n);
            self.pos += have;
            n -= have;
            if n == 0 {
                return Ok(total);
            }
            if !self.fill().await? {
                return Ok(total - n);
            }
        }
    }

    /// Writes all of `data` (byte by byte with `drip`).
    pub async fn write(&mut self, data: &[u8]) -> Result<(), ConnError> {
        let timeout = self.timeout;
        let drip = self.drip;
        let stream = self.stream()?;
        if drip.is_zero() {
            match tokio::time::timeout(timeout, async {
                stream.write_all(data).await?;
                stream.flush().await
            })
            .await
            {
                Err(_) => return Err(ConnError::Timeout(timeout)),
                Ok(r) => r?,
            }
            return Ok(());
        }
        for b in data {
            match tokio::time::timeout(timeout, async {
                stream.write_all(std::slice::from_ref(b)).await?;
                stream.flush().await
            })
            .await
            {
                Err(_) => return Err(ConnError::Timeout(timeout)),
                Ok(r) => r?,
            }
            tokio::time::sleep(drip).await;
        }
        Ok(())
    }

    /// Closes our side: TLS close_notify if any, then the TCP write half.
    pub async fn shutdown(&mut self) {
        if let Some(stream) = self.stream.as_mut() {
            let _ = tokio::time::timeout(self.timeout, stream.shutdown()).await;
        }
    }

    /// Takes the plain TCP stream for a TLS handshake; `None` if TLS is already on.
    pub fn take_plain(&mut self) -> Option<TcpStream> {
        match self.stream.take() {
            Some(Stream::Plain(tcp)) => Some(tcp),
            other => {
                self.stream = other;
                None
            }
        }
    }

    /// Puts a (new) stream under the connection, keeping the buffer.
    pub fn set_stream(&mut self, stream: Stream) {
        self.stream = Some(stream);
        self.eof = false;
    }

    /// Ends TLS but keeps the TCP connection. `initiate`: send our close_notify first,
    /// then read up to the peer's; otherwise read up to the peer's close_notify, then
    /// answer it. Plain text read before the close_notify stays buffered.
    pub async fn stop_tls(&mut self, initiate: bool) -> Result<(), StopTlsError> {
        if !self.is_tls() {
            return Err(StopTlsError::NotTls);
        }
        if initiate {
            self.send_close_notify().await?;
        }
        while self.fill().await? {}
        if !initiate {
            self.send_close_notify().await?;
        }
        let tcp = match self.stream.take() {
            Some(Stream::ClientTls(tls)) => tls.into_inner().0,
            Some(Stream::ServerTls(tls)) => tls.into_inner().0,
            Some(Stream::Plain(tcp)) => tcp,
            None => return Err(StopTlsError::NotTls),
        };
        self.set_stream(Stream::Plain(tcp));
        Ok(())
    }

    async fn send_close_notify(&mut self) -> Result<(), ConnError> {
        let timeout = self.timeout;
        let stream = self.stream()?;
        match stream {
            Stream::ClientTls(tls) => tls.get_mut().1.send_close_notify(),
            Stream::ServerTls(tls) => tls.get_mut().1.send_close_notify(),
            Stream::Plain(_) => return Ok(()),
        }
        match tokio::time::timeout(timeout, stream.flush()).await {
            Err(_) => Err(ConnError::Timeout(timeout)),
            Ok(r) => Ok(r?),
        }
    }
}

/// Why `stoptls` failed.
#[derive(Debug, thiserror::Error)]
pub enum StopTlsError {
    #[error("TLS is not active")]
    NotTls,
    #[error("{0}")]
    Conn(#[from] ConnError),
}
