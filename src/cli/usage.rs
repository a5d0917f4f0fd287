//! The help text, printed from the key table.

use std::fmt::Write as _;

use crate::states::STATES;

use super::keys::{Group, KEYS, MBOX_GEN_KEYS, MBOX_GEN_USAGE};

/// Column where descriptions start.
const HELP_COLUMN: usize = 26;

/// States per line in the state list.
const STATES_PER_LINE: usize = 4;

/// The help text for `-h`/`--help`/`help`.
pub fn usage() -> String {
    let mut out = String::new();
    out.push_str("Usage: imaptest [options] [states]\n");
    let _ = writeln!(out, "       {MBOX_GEN_USAGE}");
    let _ = writeln!(out, "       {}", super::CAPACITY_USAGE);
    let _ = writeln!(out, "         ({})", super::analysis::CAPACITY_MORE);
    let _ = writeln!(out, "       {}", super::REPORT_USAGE);
    let _ = writeln!(out, "       {}", super::COMPARE_USAGE);
    out.push_str("Arguments are key=value or bare words; later ones override earlier ones.\n");
    for group in Group::ALL {
        let _ = writeln!(out, "\n{}:", group.title());
        for key in KEYS.iter().filter(|k| k.group == group) {
            let help = if key.default.is_empty() {
                key.help.to_owned()
            } else {
                format!("{} [{}]", key.help, key.default)
            };
            line(&mut out, &key.synopsis(), &help);
        }
    }

    out.push_str("\nStates & Probabilities:\n");
    line(
        &mut out,
        "-",
        "Set every state between LOGIN and LOGOUT except SELECT to 0",
    );
    line(&mut out, "STATE", "Run STATE always (probability 100)");
    line(
        &mut out,
        "STATE=P[,Q]",
        "Run STATE with probability P%, and again at once with Q%",
    );
    out.push_str("  STATE is a full or short name in any case; defaults (COPY needs copybox=):\n");
    let cells: Vec<String> = STATES
        .iter()
        .map(|s| {
            let mut cell = format!("{}/{}={}", s.name, s.short, s.probability);
            if s.again != 0 {
                let _ = write!(cell, ",{}", s.again);
            }
            cell
        })
        .collect();
    let width = cells.iter().map(String::len).max().unwrap_or(0) + 2;
    for row in cells.chunks(STATES_PER_LINE) {
        out.push_str("   ");
        for cell in row {
            let _ = write!(out, " {cell:<width$}");
        }
        truncate_trailing_spaces(&mut out);
        out.push('\n');
    }

    out.push_str("\nSubcommands:\n");
    line(&mut out, "mbox-gen", "Write a test mbox and exit:");
    for (name, hint, default, help) in MBOX_GEN_KEYS {
        let help = if default.is_empty() {
            (*help).to_owned()
        } else {
            format!("{help} [{default}]")
        };
        line(&mut out, &format!("  {name}={hint}"), &help);
    }
    line(&mut out, "  overwrite", "Replace an existing FILE");
    line(
        &mut out,
        "client SCRIPT ...",
        "Run a conversation script against a server (imaptest client --help)",
    );
    line(
        &mut out,
        "server SCRIPT ...",
        "Play a scripted server on loopback (imaptest server --help)",
    );
    line(
        &mut out,
        "profile convert FILE",
        "Print a legacy profile.conf (or a TOML profile) as a TOML profile",
    );
    line(
        &mut out,
        "merge SUMMARY.json|DIR ...",
        "Merge the summaries of a sharded run's shards (out=FILE, overwrite)",
    );
    line(&mut out, "schema", "Print the JSON Schema of TOML profiles");
    line(&mut out, "help, -h, --help", "Show this help");
    line(&mut out, "--version, -V", "Show the version");

    out.push_str("\nEnvironment (keeps passwords out of ps; pass= and pass_file= win):\n");
    line(
        &mut out,
        "IMAPTEST_PASS",
        "Password of users without one in the user file",
    );
    line(
        &mut out,
        "IMAPTEST_MASTER_PASS",
        "With master=: the master user's password",
    );
    out
}

/// One `  synopsis   help` line, the help starting at [`HELP_COLUMN`] (or on the next
/// line if the synopsis is too long).
fn line(out: &mut String, synopsis: &str, help: &str) {
    let _ = write!(out, "  {synopsis}");
    let used = synopsis.chars().count() + 2;
    if used + 1 > HELP_COLUMN {
        out.push('\n');
        out.push_str(&" ".repeat(HELP_COLUMN));
    } else {
        out.push_str(&" ".repeat(HELP_COLUMN - used));
    }
    out.push_str(help);
    out.push('\n');
}

fn truncate_trailing_spaces(out: &mut String) {
    let trimmed = out.trim_end_matches(' ').len();
    out.truncate(trimmed);
}
