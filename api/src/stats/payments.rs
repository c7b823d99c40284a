//! `GET /api/stats/payments`: zap receipts paying DVMs, linked to jobs where the zapped event is a
//! stored request, result or feedback, beside the amounts DVMs asked for. Pure; the queries are in
//! `crate::queries::payments`. Definitions: docs/statistics.md, "Payments".

use std::collections::{BTreeMap, BTreeSet, HashMap};

use dvmdash_core::dto::{PaymentPoint, PaymentRow, Payments};
use dvmdash_core::event::Id32;

use super::{DvmDirectory, fill_by, hex, period};
use crate::queries::Window;
use crate::queries::payments::{Ask, RequestKind, Zap, Zapped};

/// What a zap, an ask or a row is keyed by: a DVM or a job kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
enum Key {
    Dvm(Id32),
    Kind(u16),
}

#[derive(Default)]
struct Acc {
    zaps: u64,
    paid: u64,
    senders: BTreeSet<Id32>,
    jobs: BTreeSet<Id32>,
    jobs_asked: u64,
    asked: u64,
}

#[derive(Default)]
struct Point {
    zaps: u64,
    paid: u64,
}

/// The job a zapped event belongs to and the job's kind, where known.
fn link(z: &Zapped, request_kinds: &HashMap<Id32, u16>) -> (Option<Id32>, Option<u16>) {
    if z.role == "request" {
        return (Some(z.event_id), Some(z.kind));
    }
    let job = (z.request_id != [0; 32]).then_some(z.request_id);
    let kind = job
        .and_then(|j| request_kinds.get(&j).copied())
        .or((z.request_kind > 0).then_some(z.request_kind));
    (job, kind)
}

pub struct Inputs<'a> {
    pub zaps: &'a [Zap],
    pub zapped: &'a [Zapped],
    pub asks: &'a [Ask],
    pub request_kinds: &'a [RequestKind],
}

pub fn payments(w: &Window, by_kind: bool, i: &Inputs<'_>, dir: &DvmDirectory) -> Payments {
    let request_kinds: HashMap<Id32, u16> = i.request_kinds.iter().map(|r| (r.request_id, r.kind)).collect();
    let links: HashMap<Id32, (Option<Id32>, Option<u16>)> = i
        .zapped
        .iter()
        .map(|z| (z.event_id, link(z, &request_kinds)))
        .collect();
    let step = w.range.step_seconds() as u32;
    let mut total = Acc::default();
    let mut linked = 0u64;
    let mut rows: BTreeMap<Key, Acc> = BTreeMap::new();
    let mut series: HashMap<u32, Point> = HashMap::new();
    for z in i.zaps.iter().filter(|z| dir.is_dvm(&z.recipient)) {
        let (job, kind) = links.get(&z.zapped).copied().unwrap_or_default();
        let key = if by_kind {
            kind.map(Key::Kind)
        } else {
            Some(Key::Dvm(z.recipient))
        };
        let sender = (z.sender != [0; 32]).then_some(z.sender);
        for acc in std::iter::once(&mut total).chain(key.map(|k| rows.entry(k).or_default())) {
            acc.zaps += 1;
            acc.paid += z.amount;
            acc.senders.extend(sender);
            acc.jobs.extend(job);
        }
        linked += u64::from(job.is_some());
        let p = series.entry(z.at / step * step).or_default();
        p.zaps += 1;
        p.paid += z.amount;
    }
    for a in i.asks {
        let kind = request_kinds
            .get(&a.request_id)
            .copied()
            .or((a.request_kind > 0).then_some(a.request_kind));
        let key = if by_kind {
            kind.map(Key::Kind)
        } else {
            Some(Key::Dvm(a.dvm))
        };
        if let Some(acc) = key.map(|k| rows.entry(k).or_default()) {
            acc.jobs_asked += 1;
            acc.asked += a.asked;
        }
    }
    let mut rows: Vec<PaymentRow> = rows
        .into_iter()
        .map(|(key, a)| PaymentRow {
            dvm_id: match key {
                Key::Dvm(pk) => Some(hex(&pk)),
                Key::Kind(_) => None,
            },
            dvm_name: match key {
                Key::Dvm(pk) => dir.name(&pk),
                Key::Kind(_) => None,
            },
            kind: match key {
                Key::Kind(k) => Some(k),
                Key::Dvm(_) => None,
            },
            zaps: a.zaps,
            paid_msat: a.paid,
            senders: a.senders.len() as u64,
            jobs_paid: a.jobs.len() as u64,
            jobs_asked: a.jobs_asked,
            asked_msat: a.asked,
        })
        .collect();
    // Most paid first, then most asked; ties by id or kind (the map's order, kept by a stable sort).
    rows.sort_by(|a, b| {
        b.paid_msat
            .cmp(&a.paid_msat)
            .then(b.asked_msat.cmp(&a.asked_msat))
    });
    let (timestamp, period_start, period_end) = period(w);
    Payments {
        timestamp,
        period_start,
        period_end,
        group_by: if by_kind { "kind" } else { "dvm" }.to_owned(),
        zaps: total.zaps,
        paid_msat: total.paid,
        senders: total.senders.len() as u64,
        zaps_linked: linked,
        jobs_paid: total.jobs.len() as u64,
        rows,
        time_series: fill_by(w, &series, |time, p: &Point| PaymentPoint {
            time,
            zaps: p.zaps,
            paid_msat: p.paid,
        }),
    }
}
