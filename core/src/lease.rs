//! One lease: a Redis key holding its owner's token with a time to live. It is taken when free,
//! renewed only by its owner and released only by its owner (the token fences it, so a holder that
//! stalled past the TTL cannot release or renew a lease another process took meanwhile). The
//! coordinator's leader election and the ingester's gate lock are both leases.

use std::sync::LazyLock;
use std::time::Duration;

use redis::aio::ConnectionLike;

/// Takes the key when free, renews it when we hold it; 1 when we hold it afterwards.
static ACQUIRE: LazyLock<redis::Script> = LazyLock::new(|| {
    redis::Script::new(
        r#"
local cur = redis.call('GET', KEYS[1])
if cur == ARGV[1] then redis.call('PEXPIRE', KEYS[1], ARGV[2]) return 1 end
if not cur then redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2]) return 1 end
return 0
"#,
    )
});

/// Deletes the key only when we hold it; 1 when it was ours.
static RELEASE: LazyLock<redis::Script> = LazyLock::new(|| {
    redis::Script::new(
        r#"
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"#,
    )
});

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lease {
    key: String,
    owner: String,
    ttl: Duration,
}

impl Lease {
    /// The lease `key`, held as `owner` (unique per process) for `ttl` after each renewal.
    pub fn new(key: impl Into<String>, owner: impl Into<String>, ttl: Duration) -> Self {
        Lease {
            key: key.into(),
            owner: owner.into(),
            ttl,
        }
    }

    pub fn key(&self) -> &str {
        &self.key
    }

    pub fn owner(&self) -> &str {
        &self.owner
    }

    pub fn ttl(&self) -> Duration {
        self.ttl
    }

    /// Takes the lease when free or renews it when ours. `true` when we hold it now.
    pub async fn acquire_or_renew<C: ConnectionLike>(&self, conn: &mut C) -> redis::RedisResult<bool> {
        let ttl_ms = u64::try_from(self.ttl.as_millis()).unwrap_or(u64::MAX).max(1);
        let held: i64 = ACQUIRE
            .key(&self.key)
            .arg(&self.owner)
            .arg(ttl_ms)
            .invoke_async(conn)
            .await?;
        Ok(held == 1)
    }

    /// Gives the lease up if it is still ours, so another process can take it at once. `true` when
    /// it was ours.
    pub async fn release<C: ConnectionLike>(&self, conn: &mut C) -> redis::RedisResult<bool> {
        let released: i64 = RELEASE.key(&self.key).arg(&self.owner).invoke_async(conn).await?;
        Ok(released == 1)
    }
}
