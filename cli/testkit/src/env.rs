//! Where the test run's services are, and names no other test uses.

use std::io::Write as _;
use std::net::TcpListener as StdListener;
use std::path::PathBuf;
use std::sync::Mutex;

use dvmdash_core::config::{ClickHouseArgs, RedisArgs, Secret};

/// The README's test command, named in the one message a test prints when run without it.
pub const TEST_COMMAND: &str = "scripts/test.sh";

/// A variable the test command sets. Without it the test binary stops with one message (see
/// [`not_under_test_command`]).
pub fn required(name: &str) -> String {
    required_for(name, "a service the test command provides")
}

pub(crate) fn required_for(name: &str, what: &str) -> String {
    match std::env::var(name) {
        Ok(v) if !v.trim().is_empty() => v,
        _ => not_under_test_command(name, what),
    }
}

/// Prints one message and exits the test binary. Tests run in parallel threads, so a panic here
/// would print the same complaint once per test; the lock lets only the first thread speak.
/// Written to stderr directly because the test harness captures `eprintln!` of passing and
/// unfinished tests, and this one never finishes.
fn not_under_test_command(name: &str, what: &str) -> ! {
    static ONCE: Mutex<()> = Mutex::new(());
    let _first = ONCE.lock();
    let _ = writeln!(
        std::io::stderr(),
        "\n{name} is not set: this test needs {what}.\n\
         dvmdash's integration tests run under the README's test command, `{TEST_COMMAND}`, which \
         installs and starts Redis, the ClickHouse stand-in, relays and a headless browser and sets \
         the DVMDASH_TEST_* variables. Run `{TEST_COMMAND}` instead of `cargo test`.\n"
    );
    std::process::exit(2)
}

/// Redis URL of the test run.
pub fn redis_url() -> String {
    required_for("DVMDASH_TEST_REDIS_URL", "a Redis server")
}

/// ClickHouse (or stand-in) HTTP URL of the test run.
pub fn clickhouse_url() -> String {
    required_for("DVMDASH_TEST_CLICKHOUSE_URL", "ClickHouse or the dev stand-in")
}

/// The built web UI (`ui/dist`) the api serves in browser tests.
pub fn ui_dir() -> PathBuf {
    required_for("DVMDASH_TEST_UI_DIR", "the built web UI").into()
}

/// A name no other test uses (for databases, key prefixes, consumers).
pub fn unique(prefix: &str) -> String {
    format!("{prefix}_{}_{:08x}", std::process::id(), rand::random::<u32>())
}

/// Redis and ClickHouse settings isolated for one test: a fresh key prefix and database.
pub fn isolated() -> (RedisArgs, ClickHouseArgs) {
    let redis = RedisArgs {
        redis_url: Secret::new(redis_url()),
        redis_prefix: unique("t"),
        stream_shards: 1,
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
