//! `dvmdash dlq` against a real stack: poison entries are listed with their reasons, replayed
//! after their cause is fixed (and counted exactly once, even when the same event was
//! dead-lettered twice or replayed twice), and discarded.

use dvmdash_testkit as common;

use std::time::Duration;

use dvmdash::dlq::{DlqAction, DlqArgs, Filter, Summary};
use dvmdash_core::stream::EventStream;
use dvmdash_testkit::{isolated, wait_until};

fn filter(reason: Option<&str>) -> Filter {
    Filter {
        reason: reason.map(str::to_lowercase),
        ..Filter::default()
    }
}

async fn dlq(stack: &common::Stack, action: DlqAction) -> Summary {
    dvmdash::dlq::run(DlqArgs { action }, stack.redis.clone())
        .await
        .expect("dvmdash dlq")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn dead_letters_are_listed_replayed_once_after_the_fix_and_discarded() {
    let (redis, clickhouse) = isolated();
    // An ingester whose size limit is too small: big requests become dead letters.
    let mut args = common::args(redis.clone(), clickhouse.clone(), vec![]);
    args.events.max_event_bytes = 2_000;
    let stack = common::start(args).await;
    // The first big request arrives twice (two relays): two dead letters, one event. Junk that
    // no fix makes storable, one with a control character in it.
    common::append_poison(&stack, b"dlq-customer", ["not json", "{\"id\":\"\u{7}\"}"]).await;
    let mut conn = stack.redis_conn().await;
    let stream = EventStream::new(&stack.redis.names());
    wait_until("six dead letters", Duration::from_secs(60), || {
        let mut c = conn.clone();
        let s = stream.clone();
        async move {
            let n = s.dead_letters(&mut c).await.map_err(|e| e.to_string())?;
            if n == 6 {
                Ok(())
            } else {
                Err(format!("{n} dead letters"))
            }
        }
    })
    .await;

    let all = dlq(
        &stack,
        DlqAction::List {
            filter: filter(None),
            limit: 50,
            json: true,
        },
    )
    .await;
    assert_eq!((all.total, all.matched), (6, 6), "{all:?}");
    let too_large = all
        .by_reason
        .iter()
        .find(|(r, _)| r.contains("too_large"))
        .map(|(r, n)| (r.clone(), *n))
        .expect("a too_large reason");
    assert_eq!(too_large.1, 4, "{all:?}");
    assert_eq!(all.by_reason.values().sum::<u64>(), 6);

    let dry = dlq(
        &stack,
        DlqAction::Replay {
            filter: filter(Some("TOO_LARGE")),
            dry_run: true,
        },
    )
    .await;
    assert_eq!((dry.matched, dry.changed), (4, 0), "{dry:?}");
    assert_eq!(stream.dead_letters(&mut conn).await.expect("count"), 6);

    // The fix: an ingester with the default limit, on the same stream and database.
    stack.stop().await;
    let stack = common::start(common::args(redis, clickhouse, vec![])).await;
    let replayed = dlq(
        &stack,
        DlqAction::Replay {
            filter: filter(Some("too_large")),
            dry_run: false,
        },
    )
    .await;
    assert_eq!((replayed.matched, replayed.changed), (4, 4), "{replayed:?}");
    wait_until(
        "the replayed requests to be stored",
        Duration::from_secs(60),
        || {
            let s = &stack;
            async move {
                let n = s.count("SELECT count() FROM events_raw").await;
                if n == 3 { Ok(()) } else { Err(format!("{n} rows")) }
            }
        },
    )
    .await;
    // Replaying again finds nothing of that reason; the junk stays until discarded.
    let again = dlq(
        &stack,
        DlqAction::Replay {
            filter: filter(Some("too_large")),
            dry_run: false,
        },
    )
    .await;
    assert_eq!(
        (again.total, again.matched, again.changed),
        (2, 0, 0),
        "{again:?}"
    );
    let gone = dlq(
        &stack,
        DlqAction::Discard {
            filter: filter(None),
            dry_run: false,
        },
    )
    .await;
    assert_eq!((gone.matched, gone.changed), (2, 2), "{gone:?}");
    assert_eq!(stream.dead_letters(&mut conn).await.expect("count"), 0);

    // Each request counted once, although its entry came back twice.
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(stack.count("SELECT count() FROM events_raw").await, 3);
    assert_eq!(
        stack
            .count("SELECT toUInt64(sum(events)) FROM stats_hourly WHERE role = 'request'")
            .await,
        3
    );
    // The api's answer follows within its freshness bound (1.5 s, longer for answers that are
    // slow to compute while the machine is loaded), and never counts a replayed request twice.
    let url = format!("{}/api/stats/global/latest?timeRange=1h", stack.base);
    wait_until(
        "the api to count the three requests",
        Duration::from_secs(30),
        || async {
            let (g, status) = common::get_json::<dvmdash_core::dto::GlobalStats>(&url).await;
            match g.map(|g| g.total_requests) {
                Some(3) => Ok(()),
                Some(n) if n > 3 => panic!("the api counts {n} requests, more than were stored"),
                other => Err(format!("HTTP {status}: {other:?}")),
            }
        },
    )
    .await;
    stack.stop().await;
}
