//! `imaptest profile fit` in a closed loop against the lab Dovecot: run a profile with
//! known distributions, fit the lab's own log, check that the fit recovers each family
//! and mean, then run the fitted profile and compare the realised rates. Also: message
//! sizes as the server stored them, and multi-recipient deliveries.
//!
//! The lab's Dovecot logs with microsecond stamps and `mail_log` events (see
//! `scripts/dovecot-lab`). Its log is shared with every other test, so each test keeps
//! only the lines of its own users before fitting.

mod common;

use std::collections::{HashMap, HashSet};
use std::io::{BufRead, BufReader, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Mutex;

use imaptest::profile::{Distribution, Profile};
use statrs::distribution::{ContinuousCDF, LogNormal};

/// These runs load Dovecot for minutes; one at a time.
static SERIAL: Mutex<()> = Mutex::new(());

/// Simulated seconds per real second in the closed loop: a simulated day in 2 minutes.
const COMPRESSION: f64 = 720.0;

/// The hourly activity of the original profile (normalised by the scheduler).
const HOURLY: [f64; 24] = [
    0.5, 0.5, 0.5, 0.5, 0.5, 0.6, 0.8, 1.2, 1.6, 1.8, 1.8, 1.6, 1.4, 1.6, 1.8, 1.8, 1.6, 1.4, 1.2,
    1.0, 0.8, 0.7, 0.6, 0.5,
];

fn users(dir: &Path, count: usize) -> (PathBuf, Vec<String>) {
    let users: Vec<String> = (0..count).map(|_| common::fresh_user()).collect();
    let path = dir.join("users.txt");
    std::fs::write(&path, users.join("\n") + "\n").unwrap();
    (path, users)
}

fn mbox(dir: &Path) -> PathBuf {
    let path = dir.join("source.mbox");
    let status = Command::new(common::imaptest_bin())
        .args(["mbox-gen", &format!("out={}", path.display()), "count=20"])
        .status()
        .unwrap();
    assert!(status.success());
    path
}

/// The lab log's length now (where this test's lines will start).
fn log_offset() -> u64 {
    std::fs::metadata(lab_log()).map_or(0, |m| m.len())
}

fn lab_log() -> PathBuf {
    common::lab().dir.join("log/dovecot.log")
}

/// The lab log's lines from `offset` on that mention one of `users`, written to `out`;
/// returns how many. (Dovecot's log is shared by every test running.)
fn own_lines(offset: u64, users: &[String], out: &Path) -> usize {
    let mut file = std::fs::File::open(lab_log()).unwrap();
    let len = file.metadata().unwrap().len();
    // A restart in between moves the log aside; then read all of the new one.
    file.seek(SeekFrom::Start(if len >= offset { offset } else { 0 }))
        .unwrap();
    let mut text = Vec::new();
    file.read_to_end(&mut text).unwrap();
    let needles: HashSet<String> = users
        .iter()
        .flat_map(|u| [format!("({u})"), format!("user=<{u}>")])
        .collect();
    let mut kept = 0;
    let mut w = std::io::BufWriter::new(std::fs::File::create(out).unwrap());
    for line in String::from_utf8_lossy(&text).lines() {
        if needles.iter().any(|n| line.contains(n.as_str())) {
            writeln!(w, "{line}").unwrap();
            kept += 1;
        }
    }
    w.flush().unwrap();
    kept
}

/// Whether Dovecot was restarted since `offset` (the lab's log then starts over, and
/// sessions of the run were cut), or logged whole-second stamps (another checkout's
/// older lab configuration): the run says nothing about `profile fit` then.
fn lab_disturbed(offset: u64) -> bool {
    let text = std::fs::read(lab_log()).unwrap_or_default();
    if (text.len() as u64) < offset {
        return true;
    }
    let new = String::from_utf8_lossy(&text[offset as usize..]).into_owned();
    new.contains("starting up for")
        || new
            .lines()
            .any(|l| !l.is_empty() && l.as_bytes().get(19).is_none_or(|&b| b != b'.'))
}

/// Puts the lab's configuration (this checkout's) in place again.
fn lab_up() {
    let status = Command::new("bash")
        .arg(common::repo_root().join("scripts/dovecot-lab"))
        .arg("up")
        .status()
        .unwrap();
    assert!(status.success(), "scripts/dovecot-lab up failed");
}

/// Runs `profile` and returns (its stdout, the lab log lines of `users`), trying once
/// more when the shared lab was restarted or reconfigured during the run.
fn run_and_collect(profile: &Path, mbox: &Path, users: &[String], out: &Path) -> String {
    for attempt in 0..2 {
        lab_up();
        let offset = log_offset();
        let stdout = run_profile(profile, mbox);
        own_lines(offset, users, out);
        if !lab_disturbed(offset) {
            return stdout;
        }
        eprintln!("the lab was restarted or reconfigured during run {attempt}; trying again");
    }
    panic!(
        "the lab was restarted or reconfigured during both runs (other test runs with another lab configuration?)"
    );
}

fn run_profile(profile: &Path, mbox: &Path) -> String {
    let lab = common::lab();
    let out = Command::new(common::imaptest_bin())
        .args([
            &format!("profile={}", profile.display()),
            &format!("host={}", lab.host),
            &format!("pass={}", lab.user_password),
            &format!("mbox={}", mbox.display()),
        ])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "exit {:?}\n{stdout}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
}

fn fit(log: &Path, extra: &[String]) -> String {
    let out = Command::new(common::imaptest_bin())
        .args(["profile", "fit"])
        .arg(log)
        .args(extra)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "profile fit failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// The comment above `key = …` in the first table that has it: (n, KS p).
fn fit_comment(toml: &str, key: &str) -> (f64, f64) {
    let lines: Vec<&str> = toml.lines().collect();
    let at = lines
        .iter()
        .position(|l| l.starts_with(&format!("{key} = ")))
        .unwrap_or_else(|| panic!("no {key} in\n{toml}"));
    let comment = lines[at - 1];
    let number = |tag: &str| -> f64 {
        let rest = comment
            .split(tag)
            .nth(1)
            .unwrap_or_else(|| panic!("no {tag} in {comment}"));
        let end = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(rest.len());
        rest[..end].parse().unwrap_or(0.0)
    };
    (number("n="), number(" p="))
}

/// Checks a fitted mean against the true one: within 3 standard errors (true sd /
/// √n) and never more than 10 % off.
fn assert_mean(what: &str, fitted: f64, truth: f64, sd: f64, n: f64) {
    let tolerance = (3.0 * sd / n.sqrt()).min(0.10 * truth);
    assert!(
        (fitted - truth).abs() <= tolerance,
        "{what}: fitted mean {fitted:.1}, true {truth:.1}, tolerance {tolerance:.1} (n={n})"
    );
}

fn weibull_moments(shape: f64, scale: f64) -> (f64, f64) {
    let g1 = statrs::function::gamma::gamma(1.0 + 1.0 / shape);
    let g2 = statrs::function::gamma::gamma(1.0 + 2.0 / shape);
    (scale * g1, scale * (g2 - g1 * g1).sqrt())
}

/// (logins, deliveries) in a filtered log.
fn realised(log: &Path) -> (f64, f64) {
    let text = std::fs::read_to_string(log).unwrap();
    let logins = text
        .lines()
        .filter(|l| l.contains("-login: Info: Login:"))
        .count();
    let deliveries = text
        .lines()
        .filter(|l| l.contains(": saved mail to "))
        .count();
    (logins as f64, deliveries as f64)
}

#[test]
fn fit_recovers_the_profile_that_made_the_log() {
    let _serial = SERIAL.lock().unwrap_or_else(|p| p.into_inner());
    let lab = common::lab();
    let dir = tempfile::tempdir().unwrap();
    let (userfile, names) = users(dir.path(), 60);
    let source = mbox(dir.path());
    let hourly: Vec<String> = HOURLY.iter().map(|v| v.to_string()).collect();
    let original = dir.path().join("original.toml");
    std::fs::write(
        &original,
        format!(
            r#"
[run]
duration = "120s"
seed = 17
time_compression = {COMPRESSION}

[servers.imap]
port = {imap}
[servers.lmtp]
port = {lmtp}

[activity]
start = "00:00"
hourly = [{hourly}]

[[population]]
name = "desk"
count = 60
userfile = "{userfile}"
clients = [{{ client = "desk" }}]
session_length = {{ dist = "weibull", shape = 1.5, scale = "20min" }}
inbox_delivery = {{ per_day = 40 }}
delivery_size = {{ dist = "lognormal", mean = 30000, std_dev = 20000 }}

[[client]]
name = "desk"
login_interval = {{ dist = "lognormal", mean = "40min", std_dev = "30min" }}
"#,
            imap = lab.imap_port,
            lmtp = lab.lmtp_port,
            hourly = hourly.join(", "),
            userfile = userfile.display(),
        ),
    )
    .unwrap();

    let first_log = dir.path().join("first.log");
    run_and_collect(&original, &source, &names, &first_log);
    let kept = std::fs::read_to_string(&first_log).unwrap().lines().count();
    assert!(kept > 3000, "only {kept} log lines of the run's users");

    let fitted_text = fit(
        &first_log,
        &[
            format!("time_compression={COMPRESSION}"),
            "start=00:00".into(),
            format!("base={}", original.display()),
        ],
    );
    eprintln!("{fitted_text}");
    for name in &names {
        assert!(
            !fitted_text.contains(name.as_str()),
            "user name {name} in the output"
        );
    }
    let fitted_path = dir.path().join("fitted.toml");
    std::fs::write(&fitted_path, &fitted_text).unwrap();
    let fitted: Profile = imaptest::profile::from_toml_str(&fitted_text, &fitted_path)
        .unwrap_or_else(|e| panic!("{e}\n{fitted_text}"));
    let pop = &fitted.populations[0];
    let client = &fitted.clients[0];

    // Session length: Weibull(1.5, 20 min).
    let (n, p) = fit_comment(&fitted_text, "session_length");
    let (mean, sd) = weibull_moments(1.5, 1200.0);
    match pop.session_length.as_ref().unwrap() {
        d @ Distribution::Weibull { .. } => {
            assert_mean("session_length", d.mean_secs(), mean, sd, n)
        }
        other => panic!("session_length fitted as {other:?}\n{fitted_text}"),
    }
    assert!(p > 0.01, "session_length KS p = {p}\n{fitted_text}");

    // Login gaps: log-normal, mean 40 min, sd 30 min (in operational time).
    let (n, p) = fit_comment(&fitted_text, "login_interval");
    match client.login_interval.as_ref().unwrap() {
        d @ Distribution::LogNormal { .. } => {
            assert_mean("login_interval", d.mean_secs(), 2400.0, 1800.0, n)
        }
        other => panic!("login_interval fitted as {other:?}\n{fitted_text}"),
    }
    assert!(p > 0.01, "login_interval KS p = {p}\n{fitted_text}");

    // Deliveries: Poisson, 40 per user per day (exponential gaps of 2160 s).
    let (n, p) = fit_comment(&fitted_text, "inbox_delivery");
    match pop.inbox_delivery.as_ref().unwrap() {
        d @ Distribution::PerDay(_) => {
            assert_mean("inbox_delivery gap", d.mean_secs(), 2160.0, 2160.0, n)
        }
        other => panic!("inbox_delivery fitted as {other:?}\n{fitted_text}"),
    }
    assert!(p > 0.01, "inbox_delivery KS p = {p}\n{fitted_text}");

    // Sizes: log-normal, mean 30000, sd 20000 (as stored: Dovecot adds its trace
    // headers, about 1 % here).
    let (n, p) = fit_comment(&fitted_text, "delivery_size");
    match &pop.delivery_size.as_ref().unwrap().0 {
        d @ Distribution::LogNormal { .. } => {
            assert_mean("delivery_size", d.mean_secs(), 30000.0, 20000.0, n)
        }
        other => panic!("delivery_size fitted as {other:?}\n{fitted_text}"),
    }
    assert!(p > 0.01, "delivery_size KS p = {p}\n{fitted_text}");

    // The hourly curve: each hour within 3 standard errors of its delivery count.
    let activity = fitted.activity.as_ref().expect("an [activity] curve");
    let truth_mean = HOURLY.iter().sum::<f64>() / 24.0;
    let (_, deliveries) = realised(&first_log);
    for (h, (&fitted_level, &level)) in activity.hourly.get_ref().iter().zip(&HOURLY).enumerate() {
        let truth = level / truth_mean;
        let expected = deliveries * truth / 24.0;
        let tolerance = 3.0 * truth / expected.sqrt() + 0.02;
        assert!(
            (fitted_level - truth).abs() <= tolerance,
            "hour {h}: fitted {fitted_level:.3}, true {truth:.3} ± {tolerance:.3}\n{fitted_text}"
        );
    }

    // The fitted profile runs as it is (with another seed) and reproduces the
    // realised rates.
    std::fs::write(&fitted_path, fitted_text.replace("seed = 17", "seed = 18")).unwrap();
    let second_log = dir.path().join("second.log");
    run_and_collect(&fitted_path, &source, &names, &second_log);
    let (logins_1, deliveries_1) = realised(&first_log);
    let (logins_2, deliveries_2) = realised(&second_log);
    for (what, a, b) in [
        ("logins", logins_1, logins_2),
        ("deliveries", deliveries_1, deliveries_2),
    ] {
        assert!(
            (a - b).abs() <= 3.0 * (a + b).sqrt(),
            "{what}: original run {a}, fitted run {b}\n{fitted_text}"
        );
    }
}

/// A plain IMAP session for reading what the server stored.
struct Imap {
    reader: BufReader<std::net::TcpStream>,
    writer: std::net::TcpStream,
}

impl Imap {
    fn login(user: &str) -> Imap {
        let lab = common::lab();
        let stream = common::connect(lab.imap_addr());
        let mut imap = Imap {
            reader: BufReader::new(stream.try_clone().unwrap()),
            writer: stream,
        };
        let mut greeting = String::new();
        imap.reader.read_line(&mut greeting).unwrap();
        let reply = imap.command(&format!("LOGIN {user} {}", lab.user_password));
        assert!(reply.last().unwrap().starts_with("t OK"), "{reply:?}");
        imap
    }

    /// The lines of the reply (literals read as part of their line).
    fn command(&mut self, cmd: &str) -> Vec<String> {
        self.writer
            .write_all(format!("t {cmd}\r\n").as_bytes())
            .unwrap();
        let mut lines = Vec::new();
        loop {
            let mut line = String::new();
            assert!(self.reader.read_line(&mut line).unwrap() > 0, "closed");
            // {N} at the end: a literal follows.
            while let Some(n) = line
                .trim_end()
                .strip_suffix('}')
                .and_then(|l| l.rsplit_once('{'))
                .and_then(|(_, n)| n.parse::<usize>().ok())
            {
                let mut literal = vec![0u8; n];
                self.reader.read_exact(&mut literal).unwrap();
                line.push_str(&String::from_utf8_lossy(&literal));
                let mut rest = String::new();
                self.reader.read_line(&mut rest).unwrap();
                line.push_str(&rest);
            }
            let done = line.starts_with("t ");
            lines.push(line);
            if done {
                return lines;
            }
        }
    }

    /// Per message in INBOX: (RFC822.SIZE, bytes of the headers Dovecot added,
    /// Message-ID).
    fn stored(&mut self) -> Vec<(u64, u64, String)> {
        let select = self.command("SELECT INBOX");
        assert!(select.last().unwrap().starts_with("t OK"), "{select:?}");
        let reply = self.command(
            "FETCH 1:* (RFC822.SIZE BODY.PEEK[HEADER.FIELDS (Return-Path Delivered-To Received Message-ID)])",
        );
        reply
            .iter()
            .filter(|l| l.starts_with("* ") && l.contains("FETCH"))
            .map(|l| {
                let size: u64 = l
                    .split("RFC822.SIZE ")
                    .nth(1)
                    .and_then(|r| r.split([' ', ')']).next())
                    .and_then(|n| n.parse().ok())
                    .unwrap_or_else(|| panic!("no RFC822.SIZE in {l}"));
                let header = l.split_once("}\r\n").map_or("", |(_, h)| h);
                let mut added = 0u64;
                let mut id = String::new();
                let mut current_is_id = false;
                for field in header.split_inclusive("\r\n") {
                    let continuation = field.starts_with([' ', '\t']);
                    if !continuation {
                        current_is_id = field.to_ascii_lowercase().starts_with("message-id:");
                    }
                    if current_is_id {
                        id.push_str(field.trim());
                    } else if field != "\r\n" && !field.starts_with(')') {
                        added += field.len() as u64;
                    }
                }
                (size, added, id)
            })
            .collect()
    }
}

/// A profile of LMTP deliveries only (its users never log in), a simulated hour per
/// second, with the population keys `keys`.
fn deliveries_only(dir: &Path, userfile: &Path, users: usize, secs: &str, keys: &str) -> PathBuf {
    let path = dir.join("deliveries.toml");
    std::fs::write(
        &path,
        format!(
            r#"
[run]
duration = "{secs}"
seed = 5
time_compression = 3600

[servers.lmtp]
port = {lmtp}

[[population]]
name = "receivers"
count = {users}
userfile = "{userfile}"
clients = [{{ client = "none" }}]
{keys}

[[client]]
name = "none"
connections = 0
"#,
            lmtp = common::lab().lmtp_port,
            userfile = userfile.display(),
        ),
    )
    .unwrap();
    path
}

#[test]
fn stored_sizes_follow_the_drawn_lognormal() {
    let _serial = SERIAL.lock().unwrap_or_else(|p| p.into_inner());
    common::lab();
    let dir = tempfile::tempdir().unwrap();
    let (userfile, names) = users(dir.path(), 4);
    let source = mbox(dir.path());
    let profile = deliveries_only(
        dir.path(),
        &userfile,
        4,
        "15s",
        "inbox_delivery = { per_day = 150 }\n\
         delivery_size = { dist = \"lognormal\", mean = 20000, std_dev = 15000 }\n\
         delivery_attachments = 30",
    );
    let stdout = run_profile(&profile, &source);
    assert!(stdout.contains("Delivered sizes ("), "{stdout}");

    let mut sent_sizes = Vec::new();
    for user in &names {
        let mut imap = Imap::login(user);
        for (size, added, _) in imap.stored() {
            // What imaptest sent: the stored size less Dovecot's trace headers.
            sent_sizes.push((size - added) as f64);
        }
    }
    assert!(
        sent_sizes.len() >= 300,
        "only {} messages",
        sent_sizes.len()
    );
    let sigma2 = (1.0f64 + (15000.0f64 / 20000.0).powi(2)).ln();
    let law = LogNormal::new(20000f64.ln() - sigma2 / 2.0, sigma2.sqrt()).unwrap();
    sent_sizes.sort_by(f64::total_cmp);
    let n = sent_sizes.len() as f64;
    let d = sent_sizes
        .iter()
        .enumerate()
        .map(|(i, &x)| {
            let c = law.cdf(x);
            (c - i as f64 / n).max((i + 1) as f64 / n - c)
        })
        .fold(0.0, f64::max);
    let p = imaptest::fit::mle::kolmogorov_p(d, n);
    assert!(p > 0.01, "KS D={d:.4} p={p:.4} over {n} stored messages");
}

#[test]
fn multi_recipient_deliveries_are_stored_once_per_recipient() {
    let _serial = SERIAL.lock().unwrap_or_else(|p| p.into_inner());
    common::lab();
    let dir = tempfile::tempdir().unwrap();
    let (userfile, names) = users(dir.path(), 5);
    let source = mbox(dir.path());
    let profile = deliveries_only(
        dir.path(),
        &userfile,
        5,
        "6s",
        "inbox_delivery = { per_day = 40 }\n\
         delivery_recipients = { 1 = 50, 3 = 50 }",
    );
    let stdout = run_profile(&profile, &source);
    let delivered: u64 = stdout
        .lines()
        .find_map(|l| l.strip_prefix("Deliveries: "))
        .and_then(|l| l.split(" offered, ").nth(1))
        .and_then(|l| l.split(' ').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no Deliveries line in\n{stdout}"));

    // Every copy of every message, by Message-ID: how many recipients have it.
    let mut copies: HashMap<String, u32> = HashMap::new();
    let mut stored = 0u64;
    for user in &names {
        let mut imap = Imap::login(user);
        for (_, _, id) in imap.stored() {
            stored += 1;
            *copies.entry(id).or_default() += 1;
        }
    }
    assert!(delivered >= 20, "only {delivered} deliveries\n{stdout}");
    assert_eq!(
        stored, delivered,
        "told {delivered}, stored {stored}\n{stdout}"
    );
    let multi = copies.values().filter(|&&c| c == 3).count();
    assert!(
        copies.values().all(|&c| c == 1 || c == 3),
        "recipients per message: {copies:?}"
    );
    assert!(multi > 0, "no 3-recipient delivery among {}", copies.len());
}
