//! A framed IMAP connection: the transport, a read buffer, the response framer and the
//! optional rawlog. It reads whole responses and writes command bytes; it knows no tags.

use std::io;
use std::net::SocketAddr;
use std::time::Duration;

use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::BytesMut;

use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt, ReadBuf};

use super::command::CommandPart;
use super::framer::{FrameError, Framer, FramerLimits, Progress, RawResponse};
use crate::net::deflate::Deflate;
use crate::net::inbound::{Inbound, ReadFailure};
use crate::net::{BodySource, Deadline, Endpoint, IoObserver, NetError, Rawlog, Transport};

/// Streamed bodies are written in chunks of this size.
const BODY_CHUNK: usize = 32 * 1024;

/// Output queued behind a streamed body, written (and logged) in order.
#[derive(Debug)]
enum Queued {
    Bytes(Vec<u8>, Option<usize>),
    Body(Box<dyn BodySource>),
}

/// Why reading or writing a response failed.
#[derive(Debug, thiserror::Error)]
pub enum StreamError {
    #[error("connection closed by server")]
    Closed,
    #[error("connection closed by server in the middle of a response: {0}")]
    Truncated(FrameError),
    /// A malformed response; the stream is still in sync and may be read again.
    #[error("{0}")]
    Frame(FrameError),
    #[error("read failed: {0}")]
    Read(io::Error),
    #[error("write failed: {0}")]
    Write(io::Error),
    #[error("reading the literal being sent failed: {0}")]
    Body(io::Error),
    #[error("no response from server within {0:?}")]
    Timeout(Duration),
    #[error("{progress} and did not complete it within {waited:?}")]
    Incomplete {
        progress: Progress,
        waited: Duration,
    },
    #[error("server did not take our data within {0:?} (it stopped reading)")]
    WriteTimeout(Duration),
    /// The total time of a command (or start-up step) ran out while the server kept
    /// sending without completing its reply, or went quiet in the middle of it.
    #[error("server did not complete its reply within {0:?} (timeout= bounds the whole reply)")]
    Deadline(Duration),
    #[error(
        "server sent {0} bytes after its STARTTLS reply, before the TLS handshake (possible response injection)"
    )]
    StartTlsInjection(usize),
    #[error("STARTTLS on a connection that already uses TLS")]
    AlreadyTls,
    #[error("the connection is already compressed")]
    Compressed,
    #[error("{0}")]
    Net(#[from] NetError),
}

impl StreamError {
    /// True if the connection can still be used after this error.
    pub fn is_recoverable(&self) -> bool {
        matches!(self, StreamError::Frame(_))
    }
}

/// A connection carrying IMAP responses.
#[derive(Debug)]
pub struct ImapStream {
    io: Io,
    peer: SocketAddr,
    buf: BytesMut,
    framer: Framer,
    limits: FramerLimits,
    rawlog: Option<Rawlog>,
    timeout: Duration,
    bytes_in: u64,
    bytes_out: u64,
    inbound: Inbound,
    /// Bytes queued by [`Self::queue`], written by [`Self::flush_queued`].
    out: Vec<u8>,
    /// What was queued after the first streamed body, in order (empty without bodies).
    later: std::collections::VecDeque<Queued>,
    /// Told about every read and write.
    observer: Option<std::sync::Arc<dyn IoObserver>>,
    /// When bytes last arrived (tells a silent server from a slow one).
    last_input: Option<tokio::time::Instant>,
    /// When the first bytes of the response being read arrived.
    response_started: Option<tokio::time::Instant>,
}

impl ImapStream {
    pub fn new(
        transport: Transport,
        peer: SocketAddr,
        limits: FramerLimits,
        rawlog: Option<Rawlog>,
        timeout: Duration,
    ) -> Self {
        ImapStream {
            io: Io::Raw(transport),
            peer,
            buf: BytesMut::new(),
            inbound: Inbound::default(),
            framer: Framer::new(limits),
            limits,
            rawlog,
            timeout,
            bytes_in: 0,
            bytes_out: 0,
            out: Vec::new(),
            later: std::collections::VecDeque::new(),
            observer: None,
            last_input: None,
            response_started: None,
        }
    }

    /// Tells `observer` about every read and write from now on.
    pub fn observe(&mut self, observer: std::sync::Arc<dyn IoObserver>) {
        self.observer = Some(observer);
    }

    pub fn peer(&self) -> SocketAddr {
        self.peer
    }

    pub fn is_tls(&self) -> bool {
        match &self.io {
            Io::Raw(t) => t.is_tls(),
            Io::Compressed(d) => d.get_ref().is_tls(),
            Io::Detached => false,
        }
    }

    pub fn bytes_in(&self) -> u64 {
        self.bytes_in
    }

    pub fn bytes_out(&self) -> u64 {
        self.bytes_out
    }

    pub fn rawlog_mut(&mut self) -> Option<&mut Rawlog> {
        self.rawlog.as_mut()
    }

    /// The wait allowed for each read.
    pub fn timeout(&self) -> Duration {
        self.timeout
    }

    /// Reads the next complete response, waiting at most the stream's timeout for data.
    pub async fn read_response(&mut self) -> Result<RawResponse, StreamError> {
        self.read_inner(Some(self.timeout), None).await
    }

    /// Reads the next complete response; `None` waits without limit (IDLE).
    pub async fn read_response_within(
        &mut self,
        timeout: Option<Duration>,
    ) -> Result<RawResponse, StreamError> {
        self.read_inner(timeout, None).await
    }

    /// Reads the next complete response, waiting at most the stream's timeout for each
    /// read and never past `deadline` ([`StreamError::Deadline`]).
    pub async fn read_response_by(
        &mut self,
        deadline: Option<Deadline>,
    ) -> Result<RawResponse, StreamError> {
        self.read_inner(Some(self.timeout), deadline).await
    }

    /// Like [`Self::read_response_by`] with `idle` instead of the stream's timeout as the
    /// wait for each read (`None`: only the deadline bounds it).
    pub async fn read_response_idle_by(
        &mut self,
        idle: Option<Duration>,
        deadline: Option<Deadline>,
    ) -> Result<RawResponse, StreamError> {
        self.read_inner(idle, deadline).await
    }

    async fn read_inner(
        &mut self,
        idle: Option<Duration>,
        deadline: Option<Deadline>,
    ) -> Result<RawResponse, StreamError> {
        loop {
            match self.framer.next_response(&mut self.buf) {
                Ok(Some(response)) => {
                    self.response_started = None;
                    return Ok(response);
                }
                Ok(None) => {}
                Err(e) => {
                    self.response_started = None;
                    return Err(StreamError::Frame(e));
                }
            }
            // A server that keeps sending never lets a read time out: the deadline is
            // checked between reads too.
            if let Some(d) = deadline.filter(Deadline::is_past) {
                return Err(self.out_of_time(d.limit(), true, deadline));
            }
            let (wait, by_deadline) = Deadline::read_wait(deadline, idle);
            let filled = match self.fill(wait).await {
                Err(StreamError::Timeout(waited)) => {
                    let waited = match deadline {
                        Some(d) if by_deadline => d.limit(),
                        _ => waited,
                    };
                    return Err(self.out_of_time(waited, by_deadline, deadline));
                }
                other => other?,
            };
            if filled == 0 {
                return match self.framer.finish(&mut self.buf) {
                    Ok(()) => Err(StreamError::Closed),
                    Err(e) => Err(StreamError::Truncated(e)),
                };
            }
        }
    }

    /// The error for a wait that ran out after `waited`: how far the response in
    /// progress got, else a deadline (the server sent something during the command)
    /// or a plain timeout (it was silent throughout).
    fn out_of_time(
        &self,
        waited: Duration,
        by_deadline: bool,
        deadline: Option<Deadline>,
    ) -> StreamError {
        let heard =
            deadline.is_some_and(|d| self.last_input.is_some_and(|at| at + d.limit() > d.at()));
        // A response that has been arriving for a good part of the wait explains it (a
        // drip, a line or literal without end); a fresh one is just the latest of many.
        let long_arriving = self
            .response_started
            .is_some_and(|at| at.elapsed() >= waited / 2);
        match self.framer.progress(&self.buf) {
            Some(progress) if long_arriving || !heard => {
                StreamError::Incomplete { progress, waited }
            }
            _ if by_deadline && heard => StreamError::Deadline(waited),
            _ => StreamError::Timeout(waited),
        }
    }

    /// True if bytes are buffered that do not yet form a whole response.
    pub fn has_buffered_input(&self) -> bool {
        !self.buf.is_empty()
    }

    async fn fill(&mut self, timeout: Option<Duration>) -> Result<usize, StreamError> {
        let n = self
            .inbound
            .fill(&mut self.io, &mut self.buf, self.rawlog.as_mut(), timeout)
            .await
            .map_err(|failure| match failure {
                ReadFailure::Io(e) => StreamError::Read(e),
                ReadFailure::Timeout(limit) => StreamError::Timeout(limit),
            })?;
        self.bytes_in += n as u64;
        if n > 0 {
            let now = tokio::time::Instant::now();
            self.last_input = Some(now);
            self.response_started.get_or_insert(now);
        }
        if let Some(observer) = &self.observer {
            observer.io();
        }
        Ok(n)
    }

    /// Sends bytes; `secret_from` masks the rest of that line in the rawlog.
    pub async fn send(
        &mut self,
        bytes: &[u8],
        secret_from: Option<usize>,
    ) -> Result<(), StreamError> {
        self.queue(bytes, secret_from);
        self.flush_queued().await
    }

    /// Queues bytes for the next [`Self::flush_queued`], so pipelined commands leave
    /// in one write.
    pub fn queue(&mut self, bytes: &[u8], secret_from: Option<usize>) {
        if !self.later.is_empty() {
            self.later
                .push_back(Queued::Bytes(bytes.to_vec(), secret_from));
            return;
        }
        if let Some(log) = &mut self.rawlog {
            log.output(bytes, secret_from);
        }
        self.out.extend_from_slice(bytes);
    }

    /// Queues a command piece; its streamed bodies are read while they are written.
    pub fn queue_part(&mut self, part: CommandPart) {
        self.queue(&part.bytes, part.secret_from);
        for (body, after) in part.streamed {
            self.later.push_back(Queued::Body(body));
            if !after.is_empty() {
                self.later.push_back(Queued::Bytes(after, None));
            }
        }
    }

    /// Queues and writes a command piece.
    pub async fn send_part(&mut self, part: CommandPart) -> Result<(), StreamError> {
        self.queue_part(part);
        self.flush_queued().await
    }

    /// Writes everything queued.
    pub async fn flush_queued(&mut self) -> Result<(), StreamError> {
        if self.out.is_empty() && self.later.is_empty() {
            return Ok(());
        }
        self.write_out().await?;
        while let Some(queued) = self.later.pop_front() {
            match queued {
                Queued::Bytes(bytes, secret_from) => {
                    if let Some(log) = &mut self.rawlog {
                        log.output(&bytes, secret_from);
                    }
                    self.out = bytes;
                    self.write_out().await?;
                }
                Queued::Body(mut body) => {
                    while body.remaining() > 0 {
                        body.read_into(&mut self.out, BODY_CHUNK)
                            .map_err(StreamError::Body)?;
                        if self.out.is_empty() {
                            return Err(StreamError::Body(io::ErrorKind::UnexpectedEof.into()));
                        }
                        if let Some(log) = &mut self.rawlog {
                            log.output(&self.out, None);
                        }
                        self.write_out().await?;
                    }
                }
            }
        }
        // A server that stops reading must not hold the write forever.
        match tokio::time::timeout(self.timeout, self.io.flush()).await {
            Ok(r) => r.map_err(StreamError::Write)?,
            Err(_) => return Err(StreamError::WriteTimeout(self.timeout)),
        }
        if let Some(observer) = &self.observer {
            observer.io();
        }
        // Don't keep a large APPEND buffer around on an idle connection.
        if self.out.capacity() > 64 * 1024 {
            self.out = Vec::new();
        }
        Ok(())
    }

    /// Writes and empties `out`.
    async fn write_out(&mut self) -> Result<(), StreamError> {
        if self.out.is_empty() {
            return Ok(());
        }
        // A server that stops reading must not hold the write forever.
        match tokio::time::timeout(self.timeout, self.io.write_all(&self.out)).await {
            Ok(r) => r.map_err(StreamError::Write)?,
            Err(_) => return Err(StreamError::WriteTimeout(self.timeout)),
        }
        self.bytes_out += self.out.len() as u64;
        self.out.clear();
        Ok(())
    }

    /// Upgrades to TLS after the server's positive STARTTLS reply. Any byte the server
    /// sent after that reply is an error: it would be plaintext injected into the session.
    pub async fn start_tls(self, endpoint: &Endpoint) -> Result<Self, StreamError> {
        if !self.buf.is_empty() {
            return Err(StreamError::StartTlsInjection(self.buf.len()));
        }
        let ImapStream {
            io,
            peer,
            limits,
            mut rawlog,
            timeout,
            bytes_in,
            bytes_out,
            observer,
            ..
        } = self;
        let tcp = match io {
            Io::Raw(Transport::Plain(tcp)) => tcp,
            Io::Raw(Transport::Tls(_)) => return Err(StreamError::AlreadyTls),
            Io::Compressed(_) | Io::Detached => return Err(StreamError::Compressed),
        };
        let transport = endpoint.handshake(tcp, peer).await?;
        if let Some(log) = &mut rawlog {
            log.note("TLS handshake done");
        }
        let mut upgraded = ImapStream::new(transport, peer, limits, rawlog, timeout);
        upgraded.bytes_in = bytes_in;
        upgraded.bytes_out = bytes_out;
        upgraded.observer = observer;
        Ok(upgraded)
    }

    /// Starts `COMPRESS DEFLATE` after the server's OK: from here on both directions are
    /// compressed. Input buffered after the OK is already compressed data.
    pub fn start_compress(&mut self) -> Result<(), StreamError> {
        let leftover = self.buf.split();
        match std::mem::replace(&mut self.io, Io::Detached) {
            Io::Raw(transport) => {
                self.io = Io::Compressed(Box::new(Deflate::new(transport, &leftover)));
                if let Some(log) = &mut self.rawlog {
                    log.note("COMPRESS DEFLATE started");
                }
                Ok(())
            }
            other => {
                self.io = other;
                Err(StreamError::Compressed)
            }
        }
    }

    pub fn is_compressed(&self) -> bool {
        matches!(self.io, Io::Compressed(_))
    }

    /// Closes the write side; errors are of no interest at this point.
    pub async fn shutdown(&mut self) {
        let _ = self.io.shutdown().await;
    }
}

/// The transport, or the transport under DEFLATE after COMPRESS.
#[derive(Debug)]
enum Io {
    Raw(Transport),
    Compressed(Box<Deflate<Transport>>),
    /// Only while switching to compression.
    Detached,
}

fn detached() -> io::Error {
    io::Error::new(io::ErrorKind::NotConnected, "connection is being switched")
}

impl AsyncRead for Io {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Io::Raw(t) => Pin::new(t).poll_read(cx, buf),
            Io::Compressed(d) => Pin::new(d.as_mut()).poll_read(cx, buf),
            Io::Detached => Poll::Ready(Err(detached())),
        }
    }
}

impl AsyncWrite for Io {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Io::Raw(t) => Pin::new(t).poll_write(cx, buf),
            Io::Compressed(d) => Pin::new(d.as_mut()).poll_write(cx, buf),
            Io::Detached => Poll::Ready(Err(detached())),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Io::Raw(t) => Pin::new(t).poll_flush(cx),
            Io::Compressed(d) => Pin::new(d.as_mut()).poll_flush(cx),
            Io::Detached => Poll::Ready(Err(detached())),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Io::Raw(t) => Pin::new(t).poll_shutdown(cx),
            Io::Compressed(d) => Pin::new(d.as_mut()).poll_shutdown(cx),
            Io::Detached => Poll::Ready(Err(detached())),
        }
    }
}
