//! `dvmdash demo`: everything on one machine: in-process relays, simulated DVM traffic published to
//! them, and every role watching them.

use std::net::{IpAddr, Ipv4Addr};
use std::time::Duration;

use nostr_relay_builder::prelude::{LocalRelay, MemoryDatabase, RateLimit, RelayBuilder};
use tokio_util::sync::CancellationToken;
use tracing::info;

use crate::simulate::SimulateArgs;
use crate::stack::AllArgs;

#[derive(Debug, Clone, clap::Args)]
pub struct DemoArgs {
    #[command(flatten)]
    pub all: AllArgs,
    #[command(flatten)]
    pub simulate: SimulateArgs,
    /// Ports of the in-process relays; fixed so the relay registry stays the same across runs.
    #[arg(long = "demo-relay-ports", env = "DVMDASH_DEMO_RELAY_PORTS", value_delimiter = ',', default_values_t = [17777u16, 17778])]
    pub relay_ports: Vec<u16>,
}

/// An in-process relay (rust-nostr's relay builder) on loopback, with limits raised for simulated
/// traffic. Port 0 picks a free port.
pub async fn start_relay(port: u16) -> anyhow::Result<(LocalRelay, String)> {
    start_relay_with(port, None).await
}

/// As [`start_relay`], storing events in `database` when given (one already holding events, for
/// the collector benchmark) instead of the builder's default.
pub async fn start_relay_with(
    port: u16,
    database: Option<MemoryDatabase>,
) -> anyhow::Result<(LocalRelay, String)> {
    // The relay reports the port it was configured with, so choose a free one ourselves.
    let port = if port == 0 {
        std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?.port()
    } else {
        port
    };
    let mut builder = RelayBuilder::default()
        .addr(IpAddr::V4(Ipv4Addr::LOCALHOST))
        .port(port)
        .rate_limit(RateLimit {
            max_reqs: 1000,
            notes_per_minute: 1_000_000,
        });
    if let Some(db) = database {
        builder = builder.database(db);
    }
    let relay = LocalRelay::new(builder);
    relay
        .run()
        .await
        .map_err(|e| anyhow::anyhow!("cannot start the in-process relay on port {port}: {e}"))?;
    let url = relay.url().await.to_string().trim_end_matches('/').to_owned();
    Ok((relay, url))
}

pub async fn run(
    mut args: DemoArgs,
    shutdown: CancellationToken,
    shutdown_timeout: Duration,
) -> anyhow::Result<()> {
    let mut relays = Vec::new();
    let mut urls = Vec::new();
    for port in &args.relay_ports {
        let (relay, url) = start_relay(*port).await?;
        info!(relay = %url, "in-process relay started");
        relays.push(relay);
        urls.push(url);
    }
    args.all.coordinator.relays.extend(urls.iter().cloned());
    let listener = tokio::net::TcpListener::bind(args.all.api.api_addr)
        .await
        .map_err(|e| anyhow::anyhow!("cannot listen on {}: {e}", args.all.api.api_addr))?;
    let addr = listener.local_addr()?;

    let sim_stop = shutdown.child_token();
    let sim = tokio::spawn(crate::simulate::run(
        args.simulate.clone(),
        urls,
        sim_stop.clone(),
    ));
    let stack = tokio::spawn(crate::stack::run_all(
        args.all.clone(),
        listener,
        shutdown.clone(),
        shutdown_timeout,
    ));
    println!("\n  dvmdash demo is running: open http://{addr}\n  (Ctrl-C stops everything)\n");
    let result = stack.await.map_err(|e| anyhow::anyhow!("stack panicked: {e}"))?;
    sim_stop.cancel();
    let _ = sim.await;
    for r in relays {
        r.shutdown();
    }
    result
}
