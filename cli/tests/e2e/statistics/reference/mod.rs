//! An independent reference implementation of every number in docs/statistics.md, computed in
//! plain Rust over the deduplicated corpus. It shares nothing with the api's queries: from the
//! project it only takes the response types (`dvmdash_core::dto`), the kind registry's names and
//! the npub encoding. Tags are parsed here, by the rules of the document, not by `core::nip90`.
//!
//! Readings chosen where the document leaves room (the api must match them):
//! - `jobs_answered` counts distinct request ids named by the DVM's results and feedback in the
//!   window, whether or not that request was ever seen.
//! - The first time-series bucket counts every event from its own start, including the part before
//!   the window start.
//! - The profile is taken from the newest usable announcement among all of the DVM's
//!   announcements, else the newest usable kind-0 (the corpus keeps "all" and "current only" equal).
//! - `missed_rate` = missed / final_directed, none when no directed request is final.
//! - Rows of performance, reach, competition and prices exist only for groups with at least one
//!   job, request, result or price; reach rows per DVM exist for every `p` target in the window.
//! - `top_dvms` of a kind lists every DVM with a result of that kind in the window (no cut-off);
//!   monthly `top_dvms` only DVMs with at least one result that month.
//! - A feedback event without a `status` tag, or with an unknown status, is "unknown" (stalled).
//! - `now` is the answer's `timestamp`, a whole second; windows, buckets, finality and `is_active`
//!   all use that same second.
//! - Lists (checked in `statistics.rs`): `order` defaults to `desc`; kind search is a
//!   case-insensitive substring of the kind number or the registry name, like DVM search; items
//!   with equal sort keys may come in any order.
//! - All-time facts (first/last seen, served and announced kinds, current announcements, profiles,
//!   kinds' first/last seen and supporting DVMs) include events whose raw rows TTL removed.

#![allow(dead_code)]

pub mod corpus;

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};

use dvmdash_core::Event;
use dvmdash_core::dto::{
    Competition, CompetitionRow, ContextvmCapability, ContextvmPoint, ContextvmServer, ContextvmTraffic,
    DirectedRow, DvmKindActivity, DvmPoint, DvmStats, DvmSummary, GlobalPoint, GlobalStats, KindDvmActivity,
    KindPoint, KindReach, KindStats, KindSummary, KindUsage, KindsUsage, MonthRow, MonthlyHistory, NewDvm,
    NewKind, Outcomes, PaymentPoint, PaymentRow, Payments, Performance, PerformanceRow, PriceRow, Prices,
    Profile, Quantiles, Ranked, Reach, ReasonCount, RelayCoverage, RelayCoverageRow, TimeRange, UnusedKind,
    WhatsNew, rfc3339,
};

/// Kinds in the DVM ranges that are other protocols: neither stored nor counted.
pub const EXCLUDED_KINDS: [u16; 4] = [5666, 5969, 6666, 6969];

/// Default job timeout: 300 s for discovery and search (5300-5399), an hour for the rest.
pub fn timeout(kind: u16) -> u64 {
    if (5300..=5399).contains(&kind) { 300 } else { 3600 }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Part {
    Request,
    Result,
    Feedback,
    Announcement,
    Profile,
    /// Zap receipts (9735).
    Zap,
    /// Deletions (NIP-09, kind 5).
    Deletion,
    /// ContextVM messages (25910): calls, responses, notifications, junk.
    Cvm,
}

fn part_of(kind: u16) -> Option<Part> {
    if EXCLUDED_KINDS.contains(&kind) {
        return None;
    }
    match kind {
        5000..=5999 => Some(Part::Request),
        6000..=6999 => Some(Part::Result),
        7000 => Some(Part::Feedback),
        31990 => Some(Part::Announcement),
        0 => Some(Part::Profile),
        9735 => Some(Part::Zap),
        5 => Some(Part::Deletion),
        25910 => Some(Part::Cvm),
        _ => None,
    }
}

/// One stored event, parsed. Pubkeys and ids are interned (indices into `Reference::pks`/`ids`).
#[derive(Debug, Clone)]
pub struct Ev {
    pub id: u32,
    pub author: u32,
    pub at: u64,
    pub kind: u16,
    pub part: Part,
    /// Requests: own kind. Results: the request tag's `kind`, else kind - 1000.
    pub job_kind: Option<u16>,
    /// Requests: distinct valid `p` targets.
    pub targets: Vec<u32>,
    /// Results and feedback: the request answered (first valid `e`, else the request tag's id).
    pub link: Option<u32>,
    /// Feedback: the status tag's value; `None` without a status tag. ContextVM responses:
    /// `success` or `error`.
    pub status: Option<String>,
    /// Feedback: non-empty free text after the status. ContextVM calls: the method.
    pub reason: Option<String>,
    /// Feedback and results: the `amount` tag in millisats, parsed leniently. Zap receipts: the
    /// invoice's amount when believable (see `zap_amount`).
    pub amount: Option<u64>,
    /// Zap receipts: the recipient (`p`) and the sender (`P`, else the zap request's author).
    pub zap_to: Option<u32>,
    pub zap_from: Option<u32>,
    /// Deletions: the ids of its valid `e` tags.
    pub deletes: Vec<u32>,
    /// Announcements: the `d` tag and `k` tags in 5000-5999. ContextVM calls: `params.name`.
    pub d: String,
    pub k: Vec<u16>,
    /// Announcements and profiles: the content.
    pub content: String,
}

#[derive(Default)]
struct Interner {
    strs: Vec<String>,
    index: HashMap<String, u32>,
}

impl Interner {
    fn get(&mut self, s: &str) -> u32 {
        if let Some(&i) = self.index.get(s) {
            return i;
        }
        let i = self.strs.len() as u32;
        self.strs.push(s.to_owned());
        self.index.insert(s.to_owned(), i);
        i
    }
}

fn is_hex64(s: &str) -> bool {
    s.len() == 64
        && s.bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

fn tags_named<'a>(e: &'a Event, name: &'a str) -> impl Iterator<Item = &'a Vec<String>> + 'a {
    e.tags
        .iter()
        .filter(move |t| t.first().map(String::as_str) == Some(name))
}

/// The stringified request of a result or feedback (`["request", "<json>"]`), parsed.
fn embedded_request(e: &Event) -> Option<serde_json::Value> {
    let text = tags_named(e, "request").next()?.get(1)?;
    serde_json::from_str(text).ok()
}

/// Linking rule: the first `e` tag holding a valid 64-hex id, else the id in the request tag.
fn link_of(e: &Event) -> Option<String> {
    for t in tags_named(e, "e") {
        if let Some(v) = t.get(1)
            && is_hex64(v)
        {
            return Some(v.clone());
        }
    }
    let req = embedded_request(e)?;
    req.get("id")?.as_str().filter(|s| is_hex64(s)).map(str::to_owned)
}

/// Millisats written leniently: `100_000`, ` 5000 `.
pub fn lenient_msats(s: &str) -> Option<u64> {
    let cleaned: String = s.chars().filter(|c| *c != '_' && !c.is_whitespace()).collect();
    cleaned.parse().ok()
}

/// The longest prefix of `s` of at most `max` bytes that ends on a character.
fn cut(s: &str, max: usize) -> String {
    let mut out = String::new();
    for c in s.chars() {
        if out.len() + c.len_utf8() > max {
            break;
        }
        out.push(c);
    }
    out
}

/// A ContextVM message: a call has a non-blank string `method` and an `id` (method cut to 64
/// bytes, `params.name` to 128, servers = distinct valid `p` among the first 16 valid); a response
/// has no such method and a `result` or an `error` (non-null: an error) and answers its first
/// valid `e`. Anything else counts as neither.
fn parse_cvm(e: &Event, ev: &mut Ev, pks: &mut Interner, ids: &mut Interner) {
    let Ok(serde_json::Value::Object(m)) = serde_json::from_str::<serde_json::Value>(&e.content) else {
        return;
    };
    let text = |v: Option<&serde_json::Value>, max: usize| {
        v.and_then(serde_json::Value::as_str)
            .map(|s| cut(s.trim(), max))
            .filter(|s| !s.is_empty())
    };
    if let Some(method) = text(m.get("method"), 64) {
        if m.get("id").is_some() {
            ev.reason = Some(method);
            ev.d = text(m.get("params").and_then(|p| p.get("name")), 128).unwrap_or_default();
            let valid: Vec<&String> = tags_named(e, "p")
                .filter_map(|t| t.get(1).filter(|v| is_hex64(v)))
                .take(16)
                .collect();
            for v in valid {
                let pk = pks.get(v);
                if !ev.targets.contains(&pk) {
                    ev.targets.push(pk);
                }
            }
        }
    } else if m.get("result").is_some() || m.get("error").is_some() {
        let failed = m.get("error").is_some_and(|v| !v.is_null());
        ev.status = Some(if failed { "error" } else { "success" }.to_owned());
        ev.link = tags_named(e, "e")
            .find_map(|t| t.get(1).filter(|v| is_hex64(v)))
            .map(|id| ids.get(id));
    }
}

fn parse(e: &Event, part: Part, pks: &mut Interner, ids: &mut Interner) -> Ev {
    let mut ev = Ev {
        id: ids.get(&e.id),
        author: pks.get(&e.pubkey),
        at: e.created_at,
        kind: e.kind,
        part,
        job_kind: None,
        targets: Vec::new(),
        link: None,
        status: None,
        reason: None,
        amount: None,
        zap_to: None,
        zap_from: None,
        deletes: Vec::new(),
        d: String::new(),
        k: Vec::new(),
        content: String::new(),
    };
    match part {
        Part::Request => {
            ev.job_kind = Some(e.kind);
            for t in tags_named(e, "p") {
                if let Some(v) = t.get(1)
                    && is_hex64(v)
                {
                    let pk = pks.get(v);
                    if !ev.targets.contains(&pk) {
                        ev.targets.push(pk);
                    }
                }
            }
        }
        Part::Result => {
            ev.link = link_of(e).map(|id| ids.get(&id));
            let embedded_kind = embedded_request(e)
                .and_then(|v| v.get("kind").and_then(serde_json::Value::as_u64))
                .and_then(|k| u16::try_from(k).ok());
            ev.job_kind = Some(embedded_kind.unwrap_or(e.kind - 1000));
            if let Some(t) = tags_named(e, "amount").next() {
                ev.amount = t.get(1).and_then(|a| lenient_msats(a));
            }
        }
        Part::Feedback => {
            ev.link = link_of(e).map(|id| ids.get(&id));
            if let Some(t) = tags_named(e, "status").next() {
                ev.status = Some(t.get(1).cloned().unwrap_or_default());
                ev.reason = t.get(2).filter(|r| !r.is_empty()).cloned();
            }
            if let Some(t) = tags_named(e, "amount").next() {
                ev.amount = t.get(1).and_then(|a| lenient_msats(a));
            }
        }
        Part::Announcement => {
            ev.d = tags_named(e, "d")
                .next()
                .and_then(|t| t.get(1))
                .cloned()
                .unwrap_or_default();
            for t in tags_named(e, "k") {
                if let Some(k) = t.get(1).and_then(|k| k.trim().parse::<u16>().ok())
                    && (5000..=5999).contains(&k)
                    && !ev.k.contains(&k)
                {
                    ev.k.push(k);
                }
            }
            ev.content = e.content.clone();
        }
        Part::Profile => ev.content = e.content.clone(),
        Part::Deletion => {
            for t in tags_named(e, "e") {
                if let Some(v) = t.get(1).filter(|v| is_hex64(v)) {
                    ev.deletes.push(ids.get(v));
                }
            }
        }
        Part::Cvm => parse_cvm(e, &mut ev, pks, ids),
        Part::Zap => {
            let first_hex = |name: &str| {
                tags_named(e, name)
                    .find_map(|t| t.get(1).filter(|v| is_hex64(v)))
                    .cloned()
            };
            ev.link = first_hex("e").map(|id| ids.get(&id));
            ev.zap_to = first_hex("p").map(|pk| pks.get(&pk));
            let request: Option<serde_json::Value> = tags_named(e, "description")
                .next()
                .and_then(|t| t.get(1))
                .and_then(|d| serde_json::from_str(d).ok());
            let request_author = request
                .as_ref()
                .and_then(|r| r.get("pubkey")?.as_str())
                .filter(|pk| is_hex64(pk))
                .map(str::to_owned);
            ev.zap_from = first_hex("P").or(request_author).map(|pk| pks.get(&pk));
            let asked = request.as_ref().and_then(|r| {
                r.get("tags")?
                    .as_array()?
                    .iter()
                    .find(|t| t.get(0).and_then(|n| n.as_str()) == Some("amount"))?
                    .get(1)?
                    .as_str()?
                    .trim()
                    .parse::<u64>()
                    .ok()
            });
            let invoiced = tags_named(e, "bolt11")
                .next()
                .and_then(|t| t.get(1))
                .and_then(|b| invoice_msats(b));
            ev.amount = invoiced.filter(|&m| asked.is_none_or(|a| a == m) && m <= 100_000_000_000);
        }
    }
    ev
}

/// The amount of a mainnet bolt11 invoice from its human-readable part: `lnbc<digits><unit>`
/// before the last `1`, in BTC times the unit (m, u, n, p), in millisats.
fn invoice_msats(invoice: &str) -> Option<u64> {
    let hrp = &invoice[..invoice.rfind('1')?];
    let amount = hrp.strip_prefix("lnbc")?;
    let split = amount.find(|c: char| !c.is_ascii_digit()).unwrap_or(amount.len());
    let n: u64 = amount[..split].parse().ok()?;
    let per_unit: u64 = match &amount[split..] {
        "" => 100_000_000_000,
        "m" => 100_000_000,
        "u" => 100_000,
        "n" => 100,
        _ => return None,
    };
    n.checked_mul(per_unit)
}

/// A display profile from JSON content, per the document: announcements give `name`, `about`,
/// `picture` or `image`; kind 0 gives `display_name` or `name`, `about`, `picture`. Usable when
/// one of name, about or picture is a non-empty string.
pub fn read_profile(content: &str, kind0: bool) -> Option<Profile> {
    let v: serde_json::Value = serde_json::from_str(content).ok()?;
    let o = v.as_object()?;
    let text = |key: &str| {
        o.get(key)
            .and_then(|x| x.as_str())
            .filter(|s| !s.is_empty())
            .map(str::to_owned)
    };
    let name = if kind0 {
        text("display_name").or_else(|| text("name"))
    } else {
        text("name")
    };
    let about = text("about");
    let picture = if kind0 {
        text("picture")
    } else {
        text("picture").or_else(|| text("image"))
    };
    let encryption_supported = o
        .get("encryptionSupported")
        .or_else(|| o.get("supportsEncryption"))
        .and_then(serde_json::Value::as_bool);
    (name.is_some() || about.is_some() || picture.is_some()).then_some(Profile {
        name,
        about,
        picture,
        encryption_supported,
    })
}

/// The q-quantile of ascending values: `v[min(n-1, floor(q*n))]` (ClickHouse `quantileExact`).
pub fn quantile(sorted: &[u64], q: f64) -> Option<u64> {
    let n = sorted.len();
    if n == 0 {
        return None;
    }
    Some(sorted[((q * n as f64) as usize).min(n - 1)])
}

fn quantiles(mut v: Vec<u64>) -> Quantiles {
    v.sort_unstable();
    Quantiles {
        count: v.len() as u64,
        p50: quantile(&v, 0.5).map(|x| x as f64),
        p90: quantile(&v, 0.9).map(|x| x as f64),
        p99: quantile(&v, 0.99).map(|x| x as f64),
    }
}

/// `a / b`, none when `b` is 0.
fn ratio(a: u64, b: u64) -> Option<f64> {
    if b == 0 { None } else { Some(a as f64 / b as f64) }
}

/// The key with the highest count; ties go to the smallest key. Zero counts never win.
fn most<K: Ord>(counts: impl IntoIterator<Item = (K, u64)>) -> Option<K> {
    let mut best: Option<(K, u64)> = None;
    for (k, c) in counts {
        if c == 0 {
            continue;
        }
        let better = match &best {
            None => true,
            Some((bk, bc)) => c > *bc || (c == *bc && k < *bk),
        };
        if better {
            best = Some((k, c));
        }
    }
    best.map(|(k, _)| k)
}

/// Rows keyed for set comparison: `dvm|kind`, `-` for a missing part.
pub fn row_key(dvm: Option<&str>, kind: Option<u16>) -> String {
    format!(
        "{}|{}",
        dvm.unwrap_or("-"),
        kind.map(|k| k.to_string()).unwrap_or_else(|| "-".to_owned())
    )
}

fn kind_name(kind: u16) -> Option<String> {
    dvmdash_core::kinds::kind_name(kind).map(str::to_owned)
}

fn month_of(t: u64) -> String {
    rfc3339(t)[..7].to_owned()
}

fn next_month(m: &str) -> String {
    let y: u32 = m[..4].parse().expect("year");
    let mo: u32 = m[5..7].parse().expect("month");
    if mo == 12 {
        format!("{:04}-01", y + 1)
    } else {
        format!("{y:04}-{:02}", mo + 1)
    }
}

/// A window ending at `now`, with its time-series buckets.
#[derive(Clone, Copy, Debug)]
pub struct Win {
    pub now: u64,
    pub start: u64,
    /// First event index with created_at >= start.
    pub lo: usize,
    /// Start of the first bucket (aligned, can be before `start`).
    pub first: u64,
    pub step: u64,
    pub n: usize,
    /// First event index with created_at >= first.
    pub lo_series: usize,
}

impl Win {
    fn bucket(&self, at: u64) -> usize {
        (((at - self.first) / self.step) as usize).min(self.n - 1)
    }

    fn times(&self) -> Vec<String> {
        (0..self.n)
            .map(|i| rfc3339(self.first + i as u64 * self.step))
            .collect()
    }
}

/// What one DVM sent for one request.
#[derive(Default, Debug)]
struct Acc {
    first_result: Option<u64>,
    first_feedback: Option<u64>,
    success: bool,
    partial: bool,
    error: bool,
    payment: bool,
    /// Non-empty reasons of its `error` feedback, one per event.
    reasons: Vec<String>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Outcome {
    Success,
    Partial,
    Error,
    PaymentRequired,
    Stalled,
    Pending,
    Cancelled,
}

/// A concluded job (success, partial, error) keeps its outcome; otherwise a deleted request makes
/// it cancelled, whatever the timeout.
fn outcome(a: &Acc, is_final: bool, cancelled: bool) -> Outcome {
    if a.success {
        Outcome::Success
    } else if a.partial {
        Outcome::Partial
    } else if a.error {
        Outcome::Error
    } else if cancelled {
        Outcome::Cancelled
    } else if !is_final {
        Outcome::Pending
    } else if a.payment {
        Outcome::PaymentRequired
    } else {
        Outcome::Stalled
    }
}

struct Job {
    dvm: u32,
    kind: u16,
    feedback_latency: Option<u64>,
    result_latency: Option<u64>,
    outcome: Outcome,
    reasons: Vec<String>,
}

#[derive(Default, Clone)]
struct DvmAcc {
    results: u64,
    feedback: u64,
    directed: u64,
    answered: HashSet<u32>,
    kinds: BTreeMap<u16, u64>,
    series: Vec<(u64, u64)>,
}

#[derive(Default)]
struct KindAcc {
    requests: u64,
    results: u64,
    per_dvm: BTreeMap<u32, u64>,
    series: Vec<(u64, u64)>,
}

#[derive(Default)]
struct GlobalBucket {
    requests: u64,
    results: u64,
    feedback: u64,
    users: HashSet<u32>,
    dvms: HashSet<u32>,
}

#[derive(Default)]
struct PerfAcc {
    jobs: u64,
    feedback: Vec<u64>,
    results: Vec<u64>,
    outcomes: Outcomes,
    reasons: BTreeMap<String, u64>,
}

#[derive(Default)]
struct MonthAcc {
    requests: u64,
    results: u64,
    feedback: u64,
    dvms: HashSet<u32>,
    customers: HashSet<u32>,
    kinds: BTreeMap<u16, u64>,
    dvm_results: BTreeMap<u32, u64>,
}

/// Everything the document defines, from the events alone.
pub struct Reference {
    /// Stored events (distinct ids, excluded kinds dropped), by created_at then id.
    pub evs: Vec<Ev>,
    pub pks: Vec<String>,
    pk_index: HashMap<String, u32>,
    ids: Vec<String>,
    /// By interned id: the index of the request event with that id.
    request_at: Vec<Option<usize>>,
    /// By interned id: the results and feedback linked to it.
    responses: Vec<Vec<usize>>,
    /// By interned id: the index of the stored event with that id.
    /// When the collectors began watching live-only kinds, as they recorded it (set by the test).
    pub live_since: Option<u64>,
    event_at: Vec<Option<usize>>,
    /// By interned id: a request its author deleted.
    cancelled: Vec<bool>,
    id_index: HashMap<String, u32>,
    /// By interned id of a stored event: the relays that delivered it (stream entries fed so far).
    deliveries: BTreeMap<u32, BTreeSet<String>>,
    is_dvm: Vec<bool>,
    first_seen: Vec<Option<u64>>,
    last_seen: Vec<Option<u64>>,
    served: Vec<BTreeSet<u16>>,
    announced: Vec<BTreeSet<u16>>,
    profiles: Vec<Profile>,
    npubs: Vec<String>,
    kind_first: BTreeMap<u16, u64>,
    kind_last: BTreeMap<u16, u64>,
    supporting: BTreeMap<u16, BTreeSet<u32>>,
    announcing: BTreeMap<u16, BTreeSet<u32>>,
}

impl Reference {
    pub fn new(events: &[Event]) -> Self {
        let mut unique: BTreeMap<&str, &Event> = BTreeMap::new();
        for e in events {
            unique.entry(e.id.as_str()).or_insert(e);
        }
        let mut list: Vec<(&Event, Part)> = unique
            .into_values()
            .filter_map(|e| part_of(e.kind).map(|p| (e, p)))
            .collect();
        list.sort_by(|a, b| {
            a.0.created_at
                .cmp(&b.0.created_at)
                .then_with(|| a.0.id.cmp(&b.0.id))
        });
        let mut pks = Interner::default();
        let mut ids = Interner::default();
        for (e, _) in &list {
            ids.get(&e.id);
        }
        let evs: Vec<Ev> = list
            .into_iter()
            .map(|(e, part)| parse(e, part, &mut pks, &mut ids))
            .collect();

        let mut request_at = vec![None; ids.strs.len()];
        let mut event_at = vec![None; ids.strs.len()];
        let mut responses: Vec<Vec<usize>> = vec![Vec::new(); ids.strs.len()];
        for (i, e) in evs.iter().enumerate() {
            event_at[e.id as usize] = Some(i);
            match e.part {
                Part::Request => request_at[e.id as usize] = Some(i),
                Part::Result | Part::Feedback => {
                    if let Some(l) = e.link {
                        responses[l as usize].push(i);
                    }
                }
                _ => {}
            }
        }

        // A request is cancelled when a deletion by its own author names it.
        let mut cancelled = vec![false; ids.strs.len()];
        for e in evs.iter().filter(|e| e.part == Part::Deletion) {
            for &d in &e.deletes {
                if request_at[d as usize].is_some_and(|r| evs[r].author == e.author) {
                    cancelled[d as usize] = true;
                }
            }
        }
        let n = pks.strs.len();
        let mut is_dvm = vec![false; n];
        let mut first_seen: Vec<Option<u64>> = vec![None; n];
        let mut last_seen: Vec<Option<u64>> = vec![None; n];
        let mut served: Vec<BTreeSet<u16>> = vec![BTreeSet::new(); n];
        let mut announcements: Vec<Vec<usize>> = vec![Vec::new(); n];
        let mut kind0s: Vec<Vec<usize>> = vec![Vec::new(); n];
        let mut current: BTreeMap<(u32, String), usize> = BTreeMap::new();
        let mut kind_first: BTreeMap<u16, u64> = BTreeMap::new();
        let mut kind_last: BTreeMap<u16, u64> = BTreeMap::new();
        let mut supporting: BTreeMap<u16, BTreeSet<u32>> = BTreeMap::new();
        for (i, e) in evs.iter().enumerate() {
            let a = e.author as usize;
            let seen_job_kind = |first: &mut BTreeMap<u16, u64>, last: &mut BTreeMap<u16, u64>, k: u16| {
                let f = first.entry(k).or_insert(e.at);
                *f = (*f).min(e.at);
                let l = last.entry(k).or_insert(e.at);
                *l = (*l).max(e.at);
            };
            match e.part {
                Part::Request => seen_job_kind(&mut kind_first, &mut kind_last, e.kind),
                Part::Result | Part::Feedback => {
                    is_dvm[a] = true;
                    first_seen[a] = Some(first_seen[a].map_or(e.at, |t| t.min(e.at)));
                    last_seen[a] = Some(last_seen[a].map_or(e.at, |t| t.max(e.at)));
                    if e.part == Part::Result {
                        let k = e.job_kind.expect("results have a job kind");
                        served[a].insert(k);
                        supporting.entry(k).or_default().insert(e.author);
                        seen_job_kind(&mut kind_first, &mut kind_last, k);
                    }
                }
                Part::Announcement => {
                    is_dvm[a] = true;
                    first_seen[a] = Some(first_seen[a].map_or(e.at, |t| t.min(e.at)));
                    announcements[a].push(i);
                    // Events are in created_at order: the last one per address is the newest.
                    current.insert((e.author, e.d.clone()), i);
                }
                Part::Profile => kind0s[a].push(i),
                Part::Zap | Part::Deletion | Part::Cvm => {}
            }
        }
        let mut announced: Vec<BTreeSet<u16>> = vec![BTreeSet::new(); n];
        let mut announcing: BTreeMap<u16, BTreeSet<u32>> = BTreeMap::new();
        for ((pk, _), i) in &current {
            for &k in &evs[*i].k {
                announced[*pk as usize].insert(k);
                announcing.entry(k).or_default().insert(*pk);
            }
        }
        let profiles: Vec<Profile> = (0..n)
            .map(|a| {
                announcements[a]
                    .iter()
                    .rev()
                    .find_map(|&i| read_profile(&evs[i].content, false))
                    .or_else(|| {
                        kind0s[a]
                            .iter()
                            .rev()
                            .find_map(|&i| read_profile(&evs[i].content, true))
                    })
                    .unwrap_or_default()
            })
            .collect();
        let npubs = pks
            .strs
            .iter()
            .map(|pk| dvmdash_core::nip19::npub(&dvmdash_core::event::parse_hex32(pk).expect("hex pubkey")))
            .collect();
        Reference {
            evs,
            pks: pks.strs,
            pk_index: pks.index,
            ids: ids.strs,
            request_at,
            responses,
            event_at,
            live_since: None,
            cancelled,
            id_index: ids.index,
            deliveries: BTreeMap::new(),
            is_dvm,
            first_seen,
            last_seen,
            served,
            announced,
            profiles,
            npubs,
            kind_first,
            kind_last,
            supporting,
            announcing,
        }
    }

    // ----- lookups -----

    pub fn count(&self, part: Part) -> usize {
        self.evs.iter().filter(|e| e.part == part).count()
    }

    /// Stored events with created_at >= `since`.
    pub fn stored_since(&self, since: u64) -> u64 {
        self.evs.iter().filter(|e| e.at >= since).count() as u64
    }

    /// Hex pubkeys of every DVM (result, feedback or announcement author), sorted.
    pub fn dvm_hexes(&self) -> Vec<String> {
        let mut v: Vec<String> = (0..self.pks.len())
            .filter(|&i| self.is_dvm[i])
            .map(|i| self.pks[i].clone())
            .collect();
        v.sort();
        v
    }

    /// Every job kind with a request or a result, ever.
    pub fn seen_kinds(&self) -> Vec<u16> {
        self.kind_first.keys().copied().collect()
    }

    /// `GET /api/kinds/usage`: every request kind with a request or result ever (by the result's
    /// job kind), and the kinds in 5000-5999 never seen, minus the default exclusions.
    pub fn kinds_usage(&self, now: u64) -> KindsUsage {
        #[derive(Default)]
        struct Acc {
            span: Option<(u64, u64)>,
            requests: u64,
            results: u64,
            customers: HashSet<u32>,
            dvms: HashSet<u32>,
        }
        let mut by: BTreeMap<u16, Acc> = BTreeMap::new();
        for e in &self.evs {
            let Some(k) = e.job_kind.filter(|k| (5000..=5999).contains(k)) else {
                continue;
            };
            let a = by.entry(k).or_default();
            match e.part {
                Part::Request => {
                    a.requests += 1;
                    a.customers.insert(e.author);
                }
                Part::Result => {
                    a.results += 1;
                    a.dvms.insert(e.author);
                }
                _ => continue,
            }
            a.span = Some(a.span.map_or((e.at, e.at), |(f, l)| (f.min(e.at), l.max(e.at))));
        }
        let registry = |k: u16| dvmdash_core::kinds::registry().iter().find(|r| r.kind == k);
        let used: Vec<KindUsage> = by
            .iter()
            .map(|(&kind, a)| KindUsage {
                kind,
                name: registry(kind).map(|r| r.name.clone()),
                registry_status: registry(kind).map(|r| r.status.clone()),
                first_seen: a.span.map(|s| rfc3339(s.0)),
                last_seen: a.span.map(|s| rfc3339(s.1)),
                total_requests: a.requests,
                total_results: a.results,
                customers: a.customers.len() as u64,
                dvms: a.dvms.len() as u64,
            })
            .collect();
        let unused: Vec<UnusedKind> = (5000..=5999u16)
            .filter(|k| !EXCLUDED_KINDS.contains(k) && !by.contains_key(k))
            .map(|kind| UnusedKind {
                kind,
                name: registry(kind).map(|r| r.name.clone()),
                registry_status: registry(kind).map(|r| r.status.clone()),
            })
            .collect();
        KindsUsage {
            timestamp: rfc3339(now),
            free: unused.iter().filter(|u| u.name.is_none()).count() as u64,
            used,
            unused,
        }
    }

    pub fn npub_of(&self, hex: &str) -> Option<String> {
        self.pk_index.get(hex).map(|&i| self.npubs[i as usize].clone())
    }

    pub fn name_of_hex(&self, hex: &str) -> Option<String> {
        self.pk_index
            .get(hex)
            .and_then(|&i| self.profiles[i as usize].name.clone())
    }

    fn hex(&self, pk: u32) -> String {
        self.pks[pk as usize].clone()
    }

    fn name(&self, pk: u32) -> Option<String> {
        self.profiles[pk as usize].name.clone()
    }

    /// DVMDash's meaning: kinds it answered with results, all time.
    fn supported(&self, pk: usize) -> Vec<u16> {
        self.served[pk].iter().copied().collect()
    }

    pub fn win(&self, now: u64, range: TimeRange) -> Win {
        let start = now - range.seconds();
        let step = range.step_seconds();
        let first = start / step * step;
        let n = ((now / step * step - first) / step + 1) as usize;
        Win {
            now,
            start,
            lo: self.evs.partition_point(|e| e.at < start),
            first,
            step,
            n,
            lo_series: self.evs.partition_point(|e| e.at < first),
        }
    }

    /// What each DVM sent for a request, by DVM.
    fn responders(&self, req: &Ev) -> BTreeMap<u32, Acc> {
        let mut m: BTreeMap<u32, Acc> = BTreeMap::new();
        for &i in &self.responses[req.id as usize] {
            let e = &self.evs[i];
            let a = m.entry(e.author).or_default();
            match e.part {
                Part::Result => {
                    a.first_result = Some(a.first_result.map_or(e.at, |t| t.min(e.at)));
                    a.success = true;
                }
                Part::Feedback => {
                    a.first_feedback = Some(a.first_feedback.map_or(e.at, |t| t.min(e.at)));
                    match e.status.as_deref() {
                        Some("success") => a.success = true,
                        Some("partial") => a.partial = true,
                        Some("error") => {
                            a.error = true;
                            if let Some(r) = &e.reason {
                                a.reasons.push(r.clone());
                            }
                        }
                        Some("payment-required") => a.payment = true,
                        _ => {}
                    }
                }
                _ => {}
            }
        }
        m
    }

    fn is_final(&self, req: &Ev, now: u64) -> bool {
        now.saturating_sub(req.at) >= timeout(req.kind)
    }

    /// Requests created at or after event index `lo` (the window's requests for `Win::lo`).
    fn requests_from(&self, lo: usize) -> impl Iterator<Item = &Ev> {
        self.evs[lo..].iter().filter(|e| e.part == Part::Request)
    }

    fn jobs(&self, w: &Win) -> Vec<Job> {
        let mut out = Vec::new();
        for r in self.requests_from(w.lo) {
            let is_final = self.is_final(r, w.now);
            for (dvm, a) in self.responders(r) {
                out.push(Job {
                    dvm,
                    kind: r.kind,
                    feedback_latency: a.first_feedback.map(|t| t.saturating_sub(r.at)),
                    result_latency: a.first_result.map(|t| t.saturating_sub(r.at)),
                    outcome: outcome(&a, is_final, self.cancelled[r.id as usize]),
                    reasons: a.reasons,
                });
            }
        }
        out
    }

    // ----- global -----

    pub fn global(&self, now: u64, range: TimeRange) -> GlobalStats {
        let w = self.win(now, range);
        let mut s = GlobalStats {
            timestamp: rfc3339(now),
            period_start: rfc3339(w.start),
            period_end: rfc3339(now),
            ..Default::default()
        };
        let mut users = HashSet::new();
        let mut dvms = HashSet::new();
        let mut kinds: BTreeMap<u16, u64> = BTreeMap::new();
        let mut per_dvm: HashMap<u32, u64> = HashMap::new();
        let mut responders: BTreeMap<u16, HashSet<u32>> = BTreeMap::new();
        for e in &self.evs[w.lo..] {
            match e.part {
                Part::Request => {
                    s.total_requests += 1;
                    users.insert(e.author);
                    *kinds.entry(e.kind).or_default() += 1;
                }
                Part::Result => {
                    s.total_responses += 1;
                    dvms.insert(e.author);
                    *per_dvm.entry(e.author).or_default() += 1;
                    responders
                        .entry(e.job_kind.expect("job kind"))
                        .or_default()
                        .insert(e.author);
                }
                Part::Feedback => {
                    s.total_feedback += 1;
                    dvms.insert(e.author);
                    *per_dvm.entry(e.author).or_default() += 1;
                }
                _ => {}
            }
        }
        s.unique_users = users.len() as u64;
        s.unique_kinds = kinds.len() as u64;
        s.unique_dvms = dvms.len() as u64;
        s.popular_dvm = most(per_dvm.iter().map(|(pk, c)| (self.hex(*pk), *c)));
        s.popular_kind = most(kinds.iter().map(|(k, c)| (*k, *c)));
        s.competitive_kind = most(responders.iter().map(|(k, set)| (*k, set.len() as u64)));

        let mut buckets: Vec<GlobalBucket> = (0..w.n).map(|_| GlobalBucket::default()).collect();
        for e in &self.evs[w.lo_series..] {
            let b = &mut buckets[w.bucket(e.at)];
            match e.part {
                Part::Request => {
                    b.requests += 1;
                    b.users.insert(e.author);
                }
                Part::Result => {
                    b.results += 1;
                    b.dvms.insert(e.author);
                }
                Part::Feedback => {
                    b.feedback += 1;
                    b.dvms.insert(e.author);
                }
                _ => {}
            }
        }
        s.time_series = w
            .times()
            .into_iter()
            .zip(buckets)
            .map(|(time, b)| GlobalPoint {
                time,
                total_requests: b.requests,
                total_responses: b.results,
                total_feedback: b.feedback,
                unique_users: b.users.len() as u64,
                unique_dvms: b.dvms.len() as u64,
            })
            .collect();
        s
    }

    // ----- DVMs -----

    fn dvm_window(&self, w: &Win) -> HashMap<u32, DvmAcc> {
        let mut m: HashMap<u32, DvmAcc> = HashMap::new();
        for e in &self.evs[w.lo..] {
            match e.part {
                Part::Request => {
                    for &t in &e.targets {
                        m.entry(t).or_default().directed += 1;
                    }
                }
                Part::Result => {
                    let a = m.entry(e.author).or_default();
                    a.results += 1;
                    *a.kinds.entry(e.job_kind.expect("job kind")).or_default() += 1;
                    if let Some(l) = e.link {
                        a.answered.insert(l);
                    }
                }
                Part::Feedback => {
                    let a = m.entry(e.author).or_default();
                    a.feedback += 1;
                    if let Some(l) = e.link {
                        a.answered.insert(l);
                    }
                }
                _ => {}
            }
        }
        for e in &self.evs[w.lo_series..] {
            if matches!(e.part, Part::Result | Part::Feedback) {
                let a = m.entry(e.author).or_default();
                if a.series.is_empty() {
                    a.series = vec![(0, 0); w.n];
                }
                let b = w.bucket(e.at);
                if e.part == Part::Result {
                    a.series[b].0 += 1;
                } else {
                    a.series[b].1 += 1;
                }
            }
        }
        m
    }

    fn summary(&self, pk: u32, a: &DvmAcc, now: u64) -> DvmSummary {
        let p = pk as usize;
        let prof = &self.profiles[p];
        let supported = self.supported(p);
        DvmSummary {
            id: self.pks[p].clone(),
            npub: self.npubs[p].clone(),
            last_seen: self.last_seen[p].map(rfc3339),
            first_seen: self.first_seen[p].map(rfc3339),
            is_active: self.last_seen[p].is_some_and(|t| t + 86_400 >= now),
            num_supporting_kinds: supported.len() as u64,
            supported_kinds: supported,
            announced_kinds: self.announced[p].iter().copied().collect(),
            total_responses: a.results,
            total_feedback: a.feedback,
            total_events: a.results + a.feedback,
            total_requests: a.directed,
            jobs_answered: a.answered.len() as u64,
            dvm_name: prof.name.clone(),
            dvm_about: prof.about.clone(),
            dvm_picture: prof.picture.clone(),
        }
    }

    /// `/api/dvms` before search, sorting and paging: DVMs with a result or feedback in the window,
    /// by id.
    pub fn dvm_summaries(&self, now: u64, range: TimeRange) -> Vec<DvmSummary> {
        let w = self.win(now, range);
        let m = self.dvm_window(&w);
        let mut out: Vec<DvmSummary> = m
            .iter()
            .filter(|(pk, a)| self.is_dvm[**pk as usize] && a.results + a.feedback > 0)
            .map(|(pk, a)| self.summary(*pk, a, now))
            .collect();
        out.sort_unstable_by(|a, b| a.id.as_str().cmp(b.id.as_str()));
        out
    }

    /// `/api/stats/dvm/{id}` for every DVM, by hex pubkey.
    pub fn dvm_stats_all(&self, now: u64, range: TimeRange) -> BTreeMap<String, DvmStats> {
        let w = self.win(now, range);
        let m = self.dvm_window(&w);
        let empty = DvmAcc::default();
        let times = w.times();
        let mut out = BTreeMap::new();
        for p in 0..self.pks.len() {
            if !self.is_dvm[p] {
                continue;
            }
            let a = m.get(&(p as u32)).unwrap_or(&empty);
            let prof = self.profiles[p].clone();
            let served: Vec<u16> = self.served[p].iter().copied().collect();
            let announced: Vec<u16> = self.announced[p].iter().copied().collect();
            let series = if a.series.is_empty() {
                vec![(0, 0); w.n]
            } else {
                a.series.clone()
            };
            let s = DvmStats {
                dvm_id: self.pks[p].clone(),
                npub: self.npubs[p].clone(),
                dvm_name: prof.name.clone(),
                dvm_about: prof.about.clone(),
                dvm_picture: prof.picture.clone(),
                profile: prof,
                timestamp: rfc3339(now),
                period_start: rfc3339(w.start),
                period_end: rfc3339(now),
                first_seen: self.first_seen[p].map(rfc3339),
                last_seen: self.last_seen[p].map(rfc3339),
                total_responses: a.results,
                total_feedback: a.feedback,
                total_requests: a.directed,
                jobs_answered: a.answered.len() as u64,
                supported_kinds: self.supported(p),
                announced_not_served: self.announced[p].difference(&self.served[p]).copied().collect(),
                served_not_announced: self.served[p].difference(&self.announced[p]).copied().collect(),
                announced_kinds: announced,
                served_kinds: served,
                kinds: a
                    .kinds
                    .iter()
                    .map(|(k, c)| DvmKindActivity {
                        kind: *k,
                        total_responses: *c,
                    })
                    .collect(),
                time_series: times
                    .iter()
                    .zip(series)
                    .map(|(t, (r, f))| DvmPoint {
                        time: t.clone(),
                        total_responses: r,
                        total_feedback: f,
                    })
                    .collect(),
            };
            out.insert(self.pks[p].clone(), s);
        }
        out
    }

    // ----- kinds -----

    fn kind_window(&self, w: &Win) -> BTreeMap<u16, KindAcc> {
        let mut m: BTreeMap<u16, KindAcc> = BTreeMap::new();
        for e in &self.evs[w.lo..] {
            match e.part {
                Part::Request => m.entry(e.kind).or_default().requests += 1,
                Part::Result => {
                    let a = m.entry(e.job_kind.expect("job kind")).or_default();
                    a.results += 1;
                    *a.per_dvm.entry(e.author).or_default() += 1;
                }
                _ => {}
            }
        }
        for e in &self.evs[w.lo_series..] {
            let (k, is_request) = match e.part {
                Part::Request => (e.kind, true),
                Part::Result => (e.job_kind.expect("job kind"), false),
                _ => continue,
            };
            let a = m.entry(k).or_default();
            if a.series.is_empty() {
                a.series = vec![(0, 0); w.n];
            }
            let b = w.bucket(e.at);
            if is_request {
                a.series[b].0 += 1;
            } else {
                a.series[b].1 += 1;
            }
        }
        m
    }

    /// `/api/kinds` before search, sorting and paging: job kinds with a request or result in the
    /// window, by kind.
    pub fn kind_summaries(&self, now: u64, range: TimeRange) -> Vec<KindSummary> {
        let w = self.win(now, range);
        self.kind_window(&w)
            .into_iter()
            .filter(|(_, a)| a.requests + a.results > 0)
            .map(|(kind, a)| KindSummary {
                kind,
                name: kind_name(kind),
                last_seen: self.kind_last.get(&kind).map(|t| rfc3339(*t)),
                num_supporting_dvms: self.supporting.get(&kind).map_or(0, |s| s.len() as u64),
                num_announcing_dvms: self.announcing.get(&kind).map_or(0, |s| s.len() as u64),
                total_requests: a.requests,
                total_responses: a.results,
            })
            .collect()
    }

    /// `/api/stats/kind/{kind}` for every kind ever seen.
    pub fn kind_stats_all(&self, now: u64, range: TimeRange) -> BTreeMap<u16, KindStats> {
        let w = self.win(now, range);
        let mut m = self.kind_window(&w);
        let times = w.times();
        let mut out = BTreeMap::new();
        for &kind in self.kind_first.keys() {
            let a = m.remove(&kind).unwrap_or_default();
            let mut supporting: Vec<String> = self
                .supporting
                .get(&kind)
                .map(|s| s.iter().map(|pk| self.hex(*pk)).collect())
                .unwrap_or_default();
            supporting.sort();
            let mut top: Vec<KindDvmActivity> = a
                .per_dvm
                .iter()
                .map(|(pk, c)| KindDvmActivity {
                    dvm_id: self.hex(*pk),
                    dvm_name: self.name(*pk),
                    total_responses: *c,
                })
                .collect();
            top.sort_by(|x, y| {
                y.total_responses
                    .cmp(&x.total_responses)
                    .then_with(|| x.dvm_id.cmp(&y.dvm_id))
            });
            let series = if a.series.is_empty() {
                vec![(0, 0); w.n]
            } else {
                a.series
            };
            out.insert(
                kind,
                KindStats {
                    kind,
                    name: kind_name(kind),
                    timestamp: rfc3339(now),
                    period_start: rfc3339(w.start),
                    period_end: rfc3339(now),
                    total_requests: a.requests,
                    total_responses: a.results,
                    num_supporting_dvms: supporting.len() as u64,
                    supporting_dvms: supporting,
                    top_dvms: top,
                    time_series: times
                        .iter()
                        .zip(series)
                        .map(|(t, (rq, rs))| KindPoint {
                            time: t.clone(),
                            total_requests: rq,
                            total_responses: rs,
                        })
                        .collect(),
                },
            );
        }
        out
    }

    // ----- jobs -----

    /// Performance rows, and for each row (by `row_key`) the count of every error reason, so a
    /// top-5 with ties can be checked for any tie order.
    pub fn performance(
        &self,
        now: u64,
        range: TimeRange,
        group: &str,
    ) -> (Performance, BTreeMap<String, BTreeMap<String, u64>>) {
        let w = self.win(now, range);
        let mut groups: BTreeMap<(Option<u32>, Option<u16>), PerfAcc> = BTreeMap::new();
        for j in self.jobs(&w) {
            let key = match group {
                "dvm" => (Some(j.dvm), None),
                "kind" => (None, Some(j.kind)),
                "all" => (None, None),
                _ => (Some(j.dvm), Some(j.kind)),
            };
            let g = groups.entry(key).or_default();
            g.jobs += 1;
            if let Some(l) = j.feedback_latency {
                g.feedback.push(l);
            }
            if let Some(l) = j.result_latency {
                g.results.push(l);
            }
            let o = &mut g.outcomes;
            match j.outcome {
                Outcome::Success => o.success += 1,
                Outcome::Partial => o.partial += 1,
                Outcome::Error => o.error += 1,
                Outcome::PaymentRequired => o.payment_required += 1,
                Outcome::Stalled => o.stalled += 1,
                Outcome::Pending => o.pending += 1,
                Outcome::Cancelled => o.cancelled += 1,
            }
            for r in j.reasons {
                *g.reasons.entry(r).or_default() += 1;
            }
        }
        let mut rows = Vec::new();
        let mut reasons = BTreeMap::new();
        for ((dvm, kind), g) in groups {
            let mut top: Vec<ReasonCount> = g
                .reasons
                .iter()
                .map(|(r, c)| ReasonCount {
                    reason: r.clone(),
                    count: *c,
                })
                .collect();
            top.sort_by(|a, b| b.count.cmp(&a.count).then_with(|| a.reason.cmp(&b.reason)));
            top.truncate(5);
            let decided = g.jobs - g.outcomes.pending - g.outcomes.cancelled;
            let row = PerformanceRow {
                dvm_id: dvm.map(|p| self.hex(p)),
                dvm_name: dvm.and_then(|p| self.name(p)),
                kind,
                jobs: g.jobs,
                feedback_latency: quantiles(g.feedback),
                result_latency: quantiles(g.results),
                success_rate: ratio(g.outcomes.success, decided),
                outcomes: g.outcomes,
                top_errors: top,
            };
            reasons.insert(row_key(row.dvm_id.as_deref(), row.kind), g.reasons);
            rows.push(row);
        }
        (
            Performance {
                timestamp: rfc3339(now),
                period_start: rfc3339(w.start),
                period_end: rfc3339(now),
                group_by: group.to_owned(),
                rows,
            },
            reasons,
        )
    }

    pub fn reach(&self, now: u64, range: TimeRange) -> Reach {
        let w = self.win(now, range);
        let mut kinds: BTreeMap<u16, KindReach> = BTreeMap::new();
        let mut dvms: BTreeMap<u32, (u64, u64, u64)> = BTreeMap::new();
        for r in self.requests_from(w.lo) {
            let is_final = self.is_final(r, now);
            let resp = self.responders(r);
            let k = kinds.entry(r.kind).or_insert_with(|| KindReach {
                kind: r.kind,
                ..Default::default()
            });
            k.requests += 1;
            if is_final {
                k.final_requests += 1;
                if resp.is_empty() {
                    k.unanswered += 1;
                }
            }
            if r.targets.is_empty() {
                k.open += 1;
            } else {
                k.directed += 1;
            }
            for &t in &r.targets {
                let d = dvms.entry(t).or_default();
                d.0 += 1;
                if is_final {
                    d.1 += 1;
                    if !resp.contains_key(&t) {
                        d.2 += 1;
                    }
                }
            }
        }
        Reach {
            timestamp: rfc3339(now),
            period_start: rfc3339(w.start),
            period_end: rfc3339(now),
            kinds: kinds.into_values().collect(),
            dvms: dvms
                .into_iter()
                .map(|(pk, (directed, final_directed, missed))| DirectedRow {
                    dvm_id: self.hex(pk),
                    dvm_name: self.name(pk),
                    directed,
                    final_directed,
                    missed,
                    missed_rate: ratio(missed, final_directed),
                })
                .collect(),
        }
    }

    pub fn competition(&self, now: u64, range: TimeRange) -> Competition {
        let w = self.win(now, range);
        let mut histogram = [0u64; 4];
        let mut rows: BTreeMap<u32, CompetitionRow> = BTreeMap::new();
        for r in self.requests_from(w.lo) {
            let resp = self.responders(r);
            let firsts: Vec<(u64, &str, u32)> = resp
                .iter()
                .filter_map(|(pk, a)| a.first_result.map(|t| (t, self.pks[*pk as usize].as_str(), *pk)))
                .collect();
            histogram[firsts.len().min(3)] += 1;
            let Some(winner) = firsts
                .iter()
                .min_by(|a, b| a.0.cmp(&b.0).then_with(|| a.1.cmp(b.1)))
            else {
                continue;
            };
            let winner = winner.2;
            let contested = firsts.len() >= 2;
            for &(_, _, pk) in &firsts {
                let row = rows.entry(pk).or_insert_with(|| CompetitionRow {
                    dvm_id: self.hex(pk),
                    dvm_name: self.name(pk),
                    ..Default::default()
                });
                row.requests_with_result += 1;
                let won = pk == winner;
                if won {
                    row.first_responses += 1;
                }
                if contested {
                    row.contested += 1;
                    if won {
                        row.contested_wins += 1;
                    }
                }
            }
        }
        let dvms = rows
            .into_values()
            .map(|mut row| {
                row.win_rate = ratio(row.first_responses, row.requests_with_result);
                row
            })
            .collect();
        Competition {
            timestamp: rfc3339(now),
            period_start: rfc3339(w.start),
            period_end: rfc3339(now),
            responders_histogram: histogram,
            dvms,
        }
    }

    pub fn prices(&self, now: u64, range: TimeRange, group: &str) -> Prices {
        let w = self.win(now, range);
        let mut groups: BTreeMap<(Option<u32>, Option<u16>), Vec<u64>> = BTreeMap::new();
        for e in &self.evs[w.lo..] {
            if e.part != Part::Feedback || e.status.as_deref() != Some("payment-required") {
                continue;
            }
            let Some(amount) = e.amount else { continue };
            let key = if group == "dvm" {
                Some((Some(e.author), None))
            } else {
                e.link
                    .and_then(|l| self.request_at[l as usize])
                    .map(|ri| (None, Some(self.evs[ri].kind)))
            };
            if let Some(k) = key {
                groups.entry(k).or_default().push(amount);
            }
        }
        let rows = groups
            .into_iter()
            .map(|((dvm, kind), mut v)| {
                v.sort_unstable();
                PriceRow {
                    dvm_id: dvm.map(|p| self.hex(p)),
                    dvm_name: dvm.and_then(|p| self.name(p)),
                    kind,
                    count: v.len() as u64,
                    min_msat: v[0],
                    median_msat: quantile(&v, 0.5).expect("non-empty"),
                    max_msat: v[v.len() - 1],
                }
            })
            .collect();
        Prices {
            timestamp: rfc3339(now),
            period_start: rfc3339(w.start),
            period_end: rfc3339(now),
            group_by: group.to_owned(),
            rows,
        }
    }

    // ----- relays -----

    /// Records stream entries `(event JSON, relay)` as deliveries; entries of events that are not
    /// stored (excluded kinds, junk) deliver nothing, and relays must be ws(s) URLs.
    pub fn add_deliveries<'a>(&mut self, entries: impl Iterator<Item = (&'a str, &'a str)>) {
        for (json, relay) in entries {
            if !(relay.starts_with("wss://") || relay.starts_with("ws://")) {
                continue;
            }
            let Ok(v) = serde_json::from_str::<serde_json::Value>(json) else {
                continue;
            };
            let Some(&id) = v
                .get("id")
                .and_then(|i| i.as_str())
                .and_then(|i| self.id_index.get(i))
            else {
                continue;
            };
            if self.event_at[id as usize].is_some() {
                self.deliveries.entry(id).or_default().insert(relay.to_owned());
            }
        }
    }

    /// Per relay, the stored events created in the window it delivered, and those only it did.
    pub fn relay_coverage(&self, now: u64, range: TimeRange) -> RelayCoverage {
        let w = self.win(now, range);
        let mut rows: BTreeMap<&str, (u64, u64)> = BTreeMap::new();
        let mut events = 0u64;
        for (&id, relays) in &self.deliveries {
            let at = self.evs[self.event_at[id as usize].expect("stored")].at;
            if at < w.start || at > now {
                continue;
            }
            events += 1;
            for r in relays {
                let row = rows.entry(r.as_str()).or_default();
                row.0 += 1;
                row.1 += u64::from(relays.len() == 1);
            }
        }
        let mut relays: Vec<RelayCoverageRow> = rows
            .into_iter()
            .map(|(relay, (n, only))| RelayCoverageRow {
                relay: relay.to_owned(),
                events: n,
                only_here: only,
                share: ratio(n, events),
            })
            .collect();
        relays.sort_by(|a, b| b.events.cmp(&a.events).then_with(|| a.relay.cmp(&b.relay)));
        RelayCoverage {
            timestamp: rfc3339(now),
            period_start: rfc3339(w.start),
            period_end: rfc3339(now),
            events,
            relays,
        }
    }

    // ----- payments -----

    /// The job a zapped event belongs to and its kind: a stored request is its own job; a stored
    /// result or feedback belongs to the request it links, whose kind is the stored request's, else
    /// (results only) the result's job kind.
    fn zapped_job(&self, zapped: u32) -> (Option<u32>, Option<u16>) {
        let Some(i) = self.event_at[zapped as usize] else {
            return (None, None);
        };
        let e = &self.evs[i];
        match e.part {
            Part::Request => (Some(e.id), Some(e.kind)),
            Part::Result | Part::Feedback => {
                let kind = e
                    .link
                    .and_then(|l| self.request_at[l as usize])
                    .map(|r| self.evs[r].kind)
                    .or(if e.part == Part::Result { e.job_kind } else { None });
                (e.link, kind)
            }
            _ => (None, None),
        }
    }

    /// `GET /api/contextvm/traffic` from the parsed messages; `since` is what the test recorded
    /// as the start of live watching.
    pub fn contextvm(&self, now: u64, range: TimeRange, since: Option<u64>) -> ContextvmTraffic {
        #[derive(Default)]
        struct C {
            calls: u64,
            responses: u64,
            errors: u64,
        }
        #[derive(Default)]
        struct S {
            c: C,
            clients: BTreeSet<u32>,
            caps: BTreeMap<(String, String), C>,
        }
        let w = self.win(now, range);
        let call_of = |id: u32| {
            self.event_at[id as usize]
                .map(|i| &self.evs[i])
                .filter(|c| c.part == Part::Cvm && c.reason.is_some() && c.at <= now)
        };
        let mut total = C::default();
        let mut answered = 0;
        // Keyed by hex so ties fall in the api's order (ids ascending).
        let mut servers: BTreeMap<String, S> = BTreeMap::new();
        let mut series = vec![(0u64, 0u64); w.n];
        for e in self.evs[w.lo..]
            .iter()
            .filter(|e| e.part == Part::Cvm && e.at <= now)
        {
            if let Some(method) = &e.reason {
                total.calls += 1;
                series[w.bucket(e.at)].0 += 1;
                for &t in &e.targets {
                    let s = servers.entry(self.hex(t)).or_default();
                    s.c.calls += 1;
                    s.clients.insert(e.author);
                    s.caps.entry((method.clone(), e.d.clone())).or_default().calls += 1;
                }
            } else if let Some(status) = &e.status {
                let error = u64::from(status == "error");
                total.responses += 1;
                total.errors += error;
                series[w.bucket(e.at)].1 += 1;
                let call = e.link.and_then(call_of);
                answered += u64::from(call.is_some());
                let cap = call.map_or_else(Default::default, |c| {
                    (c.reason.clone().unwrap_or_default(), c.d.clone())
                });
                let s = servers.entry(self.hex(e.author)).or_default();
                s.c.responses += 1;
                s.c.errors += error;
                let c = s.caps.entry(cap).or_default();
                c.responses += 1;
                c.errors += error;
            }
        }
        let mut servers: Vec<ContextvmServer> = servers
            .into_iter()
            .map(|(hex, s)| {
                let mut capabilities: Vec<ContextvmCapability> = s
                    .caps
                    .into_iter()
                    .map(|((method, name), c)| ContextvmCapability {
                        method,
                        name,
                        calls: c.calls,
                        responses: c.responses,
                        errors: c.errors,
                    })
                    .collect();
                capabilities.sort_by_key(|c| std::cmp::Reverse(c.calls + c.responses));
                ContextvmServer {
                    server_name: self.pk_index.get(&hex).and_then(|&p| self.name(p)),
                    is_dvm: self.pk_index.get(&hex).is_some_and(|&p| self.is_dvm[p as usize]),
                    server_id: hex,
                    calls: s.c.calls,
                    responses: s.c.responses,
                    errors: s.c.errors,
                    clients: s.clients.len() as u64,
                    capabilities,
                }
            })
            .collect();
        servers.sort_by_key(|s| std::cmp::Reverse(s.calls + s.responses));
        ContextvmTraffic {
            timestamp: rfc3339(now),
            period_start: rfc3339(w.start),
            period_end: rfc3339(now),
            seen_live_since: since.map(rfc3339),
            calls: total.calls,
            responses: total.responses,
            errors: total.errors,
            answered,
            servers,
            time_series: w
                .times()
                .into_iter()
                .zip(series)
                .map(|(time, (calls, responses))| ContextvmPoint {
                    time,
                    calls,
                    responses,
                })
                .collect(),
        }
    }

    pub fn payments(&self, now: u64, range: TimeRange, group: &str) -> Payments {
        #[derive(Default)]
        struct Acc {
            zaps: u64,
            paid: u64,
            senders: BTreeSet<u32>,
            jobs: BTreeSet<u32>,
            jobs_asked: u64,
            asked: u64,
        }
        let by_kind = group == "kind";
        let w = self.win(now, range);
        let mut total = Acc::default();
        let mut linked = 0;
        // Keyed by (DVM hex, kind) so the order is the api's tie order: hex ids, then kinds.
        let mut rows: BTreeMap<(Option<String>, Option<u16>), Acc> = BTreeMap::new();
        let mut series = vec![(0u64, 0u64); w.n];
        // Asks: per (DVM, linked request) the largest amount of its payment requests and results.
        let mut asks: BTreeMap<(u32, Option<u32>), (u64, Option<u16>)> = BTreeMap::new();
        for e in &self.evs[w.lo..] {
            if e.at > now {
                continue;
            }
            match e.part {
                Part::Zap => {
                    let (Some(amount), Some(to)) = (e.amount, e.zap_to) else {
                        continue;
                    };
                    if !self.is_dvm[to as usize] {
                        continue;
                    }
                    let (job, kind) = e.link.map_or((None, None), |z| self.zapped_job(z));
                    let key = if by_kind {
                        kind.map(|k| (None, Some(k)))
                    } else {
                        Some((Some(self.hex(to)), None))
                    };
                    let mut accs = vec![&mut total];
                    if let Some(k) = key {
                        accs.push(rows.entry(k).or_default());
                    }
                    for a in accs {
                        a.zaps += 1;
                        a.paid += amount;
                        a.senders.extend(e.zap_from);
                        a.jobs.extend(job);
                    }
                    linked += u64::from(job.is_some());
                    let b = &mut series[w.bucket(e.at)];
                    b.0 += 1;
                    b.1 += amount;
                }
                Part::Feedback | Part::Result => {
                    let asking = e.part == Part::Result || e.status.as_deref() == Some("payment-required");
                    let Some(amount) = e.amount.filter(|_| asking) else {
                        continue;
                    };
                    let own_kind = if e.part == Part::Result { e.job_kind } else { None };
                    let a = asks.entry((e.author, e.link)).or_insert((0, None));
                    a.0 = a.0.max(amount);
                    a.1 = a.1.or(own_kind);
                }
                _ => {}
            }
        }
        for ((dvm, link), (amount, own_kind)) in asks {
            let kind = link
                .and_then(|l| self.request_at[l as usize])
                .map(|r| self.evs[r].kind)
                .or(own_kind);
            let key = if by_kind {
                kind.map(|k| (None, Some(k)))
            } else {
                Some((Some(self.hex(dvm)), None))
            };
            if let Some(k) = key {
                let a = rows.entry(k).or_default();
                a.jobs_asked += 1;
                a.asked += amount;
            }
        }
        let mut rows: Vec<PaymentRow> = rows
            .into_iter()
            .map(|((dvm, kind), a)| PaymentRow {
                dvm_name: dvm
                    .as_ref()
                    .and_then(|h| self.pk_index.get(h))
                    .and_then(|&p| self.name(p)),
                dvm_id: dvm,
                kind,
                zaps: a.zaps,
                paid_msat: a.paid,
                senders: a.senders.len() as u64,
                jobs_paid: a.jobs.len() as u64,
                jobs_asked: a.jobs_asked,
                asked_msat: a.asked,
            })
            .collect();
        rows.sort_by(|a, b| {
            b.paid_msat
                .cmp(&a.paid_msat)
                .then(b.asked_msat.cmp(&a.asked_msat))
        });
        Payments {
            timestamp: rfc3339(now),
            period_start: rfc3339(w.start),
            period_end: rfc3339(now),
            group_by: group.to_owned(),
            zaps: total.zaps,
            paid_msat: total.paid,
            senders: total.senders.len() as u64,
            zaps_linked: linked,
            jobs_paid: total.jobs.len() as u64,
            rows,
            time_series: w
                .times()
                .into_iter()
                .zip(series)
                .map(|(time, (zaps, paid_msat))| PaymentPoint {
                    time,
                    zaps,
                    paid_msat,
                })
                .collect(),
        }
    }

    // ----- what's new, history -----

    pub fn whats_new(&self, now: u64, range: TimeRange) -> WhatsNew {
        let w = self.win(now, range);
        let mut dvms = Vec::new();
        for p in 0..self.pks.len() {
            if let Some(first) = self.first_seen[p]
                && self.is_dvm[p]
                && first >= w.start
            {
                dvms.push(NewDvm {
                    dvm_id: self.pks[p].clone(),
                    dvm_name: self.profiles[p].name.clone(),
                    first_seen: rfc3339(first),
                });
            }
        }
        let kinds = self
            .kind_first
            .iter()
            .filter(|(_, t)| **t >= w.start)
            .map(|(k, t)| NewKind {
                kind: *k,
                name: kind_name(*k),
                first_seen: rfc3339(*t),
            })
            .collect();
        WhatsNew {
            timestamp: rfc3339(now),
            period_start: rfc3339(w.start),
            period_end: rfc3339(now),
            dvms,
            kinds,
        }
    }

    pub fn monthly(&self) -> MonthlyHistory {
        let mut months: BTreeMap<String, MonthAcc> = BTreeMap::new();
        if let (Some(first), Some(last)) = (self.evs.first(), self.evs.last()) {
            let end = month_of(last.at);
            let mut m = month_of(first.at);
            loop {
                months.insert(m.clone(), MonthAcc::default());
                if m >= end {
                    break;
                }
                m = next_month(&m);
            }
        }
        for e in &self.evs {
            let m = months.entry(month_of(e.at)).or_default();
            match e.part {
                Part::Request => {
                    m.requests += 1;
                    m.customers.insert(e.author);
                    *m.kinds.entry(e.kind).or_default() += 1;
                }
                Part::Result => {
                    m.results += 1;
                    m.dvms.insert(e.author);
                    *m.dvm_results.entry(e.author).or_default() += 1;
                }
                Part::Feedback => {
                    m.feedback += 1;
                    m.dvms.insert(e.author);
                }
                _ => {}
            }
        }
        let months = months
            .into_iter()
            .map(|(month, m)| {
                let mut top_dvms: Vec<Ranked> = m
                    .dvm_results
                    .iter()
                    .map(|(pk, c)| Ranked {
                        id: self.hex(*pk),
                        name: self.name(*pk),
                        count: *c,
                    })
                    .collect();
                top_dvms.sort_by(|a, b| b.count.cmp(&a.count).then_with(|| a.id.cmp(&b.id)));
                top_dvms.truncate(10);
                let mut top_kinds: Vec<(u16, u64)> = m.kinds.iter().map(|(k, c)| (*k, *c)).collect();
                top_kinds.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
                top_kinds.truncate(10);
                MonthRow {
                    month,
                    requests: m.requests,
                    results: m.results,
                    feedback: m.feedback,
                    dvms: m.dvms.len() as u64,
                    customers: m.customers.len() as u64,
                    kinds: m.kinds.len() as u64,
                    top_dvms,
                    top_kinds: top_kinds
                        .into_iter()
                        .map(|(k, c)| Ranked {
                            id: k.to_string(),
                            name: kind_name(k),
                            count: c,
                        })
                        .collect(),
                }
            })
            .collect();
        MonthlyHistory { months }
    }
}
