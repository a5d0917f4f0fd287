use super::*;
use crate::imap::response::{Response, Untagged, parse};
use flags::StoreIntent;

fn view(registry: &Arc<Registry>, conn: u64) -> View {
    registry.view("u", "INBOX", conn)
}

/// Feeds one server line (without CRLF) to the view the way the engine does.
fn feed(v: &mut View, line: &str) {
    let data = format!("{line}\r\n");
    let Ok(Response::Untagged(u)) = parse(data.as_bytes()) else {
        panic!("not untagged: {line}");
    };
    match u {
        Untagged::Exists(n) => v.exists(n),
        Untagged::Expunge(n) => v.expunge(n),
        Untagged::Vanished {
            earlier: false,
            uids,
        } => v.vanished(&uids),
        Untagged::Fetch { seq, items } => v.fetch(seq, &items),
        Untagged::Flags(f) => v.flags(&f),
        Untagged::Search { nums, .. } => v.search_reply(&nums),
        other => panic!("unexpected {other:?}"),
    }
}

fn errors(v: &mut View) -> Vec<String> {
    v.findings.drain(..).map(|f| f.message).collect()
}

#[test]
fn consistent_server_gives_no_findings() {
    let r = Registry::new();
    let mut a = view(&r, 1);
    let mut b = view(&r, 2);
    for v in [&mut a, &mut b] {
        feed(v, "* FLAGS (\\Seen $Label1)");
        feed(v, "* 3 EXISTS");
        feed(v, "* 1 FETCH (UID 4 FLAGS (\\Seen))");
        feed(
            v,
            "* 2 FETCH (UID 7 RFC822.SIZE 100 INTERNALDATE \"14-Nov-2023 22:13:20 +0000\")",
        );
        feed(
            v,
            "* 3 FETCH (UID 9 FLAGS ($Label1) ENVELOPE (NIL \"s\" NIL NIL NIL NIL NIL NIL NIL \"<m@x>\"))",
        );
    }
    feed(&mut a, "* 2 FETCH (RFC822.SIZE 100)");
    feed(&mut a, "* 2 EXPUNGE");
    feed(&mut a, "* 2 FETCH (UID 9)");
    feed(&mut a, "* 3 EXISTS");
    feed(&mut a, "* 3 FETCH (UID 12)");
    assert_eq!(errors(&mut a), Vec::<String>::new());
    assert_eq!(errors(&mut b), Vec::<String>::new());
}

#[test]
fn lies_are_found() {
    let r = Registry::new();
    let mut a = view(&r, 1);
    feed(&mut a, "* FLAGS (\\Seen)");
    feed(&mut a, "* 3 EXISTS");
    feed(&mut a, "* 1 FETCH (UID 4 RFC822.SIZE 100 MODSEQ (5))");
    feed(&mut a, "* 2 FETCH (UID 7)");
    feed(&mut a, "* 1 FETCH (UID 5)");
    feed(&mut a, "* 1 FETCH (RFC822.SIZE 101)");
    feed(&mut a, "* 1 FETCH (MODSEQ (4))");
    feed(&mut a, "* 2 FETCH (FLAGS ($Bogus))");
    feed(&mut a, "* 4 FETCH (FLAGS ())");
    feed(&mut a, "* 2 EXISTS");
    let kinds: Vec<_> = a.findings.iter().map(|f| f.kind).collect();
    let e = errors(&mut a);
    let expect = [
        ("UID changed", ErrorKind::UidChanged),
        (
            "RFC822.SIZE changed: expected 100, got 101",
            ErrorKind::SizeChanged,
        ),
        ("MODSEQ went backwards", ErrorKind::ModseqBackwards),
        ("keyword $Bogus", ErrorKind::UnannouncedKeyword),
        (
            "FETCH for seq 4 beyond EXISTS",
            ErrorKind::FetchBeyondExists,
        ),
        ("message count dropped", ErrorKind::ExistsShrank),
    ];
    assert_eq!(e.len(), expect.len(), "{e:#?}");
    for ((got, kind), (want, want_kind)) in e.iter().zip(kinds).zip(expect) {
        assert!(got.contains(want), "{got} lacks {want}");
        assert_eq!(kind, Some(want_kind), "{got}");
    }
}

#[test]
fn static_data_changes_have_their_own_kinds() {
    let r = Registry::new();
    let mut a = view(&r, 1);
    feed(&mut a, "* 2 EXISTS");
    let first = [
        "* 1 FETCH (UID 1 INTERNALDATE \"14-Nov-2023 22:13:20 +0000\")",
        "* 1 FETCH (ENVELOPE (NIL \"s\" NIL NIL NIL NIL NIL NIL NIL \"<m@x>\"))",
        "* 1 FETCH (BODYSTRUCTURE (\"text\" \"plain\" NIL NIL NIL \"7bit\" 5 1 NIL NIL NIL NIL))",
        "* 1 FETCH (BODY[HEADER.FIELDS (FROM)] {9}\r\nFrom: a\r\n)",
    ];
    for line in first {
        feed(&mut a, line);
    }
    feed(
        &mut a,
        "* 1 FETCH (INTERNALDATE \"15-Nov-2023 22:13:20 +0000\")",
    );
    feed(
        &mut a,
        "* 1 FETCH (ENVELOPE (NIL \"t\" NIL NIL NIL NIL NIL NIL NIL \"<m@x>\"))",
    );
    feed(
        &mut a,
        "* 1 FETCH (BODYSTRUCTURE (\"text\" \"plain\" NIL NIL NIL \"7bit\" 6 1 NIL NIL NIL NIL))",
    );
    feed(
        &mut a,
        "* 1 FETCH (BODY[HEADER.FIELDS (FROM)] {9}\r\nFrom: b\r\n)",
    );
    feed(&mut a, "* 1 FETCH (INTERNALDATE \"garbage\")");
    let kinds: Vec<_> = a.findings.drain(..).map(|f| f.kind).collect();
    assert_eq!(
        kinds,
        [
            Some(ErrorKind::InternaldateChanged),
            Some(ErrorKind::EnvelopeChanged),
            Some(ErrorKind::BodystructureChanged),
            Some(ErrorKind::HeaderChanged),
            Some(ErrorKind::InvalidInternaldate),
        ]
    );
    // A second copy with the same Message-ID and another size.
    feed(&mut a, "* 1 FETCH (RFC822.SIZE 40)");
    feed(
        &mut a,
        "* 2 FETCH (UID 2 RFC822.SIZE 50 ENVELOPE (NIL \"s\" NIL NIL NIL NIL NIL NIL NIL \"<m@x>\"))",
    );
    let found: Vec<_> = a.findings.drain(..).map(|f| (f.kind, f.message)).collect();
    assert_eq!(found.len(), 1, "{found:#?}");
    assert_eq!(found[0].0, Some(ErrorKind::CopyDiffers), "{found:#?}");
    assert!(found[0].1.contains("same Message-ID"), "{found:#?}");
}

#[test]
fn recent_in_two_sessions_is_reported_per_uid() {
    let r = Registry::new();
    let mut a = view(&r, 1);
    let mut b = view(&r, 2);
    for v in [&mut a, &mut b] {
        feed(v, "* 2 EXISTS");
        feed(v, "* 1 FETCH (UID 1 FLAGS (\\Recent))");
    }
    feed(&mut b, "* 1 FETCH (FLAGS (\\Recent))");
    // Tracking goes on after the first error: UID 2 is checked too.
    feed(&mut b, "* 2 FETCH (UID 2 FLAGS (\\Recent))");
    feed(&mut a, "* 2 FETCH (UID 2 FLAGS (\\Recent))");
    let e = errors(&mut b);
    assert_eq!(e.len(), 1, "{e:?}");
    assert!(e[0].contains("UID 1") && e[0].contains("multiple sessions"));
    let e = errors(&mut a);
    assert_eq!(e.len(), 1, "{e:?}");
    assert!(e[0].contains("UID 2") && e[0].contains("multiple sessions"));
}

#[test]
fn vanished_removes_known_and_unknown_uids() {
    let r = Registry::new();
    let mut a = view(&r, 1);
    feed(&mut a, "* 5 EXISTS");
    feed(&mut a, "* 1 FETCH (UID 1)");
    feed(&mut a, "* 4 FETCH (UID 8)");
    feed(&mut a, "* VANISHED 1,3,8");
    assert_eq!(a.count(), 2);
    feed(&mut a, "* 2 FETCH (UID 9)");
    assert!(errors(&mut a).is_empty());
}

#[test]
fn search_is_verified() {
    use search::SearchKey;
    let r = Registry::new();
    let mut a = view(&r, 1);
    feed(&mut a, "* 3 EXISTS");
    feed(&mut a, "* 1 FETCH (UID 1 RFC822.SIZE 100)");
    feed(&mut a, "* 2 FETCH (UID 2 RFC822.SIZE 5000)");
    a.search_sent(vec![SearchKey::Smaller(1000)]);
    feed(&mut a, "* SEARCH 2");
    a.search_done(true, false);
    let e = errors(&mut a);
    assert_eq!(e.len(), 2, "{e:?}");
    assert!(e[0].contains("seq 2") && e[0].contains("cannot match"));
    assert!(e[1].contains("seq 1") && e[1].contains("missing"));
    a.search_sent(vec![SearchKey::SeqSet(vec![(2, 3)])]);
    a.search_done(true, false);
    assert!(errors(&mut a)[0].contains("expected an untagged SEARCH"));
    a.search_sent(vec![SearchKey::SeqSet(vec![(2, 3)])]);
    feed(&mut a, "* SEARCH 3 2");
    a.search_done(true, false);
    assert!(errors(&mut a).is_empty());
}

#[test]
fn own_flags_checks_only_known_flags_and_owned_changes() {
    let r = Registry::new();
    let mut a = view(&r, 1);
    a.owned = vec!["\\Seen"];
    feed(&mut a, "* FLAGS (\\Seen \\Draft)");
    feed(&mut a, "* 3 EXISTS");
    feed(&mut a, "* 1 FETCH (UID 1 FLAGS (\\Seen))");
    feed(&mut a, "* 2 FETCH (UID 2 FLAGS ())");
    // +FLAGS \Seen on 1:3: seq 1 already had it (no FETCH needed), seq 3 is unknown,
    // seq 2 got its FETCH.
    a.store_sent(
        10,
        StoreIntent {
            set: vec![(1, 3)],
            add: true,
            flags: vec!["\\Seen"],
            silent: false,
            sent_epoch: 0,
        },
    );
    feed(&mut a, "* 2 FETCH (FLAGS (\\Seen))");
    a.store_done(10, true, false);
    assert!(errors(&mut a).is_empty());
    // Another session's change of a flag we don't own is fine; of ours is not.
    feed(&mut a, "* 2 FETCH (FLAGS (\\Seen \\Draft))");
    assert!(errors(&mut a).is_empty());
    feed(&mut a, "* 1 FETCH (FLAGS ())");
    let e = errors(&mut a);
    assert_eq!(e.len(), 1, "{e:?}");
    assert!(e[0].contains("owned flag \\Seen changed"), "{e:?}");
    // A STORE whose FETCH lost the flag.
    a.store_sent(
        11,
        StoreIntent {
            set: vec![(2, 2)],
            add: false,
            flags: vec!["\\Seen"],
            silent: false,
            sent_epoch: 0,
        },
    );
    feed(&mut a, "* 2 FETCH (FLAGS (\\Seen))");
    a.store_done(11, true, false);
    let e = errors(&mut a);
    assert_eq!(e.len(), 1, "{e:?}");
    assert!(e[0].contains("didn't update \\Seen"), "{e:?}");
}

#[test]
fn header_fields_are_tracked() {
    let r = Registry::new();
    let mut a = view(&r, 1);
    feed(&mut a, "* 1 EXISTS");
    feed(
        &mut a,
        "* 1 FETCH (UID 3 BODY[HEADER.FIELDS (Subject From)] {26}\r\nSubject: hi\r\nFrom: a@b\r\n\r\n)",
    );
    feed(
        &mut a,
        "* 1 FETCH (BODY[HEADER.FIELDS (Subject From)] {26}\r\nSubject: ho\r\nFrom: a@b\r\n\r\n)",
    );
    feed(
        &mut a,
        "* 1 FETCH (BODY[HEADER.FIELDS (From)] {22}\r\nTo: x@y\r\nFrom: a@b\r\n\r\n)",
    );
    let e = errors(&mut a);
    assert_eq!(e.len(), 2, "{e:?}");
    assert!(
        e[0].contains("BODY[HEADER.FIELDS (Subject From)] changed"),
        "{e:?}"
    );
    assert!(e[1].contains("has header To"), "{e:?}");
}

#[test]
fn pipelined_silent_store_does_not_overwrite_newer_flags() {
    // Seen in Dovecot: STORE +FLAGS.SILENT \Seen then STORE -FLAGS \Seen pipelined; the
    // second one's FETCH arrives before the first one's tagged OK.
    let r = Registry::new();
    let mut a = view(&r, 1);
    a.owned = vec!["\\Seen"];
    feed(&mut a, "* 1 EXISTS");
    feed(&mut a, "* 1 FETCH (UID 1 FLAGS ())");
    let intent = |add, silent| StoreIntent {
        set: vec![(1, 1)],
        add,
        flags: vec!["\\Seen"],
        silent,
        sent_epoch: 0,
    };
    a.store_sent(13, intent(true, true));
    a.store_sent(15, intent(false, false));
    feed(&mut a, "* 1 FETCH (FLAGS ())");
    a.store_done(13, true, false);
    a.store_done(15, true, false);
    feed(&mut a, "* 1 FETCH (FLAGS ())");
    let e = errors(&mut a);
    assert!(e.is_empty(), "{e:?}");
}

#[test]
fn uid_order_is_checked_across_expunges_and_shrinks() {
    let r = Registry::new();
    let mut a = view(&r, 1);
    feed(&mut a, "* 6 EXISTS");
    feed(&mut a, "* 4 FETCH (UID 10)");
    feed(&mut a, "* 1 EXPUNGE");
    // UID 10 is seq 3 now: a larger UID before it is out of order.
    feed(&mut a, "* 1 FETCH (UID 12)");
    // And a smaller one after it.
    feed(&mut a, "* 5 FETCH (UID 9)");
    feed(&mut a, "* VANISHED 10");
    feed(&mut a, "* 2 FETCH (UID 11)");
    feed(&mut a, "* 3 FETCH (UID 20)");
    feed(&mut a, "* 3 EXISTS");
    feed(&mut a, "* 1 FETCH (UID 21)");
    let found: Vec<_> = a.findings.drain(..).map(|f| (f.kind, f.message)).collect();
    let kinds: Vec<_> = found.iter().map(|(k, _)| *k).collect();
    assert_eq!(
        kinds,
        [
            Some(ErrorKind::UidOrder),
            Some(ErrorKind::UidOrder),
            Some(ErrorKind::ExistsShrank),
            Some(ErrorKind::UidOrder),
        ],
        "{found:#?}"
    );
    assert!(found[0].1.contains("UID 12 out of order: seq 3 has UID 10"));
    assert!(found[1].1.contains("UID 9 out of order: seq 3 has UID 10"));
    assert!(found[3].1.contains("UID 21 out of order: seq 2 has UID 11"));
}

#[test]
fn copy_differs_when_the_first_copy_disagrees_with_data_from_another_copy() {
    // UID 1 is the first copy of <m@x> seen but only tells its ENVELOPE; UID 2 then
    // tells the size; UID 1's own size must still be compared with UID 2's.
    let r = Registry::new();
    let mut a = view(&r, 1);
    feed(&mut a, "* 2 EXISTS");
    let envelope = "ENVELOPE (NIL \"s\" NIL NIL NIL NIL NIL NIL NIL \"<m@x>\")";
    feed(&mut a, &format!("* 1 FETCH (UID 1 {envelope})"));
    feed(
        &mut a,
        &format!("* 2 FETCH (UID 2 {envelope} RFC822.SIZE 50)"),
    );
    assert_eq!(errors(&mut a), Vec::<String>::new());
    feed(&mut a, "* 1 FETCH (RFC822.SIZE 40)");
    let found: Vec<_> = a.findings.drain(..).map(|f| (f.kind, f.message)).collect();
    assert_eq!(found.len(), 1, "{found:#?}");
    assert_eq!(found[0].0, Some(ErrorKind::CopyDiffers), "{found:#?}");
    assert!(
        found[0].1.contains("UID 1") && found[0].1.contains("user u UID 2"),
        "{found:#?}"
    );
}
