//! The replay check: every ingest round sent again (the same events, signed anew) must change no
//! number. Exactly-once ingestion is what makes that true; this proves it at the benchmark's size,
//! through the real ingester processes and the job finalizer.

use std::time::{Duration, Instant};

use anyhow::Context as _;
use dvmdash_api::service::Service;
use dvmdash_core::dto::TimeRange;
use dvmdash_core::redis_keys::INGESTER_GROUP;
use dvmdash_core::stream_shards::EventStreams;
use serde_json::Value;

/// Every public statistic over the benchmark's data, as JSON, without the fields that say when it
/// was computed. The events lie within the last 20 days, so 30-day windows hold all of them while
/// the replay runs; shorter windows would lose their oldest events as the clock moves, so none is
/// taken.
pub async fn snapshot(service: &Service, ch: &clickhouse::Client) -> anyhow::Result<Value> {
    let (dvm_q, kind_q) = super::month_lists(&[("limit", "1000")])?;
    let month = TimeRange::Month;
    let by_dvm = dvmdash_api::queries::jobs::Grouping::Dvm;
    let answers = [
        ("global 30d", service.global(month).await),
        ("DVM list 30d", service.dvm_list(&dvm_q).await),
        ("kind list 30d", service.kind_list(&kind_q).await),
        ("performance 30d", service.performance(month, by_dvm).await),
        ("competition 30d", service.competition(month).await),
        ("reach 30d", service.reach(month).await),
        ("prices 30d", service.prices(month, false).await),
        ("kind 5300 30d", service.kind(5300, month).await),
        ("monthly history", service.history().await),
    ];
    let mut out = serde_json::Map::new();
    for (name, answer) in answers {
        let body = answer.map_err(|e| anyhow::anyhow!("{name}: {e}"))?;
        let mut v: Value = serde_json::from_slice(&body).with_context(|| format!("{name}: not JSON"))?;
        strip_times(&mut v);
        out.insert(name.to_owned(), v);
    }
    let stored: u64 = ch.query("SELECT count() FROM events_raw").fetch_one().await?;
    out.insert("events stored".into(), stored.into());
    Ok(Value::Object(out))
}

/// Fields that say when an answer was computed or which window it covers (which moves with the
/// clock), not what happened.
const TIMES: [&str; 3] = ["timestamp", "period_start", "period_end"];

/// Removes [`TIMES`] at any depth.
fn strip_times(v: &mut Value) {
    match v {
        Value::Object(m) => {
            for k in TIMES {
                m.remove(k);
            }
            m.values_mut().for_each(strip_times);
        }
        Value::Array(a) => a.iter_mut().for_each(strip_times),
        _ => {}
    }
}

/// Where `a` and `b` differ, as JSON paths with both values; at most `max` of them.
pub fn differences(a: &Value, b: &Value, max: usize) -> Vec<String> {
    fn walk(a: &Value, b: &Value, path: &str, out: &mut Vec<String>, max: usize) {
        if out.len() >= max {
            return;
        }
        match (a, b) {
            (Value::Object(x), Value::Object(y)) => {
                for (k, va) in x {
                    match y.get(k) {
                        Some(vb) => walk(va, vb, &format!("{path}.{k}"), out, max),
                        None => out.push(format!("{path}.{k}: only before")),
                    }
                }
                for k in y.keys().filter(|k| !x.contains_key(*k)) {
                    out.push(format!("{path}.{k}: only after"));
                }
            }
            (Value::Array(x), Value::Array(y)) if x.len() == y.len() => {
                for (i, (va, vb)) in x.iter().zip(y).enumerate() {
                    walk(va, vb, &format!("{path}[{i}]"), out, max);
                }
            }
            _ if a != b => out.push(format!("{path}: {a} before, {b} after")),
            _ => {}
        }
    }
    let mut out = Vec::new();
    walk(a, b, "", &mut out, max);
    out.truncate(max);
    out
}

/// Waits until the ingesters' group has taken and acknowledged every entry of every shard.
pub async fn wait_consumed(
    conn: &mut redis::aio::ConnectionManager,
    streams: &EventStreams,
    limit: Duration,
) -> anyhow::Result<()> {
    let started = Instant::now();
    // The newest entry of each shard now: consumed once the group has delivered it and holds
    // nothing unacknowledged (lag is not enough alone: Redis cannot tell it after trimming).
    let mut newest = Vec::new();
    for s in streams.all() {
        let info: redis::streams::StreamInfoStreamReply = redis::cmd("XINFO")
            .arg("STREAM")
            .arg(s.key())
            .query_async(conn)
            .await
            .with_context(|| format!("XINFO STREAM {}", s.key()))?;
        newest.push(entry_id(&info.last_generated_id));
    }
    loop {
        let mut done = true;
        for (s, newest) in streams.all().iter().zip(&newest) {
            let groups = s.groups(conn).await?;
            let g = groups
                .iter()
                .find(|g| g.name == INGESTER_GROUP)
                .context("the ingesters' consumer group is gone")?;
            let delivered = g.last_delivered.as_deref().map(entry_id).unwrap_or_default();
            done &= g.pending == 0 && delivered >= *newest;
        }
        if done {
            return Ok(());
        }
        anyhow::ensure!(
            started.elapsed() < limit,
            "the replayed entries were not all taken within {limit:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// A stream entry id (`<ms>-<seq>`) as a pair that orders like the ids.
fn entry_id(s: &str) -> (u64, u64) {
    let (ms, seq) = s.split_once('-').unwrap_or((s, "0"));
    (ms.parse().unwrap_or(0), seq.parse().unwrap_or(0))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn differences_name_the_paths_and_ignore_times() {
        let mut a = json!({"x": {"n": 1, "timestamp": "a"}, "l": [1, 2], "gone": true, "period_end": 1});
        let mut b = json!({"x": {"n": 2, "timestamp": "b"}, "l": [1, 3], "new": null, "period_end": 2});
        strip_times(&mut a);
        strip_times(&mut b);
        let mut d = differences(&a, &b, 10);
        d.sort();
        assert_eq!(
            d,
            vec![
                ".gone: only before",
                ".l[1]: 2 before, 3 after",
                ".new: only after",
                ".x.n: 1 before, 2 after",
            ]
        );
        assert!(differences(&a, &a, 10).is_empty());
        assert_eq!(differences(&a, &b, 1).len(), 1);
        assert_eq!(differences(&json!([1]), &json!([1, 2]), 5).len(), 1);
    }

    #[test]
    fn entry_ids_order_by_time_then_sequence() {
        assert!(entry_id("1700000000000-2") > entry_id("1700000000000-1"));
        assert!(entry_id("1700000000001-0") > entry_id("1700000000000-9"));
        assert_eq!(entry_id("junk"), (0, 0));
        assert_eq!(entry_id("5"), (5, 0));
    }
}
