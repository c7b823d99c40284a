//! Which collector watches which relay: rendezvous (highest-random-weight) hashing.
//!
//! Each relay ranks every live collector by a hash of (relay, collector) and takes the top N. The
//! ranking does not depend on the other collectors, so when one joins or dies only the relays it
//! ranks in the top N for move; nothing else is disturbed and no relay is ever left out while a
//! collector lives.

use std::collections::BTreeMap;

use dvmdash_core::dto::RelayPriority;
use sha2::{Digest, Sha256};

fn weight(relay: &str, collector: &str) -> u64 {
    let mut h = Sha256::new();
    h.update(relay.as_bytes());
    h.update([0]);
    h.update(collector.as_bytes());
    let d = h.finalize();
    u64::from_be_bytes([d[0], d[1], d[2], d[3], d[4], d[5], d[6], d[7]])
}

/// Assigns every relay to `redundancy` collectors (one more for high-priority relays), fewer only
/// when fewer collectors are alive. Returns collector -> sorted relay list, for every collector
/// (possibly empty, so an idle collector learns it should watch nothing).
pub fn assign(
    relays: &[(String, RelayPriority)],
    collectors: &[String],
    redundancy: usize,
) -> BTreeMap<String, Vec<String>> {
    let mut out: BTreeMap<String, Vec<String>> = collectors.iter().map(|c| (c.clone(), Vec::new())).collect();
    if collectors.is_empty() {
        return out;
    }
    for (relay, priority) in relays {
        let wanted = match priority {
            RelayPriority::Normal => redundancy,
            RelayPriority::High => redundancy + 1,
        }
        .clamp(1, collectors.len());
        let mut ranked: Vec<(u64, &String)> = collectors.iter().map(|c| (weight(relay, c), c)).collect();
        ranked.sort_unstable_by(|a, b| b.cmp(a));
        for (_, c) in ranked.into_iter().take(wanted) {
            if let Some(list) = out.get_mut(c.as_str()) {
                list.push(relay.clone());
            }
        }
    }
    for list in out.values_mut() {
        list.sort();
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn relays(n: usize) -> Vec<(String, RelayPriority)> {
        (0..n)
            .map(|i| (format!("wss://relay{i}.example"), RelayPriority::Normal))
            .collect()
    }

    fn watchers(a: &BTreeMap<String, Vec<String>>, relay: &str) -> usize {
        a.values().filter(|l| l.iter().any(|r| r == relay)).count()
    }

    #[test]
    fn every_relay_gets_the_redundancy_it_can() {
        let rs = relays(20);
        let one = assign(&rs, &["a".into()], 2);
        assert_eq!(one["a"].len(), 20);
        let three = assign(&rs, &["a".into(), "b".into(), "c".into()], 2);
        for (r, _) in &rs {
            assert_eq!(watchers(&three, r), 2, "{r}");
        }
        assert!(assign(&rs, &[], 2).is_empty());
    }

    #[test]
    fn high_priority_gets_one_more() {
        let rs = vec![("wss://hot".to_string(), RelayPriority::High)];
        let a = assign(&rs, &["a".into(), "b".into(), "c".into(), "d".into()], 2);
        assert_eq!(watchers(&a, "wss://hot"), 3);
    }

    #[test]
    fn a_join_moves_only_what_the_newcomer_takes() {
        let rs = relays(200);
        let before = assign(&rs, &["a".into(), "b".into(), "c".into()], 2);
        let after = assign(&rs, &["a".into(), "b".into(), "c".into(), "d".into()], 2);
        for c in ["a", "b", "c"] {
            // Old collectors only lose relays, never gain any.
            assert!(
                after[c].iter().all(|r| before[c].contains(r)),
                "{c} gained a relay"
            );
        }
        // The newcomer takes about half of the relays (2 of 4 slots), not all or none.
        assert!((60..=140).contains(&after["d"].len()), "{}", after["d"].len());
    }

    #[test]
    fn a_death_reassigns_only_its_relays() {
        let rs = relays(100);
        let before = assign(&rs, &["a".into(), "b".into(), "c".into()], 2);
        let after = assign(&rs, &["a".into(), "b".into()], 2);
        for c in ["a", "b"] {
            assert!(before[c].iter().all(|r| after[c].contains(r)), "{c} lost a relay");
        }
        for (r, _) in &rs {
            assert_eq!(watchers(&after, r), 2);
        }
    }
}
