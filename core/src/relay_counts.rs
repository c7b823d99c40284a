//! Relay counters per hour, kept in Redis, so the relays page can say what each relay delivered
//! over a window rather than since some collector last started.
//!
//! A collector's counters (`RelayCounters`) only grow while it runs. At every heartbeat it adds
//! what grew since its previous heartbeat to the hash of the current hour
//! ([`RedisNames::relay_counts`]): one field per counter and relay, `"<counter> <url>"`
//! (relay URLs hold no whitespace), incremented atomically with the hash's expiry. A failed write
//! is retried with the next heartbeat's larger difference, so nothing is lost or added twice. A
//! window's counts are the sum of the hours it spans; several collectors watching one relay add up,
//! as they do in the live view. Counts land in the hour of the heartbeat that carried them (at
//! most one heartbeat interval late).

use std::collections::BTreeMap;

use redis::aio::ConnectionLike;

use crate::dto::{RelayCounters, RelayCounts};
use crate::redis_keys::RedisNames;

/// Hours are kept 32 days, past the longest window (30 days) and its partial first hour.
pub const KEEP_SECS: u64 = 32 * 86_400;

/// Prefix of a per-reason rejection counter.
const REJECTED_PREFIX: &str = "rejected:";

/// One relay's counters by name: the plain ones and `rejected:<reason>`.
pub type Flat = BTreeMap<String, u64>;

pub fn flatten(c: &RelayCounters) -> Flat {
    let mut f = Flat::new();
    for (name, v) in [
        ("received", c.received),
        ("accepted", c.accepted),
        ("duplicates", c.duplicates),
        ("rejected", c.rejected),
        ("reconnects", c.reconnects),
    ] {
        f.insert(name.to_owned(), v);
    }
    for (reason, n) in &c.rejected_by_reason {
        f.insert(format!("{REJECTED_PREFIX}{reason}"), *n);
    }
    f
}

/// What grew from `prev` to `cur`, without zeros. A counter below its previous value was
/// restarted (the relay was dropped and taken up again): all of its value is new.
pub fn growth(prev: Option<&Flat>, cur: &Flat) -> Flat {
    cur.iter()
        .filter_map(|(name, &v)| {
            let before = prev.and_then(|p| p.get(name)).copied().unwrap_or(0);
            let d = if v >= before { v - before } else { v };
            (d > 0).then(|| (name.clone(), d))
        })
        .collect()
}

/// Adds each relay's growth to the hour holding `now_secs`, in one atomic transaction.
pub async fn add<C: ConnectionLike>(
    conn: &mut C,
    names: &RedisNames,
    now_secs: u64,
    growth: &BTreeMap<String, Flat>,
) -> redis::RedisResult<()> {
    if growth.values().all(BTreeMap::is_empty) {
        return Ok(());
    }
    let key = names.relay_counts(now_secs / 3600 * 3600);
    let mut pipe = redis::pipe();
    pipe.atomic();
    for (url, counters) in growth {
        for (name, d) in counters {
            pipe.cmd("HINCRBY")
                .arg(&key)
                .arg(format!("{name} {url}"))
                .arg(*d)
                .ignore();
        }
    }
    pipe.cmd("EXPIRE").arg(&key).arg(KEEP_SECS).ignore();
    pipe.query_async::<()>(conn).await
}

/// Every relay's counts over the hours from the one holding `since_secs` to the one holding
/// `now_secs`, and the start of the first hour.
pub async fn read<C: ConnectionLike>(
    conn: &mut C,
    names: &RedisNames,
    since_secs: u64,
    now_secs: u64,
) -> redis::RedisResult<(u64, BTreeMap<String, RelayCounts>)> {
    let first = since_secs / 3600 * 3600;
    let mut pipe = redis::pipe();
    let mut hour = first;
    while hour <= now_secs {
        pipe.cmd("HGETALL").arg(names.relay_counts(hour));
        hour += 3600;
    }
    let hours: Vec<BTreeMap<String, u64>> = pipe.query_async(conn).await?;
    let mut out: BTreeMap<String, RelayCounts> = BTreeMap::new();
    for fields in hours {
        for (field, n) in fields {
            let Some((name, url)) = field.split_once(' ') else {
                continue;
            };
            let w = out.entry(url.to_owned()).or_default();
            match name {
                "received" => w.received += n,
                "accepted" => w.accepted += n,
                "duplicates" => w.duplicates += n,
                "rejected" => w.rejected += n,
                "reconnects" => w.reconnects += n,
                other => {
                    if let Some(reason) = other.strip_prefix(REJECTED_PREFIX) {
                        *w.rejected_by_reason.entry(reason.to_owned()).or_default() += n;
                    }
                }
            }
        }
    }
    Ok((first, out))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn counters(accepted: u64, rejected: &[(&str, u64)]) -> RelayCounters {
        RelayCounters {
            received: accepted + rejected.iter().map(|r| r.1).sum::<u64>(),
            accepted,
            rejected: rejected.iter().map(|r| r.1).sum(),
            rejected_by_reason: rejected.iter().map(|(r, n)| ((*r).to_owned(), *n)).collect(),
            ..RelayCounters::default()
        }
    }

    #[test]
    fn growth_counts_only_what_is_new() {
        let first = flatten(&counters(10, &[("bad_signature", 2)]));
        let all = growth(None, &first);
        assert_eq!(all.get("accepted"), Some(&10));
        assert_eq!(all.get("rejected:bad_signature"), Some(&2));
        assert_eq!(all.get("duplicates"), None, "zeros are left out");
        let second = flatten(&counters(15, &[("bad_signature", 2), ("too_large", 1)]));
        let d = growth(Some(&first), &second);
        assert_eq!(d.get("accepted"), Some(&5));
        assert_eq!(d.get("rejected:too_large"), Some(&1));
        assert_eq!(d.get("rejected:bad_signature"), None);
        assert_eq!(d.get("received"), Some(&6));
        assert!(growth(Some(&second), &second).is_empty());
        // A restarted counter counts from zero again.
        let restarted = flatten(&counters(3, &[]));
        assert_eq!(growth(Some(&second), &restarted).get("accepted"), Some(&3));
    }
}
