//! Publishes signed events to relays over NIP-01 and counts the relays' `OK` answers.
//!
//! One task per relay keeps a websocket open, sends `EVENT`s as they are queued, reads `OK`s, and
//! reconnects after failures (events queued meanwhile wait; events in flight on a broken socket are
//! counted as failed).

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use dvmdash_collector::nip01::{self, RelayMessage};
use dvmdash_core::Event;
use futures_util::{SinkExt as _, StreamExt as _};
use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite::Message;
use tokio_util::sync::CancellationToken;
use tracing::{debug, warn};

/// Publication counters of one relay.
#[derive(Debug, Default)]
pub struct PublishStats {
    pub sent: AtomicU64,
    pub accepted: AtomicU64,
    pub refused: AtomicU64,
    /// Sent on a connection that broke before the relay answered.
    pub lost: AtomicU64,
}

impl PublishStats {
    /// Events the relay has answered (either way) or that were lost.
    pub fn settled(&self) -> u64 {
        self.accepted.load(Ordering::Relaxed)
            + self.refused.load(Ordering::Relaxed)
            + self.lost.load(Ordering::Relaxed)
    }
}

/// Writers for a set of relays.
pub struct Publisher {
    relays: Vec<(String, mpsc::Sender<String>, Arc<PublishStats>)>,
    stop: CancellationToken,
}

impl Publisher {
    pub fn new(relays: &[String]) -> Self {
        let stop = CancellationToken::new();
        let relays = relays
            .iter()
            .map(|url| {
                let (tx, rx) = mpsc::channel(10_000);
                let stats = Arc::new(PublishStats::default());
                tokio::spawn(relay_writer(url.clone(), rx, stats.clone(), stop.clone()));
                (url.clone(), tx, stats)
            })
            .collect();
        Publisher { relays, stop }
    }

    /// Queues an event for every relay (waits when a relay's queue is full).
    pub async fn publish(&self, event: &Event) {
        let msg = nip01::publish(&event.to_json());
        for (_, tx, stats) in &self.relays {
            if tx.send(msg.clone()).await.is_ok() {
                stats.sent.fetch_add(1, Ordering::Relaxed);
            }
        }
    }

    /// Queues an event for the first relay only.
    pub async fn publish_to_first(&self, event: &Event) {
        if let Some((_, tx, stats)) = self.relays.first()
            && tx.send(nip01::publish(&event.to_json())).await.is_ok()
        {
            stats.sent.fetch_add(1, Ordering::Relaxed);
        }
    }

    pub fn stats(&self) -> Vec<(String, Arc<PublishStats>)> {
        self.relays
            .iter()
            .map(|(u, _, s)| (u.clone(), s.clone()))
            .collect()
    }

    /// Waits until every relay answered every event queued so far, or the timeout passes.
    /// Returns whether everything settled.
    pub async fn settle(&self, timeout: Duration) -> bool {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            if self
                .relays
                .iter()
                .all(|(_, _, s)| s.settled() >= s.sent.load(Ordering::Relaxed))
            {
                return true;
            }
            if tokio::time::Instant::now() >= deadline {
                return false;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

impl Drop for Publisher {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}

async fn relay_writer(
    url: String,
    mut rx: mpsc::Receiver<String>,
    stats: Arc<PublishStats>,
    stop: CancellationToken,
) {
    let mut delay = Duration::from_millis(200);
    let mut pending: Option<String> = None;
    'reconnect: while !stop.is_cancelled() {
        let ws = match tokio::time::timeout(
            Duration::from_secs(10),
            tokio_tungstenite::connect_async(url.as_str()),
        )
        .await
        {
            Ok(Ok((ws, _))) => ws,
            Ok(Err(err)) => {
                warn!(relay = %url, error = %err, "cannot connect to publish");
                tokio::time::sleep(delay).await;
                delay = (delay * 2).min(Duration::from_secs(10));
                continue;
            }
            Err(_) => {
                warn!(relay = %url, "connect timed out");
                continue;
            }
        };
        delay = Duration::from_millis(200);
        let (mut tx, mut frames) = ws.split();
        let mut in_flight: u64 = 0;
        loop {
            if let Some(msg) = pending.take() {
                if tx.send(Message::text(msg.clone())).await.is_err() {
                    pending = Some(msg);
                    stats.lost.fetch_add(in_flight, Ordering::Relaxed);
                    continue 'reconnect;
                }
                in_flight += 1;
            }
            tokio::select! {
                _ = stop.cancelled() => {
                    let _ = tx.close().await;
                    return;
                }
                msg = rx.recv() => match msg {
                    Some(m) => pending = Some(m),
                    None => {
                        // Publisher dropped: wait briefly for outstanding answers, then leave.
                        let _ = tokio::time::timeout(Duration::from_secs(5), async {
                            while in_flight > 0 {
                                match frames.next().await {
                                    Some(Ok(Message::Text(t))) => {
                                        if count_ok(&t, &stats) { in_flight -= 1; }
                                    }
                                    Some(Ok(_)) => {}
                                    _ => break,
                                }
                            }
                        }).await;
                        return;
                    }
                },
                frame = frames.next() => match frame {
                    Some(Ok(Message::Text(t))) => {
                        if count_ok(&t, &stats) {
                            in_flight = in_flight.saturating_sub(1);
                        }
                    }
                    Some(Ok(Message::Close(_))) | None | Some(Err(_)) => {
                        debug!(relay = %url, in_flight, "publish connection closed");
                        stats.lost.fetch_add(in_flight, Ordering::Relaxed);
                        continue 'reconnect;
                    }
                    Some(Ok(_)) => {}
                },
            }
        }
    }
}

fn count_ok(text: &str, stats: &PublishStats) -> bool {
    match RelayMessage::parse(text) {
        Ok(RelayMessage::Ok { accepted: true, .. }) => {
            stats.accepted.fetch_add(1, Ordering::Relaxed);
            true
        }
        Ok(RelayMessage::Ok {
            accepted: false,
            message,
            ..
        }) => {
            // A duplicate is not a failure: the relay already has the event.
            if message.starts_with("duplicate") {
                stats.accepted.fetch_add(1, Ordering::Relaxed);
            } else {
                debug!(message, "relay refused an event");
                stats.refused.fetch_add(1, Ordering::Relaxed);
            }
            true
        }
        _ => false,
    }
}
