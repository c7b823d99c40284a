//! A deterministic corpus of signed NIP-90 traffic for the statistics reference test, written for
//! this test alone (it shares nothing with `dvmdash simulate`).
//!
//! Shape (see `generate`): about 22,700 requests over 45 days, denser towards now so the 1h, 24h,
//! 7d and 30d windows all differ; 24 answering DVMs with skewed shares plus an announcement-only
//! one; 480 customers with a heavy tail; skewed request kinds with a long tail, an unregistered
//! kind, a kind that appears only hours ago, a kind that stopped 36 days ago, and an orphan result
//! kind; feedback sequences of every outcome; competing DVMs with distinct and equal result times;
//! results linked only through the `request` tag, a 6651 result for 5251 requests, lenient amounts,
//! encrypted requests, clock skew, requests still within their timeout; NIP-89 announcements and
//! kind-0 profiles exercising each profile rule; zap receipts paying DVMs for results and payment
//! requests, tips, and receipts that must pay nothing (amount mismatch, absurd amount, to a customer).
//!
//! Every created_at is at most `now - 2`. Events older than `now - 31 d - 1 h` were "collected"
//! back then (stream `t` near created_at), so TTL removes them, whole partitions at a time; every
//! later event was collected now and stays in events_raw during the test. Nothing is dated in
//! between (up to `now - 31 d + 30 min`) and no job straddles that zone, so which raw events exist
//! does not depend on how TTL deletes (whole parts in production, possibly rows under OPTIMIZE),
//! and no raw event in the 30-day window's first daily bucket is ever deleted.

use dvmdash_core::Event;
use dvmdash_core::validate::Keys;
use rand::distributions::{Distribution, WeightedIndex};
use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use serde_json::json;

pub const DAY: u64 = 86_400;
/// Events created before `now - OLD` were collected back then and are deleted by TTL.
pub const OLD: u64 = 31 * DAY + 3600;
/// No event is created in [now - OLD, now - QUIET_END).
const QUIET_END: u64 = 31 * DAY - 1800;
const GENERIC_REQUESTS: usize = 22_500;
const CUSTOMERS: usize = 480;

/// bech32's alphabet: fake invoice data drawn from it never holds the separator `1`.
const BECH32: &[u8] = b"qpzry9x8gf2tvdw0s3jn54khce6mua7l";
/// Zaps pay only for jobs of the last 28 days: everything they name is still in events_raw.
const ZAP_HORIZON: u64 = 28 * DAY;

pub const RELAYS: [&str; 5] = [
    "wss://relay.damus.io",
    "wss://nos.lol",
    "wss://relay.primal.net",
    "wss://relay.nostr.band",
    "wss://offchain.pub",
];

// Indices into the DVM table (`dvm_defs`).
pub const VERTEX: usize = 0;
const SEARCH: usize = 1;
const ORACLE: usize = 2;
pub const PIXEL: usize = 3;
const LUMEN: usize = 4;
const BABEL: usize = 5;
const TUNE: usize = 6;
const NOOGLE: usize = 7;
const ECHO: usize = 8;
const COUNT: usize = 9;
const SCAN: usize = 10;
const FEED: usize = 11;
const RANGER: usize = 12;
const CANVAS: usize = 13;
const QUICK: usize = 14;
const WEEKLY: usize = 15;
const FRESH: usize = 16;
const RETIRED: usize = 17;
const GATE: usize = 18;
const CHAIN: usize = 19;
const ORPHAN: usize = 20;
const MIRROR: usize = 23;
pub const GHOST: usize = 24;

/// Request kinds of ordinary traffic and their shares.
const KIND_WEIGHTS: [(u16, f64); 19] = [
    (5300, 40.0),
    (5312, 14.0),
    (5302, 10.0),
    (5100, 8.0),
    (5050, 7.0),
    (5301, 3.0),
    (5303, 2.0),
    (5313, 2.0),
    (5000, 1.5),
    (5001, 1.2),
    (5002, 1.0),
    (5250, 0.8),
    (5251, 0.8),
    (5400, 0.5),
    (5500, 0.4),
    (5101, 0.3),
    (5900, 0.3),
    (5905, 0.25),
    (5970, 0.2),
];

/// Error reasons and their shares; `Some("")` is an empty reason, `None` a status tag without one.
const REASONS: [(Option<&str>, f64); 11] = [
    (Some("rate limited"), 30.0),
    (Some("out of credits"), 20.0),
    (Some("model timeout"), 15.0),
    (Some("invalid input"), 10.0),
    (Some("relay unreachable"), 8.0),
    (Some("no results found"), 6.0),
    (Some("upstream returned 502"), 4.0),
    (Some("too many requests"), 3.0),
    (Some("unsupported language"), 2.0),
    (Some(""), 5.0),
    (None, 3.0),
];

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Style {
    Fast,
    Normal,
    Slow,
    Paid,
    Flaky,
    FeedbackOnly,
    /// Never answers (the announcement-only DVM).
    Silent,
}

struct Def {
    name: &'static str,
    weight: f64,
    kinds: &'static [u16],
    /// Active (answering) from `from_ago` to `to_ago` seconds before now.
    from_ago: u64,
    to_ago: u64,
    style: Style,
    /// Chance to answer a request directed at it.
    reliability: f64,
}

fn d(
    name: &'static str,
    weight: f64,
    kinds: &'static [u16],
    from_ago: u64,
    to_ago: u64,
    style: Style,
    reliability: f64,
) -> Def {
    Def {
        name,
        weight,
        kinds,
        from_ago,
        to_ago,
        style,
        reliability,
    }
}

#[rustfmt::skip]
fn dvm_defs() -> Vec<Def> {
    let old = 45 * DAY + 3600;
    vec![
        d("Vertex Discovery", 30.0, &[5300, 5301, 5313], old, 0, Style::Fast, 0.97),
        d("Search Pro", 16.0, &[5302, 5303, 5300], old, 0, Style::Fast, 0.95),
        d("Reputation Oracle", 14.0, &[5312, 5313, 5301], old, 0, Style::Fast, 0.95),
        d("Pixel Forge", 10.0, &[5100, 5101], old, 0, Style::Paid, 0.9),
        d("Lumen Text", 9.0, &[5050, 5000, 5001, 5002], old, 0, Style::Normal, 0.9),
        d("Babel Fish", 6.0, &[5002, 5050], old, 0, Style::Flaky, 0.7),
        d("Tune Smith", 5.0, &[5251, 5250], old, 0, Style::Normal, 0.85),
        d("Noogle Lite", 5.0, &[5300, 5302], old, 0, Style::Fast, 0.9),
        d("Echo Scribe", 4.0, &[5000, 5001], old, 0, Style::Normal, 0.8),
        d("Count Keeper", 3.0, &[5400, 5900], old, 0, Style::Normal, 0.85),
        d("Scan Guard", 3.0, &[5500], old, 0, Style::Normal, 0.85),
        d("Feed Weaver", 3.0, &[5300], old, 0, Style::Slow, 0.6),
        d("Relay Ranger", 2.5, &[5300, 5312], old, 0, Style::Normal, 0.8),
        d("Canvas Bot", 2.5, &[5100], old, 0, Style::Paid, 0.8),
        d("Quick Sum", 2.0, &[5001, 5050], 20 * DAY, 0, Style::Normal, 0.9),
        d("Weekly Newcomer", 2.0, &[5300, 5302, 5315], 3 * DAY, 0, Style::Normal, 0.9),
        d("Fresh Spark", 4.0, &[5300, 5315], 1440, 0, Style::Fast, 0.95),
        d("Retired Engine", 3.0, &[5300, 5201], old, 35 * DAY, Style::Normal, 0.9),
        d("Gatekeeper", 2.0, &[5050, 5100], old, 0, Style::FeedbackOnly, 0.8),
        d("Chain Agent", 2.0, &[5050, 5742], old, 0, Style::Normal, 0.85),
        d("Orphan Maker", 1.5, &[5742], old, 0, Style::Normal, 0.85),
        d("Tiny Helper", 1.0, &[5302], old, 0, Style::Normal, 0.8),
        d("Shadow Node", 1.0, &[5300], old, 0, Style::Normal, 0.8),
        d("Mirror Node", 1.0, &[5301, 5303], old, 0, Style::Normal, 0.8),
        d("Ghost Announcer", 0.0, &[], old, 0, Style::Silent, 0.0),
    ]
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Scenario {
    Direct,
    ProcResult,
    PayNothing,
    PayResult,
    Error,
    ErrorResult,
    Partial,
    PartialResult,
    Stalled,
    Unknown,
    NoStatus,
    SuccessFeedback,
    TwoResults,
    Skew,
}

fn scenarios(style: Style) -> &'static [(Scenario, f64)] {
    use Scenario as S;
    match style {
        Style::Fast => &[
            (S::Direct, 0.55),
            (S::ProcResult, 0.28),
            (S::Error, 0.05),
            (S::Stalled, 0.03),
            (S::Partial, 0.02),
            (S::PartialResult, 0.02),
            (S::Unknown, 0.01),
            (S::SuccessFeedback, 0.01),
            (S::TwoResults, 0.02),
            (S::Skew, 0.01),
        ],
        Style::Normal => &[
            (S::Direct, 0.28),
            (S::ProcResult, 0.38),
            (S::Error, 0.09),
            (S::ErrorResult, 0.02),
            (S::Stalled, 0.06),
            (S::Partial, 0.04),
            (S::PartialResult, 0.03),
            (S::PayNothing, 0.03),
            (S::PayResult, 0.04),
            (S::Unknown, 0.01),
            (S::NoStatus, 0.01),
            (S::Skew, 0.01),
        ],
        Style::Slow => &[
            (S::Direct, 0.2),
            (S::ProcResult, 0.45),
            (S::Stalled, 0.3),
            (S::Error, 0.05),
        ],
        Style::Paid => &[
            (S::Direct, 0.1),
            (S::PayNothing, 0.33),
            (S::PayResult, 0.4),
            (S::Error, 0.1),
            (S::Stalled, 0.05),
            (S::ProcResult, 0.02),
        ],
        Style::Flaky => &[
            (S::Error, 0.4),
            (S::ProcResult, 0.3),
            (S::Stalled, 0.2),
            (S::PayNothing, 0.1),
        ],
        Style::FeedbackOnly => &[
            (S::Stalled, 0.3),
            (S::Error, 0.4),
            (S::PayNothing, 0.2),
            (S::Unknown, 0.05),
            (S::SuccessFeedback, 0.05),
        ],
        Style::Silent => &[],
    }
}

/// Result latency range in seconds.
fn latency(style: Style) -> (u64, u64) {
    match style {
        Style::Fast => (1, 25),
        Style::Normal => (5, 240),
        Style::Slow => (60, 900),
        Style::Paid => (5, 60),
        Style::Flaky => (5, 300),
        Style::FeedbackOnly | Style::Silent => (5, 60),
    }
}

#[derive(Clone, Copy, Debug)]
enum Step {
    Result,
    Feedback {
        status: Option<&'static str>,
        reason: Option<&'static str>,
        amount: bool,
    },
}

#[derive(Clone, Copy, Debug)]
enum Author {
    Customer(usize),
    Dvm(usize),
}

struct Dvm {
    def: Def,
    keys: Keys,
    from: u64,
    to: u64,
}

/// The generated traffic and the handles the test needs.
pub struct Corpus {
    /// The generation time every created_at is relative to.
    pub now: u64,
    /// Distinct signed events (a few of excluded kinds, which must not be counted).
    pub events: Vec<Event>,
    /// Hex pubkeys of the DVM table, by index (`VERTEX`, `PIXEL`, `GHOST`, ...).
    pub dvm_hex: Vec<String>,
    /// A busy customer, never a DVM: its DVM page is 404.
    pub customer_only: String,
    /// A pubkey that never published anything.
    pub nobody: String,
}

/// One stream entry: the event JSON, the relay it came from, and when it was "collected" (unix ms).
pub struct Entry {
    pub json: String,
    pub relay: &'static str,
    pub seen_ms: u64,
}

struct Gen {
    rng: StdRng,
    now: u64,
    dvms: Vec<Dvm>,
    customers: Vec<Keys>,
    customer_pick: WeightedIndex<f64>,
    nonce: u64,
}

pub fn generate(seed: u64, now: u64) -> Corpus {
    let dvms: Vec<Dvm> = dvm_defs()
        .into_iter()
        .enumerate()
        .map(|(i, def)| Dvm {
            keys: Keys::from_seed(format!("statistics-dvm-{i}").as_bytes()),
            from: now - def.from_ago,
            to: now - def.to_ago,
            def,
        })
        .collect();
    let customers: Vec<Keys> = (0..CUSTOMERS)
        .map(|i| Keys::from_seed(format!("statistics-customer-{i}").as_bytes()))
        .collect();
    let customer_pick =
        WeightedIndex::new((0..CUSTOMERS).map(|i| 1.0 / ((i + 1) as f64).powf(1.1))).expect("weights");
    let mut g = Gen {
        rng: StdRng::seed_from_u64(seed),
        now,
        dvms,
        customers,
        customer_pick,
        nonce: 0,
    };
    let mut out = Vec::new();
    g.profiles(&mut out);
    let kind_pick = WeightedIndex::new(KIND_WEIGHTS.iter().map(|k| k.1)).expect("weights");
    for _ in 0..GENERIC_REQUESTS {
        let kind = KIND_WEIGHTS[kind_pick.sample(&mut g.rng)].0;
        let at = g.job_time();
        g.job(kind, at, &mut out);
    }
    // An unregistered kind seen only in the last 5 days.
    for _ in 0..120 {
        let at = now - g.rng.gen_range(60..5 * DAY);
        g.job(5742, at, &mut out);
    }
    // A kind first requested two hours ago ("what's new").
    for _ in 0..15 {
        let at = now - g.rng.gen_range(900..2 * 3600);
        g.job(5315, at, &mut out);
    }
    // A kind that stopped 36 days ago: known, quiet in every window.
    for _ in 0..25 {
        let at = now - g.rng.gen_range(36 * DAY..44 * DAY);
        g.job(5201, at, &mut out);
    }
    g.extras(&mut out);
    g.zaps(&mut out);
    g.deletions(&mut out);
    g.contextvm(&mut out);
    debug_assert!(out.iter().all(|e| e.created_at <= now));
    Corpus {
        now,
        dvm_hex: g.dvms.iter().map(|d| d.keys.pubkey_hex().to_owned()).collect(),
        customer_only: g.customers[3].pubkey_hex().to_owned(),
        nobody: Keys::from_seed(b"statistics-nobody").pubkey_hex().to_owned(),
        events: out,
    }
}

/// Stream entries for `events`: with `duplicates`, about a quarter of the events are added two or
/// three times with different relay URLs; everything is shuffled, so answers often come before
/// their requests and copies land in different batches. Events older than `OLD` get a `t` near
/// their created_at (collected back then, so TTL deletes them); the rest were collected just now.
pub fn stream_entries(events: &[Event], now: u64, seed: u64, duplicates: bool) -> Vec<Entry> {
    let mut rng = StdRng::seed_from_u64(seed);
    let mut out = Vec::with_capacity(events.len() * 5 / 4);
    for e in events {
        let json = e.to_json();
        let copies = if duplicates {
            1 + usize::from(rng.gen_bool(0.2)) + usize::from(rng.gen_bool(0.05))
        } else {
            1
        };
        let mut relays = RELAYS;
        relays.shuffle(&mut rng);
        for relay in relays.into_iter().take(copies) {
            let seen_ms = if e.created_at + OLD < now {
                e.created_at * 1000 + rng.gen_range(0..500)
            } else {
                (now * 1000 - rng.gen_range(0..30_000)).max(e.created_at * 1000)
            };
            out.push(Entry {
                json: json.clone(),
                relay,
                seen_ms,
            });
        }
    }
    out.shuffle(&mut rng);
    out
}

fn tag(parts: &[&str]) -> Vec<String> {
    parts.iter().map(|s| (*s).to_owned()).collect()
}

/// `100000` -> `100_000` (lenient amounts as some DVMs publish them).
fn underscored(n: u64) -> String {
    let s = n.to_string();
    let mut out = String::new();
    for (i, c) in s.chars().enumerate() {
        if i > 0 && (s.len() - i).is_multiple_of(3) {
            out.push('_');
        }
        out.push(c);
    }
    out
}

impl Gen {
    fn keys_of(&self, a: Author) -> &Keys {
        match a {
            Author::Customer(i) => &self.customers[i],
            Author::Dvm(i) => &self.dvms[i].keys,
        }
    }

    /// Whether a job starting at `t` (answers up to 20 minutes later, or 4 s earlier) could touch
    /// the quiet zone.
    fn in_gap(&self, t: u64) -> bool {
        t + 1200 >= self.now - OLD && t < self.now - QUIET_END + 5
    }

    fn in_quiet_zone(&self, t: u64) -> bool {
        t >= self.now - OLD && t < self.now - QUIET_END
    }

    /// When an ordinary job starts: 5% in the last hour, 10% earlier that day, 25% earlier that
    /// week, the rest over the 38 days before.
    fn job_time(&mut self) -> u64 {
        loop {
            let r = self.rng.gen_range(0.0..1.0);
            let (newest, oldest) = if r < 0.05 {
                (60, 3600)
            } else if r < 0.15 {
                (3600, DAY)
            } else if r < 0.40 {
                (DAY, 7 * DAY)
            } else {
                (7 * DAY, 45 * DAY)
            };
            let t = self.now - self.rng.gen_range(newest..oldest);
            if !self.in_gap(t) {
                return t;
            }
        }
    }

    fn servers(&self, kind: u16, at: u64, exclude: Option<usize>) -> Vec<usize> {
        (0..self.dvms.len())
            .filter(|&i| {
                let d = &self.dvms[i];
                d.def.style != Style::Silent
                    && d.def.kinds.contains(&kind)
                    && d.from <= at
                    && at <= d.to
                    && Some(i) != exclude
            })
            .collect()
    }

    /// A DVM from a non-empty pool, by share.
    fn pick_weighted(&mut self, pool: &[usize]) -> usize {
        let total: f64 = pool.iter().map(|&i| self.dvms[i].def.weight).sum();
        let mut x = self.rng.gen_range(0.0..total);
        for &i in pool {
            let w = self.dvms[i].def.weight;
            if x < w {
                return i;
            }
            x -= w;
        }
        *pool.last().expect("non-empty pool")
    }

    fn open_responders(&mut self, kind: u16) -> usize {
        let r = self.rng.gen_range(0.0..1.0);
        if (5300..=5399).contains(&kind) {
            if r < 0.10 {
                0
            } else if r < 0.68 {
                1
            } else if r < 0.90 {
                2
            } else {
                3
            }
        } else if r < 0.15 {
            0
        } else if r < 0.90 {
            1
        } else {
            2
        }
    }

    fn cipher(&mut self) -> String {
        const B64: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
        let mut s: String = (0..48).map(|_| B64[self.rng.gen_range(0..64)] as char).collect();
        s.push_str("==?iv=");
        s.extend((0..22).map(|_| B64[self.rng.gen_range(0..64)] as char));
        s
    }

    fn random_hex(&mut self) -> String {
        let mut b = [0u8; 32];
        self.rng.fill(&mut b);
        hex::encode(b)
    }

    fn random_customer(&mut self) -> String {
        let i = self.rng.gen_range(0..CUSTOMERS);
        self.customers[i].pubkey_hex().to_owned()
    }

    fn price(&mut self, dvm: usize) -> u64 {
        let list: &[u64] = match dvm {
            PIXEL => &[50_000, 100_000, 250_000],
            CANVAS => &[21_000, 50_000],
            _ => &[1_000, 2_000, 5_000, 10_000, 21_000],
        };
        list[self.rng.gen_range(0..list.len())]
    }

    fn error_reason(&mut self) -> Option<&'static str> {
        let total: f64 = REASONS.iter().map(|r| r.1).sum();
        let mut x = self.rng.gen_range(0.0..total);
        for (reason, w) in REASONS {
            if x < w {
                return reason;
            }
            x -= w;
        }
        Some("rate limited")
    }

    fn pick_scenario(&mut self, style: Style) -> Scenario {
        let table = scenarios(style);
        let total: f64 = table.iter().map(|s| s.1).sum();
        let mut x = self.rng.gen_range(0.0..total);
        for &(s, w) in table {
            if x < w {
                return s;
            }
            x -= w;
        }
        table[table.len() - 1].0
    }

    /// What one DVM sends for one request: (seconds after the request, step), in time order.
    /// `forced` makes it a single result at exactly that latency (competition ties).
    fn plan(&mut self, style: Style, forced: Option<u64>) -> Vec<(i64, Step)> {
        use Scenario as S;
        let (lo, hi) = latency(style);
        let lat = forced.unwrap_or_else(|| self.rng.gen_range(lo..=hi)) as i64;
        let scenario = if forced.is_some() {
            S::Direct
        } else {
            self.pick_scenario(style)
        };
        let ack = self.rng.gen_range(0..=3i64);
        let fb = |status: &'static str| Step::Feedback {
            status: Some(status),
            reason: None,
            amount: false,
        };
        let pay = Step::Feedback {
            status: Some("payment-required"),
            reason: None,
            amount: true,
        };
        let mut steps = match scenario {
            S::Direct => vec![(lat, Step::Result)],
            S::ProcResult => vec![(ack.min(lat), fb("processing")), (lat, Step::Result)],
            S::PayNothing => vec![(1 + ack, pay)],
            S::PayResult => {
                let paid = 1 + ack + self.rng.gen_range(20..=200i64);
                let done = paid + self.rng.gen_range(10..=120i64);
                vec![(1 + ack, pay), (paid, fb("processing")), (done, Step::Result)]
            }
            S::Error => {
                let reason = self.error_reason();
                let at = ack + self.rng.gen_range(1..=30i64);
                let mut v = Vec::new();
                if self.rng.gen_bool(0.5) {
                    v.push((ack, fb("processing")));
                }
                v.push((
                    at,
                    Step::Feedback {
                        status: Some("error"),
                        reason,
                        amount: false,
                    },
                ));
                v
            }
            S::ErrorResult => {
                let reason = self.error_reason();
                vec![
                    (
                        ack,
                        Step::Feedback {
                            status: Some("error"),
                            reason,
                            amount: false,
                        },
                    ),
                    (lat + ack + 5, Step::Result),
                ]
            }
            S::Partial => vec![(ack, fb("processing")), (ack + lat / 2 + 1, fb("partial"))],
            S::PartialResult => vec![(ack, fb("partial")), (lat + ack + 1, Step::Result)],
            S::Stalled => vec![(ack, fb("processing"))],
            S::Unknown => vec![(ack, fb("queued"))],
            S::NoStatus => vec![(
                ack,
                Step::Feedback {
                    status: None,
                    reason: None,
                    amount: false,
                },
            )],
            S::SuccessFeedback => vec![(ack, fb("processing")), (lat + ack, fb("success"))],
            S::TwoResults => {
                let second = lat + self.rng.gen_range(1..=30i64);
                vec![(lat, Step::Result), (second, Step::Result)]
            }
            S::Skew => vec![(-self.rng.gen_range(1..=4i64), Step::Result)],
        };
        steps.sort_by_key(|s| s.0);
        steps
    }

    fn request(
        &mut self,
        author: Author,
        kind: u16,
        at: u64,
        targets: &[usize],
        encrypted: bool,
        repeat_p: bool,
    ) -> Event {
        self.nonce += 1;
        let mut tags: Vec<Vec<String>> = Vec::new();
        let content = if encrypted {
            self.cipher()
        } else {
            tags.push(vec![
                "i".to_owned(),
                format!("input {} of kind {kind}", self.nonce),
                "text".to_owned(),
            ]);
            if (5300..=5399).contains(&kind) {
                tags.push(tag(&["param", "max_results", "20"]));
            }
            if self.rng.gen_bool(0.2) {
                tags.push(tag(&["relays", "wss://relay.damus.io", "wss://nos.lol"]));
            }
            if self.rng.gen_bool(0.1) {
                tags.push(tag(&["bid", "10000"]));
            }
            tags.push(tag(&["output", "text/plain"]));
            String::new()
        };
        for &t in targets {
            tags.push(tag(&["p", self.dvms[t].keys.pubkey_hex()]));
        }
        if repeat_p && let Some(&t) = targets.first() {
            tags.push(tag(&["p", self.dvms[t].keys.pubkey_hex()]));
        }
        if encrypted {
            tags.push(tag(&["encrypted"]));
        }
        self.keys_of(author).sign(at, kind, tags, content)
    }

    /// How a response names its request: mostly `e` + `p` (+ the stringified request), some only
    /// through the `request` tag, a few with an unusable first `e` tag.
    fn link_tags(&mut self, req: &Event, result: bool) -> Vec<Vec<String>> {
        let e = tag(&["e", req.id.as_str()]);
        let p = tag(&["p", req.pubkey.as_str()]);
        let request = vec!["request".to_owned(), req.to_json()];
        let r = self.rng.gen_range(0.0..1.0);
        if result {
            if r < 0.72 {
                vec![e, p, request]
            } else if r < 0.90 {
                vec![e, p]
            } else if r < 0.97 {
                vec![request, p]
            } else {
                vec![tag(&["e", "not-an-event-id"]), e, p, request]
            }
        } else if r < 0.93 {
            vec![e, p]
        } else if r < 0.98 {
            vec![request, p]
        } else {
            vec![e, p, request]
        }
    }

    fn result(&mut self, dvm: usize, req: &Event, at: u64) -> Event {
        // nostrdvm publishes 5251 results as 6651; the request tag says 5251.
        let kind = if dvm == TUNE && req.kind == 5251 {
            6651
        } else {
            req.kind + 1000
        };
        let mut tags = if kind == req.kind + 1000 {
            self.link_tags(req, true)
        } else {
            vec![
                tag(&["e", req.id.as_str()]),
                tag(&["p", req.pubkey.as_str()]),
                vec!["request".to_owned(), req.to_json()],
            ]
        };
        let encrypted = req
            .tags
            .iter()
            .any(|t| t.first().map(String::as_str) == Some("encrypted"));
        self.nonce += 1;
        let content = if encrypted {
            tags.push(tag(&["encrypted"]));
            self.cipher()
        } else {
            format!("result {} for kind {}", self.nonce, req.kind)
        };
        if self.rng.gen_bool(0.02) {
            tags.push(tag(&["status", "success"]));
        }
        if self.rng.gen_bool(0.05) {
            // A result that names its price (the other path of asking for payment).
            let msat = self.price(dvm);
            tags.push(vec!["amount".to_owned(), msat.to_string()]);
        }
        self.dvms[dvm].keys.sign(at, kind, tags, content)
    }

    fn feedback(
        &mut self,
        dvm: usize,
        req: &Event,
        at: u64,
        status: Option<&'static str>,
        reason: Option<&'static str>,
        amount: bool,
    ) -> Event {
        let mut tags = self.link_tags(req, false);
        if let Some(s) = status {
            let mut t = tag(&["status", s]);
            if let Some(r) = reason {
                t.push(r.to_owned());
            }
            tags.push(t);
        }
        if amount {
            let msat = self.price(dvm);
            let text = if self.rng.gen_bool(0.15) {
                underscored(msat)
            } else {
                msat.to_string()
            };
            let mut t = vec!["amount".to_owned(), text];
            if self.rng.gen_bool(0.3) {
                // An invoice for the same amount, so amount tag and invoice agree.
                t.push(format!("lnbc{}n1pdvmdashtest", msat / 100));
            }
            tags.push(t);
        }
        let content = match status {
            Some("error") => reason.unwrap_or("failed").to_owned(),
            Some("partial") => "partial output".to_owned(),
            _ => String::new(),
        };
        self.dvms[dvm].keys.sign(at, 7000, tags, content)
    }

    /// One request and everything DVMs send for it.
    fn job(&mut self, kind: u16, at: u64, out: &mut Vec<Event>) {
        let chain = matches!(kind, 5050 | 5002) && self.dvms[CHAIN].from <= at && self.rng.gen_bool(0.03);
        let author = if chain {
            Author::Dvm(CHAIN)
        } else {
            Author::Customer(self.customer_pick.sample(&mut self.rng))
        };
        let servers = self.servers(kind, at, chain.then_some(CHAIN));
        let directed = self.rng.gen_bool(0.3);
        let mut targets = Vec::new();
        if directed {
            if servers.is_empty() || self.rng.gen_bool(0.03) {
                targets.push(GHOST);
            } else {
                let first = self.pick_weighted(&servers);
                targets.push(first);
                if servers.len() >= 2 && self.rng.gen_bool(0.06) {
                    let rest: Vec<usize> = servers.iter().copied().filter(|&s| s != first).collect();
                    let second = self.pick_weighted(&rest);
                    targets.push(second);
                }
            }
        }
        let encrypted = directed && self.rng.gen_bool(0.08);
        let repeat_p = directed && self.rng.gen_bool(0.004);
        let req = self.request(author, kind, at, &targets, encrypted, repeat_p);

        let responders: Vec<usize> = if directed {
            let mut v = Vec::new();
            for &t in &targets {
                if servers.contains(&t) && self.rng.gen_bool(self.dvms[t].def.reliability) {
                    v.push(t);
                }
            }
            v
        } else {
            let n = self.open_responders(kind).min(servers.len());
            let mut pool = servers.clone();
            let mut v = Vec::new();
            for _ in 0..n {
                let p = self.pick_weighted(&pool);
                pool.retain(|&x| x != p);
                v.push(p);
            }
            v
        };
        // Competition with equal result times: the first two responders answer in the same second.
        let tie = responders.len() >= 2
            && responders[..2]
                .iter()
                .all(|&d| self.dvms[d].def.style != Style::FeedbackOnly)
            && self.rng.gen_bool(0.3);
        let forced = if tie {
            let (lo, hi) = latency(self.dvms[responders[0]].def.style);
            Some(self.rng.gen_range(lo..=hi))
        } else {
            None
        };
        for (n, &dvm) in responders.iter().enumerate() {
            let style = self.dvms[dvm].def.style;
            let plan = self.plan(style, if n < 2 { forced } else { None });
            for (off, step) in plan {
                let t = at as i64 + off;
                if t > (self.now - 2) as i64 {
                    break;
                }
                let t = t as u64;
                let ev = match step {
                    Step::Result => self.result(dvm, &req, t),
                    Step::Feedback {
                        status,
                        reason,
                        amount,
                    } => self.feedback(dvm, &req, t, status, reason, amount),
                };
                out.push(ev);
            }
        }
        out.push(req);
    }

    fn announce(&self, dvm: usize, ago: u64, d_tag: &str, kinds: &[&str], content: String) -> Event {
        let mut tags = vec![tag(&["d", d_tag])];
        for &k in kinds {
            tags.push(tag(&["k", k]));
        }
        tags.push(tag(&["t", "dvm"]));
        self.dvms[dvm].keys.sign(self.now - ago, 31990, tags, content)
    }

    fn kind0(&self, keys: &Keys, ago: u64, content: serde_json::Value) -> Event {
        keys.sign(self.now - ago, 0, vec![], content.to_string())
    }

    /// NIP-89 announcements and kind-0 profiles, one case of the profile rule each.
    fn profiles(&mut self, out: &mut Vec<Event>) {
        let h = 3600;
        out.push(
            self.announce(
                VERTEX,
                40 * DAY,
                "vertex",
                &["5300", "5301", "5313", "5314"],
                json!({"name": "Vertex Discovery", "about": "Personalized content discovery",
                "picture": "https://img.example/vertex.png", "encryptionSupported": true})
                .to_string(),
            ),
        );
        // Two addresses, both current; the newer one gives the profile.
        out.push(self.announce(
            SEARCH,
            41 * DAY,
            "search-pro-a",
            &["5302", "5303"],
            json!({"name": "Search Pro Classic", "about": "Full text search"}).to_string(),
        ));
        out.push(self.announce(
            SEARCH,
            10 * DAY,
            "search-pro-b",
            &["5300"],
            json!({"name": "Search Pro", "picture": "https://img.example/search.png"}).to_string(),
        ));
        // Re-announced on the same address: only the newer one is current.
        out.push(self.announce(
            ORACLE,
            38 * DAY,
            "oracle",
            &["5312", "5301"],
            json!({"name": "Reputation Oracle v1"}).to_string(),
        ));
        out.push(self.announce(
            ORACLE,
            5 * DAY,
            "oracle",
            &["5312", "5313"],
            json!({"name": "Reputation Oracle", "about": "Web of trust scores"}).to_string(),
        ));
        // `image` instead of `picture`; k tags outside 5000-5999 or not numbers are ignored.
        out.push(
            self.announce(
                PIXEL,
                39 * DAY,
                "pixel",
                &["5100", "5101", "abc", "6100", "1"],
                json!({"name": "Pixel Forge", "about": "Images on demand",
                "image": "https://img.example/pixel.png"})
                .to_string(),
            ),
        );
        // Invalid JSON announcement: the kind-0 profile is used (display_name first).
        out.push(self.announce(
            LUMEN,
            37 * DAY,
            "lumen",
            &["5050", "5000"],
            "{name: True, about: 'lumen'}".to_owned(),
        ));
        let lumen = self.dvms[LUMEN].keys.clone();
        out.push(self.kind0(
            &lumen,
            36 * DAY,
            json!({"display_name": "Lumen Text", "name": "lumen", "about": "Large language model",
                "picture": "https://img.example/lumen.png"}),
        ));
        // An announcement with about and image but an empty name wins over kind 0: no name.
        out.push(
            self.announce(
                BABEL,
                20 * DAY,
                "babel",
                &["5002"],
                json!({"name": "", "about": "Translations between 40 languages",
                "image": "https://img.example/babel.png"})
                .to_string(),
            ),
        );
        let babel = self.dvms[BABEL].keys.clone();
        out.push(self.kind0(&babel, 19 * DAY, json!({"name": "babel-k0"})));
        out.push(self.announce(
            TUNE,
            12 * DAY,
            "tune",
            &["5251", "5250"],
            json!({"name": "Tune Smith", "supportsEncryption": true}).to_string(),
        ));
        // Announces 5600, which nobody ever serves or requests.
        out.push(self.announce(
            NOOGLE,
            42 * DAY,
            "noogle",
            &["5300", "5302", "5600"],
            json!({"name": "Noogle Lite", "encryptionSupported": false}).to_string(),
        ));
        let echo = self.dvms[ECHO].keys.clone();
        out.push(self.kind0(
            &echo,
            43 * DAY,
            json!({"name": "Echo Scribe", "about": "Transcripts"}),
        ));
        // Serves 5900 without announcing it.
        out.push(self.announce(
            COUNT,
            33 * DAY,
            "count",
            &["5400"],
            json!({"name": "Count Keeper"}).to_string(),
        ));
        out.push(self.announce(
            SCAN,
            2 * DAY,
            "scan",
            &["5500"],
            json!({"name": "Scan Guard"}).to_string(),
        ));
        let feed = self.dvms[FEED].keys.clone();
        out.push(self.kind0(
            &feed,
            44 * DAY,
            json!({"display_name": "Feed Weaver", "about": "Slow but thorough"}),
        ));
        out.push(self.announce(
            RANGER,
            15 * DAY,
            "ranger",
            &["5300"],
            json!({"name": "Relay Ranger"}).to_string(),
        ));
        // Announces 5102, never served.
        out.push(self.announce(
            CANVAS,
            33 * DAY,
            "canvas",
            &["5100", "5102"],
            json!({"name": "Canvas Bot"}).to_string(),
        ));
        // First seen through their announcements, shortly before their first answers.
        out.push(self.announce(
            QUICK,
            20 * DAY + 600,
            "quick",
            &["5001", "5050"],
            json!({"name": "Quick Sum"}).to_string(),
        ));
        out.push(self.announce(
            WEEKLY,
            3 * DAY + 300,
            "weekly",
            &["5300", "5302", "5315"],
            json!({"name": "Weekly Newcomer"}).to_string(),
        ));
        out.push(self.announce(
            FRESH,
            1500,
            "fresh",
            &["5300", "5315"],
            json!({"name": "Fresh Spark", "about": "New kid"}).to_string(),
        ));
        out.push(self.announce(
            RETIRED,
            44 * DAY,
            "retired",
            &["5300", "5201"],
            json!({"name": "Retired Engine"}).to_string(),
        ));
        let gate = self.dvms[GATE].keys.clone();
        out.push(self.kind0(&gate, 25 * DAY, json!({"name": "Gatekeeper"})));
        out.push(self.announce(
            CHAIN,
            9 * DAY,
            "chain",
            &["5050", "5742"],
            json!({"name": "Chain Agent"}).to_string(),
        ));
        let orphan = self.dvms[ORPHAN].keys.clone();
        out.push(self.kind0(&orphan, 40 * DAY, json!({"name": "Orphan Maker"})));
        // Two kind-0 profiles: the newer wins.
        let mirror = self.dvms[MIRROR].keys.clone();
        out.push(self.kind0(&mirror, 35 * DAY, json!({"name": "Mirror Old"})));
        out.push(self.kind0(
            &mirror,
            2 * DAY + 7 * h,
            json!({"display_name": "Mirror Node", "name": "mirror"}),
        ));
        // Announcement only: a DVM that never answers (directed requests to it are missed).
        out.push(self.announce(
            GHOST,
            40 * DAY,
            "ghost",
            &["5300", "5050"],
            json!({"name": "Ghost Announcer"}).to_string(),
        ));
        // A customer's profile does not make it a DVM.
        let busy = self.customers[0].clone();
        out.push(self.kind0(&busy, 20 * DAY, json!({"name": "Busy Customer"})));
    }

    /// Traffic outside ordinary jobs.
    /// Zap receipts (NIP-57), signed by one zapper service: for some results and payment requests of
    /// the last 28 days a zap from the customer to the DVM naming the result or the request; tips
    /// naming no event; and receipts that must pay nothing or no DVM: an invoice disagreeing with
    /// its zap request, an absurd amount, a zap to a customer, a zap of an event nobody stored.
    fn zaps(&mut self, out: &mut Vec<Event>) {
        let zapper = Keys::from_seed(b"statistics-zapper");
        let dvms: std::collections::HashSet<String> =
            self.dvms.iter().map(|d| d.keys.pubkey_hex().to_owned()).collect();
        let payable: Vec<(String, String, String, u64, Option<String>, bool)> = out
            .iter()
            .filter(|e| dvms.contains(&e.pubkey) && e.created_at + ZAP_HORIZON >= self.now)
            .filter_map(|e| {
                let pr = e.kind == 7000
                    && e.tags
                        .iter()
                        .any(|t| t.len() > 1 && t[0] == "status" && t[1] == "payment-required");
                let result = (6000..7000).contains(&e.kind);
                if !pr && !result {
                    return None;
                }
                let customer = e
                    .tags
                    .iter()
                    .find(|t| t.len() > 1 && t[0] == "p")?
                    .get(1)?
                    .clone();
                let request = e
                    .tags
                    .iter()
                    .find(|t| t.len() > 1 && t[0] == "e" && t[1].len() == 64)
                    .map(|t| t[1].clone());
                Some((
                    e.id.clone(),
                    e.pubkey.clone(),
                    customer,
                    e.created_at,
                    request,
                    pr,
                ))
            })
            .collect();
        for (id, dvm, customer, at, request, pr) in payable {
            if !self.rng.gen_bool(if pr { 0.4 } else { 0.1 }) {
                continue;
            }
            let when = at + self.rng.gen_range(5..600);
            if when + 2 > self.now {
                continue;
            }
            let zapped = match (pr, request) {
                (true, Some(r)) => r,
                (false, Some(r)) if self.rng.gen_bool(0.3) => r,
                _ => id,
            };
            let msat = self.rng.gen_range(1..5_000u64) * 1000;
            let sender_in_p = self.rng.gen_bool(0.2);
            out.push(self.zap_receipt(
                &zapper,
                when,
                &dvm,
                &customer,
                Some(&zapped),
                msat,
                Some(msat),
                sender_in_p,
            ));
        }
        let recent = |g: &mut Self| g.now - g.rng.gen_range(60..ZAP_HORIZON);
        for i in 0..60 {
            let dvm = self.dvms[i % 6].keys.pubkey_hex().to_owned();
            let sender = self.random_customer();
            let at = recent(self);
            let msat = self.rng.gen_range(1..100u64) * 1000;
            let (zapped, asked) = match i % 5 {
                // A tip naming no event; its zap request names no amount.
                0 => (None, None),
                // An event nobody stored: a payment, linked to no job.
                1 => (Some(self.random_hex()), Some(msat)),
                // The invoice is for ten times what the zap request asked: pays nothing.
                2 => (None, Some(msat / 10)),
                _ => (None, Some(msat)),
            };
            out.push(self.zap_receipt(&zapper, at, &dvm, &sender, zapped.as_deref(), msat, asked, false));
        }
        for _ in 0..10 {
            // 21 BTC: absurd, pays nothing.
            let dvm = self.dvms[0].keys.pubkey_hex().to_owned();
            let sender = self.random_customer();
            let at = recent(self);
            out.push(self.zap_receipt(&zapper, at, &dvm, &sender, None, 2_100_000_000_000, None, false));
            // A zap to a customer: not a DVM payment.
            let customer = self.random_customer();
            let at = recent(self);
            out.push(self.zap_receipt(&zapper, at, &customer, &sender, None, 21_000, Some(21_000), false));
        }
    }

    /// NIP-09 deletions: customers withdraw about 3% of their requests (a few along with other
    /// events in one deletion), some after a DVM concluded the job; others try to delete requests
    /// that are not theirs (which cancels nothing), and some name no valid id.
    fn deletions(&mut self, out: &mut Vec<Event>) {
        let customers: std::collections::HashMap<String, Keys> = self
            .customers
            .iter()
            .map(|k| (k.pubkey_hex().to_owned(), k.clone()))
            .collect();
        let requests: Vec<(String, String, u64)> = out
            .iter()
            .filter(|e| (5000..6000).contains(&e.kind) && customers.contains_key(&e.pubkey))
            .map(|e| (e.id.clone(), e.pubkey.clone(), e.created_at))
            .collect();
        for (id, author, at) in requests {
            if !self.rng.gen_bool(0.03) {
                continue;
            }
            let when = at + self.rng.gen_range(1..900);
            if when + 2 > self.now || self.in_quiet_zone(when) {
                continue;
            }
            let keys = &customers[&author];
            let mut tags = vec![tag(&["e", &id]), tag(&["k", "5000"])];
            if self.rng.gen_bool(0.2) {
                let other = self.random_hex();
                tags.push(tag(&["e", &other]));
            }
            let own = keys.sign(when, 5, tags, "withdrawn".to_owned());
            if self.rng.gen_bool(0.1) {
                // Someone else names the same request: it stays whatever it was.
                let other = self.random_customer();
                if other != author {
                    let stranger = customers[&other].clone();
                    out.push(stranger.sign(when, 5, vec![tag(&["e", &id])], String::new()));
                    continue;
                }
            }
            out.push(own);
        }
        let c0 = self.customers[0].clone();
        let bad = c0.sign(
            self.now - 50,
            5,
            vec![tag(&["e", "not-an-id"]), tag(&["a", "x"])],
            String::new(),
        );
        out.push(bad);
    }

    /// Live ContextVM traffic (kind 25910) over the last six days: calls to three servers (one of
    /// them a named DVM) from customers, most answered, some with errors; responses to calls never
    /// seen, notifications, junk, a call naming one server twice, and oversized method and tool
    /// names (multi-byte, so truncation must respect character boundaries).
    fn contextvm(&mut self, out: &mut Vec<Event>) {
        let servers: Vec<Keys> = std::iter::once(self.dvms[VERTEX].keys.clone())
            .chain((1..3).map(|i| Keys::from_seed(format!("statistics-cvm-server-{i}").as_bytes())))
            .collect();
        let customers: std::collections::HashMap<String, Keys> = self
            .customers
            .iter()
            .map(|k| (k.pubkey_hex().to_owned(), k.clone()))
            .collect();
        const TOOLS: [&str; 3] = ["get_weather", "search", "translate"];
        for n in 0..400u64 {
            let at = self.now - self.rng.gen_range(60..6 * DAY);
            if self.in_quiet_zone(at) {
                continue;
            }
            let server = &servers[[0, 0, 1, 2][self.rng.gen_range(0..4)]];
            let client = customers[&self.random_customer()].clone();
            let (method, name) = match self.rng.gen_range(0..20) {
                0..=13 => ("tools/call", Some(TOOLS[self.rng.gen_range(0..3)])),
                14..=16 => ("tools/list", None),
                17 => ("prompts/get", Some("summary")),
                _ => ("initialize", None),
            };
            let mut msg = serde_json::json!({ "jsonrpc": "2.0", "id": n, "method": method });
            if let Some(name) = name {
                msg["params"] = serde_json::json!({ "name": name, "arguments": {} });
            }
            let mut tags = vec![tag(&["p", server.pubkey_hex()])];
            if n % 97 == 0 {
                tags.push(tag(&["p", server.pubkey_hex()]));
                tags.push(tag(&["p", servers[2].pubkey_hex()]));
            }
            let call = client.sign(at, 25910, tags, msg.to_string());
            if self.rng.gen_bool(0.85) {
                let when = (at + self.rng.gen_range(0..30)).min(self.now);
                let body = if self.rng.gen_bool(0.1) {
                    serde_json::json!({ "jsonrpc": "2.0", "id": n, "error": { "code": -32000, "message": "tool failed" } })
                } else {
                    serde_json::json!({ "jsonrpc": "2.0", "id": n, "result": { "content": [] } })
                };
                let tags = vec![tag(&["e", &call.id]), tag(&["p", client.pubkey_hex()])];
                out.push(server.sign(when, 25910, tags, body.to_string()));
            }
            out.push(call);
        }
        let c0 = self.customers[0].clone();
        let s1 = &servers[1];
        let p = |k: &Keys| tag(&["p", k.pubkey_hex()]);
        for i in 0..10 {
            let at = self.now - 100 - i * 3600;
            // A response to a call nobody watched.
            let body = serde_json::json!({ "jsonrpc": "2.0", "id": i, "result": {} }).to_string();
            let unseen = self.random_hex();
            out.push(s1.sign(at, 25910, vec![tag(&["e", &unseen]), p(&c0)], body));
            // A notification: neither call nor response.
            let note = serde_json::json!({ "jsonrpc": "2.0", "method": "notifications/initialized" });
            out.push(c0.sign(at + 1, 25910, vec![p(s1)], note.to_string()));
        }
        let junk = [
            "not json",
            "[1,2]",
            r#"{"jsonrpc":"2.0","id":3}"#,
            r#"{"method":"  ","id":1}"#,
            "",
        ];
        for (i, content) in junk.iter().enumerate() {
            out.push(c0.sign(
                self.now - 200 - i as u64,
                25910,
                vec![p(s1)],
                (*content).to_owned(),
            ));
        }
        let long = serde_json::json!({
            "jsonrpc": "2.0", "id": 1, "method": format!("tools/{}", "é".repeat(60)),
            "params": { "name": "ü".repeat(100) }
        });
        out.push(c0.sign(self.now - 300, 25910, vec![p(s1)], long.to_string()));
    }

    /// One zap receipt; `msat` is the invoice's amount (a multiple of 100), `asked` the zap
    /// request's `amount` tag. The sender is in a `P` tag or in the zap request's pubkey.
    #[allow(clippy::too_many_arguments)]
    fn zap_receipt(
        &mut self,
        zapper: &Keys,
        at: u64,
        recipient: &str,
        sender: &str,
        zapped: Option<&str>,
        msat: u64,
        asked: Option<u64>,
        sender_in_p: bool,
    ) -> Event {
        self.nonce += 1;
        let mut data = String::from("pzap");
        let mut n = self.nonce;
        while n > 0 {
            data.push(BECH32[(n % 32) as usize] as char);
            n /= 32;
        }
        let bolt11 = if msat >= 100_000_000_000 && msat.is_multiple_of(100_000_000_000) {
            format!("lnbc{}1{data}", msat / 100_000_000_000)
        } else {
            format!("lnbc{}n1{data}", msat / 100)
        };
        let mut request_tags = vec![json!(["p", recipient])];
        if let Some(a) = asked {
            request_tags.push(json!(["amount", a.to_string()]));
        }
        let mut tags = vec![tag(&["p", recipient])];
        if let Some(z) = zapped {
            tags.push(tag(&["e", z]));
            request_tags.push(json!(["e", z]));
        }
        if sender_in_p {
            tags.push(tag(&["P", sender]));
        }
        let request = json!({
            "kind": 9734,
            "pubkey": if sender_in_p { String::new() } else { sender.to_owned() },
            "created_at": at - 1,
            "tags": request_tags,
            "content": "",
        });
        tags.push(tag(&["bolt11", &bolt11]));
        tags.push(tag(&["description", &request.to_string()]));
        zapper.sign(at, 9735, tags, String::new())
    }

    fn extras(&mut self, out: &mut Vec<Event>) {
        // Orphan result kind 6777 (job kind 5777): results for requests nobody has seen.
        for _ in 0..120 {
            let mut at = self.now - self.rng.gen_range(60..44 * DAY);
            while self.in_quiet_zone(at) {
                at = self.now - self.rng.gen_range(60..44 * DAY);
            }
            let fake = self.random_hex();
            let customer = self.random_customer();
            out.push(self.dvms[ORPHAN].keys.sign(
                at,
                6777,
                vec![tag(&["e", fake.as_str()]), tag(&["p", customer.as_str()])],
                "orphan result".to_owned(),
            ));
        }
        // Results linked to nothing at all (no e, no request tag).
        for _ in 0..20 {
            let at = self.now - self.rng.gen_range(60..30 * DAY);
            let customer = self.random_customer();
            out.push(self.dvms[NOOGLE].keys.sign(
                at,
                6300,
                vec![tag(&["p", customer.as_str()])],
                "unlinked result".to_owned(),
            ));
        }
        // Prices asked for unknown requests: counted per DVM only.
        for _ in 0..15 {
            let at = self.now - self.rng.gen_range(60..29 * DAY);
            let fake = self.random_hex();
            let customer = self.random_customer();
            let msat = self.price(PIXEL);
            out.push(self.dvms[PIXEL].keys.sign(
                at,
                7000,
                vec![
                    tag(&["e", fake.as_str()]),
                    tag(&["p", customer.as_str()]),
                    tag(&["status", "payment-required"]),
                    vec!["amount".to_owned(), underscored(msat)],
                ],
                String::new(),
            ));
        }
        // Excluded kinds: never stored, never counted.
        let c0 = self.customers[0].clone();
        let c1 = self.customers[1].clone();
        let excluded_request = c0.sign(
            self.now - 100,
            5969,
            vec![tag(&["i", "poll", "text"])],
            String::new(),
        );
        let fake = self.random_hex();
        out.push(self.dvms[VERTEX].keys.sign(
            self.now - 90,
            6969,
            vec![tag(&["e", fake.as_str()]), tag(&["p", c0.pubkey_hex()])],
            "not a job".to_owned(),
        ));
        out.push(excluded_request);
        out.push(c1.sign(self.now - 80, 5666, vec![], "poll".to_owned()));
    }
}
