//! The app shell: shared state (theme, the URL's query, the refresh tick), the top bar with the
//! navigation, the window selector and the theme toggle, and the router that picks the page.

use dvmdash_core::dto::TimeRange;
use sycamore::futures::spawn_local_scoped;
use sycamore::prelude::*;
use sycamore_router::RouterBase;

use crate::browser::{self, Theme};
use crate::pages;
use crate::route::{AppRoute, Query};

/// How often pages re-fetch their answers while the tab is visible (the api's cache follows new
/// data within seconds; DVMDash polled every 60 s).
const REFRESH_MS: u32 = 15_000;

/// State every page can reach (`use_context::<Ctx>()`).
#[derive(Clone, Copy)]
pub struct Ctx {
    pub theme: Signal<Theme>,
    /// `location.search`, kept in step with the URL by the router integration and `set_query`.
    pub search: Signal<String>,
    /// Bumped on every refresh; pages' fetches track it.
    pub tick: Signal<u64>,
}

impl Ctx {
    pub fn query(&self) -> Query {
        Query::parse(&self.search.get_clone())
    }

    pub fn range(&self) -> TimeRange {
        self.query().range()
    }

    /// Changes the query string (a new history entry, so back/forward step through changes).
    pub fn set_query(&self, f: impl FnOnce(&mut Query)) {
        let mut q = Query::parse(&self.search.get_clone_untracked());
        f(&mut q);
        browser::push_search(self.search, &q.to_search());
    }
}

#[component]
pub fn App() -> View {
    let theme = create_signal(browser::initial_theme());
    create_effect(move || browser::apply_theme(theme.get()));
    let ctx = Ctx {
        theme,
        search: create_signal(browser::location_search()),
        tick: create_signal(0),
    };
    provide_context(ctx);

    // Refresh while visible; on coming back to the tab, refresh at once.
    spawn_local_scoped(async move {
        loop {
            gloo_timers::future::TimeoutFuture::new(REFRESH_MS).await;
            if !browser::is_hidden() {
                ctx.tick.update(|t| *t += 1);
            }
        }
    });
    let visible = browser::on_document_event("visibilitychange", move || {
        if !browser::is_hidden() {
            ctx.tick.update(|t| *t += 1);
        }
    });
    on_cleanup(move || drop(visible));

    let integration = browser::Integration { search: ctx.search };
    view! {
        RouterBase(
            integration=integration,
            route=AppRoute::default(),
            view=move |route: ReadSignal<AppRoute>| view! {
                div(class="app") {
                    TopBar(route=route)
                    main(id="main") {
                        (move || match route.get_clone() {
                            AppRoute::Overview => view! { pages::overview::Overview() },
                            AppRoute::Dvms => view! { pages::dvms::Dvms() },
                            AppRoute::Dvm { id } => view! { pages::dvm::Dvm(id=id) },
                            AppRoute::Kinds => view! { pages::kinds::Kinds() },
                            AppRoute::Kind { kind } => view! { pages::kind::Kind(kind=kind) },
                            AppRoute::New => view! { pages::new::New() },
                            AppRoute::History => view! { pages::history::History() },
                            AppRoute::Directory => view! { pages::directory::DirectoryPage() },
                            AppRoute::Relays => view! { pages::relays::Relays() },
                            AppRoute::Admin => view! { pages::admin::Admin() },
                            AppRoute::NotFound => view! { pages::not_found::NotFound(what="This page".to_owned()) },
                        })
                    }
                    footer(class="foot") {
                        "dvmdash · every time in UTC · "
                        a(href="/api/openapi.json", rel="external") { "API" }
                        " · "
                        a(href="https://github.com/nostr-protocol/nips/blob/master/90.md", rel="external") { "NIP-90" }
                        " · "
                        a(href="/admin") { "Admin" }
                    }
                }
            }
        )
    }
}

#[component(inline_props)]
fn TopBar(route: ReadSignal<AppRoute>) -> View {
    let ctx = use_context::<Ctx>();
    let links: Vec<View> = [
        ("Overview", "/", 0),
        ("DVMs", "/dvm-stats", 1),
        ("Kinds", "/kind-stats", 2),
        ("What's new", "/new", 3),
        ("History", "/history", 4),
        ("Directory", "/directory", 5),
        ("Relays", "/relays", 6),
    ]
    .into_iter()
    .map(|(label, path, section)| {
        let href = move || format!("{path}{}", Query::parse(&ctx.search.get_clone()).range_only());
        let class = move || {
            let current = match route.get_clone() {
                AppRoute::Overview => 0,
                AppRoute::Dvms | AppRoute::Dvm { .. } => 1,
                AppRoute::Kinds | AppRoute::Kind { .. } => 2,
                AppRoute::New => 3,
                AppRoute::History => 4,
                AppRoute::Directory => 5,
                AppRoute::Relays => 6,
                AppRoute::Admin | AppRoute::NotFound => 9,
            };
            if current == section {
                "nav-link active"
            } else {
                "nav-link"
            }
        };
        view! { a(class=class, href=href) { (label) } }
    })
    .collect();
    let tabs: Vec<View> = TimeRange::ALL
        .iter()
        .map(|&r| {
            let pressed = move || (ctx.range() == r).to_string();
            view! {
                button(
                    class=move || if ctx.range() == r { "tab active" } else { "tab" },
                    aria-pressed=pressed,
                    data-range=r.as_str(),
                    on:click=move |_| ctx.set_query(|q| {
                        q.set("timeRange", Some(r.as_str()));
                        q.set("page", None);
                    }),
                ) { (r.as_str()) }
            }
        })
        .collect();
    let toggle = move |_| {
        let next = ctx.theme.get().other();
        browser::remember_theme(next);
        ctx.theme.set(next);
    };
    view! {
        header(class="top") {
            a(class="brand", href="/") { "dvmdash" }
            nav(class="nav", aria-label="Pages") { (links) }
            div(class="top-right") {
                div(class="tabs", role="group", aria-label="Time window") { (tabs) }
                button(
                    class="btn theme-toggle",
                    data-theme-toggle="",
                    aria-label=move || format!("Switch to {} theme", ctx.theme.get().other().as_str()),
                    on:click=toggle,
                ) { (move || if ctx.theme.get() == Theme::Dark { "☀" } else { "☾" }) }
            }
        }
    }
}
