//! Reader throughput on a FETCH-heavy trace captured from Dovecot
//! (`tests/data/dovecot-fetch.trace`, see `tests/data/capture_fetch_trace.py`).
//!
//! The trace is fed in 16 KiB reads, as a socket would deliver it.

use std::hint::black_box;

use bytes::BytesMut;
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use imaptest::imap::{FetchItem, Framer, FramerLimits, Response, Untagged};

const READ: usize = 16 * 1024;

fn trace() -> Vec<u8> {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data/dovecot-fetch.trace");
    std::fs::read(path).expect("tests/data/dovecot-fetch.trace")
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
                    other => sum += black_box(&other) as *const _ as usize & 1,
                }
            }
        }
    }
    framer.finish(&mut buf).expect("finish");
    sum
}

fn bench(c: &mut Criterion) {
    let data = trace();
    let responses = {
        let mut f = Framer::new(FramerLimits::default());
        let mut buf = BytesMut::from(&data[..]);
        std::iter::from_fn(|| f.next_response(&mut buf).expect("frame")).count()
    };
    eprintln!("trace: {} bytes, {responses} responses", data.len());
    let mut g = c.benchmark_group("reader");
    g.throughput(Throughput::Bytes(data.len() as u64));
    let default = FramerLimits::default();
    let keep_all = FramerLimits {
        max_line: 1024 * 1024,
        max_literal: 1024 * 1024,
    };
    g.bench_function("frame+parse (32K literal cap)", |b| {
        b.iter(|| run(black_box(&data), default, true))
    });
    g.bench_function("frame+parse (keep all literals)", |b| {
        b.iter(|| run(black_box(&data), keep_all, true))
    });
    g.bench_function("frame only (keep all literals)", |b| {
        b.iter(|| run(black_box(&data), keep_all, false))
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
