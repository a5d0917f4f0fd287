//! Raw DEFLATE in both directions over a byte stream (IMAP `COMPRESS DEFLATE`,
//! RFC 4978). Every flush ends with a sync flush, so each command reaches the server
//! whole without waiting for more input.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll, ready};

use flate2::{Compress, Compression, Decompress, FlushCompress, FlushDecompress, Status};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

const CHUNK: usize = 8 * 1024;

/// A stream whose bytes are deflated on the way out and inflated on the way in.
pub struct Deflate<S> {
    inner: S,
    compress: Compress,
    decompress: Decompress,
    /// Compressed input read from `inner` but not yet inflated.
    input: Vec<u8>,
    input_pos: usize,
    /// Compressed output not yet written to `inner`.
    output: Vec<u8>,
    output_pos: usize,
}

impl<S> std::fmt::Debug for Deflate<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Deflate").finish_non_exhaustive()
    }
}

impl<S> Deflate<S> {
    /// Wraps `inner`; `already_read` is compressed input that arrived before the switch
    /// (bytes the server sent right after its OK).
    pub fn new(inner: S, already_read: &[u8]) -> Self {
        Deflate {
            inner,
            // Level 6, raw deflate (no zlib header), as RFC 4978 and the C tool use.
            compress: Compress::new(Compression::new(6), false),
            decompress: Decompress::new(false),
            input: already_read.to_vec(),
            input_pos: 0,
            output: Vec::new(),
            output_pos: 0,
        }
    }

    pub fn get_ref(&self) -> &S {
        &self.inner
    }
}

fn data_error(e: impl std::fmt::Display) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, format!("DEFLATE: {e}"))
}

impl<S: AsyncRead + Unpin> AsyncRead for Deflate<S> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        loop {
            // Inflate whatever is buffered; with no new input this still drains output
            // the inflater holds back from an earlier call.
            let before_in = this.decompress.total_in();
            let before_out = this.decompress.total_out();
            let status = this
                .decompress
                .decompress(
                    &this.input[this.input_pos..],
                    buf.initialize_unfilled(),
                    FlushDecompress::Sync,
                )
                .map_err(data_error)?;
            let consumed = (this.decompress.total_in() - before_in) as usize;
            let produced = (this.decompress.total_out() - before_out) as usize;
            this.input_pos += consumed;
            buf.advance(produced);
            if this.input_pos >= this.input.len() {
                this.input.clear();
                this.input_pos = 0;
            }
            if produced > 0 || status == Status::StreamEnd {
                return Poll::Ready(Ok(()));
            }
            if consumed > 0 {
                continue;
            }
            // Need more compressed bytes.
            let start = this.input.len();
            this.input.resize(start + CHUNK, 0);
            let mut read = ReadBuf::new(&mut this.input[start..]);
            let result = Pin::new(&mut this.inner).poll_read(cx, &mut read);
            let n = read.filled().len();
            this.input.truncate(start + n);
            ready!(result)?;
            if n == 0 {
                // End of stream from the server.
                return Poll::Ready(Ok(()));
            }
        }
    }
}

impl<S: AsyncWrite + Unpin> Deflate<S> {
    /// Writes out pending compressed bytes.
    fn poll_drain(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        while self.output_pos < self.output.len() {
            let n =
                ready!(Pin::new(&mut self.inner).poll_write(cx, &self.output[self.output_pos..]))?;
            if n == 0 {
                return Poll::Ready(Err(io::ErrorKind::WriteZero.into()));
            }
            self.output_pos += n;
        }
        self.output.clear();
        self.output_pos = 0;
        Poll::Ready(Ok(()))
    }

    /// Compresses `data` with `flush` into the pending output.
    fn deflate(&mut self, mut data: &[u8], flush: FlushCompress) -> io::Result<()> {
        loop {
            self.output.reserve(CHUNK);
            let before_in = self.compress.total_in();
            let before_out = self.compress.total_out();
            self.compress
                .compress_vec(data, &mut self.output, flush)
                .map_err(data_error)?;
            let consumed = (self.compress.total_in() - before_in) as usize;
            let produced = (self.compress.total_out() - before_out) as usize;
            data = &data[consumed..];
            // Done when all input is taken and the compressor had room to spare.
            if data.is_empty() && self.output.len() < self.output.capacity() {
                return Ok(());
            }
            if consumed == 0 && produced == 0 && data.is_empty() {
                return Ok(());
            }
        }
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Deflate<S> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        data: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        ready!(this.poll_drain(cx))?;
        this.deflate(data, FlushCompress::None)?;
        Poll::Ready(Ok(data.len()))
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if this.output_pos >= this.output.len() {
            this.deflate(&[], FlushCompress::Sync)?;
        }
        ready!(this.poll_drain(cx))?;
        Pin::new(&mut this.inner).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        ready!(this.poll_drain(cx))?;
        Pin::new(&mut this.inner).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    #[tokio::test]
    async fn round_trip_through_a_pipe() {
        let (a, b) = tokio::io::duplex(64 * 1024);
        let mut left = Deflate::new(a, &[]);
        let mut right = Deflate::new(b, &[]);
        let big: Vec<u8> = (0..200_000u32).map(|i| (i % 251) as u8).collect();
        let writer = tokio::spawn(async move {
            left.write_all(b"1 NOOP\r\n").await.unwrap();
            left.flush().await.unwrap();
            left.write_all(&big).await.unwrap();
            left.flush().await.unwrap();
            left
        });
        let mut line = [0u8; 8];
        right.read_exact(&mut line).await.unwrap();
        assert_eq!(&line, b"1 NOOP\r\n");
        let mut rest = vec![0u8; 200_000];
        right.read_exact(&mut rest).await.unwrap();
        assert!(rest.iter().enumerate().all(|(i, &b)| b == (i % 251) as u8));
        writer.await.unwrap();
    }

    #[tokio::test]
    async fn garbage_is_an_error_not_a_panic() {
        let (mut a, b) = tokio::io::duplex(1024);
        let mut reader = Deflate::new(b, &[]);
        a.write_all(&[0xff; 64]).await.unwrap();
        let mut buf = [0u8; 64];
        let err = reader
            .read(&mut buf)
            .await
            .expect_err("invalid deflate data");
        assert_eq!(err.kind(), io::ErrorKind::InvalidData);
    }
}
