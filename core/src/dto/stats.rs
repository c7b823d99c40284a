//! Response types of the statistics endpoints beyond the global summary. Definitions of every
//! number are in docs/statistics.md; field names of DVMDash's endpoints are kept.

use serde::{Deserialize, Serialize};

/// A DVM's display profile: from its newest NIP-89 announcement, else its kind-0 profile.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Profile {
    pub name: Option<String>,
    pub about: Option<String>,
    pub picture: Option<String>,
    /// Announced support for encrypted requests (`encryptionSupported` or `supportsEncryption`).
    pub encryption_supported: Option<bool>,
}

/// `sort` values of `GET /api/dvms`, the default first (shared with the UI's sort menu).
pub const DVM_SORTS: &[&str] = &[
    "last_seen",
    "total_events",
    "total_responses",
    "total_feedback",
    "total_requests",
    "name",
];

/// `sort` values of `GET /api/kinds`, the default first.
pub const KIND_SORTS: &[&str] = &[
    "last_seen",
    "total_requests",
    "total_responses",
    "num_supporting_dvms",
    "kind",
];

/// `GET /api/dvms` item.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct DvmSummary {
    /// Hex pubkey.
    pub id: String,
    pub npub: String,
    /// Last result or feedback, all time.
    pub last_seen: Option<String>,
    /// First result, feedback or announcement, all time.
    pub first_seen: Option<String>,
    /// Sent a result or feedback in the last 24 hours.
    pub is_active: bool,
    /// DVMDash's meaning: job kinds it answered with results, all time.
    pub supported_kinds: Vec<u16>,
    /// Length of `supported_kinds`.
    pub num_supporting_kinds: u64,
    /// Kinds in its current NIP-89 announcements (`k` tags), served or not.
    #[serde(default)]
    pub announced_kinds: Vec<u16>,
    /// Results in the window.
    pub total_responses: u64,
    /// Feedback in the window.
    pub total_feedback: u64,
    /// Results plus feedback in the window.
    pub total_events: u64,
    /// Requests in the window addressed to this DVM (`p` tag).
    pub total_requests: u64,
    /// Distinct requests this DVM answered (result or feedback) in the window.
    pub jobs_answered: u64,
    pub dvm_name: Option<String>,
    pub dvm_about: Option<String>,
    pub dvm_picture: Option<String>,
}

/// `GET /api/dvms`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct DvmList {
    pub dvms: Vec<DvmSummary>,
    /// DVMs matching the filter, before pagination.
    pub total: u64,
    pub limit: u64,
    pub offset: u64,
    /// The end of the window the list describes (RFC 3339): the moment the job ledger is complete
    /// to, normally a few seconds ago (answered jobs are counted there); not in DVMDash's answer.
    #[serde(default)]
    pub timestamp: String,
}

/// One bucket of a DVM's activity.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct DvmPoint {
    pub time: String,
    pub total_responses: u64,
    pub total_feedback: u64,
}

/// Per kind activity of one DVM in the window.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct DvmKindActivity {
    pub kind: u16,
    pub total_responses: u64,
}

/// `GET /api/stats/dvm/{id}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct DvmStats {
    pub dvm_id: String,
    pub npub: String,
    pub dvm_name: Option<String>,
    pub dvm_about: Option<String>,
    pub dvm_picture: Option<String>,
    pub profile: Profile,
    pub timestamp: String,
    pub period_start: String,
    pub period_end: String,
    pub first_seen: Option<String>,
    pub last_seen: Option<String>,
    pub total_responses: u64,
    pub total_feedback: u64,
    pub total_requests: u64,
    pub jobs_answered: u64,
    /// DVMDash's meaning: job kinds it answered with results, all time (same as `served_kinds`).
    pub supported_kinds: Vec<u16>,
    /// Kinds in current NIP-89 announcements.
    pub announced_kinds: Vec<u16>,
    /// Job kinds of its results, all time.
    pub served_kinds: Vec<u16>,
    /// Announced but never served.
    pub announced_not_served: Vec<u16>,
    /// Served but not announced.
    pub served_not_announced: Vec<u16>,
    /// Results per job kind in the window.
    pub kinds: Vec<DvmKindActivity>,
    pub time_series: Vec<DvmPoint>,
}

/// `GET /api/kinds` item.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct KindSummary {
    pub kind: u16,
    /// Registry name, when the kind is known.
    pub name: Option<String>,
    /// Last request or result of this kind, all time.
    pub last_seen: Option<String>,
    /// DVMs that ever sent a result of this kind.
    pub num_supporting_dvms: u64,
    /// DVMs whose current announcement lists this kind.
    pub num_announcing_dvms: u64,
    /// Requests in the window.
    pub total_requests: u64,
    /// Results of this kind (by request kind) in the window.
    pub total_responses: u64,
}

/// `GET /api/kinds`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct KindList {
    pub kinds: Vec<KindSummary>,
    pub total: u64,
    pub limit: u64,
    pub offset: u64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct KindPoint {
    pub time: String,
    pub total_requests: u64,
    pub total_responses: u64,
}

/// A DVM's share of one kind in the window.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct KindDvmActivity {
    pub dvm_id: String,
    pub dvm_name: Option<String>,
    pub total_responses: u64,
}

/// `GET /api/stats/kind/{kind}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct KindStats {
    pub kind: u16,
    pub name: Option<String>,
    pub timestamp: String,
    pub period_start: String,
    pub period_end: String,
    pub total_requests: u64,
    pub total_responses: u64,
    pub num_supporting_dvms: u64,
    /// Hex pubkeys of every DVM that ever sent a result of this kind.
    pub supporting_dvms: Vec<String>,
    /// Results per DVM in the window, most first.
    pub top_dvms: Vec<KindDvmActivity>,
    pub time_series: Vec<KindPoint>,
}

/// Latency quantiles in seconds over a set of jobs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Quantiles {
    /// Jobs with the measure defined.
    pub count: u64,
    pub p50: Option<f64>,
    pub p90: Option<f64>,
    pub p99: Option<f64>,
}

/// How the jobs of a group ended (see docs/statistics.md, "Outcome").
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Outcomes {
    pub success: u64,
    pub partial: u64,
    pub error: u64,
    /// The customer deleted the request (NIP-09) before the DVM concluded it.
    pub cancelled: u64,
    /// Asked for payment, then nothing, past the kind's timeout.
    pub payment_required: u64,
    /// Said it was processing (or sent an unknown status), then nothing, past the timeout.
    pub stalled: u64,
    /// Not final yet and still within the timeout.
    pub pending: u64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ReasonCount {
    pub reason: String,
    pub count: u64,
}

/// One row of `/api/stats/performance`: a DVM, a kind, or a DVM × kind pair.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct PerformanceRow {
    pub dvm_id: Option<String>,
    pub dvm_name: Option<String>,
    pub kind: Option<u16>,
    /// (request, DVM) pairs with at least one response, for requests in the window.
    pub jobs: u64,
    pub feedback_latency: Quantiles,
    pub result_latency: Quantiles,
    pub outcomes: Outcomes,
    /// Success share of final jobs (success / (jobs - pending)), when any job is final.
    pub success_rate: Option<f64>,
    /// Most frequent error reasons.
    pub top_errors: Vec<ReasonCount>,
}

/// `GET /api/stats/performance`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Performance {
    pub timestamp: String,
    pub period_start: String,
    pub period_end: String,
    /// `dvm`, `kind` or `dvm_kind`.
    pub group_by: String,
    pub rows: Vec<PerformanceRow>,
}

/// Requests nobody answered, per kind.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct KindReach {
    pub kind: u16,
    pub requests: u64,
    /// Requests past the kind's timeout.
    pub final_requests: u64,
    /// Past the timeout with no result or feedback from anyone.
    pub unanswered: u64,
    pub directed: u64,
    pub open: u64,
}

/// Directed requests per target DVM.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct DirectedRow {
    pub dvm_id: String,
    pub dvm_name: Option<String>,
    /// Requests in the window naming this DVM in a `p` tag.
    pub directed: u64,
    /// Of those, past the kind's timeout.
    pub final_directed: u64,
    /// Past the timeout without any result or feedback from this DVM.
    pub missed: u64,
    pub missed_rate: Option<f64>,
}

/// `GET /api/stats/reach`: unanswered requests per kind and missed directed requests per DVM.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Reach {
    pub timestamp: String,
    pub period_start: String,
    pub period_end: String,
    pub kinds: Vec<KindReach>,
    pub dvms: Vec<DirectedRow>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct CompetitionRow {
    pub dvm_id: String,
    pub dvm_name: Option<String>,
    /// Requests in the window this DVM sent a result for.
    pub requests_with_result: u64,
    /// Of those, where its first result came before every other DVM's.
    pub first_responses: u64,
    pub win_rate: Option<f64>,
    /// Requests where at least two DVMs sent results and this DVM was one of them.
    pub contested: u64,
    pub contested_wins: u64,
}

/// `GET /api/stats/competition`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Competition {
    pub timestamp: String,
    pub period_start: String,
    pub period_end: String,
    /// Requests in the window by the number of distinct DVMs that sent a result: 0, 1, 2, 3 or more.
    pub responders_histogram: [u64; 4],
    pub dvms: Vec<CompetitionRow>,
}

/// Distribution of asked prices in millisats.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct PriceRow {
    pub dvm_id: Option<String>,
    pub dvm_name: Option<String>,
    pub kind: Option<u16>,
    pub count: u64,
    pub min_msat: u64,
    pub median_msat: u64,
    pub max_msat: u64,
}

/// `GET /api/stats/prices`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Prices {
    pub timestamp: String,
    pub period_start: String,
    pub period_end: String,
    pub group_by: String,
    pub rows: Vec<PriceRow>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct NewDvm {
    pub dvm_id: String,
    pub dvm_name: Option<String>,
    pub first_seen: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct NewKind {
    pub kind: u16,
    pub name: Option<String>,
    pub first_seen: String,
}

/// `GET /api/stats/new`: DVMs and kinds first seen in the window.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct WhatsNew {
    pub timestamp: String,
    pub period_start: String,
    pub period_end: String,
    pub dvms: Vec<NewDvm>,
    pub kinds: Vec<NewKind>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Ranked {
    /// Hex pubkey or kind number as text.
    pub id: String,
    pub name: Option<String>,
    pub count: u64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct MonthRow {
    /// `YYYY-MM` (UTC, by `created_at`).
    pub month: String,
    pub requests: u64,
    pub results: u64,
    pub feedback: u64,
    pub dvms: u64,
    pub customers: u64,
    pub kinds: u64,
    /// Top DVMs by results.
    pub top_dvms: Vec<Ranked>,
    /// Top kinds by requests.
    pub top_kinds: Vec<Ranked>,
}

/// `GET /api/history/monthly`: every month since the first event, kept forever.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct MonthlyHistory {
    pub months: Vec<MonthRow>,
}

/// `GET /api/cache/stats` (DVMDash fields kept, plus honest counters).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct CacheStats {
    pub items: u64,
    pub memory_usage_mb: f64,
    pub memory_limit_mb: f64,
    pub utilization_percent: f64,
    pub bytes: u64,
    pub hits: u64,
    pub misses: u64,
    /// Entries recomputed in the background before they expired.
    pub refreshes: u64,
    /// Hits served behind the data while their recomputation ran in the background (also counted
    /// in `hits`; `X-Cache: stale`).
    pub stale_hits: u64,
    pub evictions: u64,
    pub ttl_seconds: u64,
}

/// One request kind ever used, all time (`GET /api/kinds/usage`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct KindUsage {
    pub kind: u16,
    /// Registry name, when the kind is known.
    pub name: Option<String>,
    /// `registered`, `proposed` or `unregistered` in the registry; `None` when not listed.
    pub registry_status: Option<String>,
    /// First request or result of this kind.
    pub first_seen: Option<String>,
    /// Last request or result of this kind.
    pub last_seen: Option<String>,
    pub total_requests: u64,
    /// Results answering this kind (by request kind).
    pub total_results: u64,
    /// Distinct authors of its requests.
    pub customers: u64,
    /// Distinct authors of its results.
    pub dvms: u64,
}

/// A request kind in 5000-5999 never seen, with its registry entry when it has one.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct UnusedKind {
    pub kind: u16,
    pub name: Option<String>,
    pub registry_status: Option<String>,
}

/// `GET /api/kinds/usage`: every request kind ever used, and the ones never used.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct KindsUsage {
    pub timestamp: String,
    /// Every request kind with a request or result ever, by kind.
    pub used: Vec<KindUsage>,
    /// Request kinds in 5000-5999 never seen in a request or result, by kind; the collector's
    /// exclusions (other protocols in the range) are left out.
    pub unused: Vec<UnusedKind>,
    /// Unused kinds with no registry entry either: free for a new DVM.
    pub free: u64,
}

/// Zaps received and amounts asked for, per DVM or per job kind.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct PaymentRow {
    pub dvm_id: Option<String>,
    pub dvm_name: Option<String>,
    pub kind: Option<u16>,
    /// Zap receipts paying it (by DVM: received; by kind: linked to a job of the kind).
    pub zaps: u64,
    pub paid_msat: u64,
    /// Distinct senders of those zaps (where the receipt names one).
    pub senders: u64,
    /// Distinct jobs those zaps are linked to.
    pub jobs_paid: u64,
    /// (request, DVM) pairs in which the DVM asked for an amount.
    pub jobs_asked: u64,
    /// Sum over those pairs of the largest amount asked.
    pub asked_msat: u64,
}

/// One bucket of zaps paid to DVMs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct PaymentPoint {
    pub time: String,
    pub zaps: u64,
    pub paid_msat: u64,
}

/// `GET /api/stats/payments`: what DVMs were paid (zap receipts) beside what they asked for.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Payments {
    pub timestamp: String,
    pub period_start: String,
    pub period_end: String,
    pub group_by: String,
    /// Zap receipts in the window paying a DVM, their sum and distinct senders.
    pub zaps: u64,
    pub paid_msat: u64,
    pub senders: u64,
    /// Of those, the ones linked to a job, and the distinct jobs.
    pub zaps_linked: u64,
    pub jobs_paid: u64,
    pub rows: Vec<PaymentRow>,
    pub time_series: Vec<PaymentPoint>,
}

/// One watched relay's share of the events in a window.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct RelayCoverageRow {
    pub relay: String,
    /// Distinct events of the window it delivered.
    pub events: u64,
    /// Of those, the ones no other watched relay delivered: what would be lost without it.
    pub only_here: u64,
    /// `events` / all distinct events of the window.
    pub share: Option<f64>,
}

/// `GET /api/relays/coverage`: which watched relays carry the DVM traffic, and which carry events
/// nobody else does.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct RelayCoverage {
    pub timestamp: String,
    pub period_start: String,
    pub period_end: String,
    /// Distinct events created in the window that any relay delivered.
    pub events: u64,
    /// Most events first, then relay URL.
    pub relays: Vec<RelayCoverageRow>,
}

/// Where one DVM's events appear.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct DvmRelayRow {
    pub relay: String,
    pub results: u64,
    pub feedback: u64,
    /// Announcements of any family (NIP-89, ContextVM, encrypted) and heartbeats.
    pub announcements: u64,
    /// The newest `created_at` of its events delivered by this relay.
    pub last_seen: String,
}

/// `GET /api/dvms/{id}/relays`: the relays a DVM can be reached on (its events of the last 30 days).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct DvmRelays {
    pub dvm_id: String,
    pub timestamp: String,
    /// Most results first, then feedback, then relay URL.
    pub relays: Vec<DvmRelayRow>,
}

/// One kind of deviation from the specs and how often it occurred.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct DeviationCount {
    /// Stable name (`core::nip90::deviation::ALL`).
    pub name: String,
    pub description: String,
    /// Stored events of the window with this deviation.
    pub events: u64,
    /// Their distinct authors.
    pub authors: u64,
}

/// `GET /api/stats/deviations`: input that was stored but bent or broke the specs, and input that
/// was ignored, so bad data is visible rather than silently absorbed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Deviations {
    pub timestamp: String,
    pub period_start: String,
    pub period_end: String,
    /// Stored events of the window.
    pub events: u64,
    /// Every known deviation, in a fixed order, zero counts included.
    pub deviations: Vec<DeviationCount>,
    /// Deletions of the window naming a stored request, result or feedback by another author:
    /// they cancel nothing.
    pub deletions_of_others: u64,
}

/// `GET /api/contextvm/traffic`: ContextVM calls and responses (kind 25910) in a window. Relays
/// keep none of these ephemeral messages, so only what a collector watched live is counted: the
/// numbers start at `seen_live_since` and are never back-filled. Encrypted (gift-wrapped) calls are
/// not visible and not counted.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ContextvmTraffic {
    pub timestamp: String,
    pub period_start: String,
    pub period_end: String,
    /// When a collector of this deployment first watched ContextVM messages live; `null` when
    /// unknown (none has yet, or Redis could not say).
    pub seen_live_since: Option<String>,
    /// Calls (JSON-RPC requests with a method and an id) in the window.
    pub calls: u64,
    /// Responses (a `result` or an `error`) in the window, and how many of them were errors.
    pub responses: u64,
    pub errors: u64,
    /// Responses whose call was seen too (in the window or before).
    pub answered: u64,
    /// Servers by calls plus responses, most first.
    pub servers: Vec<ContextvmServer>,
    pub time_series: Vec<ContextvmPoint>,
}

/// One ContextVM server's live traffic.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ContextvmServer {
    pub server_id: String,
    pub server_name: Option<String>,
    /// It is a DVM too (sent NIP-90 results or feedback, or a NIP-89 announcement), so it has a
    /// DVM page.
    pub is_dvm: bool,
    /// Calls naming it in `p`; responses it sent; of those, errors.
    pub calls: u64,
    pub responses: u64,
    pub errors: u64,
    /// Distinct callers.
    pub clients: u64,
    /// Per method and name called (the tool or prompt), most used first. Responses whose call
    /// was not seen have an empty method.
    pub capabilities: Vec<ContextvmCapability>,
}

/// Calls and responses of one method and name on one server.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ContextvmCapability {
    /// The JSON-RPC method, such as `tools/call`.
    pub method: String,
    /// The tool or prompt named in `params.name`; empty for methods without one.
    pub name: String,
    pub calls: u64,
    pub responses: u64,
    pub errors: u64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ContextvmPoint {
    pub time: String,
    pub calls: u64,
    pub responses: u64,
}
