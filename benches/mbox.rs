//! Mbox indexing, message hand-out and test mbox generation.

use std::hint::black_box;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use imaptest::mail::{GenerateOptions, Mbox, MessageSource, RandomMessages, generate_mbox};
use rand::SeedableRng;
use rand_xoshiro::Xoshiro256PlusPlus;

fn generated(count: usize) -> Vec<u8> {
    let opts = GenerateOptions {
        count,
        seed: 7,
        ..GenerateOptions::default()
    };
    let mut out = Vec::new();
    generate_mbox(&opts, &mut out).expect("generate");
    out
}

fn benches(c: &mut Criterion) {
    let data = generated(300);
    let lf: Vec<u8> = data.iter().copied().filter(|&b| b != b'\r').collect();

    let mut g = c.benchmark_group("mbox");
    g.sample_size(20);
    g.throughput(Throughput::Bytes(data.len() as u64));
    g.bench_function("index_crlf", |b| {
        b.iter(|| Mbox::from_bytes("bench", black_box(&data)).expect("mbox"))
    });
    g.throughput(Throughput::Bytes(lf.len() as u64));
    g.bench_function("index_lf", |b| {
        b.iter(|| Mbox::from_bytes("bench", black_box(&lf)).expect("mbox"))
    });
    g.finish();

    let mbox = Mbox::from_bytes("bench", &data).expect("mbox");
    let mut rng = Xoshiro256PlusPlus::seed_from_u64(1);
    c.bench_function("mbox_next_message", |b| {
        b.iter(|| black_box(mbox.next_message(&mut rng)))
    });

    let random = RandomMessages::new(10_000);
    c.bench_function("random_next_message_10k", |b| {
        b.iter(|| black_box(random.next_message(&mut rng)))
    });

    let mut g = c.benchmark_group("generate");
    g.sample_size(10);
    g.throughput(Throughput::Elements(100));
    g.bench_function("generate_100", |b| b.iter(|| generated(black_box(100))));
    g.finish();
}

criterion_group!(mail, benches);
criterion_main!(mail);
