//! Content truth: for a message imaptest wrote itself (APPEND with APPENDUID, or an
//! LMTP delivery) the bytes are known, so the server's RFC822.SIZE, BODY[] sections,
//! ENVELOPE and BODYSTRUCTURE are checked against what was sent (RFC 3501 §7.4.2), not
//! only against what the server said before.
//!
//! The expectation is parsed once per message (with `mail-parser`) when a reply first
//! needs it and shared by every UID holding that message; each item is checked once
//! per UID. Every legal form is accepted: quoted or literal strings, case of atoms and
//! parameter names, NIL or "" for an empty field, unfolded header values, RFC 2231
//! parameters in their raw form, a default `charset` on text parts. Names of
//! addresses are not compared (their RFC 2047 forms vary); mailbox and host are.

use std::collections::HashMap;
use std::ops::Range;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock, Weak};

use bytes::Bytes;
use mail_parser::{Address, HeaderName, HeaderValue, MessageParser, PartType};

use crate::imap::token::Arg;
use crate::metrics::ErrorKind;

/// Entries of the truth cache before dead ones are swept out.
const MAX_CACHED: usize = 20_000;

/// A message imaptest sent, and what a server must say about it.
#[derive(Debug)]
pub struct Truth {
    bytes: Bytes,
    /// Trace headers the server may prepend (LMTP deliveries).
    prepend_allowed: bool,
    expected: OnceLock<Option<Expected>>,
    /// The live-bytes counter this truth is charged to, if any (released on drop).
    charged: Option<Arc<AtomicU64>>,
}

impl Truth {
    pub fn new(bytes: Bytes, prepend_allowed: bool) -> Truth {
        Truth {
            bytes,
            prepend_allowed,
            expected: OnceLock::new(),
            charged: None,
        }
    }

    fn expected(&self) -> Option<&Expected> {
        self.expected
            .get_or_init(|| Expected::parse(&self.bytes))
            .as_ref()
    }
}

impl Drop for Truth {
    fn drop(&mut self) {
        if let Some(live) = &self.charged {
            live.fetch_sub(self.bytes.len() as u64, Ordering::Relaxed);
        }
    }
}

/// Truths of appended messages by content: the same message appended again shares one
/// parse and one buffer. The cache holds them weakly (a truth lives as long as a UID
/// holds it), and the messages alive at once are bounded by
/// [`crate::limits::MAX_APPEND_TRUTH_BYTES`]: past it a new message goes unchecked.
#[derive(Debug, Default)]
pub struct TruthCache {
    map: HashMap<(u64, usize, bool), Weak<Truth>>,
    live: Arc<AtomicU64>,
}

impl TruthCache {
    pub fn get(&mut self, bytes: &Bytes, prepend_allowed: bool) -> Option<Arc<Truth>> {
        let key = (hash_of(bytes), bytes.len(), prepend_allowed);
        if let Some(t) = self.map.get(&key).and_then(Weak::upgrade)
            && t.bytes == *bytes
        {
            return Some(t);
        }
        let size = bytes.len() as u64;
        if self.live.load(Ordering::Relaxed) + size > crate::limits::MAX_APPEND_TRUTH_BYTES {
            return None;
        }
        if self.map.len() >= MAX_CACHED {
            self.map.retain(|_, t| t.strong_count() > 0);
            if self.map.len() >= MAX_CACHED {
                self.map.clear();
            }
        }
        self.live.fetch_add(size, Ordering::Relaxed);
        let truth = Arc::new(Truth {
            bytes: bytes.clone(),
            prepend_allowed,
            expected: OnceLock::new(),
            charged: Some(self.live.clone()),
        });
        self.map.insert(key, Arc::downgrade(&truth));
        Some(truth)
    }

    /// Bytes of the messages whose truths are alive.
    pub fn live_bytes(&self) -> u64 {
        self.live.load(Ordering::Relaxed)
    }
}

fn hash_of(bytes: &[u8]) -> u64 {
    use std::hash::{BuildHasher, BuildHasherDefault};
    BuildHasherDefault::<std::collections::hash_map::DefaultHasher>::default().hash_one(bytes)
}

/// Items of one UID already checked (bits of [`Item`]).
pub type Checked = u16;

/// What a content check covers, one bit each.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u16)]
pub enum Item {
    Size = 1,
    Envelope = 2,
    BodyStructure = 4,
    Body = 8,
    Full = 16,
    Header = 32,
    Text = 64,
    Part = 128,
}

#[derive(Debug, Default, Clone, PartialEq, Eq)]
struct Envelope {
    date: Option<String>,
    subject: Option<String>,
    /// from, sender, reply-to, to, cc, bcc: (mailbox, host) lowercase host.
    addresses: [Option<Vec<(String, String)>>; 6],
    in_reply_to: Option<String>,
    message_id: Option<String>,
}

#[derive(Debug, Default, Clone)]
struct Part {
    ctype: String,
    subtype: String,
    /// Names lowercase, values as decoded by mail-parser.
    params: Vec<(String, String)>,
    /// No Content-Type header: text/plain; charset=us-ascii by default.
    defaulted: bool,
    id: Option<String>,
    description: Option<String>,
    encoding: Option<String>,
    disposition: Option<(String, Vec<(String, String)>)>,
    body: Range<usize>,
    children: Vec<Part>,
    /// message/rfc822: the embedded message.
    embedded: Option<Box<(Envelope, Part)>>,
    /// Offsets could not be placed in the sent bytes (e.g. an encoded message/rfc822):
    /// sizes and sections are not checked.
    unplaced: bool,
}

#[derive(Debug)]
struct Expected {
    header_end: usize,
    envelope: Envelope,
    root: Part,
}

fn normalize(s: &str) -> String {
    s.split_ascii_whitespace().collect::<Vec<_>>().join(" ")
}

fn normalize_bytes(b: &[u8]) -> String {
    normalize(&String::from_utf8_lossy(b))
}

/// The raw value of the header field whose value starts at `start`: up to the CRLF
/// not followed by white space (mail-parser's end offsets stop early on some
/// encoded words).
fn raw_value(raw: &[u8], start: usize) -> Option<String> {
    let rest = raw.get(start..)?;
    let mut end = 0;
    while let Some(i) = memchr::memchr(b'\n', &rest[end..]) {
        end += i + 1;
        if !matches!(rest.get(end), Some(b' ' | b'\t')) {
            break;
        }
    }
    if end == 0 {
        end = rest.len();
    }
    Some(normalize_bytes(&rest[..end]))
}

fn addresses(value: Option<&HeaderValue<'_>>) -> Option<Vec<(String, String)>> {
    let list: Vec<&mail_parser::Addr<'_>> = match value? {
        HeaderValue::Address(Address::List(l)) => l.iter().collect(),
        HeaderValue::Address(Address::Group(g)) => g.iter().flat_map(|g| &g.addresses).collect(),
        _ => return None,
    };
    let mut out = Vec::new();
    for a in list {
        let addr = a.address.as_deref()?;
        let (mailbox, host) = addr.rsplit_once('@')?;
        if mailbox.is_empty() || host.is_empty() {
            return None;
        }
        out.push((mailbox.to_owned(), host.to_ascii_lowercase()));
    }
    Some(out)
}

impl Envelope {
    fn of(message: &mail_parser::Message<'_>) -> Envelope {
        let headers = &message.root_part().headers;
        let raw = |name: HeaderName<'_>| {
            let h = headers.iter().find(|h| h.name == name)?;
            raw_value(&message.raw_message, h.offset_start as usize)
        };
        let value =
            |name: HeaderName<'_>| headers.iter().find(|h| h.name == name).map(|h| &h.value);
        let from = addresses(value(HeaderName::From));
        let or_from = |v: Option<Vec<(String, String)>>, name: HeaderName<'_>| {
            if value(name).is_some() {
                v
            } else {
                from.clone()
            }
        };
        Envelope {
            date: raw(HeaderName::Date),
            subject: raw(HeaderName::Subject),
            addresses: [
                from.clone(),
                or_from(addresses(value(HeaderName::Sender)), HeaderName::Sender),
                or_from(addresses(value(HeaderName::ReplyTo)), HeaderName::ReplyTo),
                addresses(value(HeaderName::To)),
                addresses(value(HeaderName::Cc)),
                addresses(value(HeaderName::Bcc)),
            ],
            in_reply_to: raw(HeaderName::InReplyTo),
            message_id: raw(HeaderName::MessageId),
        }
    }
}

/// A Content-Type: type, subtype (both lower case) and parameters (names lower case).
type ContentType = (String, String, Vec<(String, String)>);

fn params(value: Option<&HeaderValue<'_>>) -> Option<ContentType> {
    let HeaderValue::ContentType(ct) = value? else {
        return None;
    };
    let params = ct
        .attributes
        .iter()
        .flatten()
        .map(|a| (a.name.to_ascii_lowercase(), a.value.to_string()))
        .collect();
    Some((
        ct.c_type.to_ascii_lowercase(),
        ct.c_subtype.as_deref().unwrap_or("").to_ascii_lowercase(),
        params,
    ))
}

impl Part {
    /// `index` in `message.parts`; `base` is where `message.raw_message` starts in the
    /// sent bytes (None: not inside them).
    fn of(
        message: &mail_parser::Message<'_>,
        index: usize,
        base: Option<usize>,
        depth: u32,
    ) -> Part {
        let Some(p) = message.parts.get(index) else {
            return Part::default();
        };
        let header = |name: HeaderName<'_>| p.headers.iter().find(|h| h.name == name);
        let raw = |name: HeaderName<'_>| {
            let h = header(name)?;
            raw_value(&message.raw_message, h.offset_start as usize)
        };
        let ct = params(header(HeaderName::ContentType).map(|h| &h.value));
        let defaulted = ct.is_none();
        let (ctype, subtype, params) =
            ct.unwrap_or_else(|| ("text".into(), "plain".into(), Vec::new()));
        let disposition = params_of(header(HeaderName::ContentDisposition).map(|h| &h.value));
        let mut part = Part {
            ctype,
            subtype,
            params,
            defaulted,
            id: raw(HeaderName::ContentId),
            description: raw(HeaderName::ContentDescription),
            encoding: raw(HeaderName::ContentTransferEncoding),
            disposition,
            body: match base {
                Some(b) => b + p.offset_body as usize..b + p.offset_end as usize,
                None => 0..0,
            },
            unplaced: base.is_none(),
            ..Part::default()
        };
        if depth > 20 {
            return part;
        }
        match &p.body {
            PartType::Multipart(ids) => {
                part.children = ids
                    .iter()
                    .map(|&i| Part::of(message, i as usize, base, depth + 1))
                    .collect();
            }
            PartType::Message(inner) => {
                // Borrowed from the sent bytes (not decoded): offsets can be placed.
                let inner_base = match (&inner.raw_message, base) {
                    (std::borrow::Cow::Borrowed(slice), Some(_)) => {
                        let outer = message.raw_message.as_ptr() as usize;
                        let at = slice.as_ptr() as usize;
                        at.checked_sub(outer)
                            .filter(|off| off + slice.len() <= message.raw_message.len())
                            .and_then(|off| base.map(|b| b + off))
                    }
                    _ => None,
                };
                let root = Part::of(inner, 0, inner_base, depth + 1);
                part.embedded = Some(Box::new((Envelope::of(inner), root)));
            }
            _ => {}
        }
        part
    }
}

fn params_of(value: Option<&HeaderValue<'_>>) -> Option<(String, Vec<(String, String)>)> {
    let (kind, _, params) = params(value)?;
    Some((kind, params))
}

impl Expected {
    fn parse(bytes: &[u8]) -> Option<Expected> {
        let message = MessageParser::new().parse(bytes)?;
        let header_end = message.root_part().offset_body as usize;
        let envelope = Envelope::of(&message);
        let root = Part::of(&message, 0, Some(0), 0);
        Some(Expected {
            header_end,
            envelope,
            root,
        })
    }
}

/// One difference between what was sent and what the server says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mismatch {
    /// The item and field (`BODYSTRUCTURE part 2 parameter charset`).
    pub field: String,
    pub sent: String,
    pub got: String,
    /// A known server quirk this mismatch is (`docs/servers.md`).
    pub quirk: Option<ErrorKind>,
}

impl std::fmt::Display for Mismatch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{}: sent {}, server says {}",
            self.field, self.sent, self.got
        )
    }
}

fn excerpt(b: &[u8]) -> String {
    let cut = &b[..b.len().min(80)];
    format!(
        "\"{}\"{}",
        String::from_utf8_lossy(cut).escape_debug(),
        if b.len() > 80 { "…" } else { "" }
    )
}

fn show(s: &Option<String>) -> String {
    match s {
        Some(s) => format!("\"{s}\""),
        None => "NIL".into(),
    }
}

/// A string field: equal after unfolding; NIL and "" are the same.
fn same_text(sent: &Option<String>, got: Option<&[u8]>) -> bool {
    let got = got.map(normalize_bytes).filter(|g| !g.is_empty());
    let sent = sent.as_ref().filter(|s| !s.is_empty());
    match (sent, got) {
        (None, None) => true,
        (Some(s), Some(g)) => *s == g,
        _ => false,
    }
}

fn nstring<'a>(arg: Option<&'a Arg<'a>>) -> Option<&'a [u8]> {
    arg.and_then(Arg::as_nstring).flatten()
}

/// Checks one reply item of a UID whose message is `truth`; `checked` says what was
/// already checked for this UID (and is updated).
pub fn check_item(
    truth: &Truth,
    item: &crate::imap::response::FetchItem<'_>,
    checked: &mut Checked,
    out: &mut Vec<Mismatch>,
) {
    use crate::imap::response::FetchItem;
    let mut once = |bit: Item| {
        if *checked & bit as u16 != 0 {
            return false;
        }
        *checked |= bit as u16;
        true
    };
    let sent = &truth.bytes[..];
    match item {
        FetchItem::Rfc822Size(size) if once(Item::Size) => {
            let len = sent.len() as u64;
            let ok = if truth.prepend_allowed {
                let dropped = without_return_path(sent).map_or(0, |w| sent.len() - w.len());
                *size + dropped as u64 >= len
            } else {
                *size == len
            };
            if !ok {
                out.push(Mismatch {
                    // Courier's stand-in for an expunged message has this size.
                    quirk: (*size == crate::quirks::STAND_IN_SIZE)
                        .then_some(ErrorKind::ExpungedMessageFabricated),
                    field: "RFC822.SIZE".into(),
                    sent: len.to_string(),
                    got: size.to_string(),
                });
            }
        }
        FetchItem::Envelope(env) if !env.is_nil() && once(Item::Envelope) => {
            if let Some(e) = truth.expected() {
                compare_envelope("ENVELOPE", &e.envelope, env, out);
            }
        }
        FetchItem::BodyStructure(b) if !b.is_nil() && once(Item::BodyStructure) => {
            if let Some(e) = truth.expected() {
                compare_part(sent, "BODYSTRUCTURE", "", &e.root, b, true, out);
            }
        }
        FetchItem::Body(b) if !b.is_nil() && once(Item::Body) => {
            if let Some(e) = truth.expected() {
                compare_part(sent, "BODY", "", &e.root, b, false, out);
            }
        }
        FetchItem::Section {
            name,
            origin: None,
            data,
        } => {
            // NIL or empty: an expunged message's placeholder, not its content.
            let Some(got) = data.as_nstring().flatten().filter(|d| !d.is_empty()) else {
                return;
            };
            let is = |n: &[u8]| name.eq_ignore_ascii_case(n);
            let Some(e) = truth.expected() else {
                return;
            };
            let (label, bit, wanted): (&str, Item, &[u8]) = if is(b"BODY[]") || is(b"RFC822") {
                ("BODY[]", Item::Full, sent)
            } else if is(b"BODY[HEADER]") || is(b"RFC822.HEADER") {
                (
                    "BODY[HEADER]",
                    Item::Header,
                    &sent[..e.header_end.min(sent.len())],
                )
            } else if is(b"BODY[TEXT]") || is(b"RFC822.TEXT") {
                (
                    "BODY[TEXT]",
                    Item::Text,
                    &sent[e.header_end.min(sent.len())..],
                )
            } else if is(b"BODY[1]") {
                let part = e.root.children.first().unwrap_or(&e.root);
                if part.unplaced {
                    return;
                }
                (
                    "BODY[1]",
                    Item::Part,
                    sent.get(part.body.clone()).unwrap_or_default(),
                )
            } else {
                return;
            };
            if !once(bit) {
                return;
            }
            let prefix_ok = |wanted: &[u8]| {
                got.len() > wanted.len()
                    && same_bytes(&got[got.len() - wanted.len()..], wanted)
                    && trace_headers_only(&got[..got.len() - wanted.len()])
            };
            // A delivering server puts its own Return-Path on top and may drop the
            // message's (RFC 5321 §4.4; Cyrus does).
            let ok = same_bytes(got, wanted)
                || (truth.prepend_allowed
                    && matches!(bit, Item::Full | Item::Header)
                    && (prefix_ok(wanted)
                        || without_return_path(wanted).is_some_and(|w| prefix_ok(&w))));
            if !ok {
                let with_cr = bit == Item::Part
                    && got.len() == wanted.len() + 1
                    && same_bytes(&got[..wanted.len()], wanted)
                    && got.ends_with(b"\r");
                let at = got
                    .iter()
                    .zip(wanted)
                    .position(|(&a, &b)| !same_byte(a, b))
                    .unwrap_or(got.len().min(wanted.len()));
                out.push(Mismatch {
                    quirk: with_cr.then_some(ErrorKind::PartTakesBoundaryCr),
                    field: format!("{label} (byte {at} of {})", wanted.len()),
                    sent: excerpt(wanted.get(at..).unwrap_or_default()),
                    got: excerpt(got.get(at..).unwrap_or_default()),
                });
            }
        }
        _ => {}
    }
}

/// `message` without its own Return-Path header fields (continuation lines included);
/// `None` if its header has none.
fn without_return_path(message: &[u8]) -> Option<Vec<u8>> {
    let header_end = memchr::memmem::find(message, b"\r\n\r\n").map_or(message.len(), |i| i + 2);
    let mut out = Vec::with_capacity(message.len());
    let mut dropped = false;
    let mut skipping = false;
    let mut at = 0;
    while at < header_end {
        let end = memchr::memmem::find(&message[at..header_end], b"\r\n")
            .map_or(header_end, |i| at + i + 2);
        let line = &message[at..end];
        let continuation = line.first().is_some_and(|b| *b == b' ' || *b == b'\t');
        if !continuation {
            skipping = line.len() >= 12 && line[..12].eq_ignore_ascii_case(b"return-path:");
        }
        if skipping {
            dropped = true;
        } else {
            out.extend_from_slice(line);
        }
        at = end;
    }
    out.extend_from_slice(&message[header_end..]);
    dropped.then_some(out)
}

/// Whether the server's byte `got` stands for the byte sent. A NUL sent may come back
/// as any other byte: IMAP cannot carry NUL in a literal (RFC 3501 §4.3, CHAR8), so a
/// server must replace it (Dovecot stores 0x80).
fn same_byte(got: u8, sent: u8) -> bool {
    got == sent || (sent == 0 && got != 0)
}

fn same_bytes(got: &[u8], sent: &[u8]) -> bool {
    got.len() == sent.len() && got.iter().zip(sent).all(|(&g, &s)| same_byte(g, s))
}

/// Header lines a delivering server may put above the message (RFC 5321 §4.4 trace
/// fields and the usual delivery headers).
fn trace_headers_only(prefix: &[u8]) -> bool {
    // Cyrus 3.6 adds X-Cyrus-Session-Id and X-Sieve to every LMTP delivery.
    const TRACE: [&str; 7] = [
        "return-path",
        "received",
        "delivered-to",
        "x-original-to",
        "dkim-",
        "x-cyrus-session-id",
        "x-sieve",
    ];
    let text = String::from_utf8_lossy(prefix);
    text.split("\r\n")
        .filter(|l| !l.is_empty() && !l.starts_with([' ', '\t']))
        .all(|l| {
            let name = l.split(':').next().unwrap_or("").to_ascii_lowercase();
            TRACE.iter().any(|t| name.starts_with(t))
        })
}

const ADDRESS_FIELDS: [&str; 6] = ["from", "sender", "reply-to", "to", "cc", "bcc"];

fn compare_envelope(label: &str, sent: &Envelope, env: &Arg<'_>, out: &mut Vec<Mismatch>) {
    let Some(fields) = env.as_list() else {
        out.push(Mismatch {
            quirk: None,
            field: label.into(),
            sent: "a list".into(),
            got: "no list".into(),
        });
        return;
    };
    let texts = [
        ("date", &sent.date, 0),
        ("subject", &sent.subject, 1),
        ("in-reply-to", &sent.in_reply_to, 8),
        ("message-id", &sent.message_id, 9),
    ];
    for (name, value, i) in texts {
        let got = nstring(fields.get(i));
        if !same_text(value, got) {
            out.push(Mismatch {
                quirk: None,
                field: format!("{label} {name}"),
                sent: show(value),
                got: got.map_or("NIL".into(), excerpt),
            });
        }
    }
    for (k, name) in ADDRESS_FIELDS.iter().enumerate() {
        // Addresses the sent header did not parse into are not judged.
        let Some(wanted) = &sent.addresses[k] else {
            continue;
        };
        let got: Vec<(String, String)> = fields
            .get(2 + k)
            .and_then(Arg::as_list)
            .unwrap_or_default()
            .iter()
            .filter_map(Arg::as_list)
            .filter_map(|a| {
                // Group markers have a NIL host.
                let host = nstring(a.get(3))?;
                let mailbox = nstring(a.get(2)).unwrap_or_default();
                Some((
                    String::from_utf8_lossy(mailbox).into_owned(),
                    String::from_utf8_lossy(host).to_ascii_lowercase(),
                ))
            })
            .collect();
        if got != *wanted {
            let list = |l: &[(String, String)]| {
                l.iter()
                    .map(|(m, h)| format!("{m}@{h}"))
                    .collect::<Vec<_>>()
                    .join(", ")
            };
            out.push(Mismatch {
                quirk: None,
                field: format!("{label} {name}"),
                sent: format!("[{}]", list(wanted)),
                got: format!("[{}]", list(&got)),
            });
        }
    }
}

fn text_of(arg: Option<&Arg<'_>>) -> Option<String> {
    arg.and_then(Arg::as_str_bytes)
        .map(|b| String::from_utf8_lossy(b).into_owned())
}

/// A body parameter list as (lowercase name, value); NIL is empty.
fn param_list(arg: Option<&Arg<'_>>) -> Vec<(String, String)> {
    let items = arg.and_then(Arg::as_list).unwrap_or_default();
    items
        .chunks(2)
        .filter_map(|kv| {
            let k = text_of(kv.first())?;
            let v = text_of(kv.get(1)).unwrap_or_default();
            Some((k.to_ascii_lowercase(), v))
        })
        .collect()
}

/// `filename*0*` → `filename`.
fn base_name(name: &str) -> &str {
    match name.find('*') {
        Some(i) => &name[..i],
        None => name,
    }
}

fn compare_params(
    field: &str,
    sent: &[(String, String)],
    got: &[(String, String)],
    defaulted_text: bool,
    out: &mut Vec<Mismatch>,
) {
    for (name, value) in got {
        let base = base_name(name);
        let raw_2231 = base.len() != name.len();
        match sent.iter().find(|(n, _)| n == base) {
            // RFC 2231 forms are passed on raw; their decoded value is mail-parser's.
            Some(_) if raw_2231 => {}
            Some((_, v)) if v.eq_ignore_ascii_case(value) => {}
            Some((_, v)) if value.contains("=?") || v.contains("=?") => {}
            Some((_, v)) => out.push(Mismatch {
                quirk: None,
                field: format!("{field} parameter {base}"),
                sent: format!("\"{v}\""),
                got: format!("\"{value}\""),
            }),
            None if defaulted_text && base == "charset" => {}
            None => out.push(Mismatch {
                quirk: None,
                field: format!("{field} parameter {base}"),
                sent: "none".into(),
                got: format!("\"{value}\""),
            }),
        }
    }
    for (name, value) in sent {
        if !got.iter().any(|(n, _)| base_name(n) == name) {
            out.push(Mismatch {
                quirk: None,
                field: format!("{field} parameter {name}"),
                sent: format!("\"{value}\""),
                got: "none".into(),
            });
        }
    }
}

fn lines_of(body: &[u8]) -> u64 {
    memchr::memchr_iter(b'\n', body).count() as u64
}

/// Compares one body structure (`extensible`: BODYSTRUCTURE, with extension data).
fn compare_part(
    sent_bytes: &[u8],
    label: &str,
    path: &str,
    sent: &Part,
    got: &Arg<'_>,
    extensible: bool,
    out: &mut Vec<Mismatch>,
) {
    let field = if path.is_empty() {
        label.to_owned()
    } else {
        format!("{label} part {path}")
    };
    let Some(items) = got.as_list() else {
        out.push(Mismatch {
            quirk: None,
            field,
            sent: "a body".into(),
            got: "no list".into(),
        });
        return;
    };
    let child_path = |i: usize| {
        if path.is_empty() {
            (i + 1).to_string()
        } else {
            format!("{path}.{}", i + 1)
        }
    };
    let multipart = items.first().is_some_and(|a| a.as_list().is_some());
    if sent.ctype == "multipart" || multipart {
        let children: Vec<&Arg<'_>> = items.iter().take_while(|a| a.as_list().is_some()).collect();
        let subtype = text_of(items.get(children.len()));
        if sent.ctype != "multipart" || !multipart {
            out.push(Mismatch {
                quirk: None,
                field: format!("{field} type"),
                sent: format!("{}/{}", sent.ctype, sent.subtype),
                got: if multipart {
                    "multipart".into()
                } else {
                    text_of(items.first()).unwrap_or_default()
                },
            });
            return;
        }
        if !subtype
            .as_deref()
            .is_some_and(|s| s.eq_ignore_ascii_case(&sent.subtype))
        {
            out.push(Mismatch {
                quirk: None,
                field: format!("{field} subtype"),
                sent: sent.subtype.clone(),
                got: subtype.unwrap_or_else(|| "NIL".into()),
            });
        }
        if children.len() != sent.children.len() {
            out.push(Mismatch {
                quirk: None,
                field: format!("{field} parts"),
                sent: sent.children.len().to_string(),
                got: children.len().to_string(),
            });
            return;
        }
        for (i, (s, g)) in sent.children.iter().zip(&children).enumerate() {
            compare_part(sent_bytes, label, &child_path(i), s, g, extensible, out);
        }
        if extensible && let Some(ext) = items.get(children.len() + 1) {
            compare_params(&field, &sent.params, &param_list(Some(ext)), false, out);
            compare_disposition(&field, sent, items.get(children.len() + 2), out);
        }
        return;
    }
    let ctype = text_of(items.first()).unwrap_or_default();
    let subtype = text_of(items.get(1)).unwrap_or_default();
    if !ctype.eq_ignore_ascii_case(&sent.ctype) || !subtype.eq_ignore_ascii_case(&sent.subtype) {
        out.push(Mismatch {
            quirk: None,
            field: format!("{field} type"),
            sent: format!("{}/{}", sent.ctype, sent.subtype),
            got: format!("{ctype}/{subtype}"),
        });
        return;
    }
    let text = sent.ctype == "text";
    compare_params(
        &field,
        &sent.params,
        &param_list(items.get(2)),
        sent.defaulted && text,
        out,
    );
    for (name, value, i) in [("id", &sent.id, 3), ("description", &sent.description, 4)] {
        let got = nstring(items.get(i));
        if !same_text(value, got) {
            out.push(Mismatch {
                quirk: None,
                field: format!("{field} {name}"),
                sent: show(value),
                got: got.map_or("NIL".into(), excerpt),
            });
        }
    }
    let encoding = text_of(items.get(5)).unwrap_or_default();
    let wanted = sent.encoding.clone().unwrap_or_else(|| "7bit".into());
    if !encoding.eq_ignore_ascii_case(&wanted) {
        // No Content-Transfer-Encoding means 7bit (RFC 2045 §6.1); Courier says 8bit.
        let said_8bit = sent.encoding.is_none() && encoding.eq_ignore_ascii_case("8bit");
        out.push(Mismatch {
            quirk: said_8bit.then_some(ErrorKind::DefaultEncoding8bit),
            field: format!("{field} encoding"),
            sent: wanted,
            got: encoding,
        });
    }
    let body = sent_bytes.get(sent.body.clone()).unwrap_or_default();
    if !sent.unplaced {
        let size = items.get(6).and_then(Arg::as_number64);
        if size != Some(body.len() as u64) {
            // One more: the CR of the CRLF before the next boundary (Courier).
            let with_cr = size == Some(body.len() as u64 + 1)
                && sent_bytes.get(sent.body.end) == Some(&b'\r');
            out.push(Mismatch {
                quirk: with_cr.then_some(ErrorKind::PartTakesBoundaryCr),
                field: format!("{field} size"),
                sent: body.len().to_string(),
                got: size.map_or("none".into(), |s| s.to_string()),
            });
        }
    }
    let mut next = 7;
    let rfc822 = sent.ctype == "message" && sent.subtype == "rfc822";
    if rfc822 {
        if let Some(embedded) = &sent.embedded {
            let (env, root) = &**embedded;
            if let Some(e) = items.get(7) {
                compare_envelope(&format!("{field} ENVELOPE"), env, e, out);
            }
            if let Some(b) = items.get(8) {
                compare_part(sent_bytes, label, &child_path(0), root, b, extensible, out);
            }
        }
        next = 9;
    }
    if text || rfc822 {
        let lines = items.get(next).and_then(Arg::as_number64);
        let counted = lines_of(body);
        let last_open = !body.is_empty() && !body.ends_with(b"\n");
        let fits = lines.is_some_and(|l| l == counted || (last_open && l == counted + 1));
        if !sent.unplaced && !fits {
            out.push(Mismatch {
                quirk: None,
                field: format!("{field} lines"),
                sent: counted.to_string(),
                got: lines.map_or("none".into(), |l| l.to_string()),
            });
        }
        next += 1;
    }
    if extensible {
        // body-ext-1part: md5, then disposition.
        compare_disposition(&field, sent, items.get(next + 1), out);
    }
}

fn compare_disposition(field: &str, sent: &Part, got: Option<&Arg<'_>>, out: &mut Vec<Mismatch>) {
    let Some(got) = got else {
        return;
    };
    let got = got
        .as_list()
        .map(|l| (text_of(l.first()), param_list(l.get(1))));
    match (&sent.disposition, got) {
        (None, None) => {}
        (Some((kind, params)), Some((Some(g), gp))) => {
            if !g.eq_ignore_ascii_case(kind) {
                out.push(Mismatch {
                    quirk: None,
                    field: format!("{field} disposition"),
                    sent: kind.clone(),
                    got: g,
                });
            }
            compare_params(&format!("{field} disposition"), params, &gp, false, out);
        }
        (Some((kind, _)), _) => out.push(Mismatch {
            quirk: None,
            field: format!("{field} disposition"),
            sent: kind.clone(),
            got: "NIL".into(),
        }),
        (None, Some((g, _))) => out.push(Mismatch {
            quirk: None,
            field: format!("{field} disposition"),
            sent: "NIL".into(),
            got: g.unwrap_or_default(),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::imap::response::{FetchItem, Response, Untagged};

    const MESSAGE: &[u8] = b"From: \"A. Sender\" <a@Example.COM>\r\n\
To: b@example.org, Group: c@example.net;\r\n\
Subject: =?utf-8?q?caf=C3=A9?=\r\n\
\x20folded\r\n\
Message-ID: <m1@example.com>\r\n\
Date: Mon, 1 Jan 2024 10:00:00 +0000\r\n\
MIME-Version: 1.0\r\n\
Content-Type: multipart/mixed; boundary=\"XX\"\r\n\
\r\n\
--XX\r\n\
Content-Type: text/plain; charset=utf-8\r\n\
\r\n\
hello\r\n\
--XX\r\n\
Content-Type: application/octet-stream; name*=utf-8''a%20b.bin\r\n\
Content-Disposition: attachment; filename=\"a b.bin\"\r\n\
Content-Transfer-Encoding: base64\r\n\
\r\n\
AAAA\r\n\
--XX--\r\n";

    fn fetch_items(line: &[u8]) -> Vec<Mismatch> {
        let truth = Truth::new(Bytes::from_static(MESSAGE), false);
        let response = crate::imap::response::parse(line).unwrap();
        let Response::Untagged(Untagged::Fetch { items, .. }) = response else {
            panic!("not a FETCH");
        };
        let mut checked = 0;
        let mut out = Vec::new();
        for item in &items {
            check_item(&truth, item, &mut checked, &mut out);
        }
        out
    }

    // What Dovecot 2.3 answers for MESSAGE (recorded from the lab).
    const STRUCTURE: &str = "(\"text\" \"plain\" (\"charset\" \"utf-8\") NIL NIL \"7bit\" 5 0 NIL NIL NIL NIL)\
(\"application\" \"octet-stream\" (\"name*\" \"utf-8''a%20b.bin\") NIL NIL \"base64\" 4 NIL \
(\"attachment\" (\"filename\" \"a b.bin\")) NIL NIL) \"mixed\" (\"boundary\" \"XX\") NIL NIL NIL";
    // What Cyrus 3.6 answers (recorded from the lab): upper case, a literal.
    const CYRUS: &str = "((\"TEXT\" \"PLAIN\" (\"CHARSET\" \"utf-8\") NIL NIL \"7BIT\" 5 0 NIL NIL NIL NIL)\
(\"APPLICATION\" \"OCTET-STREAM\" (\"NAME*\" {16}\r\nutf-8''a%20b.bin) NIL NIL \"BASE64\" 4 NIL \
(\"ATTACHMENT\" (\"FILENAME\" \"a b.bin\")) NIL NIL) \"MIXED\" (\"BOUNDARY\" \"XX\") NIL NIL NIL)";

    #[test]
    fn a_true_reply_passes_in_any_legal_form() {
        let envelope = "(\"Mon, 1 Jan 2024 10:00:00 +0000\" \"=?utf-8?q?caf=C3=A9?= folded\" \
((\"A. Sender\" NIL \"a\" \"example.com\")) ((\"A. Sender\" NIL \"a\" \"Example.COM\")) \
((NIL NIL \"a\" \"example.com\")) ((NIL NIL \"b\" \"example.org\")(NIL NIL \"Group\" NIL)\
(NIL NIL \"c\" \"example.net\")(NIL NIL NIL NIL)) NIL NIL NIL \"<m1@example.com>\")";
        let line = format!(
            "* 1 FETCH (RFC822.SIZE {} ENVELOPE {envelope} BODYSTRUCTURE ({STRUCTURE}))",
            MESSAGE.len()
        );
        assert_eq!(fetch_items(line.as_bytes()), vec![]);
        let line = format!("* 1 FETCH (BODYSTRUCTURE {CYRUS})");
        assert_eq!(fetch_items(line.as_bytes()), vec![]);
    }

    #[test]
    fn a_changed_parameter_or_address_is_named() {
        let lied = STRUCTURE.replace("\"utf-8\"", "\"utf-8x\"");
        let found = fetch_items(format!("* 1 FETCH (BODYSTRUCTURE ({lied}))").as_bytes());
        assert_eq!(found.len(), 1, "{found:?}");
        assert_eq!(found[0].field, "BODYSTRUCTURE part 1 parameter charset");
        let envelope = "(NIL NIL NIL NIL NIL ((NIL NIL \"b\" \"example.net\")) NIL NIL NIL NIL)";
        let found = fetch_items(format!("* 1 FETCH (ENVELOPE {envelope})").as_bytes());
        let fields: Vec<&str> = found.iter().map(|m| m.field.as_str()).collect();
        assert!(fields.contains(&"ENVELOPE to"), "{found:?}");
        assert!(fields.contains(&"ENVELOPE from"), "{found:?}");
    }

    #[test]
    fn the_cache_shares_equal_messages_and_bounds_the_bytes_held() {
        let mut cache = TruthCache::default();
        let a = Bytes::from(MESSAGE.to_vec());
        let again = Bytes::from(MESSAGE.to_vec()); // another buffer, same bytes
        let first = cache.get(&a, false).unwrap();
        let second = cache.get(&again, false).unwrap();
        assert!(Arc::ptr_eq(&first, &second));
        assert_eq!(cache.live_bytes(), MESSAGE.len() as u64);
        drop((first, second));
        assert_eq!(cache.live_bytes(), 0, "a truth no UID holds is released");
        // Past the bound a new message goes unchecked; held ones still share.
        let big = Bytes::from(vec![b'x'; crate::limits::MAX_APPEND_TRUTH_BYTES as usize]);
        let held = cache.get(&big, false).unwrap();
        assert!(cache.get(&a, false).is_none());
        assert!(cache.get(&big, false).is_some());
        drop(held);
        assert!(cache.get(&a, false).is_some());
    }

    /// `random_msg_size=` sends NUL bytes; a server must replace them (Dovecot: 0x80).
    #[test]
    fn a_nul_sent_may_come_back_replaced() {
        let sent = b"ab\0cd\r\n\r\nx\0y".to_vec();
        let truth = Truth::new(Bytes::from(sent.clone()), false);
        let check = |got: &[u8]| {
            let line = [
                format!("* 1 FETCH (BODY[] {{{}}}\r\n", got.len()).as_bytes(),
                got,
                b")",
            ]
            .concat();
            let response = crate::imap::response::parse(&line).unwrap();
            let Response::Untagged(Untagged::Fetch { items, .. }) = response else {
                panic!("not a FETCH");
            };
            let mut out = Vec::new();
            check_item(&truth, &items[0], &mut 0, &mut out);
            out
        };
        let dovecot: Vec<u8> = sent
            .iter()
            .map(|&b| if b == 0 { 0x80 } else { b })
            .collect();
        assert_eq!(check(&dovecot), vec![]);
        // Any other change is still one.
        let mut changed = dovecot.clone();
        changed[0] = b'A';
        let found = check(&changed);
        assert_eq!(found.len(), 1, "{found:?}");
        assert!(found[0].field.starts_with("BODY[] (byte 0"), "{found:?}");
        // A dropped NUL changes the length: a mismatch.
        let dropped: Vec<u8> = sent.iter().copied().filter(|&b| b != 0).collect();
        assert_eq!(check(&dropped).len(), 1);
    }

    #[test]
    fn sections_must_be_the_bytes_sent() {
        let text_start = MESSAGE.windows(4).position(|w| w == b"\r\n\r\n").unwrap() + 4;
        let body = &MESSAGE[text_start..];
        let line = [
            format!("* 1 FETCH (BODY[TEXT] {{{}}}\r\n", body.len()).as_bytes(),
            body,
            b")",
        ]
        .concat();
        assert_eq!(fetch_items(&line), vec![]);
        let mut changed = body.to_vec();
        changed[3] ^= 1;
        let line = [
            format!("* 1 FETCH (BODY[TEXT] {{{}}}\r\n", changed.len()).as_bytes(),
            &changed[..],
            b")",
        ]
        .concat();
        let found = fetch_items(&line);
        assert_eq!(found.len(), 1);
        assert!(
            found[0].field.starts_with("BODY[TEXT] (byte 3"),
            "{found:?}"
        );
        // BODY[1] is the first part's body, without the CRLF of the boundary.
        let line = b"* 1 FETCH (BODY[1] {5}\r\nhello)";
        assert_eq!(fetch_items(line), vec![]);
    }

    #[test]
    fn delivered_messages_may_gain_trace_headers_only() {
        let truth = Truth::new(Bytes::from_static(MESSAGE), true);
        let check = |prefix: &[u8]| {
            let got = [prefix, MESSAGE].concat();
            let item = FetchItem::Section {
                name: b"BODY[]",
                origin: None,
                data: Arg::Literal(&got),
            };
            let mut out = Vec::new();
            check_item(&truth, &item, &mut 0, &mut out);
            out
        };
        assert_eq!(
            check(b"Return-Path: <a@example.com>\r\nReceived: from x\r\n\tby y\r\n"),
            vec![]
        );
        // What Cyrus 3.6 puts above an LMTP delivery (recorded from the lab).
        assert_eq!(
            check(
                b"Return-Path: <>\r\nReceived: from localhost (localhost [127.0.0.1])\r\n\t \
                  by localhost (Cyrus 3.6.1-Debian-3.6.1-4+deb12u5) with LMTPA;\r\n\t \
                  Thu, 03 Dec 2026 14:32:49 +0000\r\n\
                  X-Cyrus-Session-Id: localhost-1796308369-23287-2-16275671897894321832\r\n\
                  X-Sieve: CMU Sieve 3.0\r\n"
            ),
            vec![]
        );
        assert_eq!(check(b"Subject: added\r\n").len(), 1);
    }

    /// Cyrus 3.6 replaces a delivered message's own Return-Path with its own.
    #[test]
    fn a_delivery_may_lose_its_own_return_path() {
        let sent = b"X-Mark: 1\r\nReturn-Path: <old@example.org>\r\nSubject: s\r\n\r\nbody\r\n";
        let truth = Truth::new(Bytes::from_static(sent), true);
        let check = |got: &[u8]| {
            let item = FetchItem::Section {
                name: b"BODY[]",
                origin: None,
                data: Arg::Literal(got),
            };
            let mut out = Vec::new();
            check_item(&truth, &item, &mut 0, &mut out);
            let size = FetchItem::Rfc822Size(got.len() as u64);
            check_item(&truth, &size, &mut 0, &mut out);
            out
        };
        let cyrus = b"Return-Path: <>\r\nX-Mark: 1\r\nSubject: s\r\n\r\nbody\r\n";
        assert_eq!(check(cyrus), vec![]);
        // Anything else dropped is still a difference.
        let lost_subject =
            b"Return-Path: <>\r\nX-Mark: 1\r\nReturn-Path: <old@example.org>\r\n\r\nbody\r\n";
        assert_eq!(check(lost_subject).len(), 1);
    }

    const FORWARD: &[u8] = b"Subject: fwd\r\n\
Content-Type: multipart/mixed; boundary=\"B\"\r\n\
\r\n\
--B\r\n\
Content-Type: message/rfc822\r\n\
\r\n\
Subject: inner\r\n\
\r\n\
hi\r\n\
--B--\r\n";

    /// Courier-IMAP 5.0.13 (recorded shape): the message/rfc822 part and the text
    /// inside it one byte longer, taking the CR before `--B`; BODY[1] ends in CR.
    #[test]
    fn courier_part_taking_the_boundary_cr_is_its_quirk() {
        let truth = Truth::new(Bytes::from_static(FORWARD), false);
        let reply = b"* 1 FETCH (BODYSTRUCTURE ((\"message\" \"rfc822\" NIL NIL NIL \"7bit\" 21 \
(NIL \"inner\" NIL NIL NIL NIL NIL NIL NIL NIL) (\"text\" \"plain\" (\"charset\" \"us-ascii\") NIL NIL \
\"7bit\" 3 1 NIL NIL NIL) 2 NIL NIL NIL) \"mixed\" (\"boundary\" \"B\") NIL NIL) \
BODY[1] {21}\r\nSubject: inner\r\n\r\nhi\r)";
        let Response::Untagged(Untagged::Fetch { items, .. }) =
            crate::imap::response::parse(reply).unwrap()
        else {
            panic!("not a FETCH");
        };
        let mut out = Vec::new();
        let mut checked = 0;
        for item in &items {
            check_item(&truth, item, &mut checked, &mut out);
        }
        let fields: Vec<&str> = out.iter().map(|m| m.field.as_str()).collect();
        assert_eq!(
            fields,
            [
                "BODYSTRUCTURE part 1 size",
                "BODYSTRUCTURE part 1.1 size",
                "BODY[1] (byte 20 of 20)"
            ],
            "{out:#?}"
        );
        assert!(
            out.iter()
                .all(|m| m.quirk == Some(ErrorKind::PartTakesBoundaryCr)),
            "{out:#?}"
        );
    }

    /// Courier-IMAP 5.0.13 (recorded): a part without Content-Transfer-Encoding is
    /// "8bit" in its BODYSTRUCTURE.
    #[test]
    fn courier_8bit_for_a_part_without_encoding_is_its_quirk() {
        let lied = STRUCTURE.replacen("\"7bit\"", "\"8bit\"", 1);
        let found = fetch_items(format!("* 1 FETCH (BODYSTRUCTURE ({lied}))").as_bytes());
        assert_eq!(found.len(), 1, "{found:?}");
        assert_eq!(found[0].field, "BODYSTRUCTURE part 1 encoding");
        assert_eq!(found[0].quirk, Some(ErrorKind::DefaultEncoding8bit));
        // Where the header says 7bit, 8bit is plain wrong.
        let truth = Truth::new(Bytes::from_static(FORWARD), false);
        assert!(truth.expected().is_some());
    }
}
