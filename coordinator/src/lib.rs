//! dvmdash-coordinator: keeps the relay registry and tells each live collector which relays to watch.
//!
//! - [`assign`] - rendezvous hashing of relays onto collectors, with redundancy
//! - `registry` (in `dvmdash-core`) - the relay registry in Redis, seeded here from `DVMDASH_RELAYS`
//!
//! Several coordinators may run; a lease in Redis (`SET NX PX`, renewed by its holder) makes exactly
//! one of them the leader that writes assignments. Collectors heartbeat into a sorted set; one that
//! misses heartbeats for the timeout is dropped and its relays move to the others within one tick.

pub mod assign;

pub use dvmdash_core::registry;

use std::time::Duration;

use anyhow::Context as _;
use dvmdash_core::config::RedisArgs;
use dvmdash_core::lease::Lease;
use dvmdash_core::redis_keys::RedisNames;
use dvmdash_core::telemetry::now_millis;
use metrics::{counter, gauge};
use redis::aio::ConnectionManager;
use tokio_util::sync::CancellationToken;
use tracing::{debug, info, warn};

pub const LEADER: &str = "dvmdash_coordinator_leader";
pub const COLLECTORS_ALIVE: &str = "dvmdash_coordinator_collectors_alive";
pub const RELAYS: &str = "dvmdash_coordinator_relays";
pub const UNWATCHED: &str = "dvmdash_coordinator_unwatched_relays";
pub const REBALANCES: &str = "dvmdash_coordinator_rebalances_total";
/// Per live collector (label `collector`), as the leader reads the heartbeats. A collector that
/// left keeps its series with `NaN` age and 0 relays (the exporter cannot drop a series).
pub const HEARTBEAT_AGE: &str = "dvmdash_coordinator_collector_heartbeat_age_seconds";
pub const RELAYS_ASSIGNED: &str = "dvmdash_coordinator_collector_relays_assigned";

/// Coordinator flags.
#[derive(Debug, Clone, clap::Args)]
#[group(id = "coordinator_config")]
pub struct Config {
    /// Relays added to the registry at start (comma-separated); the registry keeps them afterwards.
    #[arg(long = "relays", env = "DVMDASH_RELAYS", value_delimiter = ',')]
    pub relays: Vec<String>,
    /// How many collectors watch each relay when that many are alive.
    #[arg(long, env = "DVMDASH_RELAY_REDUNDANCY", default_value_t = 2)]
    pub redundancy: usize,
    /// A collector silent for this long is presumed dead and its relays move.
    #[arg(long, env = "DVMDASH_COLLECTOR_TIMEOUT_SECS", default_value_t = 15)]
    pub collector_timeout_secs: u64,
    /// How often assignments are recomputed, in milliseconds.
    #[arg(long, env = "DVMDASH_COORDINATOR_INTERVAL_MS", default_value_t = 1000)]
    pub interval_ms: u64,
}

impl Default for Config {
    fn default() -> Self {
        dvmdash_core::config::clap_defaults()
    }
}

impl Config {
    pub fn validate(&self) -> anyhow::Result<()> {
        anyhow::ensure!(
            (1..=10).contains(&self.redundancy),
            "relay redundancy must be 1..=10"
        );
        anyhow::ensure!(
            self.collector_timeout_secs >= 2,
            "collector timeout must be at least 2 s"
        );
        anyhow::ensure!(
            self.interval_ms >= 50,
            "coordinator interval must be at least 50 ms"
        );
        registry::normalize_all(&self.relays)?;
        Ok(())
    }
}

pub fn describe() {
    use metrics::{describe_counter, describe_gauge};
    describe_gauge!(LEADER, "1 while this coordinator holds the leader lease");
    describe_gauge!(
        COLLECTORS_ALIVE,
        "collectors with a recent heartbeat (leader's view)"
    );
    describe_gauge!(RELAYS, "relays in the registry (leader's view)");
    describe_gauge!(
        UNWATCHED,
        "relays with no live collector assigned (leader's view)"
    );
    describe_counter!(REBALANCES, "times the relay assignment changed");
    describe_gauge!(
        HEARTBEAT_AGE,
        metrics::Unit::Seconds,
        "seconds since each live collector's last heartbeat (leader's view; NaN once it left)"
    );
    describe_gauge!(
        RELAYS_ASSIGNED,
        "relays assigned to each collector (leader's view; 0 once it left)"
    );
    metrics::counter!(REBALANCES).increment(0);
}

/// Runs until `shutdown`, then gives up the lease so another coordinator takes over at once.
pub async fn run(config: Config, redis: RedisArgs, shutdown: CancellationToken) -> anyhow::Result<()> {
    config.validate().context("invalid coordinator configuration")?;
    describe();
    let Some(mut conn) = redis.connect(&shutdown).await? else {
        return Ok(());
    };
    let names = redis.names();
    let seeds = registry::normalize_all(&config.relays)?;
    let added = registry::seed(&mut conn, &names, &seeds)
        .await
        .context("failed to seed the relay registry")?;
    info!(seeded = seeds.len(), added, "relay registry ready");

    let id = format!("coordinator-{:016x}", rand::random::<u64>());
    let interval = Duration::from_millis(config.interval_ms);
    let lease_ms = (config.interval_ms * 5).max(3000);
    let lease = Lease::new(
        names.coordinator_leader(),
        id.as_str(),
        Duration::from_millis(lease_ms),
    );
    let mut leading = false;
    let mut reported = std::collections::BTreeSet::new();
    let mut ticker = tokio::time::interval(interval);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => break,
            _ = ticker.tick() => {}
        }
        let now_leading = match lease.acquire_or_renew(&mut conn).await {
            Ok(held) => held,
            Err(err) => {
                warn!(error = %err, "leader lease check failed");
                false
            }
        };
        if now_leading != leading {
            info!(coordinator = %id, leading = now_leading, "coordinator leadership changed");
            leading = now_leading;
        }
        gauge!(LEADER).set(if leading { 1.0 } else { 0.0 });
        if leading && let Err(err) = registry::seed(&mut conn, &names, &seeds).await {
            warn!(error = %err, "seeding the relay registry failed");
        }
        if leading && let Err(err) = rebalance(&mut conn, &names, &config, &mut reported).await {
            warn!(error = %err, "rebalance failed");
        }
    }
    if let Err(err) = lease.release(&mut conn).await {
        warn!(error = %err, "could not give up the leader lease; it expires on its own");
    }
    info!("coordinator stopped");
    Ok(())
}

/// Per-collector gauges: heartbeat age and relays assigned; collectors reported before and gone
/// now get `NaN` and 0, so no series keeps claiming a live heartbeat.
fn report_collectors(
    beats: &[(String, f64)],
    desired: &std::collections::BTreeMap<String, Vec<String>>,
    reported: &mut std::collections::BTreeSet<String>,
) {
    let now = now_millis() as f64;
    let live: std::collections::BTreeSet<String> = beats.iter().map(|(c, _)| c.clone()).collect();
    for (c, beat_ms) in beats {
        let label = [("collector", c.clone())];
        gauge!(HEARTBEAT_AGE, &label).set(((now - beat_ms) / 1000.0).max(0.0));
        gauge!(RELAYS_ASSIGNED, &label).set(desired.get(c).map_or(0, Vec::len) as f64);
    }
    for gone in reported.difference(&live) {
        let label = [("collector", gone.clone())];
        gauge!(HEARTBEAT_AGE, &label).set(f64::NAN);
        gauge!(RELAYS_ASSIGNED, &label).set(0.0);
    }
    reported.extend(live);
}

/// One leader tick: drop dead collectors, recompute assignments, write them if they changed.
async fn rebalance(
    conn: &mut ConnectionManager,
    names: &RedisNames,
    config: &Config,
    reported: &mut std::collections::BTreeSet<String>,
) -> anyhow::Result<()> {
    let cutoff = now_millis().saturating_sub(config.collector_timeout_secs * 1000);
    let dead: Vec<String> = redis::cmd("ZRANGEBYSCORE")
        .arg(names.collectors())
        .arg("-inf")
        .arg(format!("({cutoff}"))
        .query_async(conn)
        .await?;
    if !dead.is_empty() {
        warn!(collectors = ?dead, "collectors missed their heartbeats; reassigning their relays");
        let _: i64 = redis::cmd("ZREM")
            .arg(names.collectors())
            .arg(&dead)
            .query_async(conn)
            .await?;
    }
    let beats: Vec<(String, f64)> = redis::cmd("ZRANGE")
        .arg(names.collectors())
        .arg(0)
        .arg(-1)
        .arg("WITHSCORES")
        .query_async(conn)
        .await?;
    let mut collectors: Vec<String> = beats.iter().map(|(c, _)| c.clone()).collect();
    collectors.sort();
    let relays = registry::list(conn, names).await?;
    let relay_list: Vec<_> = relays.iter().map(|(url, e)| (url.clone(), e.priority)).collect();
    let desired = assign::assign(&relay_list, &collectors, config.redundancy);

    report_collectors(&beats, &desired, reported);
    gauge!(COLLECTORS_ALIVE).set(collectors.len() as f64);
    gauge!(RELAYS).set(relays.len() as f64);
    gauge!(UNWATCHED).set(if collectors.is_empty() {
        relays.len() as f64
    } else {
        0.0
    });
    if collectors.is_empty() && !relays.is_empty() {
        debug!(relays = relays.len(), "no live collector: relays are unwatched");
    }

    let current: std::collections::BTreeMap<String, String> = redis::cmd("HGETALL")
        .arg(names.assignments())
        .query_async(conn)
        .await?;
    let desired_json: std::collections::BTreeMap<String, String> = desired
        .iter()
        .map(|(c, list)| {
            (
                c.clone(),
                serde_json::to_string(list).unwrap_or_else(|_| "[]".into()),
            )
        })
        .collect();
    if current != desired_json {
        let mut pipe = redis::pipe();
        pipe.atomic().del(names.assignments()).ignore();
        if !desired_json.is_empty() {
            let pairs: Vec<(&String, &String)> = desired_json.iter().collect();
            pipe.hset_multiple(names.assignments(), &pairs).ignore();
        }
        pipe.query_async::<()>(conn).await?;
        counter!(REBALANCES).increment(1);
        info!(
            collectors = collectors.len(),
            relays = relays.len(),
            "relay assignments updated"
        );
    }
    Ok(())
}
