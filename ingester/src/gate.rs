//! The exactly-once gate in front of `events_raw`.
//!
//! Every rollup is a materialized view on `events_raw`, so an event inserted twice would be counted
//! twice. Before inserting, a batch is checked against `event_ids` (every id ever stored, ordered by
//! the day of `created_at`, so only the days the batch touches are read) and only unseen events are
//! inserted. A Redis lock makes check and insert one step across ingesters; it is renewed while held,
//! so a long ClickHouse outage keeps it, and it expires on its own if its holder dies.

use std::collections::{BTreeSet, HashSet};
use std::time::Duration;

use dvmdash_core::event::Id32;
use dvmdash_core::store::RawEventRow;
use redis::aio::ConnectionManager;
use serde::Deserialize;
use tokio_util::sync::CancellationToken;

/// Ids of `rows` already stored.
pub async fn stored_ids(
    client: &clickhouse::Client,
    rows: &[RawEventRow],
) -> clickhouse::error::Result<HashSet<Id32>> {
    #[derive(clickhouse::Row, Deserialize)]
    struct IdRow {
        event_id: Id32,
    }
    if rows.is_empty() {
        return Ok(HashSet::new());
    }
    let days: BTreeSet<String> = rows
        .iter()
        .map(|r| dvmdash_core::dto::rfc3339(u64::from(r.created_at))[..10].to_owned())
        .collect();
    let ids: Vec<String> = rows.iter().map(|r| hex::encode(r.event_id)).collect();
    let found = client
        .query(
            "SELECT event_id FROM event_ids WHERE day IN {days:Array(Date)} \
             AND event_id IN (SELECT toFixedString(unhex(arrayJoin({ids:Array(String)})), 32))",
        )
        .param("days", days.into_iter().collect::<Vec<_>>())
        .param("ids", ids)
        .fetch_all::<IdRow>()
        .await?;
    Ok(found.into_iter().map(|r| r.event_id).collect())
}

/// Takes the lock if free; renews it if we hold it.
const ACQUIRE: &str = r#"
local cur = redis.call('GET', KEYS[1])
if cur == ARGV[1] then redis.call('PEXPIRE', KEYS[1], ARGV[2]) return 1 end
if not cur then redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2]) return 1 end
return 0
"#;

const RELEASE: &str = r#"
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"#;

/// The held lock. Release it with [`Lock::release`]; dropping it stops the renewal and leaves the
/// key to expire.
pub struct Lock {
    key: String,
    owner: String,
    conn: ConnectionManager,
    renewal: CancellationToken,
}

impl Lock {
    /// Waits for the lock; `None` when `shutdown` fires first.
    pub async fn acquire(
        mut conn: ConnectionManager,
        key: String,
        owner: String,
        ttl: Duration,
        shutdown: &CancellationToken,
    ) -> redis::RedisResult<Option<Lock>> {
        let script = redis::Script::new(ACQUIRE);
        let ttl_ms = ttl.as_millis() as u64;
        let mut wait = Duration::from_millis(5);
        loop {
            let got: i64 = script
                .key(&key)
                .arg(&owner)
                .arg(ttl_ms)
                .invoke_async(&mut conn)
                .await?;
            if got == 1 {
                break;
            }
            tokio::select! {
                _ = shutdown.cancelled() => return Ok(None),
                _ = tokio::time::sleep(wait) => {}
            }
            wait = (wait * 2).min(Duration::from_millis(200));
        }
        let renewal = CancellationToken::new();
        let (r, mut c, k, o) = (renewal.clone(), conn.clone(), key.clone(), owner.clone());
        tokio::spawn(async move {
            let script = redis::Script::new(ACQUIRE);
            loop {
                tokio::select! {
                    _ = r.cancelled() => return,
                    _ = tokio::time::sleep(ttl / 3) => {}
                }
                let renewed: redis::RedisResult<i64> =
                    script.key(&k).arg(&o).arg(ttl_ms).invoke_async(&mut c).await;
                if !matches!(renewed, Ok(1)) {
                    tracing::warn!("ingest lock could not be renewed; another ingester may take it");
                }
            }
        });
        Ok(Some(Lock {
            key,
            owner,
            conn,
            renewal,
        }))
    }

    pub async fn release(mut self) {
        self.renewal.cancel();
        let _: redis::RedisResult<i64> = redis::Script::new(RELEASE)
            .key(&self.key)
            .arg(&self.owner)
            .invoke_async(&mut self.conn)
            .await;
    }
}

impl Drop for Lock {
    fn drop(&mut self) {
        self.renewal.cancel();
    }
}
