//! Legacy `profile.conf` files: parse, validate, convert to TOML and back.
//! The target is shared with the stable harness (`tests/fuzz_parsers.rs`).
#![no_main]

use libfuzzer_sys::fuzz_target;

#[path = "../../tests/support/parser_fuzz.rs"]
mod parser_fuzz;

fuzz_target!(|data: &[u8]| {
    parser_fuzz::legacy_profile(data);
});
