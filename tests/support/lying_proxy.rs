//! A fault-injecting IMAP proxy for tracking tests: it sits between the tool and a real
//! server and rewrites server responses to lie in exactly one way per run ([`Lie`]).
//! Client bytes pass through untouched; server responses are framed with
//! [`imaptest::imap::Framer`] and only their line text is edited: literal data always
//! passes through byte for byte.
//!
//! Most lies are told on every other occurrence (counted over the whole proxy), so the
//! tool sees both the truth and the lie about the same thing, as it would with a buggy
//! server. [`LyingProxy::lies`] counts the lies told, so a test can tell "the tool missed
//! it" from "the lie never came up".
//!
//! The proxy runs on its own thread with a single-threaded tokio runtime and stops when
//! dropped.
#![allow(dead_code)]

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use bytes::BytesMut;
use imaptest::imap::{Framer, FramerLimits};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::oneshot;

/// The one way a proxy lies.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lie {
    /// Pass everything through.
    Transparent,
    /// `UID u` in a FETCH becomes `UID u+1`.
    Uid,
    /// `* n EXPUNGE` is dropped.
    SwallowExpunge,
    /// `* n FETCH` becomes `* n+1000 FETCH`.
    FetchBeyondExists,
    /// FETCH FLAGS gain `$Unannounced`.
    UnannouncedKeyword,
    /// The INTERNALDATE's hour changes.
    InternalDate,
    /// RFC822.SIZE grows by one.
    Rfc822Size,
    /// The ENVELOPE's first string gets an `x` appended.
    Envelope,
    /// The BODYSTRUCTURE's first string gets an `x` appended.
    BodyStructure,
    /// Every FETCH FLAGS list gets `\Recent` (every session sees it).
    Recent,
    /// `MODSEQ (n)` becomes `MODSEQ (1)`.
    ModSeqBackwards,
    /// `* SEARCH a b c` loses its last number.
    SearchMissing,
    /// A FETCH FLAGS list silently loses its first flag (a non-atomic flag update).
    DropFlag,
    /// `* n EXISTS` becomes `* n-2 EXISTS` (below the last count when one message came).
    ExistsShrinks,
    /// `* VANISHED (EARLIER) ...` is dropped (a QRESYNC SELECT hides expunges).
    SwallowVanishedEarlier,
    /// A FETCH in a SELECT's response (after its UIDVALIDITY and HIGHESTMODSEQ: only a
    /// QRESYNC SELECT sends them) is dropped (a resync hides flag changes).
    SwallowResyncFetch,
    /// Every time (so the server agrees with itself): the value of the first body
    /// parameter in a BODYSTRUCTURE (`("charset" "utf-8")`) gets an `x` appended.
    BodyStructureParameter,
    /// Every time: the mailbox of the first ENVELOPE address (From) gets an `x`
    /// appended.
    EnvelopeAddress,
    /// Not a lie: `BODY[HEADER.FIELDS (To From)]` is echoed as `("To" "From")`, as
    /// Courier-IMAP does (header-fld-name is an astring, RFC 3501 §9).
    QuoteHeaderFieldNames,
}

/// A running proxy; dropping it stops it and closes every connection.
pub struct LyingProxy {
    pub addr: SocketAddr,
    lies: Arc<AtomicU64>,
    stop: Option<oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl LyingProxy {
    /// Listens on 127.0.0.1:0 and forwards every connection to `upstream`.
    pub fn start(upstream: SocketAddr, lie: Lie) -> Self {
        let (addr_tx, addr_rx) = std::sync::mpsc::channel();
        let (stop, stopped) = oneshot::channel::<()>();
        let lies = Arc::new(AtomicU64::new(0));
        let counter = lies.clone();
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
                let occurrences = Arc::new(AtomicU64::new(0));
                let accept = async {
                    loop {
                        let Ok((client, _)) = listener.accept().await else {
                            continue;
                        };
                        let lies = counter.clone();
                        let occurrences = occurrences.clone();
                        tokio::spawn(async move {
                            if let Ok(server) = TcpStream::connect(upstream).await {
                                relay(client, server, lie, lies, occurrences).await;
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
        LyingProxy {
            addr,
            lies,
            stop: Some(stop),
            thread: Some(thread),
        }
    }

    pub fn port(&self) -> u16 {
        self.addr.port()
    }

    /// Lies told so far.
    pub fn lies(&self) -> u64 {
        self.lies.load(Ordering::Relaxed)
    }
}

impl Drop for LyingProxy {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

async fn relay(
    client: TcpStream,
    server: TcpStream,
    lie: Lie,
    lies: Arc<AtomicU64>,
    occurrences: Arc<AtomicU64>,
) {
    let (mut client_rd, mut client_wr) = client.into_split();
    let (mut server_rd, mut server_wr) = server.into_split();
    let upstream = async {
        let _ = tokio::io::copy(&mut client_rd, &mut server_wr).await;
        let _ = server_wr.shutdown().await;
    };
    let downstream = async {
        let mut framer = Framer::new(FramerLimits {
            max_line: 16 * 1024 * 1024,
            max_literal: usize::MAX / 2,
        });
        let mut buf = BytesMut::with_capacity(64 * 1024);
        let mut out = Vec::with_capacity(64 * 1024);
        let mut select = SelectState::default();
        loop {
            match server_rd.read_buf(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(_) => {}
            }
            out.clear();
            loop {
                match framer.next_response(&mut buf) {
                    Ok(Some(resp)) => {
                        let resync_fetch = select.after(resp.bytes());
                        if lie == Lie::SwallowResyncFetch && resync_fetch && turn(&occurrences) {
                            lies.fetch_add(1, Ordering::Relaxed);
                            continue;
                        }
                        let told = rewrite(lie, resp.bytes(), &occurrences, &mut out);
                        if told {
                            lies.fetch_add(1, Ordering::Relaxed);
                        }
                    }
                    Ok(None) => break,
                    Err(_) => return,
                }
            }
            if client_wr.write_all(&out).await.is_err() {
                break;
            }
        }
        let _ = client_wr.shutdown().await;
    };
    tokio::join!(upstream, downstream);
}

/// Where a connection's server responses are in a SELECT's reply.
#[derive(Default)]
struct SelectState {
    uidvalidity: bool,
    resync: bool,
}

impl SelectState {
    /// Follows one response; true if it is a FETCH of a QRESYNC SELECT's reply.
    fn after(&mut self, resp: &[u8]) -> bool {
        let untagged = resp.starts_with(b"* ");
        if !untagged {
            // A tagged reply (or a continuation) ends any SELECT.
            *self = SelectState::default();
            return false;
        }
        let line = &resp[..resp.iter().position(|&b| b == b'\n').unwrap_or(resp.len())];
        if find(line, b"* OK [UIDVALIDITY ").is_some() {
            self.uidvalidity = true;
        } else if self.uidvalidity && find(line, b"* OK [HIGHESTMODSEQ ").is_some() {
            self.resync = true;
        }
        self.resync
            && line
                .split(|&b| b == b' ')
                .nth(2)
                .is_some_and(|w| w.eq_ignore_ascii_case(b"FETCH"))
    }
}

/// The response split into line text and literal data, in wire order.
fn segments(resp: &[u8]) -> Vec<(bool, &[u8])> {
    let mut out = Vec::new();
    let mut pos = 0;
    while pos < resp.len() {
        let rest = &resp[pos..];
        let end = rest
            .iter()
            .position(|&b| b == b'\n')
            .map_or(rest.len(), |i| i + 1);
        let line = &rest[..end];
        out.push((false, line));
        pos += end;
        let trimmed = line.strip_suffix(b"\r\n").unwrap_or(line);
        if let Some(inner) = trimmed.strip_suffix(b"}")
            && let Some(open) = inner.iter().rposition(|&b| b == b'{')
        {
            let digits = &inner[open + 1..];
            let digits = digits.strip_suffix(b"+").unwrap_or(digits);
            if let Some(n) = std::str::from_utf8(digits)
                .ok()
                .and_then(|d| d.parse::<usize>().ok())
            {
                let n = n.min(resp.len() - pos);
                out.push((true, &resp[pos..pos + n]));
                pos += n;
            }
        }
    }
    out
}

/// Every other occurrence (over the whole proxy) is a lie.
fn turn(occurrences: &AtomicU64) -> bool {
    occurrences.fetch_add(1, Ordering::Relaxed) % 2 == 1
}

/// Appends `resp` to `out`, rewritten by `lie`. Returns whether a lie was told.
fn rewrite(lie: Lie, resp: &[u8], occurrences: &AtomicU64, out: &mut Vec<u8>) -> bool {
    let parts = segments(resp);
    let Some(&(_, first)) = parts.first() else {
        return false;
    };
    let words: Vec<&[u8]> = first.trim_ascii_end().split(|&b| b == b' ').collect();
    let untagged_num = |name: &[u8]| {
        words.first() == Some(&&b"*"[..])
            && words.len() >= 3
            && words[2].eq_ignore_ascii_case(name)
            && std::str::from_utf8(words[1])
                .ok()
                .and_then(|n| n.parse::<u64>().ok())
                .is_some()
    };
    let is_fetch = untagged_num(b"FETCH");
    let seq = || -> u64 {
        std::str::from_utf8(words[1])
            .ok()
            .and_then(|n| n.parse().ok())
            .unwrap_or(0)
    };
    let mut told = false;
    match lie {
        Lie::Transparent => {}
        Lie::SwallowExpunge if untagged_num(b"EXPUNGE") && turn(occurrences) => return true,
        Lie::SwallowVanishedEarlier
            if words.len() > 3
                && words[0] == b"*"
                && words[1].eq_ignore_ascii_case(b"VANISHED")
                && words[2].eq_ignore_ascii_case(b"(EARLIER)")
                && turn(occurrences) =>
        {
            return true;
        }
        Lie::ExistsShrinks if untagged_num(b"EXISTS") && seq() > 2 && turn(occurrences) => {
            out.extend_from_slice(format!("* {} EXISTS\r\n", seq() - 2).as_bytes());
            return true;
        }
        Lie::FetchBeyondExists if is_fetch && turn(occurrences) => {
            out.extend_from_slice(format!("* {} ", seq() + 1000).as_bytes());
            let skip = words[0].len() + 1 + words[1].len() + 1;
            out.extend_from_slice(&first[skip..]);
            for (_, p) in &parts[1..] {
                out.extend_from_slice(p);
            }
            return true;
        }
        Lie::SearchMissing
            if words.first() == Some(&&b"*"[..])
                && words
                    .get(1)
                    .is_some_and(|w| w.eq_ignore_ascii_case(b"SEARCH"))
                && words.len() > 2
                && words[2..].iter().all(|w| w.iter().all(u8::is_ascii_digit))
                && turn(occurrences) =>
        {
            let kept = words[..words.len() - 1].join(&b' ');
            out.extend_from_slice(&kept);
            out.extend_from_slice(b"\r\n");
            return true;
        }
        _ if is_fetch => {
            for (literal, p) in &parts {
                if *literal {
                    out.extend_from_slice(p);
                } else {
                    told |= edit_fetch_text(lie, p, occurrences, out);
                }
            }
            return told;
        }
        _ => {}
    }
    out.extend_from_slice(resp);
    false
}

const MONTHS: [&[u8]; 12] = [
    b"Jan", b"Feb", b"Mar", b"Apr", b"May", b"Jun", b"Jul", b"Aug", b"Sep", b"Oct", b"Nov", b"Dec",
];

/// `dd-Mon-yyyy hh:mm:ss` (the day may be space-padded) moved back ten hours.
fn ten_hours_earlier(date: &[u8]) -> Option<Vec<u8>> {
    let text = std::str::from_utf8(date).ok()?;
    let num = |r: std::ops::Range<usize>| text.get(r)?.trim().parse::<i64>().ok();
    let (day, year) = (num(0..2)?, num(7..11)?);
    let month = MONTHS.iter().position(|m| *m == &date[3..6])? as i64 + 1;
    let (hour, minute, second) = (num(12..14)?, num(15..17)?, num(18..20)?);
    let days = days_from_civil(year, month, day);
    let secs = days * 86_400 + hour * 3600 + minute * 60 + second - 10 * 3600;
    let (days, rest) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    let (y, m, d) = civil_from_days(days);
    // The day padded as the server padded it (a space or a zero).
    let day = if date[0] == b' ' {
        format!("{d:2}")
    } else {
        format!("{d:02}")
    };
    Some(
        format!(
            "{day}-{}-{y:04} {:02}:{:02}:{:02}",
            std::str::from_utf8(MONTHS[(m - 1) as usize]).unwrap(),
            rest / 3600,
            rest / 60 % 60,
            rest % 60
        )
        .into_bytes(),
    )
}

/// Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's algorithm).
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let doy = (153 * (m + if m > 2 { -3 } else { 9 }) + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

fn civil_from_days(z: i64) -> (i64, i64, i64) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    (
        if m <= 2 {
            yoe + era * 400 + 1
        } else {
            yoe + era * 400
        },
        m,
        d,
    )
}

#[test]
fn internaldate_lie_goes_back_ten_hours_across_days() {
    assert_eq!(
        ten_hours_earlier(b"03-Dec-2026 15:07:58").unwrap(),
        b"03-Dec-2026 05:07:58"
    );
    assert_eq!(
        ten_hours_earlier(b" 1-Mar-2024 05:00:00").unwrap(),
        b"29-Feb-2024 19:00:00"
    );
    assert_eq!(
        ten_hours_earlier(b" 1-Jan-2027 09:59:59").unwrap(),
        b"31-Dec-2026 23:59:59"
    );
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len())
        .position(|w| w.eq_ignore_ascii_case(needle))
}

/// Edits the FETCH item `lie` is about inside one line of FETCH text.
fn edit_fetch_text(lie: Lie, text: &[u8], occurrences: &AtomicU64, out: &mut Vec<u8>) -> bool {
    let number_after = |key: &[u8]| -> Option<(usize, usize, u64)> {
        let at = find(text, key)? + key.len();
        let len = text[at..].iter().take_while(|b| b.is_ascii_digit()).count();
        let n = std::str::from_utf8(&text[at..at + len])
            .ok()?
            .parse()
            .ok()?;
        Some((at, at + len, n))
    };
    let replace = |out: &mut Vec<u8>, from: usize, to: usize, with: &[u8]| {
        out.extend_from_slice(&text[..from]);
        out.extend_from_slice(with);
        out.extend_from_slice(&text[to..]);
    };
    let edit: Option<(usize, usize, Vec<u8>)> = match lie {
        Lie::Uid => number_after(b" UID ")
            .or_else(|| number_after(b"(UID "))
            .map(|(a, b, n)| (a, b, (n + 1).to_string().into_bytes())),
        Lie::Rfc822Size => {
            number_after(b"RFC822.SIZE ").map(|(a, b, n)| (a, b, (n + 1).to_string().into_bytes()))
        }
        Lie::ModSeqBackwards => number_after(b"MODSEQ (")
            .filter(|&(_, _, n)| n > 1)
            .map(|(a, b, _)| (a, b, b"1".to_vec())),
        Lie::UnannouncedKeyword => {
            find(text, b"FLAGS (").map(|i| (i + 7, i + 7, b"$Unannounced ".to_vec()))
        }
        Lie::DropFlag => find(text, b"FLAGS (").and_then(|i| {
            let start = i + 7;
            let len = text[start..]
                .iter()
                .take_while(|&&b| b != b' ' && b != b')')
                .count();
            let flag = &text[start..start + len];
            if len == 0 || flag.eq_ignore_ascii_case(b"\\Recent") {
                return None;
            }
            let end = if text.get(start + len) == Some(&b' ') {
                start + len + 1
            } else {
                start + len
            };
            Some((start, end, Vec::new()))
        }),
        Lie::Recent => find(text, b"FLAGS (")
            .filter(|&i| find(&text[i..], b"\\Recent").is_none())
            .map(|i| (i + 7, i + 7, b"\\Recent ".to_vec())),
        Lie::InternalDate => find(text, b"INTERNALDATE \"").and_then(|i| {
            // "dd-Mon-yyyy hh:mm:ss +zzzz", 26 bytes: ten hours earlier, whatever the
            // time of day (a date in the future would look like Courier's stand-in).
            let start = i + 14;
            let date = text.get(start..start + 20)?;
            Some((start, start + 20, ten_hours_earlier(date)?))
        }),
        Lie::Envelope | Lie::BodyStructure => {
            let key: &[u8] = if lie == Lie::Envelope {
                b"ENVELOPE ("
            } else {
                b"BODYSTRUCTURE ("
            };
            find(text, key).and_then(|i| {
                let open = i + key.len() + text[i + key.len()..].iter().position(|&b| b == b'"')?;
                let close = open + 1 + text[open + 1..].iter().position(|&b| b == b'"')?;
                Some((close, close, b"x".to_vec()))
            })
        }
        Lie::BodyStructureParameter => find(text, b"BODYSTRUCTURE (").and_then(|i| {
            // The first parameter list, after a subtype: `"plain" ("name" "value"`;
            // the value's closing quote.
            let open = i + find(&text[i..], b"\" (\"")? + 2;
            let mut quotes = text[open..]
                .iter()
                .enumerate()
                .filter(|(_, b)| **b == b'"')
                .map(|(k, _)| open + k);
            let close = quotes.nth(3)?;
            Some((close, close, b"x".to_vec()))
        }),
        Lie::EnvelopeAddress => find(text, b"ENVELOPE (").and_then(|i| {
            // `((name adl mailbox host)`: name NIL or a quoted string, adl NIL.
            let mut at = i + find(&text[i..], b"((")? + 2;
            if text[at..].starts_with(b"NIL") {
                at += 3;
            } else if text.get(at) == Some(&b'"') {
                at += 1 + text[at + 1..].iter().position(|&b| b == b'"')? + 1;
            } else {
                return None;
            }
            let rest = text.get(at..)?;
            if !rest.starts_with(b" NIL \"") {
                return None;
            }
            let open = at + 5;
            let close = open + 1 + text[open + 1..].iter().position(|&b| b == b'"')?;
            Some((close, close, b"x".to_vec()))
        }),
        Lie::QuoteHeaderFieldNames => find(text, b"HEADER.FIELDS (").and_then(|i| {
            let open = i + b"HEADER.FIELDS (".len();
            let close = open + text[open..].iter().position(|&b| b == b')')?;
            let quoted: Vec<Vec<u8>> = text[open..close]
                .split(|&b| b == b' ')
                .filter(|n| !n.is_empty())
                .map(|n| [&b"\""[..], n, b"\""].concat())
                .collect();
            Some((open, close, quoted.join(&b' ')))
        }),
        _ => None,
    };
    // Recent, unannounced keywords and quoted names every time; the rest every other time.
    let always = matches!(
        lie,
        Lie::Recent
            | Lie::UnannouncedKeyword
            | Lie::QuoteHeaderFieldNames
            | Lie::BodyStructureParameter
            | Lie::EnvelopeAddress
    );
    match edit {
        Some((from, to, with)) if always || turn(occurrences) => {
            replace(out, from, to, &with);
            true
        }
        _ => {
            out.extend_from_slice(text);
            false
        }
    }
}
