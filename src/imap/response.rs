//! Typed views of server responses, borrowing from a [`super::RawResponse`].
//!
//! Only what the engines need is typed; anything else is
//! [`Untagged::Other`] / [`FetchItem::Other`] / [`Code::Other`] and never an
//! error. Keywords match case-insensitively.
//!
//! ```text
//! response        = continue-req / response-data / response-tagged
//! continue-req    = "+" [SP (resp-text / base64)] CRLF
//! response-tagged = tag SP resp-cond-state CRLF
//! resp-cond-state = ("OK" / "NO" / "BAD") SP resp-text
//! response-data   = "*" SP (resp-cond-state / resp-cond-bye / resp-cond-auth /
//!                   mailbox-data / message-data / capability-data /
//!                   enable-data / esearch-response / expunged-resp) CRLF
//! resp-text       = ["[" resp-text-code "]" SP] [text]
//! mailbox-data    = "FLAGS" SP flag-list / "LIST" SP mailbox-list /
//!                   "LSUB" SP mailbox-list / "SEARCH" *(SP nz-number)
//!                   [SP "(" "MODSEQ" SP mod-sequence-value ")"] /
//!                   "SORT" *(SP nz-number) /
//!                   "STATUS" SP mailbox SP "(" [status-att-list] ")" /
//!                   number SP "EXISTS" / number SP "RECENT"
//! message-data    = nz-number SP ("EXPUNGE" / ("FETCH" SP msg-att))
//! msg-att         = "(" (msg-att-dynamic / msg-att-static)
//!                   *(SP (msg-att-dynamic / msg-att-static)) ")"
//! expunged-resp   = "VANISHED" [SP "(EARLIER)"] SP known-uids   ; RFC 7162
//! esearch-response = "ESEARCH" [search-correlator] [SP "UID"]
//!                   *(SP search-return-data)                    ; RFC 4731
//! search-correlator = SP "(" "TAG" SP tag-string ")"
//! search-return-data = "MIN" SP nz-number / "MAX" SP nz-number /
//!                   "ALL" SP sequence-set / "COUNT" SP number /
//!                   "MODSEQ" SP mod-sequence-value / name SP value
//! sequence-set    = (seq-number / seq-range) ["," sequence-set]
//! seq-range       = seq-number ":" seq-number
//! seq-number      = nz-number / "*"
//! ```

use super::token::{Arg, Cursor, parse_u32, parse_u64};

pub use super::token::{ParseError, ParseErrorKind};

type Result<T> = std::result::Result<T, ParseError>;

/// Parses one complete response (all literals present).
pub fn parse(data: &[u8]) -> Result<Response<'_>> {
    parse_with_skipped(data, &[])
}

/// Parses one response whose skipped literals are listed as
/// `(offset of missing data, size)`, as [`super::RawResponse`] records them.
pub fn parse_with_skipped<'a>(data: &'a [u8], skipped: &'a [(usize, u64)]) -> Result<Response<'a>> {
    let mut c = Cursor::new(data, skipped);
    match c.peek() {
        None => Err(c.error(ParseErrorKind::Empty)),
        Some(b'+') => {
            c.eat(b'+');
            c.skip_spaces();
            resp_text(&mut c).map(Response::Continuation)
        }
        Some(b'*') => {
            c.eat(b'*');
            c.sp()?;
            untagged(&mut c).map(Response::Untagged)
        }
        Some(_) => {
            let tag = c.atom()?;
            c.sp()?;
            let status = match status(c.atom()?) {
                Some(s @ (Status::Ok | Status::No | Status::Bad)) => s,
                _ => return Err(c.error(ParseErrorKind::Expected("OK, NO or BAD"))),
            };
            c.skip_spaces();
            let text = resp_text(&mut c)?;
            Ok(Response::Tagged { tag, status, text })
        }
    }
}

/// One server response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Response<'a> {
    /// `+ ...`: command continuation request.
    Continuation(RespText<'a>),
    /// `tag OK/NO/BAD ...`: command completion.
    Tagged {
        /// The command's tag.
        tag: &'a [u8],
        /// OK, NO or BAD.
        status: Status,
        /// Code and human-readable text.
        text: RespText<'a>,
    },
    /// `* ...`: untagged data.
    Untagged(Untagged<'a>),
}

impl<'a> Response<'a> {
    /// The tag, for a tagged response.
    pub fn tag(&self) -> Option<&'a [u8]> {
        match self {
            Response::Tagged { tag, .. } => Some(tag),
            _ => None,
        }
    }

    /// True for `* BYE`: the server is about to close the connection.
    pub fn is_bye(&self) -> bool {
        matches!(
            self,
            Response::Untagged(Untagged::Status {
                status: Status::Bye,
                ..
            })
        )
    }
}

/// Condition of a status response.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Status {
    /// `OK`
    Ok,
    /// `NO`
    No,
    /// `BAD`
    Bad,
    /// `PREAUTH` (greeting only)
    PreAuth,
    /// `BYE`
    Bye,
}

fn status(name: &[u8]) -> Option<Status> {
    Some(match name {
        n if n.eq_ignore_ascii_case(b"OK") => Status::Ok,
        n if n.eq_ignore_ascii_case(b"NO") => Status::No,
        n if n.eq_ignore_ascii_case(b"BAD") => Status::Bad,
        n if n.eq_ignore_ascii_case(b"PREAUTH") => Status::PreAuth,
        n if n.eq_ignore_ascii_case(b"BYE") => Status::Bye,
        _ => return None,
    })
}

/// `resp-text = ["[" resp-text-code "]" SP] [text]`
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RespText<'a> {
    /// The bracketed response code, if any.
    pub code: Option<Code<'a>>,
    /// Human-readable text (rest of the line).
    pub text: &'a [u8],
}

/// Response codes (RFC 3501 §7.1, RFC 4315 UIDPLUS, RFC 7162 CONDSTORE).
///
/// ```text
/// resp-text-code = "ALERT" / "CAPABILITY" *(SP capability) /
///                  "PERMANENTFLAGS" SP "(" [flag-perm *(SP flag-perm)] ")" /
///                  "READ-ONLY" / "READ-WRITE" / "TRYCREATE" /
///                  "UIDNEXT" SP nz-number / "UIDVALIDITY" SP nz-number /
///                  "UNSEEN" SP nz-number / "HIGHESTMODSEQ" SP mod-sequence-value /
///                  "NOMODSEQ" / "CLOSED" /
///                  "APPENDUID" SP nz-number SP append-uid /
///                  "COPYUID" SP nz-number SP uid-set SP uid-set /
///                  atom [SP 1*<any TEXT-CHAR except "]">]
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Code<'a> {
    /// `ALERT`
    Alert,
    /// `CAPABILITY ...`
    Capability(Vec<&'a [u8]>),
    /// `PERMANENTFLAGS (...)`
    PermanentFlags(Vec<&'a [u8]>),
    /// `UIDNEXT n`
    UidNext(u32),
    /// `UIDVALIDITY n`
    UidValidity(u32),
    /// `UNSEEN n`
    Unseen(u32),
    /// `HIGHESTMODSEQ n`
    HighestModSeq(u64),
    /// `NOMODSEQ`
    NoModSeq,
    /// `APPENDUID uidvalidity uid-set`
    AppendUid {
        /// UIDVALIDITY of the target mailbox.
        uidvalidity: u32,
        /// UIDs assigned to the appended messages.
        uids: SeqSet,
    },
    /// `COPYUID uidvalidity source-uids dest-uids`
    CopyUid {
        /// UIDVALIDITY of the target mailbox.
        uidvalidity: u32,
        /// Source UIDs.
        src: SeqSet,
        /// UIDs in the target mailbox, in the same order.
        dst: SeqSet,
    },
    /// `READ-ONLY`
    ReadOnly,
    /// `READ-WRITE`
    ReadWrite,
    /// `TRYCREATE`
    TryCreate,
    /// `CLOSED`
    Closed,
    /// Any other code, with its raw arguments.
    Other {
        /// Code name as sent.
        name: &'a [u8],
        /// Raw bytes after the name (may be empty).
        args: &'a [u8],
    },
}

fn words(s: &[u8]) -> impl Iterator<Item = &[u8]> {
    s.split(|&b| b == b' ').filter(|w| !w.is_empty())
}

fn parse_code<'a>(c: &mut Cursor<'a>) -> Result<Code<'a>> {
    let start = c.pos();
    c.expect(b'[', "[")?;
    let inner = c.rest_of_line();
    let close = memchr::memchr(b']', inner)
        .ok_or_else(|| c.error(ParseErrorKind::Expected("] closing the response code")))?;
    let inner = inner.get(..close).unwrap_or_default();
    let end = start + 1 + close + 1;
    let (name, args) = match memchr::memchr(b' ', inner) {
        Some(i) => (
            inner.get(..i).unwrap_or_default(),
            inner.get(i + 1..).unwrap_or_default(),
        ),
        None => (inner, &b""[..]),
    };
    let args_trim = args.trim_ascii();
    let bad = || c.error(ParseErrorKind::BadCode);
    let num = |s: &[u8]| parse_u32(s.trim_ascii()).ok_or_else(bad);
    let set = |s: &[u8]| SeqSet::parse(s).ok_or_else(bad);
    let is = |k: &[u8]| name.eq_ignore_ascii_case(k);
    let code = if is(b"ALERT") {
        Code::Alert
    } else if is(b"CAPABILITY") {
        Code::Capability(words(args).collect())
    } else if is(b"PERMANENTFLAGS") {
        let list = args_trim
            .strip_prefix(b"(")
            .and_then(|s| s.strip_suffix(b")"))
            .ok_or_else(bad)?;
        Code::PermanentFlags(words(list).collect())
    } else if is(b"UIDNEXT") {
        Code::UidNext(num(args)?)
    } else if is(b"UIDVALIDITY") {
        Code::UidValidity(num(args)?)
    } else if is(b"UNSEEN") {
        Code::Unseen(num(args)?)
    } else if is(b"HIGHESTMODSEQ") {
        Code::HighestModSeq(parse_u64(args_trim).ok_or_else(bad)?)
    } else if is(b"NOMODSEQ") {
        Code::NoModSeq
    } else if is(b"APPENDUID") {
        let mut w = words(args);
        let (Some(v), Some(u), None) = (w.next(), w.next(), w.next()) else {
            return Err(bad());
        };
        Code::AppendUid {
            uidvalidity: num(v)?,
            uids: set(u)?,
        }
    } else if is(b"COPYUID") {
        let mut w = words(args);
        let (Some(v), Some(s), Some(d), None) = (w.next(), w.next(), w.next(), w.next()) else {
            return Err(bad());
        };
        Code::CopyUid {
            uidvalidity: num(v)?,
            src: set(s)?,
            dst: set(d)?,
        }
    } else if is(b"READ-ONLY") {
        Code::ReadOnly
    } else if is(b"READ-WRITE") {
        Code::ReadWrite
    } else if is(b"TRYCREATE") {
        Code::TryCreate
    } else if is(b"CLOSED") {
        Code::Closed
    } else {
        Code::Other { name, args }
    };
    // rest_of_line moved to the end of the line; come back to after "]".
    c.set_pos(end);
    Ok(code)
}

fn resp_text<'a>(c: &mut Cursor<'a>) -> Result<RespText<'a>> {
    let code = if c.peek() == Some(b'[') {
        let code = parse_code(c)?;
        c.skip_spaces();
        Some(code)
    } else {
        None
    };
    Ok(RespText {
        code,
        text: c.rest_of_line(),
    })
}

/// Untagged responses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Untagged<'a> {
    /// `* OK/NO/BAD/PREAUTH/BYE resp-text`
    Status {
        /// The condition.
        status: Status,
        /// Code and text.
        text: RespText<'a>,
    },
    /// `* CAPABILITY ...`
    Capability(Vec<&'a [u8]>),
    /// `* ENABLED ...` (RFC 5161)
    Enabled(Vec<&'a [u8]>),
    /// `* n EXISTS`
    Exists(u32),
    /// `* n RECENT`
    Recent(u32),
    /// `* n EXPUNGE`
    Expunge(u32),
    /// `* n FETCH (...)`
    Fetch {
        /// Message sequence number.
        seq: u32,
        /// Items in server order.
        items: Vec<FetchItem<'a>>,
    },
    /// `* FLAGS (...)`
    Flags(Vec<&'a [u8]>),
    /// `* SEARCH ...` or `* SORT ...`
    Search {
        /// Matching numbers in server order.
        nums: Vec<u32>,
        /// `(MODSEQ n)` (RFC 7162).
        modseq: Option<u64>,
    },
    /// `* ESEARCH ...` (RFC 4731)
    ESearch {
        /// Tag of the command it answers.
        tag: Option<&'a [u8]>,
        /// Numbers are UIDs.
        uid: bool,
        /// `MIN n`
        min: Option<u32>,
        /// `MAX n`
        max: Option<u32>,
        /// `COUNT n`
        count: Option<u32>,
        /// `ALL sequence-set`
        all: Option<SeqSet>,
        /// `MODSEQ n`
        modseq: Option<u64>,
        /// Other return data (e.g. PARTIAL), name and value.
        other: Vec<(&'a [u8], Arg<'a>)>,
    },
    /// `* VANISHED [(EARLIER)] uids` (RFC 7162)
    Vanished {
        /// `(EARLIER)`: answer to a FETCH/SELECT, not a new expunge.
        earlier: bool,
        /// Expunged UIDs.
        uids: SeqSet,
    },
    /// `* LIST (flags) delimiter mailbox`
    List {
        /// Mailbox attributes.
        flags: Vec<&'a [u8]>,
        /// Hierarchy delimiter; `None` for NIL.
        delimiter: Option<u8>,
        /// Mailbox name (atom, quoted or literal), not decoded.
        mailbox: Arg<'a>,
    },
    /// `* LSUB (flags) delimiter mailbox`
    Lsub {
        /// Mailbox attributes.
        flags: Vec<&'a [u8]>,
        /// Hierarchy delimiter; `None` for NIL.
        delimiter: Option<u8>,
        /// Mailbox name (atom, quoted or literal), not decoded.
        mailbox: Arg<'a>,
    },
    /// `* STATUS mailbox (name value ...)`
    MailboxStatus {
        /// Mailbox name.
        mailbox: Arg<'a>,
        /// Items such as `MESSAGES 3`, `UIDNEXT 5`.
        items: Vec<(&'a [u8], u64)>,
    },
    /// Anything else; never an error.
    Other {
        /// Response name (for `* n NAME`, the name; the number is the first arg).
        name: &'a [u8],
        /// Arguments.
        args: Vec<Arg<'a>>,
    },
}

/// One FETCH data item.
///
/// ```text
/// msg-att-static = "ENVELOPE" SP envelope / "INTERNALDATE" SP date-time /
///                  "RFC822.SIZE" SP number64 / "BODY" ["STRUCTURE"] SP body /
///                  "BODY" section ["<" number ">"] SP nstring /
///                  "BINARY" section-binary SP (nstring / literal8) /
///                  "UID" SP uniqueid / "RFC822" ["." ("HEADER" / "TEXT")] SP nstring
/// msg-att-dynamic = "FLAGS" SP "(" [flag-fetch *(SP flag-fetch)] ")" /
///                  "MODSEQ" SP "(" mod-sequence-value ")"
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FetchItem<'a> {
    /// `UID n`
    Uid(u32),
    /// `FLAGS (...)`
    Flags(Vec<&'a [u8]>),
    /// `RFC822.SIZE n`
    Rfc822Size(u64),
    /// `INTERNALDATE "..."` (raw date-time bytes)
    InternalDate(&'a [u8]),
    /// `MODSEQ (n)`
    ModSeq(u64),
    /// `ENVELOPE (...)`
    Envelope(Arg<'a>),
    /// `BODY (...)` (non-extensible structure)
    Body(Arg<'a>),
    /// `BODYSTRUCTURE (...)`
    BodyStructure(Arg<'a>),
    /// `BODY[...]`, `BINARY[...]`, `RFC822`, `RFC822.HEADER`, `RFC822.TEXT`.
    Section {
        /// Item name up to and including `]`, as sent, without `<origin>`
        /// (e.g. `BODY[HEADER.FIELDS (TO)]`).
        name: &'a [u8],
        /// `<origin>` of a partial fetch.
        origin: Option<u32>,
        /// Literal, quoted, NIL or skipped literal.
        data: Arg<'a>,
    },
    /// Any other item (e.g. `BINARY.SIZE[1]`, `X-GM-MSGID`).
    Other {
        /// Item name as sent.
        name: &'a [u8],
        /// Its value.
        value: Arg<'a>,
    },
}

fn untagged<'a>(c: &mut Cursor<'a>) -> Result<Untagged<'a>> {
    if c.peek().is_some_and(|b| b.is_ascii_digit()) {
        let num_start = c.pos();
        let n = c.number()?;
        let num_end = c.pos();
        c.sp()?;
        let name = c.atom()?;
        let is = |k: &[u8]| name.eq_ignore_ascii_case(k);
        let r = if is(b"FETCH") {
            c.sp()?;
            fetch(c, n)?
        } else if is(b"EXISTS") {
            Untagged::Exists(n)
        } else if is(b"EXPUNGE") {
            Untagged::Expunge(n)
        } else if is(b"RECENT") {
            Untagged::Recent(n)
        } else {
            let mut args = vec![Arg::Atom(c.slice(num_start, num_end))];
            args.extend(c.args_to_eol()?);
            Untagged::Other { name, args }
        };
        c.end()?;
        return Ok(r);
    }
    let name = c.atom()?;
    if let Some(status) = status(name) {
        c.skip_spaces();
        let text = resp_text(c)?;
        return Ok(Untagged::Status { status, text });
    }
    let is = |k: &[u8]| name.eq_ignore_ascii_case(k);
    let r = if is(b"CAPABILITY") {
        Untagged::Capability(c.atoms_to_eol()?)
    } else if is(b"ENABLED") {
        Untagged::Enabled(c.atoms_to_eol()?)
    } else if is(b"FLAGS") {
        c.sp()?;
        Untagged::Flags(c.atom_list()?)
    } else if is(b"SEARCH") || is(b"SORT") {
        search(c)?
    } else if is(b"ESEARCH") {
        esearch(c)?
    } else if is(b"VANISHED") {
        c.sp()?;
        let earlier = if c.eat(b'(') {
            let a = c.atom()?;
            if !a.eq_ignore_ascii_case(b"EARLIER") {
                return Err(c.error(ParseErrorKind::Expected("EARLIER")));
            }
            c.expect(b')', ")")?;
            c.sp()?;
            true
        } else {
            false
        };
        Untagged::Vanished {
            earlier,
            uids: seq_set(c)?,
        }
    } else if is(b"LIST") || is(b"LSUB") {
        c.sp()?;
        let flags = c.atom_list()?;
        c.sp()?;
        let delimiter = match c.arg()? {
            Arg::Nil => None,
            Arg::Quoted(q) if q.len() == 1 => q.first().copied(),
            _ => return Err(c.error(ParseErrorKind::Expected("delimiter"))),
        };
        c.sp()?;
        let mailbox = c.astring()?;
        // mbox-list-extended (e.g. CHILDINFO): validated, not kept.
        c.args_to_eol()?;
        if is(b"LIST") {
            Untagged::List {
                flags,
                delimiter,
                mailbox,
            }
        } else {
            Untagged::Lsub {
                flags,
                delimiter,
                mailbox,
            }
        }
    } else if is(b"STATUS") {
        c.sp()?;
        let mailbox = c.astring()?;
        c.sp()?;
        c.expect(b'(', "(")?;
        let mut items = Vec::new();
        loop {
            c.skip_spaces();
            if c.eat(b')') {
                break;
            }
            let name = c.atom()?;
            c.sp()?;
            items.push((name, c.number64()?));
        }
        Untagged::MailboxStatus { mailbox, items }
    } else {
        Untagged::Other {
            name,
            args: c.args_to_eol()?,
        }
    };
    c.end()?;
    Ok(r)
}

fn seq_set(c: &mut Cursor<'_>) -> Result<SeqSet> {
    let a = c.atom()?;
    SeqSet::parse(a).ok_or_else(|| c.error(ParseErrorKind::BadSeqSet))
}

fn search<'a>(c: &mut Cursor<'a>) -> Result<Untagged<'a>> {
    let mut nums = Vec::new();
    let mut modseq = None;
    while !c.at_eol() {
        if c.eat(b'(') {
            let a = c.atom()?;
            if !a.eq_ignore_ascii_case(b"MODSEQ") {
                return Err(c.error(ParseErrorKind::Expected("MODSEQ")));
            }
            c.sp()?;
            modseq = Some(c.number64()?);
            c.skip_spaces();
            c.expect(b')', ")")?;
        } else {
            nums.push(c.number()?);
        }
    }
    Ok(Untagged::Search { nums, modseq })
}

fn esearch<'a>(c: &mut Cursor<'a>) -> Result<Untagged<'a>> {
    let mut tag = None;
    let mut uid = false;
    let (mut min, mut max, mut count, mut all, mut modseq) = (None, None, None, None, None);
    let mut other = Vec::new();
    c.skip_spaces();
    if c.eat(b'(') {
        let a = c.atom()?;
        if !a.eq_ignore_ascii_case(b"TAG") {
            return Err(c.error(ParseErrorKind::Expected("TAG")));
        }
        c.sp()?;
        tag = Some(c.string_raw()?);
        c.skip_spaces();
        c.expect(b')', ")")?;
    }
    while !c.at_eol() {
        let name = c.atom()?;
        let is = |k: &[u8]| name.eq_ignore_ascii_case(k);
        if is(b"UID") {
            uid = true;
            continue;
        }
        c.sp()?;
        if is(b"MIN") {
            min = Some(c.number()?);
        } else if is(b"MAX") {
            max = Some(c.number()?);
        } else if is(b"COUNT") {
            count = Some(c.number()?);
        } else if is(b"ALL") {
            all = Some(seq_set(c)?);
        } else if is(b"MODSEQ") {
            modseq = Some(c.number64()?);
        } else {
            other.push((name, c.arg()?));
        }
    }
    Ok(Untagged::ESearch {
        tag,
        uid,
        min,
        max,
        count,
        all,
        modseq,
        other,
    })
}

fn fetch<'a>(c: &mut Cursor<'a>, seq: u32) -> Result<Untagged<'a>> {
    c.expect(b'(', "(")?;
    let mut items = Vec::with_capacity(8);
    c.skip_spaces();
    if !c.eat(b')') {
        loop {
            let name = c.section_atom()?;
            c.sp()?;
            items.push(fetch_item(c, name)?);
            let spaced = c.skip_spaces();
            if c.eat(b')') {
                break;
            }
            if !spaced && !matches!(c.peek(), Some(b'A'..=b'Z' | b'a'..=b'z')) {
                return Err(c.error(ParseErrorKind::Expected("SP or )")));
            }
        }
    }
    Ok(Untagged::Fetch { seq, items })
}

fn fetch_item<'a>(c: &mut Cursor<'a>, name: &'a [u8]) -> Result<FetchItem<'a>> {
    let is = |k: &[u8]| name.eq_ignore_ascii_case(k);
    Ok(if is(b"UID") {
        FetchItem::Uid(c.number()?)
    } else if is(b"FLAGS") {
        FetchItem::Flags(c.atom_list()?)
    } else if is(b"RFC822.SIZE") {
        FetchItem::Rfc822Size(c.number64()?)
    } else if is(b"INTERNALDATE") {
        FetchItem::InternalDate(c.quoted_raw()?)
    } else if is(b"MODSEQ") {
        c.expect(b'(', "(")?;
        c.skip_spaces();
        let m = c.number64()?;
        c.skip_spaces();
        c.expect(b')', ")")?;
        FetchItem::ModSeq(m)
    } else if is(b"ENVELOPE") {
        FetchItem::Envelope(c.arg()?)
    } else if is(b"BODYSTRUCTURE") {
        FetchItem::BodyStructure(c.arg()?)
    } else if is(b"BODY") {
        FetchItem::Body(c.arg()?)
    } else if is(b"RFC822") || is(b"RFC822.HEADER") || is(b"RFC822.TEXT") {
        FetchItem::Section {
            name,
            origin: None,
            data: c.arg()?,
        }
    } else if let Some(close) = memchr::memrchr(b']', name)
        && memchr::memchr(b'[', name).is_some()
        && !name
            .get(..11)
            .is_some_and(|p| p.eq_ignore_ascii_case(b"BINARY.SIZE"))
    {
        let section = name.get(..=close).unwrap_or(name);
        let suffix = name.get(close + 1..).unwrap_or_default();
        let origin = if suffix.is_empty() {
            None
        } else {
            let digits = suffix
                .strip_prefix(b"<")
                .and_then(|s| s.strip_suffix(b">"))
                .and_then(parse_u32)
                .ok_or_else(|| c.error(ParseErrorKind::Expected("<origin>")))?;
            Some(digits)
        };
        FetchItem::Section {
            name: section,
            origin,
            data: c.arg()?,
        }
    } else {
        FetchItem::Other {
            name,
            value: c.arg()?,
        }
    })
}

/// A sequence or UID set as ranges; `*` is `u32::MAX`.
///
/// ```text
/// sequence-set = (seq-number / seq-range) ["," sequence-set]
/// seq-range    = seq-number ":" seq-number
/// seq-number   = nz-number / "*"
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Default, Hash)]
pub struct SeqSet(pub Vec<(u32, u32)>);

impl SeqSet {
    /// Parses `1:3,5,7:*`. Ranges are normalised to (low, high); zero,
    /// empty elements and overflow are rejected.
    pub fn parse(s: &[u8]) -> Option<SeqSet> {
        let num = |n: &[u8]| match n {
            b"*" => Some(u32::MAX),
            _ => parse_u32(n).filter(|&n| n != 0),
        };
        s.split(|&b| b == b',')
            .map(|part| match memchr::memchr(b':', part) {
                Some(i) => {
                    let a = num(part.get(..i)?)?;
                    let b = num(part.get(i + 1..)?)?;
                    Some((a.min(b), a.max(b)))
                }
                None => num(part).map(|n| (n, n)),
            })
            .collect::<Option<Vec<_>>>()
            .map(SeqSet)
    }

    /// The ranges, inclusive, low first.
    pub fn ranges(&self) -> &[(u32, u32)] {
        &self.0
    }

    /// True if `n` is in the set.
    pub fn contains(&self, n: u32) -> bool {
        self.0.iter().any(|&(lo, hi)| lo <= n && n <= hi)
    }

    /// Every number in order of the ranges (beware of `*`: up to u32::MAX).
    pub fn iter(&self) -> impl Iterator<Item = u32> + '_ {
        self.0.iter().flat_map(|&(lo, hi)| lo..=hi)
    }

    /// How many numbers the ranges cover (overlaps counted twice).
    pub fn count(&self) -> u64 {
        self.0.iter().map(|&(lo, hi)| u64::from(hi - lo) + 1).sum()
    }

    /// True for an empty set (never produced by [`parse`](Self::parse)).
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tagged_and_codes() {
        let r = parse(b"A1 OK [READ-WRITE] SELECT completed\r\n").unwrap();
        assert_eq!(
            r,
            Response::Tagged {
                tag: b"A1",
                status: Status::Ok,
                text: RespText {
                    code: Some(Code::ReadWrite),
                    text: b"SELECT completed"
                }
            }
        );
        let r = parse(b"a2 no [APPENDUID 38505 3955:3957] ok\r\n").unwrap();
        let Response::Tagged { text, status, .. } = r else {
            panic!()
        };
        assert_eq!(status, Status::No);
        assert_eq!(
            text.code,
            Some(Code::AppendUid {
                uidvalidity: 38505,
                uids: SeqSet(vec![(3955, 3957)])
            })
        );
        let r = parse(b"* OK [PERMANENTFLAGS (\\Seen \\*)] Limited\r\n").unwrap();
        let Response::Untagged(Untagged::Status { text, .. }) = r else {
            panic!()
        };
        assert_eq!(
            text.code,
            Some(Code::PermanentFlags(vec![b"\\Seen", b"\\*"]))
        );
        assert_eq!(text.text, b"Limited");
        assert!(parse(b"* OK [UIDNEXT 99999999999] x\r\n").is_err());
        assert!(parse(b"* OK [UIDNEXT 4 x\r\n").is_err());
        assert!(parse(b"A1 FOO bar\r\n").is_err());
        assert_eq!(parse(b"x1 BAD no\r\n").unwrap().tag(), Some(&b"x1"[..]));
        assert!(parse(b"* BYE Logging out\r\n").unwrap().is_bye());
        let r = parse(b"* OK [X-FOO a b] t\r\n").unwrap();
        let Response::Untagged(Untagged::Status { text, .. }) = r else {
            panic!()
        };
        assert_eq!(
            text.code,
            Some(Code::Other {
                name: b"X-FOO",
                args: b"a b"
            })
        );
        let r = parse(b"+ idling\r\n").unwrap();
        assert_eq!(
            r,
            Response::Continuation(RespText {
                code: None,
                text: b"idling"
            })
        );
        assert!(matches!(
            parse(b"+\r\n").unwrap(),
            Response::Continuation(_)
        ));
    }

    #[test]
    fn seqset() {
        let s = SeqSet::parse(b"1:3,5,9:7,10:*").unwrap();
        assert_eq!(s.0, vec![(1, 3), (5, 5), (7, 9), (10, u32::MAX)]);
        assert!(s.contains(8) && !s.contains(6));
        assert_eq!(s.iter().take(6).collect::<Vec<_>>(), vec![1, 2, 3, 5, 7, 8]);
        for bad in [
            &b""[..],
            b"0",
            b"1,",
            b":3",
            b"1:",
            b"a",
            b"4294967296",
            b"1::2",
        ] {
            assert!(SeqSet::parse(bad).is_none(), "{bad:?}");
        }
    }
}
