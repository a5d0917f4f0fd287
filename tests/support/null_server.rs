//! A null IMAP server for tests and benchmarks: it answers every command at once with
//! canned replies and keeps no state, so a run against it measures the client alone.
//!
//! * Greeting: `* OK [CAPABILITY IMAP4rev1 LITERAL+ IDLE MOVE] null`.
//! * SELECT/EXAMINE: 100 messages. FETCH: two small untagged FETCHes. LIST, STATUS,
//!   SEARCH, SORT, THREAD, CAPABILITY: one small untagged reply each.
//! * APPEND (any command with literals): synchronizing literals get `+ go`, the literal
//!   is skipped, the command is answered when its last line arrives.
//! * IDLE: `+ idling`, then `DONE` completes it.
//! * LOGOUT: `* BYE`, the tagged OK, then the connection is closed.
//! * NOOP: answered, unless [`NullOptions::answer_noop`] is false: then it is never
//!   answered, which holds a logged-in client idle (for memory-per-connection figures).
//! * Everything else: `<tag> OK done`. Pipelined commands are answered in order, with
//!   one write per read.
//!
//! The server runs on its own thread with a single-threaded tokio runtime and stops
//! when the [`NullServer`] is dropped.
#![allow(dead_code)]

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpSocket, TcpStream};
use tokio::sync::oneshot;

/// How the null server behaves.
#[derive(Debug, Clone, Copy)]
pub struct NullOptions {
    /// Answer NOOP (true) or hold it forever (false).
    pub answer_noop: bool,
}

impl Default for NullOptions {
    fn default() -> Self {
        NullOptions { answer_noop: true }
    }
}

/// Counters the server keeps, readable while it runs.
#[derive(Debug, Default)]
pub struct NullStats {
    /// Connections accepted.
    pub accepted: AtomicU64,
    /// Connections currently open.
    pub open: AtomicU64,
    /// Commands answered (tagged replies sent).
    pub answered: AtomicU64,
    /// NOOPs currently held unanswered (one per idle connection).
    pub held: AtomicU64,
}

/// A running null server; dropping it stops the server and closes every connection.
pub struct NullServer {
    pub addr: SocketAddr,
    pub stats: Arc<NullStats>,
    stop: Option<oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl NullServer {
    /// Listens on 127.0.0.1 on a free port.
    pub fn start(options: NullOptions) -> std::io::Result<NullServer> {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_io()
            .enable_time()
            .build()?;
        // A deep backlog: thousands of clients connect at once, and a dropped SYN costs
        // a client a one-second retransmit.
        let listener = {
            let _guard = runtime.enter();
            let socket = TcpSocket::new_v4()?;
            socket.set_reuseaddr(true)?;
            socket.bind(SocketAddr::from(([127, 0, 0, 1], 0)))?;
            socket.listen(LISTEN_BACKLOG)?
        };
        let addr = listener.local_addr()?;
        let stats = Arc::new(NullStats::default());
        let (stop, stopped) = oneshot::channel();
        let thread_stats = stats.clone();
        let thread = std::thread::Builder::new()
            .name("null-imap".into())
            .spawn(move || {
                runtime.block_on(async move {
                    tokio::select! {
                        () = accept_loop(listener, options, thread_stats) => {}
                        _ = stopped => {}
                    }
                });
                // Dropping the runtime drops every connection task and its socket.
            })?;
        Ok(NullServer {
            addr,
            stats,
            stop: Some(stop),
            thread: Some(thread),
        })
    }

    pub fn port(&self) -> u16 {
        self.addr.port()
    }
}

impl Drop for NullServer {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

async fn accept_loop(listener: TcpListener, options: NullOptions, stats: Arc<NullStats>) {
    loop {
        match listener.accept().await {
            Ok((socket, _)) => {
                stats.accepted.fetch_add(1, Ordering::Relaxed);
                stats.open.fetch_add(1, Ordering::Relaxed);
                let stats = stats.clone();
                tokio::spawn(async move {
                    let mut conn = Connection {
                        options,
                        stats: &stats,
                        command: Vec::new(),
                        literal_left: 0,
                        idle_tag: None,
                        held: 0,
                        closing: false,
                    };
                    let _ = conn.serve(socket).await;
                    stats.held.fetch_sub(conn.held, Ordering::Relaxed);
                    stats.open.fetch_sub(1, Ordering::Relaxed);
                });
            }
            // Out of descriptors or similar: back off briefly and keep serving.
            Err(_) => tokio::time::sleep(std::time::Duration::from_millis(10)).await,
        }
    }
}

const LISTEN_BACKLOG: u32 = 16 * 1024;

const GREETING: &[u8] = b"* OK [CAPABILITY IMAP4rev1 LITERAL+ IDLE MOVE] null\r\n";

struct Connection<'a> {
    options: NullOptions,
    stats: &'a NullStats,
    /// The command so far (lines without their literals).
    command: Vec<u8>,
    /// Literal bytes still to skip.
    literal_left: usize,
    /// The tag of a running IDLE.
    idle_tag: Option<Vec<u8>>,
    /// NOOPs this connection holds unanswered.
    held: u64,
    closing: bool,
}

impl Connection<'_> {
    async fn serve(&mut self, mut socket: TcpStream) -> std::io::Result<()> {
        socket.set_nodelay(true)?;
        socket.write_all(GREETING).await?;
        let mut input = Vec::with_capacity(1024);
        let mut out = Vec::with_capacity(1024);
        loop {
            if socket.read_buf(&mut input).await? == 0 {
                return Ok(());
            }
            let used = self.process(&input, &mut out);
            input.drain(..used);
            if !out.is_empty() {
                socket.write_all(&out).await?;
                out.clear();
            }
            if self.closing {
                return socket.shutdown().await;
            }
        }
    }

    /// Handles what `input` holds; returns how many bytes were consumed.
    fn process(&mut self, input: &[u8], out: &mut Vec<u8>) -> usize {
        let mut pos = 0;
        while pos < input.len() && !self.closing {
            if self.literal_left > 0 {
                let take = self.literal_left.min(input.len() - pos);
                self.literal_left -= take;
                pos += take;
                continue;
            }
            let Some(nl) = input[pos..].iter().position(|&b| b == b'\n') else {
                break;
            };
            let mut line = &input[pos..pos + nl];
            pos += nl + 1;
            if let Some(stripped) = line.strip_suffix(b"\r") {
                line = stripped;
            }
            self.command.extend_from_slice(line);
            if let Some((size, sync)) = literal_at_end(line) {
                self.literal_left = size;
                if sync {
                    out.extend_from_slice(b"+ go\r\n");
                }
                continue;
            }
            let command = std::mem::take(&mut self.command);
            self.answer(&command, out);
        }
        pos
    }

    fn answer(&mut self, line: &[u8], out: &mut Vec<u8>) {
        if let Some(tag) = self.idle_tag.take() {
            // Anything ends IDLE; DONE is the only thing a client should send.
            self.tagged_ok(&tag, out);
            return;
        }
        let mut words = line.split(|&b| b == b' ');
        let tag = words.next().unwrap_or_default().to_vec();
        let mut name = words.next().unwrap_or_default().to_ascii_uppercase();
        if name == b"UID" {
            name = words.next().unwrap_or_default().to_ascii_uppercase();
        }
        match name.as_slice() {
            b"LOGOUT" => {
                out.extend_from_slice(b"* BYE logging out\r\n");
                self.closing = true;
            }
            b"SELECT" | b"EXAMINE" => out.extend_from_slice(
                b"* 100 EXISTS\r\n* 0 RECENT\r\n* OK [UIDVALIDITY 1] ok\r\n\
                  * OK [UIDNEXT 101] ok\r\n* FLAGS (\\Answered \\Flagged \\Deleted \\Seen \\Draft)\r\n",
            ),
            b"FETCH" => out.extend_from_slice(
                b"* 1 FETCH (UID 1 FLAGS (\\Seen))\r\n* 2 FETCH (UID 2 FLAGS ())\r\n",
            ),
            b"LIST" | b"LSUB" => out.extend_from_slice(b"* LIST () \"/\" INBOX\r\n"),
            b"STATUS" => {
                out.extend_from_slice(b"* STATUS INBOX (MESSAGES 100 UNSEEN 0 RECENT 0)\r\n")
            }
            b"SEARCH" => out.extend_from_slice(b"* SEARCH 1 2\r\n"),
            b"SORT" => out.extend_from_slice(b"* SORT 1 2\r\n"),
            b"THREAD" => out.extend_from_slice(b"* THREAD (1)(2)\r\n"),
            b"CAPABILITY" => {
                out.extend_from_slice(b"* CAPABILITY IMAP4rev1 LITERAL+ IDLE MOVE\r\n")
            }
            b"IDLE" => {
                out.extend_from_slice(b"+ idling\r\n");
                self.idle_tag = Some(tag);
                return;
            }
            b"NOOP" if !self.options.answer_noop => {
                self.held += 1;
                self.stats.held.fetch_add(1, Ordering::Relaxed);
                return;
            }
            b"STARTTLS" | b"COMPRESS" => {
                out.extend_from_slice(&tag);
                out.extend_from_slice(b" NO not supported\r\n");
                self.stats.answered.fetch_add(1, Ordering::Relaxed);
                return;
            }
            _ => {}
        }
        self.tagged_ok(&tag, out);
    }

    fn tagged_ok(&self, tag: &[u8], out: &mut Vec<u8>) {
        out.extend_from_slice(tag);
        out.extend_from_slice(b" OK done\r\n");
        self.stats.answered.fetch_add(1, Ordering::Relaxed);
    }
}

/// `{123}` or `{123+}` at the end of a line: the literal's size and whether it is
/// synchronizing.
fn literal_at_end(line: &[u8]) -> Option<(usize, bool)> {
    let inner = line.strip_suffix(b"}")?;
    let open = inner.iter().rposition(|&b| b == b'{')?;
    let mut digits = &inner[open + 1..];
    let mut sync = true;
    if let Some(d) = digits.strip_suffix(b"+") {
        digits = d;
        sync = false;
    }
    if digits.is_empty() || !digits.iter().all(u8::is_ascii_digit) {
        return None;
    }
    let size = std::str::from_utf8(digits).ok()?.parse().ok()?;
    Some((size, sync))
}
