//! Integration-test helpers. The test command (`scripts/test.sh`) starts Redis and the ClickHouse
//! stand-in and exports their URLs; a test that needs a service and does not find it fails with a
//! message saying how to run it, never passes silently.

use std::net::TcpListener as StdListener;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::config::{ClickHouseArgs, RedisArgs};

fn required_env(name: &str, what: &str) -> String {
    match std::env::var(name) {
        Ok(v) if !v.trim().is_empty() => v,
        _ => panic!(
            "{name} is not set: this test needs {what}. Run the suite with scripts/test.sh, which starts \
             the services and sets it."
        ),
    }
}

/// Redis URL of the test run.
pub fn redis_url() -> String {
    required_env("DVMDASH_TEST_REDIS_URL", "a Redis server")
}

/// ClickHouse (or stand-in) HTTP URL of the test run.
pub fn clickhouse_url() -> String {
    required_env("DVMDASH_TEST_CLICKHOUSE_URL", "ClickHouse or the dev stand-in")
}

/// A name no other test uses (for databases, key prefixes, consumers).
pub fn unique(prefix: &str) -> String {
    format!("{prefix}_{}_{:08x}", std::process::id(), rand::random::<u32>())
}

/// Redis and ClickHouse settings isolated for one test: a fresh key prefix and database.
pub fn isolated() -> (RedisArgs, ClickHouseArgs) {
    let redis = RedisArgs {
        redis_url: crate::config::Secret::new(redis_url()),
        redis_prefix: unique("t"),
    };
    let clickhouse = ClickHouseArgs::new(clickhouse_url(), unique("dvmdash_test"));
    (redis, clickhouse)
}

/// A free loopback port (bound and released; fine for tests).
pub fn free_port() -> u16 {
    StdListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("binding an ephemeral loopback port should work")
}

/// Polls `check` until it returns `Some`, or panics with `what` after `timeout`.
pub async fn wait_for<T, F, Fut>(what: &str, timeout: Duration, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    wait_until(what, timeout, || {
        let fut = check();
        async move { fut.await.ok_or_else(String::new) }
    })
    .await
}

/// Polls `check` until it returns `Ok`; on timeout panics with `what` and the last `Err` text,
/// so a failure shows what was observed instead of only that time ran out.
pub async fn wait_until<T, F, Fut>(what: &str, timeout: Duration, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, String>>,
{
    let deadline = Instant::now() + timeout;
    loop {
        let last = match check().await {
            Ok(v) => return v,
            Err(e) => e,
        };
        assert!(
            Instant::now() < deadline,
            "timed out after {timeout:?} waiting for {what}; last seen: {last}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn wait_port(port: u16, timeout: Duration, what: &str) {
    wait_for(what, timeout, || async move {
        tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .ok()
            .map(|_| ())
    })
    .await
}

/// A child process group killed on drop, so no server outlives its test.
struct Group(Child);

impl Drop for Group {
    fn drop(&mut self) {
        let pid = self.0.id();
        let _ = Command::new("kill")
            .args(["-KILL", "--", &format!("-{pid}")])
            .status();
        let _ = self.0.wait();
    }
}

fn spawn_group(cmd: &mut Command) -> std::io::Result<Group> {
    use std::os::unix::process::CommandExt as _;
    cmd.process_group(0).stdin(Stdio::null()).spawn().map(Group)
}

/// The independent Python relay (PyPI `nostr-relay`, SQLite storage) on a free port.
pub struct PythonRelay {
    pub url: String,
    _process: Group,
    _dir: tempfile::TempDir,
}

impl PythonRelay {
    pub async fn start() -> Self {
        let bin = required_env("DVMDASH_TEST_NOSTR_RELAY", "the Python nostr-relay executable");
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

/// A private ClickHouse stand-in (own data directory), for tests that restart it.
pub struct ChDev {
    pub url: String,
    pub dir: PathBuf,
    process: Option<Group>,
}

impl ChDev {
    /// Starts the stand-in on `dir` (created if needed), on a free port.
    pub async fn start(dir: PathBuf) -> Self {
        Self::start_at(dir, 0).await
    }

    /// Starts the stand-in on `dir` and `port` (0 = any free port); restarting on the same port keeps
    /// clients' URLs valid.
    pub async fn start_at(dir: PathBuf, port: u16) -> Self {
        let python = required_env("DVMDASH_TEST_CHDEV_PYTHON", "the ClickHouse stand-in's Python");
        let script = required_env(
            "DVMDASH_TEST_CHDEV_SCRIPT",
            "the ClickHouse stand-in's entry script",
        );
        std::fs::create_dir_all(&dir).expect("stand-in dir");
        let port_file = dir.with_extension("port");
        let _ = std::fs::remove_file(&port_file);
        let log = std::fs::File::create(dir.with_extension("log")).expect("stand-in log");
        let process = spawn_group(
            Command::new(&python)
                .arg(&script)
                .arg("--path")
                .arg(&dir)
                .arg("--port")
                .arg(port.to_string())
                .arg("--port-file")
                .arg(&port_file)
                .stdout(log.try_clone().expect("log handle"))
                .stderr(log),
        )
        .unwrap_or_else(|e| panic!("cannot start the stand-in: {e}"));
        let port: u16 = wait_for("the stand-in's port file", Duration::from_secs(60), || {
            let pf = port_file.clone();
            async move {
                std::fs::read_to_string(pf)
                    .ok()
                    .and_then(|s| s.trim().parse().ok())
            }
        })
        .await;
        ChDev {
            url: format!("http://127.0.0.1:{port}"),
            dir,
            process: Some(process),
        }
    }

    /// Kills the stand-in with SIGKILL (no chance to flush anything).
    pub fn kill(&mut self) {
        self.process.take();
    }

    /// The port it listens on.
    pub fn port(&self) -> u16 {
        self.url
            .rsplit(':')
            .next()
            .and_then(|p| p.parse().ok())
            .unwrap_or(0)
    }
}

/// A private Redis server (own port and data directory, append-only file on), for tests that
/// restart Redis.
pub struct RedisServer {
    pub port: u16,
    pub dir: PathBuf,
    process: Option<Group>,
}

impl RedisServer {
    pub async fn start(dir: PathBuf, port: u16) -> Self {
        let bin = required_env("DVMDASH_TEST_REDIS_SERVER", "the redis-server executable");
        std::fs::create_dir_all(&dir).expect("redis dir");
        let port = if port == 0 { free_port() } else { port };
        let log = std::fs::File::create(dir.join("redis.log")).expect("redis log");
        let process = spawn_group(
            Command::new(&bin)
                .args([
                    "--bind",
                    "127.0.0.1",
                    "--port",
                    &port.to_string(),
                    "--save",
                    "",
                    "--appendonly",
                    "yes",
                ])
                .args(["--appendfsync", "always", "--daemonize", "no"])
                .arg("--dir")
                .arg(&dir)
                .stdout(log.try_clone().expect("log handle"))
                .stderr(log),
        )
        .unwrap_or_else(|e| panic!("cannot start {bin}: {e}"));
        wait_port(port, Duration::from_secs(30), "redis to listen").await;
        RedisServer {
            port,
            dir,
            process: Some(process),
        }
    }

    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    /// Stops Redis with SIGTERM (it writes its data and exits) and waits for the exit.
    pub fn stop(&mut self) {
        if let Some(mut g) = self.process.take() {
            let _ = Command::new("kill")
                .args(["-TERM", &g.0.id().to_string()])
                .status();
            let _ = g.0.wait();
            std::mem::forget(g);
        }
    }
}

/// A `dvmdash` role run as its own process (so it can be killed with SIGKILL), with its own
/// environment. Killed with its process group on drop.
pub struct RoleProcess {
    group: Option<Group>,
    pub pid: u32,
}

impl RoleProcess {
    /// Starts `bin role` with `env` added to the test's environment.
    pub fn spawn(bin: &str, role: &str, env: &[(&str, String)]) -> Self {
        let mut cmd = Command::new(bin);
        cmd.arg(role)
            .env("DVMDASH_METRICS_ADDR", "127.0.0.1:0")
            .env("DVMDASH_LOG", "warn");
        for (k, v) in env {
            cmd.env(k, v);
        }
        let group = spawn_group(cmd.stdout(Stdio::null()))
            .unwrap_or_else(|e| panic!("cannot start {bin} {role}: {e}"));
        let pid = group.0.id();
        RoleProcess {
            group: Some(group),
            pid,
        }
    }

    /// SIGKILL: the process gets no chance to finish anything.
    pub fn kill(&mut self) {
        self.group.take();
    }

    /// SIGINT, then waits up to `timeout` for a clean exit; returns whether it exited successfully.
    pub fn interrupt(&mut self, timeout: Duration) -> bool {
        let Some(g) = self.group.as_mut() else {
            return false;
        };
        let _ = Command::new("kill")
            .args(["-INT", &g.0.id().to_string()])
            .status();
        let deadline = Instant::now() + timeout;
        while Instant::now() < deadline {
            if let Ok(Some(status)) = g.0.try_wait() {
                if let Some(g) = self.group.take() {
                    std::mem::forget(g);
                }
                return status.success();
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        false
    }

    pub fn is_running(&mut self) -> bool {
        self.group
            .as_mut()
            .is_some_and(|g| matches!(g.0.try_wait(), Ok(None)))
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

/// A relay that stores events but never pushes them live, as busy relays do to slow subscribers:
/// every REQ other than the collector's `live` one gets the stored events its first filter's
/// `since`, `until` and `limit` select, then EOSE.
pub struct StoreOnlyRelay {
    pub url: String,
    events: std::sync::Arc<std::sync::Mutex<Vec<String>>>,
    stop: tokio_util::sync::CancellationToken,
}

impl StoreOnlyRelay {
    pub async fn start() -> Self {
        use futures_util::{SinkExt as _, StreamExt as _};
        use tokio_tungstenite::tungstenite::Message;
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind store-only relay");
        let url = format!("ws://{}", listener.local_addr().expect("addr"));
        let stop = tokio_util::sync::CancellationToken::new();
        let events = std::sync::Arc::new(std::sync::Mutex::new(Vec::<String>::new()));
        let (s, store) = (stop.clone(), events.clone());
        tokio::spawn(async move {
            loop {
                let (sock, _) = tokio::select! {
                    _ = s.cancelled() => return,
                    r = listener.accept() => match r { Ok(v) => v, Err(_) => continue },
                };
                let (s, store) = (s.clone(), store.clone());
                tokio::spawn(async move {
                    let Ok(ws) = tokio_tungstenite::accept_async(sock).await else {
                        return;
                    };
                    let (mut tx, mut rx) = ws.split();
                    loop {
                        let msg = tokio::select! {
                            _ = s.cancelled() => return,
                            m = rx.next() => m,
                        };
                        let Some(Ok(Message::Text(text))) = msg else {
                            if msg.is_none() { return } else { continue }
                        };
                        let Ok(serde_json::Value::Array(parts)) = serde_json::from_str(&text) else {
                            continue;
                        };
                        if parts.first().and_then(|v| v.as_str()) != Some("REQ") {
                            continue;
                        }
                        let sub = parts.get(1).and_then(|v| v.as_str()).unwrap_or("").to_owned();
                        let mut frames: Vec<String> = Vec::new();
                        if sub != "live" {
                            // Honour since, until and limit (newest first), as relays do.
                            let filter = parts.get(2).cloned().unwrap_or_default();
                            let bound = |k: &str| filter.get(k).and_then(serde_json::Value::as_u64);
                            let (since, until) =
                                (bound("since").unwrap_or(0), bound("until").unwrap_or(u64::MAX));
                            let limit = bound("limit").unwrap_or(u64::MAX) as usize;
                            let mut stored: Vec<(u64, String)> = store
                                .lock()
                                .map(|v| v.clone())
                                .unwrap_or_default()
                                .into_iter()
                                .filter_map(|e| {
                                    let at = serde_json::from_str::<serde_json::Value>(&e)
                                        .ok()?
                                        .get("created_at")?
                                        .as_u64()?;
                                    (since..=until).contains(&at).then_some((at, e))
                                })
                                .collect();
                            stored.sort_by_key(|e| std::cmp::Reverse(e.0));
                            stored.truncate(limit);
                            frames.extend(
                                stored
                                    .iter()
                                    .map(|(_, e)| format!("[\"EVENT\",{},{e}]", serde_json::json!(sub))),
                            );
                        }
                        frames.push(serde_json::json!(["EOSE", sub]).to_string());
                        for f in frames {
                            if tx.send(Message::text(f)).await.is_err() {
                                return;
                            }
                        }
                    }
                });
            }
        });
        StoreOnlyRelay { url, events, stop }
    }

    /// Stores an event (JSON text); it is served from the next REQ on, never pushed.
    pub fn store(&self, event_json: String) {
        if let Ok(mut v) = self.events.lock() {
            v.push(event_json);
        }
    }
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
