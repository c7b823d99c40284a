//! Servers a test owns: private Redis and ClickHouse stand-in instances it can stop and restart,
//! and dvmdash roles run as processes it can SIGKILL. Every child is its own process group, killed
//! on drop, so nothing outlives a failing test.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::env::{free_port, required_for};
use crate::wait::{wait_for, wait_port};

/// A child process group killed on drop, so no server outlives its test.
pub(crate) struct Group(Child);

impl Drop for Group {
    fn drop(&mut self) {
        let pid = self.0.id();
        let _ = Command::new("kill")
            .args(["-KILL", "--", &format!("-{pid}")])
            .status();
        let _ = self.0.wait();
    }
}

pub(crate) fn spawn_group(cmd: &mut Command) -> std::io::Result<Group> {
    use std::os::unix::process::CommandExt as _;
    cmd.process_group(0).stdin(Stdio::null()).spawn().map(Group)
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
        let python = required_for("DVMDASH_TEST_CHDEV_PYTHON", "the ClickHouse stand-in's Python");
        let script = required_for(
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
        let bin = required_for("DVMDASH_TEST_REDIS_SERVER", "the redis-server executable");
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
/// environment. Killed with its process group on drop. Its log (warnings and errors) goes to a file
/// rather than the test output, where outage tests would bury the result under expected retry
/// warnings; a test that fails prints the end of each of its processes' logs.
pub struct RoleProcess {
    group: Option<Group>,
    pub pid: u32,
    role: String,
    log: tempfile::NamedTempFile,
}

impl Drop for RoleProcess {
    fn drop(&mut self) {
        if std::thread::panicking() {
            let text = std::fs::read_to_string(self.log.path()).unwrap_or_default();
            let start = text.len().saturating_sub(6000);
            eprintln!(
                "--- last lines of `dvmdash {}` (pid {}) ---\n{}",
                self.role,
                self.pid,
                &text[text.ceil_char_boundary(start)..]
            );
        }
    }
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
        let log = tempfile::NamedTempFile::new().expect("a log file for the role");
        let stderr = log.reopen().expect("the role's log file");
        let group = spawn_group(cmd.stdout(Stdio::null()).stderr(stderr))
            .unwrap_or_else(|e| panic!("cannot start {bin} {role}: {e}"));
        let pid = group.0.id();
        RoleProcess {
            group: Some(group),
            pid,
            role: role.to_owned(),
            log,
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

    /// What the role logged so far (warnings and errors).
    pub fn log_text(&self) -> String {
        std::fs::read_to_string(self.log.path()).unwrap_or_default()
    }

    pub fn is_running(&mut self) -> bool {
        self.group
            .as_mut()
            .is_some_and(|g| matches!(g.0.try_wait(), Ok(None)))
    }
}

/// A private Prometheus server (Debian's `prometheus`) with the configuration and rule files a
/// test writes, scraping and evaluating every second.
pub struct PrometheusServer {
    pub url: String,
    pub dir: PathBuf,
    _process: Group,
}

impl PrometheusServer {
    /// Starts Prometheus on `dir` with `config` (YAML) as `prometheus.yml`; `files` are written
    /// beside it (rule files the config names).
    pub async fn start(dir: PathBuf, config: &str, files: &[(&str, String)]) -> Self {
        let bin = required_for("DVMDASH_TEST_PROMETHEUS", "the prometheus executable");
        std::fs::create_dir_all(dir.join("data")).expect("prometheus dir");
        std::fs::write(dir.join("prometheus.yml"), config).expect("prometheus.yml");
        for (name, text) in files {
            std::fs::write(dir.join(name), text).expect("prometheus file");
        }
        let port = free_port();
        let log = std::fs::File::create(dir.join("prometheus.log")).expect("prometheus log");
        let process = spawn_group(
            Command::new(&bin)
                .arg(format!("--config.file={}", dir.join("prometheus.yml").display()))
                .arg(format!("--storage.tsdb.path={}", dir.join("data").display()))
                .arg(format!("--web.listen-address=127.0.0.1:{port}"))
                .arg("--log.level=warn")
                .stdout(log.try_clone().expect("log handle"))
                .stderr(log),
        )
        .unwrap_or_else(|e| panic!("cannot start {bin}: {e}"));
        wait_port(port, Duration::from_secs(60), "prometheus to listen").await;
        PrometheusServer {
            url: format!("http://127.0.0.1:{port}"),
            dir,
            _process: process,
        }
    }

    /// The end of Prometheus's log, for failure messages.
    pub fn log_tail(&self) -> String {
        let text = std::fs::read_to_string(self.dir.join("prometheus.log")).unwrap_or_default();
        let start = text.len().saturating_sub(4000);
        text[text.ceil_char_boundary(start)..].to_owned()
    }
}
