//! ClickHouse plumbing shared by the ingester, the api and `dvmdash migrate`: the raw row type and
//! the migration runner. Migrations are the numbered files in `clickhouse/schema/`, embedded at
//! build time, applied in order and recorded in `schema_migrations`.

use anyhow::{Context as _, bail};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::config::{ClickHouseArgs, is_identifier};
use crate::event::{Event, Id32};
use crate::kinds::Role;
use crate::nip90::JobFacts;

include!(concat!(env!("OUT_DIR"), "/migrations.rs"));

/// The raw events table.
pub const EVENTS_RAW: &str = "events_raw";
pub const EVENT_RELAYS: &str = "event_relays";

/// One delivery of an event by a relay (`clickhouse/schema/0007_event_relays.sql`): the first one,
/// stored with the event, and every later one (a sighting). Idempotent by (event, relay).
#[derive(Debug, Clone, PartialEq, Eq, clickhouse::Row, Serialize, Deserialize)]
pub struct EventRelayRow {
    pub event_id: Id32,
    pub relay: String,
    pub pubkey: Id32,
    pub kind: u16,
    /// Unix seconds.
    pub created_at: u32,
    /// Unix ms of the delivery.
    pub seen_at: i64,
}

/// One row of `events_raw` (`clickhouse/schema/0001_events_raw.sql`).
#[derive(Debug, Clone, PartialEq, clickhouse::Row, Serialize, Deserialize)]
pub struct RawEventRow {
    pub event_id: Id32,
    pub pubkey: Id32,
    pub kind: u16,
    /// Unix seconds.
    pub created_at: u32,
    /// Unix milliseconds, when a collector first saw the event.
    pub received_at: i64,
    pub relay: String,
    pub role: String,
    pub request_id: Id32,
    pub request_kind: u16,
    pub customer: Id32,
    pub targets: Vec<Id32>,
    pub status: String,
    pub status_reason: String,
    pub amount_msat: Option<u64>,
    pub bid_msat: Option<u64>,
    pub bolt11: String,
    pub encrypted: bool,
    pub client: String,
    pub job_inputs: Vec<Id32>,
    pub relay_hints: Vec<String>,
    pub announced_kinds: Vec<u16>,
    pub d_tag: String,
    pub deviations: u32,
    pub tags: String,
    pub content: String,
    pub sig: String,
    /// The lane that inserted the row: the index of its stream shard (migration 0011). Each
    /// summing rollup is partitioned by it, so a lane's partitions have one writer, which is what
    /// lets the ingester tell what its own failed insert committed without a global lock.
    pub lane: u8,
}

impl RawEventRow {
    /// A row with only its identity, time and role set (tests and benchmarks build the rest).
    pub fn blank(event_id: Id32, pubkey: Id32, kind: u16, created_at: u32, role: &str) -> Self {
        RawEventRow {
            event_id,
            pubkey,
            kind,
            created_at,
            received_at: i64::from(created_at) * 1000,
            relay: String::new(),
            role: role.to_owned(),
            request_id: [0; 32],
            request_kind: 0,
            customer: [0; 32],
            targets: Vec::new(),
            status: String::new(),
            status_reason: String::new(),
            amount_msat: None,
            bid_msat: None,
            bolt11: String::new(),
            encrypted: false,
            client: String::new(),
            job_inputs: Vec::new(),
            relay_hints: Vec::new(),
            announced_kinds: Vec::new(),
            d_tag: String::new(),
            deviations: 0,
            tags: String::new(),
            content: String::new(),
            sig: String::new(),
            lane: 0,
        }
    }

    /// Builds a row from a verified event and its parsed facts. `id` and `pubkey` must be the
    /// decoded hex of the event (the validator guarantees it).
    pub fn new(event: &Event, id: Id32, role: Role, facts: JobFacts, relay: &str, received_ms: i64) -> Self {
        let pubkey = crate::event::parse_hex32(&event.pubkey).unwrap_or_default();
        RawEventRow {
            event_id: id,
            pubkey,
            kind: event.kind,
            // DateTime is u32; the validator refuses anything far in the future.
            created_at: u32::try_from(event.created_at).unwrap_or(u32::MAX),
            received_at: received_ms,
            relay: crate::nip90::truncate(relay, 256).to_owned(),
            role: role.as_str().to_owned(),
            request_id: facts.request_id.unwrap_or_default(),
            request_kind: facts.request_kind.unwrap_or(0),
            customer: facts.customer.unwrap_or_default(),
            targets: facts.targets,
            status: facts.status.map(|s| s.as_str().to_owned()).unwrap_or_default(),
            status_reason: facts.status_reason.unwrap_or_default(),
            amount_msat: facts.amount_msat,
            bid_msat: facts.bid_msat,
            bolt11: facts.bolt11.unwrap_or_default(),
            encrypted: facts.encrypted,
            client: facts.client.unwrap_or_default(),
            job_inputs: facts.job_inputs,
            relay_hints: facts.relays,
            announced_kinds: facts.announced_kinds,
            d_tag: facts.d_tag.unwrap_or_default(),
            deviations: facts.deviations,
            tags: serde_json::to_string(&event.tags).unwrap_or_else(|_| "[]".into()),
            content: event.content.clone(),
            sig: event.sig.clone(),
            lane: 0,
        }
    }
}

/// One applied migration, as recorded.
#[derive(Debug, Clone, clickhouse::Row, Serialize, Deserialize)]
struct AppliedRow {
    version: u32,
    name: String,
    checksum: String,
}

/// What `migrate` did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MigrationReport {
    pub applied: Vec<String>,
    pub already_applied: usize,
}

/// Creates the database if needed and applies every migration not yet recorded, in order.
/// Refuses to run when a recorded migration's text changed (migrations are forward-only).
pub async fn migrate(args: &ClickHouseArgs) -> anyhow::Result<MigrationReport> {
    migrate_on(args, None).await
}

/// [`migrate`] on one node, or with `cluster` on a whole ClickHouse cluster: every statement in
/// its cluster form ([`crate::cluster_schema`]), sent to this node with `ON CLUSTER`. Either way
/// the ledger records the single-node text's checksum, the one source of both.
pub async fn migrate_on(args: &ClickHouseArgs, cluster: Option<&str>) -> anyhow::Result<MigrationReport> {
    let db = &args.clickhouse_database;
    if !is_identifier(db) {
        bail!("clickhouse database {db:?} is not a plain identifier");
    }
    let cluster_plan = cluster
        .map(crate::cluster_schema::cluster_migrations)
        .transpose()?;
    let schema = cluster
        .map(crate::cluster_schema::ClusterSchema::new)
        .transpose()?;
    let create_db = match &schema {
        Some(c) => c.create_database(db),
        None => format!("CREATE DATABASE IF NOT EXISTS `{db}`"),
    };
    args.server_client()
        .query(&create_db)
        .execute()
        .await
        .with_context(|| format!("failed to create database {db}"))?;
    let client = args.client();
    let ledger = match &schema {
        Some(c) => c.migrations_table(),
        None => {
            "CREATE TABLE IF NOT EXISTS schema_migrations (version UInt32, name String, checksum String, \
                 applied_at DateTime64(3, 'UTC') DEFAULT now64(3)) ENGINE = MergeTree ORDER BY version"
                .to_owned()
        }
    };
    client
        .query(&ledger)
        .execute()
        .await
        .context("failed to create schema_migrations")?;
    let applied: Vec<AppliedRow> = client
        .query("SELECT version, name, checksum FROM schema_migrations ORDER BY version")
        .fetch_all()
        .await
        .context("failed to read schema_migrations")?;

    let mut report = MigrationReport::default();
    for &(version, name, sql) in MIGRATIONS {
        let checksum = hex::encode(Sha256::digest(sql.as_bytes()));
        if let Some(done) = applied.iter().find(|a| a.version == version) {
            if done.checksum != checksum {
                bail!(
                    "migration {name} was applied with different text (checksum {} now {checksum}); \
                     migrations are forward-only: add a new file instead of editing an applied one",
                    done.checksum
                );
            }
            report.already_applied += 1;
            continue;
        }
        let statements = match &cluster_plan {
            Some(plan) => plan
                .iter()
                .find(|(v, _, _)| *v == version)
                .map(|(_, _, s)| s.clone())
                .unwrap_or_default(),
            None => split_statements(sql),
        };
        for (i, statement) in statements.iter().enumerate() {
            client
                .query_raw(statement)
                .execute()
                .await
                .with_context(|| format!("migration {name}, statement {} failed", i + 1))?;
        }
        #[derive(clickhouse::Row, Serialize)]
        struct NewRow<'a> {
            version: u32,
            name: &'a str,
            checksum: &'a str,
        }
        let mut insert = client.insert::<NewRow<'_>>("schema_migrations").await?;
        insert
            .write(&NewRow {
                version,
                name,
                checksum: &checksum,
            })
            .await?;
        insert
            .end()
            .await
            .with_context(|| format!("failed to record migration {name}"))?;
        report.applied.push(name.to_owned());
    }
    Ok(report)
}

/// Every statement a fresh migration runs, in order, on one node or (with `cluster`) on a
/// cluster: what `dvmdash migrate --print` shows.
pub fn migration_plan(db: &str, cluster: Option<&str>) -> anyhow::Result<Vec<String>> {
    if !is_identifier(db) {
        bail!("clickhouse database {db:?} is not a plain identifier");
    }
    let mut out = Vec::new();
    match cluster {
        Some(c) => {
            let schema = crate::cluster_schema::ClusterSchema::new(c)?;
            out.push(schema.create_database(db));
            out.push(schema.migrations_table());
            for (_, _, statements) in crate::cluster_schema::cluster_migrations(c)? {
                out.extend(statements);
            }
        }
        None => {
            out.push(format!("CREATE DATABASE IF NOT EXISTS `{db}`"));
            for (_, _, sql) in MIGRATIONS {
                out.extend(split_statements(sql));
            }
        }
    }
    Ok(out)
}

/// Splits SQL text into statements on `;`, ignoring semicolons inside quotes, backticks and
/// comments. The ClickHouse HTTP interface takes one statement per request.
pub fn split_statements(sql: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut chars = sql.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\'' | '"' | '`' => {
                cur.push(c);
                while let Some(d) = chars.next() {
                    cur.push(d);
                    if d == '\\' {
                        if let Some(e) = chars.next() {
                            cur.push(e);
                        }
                    } else if d == c {
                        break;
                    }
                }
            }
            '-' if chars.peek() == Some(&'-') => {
                // Line comment: dropped, up to the newline.
                for d in chars.by_ref() {
                    if d == '\n' {
                        cur.push('\n');
                        break;
                    }
                }
            }
            '/' if chars.peek() == Some(&'*') => {
                chars.next();
                let mut prev = ' ';
                for d in chars.by_ref() {
                    if prev == '*' && d == '/' {
                        break;
                    }
                    prev = d;
                }
                cur.push(' ');
            }
            ';' => {
                if !cur.trim().is_empty() {
                    out.push(cur.trim().to_owned());
                }
                cur.clear();
            }
            _ => cur.push(c),
        }
    }
    if !cur.trim().is_empty() {
        out.push(cur.trim().to_owned());
    }
    out
}

/// Checks that ClickHouse answers, returning the round-trip time.
pub async fn ping(client: &clickhouse::Client) -> anyhow::Result<std::time::Duration> {
    let start = std::time::Instant::now();
    let one: u8 = client.query("SELECT 1").fetch_one().await?;
    anyhow::ensure!(one == 1, "SELECT 1 returned {one}");
    Ok(start.elapsed())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_statements_outside_quotes_and_comments() {
        let sql = "-- a comment; with a semicolon\nCREATE TABLE a (x String DEFAULT ';');\n\
                   /* block; comment */ SELECT 'it''s', \"q;\", `b;c`;\n\nSELECT 1";
        let parts = split_statements(sql);
        assert_eq!(parts.len(), 3, "{parts:?}");
        assert!(parts[0].starts_with("CREATE TABLE a"));
        assert!(parts[1].contains("`b;c`"));
        assert_eq!(parts[2], "SELECT 1");
        assert!(split_statements("  ;; -- only a comment\n").is_empty());
    }

    #[test]
    fn migrations_are_embedded_in_order() {
        assert!(!MIGRATIONS.is_empty());
        assert!(MIGRATIONS.windows(2).all(|w| w[0].0 < w[1].0));
        assert_eq!(MIGRATIONS[0].1, "0001_events_raw");
        for (_, name, sql) in MIGRATIONS {
            assert!(!split_statements(sql).is_empty(), "{name} has no statement");
        }
    }
}
