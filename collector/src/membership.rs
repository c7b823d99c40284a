//! A collector's side of coordination: heartbeat, publish per-relay counters (live, and their
//! growth into the hourly counts of `core::relay_counts`) and resume points, and follow the relay
//! assignment the coordinator writes.

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::Ordering;
use std::time::Duration;

use dvmdash_core::dto::RelayCounters;
use dvmdash_core::redis_keys::RedisNames;
use dvmdash_core::relay_counts::{self, Flat};
use dvmdash_core::telemetry::{now_millis, now_secs};
use redis::aio::ConnectionManager;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

use crate::RelayStatuses;

/// Raises a resume point, never lowers it (several collectors may watch the same relay).
const RAISE: &str = r#"
for i = 1, #ARGV, 2 do
  local cur = tonumber(redis.call('HGET', KEYS[1], ARGV[i]) or '0')
  if tonumber(ARGV[i + 1]) > cur then redis.call('HSET', KEYS[1], ARGV[i], ARGV[i + 1]) end
end
return 1
"#;

/// Loads the stored resume points into fresh relay statuses.
pub async fn load_resume_points(
    conn: &mut ConnectionManager,
    names: &RedisNames,
    statuses: &RelayStatuses,
) -> redis::RedisResult<usize> {
    let points: BTreeMap<String, u64> = redis::cmd("HGETALL")
        .arg(names.resume_points())
        .query_async(conn)
        .await?;
    let n = points.len();
    if let Ok(mut map) = statuses.lock() {
        for (url, ts) in points {
            map.entry(url)
                .or_default()
                .newest_created_at
                .fetch_max(ts, Ordering::Relaxed);
        }
    }
    Ok(n)
}

/// Heartbeats every `interval` and forwards assignment changes to `relays` until `shutdown`; then
/// deregisters so the coordinator reassigns at once instead of waiting for the timeout.
pub async fn run(
    id: String,
    mut conn: ConnectionManager,
    names: RedisNames,
    statuses: RelayStatuses,
    relays: watch::Sender<Vec<String>>,
    interval: Duration,
    shutdown: CancellationToken,
) {
    let raise = redis::Script::new(RAISE);
    let mut ticker = tokio::time::interval(interval);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let ttl_secs = (interval.as_secs() * 30).max(60);
    // What the hourly counts hold of each relay's counters so far.
    let mut counted: HashMap<String, Flat> = HashMap::new();
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => break,
            _ = ticker.tick() => {}
        }
        match beat(&mut conn, &names, &id, &statuses, &raise, ttl_secs).await {
            Ok(snapshot) => count_hourly(&mut conn, &names, &snapshot, &mut counted).await,
            Err(err) => {
                warn!(error = %err, "collector heartbeat failed");
                continue;
            }
        }
        match read_assignment(&mut conn, &names, &id).await {
            Ok(Some(list)) => {
                relays.send_if_modified(|cur| {
                    if *cur != list {
                        info!(relays = list.len(), "new relay assignment");
                        *cur = list;
                        true
                    } else {
                        false
                    }
                });
            }
            Ok(None) => {}
            Err(err) => warn!(error = %err, "reading relay assignment failed"),
        }
    }
    // Last resume points and counts, then leave.
    if let Ok(snapshot) = beat(&mut conn, &names, &id, &statuses, &raise, ttl_secs).await {
        count_hourly(&mut conn, &names, &snapshot, &mut counted).await;
    }
    let _: redis::RedisResult<()> = redis::pipe()
        .cmd("ZREM")
        .arg(names.collectors())
        .arg(&id)
        .ignore()
        .cmd("DEL")
        .arg(names.collector(&id))
        .ignore()
        .query_async(&mut conn)
        .await;
}

async fn beat(
    conn: &mut ConnectionManager,
    names: &RedisNames,
    id: &str,
    statuses: &RelayStatuses,
    raise: &redis::Script,
    ttl_secs: u64,
) -> redis::RedisResult<Vec<(String, bool, RelayCounters)>> {
    let snapshot: Vec<(String, bool, RelayCounters)> = statuses
        .lock()
        .map(|m| {
            m.iter()
                .map(|(url, s)| (url.clone(), s.assigned.load(Ordering::Relaxed), counters(s)))
                .collect()
        })
        .unwrap_or_default();
    let mut pipe = redis::pipe();
    pipe.cmd("ZADD")
        .arg(names.collectors())
        .arg(now_millis())
        .arg(id)
        .ignore();
    let key = names.collector(id);
    pipe.cmd("HSET")
        .arg(&key)
        .arg("heartbeat_ms")
        .arg(now_millis())
        .ignore();
    // Only relays watched now are published; the others are removed, so the api never shows a
    // relay this collector gave up (or only knows from the shared resume points) as its own.
    for (url, assigned, c) in &snapshot {
        let field = format!("relay:{url}");
        if *assigned {
            pipe.cmd("HSET")
                .arg(&key)
                .arg(field)
                .arg(serde_json::to_string(c).unwrap_or_default())
                .ignore();
        } else {
            pipe.cmd("HDEL").arg(&key).arg(field).ignore();
        }
    }
    pipe.cmd("EXPIRE").arg(&key).arg(ttl_secs).ignore();
    pipe.query_async::<()>(conn).await?;
    let points: Vec<(&String, u64)> = snapshot
        .iter()
        .filter(|(_, _, c)| c.newest_created_at > 0)
        .map(|(u, _, c)| (u, c.newest_created_at))
        .collect();
    if !points.is_empty() {
        let mut inv = raise.key(names.resume_points());
        for (url, ts) in points {
            inv.arg(url.as_str()).arg(ts);
        }
        let _: i64 = inv.invoke_async(conn).await?;
    }
    Ok(snapshot)
}

/// Adds what each relay's counters grew since the last successful call to the hourly counts. On a
/// failure `counted` stays, so the next call adds the growth of both intervals.
async fn count_hourly(
    conn: &mut ConnectionManager,
    names: &RedisNames,
    snapshot: &[(String, bool, RelayCounters)],
    counted: &mut HashMap<String, Flat>,
) {
    let now: Vec<(String, Flat)> = snapshot
        .iter()
        .map(|(url, _, c)| (url.clone(), relay_counts::flatten(c)))
        .collect();
    let growth: BTreeMap<String, Flat> = now
        .iter()
        .map(|(url, f)| (url.clone(), relay_counts::growth(counted.get(url), f)))
        .collect();
    match relay_counts::add(conn, names, now_secs(), &growth).await {
        Ok(()) => *counted = now.into_iter().collect(),
        Err(err) => warn!(error = %err, "adding to the hourly relay counts failed; retried next heartbeat"),
    }
}

fn counters(s: &crate::RelayStatus) -> RelayCounters {
    RelayCounters {
        connected: s.connected.load(Ordering::Relaxed),
        received: s.received.load(Ordering::Relaxed),
        accepted: s.accepted.load(Ordering::Relaxed),
        duplicates: s.duplicates.load(Ordering::Relaxed),
        rejected: s.rejected.load(Ordering::Relaxed),
        reconnects: s.reconnects.load(Ordering::Relaxed),
        last_event_ms: s.last_event_ms.load(Ordering::Relaxed),
        newest_created_at: s.newest_created_at.load(Ordering::Relaxed),
        eose_ms: s.eose_ms.load(Ordering::Relaxed),
        rejected_by_reason: s
            .rejected_by
            .lock()
            .map(|by| by.iter().map(|(r, n)| ((*r).to_owned(), *n)).collect())
            .unwrap_or_default(),
        paging: s.paging.lock().ok().and_then(|p| p.clone()),
        passes_by_method: s
            .passes_by_method
            .lock()
            .map(|by| by.iter().map(|(m, n)| ((*m).to_owned(), *n)).collect())
            .unwrap_or_default(),
        negentropy: s.negentropy_words().to_owned(),
    }
}

/// `Some(list)` when the coordinator has an assignment for us (possibly empty).
async fn read_assignment(
    conn: &mut ConnectionManager,
    names: &RedisNames,
    id: &str,
) -> redis::RedisResult<Option<Vec<String>>> {
    let raw: Option<String> = redis::cmd("HGET")
        .arg(names.assignments())
        .arg(id)
        .query_async(conn)
        .await?;
    let Some(json) = raw else { return Ok(None) };
    match serde_json::from_str::<Vec<String>>(&json) {
        Ok(mut list) => {
            list.sort();
            list.dedup();
            Ok(Some(list))
        }
        Err(err) => {
            // Keep watching what we watch rather than dropping every relay on a bad write.
            warn!(error = %err, "ignoring malformed relay assignment");
            Ok(None)
        }
    }
}
