//! Reading from a connection into a growable buffer: the read size adapts to the
//! traffic (idle connections keep a small reserve, busy ones read large bodies in few
//! system calls), input goes to the rawlog, and the wait is bounded.

use std::io;
use std::time::Duration;

use bytes::BytesMut;
use tokio::io::{AsyncRead, AsyncReadExt};

use super::Rawlog;

/// Read sizes adapt between these.
const MIN_READ: usize = 1024;
const MAX_READ: usize = 64 * 1024;

/// Why a read brought nothing.
#[derive(Debug)]
pub enum ReadFailure {
    Io(io::Error),
    Timeout(Duration),
}

/// The read side's state: how much to reserve for the next read.
#[derive(Debug, Clone, Copy)]
pub struct Inbound {
    read_size: usize,
}

impl Default for Inbound {
    fn default() -> Self {
        Inbound {
            read_size: MIN_READ,
        }
    }
}

impl Inbound {
    /// Reads once into `buf` (0 means end of stream), logging the bytes to `rawlog`;
    /// `timeout: None` waits without limit.
    pub async fn fill<R: AsyncRead + Unpin>(
        &mut self,
        io: &mut R,
        buf: &mut BytesMut,
        rawlog: Option<&mut Rawlog>,
        timeout: Option<Duration>,
    ) -> Result<usize, ReadFailure> {
        buf.reserve(self.read_size);
        let start = buf.len();
        let room = buf.capacity() - start;
        let read = io.read_buf(buf);
        let n = match timeout {
            Some(limit) => match tokio::time::timeout(limit, read).await {
                Ok(r) => r.map_err(ReadFailure::Io)?,
                Err(_) => return Err(ReadFailure::Timeout(limit)),
            },
            None => read.await.map_err(ReadFailure::Io)?,
        };
        if let Some(log) = rawlog {
            log.input(&buf[start..start + n]);
        }
        self.read_size = if n >= room {
            (self.read_size * 2).min(MAX_READ)
        } else {
            (self.read_size / 2).max(MIN_READ)
        };
        Ok(n)
    }
}
