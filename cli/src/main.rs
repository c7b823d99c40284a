//! `dvmdash`: parses flags, sets up logging and metrics, wires signals, and runs one role (or all).

use std::net::SocketAddr;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context as _;
use clap::{Parser, Subcommand};
use dvmdash::simulate::SimulateArgs;
use dvmdash::stack::{AllArgs, Role, join_all};
use dvmdash_core::config::{ClickHouseArgs, EventArgs, RedisArgs};
use dvmdash_core::telemetry::Dependency;
use tokio_util::sync::CancellationToken;
use tracing::{error, info};

#[derive(Debug, Parser)]
#[command(
    name = "dvmdash",
    version,
    about = "Watches Nostr Data Vending Machine traffic and serves exact statistics about it"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
    /// Address serving Prometheus `/metrics` (empty to disable).
    #[arg(
        long,
        env = "DVMDASH_METRICS_ADDR",
        global = true,
        default_value = "127.0.0.1:9464"
    )]
    metrics_addr: String,
    /// Upper bound, in seconds, for each shutdown step.
    #[arg(
        long,
        env = "DVMDASH_SHUTDOWN_TIMEOUT_SECS",
        global = true,
        default_value_t = 20
    )]
    shutdown_timeout_secs: u64,
    /// Log filter (`RUST_LOG` syntax); `RUST_LOG` wins when set.
    #[arg(long, env = "DVMDASH_LOG", global = true, default_value = "info")]
    log: String,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Watch the relays the coordinator assigns and append verified events to the stream.
    Collector {
        #[command(flatten)]
        config: dvmdash_collector::Config,
        #[command(flatten)]
        events: EventArgs,
        #[command(flatten)]
        redis: RedisArgs,
    },
    /// Keep the relay registry and assign relays to live collectors.
    Coordinator {
        #[command(flatten)]
        config: dvmdash_coordinator::Config,
        #[command(flatten)]
        redis: RedisArgs,
    },
    /// Move events from the stream into ClickHouse.
    Ingester {
        #[command(flatten)]
        config: dvmdash_ingester::Config,
        #[command(flatten)]
        events: EventArgs,
        #[command(flatten)]
        redis: RedisArgs,
        #[command(flatten)]
        clickhouse: ClickHouseArgs,
    },
    /// Serve the HTTP API and the web UI.
    Api {
        #[command(flatten)]
        config: dvmdash_api::Config,
        #[command(flatten)]
        clickhouse: ClickHouseArgs,
        #[command(flatten)]
        redis: RedisArgs,
    },
    /// Every role in one process.
    All(Box<AllArgs>),
    /// Every role plus in-process relays and simulated DVM traffic.
    Demo(Box<dvmdash::demo::DemoArgs>),
    /// Apply the ClickHouse schema migrations (idempotent).
    Migrate {
        #[command(flatten)]
        clickhouse: ClickHouseArgs,
        /// Create the schema on this ClickHouse cluster (a name in its `remote_servers`): replicated
        /// tables, Distributed tables over them and the views, all `ON CLUSTER`, derived from the
        /// same migration files (docs/scaling.md).
        #[arg(long, env = "DVMDASH_CLICKHOUSE_CLUSTER")]
        cluster: Option<String>,
        /// Print the statements instead of running them (no connection is made).
        #[arg(long)]
        print: bool,
    },
    /// Backfill events from DVMDash archives (JSON arrays) or JSON Lines, files or URLs.
    Import {
        #[command(flatten)]
        args: dvmdash::import::ImportArgs,
        #[command(flatten)]
        events: EventArgs,
        #[command(flatten)]
        redis: RedisArgs,
    },
    /// List, replay or discard dead letters (stream entries the ingester could not store).
    Dlq {
        #[command(flatten)]
        args: dvmdash::dlq::DlqArgs,
        #[command(flatten)]
        redis: RedisArgs,
    },
    /// Measure throughput, latency and memory against real Redis and ClickHouse.
    Bench(Box<dvmdash::bench::BenchArgs>),
    /// Exit 0 when a role's `/health` or `/ready` answers 2xx (for container health checks: the
    /// image needs no curl).
    Probe {
        /// For example `http://127.0.0.1:9464/ready`.
        url: String,
        /// Give up after this many seconds.
        #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u64).range(1..=60))]
        timeout_secs: u64,
    },
    /// Publish realistic, signed DVM traffic to relays.
    Simulate {
        /// Relays to publish to (comma-separated ws:// or wss:// URLs).
        #[arg(
            long = "relays",
            env = "DVMDASH_RELAYS",
            value_delimiter = ',',
            required = true
        )]
        relays: Vec<String>,
        #[command(flatten)]
        args: SimulateArgs,
    },
}

impl Command {
    /// The command's name, for `dvmdash_build_info`.
    fn name(&self) -> &'static str {
        match self {
            Command::Collector { .. } => "collector",
            Command::Coordinator { .. } => "coordinator",
            Command::Ingester { .. } => "ingester",
            Command::Api { .. } => "api",
            Command::All(_) => "all",
            Command::Demo(_) => "demo",
            Command::Bench(_) => "bench",
            _ => "tool",
        }
    }

    /// What `/ready` checks for this command.
    fn dependencies(&self) -> Vec<Dependency> {
        match self {
            Command::Collector { redis, .. } | Command::Coordinator { redis, .. } => {
                vec![Dependency::Redis(redis.clone())]
            }
            Command::Ingester {
                redis, clickhouse, ..
            }
            | Command::Api {
                redis, clickhouse, ..
            } => vec![
                Dependency::Redis(redis.clone()),
                Dependency::ClickHouse(clickhouse.clone()),
            ],
            Command::All(args) => vec![
                Dependency::Redis(args.redis.clone()),
                Dependency::ClickHouse(args.clickhouse.clone()),
            ],
            Command::Demo(args) => vec![
                Dependency::Redis(args.all.redis.clone()),
                Dependency::ClickHouse(args.all.clickhouse.clone()),
            ],
            _ => Vec::new(),
        }
    }

    fn serves_metrics(&self) -> bool {
        !matches!(
            self,
            Command::Migrate { .. }
                | Command::Simulate { .. }
                | Command::Import { .. }
                | Command::Dlq { .. }
                | Command::Probe { .. }
        )
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    dvmdash_core::telemetry::init_tracing(&cli.log);
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(err) => {
            eprintln!("error: cannot start the async runtime: {err}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(cli)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            error!(error = %format!("{err:#}"), "dvmdash failed");
            eprintln!("error: {err:#}");
            ExitCode::FAILURE
        }
    }
}

async fn run(cli: Cli) -> anyhow::Result<()> {
    let shutdown = dvmdash::signals::shutdown_token();
    let timeout = Duration::from_secs(cli.shutdown_timeout_secs.max(1));
    let metrics = if cli.command.serves_metrics() && !cli.metrics_addr.trim().is_empty() {
        let served = start_metrics(&cli.metrics_addr, cli.command.dependencies()).await?;
        // After the recorder is installed (by the metrics router), or the gauge goes nowhere.
        dvmdash_core::telemetry::record_build_info(cli.command.name());
        Some(served)
    } else {
        None
    };
    let result = match cli.command {
        Command::Collector {
            config,
            events,
            redis,
        } => {
            let role = dvmdash_collector::run(config, events, redis, shutdown.clone());
            bounded("collector", role, &shutdown, timeout).await
        }
        Command::Coordinator { config, redis } => {
            let role = dvmdash_coordinator::run(config, redis, shutdown.clone());
            bounded("coordinator", role, &shutdown, timeout).await
        }
        Command::Ingester {
            config,
            events,
            redis,
            clickhouse,
        } => {
            let role = dvmdash_ingester::run(config, events, redis, clickhouse, shutdown.clone());
            bounded("ingester", role, &shutdown, timeout).await
        }
        Command::Api {
            config,
            clickhouse,
            redis,
        } => {
            let listener = bind(config.api_addr).await?;
            let role = dvmdash_api::run(config, clickhouse, redis, listener, shutdown.clone());
            bounded("api", role, &shutdown, timeout).await
        }
        Command::All(args) => {
            let listener = bind(args.api.api_addr).await?;
            info!("dashboard at http://{}", listener.local_addr()?);
            dvmdash::stack::run_all(*args, listener, shutdown, timeout).await
        }
        Command::Demo(args) => dvmdash::demo::run(*args, shutdown, timeout).await,
        Command::Migrate {
            clickhouse,
            cluster,
            print,
        } => {
            clickhouse.validate().map_err(anyhow::Error::msg)?;
            if print {
                for statement in
                    dvmdash_core::store::migration_plan(&clickhouse.clickhouse_database, cluster.as_deref())?
                {
                    println!("{statement};\n");
                }
                return Ok(());
            }
            let report = dvmdash_core::store::migrate_on(&clickhouse, cluster.as_deref()).await?;
            println!(
                "migrations: {} applied ({}), {} already applied",
                report.applied.len(),
                report.applied.join(", "),
                report.already_applied
            );
            Ok(())
        }
        Command::Import { args, events, redis } => {
            let s = dvmdash::import::run(args, events, redis, shutdown).await?;
            println!(
                "imported: {} accepted, {} duplicates, {} rejected {:?}{}",
                s.accepted,
                s.duplicates,
                s.rejected_total(),
                s.rejected,
                if s.truncated { " (input was truncated)" } else { "" }
            );
            Ok(())
        }
        Command::Dlq { args, redis } => dvmdash::dlq::run(args, redis).await.map(|_| ()),
        Command::Probe { url, timeout_secs } => probe(&url, Duration::from_secs(timeout_secs)).await,
        Command::Bench(args) => dvmdash::bench::run(*args).await.map(|_| ()),
        Command::Simulate { relays, args } => {
            let report = dvmdash::simulate::run(args, relays, shutdown).await?;
            println!("published {} events for {} jobs", report.events, report.jobs);
            Ok(())
        }
    };
    if let Some((stop, role)) = metrics {
        stop.cancel();
        let _ = join_all(vec![role], timeout).await;
    }
    result
}

/// Runs one role; once shutdown is requested it has `timeout` to finish (flush, acknowledge),
/// after which we exit anyway: a role stuck on an unreachable Redis or ClickHouse must not outlive
/// its supervisor's grace period. Unacknowledged work stays queued in Redis for the next start.
async fn bounded(
    name: &str,
    role: impl std::future::Future<Output = anyhow::Result<()>>,
    shutdown: &CancellationToken,
    timeout: Duration,
) -> anyhow::Result<()> {
    tokio::pin!(role);
    tokio::select! {
        result = &mut role => return result,
        _ = shutdown.cancelled() => {}
    }
    match tokio::time::timeout(timeout, role).await {
        Ok(result) => result,
        Err(_) => anyhow::bail!(
            "the {name} did not stop within {timeout:?}; exiting anyway (unacknowledged work stays queued)"
        ),
    }
}

/// `dvmdash probe`: one GET; a 2xx answer is success, anything else an error naming it.
async fn probe(url: &str, timeout: Duration) -> anyhow::Result<()> {
    let res = reqwest::Client::builder()
        .timeout(timeout)
        .build()?
        .get(url)
        .send()
        .await
        .with_context(|| format!("{url} did not answer"))?;
    let status = res.status();
    let body = res.text().await.unwrap_or_default();
    anyhow::ensure!(
        status.is_success(),
        "{url} answered {status}: {}",
        dvmdash_core::nip90::truncate(&body, 500)
    );
    println!("{url}: {status}");
    Ok(())
}

async fn bind(addr: SocketAddr) -> anyhow::Result<tokio::net::TcpListener> {
    tokio::net::TcpListener::bind(addr)
        .await
        .with_context(|| format!("cannot listen on {addr}"))
}

/// Serves `/metrics`, `/health` (liveness) and `/ready` (the role's dependencies answer) on its
/// own address, apart from the public api.
async fn start_metrics(
    addr: &str,
    dependencies: Vec<Dependency>,
) -> anyhow::Result<(CancellationToken, Role)> {
    let addr: SocketAddr = addr
        .parse()
        .with_context(|| format!("invalid metrics address {addr:?}"))?;
    let listener = bind(addr).await?;
    info!(%addr, "metrics listening");
    let router =
        dvmdash_core::telemetry::metrics_router().merge(dvmdash_core::telemetry::health_router(dependencies));
    let stop = CancellationToken::new();
    let s = stop.clone();
    let role = Role::spawn("metrics", async move {
        dvmdash_core::telemetry::serve(listener, router, s)
            .await
            .map_err(Into::into)
    });
    Ok((stop, role))
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory as _;

    #[test]
    fn flags_are_consistent() {
        // Catches duplicate flags or groups across the flattened role configs.
        Cli::command().debug_assert();
    }

    #[test]
    fn every_role_parses_with_defaults() {
        for role in [
            "collector",
            "coordinator",
            "ingester",
            "api",
            "all",
            "demo",
            "migrate",
        ] {
            Cli::try_parse_from(["dvmdash", role]).unwrap_or_else(|e| panic!("{role}: {e}"));
        }
        assert!(
            Cli::try_parse_from(["dvmdash", "simulate"]).is_err(),
            "simulate needs relays"
        );
        assert!(Cli::try_parse_from(["dvmdash", "all", "--batch-size", "x"]).is_err());
    }
}
