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

mod error;
mod finalize;
mod keys;
mod suggest;
mod usage;

#[cfg(test)]
mod tests;

use std::path::PathBuf;

use crate::config::Settings;
use crate::states::{STATES, State};

pub use error::{CliError, Suggestion};
pub use finalize::finalize;
pub use keys::{Group, KEYS, KeySpec, Kind, MBOX_GEN_KEYS, MBOX_GEN_USAGE};
pub use usage::usage;

use error::shown;
use keys::{Arg, Builder, Seen};

/// What the command line asks for.
#[derive(Debug, Clone, PartialEq)]
pub enum Command {
    /// Stress test, scripted tests (`test=`) or profile run (`profile=`): the mode is
    /// decided from [`Settings::test`] and [`Settings::profile`].
    Run(Box<Settings>),
    /// `imaptest mbox-gen out=FILE [count=N] [seed=S]`: write a test mbox.
    MboxGen {
        out: PathBuf,
        count: usize,
        seed: u64,
    },
    /// `-h`, `--help` or `help`: print [`usage()`].
    Help,
    /// `--version` or `-V`.
    Version,
}

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
    for arg in args {
        match arg.as_str() {
            "-h" | "--help" | "help" => return Ok(Command::Help),
            "-V" | "--version" => return Ok(Command::Version),
            _ => {}
        }
    }
    if let Some((first, rest)) = args.split_first()
        && first == "mbox-gen"
    {
        return parse_mbox_gen(rest, env);
    }

    let mut settings = Settings::default();
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
    if !seen.pass {
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
    Ok(Command::Run(Box::new(settings)))
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
        builder
            .settings
            .probabilities
            .clear_between_login_and_logout();
        return Ok(());
    }
    // 3. A state name.
    if let Some(state) = State::from_name(name) {
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

/// `mbox-gen out=FILE [count=N] [seed=S]` (arguments after `mbox-gen`).
fn parse_mbox_gen(args: &[String], env: &Env) -> Result<Command, CliError> {
    let mut out = None;
    let mut count = MBOX_GEN_DEFAULT_COUNT;
    let mut seed = MBOX_GEN_DEFAULT_SEED;
    for raw in args {
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
    Ok(Command::MboxGen { out, count, seed })
}
