//! The application edge: turns settings into a running mode, wires engines to sinks,
//! handles signals and the run clock, and decides the exit status.

use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use tokio::sync::watch;

use crate::config::Settings;
use crate::control::RunState;
use crate::engine::stress::{self, StressContext};
use crate::imap::client::{ClientOptions, LoginRequest};
use crate::imap::framer::FramerLimits;
use crate::mail::{Mbox, MessageSource, RandomMessages};
use crate::metrics::{self, Report, Severity, Sink};
use crate::net::Endpoint;
use crate::net::connect::SPREAD_SOURCES_ABOVE;
use crate::report::{Console, CsvTimeline, ResultsFile};
use crate::sasl::ScramCache;
use crate::states::State;
use crate::users::{UserPicker, UserTemplate, read_userfile};

/// Exit statuses (documented in the README).
pub mod exit {
    /// The run ended normally.
    pub const OK: u8 = 0;
    /// Interrupted with SIGINT (Ctrl-C).
    pub const INTERRUPTED: u8 = 1;
    /// `error_quit` stopped the run on an error, or scripted tests failed.
    pub const ERRORS: u8 = 2;
    /// Could not start: bad arguments or input files, unreachable server, refused login.
    pub const FATAL: u8 = 89;
}

/// Runs classic stress mode to the end and returns the exit status.
pub async fn run_stress(settings: Settings) -> anyhow::Result<ExitCode> {
    raise_fd_limit(u64::from(settings.clients) + 100);
    let settings = Arc::new(settings);
    let mut endpoint = Endpoint::resolve(
        &settings.host,
        settings.connect_host(),
        settings.imap_port(),
        &settings.tls,
        settings.timeout,
    )
    .await?;
    endpoint.spread_source_addresses(settings.clients > SPREAD_SOURCES_ABOVE);
    let endpoint = Arc::new(endpoint);
    let users = Arc::new(user_picker(&settings)?);
    let messages = message_source(&settings)?;
    let client_options = ClientOptions {
        limits: FramerLimits {
            max_literal: settings.max_literal,
            ..FramerLimits::default()
        },
        timeout: settings.timeout,
        rawlog_dir: settings.rawlog.clone(),
    };
    let scram_cache = ScramCache::default();
    preflight(&settings, &endpoint, &users, &scram_cache, &client_options).await?;

    let (metrics, aggregator) = metrics::channel(sinks(&settings)?);
    let aggregator = tokio::spawn(aggregator.run());

    let (state_tx, state_rx) = watch::channel(RunState::Running);
    let ctx = Arc::new(StressContext {
        settings: settings.clone(),
        endpoint,
        users,
        messages,
        scram_cache,
        metrics: metrics.clone(),
        client_options,
        quit: std::sync::atomic::AtomicBool::new(false),
        tracking: crate::tracking::Registry::new(),
    });
    let engine = tokio::spawn(stress::run(ctx.clone(), state_rx));
    let run_for = settings.secs.map(|s| s.run);
    let (status, _) = supervise(&settings, run_for, &metrics, &state_tx, engine, &ctx.quit).await;
    drop(metrics);
    // The context holds a metrics handle too; the aggregator ends when all are gone.
    drop(ctx);
    let _totals = aggregator.await.context("metrics aggregator failed")?;
    Ok(ExitCode::from(status))
}

/// The sinks of a stress run: the console, plus the `csv=` timeline and the `output=`
/// results file when asked for. Files are created here, before the run starts.
fn sinks(settings: &Settings) -> anyhow::Result<Vec<Box<dyn Sink>>> {
    let columns =
        Console::<std::io::Stdout, std::io::Stderr>::visible_columns(&settings.probabilities);
    let mut sinks: Vec<Box<dyn Sink>> = vec![Box::new(Console::stdio(
        columns.clone(),
        Some(settings.probabilities.clone()),
        u64::from(settings.clients),
    ))];
    if let Some(path) = &settings.csv {
        sinks.push(Box::new(CsvTimeline::create(path)?));
    }
    if let Some(path) = &settings.output {
        sinks.push(Box::new(ResultsFile::create(path, columns)?));
    }
    Ok(sinks)
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

/// Watches the clock, signals and `error_quit` while the engine runs; stops the run
/// after `run_for` (None: the engine ends by itself). Returns the exit status and the
/// engine's result (None if it failed).
async fn supervise<T>(
    settings: &Settings,
    run_for: Option<Duration>,
    metrics: &metrics::Metrics,
    state_tx: &watch::Sender<RunState>,
    mut engine: tokio::task::JoinHandle<T>,
    quit: &std::sync::atomic::AtomicBool,
) -> (u8, Option<T>) {
    let mut status = exit::OK;
    let grace = settings
        .secs
        .map_or(Duration::from_secs(30), |s| s.stop_grace);
    let deadline = run_for.map(|d| tokio::time::Instant::now() + d);
    let mut stop_deadline: Option<tokio::time::Instant> = None;
    let mut poll = tokio::time::interval(Duration::from_millis(100));
    let info = |message: &str| {
        metrics.report(Report {
            severity: Severity::Info,
            user: None,
            connection: None,
            message: message.to_owned(),
            line: None,
            kind: None,
        })
    };
    loop {
        tokio::select! {
            done = &mut engine => return (status, done.ok()),
            _ = tokio::signal::ctrl_c() => {
                status = exit::INTERRUPTED;
                if *state_tx.borrow() == RunState::Running {
                    info("Received SIGINT - waiting for existing clients to finish");
                    let _ = state_tx.send(RunState::LogoutAndStop);
                    stop_deadline = Some(tokio::time::Instant::now() + grace);
                } else {
                    info("Received second SIGINT - stopping immediately");
                    let _ = state_tx.send(RunState::StopNow);
                }
            }
            _ = poll.tick() => {
                let now = tokio::time::Instant::now();
                let running = *state_tx.borrow() == RunState::Running;
                if running && deadline.is_some_and(|d| now >= d) {
                    let _ = state_tx.send(RunState::LogoutAndStop);
                    stop_deadline = Some(now + grace);
                }
                if settings.error_quit && metrics.error_count() > 0 && status != exit::ERRORS {
                    info("Exiting due to error_quit parameter");
                    status = exit::ERRORS;
                    let _ = state_tx.send(RunState::StopNow);
                }
                if quit.load(std::sync::atomic::Ordering::Relaxed) && status != exit::INTERRUPTED {
                    info("Exiting due to disconnect_quit parameter");
                    status = exit::INTERRUPTED;
                    let _ = state_tx.send(RunState::StopNow);
                }
                if stop_deadline.is_some_and(|d| now >= d) && *state_tx.borrow() != RunState::StopNow {
                    info("Second timeout triggered while trying to stop - stopping immediately");
                    let _ = state_tx.send(RunState::StopNow);
                }
            }
        }
    }
}

fn user_picker(settings: &Settings) -> anyhow::Result<UserPicker> {
    let user = &settings.user;
    let template = UserTemplate::parse(&user.template)?;
    let file = match &user.userfile {
        Some(path) => Some(read_userfile(path)?),
        None => None,
    };
    Ok(UserPicker::new(
        template,
        user.users,
        user.domains,
        file,
        user.password.clone(),
    )?)
}

fn message_source(settings: &Settings) -> anyhow::Result<Arc<dyn MessageSource>> {
    if settings.random_msg_size > 0 || settings.probabilities.get(State::Append) == 0 {
        return Ok(Arc::new(RandomMessages::new(
            settings.random_msg_size.max(1),
        )));
    }
    Ok(Arc::new(Mbox::open(&settings.mbox)?))
}

/// One connection and login before the run, so an unreachable server, a TLS failure or
/// a wrong password is one clear error instead of a stream of them (bounded as a whole
/// by `timeout=`).
async fn preflight(
    settings: &Settings,
    endpoint: &Endpoint,
    users: &UserPicker,
    scram_cache: &ScramCache,
    options: &ClientOptions,
) -> anyhow::Result<()> {
    let user = users.user_by_index(0);
    let request = LoginRequest {
        user: &user.name,
        password: &user.password,
        mech: &settings.user.mech,
        master: settings.user.master.as_deref(),
        scram_cache,
    };
    crate::imap::client::start_up_check(endpoint, options, &request).await?;
    Ok(())
}

/// Runs the mode the settings select.
pub async fn run(settings: Settings) -> anyhow::Result<ExitCode> {
    if settings.test.is_some() {
        let status = crate::scripted::run(&settings, settings.junit.as_deref()).await?;
        return Ok(ExitCode::from(status));
    }
    if let Some(profile) = &settings.profile {
        if settings.dry_run {
            return plan_profile(profile, &settings);
        }
        let profile = profile.clone();
        return run_profile(settings, &profile).await;
    }
    run_stress(settings).await
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

/// `imaptest profile=FILE dry_run [plan=OUT]`: the schedule without any connection.
fn plan_profile(profile: &std::path::Path, settings: &Settings) -> anyhow::Result<ExitCode> {
    let out = settings
        .plan
        .clone()
        .unwrap_or_else(|| std::path::PathBuf::from("plan.csv"));
    let (summary, warnings) =
        crate::profile::dry_run(profile, &out, settings.seed, settings.secs.map(|s| s.run))?;
    for warning in warnings {
        eprintln!("Warning: {warning}");
    }
    print!("{}", summary.to_text());
    eprintln!("Plan written to {}", out.display());
    Ok(ExitCode::SUCCESS)
}

/// Profile mode: runs a profile's schedule against its servers to the end.
async fn run_profile(settings: Settings, path: &std::path::Path) -> anyhow::Result<ExitCode> {
    use crate::engine::profile_run::{self as engine, ProfileRun};
    use crate::profile::schedule::{Directory, ScheduleOptions};

    let (profile, warnings) = crate::profile::load(path)?;
    for warning in warnings {
        eprintln!("Warning: {warning}");
    }
    let profile = Arc::new(profile);
    let directory =
        Directory::new(&profile).map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
    let users = profile
        .population_sizes()
        .iter()
        .map(|&n| u64::from(n))
        .sum::<u64>();
    let connections: u64 = profile
        .clients
        .iter()
        .map(|c| u64::from(c.connections))
        .max()
        .unwrap_or(1);
    raise_fd_limit(users.saturating_mul(connections).min(1 << 20) + 100);
    let endpoints = profile_endpoints(&settings, &profile).await?;
    let messages = crate::mail::open_source(&settings.mbox, settings.random_msg_size)?;
    let period = settings
        .secs
        .map(|s| s.run)
        .or(profile.run.duration.map(|d| d.0));

    let columns = profile_columns(&profile, &settings.user.mech);
    let mut sinks: Vec<Box<dyn Sink>> = vec![Box::new(
        Console::stdio(columns.clone(), None, 0).with_profile(),
    )];
    if let Some(path) = &settings.csv {
        sinks.push(Box::new(CsvTimeline::create(path)?.with_profile_rows()));
    }
    if let Some(path) = &settings.session_csv {
        sinks.push(Box::new(crate::report::SessionCsv::create(path)?));
    }
    if let Some(path) = &settings.output {
        sinks.push(Box::new(ResultsFile::create(path, columns)?));
    }
    let (metrics, aggregator) = metrics::channel(sinks);
    let aggregator = tokio::spawn(aggregator.run());

    let limits = FramerLimits {
        max_literal: settings.max_literal,
        ..FramerLimits::default()
    };
    let run = ProfileRun {
        profile,
        schedule: ScheduleOptions {
            seed: settings.seed,
            until: period,
            shard: None,
        },
        directory,
        endpoints,
        messages,
        default_password: settings.user.password.clone(),
        mech: settings.user.mech.clone(),
        imap_options: ClientOptions {
            limits,
            timeout: settings.timeout,
            rawlog_dir: settings.rawlog.clone(),
        },
        pop3_options: crate::pop3::Pop3Options {
            timeout: settings.timeout,
            rawlog_dir: settings.rawlog.clone(),
            ..Default::default()
        },
        lmtp_options: crate::lmtp::LmtpOptions {
            timeout: settings.timeout,
            rawlog_dir: settings.rawlog.clone(),
            ..Default::default()
        },
        stop_grace: settings
            .secs
            .map_or(Duration::from_secs(30), |s| s.stop_grace),
        spin: Duration::from_micros(100),
        tracking: !settings.no_tracking,
    };
    let (state_tx, state_rx) = watch::channel(RunState::Running);
    let engine = tokio::spawn(engine::run(run, metrics.clone(), state_rx));
    let never = std::sync::atomic::AtomicBool::new(false);
    let (status, summary) = supervise(&settings, None, &metrics, &state_tx, engine, &never).await;
    drop(metrics);
    let _totals = aggregator.await.context("metrics aggregator failed")?;
    if let Some(summary) = summary {
        print!("{}", summary_text(&summary));
    }
    let status = if status == exit::OK && _totals.errors > 0 && settings.error_quit {
        exit::ERRORS
    } else {
        status
    };
    Ok(ExitCode::from(status))
}

/// Per client type: sessions and commands, after Totals.
fn summary_text(summary: &crate::engine::profile_run::Summary) -> String {
    use std::fmt::Write as _;
    let mut out = String::from("\nClient types:\n");
    for client in &summary.clients {
        let commands: Vec<String> = client
            .commands
            .iter()
            .map(|&(state, n)| format!("{} {n}", client.command_name(state)))
            .collect();
        let _ = writeln!(
            out,
            "  {} ({}): {} sessions; {}",
            client.name,
            match client.protocol {
                crate::profile::model::Protocol::Imap => "imap",
                crate::profile::model::Protocol::Pop3 => "pop3",
            },
            client.sessions,
            if commands.is_empty() {
                "no commands".to_owned()
            } else {
                commands.join(", ")
            }
        );
    }
    let _ = writeln!(
        out,
        "Actions: {} handed over, {} skipped (message gone or session down)",
        summary.actions, summary.skipped
    );
    out
}

/// The console columns of a profile run: what its clients can do.
fn profile_columns(profile: &crate::profile::Profile, mech: &str) -> Vec<State> {
    use crate::profile::model::Protocol;
    let imap = profile
        .clients
        .iter()
        .any(|c| c.protocol == Protocol::Imap && c.connections > 0);
    let pop3 = profile.clients.iter().any(|c| c.protocol == Protocol::Pop3);
    let idle = profile
        .clients
        .iter()
        .any(|c| c.protocol == Protocol::Imap && c.connections > 0 && c.idle);
    let polls = profile
        .clients
        .iter()
        .any(|c| c.protocol == Protocol::Imap && c.connections > 0 && !c.idle);
    let moves = profile
        .populations
        .iter()
        .any(|p| p.move_to_spam > 0.0 || p.filter_to_spam > 0.0);
    let lmtp = profile
        .populations
        .iter()
        .any(|p| p.inbox_delivery.is_some() || p.spam_delivery.is_some());
    let login = if mech == "LOGIN" {
        State::Login
    } else {
        State::Authenticate
    };
    let mut columns = Vec::new();
    let mut add = |on: bool, states: &[State]| {
        if on {
            columns.extend_from_slice(states);
        }
    };
    add(imap || pop3, &[login]);
    add(imap || pop3, &[State::List]);
    add(pop3, &[State::Status]);
    add(imap || pop3, &[State::Select, State::Fetch]);
    add(imap || pop3, &[State::Fetch2]);
    add(imap, &[State::Store, State::Delete]);
    add(imap || pop3, &[State::Expunge]);
    add(imap, &[State::Append]);
    add(moves, &[State::Move]);
    add(polls, &[State::Noop]);
    add(idle, &[State::Idle]);
    add(imap || pop3, &[State::Logout]);
    add(lmtp, &[State::Lmtp]);
    columns.sort();
    columns.dedup();
    columns
}

/// The servers a profile talks to: `[servers.*]`, falling back to the command line's
/// `host=`/`hostip=`/`port=`/`ssl=` and the protocols' default ports.
async fn profile_endpoints(
    settings: &Settings,
    profile: &crate::profile::Profile,
) -> anyhow::Result<crate::engine::profile_run::Endpoints> {
    use crate::config::{TlsMode, TlsSettings};
    use crate::profile::model::{Protocol, Tls};

    let servers = &profile.servers;
    // Past one source address's ephemeral ports, loopback runs spread their sources.
    let users: u64 = profile
        .population_sizes()
        .iter()
        .map(|&n| u64::from(n))
        .sum();
    let per_user: u64 = profile
        .clients
        .iter()
        .map(|c| u64::from(c.connections))
        .sum();
    let many_connections = users.saturating_mul(per_user.max(1)) > u64::from(SPREAD_SOURCES_ABOVE);
    let resolve = |name: &'static str,
                   host: Option<&String>,
                   port: Option<u16>,
                   tls: Option<Tls>,
                   default_port: (u16, u16)| {
        let mode = match tls {
            Some(Tls::None) => TlsMode::Plain,
            Some(Tls::Implicit) => TlsMode::Implicit,
            Some(Tls::StartTls) => TlsMode::StartTls,
            None => settings.tls.mode,
        };
        let host = host
            .or(servers.host.as_ref())
            .cloned()
            .unwrap_or_else(|| settings.host.clone());
        let connect = if host == settings.host {
            settings.connect_host().to_owned()
        } else {
            host.clone()
        };
        let port = port.unwrap_or(if mode == TlsMode::Implicit {
            default_port.1
        } else {
            default_port.0
        });
        let tls = TlsSettings {
            mode,
            ..settings.tls.clone()
        };
        let timeout = settings.timeout;
        async move {
            let mut endpoint = Endpoint::resolve(&host, &connect, port, &tls, timeout)
                .await
                .with_context(|| format!("{name} server {connect}:{port}"))?;
            endpoint.spread_source_addresses(many_connections);
            anyhow::Ok(Arc::new(endpoint))
        }
    };
    let uses = |p: Protocol| {
        profile
            .clients
            .iter()
            .any(|c| c.protocol == p && c.connections > 0)
    };
    let mut endpoints = crate::engine::profile_run::Endpoints::default();
    if uses(Protocol::Imap) {
        let ep = servers.imap.as_ref();
        let port = ep.and_then(|e| e.port).or(settings.port);
        endpoints.imap = Some(
            resolve(
                "IMAP",
                ep.and_then(|e| e.host.as_ref()),
                port,
                ep.map(|e| e.tls),
                (143, 993),
            )
            .await?,
        );
    }
    if uses(Protocol::Pop3) {
        let ep = servers.pop3.as_ref();
        endpoints.pop3 = Some(
            resolve(
                "POP3",
                ep.and_then(|e| e.host.as_ref()),
                ep.and_then(|e| e.port),
                Some(ep.map_or(Tls::None, |e| e.tls)),
                (110, 995),
            )
            .await?,
        );
    }
    let delivers = profile
        .populations
        .iter()
        .any(|p| p.inbox_delivery.is_some() || p.spam_delivery.is_some());
    if delivers {
        let ep = servers.lmtp.as_ref();
        endpoints.lmtp = Some(
            resolve(
                "LMTP",
                ep.and_then(|e| e.host.as_ref()),
                ep.and_then(|e| e.port),
                Some(ep.map_or(Tls::None, |e| e.tls)),
                (24, 24),
            )
            .await?,
        );
    }
    // One connection to each server first: an unreachable server is one clear error.
    for (name, ep) in [
        ("IMAP", &endpoints.imap),
        ("POP3", &endpoints.pop3),
        ("LMTP", &endpoints.lmtp),
    ] {
        if let Some(ep) = ep {
            ep.connect()
                .await
                .with_context(|| format!("cannot reach the {name} server"))?;
        }
    }
    Ok(endpoints)
}
