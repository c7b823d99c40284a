//! Relay coverage and reachability from `event_relays` (one row per event and delivering relay,
//! repeated rows collapsing to distinct pairs here).

use dvmdash_core::event::Id32;
use serde::Deserialize;

use super::{Window, pubkey_param};

#[derive(Debug, Clone, PartialEq, Eq, clickhouse::Row, Deserialize)]
pub struct RelayEvents {
    pub relay: String,
    pub events: u64,
    pub only_here: u64,
}

/// Per relay, the distinct events created in the window it delivered, and how many of those no
/// other relay delivered.
pub async fn relay_events(
    ch: &clickhouse::Client,
    w: &Window,
) -> clickhouse::error::Result<Vec<RelayEvents>> {
    w.query(
        ch,
        "SELECT relay, count() AS events, countIf(n = 1) AS only_here FROM ( \
           SELECT event_id, groupUniqArray(relay) AS relays, length(relays) AS n FROM event_relays \
           WHERE created_at >= toDateTime({start:UInt32}) AND created_at <= toDateTime({now:UInt32}) \
           GROUP BY event_id \
         ) ARRAY JOIN relays AS relay GROUP BY relay",
    )
    .fetch_all()
    .await
}

/// Distinct events created in the window that any relay delivered.
pub async fn distinct_events(ch: &clickhouse::Client, w: &Window) -> clickhouse::error::Result<u64> {
    w.query(
        ch,
        "SELECT uniqExact(event_id) FROM event_relays \
         WHERE created_at >= toDateTime({start:UInt32}) AND created_at <= toDateTime({now:UInt32})",
    )
    .fetch_one()
    .await
}

#[derive(Debug, Clone, PartialEq, Eq, clickhouse::Row, Deserialize)]
pub struct DvmRelay {
    pub relay: String,
    pub results: u64,
    pub feedback: u64,
    pub announcements: u64,
    pub last_seen: u32,
}

/// The kinds by which a service presents itself (announcements of every family, capability lists,
/// heartbeats), from the catalogue, as a SQL condition on `k`.
fn presence_kinds() -> String {
    use dvmdash_core::kinds::{CATALOGUE, Role};
    let parts: Vec<String> = CATALOGUE
        .iter()
        .filter(|s| {
            matches!(
                s.role,
                Role::Announcement | Role::ServiceAnnouncement | Role::Capabilities | Role::Heartbeat
            )
        })
        .map(|s| format!("k BETWEEN {} AND {}", s.kinds.start(), s.kinds.end()))
        .collect();
    if parts.is_empty() {
        "0".to_owned()
    } else {
        parts.join(" OR ")
    }
}

/// Per relay, one author's results, feedback and announcements (distinct events) it delivered.
pub async fn dvm_relays(ch: &clickhouse::Client, pk: &Id32) -> clickhouse::error::Result<Vec<DvmRelay>> {
    let sql = format!(
        "SELECT relay, countIf(k BETWEEN 6000 AND 6999) AS results, countIf(k = 7000) AS feedback, \
                countIf({presence}) AS announcements, \
                toUInt32(max(at)) AS last_seen \
         FROM ( \
           SELECT event_id, relay, any(kind) AS k, any(created_at) AS at FROM event_relays \
           WHERE pubkey = {} GROUP BY event_id, relay \
         ) GROUP BY relay",
        pubkey_param("pk"),
        presence = presence_kinds()
    );
    ch.query(&sql).param("pk", hex::encode(pk)).fetch_all().await
}
