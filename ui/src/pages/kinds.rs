//! `/kind-stats`: every job kind with a request or result in the window, with registry names,
//! searched, sorted and paged by the api.

use dvmdash_core::dto::KindList;
use sycamore::prelude::*;

use super::banner;
use super::dvms::event_value;
use crate::api;
use crate::app::Ctx;
use crate::components::{Empty, KindLink, Pager, Skeleton};
use crate::format::{ago, thousands, window_words};
use crate::remote::remote;
use crate::route::ListState;

pub const SORTS: [&str; 5] = [
    "last_seen",
    "total_requests",
    "total_responses",
    "num_supporting_dvms",
    "kind",
];
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
    let state = create_selector(move || ListState::from_query(&ctx.query(), &SORTS, "table"));
    let list = remote::<KindList>(move || Some(api::list("/api/kinds", &state.get_clone(), PAGE)));
    let set = move |f: Box<dyn FnOnce(&mut ListState)>| {
        let mut s = state.get_clone_untracked();
        f(&mut s);
        ctx.set_query(|q| s.write(q, &SORTS, "table"));
    };
    // The search box keeps its own text; the URL follows 300 ms after typing stops, and the box
    // follows the URL on back/forward.
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
        let go = move |p: u64| set(Box::new(move |s| s.page = p));
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
                input(class="search", r#type="search", placeholder="Search by number or name", aria-label="Search kinds",
                    bind:value=typed, on:input=on_input)
                label(class="sort") {
                    "Sort "
                    select(on:change=move |e: web_sys::Event| {
                        let v = event_value(&e);
                        set(Box::new(move |s| { s.sort = v; s.page = 0; }));
                    }) { (sort_options) }
                }
                button(class="btn", on:click=move |_| set(Box::new(|s| { s.desc = !s.desc; s.page = 0; }))) {
                    (move || if state.with(|s| s.desc) { "↓ desc" } else { "↑ asc" })
                }
            }
            (banner(vec![list.error]))
            (body)
        }
    }
}
