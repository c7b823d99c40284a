//! Turns stream entries into ClickHouse rows, setting aside entries that can never be stored.
//!
//! The stream is internal and written by collectors that already verified every signature, so the
//! ingester does not repeat the cryptography; it does re-check the event's shape and kind, since a
//! bad entry (a bug, an entry appended by hand) must go to the dead-letter stream and not stall the rest.

use std::collections::HashSet;

use dvmdash_core::event::Id32;
use dvmdash_core::event::parse_hex32;
use dvmdash_core::kinds::KindFilter;
use dvmdash_core::nip90;
use dvmdash_core::store::{EventRelayRow, RawEventRow};
use dvmdash_core::stream::{Entry, MAX_SIGHTINGS_PER_ENTRY, Sighting};
use dvmdash_core::validate::Validator;

/// A batch ready to insert.
#[derive(Debug, Default)]
pub struct Prepared {
    pub rows: Vec<RawEventRow>,
    /// Every entry id of the batch (stored, duplicate or poison): all are acknowledged together.
    pub ids: Vec<String>,
    /// Entries that can never be stored, with the reason.
    pub poison: Vec<(Entry, String)>,
    /// Entries whose data was trimmed from the stream before they were read: lost upstream.
    pub trimmed: usize,
    /// Entries repeating an event already in this batch.
    pub duplicates: usize,
    /// Which relay delivered what: one row per event entry (its relay) and per sighting.
    pub sightings: Vec<EventRelayRow>,
}

impl Prepared {
    /// Deterministic insert token: a retry of the same entries inserts an identical block with the
    /// same token, which ClickHouse then ignores. Entry ids are unique only within one stream (two
    /// shards can both hand out `T-0` in the same millisecond), so the stream's key is part of it:
    /// without it, two shards' one-entry batches would share a token and ClickHouse would silently
    /// drop the second as a repeat of the first.
    pub fn dedup_token(&self, stream: &str) -> String {
        match (self.ids.first(), self.ids.last()) {
            (Some(first), Some(last)) => format!("{stream}:{first}..{last}/{}", self.ids.len()),
            _ => String::new(),
        }
    }
}

pub fn prepare(entries: Vec<Entry>, validator: &Validator, kinds: &KindFilter, now_secs: u64) -> Prepared {
    let mut out = Prepared {
        ids: Vec::with_capacity(entries.len()),
        ..Default::default()
    };
    let mut seen: HashSet<Id32> = HashSet::with_capacity(entries.len());
    for entry in entries {
        out.ids.push(entry.id.clone());
        if let Some(json) = entry.fields.as_ref().and_then(|f| f.sightings.as_deref()) {
            match sightings(json, kinds) {
                Ok(rows) => out.sightings.extend(rows),
                Err(reason) => out.poison.push((entry, reason)),
            }
            continue;
        }
        match to_row(&entry, validator, kinds, now_secs) {
            Ok(Some(row)) => {
                if is_relay_url(&row.relay) {
                    out.sightings.push(EventRelayRow {
                        event_id: row.event_id,
                        relay: row.relay.clone(),
                        pubkey: row.pubkey,
                        kind: row.kind,
                        created_at: row.created_at,
                        seen_at: row.received_at,
                    });
                }
                if seen.insert(row.event_id) {
                    out.rows.push(row);
                } else {
                    out.duplicates += 1;
                }
            }
            Ok(None) => out.trimmed += 1,
            Err(reason) => out.poison.push((entry, reason)),
        }
    }
    out
}

/// A relay as coverage counts it: a websocket URL of sane length (imports and tests may record
/// other labels, which are not relays anyone can reach).
fn is_relay_url(relay: &str) -> bool {
    (relay.starts_with("wss://") || relay.starts_with("ws://")) && relay.len() <= 256
}

/// The rows of a sightings entry; any malformed item makes the whole entry poison (collectors
/// write these, so one bad item means a bug worth a dead letter, not a silent skip).
fn sightings(json: &[u8], kinds: &KindFilter) -> Result<Vec<EventRelayRow>, String> {
    let items: Vec<Sighting> =
        serde_json::from_slice(json).map_err(|e| format!("sightings are not valid: {e}"))?;
    if items.len() > MAX_SIGHTINGS_PER_ENTRY {
        return Err(format!("{} sightings in one entry", items.len()));
    }
    items
        .into_iter()
        .map(|Sighting(id, relay, seen_ms, pubkey, kind, created_at)| {
            let event_id = parse_hex32(&id).ok_or("sighting id is not 64 hex")?;
            let pubkey = parse_hex32(&pubkey).ok_or("sighting pubkey is not 64 hex")?;
            if !is_relay_url(&relay) {
                return Err("sighting relay is not a ws(s) URL".to_owned());
            }
            if !kinds.accepts(kind) {
                return Err(format!("sighting of kind {kind}, which is not collected"));
            }
            let created_at = u32::try_from(created_at).map_err(|_| "sighting created_at out of range")?;
            let seen_at = i64::try_from(seen_ms)
                .ok()
                .filter(|t| *t > 0)
                .ok_or("sighting time is not a positive integer")?;
            Ok(EventRelayRow {
                event_id,
                relay,
                pubkey,
                kind,
                created_at,
                seen_at,
            })
        })
        .collect()
}

fn to_row(
    entry: &Entry,
    validator: &Validator,
    kinds: &KindFilter,
    now: u64,
) -> Result<Option<RawEventRow>, String> {
    let Some(fields) = &entry.fields else {
        return Ok(None);
    };
    let event = fields.event.as_deref().ok_or("entry has no event field")?;
    let event = std::str::from_utf8(event).map_err(|_| "event is not UTF-8".to_owned())?;
    let relay = match fields.relay.as_deref() {
        Some(r) => std::str::from_utf8(r).map_err(|_| "relay is not UTF-8".to_owned())?,
        None => "",
    };
    let seen_ms: i64 = match fields.seen_ms.as_deref() {
        Some(t) => std::str::from_utf8(t)
            .ok()
            .and_then(|t| t.parse().ok())
            .filter(|t| *t > 0)
            .ok_or("seen time is not a positive integer")?,
        None => return Err("entry has no seen time".into()),
    };
    // Time has passed since collection, so "too far in the future" can only have shrunk.
    let (event, id) = validator
        .precheck(event, now)
        .map_err(|r| format!("event rejected: {r}"))?;
    let (role, facts) = nip90::parse(&event, kinds);
    Ok(Some(RawEventRow::new(&event, id, role, facts, relay, seen_ms)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use dvmdash_core::stream::Fields;
    use dvmdash_core::validate::Keys;

    const NOW: u64 = 1_750_000_000;

    fn entry(id: &str, event: Option<&str>, relay: Option<&str>, t: Option<&str>) -> Entry {
        Entry {
            id: id.into(),
            fields: Some(Fields {
                event: event.map(|s| s.as_bytes().to_vec()),
                relay: relay.map(|s| s.as_bytes().to_vec()),
                seen_ms: t.map(|s| s.as_bytes().to_vec()),
                sightings: None,
                count: 3,
            }),
        }
    }

    #[test]
    fn sorts_entries_into_rows_poison_and_losses() {
        let keys = Keys::from_seed(b"batch");
        let req = keys.sign(NOW - 5, 5300, vec![], String::new()).to_json();
        let off = keys.sign(NOW - 5, 1, vec![], String::new()).to_json();
        let entries = vec![
            entry("1-0", Some(&req), Some("wss://a"), Some("1750000000000")),
            entry("2-0", Some(&req), Some("wss://b"), Some("1750000000001")),
            entry("3-0", Some("{not json"), Some("wss://a"), Some("1")),
            entry("4-0", None, Some("wss://a"), Some("1")),
            entry("5-0", Some(&req), Some("wss://a"), Some("soon")),
            entry("6-0", Some(&off), Some("wss://a"), Some("1")),
            Entry {
                id: "7-0".into(),
                fields: None,
            },
        ];
        let p = prepare(entries, &Validator::default(), &KindFilter::default(), NOW);
        assert_eq!(p.ids.len(), 7);
        assert_eq!(p.rows.len(), 1);
        assert_eq!(p.rows[0].role, "request");
        assert_eq!(p.rows[0].received_at, 1_750_000_000_000);
        assert_eq!(p.duplicates, 1);
        assert_eq!(p.trimmed, 1);
        let reasons: Vec<&str> = p.poison.iter().map(|(_, r)| r.as_str()).collect();
        assert_eq!(
            reasons,
            vec![
                "event rejected: malformed",
                "entry has no event field",
                "seen time is not a positive integer",
                "event rejected: off_filter"
            ]
        );
        assert_eq!(p.dedup_token("x:events"), "x:events:1-0..7-0/7");
        // The same entry ids on two shards give two tokens.
        assert_ne!(p.dedup_token("x:{s0}:events"), p.dedup_token("x:{s1}:events"));
        // Both deliveries of the request are recorded, the duplicate's relay too.
        let relays: Vec<&str> = p.sightings.iter().map(|s| s.relay.as_str()).collect();
        assert_eq!(relays, vec!["wss://a", "wss://b"]);
    }

    fn sightings_entry(json: &str) -> Entry {
        Entry {
            id: "9-0".into(),
            fields: Some(Fields {
                sightings: Some(json.as_bytes().to_vec()),
                count: 1,
                ..Default::default()
            }),
        }
    }

    #[test]
    fn sightings_entries_become_rows_or_poison() {
        let (id, pk) = ("ab".repeat(32), "cd".repeat(32));
        let good = serde_json::to_string(&vec![
            Sighting(
                id.clone(),
                "wss://one".into(),
                1_750_000_000_000,
                pk.clone(),
                6300,
                NOW,
            ),
            Sighting(
                id.clone(),
                "wss://two".into(),
                1_750_000_000_001,
                pk.clone(),
                6300,
                NOW,
            ),
        ])
        .unwrap();
        let p = prepare(
            vec![sightings_entry(&good)],
            &Validator::default(),
            &KindFilter::default(),
            NOW,
        );
        assert!(p.poison.is_empty() && p.rows.is_empty());
        assert_eq!(p.sightings.len(), 2);
        assert_eq!(p.sightings[1].relay, "wss://two");
        let item = |id: &str, relay: &str, kind: u16, created: u64, seen: u64| {
            serde_json::to_string(&vec![Sighting(
                id.into(),
                relay.into(),
                seen,
                pk.clone(),
                kind,
                created,
            )])
            .unwrap()
        };
        let too_many = serde_json::to_string(&vec![
            Sighting(
                id.clone(),
                "wss://x".into(),
                1,
                pk.clone(),
                6300,
                NOW
            );
            MAX_SIGHTINGS_PER_ENTRY + 1
        ])
        .unwrap();
        let long_relay = format!("wss://{}", "r".repeat(300));
        for (json, why) in [
            ("{not json".to_owned(), "not valid"),
            (r#"[["a","wss://x"]]"#.to_owned(), "not valid"),
            (too_many, "sightings in one entry"),
            (item("zz", "wss://x", 6300, NOW, 1), "id is not 64 hex"),
            (item(&id, "https://x", 6300, NOW, 1), "not a ws(s) URL"),
            (item(&id, &long_relay, 6300, NOW, 1), "not a ws(s) URL"),
            (item(&id, "wss://x", 1, NOW, 1), "not collected"),
            (item(&id, "wss://x", 6300, u64::MAX, 1), "created_at out of range"),
            (item(&id, "wss://x", 6300, NOW, 0), "positive integer"),
        ] {
            let p = prepare(
                vec![sightings_entry(&json)],
                &Validator::default(),
                &KindFilter::default(),
                NOW,
            );
            assert!(p.sightings.is_empty(), "{why}");
            assert_eq!(p.poison.len(), 1, "{why}");
            assert!(p.poison[0].1.contains(why), "{why}: {}", p.poison[0].1);
        }
    }
}
