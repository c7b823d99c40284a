//! Deviations from the specs among stored events, and deletions that name other authors' events.

use serde::Deserialize;

use super::Window;

#[derive(Debug, Clone, PartialEq, Eq, clickhouse::Row, Deserialize)]
pub struct FlagCount {
    /// Bit position of the flag (`core::nip90::deviation`).
    pub bit: u8,
    pub events: u64,
    pub authors: u64,
}

pub async fn flag_counts(ch: &clickhouse::Client, w: &Window) -> clickhouse::error::Result<Vec<FlagCount>> {
    w.query(
        ch,
        "SELECT toUInt8(arrayJoin(bitPositionsToArray(flags))) AS bit, count() AS events, \
                uniqExact(author) AS authors FROM ( \
           SELECT any(pubkey) AS author, any(deviations) AS flags FROM events_raw \
           WHERE created_at >= toDateTime({start:UInt32}) AND created_at <= toDateTime({now:UInt32}) \
             AND deviations != 0 \
           GROUP BY event_id \
         ) GROUP BY bit",
    )
    .fetch_all()
    .await
}

/// Stored events of the window (each once).
pub async fn events(ch: &clickhouse::Client, w: &Window) -> clickhouse::error::Result<u64> {
    w.query(
        ch,
        "SELECT uniqExact(event_id) FROM events_raw \
         WHERE created_at >= toDateTime({start:UInt32}) AND created_at <= toDateTime({now:UInt32})",
    )
    .fetch_one()
    .await
}

/// Deletions of the window naming at least one stored job event by someone else.
pub async fn deletions_of_others(ch: &clickhouse::Client, w: &Window) -> clickhouse::error::Result<u64> {
    w.query(
        ch,
        "SELECT uniqExact(d.event_id) FROM ( \
           SELECT event_id, pubkey AS deleter, arrayJoin(targets) AS target FROM events_raw \
           WHERE role = 'deletion' \
             AND created_at >= toDateTime({start:UInt32}) AND created_at <= toDateTime({now:UInt32}) \
         ) AS d INNER JOIN ( \
           SELECT event_id AS target, any(pubkey) AS author FROM events_raw \
           WHERE role IN ('request', 'result', 'feedback') \
             AND event_id IN (SELECT arrayJoin(targets) FROM events_raw WHERE role = 'deletion') \
           GROUP BY event_id \
         ) AS e ON d.target = e.target \
         WHERE e.author != d.deleter",
    )
    .fetch_one()
    .await
}
