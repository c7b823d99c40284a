//! What the DVM and kind lists share: their state in the URL, the debounced search box and the
//! sort controls.

use sycamore::prelude::*;
use wasm_bindgen::JsCast as _;

use crate::app::Ctx;
use crate::route::ListState;

/// A list page's way to its own URL state.
#[derive(Clone, Copy)]
pub struct ListNav {
    pub ctx: Ctx,
    /// Accepted `sort` values, the default first.
    pub sorts: &'static [&'static str],
    pub default_view: &'static str,
}

impl ListNav {
    pub fn state(self) -> ReadSignal<ListState> {
        create_selector(move || ListState::from_query(&self.ctx.query(), self.sorts, self.default_view))
    }

    /// Changes the state (a new history entry).
    pub fn update(self, state: ReadSignal<ListState>, f: impl FnOnce(&mut ListState)) {
        let mut s = state.get_clone_untracked();
        f(&mut s);
        self.ctx.set_query(|q| s.write(q, self.sorts, self.default_view));
    }
}

/// The search box: keeps its own text while typing, writes it to the URL 300 ms after typing
/// stops, and follows the URL on back/forward.
pub fn search_box(
    nav: ListNav,
    state: ReadSignal<ListState>,
    placeholder: &'static str,
    label: &'static str,
) -> View {
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
                let text: String = typed.get_clone_untracked().chars().take(200).collect();
                nav.update(state, move |s| {
                    s.search = text;
                    s.page = 0;
                });
            }
        });
    };
    view! {
        input(class="search", r#type="search", placeholder=placeholder, aria-label=label,
            bind:value=typed, on:input=on_input)
    }
}

/// The sort menu (`labels` beside `nav.sorts`) and the order button.
pub fn sort_controls(nav: ListNav, state: ReadSignal<ListState>, labels: &'static [&'static str]) -> View {
    let options: Vec<View> = nav
        .sorts
        .iter()
        .zip(labels)
        .map(|(value, label)| {
            let selected = move || state.with(|s| s.sort == *value);
            view! { option(value=*value, selected=selected) { (*label) } }
        })
        .collect();
    let on_change = move |e: web_sys::Event| {
        let v = e
            .target()
            .and_then(|t| t.dyn_into::<web_sys::HtmlSelectElement>().ok())
            .map(|s| s.value())
            .unwrap_or_default();
        nav.update(state, move |s| {
            s.sort = v;
            s.page = 0;
        });
    };
    let flip = move |_| {
        nav.update(state, |s| {
            s.desc = !s.desc;
            s.page = 0;
        })
    };
    view! {
        label(class="sort") { "Sort " select(on:change=on_change) { (options) } }
        button(class="btn", data-order="", on:click=flip) {
            (move || if state.with(|s| s.desc) { "↓ desc" } else { "↑ asc" })
        }
    }
}
