//! One line of a Dovecot log: its timestamp and what it says, for `profile fit`.
//!
//! Understands Dovecot 2.3's own log files (`log_path`, any `log_timestamp` of the
//! forms `"%b %d %H:%M:%S "` (the default) or `"%Y-%m-%d %H:%M:%S[.%{usecs}] "`) and
//! syslog lines (`Dec  3 09:29:10 host dovecot: …`, or an RFC 3339 stamp). The parts
//! read are the default `login_log_format`, `mail_log_prefix`, `imap_logout_format` and
//! `pop3_logout_format`, the `mail_log` plugin's events (`save` with `vsize` or `size`,
//! `expunge`), `imap_id_log` and LMTP's `deliver_log_format`.

/// A point in time: seconds since 1970 (the log's local time, read as UTC), and whether
/// the log gave a fraction of a second.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Stamp {
    pub secs: f64,
    pub precise: bool,
}

/// The protocol of a mail session.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Proto {
    Imap,
    Pop3,
}

/// Where an LMTP delivery was saved.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Folder {
    Inbox,
    Spam,
    Other,
}

/// What a line says, borrowing from it.
#[derive(Debug, Clone, PartialEq)]
pub enum Record<'a> {
    /// `imap-login: Login: user=<u>, …, mpid=N, …, session=<s>`.
    Login {
        proto: Proto,
        user: &'a str,
        session: &'a str,
    },
    /// `ID sent: name=…` (before login from the login process, keyed by `session=<s>`;
    /// after login from the mail process, keyed by its prefix).
    ClientId { session: &'a str, name: &'a str },
    /// `imap(u)<pid><s>: Disconnected: … in=N out=N …` or POP3's `retr=a/b, del=a/b`.
    Logout {
        proto: Proto,
        user: &'a str,
        session: &'a str,
        bytes_in: u64,
        bytes_out: u64,
        retrieved: u64,
        deleted: u64,
    },
    /// LMTP `msgid=…: saved mail to BOX` (or Sieve's `stored mail into mailbox 'BOX'`):
    /// one recipient of the transaction `transaction`.
    Delivered {
        user: &'a str,
        transaction: &'a str,
        folder: Folder,
    },
    /// `mail_log` `save: …, size=N` from LMTP.
    DeliveredSize { user: &'a str, size: u64 },
    /// `mail_log` `expunge: …` from an IMAP or POP3 session.
    Expunged { proto: Proto, user: &'a str },
    /// A line of a kind `profile fit` knows and has no use for.
    Ignored,
}

/// Why a line was not understood.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unparsed {
    /// No timestamp at the start.
    Timestamp,
    /// A timestamp, but no `service: Level: message` after it.
    Shape,
    /// A known line with a field missing or malformed (e.g. `Login:` without `user=`).
    Field,
    /// A well-formed line of an unknown kind.
    Unknown,
}

/// Parses one line (without its newline). `year` is used for stamps without a year.
pub fn parse_line(line: &str, year: i32) -> Result<(Stamp, Record<'_>), Unparsed> {
    let (stamp, rest) = parse_stamp(line, year).ok_or(Unparsed::Timestamp)?;
    let rest = strip_syslog_tag(rest);
    let (prefix, message) = split_level(rest).ok_or(Unparsed::Shape)?;
    Ok((stamp, parse_message(prefix, message)?))
}

/// The timestamp of a line alone (whatever follows it).
pub fn stamp_only(line: &str, year: i32) -> Option<Stamp> {
    parse_stamp(line, year).map(|(stamp, _)| stamp)
}

/// The month of a `%b`-style stamp (for rolling the year over in a long log).
pub fn stamp_month(line: &str) -> Option<u32> {
    month(line.get(..3)?)
}

fn parse_message<'a>(prefix: &'a str, message: &'a str) -> Result<Record<'a>, Unparsed> {
    let service = prefix.split(['(', '<', ':']).next().unwrap_or(prefix);
    match service {
        "imap-login" | "pop3-login" => {
            let proto = if service == "imap-login" {
                Proto::Imap
            } else {
                Proto::Pop3
            };
            if let Some(fields) = message.strip_prefix("Login: ") {
                let user = angle_field(fields, "user=").ok_or(Unparsed::Field)?;
                let session = angle_field(fields, "session=").ok_or(Unparsed::Field)?;
                Ok(Record::Login {
                    proto,
                    user,
                    session,
                })
            } else if let Some(fields) = message.strip_prefix("ID sent: ") {
                let session = angle_field(fields, "session=").ok_or(Unparsed::Field)?;
                let name = id_name(fields).ok_or(Unparsed::Field)?;
                Ok(Record::ClientId { session, name })
            } else {
                Ok(Record::Ignored)
            }
        }
        "imap" | "pop3" => {
            let proto = if service == "imap" {
                Proto::Imap
            } else {
                Proto::Pop3
            };
            let (user, session) = mail_prefix(prefix).ok_or(Unparsed::Field)?;
            if message.starts_with("Disconnected") || message.starts_with("Logged out") {
                let number = |key: &str| numeric_field(message, key).unwrap_or(0);
                let first = |key: &str| {
                    field_value(message, key)
                        .and_then(|v| v.split('/').next())
                        .and_then(|v| v.parse::<u64>().ok())
                        .unwrap_or(0)
                };
                Ok(Record::Logout {
                    proto,
                    user,
                    session: session.ok_or(Unparsed::Field)?,
                    bytes_in: number("in="),
                    bytes_out: number("out="),
                    retrieved: first("retr="),
                    deleted: first("del="),
                })
            } else if let Some(fields) = message.strip_prefix("ID sent: ") {
                Ok(Record::ClientId {
                    session: session.ok_or(Unparsed::Field)?,
                    name: id_name(fields).ok_or(Unparsed::Field)?,
                })
            } else if message.starts_with("expunge: ") {
                Ok(Record::Expunged { proto, user })
            } else {
                Ok(Record::Ignored)
            }
        }
        "lmtp" => {
            let Some((user, session)) = mail_prefix(prefix) else {
                // `lmtp(pid): Connect from …` and other connection-level lines.
                return Ok(Record::Ignored);
            };
            if let Some(fields) = message.strip_prefix("save: ") {
                // vsize (CRLF line ends, RFC822.SIZE) when logged, else the stored size.
                let size = numeric_field(fields, "vsize=")
                    .or_else(|| numeric_field(fields, "size="))
                    .ok_or(Unparsed::Field)?;
                return Ok(Record::DeliveredSize { user, size });
            }
            let folder = if let Some((_, b)) = message.rsplit_once(": saved mail to ") {
                b
            } else if let Some((_, b)) = message.rsplit_once("stored mail into mailbox '") {
                b.trim_end_matches('\'')
            } else {
                return Ok(Record::Ignored);
            };
            let folder = if folder.eq_ignore_ascii_case("INBOX") {
                Folder::Inbox
            } else if folder.eq_ignore_ascii_case("Spam") || folder.eq_ignore_ascii_case("Junk") {
                Folder::Spam
            } else {
                Folder::Other
            };
            let session = session.ok_or(Unparsed::Field)?;
            // `<sess:R2>`: recipient 2 of the transaction `sess`; `:T27` numbers
            // transactions of one connection and stays part of the key.
            let transaction = match session.rsplit_once(":R") {
                Some((t, n)) if n.bytes().all(|b| b.is_ascii_digit()) => t,
                _ => session,
            };
            Ok(Record::Delivered {
                user,
                transaction,
                folder,
            })
        }
        "master" | "auth" | "auth-worker" | "config" | "log" | "anvil" | "stats" | "dict"
        | "indexer" | "indexer-worker" | "lda" | "submission" | "submission-login"
        | "managesieve" | "managesieve-login" | "doveadm" | "quota-status" | "replicator"
        | "aggregator" | "dovecot" => Ok(Record::Ignored),
        _ => Err(Unparsed::Unknown),
    }
}

/// `imap(user)<pid><session>` → (user, session). The session is absent with a custom
/// `mail_log_prefix`.
fn mail_prefix(prefix: &str) -> Option<(&str, Option<&str>)> {
    let open = prefix.find('(')?;
    let close = open + prefix[open..].find(')')?;
    let user = &prefix[open + 1..close];
    if user.is_empty() || user.bytes().all(|b| b.is_ascii_digit()) {
        return None; // `lmtp(1234)`: a process id, no user yet.
    }
    let rest = &prefix[close + 1..];
    // <pid><session>: the session is the second angle group.
    let mut groups = rest.split('<').skip(1).map(|g| g.trim_end_matches('>'));
    let _pid = groups.next();
    Some((user, groups.next().filter(|s| !s.is_empty())))
}

/// `key=<value>` anywhere in `fields`.
fn angle_field<'a>(fields: &'a str, key: &str) -> Option<&'a str> {
    let start = find_key(fields, key)? + key.len();
    let value = fields[start..].strip_prefix('<')?;
    let end = value.find('>')?;
    Some(&value[..end])
}

/// `key=value` (value up to `,`, space or end).
fn field_value<'a>(fields: &'a str, key: &str) -> Option<&'a str> {
    let start = find_key(fields, key)? + key.len();
    let value = &fields[start..];
    let end = value.find([',', ' ']).unwrap_or(value.len());
    Some(&value[..end])
}

fn numeric_field(fields: &str, key: &str) -> Option<u64> {
    field_value(fields, key)?.parse().ok()
}

/// Position of `key` at the start of `fields` or after a space or comma.
fn find_key(fields: &str, key: &str) -> Option<usize> {
    let mut from = 0;
    while let Some(i) = fields[from..].find(key) {
        let at = from + i;
        if at == 0 || matches!(fields.as_bytes()[at - 1], b' ' | b',' | b'(') {
            return Some(at);
        }
        from = at + key.len();
    }
    None
}

/// The client name of an `ID sent:` line (`name=Thunderbird, version=…`).
fn id_name(fields: &str) -> Option<&str> {
    let start = find_key(fields, "name=")? + "name=".len();
    let value = &fields[start..];
    let end = value.find([',', ':']).unwrap_or(value.len());
    let name = value[..end].trim();
    (!name.is_empty()).then_some(name)
}

/// `service…: Level: message` → (service…, message).
fn split_level(rest: &str) -> Option<(&str, &str)> {
    for level in [
        ": Info: ",
        ": Warning: ",
        ": Error: ",
        ": Fatal: ",
        ": Panic: ",
        ": Debug: ",
    ] {
        if let Some(i) = rest.find(level) {
            return Some((&rest[..i], &rest[i + level.len()..]));
        }
    }
    None
}

/// Drops syslog's `host dovecot: ` or `host dovecot[123]: `.
fn strip_syslog_tag(rest: &str) -> &str {
    let mut words = rest.splitn(3, ' ');
    if let (Some(_host), Some(tag), Some(after)) = (words.next(), words.next(), words.next())
        && (tag == "dovecot:" || (tag.starts_with("dovecot[") && tag.ends_with("]:")))
    {
        return after;
    }
    rest
}

fn month(name: &str) -> Option<u32> {
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    MONTHS.iter().position(|m| *m == name).map(|i| i as u32 + 1)
}

/// The stamp at the start of `line` and the rest after its separator.
fn parse_stamp(line: &str, year: i32) -> Option<(Stamp, &str)> {
    let b = line.as_bytes();
    if b.len() >= 19 && b[4] == b'-' && b[7] == b'-' && (b[10] == b' ' || b[10] == b'T') {
        let y: i32 = line.get(0..4)?.parse().ok()?;
        let mo: u32 = line.get(5..7)?.parse().ok()?;
        let d: u32 = line.get(8..10)?.parse().ok()?;
        let (clock, rest) = parse_clock(&line[11..])?;
        // An RFC 3339 offset (`+01:00`, `Z`) is skipped: intervals don't need it.
        let rest = rest.trim_start_matches(|c: char| {
            c == 'Z' || c == '+' || c == '-' || c == ':' || c.is_ascii_digit()
        });
        let rest = rest.strip_prefix(' ')?;
        let secs = days_from_civil(y, mo, d)? as f64 * 86400.0 + clock.secs;
        return Some((
            Stamp {
                secs,
                precise: clock.precise,
            },
            rest,
        ));
    }
    // `Dec 03 09:29:10 ` or syslog's `Dec  3 09:29:10 `.
    let mo = month(line.get(0..3)?)?;
    let rest = line.get(3..)?.strip_prefix(' ')?.trim_start_matches(' ');
    let digits = rest.find(' ')?;
    let d: u32 = rest[..digits].parse().ok()?;
    let (clock, rest) = parse_clock(&rest[digits + 1..])?;
    let rest = rest.strip_prefix(' ')?;
    let secs = days_from_civil(year, mo, d)? as f64 * 86400.0 + clock.secs;
    Some((
        Stamp {
            secs,
            precise: clock.precise,
        },
        rest,
    ))
}

/// `HH:MM:SS[.ffffff]` → (seconds of the day, rest).
fn parse_clock(s: &str) -> Option<(Stamp, &str)> {
    let b = s.as_bytes();
    if b.len() < 8 || b[2] != b':' || b[5] != b':' {
        return None;
    }
    let h: u32 = s.get(0..2)?.parse().ok()?;
    let m: u32 = s.get(3..5)?.parse().ok()?;
    let sec: u32 = s.get(6..8)?.parse().ok()?;
    if h > 23 || m > 59 || sec > 60 {
        return None;
    }
    let mut secs = f64::from(h * 3600 + m * 60 + sec);
    let mut rest = s.get(8..)?;
    let mut precise = false;
    if let Some(frac) = rest.strip_prefix('.') {
        let len = frac.bytes().take_while(u8::is_ascii_digit).count();
        if len > 0 {
            let digits = &frac[..len.min(9)];
            secs += digits.parse::<f64>().ok()? / 10f64.powi(digits.len() as i32);
            precise = true;
        }
        rest = &frac[len..];
    }
    Some((Stamp { secs, precise }, rest))
}

/// Days since 1970-01-01 of a proleptic Gregorian date.
fn days_from_civil(y: i32, m: u32, d: u32) -> Option<i64> {
    if !(1..=12).contains(&m) || !(1..=31).contains(&d) {
        return None;
    }
    let y = i64::from(y) - i64::from(m <= 2);
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let m = i64::from(m);
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + i64::from(d) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    Some(era * 146_097 + doe - 719_468)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_lab_lines() {
        let login = "2026-12-03 09:35:24.692787 imap-login: Info: Login: user=<testuser150>, method=PLAIN, rip=127.0.0.1, lip=127.0.0.1, mpid=10921, secured, session=<EDKjerdhDMR/AAAB>";
        let (stamp, record) = parse_line(login, 2000).unwrap();
        assert!(stamp.precise);
        assert!((stamp.secs % 86400.0 - (9.0 * 3600.0 + 35.0 * 60.0 + 24.692787)).abs() < 1e-5);
        assert_eq!(
            record,
            Record::Login {
                proto: Proto::Imap,
                user: "testuser150",
                session: "EDKjerdhDMR/AAAB"
            }
        );
        let logout = "2026-12-03 09:35:24.698943 imap(testuser150)<10921><EDKjerdhDMR/AAAB>: Info: Disconnected: Logged out in=32 out=836 deleted=0 expunged=0 trashed=0";
        assert!(matches!(
            parse_line(logout, 2000).unwrap().1,
            Record::Logout {
                bytes_in: 32,
                bytes_out: 836,
                session: "EDKjerdhDMR/AAAB",
                ..
            }
        ));
        let pop3 = "Dec 03 09:35:24 pop3(testuser151)<10926><cIajerdhful/AAAB>: Info: Disconnected: Logged out top=0/0, retr=1/6155, del=1/2, size=6331";
        let (stamp, record) = parse_line(pop3, 2026).unwrap();
        assert!(!stamp.precise);
        assert!(matches!(
            record,
            Record::Logout {
                proto: Proto::Pop3,
                retrieved: 1,
                deleted: 1,
                ..
            }
        ));
        let rcpt2 = "2026-12-03 09:35:24.703082 lmtp(testuser151)<10692><GHerKdw3EWvEKQAAg+zDdQ:R2>: Info: msgid=unspecified: saved mail to INBOX";
        assert_eq!(
            parse_line(rcpt2, 2000).unwrap().1,
            Record::Delivered {
                user: "testuser151",
                transaction: "GHerKdw3EWvEKQAAg+zDdQ",
                folder: Folder::Inbox
            }
        );
        let size = "2026-12-03 09:35:24.703058 lmtp(testuser151)<10692><GHerKdw3EWvEKQAAg+zDdQ:R2>: Info: save: box=INBOX, uid=2, msgid=, size=185";
        assert_eq!(
            parse_line(size, 2000).unwrap().1,
            Record::DeliveredSize {
                user: "testuser151",
                size: 185
            }
        );
        let id = "2026-12-03 09:35:24.688927 imap-login: Info: ID sent: name=FitProbe, version=1.0: user=<>, rip=127.0.0.1, lip=127.0.0.1, secured, session=<EDKjerdhDMR/AAAB>";
        assert_eq!(
            parse_line(id, 2000).unwrap().1,
            Record::ClientId {
                session: "EDKjerdhDMR/AAAB",
                name: "FitProbe"
            }
        );
    }

    #[test]
    fn reads_syslog_lines() {
        let line = "Dec  3 09:29:10 mx1 dovecot[812]: imap-login: Info: Login: user=<a>, method=PLAIN, session=<x>";
        assert!(matches!(
            parse_line(line, 2026).unwrap().1,
            Record::Login { user: "a", .. }
        ));
    }

    #[test]
    fn says_why_a_line_is_not_understood() {
        assert_eq!(parse_line("garbage", 2026), Err(Unparsed::Timestamp));
        assert_eq!(
            parse_line("Dec 03 09:29:10 no level here", 2026),
            Err(Unparsed::Shape)
        );
        assert_eq!(
            parse_line(
                "Dec 03 09:29:10 imap-login: Info: Login: method=PLAIN",
                2026
            ),
            Err(Unparsed::Field)
        );
        assert_eq!(
            parse_line("Dec 03 09:29:10 frobnicator: Info: hello", 2026),
            Err(Unparsed::Unknown)
        );
        // Cut in the middle of the stamp or of a multi-byte character: no panic.
        assert!(parse_line("2026-12-03 09:3", 2026).is_err());
        assert!(parse_line("Dé", 2026).is_err());
    }

    #[test]
    fn civil_days() {
        assert_eq!(days_from_civil(1970, 1, 1), Some(0));
        assert_eq!(days_from_civil(2000, 3, 1), Some(11017));
    }
}
