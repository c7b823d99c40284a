//! Reading Redis stream replies and backlog numbers, shared by the ingester (metrics) and the api
//! (admin status).

use redis::Value;

use crate::redis_keys::{INGESTER_GROUP, RedisNames};

/// Backlog numbers of the group, for metrics and the api.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct GroupInfo {
    pub length: u64,
    pub pending: u64,
    /// Entries not yet delivered to the group (`lag`, Redis >= 7).
    pub lag: Option<u64>,
}

pub async fn group_info<C: redis::aio::ConnectionLike + Send>(
    conn: &mut C,
    names: &RedisNames,
) -> redis::RedisResult<GroupInfo> {
    let length: u64 = redis::cmd("XLEN")
        .arg(names.events_stream())
        .query_async(conn)
        .await?;
    let reply: Value = redis::cmd("XINFO")
        .arg("GROUPS")
        .arg(names.events_stream())
        .query_async(conn)
        .await?;
    let mut info = GroupInfo {
        length,
        ..Default::default()
    };
    if let Value::Array(groups) = reply {
        for g in groups {
            let pairs = match g {
                Value::Array(items) => items
                    .chunks(2)
                    .filter_map(|p| Some((as_string(p.first()?)?, p.get(1)?.clone())))
                    .collect::<Vec<_>>(),
                Value::Map(items) => items
                    .into_iter()
                    .filter_map(|(k, v)| Some((as_string(&k)?, v)))
                    .collect(),
                _ => continue,
            };
            let get = |name: &str| pairs.iter().find(|(k, _)| k == name).map(|(_, v)| v);
            if get("name").and_then(as_string).as_deref() != Some(INGESTER_GROUP) {
                continue;
            }
            info.pending = get("pending").and_then(as_u64).unwrap_or(0);
            info.lag = get("lag").and_then(as_u64);
        }
    }
    Ok(info)
}

/// Entries waiting in the dead-letter stream.
pub async fn dead_letters<C: redis::aio::ConnectionLike + Send>(
    conn: &mut C,
    names: &RedisNames,
) -> redis::RedisResult<u64> {
    redis::cmd("XLEN")
        .arg(names.dead_letter_stream())
        .query_async(conn)
        .await
}

pub fn as_string(v: &Value) -> Option<String> {
    match v {
        Value::BulkString(b) => String::from_utf8(b.clone()).ok(),
        Value::SimpleString(s) => Some(s.clone()),
        Value::Int(i) => Some(i.to_string()),
        _ => None,
    }
}

pub fn as_u64(v: &Value) -> Option<u64> {
    match v {
        Value::Int(i) => u64::try_from(*i).ok(),
        Value::BulkString(b) => std::str::from_utf8(b).ok()?.parse().ok(),
        Value::SimpleString(s) => s.parse().ok(),
        _ => None,
    }
}
