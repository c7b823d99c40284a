//! The events stream split into shards by event id (`DVMDASH_STREAM_SHARDS`,
//! `core::stream_shards`): every append, sighting and replayed dead letter lands on the shard its
//! event id picks; a whole stack with a four-way split collects from a relay and imports an
//! archive, storing every event once; a role configured with another count than the one Redis
//! recorded refuses to start; a shard waits only for its own exactly-once gate and inserts in its own
//! lane. Sharded ingesters under SIGKILL are in `faults.rs`.

use dvmdash_testkit as common;

use std::collections::{BTreeMap, BTreeSet};
use std::process::{Command, Stdio};
use std::time::Duration;

use dvmdash::simulate::Publisher;
use dvmdash_core::config::{ClickHouseArgs, EventArgs, RedisArgs, Secret};
use dvmdash_core::redis_keys::FIELD_EVENT;
use dvmdash_core::stream::{Entry, Fields, NewEntry, Sighting};
use dvmdash_core::stream_shards::{EventStreams, shard_of};
use dvmdash_core::validate::Keys;
use dvmdash_core::{Event, Id32};
use dvmdash_testkit::browser::Page;
use dvmdash_testkit::{isolated, wait_for, wait_until};
use redis::aio::MultiplexedConnection;

const TOKEN: &str = "shards-admin-token";

async fn conn(redis: &RedisArgs) -> MultiplexedConnection {
    redis
        .client()
        .expect("client")
        .get_multiplexed_async_connection()
        .await
        .expect("redis")
}

/// The event ids of every entry of `key` (a sightings entry gives each sighting's id).
async fn ids_on(c: &mut MultiplexedConnection, key: &str) -> Vec<String> {
    let entries: Vec<(String, BTreeMap<String, Vec<u8>>)> = redis::cmd("XRANGE")
        .arg(key)
        .arg("-")
        .arg("+")
        .query_async(c)
        .await
        .expect("xrange");
    let mut ids = Vec::new();
    for (_, fields) in entries {
        if let Some(e) = fields.get(FIELD_EVENT) {
            // A replayed dead letter may hold anything; it counts as "not an id" (shard 0).
            let v: serde_json::Value = serde_json::from_slice(e).unwrap_or_default();
            ids.push(v["id"].as_str().unwrap_or("not an id").to_owned());
        }
        if let Some(s) = fields.get("s") {
            let sightings: Vec<Sighting> = serde_json::from_slice(s).expect("sightings json");
            ids.extend(sightings.into_iter().map(|s| s.0));
        }
    }
    ids
}

/// An ingester task reading every shard as `consumer`, closing a batch after 10 ms.
fn spawn_ingester(
    consumer: &str,
    redis: &RedisArgs,
    clickhouse: &ClickHouseArgs,
    stop: &tokio_util::sync::CancellationToken,
) -> tokio::task::JoinHandle<anyhow::Result<()>> {
    tokio::spawn(dvmdash_ingester::run(
        dvmdash_ingester::Config {
            consumer: consumer.into(),
            batch_wait_ms: 10,
            ..Default::default()
        },
        EventArgs::default(),
        redis.clone(),
        clickhouse.clone(),
        stop.clone(),
    ))
}

async fn stop_ingester(
    stop: &tokio_util::sync::CancellationToken,
    ingester: tokio::task::JoinHandle<anyhow::Result<()>>,
) {
    stop.cancel();
    ingester
        .await
        .expect("ingester task")
        .expect("ingester stops cleanly");
}

async fn admin_get(base: &str, path: &str) -> serde_json::Value {
    dvmdash_testkit::admin_get(base, path, TOKEN).await
}

fn signed(seed: &[u8], n: u64, tag: &str) -> Vec<Event> {
    let keys = Keys::from_seed(seed);
    let now = dvmdash_core::telemetry::now_secs();
    (0..n)
        .map(|i| keys.sign(now - 120 + i % 100, 5300, vec![], format!("{tag} {i}")))
        .collect()
}

/// Stream entries for `events` (`json` their JSON), all from one relay, seen at `seen_ms`.
fn entries_of<'a>(events: &'a [Event], json: &'a [String], seen_ms: u64) -> Vec<NewEntry<'a>> {
    events
        .iter()
        .zip(json)
        .map(|(e, j)| NewEntry {
            id_hex: &e.id,
            json: j,
            relay: "wss://a.example",
            seen_ms,
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn appends_sightings_and_replays_land_on_the_shard_of_their_event() {
    let (redis, _) = isolated();
    let names = redis.names();
    let mut c = conn(&redis).await;
    let streams = EventStreams::open(&mut c, &names, 4).await.expect("open");
    let events = signed(b"shards-routing", 400, "routing");
    let json: Vec<String> = events.iter().map(Event::to_json).collect();
    let entries = entries_of(&events, &json, 1);
    let added = streams
        .append_new(&mut c, &entries, 600, 1_000_000)
        .await
        .expect("append");
    assert!(added.iter().all(|a| *a), "every new event is appended");
    // The seen-markers live beside their shard: a second delivery appends nothing, and a marker
    // is found under its shard's hash-tagged name.
    let again = streams
        .append_new(&mut c, &entries, 600, 1_000_000)
        .await
        .expect("append again");
    assert!(again.iter().all(|a| !*a), "a repeat is recognized on its shard");
    let first = &events[0].id;
    let marker = format!("{}:{{s{}}}:seen:{first}", names.prefix(), shard_of(first, 4));
    let exists: bool = redis::cmd("EXISTS")
        .arg(&marker)
        .query_async(&mut c)
        .await
        .expect("exists");
    assert!(exists, "{marker}");

    let sightings: Vec<Sighting> = events[..100]
        .iter()
        .map(|e| {
            Sighting(
                e.id.clone(),
                "wss://b.example".into(),
                2,
                e.pubkey.clone(),
                e.kind,
                e.created_at,
            )
        })
        .collect();
    streams
        .append_sightings(&mut c, &sightings, 1_000_000)
        .await
        .expect("sightings");

    let mut per_shard = BTreeMap::new();
    for (i, stream) in streams.all().iter().enumerate() {
        let ids = ids_on(&mut c, stream.key()).await;
        assert!(
            ids.iter().all(|id| usize::from(shard_of(id, 4)) == i),
            "only shard {i}'s events are on {}",
            stream.key()
        );
        per_shard.insert(stream.key().to_owned(), ids.len());
    }
    assert_eq!(per_shard.values().sum::<usize>(), 500, "{per_shard:?}");
    assert!(
        per_shard.values().all(|&n| n > 60),
        "ids spread over the shards: {per_shard:?}"
    );
    // The unsplit name is not used by a split stream.
    let unsplit: u64 = redis::cmd("XLEN")
        .arg(names.events_stream())
        .query_async(&mut c)
        .await
        .expect("xlen");
    assert_eq!(unsplit, 0);

    // Dead letters are one stream for all shards; a replay puts each back on its event's shard,
    // and a letter whose event is unreadable on shard 0, where the ingester rejects it again.
    let letters: Vec<(Entry, String)> = events[..20]
        .iter()
        .map(|e| e.to_json().into_bytes())
        .chain([b"{\"id\": 12}".to_vec(), vec![0xff; 10_000]])
        .enumerate()
        .map(|(i, body)| {
            let fields = Fields {
                event: Some(body),
                relay: Some(b"wss://a.example".to_vec()),
                seen_ms: Some(b"1".to_vec()),
                sightings: None,
                count: 3,
            };
            (
                Entry {
                    id: format!("1-{i}"),
                    fields: Some(fields),
                },
                "test".to_owned(),
            )
        })
        .collect();
    let dlq = streams.dead_letters();
    dlq.dead_letter(&mut c, &letters).await.expect("dead letter");
    let before: Vec<usize> = {
        let mut v = Vec::new();
        for s in streams.all() {
            v.push(ids_on(&mut c, s.key()).await.len());
        }
        v
    };
    let last = dlq
        .last_dead_letter_id(&mut c)
        .await
        .expect("last")
        .expect("letters");
    let page = dlq
        .dead_letter_page(&mut c, None, &last, 100)
        .await
        .expect("page");
    let replayed = streams.replay_dead_letters(&mut c, &page).await.expect("replay");
    assert_eq!(replayed.len(), 22);
    assert_eq!(dlq.dead_letters(&mut c).await.expect("count"), 0);
    let mut want = [0usize; 4];
    for e in &events[..20] {
        want[usize::from(shard_of(&e.id, 4))] += 1;
    }
    want[0] += 2; // the two unreadable letters
    for (i, s) in streams.all().iter().enumerate() {
        let ids = ids_on(&mut c, s.key()).await;
        assert_eq!(ids.len() - before[i], want[i], "replayed onto {}", s.key());
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_role_configured_for_another_split_refuses_to_start() {
    let (mut redis, clickhouse) = isolated();
    let names = redis.names();
    let mut c = conn(&redis).await;
    EventStreams::open(&mut c, &names, 4)
        .await
        .expect("first open records 4");
    let err = EventStreams::open(&mut c, &names, 2)
        .await
        .expect_err("2 differs");
    let msg = format!("{err:#}");
    assert!(
        msg.contains("split into 4 shards") && msg.contains("configured for 2"),
        "{msg}"
    );
    for bad in [0u16, 257, u16::MAX] {
        let err = EventStreams::open(&mut c, &names, bad)
            .await
            .expect_err("out of range");
        assert!(format!("{err:#}").contains("1 to 256"), "{err:#}");
    }
    // A record that is not a count is reported, not read as one.
    for junk in ["banana", "0", "-3", "99999", "", "4 4"] {
        let (other, _) = isolated();
        let _: () = redis::cmd("SET")
            .arg(other.names().stream_shards())
            .arg(junk)
            .query_async(&mut c)
            .await
            .expect("set");
        let err = EventStreams::open(&mut c, &other.names(), 1)
            .await
            .expect_err(junk);
        assert!(
            format!("{err:#}").contains("not a shard count"),
            "{junk:?}: {err:#}"
        );
    }

    // The ingester, in process, stops with that error instead of reading half the streams.
    redis.stream_shards = 2;
    let run = dvmdash_ingester::run(
        dvmdash_ingester::Config::default(),
        EventArgs::default(),
        redis.clone(),
        clickhouse.clone(),
        tokio_util::sync::CancellationToken::new(),
    );
    let err = tokio::time::timeout(Duration::from_secs(30), run)
        .await
        .expect("refuses at once")
        .expect_err("refused");
    assert!(format!("{err:#}").contains("split into 4 shards"), "{err:#}");

    // So does a collector process, exiting with a failure status and the reason on stderr.
    let out = Command::new(env!("CARGO_BIN_EXE_dvmdash"))
        .arg("collector")
        .env("REDIS_URL", redis.redis_url.expose())
        .env("DVMDASH_REDIS_PREFIX", &redis.redis_prefix)
        .env("DVMDASH_STREAM_SHARDS", "2")
        .env("DVMDASH_RELAYS", "ws://127.0.0.1:1")
        .env("DVMDASH_METRICS_ADDR", "127.0.0.1:0")
        .env_remove("RUST_LOG")
        .stdin(Stdio::null())
        .output()
        .expect("run dvmdash collector");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "the collector must not start: {stderr}");
    assert!(stderr.contains("split into 4 shards"), "{stderr}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_stack_on_a_four_way_split_stores_collected_and_imported_events_once() {
    let (mut redis, clickhouse) = isolated();
    redis.stream_shards = 4;
    let (_relay, relay_url) = dvmdash::demo::start_relay(0).await.expect("in-process relay");
    let mut args = common::args(redis.clone(), clickhouse, vec![relay_url.clone()]);
    args.api.admin_token = Some(Secret::new(TOKEN));
    let stack = common::start(args).await;
    wait_for("the collector to subscribe", Duration::from_secs(60), || async {
        let c = stack.relay_counters().await;
        c.get(&relay_url).is_some_and(|c| c.connected).then_some(())
    })
    .await;
    tokio::time::sleep(Duration::from_millis(500)).await;

    let live = signed(b"shards-live", 300, "live");
    let publisher = Publisher::new(std::slice::from_ref(&relay_url));
    for e in &live {
        publisher.publish(e).await;
    }
    assert!(
        publisher.settle(Duration::from_secs(60)).await,
        "the relay took every event"
    );

    // An archive of other events, plus a third of the live ones again, through `dvmdash import`.
    let archived = signed(b"shards-archive", 300, "archive");
    let dir = tempfile::tempdir().expect("tmp");
    let path = dir.path().join("archive.json");
    let body: Vec<String> = archived.iter().chain(&live[..100]).map(Event::to_json).collect();
    std::fs::write(&path, format!("[{}]", body.join(",\n"))).expect("archive");
    let import = |restart: bool| {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_dvmdash"));
        cmd.arg("import");
        if restart {
            cmd.arg("--restart");
        }
        cmd.arg(&path)
            .env("REDIS_URL", redis.redis_url.expose())
            .env("DVMDASH_REDIS_PREFIX", &redis.redis_prefix)
            .env("DVMDASH_STREAM_SHARDS", "4")
            .env("DVMDASH_IMPORT_STATE_DIR", dir.path().join("state"))
            .env_remove("RUST_LOG")
            .stdin(Stdio::null())
            .output()
            .expect("run dvmdash import")
    };
    let out = import(false);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));

    let want: BTreeSet<Id32> = live
        .iter()
        .chain(&archived)
        .map(|e| {
            let mut id = [0u8; 32];
            hex::decode_to_slice(&e.id, &mut id).expect("hex id");
            id
        })
        .collect();
    let ch = stack.clickhouse.client();
    let counts = || async {
        ch.query("SELECT count(), uniqExact(event_id) FROM events_raw")
            .fetch_one::<(u64, u64)>()
            .await
            .map_err(|e| e.to_string())
    };
    wait_until("every event to be stored", Duration::from_secs(90), || async {
        let (rows, ids) = counts().await?;
        if ids == want.len() as u64 {
            Ok(())
        } else {
            Err(format!("{rows} rows, {ids} of {} ids", want.len()))
        }
    })
    .await;
    #[derive(clickhouse::Row, serde::Deserialize)]
    struct IdRow {
        event_id: Id32,
    }
    let stored: BTreeSet<Id32> = ch
        .query("SELECT event_id FROM events_raw")
        .fetch_all::<IdRow>()
        .await
        .expect("ids")
        .into_iter()
        .map(|r| r.event_id)
        .collect();
    assert_eq!(stored, want, "exactly the published and imported events");

    // Importing it all again changes nothing.
    let out = import(true);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    wait_until(
        "the repeated import to be consumed",
        Duration::from_secs(90),
        || async {
            let pending = stack.pending().await;
            let mut c = stack.redis_conn().await;
            let info = EventStreams::new(&stack.redis.names(), 4)
                .group_info(&mut c)
                .await
                .map_err(|e| e.to_string())?;
            match info.lag {
                Some(0) if pending == 0 => Ok(()),
                lag => Err(format!("lag {lag:?}, {pending} pending")),
            }
        },
    )
    .await;
    assert_eq!(
        counts().await.expect("counts"),
        (600, 600),
        "nothing stored twice"
    );
    // The api follows within its freshness bound and counts each request once.
    wait_until(
        "the api to count every request",
        Duration::from_secs(30),
        || async {
            match stack.global("24h").await.total_requests {
                600 => Ok(()),
                n if n > 600 => panic!("the api counts {n} requests, 600 were stored"),
                n => Err(format!("{n} requests")),
            }
        },
    )
    .await;

    // The console's stream view lists the four shards, each read by the stack's ingester.
    let view = admin_get(&stack.base, "/api/admin/stream").await;
    let shards = view["shards"].as_array().expect("shards");
    let keys: Vec<&str> = shards.iter().filter_map(|s| s["stream"].as_str()).collect();
    let expected: Vec<String> = (0..4)
        .map(|i| format!("{}:{{s{i}}}:events", stack.redis.redis_prefix))
        .collect();
    assert_eq!(keys, expected, "{view}");
    for s in shards {
        assert_eq!(s["groups"][0]["consumer_list"][0]["name"], "i1", "{s}");
    }
    let status = admin_get(&stack.base, "/api/admin/status").await;
    assert_eq!(status["stream_shards"], 4, "{status}");

    // The console shows each shard with its consumers, in both themes and at phone width.
    let b = Page::start(&stack.base).await;
    b.admin_login(TOKEN).await;
    b.wait_count("[data-admin-stream] [data-shard] [data-consumer='i1']", 4)
        .await;
    b.wait_contains("[data-admin-stream]", "over 4 shards").await;
    for theme in ["light", "dark"] {
        for (width, height) in [(1280u32, 1600u32), (390, 2400)] {
            b.reload_as(theme, width, height).await;
            b.wait_count("[data-admin-stream] [data-shard]", 4).await;
            tokio::time::sleep(Duration::from_millis(400)).await;
            b.assert_fits("/admin", width).await;
            b.js("document.querySelector('[data-admin-stream]').scrollIntoView()")
                .await;
            b.screenshot(&format!("admin-shards-{theme}-{width}")).await;
        }
    }
    b.assert_clean("/admin", &[]).await;
    stack.stop().await;
}

/// Entry ids are unique only within one stream: two shards can both hold `T-0`. One-entry batches
/// of two shards with the same entry id must still both be stored (their insert tokens must
/// differ, or ClickHouse drops the second insert as a repeat of the first, and says it succeeded).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_entry_batches_of_two_shards_with_the_same_entry_id_are_both_stored() {
    let (mut redis, clickhouse) = isolated();
    redis.stream_shards = 2;
    dvmdash_core::store::migrate(&clickhouse).await.expect("migrate");
    let mut c = conn(&redis).await;
    let streams = EventStreams::open(&mut c, &redis.names(), 2).await.expect("open");
    streams.ensure_groups(&mut c).await.expect("groups");
    // One event for each shard.
    let mut picked: BTreeMap<u16, Event> = BTreeMap::new();
    for e in signed(b"shards-same-entry-id", 64, "same id") {
        picked.entry(shard_of(&e.id, 2)).or_insert(e);
    }
    assert_eq!(picked.len(), 2, "64 ids cover both shards");
    let now_ms = dvmdash_core::telemetry::now_millis();
    let entry_id = format!("{now_ms}-0");
    for (shard, e) in &picked {
        let _: String = redis::cmd("XADD")
            .arg(streams.all()[usize::from(*shard)].key())
            .arg(&entry_id)
            .arg("e")
            .arg(e.to_json())
            .arg("r")
            .arg("wss://a.example")
            .arg("t")
            .arg(now_ms)
            .query_async(&mut c)
            .await
            .expect("xadd with an explicit id");
    }
    let stop = tokio_util::sync::CancellationToken::new();
    let ingester = spawn_ingester("same-id", &redis, &clickhouse, &stop);
    let ch = clickhouse.client();
    // An insert commits events_raw first and the rollups after it, so wait for both.
    wait_until(
        "both events to be stored and counted in the rollups",
        Duration::from_secs(30),
        || async {
            let (stored, counted): (u64, u64) = ch
                .query(
                    "SELECT assumeNotNull((SELECT count() FROM events_raw)), \
                     assumeNotNull((SELECT toUInt64(sum(events)) FROM stats_hourly WHERE role = 'request'))",
                )
                .fetch_one()
                .await
                .map_err(|e| e.to_string())?;
            let backlog = streams
                .group_info(&mut c.clone())
                .await
                .map_err(|e| e.to_string())?;
            if (stored, counted) == (2, 2) {
                Ok(())
            } else {
                Err(format!(
                    "{stored} stored, {counted} in stats_hourly, {} pending, {:?} undelivered",
                    backlog.pending, backlog.lag
                ))
            }
        },
    )
    .await;
    stop_ingester(&stop, ingester).await;
}

/// How many of `ids` are in `events_raw`, and how many requests `stats_hourly` counts.
async fn stored_of(ch: &clickhouse::Client, ids: &[String]) -> Result<(u64, u64), String> {
    ch.query(
        "SELECT assumeNotNull((SELECT count() FROM events_raw WHERE lower(hex(event_id)) IN ?)), \
         assumeNotNull((SELECT toUInt64(sum(events)) FROM stats_hourly WHERE role = 'request'))",
    )
    .bind(ids)
    .fetch_one()
    .await
    .map_err(|e| e.to_string())
}

/// The exactly-once gate is per shard: a batch of one shard is checked and inserted under that
/// shard's gate lock, so a shard whose lock is held elsewhere holds up no other shard. No lock is
/// shared by every insert: the repair lock (taken only to complete an insert that failed midway)
/// can be held elsewhere and both shards still store everything, once, each under its own lane.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_shard_passes_its_own_gate_and_inserts_in_its_own_lane() {
    use dvmdash_core::lease::Lease;

    let (mut redis, clickhouse) = isolated();
    redis.stream_shards = 2;
    dvmdash_core::store::migrate(&clickhouse).await.expect("migrate");
    let names = redis.names();
    let mut c = conn(&redis).await;
    let streams = EventStreams::open(&mut c, &names, 2).await.expect("open");
    streams.ensure_groups(&mut c).await.expect("groups");
    let mut by_shard: BTreeMap<u16, Vec<Event>> = BTreeMap::new();
    for e in signed(b"shards-own-gate", 120, "own gate") {
        by_shard.entry(shard_of(&e.id, 2)).or_default().push(e);
    }
    let (first, second) = (&by_shard[&0], &by_shard[&1]);
    assert!(
        first.len() >= 20 && second.len() >= 20,
        "120 ids cover both shards"
    );
    let ids = |evs: &[Event]| evs.iter().map(|e| e.id.clone()).collect::<Vec<_>>();
    let (appender, writer) = (streams.clone(), c.clone());
    let append = move |evs: Vec<Event>| {
        let (streams, mut c) = (appender.clone(), writer.clone());
        async move {
            let json: Vec<String> = evs.iter().map(Event::to_json).collect();
            let entries = entries_of(&evs, &json, dvmdash_core::telemetry::now_millis());
            streams.append_each(&mut c, &entries).await.expect("append");
        }
    };
    // Someone else holds shard 0's gate.
    let holder = Lease::new(names.gate_lock(0, 2), "test-holder", Duration::from_secs(120));
    assert!(
        holder.acquire_or_renew(&mut c).await.expect("lease"),
        "gate lock free"
    );
    let (early0, late0) = first.split_at(10);
    let (early1, late1) = second.split_at(10);
    append([early0, early1].concat()).await;
    let stop = tokio_util::sync::CancellationToken::new();
    let ingester = spawn_ingester("own-gate", &redis, &clickhouse, &stop);
    let ch = clickhouse.client();
    let (early0, early1) = (ids(early0), ids(early1));
    wait_until(
        "shard 1's events to be stored past shard 0's held gate",
        Duration::from_secs(30),
        || async {
            match stored_of(&ch, &early1).await? {
                (10, 10) => Ok(()),
                other => Err(format!("(stored, counted) = {other:?}")),
            }
        },
    )
    .await;
    assert_eq!(
        stored_of(&ch, &early0).await.expect("count").0,
        0,
        "shard 0's events wait for its gate"
    );

    // Someone else holds the repair lock: shard 0's gate is free now, and inserts do not wait.
    let repair = Lease::new(names.repair_lock(), "test-holder", Duration::from_secs(120));
    assert!(
        repair.acquire_or_renew(&mut c).await.expect("lease"),
        "repair lock free"
    );
    assert!(
        holder.release(&mut c).await.expect("release"),
        "the test held the gate"
    );
    append([late0, late1].concat()).await;
    let all: Vec<String> = [early0.clone(), early1.clone(), ids(late0), ids(late1)].concat();
    let total = all.len() as u64;
    wait_until(
        "every event to be stored and counted once while the repair lock is held",
        Duration::from_secs(30),
        || async {
            match stored_of(&ch, &all).await? {
                (s, n) if s == total && n == total => Ok(()),
                other => Err(format!("(stored, counted) = {other:?} of {total}")),
            }
        },
    )
    .await;
    assert!(
        repair.release(&mut c).await.expect("release"),
        "the test held the repair lock"
    );
    // Each shard's rows, and its rollup rows, carry its lane.
    let lanes: Vec<(u8, u64)> = ch
        .query("SELECT lane, count() FROM events_raw GROUP BY lane ORDER BY lane")
        .fetch_all()
        .await
        .expect("lanes");
    let want = vec![(0, first.len() as u64), (1, second.len() as u64)];
    assert_eq!(lanes, want, "events_raw rows by lane");
    let rolled: Vec<(u8, u64)> = ch
        .query("SELECT lane, toUInt64(sum(events)) FROM stats_hourly GROUP BY lane ORDER BY lane")
        .fetch_all()
        .await
        .expect("stats_hourly by lane");
    assert_eq!(
        rolled, want,
        "stats_hourly counts each lane's events in its own partitions"
    );
    stop_ingester(&stop, ingester).await;
}
