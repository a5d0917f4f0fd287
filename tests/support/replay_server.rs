//! A fake IMAP server that replays replies recorded from real servers: each command is
//! answered by the first [`Reply`] whose pattern it contains (case-insensitive), with
//! `{tag}` replaced by the command's tag. A reply marked `once` is used up by its first
//! match, so a later rule can answer the same command differently (the second DELETE).
//! Without a match: `LOGOUT` gets BYE, anything else `OK`.
//!
//! For the replies a real server gives only in conditions a lab does not produce on its
//! own (Cyrus with `delete_mode: delayed`, a server with a NIL INBOX delimiter) and for
//! faults. Runs on its own thread; stops when dropped.
#![allow(dead_code)]

use std::io::{BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// One recorded answer.
#[derive(Debug, Clone)]
pub struct Reply {
    /// Text the command line (without its tag) contains, case-insensitive.
    pub pattern: &'static str,
    /// Lines (without CRLF); `{tag}` becomes the command's tag.
    pub lines: &'static [&'static str],
    /// Used up by its first match.
    pub once: bool,
}

pub const fn reply(pattern: &'static str, lines: &'static [&'static str]) -> Reply {
    Reply {
        pattern,
        lines,
        once: false,
    }
}

pub const fn reply_once(pattern: &'static str, lines: &'static [&'static str]) -> Reply {
    Reply {
        pattern,
        lines,
        once: true,
    }
}

pub struct ReplayServer {
    pub addr: SocketAddr,
    listener: Option<std::thread::JoinHandle<()>>,
    stop: Arc<Mutex<bool>>,
}

impl ReplayServer {
    /// Listens on 127.0.0.1:0; every connection shares the replies (and their `once`).
    pub fn start(capabilities: &'static str, replies: Vec<Reply>) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind replay server");
        listener.set_nonblocking(true).unwrap();
        let addr = listener.local_addr().unwrap();
        let stop = Arc::new(Mutex::new(false));
        let replies = Arc::new(Mutex::new(replies));
        let stopped = stop.clone();
        let thread = std::thread::spawn(move || {
            while !*stopped.lock().unwrap() {
                match listener.accept() {
                    Ok((stream, _)) => {
                        let replies = replies.clone();
                        std::thread::spawn(move || serve(stream, capabilities, &replies));
                    }
                    Err(_) => std::thread::sleep(Duration::from_millis(10)),
                }
            }
        });
        ReplayServer {
            addr,
            listener: Some(thread),
            stop,
        }
    }
}

impl Drop for ReplayServer {
    fn drop(&mut self) {
        *self.stop.lock().unwrap() = true;
        if let Some(t) = self.listener.take() {
            let _ = t.join();
        }
    }
}

fn serve(stream: TcpStream, capabilities: &str, replies: &Mutex<Vec<Reply>>) {
    stream
        .set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    let mut reader = BufReader::new(stream.try_clone().unwrap());
    let mut out = stream;
    let greeting = format!("* OK [CAPABILITY {capabilities}] replay ready\r\n");
    if out.write_all(greeting.as_bytes()).is_err() {
        return;
    }
    loop {
        let mut line = String::new();
        match reader.read_line(&mut line) {
            Ok(0) | Err(_) => return,
            Ok(_) => {}
        }
        let line = line.trim_end();
        let (tag, command) = line.split_once(' ').unwrap_or((line, ""));
        let upper = command.to_ascii_uppercase();
        let answer = {
            let mut replies = replies.lock().unwrap();
            let found = replies
                .iter()
                .position(|r| upper.contains(&r.pattern.to_ascii_uppercase()));
            found.map(|i| {
                let r = replies[i].clone();
                if r.once {
                    replies.remove(i);
                }
                r.lines
            })
        };
        let text = match answer {
            Some(lines) => lines
                .iter()
                .map(|l| l.replace("{tag}", tag) + "\r\n")
                .collect::<String>(),
            None if upper.starts_with("LOGOUT") => format!("* BYE bye\r\n{tag} OK done\r\n"),
            None if upper.starts_with("CAPABILITY") => {
                format!("* CAPABILITY {capabilities}\r\n{tag} OK done\r\n")
            }
            None if upper.starts_with("LOGIN") => {
                format!("{tag} OK [CAPABILITY {capabilities}] logged in\r\n")
            }
            None => format!("{tag} OK done\r\n"),
        };
        if out.write_all(text.as_bytes()).is_err() || upper.starts_with("LOGOUT") {
            return;
        }
    }
}
