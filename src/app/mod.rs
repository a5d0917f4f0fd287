//! The application edge: turns settings into a running mode through the one run
//! [`pipeline`] (engine → aggregator → sinks → summary, SLO verdicts, exit status),
//! handles signals and the run clock. One module per mode.

pub mod analysis;
mod capacity;
pub mod merge;
pub mod pipeline;
mod profile;
mod scripted;
mod stress;

use std::process::ExitCode;

use anyhow::Context;

use crate::config::{Common, Mode, Settings};
use crate::imap::client::ImapClient;
use crate::metrics::Sink;
use crate::ops::Op;
use crate::report::{CsvTimeline, ResultsFile};
use crate::states::State;
use crate::summary::ServerInfo;

pub use crate::exit;

/// The runtime a run needs. Stress mode and scripted tests run on one thread, as the
/// C tool does: per command the work is small next to the system calls, and one
/// thread saves the cross-thread wake-ups a work-stealing pool pays on every reply
/// (context switches per command drop from ~0.6 to ~0.35; CPU per command by ~10 %).
/// Profile mode keeps the multi-threaded pool (its scheduler hands work across tasks).
pub fn runtime(settings: &Settings) -> std::io::Result<tokio::runtime::Runtime> {
    if matches!(settings.mode, Mode::Profile(_)) {
        tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build()
    } else {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
    }
}

/// Runs the mode the settings select and returns the exit status.
pub async fn run(settings: Settings) -> anyhow::Result<ExitCode> {
    // Every output is checked against the inputs before the first connection.
    guard_outputs(&settings)?;
    let Settings { common, mode } = settings;
    let status = match mode {
        Mode::Stress(stress) => stress::run(common, stress).await?,
        Mode::Scripted(scripted) => scripted::run(common, scripted).await?,
        Mode::Profile(profile) if profile.dry_run => profile::plan(&common, &profile)?,
        Mode::Profile(profile) => profile::run(common, profile).await?,
    };
    Ok(ExitCode::from(status))
}

/// `imaptest capacity`: searches for the most users the server holds at its SLOs.
pub async fn capacity(settings: crate::capacity::CapacitySettings) -> anyhow::Result<ExitCode> {
    Ok(ExitCode::from(capacity::run(settings).await?))
}

/// The sinks of a run: the console, then the `csv=` timeline and the `output=` results
/// file when asked for. Files are created here, before the run starts.
/// `ops` are the ops the run can perform (the CSV gives each a row every second).
fn sinks(
    common: &Common,
    console: Box<dyn Sink>,
    columns: Vec<State>,
    ops: Vec<Op>,
    profile: bool,
) -> anyhow::Result<Vec<Box<dyn Sink>>> {
    let mut sinks: Vec<Box<dyn Sink>> = vec![console];
    if let Some(path) = &common.outputs.csv {
        let server = common.server_usage.is_some();
        let csv = CsvTimeline::create(path, common.outputs.csv_format, ops, server)?;
        sinks.push(Box::new(if profile {
            csv.with_profile_rows()
        } else {
            csv
        }));
    }
    if let Some(path) = &common.outputs.output {
        sinks.push(Box::new(ResultsFile::create(path, columns)?));
    }
    Ok(sinks)
}

/// Refuses outputs that would destroy an input or another output, or replace an
/// existing file without `overwrite`, and shows each output writable (see
/// [`crate::output_guard`]).
fn guard_outputs(settings: &Settings) -> anyhow::Result<()> {
    use crate::output_guard::OutputGuard;
    let common = &settings.common;
    let mut guard = OutputGuard::new();
    if let Some(path) = &common.user.userfile {
        guard.input("userfile", path);
    }
    if let Some(path) = &common.tls.ca_file {
        guard.input("ssl_ca_file", path);
    }
    let outputs = &common.outputs;
    for (key, path) in [
        ("csv", &outputs.csv),
        ("output", &outputs.output),
        ("summary", &outputs.summary),
    ] {
        if let Some(path) = path {
            guard.output(key, path);
        }
    }
    if let Some(dir) = &common.rawlog {
        guard.rawlog_dir(dir);
    }
    match &settings.mode {
        Mode::Stress(stress) => {
            if stress.random_msg_size == 0 {
                guard.input("mbox", &stress.mbox);
            }
        }
        Mode::Scripted(scripted) => {
            guard.input("test", &scripted.path);
            if let Some(path) = &scripted.junit {
                guard.output("junit", path);
            }
        }
        Mode::Profile(profile) => {
            guard.input("profile", &profile.path);
            if profile.random_msg_size == 0 {
                guard.input("mbox", &profile.mbox);
            }
            if let Some(path) = &profile.session_csv {
                guard.output("session_csv", path);
            }
            if profile.dry_run {
                let plan = profile.plan.clone().unwrap_or_else(|| "plan.csv".into());
                guard.output("plan", plan);
            }
        }
    }
    // The files the check creates are the ones the sinks open next.
    let _checked = guard.check(common.overwrite)?;
    Ok(())
}

/// What an IMAP server says about itself: greeting, capabilities and, when it offers
/// ID (RFC 2971), its ID reply.
async fn server_info_imap(client: &mut ImapClient, address: String) -> ServerInfo {
    let mut info = ServerInfo {
        address,
        greeting: crate::text::inert(client.greeting(), 500),
        capabilities: client.capabilities().names().map(str::to_owned).collect(),
        id: Default::default(),
    };
    if client.capabilities().has("ID")
        && let Ok(done) = client
            .simple("ID (\"name\" \"imaptest\" \"version\" \"0\")")
            .await
    {
        for response in &done.untagged {
            let line = String::from_utf8_lossy(response.first_line()).into_owned();
            if let Some(rest) = line.strip_prefix("* ID ") {
                info.id = parse_id(rest);
            }
        }
    }
    info
}

/// `("name" "Dovecot" "version" "2.3")` → name → Dovecot, version → 2.3.
fn parse_id(list: &str) -> std::collections::BTreeMap<String, String> {
    let strings: Vec<String> = list
        .split('"')
        .skip(1)
        .step_by(2)
        .map(|s| crate::text::inert(s, 200))
        .collect();
    strings
        .chunks(2)
        .filter_map(|pair| match pair {
            [k, v] => Some((k.clone(), v.clone())),
            _ => None,
        })
        .collect()
}

/// Raises the soft open-file limit to the hard limit, so thousands of clients don't
/// run out of descriptors, and warns when even that is below `wanted`.
fn raise_fd_limit(wanted: u64) {
    #[cfg(unix)]
    {
        // SAFETY: getrlimit/setrlimit only read/write the struct we pass.
        let mut limit = libc::rlimit {
            rlim_cur: 0,
            rlim_max: 0,
        };
        if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) } != 0 {
            return;
        }
        if limit.rlim_cur < limit.rlim_max {
            let raised = libc::rlimit {
                rlim_cur: limit.rlim_max,
                rlim_max: limit.rlim_max,
            };
            // SAFETY: as above.
            if unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &raised) } == 0 {
                limit = raised;
            }
        }
        // rlim_t is u64 on Linux but not everywhere.
        #[allow(clippy::useless_conversion)]
        let effective = u64::try_from(limit.rlim_cur).unwrap_or(u64::MAX);
        if effective < wanted {
            eprintln!(
                "Warning: open file limit is {effective}, below the {wanted} descriptors \
                 this many clients need; raise it with ulimit -n"
            );
        }
    }
    #[cfg(not(unix))]
    let _ = wanted;
}

/// `imaptest mbox-gen`: writes a deterministic, realistic test mbox.
pub fn generate_mbox(out: &std::path::Path, count: usize, seed: u64) -> anyhow::Result<ExitCode> {
    use std::io::Write;
    let file =
        std::fs::File::create(out).with_context(|| format!("cannot create {}", out.display()))?;
    let mut writer = std::io::BufWriter::new(file);
    let options = crate::mail::generate::GenerateOptions {
        count,
        seed,
        ..Default::default()
    };
    let stats = crate::mail::generate::generate_mbox(&options, &mut writer)
        .with_context(|| format!("cannot write {}", out.display()))?;
    writer
        .flush()
        .with_context(|| format!("cannot write {}", out.display()))?;
    eprintln!(
        "Wrote {} messages, {} bytes (largest {} bytes) to {}",
        stats.messages,
        stats.bytes,
        stats.max_size,
        out.display()
    );
    Ok(ExitCode::SUCCESS)
}

/// Refuses a document output that is one of `inputs`, or an existing file without
/// `overwrite`.
pub fn check_document_out(
    path: &std::path::Path,
    overwrite: bool,
    inputs: &[&std::path::Path],
) -> anyhow::Result<()> {
    if let Ok(out) = std::fs::canonicalize(path) {
        for input in inputs {
            if std::fs::canonicalize(input).is_ok_and(|i| i == out) {
                anyhow::bail!(
                    "out={} is also an input: refusing to overwrite it",
                    path.display()
                );
            }
        }
        if !overwrite {
            anyhow::bail!(
                "out={} exists: add `overwrite` to replace it",
                path.display()
            );
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    #[test]
    fn id_reply_pairs() {
        let id = super::parse_id(r#"("name" "Dovecot" "version" "2.3.19")"#);
        assert_eq!(id["name"], "Dovecot");
        assert_eq!(id["version"], "2.3.19");
        assert!(super::parse_id("NIL").is_empty());
    }
}
