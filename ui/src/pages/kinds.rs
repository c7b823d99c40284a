//! `/kind-stats`: every job kind with a request or result in the window, with registry names,
//! searched, sorted and paged by the api.

use dvmdash_core::dto::{KIND_SORTS, KindList, KindsUsage};
use sycamore::prelude::*;

use super::banner;
use super::list::{ListNav, search_box, sort_controls};
use crate::api;
use crate::app::Ctx;
use crate::components::{Empty, KindLink, Pager, Skeleton};
use crate::format::{ago, kind_ranges, thousands, utc, window_words};
use crate::remote::remote;

const SORT_LABELS: [&str; 5] = [
    "Last seen",
    "Requests",
    "Results",
    "DVMs serving it",
    "Kind number",
];
const PAGE: u64 = 50;

#[component]
pub fn Kinds() -> View {
    let ctx = use_context::<Ctx>();
    crate::browser::set_title("Job kinds: dvmdash");
    let nav = ListNav {
        ctx,
        sorts: KIND_SORTS,
        default_view: "table",
    };
    let state = nav.state();
    let list = remote::<KindList>(move || Some(api::list("/api/kinds", &state.get_clone(), PAGE)));
    let usage = remote::<KindsUsage>(|| Some("/api/kinds/usage".to_owned()));

    let body = move || {
        let range = state.with(|s| s.range);
        let Some(list) = list.data.get_clone() else {
            return if list.error.with(Option::is_some) {
                view! {}
            } else {
                view! { Skeleton(lines=4) }
            };
        };
        if list.kinds.is_empty() {
            return view! { Empty(message=format!("No job request or result in the {} matches.", window_words(range))) };
        }
        let now = crate::browser::now_secs();
        let trs: Vec<View> = list
            .kinds
            .iter()
            .map(|k| {
                let last = k
                    .last_seen
                    .as_deref()
                    .map(|t| ago(t, now))
                    .unwrap_or_else(|| "–".into());
                let kind = k.kind;
                let row = kind.to_string();
                let [requests, results, serving, announcing] = [
                    k.total_requests,
                    k.total_responses,
                    k.num_supporting_dvms,
                    k.num_announcing_dvms,
                ]
                .map(thousands);
                view! {
                    tr(data-kind-row=row) {
                        td { KindLink(kind=kind, range=range) }
                        td(class="num", data-col="total_requests") { (requests) }
                        td(class="num", data-col="total_responses") { (results) }
                        td(class="num", data-col="num_supporting_dvms") { (serving) }
                        td(class="num") { (announcing) }
                        td { (last) }
                    }
                }
            })
            .collect();
        let page = state.with(|s| s.page);
        let go = move |p: u64| nav.update(state, move |s| s.page = p);
        view! {
            div(class="table-wrap") {
                table(class="data") {
                    thead { tr {
                        th(scope="col") { "Kind" } th(scope="col", class="num") { "Requests" }
                        th(scope="col", class="num") { "Results" } th(scope="col", class="num") { "DVMs serving (all time)" }
                        th(scope="col", class="num") { "DVMs announcing" } th(scope="col") { "Last seen" }
                    } }
                    tbody { (trs) }
                }
            }
            Pager(page=page, page_size=PAGE, total=list.total, go=go)
        }
    };

    view! {
        div(data-page="kinds") {
            div(class="page-head") {
                h1 { "Job kinds" }
                p(class="muted") { "NIP-90 request kinds with a request or a result in the window; results count under their request's kind." }
            }
            div(class="toolbar") {
                (search_box(nav, state, "Search by number or name", "Search kinds"))
                (sort_controls(nav, state, &SORT_LABELS))
            }
            (banner(vec![list.error, usage.error]))
            (body)
            (move || usage.data.get_clone().map(|u| all_time(&u)).unwrap_or_default())
        }
    }
}

/// Every kind ever used, and the request kinds never used (free ones first: a builder's pick).
fn all_time(u: &KindsUsage) -> View {
    let free: Vec<u16> = u
        .unused
        .iter()
        .filter(|k| k.name.is_none())
        .map(|k| k.kind)
        .collect();
    let free = kind_ranges(&free);
    let registered: Vec<View> = u
        .unused
        .iter()
        .filter_map(|k| {
            let name = k.name.clone()?;
            let label = format!("{} · {name}", k.kind);
            Some(view! { li { (label) } })
        })
        .collect();
    let summary = format!(
        "{} request kinds in 5000–5999 never seen; {} of them are in no registry",
        thousands(u.unused.len() as u64),
        thousands(u.free)
    );
    let used_summary = format!(
        "Every request kind ever used ({})",
        thousands(u.used.len() as u64)
    );
    let rows: Vec<View> = u
        .used
        .iter()
        .map(|k| {
            let kind = k.kind;
            let first = k.first_seen.as_deref().map(utc).unwrap_or_default();
            let last = k.last_seen.as_deref().map(utc).unwrap_or_default();
            let [requests, results, dvms] = [k.total_requests, k.total_results, k.dvms].map(thousands);
            view! {
                tr(data-used-kind=kind.to_string()) {
                    td { KindLink(kind=kind, range=crate::route::DEFAULT_RANGE) }
                    td { (first) } td { (last) }
                    td(class="num") { (requests) } td(class="num") { (results) } td(class="num") { (dvms) }
                }
            }
        })
        .collect();
    view! {
        section(class="card", data-kinds-usage="") {
            h2 { "All time" }
            details {
                summary { (used_summary) }
                div(class="table-wrap") {
                    table(class="data") {
                        thead { tr {
                            th(scope="col") { "Kind" } th(scope="col") { "First seen" } th(scope="col") { "Last seen" }
                            th(scope="col", class="num") { "Requests" } th(scope="col", class="num") { "Results" }
                            th(scope="col", class="num") { "DVMs" }
                        } }
                        tbody { (rows) }
                    }
                }
            }
            details(data-unused-kinds="") {
                summary { (summary) }
                p { "Free for a new DVM (never seen, in no registry): " span(data-free-kinds="") { (free) } }
                p(class="muted") { "Registered or proposed, but never seen:" }
                ul(class="columns") { (registered) }
            }
        }
    }
}
