//! SCRAM client cost per login: a full exchange (client-first, client-final, verify
//! server-final) against a precomputed in-process server, with a cold key cache
//! (PBKDF2 runs: 4096 iterations) and a warm one (cache hit).
//!
//! The server side per login is one HMAC (its signature) and some formatting; its
//! keys are derived once up front.

use std::hint::black_box;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use criterion::{Criterion, criterion_group, criterion_main};
use hmac::{Hmac, KeyInit, Mac};
use imaptest::sasl::{Credentials, ScramCache, mechanism};
use sha1::Sha1;
use sha2::Sha256;

const ITERATIONS: u32 = 4096;
const SALT: &[u8] = b"0123456789abcdef";
const PASSWORD: &str = "pencil";

fn hmac(sha1: bool, key: &[u8], data: &[u8]) -> Vec<u8> {
    if sha1 {
        let mut m = <Hmac<Sha1> as KeyInit>::new_from_slice(key).unwrap();
        m.update(data);
        m.finalize().into_bytes().to_vec()
    } else {
        let mut m = <Hmac<Sha256> as KeyInit>::new_from_slice(key).unwrap();
        m.update(data);
        m.finalize().into_bytes().to_vec()
    }
}

/// The server's ServerKey for PASSWORD/SALT/ITERATIONS.
fn server_key(sha1: bool) -> Vec<u8> {
    let mut salted = vec![0u8; if sha1 { 20 } else { 32 }];
    if sha1 {
        pbkdf2::pbkdf2_hmac::<Sha1>(PASSWORD.as_bytes(), SALT, ITERATIONS, &mut salted);
    } else {
        pbkdf2::pbkdf2_hmac::<Sha256>(PASSWORD.as_bytes(), SALT, ITERATIONS, &mut salted);
    }
    hmac(sha1, &salted, b"Server Key")
}

/// One complete login; panics if the client does not accept the server.
fn login(name: &str, sha1: bool, server_key: &[u8], cache: &ScramCache) {
    let mut m = mechanism(name, Credentials::new("user", PASSWORD), cache).unwrap();
    let first = m.initial_response().unwrap();
    let first = std::str::from_utf8(&first).unwrap();
    let bare = &first[3..]; // after "n,,"
    let nonce = bare.rsplit_once(",r=").unwrap().1;
    let server_first = format!(
        "r={nonce}3rfcNHYJY1ZVvWVs7j,s={},i={ITERATIONS}",
        B64.encode(SALT)
    );
    let client_final = m.step(server_first.as_bytes()).unwrap();
    let client_final = std::str::from_utf8(&client_final).unwrap();
    let without_proof = client_final.rsplit_once(",p=").unwrap().0;
    let auth = format!("{bare},{server_first},{without_proof}");
    let server_final = format!("v={}", B64.encode(hmac(sha1, server_key, auth.as_bytes())));
    black_box(m.step(server_final.as_bytes()).unwrap());
    m.finish().unwrap();
}

fn bench(c: &mut Criterion) {
    for (name, sha1) in [("SCRAM-SHA-256", false), ("SCRAM-SHA-1", true)] {
        let key = server_key(sha1);
        let mut group = c.benchmark_group(name);
        group.bench_function("cold_cache_4096", |b| {
            b.iter(|| login(name, sha1, &key, &ScramCache::default()))
        });
        let warm = ScramCache::default();
        login(name, sha1, &key, &warm);
        group.bench_function("warm_cache", |b| b.iter(|| login(name, sha1, &key, &warm)));
        group.finish();
    }
}

criterion_group! {
    name = benches;
    config = Criterion::default().sample_size(50);
    targets = bench
}
criterion_main!(benches);
