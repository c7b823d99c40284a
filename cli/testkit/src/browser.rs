//! Headless Chromium for the browser tests, driven through chromedriver (fantoccini), with the
//! flags this machine needs (no sandbox as root, no background networking on a closed network).

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use std::path::PathBuf;

use fantoccini::wd::WebDriverCompatibleCommand;
use fantoccini::{Client, ClientBuilder, Locator};

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

/// chromedriver's log endpoint (not in the W3C protocol): the browser console since the last call.
#[derive(Debug)]
struct BrowserLog;

impl WebDriverCompatibleCommand for BrowserLog {
    fn endpoint(&self, base: &url::Url, session: Option<&str>) -> Result<url::Url, url::ParseError> {
        base.join(&format!("session/{}/se/log", session.unwrap_or_default()))
    }
    fn method_and_body(&self, _: &url::Url) -> (http::Method, Option<String>) {
        (http::Method::POST, Some(r#"{"type":"browser"}"#.to_owned()))
    }
}

/// One browser tab on the dashboard at `base`, with the waits and checks the browser tests share.
/// Screenshots go to `<target>/screenshots/`.
pub struct Page {
    _session: Session,
    pub client: Client,
    base: String,
    pub shots: PathBuf,
}

impl Page {
    pub async fn start(base: &str) -> Self {
        let session = start(1280, 900, true).await;
        let target = std::env::var("CARGO_TARGET_DIR")
            .map(PathBuf::from)
            .unwrap_or_else(|_| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../target"));
        let shots = target.join("screenshots");
        std::fs::create_dir_all(&shots).expect("screenshot dir");
        Page {
            client: session.client.clone(),
            _session: session,
            base: base.to_owned(),
            shots,
        }
    }

    pub async fn open(&self, path: &str) {
        self.client
            .goto(&format!("{}{path}", self.base))
            .await
            .unwrap_or_else(|e| panic!("open {path}: {e}"));
    }

    /// Console messages at error level since the last call, minus those `allowed` names.
    pub async fn console_errors(&self, allowed: &[&str]) -> Vec<String> {
        let log = self.client.issue_cmd(BrowserLog).await.expect("browser log");
        log.as_array()
            .into_iter()
            .flatten()
            .filter(|e| e["level"] == "SEVERE")
            .map(|e| e["message"].as_str().unwrap_or_default().to_owned())
            .filter(|m| !allowed.iter().any(|a| m.contains(a)))
            .collect()
    }

    pub async fn assert_clean(&self, page: &str, allowed: &[&str]) {
        let errors = self.console_errors(allowed).await;
        assert!(errors.is_empty(), "console errors on {page}: {errors:#?}");
    }

    pub async fn text(&self, css: &str) -> Option<String> {
        // A page that re-renders can replace the element between finding it and reading it
        // (a stale element): find it again rather than report it empty.
        for _ in 0..5 {
            let el = self.client.find(Locator::Css(css)).await.ok()?;
            if let Ok(text) = el.text().await {
                return Some(text);
            }
        }
        None
    }

    /// Waits until `css` shows `want` (numbers compared without thousands separators).
    pub async fn wait_text(&self, css: &str, want: &str) {
        let mut last = None;
        let deadline = Instant::now() + Duration::from_secs(30);
        while Instant::now() < deadline {
            last = self.text(css).await;
            if last.as_deref().map(|t| t.replace(',', "").trim().to_owned()) == Some(want.to_owned()) {
                return;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("{css} shows {last:?}, want {want:?} (url {:?})", self.url().await);
    }

    /// Waits until `css` shows text containing `needle`.
    pub async fn wait_contains(&self, css: &str, needle: &str) {
        let mut last = None;
        let deadline = Instant::now() + Duration::from_secs(30);
        while Instant::now() < deadline {
            last = self.text(css).await;
            if last.as_deref().is_some_and(|t| t.contains(needle)) {
                return;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("{css} shows {last:?}, want it to contain {needle:?}");
    }

    pub async fn wait_present(&self, css: &str) {
        let deadline = Instant::now() + Duration::from_secs(30);
        while Instant::now() < deadline {
            if self.client.find(Locator::Css(css)).await.is_ok() {
                return;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("{css} never appeared on {:?}", self.url().await);
    }

    pub async fn count(&self, css: &str) -> usize {
        self.client
            .find_all(Locator::Css(css))
            .await
            .map(|v| v.len())
            .unwrap_or(0)
    }

    pub async fn wait_count(&self, css: &str, want: usize) {
        let deadline = Instant::now() + Duration::from_secs(30);
        let mut n = 0;
        while Instant::now() < deadline {
            n = self.count(css).await;
            if n == want {
                return;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("{css}: {n} elements, want {want} on {:?}", self.url().await);
    }

    pub async fn url(&self) -> String {
        self.client
            .current_url()
            .await
            .map(|u| u.to_string())
            .unwrap_or_default()
    }

    pub async fn wait_url(&self, has: &str, lacks: &str) {
        let deadline = Instant::now() + Duration::from_secs(15);
        let mut u = String::new();
        while Instant::now() < deadline {
            u = self.url().await;
            if u.contains(has) && (lacks.is_empty() || !u.contains(lacks)) {
                return;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("url {u} should contain {has:?} and not {lacks:?}");
    }

    pub async fn click(&self, css: &str) {
        self.client
            .find(Locator::Css(css))
            .await
            .unwrap_or_else(|e| panic!("find {css}: {e}"))
            .click()
            .await
            .unwrap_or_else(|e| panic!("click {css}: {e}"));
    }

    pub async fn js(&self, script: &str) -> serde_json::Value {
        self.client.execute(script, vec![]).await.expect("script")
    }

    /// Waits up to `within` until `script` returns `want`; panics with `what` and the last value.
    pub async fn wait_js(&self, script: &str, want: &serde_json::Value, within: Duration, what: &str) {
        let deadline = Instant::now() + within;
        let mut seen = self.js(script).await;
        while &seen != want && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(100)).await;
            seen = self.js(script).await;
        }
        assert_eq!(&seen, want, "{what}");
    }

    /// Opens `/admin` and unlocks it with `token` through its login form.
    pub async fn admin_login(&self, token: &str) {
        self.open("/admin").await;
        self.wait_present("[data-admin-login]").await;
        self.js(&fill_and_submit("[data-admin-login] form", token)).await;
    }

    /// Reloads the current page in a window of `width`×`height` with `theme` (`light` or `dark`)
    /// as the visitor's saved choice: the start of every screenshot in both themes and widths.
    pub async fn reload_as(&self, theme: &str, width: u32, height: u32) {
        self.client
            .set_window_size(width, height)
            .await
            .expect("window size");
        self.js(&format!("localStorage.setItem('dvmdash-theme', '{theme}')"))
            .await;
        self.client.refresh().await.expect("reload");
    }

    /// At phone widths (below 500 px), fails when the page scrolls sideways.
    pub async fn assert_fits(&self, what: &str, width: u32) {
        if width >= 500 {
            return;
        }
        let overflow = self
            .js("return document.documentElement.scrollWidth - document.documentElement.clientWidth")
            .await;
        assert!(
            overflow.as_i64().unwrap_or(1) <= 0,
            "{what} scrolls sideways at {width} px by {overflow}"
        );
    }

    pub async fn screenshot(&self, name: &str) {
        let png = self.client.screenshot().await.expect("screenshot");
        std::fs::write(self.shots.join(format!("{name}.png")), png).expect("write screenshot");
    }
}

/// Script that types `value` into the first input of the form matching `form_css` (firing the
/// input event the UI listens to) and submits the form.
pub fn fill_and_submit(form_css: &str, value: &str) -> String {
    format!(
        "const i = document.querySelector({form_css:?} + ' input'); i.value = {value:?}; \
         i.dispatchEvent(new Event('input', {{bubbles: true}})); i.form.requestSubmit();"
    )
}
