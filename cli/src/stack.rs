//! `dvmdash all`: every role in one process, with ordered shutdown.
//!
//! Intake stops first (collector, coordinator, api), then the ingester finishes its batch in flight.
//! A role that fails stops the others, and the process exits non-zero. The end-to-end tests start
//! the stack through [`run_all`], the same function as the command.

use std::time::Duration;

use anyhow::Context as _;
use dvmdash_core::config::{ClickHouseArgs, EventArgs, RedisArgs};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use tracing::{error, info, warn};

/// Flags of `dvmdash all` (and `demo`): the union of every role's flags.
#[derive(Debug, Clone, clap::Args)]
pub struct AllArgs {
    #[command(flatten)]
    pub redis: RedisArgs,
    #[command(flatten)]
    pub clickhouse: ClickHouseArgs,
    #[command(flatten)]
    pub events: EventArgs,
    #[command(flatten)]
    pub collector: dvmdash_collector::Config,
    #[command(flatten)]
    pub coordinator: dvmdash_coordinator::Config,
    #[command(flatten)]
    pub ingester: dvmdash_ingester::Config,
    #[command(flatten)]
    pub api: dvmdash_api::Config,
    /// Do not apply ClickHouse migrations at start.
    #[arg(long, env = "DVMDASH_SKIP_MIGRATE")]
    pub skip_migrate: bool,
}

/// A role running as a task.
pub struct Role {
    pub name: &'static str,
    pub handle: JoinHandle<anyhow::Result<()>>,
}

impl Role {
    pub fn spawn(name: &'static str, fut: impl Future<Output = anyhow::Result<()>> + Send + 'static) -> Self {
        Role {
            name,
            handle: tokio::spawn(fut),
        }
    }
}

/// Waits for the first role to end (a failure while shutdown has not fired) and removes it from
/// `roles`, so it is not awaited twice. Never completes for an empty list.
pub async fn first_exit(roles: &mut Vec<Role>) -> (&'static str, anyhow::Result<()>) {
    if roles.is_empty() {
        return std::future::pending().await;
    }
    let (res, index) = {
        let futs = roles.iter_mut().map(|r| Box::pin(&mut r.handle));
        let (res, index, _) = futures_util::future::select_all(futs).await;
        (res, index)
    };
    let role = roles.remove(index);
    let res = match res {
        Ok(res) => res,
        Err(join) => Err(anyhow::anyhow!("{} panicked: {join}", role.name)),
    };
    (role.name, res)
}

/// Waits for roles to finish, each within `timeout` (then aborts it).
pub async fn join_all(roles: Vec<Role>, timeout: Duration) -> anyhow::Result<()> {
    let mut first_err = None;
    for mut role in roles {
        match tokio::time::timeout(timeout, &mut role.handle).await {
            Ok(Ok(Ok(()))) => {}
            Ok(Ok(Err(err))) => {
                error!(role = role.name, error = %format!("{err:#}"), "role failed");
                first_err.get_or_insert(err.context(format!("{} failed", role.name)));
            }
            Ok(Err(join)) if join.is_cancelled() => {}
            Ok(Err(join)) => {
                first_err.get_or_insert(anyhow::anyhow!("{} panicked: {join}", role.name));
            }
            Err(_) => {
                warn!(
                    role = role.name,
                    ?timeout,
                    "role did not stop in time, aborting it"
                );
                role.handle.abort();
            }
        }
    }
    first_err.map_or(Ok(()), Err)
}

/// Applies migrations, waiting (with backoff) for ClickHouse to answer. `false` on shutdown.
pub async fn migrate_when_ready(
    clickhouse: &ClickHouseArgs,
    shutdown: &CancellationToken,
) -> anyhow::Result<bool> {
    let mut delay = Duration::from_millis(200);
    loop {
        match dvmdash_core::store::ping(&clickhouse.server_client()).await {
            Ok(_) => break,
            Err(err) => {
                warn!(clickhouse = %clickhouse.clickhouse_url, error = %err, "clickhouse unavailable, retrying")
            }
        }
        tokio::select! {
            _ = shutdown.cancelled() => return Ok(false),
            _ = tokio::time::sleep(delay) => {}
        }
        delay = (delay * 2).min(Duration::from_secs(5));
    }
    let report = dvmdash_core::store::migrate(clickhouse)
        .await
        .context("migration failed")?;
    info!(applied = ?report.applied, already_applied = report.already_applied, "schema up to date");
    Ok(true)
}

/// Runs every role until `shutdown` or until one fails.
pub async fn run_all(
    args: AllArgs,
    api_listener: tokio::net::TcpListener,
    shutdown: CancellationToken,
    shutdown_timeout: Duration,
) -> anyhow::Result<()> {
    args.clickhouse.validate().map_err(anyhow::Error::msg)?;
    args.events.validate()?;
    args.collector.validate()?;
    args.coordinator.validate()?;
    args.ingester.validate()?;
    if !args.skip_migrate && !migrate_when_ready(&args.clickhouse, &shutdown).await? {
        return Ok(());
    }

    let intake = CancellationToken::new();
    let drain = CancellationToken::new();
    let mut front = vec![
        Role::spawn(
            "coordinator",
            dvmdash_coordinator::run(args.coordinator.clone(), args.redis.clone(), intake.clone()),
        ),
        Role::spawn(
            "collector",
            dvmdash_collector::run(
                args.collector.clone(),
                args.events.clone(),
                args.redis.clone(),
                intake.clone(),
            ),
        ),
        Role::spawn(
            "api",
            dvmdash_api::run(
                args.api.clone(),
                args.clickhouse.clone(),
                args.redis.clone(),
                api_listener,
                intake.clone(),
            ),
        ),
    ];
    let mut back = vec![Role::spawn(
        "ingester",
        dvmdash_ingester::run(
            args.ingester.clone(),
            args.events.clone(),
            args.redis.clone(),
            args.clickhouse.clone(),
            drain.clone(),
        ),
    )];

    let failure = tokio::select! {
        _ = shutdown.cancelled() => None,
        (name, res) = first_exit(&mut front) => Some((name, res)),
        (name, res) = first_exit(&mut back) => Some((name, res)),
    };
    if let Some((name, res)) = &failure {
        match res {
            Ok(()) => error!(role = name, "role stopped unexpectedly; stopping the others"),
            Err(err) => error!(role = name, error = %format!("{err:#}"), "role failed; stopping the others"),
        }
    }
    info!("stopping intake");
    intake.cancel();
    let front_result = join_all(front, shutdown_timeout).await;
    info!("draining the ingester");
    drain.cancel();
    let back_result = join_all(back, shutdown_timeout).await;
    match failure {
        Some((name, Err(err))) => Err(err.context(format!("{name} failed"))),
        Some((name, Ok(()))) => Err(anyhow::anyhow!("{name} stopped unexpectedly")),
        None => front_result.and(back_result),
    }
}
