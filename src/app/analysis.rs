//! The subcommands that read results instead of running: `imaptest report` (summaries
//! or a capacity document → one HTML file) and `imaptest compare` (two summaries →
//! a judged table and an exit status).

use std::path::{Path, PathBuf};

use anyhow::Context;

use crate::capacity::CapacityReport;
use crate::compare::{Tolerance, compare};
use crate::exit;
use crate::report::html::{Input, render};
use crate::summary::RunSummary;

/// A document `imaptest report` can read.
enum Document {
    Run(Box<RunSummary>),
    Capacity(Box<CapacityReport>),
}

fn read_document(path: &Path) -> anyhow::Result<Document> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
    let name = path.display().to_string();
    match crate::capacity::document::format_of(&text).as_deref() {
        Some(crate::capacity::document::FORMAT) => Ok(Document::Capacity(Box::new(
            CapacityReport::parse(&name, &text)?,
        ))),
        _ => Ok(Document::Run(Box::new(RunSummary::parse(&name, &text)?))),
    }
}

/// `imaptest report FILE…`: the HTML of run summaries (overlaid), or of one capacity
/// document.
pub fn report(inputs: &[PathBuf]) -> anyhow::Result<String> {
    let mut runs = Vec::new();
    let mut capacity = None;
    for path in inputs {
        match read_document(path)? {
            Document::Run(summary) => runs.push((file_name(path), summary)),
            Document::Capacity(report) if capacity.is_none() && inputs.len() == 1 => {
                capacity = Some(report);
            }
            Document::Capacity(_) => anyhow::bail!(
                "{}: a capacity document is reported on its own (its steps are its runs)",
                path.display()
            ),
        }
    }
    if let Some(report) = &capacity {
        return Ok(render(&Input::capacity(report)));
    }
    let named = runs.iter().map(|(name, s)| (name.clone(), &**s)).collect();
    Ok(render(&Input::named(named)))
}

fn file_name(path: &Path) -> String {
    path.file_name().map_or_else(
        || path.display().to_string(),
        |n| n.to_string_lossy().into_owned(),
    )
}

/// `imaptest compare BASE NEW`: prints the table; returns the exit status.
pub fn compare_files(base: &Path, new: &Path, tolerance: Tolerance) -> anyhow::Result<u8> {
    let read = |path: &Path| -> anyhow::Result<RunSummary> { Ok(RunSummary::read(path)?) };
    let (b, n) = (read(base)?, read(new)?);
    let comparison = compare(&b, &n, tolerance)
        .map_err(|e| anyhow::anyhow!("{} or {}: {e}", base.display(), new.display()))?;
    print!(
        "{}",
        comparison.to_text(&base.display().to_string(), &new.display().to_string())
    );
    Ok(if comparison.regressed() {
        exit::REGRESSED
    } else {
        exit::OK
    })
}
