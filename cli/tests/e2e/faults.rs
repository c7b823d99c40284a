//! Faults the pipeline must survive without losing or double-counting a single event: ingesters
//! killed with SIGKILL mid-stream, a 30-second ClickHouse outage, a collector dying while events are
//! being published to its relays, and a Redis restart under the whole stack.

use dvmdash_testkit as common;

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use dvmdash::simulate::Publisher;
use dvmdash_coordinator::assign;
use dvmdash_core::Event;
use dvmdash_core::config::{ClickHouseArgs, EventArgs, RedisArgs, Secret};
use dvmdash_core::dto::{RelayCounters, RelayPriority};
use dvmdash_core::redis_keys::RedisNames;
use dvmdash_core::stream::EventStream;
use dvmdash_core::stream_shards::{EventStreams, shard_of};
use dvmdash_core::telemetry::{now_millis, now_secs};
use dvmdash_core::validate::Keys;
use dvmdash_testkit::{ChDev, RedisServer, RoleProcess, free_port, isolated, redis_url, unique, wait_until};
use rand::rngs::StdRng;
use rand::{Rng as _, SeedableRng as _};
use redis::aio::MultiplexedConnection;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

// ----- events -----

const REQUEST: usize = 0;
const RESULT: usize = 1;
const FEEDBACK: usize = 2;
const STATUSES: [&str; 4] = ["processing", "success", "error", "payment-required"];

/// Distinct signed events and what they must add up to once stored.
#[derive(Default)]
struct Corpus {
    json: Vec<String>,
    ids: Vec<String>,
    /// Events per role: requests, results, feedback.
    roles: [u64; 3],
    /// (request, `p` target) pairs.
    directed: u64,
    /// The newest `created_at`.
    newest: u64,
}

impl Corpus {
    fn push(&mut self, event: &Event, json: String, role: usize) {
        self.ids.push(event.id.clone());
        self.json.push(json);
        self.roles[role] += 1;
        self.newest = self.newest.max(event.created_at);
    }

    fn append(&mut self, other: Corpus) {
        self.json.extend(other.json);
        self.ids.extend(other.ids);
        for (sum, n) in self.roles.iter_mut().zip(other.roles) {
            *sum += n;
        }
        self.directed += other.directed;
        self.newest = self.newest.max(other.newest);
    }

    /// Events per role as the rollups name the roles.
    fn expected_roles(&self) -> BTreeMap<String, u64> {
        [
            ("request", self.roles[REQUEST]),
            ("result", self.roles[RESULT]),
            ("feedback", self.roles[FEEDBACK]),
        ]
        .into_iter()
        .map(|(role, n)| (role.to_owned(), n))
        .collect()
    }
}

struct Gen<'a> {
    tag: &'a str,
    jobs: usize,
    newest: u64,
    span: u64,
    dvms: &'a [Keys],
    customers: &'a [Keys],
}

impl Gen<'_> {
    fn dvm(&self, job: usize, k: usize) -> &Keys {
        &self.dvms[(job + k) % self.dvms.len()]
    }

    /// Five events: a 5300 request asking one DVM, a 5050 request asking two DVMs (even jobs) or
    /// nobody (odd jobs), a result answering each (`e`, `p` and the request in a `request` tag) and
    /// feedback with a status on the first.
    fn job(&self, j: usize, out: &mut Corpus) {
        let created = self.newest - self.span + j as u64 * self.span / self.jobs as u64;
        let at = |later: u64| (created + later).min(self.newest);
        let customer = &self.customers[j % self.customers.len()];
        let p = |k: &Keys| vec!["p".to_owned(), k.pubkey_hex().to_owned()];
        let asked_two = if j.is_multiple_of(2) {
            vec![p(self.dvm(j, 1)), p(self.dvm(j, 2))]
        } else {
            Vec::new()
        };
        let requests = [(5300u16, vec![p(self.dvm(j, 0))]), (5050, asked_two)];
        for (i, (kind, targets)) in requests.into_iter().enumerate() {
            out.directed += targets.len() as u64;
            let content = format!("{} job {j} request {i}", self.tag);
            let request = customer.sign(at(0), kind, targets, content);
            let request_json = request.to_json();
            out.push(&request, request_json.clone(), REQUEST);
            let answer = vec![
                vec!["e".to_owned(), request.id.clone()],
                vec!["p".to_owned(), customer.pubkey_hex().to_owned()],
            ];
            let mut tags = answer.clone();
            tags.push(vec!["request".to_owned(), request_json]);
            let content = format!("{} job {j} result {i}", self.tag);
            let result = self
                .dvm(j, 3 + i)
                .sign(at(2 + i as u64), kind + 1000, tags, content);
            out.push(&result, result.to_json(), RESULT);
            if i == 0 {
                let status = STATUSES[j % STATUSES.len()];
                let mut tags = answer;
                tags.push(vec![
                    "status".to_owned(),
                    status.to_owned(),
                    format!("{status} ({})", self.tag),
                ]);
                let feedback = self.dvm(j, 5).sign(at(1), 7000, tags, String::new());
                out.push(&feedback, feedback.to_json(), FEEDBACK);
            }
        }
    }
}

/// `jobs` jobs (five events each) created over the `span` seconds up to `newest`, signed on every
/// core; `tag` makes them distinct from any other corpus.
fn corpus(tag: &str, jobs: usize, newest: u64, span: u64) -> Corpus {
    let dvms: Vec<Keys> = (0..8)
        .map(|k| Keys::from_seed(format!("faults-dvm-{k}").as_bytes()))
        .collect();
    let customers: Vec<Keys> = (0..24)
        .map(|k| Keys::from_seed(format!("faults-customer-{k}").as_bytes()))
        .collect();
    let g = &Gen {
        tag,
        jobs,
        newest,
        span,
        dvms: &dvms,
        customers: &customers,
    };
    let threads = std::thread::available_parallelism()
        .map_or(2, |n| n.get())
        .clamp(2, 8);
    let per = jobs.div_ceil(threads);
    let parts: Vec<Corpus> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..threads)
            .map(|t| {
                s.spawn(move || {
                    let mut part = Corpus::default();
                    for j in t * per..((t + 1) * per).min(jobs) {
                        g.job(j, &mut part);
                    }
                    part
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().expect("generator thread"))
            .collect()
    });
    let mut all = Corpus::default();
    for part in parts {
        all.append(part);
    }
    all
}

/// Every index of `n` once, in order, with about `ratio` of them appended a second time at a random
/// later position (so a copy lands in the same batch as its original or in a much later one).
fn with_repeats(n: usize, ratio: f64, rng: &mut StdRng) -> Vec<usize> {
    let mut order = Vec::with_capacity(n + n / 8);
    for i in 0..n {
        order.push(i);
        if rng.gen_bool(ratio) {
            order.push(rng.gen_range(0..=i));
        }
    }
    order
}

// ----- Redis -----

async fn redis_conn(url: &str) -> MultiplexedConnection {
    let config = redis::AsyncConnectionConfig::new().set_response_timeout(Some(Duration::from_secs(30)));
    redis::Client::open(url)
        .expect("redis url")
        .get_multiplexed_async_connection_with_config(&config)
        .await
        .expect("connect to redis")
}

/// Appends `json[i]` for every `i` of `order` to its event's shard (`ids[i]` says which), as a
/// collector would (fields `e`, `r`, `t`), in pipelines of `batch` spread evenly over `over`.
/// Returns the id of the last entry of every shard (empty for a shard that got none).
async fn xadd_paced(
    mut conn: MultiplexedConnection,
    streams: EventStreams,
    json: Vec<String>,
    ids: Vec<String>,
    order: Vec<usize>,
    batch: usize,
    over: Duration,
) -> Vec<String> {
    let pipelines = order.len().div_ceil(batch).max(1);
    let period = (over / pipelines as u32).max(Duration::from_millis(1));
    let mut ticker = tokio::time::interval(period);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut last = vec![String::new(); streams.all().len()];
    for chunk in order.chunks(batch) {
        ticker.tick().await;
        let mut by_shard: BTreeMap<usize, Vec<String>> = BTreeMap::new();
        for &i in chunk {
            let shard = usize::from(shard_of(&ids[i], streams.count()));
            by_shard.entry(shard).or_default().push(json[i].clone());
        }
        for (shard, batch) in by_shard {
            let appended = streams.all()[shard]
                .append(&mut conn, "wss://faults.test", now_millis(), &batch)
                .await
                .expect("append a batch");
            if let Some(id) = appended.last() {
                last[shard].clone_from(id);
            }
        }
    }
    last
}

/// Entries delivered and not acknowledged over every shard, and the last entry delivered to the
/// ingester group of each shard (empty while its group does not exist).
async fn shards_state(
    conn: &MultiplexedConnection,
    streams: &EventStreams,
) -> Result<(u64, Vec<String>), String> {
    let mut c = conn.clone();
    let (mut pending, mut delivered) = (0, Vec::new());
    for stream in streams.all() {
        let info = stream
            .group_info(&mut c)
            .await
            .map_err(|e| format!("reading the ingester group of {}: {e}", stream.key()))?;
        pending += info.pending;
        delivered.push(info.last_delivered.unwrap_or_default());
    }
    Ok((pending, delivered))
}

/// Entries delivered and not acknowledged, and the last entry delivered to the ingester group
/// (empty while the group does not exist).
async fn group_state(conn: &MultiplexedConnection, names: &RedisNames) -> Result<(u64, String), String> {
    let mut c = conn.clone();
    let info = EventStream::new(names)
        .group_info(&mut c)
        .await
        .map_err(|e| format!("reading the ingester group: {e}"))?;
    Ok((info.pending, info.last_delivered.unwrap_or_default()))
}

async fn dead_letters(conn: &MultiplexedConnection, names: &RedisNames) -> u64 {
    let mut c = conn.clone();
    EventStream::new(names).dead_letters(&mut c).await.unwrap_or(0)
}

/// Collector id -> relays assigned by the coordinator.
async fn assignments(conn: &MultiplexedConnection, names: &RedisNames) -> BTreeMap<String, Vec<String>> {
    let mut c = conn.clone();
    let raw: BTreeMap<String, String> = redis::cmd("HGETALL")
        .arg(names.assignments())
        .query_async(&mut c)
        .await
        .unwrap_or_default();
    raw.into_iter()
        .map(|(id, list)| (id, serde_json::from_str::<Vec<String>>(&list).unwrap_or_default()))
        .collect()
}

async fn resume_points(conn: &MultiplexedConnection, names: &RedisNames) -> BTreeMap<String, u64> {
    let mut c = conn.clone();
    redis::cmd("HGETALL")
        .arg(names.resume_points())
        .query_async(&mut c)
        .await
        .unwrap_or_default()
}

/// What collector `id` last published about `relay` with its heartbeat.
async fn relay_state(
    conn: &MultiplexedConnection,
    names: &RedisNames,
    id: &str,
    relay: &str,
) -> Option<RelayCounters> {
    let mut c = conn.clone();
    let raw: Option<String> = redis::cmd("HGET")
        .arg(names.collector(id))
        .arg(format!("relay:{relay}"))
        .query_async(&mut c)
        .await
        .ok()?;
    serde_json::from_str(&raw?).ok()
}

// ----- ClickHouse -----

/// One row per stored copy.
async fn stored_ids(ch: &clickhouse::Client) -> Result<Vec<String>, String> {
    ch.query("SELECT lower(hex(event_id)) FROM events_raw")
        .fetch_all::<String>()
        .await
        .map_err(|e| format!("reading stored ids: {e}"))
}

/// Rows of `events_raw` and distinct event ids among them.
async fn rows_and_ids(ch: &clickhouse::Client) -> Result<(u64, u64), String> {
    ch.query("SELECT count(), uniqExact(event_id) FROM events_raw")
        .fetch_one::<(u64, u64)>()
        .await
        .map_err(|e| format!("counting events_raw: {e}"))
}

async fn count(ch: &clickhouse::Client, sql: &str) -> u64 {
    ch.query(sql)
        .fetch_one::<u64>()
        .await
        .unwrap_or_else(|e| panic!("{sql}: {e}"))
}

/// `sum(events)` per role of a rollup.
async fn sums_by_role(ch: &clickhouse::Client, table: &str) -> BTreeMap<String, u64> {
    let sql = format!("SELECT toString(role) AS r, toUInt64(sum(events)) FROM {table} GROUP BY r");
    ch.query(&sql)
        .fetch_all::<(String, u64)>()
        .await
        .unwrap_or_else(|e| panic!("{sql}: {e}"))
        .into_iter()
        .collect()
}

/// Waits until an ingester has created the consumer group of every shard.
async fn wait_for_groups(conn: &MultiplexedConnection, streams: &EventStreams) {
    wait_until(
        "an ingester to create the consumer groups",
        Duration::from_secs(30),
        || async {
            let (_, delivered) = shards_state(conn, streams).await?;
            if delivered.iter().any(String::is_empty) {
                Err("no group yet".to_owned())
            } else {
                Ok(())
            }
        },
    )
    .await;
}

/// Waits until `distinct` events are stored and every entry up to `last` is acknowledged.
async fn wait_drained(
    ch: &clickhouse::Client,
    conn: &MultiplexedConnection,
    streams: &EventStreams,
    names: &RedisNames,
    distinct: u64,
    last: &[String],
) {
    wait_until(
        "every event to be stored and every entry acknowledged",
        Duration::from_secs(150),
        || async {
            let (rows, ids) = rows_and_ids(ch).await?;
            let (pending, delivered) = shards_state(conn, streams).await?;
            if ids == distinct && pending == 0 && delivered == last {
                return Ok(());
            }
            let dead = dead_letters(conn, names).await;
            Err(format!(
                "{ids} of {distinct} events stored in {rows} rows, {pending} entries pending, delivered up to \
                 {delivered:?} of {last:?}, {dead} dead-lettered"
            ))
        },
    )
    .await;
}

/// Every event stored once and counted once in every rollup.
async fn assert_counted_once(
    ch: &clickhouse::Client,
    distinct: u64,
    roles: &BTreeMap<String, u64>,
    directed: u64,
) {
    assert_eq!(
        rows_and_ids(ch).await.expect("counts"),
        (distinct, distinct),
        "events_raw holds every event exactly once"
    );
    assert_eq!(count(ch, "SELECT count() FROM event_ids FINAL").await, distinct);
    for table in ["stats_hourly", "stats_monthly", "activity"] {
        assert_eq!(
            &sums_by_role(ch, table).await,
            roles,
            "events per role in {table}"
        );
    }
    assert_eq!(
        count(ch, "SELECT toUInt64(sum(requests)) FROM directed_hourly").await,
        directed,
        "directed requests count each (request, p target) pair once"
    );
}

/// How the stored rows differ from the wanted ids.
struct IdDiff {
    missing: usize,
    unexpected: usize,
    /// Rows beyond the first of an id.
    copies: usize,
    example: Option<String>,
}

impl IdDiff {
    fn new(stored: &[String], want: &[String]) -> Self {
        let got: HashSet<&str> = stored.iter().map(String::as_str).collect();
        let wanted: HashSet<&str> = want.iter().map(String::as_str).collect();
        let missing: Vec<&str> = wanted.difference(&got).copied().collect();
        IdDiff {
            missing: missing.len(),
            unexpected: got.difference(&wanted).count(),
            copies: stored.len() - got.len(),
            example: missing.first().map(|id| (*id).to_owned()),
        }
    }

    fn exact(&self) -> bool {
        self.missing == 0 && self.unexpected == 0 && self.copies == 0
    }
}

impl std::fmt::Display for IdDiff {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} missing (e.g. {:?}), {} unexpected, {} extra copies",
            self.missing, self.example, self.unexpected, self.copies
        )
    }
}

async fn wait_stored(ch: &clickhouse::Client, ids: &[String], what: &str) {
    let started = Instant::now();
    wait_until(
        &format!("{what} to be stored"),
        Duration::from_secs(60),
        || async {
            let d = IdDiff::new(&stored_ids(ch).await?, ids);
            if d.missing == 0 {
                Ok(())
            } else {
                Err(d.to_string())
            }
        },
    )
    .await;
    eprintln!("{what} ({} events) stored in {:?}", ids.len(), started.elapsed());
}

// ----- roles and relays -----

fn spawn_ingester(
    redis: &RedisArgs,
    clickhouse: &ClickHouseArgs,
    consumer: &str,
    batch_size: usize,
    stop: &CancellationToken,
) -> JoinHandle<anyhow::Result<()>> {
    let config = dvmdash_ingester::Config {
        batch_size,
        batch_wait_ms: 100,
        consumer: consumer.to_owned(),
        claim_idle_ms: 2000,
        jobs_interval_ms: 500,
    };
    tokio::spawn(dvmdash_ingester::run(
        config,
        EventArgs::default(),
        redis.clone(),
        clickhouse.clone(),
        stop.clone(),
    ))
}

async fn stopped(name: &str, handle: JoinHandle<anyhow::Result<()>>) {
    match tokio::time::timeout(Duration::from_secs(30), handle).await {
        Ok(Ok(Ok(()))) => {}
        Ok(Ok(Err(err))) => panic!("{name} failed: {err:#}"),
        Ok(Err(join)) => panic!("{name} panicked: {join}"),
        Err(_) => panic!("{name} did not stop within 30 s"),
    }
}

fn redis_env(redis: &RedisArgs) -> Vec<(&'static str, String)> {
    vec![
        ("REDIS_URL", redis.redis_url.expose().to_owned()),
        ("DVMDASH_REDIS_PREFIX", redis.redis_prefix.clone()),
        ("DVMDASH_STREAM_SHARDS", redis.stream_shards.to_string()),
    ]
}

fn ingester_env(
    redis: &RedisArgs,
    clickhouse: &ClickHouseArgs,
    consumer: &str,
) -> Vec<(&'static str, String)> {
    let mut env = redis_env(redis);
    env.extend([
        ("CLICKHOUSE_URL", clickhouse.clickhouse_url.expose().to_owned()),
        ("CLICKHOUSE_DATABASE", clickhouse.clickhouse_database.clone()),
        ("DVMDASH_INGESTER_CONSUMER", consumer.to_owned()),
        ("DVMDASH_INGESTER_CLAIM_IDLE_MS", "2000".to_owned()),
        ("DVMDASH_INGESTER_BATCH_SIZE", "2000".to_owned()),
        ("DVMDASH_INGESTER_BATCH_WAIT_MS", "100".to_owned()),
    ]);
    env
}

/// Collectors look back only this far on first contact with a relay.
const LOOKBACK_SECS: u64 = 60;

fn collector_env(redis: &RedisArgs, id: &str) -> Vec<(&'static str, String)> {
    let mut env = redis_env(redis);
    env.extend([
        ("DVMDASH_COLLECTOR_ID", id.to_owned()),
        ("DVMDASH_COLLECTOR_HEARTBEAT_MS", "200".to_owned()),
        ("DVMDASH_COLLECTOR_LOOKBACK_SECS", LOOKBACK_SECS.to_string()),
    ]);
    env
}

/// Queues every event for every relay of `relays` (one client connection per relay).
async fn queue(relays: &[String], json: &[String]) -> Publisher {
    let publisher = Publisher::new(relays);
    for j in json {
        publisher
            .publish(&Event::from_json(j).expect("a generated event parses"))
            .await;
    }
    publisher
}

/// Waits until every relay accepted all `n` queued events.
async fn settled(publisher: &Publisher, n: usize) {
    assert!(
        publisher.settle(Duration::from_secs(60)).await,
        "every relay answered every event"
    );
    for (url, stats) in publisher.stats() {
        assert_eq!(
            stats.accepted.load(Ordering::Relaxed),
            n as u64,
            "{url} accepted every event"
        );
    }
}

async fn publish(relays: &[String], json: &[String]) {
    let publisher = queue(relays, json).await;
    settled(&publisher, json.len()).await;
}

// ----- the tests -----

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn ingesters_survive_sigkill_without_loss_or_double_counting() {
    sigkill_scenario("sigkill", 40_000, 1).await;
}

/// The same with the stream split four ways: each ingester process runs a loop per shard, and a
/// kill leaves batches pending on several shards at once.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sharded_stream_ingesters_survive_sigkill_without_loss_or_double_counting() {
    sigkill_scenario("sigkill-shards", 12_000, 4).await;
}

/// Two ingester processes take `jobs` jobs (five events each, a tenth of the entries repeated)
/// from a stream split `shards` ways while one of them is killed with SIGKILL at random moments.
async fn sigkill_scenario(tag: &str, jobs: usize, shards: u16) {
    let started = Instant::now();
    let (mut redis, clickhouse) = isolated();
    redis.stream_shards = shards;
    dvmdash_core::store::migrate(&clickhouse).await.expect("migrate");
    let streams = EventStreams::new(&redis.names(), shards);
    let ch = clickhouse.client();
    let conn = redis_conn(redis.redis_url.expose()).await;

    let events = corpus(tag, jobs, now_secs() - 60, 3 * 86_400);
    let distinct = events.ids.len() as u64;
    assert_eq!(distinct, 5 * jobs as u64, "every generated event is distinct");
    let roles = events.expected_roles();
    let directed = events.directed;
    let mut rng = StdRng::seed_from_u64(rand::random());
    let order = with_repeats(events.json.len(), 0.1, &mut rng);
    let entries = order.len();
    eprintln!(
        "[{tag}] {distinct} signed events, {entries} stream entries with repeats, generated in {:?}",
        started.elapsed()
    );

    let bin = env!("CARGO_BIN_EXE_dvmdash");
    let spawn =
        |consumer: &str| RoleProcess::spawn(bin, "ingester", &ingester_env(&redis, &clickhouse, consumer));
    let mut a = spawn("a");
    let mut b = spawn("b");
    wait_for_groups(&conn, &streams).await;

    let appending = Instant::now();
    let publishing = tokio::spawn(xadd_paced(
        redis_conn(redis.redis_url.expose()).await,
        streams.clone(),
        events.json,
        events.ids,
        order,
        1000,
        Duration::from_secs(12),
    ));
    // SIGKILL `a` at random moments while entries arrive (at least three times), restarting it
    // under the same name each time so it finds its own pending entries again.
    let mut kills = 0u32;
    while kills < 3 || !publishing.is_finished() {
        tokio::time::sleep(Duration::from_millis(rng.gen_range(1500..3500))).await;
        a.kill();
        kills += 1;
        eprintln!("[{tag}] ingester a killed ({kills}) at {:?}", appending.elapsed());
        tokio::time::sleep(Duration::from_millis(rng.gen_range(0..500))).await;
        a = spawn("a");
    }
    let last = publishing.await.expect("the appending task");
    eprintln!(
        "[{tag}] {entries} entries appended; a killed {kills} times; {:?} since the first append",
        appending.elapsed()
    );

    let draining = Instant::now();
    wait_drained(&ch, &conn, &streams, &redis.names(), distinct, &last).await;
    eprintln!("[{tag}] drained {:?} after the last append", draining.elapsed());

    assert_eq!(
        dead_letters(&conn, &redis.names()).await,
        0,
        "no entry was dead-lettered"
    );
    if shards > 1 {
        // Every shard carried its share (ids are hashes, so each gets about a quarter).
        let mut c = conn.clone();
        for stream in streams.all() {
            let groups = stream.groups(&mut c).await.expect("groups");
            assert_eq!(groups.len(), 1, "{}: {groups:?}", stream.key());
            let consumers = stream
                .consumers(&mut c, &groups[0].name)
                .await
                .expect("consumers");
            let names: BTreeSet<&str> = consumers.iter().map(|c| c.name.as_str()).collect();
            assert_eq!(
                names,
                BTreeSet::from(["a", "b"]),
                "both ingesters read {}",
                stream.key()
            );
        }
    }
    assert_counted_once(&ch, distinct, &roles, directed).await;
    assert!(
        a.is_running() && b.is_running(),
        "both ingesters are alive at the end"
    );
    eprintln!("[{tag}] done in {:?}", started.elapsed());
}

/// ClickHouse killed again and again while two ingesters insert two shards at once, each shard in
/// its own lane with no lock in common: an insert cut off at any point is retried or completed
/// from what its own lane committed, never mixed up with the other shard's, so every event is
/// stored and counted exactly once in every rollup.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn clickhouse_killed_while_two_shards_insert_loses_and_doubles_nothing() {
    let tag = "kill-lanes";
    let started = Instant::now();
    let dir = tempfile::tempdir().expect("temp dir");
    let data = dir.path().join("clickhouse");
    let port = free_port();
    let mut standin = ChDev::start_at(data.clone(), port).await;
    let clickhouse = ClickHouseArgs::new(standin.url.clone(), unique("dvmdash_lanes"));
    dvmdash_core::store::migrate(&clickhouse).await.expect("migrate");
    let (mut redis, _) = isolated();
    redis.stream_shards = 2;
    let streams = EventStreams::new(&redis.names(), 2);
    let ch = clickhouse.client();
    let conn = redis_conn(redis.redis_url.expose()).await;
    let events = corpus(tag, 3000, now_secs() - 60, 3 * 86_400);
    let distinct = events.ids.len() as u64;
    let (roles, directed) = (events.expected_roles(), events.directed);
    let mut rng = StdRng::seed_from_u64(rand::random());
    let order: Vec<usize> = (0..events.json.len()).collect();

    let bin = env!("CARGO_BIN_EXE_dvmdash");
    let spawn = |consumer: &str| {
        let mut env = ingester_env(&redis, &clickhouse, consumer);
        // Small batches, so kills find inserts under way on both shards.
        env.push(("DVMDASH_INGESTER_BATCH_SIZE", "500".to_owned()));
        RoleProcess::spawn(bin, "ingester", &env)
    };
    let (a, b) = (spawn("a"), spawn("b"));
    wait_for_groups(&conn, &streams).await;
    let publishing = tokio::spawn(xadd_paced(
        redis_conn(redis.redis_url.expose()).await,
        streams.clone(),
        events.json,
        events.ids,
        order,
        250,
        Duration::from_secs(10),
    ));
    let mut kills = 0u32;
    while kills < 3 || !publishing.is_finished() {
        tokio::time::sleep(Duration::from_millis(rng.gen_range(1000..3000))).await;
        let (stored, _) = rows_and_ids(&ch).await.unwrap_or_default();
        standin.kill();
        kills += 1;
        eprintln!("[{tag}] stand-in killed ({kills}) with {stored} rows stored");
        tokio::time::sleep(Duration::from_millis(rng.gen_range(200..1500))).await;
        standin = ChDev::start_at(data.clone(), port).await;
    }
    let last = publishing.await.expect("the appending task");
    wait_drained(&ch, &conn, &streams, &redis.names(), distinct, &last).await;
    let repaired: usize = [&a, &b]
        .iter()
        .map(|p| p.log_text().matches("partly committed; writing the rest").count())
        .sum();
    eprintln!(
        "[{tag}] {kills} kills, {repaired} partly committed inserts completed, done in {:?}",
        started.elapsed()
    );
    assert_eq!(
        dead_letters(&conn, &redis.names()).await,
        0,
        "no entry was dead-lettered"
    );
    assert_counted_once(&ch, distinct, &roles, directed).await;
    let lanes: Vec<(u8, u64)> = ch
        .query("SELECT lane, count() FROM events_raw GROUP BY lane ORDER BY lane")
        .fetch_all()
        .await
        .expect("lanes");
    assert_eq!(lanes.len(), 2, "both lanes inserted: {lanes:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn clickhouse_outage_of_30s_loses_nothing() {
    dvmdash_core::telemetry::init_tracing("warn");
    let started = Instant::now();
    let dir = tempfile::tempdir().expect("temp dir");
    let data = dir.path().join("clickhouse");
    let port = free_port();
    let mut standin = ChDev::start_at(data.clone(), port).await;
    let clickhouse = ClickHouseArgs::new(standin.url.clone(), unique("dvmdash_outage"));
    dvmdash_core::store::migrate(&clickhouse).await.expect("migrate");
    let redis = RedisArgs {
        redis_url: Secret::new(redis_url()),
        redis_prefix: unique("t"),
        stream_shards: 1,
    };
    let names = redis.names();
    let ch = clickhouse.client();
    let conn = redis_conn(redis.redis_url.expose()).await;
    let stop = CancellationToken::new();
    let ingester = spawn_ingester(&redis, &clickhouse, "i1", 500, &stop);

    let events = corpus("outage", 1200, now_secs() - 60, 86_400);
    let n = events.ids.len();
    let half = n / 2;
    let streams = EventStreams::new(&names, 1);
    xadd_paced(
        conn.clone(),
        streams.clone(),
        events.json[..half].to_vec(),
        events.ids[..half].to_vec(),
        (0..half).collect(),
        500,
        Duration::ZERO,
    )
    .await;
    let stored_before = wait_until("the first rows to be stored", Duration::from_secs(60), || async {
        let (rows, _) = rows_and_ids(&ch).await?;
        if rows > 0 {
            Ok(rows)
        } else {
            Err("no row yet".to_owned())
        }
    })
    .await;

    standin.kill();
    let killed = Instant::now();
    eprintln!("[outage] stand-in killed with {stored_before} of the first {half} events stored");
    let last = xadd_paced(
        conn.clone(),
        streams,
        events.json[half..].to_vec(),
        events.ids[half..].to_vec(),
        (0..n - half).collect(),
        500,
        Duration::ZERO,
    )
    .await
    .remove(0);
    tokio::time::sleep(Duration::from_secs(30).saturating_sub(killed.elapsed())).await;
    assert!(
        !ingester.is_finished(),
        "the ingester keeps running while ClickHouse is down"
    );
    let (pending, _) = group_state(&conn, &names).await.expect("group state");
    eprintln!(
        "[outage] {pending} entries pending after {:?} down",
        killed.elapsed()
    );

    standin = ChDev::start_at(data.clone(), port).await;
    assert_eq!(standin.port(), port, "the stand-in is back on its port");
    let restarted = Instant::now();
    wait_until(
        "every event of both batches to be stored and acknowledged",
        Duration::from_secs(90),
        || async {
            let d = IdDiff::new(&stored_ids(&ch).await?, &events.ids);
            let (pending, delivered) = group_state(&conn, &names).await?;
            if d.missing == 0 && pending == 0 && delivered == last {
                Ok(())
            } else {
                Err(format!(
                    "{d}; {pending} pending, delivered up to {delivered} of {last}; ingester ended: {}",
                    ingester.is_finished()
                ))
            }
        },
    )
    .await;
    eprintln!("[outage] caught up {:?} after the restart", restarted.elapsed());

    let d = IdDiff::new(&stored_ids(&ch).await.expect("stored ids"), &events.ids);
    assert!(d.exact(), "every event stored exactly once: {d}");
    let n = n as u64;
    assert_eq!(rows_and_ids(&ch).await.expect("counts"), (n, n));
    assert_eq!(count(&ch, "SELECT count() FROM event_ids FINAL").await, n);
    assert_eq!(
        sums_by_role(&ch, "stats_hourly").await,
        events.expected_roles(),
        "each event counted once"
    );
    assert_eq!(dead_letters(&conn, &names).await, 0, "no entry was dead-lettered");
    stop.cancel();
    stopped("ingester", ingester).await;
    eprintln!("[outage] done in {:?}", started.elapsed());
}

/// The other half of surviving a ClickHouse crash mid-insert, made deterministic. An insert
/// commits events_raw and each view's target one after another, so a crash can leave any subset;
/// a retry under the same token is then dropped by any table whose deduplication record outlived
/// its part. Here the batch has landed in every second view's target and not in events_raw (any
/// subset is possible to the code); the ingester's recovery must find exactly what landed from
/// the block numbers and write the rest, so that every table equals a database where the same
/// batch went in whole. Meanwhile another lane (another stream shard, which takes no lock of
/// this one) inserts events of its own into the same days and hours: none of its parts may be
/// taken for the failed insert's.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_partly_committed_insert_is_completed_in_exactly_the_missing_tables() {
    use dvmdash_ingester::recovery;
    dvmdash_core::telemetry::init_tracing("warn");
    let (redis, whole) = isolated();
    dvmdash_core::store::migrate(&whole).await.expect("migrate");
    let names = redis.names();
    let conn = redis_conn(redis.redis_url.expose()).await;
    let stop = CancellationToken::new();
    let ingester = spawn_ingester(&redis, &whole, "i1", 5000, &stop);
    let events = corpus("partial", 300, now_secs() - 60, 40 * 86_400);
    let n = events.ids.len();
    xadd_paced(
        conn.clone(),
        EventStreams::new(&names, 1),
        events.json.clone(),
        events.ids.clone(),
        (0..n).collect(),
        5000,
        Duration::ZERO,
    )
    .await;
    let w = whole.client();
    wait_until(
        "the batch to be stored whole",
        Duration::from_secs(60),
        || async {
            let d = IdDiff::new(&stored_ids(&w).await?, &events.ids);
            if d.exact() { Ok(()) } else { Err(d.to_string()) }
        },
    )
    .await;
    stop.cancel();
    stopped("ingester", ingester).await;
    let rows: Vec<dvmdash_core::store::RawEventRow> = w
        .query("SELECT ?fields FROM events_raw")
        .fetch_all()
        .await
        .expect("stored rows");

    let partial = ClickHouseArgs::new(
        whole.clickhouse_url.expose().to_owned(),
        unique("dvmdash_partial"),
    );
    dvmdash_core::store::migrate(&partial).await.expect("migrate");
    let p = partial.client();
    let targets = recovery::Targets::discover(&p)
        .await
        .expect("views on events_raw");
    assert!(targets.views.len() >= 6, "the rollups are found: {targets:?}");
    let before = recovery::blocks(&p).await.expect("blocks");
    let mut landed_targets = BTreeSet::new();
    for view in targets.views.iter().step_by(2) {
        let sql = format!(
            "INSERT INTO {t} SELECT * FROM {db}.{t}",
            t = view.target,
            db = whole.clickhouse_database
        );
        let in_whole = count(&w, &format!("SELECT count() FROM {}", view.target)).await;
        // The corpus has jobs only: its announcements table stays empty and writes no part.
        if in_whole > 0 && landed_targets.insert(view.target.clone()) {
            p.query(&sql)
                .execute()
                .await
                .unwrap_or_else(|e| panic!("{sql}: {e}"));
        }
    }
    // Another lane's insert lands meanwhile: other ids, the same partitions of events_raw, and
    // rows in every rollup (its own lane's partitions there).
    let other_lane = format!(
        "INSERT INTO events_raw SELECT * REPLACE (1 AS lane, toFixedString(reverse(event_id), 32) AS event_id) \
         FROM {}.events_raw",
        whole.clickhouse_database
    );
    p.query(&other_lane)
        .execute()
        .await
        .unwrap_or_else(|e| panic!("{other_lane}: {e}"));
    let refs: Vec<&dvmdash_core::store::RawEventRow> = rows.iter().collect();
    let writer = recovery::Writer { lane: 0, rows: &refs };
    let landed = recovery::committed_since(&p, &targets, &before, None, writer)
        .await
        .expect("what landed");
    assert_eq!(
        landed.keys().cloned().collect::<BTreeSet<_>>(),
        landed_targets,
        "lane 0's partitions and the batch's ids name exactly the tables written since"
    );
    // A full default batch (10 000 ids, 650 KB of hex) is asked about as one parameter, beyond
    // what the query text could hold (`max_query_size`, 256 KiB).
    let padding: Vec<dvmdash_core::store::RawEventRow> = (0u32..10_000)
        .map(|i| {
            let mut id = [0x5a; 32];
            id[..4].copy_from_slice(&i.to_be_bytes());
            dvmdash_core::store::RawEventRow::blank(id, id, 5300, 1, "request")
        })
        .collect();
    let full: Vec<&dvmdash_core::store::RawEventRow> = refs.iter().copied().chain(&padding).collect();
    let big = recovery::Writer { lane: 0, rows: &full };
    assert_eq!(
        recovery::committed_since(&p, &targets, &before, None, big)
            .await
            .expect("what landed, asked with 10 300 ids"),
        landed
    );

    recovery::complete(&p, &targets, writer, landed, &CancellationToken::new())
        .await
        .expect("completing the batch");
    let batch_ids = format!("(SELECT event_id FROM {}.events_raw)", whole.clickhouse_database);
    for table in targets.tables().collect::<BTreeSet<_>>() {
        let has_lane = count(
            &w,
            &format!(
                "SELECT count() FROM system.columns WHERE database = currentDatabase() \
                 AND table = '{table}' AND name = 'lane'"
            ),
        )
        .await
            > 0;
        // Lane 0's rows; in tables with no lane, the rows of the batch's own ids. FINAL would
        // merge rows of one key across partitions, so across lanes, before the filter.
        let only_lane_0 = if has_lane {
            "WHERE lane = 0 SETTINGS do_not_merge_across_partitions_select_final = 1".to_owned()
        } else if table == "event_ids" {
            format!("WHERE event_id IN {batch_ids}")
        } else {
            String::new()
        };
        let digest = |db: &str| {
            format!(
                "SELECT count(), toUInt64(groupBitXor(cityHash64(toString(tuple(*))))) FROM (SELECT * FROM {db}.{table} FINAL {only_lane_0})"
            )
        };
        let want: (u64, u64) = w
            .query(&digest(&whole.clickhouse_database))
            .fetch_one()
            .await
            .expect("whole");
        let got: (u64, u64) = p
            .query(&digest(&partial.clickhouse_database))
            .fetch_one()
            .await
            .expect("partial");
        assert!(
            want.0 > 0 || table == "announcements",
            "{table} holds the batch in the whole database"
        );
        assert_eq!(got, want, "{table}: (rows, digest) after completing the batch");
    }
    let twice: BTreeMap<String, u64> = events
        .expected_roles()
        .into_iter()
        .map(|(role, n)| (role, 2 * n))
        .collect();
    assert_eq!(
        sums_by_role(&p, "stats_hourly").await,
        twice,
        "each event of both lanes counted once"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_dead_collectors_relays_move_and_nothing_published_meanwhile_is_lost() {
    const TIMEOUT_SECS: u64 = 3;
    dvmdash_core::telemetry::init_tracing("warn");
    let started = Instant::now();
    let (redis, clickhouse) = isolated();
    dvmdash_core::store::migrate(&clickhouse).await.expect("migrate");
    let names = redis.names();
    let ch = clickhouse.client();
    let conn = redis_conn(redis.redis_url.expose()).await;

    let mut relays = Vec::new();
    let mut urls = Vec::new();
    for _ in 0..3 {
        let (relay, url) = dvmdash::demo::start_relay(0).await.expect("in-process relay");
        relays.push(relay);
        urls.push(dvmdash_core::nip90::normalize_relay_url(&url).expect("relay url"));
    }
    urls.sort();
    // Two collector ids the coordinator's hashing splits the three relays between.
    let weighted: Vec<(String, RelayPriority)> =
        urls.iter().map(|u| (u.clone(), RelayPriority::Normal)).collect();
    let ids: [String; 2] = (2..10)
        .map(|k| ["c1".to_owned(), format!("c{k}")])
        .find(|pair| assign::assign(&weighted, pair, 1).values().all(|l| !l.is_empty()))
        .expect("two collector ids sharing the relays");

    let stop = CancellationToken::new();
    let coordinator = tokio::spawn(dvmdash_coordinator::run(
        dvmdash_coordinator::Config {
            relays: urls.clone(),
            redundancy: 1,
            collector_timeout_secs: TIMEOUT_SECS,
            interval_ms: 200,
        },
        redis.clone(),
        stop.clone(),
    ));
    let ingester = spawn_ingester(&redis, &clickhouse, "i1", 1000, &stop);
    let bin = env!("CARGO_BIN_EXE_dvmdash");
    let mut collectors: BTreeMap<String, RoleProcess> = ids
        .iter()
        .map(|id| {
            (
                id.clone(),
                RoleProcess::spawn(bin, "collector", &collector_env(&redis, id)),
            )
        })
        .collect();

    let assigned = wait_until(
        "both collectors to watch their relays",
        Duration::from_secs(60),
        || async {
            let assigned = assignments(&conn, &names).await;
            if ids.iter().any(|id| assigned.get(id).is_none_or(Vec::is_empty))
                || assigned.values().map(Vec::len).sum::<usize>() != urls.len()
            {
                return Err(format!("assignments {assigned:?}"));
            }
            for (id, list) in &assigned {
                for url in list {
                    if !relay_state(&conn, &names, id, url)
                        .await
                        .is_some_and(|c| c.connected)
                    {
                        return Err(format!("{id} not connected to {url} yet"));
                    }
                }
            }
            Ok(assigned)
        },
    )
    .await;
    eprintln!("[collectors] {assigned:?} after {:?}", started.elapsed());

    // Batch A is recent and goes to every relay. Each relay gets its own batch B, dated before the
    // collectors' look-back: only a resume point (the newest event seen there, minus an overlap) can
    // bring it in once the relay has moved to the survivor.
    let batch_a = corpus("moved-A", 60, now_secs(), 60);
    let batches_b: Vec<Corpus> = (0..urls.len())
        .map(|i| corpus(&format!("moved-B{i}"), 20, now_secs() - 5 * LOOKBACK_SECS, 60))
        .collect();
    publish(&urls, &batch_a.json).await;
    wait_stored(&ch, &batch_a.ids, "[collectors] batch A").await;
    wait_until(
        "every relay's resume point to reach batch A",
        Duration::from_secs(10),
        || async {
            let points = resume_points(&conn, &names).await;
            if urls
                .iter()
                .all(|u| points.get(u).is_some_and(|p| *p >= batch_a.newest))
            {
                Ok(())
            } else {
                Err(format!("{points:?}, want {} for every relay", batch_a.newest))
            }
        },
    )
    .await;

    let held = |id: &str| assigned.get(id).map_or(0, Vec::len);
    let victim = if held(ids[0].as_str()) >= held(ids[1].as_str()) {
        ids[0].clone()
    } else {
        ids[1].clone()
    };
    let survivor = ids
        .iter()
        .find(|id| **id != victim)
        .expect("two collectors")
        .clone();
    let moved = assigned[&victim].clone();
    collectors.get_mut(&victim).expect("the victim's process").kill();
    let killed = Instant::now();
    let mut publishers = Vec::new();
    for (url, b) in urls.iter().zip(&batches_b) {
        publishers.push(queue(std::slice::from_ref(url), &b.json).await);
    }
    let took = wait_until(
        "the survivor to be assigned every relay",
        Duration::from_secs(TIMEOUT_SECS + 10),
        || async {
            let now = assignments(&conn, &names).await;
            let all = now.get(&survivor).is_some_and(|l| *l == urls);
            if all && now.get(&victim).is_none_or(Vec::is_empty) {
                Ok(killed.elapsed())
            } else {
                Err(format!("{now:?}"))
            }
        },
    )
    .await;
    eprintln!("[collectors] {victim} killed; {survivor} assigned {moved:?} as well after {took:?}");
    assert!(
        took <= Duration::from_secs(TIMEOUT_SECS + 3),
        "relays moved {took:?} after the kill, want at most {} s",
        TIMEOUT_SECS + 3
    );
    for (publisher, b) in publishers.iter().zip(&batches_b) {
        settled(publisher, b.json.len()).await;
    }

    wait_until(
        "every event published meanwhile to be stored",
        Duration::from_secs(60),
        || async {
            let stored = stored_ids(&ch).await?;
            let got: HashSet<&str> = stored.iter().map(String::as_str).collect();
            let missing: Vec<usize> = batches_b
                .iter()
                .map(|b| b.ids.iter().filter(|id| !got.contains(id.as_str())).count())
                .collect();
            if missing.iter().all(|m| *m == 0) {
                Ok(())
            } else {
                Err(format!(
                    "missing per relay {missing:?} of {urls:?} (moved: {moved:?}); ingester ended: {}",
                    ingester.is_finished()
                ))
            }
        },
    )
    .await;
    eprintln!(
        "[collectors] batch B stored {:?} after the kill",
        killed.elapsed()
    );

    let mut want = batch_a.ids.clone();
    for b in &batches_b {
        want.extend_from_slice(&b.ids);
    }
    let d = IdDiff::new(&stored_ids(&ch).await.expect("stored ids"), &want);
    assert!(d.exact(), "batches A and B stored exactly once: {d}");
    let relay_of: HashMap<String, String> = ch
        .query("SELECT lower(hex(event_id)), toString(relay) FROM events_raw")
        .fetch_all::<(String, String)>()
        .await
        .expect("relay of each event")
        .into_iter()
        .collect();
    for (url, b) in urls.iter().zip(&batches_b) {
        let elsewhere = b.ids.iter().filter(|id| relay_of.get(*id) != Some(url)).count();
        assert_eq!(
            elsewhere, 0,
            "events published only to {url} were collected from it"
        );
    }
    wait_until("no entry to be pending", Duration::from_secs(10), || async {
        let (pending, _) = group_state(&conn, &names).await?;
        if pending == 0 {
            Ok(())
        } else {
            Err(format!("{pending} pending"))
        }
    })
    .await;

    stop.cancel();
    stopped("coordinator", coordinator).await;
    stopped("ingester", ingester).await;
    drop(collectors);
    drop(relays);
    eprintln!("[collectors] done in {:?}", started.elapsed());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn redis_restart_is_survived_by_every_role() {
    let started = Instant::now();
    let dir = tempfile::tempdir().expect("temp dir");
    let mut server = RedisServer::start(dir.path().join("redis"), 0).await;
    let redis = RedisArgs {
        redis_url: Secret::new(server.url()),
        redis_prefix: unique("t"),
        stream_shards: 1,
    };
    let (_, clickhouse) = isolated();
    let (_relay, relay_url) = dvmdash::demo::start_relay(0).await.expect("in-process relay");
    let relays = std::slice::from_ref(&relay_url);
    let stack = common::start(common::args(redis, clickhouse, vec![relay_url.clone()])).await;
    let ch = stack.clickhouse.client();
    let batch_a = corpus("redis-A", 40, now_secs(), 60);
    let batch_b = corpus("redis-B", 40, now_secs(), 60);

    publish(relays, &batch_a.json).await;
    wait_stored(&ch, &batch_a.ids, "[redis] batch A").await;

    server.stop();
    let down = Instant::now();
    tokio::time::sleep(Duration::from_secs(2)).await;
    server = RedisServer::start(server.dir.clone(), server.port).await;
    eprintln!(
        "[redis] restarted on port {} after {:?} down",
        server.port,
        down.elapsed()
    );

    let restarted = Instant::now();
    publish(relays, &batch_b.json).await;
    let want = [batch_a.ids.clone(), batch_b.ids.clone()].concat();
    wait_until(
        "batch B to be stored and nothing to be pending",
        Duration::from_secs(60),
        || async {
            let d = IdDiff::new(&stored_ids(&ch).await?, &want);
            let pending = stack.pending().await;
            if d.missing == 0 && pending == 0 {
                Ok(())
            } else {
                Err(format!(
                    "{d}; {pending} pending; stack ended: {}",
                    stack.handle.is_finished()
                ))
            }
        },
    )
    .await;
    eprintln!(
        "[redis] batch B stored {:?} after the restart",
        restarted.elapsed()
    );
    let d = IdDiff::new(&stored_ids(&ch).await.expect("stored ids"), &want);
    assert!(d.exact(), "batches A and B stored exactly once: {d}");

    stack.stop().await;
    server.stop();
    eprintln!("[redis] done in {:?}", started.elapsed());
}

/// Redis losing everything (a restart without persistence, a mistaken FLUSHALL): the registry is
/// seeded again, the consumer group recreated, and collection resumes without restarting anything.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn redis_losing_its_data_is_survived_without_restarts() {
    let started = Instant::now();
    let dir = tempfile::tempdir().expect("temp dir");
    let mut server = RedisServer::start(dir.path().join("redis"), 0).await;
    let redis = RedisArgs {
        redis_url: Secret::new(server.url()),
        redis_prefix: unique("t"),
        stream_shards: 1,
    };
    let names = redis.names();
    let (_, clickhouse) = isolated();
    let (_relay, relay_url) = dvmdash::demo::start_relay(0).await.expect("in-process relay");
    let relays = std::slice::from_ref(&relay_url);
    let stack = common::start(common::args(redis, clickhouse, vec![relay_url.clone()])).await;
    let ch = stack.clickhouse.client();
    let batch_a = corpus("wipe-A", 40, now_secs(), 60);
    let batch_b = corpus("wipe-B", 40, now_secs(), 60);

    publish(relays, &batch_a.json).await;
    wait_stored(&ch, &batch_a.ids, "[wipe] batch A").await;

    let conn = redis_conn(&server.url()).await;
    let _: () = redis::cmd("FLUSHALL")
        .query_async(&mut conn.clone())
        .await
        .expect("FLUSHALL");
    let wiped = Instant::now();
    wait_until(
        "the registry to be seeded again and the relay reassigned",
        Duration::from_secs(30),
        || async {
            let a = assignments(&conn, &names).await;
            if a.values().any(|r| r.contains(&relay_url)) {
                Ok(())
            } else {
                Err(format!("assignments {a:?}"))
            }
        },
    )
    .await;
    eprintln!("[wipe] relay reassigned {:?} after the wipe", wiped.elapsed());

    publish(relays, &batch_b.json).await;
    let want = [batch_a.ids.clone(), batch_b.ids.clone()].concat();
    wait_until(
        "batch B to be stored and nothing to be pending",
        Duration::from_secs(60),
        || async {
            let d = IdDiff::new(&stored_ids(&ch).await?, &want);
            // The group is missing until an ingester notices and recreates it: an error, not a panic.
            let (pending, _) = group_state(&conn, &names).await?;
            if d.missing == 0 && pending == 0 {
                Ok(())
            } else {
                Err(format!(
                    "{d}; {pending} pending; stack ended: {}",
                    stack.handle.is_finished()
                ))
            }
        },
    )
    .await;
    eprintln!("[wipe] batch B stored {:?} after the wipe", wiped.elapsed());
    // Batch A is collected again (the seen-marks went with the wipe) but must not count twice.
    let d = IdDiff::new(&stored_ids(&ch).await.expect("stored ids"), &want);
    assert!(d.exact(), "batches A and B stored exactly once: {d}");
    let totals = sums_by_role(&ch, "stats_hourly").await;
    assert_eq!(
        totals,
        {
            let mut all = batch_a;
            all.append(batch_b);
            all.expected_roles()
        },
        "rollups count every event once"
    );

    stack.stop().await;
    server.stop();
    eprintln!("[wipe] done in {:?}", started.elapsed());
}
