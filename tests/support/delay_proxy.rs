//! A latency-adding TCP proxy for capacity and comparison tests: it sits between the
//! tool and a real server and holds every chunk the server sends for
//! `fixed + per_session × (sessions open now − free_sessions, at least 0)` before
//! passing it on. Client bytes pass at once.
//!
//! With `per_session` set, the server "gets slower" as sessions pile up past a knee, so
//! an SLO on a command's latency breaks at a known session count: a command answered
//! while `n` sessions are open takes about `fixed + (n − free) · per_session` plus the
//! server's own time. A steep slope past the knee keeps the breaking point clear of the
//! few milliseconds of scheduling noise a shared host adds. With only `fixed`, it is a
//! uniformly slower server (an injected regression).
//!
//! The proxy runs on its own thread with a single-threaded tokio runtime and stops when
//! dropped.
#![allow(dead_code)]

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::oneshot;

/// How much delay the proxy adds.
#[derive(Debug, Clone, Copy)]
pub struct Delay {
    pub fixed: Duration,
    pub per_session: Duration,
    /// Sessions that cost nothing (the knee).
    pub free_sessions: u32,
}

impl Delay {
    /// A uniformly slower server.
    pub fn fixed(fixed: Duration) -> Delay {
        Delay {
            fixed,
            per_session: Duration::ZERO,
            free_sessions: 0,
        }
    }

    /// The delay with `sessions` open.
    pub fn at(&self, sessions: u32) -> Duration {
        self.fixed + self.per_session * sessions.saturating_sub(self.free_sessions)
    }
}

/// A running proxy; dropping it stops it and closes every connection.
pub struct DelayProxy {
    pub addr: SocketAddr,
    open: Arc<AtomicU64>,
    peak: Arc<AtomicU64>,
    stop: Option<oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl DelayProxy {
    /// Listens on 127.0.0.1:0 and forwards every connection to `upstream`.
    pub fn start(upstream: SocketAddr, delay: Delay) -> Self {
        let (addr_tx, addr_rx) = std::sync::mpsc::channel();
        let (stop, stopped) = oneshot::channel::<()>();
        let open = Arc::new(AtomicU64::new(0));
        let peak = Arc::new(AtomicU64::new(0));
        let (open2, peak2) = (open.clone(), peak.clone());
        let thread = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("proxy runtime");
            rt.block_on(async move {
                let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind proxy");
                addr_tx
                    .send(listener.local_addr().expect("proxy addr"))
                    .ok();
                let accept = async {
                    loop {
                        let Ok((client, _)) = listener.accept().await else {
                            continue;
                        };
                        let (open, peak) = (open2.clone(), peak2.clone());
                        tokio::spawn(async move {
                            if let Ok(server) = TcpStream::connect(upstream).await {
                                let now = open.fetch_add(1, Ordering::SeqCst) + 1;
                                peak.fetch_max(now, Ordering::SeqCst);
                                relay(client, server, delay, &open).await;
                                open.fetch_sub(1, Ordering::SeqCst);
                            }
                        });
                    }
                };
                tokio::select! {
                    _ = accept => {}
                    _ = stopped => {}
                }
            });
        });
        let addr = addr_rx.recv().expect("proxy started");
        DelayProxy {
            addr,
            open,
            peak,
            stop: Some(stop),
            thread: Some(thread),
        }
    }

    pub fn port(&self) -> u16 {
        self.addr.port()
    }

    /// The most sessions that were open at once.
    pub fn peak_sessions(&self) -> u64 {
        self.peak.load(Ordering::SeqCst)
    }
}

impl Drop for DelayProxy {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

async fn relay(client: TcpStream, server: TcpStream, delay: Delay, open: &AtomicU64) {
    let (mut client_rd, mut client_wr) = client.into_split();
    let (mut server_rd, mut server_wr) = server.into_split();
    let upstream = async {
        let _ = tokio::io::copy(&mut client_rd, &mut server_wr).await;
        let _ = server_wr.shutdown().await;
    };
    let downstream = async {
        let mut buf = vec![0u8; 64 * 1024];
        loop {
            let n = match server_rd.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => n,
            };
            let sessions = open.load(Ordering::SeqCst) as u32;
            tokio::time::sleep(delay.at(sessions)).await;
            if client_wr.write_all(&buf[..n]).await.is_err() {
                break;
            }
        }
        let _ = client_wr.shutdown().await;
    };
    tokio::join!(upstream, downstream);
}
