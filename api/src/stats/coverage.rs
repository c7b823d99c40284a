//! Relay coverage and a DVM's reachability, from `crate::queries::coverage`. Definitions:
//! docs/statistics.md, "Relays".

use dvmdash_core::dto::{DvmRelayRow, DvmRelays, RelayCoverage, RelayCoverageRow, rfc3339};

use super::{hex, period};
use crate::queries::Window;
use crate::queries::coverage::{DvmRelay, RelayEvents};

pub fn coverage(w: &Window, events: u64, rows: Vec<RelayEvents>) -> RelayCoverage {
    let mut relays: Vec<RelayCoverageRow> = rows
        .into_iter()
        .map(|r| RelayCoverageRow {
            share: (events > 0).then(|| r.events as f64 / events as f64),
            relay: r.relay,
            events: r.events,
            only_here: r.only_here,
        })
        .collect();
    relays.sort_by(|a, b| b.events.cmp(&a.events).then_with(|| a.relay.cmp(&b.relay)));
    let (timestamp, period_start, period_end) = period(w);
    RelayCoverage {
        timestamp,
        period_start,
        period_end,
        events,
        relays,
    }
}

pub fn dvm_relays(now: u64, pk: &dvmdash_core::Id32, rows: Vec<DvmRelay>) -> DvmRelays {
    let mut relays: Vec<DvmRelayRow> = rows
        .into_iter()
        .map(|r| DvmRelayRow {
            relay: r.relay,
            results: r.results,
            feedback: r.feedback,
            announcements: r.announcements,
            last_seen: rfc3339(u64::from(r.last_seen)),
        })
        .collect();
    relays.sort_by(|a, b| {
        (b.results, b.feedback)
            .cmp(&(a.results, a.feedback))
            .then_with(|| a.relay.cmp(&b.relay))
    });
    DvmRelays {
        dvm_id: hex(pk),
        timestamp: rfc3339(now),
        relays,
    }
}
