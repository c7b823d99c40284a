//! `dvmdash bench`: measures the targets of docs/performance.md against real Redis and ClickHouse.
//!
//! - `verify`: collector verification (parse, id hash, BIP-340 signature), one core
//! - `collect`: three loopback relays holding the same events, one `dvmdash collector` reading them
//! - `ingest`: stream -> ingester -> ClickHouse, end to end, in rounds as the table grows
//! - `import`: an archive file through `dvmdash import` into the stream and on to ClickHouse
//! - `api`: cached requests per second and latency under concurrent load; uncached answer times
//! - `fresh`: from a relay having an event to the api counting it, through every role at defaults
//!
//! Every figure is measured on the spot; nothing is assumed. Results print as a table and can be
//! written as JSON (`--json`).

use std::io::Write as _;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::Context as _;
use dvmdash_api::cache::Served;
use dvmdash_core::config::{ClickHouseArgs, EventArgs, RedisArgs};
use dvmdash_core::stream_shards::{EventStreams, event_id_in, shard_of};
use dvmdash_core::validate::{Keys, Validator};
use serde::Serialize;
use tokio_util::sync::CancellationToken;

mod collect;
mod replay;
mod roles;
use roles::RoleProcess;

#[derive(Debug, Clone, clap::Args)]
pub struct BenchArgs {
    /// Which benchmarks: verify, collect, ingest, import, api, fresh (comma-separated), or all;
    /// and `replay` (with ingest, not part of all): every ingest round sent again afterwards must
    /// change no statistic.
    #[arg(long, value_delimiter = ',', default_value = "all")]
    pub only: Vec<String>,
    /// Events per ingest round.
    #[arg(long, default_value_t = 200_000)]
    pub round: usize,
    /// Ingest rounds (the table grows by one round each time).
    #[arg(long, default_value_t = 5)]
    pub rounds: usize,
    /// Ingesters taking the stream (each its own consumer, as separate processes would be).
    #[arg(long, default_value_t = 1)]
    pub ingesters: usize,
    /// Most stream entries per ClickHouse insert, as DVMDASH_INGESTER_BATCH_SIZE.
    #[arg(long, default_value_t = 10_000)]
    pub batch_size: usize,
    /// The ingesters' job finalizer interval, as DVMDASH_JOBS_INTERVAL_MS; 0 runs ingest without
    /// it, to see what it costs (the api benchmark needs it).
    #[arg(long, default_value_t = 2_000)]
    pub jobs_interval_ms: u64,
    /// Events each relay of the collector benchmark holds (the same events on all three).
    #[arg(long, default_value_t = 100_000)]
    pub collect_events: usize,
    /// Freshness probes (each a request published to a relay and waited for in the api).
    #[arg(long, default_value_t = 50)]
    pub fresh_probes: usize,
    /// Background traffic during the freshness probes, in events a second through the same relay.
    #[arg(long, default_value_t = 1000)]
    pub fresh_background: u64,
    /// Events in the import benchmark's archive.
    #[arg(long, default_value_t = 500_000)]
    pub import_events: usize,
    /// Seconds of load in the api benchmark.
    #[arg(long, default_value_t = 10)]
    pub api_seconds: u64,
    /// Concurrent connections in the api benchmark.
    #[arg(long, default_value_t = 32)]
    pub api_connections: usize,
    /// Write the results as JSON to this file too.
    #[arg(long)]
    pub json: Option<std::path::PathBuf>,
    /// Keep the benchmark database afterwards (its name is printed), to study queries on it.
    #[arg(long)]
    pub keep: bool,
    #[command(flatten)]
    pub redis: RedisArgs,
    #[command(flatten)]
    pub clickhouse: ClickHouseArgs,
}

#[derive(Debug, Default, Serialize)]
pub struct Results {
    pub machine: String,
    pub lines: Vec<Line>,
}

#[derive(Debug, Serialize)]
pub struct Line {
    pub bench: String,
    pub measure: String,
    pub value: f64,
    pub unit: String,
    pub target: String,
}

impl Results {
    pub(crate) fn add(&mut self, bench: &str, measure: &str, value: f64, unit: &str, target: &str) {
        println!("  {bench:<8} {measure:<44} {value:>14.1} {unit:<10} {target}");
        let _ = std::io::stdout().flush();
        self.lines.push(Line {
            bench: bench.into(),
            measure: measure.into(),
            value,
            unit: unit.into(),
            target: target.into(),
        });
    }
}

/// `n` distinct signed events, a third each requests, results and feedback, over the last 20 days.
pub fn events(n: usize, seed: &str) -> Vec<String> {
    events_over(n, seed, 20 * 86_400)
}

/// `n` distinct signed events, a third each requests, results and feedback, spread evenly over the
/// last `span` seconds.
pub fn events_over(n: usize, seed: &str, span: u64) -> Vec<String> {
    events_at(n, seed, span, dvmdash_core::telemetry::now_secs())
}

/// As [`events_over`], for the `span` seconds before `now`: the same arguments give the same
/// events (same ids; signatures differ, BIP-340 signing is randomized), so a round can be sent
/// again.
pub fn events_at(n: usize, seed: &str, span: u64, now: u64) -> Vec<String> {
    let threads = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(2);
    let per = n.div_ceil(threads);
    std::thread::scope(|s| {
        let handles: Vec<_> = (0..threads)
            .map(|t| {
                s.spawn(move || {
                    let customer = Keys::from_seed(format!("bench-{seed}-c{t}").as_bytes());
                    let dvm = Keys::from_seed(format!("bench-{seed}-d{}", t % 7).as_bytes());
                    let mut out = Vec::with_capacity(per);
                    let mut req = String::new();
                    for i in t * per..((t + 1) * per).min(n) {
                        let at = now - span + (i as u64 * span / n as u64);
                        let e = match i % 3 {
                            0 => {
                                let r = customer.sign(
                                    at,
                                    5300,
                                    vec![vec!["p".into(), dvm.pubkey_hex().into()]],
                                    format!("{seed} {i}"),
                                );
                                req = r.id.clone();
                                r
                            }
                            1 => dvm.sign(
                                at,
                                6300,
                                vec![
                                    vec!["e".into(), req.clone()],
                                    vec!["p".into(), customer.pubkey_hex().into()],
                                ],
                                format!("{seed} r{i}"),
                            ),
                            _ => dvm.sign(
                                at,
                                7000,
                                vec![
                                    vec!["e".into(), req.clone()],
                                    vec!["status".into(), "processing".into()],
                                ],
                                String::new(),
                            ),
                        };
                        out.push(e.to_json());
                    }
                    out
                })
            })
            .collect();
        handles
            .into_iter()
            .flat_map(|h| h.join().unwrap_or_default())
            .collect()
    })
}

/// The events of ingest round `round`: the same for the same `base`.
fn round_events(args: &BenchArgs, round: usize, base: u64) -> Vec<String> {
    events_at(args.round, &format!("ingest{round}"), 20 * 86_400, base)
}

/// Sends every ingest round again and checks that no statistic moved.
async fn replay_bench(
    r: &mut Results,
    args: &BenchArgs,
    clickhouse: &ClickHouseArgs,
    redis: &RedisArgs,
    base: u64,
    conn: &mut redis::aio::ConnectionManager,
    streams: &EventStreams,
) -> anyhow::Result<()> {
    let ch = clickhouse.client();
    let service = uncached_service(clickhouse);
    wait_jobs_linked(&ch, redis).await?;
    let before = replay::snapshot(&service, &ch).await?;
    let mut sent = 0u64;
    let mut sending = Duration::ZERO;
    for round in 0..args.rounds {
        let evs = by_shard(streams, round_events(args, round, base));
        sent += evs.iter().map(|(_, g)| g.len() as u64).sum::<u64>();
        let started = Instant::now();
        xadd_all(conn, streams, &evs).await?;
        sending += started.elapsed();
    }
    let started = Instant::now();
    replay::wait_consumed(conn, streams, Duration::from_secs(1800)).await?;
    let taken = sending + started.elapsed();
    wait_jobs_linked(&ch, redis).await?;
    let after = replay::snapshot(&service, &ch).await?;
    let changed = replay::differences(&before, &after, 20);
    r.add(
        "replay",
        &format!("{sent} events sent again, taken and dropped as duplicates"),
        sent as f64 / taken.as_secs_f64(),
        "events/s",
        "",
    );
    r.add(
        "replay",
        "statistics changed by the replay",
        changed.len() as f64,
        "",
        "0",
    );
    anyhow::ensure!(
        changed.is_empty(),
        "the replay changed statistics:\n{}",
        changed.join("\n")
    );
    Ok(())
}

/// The `p` quantile (0 to 1) of `sorted`; 0 when it is empty.
fn quantile(sorted: &[f64], p: f64) -> f64 {
    sorted
        .get(((sorted.len() as f64 * p) as usize).min(sorted.len().saturating_sub(1)))
        .copied()
        .unwrap_or(0.0)
}

/// The DVM list's and the kind list's queries over 30 days, parsed as the api parses them, with
/// `extra` parameters.
fn month_lists(
    extra: &[(&str, &str)],
) -> anyhow::Result<(dvmdash_api::params::ListQuery, dvmdash_api::params::ListQuery)> {
    let params = dvmdash_api::params::Params(
        std::iter::once(("timeRange", "30d"))
            .chain(extra.iter().copied())
            .map(|(k, v)| (k.to_owned(), v.to_owned()))
            .collect(),
    );
    let list = |sorts| params.list(sorts).map_err(|e| anyhow::anyhow!("{e}"));
    Ok((
        list(dvmdash_api::service::DVM_SORTS)?,
        list(dvmdash_api::service::KIND_SORTS)?,
    ))
}

/// The api's statistics computed straight from ClickHouse, without its cache.
fn uncached_service(clickhouse: &ClickHouseArgs) -> dvmdash_api::service::Service {
    dvmdash_api::service::Service {
        ch: clickhouse.client(),
        timeouts: dvmdash_api::queries::jobs::JobTimeouts::default(),
        alive_window_secs: dvmdash_api::Config::default().alive_window_secs,
    }
}

/// A round's events grouped by their shard of the stream, found before the clock starts.
fn by_shard(streams: &EventStreams, events: Vec<String>) -> Vec<(usize, Vec<String>)> {
    let mut groups: Vec<Vec<String>> = vec![Vec::new(); streams.all().len()];
    for e in events {
        let id = event_id_in(e.as_bytes()).unwrap_or_default();
        let shard = shard_of(&id, streams.count());
        groups[usize::from(shard)].push(e);
    }
    groups
        .into_iter()
        .enumerate()
        .filter(|(_, g)| !g.is_empty())
        .collect()
}

async fn xadd_all(
    conn: &mut redis::aio::ConnectionManager,
    streams: &EventStreams,
    groups: &[(usize, Vec<String>)],
) -> anyhow::Result<()> {
    // Uncapped: a round may queue more than the stream cap on purpose, to measure the ingester.
    for (shard, events) in groups {
        for chunk in events.chunks(2000) {
            streams.all()[*shard]
                .append_uncapped(conn, "bench", dvmdash_core::telemetry::now_millis(), chunk)
                .await?;
        }
    }
    Ok(())
}

async fn stored(ch: &clickhouse::Client) -> anyhow::Result<u64> {
    Ok(ch
        .query("SELECT count() FROM events_raw")
        .fetch_one::<u64>()
        .await?)
}

/// Waits until `events_raw` holds `want` rows, failing after `limit` or when an ingester process
/// has exited.
async fn wait_stored(
    ch: &clickhouse::Client,
    want: u64,
    limit: Duration,
    ingesters: &mut [RoleProcess],
) -> anyhow::Result<Duration> {
    let started = Instant::now();
    loop {
        for p in ingesters.iter_mut() {
            p.check_alive()?;
        }
        if stored(ch).await? >= want {
            return Ok(started.elapsed());
        }
        anyhow::ensure!(
            started.elapsed() < limit,
            "ingestion did not finish within {limit:?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

pub async fn run(args: BenchArgs) -> anyhow::Result<Results> {
    // Checked here: an ingester refusing its settings would leave the benchmark waiting.
    anyhow::ensure!(
        (1..=1_000_000).contains(&args.batch_size),
        "--batch-size must be 1 to 1000000"
    );
    anyhow::ensure!((1..=64).contains(&args.ingesters), "--ingesters must be 1 to 64");
    anyhow::ensure!(
        args.jobs_interval_ms > 0 || !args.only.iter().any(|o| o == "api" || o == "all"),
        "--jobs-interval-ms 0 leaves the job ledger unlinked: run it with --only ingest"
    );
    let all = args.only.iter().any(|o| o == "all");
    let wants = |name: &str| all || args.only.iter().any(|o| o == name);
    let replay = args.only.iter().any(|o| o == "replay");
    anyhow::ensure!(
        !replay || wants("ingest"),
        "replay sends the ingest rounds again: add ingest"
    );
    // The ingest rounds' and the import's events end here, so a replay can make the same ones
    // again. An hour back: every request is then past its timeout (at most an hour by default),
    // so whether a job is final does not change while the benchmark runs.
    let base = dvmdash_core::telemetry::now_secs() - 3600;
    let mut r = Results {
        machine: format!(
            "{} cores, {}",
            std::thread::available_parallelism().map(|n| n.get()).unwrap_or(0),
            std::fs::read_to_string("/proc/cpuinfo")
                .ok()
                .and_then(|c| c.lines().find(|l| l.starts_with("model name")).map(|l| l
                    .split(':')
                    .nth(1)
                    .unwrap_or("")
                    .trim()
                    .to_owned()))
                .unwrap_or_default()
        ),
        ..Results::default()
    };
    println!("dvmdash bench on {}", r.machine);
    println!(
        "  {:<8} {:<44} {:>14} {:<10} target",
        "bench", "measure", "value", "unit"
    );

    if wants("verify") {
        let evs = events(20_000, "verify");
        let v = Validator::default();
        let now = dvmdash_core::telemetry::now_secs();
        let started = Instant::now();
        let mut ok = 0;
        for e in &evs {
            ok += usize::from(v.verify(e, now).is_ok());
        }
        anyhow::ensure!(ok == evs.len(), "every benchmark event verifies");
        let rate = evs.len() as f64 / started.elapsed().as_secs_f64();
        r.add(
            "verify",
            "verified events per second, one core",
            rate,
            "events/s",
            ">= 25000",
        );
    }

    // One database and key prefix for the rest, dropped at the end.
    let suffix = format!("{:08x}", rand::random::<u32>());
    if wants("collect") {
        collect::run(&mut r, &args, &suffix)
            .await
            .context("collector benchmark")?;
    }
    let clickhouse = ClickHouseArgs {
        clickhouse_database: format!("dvmdash_bench_{suffix}"),
        ..args.clickhouse.clone()
    };
    let redis = RedisArgs {
        redis_prefix: format!("bench{suffix}"),
        ..args.redis.clone()
    };
    let needs_stack = wants("ingest") || wants("import") || wants("api");
    if needs_stack {
        dvmdash_core::store::migrate(&clickhouse)
            .await
            .context("migrating the benchmark database")?;
    }
    let ch = clickhouse.client();
    let stop = CancellationToken::new();
    // Each ingester is its own `dvmdash ingester` process, as deployed: its peak memory and CPU
    // time are its own, not the benchmark's (which signs every event it sends).
    let mut ingesters: Vec<RoleProcess> = Vec::new();
    if needs_stack {
        for i in 0..args.ingesters.max(1) {
            ingesters.push(RoleProcess::spawn(
                format!("ingester {i}"),
                &["ingester"],
                &[
                    ("DVMDASH_INGESTER_CONSUMER", format!("bench-{suffix}-{i}")),
                    ("DVMDASH_INGESTER_BATCH_WAIT_MS", "50".into()),
                    ("DVMDASH_INGESTER_BATCH_SIZE", args.batch_size.to_string()),
                    ("DVMDASH_JOBS_INTERVAL_MS", args.jobs_interval_ms.to_string()),
                ],
                &redis,
                Some(&clickhouse),
            )?);
        }
    }
    let result = async {
        let mut conn = match redis.connect(&stop).await? {
            Some(c) => c,
            None => anyhow::bail!("stopped"),
        };
        let streams = redis.event_streams(&mut conn).await?;
        let mut total = 0u64;
        if wants("ingest") {
            // The dashboard's two busiest answers, asked for all along (a browser on the overview).
            let probe = DashboardProbe::start(&clickhouse, &redis).await?;
            for round in 0..args.rounds {
                let evs = by_shard(&streams, round_events(&args, round, base));
                let n: usize = evs.iter().map(|(_, g)| g.len()).sum();
                let started = Instant::now();
                probe.ingesting.store(true, Ordering::Relaxed);
                xadd_all(&mut conn, &streams, &evs).await?;
                total += n as u64;
                wait_stored(&ch, total, Duration::from_secs(1800), &mut ingesters).await?;
                probe.ingesting.store(false, Ordering::Relaxed);
                let rate = n as f64 / started.elapsed().as_secs_f64();
                r.add(
                    "ingest",
                    &format!(
                        "end to end ({} ingester(s), {} shard(s), batch {}), table at {total} events",
                        args.ingesters.max(1),
                        redis.stream_shards,
                        args.batch_size
                    ),
                    rate,
                    "events/s",
                    ">= 100000, flat",
                );
            }
            probe.finish(&mut r).await?;
        }
        if wants("import") {
            let dir = tempfile_dir()?;
            let path = dir.join("archive.json");
            let evs = events_at(args.import_events, "import", 20 * 86_400, base);
            std::fs::write(&path, format!("[{}]", evs.join(",\n")))?;
            drop(evs);
            let started = Instant::now();
            let import = RoleProcess::spawn(
                "import",
                &[
                    "import",
                    &path.display().to_string(),
                    "--state-dir",
                    &dir.join("state").display().to_string(),
                    "--restart",
                ],
                &[],
                &redis,
                None,
            )?;
            let used = import.wait_exit(Duration::from_secs(1800)).await?;
            let read = started.elapsed();
            // Every archive event is valid and new, so all of them must arrive.
            let accepted = args.import_events as u64;
            total += accepted;
            wait_stored(&ch, total, Duration::from_secs(1800), &mut ingesters).await?;
            let rate = accepted as f64 / started.elapsed().as_secs_f64();
            r.add(
                "import",
                "archive read, verified and queued",
                accepted as f64 / read.as_secs_f64(),
                "events/s",
                "",
            );
            r.add(
                "import",
                "import process: peak resident memory",
                used.peak_mb,
                "MB",
                "< 150",
            );
            r.add(
                "import",
                "import process: CPU time per event",
                used.cpu_secs * 1e6 / accepted as f64,
                "us",
                "",
            );
            r.add(
                "import",
                "archive to ClickHouse, end to end",
                rate,
                "events/s",
                ">= 50000",
            );
            let _ = std::fs::remove_dir_all(&dir);
        }
        if wants("api") {
            api_bench(&mut r, &args, &clickhouse, &redis, total).await?;
        }
        if replay {
            replay_bench(&mut r, &args, &clickhouse, &redis, base, &mut conn, &streams).await?;
        }
        Ok::<_, anyhow::Error>(total)
    }
    .await;
    let total_events = result.as_ref().copied().unwrap_or(0);
    stop.cancel();
    for p in ingesters {
        let name = p.name.clone();
        match p.stop().await {
            Ok(u) => {
                r.add(
                    "roles",
                    &format!("{name}: peak resident memory"),
                    u.peak_mb,
                    "MB",
                    "< 150",
                );
                if total_events > 0 {
                    r.add(
                        "roles",
                        &format!(
                            "{name}: CPU time per event stored{}",
                            if replay { " (and its replayed copy)" } else { "" }
                        ),
                        u.cpu_secs * 1e6 / total_events as f64,
                        "us",
                        "",
                    );
                }
            }
            Err(err) => eprintln!("{name}: {err:#}"),
        }
    }
    let result = match result {
        Ok(_) if wants("fresh") => freshness_bench(&mut r, &args, &suffix)
            .await
            .context("freshness benchmark"),
        other => other.map(|_| ()),
    };
    if needs_stack && args.keep {
        println!("kept database {}", clickhouse.clickhouse_database);
    } else if needs_stack {
        drop_database(&clickhouse).await;
        // Streams, the recorded shard count, job touches, the import's seen markers: all of it.
        if let Ok(Some(mut c)) = redis.connect(&CancellationToken::new()).await {
            delete_prefix(&mut c, &redis.redis_prefix).await;
        }
    }
    result?;
    if let Some(path) = &args.json {
        std::fs::write(path, serde_json::to_vec_pretty(&r)?)?;
    }
    Ok(r)
}

/// Deletes every key under `prefix` (the benchmark's own; a failure only leaves them behind).
pub(crate) async fn delete_prefix(conn: &mut redis::aio::ConnectionManager, prefix: &str) {
    let mut cursor = 0u64;
    loop {
        let Ok((next, keys)): redis::RedisResult<(u64, Vec<String>)> = redis::cmd("SCAN")
            .arg(cursor)
            .arg("MATCH")
            .arg(format!("{prefix}:*"))
            .arg("COUNT")
            .arg(1000)
            .query_async(conn)
            .await
        else {
            return;
        };
        if !keys.is_empty() {
            let _: redis::RedisResult<()> = redis::cmd("UNLINK").arg(&keys).query_async(conn).await;
        }
        if next == 0 {
            return;
        }
        cursor = next;
    }
}

/// Removes a benchmark database; a failure only leaves it behind, so it is not an error.
async fn drop_database(clickhouse: &ClickHouseArgs) {
    let _ = clickhouse
        .server_client()
        .query(&format!(
            "DROP DATABASE IF EXISTS `{}`",
            clickhouse.clickhouse_database
        ))
        .execute()
        .await;
}

fn tempfile_dir() -> anyhow::Result<std::path::PathBuf> {
    let dir = std::env::temp_dir().join(format!("dvmdash-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    Ok(dir)
}

/// Time from a relay accepting an event to the api (cached, as users see it) counting it: an
/// in-process relay, every role of `dvmdash all` at its default settings, one request at a time.
/// Publishes signed results (kind 6300: the probes' request count never moves with them) to
/// `relay` at `rate` events a second until `stop`. Returns how many it published and over how long.
async fn background_traffic(
    relay: String,
    rate: u64,
    seed: String,
    stop: CancellationToken,
) -> (u64, Duration) {
    let publisher = crate::simulate::publisher::Publisher::new(&[relay]);
    let dvm = Keys::from_seed(format!("fresh-background-{seed}").as_bytes());
    let answered = vec![vec!["e".to_owned(), "ab".repeat(32)]];
    let mut tick = tokio::time::interval(Duration::from_millis(10));
    let started = Instant::now();
    let mut sent = 0u64;
    while !stop.is_cancelled() {
        tick.tick().await;
        let due = (started.elapsed().as_secs_f64() * rate as f64) as u64;
        while sent < due {
            let now = dvmdash_core::telemetry::now_secs();
            let e = dvm.sign(now, 6300, answered.clone(), format!("background {sent}"));
            publisher.publish(&e).await;
            sent += 1;
        }
    }
    (sent, started.elapsed())
}

async fn freshness_bench(r: &mut Results, args: &BenchArgs, suffix: &str) -> anyhow::Result<()> {
    let probes = args.fresh_probes.max(1);
    let clickhouse = ClickHouseArgs {
        clickhouse_database: format!("dvmdash_bench_{suffix}_fresh"),
        ..args.clickhouse.clone()
    };
    let redis = RedisArgs {
        redis_prefix: format!("bench{suffix}fresh"),
        ..args.redis.clone()
    };
    let (_relay, relay_url) = crate::demo::start_relay(0).await?;
    let stack_args = crate::stack::AllArgs {
        redis: redis.clone(),
        clickhouse: clickhouse.clone(),
        events: EventArgs::default(),
        collector: dvmdash_collector::Config::default(),
        coordinator: dvmdash_coordinator::Config {
            relays: vec![relay_url.clone()],
            ..Default::default()
        },
        ingester: dvmdash_ingester::Config::default(),
        api: dvmdash_api::Config::default(),
        skip_migrate: false,
    };
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let url: hyper::Uri = format!(
        "http://{}/api/stats/global/latest?timeRange=1h",
        listener.local_addr()?
    )
    .parse()?;
    let stop = CancellationToken::new();
    let stack = tokio::spawn(crate::stack::run_all(
        stack_args,
        listener,
        stop.clone(),
        Duration::from_secs(10),
    ));
    let client: hyper_util::client::legacy::Client<_, http_body_util::Empty<bytes::Bytes>> =
        hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
            .build(hyper_util::client::legacy::connect::HttpConnector::new());
    let requests = |client: hyper_util::client::legacy::Client<_, _>, url: hyper::Uri| async move {
        use http_body_util::BodyExt as _;
        let resp = client.get(url).await.ok()?;
        if !resp.status().is_success() {
            return None;
        }
        let body = resp.into_body().collect().await.ok()?.to_bytes();
        let stats: dvmdash_core::dto::GlobalStats = serde_json::from_slice(&body).ok()?;
        Some(stats.total_requests)
    };
    let publisher = crate::simulate::publisher::Publisher::new(std::slice::from_ref(&relay_url));
    let customer = Keys::from_seed(format!("fresh-{suffix}").as_bytes());
    let background_stop = CancellationToken::new();
    let mut background = None;
    let result = async {
        let mut seen = 0u64;
        let mut lat = Vec::new();
        // Probe 0 warms up: the stack starts, the relay is assigned and subscribed. The background
        // traffic starts after it.
        for probe in 0..=probes {
            if probe == 1 && args.fresh_background > 0 {
                background = Some(tokio::spawn(background_traffic(
                    relay_url.clone(),
                    args.fresh_background,
                    suffix.to_owned(),
                    background_stop.clone(),
                )));
            }
            let event = customer.sign(
                dvmdash_core::telemetry::now_secs(),
                5300,
                Vec::new(),
                format!("freshness probe {probe}"),
            );
            let limit = if probe == 0 { 120 } else { 30 };
            let started = Instant::now();
            publisher.publish(&event).await;
            loop {
                if let Some(n) = requests(client.clone(), url.clone()).await
                    && n > seen
                {
                    seen = n;
                    break;
                }
                anyhow::ensure!(
                    started.elapsed() < Duration::from_secs(limit),
                    "probe {probe} not counted within {limit} s"
                );
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
            if probe > 0 {
                lat.push(started.elapsed().as_secs_f64() * 1000.0);
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        background_stop.cancel();
        let (sent, over) = match background.take() {
            Some(h) => h.await?,
            None => (0, Duration::from_secs(1)),
        };
        // The load really flowed: the background events reach ClickHouse too.
        let ch = clickhouse.client();
        let deadline = Instant::now() + Duration::from_secs(60);
        let stored = loop {
            let n: u64 = ch
                .query("SELECT count() FROM events_raw WHERE kind = 6300")
                .fetch_one()
                .await?;
            if n >= sent || Instant::now() > deadline {
                break n;
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        };
        r.add(
            "fresh",
            "background events stored (of those published)",
            100.0 * stored as f64 / sent.max(1) as f64,
            "%",
            "100",
        );
        lat.sort_by(f64::total_cmp);
        // Nearest rank: with fewer than 100 probes the p99 is the slowest one.
        let p99 = lat[((lat.len() as f64 * 0.99).ceil() as usize).clamp(1, lat.len()) - 1];
        r.add(
            "fresh",
            "background traffic through the relay during the probes",
            sent as f64 / over.as_secs_f64(),
            "events/s",
            ">= 1000",
        );
        r.add(
            "fresh",
            &format!("relay to api, median of {}", lat.len()),
            lat[lat.len() / 2],
            "ms",
            "",
        );
        r.add("fresh", "relay to api, p99", p99, "ms", "< 2000");
        r.add("fresh", "relay to api, slowest", lat[lat.len() - 1], "ms", "");
        Ok::<_, anyhow::Error>(())
    }
    .await;
    // Also when a probe failed early.
    background_stop.cancel();
    drop(publisher);
    stop.cancel();
    let _ = stack.await;
    if !args.keep {
        drop_database(&clickhouse).await;
    }
    result
}

/// `dvmdash api` as its own process on a loopback port, started and answering: router, cache,
/// background refresher, data-version watcher and warm-up, as deployed.
async fn serve_api(
    clickhouse: &ClickHouseArgs,
    redis: &RedisArgs,
) -> anyhow::Result<(std::net::SocketAddr, RoleProcess)> {
    let addr = roles::free_addr()?;
    let mut api = RoleProcess::spawn(
        "api",
        &["api"],
        &[
            ("DVMDASH_API_ADDR", addr.to_string()),
            ("DVMDASH_API_RATE_PER_SEC", "0".into()),
        ],
        redis,
        Some(clickhouse),
    )?;
    roles::wait_serving(
        &mut api,
        &format!("http://{addr}/health"),
        Duration::from_secs(60),
    )
    .await?;
    Ok((addr, api))
}

/// Stops the api process and records its peak memory.
async fn stop_api(r: &mut Results, bench: &str, api: RoleProcess) -> anyhow::Result<()> {
    let u = api.stop().await?;
    r.add(
        bench,
        "api process: peak resident memory",
        u.peak_mb,
        "MB",
        "< 150",
    );
    Ok(())
}

/// One fetch of the dashboard probe: page, milliseconds, age of the answer in seconds, how served.
type Fetch = (&'static str, f64, f64, Served);

/// The overview and the DVM list fetched from the real router, through its cache, every 20 ms
/// while the ingest rounds run: how fast they answer and how far behind the data they are.
struct DashboardProbe {
    stop: CancellationToken,
    api: RoleProcess,
    /// Set while a round is being ingested: fetches count only then, not while the benchmark
    /// signs the next round (its own load, which a real backfill does not have).
    ingesting: Arc<AtomicBool>,
    worker: tokio::sync::oneshot::Receiver<anyhow::Result<Vec<Fetch>>>,
}

impl DashboardProbe {
    async fn start(clickhouse: &ClickHouseArgs, redis: &RedisArgs) -> anyhow::Result<Self> {
        let (addr, api) = serve_api(clickhouse, redis).await?;
        let stop = CancellationToken::new();
        let pages = [
            (
                "overview",
                format!("http://{addr}/api/stats/global/latest?timeRange=30d"),
            ),
            ("DVM list", format!("http://{addr}/api/dvms?timeRange=30d")),
        ];
        let until = stop.clone();
        let ingesting = Arc::new(AtomicBool::new(false));
        let counting = ingesting.clone();
        // On its own thread and runtime: the benchmark's runtime is busy sending the round's
        // entries, and a fetch waiting behind those tasks would time the benchmark, not the api.
        let (done, worker) = tokio::sync::oneshot::channel();
        let probe = async move {
            let client: hyper_util::client::legacy::Client<_, http_body_util::Empty<bytes::Bytes>> =
                hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
                    .build(hyper_util::client::legacy::connect::HttpConnector::new());
            let mut seen: Vec<Fetch> = Vec::new();
            while !until.is_cancelled() {
                for (name, url) in &pages {
                    let started = Instant::now();
                    let resp = client.get(url.parse()?).await?;
                    anyhow::ensure!(resp.status().is_success(), "{name}: HTTP {}", resp.status());
                    // How the api served it: from the cache, behind the data while recomputed
                    // (`stale`), or computed for this fetch (`miss`).
                    let served = resp
                        .headers()
                        .get("x-cache")
                        .map_or(Served::Hit, |v| Served::from_header(v.as_bytes()));
                    use http_body_util::BodyExt as _;
                    let body = resp.into_body().collect().await?.to_bytes();
                    let ms = started.elapsed().as_secs_f64() * 1000.0;
                    let v: serde_json::Value = serde_json::from_slice(&body)?;
                    // `timestamp`: the moment the numbers describe (the DVM list's: the answers clock).
                    let age = v
                        .get("timestamp")
                        .and_then(|t| t.as_str())
                        .and_then(dvmdash_core::dto::parse_rfc3339)
                        .map_or(f64::NAN, |at| {
                            dvmdash_core::telemetry::now_secs().saturating_sub(at) as f64
                        });
                    if counting.load(Ordering::Relaxed) {
                        seen.push((*name, ms, age, served));
                    }
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            Ok(seen)
        };
        std::thread::Builder::new()
            .name("dashboard-probe".into())
            .spawn(move || {
                let result = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .map_err(anyhow::Error::from)
                    .and_then(|rt| rt.block_on(probe));
                let _ = done.send(result);
            })?;
        Ok(DashboardProbe {
            stop,
            api,
            ingesting,
            worker,
        })
    }

    async fn finish(self, r: &mut Results) -> anyhow::Result<()> {
        self.stop.cancel();
        let seen = self
            .worker
            .await
            .context("the dashboard probe's thread ended")??;
        stop_api(r, "ingest", self.api).await?;
        for name in ["overview", "DVM list"] {
            let mut ms: Vec<f64> = seen.iter().filter(|s| s.0 == name).map(|s| s.1).collect();
            let oldest = seen
                .iter()
                .filter(|s| s.0 == name && s.2.is_finite())
                .map(|s| s.2)
                .reduce(f64::max);
            ms.sort_by(f64::total_cmp);
            r.add(
                "ingest",
                &format!("{name} during ingest, median of {} fetches", ms.len()),
                quantile(&ms, 0.5),
                "ms",
                "",
            );
            r.add(
                "ingest",
                &format!("{name} during ingest, p99 of {} fetches", ms.len()),
                quantile(&ms, 0.99),
                "ms",
                "< 5",
            );
            // The p99 hides the few fetches that waited for a computation; the slowest shows them.
            r.add(
                "ingest",
                &format!("{name} during ingest, slowest fetch"),
                ms.last().copied().unwrap_or(0.0),
                "ms",
                "",
            );
            for (how, label) in [
                (
                    Served::Stale,
                    "served behind the data while recomputed (X-Cache: stale)",
                ),
                (Served::Miss, "computed for the fetch (X-Cache: miss)"),
            ] {
                let n = seen.iter().filter(|s| s.0 == name && s.3 == how).count();
                r.add(
                    "ingest",
                    &format!("{name} during ingest, {label}"),
                    n as f64,
                    "fetches",
                    "",
                );
            }
            if let Some(oldest) = oldest {
                r.add(
                    "ingest",
                    &format!("{name} during ingest, oldest answer served"),
                    oldest,
                    "s",
                    &format!(
                        "<= {} + one computation",
                        dvmdash_api::cache::MAX_PATIENCE.as_secs()
                    ),
                );
            }
        }
        Ok(())
    }
}

/// Waits until the job finalizer has linked everything stored: no touches waiting or being
/// linked, and a clock past the moment the wait began. How long that took.
async fn wait_jobs_linked(ch: &clickhouse::Client, redis: &RedisArgs) -> anyhow::Result<Duration> {
    let started = Instant::now();
    let since = u32::try_from(dvmdash_core::telemetry::now_secs()).unwrap_or(u32::MAX);
    let mut conn = redis
        .connect(&CancellationToken::new())
        .await?
        .context("Redis is gone")?;
    let names = redis.names();
    loop {
        let waiting: (u64, u64, u64, u64) = redis::pipe()
            .scard(names.job_touches())
            .scard(names.job_touches_linking())
            .scard(names.job_answers().0)
            .scard(names.job_answers().1)
            .query_async(&mut conn)
            .await?;
        let as_of = dvmdash_core::job_ledger::as_of(ch).await?.unwrap_or(0);
        if waiting == (0, 0, 0, 0) && as_of > since {
            return Ok(started.elapsed());
        }
        anyhow::ensure!(
            started.elapsed() < Duration::from_secs(1800),
            "the job ledger did not catch up within 30 minutes ({waiting:?} touches waiting)"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

async fn api_bench(
    r: &mut Results,
    args: &BenchArgs,
    clickhouse: &ClickHouseArgs,
    redis: &RedisArgs,
    events_stored: u64,
) -> anyhow::Result<()> {
    // The job ledger first: the finalizer, running in the ingesters, links what the rounds left.
    let ch = clickhouse.client();
    let caught_up = wait_jobs_linked(&ch, redis).await?;
    r.add(
        "api",
        "job ledger caught up, after the last insert",
        caught_up.as_secs_f64(),
        "s",
        "",
    );
    let latest: u32 = ch
        .query("SELECT toUInt32(max(hour)) FROM job_ledger")
        .fetch_one()
        .await?;
    let mut passes = Vec::new();
    for i in 0..3u64 {
        let started = Instant::now();
        dvmdash_core::job_ledger::relink(&ch, &[latest], u64::MAX / 2 + i).await?;
        passes.push(started.elapsed().as_secs_f64() * 1000.0);
    }
    passes.sort_by(f64::total_cmp);
    r.add(
        "api",
        &format!("job finalizer: relinking one hour at {events_stored} events"),
        passes[1],
        "ms",
        "",
    );

    // Uncached: each answer computed straight from ClickHouse, median of five.
    let service = uncached_service(clickhouse);
    use dvmdash_core::dto::TimeRange;
    let (dvm_q, kind_q) = month_lists(&[])?;
    macro_rules! timed {
        ($name:expr, $fut:expr) => {{
            let mut times = Vec::new();
            for _ in 0..5 {
                let started = Instant::now();
                $fut.await.map_err(|e| anyhow::anyhow!("{}: {e}", $name))?;
                times.push(started.elapsed().as_secs_f64() * 1000.0);
            }
            times.sort_by(f64::total_cmp);
            r.add(
                "api",
                &format!("uncached {} at {} events", $name, events_stored),
                times[2],
                "ms",
                "< 100",
            );
        }};
    }
    timed!("global 24h", service.global(TimeRange::Day));
    timed!("global 30d", service.global(TimeRange::Month));
    timed!("dvm list 30d", service.dvm_list(&dvm_q));
    timed!("kind list 30d", service.kind_list(&kind_q));
    timed!(
        "performance 30d",
        service.performance(TimeRange::Month, dvmdash_api::queries::jobs::Grouping::Dvm)
    );
    timed!("competition 30d", service.competition(TimeRange::Month));
    timed!("reach 30d", service.reach(TimeRange::Month));
    timed!("prices 30d", service.prices(TimeRange::Month, false));
    timed!("what's new 30d", service.whats_new(TimeRange::Month));
    timed!("kind 5300 detail 30d", service.kind(5300, TimeRange::Month));
    let busiest: String = ch
        .query("SELECT lower(hex(pubkey)) FROM stats_hourly WHERE role = 'result' GROUP BY pubkey ORDER BY sum(events) DESC LIMIT 1")
        .fetch_one()
        .await?;
    let busiest = dvmdash_core::event::parse_hex32(&busiest).context("the busiest DVM's pubkey")?;
    timed!("busiest DVM detail 30d", service.dvm(busiest, TimeRange::Month));
    timed!("monthly history", service.history());

    // Cached: the real router on a socket, many connections asking for a warm answer.
    let (addr, api) = serve_api(clickhouse, redis).await?;
    let url: hyper::Uri = format!("http://{addr}/api/stats/global/latest?timeRange=24h").parse()?;
    let client: hyper_util::client::legacy::Client<_, http_body_util::Empty<bytes::Bytes>> =
        hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
            .build(hyper_util::client::legacy::connect::HttpConnector::new());
    client.get(url.clone()).await?; // warm
    let done = Arc::new(AtomicBool::new(false));
    let count = Arc::new(AtomicU64::new(0));
    let mut workers = Vec::new();
    for _ in 0..args.api_connections {
        let (client, url, done, count) = (client.clone(), url.clone(), done.clone(), count.clone());
        workers.push(tokio::spawn(async move {
            let mut lat = Vec::new();
            while !done.load(Ordering::Relaxed) {
                let started = Instant::now();
                if let Ok(resp) = client.get(url.clone()).await
                    && resp.status().is_success()
                {
                    use http_body_util::BodyExt as _;
                    let _ = resp.into_body().collect().await;
                    lat.push(started.elapsed().as_secs_f64() * 1000.0);
                    count.fetch_add(1, Ordering::Relaxed);
                }
            }
            lat
        }));
    }
    let started = Instant::now();
    tokio::time::sleep(Duration::from_secs(args.api_seconds)).await;
    done.store(true, Ordering::Relaxed);
    let mut lat: Vec<f64> = Vec::new();
    for w in workers {
        lat.extend(w.await.unwrap_or_default());
    }
    let elapsed = started.elapsed().as_secs_f64();
    lat.sort_by(f64::total_cmp);
    r.add(
        "api",
        &format!("cached requests per second, {} connections", args.api_connections),
        count.load(Ordering::Relaxed) as f64 / elapsed,
        "req/s",
        ">= 20000",
    );
    r.add("api", "cached latency p50", quantile(&lat, 0.5), "ms", "");
    r.add("api", "cached latency p99", quantile(&lat, 0.99), "ms", "< 5");
    stop_api(r, "api", api).await
}
