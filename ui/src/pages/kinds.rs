//! `/kind-stats`: every job kind with a request or result in the window, with registry names,
//! searched, sorted and paged by the api.

use dvmdash_core::dto::{KIND_SORTS, KindList};
use sycamore::prelude::*;

use super::banner;
use super::list::{ListNav, search_box, sort_controls};
use crate::api;
use crate::app::Ctx;
use crate::components::{Empty, KindLink, Pager, Skeleton};
use crate::format::{ago, thousands, window_words};
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
            (banner(vec![list.error]))
            (body)
        }
    }
}
