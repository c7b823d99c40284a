//! `/dvm-stats`: every DVM with a result or feedback in the window, searched, sorted and paged by
//! the api (name, hex or npub), as cards or a table, with success rate and median latency from the
//! performance answer.

use std::collections::HashMap;

use dvmdash_core::dto::{DVM_SORTS, DvmList, DvmSummary, Performance, PerformanceRow, TimeRange};
use sycamore::prelude::*;

use super::banner;
use super::list::{ListNav, search_box, sort_controls};
use crate::api;
use crate::app::Ctx;
use crate::components::{DvmLink, DvmRef, Empty, KindChips, Pager, Skeleton};
use crate::format::{ago, duration, percent, thousands, window_words};
use crate::remote::remote;

const SORT_LABELS: [&str; 6] = [
    "Last seen",
    "Results + feedback",
    "Results",
    "Feedback",
    "Requests received",
    "Name",
];
const PAGE: u64 = 24;

#[component]
pub fn Dvms() -> View {
    let ctx = use_context::<Ctx>();
    crate::browser::set_title("DVMs: dvmdash");
    let nav = ListNav {
        ctx,
        sorts: DVM_SORTS,
        default_view: "cards",
    };
    let state = nav.state();
    let list = remote::<DvmList>(move || Some(api::list("/api/dvms", &state.get_clone(), PAGE)));
    let perf = remote::<Performance>(move || Some(api::performance(state.with(|s| s.range), "dvm")));
    let by_dvm = create_memo(move || {
        perf.data.with(|p| {
            p.as_ref()
                .map(|p| {
                    p.rows
                        .iter()
                        .filter_map(|r| Some((r.dvm_id.clone()?, r.clone())))
                        .collect::<HashMap<_, _>>()
                })
                .unwrap_or_default()
        })
    });
    let set_view = move |v: &'static str| move |_| nav.update(state, |s| s.view = v.to_owned());

    let body = move || {
        let range = state.with(|s| s.range);
        let Some(list) = list.data.get_clone() else {
            return if list.error.with(Option::is_some) {
                view! {}
            } else {
                view! { Skeleton(lines=4) }
            };
        };
        if list.dvms.is_empty() {
            let msg = if state.with(|s| s.search.trim().is_empty()) {
                format!(
                    "No DVM sent a result or feedback in the {} yet.",
                    window_words(range)
                )
            } else {
                format!(
                    "No DVM active in the {} matches this search.",
                    window_words(range)
                )
            };
            return view! { Empty(message=msg) };
        }
        let perf = by_dvm.get_clone();
        let rows: Vec<(DvmSummary, Option<PerformanceRow>)> = list
            .dvms
            .iter()
            .map(|d| (d.clone(), perf.get(&d.id).cloned()))
            .collect();
        let page = state.with(|s| s.page);
        let go = move |p: u64| nav.update(state, move |s| s.page = p);
        let content = if state.with(|s| s.view == "table") {
            table(rows, range)
        } else {
            cards(rows, range)
        };
        view! {
            (content)
            Pager(page=page, page_size=PAGE, total=list.total, go=go)
        }
    };

    view! {
        div(data-page="dvms") {
            div(class="page-head") {
                h1 { "DVMs" }
                p(class="muted") { "Every pubkey that sent a job result or feedback in the window, with its announced profile." }
            }
            div(class="toolbar") {
                (search_box(nav, state, "Search by name, hex or npub", "Search DVMs"))
                (sort_controls(nav, state, &SORT_LABELS))
                div(class="tabs small", role="group", aria-label="View") {
                    button(class=move || if state.with(|s| s.view == "cards") { "tab active" } else { "tab" },
                        on:click=set_view("cards")) { "Cards" }
                    button(class=move || if state.with(|s| s.view == "table") { "tab active" } else { "tab" },
                        data-view="table", on:click=set_view("table")) { "Table" }
                }
            }
            (banner(vec![list.error, perf.error]))
            (body)
        }
    }
}

fn dvm_ref(d: &DvmSummary) -> DvmRef {
    DvmRef {
        id: d.id.clone(),
        name: d.dvm_name.clone(),
        picture: d.dvm_picture.clone(),
    }
}

fn active_badge(d: &DvmSummary) -> View {
    if d.is_active {
        view! { span(class="badge ok", title="a result or feedback in the last 24 hours") { "active" } }
    } else {
        view! { span(class="badge", title="no result or feedback in the last 24 hours") { "inactive" } }
    }
}

/// One DVM's row, formatted once for either view.
struct Row {
    id: String,
    link: View,
    badge: View,
    about: String,
    requests: String,
    results: String,
    feedback: String,
    success: String,
    median: String,
    last: String,
    kinds: Vec<u16>,
}

fn row(d: DvmSummary, p: Option<PerformanceRow>, range: TimeRange, now: u64) -> Row {
    let dref = dvm_ref(&d);
    Row {
        link: view! { DvmLink(dvm=dref, range=range) },
        badge: active_badge(&d),
        about: d
            .dvm_about
            .as_deref()
            .unwrap_or_default()
            .chars()
            .take(140)
            .collect(),
        requests: thousands(d.total_requests),
        results: thousands(d.total_responses),
        feedback: thousands(d.total_feedback),
        success: percent(p.as_ref().and_then(|p| p.success_rate)),
        median: duration(p.as_ref().and_then(|p| p.result_latency.p50)),
        last: d
            .last_seen
            .as_deref()
            .map(|t| ago(t, now))
            .unwrap_or_else(|| "–".into()),
        kinds: d.supported_kinds,
        id: d.id,
    }
}

fn cards(rows: Vec<(DvmSummary, Option<PerformanceRow>)>, range: TimeRange) -> View {
    let now = crate::browser::now_secs();
    let cards: Vec<View> = rows
        .into_iter()
        .map(|(d, p)| {
            let Row {
                id,
                link,
                badge,
                about,
                requests,
                results,
                feedback,
                success,
                median,
                last,
                kinds,
            } = row(d, p, range, now);
            view! {
                article(class="dvm-card", data-dvm-row=id) {
                    div(class="dvm-card-head") {
                        (link)
                        (badge)
                    }
                    p(class="about") { (about) }
                    dl(class="facts") {
                        div { dt { "Requests" } dd(data-col="total_requests") { (requests) } }
                        div { dt { "Results" } dd(data-col="total_responses") { (results) } }
                        div { dt { "Feedback" } dd(data-col="total_feedback") { (feedback) } }
                        div { dt { "Success" } dd { (success) } }
                        div { dt { "Median result" } dd { (median) } }
                        div { dt { "Last seen" } dd { (last) } }
                    }
                    div(class="kinds") { KindChips(kinds=kinds, range=range) }
                }
            }
        })
        .collect();
    view! { div(class="dvm-cards") { (cards) } }
}

fn table(rows: Vec<(DvmSummary, Option<PerformanceRow>)>, range: TimeRange) -> View {
    let now = crate::browser::now_secs();
    let trs: Vec<View> = rows
        .into_iter()
        .map(|(d, p)| {
            let Row {
                id,
                link,
                badge,
                requests,
                results,
                feedback,
                success,
                median,
                last,
                kinds,
                ..
            } = row(d, p, range, now);
            view! {
                tr(data-dvm-row=id) {
                    td { (link) }
                    td(class="num", data-col="total_requests") { (requests) }
                    td(class="num", data-col="total_responses") { (results) }
                    td(class="num", data-col="total_feedback") { (feedback) }
                    td(class="num") { (success) }
                    td(class="num") { (median) }
                    td { KindChips(kinds=kinds, range=range) }
                    td { (last) " " (badge) }
                }
            }
        })
        .collect();
    view! {
        div(class="table-wrap") {
            table(class="data") {
                thead { tr {
                    th(scope="col") { "DVM" } th(scope="col", class="num") { "Requests" }
                    th(scope="col", class="num") { "Results" } th(scope="col", class="num") { "Feedback" }
                    th(scope="col", class="num") { "Success" } th(scope="col", class="num") { "Median result" }
                    th(scope="col") { "Served kinds" } th(scope="col") { "Last seen" }
                } }
                tbody { (trs) }
            }
        }
    }
}
