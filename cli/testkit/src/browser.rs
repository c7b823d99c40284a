//! Headless Chromium for the browser tests, driven through chromedriver (fantoccini), with the
//! flags this machine needs (no sandbox as root, no background networking on a closed network).

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use fantoccini::{Client, ClientBuilder};

use crate::env::{free_port, required_for};

/// Kills the whole process group on drop, so a failing test leaves nothing behind.
pub struct Proc(pub Child);

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = Command::new("kill")
            .args(["-KILL", "--", &format!("-{}", self.0.id())])
            .status();
        let _ = self.0.wait();
    }
}

/// Spawns `cmd` in its own process group.
pub fn spawn(cmd: &mut Command) -> Proc {
    use std::os::unix::process::CommandExt as _;
    Proc(cmd.process_group(0).spawn().expect("spawn"))
}

/// A browser session; chromedriver and the profile directory live as long as it does.
pub struct Session {
    pub client: Client,
    _driver: Proc,
    _profile: tempfile::TempDir,
}

/// Starts chromedriver and a headless Chromium with a fresh profile. `console_log` keeps the
/// browser console for chromedriver's log endpoint.
pub async fn start(width: u32, height: u32, console_log: bool) -> Session {
    let port = free_port();
    let driver = spawn(
        Command::new(required_for("DVMDASH_TEST_CHROMEDRIVER", "chromedriver"))
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null()),
    );
    let profile = tempfile::tempdir().expect("profile dir");
    let mut caps = serde_json::json!({
        "goog:chromeOptions": {
            "binary": required_for("DVMDASH_TEST_CHROME", "Chromium"),
            "args": ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                     "--disable-background-networking", "--disable-component-update", "--disable-sync",
                     "--hide-scrollbars", format!("--window-size={width},{height}"),
                     format!("--user-data-dir={}", profile.path().display())]
        }
    });
    if console_log {
        caps["goog:loggingPrefs"] = serde_json::json!({ "browser": "ALL" });
    }
    let caps: serde_json::Map<String, serde_json::Value> =
        serde_json::from_value(caps).expect("capabilities");
    let deadline = Instant::now() + Duration::from_secs(30);
    let client = loop {
        let connector = hyper_util::client::legacy::connect::HttpConnector::new();
        match ClientBuilder::new(connector)
            .capabilities(caps.clone())
            .connect(&format!("http://127.0.0.1:{port}"))
            .await
        {
            Ok(c) => break c,
            Err(_) if Instant::now() < deadline => tokio::time::sleep(Duration::from_millis(200)).await,
            Err(e) => panic!("cannot start a browser session: {e}"),
        }
    };
    Session {
        client,
        _driver: driver,
        _profile: profile,
    }
}
