//! Profile mode at the edge: the profile (scaled by `users=`), its servers, the
//! console and files, the runtime, and the common ending. `dry_run` plans only.

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use tokio::sync::watch;

use super::pipeline::{Pipeline, RunFacts, conclude, profile_ref, supervise, wait_for_start};
use super::{raise_fd_limit, server_info_imap, sinks};
use crate::config::{Common, Mech, ProfileSettings};
use crate::control::RunState;
use crate::imap::client::{ClientOptions, ImapClient};
use crate::imap::framer::FramerLimits;
use crate::metrics::Sink;
use crate::net::Endpoint;
use crate::net::connect::SPREAD_SOURCES_ABOVE;
use crate::ops::Op;
use crate::report::Console;
use crate::states::State;
use crate::summary::{ClientSessions, RunMode, ServerIdentity, ServerInfo};

/// `imaptest profile=FILE dry_run [plan=OUT]`: the schedule without any connection.
pub fn plan(common: &Common, settings: &ProfileSettings) -> anyhow::Result<u8> {
    let out = settings
        .plan
        .clone()
        .unwrap_or_else(|| std::path::PathBuf::from("plan.csv"));
    let (summary, warnings) = crate::profile::dry_run(
        &settings.path,
        &out,
        common.seed,
        settings.secs.map(|s| s.run),
        settings.users,
        common.shard,
    )?;
    for warning in warnings {
        eprintln!("Warning: {warning}");
    }
    print!("{}", summary.to_text());
    eprintln!("Plan written to {}", out.display());
    Ok(crate::exit::OK)
}

/// Runs a profile's schedule against its servers to the end; returns the exit status.
pub async fn run(common: Common, settings: ProfileSettings) -> anyhow::Result<u8> {
    let mut profile = load(&settings.path)?;
    if let Some(users) = settings.users {
        profile.scale_users(users);
    }
    Ok(execute(&common, &settings, profile, Presentation::Console)
        .await?
        .map_or(crate::exit::INTERRUPTED, |concluded| concluded.status))
}

/// Loads a profile, printing its warnings.
pub(crate) fn load(path: &std::path::Path) -> anyhow::Result<crate::profile::Profile> {
    let (profile, warnings) = crate::profile::load(path)?;
    for warning in warnings {
        eprintln!("Warning: {warning}");
    }
    Ok(profile)
}

/// How a profile run shows itself while it runs.
pub(crate) enum Presentation {
    /// The classic console, Totals, client types and SLO verdicts, and the outputs.
    Console,
    /// Only this sink (a capacity step: the search prints its own table).
    Quiet(Box<dyn Sink>),
}

/// Runs `profile` (already scaled) with `settings` against its servers to the end;
/// `None` when a signal came while waiting for `start_at=`.
pub(crate) async fn execute(
    common: &Common,
    settings: &ProfileSettings,
    profile: crate::profile::Profile,
    presentation: Presentation,
) -> anyhow::Result<Option<super::pipeline::Concluded>> {
    use crate::engine::profile_run::{self as engine, ProfileRun};
    use crate::profile::schedule::{Directory, ScheduleOptions};

    let path = settings.path.as_path();
    let mut profile = profile;
    let mut max_sessions = settings.clients;
    if let Some(shard) = common.shard {
        max_sessions = split_limits(&mut profile, shard, max_sessions)?;
        let total = profile.total_users();
        eprintln!(
            "Shard {shard}: {} of the profile's {total} users (index % {} == {})",
            shard.users_of(total),
            shard.count,
            shard.index
        );
    }
    let profile = Arc::new(profile);
    let directory =
        Directory::new(&profile).map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
    let users = common
        .shard
        .map_or(profile.total_users(), |s| s.users_of(profile.total_users()));
    let connections: u64 = profile
        .clients
        .iter()
        .map(|c| u64::from(c.connections))
        .max()
        .unwrap_or(1);
    let wanted = max_sessions.map_or(users, u64::from);
    raise_fd_limit(wanted.saturating_mul(connections).min(1 << 20) + 100);
    let (endpoints, server) = profile_endpoints(common, &profile).await?;
    let messages = crate::mail::open_source(&settings.mbox, settings.random_msg_size)?;
    let period = settings
        .secs
        .map(|s| s.run)
        .or(profile.run.duration.map(|d| d.0));
    let rampup = profile.run.rampup.0;
    if let Some(secs) = settings.secs
        && secs.run < rampup
    {
        eprintln!(
            "Warning: secs={} ends the run before the profile's {} ramp-up does: \
             not every user will have logged in",
            secs.run.as_secs(),
            crate::duration::format_duration(rampup)
        );
    }

    let quiet = matches!(presentation, Presentation::Quiet(_));
    let all_sinks = match presentation {
        Presentation::Console => {
            let columns = profile_columns(&profile, common.user.mech);
            let console = Console::stdio(columns.clone(), None, 0).with_profile(period, rampup);
            let ops = profile_ops(&profile, &columns, common);
            let mut all_sinks = sinks(common, Box::new(console), columns, ops, true)?;
            if let Some(path) = &settings.session_csv {
                all_sinks.push(Box::new(crate::report::SessionCsv::create(path)?) as Box<dyn Sink>);
            }
            all_sinks
        }
        Presentation::Quiet(sink) => vec![sink],
    };
    if !wait_for_start(common).await {
        return Ok(None);
    }
    let pipeline = Pipeline::start(common, all_sinks)?;

    let limits = FramerLimits {
        max_literal: common.max_literal,
        ..FramerLimits::default()
    };
    let run = ProfileRun {
        profile: profile.clone(),
        schedule: ScheduleOptions {
            seed: common.seed,
            until: period,
            shard: common.shard.map(|s| (s.index, s.count)),
        },
        directory,
        endpoints,
        messages,
        default_password: common.user.password.clone(),
        mech: common.user.mech,
        imap_options: ClientOptions {
            limits,
            timeout: common.timeout,
            rawlog_dir: common.rawlog.clone(),
        },
        pop3_options: crate::pop3::Pop3Options {
            timeout: common.timeout,
            rawlog_dir: common.rawlog.clone(),
            ..Default::default()
        },
        lmtp_options: crate::lmtp::LmtpOptions {
            timeout: common.timeout,
            rawlog_dir: common.rawlog.clone(),
            ..Default::default()
        },
        stop_grace: settings
            .secs
            .map_or(Duration::from_secs(30), |s| s.stop_grace),
        spin: Duration::from_micros(100),
        tracking: !settings.no_tracking,
        max_sessions,
    };
    let (state_tx, state_rx) = watch::channel(RunState::Running);
    let engine = tokio::spawn(engine::run(run, pipeline.metrics.clone(), state_rx));
    let never = std::sync::atomic::AtomicBool::new(false);
    let grace = settings
        .secs
        .map_or(Duration::from_secs(30), |s| s.stop_grace);
    let (ending, summary) = supervise(
        common,
        None,
        grace,
        &pipeline.metrics,
        &state_tx,
        engine,
        &never,
    )
    .await;
    let started = pipeline.started;
    let (finished, recorded) = pipeline.finish().await?;
    if let Some(summary) = &summary
        && !quiet
    {
        print!("{}", summary_text(summary));
    }
    let facts = RunFacts {
        profile: profile_ref(path),
        seed: common.seed.or(profile.run.seed),
        default_warmup: rampup,
        extra_slos: profile.objectives(),
        sessions: summary.as_ref().map(client_sessions).unwrap_or_default(),
        server,
        expects_logins: profile.clients.iter().any(|c| c.connections > 0),
        quiet,
        ..RunFacts::default()
    };
    Ok(Some(conclude(
        common,
        RunMode::Profile,
        facts,
        started,
        ending,
        finished,
        recorded,
    )))
}

/// One shard's part of a profile: refused when a shard would have no users, and the
/// run's limits (`clients=`, `[servers.lmtp] max_parallel`) split so the shards
/// together load the servers as one process would. Returns the shard's `clients=`.
fn split_limits(
    profile: &mut crate::profile::Profile,
    shard: crate::shard::Shard,
    clients: Option<u32>,
) -> anyhow::Result<Option<u32>> {
    let users = profile.total_users();
    shard.split(&format!("the profile's {users} users"), users)?;
    if let Some(lmtp) = profile.servers.lmtp.as_mut()
        && let Some(max) = lmtp.max_parallel
    {
        let what = format!("[servers.lmtp] max_parallel = {max}");
        lmtp.max_parallel = Some(shard.split(&what, u64::from(max))? as u32);
    }
    clients
        .map(|n| Ok(shard.split(&format!("clients={n}"), u64::from(n))? as u32))
        .transpose()
}

/// The ops a profile run can perform: the IMAP commands of its console columns, the
/// POP3 and LMTP commands and connection phases of the servers it uses, and actions.
fn profile_ops(profile: &crate::profile::Profile, columns: &[State], common: &Common) -> Vec<Op> {
    use crate::ops::{ActionKind, LmtpCommand, Phase, Pop3Command, Server};
    use crate::profile::model::Protocol;
    let uses = |p: Protocol| {
        profile
            .clients
            .iter()
            .any(|c| c.protocol == p && c.connections > 0)
    };
    let mut ops = Vec::new();
    let phases = |server: Server, ops: &mut Vec<Op>| {
        ops.extend(
            [Phase::Connect, Phase::Greeting, Phase::Tls].map(|phase| Op::Phase(server, phase)),
        );
    };
    if uses(Protocol::Imap) {
        phases(Server::Imap, &mut ops);
        ops.extend(
            columns
                .iter()
                .filter(|&&s| s != State::Lmtp)
                .map(|&s| Op::Imap(s)),
        );
    }
    if uses(Protocol::Pop3) {
        phases(Server::Pop3, &mut ops);
        let login: &[Pop3Command] = match common.user.mech {
            Mech::Command => &[Pop3Command::User, Pop3Command::Pass],
            Mech::Sasl(_) => &[Pop3Command::Auth],
        };
        ops.extend(login.iter().map(|&c| Op::Pop3(c)));
        ops.extend(
            [
                Pop3Command::Stat,
                Pop3Command::List,
                Pop3Command::Uidl,
                Pop3Command::Retr,
                Pop3Command::Dele,
                Pop3Command::Quit,
            ]
            .map(Op::Pop3),
        );
    }
    if columns.contains(&State::Lmtp) {
        phases(Server::Lmtp, &mut ops);
        ops.extend(
            [
                LmtpCommand::Lhlo,
                LmtpCommand::Mail,
                LmtpCommand::Rcpt,
                LmtpCommand::Data,
                LmtpCommand::Transaction,
            ]
            .map(Op::Lmtp),
        );
    }
    ops.extend(ActionKind::ALL.iter().map(|&a| Op::Action(a)));
    ops.sort();
    ops.dedup();
    ops
}

fn client_sessions(summary: &crate::engine::profile_run::Summary) -> Vec<ClientSessions> {
    summary
        .clients
        .iter()
        .map(|c| ClientSessions {
            client: c.name.clone(),
            protocol: protocol_name(c.protocol).to_owned(),
            sessions: c.sessions,
            commands: c.commands.iter().map(|&(op, n)| (op.key(), n)).collect(),
        })
        .collect()
}

fn protocol_name(protocol: crate::profile::model::Protocol) -> &'static str {
    match protocol {
        crate::profile::model::Protocol::Imap => "imap",
        crate::profile::model::Protocol::Pop3 => "pop3",
    }
}

/// Per client type: sessions and commands, after Totals.
fn summary_text(summary: &crate::engine::profile_run::Summary) -> String {
    use std::fmt::Write as _;
    let mut out = String::from("\nClient types:\n");
    for client in &summary.clients {
        let commands: Vec<String> = client
            .commands
            .iter()
            .map(|&(op, n)| format!("{} {n}", op.name()))
            .collect();
        let _ = writeln!(
            out,
            "  {} ({}): {} sessions; {}",
            client.name,
            protocol_name(client.protocol),
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
        "Actions: {} planned, {} done, {} skipped (by reason under Totals)",
        summary.actions, summary.done, summary.skipped
    );
    out
}

/// The console columns of a profile run: what its clients can do.
fn profile_columns(profile: &crate::profile::Profile, mech: Mech) -> Vec<State> {
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
    let login = if mech == Mech::Command {
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
    common: &Common,
    profile: &crate::profile::Profile,
) -> anyhow::Result<(crate::engine::profile_run::Endpoints, ServerIdentity)> {
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
            None => common.tls.mode,
        };
        let host = host
            .or(servers.host.as_ref())
            .cloned()
            .unwrap_or_else(|| common.host.clone());
        let connect = if host == common.host {
            common.connect_host().to_owned()
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
            ..common.tls.clone()
        };
        let timeout = common.timeout;
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
        let port = ep.and_then(|e| e.port).or(common.port);
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
    // One connection to each server first: an unreachable server is one clear error,
    // and the summary learns what each server says about itself.
    let mut identity = ServerIdentity::default();
    if let Some(ep) = &endpoints.imap {
        identity.imap = Some(probe_imap(common, ep).await?);
    }
    if let Some(ep) = &endpoints.pop3 {
        identity.pop3 = Some(probe_pop3(ep).await?);
    }
    if let Some(ep) = &endpoints.lmtp {
        identity.lmtp = Some(probe_lmtp(ep).await?);
    }
    Ok((endpoints, identity))
}

async fn probe_imap(common: &Common, endpoint: &Endpoint) -> anyhow::Result<ServerInfo> {
    let options = ClientOptions {
        timeout: common.timeout,
        ..ClientOptions::default()
    };
    let mut client = ImapClient::connect(endpoint, 0, &options)
        .await
        .context("cannot reach the IMAP server")?;
    let info = server_info_imap(&mut client, endpoint.to_string()).await;
    let _ = client.logout().await;
    Ok(info)
}

async fn probe_pop3(endpoint: &Endpoint) -> anyhow::Result<ServerInfo> {
    let mut client = crate::pop3::Pop3Client::connect(endpoint, 0, &Default::default())
        .await
        .context("cannot reach the POP3 server")?;
    let capabilities = match client.capa().await {
        Ok(caps) => caps.iter().map(|(tag, _)| tag.to_owned()).collect(),
        Err(_) => Vec::new(),
    };
    let info = ServerInfo {
        address: endpoint.to_string(),
        greeting: crate::text::inert(client.greeting(), 500),
        capabilities,
        id: Default::default(),
    };
    let _ = client.quit().await;
    Ok(info)
}

async fn probe_lmtp(endpoint: &Endpoint) -> anyhow::Result<ServerInfo> {
    let client = crate::lmtp::LmtpClient::connect(endpoint, 0, &Default::default())
        .await
        .context("cannot reach the LMTP server")?;
    let info = ServerInfo {
        address: endpoint.to_string(),
        greeting: crate::text::inert(&client.greeting().to_string(), 500),
        capabilities: client.extensions().names().map(str::to_owned).collect(),
        id: Default::default(),
    };
    let _ = client.quit().await;
    Ok(info)
}
