//! `/kind-stats/{kind}`: one job kind: its counts, activity, the DVMs serving it ranked by results
//! with their success rate and latency, asked prices and the zaps paid for its jobs.

use dvmdash_core::dto::{KindStats, Payments, Performance, PerformanceRow, Prices};
use sycamore::prelude::*;

use super::{banner, period_text, time_spec};
use crate::api;
use crate::app::Ctx;
use crate::components::chart::{Chart, Mark, REQUESTS, RESULTS};
use crate::components::{DvmLink, DvmRef, Empty, Skeleton, payments_panel};
use crate::format::{duration, msat, percent, thousands};
use crate::pages::not_found::NotFound;
use crate::remote::remote;

#[component(inline_props)]
pub fn Kind(kind: String) -> View {
    let ctx = use_context::<Ctx>();
    let range = create_selector(move || ctx.range());
    let k_url = kind.clone();
    let stats = remote::<KindStats>(move || Some(api::kind(&k_url, range.get())));
    let perf = remote::<Performance>(move || Some(api::performance(range.get(), "dvm_kind")));
    let prices = remote::<Prices>(move || Some(api::prices(range.get(), "kind")));
    let payments = remote::<Payments>(move || Some(api::payments(range.get(), "kind")));
    let missing = kind.clone();
    view! {
        div(data-page="kind") {
            (move || {
                if stats.error.with(|e| e.as_ref().is_some_and(|e| e.is_not_found() || e.status == Some(400))) {
                    let what: String = missing.chars().take(40).collect();
                    let what = format!("The kind {what}");
                    return view! { NotFound(what=what) };
                }
                let Some(k) = stats.data.get_clone() else {
                    let errors = banner(vec![stats.error]);
                    return view! { (errors) Skeleton(lines=5) };
                };
                let r = range.get();
                let label = match &k.name { Some(n) => format!("Kind {} · {n}", k.kind), None => format!("Kind {}", k.kind) };
                crate::browser::set_title(&format!("{label}: dvmdash"));
                let spec = create_signal(Some(time_spec(
                    &k.time_series.iter().map(|p| p.time.clone()).collect::<Vec<_>>(),
                    vec![
                        ("Requests", k.time_series.iter().map(|p| p.total_requests).collect(), Mark::Bar, REQUESTS),
                        ("Results", k.time_series.iter().map(|p| p.total_responses).collect(), Mark::Bar, RESULTS),
                    ],
                    false,
                )));
                let perf_rows: Vec<PerformanceRow> = perf.data.with(|p| {
                    p.as_ref().map(|p| p.rows.iter().filter(|x| x.kind == Some(k.kind)).cloned().collect()).unwrap_or_default()
                });
                let price = prices.data.with(|p| p.as_ref().and_then(|p| p.rows.iter().find(|x| x.kind == Some(k.kind)).cloned()));
                let paid = payments.data.with(|p| p.as_ref().and_then(|p| p.rows.iter().find(|x| x.kind == Some(k.kind)).cloned()));
                let paid = payments_panel(paid, "for this kind");
                let ranked: Vec<View> = k.top_dvms.iter().map(|t| {
                    let row = perf_rows.iter().find(|x| x.dvm_id.as_deref() == Some(t.dvm_id.as_str()));
                    let dvm = DvmRef { id: t.dvm_id.clone(), name: t.dvm_name.clone(), picture: None };
                    let success = percent(row.and_then(|x| x.success_rate));
                    let p50 = duration(row.and_then(|x| x.result_latency.p50));
                    let jobs = row.map(|x| thousands(x.jobs)).unwrap_or_else(|| "–".into());
                    let id = t.dvm_id.clone();
                    let results = thousands(t.total_responses);
                    view! {
                        tr(data-dvm-row=id) {
                            td { DvmLink(dvm=dvm, range=r) }
                            td(class="num", data-col="total_responses") { (results) }
                            td(class="num") { (jobs) }
                            td(class="num") { (success) }
                            td(class="num") { (p50) }
                        }
                    }
                }).collect();
                let ranked = if ranked.is_empty() {
                    view! { Empty(message="No DVM sent a result of this kind in this window.".to_owned()) }
                } else {
                    view! { div(class="table-wrap") { table(class="data") {
                        thead { tr { th(scope="col") { "DVM" } th(scope="col", class="num") { "Results" } th(scope="col", class="num") { "Jobs" }
                            th(scope="col", class="num") { "Success" } th(scope="col", class="num") { "Median result" } } }
                        tbody { (ranked) }
                    } } }
                };
                let price = match price {
                    Some(p) => view! { dl(class="facts") {
                        div { dt { "Asked" } dd { (thousands(p.count)) " times" } }
                        div { dt { "Lowest" } dd { (msat(p.min_msat)) } }
                        div { dt { "Median" } dd { (msat(p.median_msat)) } }
                        div { dt { "Highest" } dd { (msat(p.max_msat)) } }
                    } },
                    None => view! { Empty(message="No DVM asked for payment on this kind in this window.".to_owned()) },
                };
                let period = period_text(r, &k.period_start, &k.period_end);
                let (requests, results, dvms) = (thousands(k.total_requests), thousands(k.total_responses), thousands(k.num_supporting_dvms));
                let errors = banner(vec![stats.error, perf.error, prices.error, payments.error]);
                let spec = *spec;
                view! {
                    div(class="page-head") { h1(data-stat="kind_name") { (label) } p(class="muted") { (period) } }
                    (errors)
                    section(class="cards") {
                        div(class="card") { div(class="label") { "Requests" } div(class="value", data-stat="total_requests") { (requests) } }
                        div(class="card") { div(class="label") { "Results" } div(class="value", data-stat="total_responses") { (results) } }
                        div(class="card") { div(class="label") { "DVMs serving it (all time)" } div(class="value", data-stat="num_supporting_dvms") { (dvms) } }
                    }
                    Chart(title="Activity".to_owned(), spec=spec)
                    section(class="panel") { h2 { "DVMs ranked by results" } (ranked) }
                    section(class="panel") { h2 { "Prices" } (price) }
                    (paid)
                }
            })
        }
    }
}
