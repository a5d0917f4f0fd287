//! Fuzz targets for the input parsers, shared by the stable harness
//! (`tests/fuzz_parsers.rs`) and the cargo-fuzz targets (`fuzz/fuzz_targets/*.rs`).
//! Each takes arbitrary bytes and checks that the parser never panics, that its errors
//! say something, and what must hold for the inputs it accepts; it returns whether the
//! input was accepted (the harness reports how many were).
#![allow(dead_code)]

use std::path::Path;

use imaptest::conversation::script::{ClientScript, ServerScript};
use imaptest::profile::{self, convert, legacy};
use imaptest::scripted::parser;

/// Where parsed files pretend to live: an empty directory, so relative paths in the
/// input (`<<< file`, observed distributions) find nothing of the machine's.
fn base() -> &'static Path {
    static BASE: std::sync::OnceLock<std::path::PathBuf> = std::sync::OnceLock::new();
    BASE.get_or_init(|| {
        let dir = std::env::temp_dir().join(format!("imaptest-fuzz-base-{}", std::process::id()));
        let _ = std::fs::create_dir_all(&dir);
        dir
    })
}

fn text(data: &[u8]) -> String {
    String::from_utf8_lossy(data).into_owned()
}

/// An accepted profile converts to TOML that reads back into the same profile.
fn round_trips(profile: &profile::Profile, name: &str) {
    let toml = convert::to_toml(profile, Some(name));
    let path = base().join("converted.toml");
    let back = profile::from_toml_str(&toml, &path)
        .unwrap_or_else(|e| panic!("the conversion does not read back: {e}\n{toml}"));
    assert_eq!(
        &back, profile,
        "the conversion reads back differently:\n{toml}"
    );
}

/// TOML profiles (`profile=FILE.toml`).
pub fn profile_toml(data: &[u8]) -> bool {
    let path = base().join("fuzz.toml");
    match profile::from_toml_str(&text(data), &path) {
        Ok(p) => {
            round_trips(&p, "fuzz.toml");
            true
        }
        Err(e) => {
            assert!(
                e.to_string().contains("fuzz.toml"),
                "error without the file: {e}"
            );
            false
        }
    }
}

/// Legacy `profile.conf` files.
pub fn legacy_profile(data: &[u8]) -> bool {
    let path = base().join("fuzz.conf");
    match legacy::from_str(&text(data), &path) {
        Ok(loaded) => {
            round_trips(&loaded.profile, "fuzz.conf");
            true
        }
        Err(e) => {
            assert!(
                e.to_string().contains("fuzz.conf"),
                "error without the file: {e}"
            );
            false
        }
    }
}

/// ImapTest scripted-test files (`test=`).
pub fn scripted_test(data: &[u8]) -> bool {
    let path = base().join("fuzz-test");
    let result = parser::parse_bytes(&path, data, base().join("default.mbox"), &|name| {
        name.len() % 2 == 0
    });
    if let Err(e) = &result {
        assert!(
            e.to_string().contains("fuzz-test"),
            "error without the file: {e}"
        );
    }
    result.is_ok()
}

/// Conversation scripts, client side (`imaptest client`).
pub fn conversation_client(data: &[u8]) -> bool {
    let result = ClientScript::parse("fuzz.client", &text(data), base());
    if let Err(e) = &result {
        assert!(
            e.to_string().contains("fuzz.client"),
            "error without the file: {e}"
        );
    }
    result.is_ok()
}

/// Conversation scripts, server side (`imaptest server`).
pub fn conversation_server(data: &[u8]) -> bool {
    let result = ServerScript::parse("fuzz.server", &text(data));
    if let Err(e) = &result {
        assert!(
            e.to_string().contains("fuzz.server"),
            "error without the file: {e}"
        );
    }
    result.is_ok()
}
