//! Reading Redis stream replies and backlog numbers, shared by the ingester (metrics) and the api
//! (admin status).

use redis::Value;

use crate::redis_keys::{INGESTER_GROUP, RedisNames};

/// Backlog numbers of the group, for metrics and the api.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct GroupInfo {
    pub length: u64,
    pub pending: u64,
    /// Entries not yet delivered to the group (`lag`, Redis >= 7).
    pub lag: Option<u64>,
    /// The last entry delivered to the group.
    pub last_delivered: Option<String>,
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
            info.last_delivered = get("last-delivered-id").and_then(as_string);
        }
    }
    Ok(info)
}

/// The id below which every entry was delivered to the ingesters and acknowledged: the oldest
/// pending entry, or just after the last delivered one when nothing is pending.
pub async fn acknowledged_below<C: redis::aio::ConnectionLike + Send>(
    conn: &mut C,
    names: &RedisNames,
) -> redis::RedisResult<Option<String>> {
    let info = group_info(conn, names).await?;
    let summary: Value = redis::cmd("XPENDING")
        .arg(names.events_stream())
        .arg(INGESTER_GROUP)
        .query_async(conn)
        .await?;
    if let Value::Array(parts) = summary
        && let Some(oldest) = parts.get(1).and_then(as_string)
    {
        return Ok(Some(oldest));
    }
    Ok(info
        .last_delivered
        .filter(|id| id != "0-0")
        .and_then(|id| next_id(&id)))
}

/// The stream id right after `id` (`ms-seq` -> `ms-(seq+1)`).
pub fn next_id(id: &str) -> Option<String> {
    let (ms, seq) = id.split_once('-')?;
    let seq: u64 = seq.parse().ok()?;
    Some(format!("{ms}-{}", seq.checked_add(1)?))
}

/// Drops entries every ingester has acknowledged (approximately, whole radix-tree nodes), so Redis
/// holds only the backlog. Returns how many entries went.
pub async fn trim_acknowledged<C: redis::aio::ConnectionLike + Send>(
    conn: &mut C,
    names: &RedisNames,
) -> redis::RedisResult<u64> {
    let Some(below) = acknowledged_below(conn, names).await? else {
        return Ok(0);
    };
    redis::cmd("XTRIM")
        .arg(names.events_stream())
        .arg("MINID")
        .arg("~")
        .arg(below)
        .query_async(conn)
        .await
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn next_ids() {
        assert_eq!(next_id("1700000000000-0").as_deref(), Some("1700000000000-1"));
        assert_eq!(next_id("5-41").as_deref(), Some("5-42"));
        assert_eq!(next_id("junk"), None);
    }
}
