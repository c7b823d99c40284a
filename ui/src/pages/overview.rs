//! `/`: DVMDash's eight cards (with names and links instead of hex), the network's latency,
//! success rate and unanswered requests, and activity charts with a cumulative toggle.

use dvmdash_core::dto::{DvmStats, GlobalStats, Performance, Reach};
use sycamore::prelude::*;

use super::{actors_spec, banner, jobs_spec, period_text};
use crate::api;
use crate::app::Ctx;
use crate::components::chart::Chart;
use crate::components::{DvmLink, DvmRef, KindLink, Skeleton, StatCard};
use crate::format::{completion_rate, duration, percent, thousands};
use crate::remote::remote;

#[component]
pub fn Overview() -> View {
    let ctx = use_context::<Ctx>();
    crate::browser::set_title("dvmdash: Nostr DVM activity");
    let range = create_selector(move || ctx.range());
    let cumulate = create_selector(move || ctx.query().get("chart") == Some("cumulative"));
    let global = remote::<GlobalStats>(move || Some(api::global(range.get())));
    let perf = remote::<Performance>(move || Some(api::performance(range.get(), "all")));
    let reach = remote::<Reach>(move || Some(api::reach(range.get())));
    let popular_id = create_selector(move || {
        global
            .data
            .with(|g| g.as_ref().and_then(|g| g.popular_dvm.clone()))
    });
    let popular = remote::<DvmStats>(move || popular_id.get_clone().map(|id| api::dvm(&id, range.get())));

    let num = move |f: fn(&GlobalStats) -> u64| {
        move || {
            global
                .data
                .with(|g| g.as_ref().map(|g| thousands(f(g))).unwrap_or_else(|| "…".into()))
        }
    };
    let all_jobs = move || {
        perf.data
            .with(|p| p.as_ref().and_then(|p| p.rows.first().cloned()))
    };
    let median = move || {
        if perf.loading() {
            return "…".to_owned();
        }
        duration(all_jobs().and_then(|r| r.result_latency.p50))
    };
    let success = move || {
        if perf.loading() {
            return "…".to_owned();
        }
        percent(all_jobs().and_then(|r| r.success_rate))
    };
    let unanswered = move || {
        reach.data.with(|r| {
            r.as_ref()
                .map(|r| thousands(r.kinds.iter().map(|k| k.unanswered).sum()))
                .unwrap_or_else(|| "…".into())
        })
    };
    let unanswered_note = move || {
        reach.data.with(|r| {
            r.as_ref()
                .map(|r| {
                    let finals: u64 = r.kinds.iter().map(|k| k.final_requests).sum();
                    format!("of {} requests past their timeout", thousands(finals))
                })
                .unwrap_or_default()
        })
    };

    let popular_dvm = move || {
        let Some(id) = popular_id.get_clone() else {
            return if global.loading() {
                view! { "…" }
            } else {
                view! { "–" }
            };
        };
        let (name, picture) = popular.data.with(|d| {
            d.as_ref()
                .map(|d| (d.dvm_name.clone(), d.dvm_picture.clone()))
                .unwrap_or_default()
        });
        view! { DvmLink(dvm=DvmRef { id, name, picture }, range=range.get()) }
    };
    let kind_card = move |f: fn(&GlobalStats) -> Option<u16>| {
        move || match global.data.with(|g| g.as_ref().map(|g| f(g))) {
            None => view! { "…" },
            Some(None) => view! { "–" },
            Some(Some(k)) => view! { KindLink(kind=k, range=range.get()) },
        }
    };

    let jobs = create_memo(move || {
        global
            .data
            .with(|g| g.as_ref().map(|g| jobs_spec(&g.time_series, cumulate.get())))
    });
    let actors = create_memo(move || {
        global
            .data
            .with(|g| g.as_ref().map(|g| actors_spec(&g.time_series)))
    });
    let period = move || {
        global.data.with(|g| {
            g.as_ref()
                .map(|g| period_text(range.get(), &g.period_start, &g.period_end))
                .unwrap_or_default()
        })
    };
    let toggle_label = move || {
        if cumulate.get() {
            "Per bucket"
        } else {
            "Cumulative"
        }
    };

    view! {
        div(data-page="overview") {
            div(class="page-head") {
                h1 { "Nostr DVM activity" }
                p(class="muted", data-stat="period") { (period) }
            }
            (banner(vec![global.error, perf.error, reach.error]))
            (move || if global.loading() { view! { Skeleton(lines=2) } } else { view! {} })
            section(class="cards") {
                StatCard(label="Total Job Requests", stat="total_requests", value=num(|g| g.total_requests))
                div(class="card") {
                    div(class="label") { "Total Job Responses" }
                    div(class="value", data-stat="total_responses") { (num(|g| g.total_responses)) }
                    div(class="note", data-stat="completion_rate") {
                        (move || global.data.with(|g| g.as_ref().map(|g| format!("{} completion rate", completion_rate(g.total_requests, g.total_responses))).unwrap_or_default()))
                    }
                }
                StatCard(label="Job Feedback", stat="total_feedback", value=num(|g| g.total_feedback))
                StatCard(label="Unique Customers", stat="unique_users", value=num(|g| g.unique_users))
                StatCard(label="Unique DVMs", stat="unique_dvms", value=num(|g| g.unique_dvms))
                StatCard(label="Unique Kinds", stat="unique_kinds", value=num(|g| g.unique_kinds))
                div(class="card") {
                    div(class="label") { "Most Popular DVM" }
                    div(class="value small", data-stat="popular_dvm") { (popular_dvm) }
                }
                div(class="card") {
                    div(class="label") { "Most Requested Kind" }
                    div(class="value small", data-stat="popular_kind") { (kind_card(|g| g.popular_kind)) }
                }
                div(class="card") {
                    div(class="label") { "Most Competitive Kind" }
                    div(class="value small", data-stat="competitive_kind") { (kind_card(|g| g.competitive_kind)) }
                    div(class="note") { "most DVMs answering" }
                }
                StatCard(label="Median Time to Result", stat="median_latency", value=median)
                StatCard(label="Success Rate", stat="success_rate", value=success)
                div(class="card") {
                    div(class="label") { "Unanswered Requests" }
                    div(class="value", data-stat="unanswered") { (unanswered) }
                    div(class="note") { (unanswered_note) }
                }
            }
            div(class="chart-tools") {
                button(class="btn", data-toggle="cumulative", on:click=move |_| {
                    let next = !cumulate.get();
                    ctx.set_query(|q| { q.set("chart", next.then_some("cumulative")); });
                }) { (toggle_label) }
            }
            Chart(title="Jobs over time".to_owned(), spec=jobs)
            Chart(title="Active customers and DVMs".to_owned(), spec=actors)
        }
    }
}
