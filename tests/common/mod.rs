//! Shared helpers for integration tests: the real-Dovecot lab and fresh users
//! (the Cyrus and Courier labs are in [`servers`]).
//!
//! Use from a test file with `mod common;`. Every test binary compiles its own
//! copy of this module and uses only part of it, hence the `dead_code` allowance.
#![allow(dead_code)]

pub mod servers;

use std::collections::{BTreeMap, HashMap};
use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Seek, SeekFrom, Write};
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
        lab_up("dovecot-lab");
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

/// Runs `scripts/<script> up`; panics with its output if the lab cannot start (so
/// a missing lab fails a test, under CI and elsewhere, and never skips it).
pub fn lab_up(script: &str) {
    let script = repo_root().join("scripts").join(script);
    let out = Command::new("bash")
        .arg(&script)
        .arg("up")
        .output()
        .unwrap_or_else(|e| panic!("cannot run {}: {e}", script.display()));
    if !out.status.success() {
        panic!(
            "`{} up` failed ({}); these integration tests need the lab (run as root)\n\
             --- stdout ---\n{}\n--- stderr ---\n{}",
            script.display(),
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr),
        );
    }
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
    let user = format!("testuser{}", next_fresh_number(&lab.dir));
    match fs::remove_dir_all(lab.user_home(&user)) {
        Ok(()) => {}
        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
        Err(e) => panic!("cannot empty {}: {e}", lab.user_home(&user).display()),
    }
    user
}

/// The next fresh user number from the counter file in `dir` (see [`fresh_user`]).
pub fn next_fresh_number(dir: &Path) -> u32 {
    let n = next_from_file(&dir.join("next-user")).unwrap_or_else(|_| next_from_pid());
    let span = FRESH_USERS.end() - FRESH_USERS.start() + 1;
    FRESH_USERS.start() + n % span
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

/// The `Errors by kind: a 3, b 1` line after Totals (empty without it).
pub fn totals_error_kinds(stdout: &str) -> BTreeMap<String, u64> {
    let Some(line) = stdout
        .lines()
        .find_map(|l| l.strip_prefix("Errors by kind: "))
    else {
        return BTreeMap::new();
    };
    line.split(", ")
        .map(|item| {
            let (kind, n) = item.rsplit_once(' ').expect("kind and count");
            (kind.to_owned(), n.parse().expect("count"))
        })
        .collect()
}

/// The `deliveries` rows of a profile run's CSV timeline: (offered, delivered,
/// refused, failed).
pub fn csv_deliveries(csv: &str) -> (u64, u64, u64, u64) {
    let mut reader = csv::Reader::from_reader(csv.as_bytes());
    let headers = reader.headers().unwrap().clone();
    let col = |name: &str| headers.iter().position(|h| h == name).unwrap();
    let (kind, count, ok, no, failed) = (
        col("kind"),
        col("count_per_s"),
        col("ok_per_s"),
        col("no_per_s"),
        col("failed_per_s"),
    );
    let mut sums = (0, 0, 0, 0);
    for row in reader.records() {
        let row = row.unwrap();
        if &row[kind] != "deliveries" {
            continue;
        }
        let n = |i: usize| row[i].parse::<u64>().unwrap();
        sums.0 += n(count);
        sums.1 += n(ok);
        sums.2 += n(no);
        sums.3 += n(failed);
    }
    sums
}

/// A profile run's `  name (proto): N sessions; CMD n, CMD n` lines: client name →
/// (sessions, commands).
pub fn client_commands(stdout: &str) -> HashMap<String, (u64, HashMap<String, u64>)> {
    let mut out = HashMap::new();
    let section = stdout
        .split("Client types:\n")
        .nth(1)
        .expect("Client types section");
    for line in section.lines().take_while(|l| l.starts_with("  ")) {
        let (name, rest) = line.trim().split_once(" (").unwrap();
        let (_, rest) = rest.split_once("): ").unwrap();
        let (sessions, commands) = rest.split_once(" sessions; ").unwrap();
        let mut counts = HashMap::new();
        for item in commands.split(", ") {
            if let Some((cmd, n)) = item.rsplit_once(' ')
                && let Ok(n) = n.parse()
            {
                counts.insert(cmd.to_owned(), n);
            }
        }
        out.insert(name.to_owned(), (sessions.parse().unwrap(), counts));
    }
    out
}

/// `STATUS <mailbox> (MESSAGES)` of a lab user (0 if the mailbox does not exist).
pub fn messages(user: &str, mailbox: &str) -> u64 {
    let lab = lab();
    servers::mailbox_messages(lab.imap_addr(), user, lab.user_password, mailbox)
}
