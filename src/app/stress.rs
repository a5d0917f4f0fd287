//! Classic stress mode at the edge: endpoint, users and messages, a preflight login,
//! the console/CSV/results sinks, the engine, and the ending.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;

use super::pipeline::{Pipeline, RunFacts, conclude, supervise, wait_for_start};
use super::{raise_fd_limit, server_info_imap, sinks};
use crate::config::{Common, StressSettings, TlsMode};
use crate::control::RunState;
use crate::engine::stress::{self, StressContext};
use crate::imap::client::{ClientOptions, LoginRequest, start_up_login};
use crate::imap::framer::FramerLimits;
use crate::mail::{Mbox, MessageSource, RandomMessages};
use crate::net::Endpoint;
use crate::net::connect::SPREAD_SOURCES_ABOVE;
use crate::ops::{Op, Phase, Server};
use crate::report::Console;
use crate::sasl::ScramCache;
use crate::states::State;
use crate::summary::{RunMode, ServerIdentity, ServerInfo};
use crate::users::UserPicker;

/// Runs classic stress mode to the end and returns the exit status.
pub async fn run(mut common: Common, mut settings: StressSettings) -> anyhow::Result<u8> {
    let mut users = UserPicker::from_settings(&common.user)?;
    let seed = common.seed;
    if let Some(shard) = common.shard {
        // This shard's users and connection slots; slot streams of its own.
        users = users.shard(shard)?;
        let clients = format!("clients={}", settings.clients);
        settings.clients = shard.split(&clients, u64::from(settings.clients))? as u32;
        common.seed = seed.map(|s| shard.stream_seed(s));
        eprintln!(
            "Shard {shard}: {} users (index % {} == {}), clients={}",
            users.count(),
            shard.count,
            shard.index,
            settings.clients
        );
    }
    raise_fd_limit(u64::from(settings.clients) + 100);
    let common = Arc::new(common);
    let settings = Arc::new(settings);
    let mut endpoint = Endpoint::resolve(
        &common.host,
        common.connect_host(),
        common.imap_port(),
        &common.tls,
        common.timeout,
    )
    .await?;
    endpoint.spread_source_addresses(settings.clients > SPREAD_SOURCES_ABOVE);
    let endpoint = Arc::new(endpoint);
    let users = Arc::new(users);
    let messages = message_source(&settings)?;
    let client_options = ClientOptions {
        limits: FramerLimits {
            max_literal: common.max_literal,
            ..FramerLimits::default()
        },
        timeout: common.timeout,
        rawlog_dir: common.rawlog.clone(),
    };
    let scram_cache = ScramCache::default();
    let server = preflight(&common, &endpoint, &users, &scram_cache, &client_options).await?;

    let columns =
        Console::<std::io::Stdout, std::io::Stderr>::visible_columns(&settings.probabilities);
    let console = Console::stdio(
        columns.clone(),
        Some(settings.probabilities.clone()),
        u64::from(settings.clients),
    );
    let ops = stress_ops(&common, &columns);
    let all_sinks = sinks(&common, Box::new(console), columns, ops, false)?;
    if !wait_for_start(&common).await {
        return Ok(crate::exit::INTERRUPTED);
    }
    let pipeline = Pipeline::start(&common, all_sinks)?;

    let (state_tx, state_rx) = watch::channel(RunState::Running);
    let ctx = Arc::new(StressContext {
        common: common.clone(),
        settings: settings.clone(),
        endpoint,
        users,
        messages,
        scram_cache,
        metrics: pipeline.metrics.clone(),
        client_options,
        quit: std::sync::atomic::AtomicBool::new(false),
        tracking: crate::tracking::Registry::new(),
    });
    let engine = tokio::spawn(stress::run(ctx.clone(), state_rx));
    let run_for = settings.secs.map(|s| s.run);
    let grace = settings
        .secs
        .map_or(Duration::from_secs(30), |s| s.stop_grace);
    let (ending, _) = supervise(
        &common,
        run_for,
        grace,
        &pipeline.metrics,
        &state_tx,
        engine,
        &ctx.quit,
    )
    .await;
    // The context holds a metrics handle too; the aggregator ends when all are gone.
    drop(ctx);
    let started = pipeline.started;
    let (finished, recorded) = pipeline.finish().await?;
    let facts = RunFacts {
        seed,
        server: ServerIdentity {
            imap: server,
            ..ServerIdentity::default()
        },
        expects_logins: true,
        ..RunFacts::default()
    };
    Ok(conclude(
        &common,
        RunMode::Stress,
        facts,
        started,
        ending,
        finished,
        recorded,
    )
    .status)
}

/// The ops a stress run can perform: its states and the IMAP connection phases.
fn stress_ops(common: &Common, columns: &[State]) -> Vec<Op> {
    let mut ops = vec![
        Op::Phase(Server::Imap, Phase::Connect),
        Op::Phase(Server::Imap, Phase::Greeting),
    ];
    if common.tls.mode != TlsMode::Plain {
        ops.push(Op::Phase(Server::Imap, Phase::Tls));
    }
    ops.extend(columns.iter().map(|&s| Op::Imap(s)));
    ops.sort();
    ops
}

fn message_source(settings: &StressSettings) -> anyhow::Result<Arc<dyn MessageSource>> {
    if settings.random_msg_size > 0 || settings.probabilities.get(State::Append) == 0 {
        return Ok(Arc::new(RandomMessages::new(
            settings.random_msg_size.max(1),
        )));
    }
    Ok(Arc::new(Mbox::open(&settings.mbox)?))
}

/// One connection and login before the run, so an unreachable server, a TLS failure or
/// a wrong password is one clear error instead of a stream of them. Returns what the
/// server said about itself.
async fn preflight(
    common: &Common,
    endpoint: &Endpoint,
    users: &UserPicker,
    scram_cache: &ScramCache,
    options: &ClientOptions,
) -> anyhow::Result<Option<ServerInfo>> {
    let user = users.user_by_index(0);
    let request = LoginRequest {
        user: &user.name,
        password: &user.password,
        mech: common.user.mech,
        master: common.user.master.as_deref(),
        scram_cache,
    };
    let mut client = start_up_login(endpoint, options, &request).await?;
    let address = format!("{}:{}", common.connect_host(), common.imap_port());
    if client.preauth() {
        return Ok(Some(server_info_imap(&mut client, address).await));
    }
    let info = server_info_imap(&mut client, address).await;
    let _ = client.logout().await;
    Ok(Some(info))
}
