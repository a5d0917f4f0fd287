//! State tracking: memory per tracked message and CPU per tracked FETCH line.
//!
//! Feeds synthetic FETCH replies (distinct Message-IDs, a realistic ENVELOPE, BODY and
//! BODYSTRUCTURE of a multipart/alternative message) straight into a tracking
//! [`Registry`] and [`View`], the way the stress engine does, without any network.
//! Memory is the growth of live heap bytes (a counting global allocator) per message,
//! so allocator slack and fragmentation are not included; `VmRSS` growth is shown next
//! to it. CPU is the time per FETCH line for parsing plus tracking, and for parsing
//! alone, so the difference is what tracking adds.
//!
//! ```text
//! cargo bench --bench tracking               # 20,000 messages
//! IMAPTEST_BENCH_MSGS=100000 cargo bench --bench tracking
//! ```

use std::alloc::{GlobalAlloc, Layout, System};
use std::hint::black_box;
use std::sync::Arc;
use std::sync::atomic::{AtomicIsize, Ordering};
use std::time::{Duration, Instant};

use imaptest::imap::response::{Response, Untagged, parse};
use imaptest::tracking::{Registry, View};

#[path = "support/child.rs"]
mod child;

fn rss_kib() -> i64 {
    i64::try_from(child::own_rss_kib()).unwrap_or(i64::MAX)
}

/// Counts live heap bytes.
struct Counting;

static LIVE: AtomicIsize = AtomicIsize::new(0);

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        LIVE.fetch_add(layout.size() as isize, Ordering::Relaxed);
        // SAFETY: forwarded unchanged to the system allocator.
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        LIVE.fetch_sub(layout.size() as isize, Ordering::Relaxed);
        // SAFETY: `ptr` came from `alloc` with this layout.
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        LIVE.fetch_add(
            new_size as isize - layout.size() as isize,
            Ordering::Relaxed,
        );
        // SAFETY: forwarded unchanged to the system allocator.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

fn live() -> isize {
    LIVE.load(Ordering::Relaxed)
}

/// The full FETCH the default mix ends up knowing about a message.
fn full_fetch(seq: u32) -> Vec<u8> {
    let uid = seq * 2 + 1;
    let day = seq % 28 + 1;
    format!(
        "* {seq} FETCH (UID {uid} FLAGS (\\Seen $Label{l}) MODSEQ ({modseq}) \
         INTERNALDATE \"{day:02}-Mar-2024 10:{min:02}:07 +0100\" RFC822.SIZE {size} \
         ENVELOPE (\"Tue, {day} Mar 2024 10:{min:02}:00 +0100\" \"Re: Minutes of the board meeting #{seq}\" \
         ((\"Grace Lewis\" NIL \"grace\" \"example.org\")) ((\"Grace Lewis\" NIL \"grace\" \"example.org\")) \
         ((\"Grace Lewis\" NIL \"grace\" \"example.org\")) ((\"David Taylor\" NIL \"dtaylor\" \"example.org\")) \
         NIL NIL \"<{prev}.parent@example.org>\" \"<{seq}.{uid}@example.org>\") \
         BODY ((\"text\" \"plain\" (\"charset\" \"utf-8\") NIL NIL \"quoted-printable\" 1834 41)\
         (\"text\" \"html\" (\"charset\" \"utf-8\") NIL NIL \"quoted-printable\" 4120 88) \"alternative\") \
         BODYSTRUCTURE ((\"text\" \"plain\" (\"charset\" \"utf-8\") NIL NIL \"quoted-printable\" 1834 41 NIL NIL NIL NIL)\
         (\"text\" \"html\" (\"charset\" \"utf-8\") NIL NIL \"quoted-printable\" 4120 88 NIL NIL NIL NIL) \
         \"alternative\" (\"boundary\" \"b1_{uid}\") NIL NIL NIL))\r\n",
        l = seq % 5 + 1,
        modseq = 1000 + seq,
        min = seq % 60,
        size = 6500 + seq % 900,
        prev = seq.saturating_sub(1),
    )
    .into_bytes()
}

/// What a second connection typically learns: UID, FLAGS, MODSEQ.
fn flags_fetch(seq: u32) -> Vec<u8> {
    let uid = seq * 2 + 1;
    format!(
        "* {seq} FETCH (UID {uid} FLAGS (\\Seen $Label{}) MODSEQ ({}))\r\n",
        seq % 5 + 1,
        1000 + seq
    )
    .into_bytes()
}

/// A `BODY[HEADER.FIELDS (...)]` reply; `variant` picks one of five field lists (each
/// is stored apart), all answered with the message's From and Subject.
fn header_fetch(seq: u32, variant: usize) -> Vec<u8> {
    const LISTS: [&str; 5] = [
        "FROM SUBJECT",
        "FROM SUBJECT TO",
        "FROM SUBJECT CC",
        "FROM SUBJECT MESSAGE-ID",
        "FROM SUBJECT REFERENCES IN-REPLY-TO",
    ];
    let text =
        format!("From: Grace Lewis <grace@example.org>\r\nSubject: Re: Minutes #{seq}\r\n\r\n");
    format!(
        "* {seq} FETCH (BODY[HEADER.FIELDS ({})] {{{}}}\r\n{text})\r\n",
        LISTS[variant % LISTS.len()],
        text.len()
    )
    .into_bytes()
}

fn feed(view: &mut View, line: &[u8]) {
    match parse(line) {
        Ok(Response::Untagged(Untagged::Exists(n))) => view.exists(n),
        Ok(Response::Untagged(Untagged::Fetch { seq, items })) => view.fetch(seq, &items),
        other => panic!("unexpected {other:?}"),
    }
}

/// Feeds `lines` and returns the time per line.
fn feed_all(view: &mut View, lines: &[Vec<u8>]) -> Duration {
    let start = Instant::now();
    for line in lines {
        feed(view, line);
    }
    start.elapsed() / lines.len().max(1) as u32
}

/// Parses `lines` without tracking and returns the time per line.
fn parse_all(lines: &[Vec<u8>]) -> Duration {
    let start = Instant::now();
    for line in lines {
        black_box(parse(line).is_ok());
    }
    start.elapsed() / lines.len().max(1) as u32
}

fn per(bytes: isize, n: u32) -> f64 {
    bytes as f64 / f64::from(n)
}

fn main() {
    // `cargo bench` passes `--bench`; filters are not supported here.
    let n: u32 = std::env::var("IMAPTEST_BENCH_MSGS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(20_000);
    let exists = format!("* {n} EXISTS\r\n").into_bytes();
    let full: Vec<Vec<u8>> = (1..=n).map(full_fetch).collect();
    let flags: Vec<Vec<u8>> = (1..=n).map(flags_fetch).collect();
    let headers: Vec<Vec<u8>> = (0..5)
        .flat_map(|v| (1..=n).map(move |seq| header_fetch(seq, v)))
        .collect();
    let line_bytes: usize = full.iter().map(Vec::len).sum::<usize>() / full.len();

    let (heap0, rss0) = (live(), rss_kib());
    let registry: Arc<Registry> = Registry::new();
    let mut first = registry.view("user", "INBOX", 1);
    feed(&mut first, &exists);
    let full_time = feed_all(&mut first, &full);
    let (heap1, rss1) = (live(), rss_kib());
    // The same FETCHes again: everything is compared, nothing new is stored.
    let recheck_time = feed_all(&mut first, &full);
    let heap1b = live();

    let mut second = registry.view("user", "INBOX", 2);
    feed(&mut second, &exists);
    let flags_time = feed_all(&mut second, &flags);
    let heap2 = live();

    let headers_time = feed_all(&mut first, &headers);
    let heap3 = live();
    let parse_time = parse_all(&full);
    assert!(first.findings.is_empty(), "{:?}", first.findings.first());
    assert!(second.findings.is_empty(), "{:?}", second.findings.first());

    println!("tracking: {n} messages, full FETCH line {line_bytes} bytes");
    println!(
        "  memory, first view (storage + per-Message-ID data + view): {:.0} bytes/message heap, {:.0} bytes/message RSS",
        per(heap1 - heap0, n),
        (rss1 - rss0) as f64 * 1024.0 / f64::from(n)
    );
    println!(
        "  memory, same FETCHes again: {:+.1} bytes/message",
        per(heap1b - heap1, n)
    );
    println!(
        "  memory, each further connection's view: {:.0} bytes/message",
        per(heap2 - heap1b, n)
    );
    println!(
        "  memory, 5 distinct HEADER.FIELDS replies: {:.0} bytes/message",
        per(heap3 - heap2, n)
    );
    println!(
        "  CPU per full FETCH line: {:.2} µs first seen, {:.2} µs compared, {:.2} µs parse only",
        full_time.as_secs_f64() * 1e6,
        recheck_time.as_secs_f64() * 1e6,
        parse_time.as_secs_f64() * 1e6
    );
    println!(
        "  CPU per UID FLAGS MODSEQ line (second view): {:.2} µs; per HEADER.FIELDS line: {:.2} µs",
        flags_time.as_secs_f64() * 1e6,
        headers_time.as_secs_f64() * 1e6
    );
    drop((first, second, registry));
}
