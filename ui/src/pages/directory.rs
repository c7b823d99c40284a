//! `/directory`: every DVM-like service, whichever family announced it (NIP-89, ContextVM,
//! encrypted DVMs, or none: seen only through its activity), one card per pubkey, with its
//! liveness. Family tabs, search, sort and paging live in the URL; the api does the filtering. The
//! ContextVM tab adds the servers' live MCP calls in the window.

use std::rc::Rc;

use dvmdash_core::dto::{
    ContextvmTraffic, DIRECTORY_FAMILIES, DIRECTORY_SORTS, Directory, DirectoryEntry, FamilyCounts,
};
use dvmdash_core::kinds::Family;
use sycamore::prelude::*;

use super::banner;
use super::list::{ListNav, search_box, sort_controls};
use crate::api;
use crate::app::Ctx;
use crate::components::{
    DvmLink, DvmRef, Empty, KindChips, Pager, Skeleton, avatar, npub_of, status_badge, uptime,
};
use crate::format::{ago, clip, short_npub, thousands};
use crate::remote::remote;

const SORT_LABELS: [&str; 3] = ["Last activity", "Announced", "Name"];
const PAGE: u64 = 24;
/// Tool names shown on a card before "+N more".
const TOOLS_SHOWN: usize = 8;

/// The tab labels of `DIRECTORY_FAMILIES`.
const FAMILY_LABELS: [&str; 5] = ["All", "NIP-89", "ContextVM", "Encrypted", "Unannounced"];

#[component]
pub fn DirectoryPage() -> View {
    let ctx = use_context::<Ctx>();
    crate::browser::set_title("Directory: dvmdash");
    let nav = ListNav {
        ctx,
        sorts: DIRECTORY_SORTS,
        default_view: "cards",
    };
    let state = nav.state();
    let family = create_selector(move || family_of(&ctx));
    let answer = remote::<Directory>(move || Some(api::directory(&state.get_clone(), family.get(), PAGE)));
    let traffic = remote::<ContextvmTraffic>(move || {
        let range = state.with(|s| s.range);
        (family.get() == "contextvm").then(|| api::contextvm_traffic(range))
    });
    let live_calls = move || {
        let range = state.with(|s| s.range);
        // Built from a clone, not inside `with`: building views creates reactive nodes.
        traffic
            .data
            .get_clone()
            .map(|t| live_calls_panel(&t, range))
            .unwrap_or_default()
    };

    let body = move || {
        let range = state.with(|s| s.range);
        let Some(d) = answer.data.get_clone() else {
            return if answer.error.with(Option::is_some) {
                view! {}
            } else {
                view! { Skeleton(lines=4) }
            };
        };
        if d.services.is_empty() {
            return view! { Empty(message="No service matches.".to_owned()) };
        }
        let now = crate::browser::now_secs();
        let cards: Vec<View> = d.services.iter().cloned().map(|e| card(e, range, now)).collect();
        let page = state.with(|s| s.page);
        let go = move |p: u64| nav.update(state, move |s| s.page = p);
        view! {
            div(class="dvm-cards") { (cards) }
            Pager(page=page, page_size=PAGE, total=d.total, go=go)
        }
    };
    let summary = move || {
        answer.data.with(|d| {
            d.as_ref().map_or(String::new(), |d| {
                format!(
                    "{} services, {} alive now",
                    thousands(d.counts.all),
                    thousands(d.alive)
                )
            })
        })
    };

    view! {
        div(data-page="directory") {
            div(class="page-head") {
                h1 { "Directory" }
                p(class="muted") {
                    "Every DVM-like service: announced with NIP-89, as a ContextVM server or as an encrypted DVM, \
                     or seen only through its results and heartbeats. Alive: a heartbeat in the last 15 minutes \
                     or a result in the last hour."
                }
                p(class="muted", data-summary="") { (summary) }
            }
            (family_tabs(ctx, family, answer.data))
            div(class="toolbar") {
                (search_box(nav, state, "Search by name, about, tool, hex or npub", "Search services"))
                (sort_controls(nav, state, &SORT_LABELS))
            }
            (banner(vec![answer.error, traffic.error]))
            (live_calls)
            (body)
        }
    }
}

/// A server's DVM page link when it is a DVM too, else its name or shortened npub.
fn server_name(s: &dvmdash_core::dto::ContextvmServer, range: dvmdash_core::dto::TimeRange) -> View {
    if s.is_dvm {
        let dvm = DvmRef {
            id: s.server_id.clone(),
            name: s.server_name.clone(),
            picture: None,
        };
        return view! { DvmLink(dvm=dvm, range=range) };
    }
    plain_name(&s.server_id, s.server_name.as_deref(), None)
}

/// A service without a DVM page: its avatar and name, or its shortened npub.
fn plain_name(id: &str, name: Option<&str>, picture: Option<&str>) -> View {
    let npub = npub_of(id);
    let text = name
        .map(str::trim)
        .filter(|n| !n.is_empty())
        .map_or_else(|| short_npub(&npub), |n| clip(n, 48));
    let face = avatar(name, picture, "avatar sm");
    let id = id.to_owned();
    view! { span(class="dvm-link", title=npub, data-dvm=id) { (face) span(class="dvm-name") { (text) } } }
}

/// ContextVM servers' live calls in the window, busiest first. Relays keep none of these
/// messages, so the panel says since when they were watched.
fn live_calls_panel(t: &ContextvmTraffic, range: dvmdash_core::dto::TimeRange) -> View {
    let since = t.seen_live_since.as_deref().map_or_else(
        || "Seen live since: unknown".to_owned(),
        |s| format!("Seen live since {}", crate::format::utc(s)),
    );
    let body = if t.servers.is_empty() {
        view! { Empty(message="No ContextVM call was seen in this window.".to_owned()) }
    } else {
        let rows: Vec<View> = t
            .servers
            .iter()
            .map(|s| {
                let who = server_name(s, range);
                let top = s
                    .capabilities
                    .iter()
                    .find(|c| !c.name.is_empty())
                    .map(|c| clip(&c.name, 40))
                    .unwrap_or_else(|| "–".to_owned());
                let (calls, responses, errors, clients) = (
                    thousands(s.calls),
                    thousands(s.responses),
                    thousands(s.errors),
                    thousands(s.clients),
                );
                let id = s.server_id.clone();
                view! {
                    tr(data-server=id) {
                        td { (who) }
                        td(class="num", data-col="calls") { (calls) }
                        td(class="num", data-col="responses") { (responses) }
                        td(class="num", data-col="errors") { (errors) }
                        td(class="num") { (clients) }
                        td { code { (top) } }
                    }
                }
            })
            .collect();
        view! {
            div(class="table-wrap") { table(class="data") {
                thead { tr {
                    th(scope="col") { "Server" }
                    th(scope="col", class="num") { "Calls" }
                    th(scope="col", class="num") { "Responses" }
                    th(scope="col", class="num") { "Errors" }
                    th(scope="col", class="num") { "Callers" }
                    th(scope="col") { "Most used tool" }
                } }
                tbody { (rows) }
            } }
        }
    };
    let totals = format!(
        "{} {}, {} {}, {} {}",
        thousands(t.calls),
        if t.calls == 1 { "call" } else { "calls" },
        thousands(t.responses),
        if t.responses == 1 { "response" } else { "responses" },
        thousands(t.errors),
        if t.errors == 1 { "error" } else { "errors" },
    );
    view! {
        section(class="panel", data-contextvm-traffic="") {
            h2 { "Live MCP calls" }
            p(class="muted", data-stat="seen_live_since") { (since) " · " (totals) }
            (body)
        }
    }
}

/// The `family` the URL names, else `all`.
fn family_of(ctx: &Ctx) -> &'static str {
    let q = ctx.query();
    let wanted = q.get("family").unwrap_or_default();
    DIRECTORY_FAMILIES
        .iter()
        .copied()
        .find(|f| *f == wanted)
        .unwrap_or(DIRECTORY_FAMILIES[0])
}

fn family_tabs(ctx: Ctx, family: ReadSignal<&'static str>, data: Signal<Option<Rc<Directory>>>) -> View {
    let tabs: Vec<View> = DIRECTORY_FAMILIES
        .iter()
        .zip(FAMILY_LABELS)
        .map(|(f, label)| {
            let f: &'static str = f;
            let class = move || if family.get() == f { "tab active" } else { "tab" };
            let count = move || {
                data.with(|d| {
                    d.as_ref()
                        .map(|d| thousands(count_of(&d.counts, f)))
                        .unwrap_or_default()
                })
            };
            let pick = move |_| {
                ctx.set_query(|q| {
                    q.set("family", Some(f).filter(|f| *f != DIRECTORY_FAMILIES[0]));
                    q.set("page", None);
                })
            };
            view! {
                button(class=class, data-family=f, on:click=pick) { (label) span(class="muted") { (count) } }
            }
        })
        .collect();
    view! { div(class="tabs families", role="group", aria-label="Family") { (tabs) } }
}

fn count_of(c: &FamilyCounts, family: &str) -> u64 {
    match family {
        "nip89" => c.nip89,
        "contextvm" => c.contextvm,
        "encrypted" => c.encrypted,
        "unannounced" => c.unannounced,
        _ => c.all,
    }
}

fn family_label(f: Family) -> &'static str {
    match f {
        Family::Nip89 => "NIP-89",
        Family::Contextvm => "ContextVM",
        Family::Encrypted => "Encrypted",
    }
}

/// The name of a service: a link to its DVM page when it has one (it answered jobs or announces
/// job kinds), else its avatar and name or shortened npub.
fn name_of(e: &DirectoryEntry, range: dvmdash_core::dto::TimeRange) -> View {
    let has_page = e.last_result.is_some() || e.families.contains(&Family::Nip89);
    if has_page {
        let dvm = DvmRef {
            id: e.id.clone(),
            name: e.name.clone(),
            picture: e.picture.clone(),
        };
        return view! { DvmLink(dvm=dvm, range=range) };
    }
    plain_name(&e.id, e.name.as_deref(), e.picture.as_deref())
}

fn card(e: DirectoryEntry, range: dvmdash_core::dto::TimeRange, now: u64) -> View {
    let name = name_of(&e, range);
    let badge = status_badge(e.status);
    let families: Vec<View> = e
        .families
        .iter()
        .map(|f| {
            let label = family_label(*f);
            view! { span(class="chip family") { (label) } }
        })
        .collect();
    let about: String = e.about.as_deref().unwrap_or_default().chars().take(140).collect();
    let when = |t: &Option<String>| t.as_deref().map_or_else(|| "–".to_owned(), |t| ago(t, now));
    let (heartbeat, result, announced) = (
        when(&e.last_heartbeat),
        when(&e.last_result),
        when(&e.announced_at),
    );
    let (uptime_day, uptime_week) = (uptime(e.uptime_24h), uptime(e.uptime_7d));
    let more = e.tools.len().saturating_sub(TOOLS_SHOWN);
    let tools: Vec<View> = e
        .tools
        .iter()
        .take(TOOLS_SHOWN)
        .map(|t| {
            let t = clip(t, 32);
            view! { span(class="chip tool") { (t) } }
        })
        .collect();
    let more = if more > 0 {
        format!("+{more} more")
    } else {
        String::new()
    };
    let kinds = e.announced_kinds;
    let chips = if kinds.is_empty() {
        view! {}
    } else {
        view! { div(class="kinds") { KindChips(kinds=kinds, range=range) } }
    };
    let id = e.id;
    view! {
        article(class="dvm-card", data-service-row=id) {
            div(class="dvm-card-head") { (name) (badge) }
            div(class="kinds") { span(class="chips") { (families) } }
            p(class="about") { (about) }
            dl(class="facts") {
                div { dt { "Last heartbeat" } dd(data-col="last_heartbeat") { (heartbeat) } }
                div { dt { "Last result" } dd(data-col="last_result") { (result) } }
                div { dt { "Announced" } dd { (announced) } }
                div { dt { "Uptime 24 h" } dd(data-col="uptime_24h") { (uptime_day) } }
                div { dt { "Uptime 7 d" } dd(data-col="uptime_7d") { (uptime_week) } }
            }
            (chips)
            div(class="kinds", data-tools="") { span(class="chips") { (tools) span(class="muted") { (more) } } }
        }
    }
}
