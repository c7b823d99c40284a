//! Roles run as their own processes (`dvmdash ingester`, `dvmdash api`, …) for the benchmarks, as
//! a deployment runs them: so each role's peak memory and CPU time can be read from `/proc`,
//! apart from the benchmark's own work (generating and signing events).

use std::time::{Duration, Instant};

use anyhow::Context as _;
use dvmdash_core::config::{ClickHouseArgs, RedisArgs};

/// `setsid` on the `PATH`, if any.
fn setsid() -> Option<std::path::PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join("setsid"))
        .find(|p| p.is_file())
}

/// One role's process; killed if dropped without [`RoleProcess::stop`].
pub struct RoleProcess {
    pub name: String,
    child: tokio::process::Child,
    pid: u32,
}

/// What a stopped role used.
#[derive(Debug, Clone, Copy)]
pub struct Usage {
    /// Peak resident memory over the whole run (`VmHWM`), in megabytes.
    pub peak_mb: f64,
    /// CPU time, user and system, in seconds.
    pub cpu_secs: f64,
}

impl RoleProcess {
    /// Starts `dvmdash <args>` (this executable) against the given Redis and ClickHouse; every
    /// other setting comes from `env`, and the role serves no metrics port (several run at once).
    pub fn spawn(
        name: impl Into<String>,
        args: &[&str],
        env: &[(&str, String)],
        redis: &RedisArgs,
        clickhouse: Option<&ClickHouseArgs>,
    ) -> anyhow::Result<Self> {
        let name = name.into();
        let exe = std::env::current_exe().context("finding the dvmdash executable")?;
        // Each role in a session of its own, so the kernel schedules it as a group of its own
        // (autogroup), as a deployment's containers are each their own cgroup. In one session
        // the busy roles' threads crowd a mostly idle one (the api) thread for thread, which no
        // deployment does. `setsid` (util-linux) starts the program in place, keeping its pid.
        let mut cmd = match setsid() {
            Some(setsid) => {
                let mut cmd = tokio::process::Command::new(setsid);
                cmd.arg(exe);
                cmd
            }
            None => tokio::process::Command::new(exe),
        };
        cmd.args(args)
            .env("DVMDASH_METRICS_ADDR", "")
            .env("REDIS_URL", redis.redis_url.expose())
            .env("DVMDASH_REDIS_PREFIX", &redis.redis_prefix)
            .env("DVMDASH_STREAM_SHARDS", redis.stream_shards.to_string())
            .kill_on_drop(true)
            .stdin(std::process::Stdio::null());
        if let Some(ch) = clickhouse {
            cmd.env("CLICKHOUSE_URL", ch.clickhouse_url.expose())
                .env("CLICKHOUSE_DATABASE", &ch.clickhouse_database)
                .env("CLICKHOUSE_USER", &ch.clickhouse_user)
                .env("CLICKHOUSE_PASSWORD", ch.clickhouse_password.expose());
        }
        for (k, v) in env {
            cmd.env(k, v);
        }
        let child = cmd
            .spawn()
            .with_context(|| format!("starting the {name} process"))?;
        let pid = child.id().context("the role process has no pid")?;
        Ok(RoleProcess { name, child, pid })
    }

    /// Fails when the process has exited (a role that refused its settings, or crashed).
    pub fn check_alive(&mut self) -> anyhow::Result<()> {
        if let Some(status) = self.child.try_wait()? {
            anyhow::bail!("the {} process exited: {status}", self.name);
        }
        Ok(())
    }

    /// What the process has used so far.
    pub fn usage(&self) -> anyhow::Result<Usage> {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.pid))?;
        let peak_kb = status
            .lines()
            .find(|l| l.starts_with("VmHWM:"))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|kb| kb.parse::<f64>().ok())
            .context("no VmHWM in /proc status")?;
        let stat = std::fs::read_to_string(format!("/proc/{}/stat", self.pid))?;
        Ok(Usage {
            peak_mb: peak_kb / 1024.0,
            cpu_secs: cpu_secs_of_stat(&stat).context("unreadable /proc stat")?,
        })
    }

    /// Waits for a role that ends by itself (an import) and returns what it used: sampled every
    /// 50 ms while it runs, since an exited process's `/proc` entry is gone (the peak is a
    /// high-water mark, so only its last 50 ms can be missed). Fails when it exits unsuccessfully.
    pub async fn wait_exit(mut self, limit: Duration) -> anyhow::Result<Usage> {
        let started = Instant::now();
        let mut last = Usage {
            peak_mb: 0.0,
            cpu_secs: 0.0,
        };
        loop {
            if let Ok(u) = self.usage() {
                last = u;
            }
            if let Some(status) = self.child.try_wait()? {
                anyhow::ensure!(status.success(), "the {} process failed: {status}", self.name);
                return Ok(last);
            }
            anyhow::ensure!(
                started.elapsed() < limit,
                "the {} process did not finish within {limit:?}",
                self.name
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Stops the role as a deployment would (SIGTERM, then waits for it to finish its work in
    /// flight) and returns what it used, read just before the signal.
    pub async fn stop(mut self) -> anyhow::Result<Usage> {
        let usage = self.usage()?;
        let _ = std::process::Command::new("kill")
            .args(["-TERM", &self.pid.to_string()])
            .status();
        match tokio::time::timeout(Duration::from_secs(30), self.child.wait()).await {
            Ok(status) => {
                status?;
            }
            Err(_) => {
                let _ = self.child.kill().await;
                anyhow::bail!("the {} process did not stop within 30 s of SIGTERM", self.name);
            }
        }
        Ok(usage)
    }
}

/// User plus system CPU seconds from a `/proc/<pid>/stat` line. Fields 14 and 15 count clock
/// ticks of `USER_HZ`, which Linux fixes at 100 for every user-visible interface.
fn cpu_secs_of_stat(stat: &str) -> Option<f64> {
    // The command name (field 2) is in parentheses and may hold spaces: count after its end.
    let rest = &stat[stat.rfind(')')? + 1..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // `rest` starts at field 3 (state), so field N is at index N - 3.
    let utime: f64 = fields.get(11)?.parse().ok()?;
    let stime: f64 = fields.get(12)?.parse().ok()?;
    Some((utime + stime) / 100.0)
}

/// A loopback address nobody listens on right now, for a role's listening socket.
pub fn free_addr() -> anyhow::Result<std::net::SocketAddr> {
    let l = std::net::TcpListener::bind("127.0.0.1:0")?;
    Ok(l.local_addr()?)
}

/// Waits until `url` answers 2xx (a role that has started serving), failing after `limit` or as
/// soon as the process exits.
pub async fn wait_serving(role: &mut RoleProcess, url: &str, limit: Duration) -> anyhow::Result<()> {
    let client: hyper_util::client::legacy::Client<_, http_body_util::Empty<bytes::Bytes>> =
        hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
            .build(hyper_util::client::legacy::connect::HttpConnector::new());
    let uri: hyper::Uri = url.parse()?;
    let started = Instant::now();
    loop {
        role.check_alive()?;
        if let Ok(resp) = client.get(uri.clone()).await
            && resp.status().is_success()
        {
            return Ok(());
        }
        anyhow::ensure!(
            started.elapsed() < limit,
            "the {} process did not answer {url} within {limit:?}",
            role.name
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpu_time_is_read_after_a_hostile_command_name() {
        // A command name with spaces and a ')' of its own must not shift the fields.
        let stat = "42 (dvm) dash x) S 1 42 42 0 -1 4194560 100 0 0 0 250 50 0 0 20 0 3 0 1 1 1";
        assert_eq!(cpu_secs_of_stat(stat), Some(3.0));
        assert_eq!(cpu_secs_of_stat("42 (no fields"), None);
        assert_eq!(cpu_secs_of_stat(""), None);
    }

    #[test]
    fn this_process_reports_its_own_usage() {
        let stat = std::fs::read_to_string("/proc/self/stat").expect("proc");
        assert!(cpu_secs_of_stat(&stat).is_some_and(|s| s >= 0.0));
    }
}
