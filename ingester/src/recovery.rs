//! Finishing an insert whose outcome is unknown, exactly once.
//!
//! An insert into `events_raw` commits one part per partition in `events_raw` and then in the
//! target of every materialized view on it, one table after another, with no transaction around
//! them. If ClickHouse dies (or the connection breaks) in the middle, any subset of those parts may
//! be committed. Retrying with the same deduplication token is not enough on a single node: a
//! non-replicated table writes its deduplication record *before* it renames the part into place, so
//! a crash between the two leaves a record for a part that does not exist, and the retry is then
//! silently dropped for that table (seen with the dev server: 1 of 25 kills lost one table's
//! block). Retrying with a new token instead would count twice wherever the part did land.
//!
//! So the ingester finds out what landed, while other shards keep inserting:
//! - a summing rollup is partitioned by `lane` (migration 0011), the stream shard that inserted
//!   the row, and a lane has one writer at a time (the shard's gate lock). Every committed part
//!   takes the table's next block number, so a part in the writer's own lane whose
//!   `max_block_number` is above the table's maximum before the attempt was written by the attempt;
//! - in a table holding event ids (`events_raw`, partitioned by day and shared by every lane;
//!   `event_ids`; `announcements`) a partition with a newer part landed when it holds one of the
//!   batch's ids, which no other insert can write: the gate let them through this lane only.
//!
//! A target that keeps the newest row per key (a `Replacing` engine: `event_ids`,
//! `announcements`) is idempotent, so a repair simply writes it again for the whole batch; this
//! also covers a target fed by two views, whose parts block numbers cannot tell apart. It still
//! counts for whether anything landed: ids in `event_ids` and nowhere else would make the gate
//! skip those events for good if the ingester stopped before trying again.
//!
//! With that, per table and partition:
//! - nothing landed anywhere: the whole insert is tried again, under a new token;
//! - something landed: the batch is written to `events_raw_repair` (same structure, no views) and
//!   each missing (table, partition) is filled from there alone: `events_raw` by `ATTACH
//!   PARTITION ... FROM` (which runs no view), a view's target by the view's own `SELECT` over the
//!   repair table, restricted to the missing partitions. Each step is a single-table write judged
//!   the same way when it fails, so a crash during the repair is repaired too. There is one repair
//!   table, so repairs take turns under the repair lock (the ingester holds it).
//!
//! A summing target must be fed by one view only and partitioned by lane, which discovery checks.
//! The views, their queries, columns and targets are read from `system.tables` and
//! `system.columns`, so a migration that adds a rollup needs nothing here.

use std::collections::{BTreeSet, HashMap};
use std::time::Duration;

use anyhow::{Context as _, bail};
use dvmdash_core::store::{EVENTS_RAW, RawEventRow};
use serde::Deserialize;
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

/// The scratch table the repair reads from (migration 0008).
pub const REPAIR_TABLE: &str = "events_raw_repair";

/// Highest committed block number per table.
pub type Blocks = HashMap<String, u64>;

/// Partitions per table.
pub type Partitions = HashMap<String, BTreeSet<String>>;

/// A materialized view on `events_raw` and how to run it over the repair table instead.
#[derive(Debug, Clone)]
pub struct View {
    pub name: String,
    pub target: String,
    /// The view's SELECT with `events_raw` replaced by the repair table.
    pub select: String,
    /// The target's partition expression; empty when unpartitioned.
    pub partition_key: String,
    /// The view's output columns, inserted by name as the view itself does.
    pub columns: Vec<String>,
    /// The target keeps the newest row per key, so writing a row again changes nothing.
    pub idempotent: bool,
}

/// How a table's parts are told apart from other lanes' (see [`committed_since`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Judge {
    /// Holds event ids: a partition landed when it holds one of the batch's ids, which the gate
    /// let through this lane alone.
    ById,
    /// Partitioned by lane: a newer part in the writer's own lane is its own.
    ByLane,
    /// Neither (an idempotent target without ids): any newer part may be the writer's. Only
    /// ever errs towards a repair, which writes such a table again whole anyway.
    AnyNewPart,
}

/// Whose parts a failed write looks for: one lane's insert of `rows`.
#[derive(Debug, Clone, Copy)]
pub struct Writer<'a> {
    pub lane: u8,
    pub rows: &'a [&'a RawEventRow],
}

/// `events_raw` and everything fed from it.
#[derive(Debug, Clone)]
pub struct Targets {
    pub views: Vec<View>,
}

impl Targets {
    pub fn tables(&self) -> impl Iterator<Item = &str> {
        std::iter::once(EVENTS_RAW).chain(self.views.iter().map(|v| v.target.as_str()))
    }

    /// How what a failed write committed to `table` is told (see [`committed_since`]).
    fn judge(&self, table: &str) -> Judge {
        let feeders = || self.views.iter().filter(move |v| v.target == table);
        if table == EVENTS_RAW || feeders().any(|v| v.columns.iter().any(|c| c == "event_id")) {
            Judge::ById
        } else if feeders().any(|v| !v.idempotent) {
            Judge::ByLane
        } else {
            Judge::AnyNewPart
        }
    }

    /// Reads the views on `events_raw` from the server.
    pub async fn discover(ch: &clickhouse::Client) -> anyhow::Result<Targets> {
        #[derive(clickhouse::Row, Deserialize)]
        struct Row {
            name: String,
            query: String,
            select: String,
            db: String,
        }
        let rows = ch
            .query(
                "SELECT name, create_table_query AS query, as_select AS select, database AS db \
                 FROM system.tables WHERE database = currentDatabase() \
                 AND engine = 'MaterializedView' \
                 AND name IN (SELECT arrayJoin(dependencies_table) FROM system.tables \
                              WHERE database = currentDatabase() AND name = ?) ORDER BY name",
            )
            .bind(EVENTS_RAW)
            .fetch_all::<Row>()
            .await
            .context("reading the views on events_raw")?;
        let tables = tables(ch).await?;
        let mut views = Vec::with_capacity(rows.len());
        for r in rows {
            let target = view_target(&r.query, &r.db)
                .with_context(|| format!("view {} has no TO table: {}", r.name, r.query))?;
            let select = swap_source(&r.select, &r.db, EVENTS_RAW, REPAIR_TABLE)
                .with_context(|| format!("view {} does not read {}.{EVENTS_RAW}", r.name, r.db))?;
            if select.contains('?') {
                // The client reads `?` as a parameter; no view of ours has one.
                bail!("view {} contains '?', which the repair cannot send", r.name);
            }
            let (engine, partition_key) = tables.get(&target).cloned().unwrap_or_default();
            let columns: Vec<String> = ch
                .query(
                    "SELECT name FROM system.columns WHERE database = currentDatabase() \
                     AND table = ? ORDER BY position",
                )
                .bind(&r.name)
                .fetch_all()
                .await
                .context("reading a view's columns")?;
            views.push(View {
                name: r.name,
                target,
                select,
                partition_key,
                columns,
                idempotent: engine.starts_with("Replacing"),
            });
        }
        for v in views.iter().filter(|v| !v.idempotent) {
            if !by_lane(&v.partition_key) {
                bail!(
                    "{} sums what it receives but is partitioned by {:?}, not by lane last \
                     (migration 0011): what an interrupted insert committed there could not be \
                     told from other shards' inserts",
                    v.target,
                    v.partition_key
                );
            }
            let feeders = views.iter().filter(|w| w.target == v.target).count();
            if feeders > 1 {
                bail!(
                    "{} is fed by {feeders} views and sums what it receives: an interrupted \
                     insert into it could not be completed exactly",
                    v.target
                );
            }
        }
        Ok(Targets { views })
    }
}

/// Engine and partition expression of every table of the database.
async fn tables(ch: &clickhouse::Client) -> anyhow::Result<HashMap<String, (String, String)>> {
    let rows: Vec<(String, String, String)> = ch
        .query(
            "SELECT name, engine, partition_key FROM system.tables \
             WHERE database = currentDatabase()",
        )
        .fetch_all()
        .await
        .context("reading the tables")?;
    Ok(rows.into_iter().map(|(n, e, k)| (n, (e, k))).collect())
}

/// A partition expression as the arguments of `partitionId(...)`: a tuple key `(a, b)` is
/// `a, b` (`partitionId((a, b))` would hash the tuple into another id).
fn partition_args(key: &str) -> &str {
    let key = key.trim();
    match key.strip_prefix('(').and_then(|k| k.strip_suffix(')')) {
        // `(a) + (b)` is not a tuple: the parentheses must enclose the whole key.
        Some(inner) if balanced(inner) => inner,
        _ => key,
    }
}

/// Every `(` in `s` closed, never closing more than opened (there are no quotes in keys).
fn balanced(s: &str) -> bool {
    let mut depth = 0i32;
    for c in s.chars() {
        depth += match c {
            '(' => 1,
            ')' => -1,
            _ => 0,
        };
        if depth < 0 {
            return false;
        }
    }
    depth == 0
}

/// Whether a partition expression ends with the lane: `lane` or `(..., lane)`.
fn by_lane(key: &str) -> bool {
    partition_args(key).rsplit(',').next().map(str::trim) == Some("lane")
}

/// The lane of a partition id of a table partitioned by lane last: ClickHouse names a partition
/// of integer values by the values joined with `-`.
fn lane_of(partition_id: &str) -> Option<u8> {
    partition_id.rsplit('-').next()?.parse().ok()
}

/// `TO db.name` of a `CREATE MATERIALIZED VIEW` statement.
fn view_target(create: &str, db: &str) -> Option<String> {
    let (_, rest) = create.split_once(" TO ")?;
    let name = rest.split([' ', '(']).next()?;
    let name = name.strip_prefix(&format!("{db}.")).unwrap_or(name);
    Some(name.trim_matches('`').to_owned()).filter(|n| !n.is_empty())
}

/// Replaces `db.from` (as a whole name) by `db.to` in a normalized SELECT; `None` if absent.
fn swap_source(select: &str, db: &str, from: &str, to: &str) -> Option<String> {
    let needle = format!("{db}.{from}");
    let replacement = format!("{db}.{to}");
    let mut out = String::with_capacity(select.len() + 16);
    let mut rest = select;
    let mut found = false;
    while let Some(at) = rest.find(&needle) {
        let after = &rest[at + needle.len()..];
        let whole = !after.starts_with(|c: char| c.is_ascii_alphanumeric() || c == '_');
        out.push_str(&rest[..at]);
        out.push_str(if whole { &replacement } else { &needle });
        found |= whole;
        rest = after;
    }
    out.push_str(rest);
    found.then_some(out)
}

/// The highest committed block number of every table of the database.
pub async fn blocks(ch: &clickhouse::Client) -> clickhouse::error::Result<Blocks> {
    let rows: Vec<(String, u64)> = ch
        .query(
            "SELECT table, toUInt64(max(max_block_number)) FROM system.parts \
             WHERE database = currentDatabase() AND active GROUP BY table",
        )
        .fetch_all()
        .await?;
    Ok(rows.into_iter().collect())
}

/// Partitions of `events_raw` and its views' targets (only `table`, when given) that `writer`
/// committed after `before` was read, while other lanes may have written the same tables: a
/// partition with a newer part counts when it holds one of the batch's ids (`events_raw`,
/// `event_ids`, `announcements`), or when it is the writer's own lane's (the summing rollups).
pub async fn committed_since(
    ch: &clickhouse::Client,
    targets: &Targets,
    before: &Blocks,
    table: Option<&str>,
    writer: Writer<'_>,
) -> clickhouse::error::Result<Partitions> {
    let tables: Vec<String> = match table {
        Some(t) => vec![t.to_owned()],
        None => targets.tables().map(str::to_owned).collect(),
    };
    let rows: Vec<(String, String, u64)> = ch
        .query(
            "SELECT table, partition_id, toUInt64(max(max_block_number)) FROM system.parts \
             WHERE database = currentDatabase() AND active AND table IN {tables:Array(String)} \
             GROUP BY table, partition_id",
        )
        .param("tables", &tables)
        .fetch_all()
        .await?;
    let mut out = Partitions::new();
    let mut by_id: HashMap<String, Vec<String>> = HashMap::new();
    for (table, partition, max_block) in rows {
        if max_block <= before.get(&table).copied().unwrap_or(0) {
            continue;
        }
        match targets.judge(&table) {
            Judge::ById => by_id.entry(table).or_default().push(partition),
            Judge::ByLane if lane_of(&partition) != Some(writer.lane) => {}
            Judge::ByLane | Judge::AnyNewPart => {
                out.entry(table).or_default().insert(partition);
            }
        }
    }
    if by_id.is_empty() || writer.rows.is_empty() {
        return Ok(out);
    }
    // As a parameter, not in the query text: 10 000 ids are 650 KB, beyond `max_query_size`.
    let ids = crate::gate::hex_ids(writer.rows.iter().copied());
    for (table, partitions) in by_id {
        let holding: Vec<String> = ch
            .query(&format!(
                "SELECT DISTINCT _partition_id FROM `{table}` \
                 WHERE _partition_id IN {{partitions:Array(String)}} AND event_id IN \
                 (SELECT toFixedString(unhex(arrayJoin(splitByChar(' ', {{ids:String}}))), 32))"
            ))
            .param("partitions", &partitions)
            .param("ids", &ids)
            .fetch_all()
            .await?;
        if !holding.is_empty() {
            out.insert(table, holding.into_iter().collect());
        }
    }
    Ok(out)
}

/// Waits until ClickHouse answers, then says which partitions of `table` the write committed.
async fn landed(
    ch: &clickhouse::Client,
    targets: &Targets,
    before: &Blocks,
    table: &str,
    writer: Writer<'_>,
    shutdown: &CancellationToken,
) -> anyhow::Result<Partitions> {
    let mut wait = Duration::from_millis(100);
    loop {
        match committed_since(ch, targets, before, Some(table), writer).await {
            Ok(p) => return Ok(p),
            Err(err) => warn!(error = %err, "waiting for clickhouse to tell what a repair write committed"),
        }
        if shutdown.is_cancelled() {
            bail!("shutting down before the outcome of a repair write was known");
        }
        tokio::select! {
            _ = shutdown.cancelled() => {}
            _ = tokio::time::sleep(wait) => {}
        }
        wait = (wait * 2).min(Duration::from_secs(5));
    }
}

/// Writes the rest of a partly committed batch: every (table, partition) of the batch that is not
/// in `done`. Retries each step until it lands or `shutdown`.
pub async fn complete(
    ch: &clickhouse::Client,
    targets: &Targets,
    writer: Writer<'_>,
    mut done: Partitions,
    shutdown: &CancellationToken,
) -> anyhow::Result<()> {
    let mut failures = 0u32;
    loop {
        match complete_once(ch, targets, writer, &mut done, shutdown).await {
            Ok(()) => return Ok(()),
            Err(err) => {
                warn!(error = %format!("{err:#}"), "completing a partly committed batch failed, retrying");
                if shutdown.is_cancelled() {
                    return Err(err);
                }
            }
        }
        failures += 1;
        let wait = Duration::from_millis(100 * 2u64.pow(failures.min(6)));
        tokio::select! {
            _ = shutdown.cancelled() => {}
            _ = tokio::time::sleep(wait) => {}
        }
    }
}

async fn complete_once(
    ch: &clickhouse::Client,
    targets: &Targets,
    writer: Writer<'_>,
    done: &mut Partitions,
    shutdown: &CancellationToken,
) -> anyhow::Result<()> {
    // Repair writes must never be dropped as duplicates of an earlier, lost, attempt.
    let ch = &ch.clone().with_setting("insert_deduplicate", "0");
    fill_repair_table(ch, writer.rows).await?;
    let raw_parts: Vec<String> = ch
        .query(&format!("SELECT DISTINCT _partition_id FROM {REPAIR_TABLE}"))
        .fetch_all()
        .await?;
    for partition in raw_parts {
        if done.get(EVENTS_RAW).is_some_and(|p| p.contains(&partition)) {
            continue;
        }
        let sql = format!(
            "ALTER TABLE {EVENTS_RAW} ATTACH PARTITION ID {} FROM {REPAIR_TABLE}",
            quote(&partition)?
        );
        let write = ch.query(&sql).execute();
        step(ch, targets, EVENTS_RAW, Some((writer, done)), shutdown, write).await?;
        info!(partition = %partition, "repair: events_raw partition attached");
    }
    for view in &targets.views {
        let missing = if view.idempotent {
            BTreeSet::new() // written again whole below
        } else {
            missing_partitions(ch, view, done.get(&view.target)).await?
        };
        if !view.idempotent && missing.is_empty() {
            continue;
        }
        let list = view
            .columns
            .iter()
            .map(|c| format!("`{c}`"))
            .collect::<Vec<_>>()
            .join(", ");
        let filter = if view.idempotent || view.partition_key.is_empty() {
            String::new()
        } else {
            let ids = missing
                .iter()
                .map(|p| quote(p))
                .collect::<anyhow::Result<Vec<_>>>()?;
            format!(
                "WHERE partitionId({}) IN ({})",
                partition_args(&view.partition_key),
                ids.join(", ")
            )
        };
        let sql = format!(
            "INSERT INTO {} ({list}) SELECT {list} FROM ({}) {filter}",
            view.target, view.select
        );
        let account = (!view.idempotent).then_some((writer, &mut *done));
        let write = ch.query(&sql).execute();
        step(ch, targets, &view.target, account, shutdown, write).await?;
        info!(view = %view.name, table = %view.target, partitions = ?missing, "repair: rollup completed");
    }
    Ok(())
}

/// A partition id as an SQL string; ids are digits, letters, '-' and '_' (hashes for complex keys).
fn quote(partition: &str) -> anyhow::Result<String> {
    if partition.is_empty()
        || !partition
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
    {
        bail!("unexpected partition id {partition:?}");
    }
    Ok(format!("'{partition}'"))
}

/// Partitions the view's output for the batch falls in that have not landed yet.
async fn missing_partitions(
    ch: &clickhouse::Client,
    view: &View,
    done: Option<&BTreeSet<String>>,
) -> anyhow::Result<BTreeSet<String>> {
    let all: Vec<String> = if view.partition_key.is_empty() {
        let n: u64 = ch
            .query(&format!("SELECT count() FROM ({})", view.select))
            .fetch_one()
            .await?;
        if n == 0 { vec![] } else { vec!["all".to_owned()] }
    } else {
        ch.query(&format!(
            "SELECT DISTINCT partitionId({}) FROM ({})",
            partition_args(&view.partition_key),
            view.select
        ))
        .fetch_all()
        .await?
    };
    Ok(all
        .into_iter()
        .filter(|p| !done.is_some_and(|d| d.contains(p)))
        .collect())
}

/// Runs one single-table write. With `account` (a table that must be written exactly once), what
/// it committed goes into `done`, also when it fails, before the error is returned; an idempotent
/// table is simply written again whole on the next try.
async fn step(
    ch: &clickhouse::Client,
    targets: &Targets,
    table: &str,
    account: Option<(Writer<'_>, &mut Partitions)>,
    shutdown: &CancellationToken,
    write: impl std::future::Future<Output = clickhouse::error::Result<()>>,
) -> anyhow::Result<()> {
    let Some((writer, done)) = account else {
        return write.await.with_context(|| format!("repair write to {table}"));
    };
    let before = blocks(ch).await?;
    let result = write.await;
    // Also after a success: a write that landed but is not recorded would be written again.
    let landed = landed(ch, targets, &before, table, writer, shutdown).await?;
    merge(done, landed);
    result.with_context(|| format!("repair write to {table}"))
}

fn merge(done: &mut Partitions, landed: Partitions) {
    for (table, parts) in landed {
        done.entry(table).or_default().extend(parts);
    }
}

/// Empties the repair table and writes the batch into it, checking it arrived whole.
async fn fill_repair_table(ch: &clickhouse::Client, rows: &[&RawEventRow]) -> anyhow::Result<()> {
    ch.query(&format!("TRUNCATE TABLE {REPAIR_TABLE}"))
        .execute()
        .await
        .context("emptying the repair table")?;
    let mut insert = ch.insert::<RawEventRow>(REPAIR_TABLE).await?;
    for row in rows {
        insert.write(*row).await?;
    }
    insert.end().await.context("filling the repair table")?;
    let (n, ids): (u64, u64) = ch
        .query(&format!(
            "SELECT count(), uniqExact(event_id) FROM {REPAIR_TABLE}"
        ))
        .fetch_one()
        .await?;
    if n != rows.len() as u64 || ids != n {
        bail!(
            "the repair table holds {n} rows ({ids} ids), expected {}",
            rows.len()
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_view_target_is_read_from_the_create_statement() {
        let q =
            "CREATE MATERIALIZED VIEW db.stats_hourly_mv TO db.stats_hourly (`hour` DateTime) AS SELECT 1";
        assert_eq!(view_target(q, "db").as_deref(), Some("stats_hourly"));
        assert_eq!(
            view_target("CREATE MATERIALIZED VIEW db.x AS SELECT 1", "db"),
            None
        );
    }

    #[test]
    fn the_lane_is_read_from_the_partition_key_and_id() {
        assert!(by_lane("lane"));
        assert!(by_lane("(toYYYYMM(hour), lane)"));
        assert!(!by_lane("toYYYYMM(hour)"));
        assert!(!by_lane("(lane, toYYYYMM(hour))"));
        assert!(!by_lane("(toYYYYMM(hour), lanes)"));
        assert!(!by_lane(""));
        assert!(!by_lane("(a) + (lane)"));
        assert_eq!(partition_args("(toYYYYMM(hour), lane)"), "toYYYYMM(hour), lane");
        assert_eq!(partition_args(" toYYYYMM(hour) "), "toYYYYMM(hour)");
        assert_eq!(partition_args("(a) + (b)"), "(a) + (b)");
        assert_eq!(lane_of("202612-3"), Some(3));
        assert_eq!(lane_of("255"), Some(255));
        assert_eq!(lane_of("202612-256"), None);
        assert_eq!(lane_of("all"), None);
        assert_eq!(lane_of(""), None);
    }

    #[test]
    fn only_the_whole_source_name_is_swapped() {
        let s = "SELECT a FROM db.events_raw WHERE x IN (SELECT y FROM db.events_raw_other)";
        assert_eq!(
            swap_source(s, "db", "events_raw", "events_raw_repair").as_deref(),
            Some("SELECT a FROM db.events_raw_repair WHERE x IN (SELECT y FROM db.events_raw_other)")
        );
        assert_eq!(
            swap_source("SELECT 1 FROM db.events_raw_x", "db", "events_raw", "r"),
            None
        );
    }
}
