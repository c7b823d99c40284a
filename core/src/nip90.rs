//! NIP-90 / NIP-89 tag parsing: turns a verified event into the facts statistics need.
//!
//! Parsing is lenient by rule (reference `nip90.md` §12): an odd tag never rejects an event; we keep
//! what parses and record each deviation as a flag, which feeds spec-conformance statistics.

use serde::{Deserialize, Serialize};

use crate::event::{Event, Id32, parse_hex32};
use crate::kinds::{KindFilter, Role};

/// Feedback status (`["status", <status>, <reason>?]`).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Status {
    PaymentRequired,
    Processing,
    Error,
    Success,
    Partial,
    Other(String),
}

impl Status {
    pub fn parse(s: &str) -> Status {
        match s.trim().to_ascii_lowercase().as_str() {
            "payment-required" => Status::PaymentRequired,
            "processing" => Status::Processing,
            "error" => Status::Error,
            "success" => Status::Success,
            "partial" => Status::Partial,
            _ => Status::Other(s.to_owned()),
        }
    }

    /// Stored form; unknown strings are kept verbatim (bounded to 64 bytes).
    pub fn as_str(&self) -> &str {
        match self {
            Status::PaymentRequired => "payment-required",
            Status::Processing => "processing",
            Status::Error => "error",
            Status::Success => "success",
            Status::Partial => "partial",
            Status::Other(s) => truncate(s, 64),
        }
    }
}

/// Deviations from the spec, as bit flags (stored as one integer per event).
pub mod deviation {
    /// A result or feedback without a usable `e` tag.
    pub const MISSING_E: u32 = 1 << 0;
    /// A result or feedback without a `p` tag naming the customer.
    pub const MISSING_P: u32 = 1 << 1;
    /// A result whose kind is not request kind + 1000.
    pub const KIND_MISMATCH: u32 = 1 << 2;
    /// An `amount` or `bid` that needed lenient parsing or did not parse.
    pub const NONNUMERIC_AMOUNT: u32 = 1 << 3;
    /// A `status` tag on a result.
    pub const STATUS_ON_RESULT: u32 = 1 << 4;
    /// A result without a `request` tag.
    pub const MISSING_REQUEST_TAG: u32 = 1 << 5;
    /// A `relays` tag with an entry that is not a ws(s) URL.
    pub const MALFORMED_RELAYS: u32 = 1 << 6;
    /// Feedback without a `status` tag.
    pub const MISSING_STATUS: u32 = 1 << 7;
    /// An announcement whose content is not valid JSON.
    pub const INVALID_ANNOUNCEMENT_JSON: u32 = 1 << 8;
    /// A zap receipt whose invoice amount differs from the amount its zap request asked for.
    pub const ZAP_AMOUNT_MISMATCH: u32 = 1 << 9;
    /// A zap receipt above [`super::MAX_ZAP_MSAT`].
    pub const ZAP_AMOUNT_ABSURD: u32 = 1 << 10;
    /// A zap receipt without an invoice amount.
    pub const ZAP_WITHOUT_AMOUNT: u32 = 1 << 11;
    /// A ContextVM message whose content is not a JSON-RPC call, notification or response.
    pub const INVALID_CONTEXTVM_MESSAGE: u32 = 1 << 12;

    /// Every flag with its stable name (as the api reports it) and what it means.
    pub const ALL: &[(u32, &str, &str)] = &[
        (
            MISSING_E,
            "missing_e",
            "a result or feedback without a usable e tag",
        ),
        (
            MISSING_P,
            "missing_p",
            "a result or feedback without a p tag naming the customer",
        ),
        (
            KIND_MISMATCH,
            "kind_mismatch",
            "a result whose kind is not its request kind + 1000",
        ),
        (
            NONNUMERIC_AMOUNT,
            "nonnumeric_amount",
            "an amount or bid that needed lenient parsing or did not parse",
        ),
        (STATUS_ON_RESULT, "status_on_result", "a status tag on a result"),
        (
            MISSING_REQUEST_TAG,
            "missing_request_tag",
            "a result without a request tag",
        ),
        (
            MALFORMED_RELAYS,
            "malformed_relays",
            "a relays tag with an entry that is not a ws(s) URL",
        ),
        (MISSING_STATUS, "missing_status", "feedback without a status tag"),
        (
            INVALID_ANNOUNCEMENT_JSON,
            "invalid_announcement_json",
            "an announcement whose content is not valid JSON",
        ),
        (
            ZAP_AMOUNT_MISMATCH,
            "zap_amount_mismatch",
            "a zap receipt whose invoice differs from the amount its zap request asked for (pays nothing)",
        ),
        (
            ZAP_AMOUNT_ABSURD,
            "zap_amount_absurd",
            "a zap receipt above 1 BTC (pays nothing)",
        ),
        (
            ZAP_WITHOUT_AMOUNT,
            "zap_without_amount",
            "a zap receipt without an invoice amount (pays nothing)",
        ),
        (
            INVALID_CONTEXTVM_MESSAGE,
            "invalid_contextvm_message",
            "a ContextVM message whose content is not a JSON-RPC call, notification or response",
        ),
    ];
}

/// The parsed, role-specific facts of one event. Fields that do not apply stay empty.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct JobFacts {
    /// Results and feedback: the request answered (`e`, else the `request` tag's id).
    pub request_id: Option<Id32>,
    /// Results: the request kind (from the `request` tag, else kind - 1000). Requests: own kind.
    pub request_kind: Option<u16>,
    /// Results and feedback: the customer (`request` tag author, else `p`).
    pub customer: Option<Id32>,
    /// Requests: the DVMs asked (`p`); empty means an open request.
    pub targets: Vec<Id32>,
    /// Feedback status, or the informational status on a result. ContextVM responses: success or
    /// error.
    pub status: Option<Status>,
    /// Free text after the status (error reasons). ContextVM calls: the JSON-RPC method.
    pub status_reason: Option<String>,
    /// Results and feedback: `amount` in millisats.
    pub amount_msat: Option<u64>,
    pub bolt11: Option<String>,
    /// Requests: `bid` in millisats.
    pub bid_msat: Option<u64>,
    pub encrypted: bool,
    /// Requests: the `client` tag's name.
    pub client: Option<String>,
    /// Requests: ids of earlier jobs used as inputs (`["i", <id>, "job"]`).
    pub job_inputs: Vec<Id32>,
    /// Requests: normalized relay URLs from the `relays` tag(s).
    pub relays: Vec<String>,
    /// Announcements: the `k` tags in the request range.
    pub announced_kinds: Vec<u16>,
    /// Addressable events: the `d` tag. ContextVM calls: the tool or prompt called (`params.name`).
    pub d_tag: Option<String>,
    /// Bit flags from [`deviation`].
    pub deviations: u32,
}

/// Classifies and parses an event.
pub fn parse(event: &Event, kinds: &KindFilter) -> (Role, JobFacts) {
    let role = kinds.role(event.kind);
    let mut f = JobFacts::default();
    match role {
        Role::Request => parse_request(event, &mut f),
        Role::Result => parse_result(event, &mut f),
        Role::Feedback => parse_feedback(event, &mut f),
        Role::Announcement | Role::ServiceAnnouncement => parse_announcement(event, &mut f),
        Role::Deletion => {
            // NIP-09: every `e` tag names an event the author withdraws; the api cancels the
            // author's own requests among them.
            f.request_id = first_hex_tag(event, "e");
            f.targets = event
                .tags_named("e")
                .filter_map(|t| t.get(1).and_then(|v| parse_hex32(v)))
                .take(MAX_DELETED)
                .collect();
        }
        Role::ZapReceipt => parse_zap_receipt(event, &mut f),
        Role::ContextvmMessage => parse_contextvm(event, &mut f),
        Role::Capabilities | Role::Heartbeat | Role::Recommendation | Role::Profile | Role::Other => {}
    }
    if f.d_tag.is_none() && (30000..40000).contains(&event.kind) {
        f.d_tag = event.tag_value("d").map(|d| truncate(d, 256).to_owned());
    }
    (role, f)
}

/// Most servers one ContextVM call may name.
const MAX_CALL_TARGETS: usize = 16;

/// A ContextVM message (kind 25910): an MCP JSON-RPC message in the content. A call (`method` and
/// `id`) names its server in `p`; a notification (`method`, no `id`) is kept but counts as neither
/// call nor response; a response (`result` or `error`) answers the call in `e` and names the
/// client in `p`.
fn parse_contextvm(e: &Event, f: &mut JobFacts) {
    let Ok(serde_json::Value::Object(msg)) = serde_json::from_str::<serde_json::Value>(&e.content) else {
        f.deviations |= deviation::INVALID_CONTEXTVM_MESSAGE;
        return;
    };
    let text = |v: Option<&serde_json::Value>, max: usize| {
        v.and_then(|v| v.as_str())
            .map(|s| truncate(s.trim(), max).to_owned())
            .filter(|s| !s.is_empty())
    };
    if let Some(method) = text(msg.get("method"), 64) {
        f.targets = e
            .tags_named("p")
            .filter_map(|t| t.get(1).and_then(|v| parse_hex32(v)))
            .take(MAX_CALL_TARGETS)
            .collect();
        if msg.contains_key("id") {
            f.d_tag = text(msg.get("params").and_then(|p| p.get("name")), 128);
            f.status_reason = Some(method);
        }
    } else if msg.contains_key("result") || msg.contains_key("error") {
        let failed = msg.get("error").is_some_and(|v| !v.is_null());
        f.status = Some(if failed { Status::Error } else { Status::Success });
        f.request_id = first_hex_tag(e, "e");
        f.customer = first_hex_tag(e, "p");
        if f.request_id.is_none() {
            f.deviations |= deviation::MISSING_E;
        }
    } else {
        f.deviations |= deviation::INVALID_CONTEXTVM_MESSAGE;
    }
}

fn parse_request(e: &Event, f: &mut JobFacts) {
    f.request_kind = Some(e.kind);
    f.encrypted = has_flag_tag(e, "encrypted");
    for t in &e.tags {
        let (Some(name), Some(value)) = (t.first(), t.get(1)) else {
            continue;
        };
        match name.as_str() {
            "p" => {
                if let Some(pk) = parse_hex32(value)
                    && !f.targets.contains(&pk)
                {
                    f.targets.push(pk);
                }
            }
            "i" if t.get(2).map(String::as_str) == Some("job") => {
                if let Some(id) = parse_hex32(value) {
                    f.job_inputs.push(id);
                }
            }
            "bid" => {
                let (v, lenient) = parse_msats(value);
                f.bid_msat = f.bid_msat.or(v);
                if lenient {
                    f.deviations |= deviation::NONNUMERIC_AMOUNT;
                }
            }
            "client" if f.client.is_none() => f.client = Some(truncate(value, 128).to_owned()),
            "relays" => {
                for url in &t[1..] {
                    match normalize_relay_url(url) {
                        Some(u) if !f.relays.contains(&u) => f.relays.push(u),
                        Some(_) => {}
                        None => f.deviations |= deviation::MALFORMED_RELAYS,
                    }
                }
            }
            _ => {}
        }
    }
}

fn parse_result(e: &Event, f: &mut JobFacts) {
    f.encrypted = has_flag_tag(e, "encrypted");
    f.request_id = first_hex_tag(e, "e");
    let p = first_hex_tag(e, "p");
    let embedded = e.tag_value("request").and_then(parse_embedded_request);
    match &embedded {
        Some(req) => {
            f.request_id = f.request_id.or(req.id);
            f.customer = req.pubkey.or(p);
            f.request_kind = req.kind.or_else(|| e.kind.checked_sub(1000));
        }
        None => {
            f.deviations |= deviation::MISSING_REQUEST_TAG;
            f.customer = p;
            f.request_kind = e.kind.checked_sub(1000);
        }
    }
    if f.request_kind != e.kind.checked_sub(1000) {
        f.deviations |= deviation::KIND_MISMATCH;
    }
    if f.request_id.is_none() {
        f.deviations |= deviation::MISSING_E;
    }
    if p.is_none() {
        f.deviations |= deviation::MISSING_P;
    }
    if let Some(t) = e.tags_named("status").next() {
        f.deviations |= deviation::STATUS_ON_RESULT;
        f.status = t.get(1).map(|s| Status::parse(s));
        f.status_reason = t.get(2).map(|s| truncate(s, 512).to_owned());
    }
    parse_amount(e, f);
}

fn parse_feedback(e: &Event, f: &mut JobFacts) {
    f.encrypted = has_flag_tag(e, "encrypted");
    f.request_id = first_hex_tag(e, "e");
    f.customer = first_hex_tag(e, "p");
    if f.request_id.is_none()
        && let Some(req) = e.tag_value("request").and_then(parse_embedded_request)
    {
        f.request_id = req.id;
        f.customer = req.pubkey.or(f.customer);
    }
    if f.request_id.is_none() {
        f.deviations |= deviation::MISSING_E;
    }
    if f.customer.is_none() {
        f.deviations |= deviation::MISSING_P;
    }
    match e.tags_named("status").next() {
        Some(t) => {
            f.status = t.get(1).map(|s| Status::parse(s));
            f.status_reason = t
                .get(2)
                .filter(|s| !s.is_empty())
                .map(|s| truncate(s, 512).to_owned());
        }
        None => f.deviations |= deviation::MISSING_STATUS,
    }
    parse_amount(e, f);
}

fn parse_announcement(e: &Event, f: &mut JobFacts) {
    // Only addressable announcements (31990) are keyed by `d`; replaceable ones (11316, 11999)
    // are one per author and kind, whatever `d` they carry.
    if crate::kinds::Storage::of(e.kind) == crate::kinds::Storage::Addressable {
        f.d_tag = e.tag_value("d").map(|d| truncate(d, 256).to_owned());
    }
    for t in e.tags_named("k") {
        if let Some(k) = t.get(1).and_then(|k| k.trim().parse::<u16>().ok())
            && crate::kinds::REQUEST_KINDS.contains(&k)
            && !f.announced_kinds.contains(&k)
        {
            f.announced_kinds.push(k);
        }
    }
    if !e.content.trim().is_empty() && serde_json::from_str::<serde_json::Value>(&e.content).is_err() {
        f.deviations |= deviation::INVALID_ANNOUNCEMENT_JSON;
    }
}

fn parse_amount(e: &Event, f: &mut JobFacts) {
    if let Some(t) = e.tags_named("amount").next() {
        if let Some(v) = t.get(1) {
            let (msat, lenient) = parse_msats(v);
            f.amount_msat = msat;
            if lenient {
                f.deviations |= deviation::NONNUMERIC_AMOUNT;
            }
        }
        f.bolt11 = t.get(2).filter(|s| is_bolt11(s)).map(|s| s.to_owned());
        if f.amount_msat.is_none() {
            f.amount_msat = f.bolt11.as_deref().and_then(bolt11_amount_msat);
        }
    }
}

/// The parts of a stringified request (`["request", "<json>"]`) needed for linking.
#[derive(Debug, Default)]
struct EmbeddedRequest {
    id: Option<Id32>,
    pubkey: Option<Id32>,
    kind: Option<u16>,
}

fn parse_embedded_request(json: &str) -> Option<EmbeddedRequest> {
    #[derive(Deserialize)]
    struct Partial {
        id: Option<String>,
        pubkey: Option<String>,
        kind: Option<u16>,
    }
    let p: Partial = serde_json::from_str(json).ok()?;
    Some(EmbeddedRequest {
        id: p.id.as_deref().and_then(parse_hex32),
        pubkey: p.pubkey.as_deref().and_then(parse_hex32),
        kind: p.kind,
    })
}

/// Events one deletion may name that are kept (the rest are ignored): a customer withdrawing jobs
/// names a few; thousands are an attack on the row size.
pub const MAX_DELETED: usize = 100;

/// The most a zap receipt may pay: 1 BTC. A DVM job costs sats; a receipt above this is junk or an
/// attack on the totals, so it is kept but pays nothing (flagged [`deviation::ZAP_AMOUNT_ABSURD`]).
pub const MAX_ZAP_MSAT: u64 = 100_000_000_000;

/// NIP-57 zap receipt: `p` the recipient (stored in `targets`), `e` the zapped event (stored as
/// `request_id`; the api links it to a job), the sender from `P` or else the zap request in
/// `description` (stored as `customer`). The amount is the invoice's; it counts only when it
/// agrees with the zap request's `amount` (when that names one) and is at most [`MAX_ZAP_MSAT`].
fn parse_zap_receipt(e: &Event, f: &mut JobFacts) {
    f.request_id = first_hex_tag(e, "e");
    f.targets = first_hex_tag(e, "p").into_iter().collect();
    /// The parts of the zap request (kind 9734) a receipt's `description` carries that matter here.
    #[derive(Deserialize)]
    struct ZapRequest {
        #[serde(default)]
        pubkey: String,
        #[serde(default)]
        tags: Vec<Vec<String>>,
    }
    let request = e
        .tag_value("description")
        .and_then(|d| serde_json::from_str::<ZapRequest>(d).ok());
    f.customer = first_hex_tag(e, "P").or_else(|| request.as_ref().and_then(|r| parse_hex32(&r.pubkey)));
    let asked = request.as_ref().and_then(|r| {
        r.tags
            .iter()
            .find(|t| t.first().is_some_and(|n| n == "amount"))
            .and_then(|t| t.get(1)?.trim().parse::<u64>().ok())
    });
    f.bolt11 = e
        .tag_value("bolt11")
        .filter(|b| is_bolt11(b))
        .map(|b| truncate(b.trim(), 2048).to_owned());
    match f.bolt11.as_deref().and_then(bolt11_amount_msat) {
        None => f.deviations |= deviation::ZAP_WITHOUT_AMOUNT,
        Some(paid) if asked.is_some_and(|a| a != paid) => f.deviations |= deviation::ZAP_AMOUNT_MISMATCH,
        Some(paid) if paid > MAX_ZAP_MSAT => f.deviations |= deviation::ZAP_AMOUNT_ABSURD,
        Some(paid) => f.amount_msat = Some(paid),
    }
}

fn first_hex_tag(e: &Event, name: &str) -> Option<Id32> {
    e.tags_named(name)
        .find_map(|t| t.get(1).and_then(|v| parse_hex32(v)))
}

fn has_flag_tag(e: &Event, name: &str) -> bool {
    e.tags_named(name).next().is_some()
}

/// Parses a millisat amount leniently: `"100_000"`, `" 5000 "`, `"2100.0"` are accepted.
/// Returns the value and whether leniency (or failure) was needed.
pub fn parse_msats(raw: &str) -> (Option<u64>, bool) {
    if let Ok(v) = raw.parse::<u64>() {
        return (Some(v), false);
    }
    let cleaned: String = raw.chars().filter(|c| *c != '_' && !c.is_whitespace()).collect();
    if let Ok(v) = cleaned.parse::<u64>() {
        return (Some(v), true);
    }
    match cleaned.parse::<f64>() {
        Ok(x) if x.is_finite() && x >= 0.0 && x.fract() == 0.0 && x < 1.8e19 => (Some(x as u64), true),
        _ => (None, true),
    }
}

/// A bolt11 invoice starts with `ln` + a known network prefix (lightning addresses do not).
pub fn is_bolt11(s: &str) -> bool {
    let l = s.trim().to_ascii_lowercase();
    ["lnbc", "lntb", "lntbs", "lnbcrt", "lnsb"]
        .iter()
        .any(|p| l.starts_with(p))
        && !l.contains('@')
}

/// The amount encoded in a bolt11 human-readable part (`lnbc2500u1...` = 250,000 msat).
pub fn bolt11_amount_msat(invoice: &str) -> Option<u64> {
    let l = invoice.trim().to_ascii_lowercase();
    let hrp = &l[..l.rfind('1')?];
    let rest = ["lnbcrt", "lntbs", "lnbc", "lntb", "lnsb"]
        .iter()
        .find_map(|p| hrp.strip_prefix(p))?;
    let digits_end = rest.find(|c: char| !c.is_ascii_digit()).unwrap_or(rest.len());
    let (digits, unit) = rest.split_at(digits_end);
    let n: u64 = digits.parse().ok()?;
    // Amounts are in BTC with a multiplier; 1 BTC = 1e11 msat.
    match unit {
        "" => n.checked_mul(100_000_000_000),
        "m" => n.checked_mul(100_000_000),
        "u" => n.checked_mul(100_000),
        "n" => n.checked_mul(100),
        "p" => n.is_multiple_of(10).then_some(n / 10),
        _ => None,
    }
}

/// Normalizes a relay URL: lowercase scheme and host, no trailing slash, ws(s) only.
pub fn normalize_relay_url(raw: &str) -> Option<String> {
    let raw = raw.trim();
    let (scheme, rest) = raw.split_once("://")?;
    let scheme = scheme.to_ascii_lowercase();
    if scheme != "ws" && scheme != "wss" {
        return None;
    }
    let (host, path) = match rest.find('/') {
        Some(i) => rest.split_at(i),
        None => (rest, ""),
    };
    // No credentials (`user:pass@`), no control characters anywhere, bounded length: relay URLs
    // are shown on public pages and written into logs.
    if host.is_empty()
        || host.contains(|c: char| c.is_whitespace() || c == '@')
        || raw.contains(char::is_control)
        || raw.len() > 512
    {
        return None;
    }
    let path = path.trim_end_matches('/');
    Some(format!("{scheme}://{}{path}", host.to_ascii_lowercase()))
}

/// Truncates to at most `max` bytes on a character boundary.
pub fn truncate(s: &str, max: usize) -> &str {
    if s.len() <= max {
        return s;
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ev(kind: u16, tags: &[&[&str]]) -> Event {
        Event {
            id: "00".repeat(32),
            pubkey: "11".repeat(32),
            created_at: 1,
            kind,
            tags: tags
                .iter()
                .map(|t| t.iter().map(|s| s.to_string()).collect())
                .collect(),
            content: String::new(),
            sig: String::new(),
        }
    }

    fn zap(bolt11: &str, description: &str, extra: &[&[&str]]) -> JobFacts {
        let (dvm, job) = ("bb".repeat(32), "cc".repeat(32));
        let (p, e, b, d) = (
            ["p", &dvm],
            ["e", &job],
            ["bolt11", bolt11],
            ["description", description],
        );
        let mut tags: Vec<&[&str]> = vec![&p, &e, &b, &d];
        tags.extend_from_slice(extra);
        parse(&ev(9735, &tags), &KindFilter::default()).1
    }

    #[test]
    fn deletions_name_every_valid_event_up_to_a_bound() {
        let (a, b) = ("aa".repeat(32), "bb".repeat(32));
        let f = parse(
            &ev(
                5,
                &[&["e", &a], &["e", "not-hex"], &["a", "30023:x:y"], &["e", &b]],
            ),
            &KindFilter::default(),
        )
        .1;
        assert_eq!(f.targets, vec![[0xaa; 32], [0xbb; 32]]);
        assert_eq!(f.request_id, Some([0xaa; 32]));
        let many: Vec<String> = (0..5000u32).map(|i| format!("{i:064x}")).collect();
        let tags: Vec<[&str; 2]> = many.iter().map(|id| ["e", id.as_str()]).collect();
        let tags: Vec<&[&str]> = tags.iter().map(|t| t.as_slice()).collect();
        let f = parse(&ev(5, &tags), &KindFilter::default()).1;
        assert_eq!(
            f.targets.len(),
            MAX_DELETED,
            "a huge deletion keeps a bounded row"
        );
    }

    #[test]
    fn zap_receipts_pay_the_invoice_amount_when_it_is_believable() {
        let sender = "dd".repeat(32);
        let request = format!(r#"{{"kind":9734,"pubkey":"{sender}","tags":[["amount","21000"]]}}"#);
        let f = zap("lnbc210n1xyz", &request, &[]);
        assert_eq!(f.amount_msat, Some(21_000));
        assert_eq!(
            f.customer.map(hex::encode),
            Some(sender.clone()),
            "sender from the zap request"
        );
        assert_eq!(f.targets, vec![[0xbb; 32]], "recipient");
        assert_eq!(f.request_id, Some([0xcc; 32]), "zapped event");
        assert_eq!(f.deviations, 0);
        // P names the sender even when the description does not parse.
        let p = "ee".repeat(32);
        let f = zap("lnbc210n1xyz", "not json {", &[&["P", &p]]);
        assert_eq!(
            (f.amount_msat, f.customer.map(hex::encode)),
            (Some(21_000), Some(p))
        );
        // The invoice says 2100 sats, the request asked 21: nothing is paid.
        let f = zap("lnbc21u1xyz", &request, &[]);
        assert_eq!(f.amount_msat, None);
        assert_eq!(f.deviations, deviation::ZAP_AMOUNT_MISMATCH);
        // 10 BTC: absurd.
        let f = zap("lnbc101abc", "{}", &[]);
        assert_eq!(f.amount_msat, None);
        assert_eq!(f.deviations, deviation::ZAP_AMOUNT_ABSURD);
        // No invoice amount, a lightning address, an overflowing amount, hostile descriptions.
        for bolt11 in ["lnbc1xyz", "me@ln.example", "lnbc99999999999999999999u1x", ""] {
            let f = zap(bolt11, &"[".repeat(100_000), &[]);
            assert_eq!(
                (f.amount_msat, f.deviations),
                (None, deviation::ZAP_WITHOUT_AMOUNT),
                "{bolt11}"
            );
        }
    }

    const A: &str = "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";
    const B: &str = "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb";

    #[test]
    fn request_tags() {
        let e = ev(
            5300,
            &[
                &["p", A],
                &["p", A],
                &["relays", "wss://Relay.Damus.io/", "ws://x", "not a url"],
                &["bid", "1_000", "1000"],
                &["i", B, "job"],
                &["i", "hello", "text"],
                &["encrypted"],
                &["client", "noogle"],
                &["wss://nostr.oxtr.dev", "wss://relay.primal.net"],
            ],
        );
        let (role, f) = parse(&e, &KindFilter::default());
        assert_eq!(role, Role::Request);
        assert_eq!(f.targets.len(), 1);
        assert_eq!(
            f.relays,
            vec!["wss://relay.damus.io".to_string(), "ws://x".to_string()]
        );
        assert_eq!(f.bid_msat, Some(1000));
        assert_eq!(f.job_inputs.len(), 1);
        assert!(f.encrypted);
        assert_eq!(f.client.as_deref(), Some("noogle"));
        assert_ne!(f.deviations & deviation::MALFORMED_RELAYS, 0);
        assert_ne!(f.deviations & deviation::NONNUMERIC_AMOUNT, 0);
    }

    #[test]
    fn result_links_by_e_then_request_tag() {
        let req = format!(r#"{{"id":"{B}","pubkey":"{A}","kind":5251,"tags":[]}}"#);
        let e = ev(
            6651,
            &[
                &["request", &req],
                &["status", "success"],
                &["amount", "2100.0", "lnbc10u1xyz"],
            ],
        );
        let (role, f) = parse(&e, &KindFilter::default());
        assert_eq!(role, Role::Result);
        assert_eq!(f.request_id, parse_hex32(B));
        assert_eq!(f.customer, parse_hex32(A));
        assert_eq!(f.request_kind, Some(5251));
        assert_eq!(f.amount_msat, Some(2100));
        assert_eq!(f.bolt11.as_deref(), Some("lnbc10u1xyz"));
        let d = f.deviations;
        assert_ne!(d & deviation::KIND_MISMATCH, 0);
        assert_ne!(d & deviation::STATUS_ON_RESULT, 0);
        assert_ne!(d & deviation::MISSING_P, 0);
        assert_eq!(d & deviation::MISSING_E, 0);

        let plain = ev(6300, &[&["e", A], &["p", B]]);
        let (_, f) = parse(&plain, &KindFilter::default());
        assert_eq!(f.request_id, parse_hex32(A));
        assert_eq!(f.request_kind, Some(5300));
        assert_eq!(f.deviations, deviation::MISSING_REQUEST_TAG);
    }

    #[test]
    fn feedback_status_reason_amount() {
        let e = ev(
            7000,
            &[
                &["e", A],
                &["p", B],
                &["status", "error", "out of credits"],
                &["amount", "100_000", "botlab@zeuspay.com"],
            ],
        );
        let (role, f) = parse(&e, &KindFilter::default());
        assert_eq!(role, Role::Feedback);
        assert_eq!(f.status, Some(Status::Error));
        assert_eq!(f.status_reason.as_deref(), Some("out of credits"));
        assert_eq!(f.amount_msat, Some(100_000));
        assert_eq!(f.bolt11, None, "a lightning address is not an invoice");

        let odd = ev(7000, &[&["status", "Queued"]]);
        let (_, f) = parse(&odd, &KindFilter::default());
        assert_eq!(f.status, Some(Status::Other("Queued".into())));
        assert_ne!(f.deviations & deviation::MISSING_E, 0);
    }

    #[test]
    fn announcement_kinds() {
        let mut e = ev(
            31990,
            &[
                &["d", "x"],
                &["k", "5300"],
                &["k", "5300"],
                &["k", "1"],
                &["k", "abc"],
            ],
        );
        e.content = "{name: True}".into();
        let (role, f) = parse(&e, &KindFilter::default());
        assert_eq!(role, Role::Announcement);
        assert_eq!(f.announced_kinds, vec![5300]);
        assert_eq!(f.d_tag.as_deref(), Some("x"));
        assert_ne!(f.deviations & deviation::INVALID_ANNOUNCEMENT_JSON, 0);
    }

    #[test]
    fn amounts() {
        assert_eq!(parse_msats("5000"), (Some(5000), false));
        assert_eq!(parse_msats(" 5 000 "), (Some(5000), true));
        assert_eq!(parse_msats("1.5"), (None, true));
        assert_eq!(parse_msats("-3"), (None, true));
        assert_eq!(parse_msats("1e30"), (None, true));
        assert_eq!(bolt11_amount_msat("lnbc2500u1pvjluez"), Some(250_000_000));
        assert_eq!(bolt11_amount_msat("lnbc10n1xyz"), Some(1000));
        assert_eq!(bolt11_amount_msat("lnbc1xyz"), None);
        assert_eq!(bolt11_amount_msat("lnbc25p1x"), None);
    }

    #[test]
    fn relay_urls() {
        assert_eq!(
            normalize_relay_url("wss://Relay.Primal.net/").as_deref(),
            Some("wss://relay.primal.net")
        );
        assert_eq!(
            normalize_relay_url("wss://a.b/path/").as_deref(),
            Some("wss://a.b/path")
        );
        assert_eq!(normalize_relay_url("https://a.b"), None);
        assert_eq!(normalize_relay_url("wss://"), None);
    }

    #[test]
    fn truncate_respects_char_boundaries() {
        assert_eq!(truncate("héllo", 2), "h");
        assert_eq!(truncate("abc", 10), "abc");
    }
}
