//! All-time facts about DVMs and kinds, kept forever by the `activity` and `announcements` tables.

use dvmdash_core::event::Id32;
use serde::Deserialize;

/// First and last activity of one DVM-side author per role and job kind.
#[derive(Debug, Clone, PartialEq, Eq, clickhouse::Row, Deserialize)]
pub struct Activity {
    pub role: String,
    pub pubkey: Id32,
    pub job_kind: u16,
    pub first_seen: u32,
    pub last_seen: u32,
    pub events: u64,
}

/// Results, feedback and announcements of every author, all time.
pub async fn dvm_activity(ch: &clickhouse::Client) -> clickhouse::error::Result<Vec<Activity>> {
    ch.query(
        "SELECT role, pubkey, job_kind, toUInt32(min(first_seen)) AS first_seen, \
                toUInt32(max(last_seen)) AS last_seen, sum(events) AS events \
         FROM activity WHERE role IN ('result', 'feedback', 'announcement') \
         GROUP BY role, pubkey, job_kind",
    )
    .fetch_all()
    .await
}

/// One job kind's requests or results, all time.
#[derive(Debug, Clone, PartialEq, Eq, clickhouse::Row, Deserialize)]
pub struct KindActivity {
    pub job_kind: u16,
    pub role: String,
    pub first_seen: u32,
    pub last_seen: u32,
}

pub async fn kind_activity(ch: &clickhouse::Client) -> clickhouse::error::Result<Vec<KindActivity>> {
    ch.query(
        "SELECT job_kind, role, toUInt32(min(first_seen)) AS first_seen, toUInt32(max(last_seen)) AS last_seen \
         FROM activity WHERE role IN ('request', 'result') AND job_kind > 0 \
         GROUP BY job_kind, role",
    )
    .fetch_all()
    .await
}

/// The current (newest) announcement or profile at one address.
#[derive(Debug, Clone, PartialEq, Eq, clickhouse::Row, Deserialize)]
pub struct Announcement {
    pub pubkey: Id32,
    pub kind: u16,
    pub d_tag: String,
    pub created_at: u32,
    pub content: String,
    pub announced_kinds: Vec<u16>,
}

/// Newest event per (pubkey, kind, d); ties on `created_at` go to the lowest id (NIP-01).
pub async fn announcements(ch: &clickhouse::Client) -> clickhouse::error::Result<Vec<Announcement>> {
    ch.query(
        "SELECT pubkey, kind, d_tag, toUInt32(created_at) AS created_at, content, announced_kinds \
         FROM announcements \
         ORDER BY pubkey, kind, d_tag, created_at DESC, event_id ASC \
         LIMIT 1 BY pubkey, kind, d_tag",
    )
    .fetch_all()
    .await
}

/// First and newest event of one author in one DVM-side role, all time.
#[derive(Debug, Clone, PartialEq, Eq, clickhouse::Row, Deserialize)]
pub struct RoleActivity {
    pub role: String,
    pub pubkey: Id32,
    pub first_seen: u32,
    pub last_seen: u32,
}

/// Every role a DVM-like service plays (answers, heartbeats, announcements of every family).
pub async fn service_activity(ch: &clickhouse::Client) -> clickhouse::error::Result<Vec<RoleActivity>> {
    ch.query(
        "SELECT role, pubkey, toUInt32(min(first_seen)) AS first_seen, toUInt32(max(last_seen)) AS last_seen \
         FROM activity \
         WHERE role IN ('result', 'feedback', 'heartbeat', 'announcement', 'service_announcement', 'capabilities') \
         GROUP BY role, pubkey",
    )
    .fetch_all()
    .await
}

/// All-time requests or results of one job kind: first, last, events and distinct authors.
#[derive(Debug, Clone, PartialEq, Eq, clickhouse::Row, Deserialize)]
pub struct KindTotals {
    pub job_kind: u16,
    pub role: String,
    pub first_seen: u32,
    pub last_seen: u32,
    pub events: u64,
    pub authors: u64,
}

pub async fn kind_totals(ch: &clickhouse::Client) -> clickhouse::error::Result<Vec<KindTotals>> {
    ch.query(
        "SELECT job_kind, role, toUInt32(min(first_seen)) AS first_seen, toUInt32(max(last_seen)) AS last_seen, \
                sum(events) AS events, uniqExact(pubkey) AS authors \
         FROM activity WHERE role IN ('request', 'result') AND job_kind > 0 \
         GROUP BY job_kind, role",
    )
    .fetch_all()
    .await
}
