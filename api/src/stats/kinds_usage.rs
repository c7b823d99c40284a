//! Every request kind ever used and the ones never used (DVMDash issue #52: a builder picking a
//! free kind). Pure: the totals come from `activity`, kept forever.

use std::collections::BTreeMap;

use dvmdash_core::dto::{KindUsage, KindsUsage, UnusedKind, rfc3339};
use dvmdash_core::kinds::{DEFAULT_EXCLUDED_KINDS, REQUEST_KINDS, registry};

use crate::queries::entities::KindTotals;

pub fn kinds_usage(now: u64, totals: &[KindTotals]) -> KindsUsage {
    let mut used: BTreeMap<u16, KindUsage> = BTreeMap::new();
    let mut spans: BTreeMap<u16, (u32, u32)> = BTreeMap::new();
    for t in totals.iter().filter(|t| REQUEST_KINDS.contains(&t.job_kind)) {
        let u = used.entry(t.job_kind).or_default();
        match t.role.as_str() {
            "request" => (u.total_requests, u.customers) = (t.events, t.authors),
            "result" => (u.total_results, u.dvms) = (t.events, t.authors),
            _ => continue,
        }
        let span = spans.entry(t.job_kind).or_insert((t.first_seen, t.last_seen));
        *span = (span.0.min(t.first_seen), span.1.max(t.last_seen));
    }
    let entry = |kind: u16| registry().iter().find(|k| k.kind == kind);
    let used: Vec<KindUsage> = used
        .into_iter()
        .map(|(kind, u)| {
            let (first, last) = spans.get(&kind).copied().unwrap_or_default();
            KindUsage {
                kind,
                name: entry(kind).map(|e| e.name.clone()),
                registry_status: entry(kind).map(|e| e.status.clone()),
                first_seen: Some(rfc3339(u64::from(first))),
                last_seen: Some(rfc3339(u64::from(last))),
                ..u
            }
        })
        .collect();
    let seen: Vec<u16> = used.iter().map(|u| u.kind).collect();
    let unused: Vec<UnusedKind> = REQUEST_KINDS
        .filter(|k| !DEFAULT_EXCLUDED_KINDS.contains(k) && seen.binary_search(k).is_err())
        .map(|kind| UnusedKind {
            kind,
            name: entry(kind).map(|e| e.name.clone()),
            registry_status: entry(kind).map(|e| e.status.clone()),
        })
        .collect();
    KindsUsage {
        timestamp: rfc3339(now),
        free: unused.iter().filter(|u| u.name.is_none()).count() as u64,
        used,
        unused,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(kind: u16, role: &str, first: u32, last: u32, events: u64, authors: u64) -> KindTotals {
        KindTotals {
            job_kind: kind,
            role: role.into(),
            first_seen: first,
            last_seen: last,
            events,
            authors,
        }
    }

    #[test]
    fn used_unused_and_free() {
        let totals = [
            t(5300, "request", 100, 900, 50, 7),
            t(5300, "result", 150, 950, 40, 3),
            t(5999, "result", 10, 20, 1, 1),
            // Not a request kind: ignored.
            t(7000, "request", 1, 2, 3, 4),
        ];
        let u = kinds_usage(1000, &totals);
        assert_eq!(u.used.len(), 2);
        let d = &u.used[0];
        assert_eq!(
            (d.kind, d.total_requests, d.customers, d.total_results, d.dvms),
            (5300, 50, 7, 40, 3)
        );
        assert_eq!(d.first_seen.as_deref(), Some("1970-01-01T00:01:40Z"));
        assert_eq!(d.last_seen.as_deref(), Some("1970-01-01T00:15:50Z"));
        assert_eq!(d.name.as_deref(), Some("Nostr Content Discovery"));
        assert_eq!(u.used[1].total_requests, 0, "results alone make a kind used");
        // 1000 kinds minus 2 used minus the 2 default exclusions in the request range.
        assert_eq!(u.unused.len(), 1000 - 2 - 2);
        assert!(!u.unused.iter().any(|k| k.kind == 5666 || k.kind == 5300));
        let named = u.unused.iter().filter(|k| k.name.is_some()).count() as u64;
        assert_eq!(u.free, u.unused.len() as u64 - named);
        assert!(
            named > 10,
            "registered kinds never seen are listed with their names"
        );
    }
}
