//! `/dvm-stats`: every DVM with a result or feedback in the window, searched, sorted and paged by
//! the api (name, hex or npub), as cards or a table, with success rate and median latency from the
//! performance answer.

use std::collections::HashMap;

use dvmdash_core::dto::{DvmList, DvmSummary, Performance, PerformanceRow, TimeRange};
use sycamore::prelude::*;

use super::banner;
use crate::api;
use crate::app::Ctx;
use crate::components::{DvmLink, DvmRef, Empty, KindChips, Pager, Skeleton};
use crate::format::{ago, duration, percent, thousands, window_words};
use crate::remote::remote;
use crate::route::ListState;

pub const SORTS: [&str; 6] = [
    "last_seen",
    "total_events",
    "total_responses",
    "total_feedback",
    "total_requests",
    "name",
];
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
    let state = create_selector(move || ListState::from_query(&ctx.query(), &SORTS, "cards"));
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

    let set = move |f: Box<dyn FnOnce(&mut ListState)>| {
        let mut s = state.get_clone_untracked();
        f(&mut s);
        ctx.set_query(|q| s.write(q, &SORTS, "cards"));
    };

    // The search box keeps its own text; the URL follows 300 ms after typing stops.
    let typed = create_signal(state.with_untracked(|s| s.search.clone()));
    create_effect(move || {
        let s = state.with(|s| s.search.clone());
        if typed.with_untracked(|t| t.trim() != s.trim()) {
            typed.set(s);
        }
    });
    let generation = create_signal(0u32);
    let on_input = move |_| {
        generation.update(|g| *g += 1);
        let mine = generation.get_untracked();
        sycamore::futures::spawn_local_scoped(async move {
            gloo_timers::future::TimeoutFuture::new(300).await;
            if generation.get_untracked() == mine {
                let text = typed.get_clone_untracked();
                set(Box::new(move |s| {
                    s.search = text.chars().take(200).collect();
                    s.page = 0;
                }));
            }
        });
    };

    let sort_options: Vec<View> = SORTS
        .iter()
        .zip(SORT_LABELS)
        .map(|(value, label)| {
            let selected = move || state.with(|s| s.sort == *value);
            view! { option(value=*value, selected=selected) { (label) } }
        })
        .collect();

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
        let go = move |p: u64| set(Box::new(move |s| s.page = p));
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
                input(
                    class="search",
                    r#type="search",
                    placeholder="Search by name, hex or npub",
                    aria-label="Search DVMs",
                    bind:value=typed,
                    on:input=on_input,
                )
                label(class="sort") {
                    "Sort "
                    select(on:change=move |e: web_sys::Event| {
                        let v = event_value(&e);
                        set(Box::new(move |s| { s.sort = v; s.page = 0; }));
                    }) { (sort_options) }
                }
                button(class="btn", data-order="", on:click=move |_| set(Box::new(|s| { s.desc = !s.desc; s.page = 0; }))) {
                    (move || if state.with(|s| s.desc) { "↓ desc" } else { "↑ asc" })
                }
                div(class="tabs small", role="group", aria-label="View") {
                    button(class=move || if state.with(|s| s.view == "cards") { "tab active" } else { "tab" },
                        on:click=move |_| set(Box::new(|s| s.view = "cards".into()))) { "Cards" }
                    button(class=move || if state.with(|s| s.view == "table") { "tab active" } else { "tab" },
                        data-view="table",
                        on:click=move |_| set(Box::new(|s| s.view = "table".into()))) { "Table" }
                }
            }
            (banner(vec![list.error, perf.error]))
            (body)
        }
    }
}

pub fn event_value(e: &web_sys::Event) -> String {
    use wasm_bindgen::JsCast as _;
    e.target()
        .and_then(|t| t.dyn_into::<web_sys::HtmlSelectElement>().ok())
        .map(|s| s.value())
        .unwrap_or_default()
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

fn cards(rows: Vec<(DvmSummary, Option<PerformanceRow>)>, range: TimeRange) -> View {
    let now = crate::browser::now_secs();
    let cards: Vec<View> = rows
        .into_iter()
        .map(|(d, p)| {
            let last = d
                .last_seen
                .as_deref()
                .map(|t| ago(t, now))
                .unwrap_or_else(|| "–".into());
            let success = percent(p.as_ref().and_then(|p| p.success_rate));
            let median = duration(p.as_ref().and_then(|p| p.result_latency.p50));
            let about = d.dvm_about.clone().unwrap_or_default();
            let about: String = about.chars().take(140).collect();
            let dref = dvm_ref(&d);
            let link = view! { DvmLink(dvm=dref, range=range) };
            let badge = active_badge(&d);
            let (requests, results, feedback) = (
                thousands(d.total_requests),
                thousands(d.total_responses),
                thousands(d.total_feedback),
            );
            let kinds = d.supported_kinds;
            let id = d.id;
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
            let last = d
                .last_seen
                .as_deref()
                .map(|t| ago(t, now))
                .unwrap_or_else(|| "–".into());
            let success = percent(p.as_ref().and_then(|p| p.success_rate));
            let median = duration(p.as_ref().and_then(|p| p.result_latency.p50));
            let dref = dvm_ref(&d);
            let link = view! { DvmLink(dvm=dref, range=range) };
            let badge = active_badge(&d);
            let (requests, results, feedback) = (
                thousands(d.total_requests),
                thousands(d.total_responses),
                thousands(d.total_feedback),
            );
            let kinds = d.supported_kinds;
            let id = d.id;
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
