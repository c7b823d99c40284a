//! Relay and collector health as the collectors publish it with their heartbeats (Redis hash
//! `<prefix>:collector:<id>`, one `relay:<url>` field of `RelayCounters` JSON each), for the admin
//! api and the public `GET /api/relays/status`, with each relay's counts over a window from the
//! hourly counts the collectors keep (`core::relay_counts`).

use std::collections::BTreeMap;

use dvmdash_core::dto::{
    CollectorHealth, PagingState, RelayCounters, RelayCounts, RelayEntry, RelayHealth, RelayHealthRow,
    TimeRange,
};
use dvmdash_core::redis_keys::RedisNames;
use dvmdash_core::telemetry::now_millis;
use serde::Serialize;

use crate::AppState;
use crate::error::ApiResult;

async fn conn(state: &AppState) -> ApiResult<redis::aio::MultiplexedConnection> {
    Ok(state.redis.get_multiplexed_async_connection().await?)
}

/// Every collector's published state: heartbeat and per-relay counters.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct CollectorView {
    pub id: String,
    pub last_heartbeat_ms: Option<u64>,
    pub heartbeat_age_ms: Option<u64>,
    /// Relays the coordinator assigned to it.
    pub assigned: Vec<String>,
    pub relays: BTreeMap<String, RelayCounters>,
}

pub async fn read_collectors(state: &AppState, names: &RedisNames) -> ApiResult<Vec<CollectorView>> {
    let mut c = conn(state).await?;
    let ids: Vec<(String, u64)> = redis::cmd("ZRANGE")
        .arg(names.collectors())
        .arg(0)
        .arg(-1)
        .arg("WITHSCORES")
        .query_async(&mut c)
        .await?;
    let assignments: BTreeMap<String, String> = redis::cmd("HGETALL")
        .arg(names.assignments())
        .query_async(&mut c)
        .await?;
    let now = now_millis();
    let mut out = Vec::new();
    for (id, beat) in ids {
        let hash: BTreeMap<String, String> = redis::cmd("HGETALL")
            .arg(names.collector(&id))
            .query_async(&mut c)
            .await?;
        let relays = hash
            .iter()
            .filter_map(|(k, v)| {
                Some((
                    k.strip_prefix("relay:")?.to_owned(),
                    serde_json::from_str(v).ok()?,
                ))
            })
            .collect();
        out.push(CollectorView {
            assigned: assignments
                .get(&id)
                .and_then(|j| serde_json::from_str(j).ok())
                .unwrap_or_default(),
            last_heartbeat_ms: Some(beat),
            heartbeat_age_ms: Some(now.saturating_sub(beat)),
            id,
            relays,
        });
    }
    Ok(out)
}

/// The public health view: every registered relay with its collectors' counters summed, and every
/// collector. `now_ms` is when it was read.
pub fn health(
    registry: &BTreeMap<String, RelayEntry>,
    collectors: &[CollectorView],
    window: &Windowed,
    now_ms: u64,
) -> RelayHealth {
    let relays = registry
        .iter()
        .map(|(url, entry)| {
            let watching: Vec<&CollectorView> =
                collectors.iter().filter(|c| c.assigned.contains(url)).collect();
            let reports: Vec<&RelayCounters> = watching.iter().filter_map(|c| c.relays.get(url)).collect();
            let mut by_reason: BTreeMap<String, u64> = BTreeMap::new();
            for r in &reports {
                for (reason, n) in &r.rejected_by_reason {
                    *by_reason.entry(reason.clone()).or_default() += n;
                }
            }
            let sum = |f: fn(&RelayCounters) -> u64| reports.iter().map(|r| f(r)).sum::<u64>();
            let state = if reports.iter().any(|r| r.connected) {
                "connected"
            } else if watching.is_empty() {
                "unwatched"
            } else {
                "connecting"
            };
            let last_ms = reports.iter().map(|r| r.last_event_ms).max().unwrap_or(0);
            RelayHealthRow {
                relay: url.clone(),
                state: state.to_owned(),
                priority: entry.priority,
                collectors: watching.iter().map(|c| c.id.clone()).collect(),
                since_start: RelayCounts {
                    received: sum(|r| r.received),
                    accepted: sum(|r| r.accepted),
                    duplicates: sum(|r| r.duplicates),
                    rejected: sum(|r| r.rejected),
                    rejected_by_reason: by_reason,
                    reconnects: sum(|r| r.reconnects),
                },
                last_event: (last_ms > 0).then(|| dvmdash_core::dto::rfc3339(last_ms / 1000)),
                paging: reports
                    .iter()
                    .filter_map(|r| r.paging.clone())
                    .collect::<Vec<PagingState>>(),
                in_window: window.counts.get(url).cloned().unwrap_or_default(),
                passes_by_method: {
                    let mut by: BTreeMap<String, u64> = BTreeMap::new();
                    for r in &reports {
                        for (m, n) in &r.passes_by_method {
                            *by.entry(m.clone()).or_default() += n;
                        }
                    }
                    by
                },
                negentropy: ["supported", "unsupported"]
                    .into_iter()
                    .find(|w| reports.iter().any(|r| r.negentropy == *w))
                    .unwrap_or("unknown")
                    .to_owned(),
            }
        })
        .collect();
    let collectors = collectors
        .iter()
        .map(|c| CollectorHealth {
            id: c.id.clone(),
            heartbeat_age_secs: c.heartbeat_age_ms.unwrap_or(0) as f64 / 1000.0,
            assigned: c.assigned.clone(),
            connected: c
                .assigned
                .iter()
                .filter(|u| c.relays.get(*u).is_some_and(|r| r.connected))
                .count() as u64,
        })
        .collect();
    RelayHealth {
        timestamp: dvmdash_core::dto::rfc3339(now_ms / 1000),
        window: window.range.as_str().to_owned(),
        window_since: dvmdash_core::dto::rfc3339(window.since),
        relays,
        collectors,
    }
}

/// Every relay's counters over a window (`core::relay_counts`).
#[derive(Debug, Clone, Default)]
pub struct Windowed {
    pub range: TimeRange,
    /// Unix start of the first hour counted.
    pub since: u64,
    pub counts: BTreeMap<String, RelayCounts>,
}

/// Reads the registry, the collectors and the window's hourly counts and composes [`health`].
pub async fn read_health(state: &AppState, range: TimeRange) -> ApiResult<RelayHealth> {
    let names = state.names.clone();
    let mut c = state.redis_manager().await?;
    let registry = dvmdash_core::registry::list(&mut c, &names).await?;
    let collectors = read_collectors(state, &names).await?;
    let now = now_millis();
    let now_secs = now / 1000;
    let (since, counts) =
        dvmdash_core::relay_counts::read(&mut c, &names, now_secs.saturating_sub(range.seconds()), now_secs)
            .await?;
    let window = Windowed { range, since, counts };
    Ok(health(&registry, &collectors, &window, now))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn counters(connected: bool, accepted: u64, reason: &str) -> RelayCounters {
        RelayCounters {
            connected,
            accepted,
            rejected: 1,
            rejected_by_reason: [(reason.to_owned(), 1)].into(),
            last_event_ms: 1_700_000_000_000 + accepted,
            ..Default::default()
        }
    }

    #[test]
    fn sums_collectors_and_names_the_state() {
        let registry: BTreeMap<String, RelayEntry> = ["wss://a", "wss://b", "wss://c"]
            .into_iter()
            .map(|u| (u.to_owned(), RelayEntry::default()))
            .collect();
        let view = |id: &str, relays: Vec<(&str, RelayCounters)>| CollectorView {
            id: id.to_owned(),
            last_heartbeat_ms: Some(1),
            heartbeat_age_ms: Some(1500),
            assigned: relays.iter().map(|(u, _)| (*u).to_owned()).collect(),
            relays: relays.into_iter().map(|(u, c)| (u.to_owned(), c)).collect(),
        };
        let collectors = vec![
            view(
                "c1",
                vec![
                    ("wss://a", counters(true, 5, "bad_signature")),
                    ("wss://b", counters(false, 2, "too_large")),
                ],
            ),
            view("c2", vec![("wss://a", counters(false, 7, "bad_signature"))]),
        ];
        let window = Windowed {
            range: TimeRange::Day,
            since: 1_699_916_400,
            counts: BTreeMap::from([(
                "wss://a".to_owned(),
                RelayCounts {
                    accepted: 3,
                    ..RelayCounts::default()
                },
            )]),
        };
        let h = health(&registry, &collectors, &window, 1_700_000_100_000);
        assert_eq!(
            (h.window.as_str(), h.window_since.as_str()),
            ("24h", "2023-11-13T23:00:00Z")
        );
        assert_eq!(
            h.relays
                .iter()
                .find(|r| r.relay == "wss://a")
                .map(|r| r.in_window.accepted),
            Some(3)
        );
        assert_eq!(
            h.relays
                .iter()
                .find(|r| r.relay == "wss://b")
                .map(|r| r.in_window.accepted),
            Some(0)
        );
        let row = |u: &str| h.relays.iter().find(|r| r.relay == u).expect("row");
        assert_eq!(row("wss://a").state, "connected");
        let a = &row("wss://a").since_start;
        assert_eq!((a.accepted, a.rejected), (12, 2));
        assert_eq!(a.rejected_by_reason.get("bad_signature"), Some(&2));
        assert_eq!(row("wss://a").collectors, vec!["c1", "c2"]);
        assert_eq!(row("wss://b").state, "connecting");
        assert_eq!(row("wss://c").state, "unwatched");
        assert_eq!(row("wss://c").last_event, None);
        assert_eq!(h.collectors[0].connected, 1);
        assert!((h.collectors[0].heartbeat_age_secs - 1.5).abs() < 1e-9);
    }
}
