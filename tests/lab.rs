//! Smoke tests of the real-Dovecot lab (`scripts/dovecot-lab`), std::net only.

mod common;

use std::collections::HashSet;
use std::io::{BufRead, BufReader, Write};
use std::net::TcpStream;

struct Conn {
    reader: BufReader<TcpStream>,
    writer: TcpStream,
}

impl Conn {
    fn open(addr: std::net::SocketAddr) -> Conn {
        let s = common::connect(addr);
        Conn {
            writer: s.try_clone().unwrap(),
            reader: BufReader::new(s),
        }
    }

    fn line(&mut self) -> String {
        let mut l = String::new();
        let n = self.reader.read_line(&mut l).expect("read from lab");
        assert!(n > 0, "lab closed the connection");
        l.trim_end().to_string()
    }

    fn send(&mut self, line: &str) {
        self.writer.write_all(line.as_bytes()).unwrap();
        self.writer.write_all(b"\r\n").unwrap();
    }

    /// Sends an IMAP command tagged `tag`; returns (untagged lines, tagged line).
    fn imap(&mut self, tag: &str, cmd: &str) -> (Vec<String>, String) {
        self.send(&format!("{tag} {cmd}"));
        let mut untagged = Vec::new();
        loop {
            let l = self.line();
            if l.starts_with(&format!("{tag} ")) {
                return (untagged, l);
            }
            untagged.push(l);
        }
    }
}

fn b64(data: &[u8]) -> String {
    const A: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for chunk in data.chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let v = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(A[(v >> (18 - 6 * i) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

#[test]
fn imap_greeting_and_capabilities() {
    let lab = common::lab();
    let mut c = Conn::open(lab.imap_addr());
    let greeting = c.line();
    assert!(greeting.starts_with("* OK"), "greeting: {greeting}");
    let (untagged, tagged) = c.imap("a", "CAPABILITY");
    assert!(tagged.starts_with("a OK"), "{tagged}");
    let caps = untagged
        .iter()
        .find(|l| l.starts_with("* CAPABILITY "))
        .expect("CAPABILITY response");
    for want in [
        "STARTTLS",
        "AUTH=PLAIN",
        "AUTH=LOGIN",
        "AUTH=SCRAM-SHA-1",
        "AUTH=SCRAM-SHA-256",
    ] {
        assert!(caps.split(' ').any(|c| c == want), "{want} missing: {caps}");
    }
    c.imap("z", "LOGOUT");
}

#[test]
fn imap_login_and_master_logins() {
    let lab = common::lab();
    let user = common::fresh_user();

    let mut c = Conn::open(lab.imap_addr());
    c.line();
    let (_, t) = c.imap("a", &format!("LOGIN {user} {}", lab.user_password));
    assert!(t.starts_with("a OK"), "plain LOGIN: {t}");
    let (_, t) = c.imap("b", "SELECT INBOX");
    assert!(t.starts_with("b OK"), "SELECT: {t}");
    c.imap("z", "LOGOUT");

    let mut c = Conn::open(lab.imap_addr());
    c.line();
    let (_, t) = c.imap("a", &format!("LOGIN {user} wrong-password"));
    assert!(t.starts_with("a NO"), "bad password must fail: {t}");
    c.imap("z", "LOGOUT");

    let mut c = Conn::open(lab.imap_addr());
    c.line();
    let (_, t) = c.imap(
        "a",
        &format!(
            "LOGIN \"{}\" \"{}\"",
            lab.master_login_name(&user),
            lab.master_password
        ),
    );
    assert!(t.starts_with("a OK"), "master LOGIN: {t}");
    c.imap("z", "LOGOUT");

    // SASL PLAIN with authzid=user, authcid=master (SASL-IR).
    let mut c = Conn::open(lab.imap_addr());
    c.line();
    let ir = b64(format!("{user}\0{}\0{}", lab.master_user, lab.master_password).as_bytes());
    let (_, t) = c.imap("a", &format!("AUTHENTICATE PLAIN {ir}"));
    assert!(t.starts_with("a OK"), "master AUTHENTICATE PLAIN: {t}");
    c.imap("z", "LOGOUT");
}

#[test]
fn pop3_greeting_and_login() {
    let lab = common::lab();
    let user = common::fresh_user();
    let mut c = Conn::open(lab.pop3_addr());
    let greeting = c.line();
    assert!(greeting.starts_with("+OK"), "greeting: {greeting}");
    c.send("CAPA");
    let mut caps = Vec::new();
    loop {
        let l = c.line();
        if l == "." {
            break;
        }
        caps.push(l);
    }
    assert!(caps.iter().any(|l| l == "STLS"), "STLS missing: {caps:?}");
    c.send(&format!("USER {user}"));
    assert!(c.line().starts_with("+OK"));
    c.send(&format!("PASS {}", lab.user_password));
    let l = c.line();
    assert!(l.starts_with("+OK"), "PASS: {l}");
    c.send("QUIT");
    assert!(c.line().starts_with("+OK"));
}

#[test]
fn lmtp_greeting_and_lhlo() {
    let lab = common::lab();
    let mut c = Conn::open(lab.lmtp_addr());
    let greeting = c.line();
    assert!(greeting.starts_with("220"), "greeting: {greeting}");
    c.send("LHLO localhost");
    let mut ext = Vec::new();
    loop {
        let l = c.line();
        assert!(l.starts_with("250"), "LHLO reply: {l}");
        ext.push(l[4..].to_string());
        if l.as_bytes().get(3) == Some(&b' ') {
            break;
        }
    }
    assert!(
        ext.iter().any(|e| e == "STARTTLS"),
        "STARTTLS missing: {ext:?}"
    );
    c.send("QUIT");
    assert!(c.line().starts_with("221"));
}

#[test]
fn imaps_port_accepts_tcp() {
    let lab = common::lab();
    common::connect(lab.imaps_addr());
    assert!(lab.ca_file.is_file(), "CA file {}", lab.ca_file.display());
}

#[test]
fn fresh_users_are_distinct_and_in_range() {
    let seen: HashSet<String> = (0..5).map(|_| common::fresh_user()).collect();
    assert_eq!(seen.len(), 5);
    for u in &seen {
        let n: u32 = u.strip_prefix("testuser").unwrap().parse().unwrap();
        assert!(common::FRESH_USERS.contains(&n), "{u}");
    }
}

#[test]
fn lmtp_delivery_is_seen_over_imap() {
    let lab = common::lab();
    let user = common::fresh_user();

    let mut c = Conn::open(lab.lmtp_addr());
    assert!(c.line().starts_with("220"));
    c.send("LHLO localhost");
    while c.line().starts_with("250-") {}
    for (cmd, want) in [
        ("MAIL FROM:<sender@example.org>".to_string(), "250"),
        (format!("RCPT TO:<{user}@localhost>"), "250"),
        ("DATA".to_string(), "354"),
    ] {
        c.send(&cmd);
        let l = c.line();
        assert!(l.starts_with(want), "{cmd}: {l}");
    }
    c.send("From: sender@example.org\r\nSubject: lab smoke\r\n\r\nhello\r\n.");
    let l = c.line();
    assert!(l.starts_with("250"), "end of DATA: {l}");
    c.send("QUIT");

    let mut c = Conn::open(lab.imap_addr());
    c.line();
    let (_, t) = c.imap("a", &format!("LOGIN {user} {}", lab.user_password));
    assert!(t.starts_with("a OK"), "{t}");
    let (untagged, t) = c.imap("b", "SELECT INBOX");
    assert!(t.starts_with("b OK"), "{t}");
    assert!(
        untagged.iter().any(|l| l == "* 1 EXISTS"),
        "fresh user's INBOX should hold exactly the delivered mail: {untagged:?}"
    );
    c.imap("z", "LOGOUT");
}
