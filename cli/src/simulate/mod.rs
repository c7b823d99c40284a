//! `dvmdash simulate`: realistic, signed DVM traffic published to relays in real time.
//!
//! - [`model`] - what traffic looks like (kinds, DVMs, customers, outcomes, timings)
//! - [`publisher`] - NIP-01 publishing with per-relay acknowledgement counts

pub mod model;
pub mod publisher;

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::sync::atomic::Ordering;
use std::time::Duration;

use dvmdash_core::telemetry::now_millis;
use rand::Rng as _;
use rand::SeedableRng as _;
use tokio_util::sync::CancellationToken;
use tracing::info;

pub use model::{Model, Planned};
pub use publisher::Publisher;

/// Traffic shape flags.
#[derive(Debug, Clone, clap::Args)]
pub struct SimulateArgs {
    /// Average job requests per second (Poisson arrivals).
    #[arg(long = "jobs-per-sec", env = "DVMDASH_SIMULATE_RATE", default_value_t = 2.0)]
    pub jobs_per_sec: f64,
    /// Random seed (0 = random). DVM and customer keys are fixed regardless.
    #[arg(long = "sim-seed", env = "DVMDASH_SIMULATE_SEED", default_value_t = 0)]
    pub seed: u64,
    /// Number of distinct (non-bot) customers.
    #[arg(
        long = "sim-customers",
        env = "DVMDASH_SIMULATE_CUSTOMERS",
        default_value_t = 300
    )]
    pub customers: usize,
    /// Stop after this many jobs (their answers are still published); unlimited when absent.
    #[arg(long = "sim-jobs", env = "DVMDASH_SIMULATE_JOBS")]
    pub jobs: Option<u64>,
    /// Re-publish DVM announcements this often, in seconds.
    #[arg(long = "sim-announce-secs", default_value_t = 600)]
    pub announce_every_secs: u64,
    /// Heartbeats (kind 11998) of the beating services this often, in seconds (nostrdvm: 300).
    #[arg(long = "sim-heartbeat-secs", default_value_t = 300)]
    pub heartbeat_every_secs: u64,
}

impl Default for SimulateArgs {
    fn default() -> Self {
        SimulateArgs {
            jobs_per_sec: 2.0,
            seed: 0,
            customers: 300,
            jobs: None,
            announce_every_secs: 600,
            heartbeat_every_secs: 300,
        }
    }
}

impl SimulateArgs {
    pub fn validate(&self) -> anyhow::Result<()> {
        anyhow::ensure!(
            self.jobs_per_sec > 0.0 && self.jobs_per_sec <= 10_000.0,
            "jobs per second must be in (0, 10000]"
        );
        anyhow::ensure!(self.customers >= 1, "at least one customer is needed");
        Ok(())
    }
}

/// What a simulation published.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Report {
    pub jobs: u64,
    pub events: u64,
}

/// Publishes simulated traffic to `relays` until `shutdown` (or the job limit is reached and every
/// planned answer went out).
pub async fn run(
    args: SimulateArgs,
    relays: Vec<String>,
    shutdown: CancellationToken,
) -> anyhow::Result<Report> {
    args.validate()?;
    anyhow::ensure!(!relays.is_empty(), "no relay to publish to");
    let seed = if args.seed == 0 { rand::random() } else { args.seed };
    let mut model = Model::new(seed, args.customers);
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed ^ 0x5eed);
    let publisher = Publisher::new(&relays);
    info!(relays = ?relays, jobs_per_sec = args.jobs_per_sec, seed, "simulation started");

    let mut queue: BinaryHeap<Reverse<(u64, u64)>> = BinaryHeap::new();
    let mut planned: std::collections::HashMap<u64, Planned> = std::collections::HashMap::new();
    let mut seq = 0u64;
    let mut report = Report::default();
    let mut next_job = now_millis();
    let mut next_announce = now_millis();
    let mut next_beat = now_millis();
    let mut beat = 0u64;
    let mut last_log = now_millis();
    loop {
        let now = now_millis();
        if now >= next_announce {
            for e in model.announcements(now / 1000) {
                publisher.publish(&e).await;
                report.events += 1;
            }
            next_announce = now + args.announce_every_secs.max(1) * 1000;
        }
        if now >= next_beat {
            for e in model.heartbeats(now / 1000, beat) {
                publisher.publish(&e).await;
                report.events += 1;
            }
            beat += 1;
            next_beat = now + args.heartbeat_every_secs.max(1) * 1000;
        }
        let jobs_left = args.jobs.is_none_or(|n| report.jobs < n);
        if jobs_left && now >= next_job {
            for p in model.job(now) {
                seq += 1;
                queue.push(Reverse((p.at_ms, seq)));
                planned.insert(seq, p);
            }
            report.jobs += 1;
            // ContextVM calls ride along at about a third of the job rate.
            if rng.gen_bool(0.3) {
                for p in model.contextvm_call(now) {
                    seq += 1;
                    queue.push(Reverse((p.at_ms, seq)));
                    planned.insert(seq, p);
                }
            }
            // Exponential inter-arrival times give Poisson arrivals, bursts included.
            let gap = -(1.0 - rng.r#gen::<f64>()).ln() / args.jobs_per_sec * 1000.0;
            next_job = now + gap as u64;
        }
        while let Some(Reverse((at, id))) = queue.peek().copied() {
            if at > now_millis() {
                break;
            }
            queue.pop();
            if let Some(p) = planned.remove(&id) {
                if p.first_relay_only {
                    publisher.publish_to_first(&p.event).await;
                } else {
                    publisher.publish(&p.event).await;
                }
                report.events += 1;
            }
        }
        if !jobs_left && queue.is_empty() {
            break;
        }
        if now.saturating_sub(last_log) > 30_000 {
            last_log = now;
            let acks: Vec<String> = publisher
                .stats()
                .iter()
                .map(|(u, s)| {
                    format!(
                        "{u}: {} ok / {} sent",
                        s.accepted.load(Ordering::Relaxed),
                        s.sent.load(Ordering::Relaxed)
                    )
                })
                .collect();
            info!(jobs = report.jobs, events = report.events, relays = ?acks, "simulation progress");
        }
        let wake = queue
            .peek()
            .map(|Reverse((at, _))| *at)
            .into_iter()
            .chain(jobs_left.then_some(next_job))
            .chain([next_announce, next_beat])
            .min()
            .unwrap_or(now + 100);
        let sleep = Duration::from_millis(wake.saturating_sub(now_millis()).min(1000));
        tokio::select! {
            _ = shutdown.cancelled() => break,
            _ = tokio::time::sleep(sleep) => {}
        }
    }
    publisher.settle(Duration::from_secs(5)).await;
    info!(jobs = report.jobs, events = report.events, "simulation finished");
    Ok(report)
}
