//! The lease behind leader election and the ingest locks, against a real Redis: one holder at a
//! time, renewed and released only by its holder's token, free again when its holder stops renewing.

use std::time::Duration;

use dvmdash_core::lease::Lease;
use dvmdash_testkit::{redis_url, unique};

#[tokio::test]
async fn one_holder_fenced_by_its_token_and_expiring() {
    let client = redis::Client::open(redis_url()).expect("redis url");
    let mut conn = client.get_multiplexed_async_connection().await.expect("redis");
    let key = unique("lease");
    let a = Lease::new(&key, "a", Duration::from_millis(400));
    let b = Lease::new(&key, "b", Duration::from_millis(400));

    assert!(
        a.acquire_or_renew(&mut conn).await.unwrap(),
        "a free lease is taken"
    );
    assert!(
        !b.acquire_or_renew(&mut conn).await.unwrap(),
        "a held lease is not"
    );
    assert!(!b.release(&mut conn).await.unwrap(), "only the holder releases");
    assert!(a.acquire_or_renew(&mut conn).await.unwrap(), "the holder renews");

    // Renewals keep it past its TTL.
    for _ in 0..4 {
        tokio::time::sleep(Duration::from_millis(150)).await;
        assert!(a.acquire_or_renew(&mut conn).await.unwrap());
        assert!(!b.acquire_or_renew(&mut conn).await.unwrap());
    }

    // A holder that stops renewing loses it, and cannot release what another took meanwhile.
    tokio::time::sleep(Duration::from_millis(600)).await;
    assert!(
        b.acquire_or_renew(&mut conn).await.unwrap(),
        "an expired lease is free"
    );
    assert!(
        !a.release(&mut conn).await.unwrap(),
        "the old holder's token no longer counts"
    );
    assert!(!a.acquire_or_renew(&mut conn).await.unwrap());
    assert!(b.release(&mut conn).await.unwrap());
    assert!(
        a.acquire_or_renew(&mut conn).await.unwrap(),
        "a released lease is free at once"
    );
    assert!(a.release(&mut conn).await.unwrap());
}
