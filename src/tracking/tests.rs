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
        Untagged::Vanished {
            earlier: true,
            uids,
        } => v.vanished_earlier(&uids),
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

/// A SELECT answered with UIDVALIDITY 5 and `lines` (EXISTS first), tagged OK.
fn select(v: &mut View, modseq: u64, lines: &[&str]) {
    v.reset();
    v.select_highestmodseq(modseq);
    for line in lines.iter().take_while(|l| l.ends_with("EXISTS")) {
        feed(v, line);
    }
    v.uidvalidity(5);
    v.select_uidnext(100);
    for line in lines.iter().skip_while(|l| l.ends_with("EXISTS")) {
        feed(v, line);
    }
    v.select_done(true);
}

/// A view of UIDs 4, 7, 9 at HIGHESTMODSEQ 10 saved as the offline cache.
fn saved_cache(r: &Arc<Registry>) {
    let mut a = view(r, 1);
    a.qresync = true;
    a.select_sent(None);
    select(
        &mut a,
        10,
        &[
            "* FLAGS (\\Seen $Label1)",
            "* 3 EXISTS",
            "* 1 FETCH (UID 4 FLAGS (\\Seen) MODSEQ (3))",
            "* 2 FETCH (UID 7 FLAGS () MODSEQ (5))",
            "* 3 FETCH (UID 9 FLAGS ($Label1) MODSEQ (10))",
        ],
    );
    assert!(a.save_offline_cache());
    assert_eq!(errors(&mut a), Vec::<String>::new());
    let cache = a.offline_cache().expect("saved");
    assert_eq!((cache.uidvalidity, cache.highestmodseq), (5, 10));
    assert_eq!(cache.msgs.len(), 3);
    assert_eq!(cache.msgs[2].flags, Some(vec!["$Label1".to_owned()]));
}

/// Another session sees UID 7 expunged and UID 9 changed at MODSEQ 12.
fn other_session_changes(r: &Arc<Registry>) -> View {
    let mut b = view(r, 2);
    b.qresync = true;
    b.select_sent(None);
    select(
        &mut b,
        10,
        &[
            "* 3 EXISTS",
            "* 1 FETCH (UID 4 FLAGS (\\Seen) MODSEQ (3))",
            "* 2 FETCH (UID 7 FLAGS () MODSEQ (5))",
            "* 3 FETCH (UID 9 FLAGS () MODSEQ (12))",
            "* VANISHED 7",
        ],
    );
    assert_eq!(errors(&mut b), Vec::<String>::new());
    b
}

#[test]
fn qresync_select_restores_the_cache_and_applies_changes() {
    let r = Registry::new();
    saved_cache(&r);
    let _b = other_session_changes(&r);
    let mut c = view(&r, 3);
    c.qresync = true;
    let cache = c.offline_cache();
    assert!(cache.is_some());
    c.select_sent(cache);
    select(
        &mut c,
        13,
        &[
            "* 3 EXISTS",
            // Dovecot sends ranges with UIDs the client never knew.
            "* VANISHED (EARLIER) 1:3,5:8",
            "* 2 FETCH (UID 9 FLAGS () MODSEQ (12))",
            "* 3 FETCH (UID 11 FLAGS (\\Seen) MODSEQ (13))",
        ],
    );
    assert_eq!(errors(&mut c), Vec::<String>::new());
    assert_eq!(c.uids, [4, 9, 11]);
    assert!(c.msgs.iter().all(|m| m.flags_known));
    assert_eq!(c.flag_names(c.msgs[0].flags), ["\\Seen"]);
    assert!(c.notes.iter().any(|n| n.contains("offline cache restored")));
    // A cache needs every UID; unknown flags stay unknown.
    c.reset();
    c.select_sent(None);
    select(&mut c, 13, &["* 2 EXISTS", "* 2 FETCH (UID 11)"]);
    assert!(!c.save_offline_cache());
    feed(&mut c, "* 1 FETCH (UID 4)");
    assert!(c.save_offline_cache());
    let mut d = view(&r, 4);
    d.select_sent(d.offline_cache());
    select(&mut d, 13, &["* 2 EXISTS"]);
    assert_eq!(errors(&mut d), Vec::<String>::new());
    assert_eq!(d.uids, [4, 11]);
    assert!(d.msgs.iter().all(|m| !m.flags_known));
}

#[test]
fn qresync_select_that_loses_changes_is_caught() {
    let r = Registry::new();
    saved_cache(&r);
    let _b = other_session_changes(&r);
    let mut c = view(&r, 3);
    c.qresync = true;
    c.select_sent(c.offline_cache());
    // No VANISHED (EARLIER) for UID 7, no FETCH for UID 9; EXISTS is right.
    select(&mut c, 13, &["* 2 EXISTS"]);
    let kinds: Vec<_> = c.findings.iter().map(|f| f.kind).collect();
    let e = errors(&mut c);
    assert_eq!(
        kinds,
        [
            Some(ErrorKind::QresyncMissedExpunge),
            Some(ErrorKind::QresyncMissedFlags)
        ],
        "{e:#?}"
    );
    assert!(e[0].contains("UID 7") && e[1].contains("UID 9"), "{e:#?}");
    assert_eq!(c.uids, [4, 9]);
}

#[test]
fn qresync_exists_and_fetch_reveal_unreported_expunges() {
    let r = Registry::new();
    saved_cache(&r);
    // Nobody else saw anything: only the server's own numbers tell.
    let mut c = view(&r, 3);
    c.select_sent(c.offline_cache());
    select(
        &mut c,
        13,
        &[
            "* 3 EXISTS",
            "* VANISHED (EARLIER) 150",
            "* 2 FETCH (UID 9 FLAGS () MODSEQ (12))",
            "* 3 FETCH (UID 12 FLAGS () MODSEQ (13))",
        ],
    );
    let kinds: Vec<_> = c.findings.iter().map(|f| f.kind).collect();
    let e = errors(&mut c);
    assert_eq!(
        kinds,
        [
            Some(ErrorKind::VanishedUnknownUid),
            Some(ErrorKind::QresyncMissedExpunge)
        ],
        "{e:#?}"
    );
    assert!(e[1].contains("UID 7"), "{e:#?}");
    assert_eq!(c.uids, [4, 9, 12]);
    let mut d = view(&r, 4);
    d.select_sent(d.offline_cache());
    // UID 7 is known gone (c found out), and one more message is missing.
    select(&mut d, 13, &["* 1 EXISTS"]);
    let e: Vec<_> = d.findings.drain(..).collect();
    assert_eq!(e.len(), 2, "{e:#?}");
    assert!(
        e.iter()
            .all(|f| f.kind == Some(ErrorKind::QresyncMissedExpunge))
    );
    assert!(e[0].message.contains("UID 7") && e[1].message.contains("EXISTS 1"));
    assert_eq!(d.count(), 1);
}

#[test]
fn qresync_cache_of_another_uidvalidity_is_not_restored() {
    let r = Registry::new();
    saved_cache(&r);
    let mut c = view(&r, 3);
    c.select_sent(c.offline_cache());
    c.reset();
    feed(&mut c, "* 2 EXISTS");
    c.uidvalidity(6);
    c.select_done(true);
    assert_eq!(c.uids, [0, 0]);
    assert!(c.offline_cache().is_none());
}

#[test]
fn plain_vanished_of_a_uid_the_view_cannot_have() {
    let r = Registry::new();
    let mut a = view(&r, 1);
    feed(&mut a, "* 2 EXISTS");
    feed(&mut a, "* 1 FETCH (UID 4)");
    feed(&mut a, "* 2 FETCH (UID 7)");
    feed(&mut a, "* VANISHED 5");
    let kinds: Vec<_> = a.findings.drain(..).map(|f| f.kind).collect();
    assert_eq!(kinds, [Some(ErrorKind::VanishedUnknownUid)]);
    assert_eq!(a.uids, [4, 7]);
}

fn kinds(v: &mut View) -> Vec<ErrorKind> {
    v.findings.drain(..).filter_map(|f| f.kind).collect()
}

#[test]
fn quoted_header_field_names_are_the_names_asked_for() {
    // Courier-IMAP 5.0 echoes `BODY[HEADER.FIELDS ("To")]` for `(To)`: a
    // header-fld-name is an astring (RFC 3501 §9).
    let r = Registry::new();
    let mut a = view(&r, 1);
    let mut b = view(&r, 2);
    feed(&mut a, "* 1 EXISTS");
    feed(&mut b, "* 1 EXISTS");
    feed(
        &mut a,
        "* 1 FETCH (UID 3 BODY[HEADER.FIELDS (\"Subject\" \"From\")] {26}\r\nSubject: hi\r\nFrom: a@b\r\n\r\n)",
    );
    feed(
        &mut b,
        "* 1 FETCH (UID 3 BODY[HEADER.FIELDS (Subject From)] {26}\r\nSubject: hi\r\nFrom: a@b\r\n\r\n)",
    );
    assert_eq!(kinds(&mut a), vec![]);
    assert_eq!(kinds(&mut b), vec![]);
    // Still compared as the same section, and still checked for what was asked.
    feed(
        &mut b,
        "* 1 FETCH (BODY[HEADER.FIELDS (Subject From)] {26}\r\nSubject: ho\r\nFrom: a@b\r\n\r\n)",
    );
    feed(
        &mut a,
        "* 1 FETCH (BODY[HEADER.FIELDS (\"From\")] {22}\r\nTo: x@y\r\nFrom: a@b\r\n\r\n)",
    );
    assert_eq!(kinds(&mut b), vec![ErrorKind::HeaderChanged]);
    assert_eq!(kinds(&mut a), vec![ErrorKind::UnexpectedHeader]);
    assert_eq!(
        header_field_names(b"BODY[HEADER.FIELDS (\"A b\" {2}\r\nCc X-y)]"),
        Some(vec![b"A b".to_vec(), b"Cc".to_vec(), b"X-y".to_vec()])
    );
    assert_eq!(header_field_names(b"BODY[HEADER.FIELDS (\"To)]"), None);
}

#[test]
fn keyword_dropped_by_our_own_store_in_flight_is_no_error() {
    // Courier: `STORE 1,4 FLAGS.SILENT (\Flagged)` took $Label2 from the only message
    // that had it, and the FLAGS without it came before the STORE's OK.
    let r = Registry::new();
    let mut a = view(&r, 1);
    feed(&mut a, "* FLAGS ($Label2 \\Seen)");
    feed(&mut a, "* 2 EXISTS");
    feed(&mut a, "* 1 FETCH (UID 1 FLAGS (\\Seen $Label2))");
    feed(&mut a, "* 2 FETCH (UID 2 FLAGS ($Label2))");
    a.store_sent(
        7,
        StoreIntent {
            set: vec![(1, 1)],
            add: false,
            flags: Vec::new(),
            silent: true,
            sent_epoch: 0,
        },
    );
    // Message 2 still has it: dropping it is an error.
    feed(&mut a, "* FLAGS (\\Seen)");
    assert_eq!(kinds(&mut a), vec![ErrorKind::KeywordDropped]);
    feed(&mut a, "* FLAGS ($Label2 \\Seen)");
    feed(&mut a, "* 2 FETCH (FLAGS ())");
    feed(&mut a, "* FLAGS (\\Seen)");
    assert_eq!(kinds(&mut a), vec![]);
}

#[test]
fn courier_stand_in_for_an_expunged_message_is_one_named_error() {
    // Recorded from Courier-IMAP 5.0.13: another session expunged UID 1, this one
    // had not been told yet and FETCHed it.
    let r = Registry::new();
    let mut a = view(&r, 1);
    feed(&mut a, "* 1 EXISTS");
    feed(
        &mut a,
        "* 1 FETCH (UID 1 INTERNALDATE \"01-Jan-2024 00:00:00 +0000\" RFC822.SIZE 103 ENVELOPE (\"Mon, 1 Jan 2024 00:00:00 +0000\" \"real\" ((NIL NIL \"a\" \"b.c\")) ((NIL NIL \"a\" \"b.c\")) ((NIL NIL \"a\" \"b.c\")) NIL NIL NIL NIL \"<x1@y>\"))",
    );
    assert_eq!(kinds(&mut a), vec![]);
    feed(
        &mut a,
        "* 1 FETCH (UID 1 FLAGS () INTERNALDATE \"03-Dec-2026 09:54:55 +0000\" RFC822.SIZE 129 ENVELOPE (NIL \"message unavailable\" ((\"System Administrator\" NIL \"root\" \"localhost\")) ((\"System Administrator\" NIL \"root\" \"localhost\")) ((\"System Administrator\" NIL \"root\" \"localhost\")) NIL NIL NIL NIL NIL) BODYSTRUCTURE (\"text\" \"plain\" NIL NIL NIL \"8bit\" 52 1 NIL NIL NIL) BODY[TEXT] {52}\r\nThis message is no longer available on the server.\r\n)",
    );
    assert_eq!(kinds(&mut a), vec![ErrorKind::ExpungedMessageFabricated]);
    // The real data stays the model: the next true reply agrees with it.
    feed(&mut a, "* 1 FETCH (RFC822.SIZE 103)");
    assert_eq!(kinds(&mut a), vec![]);
    // A size-only reply of the stand-in is recognised by its size.
    feed(&mut a, "* 1 FETCH (RFC822.SIZE 129)");
    assert_eq!(kinds(&mut a), vec![ErrorKind::ExpungedMessageFabricated]);
    feed(&mut a, "* 1 FETCH (RFC822.SIZE 130)");
    assert_eq!(kinds(&mut a), vec![ErrorKind::SizeChanged]);
    // So is a date-only reply: dated after the message was first seen, which no real
    // message can be; an earlier date is a plain change.
    feed(
        &mut a,
        "* 1 FETCH (INTERNALDATE \"01-Jan-2099 00:00:00 +0000\")",
    );
    assert_eq!(kinds(&mut a), vec![ErrorKind::ExpungedMessageFabricated]);
    feed(
        &mut a,
        "* 1 FETCH (INTERNALDATE \"01-Jan-2023 00:00:00 +0000\")",
    );
    assert_eq!(kinds(&mut a), vec![ErrorKind::InternaldateChanged]);
    // Beside a stand-in's size, any changed item is the stand-in's.
    feed(
        &mut a,
        "* 1 FETCH (INTERNALDATE \"01-Jan-2022 00:00:00 +0000\" RFC822.SIZE 129)",
    );
    assert_eq!(
        kinds(&mut a),
        vec![
            ErrorKind::ExpungedMessageFabricated,
            ErrorKind::ExpungedMessageFabricated
        ]
    );
}

#[test]
fn a_stand_in_size_seen_first_gives_way_to_the_real_one() {
    let r = Registry::new();
    let mut a = view(&r, 1);
    feed(&mut a, "* 1 EXISTS");
    feed(&mut a, "* 1 FETCH (UID 1 RFC822.SIZE 129)");
    feed(&mut a, "* 1 FETCH (RFC822.SIZE 4000)");
    assert_eq!(kinds(&mut a), vec![ErrorKind::ExpungedMessageFabricated]);
    feed(&mut a, "* 1 FETCH (RFC822.SIZE 4000)");
    assert_eq!(kinds(&mut a), vec![]);
}

#[test]
fn dovecot_size_merge_is_reported_under_its_own_kind() {
    use search::SearchKey;
    // Recorded from Dovecot 2.3.19: sizes 1016, 3016, 5016;
    // `SEARCH NOT SMALLER 2000 NOT SMALLER 4000` answered `* SEARCH 2 3`.
    let r = Registry::new();
    let mut a = view(&r, 1);
    feed(&mut a, "* 3 EXISTS");
    feed(&mut a, "* 1 FETCH (UID 1 RFC822.SIZE 1016)");
    feed(&mut a, "* 2 FETCH (UID 2 RFC822.SIZE 3016)");
    feed(&mut a, "* 3 FETCH (UID 3 RFC822.SIZE 5016)");
    let not = |k| SearchKey::Not(Box::new(k));
    a.search_sent(vec![
        not(SearchKey::Smaller(2000)),
        not(SearchKey::Smaller(4000)),
    ]);
    feed(&mut a, "* SEARCH 2 3");
    a.search_done(true, false);
    assert_eq!(kinds(&mut a), vec![ErrorKind::SearchSizeMerge]);
    // `NOT (OR SMALLER 2000 SMALLER 4000)`, answered the same way.
    a.search_sent(vec![not(SearchKey::Or(
        Box::new(SearchKey::Smaller(2000)),
        Box::new(SearchKey::Smaller(4000)),
    ))]);
    feed(&mut a, "* SEARCH 2 3");
    a.search_done(true, false);
    assert_eq!(kinds(&mut a), vec![ErrorKind::SearchSizeMerge]);
    // Any other wrong answer to the same query is still search-extra/-missing.
    a.search_sent(vec![
        not(SearchKey::Smaller(2000)),
        not(SearchKey::Smaller(4000)),
    ]);
    feed(&mut a, "* SEARCH 1 3");
    a.search_done(true, false);
    assert_eq!(kinds(&mut a), vec![ErrorKind::SearchExtra]);
    // The right answer is no error.
    a.search_sent(vec![
        not(SearchKey::Larger(4000)),
        not(SearchKey::Larger(2000)),
    ]);
    feed(&mut a, "* SEARCH 1");
    a.search_done(true, false);
    assert_eq!(kinds(&mut a), vec![]);
}
