//! The JSON Schema of the TOML profile, generated from the Rust types.
//!
//! `schemas/profile.schema.json` is this output; a test fails when they differ
//! (regenerate with `IMAPTEST_UPDATE_SCHEMA=1 cargo test --lib profile::schema`).

use schemars::generate::SchemaSettings;

use super::model::Profile;

/// Where the committed schema lives, relative to the crate root.
pub const SCHEMA_PATH: &str = "schemas/profile.schema.json";

/// The schema as pretty JSON with a final newline (draft-07, understood by Taplo /
/// Even Better TOML).
pub fn profile_schema_json() -> String {
    let generator = SchemaSettings::draft07().into_generator();
    let schema = generator.into_root_schema_for::<Profile>();
    let mut text = serde_json::to_string_pretty(&schema).expect("a schema serialises");
    text.push('\n');
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn committed_schema_is_current() {
        crate::schema_drift::assert_committed(
            SCHEMA_PATH,
            &profile_schema_json(),
            &format!(
                "profile types; regenerate it with\n    IMAPTEST_UPDATE_SCHEMA=1 cargo test --lib profile::schema\n(or `imaptest schema > {SCHEMA_PATH}`)"
            ),
        );
    }
}
