//! The command each state sends, in the C tool's shapes.

use rand::RngExt;
use rand_xoshiro::Xoshiro256PlusPlus;

use crate::config::StressSettings as Settings;
use crate::imap::Capabilities;
use crate::imap::command::{CommandBuilder, CommandPart, quoted};
use crate::mail::{MboxError, MessageSource, MessageStream};
use crate::states::State;
use crate::tracking::flags::StoreIntent;
use crate::tracking::search::{DateField, DateOp, SearchKey, render_list};

/// What a connection knows when it builds a command.
pub struct CommandContext<'a> {
    pub settings: &'a Settings,
    pub capabilities: &'a Capabilities,
    /// Messages in the selected mailbox as this connection sees it.
    pub msgs: u32,
    /// Hierarchy separator learned from `LIST "" ""`.
    pub separator: char,
    pub messages: &'a dyn MessageSource,
    /// The server accepts new keywords (PERMANENTFLAGS has `\*`).
    pub keywords: bool,
    /// Unix time now (for SEARCH dates).
    pub now: i64,
    /// `own_flags`: the flags this slot owns (empty otherwise).
    pub owned: &'a [&'static str],
    /// `own_msgs`: the sequences this slot may STORE to (None: any).
    pub own_seqs: Option<&'a [u32]>,
    /// Tracking wants to know about every STORE in flight.
    pub track_stores: bool,
    /// `own_msgs`: FETCH always asks for UID, so messages get known owners.
    pub own_seqs_wanted: bool,
    /// `qresync`: SELECT resumes this offline cache (UIDVALIDITY, HIGHESTMODSEQ).
    pub qresync: Option<(u32, u64)>,
}

/// A command ready to send.
#[derive(Debug)]
pub struct Built {
    pub parts: Vec<CommandPart>,
    /// The command line for error messages (without CRLF, literal data left out).
    pub line: String,
    /// For SEARCH: the query tree, for verifying the reply.
    pub search: Option<Vec<SearchKey>>,
    /// With `own_flags`, for STORE and DELETE: what the command changes.
    pub store: Option<StoreIntent>,
    /// For APPEND: the messages sent, in order (content truth).
    pub appended: Vec<bytes::Bytes>,
}

const FETCH_ITEMS: [&str; 7] = [
    "UID",
    "FLAGS",
    "ENVELOPE",
    "INTERNALDATE",
    "BODY",
    "BODYSTRUCTURE",
    "RFC822.SIZE",
];
const HEADERS: [&str; 7] = [
    "From",
    "To",
    "Cc",
    "Subject",
    "References",
    "In-Reply-To",
    "Message-ID",
];
const FETCH2_ITEMS: [&str; 5] = [
    "BODY.PEEK[HEADER]",
    "RFC822.HEADER",
    "BODY.PEEK[]",
    "BODY.PEEK[1]",
    "BODY.PEEK[TEXT]",
];
const SYSTEM_FLAGS: [&str; 4] = ["\\Answered", "\\Flagged", "\\Seen", "\\Draft"];
const KEYWORDS: [&str; 5] = ["$Label1", "$Label2", "$Label3", "$Label4", "$Label5"];
const SORT_KEYS: [&str; 7] = ["ARRIVAL", "CC", "DATE", "FROM", "SIZE", "SUBJECT", "TO"];

/// Builds `state`'s command with `tag`, or `None` when there is nothing to send
/// (e.g. FETCH in an empty mailbox): the state is then consumed silently. Fails only
/// when the mbox cannot be read.
pub fn build(
    state: State,
    tag: &str,
    ctx: &CommandContext<'_>,
    rng: &mut Xoshiro256PlusPlus,
) -> Result<Option<Built>, MboxError> {
    match state {
        State::Append => append(tag, ctx, rng),
        state => Ok(build_without_message(state, tag, ctx, rng)),
    }
}

fn build_without_message(
    state: State,
    tag: &str,
    ctx: &CommandContext<'_>,
    rng: &mut Xoshiro256PlusPlus,
) -> Option<Built> {
    let mailbox = quoted(&ctx.settings.mailbox);
    let msgs = ctx.msgs;
    let text = match state {
        State::ListRoot => "LIST \"\" \"\"".to_owned(),
        State::Compress => {
            if !ctx.capabilities.has("COMPRESS=DEFLATE") {
                return None;
            }
            "COMPRESS DEFLATE".to_owned()
        }
        State::List => "LIST \"\" *".to_owned(),
        State::MCreate => format!("CREATE {}", test_mailbox(ctx.separator, rng)),
        State::MDelete => format!("DELETE {}", test_mailbox(ctx.separator, rng)),
        State::MRename => format!(
            "RENAME {} {}",
            test_mailbox(ctx.separator, rng),
            test_mailbox(ctx.separator, rng)
        ),
        State::MSubs => {
            let verb = if rng.random_bool(0.5) {
                "SUBSCRIBE"
            } else {
                "UNSUBSCRIBE"
            };
            format!("{verb} {}", test_mailbox(ctx.separator, rng))
        }
        State::Status => {
            let recent = if ctx.settings.imap4rev2 {
                ""
            } else {
                " RECENT"
            };
            format!("STATUS {mailbox} (MESSAGES UNSEEN{recent})")
        }
        State::Select => {
            if let Some((uidvalidity, modseq)) = ctx.qresync {
                format!("SELECT {mailbox} (QRESYNC ({uidvalidity} {modseq}))")
            } else if ctx.capabilities.has("CONDSTORE") {
                format!("SELECT {mailbox} (CONDSTORE)")
            } else {
                format!("SELECT {mailbox}")
            }
        }
        State::UidFetch => "UID FETCH 1:* FLAGS".to_owned(),
        State::Fetch => {
            let set = random_set(rng, msgs, msgs.min(100))?;
            format!(
                "FETCH {set} ({})",
                fetch_items(
                    rng,
                    ctx.settings.qresync || ctx.own_seqs_wanted,
                    ctx.settings.checkpoint.is_some() && ctx.track_stores
                )
            )
        }
        State::Fetch2 => {
            if msgs == 0 {
                return None;
            }
            let n = rng.random_range(1..=msgs);
            let item = FETCH2_ITEMS[rng.random_range(0..FETCH2_ITEMS.len())];
            format!("FETCH {n} (UID {item})")
        }
        State::Search => {
            if msgs == 0 {
                return None;
            }
            let keys = search_keys(rng, msgs, ctx.now);
            let mut text = String::from("SEARCH ");
            render_list(&keys, &mut text);
            let line = format!("{tag} {text}");
            return Some(Built {
                parts: vec![CommandPart::new(format!("{line}\r\n").into_bytes())],
                line,
                search: Some(keys),
                store: None,
                appended: Vec::new(),
            });
        }
        State::Sort => {
            if msgs == 0 {
                return None;
            }
            format!(
                "SORT ({}) US-ASCII {}",
                sort_keys(rng),
                sort_criteria(rng, msgs)
            )
        }
        State::Thread => {
            if msgs == 0 {
                return None;
            }
            "THREAD REFERENCES US-ASCII ALL".to_owned()
        }
        State::Copy | State::Move => {
            let copybox = ctx.settings.copybox.as_deref()?;
            if msgs == 0 {
                return None;
            }
            if state == State::Move
                && !(ctx.capabilities.has("MOVE") || ctx.capabilities.has("IMAP4REV2"))
            {
                return None;
            }
            let a = rng.random_range(1..=msgs);
            let b = a + rng.random_range(0..=msgs - a).min(5);
            let verb = if state == State::Copy { "COPY" } else { "MOVE" };
            let range = if a == b {
                a.to_string()
            } else {
                format!("{a}:{b}")
            };
            format!("{verb} {range} {}", quoted(copybox))
        }
        State::Store if ctx.settings.own_flags => return owned_store(tag, ctx, rng, false),
        State::Delete if ctx.settings.own_flags => return owned_store(tag, ctx, rng, true),
        State::Store => {
            let limit = if msgs < 10 { msgs } else { (msgs / 5).min(50) };
            if limit == 0 {
                return None;
            }
            let count = rng.random_range(0..limit);
            let (set, picked) = pick_set(rng, ctx, count)?;
            let op = ["+", "-", ""][rng.random_range(0..3)];
            let silent = rng.random_bool(0.5);
            let flags = random_flags(rng, ctx.keywords);
            let text = format!(
                "STORE {set} {op}FLAGS{} ({flags})",
                if silent { ".SILENT" } else { "" }
            );
            return Some(untracked_store(tag, text, &picked, silent, ctx));
        }
        State::Delete => {
            let p = &ctx.settings.probabilities;
            let append = u32::from(p.get(State::Append));
            let delete = u32::from(p.get(State::Delete)).max(1);
            let mut bound = 1 + (append + delete / 2) / delete;
            if msgs > ctx.settings.msgs + 5 {
                bound += msgs - ctx.settings.msgs;
            }
            let count = rng.random_range(0..bound).min(1000);
            let (set, picked) = pick_set(rng, ctx, count)?;
            let silent = rng.random_bool(0.5);
            let text = format!(
                "STORE {set} +FLAGS{} \\Deleted",
                if silent { ".SILENT" } else { "" }
            );
            return Some(untracked_store(tag, text, &picked, silent, ctx));
        }
        State::Expunge => "EXPUNGE".to_owned(),
        State::Noop => "NOOP".to_owned(),
        State::Idle => "IDLE".to_owned(),
        State::Check => "CHECK".to_owned(),
        State::Logout => "LOGOUT".to_owned(),
        _ => return None,
    };
    let line = format!("{tag} {text}");
    Some(Built {
        parts: vec![CommandPart::new(format!("{line}\r\n").into_bytes())],
        line,
        search: None,
        store: None,
        appended: Vec::new(),
    })
}

/// `APPEND "box" [(flags)] ["date"] {n}` + message, and with MULTIAPPEND further
/// messages in the same command while the "again" probability says so. The messages
/// are streamed from their source while the command is sent.
fn append(
    tag: &str,
    ctx: &CommandContext<'_>,
    rng: &mut Xoshiro256PlusPlus,
) -> Result<Option<Built>, MboxError> {
    let target = ctx.settings.msgs;
    if ctx.msgs - ctx.msgs / 8 >= target {
        return Ok(None);
    }
    let again = ctx.settings.probabilities.again(State::Append);
    let multiappend = ctx.capabilities.has("MULTIAPPEND") && again > 0;
    let mut builder = CommandBuilder::new(tag, "APPEND", ctx.capabilities.literal_plus())
        .string(ctx.settings.mailbox.as_bytes());
    let mut count = 0;
    let mut bytes = 0;
    let mut appended = Vec::new();
    loop {
        // Content truth (`track_stores`) needs the bytes sent; otherwise the message is
        // streamed from its source as the command is written.
        let message = if ctx.track_stores {
            let message = ctx.messages.next_message(rng)?;
            appended.push(message.data.clone());
            MessageStream::from(message)
        } else {
            ctx.messages.next_stream(rng)?
        };
        if rng.random_bool(0.5) {
            builder = builder.raw(&format!("({})", random_flags(rng, false)));
        }
        if rng.random_bool(0.5) {
            builder = builder.raw(&format!("\"{}\"", message.date.imap_format()));
        }
        bytes += message.len();
        builder = builder.literal_body(Box::new(message));
        count += 1;
        if !multiappend || rng.random_range(0..100u32) >= u32::from(again) || count >= 100 {
            break;
        }
    }
    let line = format!(
        "{tag} APPEND {} ({count} message{}, {bytes} bytes)",
        quoted(&ctx.settings.mailbox),
        if count == 1 { "" } else { "s" }
    );
    Ok(Some(Built {
        parts: builder.finish(),
        line,
        search: None,
        store: None,
        appended,
    }))
}

/// Up to `count` random messages: sequences in 1..=msgs, or with `own_msgs` only the
/// owned ones. The set as sent and the sorted numbers.
fn pick_set(
    rng: &mut Xoshiro256PlusPlus,
    ctx: &CommandContext<'_>,
    count: u32,
) -> Option<(String, Vec<u32>)> {
    let msgs = ctx.msgs;
    if msgs == 0 || count == 0 {
        return None;
    }
    let mut picked: Vec<u32> = match ctx.own_seqs {
        None => (0..count.min(msgs))
            .map(|_| rng.random_range(1..=msgs))
            .collect(),
        Some([]) => return None,
        Some(own) => (0..count.min(own.len() as u32))
            .map(|_| own[rng.random_range(0..own.len())])
            .collect(),
    };
    picked.sort_unstable();
    picked.dedup();
    Some((format_ranges(&picked), picked))
}

/// A STORE whose effect tracking does not follow (only that it is in flight).
fn untracked_store(
    tag: &str,
    text: String,
    picked: &[u32],
    silent: bool,
    ctx: &CommandContext<'_>,
) -> Built {
    let line = format!("{tag} {text}");
    Built {
        parts: vec![CommandPart::new(format!("{line}\r\n").into_bytes())],
        line,
        search: None,
        store: ctx.track_stores.then(|| StoreIntent {
            set: merge_ranges(picked),
            add: true,
            flags: Vec::new(),
            silent,
            sent_epoch: 0,
        }),
        appended: Vec::new(),
    }
}

/// `own_flags` STORE (or DELETE): only `+FLAGS`/`-FLAGS` of flags this slot owns,
/// only the `\Deleted` owner runs DELETE.
fn owned_store(
    tag: &str,
    ctx: &CommandContext<'_>,
    rng: &mut Xoshiro256PlusPlus,
    delete: bool,
) -> Option<Built> {
    let msgs = ctx.msgs;
    let (count, flags, add) = if delete {
        if !ctx.owned.contains(&"\\Deleted") {
            return None;
        }
        let p = &ctx.settings.probabilities;
        let append = u32::from(p.get(State::Append));
        let delete = u32::from(p.get(State::Delete)).max(1);
        let mut bound = 1 + (append + delete / 2) / delete;
        if msgs > ctx.settings.msgs + 5 {
            bound += msgs - ctx.settings.msgs;
        }
        (
            rng.random_range(0..bound).min(1000),
            vec!["\\Deleted"],
            true,
        )
    } else {
        let usable: Vec<&'static str> = ctx
            .owned
            .iter()
            .copied()
            .filter(|f| *f != "\\Deleted" && (ctx.keywords || f.starts_with('\\')))
            .collect();
        if usable.is_empty() {
            return None;
        }
        let limit = if msgs < 10 { msgs } else { (msgs / 5).min(50) };
        if limit == 0 {
            return None;
        }
        let mut flags: Vec<&'static str> = usable
            .iter()
            .copied()
            .filter(|_| rng.random_bool(0.5))
            .collect();
        if flags.is_empty() {
            flags.push(usable[rng.random_range(0..usable.len())]);
        }
        (rng.random_range(0..limit), flags, rng.random_bool(0.5))
    };
    let (set, picked) = pick_set(rng, ctx, count)?;
    let silent = rng.random_bool(0.5);
    let text = format!(
        "STORE {set} {}FLAGS{} ({})",
        if add { "+" } else { "-" },
        if silent { ".SILENT" } else { "" },
        flags.join(" ")
    );
    let line = format!("{tag} {text}");
    Some(Built {
        parts: vec![CommandPart::new(format!("{line}\r\n").into_bytes())],
        line,
        search: None,
        store: Some(StoreIntent {
            set: merge_ranges(&picked),
            add,
            flags,
            silent,
            sent_epoch: 0,
        }),
        appended: Vec::new(),
    })
}

/// `"test<sep>N"` or `"test<sep>N<sep>M"`, N and M in 0..20.
fn test_mailbox(separator: char, rng: &mut Xoshiro256PlusPlus) -> String {
    let n = rng.random_range(0..20);
    let name = if rng.random_bool(0.5) {
        format!("test{separator}{n}")
    } else {
        let m = rng.random_range(0..20);
        format!("test{separator}{n}{separator}{m}")
    };
    quoted(&name)
}

/// Up to `count` random sequence numbers in 1..=msgs, merged into ranges.
pub fn random_set(rng: &mut Xoshiro256PlusPlus, msgs: u32, count: u32) -> Option<String> {
    if msgs == 0 || count == 0 {
        return None;
    }
    let mut picked: Vec<u32> = (0..count.min(msgs))
        .map(|_| rng.random_range(1..=msgs))
        .collect();
    picked.sort_unstable();
    picked.dedup();
    Some(format_ranges(&picked))
}

/// `1,3:5,9` from sorted, deduplicated numbers.
pub fn format_ranges(sorted: &[u32]) -> String {
    let mut out = String::new();
    let mut i = 0;
    while i < sorted.len() {
        let start = sorted[i];
        let mut end = start;
        while i + 1 < sorted.len() && sorted[i + 1] == end + 1 {
            i += 1;
            end = sorted[i];
        }
        if !out.is_empty() {
            out.push(',');
        }
        if start == end {
            out.push_str(&start.to_string());
        } else {
            out.push_str(&format!("{start}:{end}"));
        }
        i += 1;
    }
    out
}

/// FETCH items: `UID` first when asked (QRESYNC, own_msgs, checkpoints), `FLAGS` too
/// for checkpoints (views compare flags they know).
fn fetch_items(rng: &mut Xoshiro256PlusPlus, with_uid: bool, with_flags: bool) -> String {
    let mut items = Vec::with_capacity(6);
    if with_uid {
        items.push("UID".to_owned());
    }
    if with_flags {
        items.push("FLAGS".to_owned());
    }
    for _ in 0..rng.random_range(1..=4) {
        if rng.random_range(0..4) < 3 {
            items.push(FETCH_ITEMS[rng.random_range(0..FETCH_ITEMS.len())].to_owned());
        } else {
            let headers: Vec<&str> = (0..rng.random_range(1..=4))
                .map(|_| HEADERS[rng.random_range(0..HEADERS.len())])
                .collect();
            items.push(format!("BODY.PEEK[HEADER.FIELDS ({})]", headers.join(" ")));
        }
    }
    items.join(" ")
}

/// Each system flag but `\Deleted` with 50 %, each `$LabelN` keyword with 25 %.
fn random_flags(rng: &mut Xoshiro256PlusPlus, keywords: bool) -> String {
    let mut flags: Vec<&str> = SYSTEM_FLAGS
        .into_iter()
        .filter(|_| rng.random_bool(0.5))
        .collect();
    if keywords {
        flags.extend(KEYWORDS.into_iter().filter(|_| rng.random_bool(0.25)));
    }
    flags.join(" ")
}

fn sort_keys(rng: &mut Xoshiro256PlusPlus) -> String {
    let i = rng.random_range(0..SORT_KEYS.len());
    let mut keys = String::new();
    if rng.random_range(0..3) == 0 {
        keys.push_str("REVERSE ");
    }
    keys.push_str(SORT_KEYS[i]);
    let j = rng.random_range(0..SORT_KEYS.len());
    if j != i && rng.random_range(0..3) == 0 {
        keys.push(' ');
        if rng.random_range(0..3) == 0 {
            keys.push_str("REVERSE ");
        }
        keys.push_str(SORT_KEYS[j]);
    }
    keys
}

fn sort_criteria(rng: &mut Xoshiro256PlusPlus, msgs: u32) -> String {
    match rng.random_range(0..3) {
        0 => "ALL".to_owned(),
        1 => "FLAGGED".to_owned(),
        _ => {
            let a = rng.random_range(1..=msgs);
            let b = rng.random_range(1..=msgs);
            format!("{}:{}", a.min(b), a.max(b))
        }
    }
}

/// A random query: an AND of one or more criteria, with OR chains and parenthesised
/// groups. Without tracked message data (sizes, dates, subjects) the values are drawn
/// around typical ones, as the C tool does before it has seen any message.
#[cfg(test)]
fn search_query(rng: &mut Xoshiro256PlusPlus, msgs: u32, now: i64) -> String {
    let mut s = String::new();
    render_list(&search_keys(rng, msgs, now), &mut s);
    s
}

/// Draws before a query that Dovecot would answer wrongly gives way to `ALL`.
const MAX_SEARCH_DRAWS: usize = 100;

/// The query tree: the root AND list.
pub fn search_keys(rng: &mut Xoshiro256PlusPlus, msgs: u32, now: i64) -> Vec<SearchKey> {
    for _ in 0..MAX_SEARCH_DRAWS {
        let mut parts = Vec::new();
        search_group(rng, msgs, now, 100, 0, &mut parts);
        if no_merged_kinds(parts.iter(), false, true) {
            return parts;
        }
    }
    vec![SearchKey::All]
}

/// Dovecot 2.3 flattens a query before it simplifies it: nested lists of one operator
/// become one list (`(a b) c` is `a b c`, `OR (OR a b) c` one OR of three) and NOT goes
/// inside with De Morgan (`NOT (OR a b)` is `NOT a NOT b`). Two keys of one kind that
/// end up in one list are then merged wrongly, so such a query would be a false alarm
/// on a long-lived session; the generator builds none (nested ones are drawn again).
/// `keys` form one list, AND if `and` else OR, under NOT if `negated`.
fn no_merged_kinds<'a>(
    keys: impl Iterator<Item = &'a SearchKey>,
    negated: bool,
    and: bool,
) -> bool {
    let mut members = Vec::new();
    for key in keys {
        flatten(key, negated, and, &mut members);
    }
    for (i, (a, _)) in members.iter().enumerate() {
        if members[..i].iter().any(|(b, _)| same_kind(a, b)) {
            return false;
        }
    }
    members.iter().all(|&(key, negated)| match key {
        // A list of the other operator: `NOT (a b)` is an OR, `NOT (OR a b)` an AND.
        SearchKey::And(items) => no_merged_kinds(items.iter(), negated, !negated),
        SearchKey::Or(a, b) => no_merged_kinds([&**a, &**b].into_iter(), negated, negated),
        _ => true,
    })
}

/// The members of one flattened AND (`and`) or OR list that `key` contributes, each
/// with whether it is negated.
fn flatten<'a>(key: &'a SearchKey, negated: bool, and: bool, out: &mut Vec<(&'a SearchKey, bool)>) {
    match key {
        SearchKey::Not(inner) => flatten(inner, !negated, and, out),
        SearchKey::And(items) if and != negated => {
            for item in items {
                flatten(item, negated, and, out);
            }
        }
        SearchKey::Or(a, b) if and == negated => {
            flatten(a, negated, and, out);
            flatten(b, negated, and, out);
        }
        key => out.push((key, negated)),
    }
}

fn search_group(
    rng: &mut Xoshiro256PlusPlus,
    msgs: u32,
    now: i64,
    mut p: u32,
    depth: u32,
    out: &mut Vec<SearchKey>,
) {
    while rng.random_range(0..100) < p {
        let node = search_node(rng, msgs, now, p, depth);
        // Like the C tool, no two siblings of one kind (sequence sets, sizes, dates of
        // one field). Dovecot 2.3 merges `NOT SMALLER a NOT SMALLER b` wrongly.
        if !out.iter().any(|o| same_kind(o, &node)) {
            out.push(node);
        }
        p /= 2;
    }
    if out.is_empty() {
        out.push(SearchKey::All);
    }
}

fn search_node(rng: &mut Xoshiro256PlusPlus, msgs: u32, now: i64, p: u32, depth: u32) -> SearchKey {
    let kinds = if depth >= 3 { 10 } else { 12 };
    let key = match rng.random_range(0..kinds) {
        0 => {
            let draws = msgs / 2 + 1;
            let mut picked: Vec<u32> = (0..draws.min(msgs.max(1)))
                .map(|_| rng.random_range(1..=msgs.max(1)))
                .collect();
            picked.sort_unstable();
            picked.dedup();
            SearchKey::SeqSet(merge_ranges(&picked))
        }
        1 => SearchKey::Smaller(2048 + rng.random_range(0..2048)),
        2 => SearchKey::Larger(2048 + rng.random_range(0..2048)),
        k @ 3..=8 => {
            let (field, op) = [
                (DateField::Internal, DateOp::Before),
                (DateField::Internal, DateOp::On),
                (DateField::Internal, DateOp::Since),
                (DateField::Sent, DateOp::Before),
                (DateField::Sent, DateOp::On),
                (DateField::Sent, DateOp::Since),
            ][k - 3];
            let days_ago = rng.random_range(0..10);
            let day = (now - days_ago * 86_400).div_euclid(86_400) * 86_400;
            SearchKey::Date { field, op, day }
        }
        9 => SearchKey::NotDeleted,
        10 => {
            let child = p.saturating_sub((p / 30).max(1));
            let mut a = Vec::new();
            let mut b = Vec::new();
            search_group(rng, msgs, now, child, depth + 1, &mut a);
            search_group(rng, msgs, now, child, depth + 1, &mut b);
            let (a, b) = (group(a), group(b));
            // `OR LARGER a LARGER b` is the same trap under NOT (De Morgan turns it
            // into two siblings of one kind), so one of the two is enough.
            if same_kind(&a, &b) {
                a
            } else {
                SearchKey::Or(Box::new(a), Box::new(b))
            }
        }
        _ => {
            let child = p.saturating_sub((p / 30).max(1));
            let mut items = Vec::new();
            search_group(rng, msgs, now, child, depth + 1, &mut items);
            group(items)
        }
    };
    // Beyond the C tool: some keys negated (NOT of an unknown stays unknown).
    if key != SearchKey::NotDeleted && rng.random_range(0..8) == 0 {
        SearchKey::Not(Box::new(key))
    } else {
        key
    }
}

/// Keys that would conflict as siblings of one AND.
fn same_kind(a: &SearchKey, b: &SearchKey) -> bool {
    fn base(k: &SearchKey) -> &SearchKey {
        match k {
            SearchKey::Not(inner) => base(inner),
            k => k,
        }
    }
    match (base(a), base(b)) {
        // Dovecot answers `OR (ALL NOT OR ALL ALL) 1:3` with every message.
        (SearchKey::All, SearchKey::All)
        | (SearchKey::SeqSet(_), SearchKey::SeqSet(_))
        | (SearchKey::Smaller(_), SearchKey::Smaller(_))
        | (SearchKey::Larger(_), SearchKey::Larger(_)) => true,
        (SearchKey::Date { field: f, .. }, SearchKey::Date { field: g, .. }) => f == g,
        _ => false,
    }
}

fn group(mut items: Vec<SearchKey>) -> SearchKey {
    if items.len() == 1 {
        items.pop().unwrap_or(SearchKey::All)
    } else {
        SearchKey::And(items)
    }
}

/// Sorted, deduplicated numbers as inclusive ranges.
fn merge_ranges(sorted: &[u32]) -> Vec<(u32, u32)> {
    let mut out: Vec<(u32, u32)> = Vec::new();
    for &n in sorted {
        match out.last_mut() {
            Some((_, end)) if *end + 1 == n => *end = n,
            _ => out.push((n, n)),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    /// Queries Dovecot 2.3 answered wrongly on the lab: same-kind keys that meet only
    /// once nested lists are flattened.
    #[test]
    fn keys_that_meet_after_flattening_are_caught() {
        use crate::tracking::search::{DateField, DateOp};
        let before = SearchKey::Date {
            field: DateField::Internal,
            op: DateOp::Before,
            day: 0,
        };
        let not = |k: SearchKey| SearchKey::Not(Box::new(k));
        let or = |a: SearchKey, b: SearchKey| SearchKey::Or(Box::new(a), Box::new(b));
        // (NOT BEFORE d NOT LARGER 3530) NOT LARGER 3080
        let nested_and = [
            SearchKey::And(vec![not(before.clone()), not(SearchKey::Larger(3530))]),
            not(SearchKey::Larger(3080)),
        ];
        assert!(!no_merged_kinds(nested_and.iter(), false, true));
        // NOT OR (OR (OR SMALLER 2105 LARGER 3465) SMALLER 3696) BEFORE d
        let nested_or = [not(or(
            or(
                or(SearchKey::Smaller(2105), SearchKey::Larger(3465)),
                SearchKey::Smaller(3696),
            ),
            before.clone(),
        ))];
        assert!(!no_merged_kinds(nested_or.iter(), false, true));
        // Kinds that stay in lists of their own are fine: OR (a b) (c d) keeps the
        // two ANDs apart.
        let apart = [or(
            SearchKey::And(vec![SearchKey::Larger(1), before.clone()]),
            SearchKey::And(vec![SearchKey::Larger(2), SearchKey::NotDeleted]),
        )];
        assert!(no_merged_kinds(apart.iter(), false, true));
    }

    #[test]
    fn generated_queries_never_merge_kinds() {
        let mut rng = Xoshiro256PlusPlus::seed_from_u64(11);
        for _ in 0..20_000 {
            let keys = search_keys(&mut rng, 40, 1_700_000_000);
            assert!(no_merged_kinds(keys.iter(), false, true), "{keys:?}");
        }
    }

    /// Dovecot 2.3 answers two same-kind keys in one AND wrongly, and `NOT (OR a b)` is
    /// such an AND: the generator never builds either.
    #[test]
    fn no_two_keys_of_one_kind_side_by_side() {
        fn check(keys: &[SearchKey]) {
            for (i, a) in keys.iter().enumerate() {
                for b in &keys[i + 1..] {
                    assert!(!same_kind(a, b), "{a:?} and {b:?}");
                }
                visit(a);
            }
        }
        fn visit(key: &SearchKey) {
            match key {
                SearchKey::Not(inner) => visit(inner),
                SearchKey::Or(a, b) => {
                    assert!(!same_kind(a, b), "OR {a:?} {b:?}");
                    visit(a);
                    visit(b);
                }
                SearchKey::And(items) => check(items),
                _ => {}
            }
        }
        let mut rng = Xoshiro256PlusPlus::seed_from_u64(3);
        for _ in 0..20_000 {
            check(&search_keys(&mut rng, 40, 1_700_000_000));
        }
    }

    #[test]
    fn ranges_merge() {
        assert_eq!(format_ranges(&[1, 2, 3, 5, 7, 8]), "1:3,5,7:8");
        assert_eq!(format_ranges(&[4]), "4");
        assert_eq!(format_ranges(&[]), "");
    }

    #[test]
    fn random_sets_stay_in_range() {
        let mut rng = Xoshiro256PlusPlus::seed_from_u64(9);
        for msgs in 1..50 {
            let set = random_set(&mut rng, msgs, msgs).unwrap();
            for piece in set.split(',') {
                for n in piece.split(':') {
                    let n: u32 = n.parse().unwrap();
                    assert!((1..=msgs).contains(&n), "{set} with {msgs} msgs");
                }
            }
        }
        assert_eq!(random_set(&mut rng, 0, 5), None);
    }

    #[test]
    fn search_queries_are_balanced_and_dated() {
        let mut rng = Xoshiro256PlusPlus::seed_from_u64(5);
        for _ in 0..200 {
            let q = search_query(&mut rng, 30, 1_700_000_000);
            assert_eq!(q.matches('(').count(), q.matches(')').count(), "{q}");
            assert!(!q.is_empty());
        }
        assert_eq!(
            crate::tracking::search::search_date(1_700_000_000),
            "14-Nov-2023"
        );
    }
}
