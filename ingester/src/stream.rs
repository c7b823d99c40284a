//! Reading the events stream as a consumer group, acknowledging, and dead-lettering.
//!
//! Replies are parsed from raw `redis::Value`s rather than the crate's typed stream replies: a
//! pending entry whose data was trimmed comes back with a nil body, which must be handled, not fail
//! the whole read.

use std::time::Duration;

use dvmdash_core::redis_keys::{
    FIELD_EVENT, FIELD_ORIGINAL_ID, FIELD_REASON, FIELD_RELAY, FIELD_SEEN_MS, INGESTER_GROUP, RedisNames,
};
use dvmdash_core::streams::as_string;
use redis::Value;
use redis::aio::{ConnectionManager, MultiplexedConnection};

/// One stream entry as read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    pub id: String,
    /// `None` when the entry was trimmed from the stream while pending.
    pub fields: Option<Fields>,
}

/// The fields the collector writes; missing ones stay empty so the batcher can say what is wrong.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Fields {
    pub event: Option<Vec<u8>>,
    pub relay: Option<Vec<u8>>,
    pub seen_ms: Option<Vec<u8>>,
    /// Number of fields in the entry, to spot junk.
    pub count: usize,
}

/// Creates the consumer group (from the start of the stream, so nothing already queued is skipped).
pub async fn ensure_group(conn: &mut ConnectionManager, names: &RedisNames) -> redis::RedisResult<()> {
    let r: redis::RedisResult<()> = redis::cmd("XGROUP")
        .arg("CREATE")
        .arg(names.events_stream())
        .arg(INGESTER_GROUP)
        .arg("0")
        .arg("MKSTREAM")
        .query_async(conn)
        .await;
    match r {
        Err(e) if e.code() == Some("BUSYGROUP") => Ok(()),
        other => other,
    }
}

/// A dedicated connection for blocking reads: no response timeout, since `BLOCK` holds the reply.
pub async fn reader(client: &redis::Client) -> redis::RedisResult<MultiplexedConnection> {
    let cfg = redis::AsyncConnectionConfig::new()
        .set_response_timeout(None)
        .set_connection_timeout(Some(Duration::from_secs(5)));
    client.get_multiplexed_async_connection_with_config(&cfg).await
}

/// `XREADGROUP`: `start` is `>` for new entries or `0` for this consumer's own pending ones.
pub async fn read(
    conn: &mut MultiplexedConnection,
    names: &RedisNames,
    consumer: &str,
    start: &str,
    count: usize,
    block: Option<Duration>,
) -> redis::RedisResult<Vec<Entry>> {
    let mut cmd = redis::cmd("XREADGROUP");
    cmd.arg("GROUP")
        .arg(INGESTER_GROUP)
        .arg(consumer)
        .arg("COUNT")
        .arg(count);
    if let Some(b) = block {
        cmd.arg("BLOCK").arg(b.as_millis() as u64);
    }
    cmd.arg("STREAMS").arg(names.events_stream()).arg(start);
    let reply: Value = cmd.query_async(conn).await?;
    Ok(parse_read_reply(reply))
}

/// Takes over entries idle longer than `min_idle` from any consumer (a dead ingester's), following
/// the cursor. Returns the entries and the ids whose data was already trimmed.
pub async fn autoclaim(
    conn: &mut ConnectionManager,
    names: &RedisNames,
    consumer: &str,
    min_idle: Duration,
    count: usize,
) -> redis::RedisResult<(Vec<Entry>, Vec<String>)> {
    let mut cursor = "0-0".to_owned();
    let mut entries = Vec::new();
    let mut deleted = Vec::new();
    loop {
        let reply: Value = redis::cmd("XAUTOCLAIM")
            .arg(names.events_stream())
            .arg(INGESTER_GROUP)
            .arg(consumer)
            .arg(min_idle.as_millis() as u64)
            .arg(&cursor)
            .arg("COUNT")
            .arg(count)
            .query_async(conn)
            .await?;
        let Value::Array(parts) = reply else { break };
        let mut parts = parts.into_iter();
        let next = parts
            .next()
            .and_then(|v| as_string(&v))
            .unwrap_or_else(|| "0-0".into());
        if let Some(Value::Array(items)) = parts.next() {
            entries.extend(items.into_iter().filter_map(parse_entry));
        }
        if let Some(Value::Array(ids)) = parts.next() {
            deleted.extend(ids.iter().filter_map(as_string));
        }
        if next == "0-0" || entries.len() >= count {
            break;
        }
        cursor = next;
    }
    Ok((entries, deleted))
}

/// `XACK` in chunks.
pub async fn ack(conn: &mut ConnectionManager, names: &RedisNames, ids: &[String]) -> redis::RedisResult<()> {
    for chunk in ids.chunks(5000) {
        let _: i64 = redis::cmd("XACK")
            .arg(names.events_stream())
            .arg(INGESTER_GROUP)
            .arg(chunk)
            .query_async(conn)
            .await?;
    }
    Ok(())
}

/// Copies entries to the dead-letter stream with their reason (pipelined, one round trip).
pub async fn dead_letter(
    conn: &mut ConnectionManager,
    names: &RedisNames,
    items: &[(Entry, String)],
) -> redis::RedisResult<()> {
    if items.is_empty() {
        return Ok(());
    }
    let mut pipe = redis::pipe();
    for (entry, reason) in items {
        let cmd = pipe
            .cmd("XADD")
            .arg(names.dead_letter_stream())
            .arg("MAXLEN")
            .arg("~")
            .arg(100_000)
            .arg("*");
        cmd.arg(FIELD_ORIGINAL_ID)
            .arg(&entry.id)
            .arg(FIELD_REASON)
            .arg(reason);
        if let Some(f) = &entry.fields {
            if let Some(e) = &f.event {
                cmd.arg(FIELD_EVENT).arg(&e[..e.len().min(1024 * 1024)]);
            }
            if let Some(r) = &f.relay {
                cmd.arg(FIELD_RELAY).arg(&r[..r.len().min(1024)]);
            }
            if let Some(t) = &f.seen_ms {
                cmd.arg(FIELD_SEEN_MS).arg(&t[..t.len().min(64)]);
            }
        }
        cmd.ignore();
    }
    pipe.query_async::<()>(conn).await
}

fn parse_read_reply(reply: Value) -> Vec<Entry> {
    // [[stream, [[id, [f, v, ...] | nil], ...]]] (RESP2) or {stream: [...]} (RESP3)
    let streams = match reply {
        Value::Array(s) => s
            .into_iter()
            .filter_map(|s| match s {
                Value::Array(mut kv) if kv.len() == 2 => kv.pop(),
                _ => None,
            })
            .collect::<Vec<_>>(),
        Value::Map(m) => m.into_iter().map(|(_, v)| v).collect(),
        _ => Vec::new(),
    };
    streams
        .into_iter()
        .flat_map(|items| match items {
            Value::Array(items) => items,
            _ => Vec::new(),
        })
        .filter_map(parse_entry)
        .collect()
}

fn parse_entry(v: Value) -> Option<Entry> {
    let Value::Array(mut parts) = v else { return None };
    if parts.is_empty() {
        return None;
    }
    let body = if parts.len() > 1 { parts.pop() } else { None };
    let id = as_string(&parts[0])?;
    let fields = match body {
        Some(Value::Array(kv)) => {
            let mut f = Fields {
                count: kv.len() / 2,
                ..Default::default()
            };
            let mut it = kv.into_iter();
            while let (Some(k), Some(v)) = (it.next(), it.next()) {
                let (Some(k), Value::BulkString(v)) = (as_string(&k), v) else {
                    continue;
                };
                match k.as_str() {
                    FIELD_EVENT => f.event = Some(v),
                    FIELD_RELAY => f.relay = Some(v),
                    FIELD_SEEN_MS => f.seen_ms = Some(v),
                    _ => {}
                }
            }
            Some(f)
        }
        _ => None,
    };
    Some(Entry { id, fields })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bulk(s: &str) -> Value {
        Value::BulkString(s.as_bytes().to_vec())
    }

    #[test]
    fn parses_reads_including_trimmed_entries() {
        let reply = Value::Array(vec![Value::Array(vec![
            bulk("s"),
            Value::Array(vec![
                Value::Array(vec![
                    bulk("1-0"),
                    Value::Array(vec![bulk("e"), bulk("{}"), bulk("r"), bulk("wss://x")]),
                ]),
                Value::Array(vec![bulk("2-0"), Value::Nil]),
                Value::Int(5),
            ]),
        ])]);
        let entries = parse_read_reply(reply);
        assert_eq!(entries.len(), 2);
        let f = entries[0].fields.as_ref().unwrap();
        assert_eq!(f.event.as_deref(), Some(&b"{}"[..]));
        assert_eq!(f.relay.as_deref(), Some(&b"wss://x"[..]));
        assert_eq!(f.seen_ms, None);
        assert_eq!(
            entries[1],
            Entry {
                id: "2-0".into(),
                fields: None
            }
        );
        assert!(parse_read_reply(Value::Nil).is_empty());
    }
}
