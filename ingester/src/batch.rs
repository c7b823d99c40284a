//! Turns stream entries into ClickHouse rows, setting aside entries that can never be stored.
//!
//! The stream is internal and written by collectors that already verified every signature, so the
//! ingester does not repeat the cryptography; it does re-check the event's shape and kind, since a
//! bad entry (a bug, an entry appended by hand) must go to the dead-letter stream and not stall the rest.

use std::collections::HashSet;

use dvmdash_core::event::Id32;
use dvmdash_core::kinds::KindFilter;
use dvmdash_core::nip90;
use dvmdash_core::store::RawEventRow;
use dvmdash_core::validate::Validator;

use dvmdash_core::stream::Entry;

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
}

impl Prepared {
    /// Deterministic insert token: a retry of the same entries inserts an identical block with the
    /// same token, which ClickHouse then ignores.
    pub fn dedup_token(&self) -> String {
        match (self.ids.first(), self.ids.last()) {
            (Some(first), Some(last)) => format!("{first}..{last}/{}", self.ids.len()),
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
        match to_row(&entry, validator, kinds, now_secs) {
            Ok(Some(row)) => {
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
        assert_eq!(p.dedup_token(), "1-0..7-0/7");
    }
}
