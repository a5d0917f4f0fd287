//! Shared helpers for integration tests: the real-Dovecot lab and fresh users.
//!
//! Use from a test file with `mod common;`. Every test binary compiles its own
//! copy of this module and uses only part of it, hence the `dead_code` allowance.
#![allow(dead_code)]

use std::fs::{self, File, OpenOptions};
use std::io::{self, BufRead, BufReader, Read, Seek, SeekFrom, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

/// Facts about the running lab (see `scripts/dovecot-lab` and `examples/dovecot-lab.md`).
#[derive(Debug)]
pub struct Lab {
    /// The lab directory (`$IMAPTEST_LAB_DIR`, default `/tmp/imaptest-lab`).
    pub dir: PathBuf,
    /// The throwaway test CA that signed the server certificate
    /// (`CN=localhost`, SAN `DNS:localhost, IP:127.0.0.1`).
    pub ca_file: PathBuf,
    /// The address every listener is bound to.
    pub host: &'static str,
    pub imap_port: u16,
    pub imaps_port: u16,
    pub pop3_port: u16,
    pub lmtp_port: u16,
    /// Password of every `testuser1..testuser1000`.
    pub user_password: &'static str,
    /// Master user; log in as `"<user>*master"` or SASL PLAIN authzid=<user>, authcid=master.
    pub master_user: &'static str,
    pub master_password: &'static str,
    /// Separator between user and master user in LOGIN names.
    pub master_separator: char,
}

impl Lab {
    pub fn imap_addr(&self) -> SocketAddr {
        self.addr(self.imap_port)
    }
    pub fn imaps_addr(&self) -> SocketAddr {
        self.addr(self.imaps_port)
    }
    pub fn pop3_addr(&self) -> SocketAddr {
        self.addr(self.pop3_port)
    }
    pub fn lmtp_addr(&self) -> SocketAddr {
        self.addr(self.lmtp_port)
    }
    fn addr(&self, port: u16) -> SocketAddr {
        SocketAddr::new(self.host.parse().expect("lab host is an IP"), port)
    }
    /// Home directory (holding `Maildir/`) of a lab user.
    pub fn user_home(&self, user: &str) -> PathBuf {
        self.dir.join("mail").join(user)
    }
    /// `user*master`: the LOGIN name that authenticates as the master user.
    pub fn master_login_name(&self, user: &str) -> String {
        format!("{user}{}{}", self.master_separator, self.master_user)
    }
}

/// Root of the source tree (where `Cargo.toml` and `scripts/` are).
pub fn repo_root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// The lab directory, as `scripts/dovecot-lab` computes it.
pub fn lab_dir() -> PathBuf {
    match std::env::var_os("IMAPTEST_LAB_DIR") {
        Some(d) if !d.is_empty() => PathBuf::from(d),
        _ => PathBuf::from("/tmp/imaptest-lab"),
    }
}

/// Ensures the lab is up and returns its facts.
///
/// Runs `scripts/dovecot-lab up` once per process; the script itself is
/// idempotent and serialises parallel callers (other test binaries) with
/// `flock`. Panics with the script's output if the lab cannot start.
pub fn lab() -> &'static Lab {
    static LAB: OnceLock<Lab> = OnceLock::new();
    LAB.get_or_init(|| {
        let script = repo_root().join("scripts/dovecot-lab");
        let out = Command::new("bash")
            .arg(&script)
            .arg("up")
            .output()
            .unwrap_or_else(|e| panic!("cannot run {}: {e}", script.display()));
        if !out.status.success() {
            panic!(
                "`{} up` failed ({}); the integration tests need the Dovecot lab \
                 (run as root)\n--- stdout ---\n{}\n--- stderr ---\n{}",
                script.display(),
                out.status,
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr),
            );
        }
        let dir = lab_dir();
        Lab {
            ca_file: dir.join("ssl/ca.crt"),
            dir,
            host: "127.0.0.1",
            imap_port: 10143,
            imaps_port: 10993,
            pop3_port: 10110,
            lmtp_port: 10024,
            user_password: "pass",
            master_user: "master",
            master_password: "masterpass",
            master_separator: '*',
        }
    })
}

/// Users handed out by [`fresh_user`]: `testuser200..=testuser1000`.
/// `testuser1..testuser199` are left for hand-run and CLI load tests.
pub const FRESH_USERS: std::ops::RangeInclusive<u32> = 200..=1000;

/// A fresh user name (`testuser<N>`, N in [`FRESH_USERS`]) whose mail is empty.
///
/// Numbers come from a counter file in the lab directory, locked so that test
/// binaries running in parallel never get the same user; the user's old mail
/// (from an earlier run) is deleted before the name is returned. The counter
/// wraps after 801 users. Falls back to a per-process counter offset by the pid
/// if the counter file cannot be used. Starts the lab if needed.
pub fn fresh_user() -> String {
    let lab = lab();
    let n = next_from_file(&lab.dir.join("next-user")).unwrap_or_else(|_| next_from_pid());
    let span = FRESH_USERS.end() - FRESH_USERS.start() + 1;
    let user = format!("testuser{}", FRESH_USERS.start() + n % span);
    match fs::remove_dir_all(lab.user_home(&user)) {
        Ok(()) => {}
        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
        Err(e) => panic!("cannot empty {}: {e}", lab.user_home(&user).display()),
    }
    user
}

fn next_from_file(path: &Path) -> io::Result<u32> {
    let mut f: File = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(path)?;
    f.lock()?;
    let mut s = String::new();
    f.read_to_string(&mut s)?;
    let n: u32 = s.trim().parse().unwrap_or(0);
    f.seek(SeekFrom::Start(0))?;
    f.set_len(0)?;
    write!(f, "{}", n.wrapping_add(1))?;
    f.unlock()?;
    Ok(n)
}

fn next_from_pid() -> u32 {
    static NEXT: AtomicU32 = AtomicU32::new(0);
    let pid = std::process::id();
    pid.wrapping_mul(2_654_435_761)
        .wrapping_add(NEXT.fetch_add(1, Ordering::Relaxed))
}

/// Path of the built `imaptest` binary, for CLI tests.
pub fn imaptest_bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_imaptest"))
}

/// Connects with read/write timeouts so a broken server fails a test instead of hanging it.
pub fn connect(addr: SocketAddr) -> TcpStream {
    let s = TcpStream::connect_timeout(&addr, Duration::from_secs(10))
        .unwrap_or_else(|e| panic!("connect {addr}: {e}"));
    s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    s.set_write_timeout(Some(Duration::from_secs(30))).unwrap();
    s
}

/// `STATUS <mailbox> (MESSAGES)` over a plain IMAP connection (0 if the mailbox
/// does not exist).
pub fn mailbox_messages(user: &str, mailbox: &str) -> u64 {
    let lab = lab();
    let stream = connect(lab.imap_addr());
    let mut reader = BufReader::new(stream.try_clone().unwrap());
    let mut writer = stream;
    let mut line = String::new();
    reader.read_line(&mut line).unwrap();
    let mut command = |cmd: &str| -> Vec<String> {
        writer.write_all(format!("t {cmd}\r\n").as_bytes()).unwrap();
        let mut lines = Vec::new();
        loop {
            let mut line = String::new();
            assert!(
                reader.read_line(&mut line).unwrap() > 0,
                "connection closed"
            );
            let done = line.starts_with("t ");
            lines.push(line);
            if done {
                return lines;
            }
        }
    };
    let login = command(&format!("LOGIN {user} {}", lab.user_password));
    assert!(login.last().unwrap().starts_with("t OK"), "{login:?}");
    let status = command(&format!("STATUS \"{mailbox}\" (MESSAGES)"));
    let _ = command("LOGOUT");
    if !status.last().unwrap().starts_with("t OK") {
        return 0;
    }
    let line = status
        .iter()
        .find(|l| l.starts_with("* STATUS"))
        .expect("STATUS reply");
    let n = line
        .split("MESSAGES ")
        .nth(1)
        .and_then(|rest| rest.split(')').next())
        .expect("MESSAGES item");
    n.trim().parse().unwrap()
}
