//! Support for dvmdash's integration tests, kept out of the product crates.
//!
//! The README's test command (`scripts/test.sh`) starts Redis, the ClickHouse stand-in and the
//! browser tools and exports where they are as `DVMDASH_TEST_*` variables. A test that needs one and
//! does not find it stops the whole test binary with one message naming that command ([`env`]):
//! it never passes silently and never panics once per test.
//!
//! - [`env`] - the services of the test run, isolated names, free ports
//! - [`wait`] - polling with a deadline that reports what was last observed
//! - [`process`] - private Redis and ClickHouse stand-in servers, roles as killable processes
//! - [`relays`] - the independent Python relay and hand-made relays that misbehave on purpose
//! - [`stack`] - a whole dvmdash (`dvmdash all`) started in-process on an isolated prefix and database
//! - [`http`] - requests to the api (reqwest) with status, headers and body
//! - [`browser`] - headless Chromium through chromedriver
//! - [`observability`] - the Grafana dashboards and the metric contract of `docs/telemetry.md`

pub mod browser;
pub mod env;
pub mod http;
pub mod observability;
pub mod process;
pub mod relays;
pub mod stack;
pub mod wait;

pub use env::{clickhouse_url, free_port, isolated, redis_url, required, ui_dir, unique};
pub use http::{Response, admin_get, get_json, http_get, request};
pub use process::{ChDev, PrometheusServer, RedisServer, RoleProcess};
pub use relays::{PythonRelay, ScriptedRelay, StoreOnlyRelay, StoreRules, relay_has};
pub use stack::{Expected, Stack, append_poison, args, expected, observed, start};
pub use wait::{wait_for, wait_until};
