//! Fuzzes the response reader: arbitrary bytes, split into arbitrary chunks,
//! go through the framer; every framed response is parsed. Checks that
//! nothing panics, the framer always consumes its input, and framing does
//! not depend on how the input was chunked.
#![no_main]

use bytes::BytesMut;
use libfuzzer_sys::fuzz_target;

mod imap;

use imap::framer::{FrameError, Framer, FramerLimits};

#[derive(Debug, PartialEq)]
enum Out {
    Resp(Vec<u8>, usize),
    Err(FrameError),
}

/// Feeds `input` in chunks of `chunks[i] + 1` bytes (cycling), or all at
/// once when `chunks` is empty.
fn run(input: &[u8], limits: FramerLimits, chunks: &[u8]) -> Vec<Out> {
    let mut framer = Framer::new(limits);
    let mut buf = BytesMut::new();
    let mut out = Vec::new();
    let mut rest = input;
    let mut sizes = chunks.iter().cycle();
    while !rest.is_empty() {
        let n = match sizes.next() {
            Some(&s) => (usize::from(s) + 1).min(rest.len()),
            None => rest.len(),
        };
        let (chunk, tail) = rest.split_at(n);
        rest = tail;
        buf.extend_from_slice(chunk);
        // Each call consumes a response or error, or asks for more; bound
        // the calls so a framer that stops making progress is caught.
        let (mut calls, limit) = (0usize, buf.len() + 2);
        loop {
            calls += 1;
            assert!(calls <= limit, "framer made no progress");
            match framer.next_response(&mut buf) {
                Ok(Some(r)) => {
                    assert!(r.len() >= r.bytes().len());
                    let _ = r.first_line();
                    let _ = r.tag();
                    if let Err(e) = r.parse() {
                        let _ = e.to_string();
                    }
                    out.push(Out::Resp(r.bytes().to_vec(), r.len()));
                }
                Ok(None) => break,
                Err(e) => {
                    let _ = e.to_string();
                    out.push(Out::Err(e));
                }
            }
        }
    }
    if let Err(e) = framer.finish(&mut buf) {
        let _ = e.to_string();
        out.push(Out::Err(e));
    }
    assert!(buf.is_empty());
    assert!(framer.is_idle());
    out
}

fuzz_target!(|data: &[u8]| {
    // Header: 2 bytes of limits, 4 bytes of chunk sizes; the rest is the stream.
    let (header, input) = data.split_at(data.len().min(6));
    let h = |i: usize| header.get(i).copied().unwrap_or(0);
    let limits = FramerLimits {
        max_line: 200 + usize::from(h(0)),
        max_literal: usize::from(h(1) % 64),
    };
    let chunks = [h(2), h(3), h(4), h(5)];
    // The tokenizer on its own, on unframed bytes (literals may be cut).
    if let Ok(r) = imap::response::parse(input) {
        let _ = format!("{r:?}");
    }
    let whole = run(input, limits, &[]);
    let split = run(input, limits, &chunks);
    assert_eq!(whole, split, "framing depends on chunking");
});
