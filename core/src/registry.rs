//! The relay registry: a Redis hash of relay URL -> JSON [`RelayEntry`]. The coordinator seeds it
//! from configuration; the admin api edits it; assignments are computed from it.

use std::collections::BTreeMap;

use crate::dto::{RelayEntry, RelayPriority};
use crate::nip90::normalize_relay_url;
use crate::redis_keys::RedisNames;
use redis::aio::ConnectionManager;

/// Normalizes configured URLs, reporting every invalid one at once.
pub fn normalize_all(raw: &[String]) -> anyhow::Result<Vec<String>> {
    let mut out = Vec::new();
    let mut bad = Vec::new();
    for r in raw.iter().map(|r| r.trim()).filter(|r| !r.is_empty()) {
        match normalize_relay_url(r) {
            Some(u) if !out.contains(&u) => out.push(u),
            Some(_) => {}
            None => bad.push(r.to_owned()),
        }
    }
    anyhow::ensure!(
        bad.is_empty(),
        "invalid relay urls (need ws:// or wss://): {}",
        bad.join(", ")
    );
    Ok(out)
}

/// Registers configured relays that were never seeded before; returns how many were added.
/// Remembering what was seeded (not just what is registered) keeps a relay removed through the
/// admin api removed across coordinator restarts, and re-seeds everything after Redis lost its
/// data. Runs on every leader tick, so a wiped registry comes back without a restart.
pub async fn seed(
    conn: &mut ConnectionManager,
    names: &RedisNames,
    relays: &[String],
) -> redis::RedisResult<usize> {
    const SEED: &str = r"
        local added = 0
        for i = 2, #ARGV do
            if redis.call('SADD', KEYS[2], ARGV[i]) == 1 then
                added = added + redis.call('HSETNX', KEYS[1], ARGV[i], ARGV[1])
            end
        end
        return added";
    if relays.is_empty() {
        return Ok(0);
    }
    let entry = RelayEntry {
        priority: RelayPriority::Normal,
        added_at: chrono_now(),
        added_by: "config".into(),
    };
    let json = serde_json::to_string(&entry).unwrap_or_default();
    let added: i64 = redis::Script::new(SEED)
        .key(names.relays())
        .key(names.relays_seeded())
        .arg(json)
        .arg(relays)
        .invoke_async(conn)
        .await?;
    Ok(added as usize)
}

/// Adds a relay, or changes the priority of a registered one (`None` keeps it, or means normal for
/// a new relay). Returns whether it was new.
pub async fn upsert(
    conn: &mut ConnectionManager,
    names: &RedisNames,
    url: &str,
    priority: Option<RelayPriority>,
    added_by: &str,
) -> redis::RedisResult<bool> {
    let existing: Option<String> = redis::cmd("HGET")
        .arg(names.relays())
        .arg(url)
        .query_async(conn)
        .await?;
    let entry = match existing
        .as_deref()
        .and_then(|j| serde_json::from_str::<RelayEntry>(j).ok())
    {
        Some(mut e) => {
            e.priority = priority.unwrap_or(e.priority);
            e
        }
        None => RelayEntry {
            priority: priority.unwrap_or_default(),
            added_at: chrono_now(),
            added_by: added_by.to_owned(),
        },
    };
    let json = serde_json::to_string(&entry).unwrap_or_default();
    let _: i64 = redis::cmd("HSET")
        .arg(names.relays())
        .arg(url)
        .arg(json)
        .query_async(conn)
        .await?;
    Ok(existing.is_none())
}

/// Removes a relay; returns whether it was registered.
pub async fn remove(conn: &mut ConnectionManager, names: &RedisNames, url: &str) -> redis::RedisResult<bool> {
    let n: i64 = redis::cmd("HDEL")
        .arg(names.relays())
        .arg(url)
        .query_async(conn)
        .await?;
    Ok(n > 0)
}

/// Every registered relay. Entries that do not parse are kept with defaults rather than dropped, so
/// a hand-edited registry never silently loses a relay.
pub async fn list(
    conn: &mut ConnectionManager,
    names: &RedisNames,
) -> redis::RedisResult<BTreeMap<String, RelayEntry>> {
    let raw: BTreeMap<String, String> = redis::cmd("HGETALL")
        .arg(names.relays())
        .query_async(conn)
        .await?;
    Ok(raw
        .into_iter()
        .map(|(url, json)| {
            let entry = serde_json::from_str(&json).unwrap_or(RelayEntry {
                priority: RelayPriority::Normal,
                added_at: String::new(),
                added_by: "unknown".into(),
            });
            (url, entry)
        })
        .collect())
}

fn chrono_now() -> String {
    crate::dto::rfc3339(crate::telemetry::now_secs())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalizes_and_reports_all_bad_urls() {
        let ok = normalize_all(&["wss://A.b/".into(), "wss://a.b".into(), " ".into()]).unwrap();
        assert_eq!(ok, vec!["wss://a.b".to_string()]);
        let err = normalize_all(&["http://x".into(), "nope".into()])
            .unwrap_err()
            .to_string();
        assert!(err.contains("http://x") && err.contains("nope"), "{err}");
    }
}
