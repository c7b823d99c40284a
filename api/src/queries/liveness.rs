//! Uptime from heartbeats and answers in `events_raw`: which 5-minute slot ends a service was alive
//! at. A heartbeat at `t` keeps it alive until `t + 900`, a result or feedback until `t + alive
//! window` (the same rule as the directory's status), so a slot end `e` is alive when some evidence
//! `t` has `t <= e <= t + cover`. See docs/statistics.md, "Liveness and uptime".

use dvmdash_core::dto::{HEARTBEAT_ALIVE_SECS, UPTIME_SLOT_SECS};
use dvmdash_core::event::Id32;
use serde::Deserialize;

use super::pubkey_param;

/// The alive slot ends `(pubkey, e)` with `start < e <= now`. Evidence is first reduced to its
/// newest point per (service, cover, first slot it reaches), which covers every slot the others in
/// that group cover, so a busy DVM costs at most one point per 5 minutes instead of one per result.
fn alive_slots_sql(filter: &str) -> String {
    format!(
        "SELECT pubkey, e FROM ( \
           SELECT pubkey, arrayJoin(range(toUInt32(b * {slot}), toUInt32(intDiv(t + cover, {slot}) * {slot} + 1), \
                                          toUInt32({slot}))) AS e \
           FROM ( \
             SELECT pubkey, toUInt32(if(role = 'heartbeat', {hb}, {{alive:UInt32}})) AS cover, \
                    intDiv(toUInt32(created_at) + {slot} - 1, {slot}) AS b, max(toUInt32(created_at)) AS t \
             FROM events_raw \
             WHERE role IN ('heartbeat', 'result', 'feedback') \
               AND created_at >= toDateTime({{from:UInt32}}) AND created_at <= toDateTime({{now:UInt32}}){filter} \
             GROUP BY pubkey, cover, b \
           ) \
         ) WHERE e > {{start:UInt32}} AND e <= {{now:UInt32}}",
        slot = UPTIME_SLOT_SECS,
        hb = HEARTBEAT_ALIVE_SECS,
    )
}

/// Alive slot ends of every service in the last day and the last week.
#[derive(Debug, Clone, PartialEq, Eq, clickhouse::Row, Deserialize)]
pub struct AliveCounts {
    pub pubkey: Id32,
    pub day: u64,
    pub week: u64,
}

const DAY: u32 = 86_400;
const WEEK: u32 = 7 * DAY;

/// The earliest evidence that can reach a slot of the window.
fn evidence_from(now: u32, window: u32, alive_window_secs: u32) -> u32 {
    now.saturating_sub(window)
        .saturating_sub(alive_window_secs.max(HEARTBEAT_ALIVE_SECS as u32))
}

pub async fn alive_counts(
    ch: &clickhouse::Client,
    now: u32,
    alive_window_secs: u32,
) -> clickhouse::error::Result<Vec<AliveCounts>> {
    let sql = format!(
        "SELECT pubkey, uniqExactIf(e, e > {{day_start:UInt32}}) AS day, uniqExact(e) AS week \
         FROM ({}) GROUP BY pubkey",
        alive_slots_sql("")
    );
    ch.query(&sql)
        .param("alive", alive_window_secs)
        .param("from", evidence_from(now, WEEK, alive_window_secs))
        .param("now", now)
        .param("start", now.saturating_sub(WEEK))
        .param("day_start", now.saturating_sub(DAY))
        .fetch_all()
        .await
}

#[derive(Debug, Clone, PartialEq, Eq, clickhouse::Row, Deserialize)]
struct Slot {
    e: u32,
}

/// The alive slot ends of one service in the last week, ascending.
pub async fn alive_slots(
    ch: &clickhouse::Client,
    pk: &Id32,
    now: u32,
    alive_window_secs: u32,
) -> clickhouse::error::Result<Vec<u32>> {
    let sql = format!(
        "SELECT DISTINCT e FROM ({}) ORDER BY e",
        alive_slots_sql(&format!(" AND pubkey = {}", pubkey_param("pk")))
    );
    let rows: Vec<Slot> = ch
        .query(&sql)
        .param("pk", hex::encode(pk))
        .param("alive", alive_window_secs)
        .param("from", evidence_from(now, WEEK, alive_window_secs))
        .param("now", now)
        .param("start", now.saturating_sub(WEEK))
        .fetch_all()
        .await?;
    Ok(rows.into_iter().map(|s| s.e).collect())
}
