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
