//! The mailbox model never panics, whatever the server says in whatever order: an
//! impossible state is a finding, and the run goes on.

use imaptest::imap::response::{Response, Untagged, parse};
use imaptest::tracking::Registry;
use imaptest::tracking::flags::StoreIntent;
use imaptest::tracking::search::SearchKey;
use proptest::prelude::*;

#[derive(Debug, Clone)]
enum Step {
    Line(String),
    StoreSent(u32, u32, u32, bool, bool),
    StoreDone(u32, bool),
    SearchSent(u32, u32),
    SearchDone(bool),
    Reset,
    Checkpoint,
}

fn line() -> impl Strategy<Value = String> {
    let n = 0u32..40;
    prop_oneof![
        n.clone().prop_map(|n| format!("* {n} EXISTS")),
        n.clone().prop_map(|n| format!("* {n} EXPUNGE")),
        (n.clone(), 0u32..60).prop_map(|(n, u)| format!("* {n} FETCH (UID {u})")),
        (n.clone(), 0u64..9).prop_map(|(n, m)| format!("* {n} FETCH (MODSEQ ({m}))")),
        (n.clone(), 0u64..5000).prop_map(|(n, s)| format!("* {n} FETCH (RFC822.SIZE {s})")),
        (n.clone(), prop::sample::subsequence(
            vec!["\\Seen", "\\Recent", "\\Bogus", "$A", "$B", "\\Deleted"],
            0..4
        ))
            .prop_map(|(n, f)| format!("* {n} FETCH (FLAGS ({}))", f.join(" "))),
        prop::sample::subsequence(vec!["\\Seen", "$A", "$B"], 0..3)
            .prop_map(|f| format!("* FLAGS ({})", f.join(" "))),
        (0u32..60, 0u32..60).prop_map(|(a, b)| format!("* VANISHED {a}:{b}")),
        prop::collection::vec(0u32..45, 0..6).prop_map(|v| {
            let nums: Vec<String> = v.iter().map(u32::to_string).collect();
            format!("* SEARCH {}", nums.join(" "))
        }),
        (n, 0u8..3).prop_map(|(n, k)| match k {
            0 => format!("* {n} FETCH (INTERNALDATE \"14-Nov-2023 22:13:20 +0000\")"),
            1 => format!("* {n} FETCH (INTERNALDATE \"garbage\")"),
            _ => format!(
                "* {n} FETCH (ENVELOPE (\"Tue, 14 Nov 2023 22:13:20 +0000\" \"s\" NIL NIL NIL NIL NIL NIL NIL \"<m{n}@x>\"))"
            ),
        }),
    ]
}

fn step() -> impl Strategy<Value = Step> {
    prop_oneof![
        6 => line().prop_map(Step::Line),
        1 => (0u32..5, 0u32..45, 0u32..45, any::<bool>(), any::<bool>())
            .prop_map(|(t, a, b, add, silent)| Step::StoreSent(t, a, b, add, silent)),
        1 => (0u32..5, any::<bool>()).prop_map(|(t, ok)| Step::StoreDone(t, ok)),
        1 => (0u32..45, 0u32..45).prop_map(|(a, b)| Step::SearchSent(a, b)),
        1 => any::<bool>().prop_map(Step::SearchDone),
        1 => Just(Step::Reset),
        1 => Just(Step::Checkpoint),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]
    #[test]
    fn any_server_story_is_survived(steps in prop::collection::vec((0usize..3, step()), 0..80)) {
        let registry = Registry::new();
        let mut views: Vec<_> = (0..3).map(|i| {
            let mut v = registry.view("u", "INBOX", i);
            v.owned = vec!["\\Seen", "$A"];
            v.own_msgs = Some((i as u32, 3));
            v.checkpoint = Some(std::time::Duration::ZERO);
            v
        }).collect();
        for (who, step) in steps {
            let v = &mut views[who];
            match step {
                Step::Line(l) => {
                    let data = format!("{l}\r\n");
                    if let Ok(Response::Untagged(u)) = parse(data.as_bytes()) {
                        match u {
                            Untagged::Exists(n) => v.exists(n),
                            Untagged::Expunge(n) => v.expunge(n),
                            Untagged::Vanished { uids, .. } => v.vanished(&uids),
                            Untagged::Fetch { seq, items } => v.fetch(seq, &items),
                            Untagged::Flags(f) => v.flags(&f),
                            Untagged::Search { nums, .. } => v.search_reply(&nums),
                            _ => {}
                        }
                    }
                }
                Step::StoreSent(tag, a, b, add, silent) => v.store_sent(tag, StoreIntent {
                    set: vec![(a, b)],
                    add,
                    flags: vec!["\\Seen"],
                    silent,
                    sent_epoch: 0,
                }),
                Step::StoreDone(tag, ok) => v.store_done(tag, ok, false),
                Step::SearchSent(a, b) => v.search_sent(vec![
                    SearchKey::Not(Box::new(SearchKey::SeqSet(vec![(a, b)]))),
                    SearchKey::Smaller(3000),
                ]),
                Step::SearchDone(ok) => v.search_done(ok, false),
                Step::Reset => {
                    v.reset();
                    v.set_selected(true);
                }
                Step::Checkpoint => {
                    if v.checkpoint_gate(true) == imaptest::tracking::checkpoint::Gate::SendCheck {
                        v.checkpoint_checked();
                    }
                }
            }
            v.findings.clear();
        }
    }
}
