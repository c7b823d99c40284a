//! `/relays`: which watched relays carry the DVM traffic in the window, and which deliver events no
//! other watched relay does (their marginal coverage), so an operator sees which relays are worth
//! watching.

use dvmdash_core::dto::RelayCoverage;
use sycamore::prelude::*;

use super::banner;
use crate::api;
use crate::app::Ctx;
use crate::components::{Empty, Skeleton};
use crate::format::{clip, percent, thousands, window_words};
use crate::remote::remote;

/// Relay URLs are shown up to this many characters (the whole URL is in the hover title).
const URL_MAX: usize = 60;

#[component]
pub fn Relays() -> View {
    let ctx = use_context::<Ctx>();
    crate::browser::set_title("Relays: dvmdash");
    let range = create_selector(move || ctx.range());
    let coverage = remote::<RelayCoverage>(move || Some(api::relay_coverage(range.get())));
    view! {
        div(data-page="relays") {
            div(class="page-head") {
                h1 { "Relays" }
                p(class="muted") {
                    "Which watched relays delivered the DVM traffic created in the window, and how much of it no other watched relay delivered: what would be missed without them."
                }
            }
            (banner(vec![coverage.error]))
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
                    p(class="muted", data-stat="coverage_summary") { (summary) }
                    section(class="panel") {
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
