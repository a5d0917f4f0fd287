//! Command-line errors: every message is one line that names the offending argument.

use std::fmt;

/// Why the command line was rejected. `Display` gives one line for the user.
#[derive(thiserror::Error, Debug, Clone, PartialEq, Eq)]
pub enum CliError {
    /// An argument that is no key, flag, state name or `-`.
    #[error("unknown argument `{arg}`{suggestion}")]
    UnknownArgument { arg: String, suggestion: Suggestion },
    /// An argument after `mbox-gen` that it does not take.
    #[error("unknown mbox-gen argument `{arg}`{suggestion}: expected {usage}")]
    UnknownMboxGenArgument {
        arg: String,
        suggestion: Suggestion,
        usage: &'static str,
    },
    /// A key that needs a value was given bare (`pass`) or with an empty one (`pass=`).
    #[error("`{arg}` needs a value: {key}={hint}")]
    MissingValue {
        arg: String,
        key: String,
        hint: String,
    },
    /// A key that may be bare or have a value was given an empty one (`ssl=`).
    #[error("`{arg}` needs a value: {key}={hint}, or `{key}` alone")]
    EmptyOptionalValue {
        arg: String,
        key: String,
        hint: String,
    },
    /// A boolean flag given a value (`random=1`).
    #[error("`{flag}` takes no value: write `{flag}` instead of `{arg}`")]
    UnexpectedValue { flag: String, arg: String },
    /// A value that does not parse or is out of range.
    #[error("invalid {what} `{value}` in `{arg}`: expected {expected}")]
    InvalidValue {
        what: &'static str,
        value: String,
        arg: String,
        expected: String,
    },
    /// `ssl=` with something other than `any-cert`.
    #[error("invalid ssl value `{value}`: expected `ssl` or `ssl=any-cert`")]
    InvalidSsl { value: String },
    /// Every state from LIST through LOGOUT has probability 0.
    #[error("invalid probabilities: every state from LIST to LOGOUT is 0")]
    InvalidProbabilities,
    /// No `user=`, no `$USER` and no `userfile=`.
    #[error("missing username: give user=")]
    MissingUsername,
    /// `test=` with a `user=` template containing `%`.
    #[error("user `{user}` contains `%`, which test= does not allow: give a plain user name")]
    PercentInTestUser { user: String },
    /// Both `test=` and `profile=`.
    #[error("`test=` and `profile=` cannot be combined: give one of them")]
    TestAndProfile,
    /// An argument that is not valid UTF-8 (see [`super::parse_os`]).
    #[error("argument `{arg}` is not valid UTF-8")]
    NotUnicode { arg: String },
    /// A subcommand after other arguments.
    #[error("`{name}` must be the first argument: {usage}")]
    MisplacedSubcommand {
        name: &'static str,
        usage: &'static str,
    },
    /// A key the chosen mode does not use.
    #[error("`{key}=` does nothing in {mode}: it needs {needs}")]
    KeyNotInMode {
        key: String,
        mode: &'static str,
        needs: String,
    },
    /// `imaptest capacity` with a key the search sets itself or has no use for.
    #[error("`{key}=` is not for imaptest capacity: {why}")]
    NotInCapacity { key: String, why: &'static str },
    /// `plan=` without `dry_run`.
    #[error("`plan=` writes the plan of a dry run: add `dry_run` (without it the profile runs)")]
    PlanWithoutDryRun,
    /// `mech=` with a mechanism imaptest cannot run.
    #[error(
        "unknown mech `{mech}`: expected LOGIN (the login command), PLAIN, login (SASL LOGIN), SCRAM-SHA-1 or SCRAM-SHA-256"
    )]
    UnknownMech { mech: String },
    /// A bad `slo=` expression.
    #[error("{0}")]
    Slo(#[from] crate::slo::SloError),
    /// A subcommand used wrongly.
    #[error("usage: {usage}")]
    Usage { usage: &'static str },
    /// A bad `start_at=`.
    #[error("start_at: {0}")]
    StartAt(String),
    /// `$IMAPTEST_SHARDS`/`$JOB_COMPLETION_INDEX` wrong or unusable.
    #[error("{0}")]
    Shard(#[from] crate::shard::ShardError),
    /// `$IMAPTEST_SHARDS` set for scripted tests.
    #[error("${var} is set, but scripted tests (test=) cannot be sharded: unset it")]
    ShardedScripted { var: &'static str },
    /// `mbox-gen` without `out=`.
    #[error("`mbox-gen` needs out=FILE: {usage}")]
    MboxGenMissingOut { usage: &'static str },
}

/// The ` (did you mean `x`?)` tail of an unknown-argument message, or nothing.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Suggestion(pub Option<String>);

impl fmt::Display for Suggestion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.0 {
            Some(name) => write!(f, " (did you mean `{name}`?)"),
            None => Ok(()),
        }
    }
}

/// Longest piece of user input quoted in a message, in characters.
const SHOWN_MAX: usize = 120;

/// User input as quoted in a message: control characters escaped (so the message
/// stays on one line) and very long input shortened.
pub(crate) fn shown(input: &str) -> String {
    let mut out = String::with_capacity(input.len().min(SHOWN_MAX + 8));
    for (count, c) in input.chars().enumerate() {
        if count == SHOWN_MAX {
            out.push('…');
            break;
        }
        if c.is_control() {
            out.extend(c.escape_debug());
        } else {
            out.push(c);
        }
    }
    out
}
