//! Response reader: framing across reads, parsing of real-world shapes,
//! limits, garbage and truncation, plus property tests.

use std::borrow::Cow;

use bytes::BytesMut;
use imaptest::imap::response::parse;
use imaptest::imap::{
    Arg, Code, FetchItem, FrameError, Framer, FramerLimits, ParseErrorKind, RawResponse, Response,
    SeqSet, Status, Truncation, Untagged,
};
use proptest::prelude::*;

/// What framing produced, comparable across chunkings.
#[derive(Debug, PartialEq)]
enum Out {
    Resp(Vec<u8>, usize),
    Err(FrameError),
}

/// Feeds `input` in the given chunk sizes (cycling; empty = all at once),
/// collecting everything the framer produces, and finishes the stream.
fn frame_chunked(input: &[u8], limits: FramerLimits, chunks: &[usize]) -> Vec<Out> {
    let mut framer = Framer::new(limits);
    let mut buf = BytesMut::new();
    let mut out = Vec::new();
    let mut rest = input;
    let mut sizes = chunks.iter().cycle();
    while !rest.is_empty() {
        let n = sizes
            .next()
            .map_or(rest.len(), |&s| s.max(1).min(rest.len()));
        let (chunk, tail) = rest.split_at(n);
        rest = tail;
        buf.extend_from_slice(chunk);
        let (mut calls, limit) = (0, buf.len() + 2);
        loop {
            calls += 1;
            assert!(calls <= limit, "no progress");
            match framer.next_response(&mut buf) {
                Ok(Some(r)) => {
                    if let Err(e) = r.parse() {
                        let _ = e.to_string();
                    }
                    out.push(Out::Resp(r.bytes().to_vec(), r.len()));
                }
                Ok(None) => break,
                Err(e) => out.push(Out::Err(e)),
            }
        }
    }
    if let Err(e) = framer.finish(&mut buf) {
        out.push(Out::Err(e));
    }
    assert!(buf.is_empty() && framer.is_idle());
    out
}

/// Frames all of `input` at once and returns the responses (errors panic).
fn frame_all(input: &[u8], limits: FramerLimits) -> Vec<RawResponse> {
    let mut framer = Framer::new(limits);
    let mut buf = BytesMut::from(input);
    let mut out = Vec::new();
    while let Some(r) = framer.next_response(&mut buf).expect("frame") {
        out.push(r);
    }
    framer.finish(&mut buf).expect("finish");
    out
}

fn untagged(r: Response<'_>) -> Untagged<'_> {
    match r {
        Response::Untagged(u) => u,
        other => panic!("not untagged: {other:?}"),
    }
}

fn fetch_items(r: Response<'_>) -> (u32, Vec<FetchItem<'_>>) {
    match untagged(r) {
        Untagged::Fetch { seq, items } => (seq, items),
        other => panic!("not FETCH: {other:?}"),
    }
}

fn q(s: &[u8]) -> Arg<'_> {
    Arg::Quoted(Cow::Borrowed(s))
}

const LITERALS: &[u8] = b"* 1 FETCH (UID 7 BODY[HEADER] {23}\r\nSubject: hi\r\nX: {3}\r\n\r\n BODY[TEXT]<5> {4}\r\nabcd)\r\n\
* 2 FETCH (BINARY[] ~{3}\r\n\0\r\n)\r\n\
A1 OK done\r\n";

#[test]
fn literal_split_at_every_byte_boundary() {
    let limits = FramerLimits::default();
    let whole = frame_chunked(LITERALS, limits, &[]);
    assert_eq!(whole.len(), 3);
    for split in 1..LITERALS.len() {
        let (a, b) = LITERALS.split_at(split);
        let got = frame_chunked(LITERALS, limits, &[a.len(), b.len()]);
        assert_eq!(got, whole, "split at {split}");
    }
    assert_eq!(frame_chunked(LITERALS, limits, &[1]), whole);

    let rs = frame_all(LITERALS, limits);
    let (seq, items) = fetch_items(rs[0].parse().unwrap());
    assert_eq!(seq, 1);
    assert_eq!(
        items,
        vec![
            FetchItem::Uid(7),
            FetchItem::Section {
                name: b"BODY[HEADER]",
                origin: None,
                data: Arg::Literal(b"Subject: hi\r\nX: {3}\r\n\r\n"),
            },
            FetchItem::Section {
                name: b"BODY[TEXT]",
                origin: Some(5),
                data: Arg::Literal(b"abcd"),
            },
        ]
    );
    let (_, items) = fetch_items(rs[1].parse().unwrap());
    assert_eq!(
        items,
        vec![FetchItem::Section {
            name: b"BINARY[]",
            origin: None,
            data: Arg::Literal(b"\0\r\n"),
        }]
    );
}

#[test]
fn nested_lists() {
    let r = parse(b"* 3 FETCH (X-TREE (a (b (c (d NIL \"e\")) ()) f))\r\n").unwrap();
    let (_, items) = fetch_items(r);
    let FetchItem::Other { name, value } = &items[0] else {
        panic!("{items:?}")
    };
    assert_eq!(*name, b"X-TREE");
    assert_eq!(
        *value,
        Arg::List(vec![
            Arg::Atom(b"a"),
            Arg::List(vec![
                Arg::Atom(b"b"),
                Arg::List(vec![
                    Arg::Atom(b"c"),
                    Arg::List(vec![Arg::Atom(b"d"), Arg::Nil, q(b"e")]),
                ]),
                Arg::List(vec![]),
            ]),
            Arg::Atom(b"f"),
        ])
    );
    // Adjacent lists inside a list are fine (multipart bodies):
    assert!(parse(b"* 3 FETCH (X ((a)(b) c))\r\n").is_ok());

    // Deep nesting is an error, not a stack overflow.
    let deep = format!(
        "* 1 FETCH (X {}a{})\r\n",
        "(".repeat(5000),
        ")".repeat(5000)
    );
    let e = parse(deep.as_bytes()).unwrap_err();
    assert_eq!(e.reason, ParseErrorKind::TooDeep);
    let ok = format!("* 1 FETCH (X {}a{})\r\n", "(".repeat(90), ")".repeat(90));
    assert!(parse(ok.as_bytes()).is_ok());
}

#[test]
fn bodystructure_and_envelope_with_nils_and_literals() {
    let raw: &[u8] = b"* 12 FETCH (UID 4827313 FLAGS (\\Seen $Forwarded) RFC822.SIZE 44827 \
INTERNALDATE \"17-Jul-1996 02:44:25 -0700\" MODSEQ (12121231000) ENVELOPE (\"Wed, 17 Jul 1996 02:23:25 -0700 (PDT)\" \
{26}\r\nIMAP4rev1 WG mtg \"summary\" ((\"Terry \\\"T\\\" Gray\" NIL \"gray\" \"cac.washington.edu\")) \
((\"Terry Gray\" NIL \"gray\" \"cac.washington.edu\")) ((NIL NIL \"gray\" \"cac.washington.edu\")) \
((NIL NIL \"imap\" \"cac.washington.edu\")) ((NIL NIL \"minutes\" \"CNRI.Reston.VA.US\")(\"John Klensin\" NIL \"KLENSIN\" \"MIT.EDU\")) \
NIL NIL \"<B27397-0100000@cac.washington.edu>\") BODYSTRUCTURE ((\"TEXT\" \"PLAIN\" (\"CHARSET\" \"US-ASCII\") NIL NIL \"7BIT\" 1152 23 NIL NIL NIL NIL)\
(\"message\" \"rfc822\" NIL NIL {5}\r\nhello \"BASE64\" 4554 (NIL {3}\r\nsub NIL NIL NIL NIL NIL NIL NIL NIL) (\"TEXT\" \"PLAIN\" NIL NIL NIL \"7bit\" 3 1) 73 NIL NIL NIL NIL) \
\"MIXED\" (\"BOUNDARY\" \"----=_x\") NIL (\"en\" \"de\") NIL))\r\n";
    // Also split at every byte to cover literals inside lists across reads.
    let whole = frame_chunked(raw, FramerLimits::default(), &[]);
    assert_eq!(whole.len(), 1);
    for split in (1..raw.len()).step_by(7) {
        assert_eq!(
            frame_chunked(raw, FramerLimits::default(), &[split, raw.len()]),
            whole
        );
    }
    let rs = frame_all(raw, FramerLimits::default());
    let (seq, items) = fetch_items(rs[0].parse().unwrap());
    assert_eq!(seq, 12);
    assert_eq!(items[0], FetchItem::Uid(4_827_313));
    assert_eq!(
        items[1],
        FetchItem::Flags(vec![&b"\\Seen"[..], &b"$Forwarded"[..]])
    );
    assert_eq!(items[2], FetchItem::Rfc822Size(44827));
    assert_eq!(
        items[3],
        FetchItem::InternalDate(b"17-Jul-1996 02:44:25 -0700")
    );
    assert_eq!(items[4], FetchItem::ModSeq(12_121_231_000));

    let FetchItem::Envelope(env) = &items[5] else {
        panic!()
    };
    let env = env.as_list().unwrap();
    assert_eq!(env.len(), 10);
    assert_eq!(
        env[1].as_nstring(),
        Some(Some(&b"IMAP4rev1 WG mtg \"summary\""[..]))
    );
    let from = env[2].as_list().unwrap()[0].as_list().unwrap();
    assert_eq!(
        from[0],
        Arg::Quoted(Cow::Owned(b"Terry \"T\" Gray".to_vec()))
    );
    assert!(from[1].is_nil());
    let cc = env[6].as_list().unwrap();
    assert_eq!(cc.len(), 2);
    assert!(env[7].is_nil() && env[8].is_nil());

    let FetchItem::BodyStructure(bs) = &items[6] else {
        panic!()
    };
    let bs = bs.as_list().unwrap();
    let text = bs[0].as_list().unwrap();
    assert_eq!(text[0].as_str_bytes(), Some(&b"TEXT"[..]));
    assert_eq!(text[6].as_number(), Some(1152));
    let msg = bs[1].as_list().unwrap();
    assert_eq!(msg[4], Arg::Literal(b"hello"));
    let inner_env = msg[7].as_list().unwrap();
    assert_eq!(inner_env[1], Arg::Literal(b"sub"));
    assert_eq!(bs[2].as_str_bytes(), Some(&b"MIXED"[..]));
    assert_eq!(bs.len(), 7);
}

#[test]
fn esearch() {
    let cases: Vec<(&[u8], Untagged<'static>)> = vec![
        (
            b"* ESEARCH (TAG \"A282\") MIN 2 COUNT 3\r\n",
            Untagged::ESearch {
                tag: Some(b"A282"),
                uid: false,
                min: Some(2),
                max: None,
                count: Some(3),
                all: None,
                modseq: None,
                other: vec![],
            },
        ),
        (
            b"* ESEARCH (TAG \"A283\") UID ALL 2,10:11 MAX 11 MODSEQ 917162500\r\n",
            Untagged::ESearch {
                tag: Some(b"A283"),
                uid: true,
                min: None,
                max: Some(11),
                count: None,
                all: Some(SeqSet(vec![(2, 2), (10, 11)])),
                modseq: Some(917_162_500),
                other: vec![],
            },
        ),
        (
            b"* ESEARCH UID COUNT 0\r\n",
            Untagged::ESearch {
                tag: None,
                uid: true,
                min: None,
                max: None,
                count: Some(0),
                all: None,
                modseq: None,
                other: vec![],
            },
        ),
        (
            b"* esearch\r\n",
            Untagged::ESearch {
                tag: None,
                uid: false,
                min: None,
                max: None,
                count: None,
                all: None,
                modseq: None,
                other: vec![],
            },
        ),
        (
            b"* ESEARCH (TAG \"t\") PARTIAL (1:10 1,3) min 1\r\n",
            Untagged::ESearch {
                tag: Some(b"t"),
                uid: false,
                min: Some(1),
                max: None,
                count: None,
                all: None,
                modseq: None,
                other: vec![(
                    &b"PARTIAL"[..],
                    Arg::List(vec![Arg::Atom(b"1:10"), Arg::Atom(b"1,3")]),
                )],
            },
        ),
    ];
    for (raw, want) in cases {
        assert_eq!(
            untagged(parse(raw).unwrap()),
            want,
            "{}",
            raw.escape_ascii()
        );
    }
    assert!(parse(b"* ESEARCH MIN 4294967296\r\n").is_err());
    assert!(parse(b"* ESEARCH ALL 1:x\r\n").is_err());
    assert!(parse(b"* ESEARCH (FOO \"x\")\r\n").is_err());
}

#[test]
fn vanished() {
    assert_eq!(
        untagged(parse(b"* VANISHED 405,407,410:425\r\n").unwrap()),
        Untagged::Vanished {
            earlier: false,
            uids: SeqSet(vec![(405, 405), (407, 407), (410, 425)]),
        }
    );
    let u = untagged(parse(b"* VANISHED (EARLIER) 300:310,405,411\r\n").unwrap());
    let Untagged::Vanished { earlier, uids } = u else {
        panic!()
    };
    assert!(earlier);
    assert!(uids.contains(305) && uids.contains(411) && !uids.contains(311));
    assert_eq!(uids.count(), 13);
    assert_eq!(uids.iter().count(), 13);
    assert!(parse(b"* VANISHED (LATER) 1\r\n").is_err());
    assert!(parse(b"* VANISHED 0\r\n").is_err());
}

#[test]
fn literal_beyond_cap_is_skipped() {
    let limits = FramerLimits {
        max_line: 1024,
        max_literal: 16,
    };
    let big = vec![b'Z'; 5000];
    let mut input = b"* 1 FETCH (UID 9 BODY[] {5000}\r\n".to_vec();
    input.extend_from_slice(&big);
    input.extend_from_slice(b" FLAGS (\\Seen))\r\n* 2 FETCH (BODY[] {4}\r\nsmal)\r\nA1 OK\r\n");
    let whole = frame_chunked(&input, limits, &[]);
    for chunk in [1, 3, 100, 4096] {
        assert_eq!(frame_chunked(&input, limits, &[chunk]), whole);
    }
    let rs = frame_all(&input, limits);
    assert_eq!(rs.len(), 3);
    assert_eq!(rs[0].len(), 32 + 5000 + 17);
    assert!(rs[0].bytes().len() < 100, "literal data not kept");
    let (_, items) = fetch_items(rs[0].parse().unwrap());
    assert_eq!(
        items,
        vec![
            FetchItem::Uid(9),
            FetchItem::Section {
                name: b"BODY[]",
                origin: None,
                data: Arg::SkippedLiteral { size: 5000 },
            },
            FetchItem::Flags(vec![&b"\\Seen"[..]]),
        ]
    );
    let (_, items) = fetch_items(rs[1].parse().unwrap());
    assert_eq!(
        items[0],
        FetchItem::Section {
            name: b"BODY[]",
            origin: None,
            data: Arg::Literal(b"smal"),
        }
    );
    assert!(matches!(
        rs[2].parse().unwrap(),
        Response::Tagged {
            status: Status::Ok,
            ..
        }
    ));
}

#[test]
fn garbage_lines_keep_sync() {
    let input: &[u8] =
        b"\x00\x01\xffgarbage (((\r\n* 1 FETCH (UID\r\nA1 NOPE\r\n\r\n)))\r\n* 5 EXISTS\r\n";
    let rs = frame_all(input, FramerLimits::default());
    assert_eq!(rs.len(), 6);
    for r in &rs[..5] {
        let e = r.parse().unwrap_err();
        let msg = e.to_string();
        assert!(!e.line.is_empty() || r.first_line().is_empty(), "{msg}");
    }
    let e = rs[0].parse().unwrap_err();
    assert_eq!(e.line, "\\x00\\x01\\xffgarbage (((");
    assert!(e.to_string().contains("garbage"));
    assert_eq!(rs[2].tag(), Some(&b"A1"[..]), "tag still usable");
    assert_eq!(untagged(rs[5].parse().unwrap()), Untagged::Exists(5));

    // An over-long line is discarded with an error; the next one is fine.
    let limits = FramerLimits {
        max_line: 300,
        max_literal: 100,
    };
    let mut input = b"* 1 FETCH (X ".to_vec();
    input.extend(std::iter::repeat_n(b'y', 10_000));
    input.extend_from_slice(b")\r\n* 2 EXPUNGE\r\n");
    for chunk in [7, 1000, input.len()] {
        let got = frame_chunked(&input, limits, &[chunk]);
        assert_eq!(got.len(), 2);
        let Out::Err(e) = &got[0] else { panic!() };
        assert!(
            matches!(e, FrameError::LineTooLong { len: 10_016, .. }),
            "{e}"
        );
        assert!(e.to_string().contains("* 1 FETCH (X yyy"));
        assert_eq!(got[1], Out::Resp(b"* 2 EXPUNGE\r\n".to_vec(), 13));
    }
}

#[test]
fn connection_closed_mid_literal() {
    let mut framer = Framer::new(FramerLimits::default());
    let mut buf = BytesMut::from(&b"* 1 EXISTS\r\n* 1 FETCH (BODY[] {100}\r\nFrom: a\r\n"[..]);
    assert!(framer.next_response(&mut buf).unwrap().is_some());
    assert!(framer.next_response(&mut buf).unwrap().is_none());
    let e = framer.finish(&mut buf).unwrap_err();
    assert!(matches!(
        e,
        FrameError::Truncated {
            what: Truncation::MidLiteral {
                size: 100,
                received: 9
            },
            ..
        }
    ));
    let msg = e.to_string();
    assert!(msg.contains("mid-literal"), "{msg}");
    assert!(msg.contains("{100}"), "{msg}");

    // Same for a skipped literal.
    let mut framer = Framer::new(FramerLimits {
        max_line: 1000,
        max_literal: 10,
    });
    let mut buf = BytesMut::from(&b"* 1 FETCH (BODY[] {100}\r\nFrom: a\r\n"[..]);
    assert!(framer.next_response(&mut buf).unwrap().is_none());
    let e = framer.finish(&mut buf).unwrap_err();
    assert!(
        e.to_string()
            .contains("mid-literal (9 of 100 bytes received)"),
        "{e}"
    );
}

#[test]
fn typed_views() {
    let u = |s: &'static [u8]| untagged(parse(s).unwrap());
    assert_eq!(u(b"* 23 EXISTS\r\n"), Untagged::Exists(23));
    assert_eq!(u(b"* 0 recent \r\n"), Untagged::Recent(0));
    assert_eq!(u(b"* 4 EXPUNGE\r\n"), Untagged::Expunge(4));
    assert!(parse(b"* 4294967296 EXISTS\r\n").is_err());
    assert_eq!(
        u(b"* CAPABILITY IMAP4rev1 IDLE AUTH=PLAIN\r\n"),
        Untagged::Capability(vec![&b"IMAP4rev1"[..], b"IDLE", b"AUTH=PLAIN"])
    );
    assert_eq!(
        u(b"* ENABLED CONDSTORE QRESYNC\r\n"),
        Untagged::Enabled(vec![&b"CONDSTORE"[..], b"QRESYNC"])
    );
    assert_eq!(
        u(b"* FLAGS (\\Answered \\Seen $Label1)\r\n"),
        Untagged::Flags(vec![&b"\\Answered"[..], b"\\Seen", b"$Label1"])
    );
    assert_eq!(
        u(b"* SEARCH 2 84 882\r\n"),
        Untagged::Search {
            nums: vec![2, 84, 882],
            modseq: None
        }
    );
    assert_eq!(
        u(b"* SEARCH\r\n"),
        Untagged::Search {
            nums: vec![],
            modseq: None
        }
    );
    assert_eq!(
        u(b"* SEARCH 2 5 6 (MODSEQ 917162500)\r\n"),
        Untagged::Search {
            nums: vec![2, 5, 6],
            modseq: Some(917_162_500)
        }
    );
    assert_eq!(
        u(b"* SORT 5 3 4\r\n"),
        Untagged::Search {
            nums: vec![5, 3, 4],
            modseq: None
        }
    );
    assert_eq!(
        u(b"* LIST (\\HasNoChildren) \".\" \"INBOX.Sent\"\r\n"),
        Untagged::List {
            flags: vec![&b"\\HasNoChildren"[..]],
            delimiter: Some(b'.'),
            mailbox: q(b"INBOX.Sent"),
        }
    );
    assert_eq!(
        u(b"* LIST () NIL {5}\r\nfo\"o) (\"CHILDINFO\" (\"SUBSCRIBED\"))\r\n"),
        Untagged::List {
            flags: vec![],
            delimiter: None,
            mailbox: Arg::Literal(b"fo\"o)"),
        }
    );
    assert_eq!(
        u(b"* LSUB (\\Noselect) \"\\\\\" INBOX\r\n"),
        Untagged::Lsub {
            flags: vec![&b"\\Noselect"[..]],
            delimiter: Some(b'\\'),
            mailbox: Arg::Atom(b"INBOX"),
        }
    );
    assert_eq!(
        u(b"* STATUS \"blurdybloop\" (MESSAGES 231 UIDNEXT 44292 HIGHESTMODSEQ 7011231777)\r\n"),
        Untagged::MailboxStatus {
            mailbox: q(b"blurdybloop"),
            items: vec![
                (&b"MESSAGES"[..], 231),
                (&b"UIDNEXT"[..], 44292),
                (&b"HIGHESTMODSEQ"[..], 7_011_231_777)
            ],
        }
    );
    assert_eq!(
        u(b"* BYE [UNAVAILABLE] Server shutting down\r\n"),
        Untagged::Status {
            status: Status::Bye,
            text: imaptest::imap::RespText {
                code: Some(Code::Other {
                    name: b"UNAVAILABLE",
                    args: b""
                }),
                text: b"Server shutting down"
            }
        }
    );
    assert_eq!(
        u(b"* PREAUTH [CAPABILITY IMAP4rev1 IDLE] ready\r\n"),
        Untagged::Status {
            status: Status::PreAuth,
            text: imaptest::imap::RespText {
                code: Some(Code::Capability(vec![&b"IMAP4rev1"[..], b"IDLE"])),
                text: b"ready"
            }
        }
    );
    assert_eq!(
        u(b"* ID (\"name\" \"Dovecot\")\r\n"),
        Untagged::Other {
            name: b"ID",
            args: vec![Arg::List(vec![q(b"name"), q(b"Dovecot")])]
        }
    );
    assert_eq!(
        u(b"* 3 XFOO bar\r\n"),
        Untagged::Other {
            name: b"XFOO",
            args: vec![Arg::Atom(b"3"), Arg::Atom(b"bar")]
        }
    );
    let r = parse(b"A7 OK [COPYUID 38505 304,319:320 3956:3958] Done\r\n").unwrap();
    let Response::Tagged { tag, status, text } = r else {
        panic!()
    };
    assert_eq!((tag, status), (&b"A7"[..], Status::Ok));
    assert_eq!(
        text.code,
        Some(Code::CopyUid {
            uidvalidity: 38505,
            src: SeqSet(vec![(304, 304), (319, 320)]),
            dst: SeqSet(vec![(3956, 3958)]),
        })
    );
    for (raw, code) in [
        (&b"* OK [UIDNEXT 4392] x\r\n"[..], Code::UidNext(4392)),
        (
            b"* OK [UIDVALIDITY 3857529045] x\r\n",
            Code::UidValidity(3_857_529_045),
        ),
        (b"* OK [UNSEEN 12] x\r\n", Code::Unseen(12)),
        (
            b"* OK [HIGHESTMODSEQ 715194045007] x\r\n",
            Code::HighestModSeq(715_194_045_007),
        ),
        (b"* OK [NOMODSEQ] x\r\n", Code::NoModSeq),
        (b"* OK [CLOSED] x\r\n", Code::Closed),
        (b"* NO [ALERT] x\r\n", Code::Alert),
        (b"A1 NO [TRYCREATE] x\r\n", Code::TryCreate),
        (b"A1 OK [READ-ONLY] x\r\n", Code::ReadOnly),
    ] {
        let text = match parse(raw).unwrap() {
            Response::Tagged { text, .. } | Response::Untagged(Untagged::Status { text, .. }) => {
                text
            }
            other => panic!("{other:?}"),
        };
        assert_eq!(text.code, Some(code));
        assert_eq!(text.text, b"x");
    }
    // Lowercase keywords and trailing spaces are accepted.
    assert!(matches!(
        parse(b"a1 ok done  \r\n").unwrap(),
        Response::Tagged {
            status: Status::Ok,
            ..
        }
    ));
    assert_eq!(
        u(b"* 1 fetch (uid 5)  \r\n"),
        Untagged::Fetch {
            seq: 1,
            items: vec![FetchItem::Uid(5)]
        }
    );
}

#[test]
fn fetch_items_misc() {
    let (_, items) = fetch_items(
        parse(b"* 2 FETCH (BODY[HEADER.FIELDS (TO FROM)] {5}\r\nTo:\r\n BODY[1]<0> NIL BINARY.SIZE[1] 42 RFC822.HEADER \"\" X-GM-MSGID 123 BODY (\"TEXT\" \"PLAIN\" NIL NIL NIL \"7BIT\" 3 1))\r\n")
            .unwrap(),
    );
    assert_eq!(
        items,
        vec![
            FetchItem::Section {
                name: b"BODY[HEADER.FIELDS (TO FROM)]",
                origin: None,
                data: Arg::Literal(b"To:\r\n"),
            },
            FetchItem::Section {
                name: b"BODY[1]",
                origin: Some(0),
                data: Arg::Nil,
            },
            FetchItem::Other {
                name: b"BINARY.SIZE[1]",
                value: Arg::Atom(b"42"),
            },
            FetchItem::Section {
                name: b"RFC822.HEADER",
                origin: None,
                data: q(b""),
            },
            FetchItem::Other {
                name: b"X-GM-MSGID",
                value: Arg::Atom(b"123"),
            },
            FetchItem::Body(Arg::List(vec![
                q(b"TEXT"),
                q(b"PLAIN"),
                Arg::Nil,
                Arg::Nil,
                Arg::Nil,
                q(b"7BIT"),
                Arg::Atom(b"3"),
                Arg::Atom(b"1"),
            ])),
        ]
    );
    assert!(parse(b"* 1 FETCH (UID 4294967296)\r\n").is_err());
    assert!(parse(b"* 1 FETCH (RFC822.SIZE 18446744073709551616)\r\n").is_err());
    assert!(parse(b"* 1 FETCH (UID 5\r\n").is_err());
    assert!(parse(b"* 1 FETCH (UID 5) junk\r\n").is_err());
    assert!(parse(b"* 1 FETCH (BODY[]<x> NIL)\r\n").is_err());
}

/// The trace the benchmark uses: frames, parses, and every FETCH is typed.
#[test]
fn fetch_trace_parses_completely() {
    for path in [
        "tests/data/dovecot-fetch.trace",
        "tests/data/dovecot-fetch-synthetic.trace",
    ] {
        let Ok(data) = std::fs::read(path) else {
            continue;
        };
        let rs = frame_all(&data, FramerLimits::default());
        let total: usize = rs.iter().map(RawResponse::len).sum();
        assert_eq!(total, data.len(), "{path}");
        let mut fetches = 0;
        for r in &rs {
            let parsed = r.parse().unwrap_or_else(|e| panic!("{path}: {e}"));
            if let Response::Untagged(Untagged::Fetch { items, .. }) = parsed {
                fetches += 1;
                assert!(
                    items
                        .iter()
                        .any(|i| matches!(i, FetchItem::BodyStructure(_)))
                );
            }
        }
        assert!(fetches > 10, "{path}");
    }
}

fn trace() -> Vec<u8> {
    let mut t = LITERALS.to_vec();
    t.extend_from_slice(b"* 1 FETCH (UID 9 BODY[] {40}\r\n0123456789012345678901234567890123456789 FLAGS (\\Seen))\r\n");
    t.extend_from_slice(b"garbage\x00\r\n* VANISHED (EARLIER) 1:5\r\n+ go\r\n");
    t.extend_from_slice(b"* 2 FETCH (ENVELOPE (NIL {3}\r\nabc ((NIL NIL \"a\" \"b\")) NIL NIL NIL NIL NIL NIL NIL))\r\n");
    t.extend_from_slice(b"* OK ");
    t.extend(std::iter::repeat_n(b'L', 300));
    t.extend_from_slice(b" {3}\r\nxyz tail\r\nA9 OK\r\n");
    t
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn chunking_does_not_matter(chunks in prop::collection::vec(1usize..64, 1..20),
                                max_literal in 0usize..64) {
        let t = trace();
        let limits = FramerLimits { max_line: 256, max_literal };
        prop_assert_eq!(frame_chunked(&t, limits, &chunks), frame_chunked(&t, limits, &[]));
    }

    #[test]
    fn arbitrary_bytes_never_panic(data in prop::collection::vec(any::<u8>(), 0..2048),
                                   chunks in prop::collection::vec(1usize..300, 1..8),
                                   max_literal in 0usize..64) {
        let limits = FramerLimits { max_line: 200, max_literal };
        prop_assert_eq!(frame_chunked(&data, limits, &chunks), frame_chunked(&data, limits, &[]));
    }

    #[test]
    fn imap_like_bytes_never_panic(parts in prop::collection::vec(
        prop::sample::select(vec![
            &b"* "[..], b"A1 ", b"+ ", b"OK ", b"FETCH ", b"(", b")", b"{3}\r\n", b"~{2}\r\n",
            b"{0}\r\n", b"\"q\\\"\" ", b"NIL ", b"\r\n", b"\n", b"[", b"]", b"1 ", b"4294967296 ",
            b"BODY[HEADER]<1> ", b"UID ", b"ESEARCH ", b"VANISHED ", b"(EARLIER) ", b"1:*,5 ",
            b"[UIDNEXT 5] ", b"[COPYUID 1 1:2 3:4] ", b"LIST ", b"STATUS ", b"{99999999999999999999999}\r\n",
        ]), 0..80),
        chunks in prop::collection::vec(1usize..40, 1..6)) {
        let data: Vec<u8> = parts.concat();
        let limits = FramerLimits { max_line: 200, max_literal: 8 };
        prop_assert_eq!(frame_chunked(&data, limits, &chunks), frame_chunked(&data, limits, &[]));
    }
}

/// Differential check: any response imap-codec can encode must frame as
/// exactly one response and parse without error; tags, numbers and FETCH
/// sequence numbers must agree.
mod differential {
    use super::*;
    use arbitrary::{Arbitrary, Unstructured};
    use imap_codec::ResponseCodec;
    use imap_codec::encode::Encoder;
    use imap_codec::imap_types::core::Vec1;
    use imap_codec::imap_types::fetch::MessageDataItem;
    use imap_codec::imap_types::response::{Data, Response as CResponse, Status as CStatus};

    fn check(resp: &CResponse<'_>) -> Result<(), TestCaseError> {
        let wire = ResponseCodec::default().encode(resp).dump();
        let limits = FramerLimits {
            max_line: 1 << 20,
            max_literal: 1 << 20,
        };
        let rs = frame_all(&wire, limits);
        prop_assert_eq!(rs.len(), 1, "{}", wire.escape_ascii());
        let parsed = rs[0].parse();
        prop_assert!(parsed.is_ok(), "{:?} on {}", parsed, wire.escape_ascii());
        let parsed = parsed.unwrap();
        match (resp, &parsed) {
            (CResponse::Status(CStatus::Tagged(t)), Response::Tagged { tag, .. }) => {
                prop_assert_eq!(t.tag.inner().as_bytes(), *tag);
            }
            (CResponse::Data(Data::Exists(n)), Response::Untagged(Untagged::Exists(m))) => {
                prop_assert_eq!(n, m)
            }
            (CResponse::Data(Data::Expunge(n)), Response::Untagged(Untagged::Expunge(m))) => {
                prop_assert_eq!(n.get(), *m)
            }
            (
                CResponse::Data(Data::Fetch { seq, items }),
                Response::Untagged(Untagged::Fetch { seq: s, items: i }),
            ) => {
                prop_assert_eq!(seq.get(), *s);
                prop_assert_eq!(items.as_ref().len(), i.len());
            }
            (CResponse::Status(CStatus::Tagged(_)), other) => {
                prop_assert!(false, "tagged became {:?}", other)
            }
            _ => {}
        }
        Ok(())
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(2000))]

        /// FETCH responses specifically (arbitrary items: ENVELOPE,
        /// BODYSTRUCTURE, sections, BINARY, MODSEQ, ...).
        #[test]
        fn fetch_agrees_with_imap_codec(seed in prop::collection::vec(any::<u8>(), 0..4096)) {
            let mut u = Unstructured::new(&seed);
            let (Ok(seq), Ok(items)) = (
                std::num::NonZeroU32::arbitrary(&mut u),
                Vec1::<MessageDataItem>::arbitrary(&mut u),
            ) else {
                return Ok(());
            };
            check(&CResponse::Data(Data::Fetch { seq, items }))?;
        }

        #[test]
        fn agrees_with_imap_codec(seed in prop::collection::vec(any::<u8>(), 0..2048)) {
            let mut u = Unstructured::new(&seed);
            if let Ok(resp) = CResponse::arbitrary(&mut u) {
                check(&resp)?;
            }
        }
    }
}
