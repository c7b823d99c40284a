//! Job-level answers: performance, reach, competition, prices, history.

use std::collections::HashMap;

use dvmdash_core::dto::{
    self, Competition, MonthRow, MonthlyHistory, Outcomes, Performance, Prices, Quantiles, Ranked, Reach,
    ReasonCount,
};
use dvmdash_core::event::Id32;

use super::{DvmDirectory, hex, month_label, period};
use crate::queries::Window;
use crate::queries::history::{Month, TopDvm, TopKind};
use crate::queries::jobs::{self, Grouping};

fn quantiles(count: u64, q: &[i64]) -> Quantiles {
    let at = |i: usize| (count > 0).then(|| q.get(i).copied().unwrap_or(0) as f64);
    Quantiles {
        count,
        p50: at(0),
        p90: at(1),
        p99: at(2),
    }
}

fn ratio(num: u64, den: u64) -> Option<f64> {
    (den > 0).then(|| num as f64 / den as f64)
}

/// The group's DVM and kind as the answer shows them.
fn keys(
    g: Grouping,
    dvm: &Id32,
    kind: u16,
    dir: &DvmDirectory,
) -> (Option<String>, Option<String>, Option<u16>) {
    let with_dvm = matches!(g, Grouping::Dvm | Grouping::DvmKind);
    let with_kind = matches!(g, Grouping::Kind | Grouping::DvmKind);
    (
        with_dvm.then(|| hex(dvm)),
        if with_dvm { dir.name(dvm) } else { None },
        with_kind.then_some(kind),
    )
}

pub fn performance(
    w: &Window,
    g: Grouping,
    rows: &[jobs::PerformanceRow],
    errors: &[jobs::ErrorReason],
    dir: &DvmDirectory,
) -> Performance {
    let mut reasons: HashMap<(Id32, u16), Vec<ReasonCount>> = HashMap::new();
    for e in errors {
        reasons.entry((e.dvm, e.kind)).or_default().push(ReasonCount {
            reason: e.reason.clone(),
            count: e.count,
        });
    }
    let mut out: Vec<dto::PerformanceRow> = rows
        .iter()
        // An aggregate without groups may answer one empty row; a group exists only with a job.
        .filter(|r| r.jobs > 0)
        .map(|r| {
            let (dvm_id, dvm_name, kind) = keys(g, &r.dvm, r.kind, dir);
            // Decided jobs: neither still open nor withdrawn by the customer.
            let final_jobs = r.jobs.saturating_sub(r.pending + r.cancelled);
            dto::PerformanceRow {
                dvm_id,
                dvm_name,
                kind,
                jobs: r.jobs,
                feedback_latency: quantiles(r.fb_count, &r.fb_q),
                result_latency: quantiles(r.res_count, &r.res_q),
                outcomes: Outcomes {
                    success: r.success,
                    partial: r.partial,
                    error: r.error,
                    cancelled: r.cancelled,
                    payment_required: r.payment_required,
                    stalled: r.stalled,
                    pending: r.pending,
                },
                success_rate: ratio(r.success, final_jobs),
                top_errors: reasons.remove(&(r.dvm, r.kind)).unwrap_or_default(),
            }
        })
        .collect();
    out.sort_by(|a, b| {
        b.jobs
            .cmp(&a.jobs)
            .then_with(|| (&a.dvm_id, a.kind).cmp(&(&b.dvm_id, b.kind)))
    });
    let (timestamp, period_start, period_end) = period(w);
    Performance {
        timestamp,
        period_start,
        period_end,
        group_by: g.as_str().into(),
        rows: out,
    }
}

pub fn reach(
    w: &Window,
    kinds: &[jobs::KindReachRow],
    directed: &[jobs::DirectedRow],
    dir: &DvmDirectory,
) -> Reach {
    let mut k: Vec<dto::KindReach> = kinds
        .iter()
        .map(|r| dto::KindReach {
            kind: r.kind,
            requests: r.requests,
            final_requests: r.final_requests,
            unanswered: r.unanswered,
            directed: r.directed,
            open: r.open,
        })
        .collect();
    k.sort_by_key(|r| r.kind);
    let mut d: Vec<dto::DirectedRow> = directed
        .iter()
        .map(|r| dto::DirectedRow {
            dvm_id: hex(&r.target),
            dvm_name: dir.name(&r.target),
            directed: r.directed,
            final_directed: r.final_directed,
            missed: r.missed,
            missed_rate: ratio(r.missed, r.final_directed),
        })
        .collect();
    d.sort_by(|a, b| b.directed.cmp(&a.directed).then_with(|| a.dvm_id.cmp(&b.dvm_id)));
    let (timestamp, period_start, period_end) = period(w);
    Reach {
        timestamp,
        period_start,
        period_end,
        kinds: k,
        dvms: d,
    }
}

pub fn competition(
    w: &Window,
    h: &jobs::Histogram,
    rows: &[jobs::CompetitionRow],
    dir: &DvmDirectory,
) -> Competition {
    let answered = h.one + h.two + h.more;
    let mut dvms: Vec<dto::CompetitionRow> = rows
        .iter()
        .map(|r| dto::CompetitionRow {
            dvm_id: hex(&r.dvm),
            dvm_name: dir.name(&r.dvm),
            requests_with_result: r.with_result,
            first_responses: r.firsts,
            win_rate: ratio(r.firsts, r.with_result),
            contested: r.contested,
            contested_wins: r.contested_wins,
        })
        .collect();
    dvms.sort_by(|a, b| {
        b.requests_with_result
            .cmp(&a.requests_with_result)
            .then_with(|| a.dvm_id.cmp(&b.dvm_id))
    });
    let (timestamp, period_start, period_end) = period(w);
    Competition {
        timestamp,
        period_start,
        period_end,
        responders_histogram: [h.requests.saturating_sub(answered), h.one, h.two, h.more],
        dvms,
    }
}

pub fn prices(w: &Window, by_kind: bool, rows: &[jobs::PriceRow], dir: &DvmDirectory) -> Prices {
    let mut out: Vec<dto::PriceRow> = rows
        .iter()
        .map(|r| dto::PriceRow {
            dvm_id: (!by_kind).then(|| hex(&r.dvm)),
            dvm_name: if by_kind { None } else { dir.name(&r.dvm) },
            kind: by_kind.then_some(r.kind),
            count: r.count,
            min_msat: r.min_msat,
            median_msat: r.median_msat,
            max_msat: r.max_msat,
        })
        .collect();
    out.sort_by(|a, b| {
        b.count
            .cmp(&a.count)
            .then_with(|| (&a.dvm_id, a.kind).cmp(&(&b.dvm_id, b.kind)))
    });
    let (timestamp, period_start, period_end) = period(w);
    Prices {
        timestamp,
        period_start,
        period_end,
        group_by: if by_kind { "kind" } else { "dvm" }.into(),
        rows: out,
    }
}

pub fn history(
    months: &[Month],
    top_dvms: &[TopDvm],
    top_kinds: &[TopKind],
    dir: &DvmDirectory,
) -> MonthlyHistory {
    MonthlyHistory {
        months: months
            .iter()
            .map(|m| MonthRow {
                month: month_label(m.month),
                requests: m.requests,
                results: m.results,
                feedback: m.feedback,
                dvms: m.dvms,
                customers: m.customers,
                kinds: m.kinds,
                top_dvms: top_dvms
                    .iter()
                    .filter(|t| t.month == m.month)
                    .map(|t| Ranked {
                        id: hex(&t.pubkey),
                        name: dir.name(&t.pubkey),
                        count: t.count,
                    })
                    .collect(),
                top_kinds: top_kinds
                    .iter()
                    .filter(|t| t.month == m.month)
                    .map(|t| Ranked {
                        id: t.job_kind.to_string(),
                        name: dvmdash_core::kinds::kind_name(t.job_kind).map(str::to_owned),
                        count: t.count,
                    })
                    .collect(),
            })
            .collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use dvmdash_core::dto::TimeRange;

    #[test]
    fn performance_rates_and_quantiles() {
        let w = Window::new(TimeRange::Day, 1_750_000_000);
        let row = jobs::PerformanceRow {
            dvm: [1; 32],
            kind: 0,
            jobs: 12,
            fb_count: 0,
            fb_q: vec![0, 0, 0],
            res_count: 4,
            res_q: vec![2, 5, 9],
            success: 4,
            partial: 0,
            error: 2,
            cancelled: 2,
            payment_required: 1,
            stalled: 1,
            pending: 2,
        };
        let p = performance(&w, Grouping::Dvm, &[row], &[], &DvmDirectory::default());
        let r = &p.rows[0];
        assert_eq!(
            r.feedback_latency,
            Quantiles {
                count: 0,
                p50: None,
                p90: None,
                p99: None
            }
        );
        assert_eq!(r.result_latency.p90, Some(5.0));
        assert_eq!(
            r.success_rate,
            Some(0.5),
            "4 successes of 8 decided jobs (neither pending nor cancelled)"
        );
        assert_eq!(r.kind, None);
        assert!(r.dvm_id.is_some());
    }

    #[test]
    fn competition_histogram_counts_unanswered() {
        let w = Window::new(TimeRange::Hour, 1_750_000_000);
        let h = jobs::Histogram {
            requests: 10,
            one: 3,
            two: 2,
            more: 1,
        };
        let c = competition(&w, &h, &[], &DvmDirectory::default());
        assert_eq!(c.responders_histogram, [4, 3, 2, 1]);
    }
}
