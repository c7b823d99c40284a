//! The ClickHouse stand-in, through the official `clickhouse` crate exactly as the services use it:
//! round trips with and without LZ4, errors carrying their ClickHouse code, migrations, and data
//! surviving a hard kill of the stand-in.

use clickhouse::{Compression, Row};
use dvmdash_core::config::ClickHouseArgs;
use dvmdash_testkit::ChDev;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Row, Serialize, Deserialize)]
struct Wide {
    id: u64,
    at: u32,
    n: u32,
    label: String,
    x: f64,
    tags: Vec<String>,
    note: Option<String>,
    key: [u8; 32],
}

fn rows(offset: u64, n: u64) -> Vec<Wide> {
    (offset..offset + n)
        .map(|i| Wide {
            id: i,
            at: 1_700_000_000 + i as u32,
            n: (i * 7 % 1000) as u32,
            label: format!("kind-{}", i % 13),
            x: i as f64 / 3.0,
            tags: (0..i % 4).map(|t| format!("t{t}\t'\"\\")).collect(),
            note: (i % 3 == 0).then(|| format!("note {i} ünïcödé")),
            key: {
                let mut k = [0u8; 32];
                k[..8].copy_from_slice(&i.to_le_bytes());
                k
            },
        })
        .collect()
}

async fn insert(client: &clickhouse::Client, data: &[Wide]) {
    let mut ins = client.insert::<Wide>("wide").await.expect("insert starts");
    for r in data {
        ins.write(r).await.expect("row written");
    }
    ins.end().await.expect("insert ends");
}

async fn read_all(client: &clickhouse::Client) -> Vec<Wide> {
    client
        .query("SELECT ?fields FROM wide ORDER BY id")
        .fetch_all::<Wide>()
        .await
        .expect("read back")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn round_trips_errors_migrations_and_restart() {
    let dir = tempfile::tempdir().expect("temp dir");
    let mut standin = ChDev::start(dir.path().join("data")).await;
    let args = ClickHouseArgs::new(standin.url.clone(), "standin_test");
    args.server_client()
        .query("CREATE DATABASE IF NOT EXISTS standin_test")
        .execute()
        .await
        .expect("create db");
    let plain = args.client().with_compression(Compression::None);
    let lz4 = args.client().with_compression(Compression::Lz4);
    plain
        .query(
            "CREATE TABLE wide (id UInt64, at DateTime, n UInt32, label LowCardinality(String), x Float64, \
             tags Array(String), note Nullable(String), key FixedString(32)) ENGINE = MergeTree ORDER BY id",
        )
        .execute()
        .await
        .expect("create table");

    // 20k rows uncompressed, 20k more with LZ4 frames; both read back exactly through both clients.
    let first = rows(0, 20_000);
    let second = rows(20_000, 20_000);
    insert(&plain, &first).await;
    insert(&lz4, &second).await;
    let all: Vec<Wide> = first.iter().chain(second.iter()).cloned().collect();
    assert_eq!(
        read_all(&plain).await,
        all,
        "plain read returns exactly what was inserted"
    );
    assert_eq!(
        read_all(&lz4).await,
        all,
        "lz4 read returns exactly what was inserted"
    );

    // Errors surface with their ClickHouse code.
    let err = plain
        .query("SELECT * FROM no_such_table")
        .fetch_all::<Wide>()
        .await
        .unwrap_err();
    assert!(
        matches!(&err, clickhouse::error::Error::BadResponse(m) if m.contains("Code: 60")),
        "{err}"
    );
    let err = lz4.query("SELEC 1").execute().await.unwrap_err();
    assert!(err.to_string().contains("Code: 62"), "{err}");
    let err = plain
        .insert::<Wide>("missing_table")
        .await
        .map(|_| ())
        .unwrap_err();
    assert!(err.to_string().contains("Code: 60"), "{err}");

    // Migrations apply once and are recorded; a second run applies nothing.
    let migrated = ClickHouseArgs::new(standin.url.clone(), "standin_migrations");
    let first_run = dvmdash_core::store::migrate(&migrated).await.expect("migrate");
    assert_eq!(first_run.applied.len(), dvmdash_core::store::MIGRATIONS.len());
    let second_run = dvmdash_core::store::migrate(&migrated)
        .await
        .expect("migrate again");
    assert!(second_run.applied.is_empty());
    assert_eq!(second_run.already_applied, dvmdash_core::store::MIGRATIONS.len());
    // A migration whose recorded text differs is refused: migrations are forward-only.
    migrated
        .client()
        .query("ALTER TABLE schema_migrations UPDATE checksum = 'edited' WHERE version = 1")
        .with_setting("mutations_sync", "1")
        .execute()
        .await
        .expect("tamper");
    let err = dvmdash_core::store::migrate(&migrated).await.unwrap_err();
    assert!(format!("{err:#}").contains("forward-only"), "{err:#}");

    // A hard kill loses nothing that was acknowledged.
    standin.kill();
    let restarted = ChDev::start(dir.path().join("data")).await;
    let again = ClickHouseArgs::new(restarted.url.clone(), "standin_test").client();
    assert_eq!(
        read_all(&again).await,
        all,
        "every row survives SIGKILL and restart"
    );
}

/// `dvmdash migrate --cluster` cannot run here (no Keeper, no second node), but every statement it
/// would send is parsed by ClickHouse's own parser in the stand-in (`formatQuery` parses without
/// executing), and the formatted text keeps what makes it a cluster schema.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_cluster_statement_parses_in_clickhouse() {
    let (_, args) = dvmdash_testkit::isolated();
    let client = args.server_client();
    let plan = dvmdash_core::store::migration_plan("dvmdash", Some("dvmdash")).expect("cluster plan");
    let single = dvmdash_core::store::migration_plan("dvmdash", None).expect("single-node plan");
    assert!(plan.len() > single.len(), "tables gain a Distributed twin");
    let mut replicated = 0;
    for statement in &plan {
        let literal = statement.replace('\\', "\\\\").replace('\'', "\\'");
        let formatted: String = client
            .query(&format!("SELECT formatQuery('{literal}')"))
            .fetch_one()
            .await
            .unwrap_or_else(|e| panic!("ClickHouse cannot parse:\n{statement}\n{e}"));
        if formatted.starts_with("INSERT INTO") {
            // Data is copied by one node through the Distributed tables (an INSERT has no ON
            // CLUSTER), waiting until every shard has it.
            assert!(!formatted.contains("_local"), "{formatted}");
            assert!(formatted.contains("insert_distributed_sync = 1"), "{formatted}");
        } else {
            assert!(formatted.contains("ON CLUSTER dvmdash"), "{formatted}");
        }
        if formatted.contains("ENGINE = Replicated") {
            replicated += 1;
        }
    }
    let tables = single.iter().filter(|s| s.starts_with("CREATE TABLE")).count();
    // Every single-node table, plus the ledger, is replicated.
    assert_eq!(replicated, tables + 1);
    // A statement ClickHouse cannot parse is caught the same way (the check can fail).
    let bad = client
        .query("SELECT formatQuery('CREATE TABLE t ON CLUSTER ENGINE = (')")
        .fetch_one::<String>()
        .await;
    assert!(bad.is_err());
}

/// What the four summing rollups say, summed over lanes: (rows, digest) per table.
async fn rollup_digests(ch: &clickhouse::Client) -> Vec<(String, u64, u64)> {
    let mut out = Vec::new();
    for (table, aggregated) in [
        (
            "stats_hourly",
            "SELECT hour, role, job_kind, pubkey, sum(events) FROM stats_hourly GROUP BY ALL",
        ),
        (
            "directed_hourly",
            "SELECT hour, target, job_kind, sum(requests) FROM directed_hourly GROUP BY ALL",
        ),
        (
            "activity",
            "SELECT role, pubkey, job_kind, min(first_seen), max(last_seen), sum(events) FROM activity GROUP BY ALL",
        ),
        (
            "stats_monthly",
            "SELECT month, role, job_kind, pubkey, sum(events) FROM stats_monthly GROUP BY ALL",
        ),
    ] {
        let (n, digest): (u64, u64) = ch
            .query(&format!(
                "SELECT count(), toUInt64(groupBitXor(cityHash64(toString(tuple(*))))) FROM ({aggregated})"
            ))
            .fetch_one()
            .await
            .unwrap_or_else(|e| panic!("{table}: {e}"));
        assert!(n > 0, "{table} holds rows");
        out.push((table.to_owned(), n, digest));
    }
    out
}

/// `n` synthetic jobs events from `first`, spread over 60 days, a third each request (half of
/// them addressed to a DVM), result and feedback.
fn synthetic_events(first: u64, n: u64) -> String {
    format!(
        "INSERT INTO events_raw (event_id, pubkey, kind, created_at, received_at, relay, role, \
         request_kind, targets) \
         SELECT toFixedString(unhex(lower(hex(SHA256(toString(number))))), 32), \
                toFixedString(unhex(lower(hex(SHA256(toString(number % 17))))), 32), \
                [5300, 6300, 7000][number % 3 + 1], \
                toUInt32(1790000000 - number * 2600), \
                1790000000000 + number, 'wss://r', \
                ['request', 'result', 'feedback'][number % 3 + 1], \
                if(number % 3 = 1, 5300, 0), \
                if(number % 6 = 0, [toFixedString(unhex(lower(hex(SHA256('dvm')))), 32)], []) \
         FROM numbers({first}, {n})"
    )
}

/// Migration 0011 rebuilds the four summing rollups partitioned by lane. On a database that
/// already holds counts, every count survives; a run interrupted after a swap and run again
/// loses and doubles nothing; and afterwards each lane's inserts land in its own partitions.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_lane_migration_keeps_every_count_and_can_run_again() {
    use dvmdash_core::store::{MIGRATIONS, split_statements};
    let (_, args) = dvmdash_testkit::isolated();
    args.server_client()
        .query(&format!("CREATE DATABASE {}", args.clickhouse_database))
        .execute()
        .await
        .expect("database");
    let ch = args.client();
    let run = |sql: &'static str| {
        let ch = ch.clone();
        async move {
            for s in split_statements(sql) {
                ch.query(&s)
                    .execute()
                    .await
                    .unwrap_or_else(|e| panic!("{s}: {e}"));
            }
        }
    };
    let lanes = MIGRATIONS
        .iter()
        .find(|m| m.1 == "0011_lanes")
        .expect("migration 0011")
        .2;
    for &(version, _, sql) in MIGRATIONS.iter().filter(|m| m.0 < 11) {
        assert!(version < 11);
        run(sql).await;
    }
    ch.query(&synthetic_events(0, 3000))
        .execute()
        .await
        .expect("events before 0011");
    let before = rollup_digests(&ch).await;

    // A run that stopped right after swapping stats_hourly (its view not made again yet)...
    let statements = split_statements(lanes);
    let swap = statements
        .iter()
        .position(|s| s.starts_with("EXCHANGE TABLES stats_hourly"))
        .expect("swap");
    for s in &statements[..=swap] {
        ch.query(s).execute().await.unwrap_or_else(|e| panic!("{s}: {e}"));
    }
    // ... then the whole migration, twice.
    run(lanes).await;
    assert_eq!(rollup_digests(&ch).await, before, "every count survives");
    run(lanes).await;
    assert_eq!(rollup_digests(&ch).await, before, "and a second run");

    let keys: Vec<(String, String)> = ch
        .query(
            "SELECT name, partition_key FROM system.tables WHERE database = currentDatabase() \
             AND name IN ('stats_hourly', 'directed_hourly', 'activity', 'stats_monthly') ORDER BY name",
        )
        .fetch_all()
        .await
        .expect("keys");
    for (name, key) in &keys {
        assert!(key.ends_with("lane") || key.ends_with("lane)"), "{name}: {key}");
    }
    assert_eq!(keys.len(), 4);
    let leftovers: u64 = ch
        .query(
            "SELECT count() FROM system.tables WHERE database = currentDatabase() AND name LIKE '%\\_lanes'",
        )
        .fetch_one()
        .await
        .expect("leftovers");
    assert_eq!(leftovers, 0, "no scratch table is left");

    // Lane 1 inserts 600 more: counted once, in lane 1's partitions.
    let more = synthetic_events(3000, 600)
        .replace("(event_id,", "(lane, event_id,")
        .replace("SELECT toFixedString", "SELECT 1, toFixedString");
    ch.query(&more).execute().await.expect("events after 0011");
    let by_lane: Vec<(u8, u64)> = ch
        .query("SELECT lane, toUInt64(sum(events)) FROM stats_monthly GROUP BY lane ORDER BY lane")
        .fetch_all()
        .await
        .expect("by lane");
    assert_eq!(by_lane, vec![(0, 3000), (1, 600)]);
    let parts: Vec<String> = ch
        .query(
            "SELECT DISTINCT partition_id FROM system.parts WHERE database = currentDatabase() \
             AND table = 'stats_hourly' AND active ORDER BY partition_id",
        )
        .fetch_all()
        .await
        .expect("parts");
    assert!(parts.iter().any(|p| p.ends_with("-1")), "{parts:?}");
    assert!(
        parts.iter().all(|p| p.ends_with("-0") || p.ends_with("-1")),
        "{parts:?}"
    );
}
