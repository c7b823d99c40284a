//! ContextVM messages (kind 25910) in a window. Their parsed facts are in `events_raw`
//! (`core::nip90::parse_contextvm`): a call has its JSON-RPC method in `status_reason`, the tool or
//! prompt it names in `d_tag` and its servers in `targets`; a response has `success` or `error` in
//! `status` and its call in `request_id`.

use dvmdash_core::event::Id32;
use serde::Deserialize;

use super::Window;

/// One distinct ContextVM message.
#[derive(Debug, Clone, PartialEq, Eq, clickhouse::Row, Deserialize)]
pub struct Message {
    pub event_id: Id32,
    pub author: Id32,
    pub at: u32,
    /// `success` or `error` for a response; empty otherwise.
    pub status: String,
    /// The method of a call; empty otherwise.
    pub method: String,
    pub name: String,
    pub servers: Vec<Id32>,
    pub request_id: Id32,
}

const COLUMNS: &str = "event_id, any(pubkey) AS author, toUInt32(any(created_at)) AS at, \
    any(status) AS status, any(status_reason) AS method, any(d_tag) AS name, any(targets) AS servers, \
    any(request_id) AS request_id";
const IN_WINDOW: &str = "role = 'contextvm_message' \
    AND created_at >= toDateTime({start:UInt32}) AND created_at <= toDateTime({now:UInt32})";

/// Every ContextVM message of the window.
pub async fn messages(ch: &clickhouse::Client, w: &Window) -> clickhouse::error::Result<Vec<Message>> {
    w.query(
        ch,
        &format!("SELECT {COLUMNS} FROM events_raw WHERE {IN_WINDOW} GROUP BY event_id"),
    )
    .fetch_all()
    .await
}

/// Calls from before the window that responses in the window answer.
pub async fn earlier_calls(ch: &clickhouse::Client, w: &Window) -> clickhouse::error::Result<Vec<Message>> {
    w.query(
        ch,
        &format!(
            "SELECT {COLUMNS} FROM events_raw WHERE role = 'contextvm_message' \
               AND created_at < toDateTime({{start:UInt32}}) AND status_reason != '' \
               AND event_id IN (SELECT request_id FROM events_raw WHERE {IN_WINDOW} AND status != '') \
             GROUP BY event_id"
        ),
    )
    .fetch_all()
    .await
}
