//! NIP-77 (negentropy set reconciliation) for the passes after the first backfill: instead of
//! reading a time range again page by page, the collector and the relay compare fingerprints of
//! the events each holds in the range, and the collector fetches only the ids it lacks.
//!
//! [`Known`] is what a connection received from its relay: `(created_at, id)` of every valid event
//! of the main subscription kinds. [`Reconciliation`] is one exchange (`NEG-OPEN`, `NEG-MSG`
//! rounds) over a range, ending with the ids to fetch. The protocol itself is the `negentropy`
//! crate (rust-nostr's implementation, the one its relay answers with); only the bookkeeping
//! around it is here. A relay that answers `NEG-ERR`, closes the exchange, or stays silent is read
//! with REQ paging instead (`crate::session`).

use std::collections::BTreeSet;

use dvmdash_core::event::Id32;
use negentropy::{Id, Negentropy, NegentropyStorageVector};

/// Most events one connection remembers for reconciliation. Past it the connection stops
/// remembering and reads with REQ paging, so memory stays bounded on a busy relay (about 40 bytes
/// per event: 16 MB per relay at the cap).
pub const KNOWN_MAX: usize = 400_000;

/// Largest message either side builds; the relay splits its answers at its own limit.
const FRAME_LIMIT: u64 = 60_000;

/// Most ids asked for by one REQ after a reconciliation.
pub const IDS_PER_REQ: usize = 250;

/// The events a connection received from its relay, by `(created_at, id)`.
#[derive(Debug, Default)]
pub struct Known {
    items: BTreeSet<(u64, Id32)>,
    /// Set once [`KNOWN_MAX`] was reached: the set is incomplete and no longer used.
    overflowed: bool,
}

impl Known {
    /// Remembers one event, unless created before `floor` (outside every range a pass reads).
    pub fn insert(&mut self, created_at: u64, id: Id32, floor: u64) {
        if self.overflowed || created_at < floor {
            return;
        }
        if self.items.len() >= KNOWN_MAX {
            self.overflowed = true;
            self.items.clear();
            return;
        }
        self.items.insert((created_at, id));
    }

    pub fn len(&self) -> usize {
        self.items.len()
    }

    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }

    /// Whether the set is complete enough to reconcile with.
    pub fn usable(&self) -> bool {
        !self.overflowed
    }

    /// The items with `since <= created_at <= until`, ready for reconciliation.
    fn storage(&self, since: u64, until: u64) -> Result<NegentropyStorageVector, negentropy::Error> {
        let range = self.items.range((since, [0u8; 32])..=(until, [0xff; 32]));
        let mut storage = NegentropyStorageVector::with_capacity(range.clone().count());
        for (created_at, id) in range {
            storage.insert(*created_at, Id::from_byte_array(*id))?;
        }
        storage.seal()?;
        Ok(storage)
    }
}

/// What the collector does after a relay's `NEG-MSG`.
#[derive(Debug, PartialEq, Eq)]
pub enum Step {
    /// Send this (hex) as the next `NEG-MSG`.
    Continue(String),
    /// Reconciled: fetch these ids (hex), which the relay has and this connection does not.
    Done(Vec<String>),
}

/// One reconciliation in flight.
pub struct Reconciliation {
    negentropy: Negentropy<'static, NegentropyStorageVector>,
    need: Vec<Id>,
    /// Messages received from the relay.
    pub rounds: u32,
}

impl std::fmt::Debug for Reconciliation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Reconciliation")
            .field("need", &self.need.len())
            .field("rounds", &self.rounds)
            .finish()
    }
}

impl Reconciliation {
    /// Starts reconciling `known`'s items in `[since, until]`; returns the `NEG-OPEN` message (hex).
    pub fn open(known: &Known, since: u64, until: u64) -> Result<(Self, String), negentropy::Error> {
        let storage = known.storage(since, until)?;
        let mut negentropy = Negentropy::owned(storage, FRAME_LIMIT)?;
        let first = negentropy.initiate()?;
        Ok((
            Reconciliation {
                negentropy,
                need: Vec::new(),
                rounds: 0,
            },
            hex::encode(first),
        ))
    }

    /// Takes the relay's `NEG-MSG` (hex). A malformed message is an error: the caller gives the
    /// exchange up and pages instead.
    pub fn on_message(&mut self, message_hex: &str) -> Result<Step, negentropy::Error> {
        self.rounds += 1;
        let bytes = hex::decode(message_hex).map_err(|_| negentropy::Error::BadRange)?;
        let mut have = Vec::new();
        let next = self
            .negentropy
            .reconcile_with_ids(&bytes, &mut have, &mut self.need)?;
        Ok(match next {
            Some(msg) => Step::Continue(hex::encode(msg)),
            None => Step::Done(self.need.drain(..).map(|id| hex::encode(id.to_bytes())).collect()),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(n: u32) -> Id32 {
        let mut b = [0u8; 32];
        b[..4].copy_from_slice(&n.to_be_bytes());
        b[31] = 7;
        b
    }

    /// A relay side over `items`, answering with the same crate the rust-nostr relay uses.
    fn relay_answer(
        items: &[(u64, Id32)],
        since: u64,
        until: u64,
    ) -> Negentropy<'static, NegentropyStorageVector> {
        let mut storage = NegentropyStorageVector::new();
        for (t, i) in items.iter().filter(|(t, _)| (since..=until).contains(t)) {
            storage.insert(*t, Id::from_byte_array(*i)).unwrap();
        }
        storage.seal().unwrap();
        Negentropy::owned(storage, 0).unwrap()
    }

    fn reconcile(known: &Known, relay: &[(u64, Id32)], since: u64, until: u64) -> (Vec<String>, u32) {
        let (mut rec, mut msg) = Reconciliation::open(known, since, until).unwrap();
        let mut server = relay_answer(relay, since, until);
        loop {
            let answer = server.reconcile(&hex::decode(&msg).unwrap()).unwrap();
            match rec.on_message(&hex::encode(answer)).unwrap() {
                Step::Continue(next) => msg = next,
                Step::Done(need) => return (need, rec.rounds),
            }
        }
    }

    #[test]
    fn finds_exactly_what_the_relay_has_and_the_connection_lacks() {
        // The relay holds 20,000 events over a day; the connection received all but 37 of them,
        // plus some the relay no longer has, plus some outside the range.
        let relay: Vec<(u64, Id32)> = (0..20_000u32)
            .map(|n| (1_000 + u64::from(n) * 4, id(n)))
            .collect();
        let missing: BTreeSet<u32> = (0..37u32).map(|k| k * 523 % 20_000).collect();
        let mut known = Known::default();
        for (n, (t, i)) in relay.iter().enumerate() {
            if !missing.contains(&(n as u32)) {
                known.insert(*t, *i, 0);
            }
        }
        for n in 50_000..50_010u32 {
            known.insert(5_000, id(n), 0);
        }
        known.insert(999_999, id(60_000), 0);
        let (need, rounds) = reconcile(&known, &relay, 0, 100_000);
        let want: BTreeSet<String> = missing.iter().map(|n| hex::encode(id(*n))).collect();
        assert_eq!(need.into_iter().collect::<BTreeSet<_>>(), want);
        assert!(rounds >= 1);
        // Identical sets need nothing.
        let mut all = Known::default();
        for (t, i) in &relay {
            all.insert(*t, *i, 0);
        }
        assert_eq!(reconcile(&all, &relay, 0, 100_000).0, Vec::<String>::new());
        // An empty connection needs everything in the range, and only that.
        let (need, _) = reconcile(&Known::default(), &relay, 1_000, 1_399);
        assert_eq!(need.len(), 100);
    }

    #[test]
    fn the_memory_is_bounded_and_hostile_answers_are_errors() {
        let mut known = Known::default();
        known.insert(10, id(1), 100);
        assert!(known.is_empty(), "below the floor");
        for n in 0..KNOWN_MAX as u32 {
            known.insert(200, id(n), 100);
        }
        assert!(known.usable() && known.len() == KNOWN_MAX);
        known.insert(200, id(u32::MAX), 100);
        assert!(
            !known.usable() && known.is_empty(),
            "past the cap the set is dropped"
        );
        known.insert(300, id(5), 100);
        assert!(known.is_empty(), "and stays dropped");

        let (mut rec, _) = Reconciliation::open(&Known::default(), 0, 10).unwrap();
        for bad in ["zz", "", "00", "7f", &"6".repeat(10_001)] {
            assert!(rec.on_message(bad).is_err(), "{bad:?}");
        }
        // Well-formed hex that is no sensible answer: an error or some answer, never a panic.
        for odd in [
            "61ffffffffffffffffffff",
            "6100",
            "61000000",
            &format!("61{}", "ff".repeat(5_000)),
        ] {
            let (mut rec, _) = Reconciliation::open(&Known::default(), 0, 10).unwrap();
            let _ = rec.on_message(odd);
        }
    }
}
