//! The schema on a ClickHouse cluster, derived statement by statement from the single-node
//! migrations in `clickhouse/schema/` (there is no second copy of the schema):
//!
//! - every table `t` becomes `t_local`, a `Replicated*MergeTree` on each node (its Keeper path
//!   holds `{shard}`, so the replicas of a shard share it), plus `t`, a `Distributed` table over
//!   the `t_local`s of every shard. Queries and inserts keep using `t`, so the api, the ingester
//!   and Grafana need no change. Tables with an `event_id` are sharded by its hash, so every copy
//!   of an event, and its id in `event_ids`, lands on one shard and collapses there;
//! - materialized views live on every node and read and write the local tables, because a view
//!   fires on the insert into the local table that the Distributed insert performs on its shard;
//! - plain and parameterized views are created on every node over the Distributed tables.
//!
//! Every statement carries `ON CLUSTER`, so running them on one node applies them everywhere
//! (through Keeper). A statement of a shape this module does not know is an error that names it,
//! so a new migration cannot silently skip the cluster.
//!
//! The text is transformed with a small scanner that respects quotes and parentheses, rather than
//! a SQL parser: ClickHouse's dialect has no maintained Rust parser, and the shapes are few. The
//! stand-in's own parser checks every statement produced (`cli/tests/e2e/clickhouse_standin.rs`).

use std::collections::BTreeMap;

use anyhow::{Context as _, bail};

use crate::config::is_identifier;
use crate::store::{MIGRATIONS, split_statements};

/// Suffix of the per-node tables.
pub const LOCAL: &str = "_local";

/// What a later statement needs to know of a table created earlier.
#[derive(Debug, Clone)]
struct Table {
    /// `ReplacingMergeTree`, `AggregatingMergeTree`, ...
    engine: String,
    /// The engine's own arguments (`created_at` of `ReplacingMergeTree(created_at)`), or empty.
    engine_args: String,
    /// Everything after the engine: PARTITION BY, ORDER BY, TTL, SETTINGS.
    tail: String,
    has_event_id: bool,
    /// The Distributed table's sharding expression.
    shard_key: String,
}

/// Translates the migrations, in order, into their cluster form.
#[derive(Debug)]
pub struct ClusterSchema {
    cluster: String,
    tables: BTreeMap<String, Table>,
}

impl ClusterSchema {
    pub fn new(cluster: &str) -> anyhow::Result<Self> {
        if !is_identifier(cluster) {
            bail!("cluster name {cluster:?} is not a plain identifier");
        }
        Ok(ClusterSchema {
            cluster: cluster.to_owned(),
            tables: BTreeMap::new(),
        })
    }

    pub fn cluster(&self) -> &str {
        &self.cluster
    }

    /// `CREATE DATABASE` on every node.
    pub fn create_database(&self, db: &str) -> String {
        format!("CREATE DATABASE IF NOT EXISTS `{db}` ON CLUSTER {}", self.cluster)
    }

    /// The migrations ledger: one replicated table shared by every node of every shard (its Keeper
    /// path has no `{shard}`), so any node knows what was applied.
    pub fn migrations_table(&self) -> String {
        format!(
            "CREATE TABLE IF NOT EXISTS schema_migrations ON CLUSTER {} (version UInt32, name String, \
             checksum String, applied_at DateTime64(3, 'UTC') DEFAULT now64(3)) \
             ENGINE = ReplicatedMergeTree('/clickhouse/tables/all/{{database}}/schema_migrations', '{{shard}}-{{replica}}') \
             ORDER BY version",
            self.cluster
        )
    }

    /// The cluster form of one single-node statement (comments already removed).
    pub fn translate(&mut self, statement: &str) -> anyhow::Result<Vec<String>> {
        let s = statement.trim();
        let words: Vec<String> = s
            .split_whitespace()
            .take(6)
            .map(|w| w.to_ascii_uppercase())
            .collect();
        let w: Vec<&str> = words.iter().map(String::as_str).collect();
        match w.as_slice() {
            ["CREATE", "TABLE", "IF", "NOT", "EXISTS", ..] => self.create_table(s),
            ["CREATE", "MATERIALIZED", "VIEW", ..] => self.materialized_view(s),
            ["CREATE", "VIEW", ..] | ["CREATE", "OR", "REPLACE", "VIEW", ..] => Ok(vec![self.view(s)?]),
            ["ALTER", "TABLE", ..] => self.alter_table(s),
            ["DROP", "TABLE", "IF", "EXISTS", ..] => self.drop_table(s),
            ["DROP", "VIEW", "IF", "EXISTS", ..] => Ok(vec![format!("{s} {} SYNC", self.on_cluster())]),
            ["INSERT", "INTO", ..] => Ok(vec![self.insert_select(s)?]),
            ["EXCHANGE", "TABLES", ..] => self.exchange(s),
            _ => bail!(
                "no cluster form for this statement (add one in core/src/cluster_schema.rs): {}",
                first_line(s)
            ),
        }
    }

    fn on_cluster(&self) -> String {
        format!("ON CLUSTER {}", self.cluster)
    }

    fn create_table(&mut self, s: &str) -> anyhow::Result<Vec<String>> {
        let after = skip_words(s, 5);
        let (name, rest) = split_identifier(after).context("CREATE TABLE without a name")?;
        let rest = rest.trim_start();
        let local = format!("{name}{LOCAL}");
        let (columns, table) = if let Some(source) = strip_keyword(rest, "AS") {
            // `CREATE TABLE t AS other`: the same columns and engine, under a Keeper path of its own.
            let (other, _) = split_identifier(source.trim_start()).context("AS without a table")?;
            let def = self
                .tables
                .get(other)
                .with_context(|| format!("{name} copies {other}, which no earlier migration creates"))?
                .clone();
            (format!("AS {other}{LOCAL}"), def)
        } else {
            let close = matching_paren(rest).context("CREATE TABLE without a column list")?;
            let columns = &rest[..=close];
            let after_columns = rest[close + 1..].trim_start();
            let engine_clause =
                strip_keyword(after_columns, "ENGINE").context("CREATE TABLE without ENGINE")?;
            let engine_clause = engine_clause
                .trim_start()
                .strip_prefix('=')
                .context("ENGINE without =")?
                .trim_start();
            let (engine, after_engine) = split_identifier(engine_clause).context("ENGINE without a name")?;
            let (engine_args, tail) = if after_engine.starts_with('(') {
                let close = matching_paren(after_engine).context("unbalanced engine arguments")?;
                (
                    after_engine[1..close].trim().to_owned(),
                    &after_engine[close + 1..],
                )
            } else {
                (String::new(), after_engine)
            };
            if !engine.ends_with("MergeTree") || engine.starts_with("Replicated") {
                bail!("{name}: engine {engine} has no replicated form here");
            }
            let table = Table {
                engine: engine.to_owned(),
                engine_args,
                tail: drop_setting(tail.trim(), "non_replicated_deduplication_window"),
                has_event_id: columns
                    .split(|c: char| !(c.is_alphanumeric() || c == '_'))
                    .any(|w| w == "event_id"),
                shard_key: String::new(),
            };
            (columns.to_owned(), table)
        };
        let mut args = vec![
            // `{uuid}`: a table keeps its Keeper path when renamed or exchanged, so a name can be
            // made again (a rebuild run a second time) without meeting its old path.
            format!("'/clickhouse/tables/{{shard}}/{{database}}/{local}/{{uuid}}'"),
            "'{replica}'".to_owned(),
        ];
        if !table.engine_args.is_empty() {
            args.push(table.engine_args.clone());
        }
        let local_sql = format!(
            "CREATE TABLE IF NOT EXISTS {local} {}\n{columns}\nENGINE = Replicated{}({})\n{}",
            self.on_cluster(),
            table.engine,
            args.join(", "),
            table.tail
        );
        // A ReplacingMergeTree collapses versions of a key only on one node, so its rows are sent
        // by the first column of their key (the job ledger's request hour); plain rollups can go
        // anywhere, since readers re-aggregate across shards.
        let key = if table.has_event_id {
            "cityHash64(event_id)".to_owned()
        } else if table.engine == "ReplacingMergeTree" {
            let order = strip_keyword_anywhere(&table.tail, "ORDER BY")
                .with_context(|| format!("{name}: a ReplacingMergeTree without ORDER BY"))?;
            let first = order
                .trim_start()
                .trim_start_matches('(')
                .split([',', ')', '\n', ' '])
                .next()
                .unwrap_or_default();
            if !is_identifier(first) {
                bail!("{name}: cannot shard by the first key column {first:?}");
            }
            format!("cityHash64({first})")
        } else {
            "rand()".to_owned()
        };
        let distributed = format!(
            "CREATE TABLE IF NOT EXISTS {name} {} AS {local} ENGINE = {}",
            self.on_cluster(),
            self.distributed_engine(name, &key)
        );
        self.tables.insert(
            name.to_owned(),
            Table {
                shard_key: key,
                ..table
            },
        );
        Ok(vec![local_sql.trim().to_owned(), distributed])
    }

    fn distributed_engine(&self, name: &str, key: &str) -> String {
        format!(
            "Distributed({}, currentDatabase(), {name}{LOCAL}, {key})",
            self.cluster
        )
    }

    /// A known table's `name`, and the text after it, from the words after `skip` leading ones.
    fn known<'s>(&self, s: &'s str, skip: usize, what: &str) -> anyhow::Result<(&'s str, &'s str)> {
        let (name, rest) =
            split_identifier(skip_words(s, skip)).with_context(|| format!("{what} without a table"))?;
        if !self.tables.contains_key(name) {
            bail!("{what} {name}: no earlier migration creates it");
        }
        Ok((name, rest))
    }

    /// `DROP TABLE IF EXISTS t`: both the Distributed table and the local ones, synchronously so
    /// the Keeper path is free again when the statement returns.
    fn drop_table(&mut self, s: &str) -> anyhow::Result<Vec<String>> {
        let (name, rest) = split_identifier(skip_words(s, 4)).context("DROP TABLE without a name")?;
        if !rest.trim().is_empty() {
            bail!("DROP TABLE {name}: nothing may follow the name here");
        }
        // Dropping a table no migration made (a leftover of an interrupted run) is fine.
        self.tables.remove(name);
        Ok(vec![
            format!("DROP TABLE IF EXISTS {name} {} SYNC", self.on_cluster()),
            format!("DROP TABLE IF EXISTS {name}{LOCAL} {} SYNC", self.on_cluster()),
        ])
    }

    /// `INSERT INTO t (...) SELECT ... FROM u` (a table rebuilt under a new layout): one node reads
    /// every shard through the Distributed tables and writes through the Distributed target, and
    /// waits until every shard has its rows, so the next statement sees them all.
    fn insert_select(&self, s: &str) -> anyhow::Result<String> {
        let (name, rest) = self.known(s, 2, "INSERT INTO")?;
        let rest = rest.trim_start();
        let close = matching_paren(rest).context("INSERT INTO without a column list")?;
        let select = rest[close + 1..].trim_start();
        if strip_keyword(select, "SELECT").is_none() {
            bail!("INSERT INTO {name}: only INSERT ... SELECT has a cluster form");
        }
        if select.contains(';') {
            bail!("INSERT INTO {name}: one statement only");
        }
        // A trailing `SETTINGS a = 1` clause (nothing nested after it) gains one more setting.
        let upper = select.to_ascii_uppercase();
        let settings = upper.rmatch_indices("SETTINGS").map(|(at, _)| at).find(|&at| {
            upper[..at].ends_with(char::is_whitespace)
                && upper[at + "SETTINGS".len()..].starts_with(char::is_whitespace)
        });
        let sync = match settings {
            Some(at) if !select[at..].contains(['(', ')']) => ", insert_distributed_sync = 1",
            Some(_) => bail!("INSERT INTO {name}: SETTINGS before the end of the SELECT"),
            None => " SETTINGS insert_distributed_sync = 1",
        };
        Ok(format!("INSERT INTO {name} {} {select}{sync}", &rest[..=close]))
    }

    /// `EXCHANGE TABLES a AND b` swaps the local tables; each Distributed table then reads the
    /// other's local data under its own name, so `a`'s Distributed table is made again with the
    /// columns of its new local table (in place, so readers never miss it).
    fn exchange(&mut self, s: &str) -> anyhow::Result<Vec<String>> {
        let (a, rest) = self.known(s, 2, "EXCHANGE TABLES")?;
        let b = strip_keyword(rest, "AND").context("EXCHANGE TABLES without AND")?;
        let (b, rest) = self.known(b.trim_start(), 0, "EXCHANGE TABLES ... AND")?;
        if !rest.trim().is_empty() {
            bail!("EXCHANGE TABLES {a} AND {b}: nothing may follow the names here");
        }
        let (ta, tb) = (self.tables[a].clone(), self.tables[b].clone());
        let out = [(a, &tb), (b, &ta)].into_iter().map(|(name, now)| {
            format!(
                "CREATE OR REPLACE TABLE {name} {} AS {name}{LOCAL} ENGINE = {}",
                self.on_cluster(),
                self.distributed_engine(name, &now.shard_key)
            )
        });
        let mut statements = vec![format!(
            "EXCHANGE TABLES {a}{LOCAL} AND {b}{LOCAL} {}",
            self.on_cluster()
        )];
        statements.extend(out);
        self.tables.insert(a.to_owned(), tb);
        self.tables.insert(b.to_owned(), ta);
        Ok(statements)
    }

    fn materialized_view(&self, s: &str) -> anyhow::Result<Vec<String>> {
        let after = skip_words(s, 3);
        let after = strip_keywords(after, &["IF", "NOT", "EXISTS"]).unwrap_or(after);
        let (name, rest) =
            split_identifier(after.trim_start()).context("materialized view without a name")?;
        let to = strip_keyword(rest.trim_start(), "TO").context("materialized view without TO")?;
        let (target, rest) = split_identifier(to.trim_start()).context("TO without a table")?;
        if !self.tables.contains_key(target) {
            bail!("materialized view {name} writes {target}, which no earlier migration creates");
        }
        let select = strip_keyword(rest.trim_start(), "AS").context("materialized view without AS")?;
        Ok(vec![format!(
            "CREATE MATERIALIZED VIEW IF NOT EXISTS {name} {} TO {target}{LOCAL} AS {}",
            self.on_cluster(),
            self.localize(select.trim())
        )])
    }

    fn view(&self, s: &str) -> anyhow::Result<String> {
        let after = strip_keywords(s, &["CREATE", "OR", "REPLACE", "VIEW"])
            .or_else(|| strip_keywords(s, &["CREATE", "VIEW"]))
            .context("not a view")?;
        let after = strip_keywords(after, &["IF", "NOT", "EXISTS"]).unwrap_or(after);
        let (_, rest) = split_identifier(after.trim_start()).context("view without a name")?;
        let head = &s[..s.len() - rest.len()];
        Ok(format!("{head} {}{rest}", self.on_cluster()))
    }

    /// Column changes go to the local tables and the Distributed ones (which must show the same
    /// columns); anything else (TTL, settings) to the local tables only.
    fn alter_table(&self, s: &str) -> anyhow::Result<Vec<String>> {
        let after = skip_words(s, 2);
        let (name, rest) = split_identifier(after.trim_start()).context("ALTER TABLE without a name")?;
        if !self.tables.contains_key(name) {
            bail!("ALTER TABLE {name}: no earlier migration creates it");
        }
        let mut out = vec![format!("ALTER TABLE {name}{LOCAL} {}{rest}", self.on_cluster())];
        let upper = rest.to_ascii_uppercase();
        if upper.contains(" COLUMN ") {
            out.push(format!("ALTER TABLE {name} {}{rest}", self.on_cluster()));
        }
        Ok(out)
    }

    /// Points every known table named in a SELECT at its local table.
    fn localize(&self, select: &str) -> String {
        let mut out = String::with_capacity(select.len() + 32);
        let mut word = String::new();
        let mut quote: Option<char> = None;
        let flush = |word: &mut String, out: &mut String| {
            out.push_str(word);
            if self.tables.contains_key(word.as_str()) {
                out.push_str(LOCAL);
            }
            word.clear();
        };
        for c in select.chars() {
            if let Some(q) = quote {
                out.push(c);
                if c == q {
                    quote = None;
                }
                continue;
            }
            if c.is_ascii_alphanumeric() || c == '_' {
                word.push(c);
                continue;
            }
            flush(&mut word, &mut out);
            if c == '\'' || c == '"' || c == '`' {
                quote = Some(c);
            }
            out.push(c);
        }
        flush(&mut word, &mut out);
        out
    }
}

/// Every migration in its cluster form: (version, name, statements).
pub fn cluster_migrations(cluster: &str) -> anyhow::Result<Vec<(u32, &'static str, Vec<String>)>> {
    let mut schema = ClusterSchema::new(cluster)?;
    let mut out = Vec::new();
    for &(version, name, sql) in MIGRATIONS {
        let mut statements = Vec::new();
        for (i, s) in split_statements(sql).iter().enumerate() {
            statements.extend(
                schema
                    .translate(s)
                    .with_context(|| format!("migration {name}, statement {}", i + 1))?,
            );
        }
        out.push((version, name, statements));
    }
    Ok(out)
}

fn first_line(s: &str) -> &str {
    s.lines().next().unwrap_or("")
}

/// `s` after its first `n` whitespace-separated words.
fn skip_words(s: &str, n: usize) -> &str {
    let mut rest = s.trim_start();
    for _ in 0..n {
        let end = rest.find(char::is_whitespace).unwrap_or(rest.len());
        rest = rest[end..].trim_start();
    }
    rest
}

/// `s` after `keyword` (case-insensitive, a whole word) at its start.
fn strip_keyword<'a>(s: &'a str, keyword: &str) -> Option<&'a str> {
    let s = s.trim_start();
    let head = s.get(..keyword.len())?;
    let next = s[keyword.len()..].chars().next();
    (head.eq_ignore_ascii_case(keyword) && next.is_none_or(|c| !(c.is_alphanumeric() || c == '_')))
        .then(|| &s[keyword.len()..])
}

/// The text after the first `keyword` anywhere in `s` (outside nothing: the tails scanned here
/// hold no quotes).
fn strip_keyword_anywhere<'a>(s: &'a str, keyword: &str) -> Option<&'a str> {
    s.find(keyword).map(|i| &s[i + keyword.len()..])
}

fn strip_keywords<'a>(s: &'a str, keywords: &[&str]) -> Option<&'a str> {
    keywords.iter().try_fold(s, |rest, k| strip_keyword(rest, k))
}

/// A leading identifier (plain; no database prefix) and what follows it.
fn split_identifier(s: &str) -> Option<(&str, &str)> {
    let end = s
        .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
        .unwrap_or(s.len());
    (end > 0).then(|| s.split_at(end))
}

/// Index of the parenthesis closing the one `s` starts with, skipping quoted text.
fn matching_paren(s: &str) -> Option<usize> {
    if !s.starts_with('(') {
        return None;
    }
    let mut depth = 0usize;
    let mut quote: Option<char> = None;
    for (i, c) in s.char_indices() {
        match (quote, c) {
            (Some(q), c) if c == q => quote = None,
            (Some(_), _) => {}
            (None, '\'' | '"' | '`') => quote = Some(c),
            (None, '(') => depth += 1,
            (None, ')') => {
                depth -= 1;
                if depth == 0 {
                    return Some(i);
                }
            }
            _ => {}
        }
    }
    None
}

/// Removes `name = value` from a trailing `SETTINGS a = 1, b = 2` clause (and the clause when it
/// becomes empty).
fn drop_setting(tail: &str, name: &str) -> String {
    let upper = tail.to_ascii_uppercase();
    let Some(at) = upper.rfind("SETTINGS") else {
        return tail.to_owned();
    };
    let kept: Vec<&str> = tail[at + "SETTINGS".len()..]
        .split(',')
        .map(str::trim)
        .filter(|item| !item.is_empty() && item.split('=').next().map(str::trim) != Some(name))
        .collect();
    let head = tail[..at].trim_end();
    if kept.is_empty() {
        head.to_owned()
    } else {
        format!("{head}\nSETTINGS {}", kept.join(", "))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn schema() -> Vec<String> {
        cluster_migrations("dvmdash")
            .expect("every migration has a cluster form")
            .into_iter()
            .flat_map(|(_, _, s)| s)
            .collect()
    }

    #[test]
    fn every_table_is_replicated_locally_and_distributed_under_its_own_name() {
        let all = schema();
        for &(_, name, sql) in MIGRATIONS {
            for s in split_statements(sql) {
                let Some(rest) = s.strip_prefix("CREATE TABLE IF NOT EXISTS ") else {
                    continue;
                };
                let (table, _) = split_identifier(rest).expect("name");
                let local = all
                    .iter()
                    .find(|c| {
                        c.starts_with(&format!(
                            "CREATE TABLE IF NOT EXISTS {table}_local ON CLUSTER dvmdash"
                        ))
                    })
                    .unwrap_or_else(|| panic!("{name}: no local table for {table}"));
                assert!(local.contains("ENGINE = Replicated"), "{local}");
                assert!(
                    local.contains(&format!(
                        "'/clickhouse/tables/{{shard}}/{{database}}/{table}_local/{{uuid}}', '{{replica}}'"
                    )),
                    "{local}"
                );
                assert!(!local.contains("non_replicated_deduplication_window"), "{local}");
                // The columns are the single-node ones, character for character.
                if let Some(open) = s.find('(') {
                    let close = open + matching_paren(&s[open..]).expect("columns");
                    assert!(local.contains(&s[open..=close]), "{table}: columns differ");
                }
                let dist = format!(
                    "CREATE TABLE IF NOT EXISTS {table} ON CLUSTER dvmdash AS {table}_local ENGINE = Distributed(dvmdash, currentDatabase(), {table}_local, "
                );
                assert!(
                    all.iter().any(|c| c.starts_with(&dist)),
                    "{name}: no Distributed {table}"
                );
            }
        }
    }

    #[test]
    fn events_shard_by_id_and_views_read_the_local_tables() {
        let all = schema();
        let dist = |t: &str| {
            all.iter()
                .find(|c| c.starts_with(&format!("CREATE TABLE IF NOT EXISTS {t} ON CLUSTER")))
                .cloned()
                .unwrap_or_default()
        };
        assert!(dist("events_raw").ends_with("events_raw_local, cityHash64(event_id))"));
        assert!(dist("event_ids").ends_with("cityHash64(event_id))"));
        assert!(dist("stats_hourly").ends_with("rand())"));
        assert!(
            dist("job_perf_hourly").ends_with("cityHash64(hour))"),
            "every version of a ledger row on one shard"
        );
        let mv = all
            .iter()
            .find(|c| {
                c.starts_with("CREATE MATERIALIZED VIEW IF NOT EXISTS stats_hourly_mv ON CLUSTER dvmdash")
            })
            .expect("stats_hourly_mv");
        assert!(mv.contains("TO stats_hourly_local AS"), "{mv}");
        assert!(mv.contains("FROM events_raw_local"), "{mv}");
        assert!(!mv.contains("FROM events_raw\n"), "{mv}");
        let view = all
            .iter()
            .find(|c| c.contains("VIEW jobs ON CLUSTER dvmdash"))
            .expect("jobs view");
        assert!(
            view.contains("FROM job_requests(start"),
            "plain views read the Distributed tables: {view}"
        );
        let repair = all
            .iter()
            .find(|c| c.starts_with("CREATE TABLE IF NOT EXISTS events_raw_repair_local"))
            .expect("repair table");
        assert!(repair.contains("AS events_raw_local"), "{repair}");
        assert!(
            repair.contains("events_raw_repair_local/{uuid}', '{replica}'"),
            "its own Keeper path: {repair}"
        );
    }

    #[test]
    fn a_rebuilt_table_is_swapped_on_every_node_and_keeps_its_distributed_name() {
        let all = schema();
        let at = |prefix: &str| {
            all.iter()
                .position(|c| c.starts_with(prefix))
                .unwrap_or_else(|| panic!("no statement starting {prefix:?}"))
        };
        let exchange =
            at("EXCHANGE TABLES stats_hourly_local AND stats_hourly_lanes_local ON CLUSTER dvmdash");
        let copy = at("INSERT INTO stats_hourly_lanes (hour, role, job_kind, pubkey, events) SELECT");
        assert!(copy < exchange, "the rows are copied before the swap");
        assert!(
            all[copy]
                .ends_with("FROM stats_hourly\nSETTINGS insert_deduplicate = 0, insert_distributed_sync = 1"),
            "{}",
            all[copy]
        );
        let remade = at(
            "CREATE OR REPLACE TABLE stats_hourly ON CLUSTER dvmdash AS stats_hourly_local ENGINE = Distributed(dvmdash, currentDatabase(), stats_hourly_local, rand())",
        );
        assert!(remade > exchange);
        let dropped = at("DROP TABLE IF EXISTS stats_hourly_lanes_local ON CLUSTER dvmdash SYNC");
        let view = all
            .iter()
            .rposition(|c| c.starts_with("CREATE MATERIALIZED VIEW IF NOT EXISTS stats_hourly_mv"))
            .expect("view");
        assert!(view > dropped, "the view is made again last");
        assert!(all[view].contains("TO stats_hourly_local AS"), "{}", all[view]);
        assert!(all[view].contains("lane"), "{}", all[view]);

        let mut s = ClusterSchema::new("c1").expect("name");
        assert!(s.translate("EXCHANGE TABLES a AND b").is_err(), "unknown tables");
        assert!(
            s.translate("INSERT INTO a (x) SELECT 1").is_err(),
            "unknown table"
        );
        s.translate("CREATE TABLE IF NOT EXISTS a (x UInt8) ENGINE = MergeTree ORDER BY x")
            .expect("a");
        assert!(s.translate("INSERT INTO a (x) VALUES (1)").is_err());
        assert!(s.translate("INSERT INTO a SELECT 1").is_err(), "no column list");
        assert_eq!(
            s.translate("INSERT INTO a (x) SELECT 1 SETTINGS max_threads = 1")
                .expect("settings kept"),
            vec![
                "INSERT INTO a (x) SELECT 1 SETTINGS max_threads = 1, insert_distributed_sync = 1".to_owned()
            ]
        );
        assert!(
            s.translate("INSERT INTO a (x) SELECT * FROM (SELECT 1 SETTINGS max_threads = 1) AS t")
                .is_err()
        );
        assert!(s.translate("DROP TABLE IF EXISTS a; DROP DATABASE d").is_err());
        assert_eq!(
            s.translate("DROP VIEW IF EXISTS v").expect("drop view"),
            vec!["DROP VIEW IF EXISTS v ON CLUSTER c1 SYNC".to_owned()]
        );
    }

    #[test]
    fn unknown_shapes_and_bad_names_are_refused() {
        let mut s = ClusterSchema::new("c1").expect("name");
        assert!(s.translate("DROP TABLE events_raw").is_err());
        assert!(s.translate("INSERT INTO t VALUES (1)").is_err());
        assert!(
            s.translate("CREATE TABLE IF NOT EXISTS t (a UInt8) ENGINE = Memory")
                .is_err()
        );
        assert!(s.translate("ALTER TABLE unknown ADD COLUMN x UInt8").is_err());
        assert!(ClusterSchema::new("c1; DROP").is_err());
        assert!(ClusterSchema::new("").is_err());
        let out = s
            .translate("CREATE TABLE IF NOT EXISTS t (a UInt8, s String DEFAULT 'x)') ENGINE = MergeTree ORDER BY a SETTINGS non_replicated_deduplication_window = 10, index_granularity = 8192")
            .expect("table");
        assert!(out[0].contains(
            "ENGINE = ReplicatedMergeTree('/clickhouse/tables/{shard}/{database}/t_local/{uuid}', '{replica}')"
        ));
        assert!(
            out[0].ends_with("ORDER BY a\nSETTINGS index_granularity = 8192"),
            "{}",
            out[0]
        );
        let alter = s.translate("ALTER TABLE t ADD COLUMN b UInt8").expect("alter");
        assert_eq!(
            alter,
            vec![
                "ALTER TABLE t_local ON CLUSTER c1 ADD COLUMN b UInt8".to_owned(),
                "ALTER TABLE t ON CLUSTER c1 ADD COLUMN b UInt8".to_owned()
            ]
        );
        assert_eq!(
            s.translate("ALTER TABLE t MODIFY TTL now()").expect("ttl"),
            vec!["ALTER TABLE t_local ON CLUSTER c1 MODIFY TTL now()".to_owned()]
        );
    }
}
