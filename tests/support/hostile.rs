//! Hostile fake servers for the hardening suite (`tests/hostile.rs`): an IMAP server and
//! an LMTP server that behave until a chosen phase, then misbehave in a chosen way —
//! flood, drip, never end a line or a literal, send absurd numbers, nest without end,
//! send control bytes, reset in the middle of a literal, or fall silent.
//!
//! Every connection (the start-up check's included) gets the same treatment. The
//! servers run on plain threads with blocking sockets on 127.0.0.1 and live until the
//! test process ends; a connection's thread ends when the client goes away.
#![allow(dead_code)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// Where in the IMAP session the fault strikes: the reply to this command (or the
/// greeting).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    Greeting,
    /// The reply to CAPABILITY (the greeting then carries no capabilities).
    Capability,
    Login,
    Select,
    Fetch,
    /// The `+` that answers IDLE.
    Idle,
}

/// What the server does at the phase.
#[derive(Debug, Clone)]
pub enum Fault {
    /// The phase's normal reply, one byte every `every`.
    Drip { every: Duration },
    /// This line (with its CRLF) over and over, never the reply.
    FloodLines(Vec<u8>),
    /// Bytes without any line end, for ever.
    FloodNoCrlf,
    /// `n` bytes without a line end, then silence.
    LongLine(usize),
    /// A response announcing a 1 TB literal, then literal data for ever.
    EndlessLiteral,
    /// These bytes, then the normal reply. `rotate` variants: connection `k` gets the
    /// `k`-th (cycling), so one run covers them all.
    Before(Vec<Vec<u8>>),
    /// Half a literal, then a TCP reset.
    ResetMidLiteral,
    /// Nothing at all: the connection stays open and quiet.
    Silent,
    /// This reply instead of the normal one (`{tag}` is the command's tag).
    Instead(String),
}

/// A running hostile server.
pub struct Hostile {
    pub port: u16,
    /// Connections accepted so far.
    pub connections: Arc<AtomicU64>,
}

/// An IMAP server that misbehaves with `fault` at `phase`.
pub fn imap(phase: Phase, fault: Fault) -> Hostile {
    serve(move |stream, k| {
        let _ = imap_session(stream, phase, &fault, k);
    })
}

/// An LMTP server that misbehaves with `fault` when a message's final dot arrives.
pub fn lmtp(fault: Fault) -> Hostile {
    serve(move |stream, k| {
        let _ = lmtp_session(stream, &fault, k);
    })
}

fn serve(session: impl Fn(TcpStream, u64) + Send + Sync + 'static) -> Hostile {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1");
    let port = listener.local_addr().expect("local addr").port();
    let connections = Arc::new(AtomicU64::new(0));
    let counter = connections.clone();
    let session = Arc::new(session);
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(stream) = stream else { return };
            let k = counter.fetch_add(1, Ordering::Relaxed);
            let session = session.clone();
            std::thread::spawn(move || session(stream, k));
        }
    });
    Hostile { port, connections }
}

/// Carries out `fault` in place of `reply`. Returns Ok(true) if the session may go on.
fn misbehave(
    out: &mut TcpStream,
    fault: &Fault,
    reply: &[u8],
    tag: &str,
    k: u64,
) -> std::io::Result<bool> {
    match fault {
        Fault::Instead(text) => {
            out.write_all(text.replace("{tag}", tag).as_bytes())?;
            Ok(true)
        }
        Fault::Drip { every } => {
            for b in reply {
                out.write_all(&[*b])?;
                std::thread::sleep(*every);
            }
            Ok(true)
        }
        Fault::FloodLines(line) => {
            let chunk = line.repeat((64 * 1024 / line.len().max(1)).max(1));
            loop {
                out.write_all(&chunk)?;
            }
        }
        Fault::FloodNoCrlf => {
            let chunk = vec![b'x'; 64 * 1024];
            loop {
                out.write_all(&chunk)?;
            }
        }
        Fault::LongLine(n) => {
            let chunk = vec![b'y'; 64 * 1024];
            let mut left = *n;
            while left > 0 {
                let now = left.min(chunk.len());
                out.write_all(&chunk[..now])?;
                left -= now;
            }
            silence()
        }
        Fault::EndlessLiteral => {
            out.write_all(b"* 1 FETCH (BODY[] {1000000000000}\r\n")?;
            let chunk = vec![b'z'; 64 * 1024];
            loop {
                out.write_all(&chunk)?;
            }
        }
        Fault::Before(variants) => {
            if !variants.is_empty() {
                out.write_all(&variants[k as usize % variants.len()])?;
            }
            out.write_all(reply)?;
            Ok(true)
        }
        Fault::ResetMidLiteral => {
            out.write_all(b"* 1 FETCH (UID 1 BODY[] {100000}\r\n")?;
            out.write_all(&[b'r'; 1000])?;
            reset(out);
            Ok(false)
        }
        Fault::Silent => silence(),
    }
}

/// Keeps the connection open and quiet until the test process ends.
fn silence() -> ! {
    loop {
        std::thread::sleep(Duration::from_secs(3600));
    }
}

/// Closes with a TCP reset (SO_LINGER 0).
fn reset(stream: &TcpStream) {
    use std::os::fd::AsRawFd;
    let linger = libc::linger {
        l_onoff: 1,
        l_linger: 0,
    };
    // SAFETY: a valid socket and a pointer to a linger struct of the size given.
    unsafe {
        libc::setsockopt(
            stream.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_LINGER,
            (&linger as *const libc::linger).cast(),
            std::mem::size_of::<libc::linger>() as libc::socklen_t,
        );
    }
    let _ = stream.shutdown(std::net::Shutdown::Both);
}

const CAPS: &str = "IMAP4rev1 LITERAL+ IDLE";

fn imap_session(stream: TcpStream, phase: Phase, fault: &Fault, k: u64) -> std::io::Result<()> {
    let mut reader = BufReader::new(stream.try_clone()?);
    let mut out = stream;
    let greeting = if phase == Phase::Capability {
        "* OK hostile ready\r\n".to_owned()
    } else {
        format!("* OK [CAPABILITY {CAPS}] hostile ready\r\n")
    };
    if phase == Phase::Greeting {
        if !misbehave(&mut out, fault, greeting.as_bytes(), "*", k)? {
            return Ok(());
        }
    } else {
        out.write_all(greeting.as_bytes())?;
    }
    let mut line = Vec::new();
    loop {
        line.clear();
        if reader.read_until(b'\n', &mut line)? == 0 {
            return Ok(());
        }
        // Literals the client sends (APPEND): take them whole.
        while let Some(size) = literal_size(&line) {
            if !line.ends_with(b"+}\r\n") {
                out.write_all(b"+ go\r\n")?;
            }
            let mut data = vec![0; size];
            reader.read_exact(&mut data)?;
            let mut rest = Vec::new();
            if reader.read_until(b'\n', &mut rest)? == 0 {
                return Ok(());
            }
            line.truncate(line.len() - 2);
            line.extend_from_slice(&rest);
        }
        let text = String::from_utf8_lossy(&line).trim_end().to_owned();
        let mut words = text.splitn(3, ' ');
        let tag = words.next().unwrap_or("*").to_owned();
        let command = words.next().unwrap_or("").to_ascii_uppercase();
        let command = if command == "UID" {
            words
                .next()
                .and_then(|r| r.split(' ').next())
                .map(|c| c.to_ascii_uppercase())
                .unwrap_or_default()
        } else {
            command
        };
        let (this_phase, reply) = match command.as_str() {
            "CAPABILITY" => (
                Some(Phase::Capability),
                format!("* CAPABILITY {CAPS}\r\n{tag} OK done\r\n"),
            ),
            "LOGIN" | "AUTHENTICATE" => (Some(Phase::Login), format!("{tag} OK logged in\r\n")),
            "SELECT" | "EXAMINE" => (
                Some(Phase::Select),
                format!(
                    "* FLAGS (\\Seen \\Deleted)\r\n* 3 EXISTS\r\n* OK [UIDVALIDITY 1] ok\r\n* OK [UIDNEXT 4] ok\r\n{tag} OK [READ-WRITE] selected\r\n"
                ),
            ),
            "FETCH" => (
                Some(Phase::Fetch),
                format!("* 1 FETCH (UID 1 FLAGS ())\r\n{tag} OK done\r\n"),
            ),
            "IDLE" => (Some(Phase::Idle), "+ idling\r\n".to_owned()),
            "LIST" => (None, format!("* LIST () \"/\" \"\"\r\n{tag} OK done\r\n")),
            "LOGOUT" => (None, format!("* BYE bye\r\n{tag} OK done\r\n")),
            _ if text == "DONE" => (None, "* OK idle done\r\n".to_owned()),
            _ => (None, format!("{tag} OK done\r\n")),
        };
        if this_phase == Some(phase) {
            if !misbehave(&mut out, fault, reply.as_bytes(), &tag, k)? {
                return Ok(());
            }
        } else {
            out.write_all(reply.as_bytes())?;
        }
        if command == "IDLE" {
            // DONE ends it; the tagged reply follows.
            line.clear();
            if reader.read_until(b'\n', &mut line)? == 0 {
                return Ok(());
            }
            out.write_all(format!("{tag} OK idle done\r\n").as_bytes())?;
        }
        if command == "LOGOUT" {
            return Ok(());
        }
    }
}

/// The size of a literal that ends `line` (`{N}` or `{N+}` before CRLF).
fn literal_size(line: &[u8]) -> Option<usize> {
    let line = line.strip_suffix(b"\r\n")?;
    let inner = line.strip_suffix(b"}")?;
    let open = inner.iter().rposition(|&b| b == b'{')?;
    let digits = &inner[open + 1..];
    let digits = digits.strip_suffix(b"+").unwrap_or(digits);
    std::str::from_utf8(digits).ok()?.parse().ok()
}

fn lmtp_session(stream: TcpStream, fault: &Fault, k: u64) -> std::io::Result<()> {
    let mut reader = BufReader::new(stream.try_clone()?);
    let mut out = stream;
    out.write_all(b"220 hostile LMTP\r\n")?;
    let mut line = Vec::new();
    loop {
        line.clear();
        if reader.read_until(b'\n', &mut line)? == 0 {
            return Ok(());
        }
        let upper = String::from_utf8_lossy(&line).to_ascii_uppercase();
        if upper.starts_with("LHLO") {
            out.write_all(b"250-hostile\r\n250 PIPELINING\r\n")?;
        } else if upper.starts_with("MAIL") || upper.starts_with("RCPT") {
            out.write_all(b"250 2.1.0 ok\r\n")?;
        } else if upper.starts_with("DATA") {
            out.write_all(b"354 go ahead\r\n")?;
            loop {
                line.clear();
                if reader.read_until(b'\n', &mut line)? == 0 {
                    return Ok(());
                }
                if line == b".\r\n" || line == b".\n" {
                    break;
                }
            }
            if !misbehave(&mut out, fault, b"250 2.0.0 delivered\r\n", "", k)? {
                return Ok(());
            }
        } else if upper.starts_with("QUIT") {
            out.write_all(b"221 bye\r\n")?;
            return Ok(());
        } else {
            out.write_all(b"250 2.0.0 ok\r\n")?;
        }
    }
}
