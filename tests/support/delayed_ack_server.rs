//! An IMAP server that exposes delayed ACKs: Nagle is left on, and every reply is
//! written as two small writes, its untagged line first and its tagged line second. The
//! second segment then waits in the server's kernel until the client acknowledges the
//! first, so a client that lets its delayed-ACK timer run (40 ms on Linux) sees every
//! command take ≥ 40 ms, and one that acknowledges at once (`TCP_QUICKACK`) sees the
//! server's real speed. Cyrus and Courier behave like this with pipelined commands.
//!
//! It understands just enough IMAP for a stress run with `logout=0 noop=100`: LOGIN,
//! LIST, SELECT/EXAMINE (an empty mailbox), NOOP, CHECK, CAPABILITY, LOGOUT; anything
//! else gets an untagged OK and a tagged OK. Runs on its own thread; dropping the
//! [`DelayedAckServer`] stops it.
#![allow(dead_code)]

use std::net::SocketAddr;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::oneshot;

const GREETING: &[u8] = b"* OK [CAPABILITY IMAP4rev1 LITERAL+ IDLE] delayed-ack server\r\n";

/// A running server; dropping it stops the server and closes every connection.
pub struct DelayedAckServer {
    pub addr: SocketAddr,
    stop: Option<oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl DelayedAckServer {
    /// Listens on 127.0.0.1 on a free port.
    pub fn start() -> std::io::Result<DelayedAckServer> {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_io()
            .build()?;
        let listener = {
            let _guard = runtime.enter();
            let std_listener = std::net::TcpListener::bind("127.0.0.1:0")?;
            std_listener.set_nonblocking(true)?;
            TcpListener::from_std(std_listener)?
        };
        let addr = listener.local_addr()?;
        let (stop, stopped) = oneshot::channel();
        let thread = std::thread::Builder::new()
            .name("delayed-ack-imap".into())
            .spawn(move || {
                runtime.block_on(async move {
                    tokio::select! {
                        () = accept_loop(listener) => {}
                        _ = stopped => {}
                    }
                });
            })?;
        Ok(DelayedAckServer {
            addr,
            stop: Some(stop),
            thread: Some(thread),
        })
    }

    pub fn port(&self) -> u16 {
        self.addr.port()
    }
}

impl Drop for DelayedAckServer {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

async fn accept_loop(listener: TcpListener) {
    loop {
        if let Ok((socket, _)) = listener.accept().await {
            tokio::spawn(async move {
                let _ = serve(socket).await;
            });
        }
    }
}

async fn serve(mut socket: TcpStream) -> std::io::Result<()> {
    // Nagle stays on: that is the point of this server.
    socket.set_nodelay(false)?;
    socket.write_all(GREETING).await?;
    let mut input = Vec::with_capacity(4096);
    loop {
        if socket.read_buf(&mut input).await? == 0 {
            return Ok(());
        }
        while let Some(nl) = input.iter().position(|&b| b == b'\n') {
            let line: Vec<u8> = input.drain(..=nl).collect();
            let line = line.strip_suffix(b"\n").unwrap_or(&line);
            let line = line.strip_suffix(b"\r").unwrap_or(line);
            let (untagged, tagged, close) = reply(line);
            // Two writes: the second is held by Nagle until the first is acknowledged.
            socket.write_all(&untagged).await?;
            socket.write_all(&tagged).await?;
            if close {
                return socket.shutdown().await;
            }
        }
    }
}

/// The untagged and tagged lines answering one command line, and whether to close.
fn reply(line: &[u8]) -> (Vec<u8>, Vec<u8>, bool) {
    let mut words = line.split(|&b| b == b' ');
    let tag = words.next().unwrap_or_default();
    let name = words.next().unwrap_or_default().to_ascii_uppercase();
    let untagged: &[u8] = match name.as_slice() {
        b"LOGIN" => b"* CAPABILITY IMAP4rev1 LITERAL+ IDLE\r\n",
        b"LIST" => b"* LIST () \"/\" INBOX\r\n",
        b"SELECT" | b"EXAMINE" => b"* 0 EXISTS\r\n* OK [UIDVALIDITY 1] ok\r\n",
        b"LOGOUT" => b"* BYE logging out\r\n",
        b"NOOP" | b"CHECK" => b"* 0 RECENT\r\n",
        _ => b"* OK noted\r\n",
    };
    let mut tagged = tag.to_vec();
    tagged.extend_from_slice(b" OK done\r\n");
    (untagged.to_vec(), tagged, name == b"LOGOUT")
}
