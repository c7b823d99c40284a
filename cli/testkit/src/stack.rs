//! A whole dvmdash for one test: every role in-process through the same `run_all` as `dvmdash all`,
//! on its own Redis key prefix and ClickHouse database, tuned to react fast. Also the oracle the
//! end-to-end tests compare against: the headline counts computed from the events themselves.

use std::collections::{BTreeMap, HashSet};
use std::time::Duration;

use dvmdash::stack::AllArgs;
use dvmdash_core::config::{ClickHouseArgs, EventArgs, RedisArgs};
use dvmdash_core::dto::{GlobalStats, RelayCounters};
use dvmdash_core::stream_shards::EventStreams;
use dvmdash_core::{Event, KindFilter, Role};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::http::{get_json, http_get};
use crate::wait::wait_for;

pub struct Stack {
    pub base: String,
    pub redis: RedisArgs,
    pub clickhouse: ClickHouseArgs,
    pub shutdown: CancellationToken,
    pub handle: JoinHandle<anyhow::Result<()>>,
}

/// Flags for a fast-reacting test stack watching `relays`.
pub fn args(redis: RedisArgs, clickhouse: ClickHouseArgs, relays: Vec<String>) -> AllArgs {
    AllArgs {
        redis,
        clickhouse,
        events: EventArgs::default(),
        collector: dvmdash_collector::Config {
            collector_id: "c1".into(),
            heartbeat_ms: 200,
            ..Default::default()
        },
        coordinator: dvmdash_coordinator::Config {
            relays,
            interval_ms: 200,
            ..Default::default()
        },
        ingester: dvmdash_ingester::Config {
            consumer: "i1".into(),
            batch_wait_ms: 100,
            ..Default::default()
        },
        api: dvmdash_api::Config {
            ui_dir: std::env::var("DVMDASH_TEST_UI_DIR").unwrap_or_default().into(),
            ..Default::default()
        },
        skip_migrate: false,
    }
}

pub async fn start(args: AllArgs) -> Stack {
    dvmdash_core::telemetry::init_tracing("warn");
    dvmdash_core::telemetry::metrics_handle();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind api");
    let base = format!("http://{}", listener.local_addr().expect("addr"));
    let shutdown = CancellationToken::new();
    let (redis, clickhouse) = (args.redis.clone(), args.clickhouse.clone());
    let handle = tokio::spawn(dvmdash::stack::run_all(
        args,
        listener,
        shutdown.clone(),
        Duration::from_secs(10),
    ));
    // The api answers only after migrations ran; healthy means Redis and ClickHouse answer too.
    let health = format!("{base}/health");
    wait_for("the stack to become healthy", Duration::from_secs(60), || {
        let url = health.clone();
        async move { (http_get(&url).await.0 == 200).then_some(()) }
    })
    .await;
    Stack {
        base,
        redis,
        clickhouse,
        shutdown,
        handle,
    }
}

impl Stack {
    pub async fn stop(self) {
        self.shutdown.cancel();
        let res = tokio::time::timeout(Duration::from_secs(30), self.handle)
            .await
            .expect("stack stops within 30 s")
            .expect("stack task does not panic");
        res.expect("stack stops cleanly");
    }

    pub async fn global(&self, range: &str) -> GlobalStats {
        let url = format!("{}/api/stats/global/latest?timeRange={range}", self.base);
        get_json(&url).await.0.expect("global stats")
    }

    /// Per-relay counters the collector `c1` publishes with its heartbeat.
    pub async fn relay_counters(&self) -> BTreeMap<String, RelayCounters> {
        let mut conn = self.redis_conn().await;
        let raw: BTreeMap<String, String> = redis::cmd("HGETALL")
            .arg(self.redis.names().collector("c1"))
            .query_async(&mut conn)
            .await
            .expect("collector hash");
        raw.into_iter()
            .filter_map(|(k, v)| {
                Some((
                    k.strip_prefix("relay:")?.to_owned(),
                    serde_json::from_str(&v).ok()?,
                ))
            })
            .collect()
    }

    pub async fn redis_conn(&self) -> redis::aio::MultiplexedConnection {
        self.redis
            .client()
            .expect("client")
            .get_multiplexed_async_connection()
            .await
            .expect("redis")
    }

    /// Entries delivered to ingesters and not acknowledged, over every shard of the stream.
    pub async fn pending(&self) -> u64 {
        let mut conn = self.redis_conn().await;
        EventStreams::new(&self.redis.names(), self.redis.stream_shards)
            .group_info(&mut conn)
            .await
            .expect("stream group info")
            .pending
    }

    /// Distinct event ids stored.
    /// A `SELECT` of one UInt64 in the stack's database.
    pub async fn count(&self, sql: &str) -> u64 {
        self.clickhouse
            .client()
            .query(sql)
            .fetch_one::<u64>()
            .await
            .unwrap_or_else(|e| panic!("{sql}: {e}"))
    }

    pub async fn stored_ids(&self) -> HashSet<String> {
        self.clickhouse
            .client()
            .query("SELECT DISTINCT lower(hex(event_id)) FROM events_raw")
            .fetch_all::<String>()
            .await
            .expect("stored ids")
            .into_iter()
            .collect()
    }
}

/// What the api must report for a set of events all inside the window: computed here, from the
/// events themselves, independently of the pipeline.
#[derive(Debug, PartialEq, Eq)]
pub struct Expected {
    pub requests: u64,
    pub responses: u64,
    pub feedback: u64,
    pub users: u64,
    pub kinds: u64,
    pub dvms: u64,
}

pub fn expected(events: &[Event]) -> Expected {
    let f = KindFilter::default();
    let mut ids: [HashSet<&str>; 3] = Default::default();
    let mut users = HashSet::new();
    let mut kinds = HashSet::new();
    let mut dvms = HashSet::new();
    for e in events {
        match f.role(e.kind) {
            Role::Request => {
                ids[0].insert(&e.id);
                users.insert(&e.pubkey);
                kinds.insert(e.kind);
            }
            Role::Result => {
                ids[1].insert(&e.id);
                dvms.insert(&e.pubkey);
            }
            Role::Feedback => {
                ids[2].insert(&e.id);
                dvms.insert(&e.pubkey);
            }
            _ => {}
        }
    }
    Expected {
        requests: ids[0].len() as u64,
        responses: ids[1].len() as u64,
        feedback: ids[2].len() as u64,
        users: users.len() as u64,
        kinds: kinds.len() as u64,
        dvms: dvms.len() as u64,
    }
}

pub fn observed(s: &GlobalStats) -> Expected {
    Expected {
        requests: s.total_requests,
        responses: s.total_responses,
        feedback: s.total_feedback,
        users: s.unique_users,
        kinds: s.unique_kinds,
        dvms: s.unique_dvms,
    }
}

/// Poison for the dead-letter tests: three requests too big for an ingester limited to 2,000 bytes
/// per event (`args.events.max_event_bytes`), the first delivered by two relays, and two junk
/// entries no fix makes storable (`junk`). Six dead letters, four replayable once the limit is
/// lifted, three distinct events. Returns the big requests.
pub async fn append_poison(stack: &Stack, seed: &[u8], junk: [&str; 2]) -> Vec<dvmdash_core::Event> {
    let now = dvmdash_core::telemetry::now_secs();
    let customer = dvmdash_core::validate::Keys::from_seed(seed);
    let big: Vec<dvmdash_core::Event> = (0..3)
        .map(|i| {
            customer.sign(
                now - 60 + i,
                5100,
                vec![vec!["i".into(), "x".repeat(3_000), "text".into()]],
                String::new(),
            )
        })
        .collect();
    let json: Vec<String> = big.iter().map(dvmdash_core::Event::to_json).collect();
    let mut conn = stack.redis_conn().await;
    // Each entry on its event's shard of the stack's stream (junk, with no readable id, on 0).
    let streams = EventStreams::new(&stack.redis.names(), stack.redis.stream_shards);
    let id_of = |j: &str| dvmdash_core::stream_shards::event_id_in(j.as_bytes()).unwrap_or_default();
    for (relay, entries) in [
        ("wss://a.example", json.clone()),
        ("wss://b.example", json[..1].to_vec()),
        ("wss://a.example", junk.iter().map(|j| (*j).to_owned()).collect()),
    ] {
        for entry in entries {
            streams
                .for_id(&id_of(&entry))
                .append(&mut conn, relay, now * 1000, std::slice::from_ref(&entry))
                .await
                .expect("append");
        }
    }
    big
}
