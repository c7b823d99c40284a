//! The demo command as a user meets it: `dvmdash demo` started as a process, the printed URL opened
//! in headless Chromium, live numbers on the page that grow, and a clean exit on Ctrl-C (SIGINT).

use dvmdash_testkit as common;

use std::io::{BufRead as _, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::browser::spawn;
use dvmdash_testkit::required;
use dvmdash_testkit::{clickhouse_url, redis_url, unique};
use fantoccini::Locator;

async fn number(client: &fantoccini::Client, stat: &str) -> Option<u64> {
    let el = client
        .find(Locator::Css(&format!("[data-stat={stat}]")))
        .await
        .ok()?;
    el.text().await.ok()?.replace(',', "").trim().parse().ok()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn demo_page_shows_live_growing_numbers_and_stops_on_ctrl_c() {
    let ui_dir = required("DVMDASH_TEST_UI_DIR");
    assert!(
        std::path::Path::new(&ui_dir).join("index.html").is_file(),
        "the UI must be built into {ui_dir}"
    );
    let mut demo = spawn(
        Command::new(env!("CARGO_BIN_EXE_dvmdash"))
            .arg("demo")
            .env("REDIS_URL", redis_url())
            .env("CLICKHOUSE_URL", clickhouse_url())
            .env("CLICKHOUSE_DATABASE", unique("dvmdash_browser"))
            .env("DVMDASH_REDIS_PREFIX", unique("browser"))
            .env("DVMDASH_API_ADDR", "127.0.0.1:0")
            .env("DVMDASH_DEMO_RELAY_PORTS", "0,0")
            .env("DVMDASH_METRICS_ADDR", "127.0.0.1:0")
            .env("DVMDASH_UI_DIR", &ui_dir)
            .env("DVMDASH_SIMULATE_RATE", "5")
            .env("DVMDASH_LOG", "warn")
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit()),
    );

    // The demo prints the dashboard URL; read it like a user would.
    let stdout = demo.0.stdout.take().expect("stdout");
    let url = tokio::task::spawn_blocking(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if let Some(i) = line.find("http://") {
                return Some(line[i..].split_whitespace().next().unwrap_or("").to_owned());
            }
        }
        None
    })
    .await
    .expect("reader")
    .expect("the demo prints its dashboard URL");

    let session = common::browser::start(1280, 900, false).await;
    let client = &session.client;

    client
        .goto(&format!("{url}/?timeRange=1h"))
        .await
        .expect("open the dashboard");
    let first = dvmdash_testkit::wait_for(
        "a non-zero request count on the page",
        Duration::from_secs(90),
        || async { number(client, "total_requests").await.filter(|n| *n > 0) },
    )
    .await;
    let grown = dvmdash_testkit::wait_for("the request count to grow", Duration::from_secs(60), || async {
        number(client, "total_requests").await.filter(|n| *n > first)
    })
    .await;
    assert!(grown > first);
    let dvms = number(client, "unique_dvms").await.expect("unique DVMs shown");
    assert!(dvms > 0, "DVMs answered the simulated requests");
    let title = client.title().await.expect("title");
    assert!(title.contains("dvmdash"), "{title}");
    // The range lives in the URL, so reloads and links keep it.
    assert!(
        client
            .current_url()
            .await
            .expect("url")
            .as_str()
            .contains("timeRange=1h")
    );
    session.client.clone().close().await.expect("close browser");

    // Ctrl-C: the demo stops every role and exits successfully.
    let pid = demo.0.id();
    Command::new("kill")
        .args(["-INT", &pid.to_string()])
        .status()
        .expect("send SIGINT");
    let started = Instant::now();
    let status = loop {
        if let Some(s) = demo.0.try_wait().expect("wait") {
            break s;
        }
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "the demo did not stop within 60 s of Ctrl-C"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert!(status.success(), "demo exited with {status}");
}
