//! Property tests over generated and malformed input: the parser never panics and keeps its
//! promises whatever the tags look like, and verification agrees with an independent implementation
//! (rust-nostr) on events with arbitrary content and tags.

use dvmdash_core::event::parse_hex32;
use dvmdash_core::nip90::{
    self, Status, bolt11_amount_msat, deviation, normalize_relay_url, parse_msats, truncate,
};
use dvmdash_core::validate::{Rejection, Validator};
use dvmdash_core::{Event, KindFilter, Role};
use proptest::prelude::*;

const NOW: u64 = 1_760_000_000;

/// Strings a hostile or careless client might put in a tag: hex ids (valid and not), numbers in
/// odd spellings, URLs, unicode, control characters and empty strings.
fn tag_value() -> impl Strategy<Value = String> {
    prop_oneof![
        "[0-9a-f]{64}",
        "[0-9a-fA-F]{60,68}",
        "[0-9_ .e-]{0,24}",
        "(ws|wss|http|WSS)://[a-zA-Z0-9.@ -]{0,20}/?",
        "(lnbc|lntb|LNBC|lnbcrt)[0-9]{0,12}[munp]?1[a-z0-9]{0,10}",
        "(payment-required|processing|error|success|partial|PAYMENT-REQUIRED|queued)",
        "(job|text|url|event)",
        any::<String>(),
        Just(String::new()),
    ]
}

fn tag_name() -> impl Strategy<Value = String> {
    prop_oneof![
        prop::sample::select(vec![
            "p",
            "e",
            "i",
            "bid",
            "amount",
            "status",
            "request",
            "relays",
            "client",
            "encrypted",
            "k",
            "d",
            "bolt11",
            "param",
            "output",
        ])
        .prop_map(str::to_owned),
        any::<String>(),
    ]
}

/// A tag of any length, including the empty tag and a name alone.
fn tag() -> impl Strategy<Value = Vec<String>> {
    (tag_name(), prop::collection::vec(tag_value(), 0..5)).prop_map(|(name, mut rest)| {
        rest.insert(0, name);
        rest
    })
}

fn tags() -> impl Strategy<Value = Vec<Vec<String>>> {
    prop::collection::vec(prop_oneof![9 => tag(), 1 => Just(Vec::new())], 0..12)
}

fn dvm_kind() -> impl Strategy<Value = u16> {
    prop_oneof![
        4990u16..7010,
        Just(31990u16),
        Just(31989u16),
        Just(0u16),
        Just(5u16),
        Just(9735u16),
        Just(25910u16),
        any::<u16>()
    ]
}

/// Any text, or an MCP JSON-RPC message with hostile parts (for ContextVM messages).
fn content() -> impl Strategy<Value = String> {
    prop_oneof![
        any::<String>(),
        (any::<String>(), any::<String>(), any::<bool>(), 0u8..4).prop_map(|(method, name, id, shape)| {
            let mut m = serde_json::json!({ "jsonrpc": "2.0" });
            match shape {
                0 => m["method"] = method.into(),
                1 => m["result"] = serde_json::json!({ "content": [name] }),
                2 => m["error"] = serde_json::json!({ "code": -1, "message": name }),
                _ => m["method"] = serde_json::json!(42),
            }
            if id {
                m["id"] = 7.into();
            }
            m["params"] = serde_json::json!({ "name": name });
            m.to_string()
        }),
    ]
}

fn v_is_object(s: &str) -> bool {
    matches!(
        serde_json::from_str::<serde_json::Value>(s),
        Ok(serde_json::Value::Object(_))
    )
}

fn event(kind: u16, tags: Vec<Vec<String>>, content: String) -> Event {
    Event {
        id: "00".repeat(32),
        pubkey: "11".repeat(32),
        created_at: NOW,
        kind,
        tags,
        content,
        sig: "22".repeat(64),
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    /// Whatever the tags, parsing never panics, and what it returns respects its own invariants.
    #[test]
    fn parse_keeps_its_invariants(kind in dvm_kind(), tags in tags(), content in content()) {
        let kinds = KindFilter::default();
        let e = event(kind, tags, content);
        let (role, f) = nip90::parse(&e, &kinds);
        prop_assert_eq!(role, kinds.role(kind));

        // Targets: a request's distinct valid `p` values in order of appearance; a zap receipt's
        // first valid `p` (the recipient); a deletion's valid `e` ids (bounded); else none.
        let valid = |name: &'static str| e.tags_named(name).filter_map(|t| t.get(1).and_then(|v| parse_hex32(v)));
        let mut expected_targets: Vec<[u8; 32]> = Vec::new();
        match role {
            Role::Request => {
                for pk in valid("p") {
                    if !expected_targets.contains(&pk) {
                        expected_targets.push(pk);
                    }
                }
            }
            Role::ZapReceipt => expected_targets.extend(valid("p").take(1)),
            Role::Deletion => expected_targets.extend(valid("e").take(nip90::MAX_DELETED)),
            // A ContextVM call or notification (a JSON object with a non-blank string `method`)
            // names its servers; a response names none.
            Role::ContextvmMessage => {
                let method = serde_json::from_str::<serde_json::Value>(&e.content)
                    .ok()
                    .and_then(|v| v.get("method").and_then(|m| m.as_str().map(|m| !m.trim().is_empty())));
                if v_is_object(&e.content) && method == Some(true) {
                    expected_targets.extend(valid("p").take(16));
                }
            }
            _ => {}
        }
        prop_assert_eq!(&f.targets, &expected_targets);
        // A zap receipt pays only a believable amount.
        if role == Role::ZapReceipt {
            prop_assert!(f.amount_msat.is_none_or(|a| a <= nip90::MAX_ZAP_MSAT));
        }

        // Relay hints are normalized, distinct and ws(s) only.
        for (i, r) in f.relays.iter().enumerate() {
            prop_assert!(r.starts_with("ws://") || r.starts_with("wss://"), "{r}");
            prop_assert!(!r.ends_with('/'));
            prop_assert!(!f.relays[..i].contains(r));
        }
        // Announced kinds lie in the request range and are distinct.
        for (i, k) in f.announced_kinds.iter().enumerate() {
            prop_assert!((5000..=5999).contains(k));
            prop_assert!(!f.announced_kinds[..i].contains(k));
        }
        // Stored strings are bounded, whatever came in.
        prop_assert!(f.client.as_deref().is_none_or(|c| c.len() <= 128));
        prop_assert!(f.status_reason.as_deref().is_none_or(|r| r.len() <= 512));
        prop_assert!(f.d_tag.as_deref().is_none_or(|d| d.len() <= 256));
        if let Some(s) = &f.status {
            prop_assert!(s.as_str().len() <= 64);
        }
        // Only deviation bits we define are ever set.
        let all = deviation::ALL.iter().fold(0, |acc, (flag, _, _)| acc | flag);
        prop_assert_eq!(f.deviations & !all, 0);

        match role {
            Role::Result | Role::Feedback => {
                // The `e` tag, when one holds a valid id, is the request answered.
                let e_id = e.tags_named("e").find_map(|t| t.get(1).and_then(|v| parse_hex32(v)));
                if e_id.is_some() {
                    prop_assert_eq!(f.request_id, e_id);
                }
                prop_assert_eq!(f.request_id.is_none(), f.deviations & deviation::MISSING_E != 0);
                prop_assert!(f.targets.is_empty());
            }
            Role::Request => {
                prop_assert_eq!(f.request_kind, Some(kind));
                prop_assert!(f.request_id.is_none());
            }
            // Targets of zap receipts and deletions were checked above.
            _ => prop_assert!(f.job_inputs.is_empty()),
        }
    }

    /// Excluded kinds (5666/6666/5969/6969 by default, configurable) are never classified as jobs.
    #[test]
    fn exclusions_are_configurable(excluded in prop::collection::vec(4990u16..7010, 0..6), kind in 4990u16..7010) {
        let filter = KindFilter::new(excluded.clone());
        if excluded.contains(&kind) {
            prop_assert_eq!(filter.role(kind), Role::Other);
            prop_assert!(!filter.accepts(kind));
            prop_assert!(!filter.subscription_kinds().contains(&kind));
        } else {
            prop_assert_eq!(filter.role(kind), KindFilter::new([]).role(kind));
        }
    }

    /// Every plain decimal parses exactly; underscores and spaces are accepted but flagged.
    #[test]
    fn msats_plain_and_lenient(n in any::<u64>(), sep in prop::sample::select(vec!["_", " "])) {
        prop_assert_eq!(parse_msats(&n.to_string()), (Some(n), false));
        let digits = n.to_string();
        let spaced: String = digits
            .chars()
            .enumerate()
            .flat_map(|(i, c)| {
                let s = if i > 0 && (digits.len() - i) % 3 == 0 { Some(sep) } else { None };
                s.into_iter().flat_map(str::chars).chain(std::iter::once(c))
            })
            .collect();
        if spaced != digits {
            prop_assert_eq!(parse_msats(&spaced), (Some(n), true));
        }
    }

    /// Arbitrary text never panics the amount parsers, and a parsed amount is never negative or
    /// fractional garbage (whatever parses is an integer the text spells).
    #[test]
    fn amount_parsers_total(s in any::<String>()) {
        let (v, lenient) = parse_msats(&s);
        if v.is_none() {
            prop_assert!(lenient);
        }
        let _ = bolt11_amount_msat(&s);
        let _ = nip90::is_bolt11(&s);
    }

    /// The bolt11 human-readable amount follows BOLT-11's multipliers exactly.
    #[test]
    fn bolt11_multipliers(n in 1u64..10_000_000, unit in prop::sample::select(vec!["", "m", "u", "n", "p"]),
                          net in prop::sample::select(vec!["lnbc", "lntb", "lnbcrt", "lntbs"])) {
        let invoice = format!("{net}{n}{unit}1pvjluezsomedata");
        let expected = match unit {
            "" => n.checked_mul(100_000_000_000),
            "m" => Some(n * 100_000_000),
            "u" => Some(n * 100_000),
            "n" => Some(n * 100),
            _ => (n % 10 == 0).then_some(n / 10),
        };
        prop_assert_eq!(bolt11_amount_msat(&invoice), expected);
    }

    /// Normalizing a relay URL twice changes nothing, and the result is always ws(s) with a
    /// lowercase host and no trailing slash.
    #[test]
    fn relay_url_normalization_is_idempotent(s in prop_oneof![
        "(ws|wss|WS|Wss|http)://[a-zA-Z0-9.:-]{0,24}(/[a-zA-Z0-9/]{0,10})?",
        any::<String>(),
    ]) {
        if let Some(n) = normalize_relay_url(&s) {
            prop_assert_eq!(normalize_relay_url(&n), Some(n.clone()));
            prop_assert!(n.starts_with("ws://") || n.starts_with("wss://"));
            prop_assert!(!n.ends_with('/'));
            let host = n.split("://").nth(1).unwrap_or_default().split('/').next().unwrap_or_default();
            prop_assert_eq!(host.to_ascii_lowercase(), host);
        }
    }

    #[test]
    fn truncate_is_a_bounded_prefix(s in any::<String>(), max in 0usize..64) {
        let t = truncate(&s, max);
        prop_assert!(t.len() <= max);
        prop_assert!(s.starts_with(t));
        // As long as possible: the next character would not have fit.
        if t.len() < s.len() {
            let next = s[t.len()..].chars().next().map(char::len_utf8).unwrap_or(0);
            prop_assert!(t.len() + next > max);
        }
    }

    /// Known statuses parse whatever their case and surrounding space.
    #[test]
    fn status_parsing_is_case_insensitive(i in 0usize..5, upper in any::<bool>(), pad in any::<bool>()) {
        let known = [Status::PaymentRequired, Status::Processing, Status::Error, Status::Success, Status::Partial];
        let mut s = known[i].as_str().to_owned();
        if upper { s = s.to_uppercase(); }
        if pad { s = format!(" {s} "); }
        prop_assert_eq!(Status::parse(&s), known[i].clone());
    }
}

/// Events signed by rust-nostr (an implementation nobody here wrote) with arbitrary content and tags.
/// Empty tags are left out (rust-nostr cannot represent them).
fn nostr_signed(kind: u16, content: &str, tags: &[Vec<String>]) -> String {
    use nostr::{EventBuilder, JsonUtil, Keys, Kind, Tag, Timestamp};
    let keys = Keys::parse("6b911fd37cdf5c81d4c0adb1ab7fa822ed253ab0ad9aa18d77257c88b29b718e").expect("key");
    let tags = tags
        .iter()
        .filter(|t| !t.is_empty())
        .map(|t| Tag::parse(t.clone()).expect("non-empty tag"));
    EventBuilder::new(Kind::from(kind), content)
        .tags(tags)
        .custom_created_at(Timestamp::from(NOW - 60))
        .sign_with_keys(&keys)
        .expect("signs")
        .as_json()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    /// Our canonical serialization and signature check accept exactly what rust-nostr signs,
    /// whatever the content (quotes, backslashes, control characters, emoji) and tags.
    #[test]
    fn verification_agrees_with_rust_nostr(kind in 5000u16..7001, content in any::<String>(), tags in tags()) {
        let json = nostr_signed(kind, &content, &tags);
        let validator = Validator { kinds: KindFilter::new([]), ..Validator::default() };
        let verified = validator.verify(&json, NOW);
        prop_assert!(verified.is_ok(), "{verified:?} for {json}");
        let verified = verified.unwrap();
        prop_assert_eq!(&verified.event.content, &content);
    }

    /// Changing any single character of the content or of the signature is caught.
    #[test]
    fn tampering_is_detected(content in "[ -~]{1,80}", pos in any::<prop::sample::Index>(), sig_pos in 0usize..128) {
        let json = nostr_signed(5300, &content, &[]);
        let validator = Validator::default();
        let good: Event = Event::from_json(&json).unwrap();

        let mut bytes: Vec<char> = good.content.chars().collect();
        let i = pos.index(bytes.len());
        bytes[i] = if bytes[i] == 'x' { 'y' } else { 'x' };
        let tampered = Event { content: bytes.into_iter().collect(), ..good.clone() };
        prop_assert_eq!(validator.verify(&tampered.to_json(), NOW).err(), Some(Rejection::BadId));

        let mut sig: Vec<u8> = good.sig.clone().into_bytes();
        sig[sig_pos] = if sig[sig_pos] == b'0' { b'1' } else { b'0' };
        let forged = Event { sig: String::from_utf8(sig).unwrap(), ..good };
        prop_assert_eq!(validator.verify(&forged.to_json(), NOW).err(), Some(Rejection::BadSignature));
    }

    /// Arbitrary bytes and arbitrary JSON never panic the validator; they are rejected with a reason.
    #[test]
    fn hostile_text_is_rejected(s in prop_oneof![
        any::<String>(),
        r#"\{"id":"[0-9a-f]{0,66}","pubkey":"[0-9a-f]{64}","created_at":[0-9-]{1,22},"kind":[0-9-]{1,7},"tags":\[\],"content":"","sig":"[0-9a-f]{128}"\}"#,
    ]) {
        let validator = Validator::default();
        prop_assert!(validator.verify(&s, NOW).is_err());
    }
}
