//! Relays for tests: the independent Python relay (PyPI `nostr-relay`, software nobody here wrote),
//! and two hand-made ones that behave as no honest relay would, to test the collector against them.

use std::process::Command;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::env::{free_port, required_for};
use crate::process::{Group, spawn_group};
use crate::wait::wait_port;

/// The independent Python relay (PyPI `nostr-relay`, SQLite storage) on a free port.
pub struct PythonRelay {
    pub url: String,
    _process: Group,
    _dir: tempfile::TempDir,
}

impl PythonRelay {
    pub async fn start() -> Self {
        let bin = required_for("DVMDASH_TEST_NOSTR_RELAY", "the Python nostr-relay executable");
        let dir = tempfile::tempdir().expect("temp dir");
        let port = free_port();
        let config = format!(
            "DEBUG: false\nrelay_name: dvmdash test relay\nstorage:\n  sqlalchemy.url: sqlite+aiosqlite:///{db}\n  \
             num_concurrent_reqs: 10\n  num_concurrent_adds: 2\n  validators:\n    - nostr_relay.validators.is_not_too_large\n    \
             - nostr_relay.validators.is_signed\nverification:\n  nip05_verification: disabled\ngunicorn:\n  bind: 127.0.0.1:{port}\n  \
             workers: 1\n  loglevel: warning\n  reload: false\nmax_event_size: 262144\nsubscription_limit: 64\n\
             message_timeout: 1800\nmax_limit: 6000\nhellthread_limit: 100\n",
            db = dir.path().join("relay.sqlite3").display(),
        );
        let cfg = dir.path().join("relay.yaml");
        std::fs::write(&cfg, config).expect("write relay config");
        let log = std::fs::File::create(dir.path().join("relay.log")).expect("relay log");
        let process = spawn_group(
            Command::new(&bin)
                .arg("-c")
                .arg(&cfg)
                .arg("serve")
                .current_dir(dir.path())
                .stdout(log.try_clone().expect("log handle"))
                .stderr(log),
        )
        .unwrap_or_else(|e| panic!("cannot start {bin}: {e}"));
        wait_port(port, Duration::from_secs(30), "the Python relay to listen").await;
        PythonRelay {
            url: format!("ws://127.0.0.1:{port}"),
            _process: process,
            _dir: dir,
        }
    }
}

impl PythonRelay {
    /// The end of the relay's own log, for diagnosing a failed test.
    pub fn log_tail(&self, max_bytes: usize) -> String {
        let text = std::fs::read_to_string(self._dir.path().join("relay.log")).unwrap_or_default();
        let mut start = text.len().saturating_sub(max_bytes);
        while !text.is_char_boundary(start) {
            start += 1;
        }
        text[start..].to_owned()
    }
}

/// Which of `ids` (hex) the relay at `url` returns for an `ids` filter: asks the relay directly,
/// to tell "the relay never stored it" from "we did not collect it" when a test fails.
pub async fn relay_has(url: &str, ids: &[String]) -> Result<Vec<String>, String> {
    use futures_util::{SinkExt as _, StreamExt as _};
    use tokio_tungstenite::tungstenite::Message;
    let (mut ws, _) = tokio_tungstenite::connect_async(url)
        .await
        .map_err(|e| e.to_string())?;
    let req = serde_json::json!(["REQ", "probe", {"ids": ids}]).to_string();
    ws.send(Message::text(req)).await.map_err(|e| e.to_string())?;
    let mut found = Vec::new();
    loop {
        let msg = tokio::time::timeout(Duration::from_secs(10), ws.next())
            .await
            .map_err(|_| "no EOSE within 10 s".to_owned())?
            .ok_or("connection closed")?
            .map_err(|e| e.to_string())?;
        let Message::Text(text) = msg else { continue };
        let v: serde_json::Value = serde_json::from_str(&text).map_err(|e| e.to_string())?;
        match v.get(0).and_then(|k| k.as_str()) {
            Some("EVENT") => found.extend(v[2]["id"].as_str().map(str::to_owned)),
            Some("EOSE") | Some("CLOSED") => return Ok(found),
            _ => {}
        }
    }
}

/// A relay that answers every REQ with a fixed script of raw frames, then `EOSE`, then silence:
/// for feeding the collector events and messages no honest relay would send.
pub struct ScriptedRelay {
    pub url: String,
    stop: tokio_util::sync::CancellationToken,
}

impl ScriptedRelay {
    pub async fn start(frames: Vec<String>) -> Self {
        use futures_util::{SinkExt as _, StreamExt as _};
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind scripted relay");
        let url = format!("ws://{}", listener.local_addr().expect("addr"));
        let stop = tokio_util::sync::CancellationToken::new();
        let s = stop.clone();
        tokio::spawn(async move {
            loop {
                let (sock, _) = tokio::select! {
                    _ = s.cancelled() => return,
                    r = listener.accept() => match r { Ok(v) => v, Err(_) => continue },
                };
                let frames = frames.clone();
                let s = s.clone();
                tokio::spawn(async move {
                    let Ok(ws) = tokio_tungstenite::accept_async(sock).await else {
                        return;
                    };
                    let (mut tx, mut rx) = ws.split();
                    let mut answered = false;
                    loop {
                        let msg = tokio::select! {
                            _ = s.cancelled() => return,
                            m = rx.next() => m,
                        };
                        let Some(Ok(tokio_tungstenite::tungstenite::Message::Text(text))) = msg else {
                            if msg.is_none() { return } else { continue }
                        };
                        let Ok(serde_json::Value::Array(parts)) =
                            serde_json::from_str::<serde_json::Value>(&text)
                        else {
                            continue;
                        };
                        if parts.first().and_then(|v| v.as_str()) != Some("REQ") {
                            continue;
                        }
                        let sub = parts.get(1).and_then(|v| v.as_str()).unwrap_or("").to_owned();
                        // The script goes out once per connection, on the first subscription.
                        if !answered {
                            answered = true;
                            for f in &frames {
                                let f = f.replace("{sub}", &sub);
                                if tx
                                    .send(tokio_tungstenite::tungstenite::Message::text(f))
                                    .await
                                    .is_err()
                                {
                                    return;
                                }
                            }
                        }
                        let eose = serde_json::json!(["EOSE", sub]).to_string();
                        if tx
                            .send(tokio_tungstenite::tungstenite::Message::text(eose))
                            .await
                            .is_err()
                        {
                            return;
                        }
                    }
                });
            }
        });
        ScriptedRelay { url, stop }
    }
}

/// How a [`StoreOnlyRelay`] reads filters: NIP-01 leaves room for relays to differ here.
#[derive(Debug, Clone, Copy)]
pub struct StoreRules {
    /// Read `until` as `created_at < until` (NIP-01 says `<=`).
    pub exclusive_until: bool,
    /// The most events one REQ returns, whatever its `limit`.
    pub cap: usize,
}

impl Default for StoreRules {
    fn default() -> Self {
        StoreRules {
            exclusive_until: false,
            cap: usize::MAX,
        }
    }
}

/// A relay that stores events but never pushes them live, as busy relays do to slow subscribers:
/// every REQ other than the collector's `live` one gets the stored events its first filter's
/// `kinds`, `since`, `until` and `limit` select (newest first, read by its [`StoreRules`]), then EOSE.
/// It does not speak NIP-77 and says so with a NOTICE.
pub struct StoreOnlyRelay {
    pub url: String,
    events: Arc<Mutex<Vec<Stored>>>,
    stop: tokio_util::sync::CancellationToken,
}

/// An event as stored: the fields a filter looks at, and its JSON.
#[derive(Clone)]
struct Stored {
    created_at: u64,
    kind: u64,
    json: String,
}

impl StoreOnlyRelay {
    pub async fn start() -> Self {
        Self::start_with(StoreRules::default()).await
    }

    pub async fn start_with(rules: StoreRules) -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind store-only relay");
        let url = format!("ws://{}", listener.local_addr().expect("addr"));
        let stop = tokio_util::sync::CancellationToken::new();
        let events = Arc::new(Mutex::new(Vec::new()));
        let (s, store) = (stop.clone(), events.clone());
        tokio::spawn(async move {
            loop {
                let (sock, _) = tokio::select! {
                    _ = s.cancelled() => return,
                    r = listener.accept() => match r { Ok(v) => v, Err(_) => continue },
                };
                tokio::spawn(serve_stored(sock, store.clone(), rules, s.clone()));
            }
        });
        StoreOnlyRelay { url, events, stop }
    }

    /// Stores an event (JSON text); it is served from the next REQ on, never pushed.
    pub fn store(&self, event_json: String) {
        let v: serde_json::Value = serde_json::from_str(&event_json).expect("event JSON");
        let field = |k: &str| v.get(k).and_then(serde_json::Value::as_u64).unwrap_or(0);
        let stored = Stored {
            created_at: field("created_at"),
            kind: field("kind"),
            json: event_json,
        };
        if let Ok(mut v) = self.events.lock() {
            v.push(stored);
        }
    }
}

/// One connection to a [`StoreOnlyRelay`].
async fn serve_stored(
    sock: tokio::net::TcpStream,
    store: Arc<Mutex<Vec<Stored>>>,
    rules: StoreRules,
    stop: tokio_util::sync::CancellationToken,
) {
    use futures_util::{SinkExt as _, StreamExt as _};
    use tokio_tungstenite::tungstenite::Message;
    let Ok(ws) = tokio_tungstenite::accept_async(sock).await else {
        return;
    };
    let (mut tx, mut rx) = ws.split();
    loop {
        let msg = tokio::select! {
            _ = stop.cancelled() => return,
            m = rx.next() => m,
        };
        let Some(Ok(Message::Text(text))) = msg else {
            if msg.is_none() { return } else { continue }
        };
        let Ok(serde_json::Value::Array(parts)) = serde_json::from_str(&text) else {
            continue;
        };
        match parts.first().and_then(|v| v.as_str()) {
            Some("REQ") => {}
            // As relays that do not know a message say so: NIP-77 is not spoken here.
            Some(label) if label.starts_with("NEG-") => {
                let notice = serde_json::json!(["NOTICE", format!("unsupported: {label}")]).to_string();
                if tx.send(Message::text(notice)).await.is_err() {
                    return;
                }
                continue;
            }
            _ => continue,
        }
        let sub = parts.get(1).and_then(|v| v.as_str()).unwrap_or("").to_owned();
        let mut frames: Vec<String> = Vec::new();
        if sub != "live" {
            let filter = parts.get(2).cloned().unwrap_or_default();
            let stored = store.lock().map(|v| v.clone()).unwrap_or_default();
            frames.extend(
                select(&stored, &filter, rules)
                    .into_iter()
                    .map(|e| format!("[\"EVENT\",{},{}]", serde_json::json!(sub), e.json)),
            );
        }
        frames.push(serde_json::json!(["EOSE", sub]).to_string());
        for f in frames {
            if tx.send(Message::text(f)).await.is_err() {
                return;
            }
        }
    }
}

/// The stored events one filter selects, newest first, as a relay following `rules` would.
fn select(stored: &[Stored], filter: &serde_json::Value, rules: StoreRules) -> Vec<Stored> {
    let bound = |k: &str| filter.get(k).and_then(serde_json::Value::as_u64);
    let (since, until) = (bound("since").unwrap_or(0), bound("until").unwrap_or(u64::MAX));
    let limit = (bound("limit").unwrap_or(u64::MAX) as usize).min(rules.cap);
    let kinds: Option<Vec<u64>> = filter
        .get("kinds")
        .and_then(|k| k.as_array())
        .map(|a| a.iter().filter_map(serde_json::Value::as_u64).collect());
    let mut hits: Vec<Stored> = stored
        .iter()
        .filter(|e| {
            let below = if rules.exclusive_until {
                e.created_at < until
            } else {
                e.created_at <= until
            };
            e.created_at >= since && below && kinds.as_ref().is_none_or(|k| k.contains(&e.kind))
        })
        .cloned()
        .collect();
    hits.sort_by_key(|e| std::cmp::Reverse(e.created_at));
    hits.truncate(limit);
    hits
}

impl Drop for StoreOnlyRelay {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}

impl Drop for ScriptedRelay {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}

/// rust-nostr's relay (it answers NIP-77 reconciliation) with its in-memory database at hand, so a
/// test can store events the relay holds but never pushes to subscribers.
pub async fn nostr_relay_with_database() -> (
    nostr_relay_builder::LocalRelay,
    String,
    Arc<nostr_relay_builder::prelude::MemoryDatabase>,
) {
    use nostr_relay_builder::prelude::*;
    let port = free_port();
    let database = Arc::new(MemoryDatabase::with_opts(MemoryDatabaseOptions {
        events: true,
        max_events: None,
    }));
    let builder = RelayBuilder::default()
        .addr(std::net::IpAddr::V4(std::net::Ipv4Addr::LOCALHOST))
        .port(port)
        .database(database.clone())
        .rate_limit(RateLimit {
            max_reqs: 1000,
            notes_per_minute: 1_000_000,
        });
    let relay = LocalRelay::new(builder);
    relay.run().await.expect("start the rust-nostr relay");
    let url = relay.url().await.to_string().trim_end_matches('/').to_owned();
    (relay, url, database)
}
