//! Tests only: a committed JSON Schema must be what the types generate today
//! (`IMAPTEST_UPDATE_SCHEMA=1` rewrites it instead).

/// Asserts that `path` (from the repository root) holds `generated`; `hint` says
/// which types it comes from and how to regenerate it.
pub(crate) fn assert_committed(path: &str, generated: &str, hint: &str) {
    let file = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(path);
    if std::env::var_os("IMAPTEST_UPDATE_SCHEMA").is_some() {
        std::fs::write(&file, generated).unwrap();
    }
    let committed = std::fs::read_to_string(&file).unwrap_or_default();
    assert!(
        committed == generated,
        "{path} is out of date with the {hint}"
    );
}
