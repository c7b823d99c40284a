//! Flags shared by several roles. Every flag also reads an environment variable, so a compose
//! `environment:` entry and a command-line flag are the same thing.

use std::str::FromStr;
use std::time::Duration;

use crate::redis_keys::RedisNames;

/// A string that must never reach a log: passwords, URLs with credentials.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(s: impl Into<String>) -> Self {
        Secret(s.into())
    }
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl FromStr for Secret {
    type Err = std::convert::Infallible;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ok(Secret(s.to_owned()))
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&redact_url(&self.0))
    }
}

impl std::fmt::Display for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        std::fmt::Debug::fmt(self, f)
    }
}

/// Shows a URL without its credentials (`redis://:pw@host` -> `redis://<redacted>@host`); anything
/// that is not a URL is redacted whole.
pub fn redact_url(s: &str) -> String {
    if s.is_empty() {
        return String::new();
    }
    match s.split_once("://") {
        Some((scheme, rest)) => match rest.rsplit_once('@') {
            Some((_, host)) => format!("{scheme}://<redacted>@{host}"),
            None => s.to_owned(),
        },
        None => "<redacted>".to_owned(),
    }
}

/// Where Redis is and which key prefix this deployment uses.
#[derive(Debug, Clone, clap::Args)]
pub struct RedisArgs {
    /// Redis URL (streams, relay registry, collector state).
    #[arg(
        long = "redis-url",
        env = "REDIS_URL",
        default_value = "redis://127.0.0.1:6379"
    )]
    pub redis_url: Secret,
    /// Prefix of every Redis key, so several deployments or tests can share one Redis.
    #[arg(long = "redis-prefix", env = "DVMDASH_REDIS_PREFIX", default_value = crate::redis_keys::DEFAULT_PREFIX)]
    pub redis_prefix: String,
    /// How many streams the events stream is split into by event id (1 to 256), so a Redis
    /// Cluster can spread them; every role of a deployment must agree (docs/scaling.md).
    #[arg(long = "stream-shards", env = "DVMDASH_STREAM_SHARDS", default_value_t = 1)]
    pub stream_shards: u16,
}

impl RedisArgs {
    /// The events stream's shards, checked against the count Redis recorded (see
    /// [`crate::stream_shards`]).
    pub async fn event_streams<C: redis::aio::ConnectionLike>(
        &self,
        conn: &mut C,
    ) -> anyhow::Result<crate::stream_shards::EventStreams> {
        crate::stream_shards::EventStreams::open(conn, &self.names(), self.stream_shards).await
    }

    pub fn names(&self) -> RedisNames {
        RedisNames::new(self.redis_prefix.clone())
    }

    pub fn client(&self) -> anyhow::Result<redis::Client> {
        use anyhow::Context as _;
        redis::Client::open(self.redis_url.expose())
            .with_context(|| format!("invalid redis url {}", self.redis_url))
    }

    /// A shared, self-reconnecting connection for short commands. Waits (with backoff) until Redis
    /// answers; `None` when `shutdown` fires first.
    pub async fn connect(
        &self,
        shutdown: &tokio_util::sync::CancellationToken,
    ) -> anyhow::Result<Option<redis::aio::ConnectionManager>> {
        let client = self.client()?;
        let config = redis::aio::ConnectionManagerConfig::new()
            .set_connection_timeout(Some(Duration::from_secs(5)))
            .set_response_timeout(Some(Duration::from_secs(30)))
            .set_number_of_retries(4)
            .set_max_delay(Duration::from_secs(2));
        let mut delay = Duration::from_millis(200);
        loop {
            // The attempt retries internally for seconds; shutdown must not wait for it.
            let attempt = tokio::select! {
                _ = shutdown.cancelled() => return Ok(None),
                r = client.get_connection_manager_with_config(config.clone()) => r,
            };
            match attempt {
                Ok(c) => return Ok(Some(c)),
                Err(err) => {
                    tracing::warn!(redis = %self.redis_url, error = %err, "redis unavailable, retrying")
                }
            }
            tokio::select! {
                _ = shutdown.cancelled() => return Ok(None),
                _ = tokio::time::sleep(delay) => {}
            }
            delay = (delay * 2).min(Duration::from_secs(5));
        }
    }
}

/// Where ClickHouse is.
#[derive(Debug, Clone, clap::Args)]
pub struct ClickHouseArgs {
    /// ClickHouse HTTP interface URL.
    #[arg(
        long = "clickhouse-url",
        env = "CLICKHOUSE_URL",
        default_value = "http://127.0.0.1:8123"
    )]
    pub clickhouse_url: Secret,
    /// Database holding dvmdash's tables.
    #[arg(
        long = "clickhouse-database",
        env = "CLICKHOUSE_DATABASE",
        default_value = "dvmdash"
    )]
    pub clickhouse_database: String,
    #[arg(long = "clickhouse-user", env = "CLICKHOUSE_USER", default_value = "default")]
    pub clickhouse_user: String,
    #[arg(long = "clickhouse-password", env = "CLICKHOUSE_PASSWORD", default_value = "")]
    pub clickhouse_password: Secret,
}

impl ClickHouseArgs {
    pub fn new(url: impl Into<String>, database: impl Into<String>) -> Self {
        ClickHouseArgs {
            clickhouse_url: Secret::new(url),
            clickhouse_database: database.into(),
            clickhouse_user: "default".into(),
            clickhouse_password: Secret::new(""),
        }
    }

    /// A client bound to the dvmdash database.
    pub fn client(&self) -> clickhouse::Client {
        self.server_client().with_database(&self.clickhouse_database)
    }

    /// A client without a database, for creating it.
    pub fn server_client(&self) -> clickhouse::Client {
        let mut c = clickhouse::Client::default()
            .with_url(self.clickhouse_url.expose())
            .with_user(&self.clickhouse_user)
            .with_compression(clickhouse::Compression::Lz4);
        if !self.clickhouse_password.expose().is_empty() {
            c = c.with_password(self.clickhouse_password.expose());
        }
        c
    }

    pub fn validate(&self) -> Result<(), String> {
        let url = self.clickhouse_url.expose();
        if !(url.starts_with("http://") || url.starts_with("https://")) {
            return Err(format!(
                "clickhouse url must start with http:// or https://, got {}",
                redact_url(url)
            ));
        }
        if !is_identifier(&self.clickhouse_database) {
            return Err(format!(
                "clickhouse database {:?} is not a plain identifier",
                self.clickhouse_database
            ));
        }
        Ok(())
    }
}

/// Letters, digits and underscores, not starting with a digit: safe to splice into DDL.
pub fn is_identifier(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 64
        && !s.starts_with(|c: char| c.is_ascii_digit())
        && s.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_do_not_leak() {
        assert_eq!(
            format!("{:?}", Secret::new("redis://:pw@host:6379")),
            "redis://<redacted>@host:6379"
        );
        assert_eq!(format!("{}", Secret::new("hunter2")), "<redacted>");
        assert_eq!(
            format!("{:?}", Secret::new("http://127.0.0.1:8123")),
            "http://127.0.0.1:8123"
        );
    }

    #[test]
    fn identifiers() {
        assert!(is_identifier("dvmdash_test_1"));
        assert!(!is_identifier("1abc"));
        assert!(!is_identifier("a;drop"));
        assert!(!is_identifier(""));
    }
}

/// A flag group's values when no flag and no environment variable is given: its `#[arg]` defaults.
/// Each setting's default is written once, in its `#[arg]`, and the group's `Default` is this, so
/// `--help`, `Default` and the running default cannot disagree.
pub fn clap_defaults<T: clap::Args + clap::FromArgMatches>() -> T {
    let cmd = T::augment_args(clap::Command::new("defaults").no_binary_name(true))
        // Defaults only: the environment is for running roles, not for `Default`.
        .mut_args(|a| a.env(None::<&'static str>));
    let matches = cmd
        .try_get_matches_from(std::iter::empty::<String>())
        .unwrap_or_else(|e| panic!("a flag group without a default for a required flag: {e}"));
    T::from_arg_matches(&matches).unwrap_or_else(|e| panic!("flag defaults do not parse: {e}"))
}

/// What counts as an acceptable event: shared by the collector, the importer and the ingester, so
/// every path applies the same rules.
#[derive(Debug, Clone, clap::Args)]
pub struct EventArgs {
    /// Kinds in the DVM ranges that are not DVM traffic (comma-separated).
    #[arg(long, env = "DVMDASH_EXCLUDED_KINDS", value_delimiter = ',',
          default_values_t = crate::kinds::DEFAULT_EXCLUDED_KINDS)]
    pub excluded_kinds: Vec<u16>,
    /// Largest accepted event, in bytes of JSON.
    #[arg(long, env = "DVMDASH_MAX_EVENT_BYTES", default_value_t = crate::validate::DEFAULT_MAX_EVENT_BYTES)]
    pub max_event_bytes: usize,
    /// How far in the future `created_at` may be, in seconds.
    #[arg(long, env = "DVMDASH_MAX_FUTURE_SECS", default_value_t = crate::validate::DEFAULT_MAX_FUTURE_SECS)]
    pub max_future_secs: u64,
}

impl Default for EventArgs {
    fn default() -> Self {
        clap_defaults()
    }
}

impl EventArgs {
    pub fn kinds(&self) -> crate::kinds::KindFilter {
        crate::kinds::KindFilter::new(self.excluded_kinds.iter().copied())
    }

    pub fn validator(&self) -> crate::validate::Validator {
        crate::validate::Validator {
            max_event_bytes: self.max_event_bytes,
            max_future_secs: self.max_future_secs,
            kinds: self.kinds(),
        }
    }

    pub fn validate(&self) -> anyhow::Result<()> {
        anyhow::ensure!(
            self.max_event_bytes >= 1024,
            "max event bytes must be at least 1024"
        );
        anyhow::ensure!(
            self.excluded_kinds
                .iter()
                .all(|k| *k != crate::kinds::FEEDBACK_KIND),
            "kind 7000 (feedback) cannot be excluded"
        );
        Ok(())
    }
}
