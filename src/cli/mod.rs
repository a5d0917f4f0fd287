//! The command line: the legacy `key=value` form of ImapTest plus subcommands.
//!
//! [`parse`] reads the arguments (without `argv[0]`) left to right, like the C tool:
//! each is a bare word or `key=value` split at the first `=`, matched in this order:
//! the keys `secs` and `seed`; the bare `-`; a state name (`fetch2`, `Fet2=50,10`);
//! the boolean flags (exact bare words); the other `key=value` options. Later arguments
//! override earlier ones. After the last argument [`finalize()`] applies the fix-ups of
//! the probability table and checks what needs all arguments together.
//!
//! Every key and flag lives in one table, [`KEYS`], which both the parser and
//! [`usage()`] read.

mod analysis;
mod draft;
mod error;
mod finalize;
mod keys;
mod suggest;
mod usage;

#[cfg(test)]
mod tests;

use std::path::PathBuf;

use crate::states::{STATES, State};

pub use analysis::{CAPACITY_USAGE, COMPARE_USAGE, REPORT_USAGE};
pub use draft::{Draft, MODE_KEYS, ModeKind, modes_of};
pub use error::{CliError, Suggestion};
pub use finalize::{TEST_MAILBOX, finalize};
pub use keys::{Group, KEYS, KeySpec, Kind, MBOX_GEN_KEYS, MBOX_GEN_USAGE};
pub use usage::usage;

use error::shown;
use keys::{Arg, Builder, Seen};

/// What the command line asks for.
#[derive(Debug, Clone, PartialEq)]
pub enum Command {
    /// A run: stress test, scripted tests (`test=`) or a profile (`profile=`), as
    /// [`crate::config::Settings::mode`] says.
    Run(Box<crate::config::Settings>),
    /// `imaptest mbox-gen out=FILE [count=N] [seed=S]`: write a test mbox.
    MboxGen {
        out: PathBuf,
        count: usize,
        seed: u64,
        /// Replace an existing file (else it is refused).
        overwrite: bool,
    },
    /// `imaptest client SCRIPT …`: a conversation client script (its own arguments).
    Client(Vec<String>),
    /// `imaptest server SCRIPT …`: a scriptable server (its own arguments).
    Server(Vec<String>),
    /// `imaptest schema [profile|summary|capacity|compliance]`: a JSON Schema on stdout.
    Schema(SchemaKind),
    /// `imaptest profile convert FILE [out=FILE] [overwrite]`: a profile as TOML.
    ProfileConvert { file: PathBuf, out: DocumentOut },
    /// `imaptest profile fit LOG… [base=PROFILE] [out=FILE] [overwrite]`: a profile
    /// fitted to a server's logs (its own arguments).
    ProfileFit(Vec<String>),
    /// `imaptest merge SUMMARY.json|DIR… [out=FILE] [overwrite]`: the summaries of a
    /// sharded run's shards as one summary (a directory gives its `*.json` files).
    Merge {
        inputs: Vec<PathBuf>,
        out: DocumentOut,
    },
    /// `imaptest capacity profile=FILE slo=…`: the most users the server holds.
    Capacity(Box<crate::capacity::CapacitySettings>),
    /// `imaptest report FILE… [out=FILE] [overwrite]`: summaries as one HTML report.
    Report {
        inputs: Vec<PathBuf>,
        out: DocumentOut,
    },
    /// `imaptest compare BASE NEW [tolerance=…]`: a judged comparison of two runs.
    Compare {
        base: PathBuf,
        new: PathBuf,
        tolerance: crate::compare::Tolerance,
    },
    /// `imaptest compliance host=… …`: the compliance battery (its own arguments).
    Compliance(Vec<String>),
    /// `-h`, `--help` or `help`: print [`usage()`].
    Help,
    /// `--version` or `-V`.
    Version,
}

/// Which schema `imaptest schema` prints.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SchemaKind {
    Profile,
    Summary,
    Capacity,
    Compliance,
}

/// Where a subcommand writes its document: `out=FILE` (an existing file only with
/// `overwrite`), or stdout.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct DocumentOut {
    pub path: Option<PathBuf>,
    pub overwrite: bool,
}

/// Usage of `imaptest merge`.
pub const MERGE_USAGE: &str = "imaptest merge SUMMARY.json|DIR... [out=FILE] [overwrite]";

/// Usage of `imaptest profile …`.
pub const PROFILE_USAGE: &str = "imaptest profile convert FILE [out=FILE] [overwrite] | imaptest profile fit LOG... [base=PROFILE] [out=FILE]";

/// Default `count=` of `mbox-gen`.
pub const MBOX_GEN_DEFAULT_COUNT: usize = 1000;
/// Default `seed=` of `mbox-gen`.
pub const MBOX_GEN_DEFAULT_SEED: u64 = 1;

/// The environment the parser reads defaults from.
#[derive(Debug, Clone, Default)]
pub(crate) struct Env {
    /// `$HOME`.
    pub home: Option<PathBuf>,
    /// `$USER`.
    pub user: Option<String>,
    /// `$IMAPTEST_PASS`: the password when neither `pass=` nor `pass_file=` gives one.
    pub pass: Option<String>,
    /// `$IMAPTEST_MASTER_PASS`: with `master=`, the master user's password.
    pub master_pass: Option<String>,
    /// `$JOB_COMPLETION_INDEX` and `$IMAPTEST_SHARDS`: the shard when `shard=` is not
    /// given (see [`crate::shard`]).
    pub job_index: Option<String>,
    pub shards: Option<String>,
}

impl Env {
    fn from_process() -> Env {
        Env {
            home: std::env::var_os("HOME")
                .filter(|h| !h.is_empty())
                .map(PathBuf::from),
            user: std::env::var("USER").ok(),
            pass: std::env::var(crate::secrets::PASS_ENV).ok(),
            master_pass: std::env::var(crate::secrets::MASTER_PASS_ENV).ok(),
            job_index: std::env::var(crate::shard::INDEX_ENV).ok(),
            shards: std::env::var(crate::shard::SHARDS_ENV).ok(),
        }
    }
}

/// Parses the command line (without `argv[0]`).
///
/// `-h`, `--help`, `help`, `-V` and `--version` anywhere win over everything else;
/// `mbox-gen` must be the first argument.
pub fn parse<I: IntoIterator<Item = String>>(args: I) -> Result<Command, CliError> {
    let args: Vec<String> = args.into_iter().collect();
    parse_with_env(&args, &Env::from_process())
}

/// Like [`parse`], for arguments as the OS gives them (`std::env::args_os().skip(1)`):
/// an argument that is not valid UTF-8 is an error instead of a panic.
pub fn parse_os<I: IntoIterator<Item = std::ffi::OsString>>(args: I) -> Result<Command, CliError> {
    let args = args
        .into_iter()
        .map(|arg| {
            arg.into_string().map_err(|arg| CliError::NotUnicode {
                arg: shown(&arg.to_string_lossy()),
            })
        })
        .collect::<Result<Vec<String>, CliError>>()?;
    parse(args)
}

pub(crate) fn parse_with_env(args: &[String], env: &Env) -> Result<Command, CliError> {
    // Conversation scripts have arguments (and help) of their own.
    match args.split_first() {
        Some((first, rest)) if first == "client" => return Ok(Command::Client(rest.to_vec())),
        Some((first, rest)) if first == "server" => return Ok(Command::Server(rest.to_vec())),
        Some((first, rest)) if first == "compliance" => {
            return Ok(Command::Compliance(rest.to_vec()));
        }
        _ => {}
    }
    for arg in args {
        match arg.as_str() {
            "-h" | "--help" | "help" => return Ok(Command::Help),
            "-V" | "--version" => return Ok(Command::Version),
            _ => {}
        }
    }
    if let Some((first, rest)) = args.split_first() {
        match first.as_str() {
            "mbox-gen" => return parse_mbox_gen(rest, env),
            "merge" => return parse_merge(rest, env),
            "schema" => {
                return match rest {
                    [] => Ok(Command::Schema(SchemaKind::Profile)),
                    [kind] if kind == "profile" => Ok(Command::Schema(SchemaKind::Profile)),
                    [kind] if kind == "summary" => Ok(Command::Schema(SchemaKind::Summary)),
                    [kind] if kind == "capacity" => Ok(Command::Schema(SchemaKind::Capacity)),
                    [kind] if kind == "compliance" => Ok(Command::Schema(SchemaKind::Compliance)),
                    _ => Err(CliError::Usage {
                        usage: "imaptest schema [profile|summary|capacity|compliance]",
                    }),
                };
            }
            "capacity" => return analysis::parse_capacity(rest, env),
            // A bare `report` is the key without its value (`report=FILE`).
            "report" if !rest.is_empty() => return analysis::parse_report(rest, env),
            "compare" => return analysis::parse_compare(rest, env),
            // `profile=FILE` is a key; `profile convert …` the subcommand.
            "profile" if rest.first().is_some_and(|a| !a.contains('=')) => {
                return parse_profile_subcommand(rest, env);
            }
            _ => {}
        }
    }

    let mut draft = parse_draft(args, env)?;
    if draft.settings.shard.is_none()
        && let Some(shard) =
            crate::shard::Shard::from_env(env.job_index.as_deref(), env.shards.as_deref())?
    {
        if draft.settings.mode_kind() == ModeKind::Scripted {
            return Err(CliError::ShardedScripted {
                var: crate::shard::SHARDS_ENV,
            });
        }
        draft.settings.shard = Some(shard);
    }
    draft
        .settings
        .into_settings(&draft.seen.given, args.to_vec())
        .map(|s| Command::Run(Box::new(s)))
}

/// A parsed and fixed-up command line.
pub(crate) struct Parsed {
    pub settings: Draft,
    pub seen: Seen,
}

/// Parses the legacy `key=value` arguments and applies the fix-ups, before the mode's
/// settings are built.
pub(crate) fn parse_draft(args: &[String], env: &Env) -> Result<Parsed, CliError> {
    let mut settings = Draft::default();
    settings.user.template = env.user.clone().unwrap_or_default();
    settings.mbox = match &env.home {
        Some(home) => home.join("mail/dovecot-crlf"),
        None => PathBuf::from("dovecot-crlf"),
    };
    let mut builder = Builder {
        settings,
        seen: Seen::default(),
        home: env.home.clone(),
    };
    for raw in args {
        parse_one(&mut builder, raw)?;
    }
    let Builder {
        mut settings, seen, ..
    } = builder;
    settings.tls.mode = match (seen.starttls, seen.ssl) {
        (true, _) => crate::config::TlsMode::StartTls,
        (false, Some(_)) => crate::config::TlsMode::Implicit,
        (false, None) => crate::config::TlsMode::Plain,
    };
    settings.tls.accept_any_cert = seen.ssl == Some(true);
    let pass_given = seen
        .given
        .iter()
        .any(|key| *key == "pass" || *key == "pass_file");
    if !pass_given {
        let from_env =
            crate::secrets::from_env(settings.user.master.is_some(), |name| match name {
                crate::secrets::PASS_ENV => env.pass.clone(),
                _ => env.master_pass.clone(),
            });
        if let Some(password) = from_env {
            settings.user.password = password;
        }
    }
    finalize::finalize_with(&mut settings, &seen)?;
    Ok(Parsed { settings, seen })
}

/// Applies one argument.
fn parse_one(builder: &mut Builder, raw: &str) -> Result<(), CliError> {
    let (name, value) = match raw.split_once('=') {
        Some((name, value)) => (name, Some(value)),
        None => (raw, None),
    };
    let arg = Arg { raw, value };
    // 1. `secs` and `seed` come first, as upstream.
    if name == "secs" || name == "seed" {
        return apply_key(builder, name, arg);
    }
    // 2. The bare `-`.
    if raw == "-" {
        builder.seen.given.push("state");
        builder
            .settings
            .probabilities
            .clear_between_login_and_logout();
        return Ok(());
    }
    // 3. A state name.
    if let Some(state) = State::from_name(name) {
        builder.seen.given.push("state");
        return apply_state(builder, state, name, arg);
    }
    // 4 and 5. Flags and key=value options.
    if keys::find(name).is_some() {
        return apply_key(builder, name, arg);
    }
    if name == "mbox-gen" {
        return Err(CliError::MisplacedSubcommand {
            name: "mbox-gen",
            usage: MBOX_GEN_USAGE,
        });
    }
    Err(CliError::UnknownArgument {
        arg: shown(raw),
        suggestion: Suggestion(suggest::suggest(name, candidates()).map(str::to_owned)),
    })
}

/// Every name an argument can start with: keys, flags, then state names.
fn candidates() -> impl Iterator<Item = &'static str> {
    KEYS.iter()
        .map(|k| k.name)
        .chain(STATES.iter().flat_map(|s| [s.name, s.short]))
}

fn apply_key(builder: &mut Builder, name: &str, arg: Arg<'_>) -> Result<(), CliError> {
    let Some(spec) = keys::find(name) else {
        return Err(CliError::UnknownArgument {
            arg: shown(arg.raw),
            suggestion: Suggestion::default(),
        });
    };
    match (spec.kind, arg.value) {
        (Kind::Flag, Some(_)) => {
            return Err(CliError::UnexpectedValue {
                flag: spec.name.to_owned(),
                arg: shown(arg.raw),
            });
        }
        (Kind::Value, None | Some("")) => {
            return Err(CliError::MissingValue {
                arg: shown(arg.raw),
                key: spec.name.to_owned(),
                hint: spec.hint.to_owned(),
            });
        }
        (Kind::FlagOrValue, Some("")) => {
            return Err(CliError::EmptyOptionalValue {
                arg: shown(arg.raw),
                key: spec.name.to_owned(),
                hint: spec.hint.to_owned(),
            });
        }
        _ => {}
    }
    builder.seen.given.push(spec.name);
    (spec.apply)(builder, arg)
}

/// Expected form of a probability, for error texts.
const PERCENT: &str = "a percentage from 0 to 255 (100 or more means always)";

/// `name`, `name=P` or `name=P,Q`.
fn apply_state(
    builder: &mut Builder,
    state: State,
    name: &str,
    arg: Arg<'_>,
) -> Result<(), CliError> {
    let (probability, again) = match arg.value {
        None => (100, None),
        Some("") => {
            return Err(CliError::MissingValue {
                arg: shown(arg.raw),
                key: shown(name),
                hint: "PERCENT[,AGAIN]".to_owned(),
            });
        }
        Some(value) => {
            let (p, q) = match value.split_once(',') {
                Some((p, q)) => (p, Some(q)),
                None => (value, None),
            };
            let p: u8 = keys::parse_unsigned(arg, "probability", p)
                .map_err(|_| keys::invalid_value(arg, "probability", p, PERCENT))?;
            let q = match q {
                None => None,
                Some(q) => Some(
                    keys::parse_unsigned::<u8>(arg, "again probability", q)
                        .map_err(|_| keys::invalid_value(arg, "again probability", q, PERCENT))?,
                ),
            };
            (p, q)
        }
    };
    builder
        .settings
        .probabilities
        .set(state, probability, again);
    Ok(())
}

/// `profile convert FILE [out=FILE] [overwrite]` (arguments after `profile`).
fn parse_profile_subcommand(args: &[String], env: &Env) -> Result<Command, CliError> {
    let usage = || CliError::Usage {
        usage: PROFILE_USAGE,
    };
    let Some((verb, rest)) = args.split_first() else {
        return Err(usage());
    };
    if verb == "fit" {
        return Ok(Command::ProfileFit(rest.to_vec()));
    }
    if verb != "convert" {
        return Err(usage());
    }
    let (files, out) = document_args(rest, env).ok_or_else(usage)?;
    let [file] = <[PathBuf; 1]>::try_from(files).map_err(|_| usage())?;
    Ok(Command::ProfileConvert { file, out })
}

/// `merge SUMMARY.json|DIR… [out=FILE] [overwrite]` (arguments after `merge`).
fn parse_merge(args: &[String], env: &Env) -> Result<Command, CliError> {
    let usage = || CliError::Usage { usage: MERGE_USAGE };
    let (inputs, out) = document_args(args, env).ok_or_else(usage)?;
    if inputs.is_empty() {
        return Err(usage());
    }
    Ok(Command::Merge { inputs, out })
}

/// The arguments of a subcommand that reads files and writes a document: the files,
/// `out=FILE` and `overwrite`; None for anything else.
fn document_args(args: &[String], env: &Env) -> Option<(Vec<PathBuf>, DocumentOut)> {
    let mut files = Vec::new();
    let mut out = DocumentOut::default();
    for raw in args {
        match raw.split_once('=') {
            Some(("out", path)) if !path.is_empty() => {
                out.path = Some(keys::expand_home(path, env.home.as_deref()));
            }
            None if raw == "overwrite" => out.overwrite = true,
            None if !raw.is_empty() => files.push(keys::expand_home(raw, env.home.as_deref())),
            _ => return None,
        }
    }
    Some((files, out))
}

/// `mbox-gen out=FILE [count=N] [seed=S] [overwrite]` (arguments after `mbox-gen`).
fn parse_mbox_gen(args: &[String], env: &Env) -> Result<Command, CliError> {
    let mut out = None;
    let mut count = MBOX_GEN_DEFAULT_COUNT;
    let mut seed = MBOX_GEN_DEFAULT_SEED;
    let mut overwrite = false;
    for raw in args {
        if raw == "overwrite" {
            overwrite = true;
            continue;
        }
        let (name, value) = match raw.split_once('=') {
            Some((name, value)) => (name, Some(value)),
            None => (raw.as_str(), None),
        };
        let Some(&(key, hint, _, _)) = MBOX_GEN_KEYS.iter().find(|k| k.0 == name) else {
            let names = MBOX_GEN_KEYS.iter().map(|k| k.0);
            return Err(CliError::UnknownMboxGenArgument {
                arg: shown(raw),
                suggestion: Suggestion(suggest::suggest(name, names).map(str::to_owned)),
                usage: MBOX_GEN_USAGE,
            });
        };
        let value = match value {
            Some(v) if !v.is_empty() => v,
            _ => {
                return Err(CliError::MissingValue {
                    arg: shown(raw),
                    key: key.to_owned(),
                    hint: hint.to_owned(),
                });
            }
        };
        let arg = Arg {
            raw,
            value: Some(value),
        };
        match key {
            "out" => out = Some(keys::expand_home(value, env.home.as_deref())),
            "count" => {
                count = keys::parse_unsigned(arg, "mbox-gen count", value)?;
                if count == 0 {
                    return Err(keys::invalid(
                        arg,
                        "mbox-gen count",
                        "a whole number of at least 1",
                    ));
                }
            }
            _ => seed = keys::parse_unsigned(arg, "mbox-gen seed", value)?,
        }
    }
    let out = out.ok_or(CliError::MboxGenMissingOut {
        usage: MBOX_GEN_USAGE,
    })?;
    Ok(Command::MboxGen {
        out,
        count,
        seed,
        overwrite,
    })
}
