//! `imaptest merge` at the edge: the input files (a directory gives its `*.json`), the
//! merge itself ([`crate::summary::merge`]), and what the person running it should
//! know on stderr: missing and incomplete shards, late starts, the SLO verdicts.

use std::path::{Path, PathBuf};

use anyhow::Context;

use crate::summary::RunSummary;
use crate::summary::merge::merge;

/// Reads and merges the summaries; returns the merged summary and the files read.
/// Notes for the person go to stderr.
pub fn merge_files(inputs: &[PathBuf]) -> anyhow::Result<(RunSummary, Vec<PathBuf>)> {
    let files = summary_files(inputs)?;
    let summaries = files
        .iter()
        .map(|file| Ok((file.display().to_string(), RunSummary::read(file)?)))
        .collect::<anyhow::Result<Vec<_>>>()?;
    let merged = merge(&summaries)?;
    if let Some(info) = &merged.merged {
        eprintln!(
            "Merged {} of {} shards ({} seconds)",
            info.shards.len(),
            info.shard_count,
            merged.timeline.seconds.len()
        );
        if !info.missing.is_empty() {
            eprintln!("Warning: missing shards: {}", list(&info.missing));
        }
        for shard in info.shards.iter().filter(|s| !s.complete) {
            eprintln!(
                "Warning: shard {} ({}) did not complete: ended by {:?}",
                shard.index, shard.file, shard.ended_by
            );
        }
        for shard in &info.shards {
            if let Some(late) = shard.started_late_secs.filter(|&l| l >= LATE_NOTE_SECS) {
                eprintln!(
                    "Warning: shard {} ({}) started {late:.1} s after start_at",
                    shard.index, shard.file
                );
            }
        }
    }
    if !merged.slo.is_empty() {
        eprint!("{}", crate::slo::verdict_table(&merged.slo));
    }
    Ok((merged, files))
}

/// A late start worth a note: more than a timer's slack.
const LATE_NOTE_SECS: f64 = 0.5;

fn list(indices: &[u32]) -> String {
    indices
        .iter()
        .map(u32::to_string)
        .collect::<Vec<_>>()
        .join(", ")
}

/// The files to merge: each file as given, each directory's `*.json` files in name
/// order.
fn summary_files(inputs: &[PathBuf]) -> anyhow::Result<Vec<PathBuf>> {
    let mut files = Vec::new();
    for input in inputs {
        if !input.is_dir() {
            files.push(input.clone());
            continue;
        }
        let mut found: Vec<PathBuf> = std::fs::read_dir(input)
            .with_context(|| format!("cannot read {}", input.display()))?
            .filter_map(|entry| entry.ok().map(|e| e.path()))
            .filter(|path| path.is_file() && is_json(path))
            .collect();
        if found.is_empty() {
            anyhow::bail!("{}: no *.json summaries in this directory", input.display());
        }
        found.sort();
        files.extend(found);
    }
    Ok(files)
}

fn is_json(path: &Path) -> bool {
    path.extension().is_some_and(|e| e == "json")
}
