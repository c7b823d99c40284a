//! A model of real DVM traffic (reference `traffic-profile.md`, "Simulator checklist"): skewed
//! kinds, a few dominant DVMs, heavy-tailed customers and bots, directed and open requests,
//! feedback sequences, payments asked and rarely made, errors, stalls, misses, encryption, job
//! chains, cancellations, malformed-but-real tags and out-of-order delivery; zaps for paid jobs and
//! tips; a ContextVM server (with live calls and responses) and an encrypted DVM beside the NIP-89
//! ones; heartbeats from services that stay up, go up and down, or stop; one DVM whose traffic
//! reaches only the first relay.
//!
//! Every event is signed with real keys. DVM and customer keys derive from fixed seeds, so the same
//! simulated DVMs keep their identity across runs.

use std::collections::VecDeque;

use dvmdash_core::Event;
use dvmdash_core::validate::Keys;
use rand::distributions::{Distribution, WeightedIndex};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

/// An event and when to publish it (unix ms).
#[derive(Debug, Clone)]
pub struct Planned {
    pub at_ms: u64,
    pub event: Event,
    /// Published to the first relay only (a DVM that does not use the others).
    pub first_relay_only: bool,
}

/// The DVM (roster index) whose results and feedback reach only the first relay.
const FIRST_RELAY_ONLY_DVM: usize = 2;
/// How a heartbeating service behaves, by beat number.
#[derive(Debug, Clone, Copy)]
enum Beating {
    Always,
    /// Six beats on, six off.
    Flaky,
    /// Beats this many times, then never again.
    StopsAfter(u64),
}

/// How a simulated DVM behaves.
#[derive(Debug, Clone)]
struct Behaviour {
    /// Result latency range in ms (log-uniform).
    latency_ms: (u64, u64),
    /// Chance to answer an open request at all.
    p_answer_open: f64,
    /// Outcome weights: success, error, stall, payment-required, partial, silent miss.
    outcome: [f64; 6],
    /// Chance to send `processing` before anything else.
    p_processing: f64,
    /// Chance a payment-required job is paid and then delivered.
    p_paid: f64,
    amount_msat: u64,
    error_reasons: &'static [&'static str],
    /// Result kind = request kind + this (1000 per spec; nostrdvm music uses +1400).
    result_offset: u16,
    /// Informational `["status","success"]` on results (real 5300 DVMs do it).
    status_on_result: bool,
}

#[derive(Debug, Clone)]
struct Dvm {
    keys: Keys,
    name: &'static str,
    about: &'static str,
    kinds: &'static [u16],
    behaviour: Behaviour,
    /// How it announces itself: 0 = JSON content, 1 = empty content plus a kind-0 profile,
    /// 2 = invalid JSON content, 3 = two announcements (personas), 4 = never announces.
    announce: u8,
    /// Feedback only, never results (a deprecated service answering with errors).
    feedback_only: bool,
}

const SUCCESS: usize = 0;
const ERROR: usize = 1;
const STALL: usize = 2;
const PAYMENT: usize = 3;
const PARTIAL: usize = 4;
const MISS: usize = 5;

fn dvm_roster() -> Vec<Dvm> {
    let fast = |p_miss: f64| Behaviour {
        latency_ms: (400, 2500),
        p_answer_open: 0.9,
        outcome: [0.95 - p_miss, 0.02, 0.01, 0.0, 0.0, p_miss + 0.02],
        p_processing: 0.1,
        p_paid: 0.0,
        amount_msat: 0,
        error_reasons: &["relay timeout", "no notes found for this user"],
        result_offset: 1000,
        status_on_result: true,
    };
    let ai = |lat: (u64, u64), success: f64| Behaviour {
        latency_ms: lat,
        p_answer_open: 0.7,
        outcome: [success, 0.1, 0.08, 0.0, 0.02, 0.9 - success],
        p_processing: 0.8,
        p_paid: 0.0,
        amount_msat: 0,
        error_reasons: &[
            "model overloaded, try again later",
            "input too long",
            "could not fetch url",
        ],
        result_offset: 1000,
        status_on_result: false,
    };
    let k = |seed: &str| Keys::from_seed(format!("dvmdash-sim-dvm-{seed}").as_bytes());
    vec![
        Dvm {
            keys: k("trending"),
            name: "Trending Notes",
            about: "Notes trending on the network in the last hours",
            kinds: &[5300],
            behaviour: fast(0.01),
            announce: 0,
            feedback_only: false,
        },
        Dvm {
            keys: k("zapped"),
            name: "Top Zapped",
            about: "The most zapped notes of the day",
            kinds: &[5300],
            behaviour: fast(0.04),
            announce: 1,
            feedback_only: false,
        },
        Dvm {
            keys: k("topics"),
            name: "Your Topics (beta)",
            about: "A feed of your followed hashtags",
            kinds: &[5300],
            behaviour: fast(0.15),
            announce: 2,
            feedback_only: false,
        },
        Dvm {
            keys: k("vertex"),
            name: "Vertex",
            about: "Reputation and follow recommendations",
            kinds: &[5312, 5313, 5314, 5315],
            behaviour: Behaviour {
                latency_ms: (150, 900),
                error_reasons: &["rate limit exceeded", "unknown pubkey"],
                status_on_result: false,
                outcome: [0.9, 0.06, 0.0, 0.0, 0.0, 0.04],
                ..fast(0.0)
            },
            announce: 0,
            feedback_only: false,
        },
        Dvm {
            keys: k("noogle"),
            name: "Noogle Search",
            about: "Full-text search over notes and profiles",
            kinds: &[5302, 5303],
            behaviour: Behaviour {
                latency_ms: (800, 6000),
                ..fast(0.05)
            },
            announce: 3,
            feedback_only: false,
        },
        Dvm {
            keys: k("pixel"),
            name: "Pixel Forge",
            about: "Image generation (paid)",
            kinds: &[5100],
            behaviour: Behaviour {
                latency_ms: (8_000, 60_000),
                p_answer_open: 0.95,
                outcome: [0.05, 0.05, 0.0, 0.85, 0.0, 0.05],
                p_processing: 0.2,
                p_paid: 0.2,
                amount_msat: 51_000,
                error_reasons: &["NSFW prompt refused", "GPU out of memory"],
                result_offset: 1000,
                status_on_result: false,
            },
            announce: 0,
            feedback_only: false,
        },
        Dvm {
            keys: k("canvas"),
            name: "Canvas AI",
            about: "Cheaper image generation",
            kinds: &[5100],
            behaviour: Behaviour {
                amount_msat: 21_000,
                p_paid: 0.1,
                outcome: [0.1, 0.1, 0.0, 0.75, 0.0, 0.05],
                ..ai((15_000, 90_000), 0.1)
            },
            announce: 4,
            feedback_only: false,
        },
        Dvm {
            keys: k("summarizer"),
            name: "Summarizer",
            about: "Summaries and text generation with open models",
            kinds: &[5001, 5050],
            behaviour: ai((5_000, 60_000), 0.7),
            announce: 0,
            feedback_only: false,
        },
        Dvm {
            keys: k("translator"),
            name: "Babel",
            about: "Translation",
            kinds: &[5002, 5001],
            behaviour: ai((3_000, 20_000), 0.75),
            announce: 0,
            feedback_only: false,
        },
        Dvm {
            keys: k("extractor"),
            name: "Text Extractor",
            about: "Extracts text from urls and pdfs",
            kinds: &[5000],
            behaviour: ai((2_000, 30_000), 0.45),
            announce: 0,
            feedback_only: false,
        },
        Dvm {
            keys: k("music"),
            name: "Music Maker",
            about: "Music generation (nostrdvm)",
            kinds: &[5251],
            behaviour: Behaviour {
                result_offset: 1400,
                ..ai((20_000, 120_000), 0.6)
            },
            announce: 0,
            feedback_only: false,
        },
        Dvm {
            keys: k("flaky"),
            name: "Flaky LLM",
            about: "Often stalls",
            kinds: &[5050],
            behaviour: Behaviour {
                outcome: [0.3, 0.1, 0.55, 0.0, 0.0, 0.05],
                ..ai((10_000, 40_000), 0.3)
            },
            announce: 0,
            feedback_only: false,
        },
        Dvm {
            keys: k("retired"),
            name: "Retired Service",
            about: "No longer maintained",
            kinds: &[5050, 5001],
            behaviour: Behaviour {
                outcome: [0.0, 1.0, 0.0, 0.0, 0.0, 0.0],
                p_answer_open: 0.3,
                error_reasons: &["this service is deprecated"],
                ..ai((300, 2_000), 0.0)
            },
            announce: 4,
            feedback_only: true,
        },
    ]
}

/// Request kinds and their weights (about 90 % discovery, then Vertex, search, paid images, AI).
const KIND_WEIGHTS: &[(u16, f64)] = &[
    (5300, 90.0),
    (5312, 3.0),
    (5314, 1.0),
    (5313, 0.3),
    (5315, 0.5),
    (5302, 1.5),
    (5303, 0.2),
    (5100, 1.5),
    (5050, 1.0),
    (5001, 0.5),
    (5002, 0.3),
    (5000, 0.3),
    (5251, 0.2),
    // Kinds nobody serves: unanswered requests.
    (5999, 0.1),
    (5742, 0.1),
];

/// The traffic model.
pub struct Model {
    rng: StdRng,
    dvms: Vec<Dvm>,
    customers: Vec<Keys>,
    customer_weights: WeightedIndex<f64>,
    bots: Vec<Keys>,
    kinds: WeightedIndex<f64>,
    /// Recent requests, for job chains.
    recent: VecDeque<(String, u16)>,
    /// Signs zap receipts (a lightning service's key).
    zapper: Keys,
    contextvm: Keys,
    encrypted_dvm: Keys,
}

impl Model {
    /// `customers` distinct customer keys, weighted by a heavy tail (Zipf-like).
    pub fn new(seed: u64, customers: usize) -> Self {
        let customers = customers.max(1);
        let customer_keys: Vec<Keys> = (0..customers)
            .map(|i| Keys::from_seed(format!("dvmdash-sim-customer-{i}").as_bytes()))
            .collect();
        let weights: Vec<f64> = (1..=customers).map(|r| 1.0 / (r as f64).powf(1.1)).collect();
        Model {
            rng: StdRng::seed_from_u64(seed),
            dvms: dvm_roster(),
            customers: customer_keys,
            customer_weights: WeightedIndex::new(weights).expect("positive weights"),
            bots: (0..2)
                .map(|i| Keys::from_seed(format!("dvmdash-sim-bot-{i}").as_bytes()))
                .collect(),
            kinds: WeightedIndex::new(KIND_WEIGHTS.iter().map(|(_, w)| *w)).expect("positive weights"),
            recent: VecDeque::new(),
            zapper: Keys::from_seed(b"dvmdash-sim-zapper"),
            contextvm: Keys::from_seed(b"dvmdash-sim-contextvm"),
            encrypted_dvm: Keys::from_seed(b"dvmdash-sim-encrypted-dvm"),
        }
    }

    /// Pubkeys of every simulated DVM.
    pub fn dvm_pubkeys(&self) -> Vec<String> {
        self.dvms.iter().map(|d| d.keys.pubkey_hex().to_owned()).collect()
    }

    /// NIP-89 announcements (and kind-0 profiles where the announcement has no content).
    pub fn announcements(&mut self, now_secs: u64) -> Vec<Event> {
        let mut out = Vec::new();
        for dvm in &self.dvms {
            let k_tags = || dvm.kinds.iter().map(|k| vec!["k".to_owned(), k.to_string()]);
            let profile = serde_json::json!({
                "name": dvm.name,
                "about": dvm.about,
                "picture": format!("https://robohash.org/{}", &dvm.keys.pubkey_hex()[..16]),
                "encryptionSupported": dvm.kinds.contains(&5302) || dvm.kinds.contains(&5100),
            })
            .to_string();
            let d = |suffix: &str| {
                vec![
                    "d".to_owned(),
                    format!("{}{suffix}", &dvm.keys.pubkey_hex()[..12]),
                ]
            };
            match dvm.announce {
                0 => out.push(dvm.keys.sign(
                    now_secs,
                    31990,
                    std::iter::once(d("")).chain(k_tags()).collect(),
                    profile,
                )),
                1 => {
                    out.push(dvm.keys.sign(
                        now_secs,
                        31990,
                        std::iter::once(d("")).chain(k_tags()).collect(),
                        String::new(),
                    ));
                    out.push(dvm.keys.sign(now_secs, 0, vec![], profile));
                }
                2 => out.push(dvm.keys.sign(
                    now_secs,
                    31990,
                    std::iter::once(d("")).chain(k_tags()).collect(),
                    format!("{{name: '{}', supportsEncryption: True}}", dvm.name),
                )),
                3 => {
                    for (i, k) in dvm.kinds.iter().enumerate() {
                        out.push(dvm.keys.sign(
                            now_secs,
                            31990,
                            vec![d(&format!("-{i}")), vec!["k".into(), k.to_string()]],
                            profile.clone(),
                        ));
                    }
                }
                _ => {}
            }
        }
        out.extend(self.other_families(now_secs));
        out
    }

    /// A ContextVM server (11316 announcement and its 11317 tools list) and an encrypted DVM (11999).
    fn other_families(&self, now_secs: u64) -> Vec<Event> {
        let server = serde_json::json!({
            "name": "Nostr Tools (MCP)",
            "about": "Search notes and profiles over ContextVM.",
            "picture": "https://robohash.org/contextvm",
        });
        let tools = serde_json::json!({"tools": [
            {"name": "search_notes", "description": "Full-text search over notes"},
            {"name": "get_profile", "description": "A pubkey's profile"},
            {"name": "count_zaps", "description": "Zaps received by an event"},
        ]});
        let sealed = serde_json::json!({"name": "Sealed Translate", "about": "Encrypted translation jobs."});
        vec![
            self.contextvm.sign(now_secs, 11316, vec![], server.to_string()),
            self.contextvm.sign(now_secs, 11317, vec![], tools.to_string()),
            self.encrypted_dvm.sign(
                now_secs,
                11999,
                vec![vec!["k".into(), "5002".into()], vec!["k".into(), "5100".into()]],
                sealed.to_string(),
            ),
        ]
    }

    /// Heartbeat `beat` (nostrdvm's kind 11998, with a NIP-40 expiration) of every service that
    /// beats: the ContextVM server and the first DVM always, the encrypted DVM six on and six off,
    /// the second DVM ten times and then never again.
    pub fn heartbeats(&self, now_secs: u64, beat: u64) -> Vec<Event> {
        let services = [
            (&self.contextvm, Beating::Always),
            (&self.dvms[0].keys, Beating::Always),
            (&self.encrypted_dvm, Beating::Flaky),
            (&self.dvms[1].keys, Beating::StopsAfter(10)),
        ];
        services
            .into_iter()
            .filter(|(_, b)| match b {
                Beating::Always => true,
                Beating::Flaky => beat % 12 < 6,
                Beating::StopsAfter(n) => beat < *n,
            })
            .map(|(keys, _)| {
                keys.sign(
                    now_secs,
                    11998,
                    vec![
                        vec!["d".into(), "heartbeat".into()],
                        vec!["expiration".into(), (now_secs + 900).to_string()],
                    ],
                    String::new(),
                )
            })
            .collect()
    }

    /// A live ContextVM call (kind 25910, ephemeral) to the ContextVM server from a customer, and
    /// usually its response a moment later: one in ten goes unanswered, about one answer in twelve
    /// is an error.
    pub fn contextvm_call(&mut self, now_ms: u64) -> Vec<Planned> {
        const TOOLS: [&str; 3] = ["search_notes", "get_profile", "count_zaps"];
        let client = self.customers[self.customer_weights.sample(&mut self.rng)].clone();
        let id = self.rng.gen_range(1..1_000_000u64);
        let (method, params) = if self.rng.gen_bool(0.85) {
            let tool = TOOLS[self.rng.gen_range(0..TOOLS.len())];
            ("tools/call", serde_json::json!({ "name": tool, "arguments": {} }))
        } else {
            ("tools/list", serde_json::json!({}))
        };
        let call_msg = serde_json::json!({ "jsonrpc": "2.0", "id": id, "method": method, "params": params });
        let server = self.contextvm.pubkey_hex().to_owned();
        let call = client.sign(
            now_ms / 1000,
            25910,
            vec![vec!["p".into(), server]],
            call_msg.to_string(),
        );
        let mut out = vec![Planned {
            at_ms: now_ms,
            event: call.clone(),
            first_relay_only: false,
        }];
        if self.rng.gen_bool(0.9) {
            let at_ms = now_ms + self.rng.gen_range(200..2_000);
            let body = if self.rng.gen_bool(0.08) {
                serde_json::json!({ "jsonrpc": "2.0", "id": id, "error": { "code": -32603, "message": "relay timeout" } })
            } else {
                serde_json::json!({ "jsonrpc": "2.0", "id": id, "result": { "content": [{ "type": "text", "text": "ok" }] } })
            };
            let tags = vec![
                vec!["e".into(), call.id.clone()],
                vec!["p".into(), client.pubkey_hex().to_owned()],
            ];
            out.push(Planned {
                at_ms,
                event: self.contextvm.sign(at_ms / 1000, 25910, tags, body.to_string()),
                first_relay_only: false,
            });
        }
        out
    }

    /// A zap receipt (NIP-57) from `customer` to `dvm` naming `zapped`, `msat` rounded to the
    /// invoice's 100-msat step.
    fn zap(&mut self, dvm: &Dvm, customer: &Keys, zapped: &str, msat: u64, at_ms: u64) -> Planned {
        let msat = (msat / 100).max(1) * 100;
        let request = serde_json::json!({
            "kind": 9734,
            "pubkey": customer.pubkey_hex(),
            "created_at": at_ms / 1000,
            "content": "",
            "tags": [["p", dvm.keys.pubkey_hex()], ["e", zapped], ["amount", msat.to_string()],
                     ["relays", "wss://relay.damus.io"]],
        });
        let tags = vec![
            vec!["p".into(), dvm.keys.pubkey_hex().to_owned()],
            vec!["P".into(), customer.pubkey_hex().to_owned()],
            vec!["e".into(), zapped.to_owned()],
            vec!["bolt11".into(), fake_bolt11(msat, &mut self.rng)],
            vec!["description".into(), request.to_string()],
        ];
        Planned {
            at_ms,
            event: self.zapper.sign(at_ms / 1000, 9735, tags, String::new()),
            first_relay_only: false,
        }
    }

    /// One job: a request and every reaction to it, with publication times from `now_ms` on.
    pub fn job(&mut self, now_ms: u64) -> Vec<Planned> {
        let kind = KIND_WEIGHTS[self.kinds.sample(&mut self.rng)].0;
        let customer = if kind == 5300 && self.rng.gen_bool(0.2) {
            self.bots[self.rng.gen_range(0..self.bots.len())].clone()
        } else {
            self.customers[self.customer_weights.sample(&mut self.rng)].clone()
        };
        let supporting: Vec<usize> = (0..self.dvms.len())
            .filter(|i| self.dvms[*i].kinds.contains(&kind))
            .collect();
        // Discovery and Vertex requests are directed (100 % of real 5300 traffic); search half;
        // AI and image jobs are open to any DVM.
        let target = match kind {
            5300 => Some(
                supporting[WeightedIndex::new([60.0, 30.0, 10.0])
                    .expect("weights")
                    .sample(&mut self.rng)],
            ),
            5312..=5315 => supporting.first().copied(),
            5302 | 5303 if self.rng.gen_bool(0.5) => supporting.first().copied(),
            _ => None,
        };
        let encrypted = match kind {
            5302 => self.rng.gen_bool(0.56),
            5100 => self.rng.gen_bool(0.33),
            5050 => self.rng.gen_bool(0.076),
            _ => false,
        };
        let mut created = now_ms / 1000;
        if self.rng.gen_bool(0.02) {
            // Back-dated by the client's clock.
            created = created.saturating_sub(self.rng.gen_range(5..300));
        }
        let tags = self.request_tags(kind, target, encrypted);
        let content = if encrypted {
            self.ciphertext()
        } else {
            String::new()
        };
        let request = customer.sign(created, kind, tags, content);
        // Now and then the request reaches relays after its answers (out-of-order delivery).
        let request_at = if self.rng.gen_bool(0.02) {
            now_ms + 2_000
        } else {
            now_ms
        };
        let mut out = vec![Planned {
            at_ms: request_at,
            event: request.clone(),
            first_relay_only: false,
        }];

        let responders: Vec<usize> = match target {
            Some(t) => vec![t],
            None => supporting
                .iter()
                .copied()
                .filter(|i| self.rng.gen_bool(self.dvms[*i].behaviour.p_answer_open))
                .collect(),
        };
        for i in responders {
            let dvm = self.dvms[i].clone();
            self.respond(&dvm, &request, &customer, now_ms, &mut out);
        }
        if self.rng.gen_bool(0.01) {
            let cancel = customer.sign(
                now_ms / 1000 + 2,
                5,
                vec![
                    vec!["e".into(), request.id.clone()],
                    vec!["k".into(), kind.to_string()],
                ],
                "never mind".into(),
            );
            out.push(Planned {
                at_ms: now_ms + 2_000,
                event: cancel,
                first_relay_only: false,
            });
        }
        self.recent.push_back((request.id.clone(), kind));
        if self.recent.len() > 200 {
            self.recent.pop_front();
        }
        out
    }

    fn request_tags(&mut self, kind: u16, target: Option<usize>, encrypted: bool) -> Vec<Vec<String>> {
        let t = |parts: &[&str]| parts.iter().map(|s| s.to_string()).collect::<Vec<String>>();
        let mut tags = Vec::new();
        if let Some(i) = target {
            tags.push(t(&["p", self.dvms[i].keys.pubkey_hex()]));
        }
        if encrypted {
            tags.push(t(&["encrypted"]));
            return tags;
        }
        match kind {
            5300 => {
                tags.push(t(&[
                    "relays",
                    "wss://relay.primal.net",
                    "wss://nos.lol",
                    "wss://relay.damus.io/",
                ]));
                tags.push(t(&["alt", "NIP90 Content Discovery Request"]));
                if self.rng.gen_bool(0.12) {
                    tags.push(t(&["param", "max_results", "200"]));
                }
            }
            5312..=5315 => {
                tags.push(t(&[
                    "param",
                    "target",
                    &hex::encode(self.rng.r#gen::<[u8; 32]>()),
                ]));
                tags.push(t(&["param", "limit", "5"]));
            }
            5302 | 5303 => {
                tags.push(t(&["i", "bitcoin conference", "text"]));
                tags.push(t(&["client", "noogle"]));
            }
            5100 => {
                tags.push(t(&["i", "a lighthouse in a storm, oil painting", "text"]));
                tags.push(t(&["output", "image/png"]));
                tags.push(t(&["bid", "100_000"]));
            }
            5001 if self.rng.gen_bool(0.3) && !self.recent.is_empty() => {
                // A chain: summarize the output of an earlier job.
                let (prev, _) = self.recent[self.rng.gen_range(0..self.recent.len())].clone();
                tags.push(t(&["i", &prev, "job", "wss://relay.damus.io"]));
            }
            _ => {
                tags.push(t(&["i", "https://example.com/article.html", "url"]));
                tags.push(t(&["param", "model", "llama-3-8b"]));
                if self.rng.gen_bool(0.07) {
                    // A tag whose name is a URL, as seen on 7 % of real 5050 requests.
                    tags.push(t(&["wss://nostr.oxtr.dev", "wss://relay.primal.net"]));
                }
            }
        }
        tags
    }

    fn respond(&mut self, dvm: &Dvm, request: &Event, customer: &Keys, now_ms: u64, out: &mut Vec<Planned>) {
        let b = &dvm.behaviour;
        let outcome = WeightedIndex::new(b.outcome)
            .expect("weights")
            .sample(&mut self.rng);
        let (lo, hi) = b.latency_ms;
        let latency = (lo as f64 * (hi as f64 / lo as f64).powf(self.rng.r#gen::<f64>())) as u64;
        let mut t = now_ms + self.rng.gen_range(50..400);
        if outcome != MISS && (outcome == STALL || self.rng.gen_bool(b.p_processing)) {
            out.push(self.feedback(dvm, request, customer, t, &["status", "processing"], None));
            t += self.rng.gen_range(100..1000);
        }
        match outcome {
            SUCCESS if !dvm.feedback_only => {
                let result = self.result(dvm, request, customer, now_ms + latency);
                if self.rng.gen_bool(0.05) {
                    // A tip for a good result.
                    let sats = self.rng.gen_range(1..500u64);
                    let at = result.at_ms + self.rng.gen_range(2_000..30_000);
                    let id = result.event.id.clone();
                    out.push(self.zap(dvm, customer, &id, sats * 1000, at));
                }
                out.push(result);
            }
            SUCCESS | ERROR => {
                let reason = b.error_reasons[self.rng.gen_range(0..b.error_reasons.len())];
                out.push(self.feedback(
                    dvm,
                    request,
                    customer,
                    now_ms + latency / 2,
                    &["status", "error", reason],
                    None,
                ));
            }
            PAYMENT => {
                out.push(self.feedback(
                    dvm,
                    request,
                    customer,
                    t,
                    &["status", "payment-required"],
                    Some(b.amount_msat),
                ));
                if self.rng.gen_bool(b.p_paid) {
                    let paid_at = t + self.rng.gen_range(3_000..20_000);
                    let amount = b.amount_msat;
                    out.push(self.zap(dvm, customer, &request.id, amount, paid_at - 1_000));
                    out.push(self.feedback(dvm, request, customer, paid_at, &["status", "processing"], None));
                    out.push(self.result(dvm, request, customer, paid_at + latency));
                }
            }
            PARTIAL => {
                out.push(self.feedback(
                    dvm,
                    request,
                    customer,
                    t + latency / 2,
                    &["status", "partial"],
                    None,
                ));
                out.push(self.result(dvm, request, customer, now_ms + latency));
            }
            // STALL: processing, then silence. MISS: nothing at all.
            _ => {}
        }
    }

    fn feedback(
        &mut self,
        dvm: &Dvm,
        request: &Event,
        customer: &Keys,
        at_ms: u64,
        status: &[&str],
        amount: Option<u64>,
    ) -> Planned {
        let mut tags: Vec<Vec<String>> = vec![
            status.iter().map(|s| s.to_string()).collect(),
            vec!["e".into(), request.id.clone(), "wss://relay.damus.io".into()],
            vec!["p".into(), customer.pubkey_hex().to_owned()],
        ];
        if let Some(msat) = amount {
            // Real amounts come in many shapes: plain, with a bolt11, underscored with a lightning address.
            let tag = match self.rng.gen_range(0..3) {
                0 => vec!["amount".into(), msat.to_string()],
                1 => vec![
                    "amount".into(),
                    msat.to_string(),
                    fake_bolt11(msat, &mut self.rng),
                ],
                _ => vec!["amount".into(), underscored(msat), "forge@getalby.com".into()],
            };
            tags.push(tag);
        }
        let content = if request
            .tags
            .iter()
            .any(|t| t.first().map(String::as_str) == Some("encrypted"))
        {
            tags.push(vec!["encrypted".into()]);
            self.ciphertext()
        } else {
            String::new()
        };
        Planned {
            at_ms,
            event: dvm.keys.sign(skewed(at_ms, &mut self.rng), 7000, tags, content),
            first_relay_only: self.first_relay_only(dvm),
        }
    }

    fn result(&mut self, dvm: &Dvm, request: &Event, customer: &Keys, at_ms: u64) -> Planned {
        let b = &dvm.behaviour;
        let kind = request.kind + b.result_offset;
        let mut tags: Vec<Vec<String>> = Vec::new();
        // A few real DVMs omit `e` and link only through the embedded request.
        if !self.rng.gen_bool(0.03) {
            tags.push(vec![
                "e".into(),
                request.id.clone(),
                "wss://relay.damus.io".into(),
            ]);
        }
        tags.push(vec!["p".into(), customer.pubkey_hex().to_owned()]);
        tags.push(vec!["request".into(), request.to_json()]);
        if b.status_on_result {
            tags.push(vec!["status".into(), "success".into()]);
        }
        let encrypted = request
            .tags
            .iter()
            .any(|t| t.first().map(String::as_str) == Some("encrypted"));
        let content = if encrypted {
            tags.push(vec!["encrypted".into()]);
            self.ciphertext()
        } else if request.kind == 5300 {
            let ids: Vec<Vec<String>> = (0..20)
                .map(|_| vec!["e".to_string(), hex::encode(self.rng.r#gen::<[u8; 32]>())])
                .collect();
            serde_json::to_string(&ids).unwrap_or_default()
        } else {
            format!("result of job {}", &request.id[..8])
        };
        Planned {
            at_ms,
            event: dvm.keys.sign(skewed(at_ms, &mut self.rng), kind, tags, content),
            first_relay_only: self.first_relay_only(dvm),
        }
    }

    fn first_relay_only(&self, dvm: &Dvm) -> bool {
        self.dvms
            .get(FIRST_RELAY_ONLY_DVM)
            .is_some_and(|d| d.keys.pubkey_hex() == dvm.keys.pubkey_hex())
    }

    fn ciphertext(&mut self) -> String {
        let bytes: [u8; 32] = self.rng.r#gen();
        let iv: [u8; 16] = self.rng.r#gen();
        format!("{}?iv={}", hex::encode(bytes), hex::encode(iv))
    }
}

/// `created_at` from the publication time, with the occasional skewed signer clock.
fn skewed(at_ms: u64, rng: &mut StdRng) -> u64 {
    let s = at_ms / 1000;
    if rng.gen_bool(0.01) {
        s.saturating_sub(rng.gen_range(1..30))
    } else {
        s
    }
}

fn underscored(n: u64) -> String {
    dvmdash_core::fmt::group_digits(n, '_')
}

/// An invoice-shaped string whose human-readable part encodes `msat` (nano-BTC units).
fn fake_bolt11(msat: u64, rng: &mut StdRng) -> String {
    const CHARSET: &[u8] = b"qpzry9x8gf2tvdw0s3jn54khce6mua7l";
    let tail: String = (0..60)
        .map(|_| CHARSET[rng.gen_range(0..CHARSET.len())] as char)
        .collect();
    format!("lnbc{}n1p{tail}", msat / 100)
}

#[cfg(test)]
mod tests {
    use super::*;
    use dvmdash_core::kinds::{KindFilter, Role};
    use dvmdash_core::validate::Validator;

    #[test]
    fn every_event_is_valid_and_the_mix_is_skewed() {
        let mut m = Model::new(7, 50);
        let now = 1_750_000_000_000u64;
        let mut events = m.announcements(now / 1000);
        for i in 0..2000 {
            events.extend(m.job(now + i * 500).into_iter().map(|p| p.event));
        }
        let v = Validator::default();
        let f = KindFilter::default();
        let mut requests = 0;
        let mut discovery = 0;
        let mut feedback = 0;
        let mut results = 0;
        for e in &events {
            v.verify(&e.to_json(), now / 1000 + 3600)
                .expect("simulated events verify");
            match f.role(e.kind) {
                Role::Request => {
                    requests += 1;
                    if e.kind == 5300 {
                        discovery += 1;
                    }
                }
                Role::Feedback => feedback += 1,
                Role::Result => results += 1,
                _ => {}
            }
        }
        assert_eq!(requests, 2000);
        assert!((1700..1900).contains(&discovery), "{discovery}");
        assert!(results > 1500 && feedback > 50, "{results} {feedback}");
        // Deterministic for a seed.
        let a = Model::new(1, 10).job(now);
        let b = Model::new(1, 10).job(now);
        assert_eq!(a.len(), b.len());
        assert_eq!(a[0].event.tags, b[0].event.tags);
    }

    #[test]
    fn every_family_heartbeats_zaps_and_a_first_relay_only_dvm() {
        let mut m = Model::new(3, 50);
        let now = 1_750_000_000_000u64;
        let kinds: Vec<u16> = m.announcements(now / 1000).iter().map(|e| e.kind).collect();
        for k in [31990, 11316, 11317, 11999] {
            assert!(kinds.contains(&k), "announcements include {k}");
        }
        let beats: Vec<usize> = (0..24).map(|b| m.heartbeats(now / 1000, b).len()).collect();
        assert_eq!(&beats[..6], &[4; 6], "all four beat at first");
        assert_eq!(beats[6], 3, "the flaky one pauses");
        assert_eq!(beats[12], 3, "the stopped one never comes back");
        assert!(beats[10..].iter().all(|&n| n <= 3));
        let planned: Vec<Planned> = (0..3000).flat_map(|i| m.job(now + i * 500)).collect();
        let zaps: Vec<&Planned> = planned.iter().filter(|p| p.event.kind == 9735).collect();
        assert!(zaps.len() > 20, "{} zaps", zaps.len());
        let f = KindFilter::default();
        for z in &zaps {
            let (_, facts) = dvmdash_core::nip90::parse(&z.event, &f);
            assert!(
                facts.amount_msat.is_some() && facts.deviations == 0,
                "a believable zap"
            );
        }
        let only_first: Vec<&Planned> = planned.iter().filter(|p| p.first_relay_only).collect();
        assert!(!only_first.is_empty());
        let author = m.dvms[FIRST_RELAY_ONLY_DVM].keys.pubkey_hex();
        assert!(only_first.iter().all(|p| p.event.pubkey == author));
    }

    #[test]
    fn amount_shapes_parse() {
        assert_eq!(underscored(100_000), "100_000");
        assert_eq!(underscored(51_000), "51_000");
        let mut rng = StdRng::seed_from_u64(1);
        let inv = fake_bolt11(51_000, &mut rng);
        assert_eq!(dvmdash_core::nip90::bolt11_amount_msat(&inv), Some(51_000));
    }
}
