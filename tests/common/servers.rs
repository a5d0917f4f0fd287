//! The labs of other servers (`scripts/cyrus-lab`, `scripts/courier-lab`), their fresh
//! users, and what the tests against them share: imaptest runs whose every error must
//! be a named quirk, and the scripted-suite verdicts that `docs/servers.md` lists.

use std::collections::{BTreeMap, BTreeSet};
use std::io::{BufRead, BufReader, Write};
use std::net::SocketAddr;
use std::os::unix::fs::{MetadataExt, chown};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use super::{
    connect, csv_deliveries, imaptest_bin, lab_up, next_fresh_number, repo_root, totals_error_kinds,
};

/// How a lab's users get an empty mailbox.
#[derive(Debug, Clone, Copy)]
pub enum Reset {
    /// Cyrus: the admin deletes the user and makes INBOX and Spam again.
    CyrusAdmin {
        user: &'static str,
        password: &'static str,
    },
    /// Courier: the user's `Maildir` is emptied on disk.
    Maildir,
}

/// Facts about a running lab of another server.
#[derive(Debug)]
pub struct ServerLab {
    /// `Cyrus IMAP 3.6.1`, as `docs/servers.md` names it.
    pub server: &'static str,
    pub dir: PathBuf,
    pub host: &'static str,
    pub imap_port: u16,
    pub pop3_port: u16,
    pub lmtp_port: Option<u16>,
    pub user_password: &'static str,
    /// The test mailbox for the scripted suite (Courier keeps everything under INBOX.).
    pub test_box: &'static str,
    /// The name of the Spam folder profile mode delivers to, if the lab has one.
    pub spam: Option<&'static str>,
    reset: Reset,
}

fn env_dir(var: &str, default: &str) -> PathBuf {
    match std::env::var_os(var) {
        Some(d) if !d.is_empty() => PathBuf::from(d),
        _ => PathBuf::from(default),
    }
}

/// Starts `scripts/cyrus-lab` once per process and returns its facts.
pub fn cyrus_lab() -> &'static ServerLab {
    static LAB: OnceLock<ServerLab> = OnceLock::new();
    LAB.get_or_init(|| {
        lab_up("cyrus-lab");
        ServerLab {
            server: "Cyrus IMAP 3.6.1",
            dir: env_dir("IMAPTEST_CYRUS_LAB_DIR", "/tmp/imaptest-cyrus-lab"),
            host: "127.0.0.1",
            imap_port: 11143,
            pop3_port: 11110,
            lmtp_port: Some(11024),
            user_password: "pass",
            test_box: "imaptest",
            spam: Some("Spam"),
            reset: Reset::CyrusAdmin {
                user: "cyrusadmin",
                password: "adminpass",
            },
        }
    })
}

/// Starts `scripts/courier-lab` once per process and returns its facts.
pub fn courier_lab() -> &'static ServerLab {
    static LAB: OnceLock<ServerLab> = OnceLock::new();
    LAB.get_or_init(|| {
        lab_up("courier-lab");
        ServerLab {
            server: "Courier-IMAP 5.0.13",
            dir: env_dir("IMAPTEST_COURIER_LAB_DIR", "/tmp/imaptest-courier-lab"),
            host: "127.0.0.1",
            imap_port: 12143,
            pop3_port: 12110,
            lmtp_port: None,
            user_password: "pass",
            test_box: "INBOX.imaptest",
            spam: None,
            reset: Reset::Maildir,
        }
    })
}

impl ServerLab {
    pub fn imap_addr(&self) -> SocketAddr {
        SocketAddr::new(
            self.host.parse().expect("lab host is an IP"),
            self.imap_port,
        )
    }

    /// A user of `testuser200..1000` (never the same twice across test processes)
    /// whose mail is empty.
    pub fn fresh_user(&self) -> String {
        let user = format!("testuser{}", next_fresh_number(&self.dir));
        match self.reset {
            Reset::CyrusAdmin {
                user: admin,
                password,
            } => {
                // One admin session for the whole test process: Cyrus gives mailboxes
                // created in the same second by different processes the same unique id
                // (and storage), see docs/servers.md.
                static ADMIN: OnceLock<std::sync::Mutex<ImapSession>> = OnceLock::new();
                let mut s = ADMIN
                    .get_or_init(|| {
                        std::sync::Mutex::new(ImapSession::login(self.imap_addr(), admin, password))
                    })
                    .lock()
                    .unwrap_or_else(|e| e.into_inner());
                let mailbox = format!("user/{user}");
                // An admin may delete a user only after granting itself the right;
                // both are NO when the user has no mailbox yet: fine.
                s.command(&format!("SETACL {mailbox} {admin} lrswipkxtecda"));
                s.command(&format!("DELETE {mailbox}"));
                for cmd in [
                    format!("CREATE {mailbox}"),
                    format!("CREATE {mailbox}/Spam"),
                    format!("SETACL {mailbox}/Spam anyone p"),
                ] {
                    let reply = s.command(&cmd);
                    assert!(
                        reply.last().unwrap().starts_with("t OK"),
                        "{cmd}: {reply:?}"
                    );
                }
            }
            Reset::Maildir => {
                let home = self.dir.join("mail").join(&user);
                let owner =
                    std::fs::metadata(&home).unwrap_or_else(|e| panic!("{}: {e}", home.display()));
                let maildir = home.join("Maildir");
                match std::fs::remove_dir_all(&maildir) {
                    Ok(()) => {}
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                    Err(e) => panic!("cannot empty {}: {e}", maildir.display()),
                }
                for d in ["", "cur", "new", "tmp"] {
                    let d = maildir.join(d);
                    std::fs::create_dir_all(&d).unwrap();
                    chown(&d, Some(owner.uid()), Some(owner.gid())).unwrap();
                }
            }
        }
        user
    }

    /// `count` fresh users in a user file (`userfile=`) in `dir`.
    pub fn user_file(&self, dir: &Path, name: &str, count: usize) -> (PathBuf, Vec<String>) {
        let users: Vec<String> = (0..count).map(|_| self.fresh_user()).collect();
        let path = dir.join(format!("{name}.users"));
        std::fs::write(&path, users.join("\n") + "\n").unwrap();
        (path, users)
    }

    /// `STATUS <mailbox> (MESSAGES)` of a user (0 if the mailbox does not exist).
    pub fn messages(&self, user: &str, mailbox: &str) -> u64 {
        mailbox_messages(self.imap_addr(), user, self.user_password, mailbox)
    }

    /// APPENDs `count` small messages to a user's INBOX (for POP3 runs where the
    /// server has no LMTP).
    pub fn append_messages(&self, user: &str, count: usize) {
        let mut s = ImapSession::login(self.imap_addr(), user, self.user_password);
        for i in 0..count {
            let msg = format!(
                "From: a@example.org\r\nTo: {user}@example.org\r\nSubject: pop {i}\r\n\
                 Message-ID: <pop-{i}-{user}@example.org>\r\n\r\nmessage {i}\r\n"
            );
            let reply = s.append("INBOX", msg.as_bytes());
            assert!(reply.last().unwrap().starts_with("t OK"), "{reply:?}");
        }
        s.logout();
    }
}

/// `STATUS <mailbox> (MESSAGES)` of a user over a plain IMAP connection (0 if the
/// mailbox does not exist).
pub fn mailbox_messages(addr: SocketAddr, user: &str, password: &str, mailbox: &str) -> u64 {
    let mut s = ImapSession::login(addr, user, password);
    let status = s.command(&format!("STATUS \"{mailbox}\" (MESSAGES)"));
    s.logout();
    if !status.last().unwrap().starts_with("t OK") {
        return 0;
    }
    let line = status
        .iter()
        .find(|l| l.starts_with("* STATUS"))
        .expect("STATUS reply");
    line.split("MESSAGES ")
        .nth(1)
        .and_then(|rest| rest.split(')').next())
        .and_then(|n| n.trim().parse().ok())
        .expect("MESSAGES item")
}

/// A plain IMAP session for test setup, one command at a time.
pub struct ImapSession {
    reader: BufReader<std::net::TcpStream>,
    writer: std::net::TcpStream,
}

impl ImapSession {
    pub fn login(addr: SocketAddr, user: &str, password: &str) -> Self {
        let stream = connect(addr);
        let mut s = ImapSession {
            reader: BufReader::new(stream.try_clone().unwrap()),
            writer: stream,
        };
        let mut greeting = String::new();
        s.reader.read_line(&mut greeting).unwrap();
        let reply = s.command(&format!("LOGIN \"{user}\" \"{password}\""));
        assert!(reply.last().unwrap().starts_with("t OK"), "{reply:?}");
        s
    }

    /// Sends `t <cmd>` and returns every line up to the tagged reply.
    pub fn command(&mut self, cmd: &str) -> Vec<String> {
        self.writer
            .write_all(format!("t {cmd}\r\n").as_bytes())
            .unwrap();
        self.read_reply()
    }

    /// APPEND with a synchronising literal (every server has those).
    pub fn append(&mut self, mailbox: &str, msg: &[u8]) -> Vec<String> {
        self.writer
            .write_all(format!("t APPEND \"{mailbox}\" {{{}}}\r\n", msg.len()).as_bytes())
            .unwrap();
        let mut line = String::new();
        self.reader.read_line(&mut line).unwrap();
        assert!(line.starts_with('+'), "no continuation: {line}");
        self.writer.write_all(msg).unwrap();
        self.writer.write_all(b"\r\n").unwrap();
        self.read_reply()
    }

    fn read_reply(&mut self) -> Vec<String> {
        let mut lines = Vec::new();
        loop {
            let mut line = String::new();
            assert!(
                self.reader.read_line(&mut line).unwrap() > 0,
                "connection closed"
            );
            let done = line.starts_with("t ");
            lines.push(line);
            if done {
                return lines;
            }
        }
    }

    pub fn logout(mut self) {
        let _ = self.command("LOGOUT");
    }
}

/// The scripted-suite verdicts `docs/servers.md` lists for `server`: failing test →
/// the quirk kinds named for it (empty for an explained failure without one).
pub fn documented_failures(server: &str) -> BTreeMap<String, BTreeSet<String>> {
    let path = repo_root().join("docs/servers.md");
    let text = std::fs::read_to_string(&path).unwrap();
    let heading = format!("### {server}: ");
    let mut out = BTreeMap::new();
    let mut inside = false;
    for line in text.lines() {
        if line.starts_with('#') {
            inside = line.starts_with(&heading);
            continue;
        }
        if !inside || !line.starts_with("| ") {
            continue;
        }
        let cells: Vec<&str> = line.split('|').map(str::trim).collect();
        // | test | verdict | why |
        let (Some(test), Some(verdict)) = (cells.get(1), cells.get(2)) else {
            continue;
        };
        let Some(rest) = verdict.strip_prefix("fail") else {
            continue;
        };
        let kinds = rest
            .trim_start_matches(':')
            .split(',')
            .map(|k| k.trim().trim_matches('`').to_owned())
            .filter(|k| !k.is_empty())
            .collect();
        out.insert(test.trim_matches('`').to_owned(), kinds);
    }
    assert!(
        !out.is_empty(),
        "{}: no verdict table under a heading starting with {heading:?}",
        path.display()
    );
    out
}

/// The upstream suite (`../shared/imaptest-suite/<name>`, or `$IMAPTEST_SUITE_DIR`).
/// Missing, it fails the test: these tests exist to run it.
pub fn suite(name: &str) -> PathBuf {
    let dir = match std::env::var_os("IMAPTEST_SUITE_DIR") {
        Some(dir) => PathBuf::from(dir).join(name),
        None => repo_root().join("../shared/imaptest-suite").join(name),
    };
    assert!(
        dir.exists(),
        "{} not found (../shared must be beside the clone)",
        dir.display()
    );
    dir
}

/// Runs the scripted suite against `lab` and checks its verdicts against
/// `docs/servers.md`: the same failing tests, with the same named quirks.
pub async fn check_suite_verdicts(lab: &ServerLab, suite_name: &str) {
    let mut settings = imaptest::config::Common {
        host: lab.host.into(),
        port: Some(lab.imap_port),
        timeout: std::time::Duration::from_secs(30),
        ..imaptest::config::Common::default()
    };
    settings.user.template = lab.fresh_user();
    settings.user.password = lab.user_password.into();
    let mut scripted = imaptest::config::ScriptedSettings::new(suite(suite_name));
    scripted.mailbox = lab.test_box.into();
    let (_keep, running) = tokio::sync::watch::channel(imaptest::control::RunState::Running);
    let results = imaptest::scripted::run_tests(&settings, &scripted, None, running, |_| {})
        .await
        .unwrap();
    let mut failed = BTreeMap::new();
    let mut reports = String::new();
    for r in &results {
        if !r.failures.is_empty() {
            let kinds: BTreeSet<String> = r.quirks.iter().map(|k| k.name().to_owned()).collect();
            failed.insert(r.name.clone(), kinds);
            reports.push_str(&r.failures.join("\n"));
        }
    }
    assert!(!results.is_empty(), "the suite ran no test");
    assert_eq!(
        failed,
        documented_failures(lab.server),
        "{} verdicts differ from docs/servers.md; failures:\n{reports}",
        lab.server
    );
}

/// What an imaptest run printed.
pub struct Run {
    pub stdout: String,
    pub stderr: String,
}

impl Run {
    /// The `Errors by kind: a 3, b 1` line after Totals.
    pub fn error_kinds(&self) -> BTreeMap<String, u64> {
        totals_error_kinds(&self.stdout)
    }

    /// Fails unless every error was of a named quirk kind (docs/servers.md).
    pub fn assert_only_quirks(&self) {
        for kind in self.error_kinds().keys() {
            let named = imaptest::metrics::ErrorKind::from_name(kind)
                .and_then(imaptest::quirks::quirk)
                .is_some();
            // The errors of other kinds first: quirks are many and named already.
            let (quirks, others): (Vec<&str>, Vec<&str>) = self
                .stderr
                .lines()
                .filter(|l| l.starts_with("Error:"))
                .partition(|l| l.contains("made-up \"message unavailable\""));
            let errors: Vec<&str> = others.into_iter().chain(quirks).take(30).collect();
            assert!(
                named,
                "error kind {kind} is not a named quirk; errors:\n{}",
                errors.join("\n")
            );
        }
    }
}

/// Runs the imaptest binary with `args` (plus `host=` and `pass=`) against `lab`;
/// the exit status must be 0.
pub fn run_imaptest(lab: &ServerLab, args: &[String]) -> Run {
    let out = Command::new(imaptest_bin())
        .arg(format!("host={}", lab.host))
        .arg(format!("pass={}", lab.user_password))
        .args(args)
        .output()
        .unwrap();
    let run = Run {
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    };
    assert!(
        out.status.success(),
        "exit {:?}\nstdout:\n{}\nstderr:\n{}",
        out.status,
        run.stdout,
        run.stderr
    );
    run
}

/// A generated test mbox in `dir`.
pub fn write_mbox(dir: &Path, count: u32) -> PathBuf {
    let path = dir.join("test.mbox");
    let status = Command::new(imaptest_bin())
        .args([
            "mbox-gen".to_owned(),
            format!("out={}", path.display()),
            format!("count={count}"),
            "seed=7".into(),
        ])
        .status()
        .unwrap();
    assert!(status.success());
    path
}

/// Runs the stress mode for `secs` seconds with `extra` arguments: `clients` fresh
/// users (one connection each at first) and a generated mbox. Every error must be a
/// named quirk.
pub fn run_stress(lab: &ServerLab, secs: u32, clients: usize, extra: &[&str]) -> Run {
    let dir = tempfile::tempdir().unwrap();
    let (users, _) = lab.user_file(dir.path(), "stress", clients);
    let mbox = write_mbox(dir.path(), 200);
    let mut args = vec![
        format!("port={}", lab.imap_port),
        format!("userfile={}", users.display()),
        format!("mbox={}", mbox.display()),
        format!("clients={clients}"),
        format!("secs={secs}"),
    ];
    args.extend(extra.iter().map(|a| (*a).to_owned()));
    let run = run_imaptest(lab, &args);
    run.assert_only_quirks();
    run
}

/// Runs `imaptest profile=...` with `profile` (`@IMAP@`, `@POP3@`, `@LMTP@` replaced by
/// the lab's ports) and returns the run with the CSV timeline's delivery sums
/// (offered, delivered, refused, failed).
pub fn run_profile(lab: &ServerLab, dir: &Path, profile: &str) -> (Run, (u64, u64, u64, u64)) {
    let path = dir.join("run.toml");
    let text = profile
        .replace("@IMAP@", &lab.imap_port.to_string())
        .replace("@POP3@", &lab.pop3_port.to_string())
        .replace("@LMTP@", &lab.lmtp_port.unwrap_or(0).to_string());
    std::fs::write(&path, text).unwrap();
    let mbox = write_mbox(dir, 40);
    let csv = dir.join("timeline.csv");
    let run = run_imaptest(
        lab,
        &[
            format!("profile={}", path.display()),
            format!("mbox={}", mbox.display()),
            format!("csv={}", csv.display()),
        ],
    );
    let csv = std::fs::read_to_string(&csv).unwrap();
    let sums = csv_deliveries(&csv);
    (run, sums)
}

/// How many times a profile run's client `client` sent `command`.
pub fn client_command_count(run: &Run, client: &str, command: &str) -> u64 {
    let clients = super::client_commands(&run.stdout);
    let (_, counts) = clients
        .get(client)
        .unwrap_or_else(|| panic!("no client {client}:\n{}", run.stdout));
    counts.get(command).copied().unwrap_or(0)
}
