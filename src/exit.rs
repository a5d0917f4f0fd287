//! The exit statuses, one table for every mode and subcommand. New features add rows;
//! a status never changes its meaning.
//!
//! | status | meaning |
//! |---|---|
//! | 0 | the run did what was asked and met every SLO |
//! | 1 | interrupted: SIGINT, SIGTERM or SIGHUP (the C tool's 1), or `disconnect_quit` |
//! | 2 | errors: `error_quit` stopped the run, or scripted tests failed (the C tool's 2) |
//! | 3 | an SLO was breached |
//! | 4 | nothing worked: no connection ever logged in, or no delivery was accepted |
//! | 5 | an output (CSV, summary, results file, report) could not be written |
//! | 6 | `imaptest compare`: the new run regressed beyond the tolerance |
//! | 7 | `imaptest merge`: shards of the run are missing (the merged summary is written, marked incomplete) |
//! | 8 | `imaptest capacity`: the tool, not the server, became the limit (the answer is a lower bound) |
//! | 9 | `imaptest compliance expect=FILE`: the matrix differs from the expected one |
//! | 89 | could not start: bad arguments or input files, unreachable server, refused login (the C tool's 89) |
//!
//! When several apply, the first in this order wins: 89, 5, 4, 2, 7, 1, 8, 3, 6, 9, 0. So a
//! broken output is never hidden by another outcome, a run that never worked is not
//! called interrupted, errors, missing shards and interruptions outrank SLO verdicts
//! (which are partial when a run was cut short), and only a clean run exits 0.

/// The run ended normally and met every SLO.
pub const OK: u8 = 0;
/// Interrupted by a signal, or `disconnect_quit`.
pub const INTERRUPTED: u8 = 1;
/// `error_quit` stopped the run on an error, or scripted tests failed.
pub const ERRORS: u8 = 2;
/// At least one SLO was not met.
pub const SLO_BREACHED: u8 = 3;
/// No connection ever logged in, or no delivery was accepted.
pub const NOTHING_WORKED: u8 = 4;
/// An output file could not be written.
pub const OUTPUT_FAILED: u8 = 5;
/// `imaptest compare`: a regression beyond the tolerance.
pub const REGRESSED: u8 = 6;
/// `imaptest merge`: shards of the run are missing.
pub const SHARDS_MISSING: u8 = 7;
/// `imaptest capacity`: imaptest itself could not keep up before the server failed.
pub const TOOL_LIMITED: u8 = 8;
/// `imaptest compliance expect=FILE`: the measured matrix differs from the expected one.
pub const MATRIX_DIFFERS: u8 = 9;
/// Could not start: bad arguments or input files, unreachable server, refused login.
pub const FATAL: u8 = 89;

/// Statuses from most to least important.
const PRECEDENCE: [u8; 11] = [
    FATAL,
    OUTPUT_FAILED,
    NOTHING_WORKED,
    ERRORS,
    SHARDS_MISSING,
    INTERRUPTED,
    TOOL_LIMITED,
    SLO_BREACHED,
    REGRESSED,
    MATRIX_DIFFERS,
    OK,
];

/// What a status means, in a few words (for reports).
pub fn meaning(status: u8) -> &'static str {
    match status {
        OK => "completed, every SLO met",
        INTERRUPTED => "interrupted",
        ERRORS => "stopped on errors, or scripted tests failed",
        SLO_BREACHED => "an SLO was breached",
        NOTHING_WORKED => "nothing worked: no login, no accepted delivery",
        OUTPUT_FAILED => "an output could not be written",
        REGRESSED => "regressed beyond the tolerance",
        SHARDS_MISSING => "shards of the run are missing",
        TOOL_LIMITED => "the tool, not the server, was the limit",
        MATRIX_DIFFERS => "the compliance matrix differs from the expected one",
        FATAL => "could not start",
        _ => "unknown status",
    }
}

/// The status that wins when both `a` and `b` apply.
pub fn worst(a: u8, b: u8) -> u8 {
    let rank = |s: u8| PRECEDENCE.iter().position(|&p| p == s).unwrap_or(0);
    if rank(a) <= rank(b) { a } else { b }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn precedence() {
        assert_eq!(worst(OK, SLO_BREACHED), SLO_BREACHED);
        assert_eq!(worst(SLO_BREACHED, INTERRUPTED), INTERRUPTED);
        assert_eq!(worst(INTERRUPTED, ERRORS), ERRORS);
        assert_eq!(worst(ERRORS, NOTHING_WORKED), NOTHING_WORKED);
        assert_eq!(worst(OUTPUT_FAILED, NOTHING_WORKED), OUTPUT_FAILED);
        assert_eq!(worst(OUTPUT_FAILED, FATAL), FATAL);
        assert_eq!(worst(SHARDS_MISSING, INTERRUPTED), SHARDS_MISSING);
        assert_eq!(worst(SHARDS_MISSING, ERRORS), ERRORS);
        assert_eq!(worst(OK, OK), OK);
        assert_eq!(worst(TOOL_LIMITED, SLO_BREACHED), TOOL_LIMITED);
        assert_eq!(worst(TOOL_LIMITED, INTERRUPTED), INTERRUPTED);
        // Order of arguments doesn't matter.
        for a in PRECEDENCE {
            for b in PRECEDENCE {
                assert_eq!(worst(a, b), worst(b, a));
            }
        }
    }
}
