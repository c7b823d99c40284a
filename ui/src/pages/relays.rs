//! `/relays`: every watched relay's health (connection and the state of its backfill paging now;
//! events accepted, duplicates, rejections by reason and reconnects over the window) and the
//! collectors themselves; then which relays carry the DVM traffic in the window, and which deliver
//! events no other watched relay does (their marginal coverage), so an operator sees which relays
//! are worth watching.

use dvmdash_core::dto::{PagingState, RelayCoverage, RelayHealth, RelayHealthRow};
use sycamore::prelude::*;

use super::banner;
use crate::api;
use crate::app::Ctx;
use crate::components::{Empty, Skeleton};
use crate::format::{ago, clip, percent, thousands, utc, window_words};
use crate::remote::remote;

/// Relay URLs are shown up to this many characters (the whole URL is in the hover title).
const URL_MAX: usize = 60;

#[component]
pub fn Relays() -> View {
    let ctx = use_context::<Ctx>();
    crate::browser::set_title("Relays: dvmdash");
    let range = create_selector(move || ctx.range());
    let coverage = remote::<RelayCoverage>(move || Some(api::relay_coverage(range.get())));
    let health = remote::<RelayHealth>(move || Some(api::relay_status(range.get())));
    view! {
        div(data-page="relays") {
            div(class="page-head") {
                h1 { "Relays" }
                p(class="muted") {
                    "Each watched relay's health, then which relays delivered the DVM traffic created in the window and how much of it no other watched relay delivered: what would be missed without them."
                }
            }
            (banner(vec![health.error, coverage.error]))
            (move || health.data.get_clone().map(|h| health_panel(&h)).unwrap_or_default())
            (move || {
                let r = range.get();
                let Some(c) = coverage.data.get_clone() else {
                    return if coverage.error.with(Option::is_some) { view! {} } else { view! { Skeleton(lines=4) } };
                };
                if c.relays.is_empty() {
                    return view! { Empty(message=format!("No relay delivered an event in the {}.", window_words(r))) };
                }
                let summary = format!(
                    "{} {} in the {} from {} {}",
                    thousands(c.events),
                    if c.events == 1 { "event" } else { "events" },
                    window_words(r),
                    c.relays.len(),
                    if c.relays.len() == 1 { "relay" } else { "relays" }
                );
                let rows: Vec<View> = c.relays.iter().map(|x| {
                    let (url, title) = (x.relay.clone(), x.relay.clone());
                    let shown = clip(&x.relay, URL_MAX);
                    let width = format!("width:{:.1}%", x.share.unwrap_or(0.0) * 100.0);
                    let share = percent(x.share);
                    let (events, only) = (thousands(x.events), thousands(x.only_here));
                    let only_share = percent((x.events > 0).then(|| x.only_here as f64 / x.events as f64));
                    view! {
                        tr(data-relay-row=url) {
                            td { code(title=title) { (shown) } }
                            td(class="num", data-col="events") { (events) }
                            td(class="share-cell") { span(class="outcome-bar") { span(class="fill ok", style=width) } span(class="muted") { (share) } }
                            td(class="num", data-col="only_here") { (only) }
                            td(class="num muted") { (only_share) }
                        }
                    }
                }).collect();
                view! {
                    section(class="panel") {
                    h2 { "Coverage" }
                    p(class="muted", data-stat="coverage_summary") { (summary) }
                        div(class="table-wrap") { table(class="data") {
                            thead { tr {
                                th(scope="col") { "Relay" }
                                th(scope="col", class="num") { "Events" }
                                th(scope="col") { "Share of all" }
                                th(scope="col", class="num", title="events no other watched relay delivered") { "Only here" }
                                th(scope="col", class="num") { "of its events" }
                            } }
                            tbody { (rows) }
                        } }
                    }
                }
            })
        }
    }
}

/// Health now: per relay its state and its collectors' counters; then the collectors.
fn health_panel(h: &RelayHealth) -> View {
    let now = crate::format::parse_time(&h.timestamp).unwrap_or_default();
    let window = h.window.clone();
    let counted = format!(
        "State and paging now, as the collectors report them with their heartbeats. Counts since {} (the window's first hour), summed over the collectors that watched each relay; hover a count for the total since each collector started.",
        utc(&h.window_since)
    );
    if h.relays.is_empty() {
        return view! { section(class="panel", data-health="") { h2 { "Health" } Empty(message="No relay is registered.".to_owned()) } };
    }
    let rows: Vec<View> = h.relays.iter().map(|r| health_row(r, now)).collect();
    let collectors: Vec<View> = h
        .collectors
        .iter()
        .map(|c| {
            let id = c.id.clone();
            let key = c.id.clone();
            let beat = format!("{:.0} s ago", c.heartbeat_age_secs);
            let watching = format!("{} of {} connected", c.connected, c.assigned.len());
            view! { li(data-collector=key) { code { (id) } " · heartbeat " (beat) " · " (watching) } }
        })
        .collect();
    view! {
        section(class="panel", data-health="") {
            h2 { "Health" }
            p(class="muted", data-health-window=window) { (counted) }
            div(class="table-wrap") { table(class="data") {
                thead { tr {
                    th(scope="col") { "Relay" }
                    th(scope="col") { "State" }
                    th(scope="col", class="num") { "Accepted" }
                    th(scope="col", class="num") { "Duplicates" }
                    th(scope="col", class="num", title="refused events and messages; hover a count for the reasons") { "Rejected" }
                    th(scope="col", class="num") { "Reconnects" }
                    th(scope="col", class="num") { "Last event" }
                    th(scope="col") { "Paging" }
                } }
                tbody { (rows) }
            } }
            h3 { "Collectors" }
            ul(class="plain", data-collectors="") { (collectors) }
        }
    }
}

fn health_row(r: &RelayHealthRow, now: u64) -> View {
    let (url, title) = (r.relay.clone(), r.relay.clone());
    let shown = clip(&r.relay, URL_MAX);
    let state = r.state.clone();
    let badge = match r.state.as_str() {
        "connected" => "badge ok",
        "connecting" => "badge warn",
        _ => "badge",
    };
    let who = if r.collectors.is_empty() {
        "no collector".to_owned()
    } else {
        r.collectors.join(", ")
    };
    let total = &r.since_start;
    let reasons = total
        .rejected_by_reason
        .iter()
        .map(|(k, n)| format!("{k}: {n}"))
        .collect::<Vec<_>>()
        .join(", ");
    let w = &r.in_window;
    let reasons = w
        .rejected_by_reason
        .iter()
        .map(|(k, n)| format!("{k}: {n}"))
        .chain(std::iter::once(format!(
            "since start: {} ({reasons})",
            total.rejected
        )))
        .collect::<Vec<_>>()
        .join(", ");
    let (accepted, duplicates, rejected, reconnects) = (
        thousands(w.accepted),
        thousands(w.duplicates),
        thousands(w.rejected),
        thousands(w.reconnects),
    );
    let since_start = |n: u64| format!("since each collector started: {}", thousands(n));
    let (accepted_all, duplicates_all, reconnects_all) = (
        since_start(total.accepted),
        since_start(total.duplicates),
        since_start(total.reconnects),
    );
    let last = r
        .last_event
        .as_deref()
        .map_or_else(|| "never".to_owned(), |t| ago(t, now));
    let mut paging = r.paging.iter().map(paging_words).collect::<Vec<_>>().join("; ");
    let methods = r
        .passes_by_method
        .iter()
        .map(|(m, n)| format!("{m} ×{n}"))
        .collect::<Vec<_>>()
        .join(", ");
    if !methods.is_empty() {
        paging.push_str(&format!(" · passes: {methods}"));
    }
    let nip77 = format!(
        "NIP-77: {}",
        if r.negentropy.is_empty() {
            "unknown"
        } else {
            &r.negentropy
        }
    );
    let nip77_key = r.negentropy.clone();
    view! {
        tr(data-health-row=url) {
            td { code(title=title) { (shown) } div(class="muted small") { (who) } }
            td { span(class=badge, data-col="state") { (state) } }
            td(class="num", data-col="accepted", title=accepted_all) { (accepted) }
            td(class="num", data-col="duplicates", title=duplicates_all) { (duplicates) }
            td(class="num", data-col="rejected", title=reasons) { (rejected) }
            td(class="num", data-col="reconnects", title=reconnects_all) { (reconnects) }
            td(class="num muted") { (last) }
            td(class="small", data-col="paging") { (paging) div(class="muted", data-negentropy=nip77_key) { (nip77) } }
        }
    }
}

/// "catch-up pass 4, done · 12 REQs · cap 500, until inclusive", or for a reconciled pass
/// "catch-up pass 5 by negentropy, done · 3 missing fetched", and the like.
fn paging_words(p: &PagingState) -> String {
    if p.method == "negentropy" {
        let pass = if p.pass == "catchup" {
            "catch-up"
        } else {
            p.pass.as_str()
        };
        let state = if p.done { "done" } else { "reconciling" };
        return format!(
            "{pass} pass {} by negentropy, {state} · {} missing fetched",
            p.passes, p.fetched
        );
    }
    let pass = match p.pass.as_str() {
        "catchup" => "catch-up",
        other => other,
    };
    let progress = if p.done {
        "done".to_owned()
    } else {
        format!("read back to {}", utc(&dvmdash_core::dto::rfc3339(p.cursor)))
    };
    format!(
        "{pass} pass {}, {progress} · {} REQ{} · cap {}, until {}",
        p.passes,
        p.requests,
        if p.requests == 1 { "" } else { "s" },
        p.cap,
        p.until
    )
}
