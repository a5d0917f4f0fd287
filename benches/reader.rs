//! Reader throughput on FETCH-heavy traces captured from Dovecot 2.3
//! (`tests/data/capture_fetch_trace.py`):
//!
//! * `dovecot-fetch.trace`: `FETCH 1:* (UID FLAGS ENVELOPE BODYSTRUCTURE
//!   RFC822.SIZE INTERNALDATE BODY.PEEK[])`, mostly literal bytes;
//! * `dovecot-fetch-meta.trace`: the same without bodies (only
//!   `BODY.PEEK[HEADER.FIELDS (FROM TO SUBJECT DATE)]`), mostly tokens.
//!
//! Traces are fed in 16 KiB reads, as a socket would deliver them.

use std::hint::black_box;

use bytes::BytesMut;
use criterion::{Criterion, Throughput, criterion_group};
use imaptest::imap::{FetchItem, Framer, FramerLimits, Response, Untagged};

const READ: usize = 16 * 1024;

fn trace(name: &str) -> Vec<u8> {
    let path = format!("{}/tests/data/{name}", env!("CARGO_MANIFEST_DIR"));
    std::fs::read(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

/// Frames (and optionally parses) the whole trace; returns a checksum.
fn run(data: &[u8], limits: FramerLimits, parse: bool) -> usize {
    let mut framer = Framer::new(limits);
    let mut buf = BytesMut::with_capacity(64 * 1024);
    let mut sum = 0;
    for chunk in data.chunks(READ) {
        buf.extend_from_slice(chunk);
        while let Some(r) = framer.next_response(&mut buf).expect("frame") {
            sum += r.len();
            if parse {
                match r.parse().expect("parse") {
                    Response::Untagged(Untagged::Fetch { items, .. }) => {
                        for item in &items {
                            if let FetchItem::Section { data, .. } = item {
                                sum += data.literal_size().unwrap_or(0) as usize;
                            }
                        }
                        sum += items.len();
                    }
                    other => {
                        sum += usize::from(matches!(black_box(other), Response::Tagged { .. }))
                    }
                }
            }
        }
    }
    framer.finish(&mut buf).expect("finish");
    sum
}

fn bench(c: &mut Criterion) {
    let keep_all = FramerLimits {
        max_line: 1024 * 1024,
        max_literal: 1024 * 1024,
    };
    for name in ["dovecot-fetch.trace", "dovecot-fetch-meta.trace"] {
        let data = trace(name);
        let responses = {
            let mut f = Framer::new(FramerLimits::default());
            let mut buf = BytesMut::from(&data[..]);
            std::iter::from_fn(|| f.next_response(&mut buf).expect("frame")).count()
        };
        eprintln!("{name}: {} bytes, {responses} responses", data.len());
        let mut g = c.benchmark_group(name);
        g.throughput(Throughput::Bytes(data.len() as u64));
        g.bench_function("frame+parse, 32K literal cap", |b| {
            b.iter(|| run(black_box(&data), FramerLimits::default(), true))
        });
        g.bench_function("frame+parse, keep all literals", |b| {
            b.iter(|| run(black_box(&data), keep_all, true))
        });
        g.bench_function("frame only", |b| {
            b.iter(|| run(black_box(&data), keep_all, false))
        });
        g.finish();
    }
}

criterion_group!(benches, bench);

/// `READER_BENCH_ITERS=n cargo bench --bench reader` skips criterion and
/// runs each trace n times through frame+parse: on a loaded machine, compare
/// variants with `perf stat -e instructions:u` on that instead of timings.
fn main() {
    if let Some(n) = std::env::var("READER_BENCH_ITERS")
        .ok()
        .and_then(|n| n.parse::<usize>().ok())
    {
        let name = std::env::var("READER_BENCH_TRACE")
            .unwrap_or_else(|_| "dovecot-fetch-meta.trace".to_owned());
        let data = trace(&name);
        let sum: usize = (0..n)
            .map(|_| run(black_box(&data), FramerLimits::default(), true))
            .sum();
        eprintln!("{name}: {n} runs, checksum {sum}");
        return;
    }
    benches();
    Criterion::default().configure_from_args().final_summary();
}
