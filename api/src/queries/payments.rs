//! Zap receipts paying DVMs and the amounts DVMs asked for, in a window. The receipt's parsed facts
//! are in `events_raw` (`core::nip90::parse_zap_receipt`): `targets[1]` the recipient, `customer`
//! the sender, `request_id` the zapped event, `amount_msat` only when believable.

use dvmdash_core::event::Id32;
use serde::Deserialize;

use super::Window;

/// One zap receipt with a believable amount.
#[derive(Debug, Clone, PartialEq, Eq, clickhouse::Row, Deserialize)]
pub struct Zap {
    pub at: u32,
    pub zapped: Id32,
    pub recipient: Id32,
    pub sender: Id32,
    pub amount: u64,
}

/// A stored request, result or feedback that a zap in the window names.
#[derive(Debug, Clone, PartialEq, Eq, clickhouse::Row, Deserialize)]
pub struct Zapped {
    pub event_id: Id32,
    pub role: String,
    pub kind: u16,
    pub request_id: Id32,
    pub request_kind: u16,
}

/// The largest amount one DVM asked for in one job (payment-required feedback or a result's
/// `amount`).
#[derive(Debug, Clone, PartialEq, Eq, clickhouse::Row, Deserialize)]
pub struct Ask {
    pub dvm: Id32,
    pub request_id: Id32,
    /// The result's request kind where one said it; 0 otherwise.
    pub request_kind: u16,
    pub asked: u64,
}

/// The kind of a stored request.
#[derive(Debug, Clone, PartialEq, Eq, clickhouse::Row, Deserialize)]
pub struct RequestKind {
    pub request_id: Id32,
    pub kind: u16,
}

const ZAPS: &str = "SELECT event_id, request_id FROM events_raw WHERE role = 'zap_receipt' \
    AND amount_msat IS NOT NULL AND created_at >= toDateTime({start:UInt32}) AND created_at <= toDateTime({now:UInt32})";
const ASKS: &str = "SELECT pubkey, request_id FROM events_raw WHERE amount_msat IS NOT NULL \
    AND (role = 'result' OR (role = 'feedback' AND status = 'payment-required')) \
    AND created_at >= toDateTime({start:UInt32}) AND created_at <= toDateTime({now:UInt32})";

pub async fn zaps(ch: &clickhouse::Client, w: &Window) -> clickhouse::error::Result<Vec<Zap>> {
    w.query(
        ch,
        "SELECT toUInt32(any(created_at)) AS at, any(request_id) AS zapped, any(targets[1]) AS recipient, \
                any(customer) AS sender, any(assumeNotNull(amount_msat)) AS amount \
         FROM events_raw WHERE role = 'zap_receipt' AND amount_msat IS NOT NULL \
           AND created_at >= toDateTime({start:UInt32}) AND created_at <= toDateTime({now:UInt32}) \
         GROUP BY event_id",
    )
    .fetch_all()
    .await
}

pub async fn zapped(ch: &clickhouse::Client, w: &Window) -> clickhouse::error::Result<Vec<Zapped>> {
    w.query(
        ch,
        &format!(
            "SELECT event_id, role, kind, request_id, request_kind \
         FROM events_raw WHERE role IN ('request', 'result', 'feedback') \
           AND event_id IN (SELECT request_id FROM ({ZAPS})) \
         LIMIT 1 BY event_id"
        ),
    )
    .fetch_all()
    .await
}

pub async fn asks(ch: &clickhouse::Client, w: &Window) -> clickhouse::error::Result<Vec<Ask>> {
    w.query(
        ch,
        "SELECT pubkey AS dvm, request_id, max(request_kind) AS request_kind, max(assumeNotNull(amount_msat)) AS asked \
         FROM events_raw WHERE amount_msat IS NOT NULL \
           AND (role = 'result' OR (role = 'feedback' AND status = 'payment-required')) \
           AND created_at >= toDateTime({start:UInt32}) AND created_at <= toDateTime({now:UInt32}) \
         GROUP BY pubkey, request_id",
    )
    .fetch_all()
    .await
}

/// Kinds of the stored requests that asks, zapped events or zapped answers name.
pub async fn request_kinds(
    ch: &clickhouse::Client,
    w: &Window,
) -> clickhouse::error::Result<Vec<RequestKind>> {
    w.query(
        ch,
        &format!(
            "SELECT event_id AS request_id, kind FROM events_raw WHERE role = 'request' AND ( \
           event_id IN (SELECT request_id FROM ({ASKS})) \
           OR event_id IN (SELECT request_id FROM events_raw WHERE role IN ('result', 'feedback') \
                           AND event_id IN (SELECT request_id FROM ({ZAPS}))) \
         ) LIMIT 1 BY event_id"
        ),
    )
    .fetch_all()
    .await
}
