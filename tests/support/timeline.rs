//! Reading a `csv=` timeline back: rows by column name, per-command sums.
#![allow(dead_code)]

use std::collections::{BTreeMap, HashMap};
use std::path::Path;

/// One row, by column name.
pub type Row = HashMap<String, String>;

/// Every row of the timeline at `path`.
pub fn rows(path: &Path) -> Vec<Row> {
    let mut reader = csv::Reader::from_path(path)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
    let headers = reader.headers().expect("header row").clone();
    reader
        .records()
        .map(|record| {
            let record = record.expect("well-formed row");
            headers
                .iter()
                .map(String::from)
                .zip(record.iter().map(String::from))
                .collect()
        })
        .collect()
}

/// A numeric cell; empty counts as 0.
pub fn number(row: &Row, column: &str) -> u64 {
    match row[column].as_str() {
        "" => 0,
        text => text
            .parse()
            .unwrap_or_else(|_| panic!("{column} is not a number in {row:?}")),
    }
}

/// `count_per_s` summed per IMAP command over the `command` rows.
pub fn command_counts(rows: &[Row]) -> BTreeMap<String, u64> {
    let mut sums = BTreeMap::new();
    for row in rows
        .iter()
        .filter(|r| r["kind"] == "command" && r["protocol"] == "imap")
    {
        *sums.entry(row["name"].clone()).or_default() += number(row, "count_per_s");
    }
    sums
}

/// `column` summed over the `connections` rows (e.g. `connects_per_s`).
pub fn connection_sum(rows: &[Row], column: &str) -> u64 {
    rows.iter()
        .filter(|r| r["kind"] == "connections")
        .map(|r| number(r, column))
        .sum()
}
