//! `/dvm-stats/{id}` (hex or npub): one DVM's profile, served against announced kinds, activity,
//! latency percentiles, outcomes with top error reasons, asked prices, zaps it was paid, its liveness
//! (uptime and status timeline), the relays it can be reached on, its live ContextVM calls when it
//! serves MCP too, directed requests it missed, how it fares against competitors, and its
//! competitors on each kind.

use dvmdash_core::dto::{
    Competition, ContextvmServer, ContextvmTraffic, DvmRelays, DvmStats, Payments, Performance,
    PerformanceRow, Prices, Reach, ServiceLiveness, TimeRange,
};
use sycamore::prelude::*;

use super::{banner, period_text, time_spec};
use crate::api;
use crate::app::Ctx;
use crate::components::chart::{Chart, FEEDBACK, Mark, RESULTS};
use crate::components::{
    DvmLink, DvmRef, Empty, KindChips, KindLink, Skeleton, avatar, payments_panel, status_badge, uptime,
};
use crate::format::{ago, duration, msat, parse_time, percent, thousands, utc};
use crate::pages::not_found::NotFound;
use crate::remote::remote;

#[component(inline_props)]
pub fn Dvm(id: String) -> View {
    // Neither hex nor npub: no DVM can have it, so ask the api nothing (each of the page's
    // requests would only come back 400 after the page had already said so).
    if dvmdash_core::nip19::parse_pubkey(&id).is_none() {
        let what = format!("The DVM {}", crate::format::short_npub(&id));
        return view! { NotFound(what=what) };
    }
    let ctx = use_context::<Ctx>();
    let range = create_selector(move || ctx.range());
    let id_for_url = id.clone();
    let dvm = remote::<DvmStats>(move || Some(api::dvm(&id_for_url, range.get())));
    let perf = remote::<Performance>(move || Some(api::performance(range.get(), "dvm_kind")));
    let perf_all = remote::<Performance>(move || Some(api::performance(range.get(), "dvm")));
    let prices = remote::<Prices>(move || Some(api::prices(range.get(), "dvm")));
    let payments = remote::<Payments>(move || Some(api::payments(range.get(), "dvm")));
    let reach = remote::<Reach>(move || Some(api::reach(range.get())));
    let competition = remote::<Competition>(move || Some(api::competition(range.get())));
    let id_for_liveness = id.clone();
    let live = remote::<ServiceLiveness>(move || Some(api::liveness(&id_for_liveness)));
    let id_for_relays = id.clone();
    let relays = remote::<DvmRelays>(move || Some(api::dvm_relays(&id_for_relays)));
    let contextvm = remote::<ContextvmTraffic>(move || Some(api::contextvm_traffic(range.get())));

    let hex = create_selector(move || dvm.data.with(|d| d.as_ref().map(|d| d.dvm_id.clone())));
    create_effect(move || {
        if let Some(name) = dvm.data.with(|d| {
            d.as_ref().map(|d| {
                d.dvm_name
                    .clone()
                    .unwrap_or_else(|| crate::format::short_npub(&d.npub))
            })
        }) {
            crate::browser::set_title(&format!("{name}: DVM on dvmdash"));
        }
    });
    let missing = id.clone();

    view! {
        div(data-page="dvm") {
            (move || {
                if dvm.error.with(|e| e.as_ref().is_some_and(|e| e.is_not_found() || e.status == Some(400))) {
                    let what = format!("The DVM {}", crate::format::short_npub(&missing));
                    return view! { NotFound(what=what) };
                }
                let Some(d) = dvm.data.get_clone() else {
                    let errors = banner(vec![dvm.error]);
                    return view! { (errors) Skeleton(lines=5) };
                };
                let r = range.get();
                let me = hex.get_clone().unwrap_or_default();
                let series = time_spec(
                    &d.time_series.iter().map(|p| p.time.clone()).collect::<Vec<_>>(),
                    vec![
                        ("Results", d.time_series.iter().map(|p| p.total_responses).collect(), Mark::Bar, RESULTS),
                        ("Feedback", d.time_series.iter().map(|p| p.total_feedback).collect(), Mark::Bar, FEEDBACK),
                    ],
                    false,
                );
                let spec = create_signal(Some(series));
                let overall = perf_all.data.with(|p| p.as_ref().and_then(|p| p.rows.iter().find(|r| r.dvm_id.as_deref() == Some(me.as_str())).cloned()));
                let head = header(&d, r);
                let errors = banner(vec![dvm.error, perf.error, perf_all.error, prices.error, payments.error, reach.error, competition.error, contextvm.error]);
                let latency = latency_cards(overall.clone());
                let kinds = kinds_panel(&d, r);
                let outcomes = outcomes_panel(overall);
                let per_kind = per_kind_panel(perf.data.get_clone(), &me, r);
                let price = prices_panel(prices.data.get_clone(), &me);
                let paid = payments.data.with(|p| p.as_ref().and_then(|p| p.rows.iter().find(|x| x.dvm_id.as_deref() == Some(me.as_str())).cloned()));
                let paid = payments_panel(paid, "this DVM");
                let reach = reach_panel(reach.data.get_clone(), competition.data.get_clone(), &me);
                let competitors = competitors_panel(perf.data.get_clone(), &d, r);
                let liveness = liveness_panel(live.data.get_clone());
                let reachable = relays_panel(relays.data.get_clone());
                let mcp = contextvm.data.get_clone().and_then(|t| {
                    let row = t.servers.iter().find(|s| s.server_id == me)?;
                    Some(contextvm_panel(row, t.seen_live_since.as_deref()))
                }).unwrap_or_default();
                let (results, feedback, requests, answered) = (d.total_responses, d.total_feedback, d.total_requests, d.jobs_answered);
                let spec = *spec;
                view! {
                    (head)
                    (errors)
                    section(class="cards") {
                        Num(label="Results", stat="total_responses", value=results)
                        Num(label="Feedback", stat="total_feedback", value=feedback)
                        Num(label="Requests received", stat="total_requests", value=requests)
                        Num(label="Jobs answered", stat="jobs_answered", value=answered)
                        (latency)
                    }
                    (kinds)
                    (liveness)
                    (reachable)
                    (mcp)
                    Chart(title="Activity".to_owned(), spec=spec)
                    (outcomes)
                    (per_kind)
                    (price)
                    (paid)
                    (reach)
                    (competitors)
                }
            })
        }
    }
}

#[component(inline_props)]
fn Num(label: &'static str, stat: &'static str, value: u64) -> View {
    view! {
        div(class="card") {
            div(class="label") { (label) }
            div(class="value", data-stat=stat) { (thousands(value)) }
        }
    }
}

fn header(d: &DvmStats, r: TimeRange) -> View {
    let name = d.dvm_name.clone().filter(|n| !n.trim().is_empty());
    let title = name.clone().unwrap_or_else(|| "Unnamed DVM".to_owned());
    let npub = d.npub.clone();
    let copy_text = npub.clone();
    let copied = create_signal(false);
    let about = d.dvm_about.clone().unwrap_or_default();
    let seen = format!(
        "First seen {} · last result or feedback {}",
        d.first_seen.as_deref().map(utc).unwrap_or_else(|| "–".into()),
        d.last_seen.as_deref().map(utc).unwrap_or_else(|| "never".into()),
    );
    let period = period_text(r, &d.period_start, &d.period_end);
    let face = avatar(name.as_deref(), d.dvm_picture.as_deref(), "avatar lg");
    let npub_title = npub.clone();
    view! {
        section(class="panel profile") {
            (face)
            div(class="profile-text") {
                h1(data-stat="dvm_name") { (title) }
                div(class="npub") {
                    code(title=npub_title, data-stat="npub") { (npub) }
                    button(class="btn small", on:click=move |_| { crate::browser::copy(&copy_text); copied.set(true); }) {
                        (move || if copied.get() { "Copied" } else { "Copy npub" })
                    }
                }
                p(class="about") { (about) }
                p(class="muted") { (seen) }
                p(class="muted") { (period) }
            }
        }
    }
}

/// Status, uptime and the week's timeline of status changes. Not tied to the page's window: uptime
/// is always over the last day and week. Absent while loading or when the api has none.
fn liveness_panel(l: Option<std::rc::Rc<ServiceLiveness>>) -> View {
    let Some(l) = l else {
        return view! {};
    };
    let now = parse_time(&l.timestamp).unwrap_or_default();
    let when = |t: &Option<String>| t.as_deref().map_or_else(|| "never".to_owned(), |t| ago(t, now));
    let (heartbeat, result) = (when(&l.last_heartbeat), when(&l.last_result));
    let (day, week) = (uptime(l.uptime_24h), uptime(l.uptime_7d));
    let badge = status_badge(l.status);
    let slots: u64 = l.timeline.iter().map(|s| s.slots).sum::<u64>().max(1);
    let spans: Vec<View> = l
        .timeline
        .iter()
        .map(|s| {
            let style = format!("width:{:.3}%", s.slots as f64 * 100.0 / slots as f64);
            let (class, state) = if s.alive {
                ("span alive", "alive")
            } else {
                ("span down", "down")
            };
            let title = format!("{state} {} – {}", utc(&s.from), utc(&s.to));
            view! { div(class=class, style=style, title=title, data-state=state) }
        })
        .collect();
    let start = l.timeline.first().map(|s| utc(&s.from)).unwrap_or_default();
    let rule = format!(
        "Alive: a heartbeat in the last {} min or a result or feedback in the last {} min, sampled every {} min.",
        l.heartbeat_alive_seconds / 60,
        l.alive_window_seconds / 60,
        l.slot_seconds / 60
    );
    let timeline = if l.timeline.is_empty() {
        view! { Empty(message="No status yet: its first event is newer than the last sample.".to_owned()) }
    } else {
        view! {
            div(class="timeline", role="img", aria-label="Status over the last 7 days") { (spans) }
            div(class="timeline-axis muted") { span { (start) } span { "now" } }
        }
    };
    view! {
        section(class="panel", data-liveness="") {
            h2 { "Liveness " (badge) }
            dl(class="facts") {
                div { dt { "Uptime 24 h" } dd(data-stat="uptime_24h") { (day) } }
                div { dt { "Uptime 7 d" } dd(data-stat="uptime_7d") { (week) } }
                div { dt { "Last heartbeat" } dd { (heartbeat) } }
                div { dt { "Last result" } dd { (result) } }
            }
            (timeline)
            p(class="muted") { (rule) }
        }
    }
}

/// The relays its results, feedback and announcements appear on: where a client can reach it.
/// Its live ContextVM (MCP) calls and responses in the window, per method and tool. Only what a
/// collector watched live exists, so the panel says since when.
fn contextvm_panel(s: &ContextvmServer, since: Option<&str>) -> View {
    let since = since.map_or_else(
        || "Seen live since: unknown".to_owned(),
        |t| format!("Seen live since {}", utc(t)),
    );
    let rows: Vec<View> = s
        .capabilities
        .iter()
        .map(|c| {
            let method = if c.method.is_empty() {
                "(call not seen)".to_owned()
            } else {
                c.method.clone()
            };
            let (name, key) = (c.name.clone(), c.name.clone());
            let (calls, responses, errors) =
                (thousands(c.calls), thousands(c.responses), thousands(c.errors));
            view! {
                tr(data-capability=key) {
                    td { code { (method) } }
                    td { (name) }
                    td(class="num", data-col="calls") { (calls) }
                    td(class="num", data-col="responses") { (responses) }
                    td(class="num", data-col="errors") { (errors) }
                }
            }
        })
        .collect();
    let (calls, responses, errors, clients) = (
        thousands(s.calls),
        thousands(s.responses),
        thousands(s.errors),
        thousands(s.clients),
    );
    view! {
        section(class="panel", data-contextvm="") {
            h2 { "Live MCP calls (ContextVM)" }
            p(class="muted", data-stat="seen_live_since") { (since) }
            dl(class="facts") {
                div { dt { "Calls" } dd(data-stat="calls") { (calls) } }
                div { dt { "Responses" } dd(data-stat="responses") { (responses) } }
                div { dt { "Errors" } dd(data-stat="errors") { (errors) } }
                div { dt { "Callers" } dd(data-stat="clients") { (clients) } }
            }
            div(class="table-wrap") { table(class="data") {
                thead { tr {
                    th(scope="col") { "Method" }
                    th(scope="col") { "Tool or prompt" }
                    th(scope="col", class="num") { "Calls" }
                    th(scope="col", class="num") { "Responses" }
                    th(scope="col", class="num") { "Errors" }
                } }
                tbody { (rows) }
            } }
        }
    }
}

fn relays_panel(r: Option<std::rc::Rc<DvmRelays>>) -> View {
    let Some(r) = r else {
        return view! {};
    };
    let now = parse_time(&r.timestamp).unwrap_or_default();
    let body = if r.relays.is_empty() {
        view! { Empty(message="No watched relay delivered its events in the last 30 days.".to_owned()) }
    } else {
        let rows: Vec<View> = r
            .relays
            .iter()
            .map(|x| {
                let (url, title) = (x.relay.clone(), x.relay.clone());
                let shown = crate::format::clip(&x.relay, 60);
                let (results, feedback, presence) = (
                    thousands(x.results),
                    thousands(x.feedback),
                    thousands(x.announcements),
                );
                let last = ago(&x.last_seen, now);
                view! {
                    tr(data-relay-row=url) {
                        td { code(title=title) { (shown) } }
                        td(class="num", data-col="results") { (results) }
                        td(class="num", data-col="feedback") { (feedback) }
                        td(class="num") { (presence) }
                        td(class="num muted") { (last) }
                    }
                }
            })
            .collect();
        view! {
            div(class="table-wrap") { table(class="data") {
                thead { tr {
                    th(scope="col") { "Relay" }
                    th(scope="col", class="num") { "Results" }
                    th(scope="col", class="num") { "Feedback" }
                    th(scope="col", class="num", title="announcements, capability lists and heartbeats") { "Presence" }
                    th(scope="col", class="num") { "Last seen" }
                } }
                tbody { (rows) }
            } }
        }
    };
    view! { section(class="panel", data-reachability="") { h2 { "Where to reach it" } (body) } }
}

fn latency_cards(row: Option<PerformanceRow>) -> View {
    let q = row.as_ref().map(|r| r.result_latency.clone()).unwrap_or_default();
    let success = percent(row.as_ref().and_then(|r| r.success_rate));
    let fb = duration(row.as_ref().and_then(|r| r.feedback_latency.p50));
    let lat = format!("{} · {} · {}", duration(q.p50), duration(q.p90), duration(q.p99));
    let fb = format!("first feedback after {fb} (median)");
    view! {
        div(class="card") { div(class="label") { "Success rate" } div(class="value", data-stat="success_rate") { (success) } }
        div(class="card wide") {
            div(class="label") { "Time to result p50 · p90 · p99" }
            div(class="value small", data-stat="result_latency") { (lat) }
            div(class="note") { (fb) }
        }
    }
}

fn kinds_panel(d: &DvmStats, r: TimeRange) -> View {
    let (served, announced, never) = (
        d.supported_kinds.clone(),
        d.announced_kinds.clone(),
        d.announced_not_served.clone(),
    );
    view! {
        section(class="panel") {
            h2 { "Kinds" }
            div(class="kind-columns") {
                div { h3 { "Served (results, all time)" } div(data-stat="served_kinds") { KindChips(kinds=served, range=r, class="chip served") } }
                div { h3 { "Announced (NIP-89)" } div(data-stat="announced_kinds") { KindChips(kinds=announced, range=r, class="chip announced") } }
                div { h3 { "Announced, never served" } div(data-stat="announced_not_served") { KindChips(kinds=never, range=r, class="chip warn") } }
            }
        }
    }
}

fn outcomes_panel(row: Option<PerformanceRow>) -> View {
    let Some(row) = row else {
        return view! { section(class="panel") { h2 { "Outcomes" } Empty(message="No job of this DVM in this window.".to_owned()) } };
    };
    let o = &row.outcomes;
    let items = [
        ("Success", o.success, "ok"),
        ("Partial", o.partial, ""),
        ("Error", o.error, "bad"),
        ("Cancelled by the customer", o.cancelled, ""),
        ("Payment required, then nothing", o.payment_required, "warn"),
        ("Stalled", o.stalled, "warn"),
        ("Pending", o.pending, ""),
    ];
    let total: u64 = items.iter().map(|i| i.1).sum::<u64>().max(1);
    let bars: Vec<View> = items
        .into_iter()
        .map(|(label, n, class)| {
            let width = format!("width:{:.1}%", n as f64 * 100.0 / total as f64);
            let fill = format!("fill {class}");
            let n = thousands(n);
            view! {
                div(class="outcome") {
                    span(class="outcome-label") { (label) }
                    span(class="outcome-bar") { span(class=fill, style=width) }
                    span(class="num") { (n) }
                }
            }
        })
        .collect();
    let errors: Vec<View> = row
        .top_errors
        .iter()
        .map(|e| {
            let (reason, count) = (e.reason.clone(), thousands(e.count));
            view! { li { span(class="reason") { (reason) } " " span(class="muted") { "×" (count) } } }
        })
        .collect();
    let title = format!("Outcomes of {} jobs", thousands(row.jobs));
    let errors = if errors.is_empty() {
        view! {}
    } else {
        view! { h3 { "Top error reasons" } ul(class="errors") { (errors) } }
    };
    view! {
        section(class="panel") {
            h2 { (title) }
            div(class="outcomes") { (bars) }
            (errors)
        }
    }
}

fn per_kind_panel(perf: Option<std::rc::Rc<Performance>>, me: &str, r: TimeRange) -> View {
    let rows: Vec<PerformanceRow> = perf
        .map(|p| {
            p.rows
                .iter()
                .filter(|x| x.dvm_id.as_deref() == Some(me))
                .cloned()
                .collect()
        })
        .unwrap_or_default();
    if rows.is_empty() {
        return view! {};
    }
    let trs: Vec<View> = rows
        .into_iter()
        .map(|x| {
            let k = x.kind.unwrap_or(0);
            view! {
                tr {
                    td { KindLink(kind=k, range=r) }
                    td(class="num") { (thousands(x.jobs)) }
                    td(class="num") { (percent(x.success_rate)) }
                    td(class="num") { (duration(x.result_latency.p50)) }
                    td(class="num") { (duration(x.result_latency.p90)) }
                    td(class="num") { (duration(x.result_latency.p99)) }
                }
            }
        })
        .collect();
    view! {
        section(class="panel") {
            h2 { "Per kind" }
            div(class="table-wrap") { table(class="data") {
                thead { tr { th(scope="col") { "Kind" } th(scope="col", class="num") { "Jobs" } th(scope="col", class="num") { "Success" }
                    th(scope="col", class="num") { "p50" } th(scope="col", class="num") { "p90" } th(scope="col", class="num") { "p99" } } }
                tbody { (trs) }
            } }
        }
    }
}

fn prices_panel(prices: Option<std::rc::Rc<Prices>>, me: &str) -> View {
    let row = prices.and_then(|p| p.rows.iter().find(|x| x.dvm_id.as_deref() == Some(me)).cloned());
    let body = match row {
        Some(p) => view! {
            dl(class="facts") {
                div { dt { "Asked" } dd { (thousands(p.count)) " times" } }
                div { dt { "Lowest" } dd { (msat(p.min_msat)) } }
                div { dt { "Median" } dd(data-stat="median_price") { (msat(p.median_msat)) } }
                div { dt { "Highest" } dd { (msat(p.max_msat)) } }
            }
        },
        None => view! { Empty(message="It asked for no payment in this window.".to_owned()) },
    };
    view! { section(class="panel") { h2 { "Prices" } (body) } }
}

fn reach_panel(reach: Option<std::rc::Rc<Reach>>, comp: Option<std::rc::Rc<Competition>>, me: &str) -> View {
    let directed = reach.and_then(|r| r.dvms.iter().find(|x| x.dvm_id == me).cloned());
    let c = comp.and_then(|c| c.dvms.iter().find(|x| x.dvm_id == me).cloned());
    let d = match directed {
        Some(d) => view! {
            dl(class="facts") {
                div { dt { "Directed to it" } dd { (thousands(d.directed)) } }
                div { dt { "Past their timeout" } dd { (thousands(d.final_directed)) } }
                div { dt { "Missed" } dd(data-stat="missed") { (thousands(d.missed)) } }
                div { dt { "Missed share" } dd { (percent(d.missed_rate)) } }
            }
        },
        None => view! { Empty(message="No request named this DVM in this window.".to_owned()) },
    };
    let c = match c {
        Some(c) => view! {
            dl(class="facts") {
                div { dt { "Requests it answered with a result" } dd { (thousands(c.requests_with_result)) } }
                div { dt { "First to answer" } dd { (thousands(c.first_responses)) " (" (percent(c.win_rate)) ")" } }
                div { dt { "Contested" } dd { (thousands(c.contested)) } }
                div { dt { "Contested and won" } dd { (thousands(c.contested_wins)) } }
            }
        },
        None => view! { Empty(message="No result from this DVM in this window.".to_owned()) },
    };
    view! {
        div(class="two-col") {
            section(class="panel") { h2 { "Directed requests" } (d) }
            section(class="panel") { h2 { "Against other DVMs" } (c) }
        }
    }
}

fn competitors_panel(perf: Option<std::rc::Rc<Performance>>, d: &DvmStats, r: TimeRange) -> View {
    let Some(perf) = perf else { return view! {} };
    let mine: Vec<u16> = d.kinds.iter().map(|k| k.kind).collect();
    let blocks: Vec<View> = mine
        .into_iter()
        .map(|k| {
            let mut others: Vec<PerformanceRow> = perf
                .rows
                .iter()
                .filter(|x| x.kind == Some(k) && x.dvm_id.as_deref() != Some(d.dvm_id.as_str()))
                .cloned()
                .collect();
            others.sort_by_key(|o| std::cmp::Reverse(o.jobs));
            others.truncate(10);
            let list = if others.is_empty() {
                view! { span(class="muted") { "no other DVM answered this kind" } }
            } else {
                let items: Vec<View> = others
                    .into_iter()
                    .map(|o| {
                        let dvm = DvmRef {
                            id: o.dvm_id.clone().unwrap_or_default(),
                            name: o.dvm_name.clone(),
                            picture: None,
                        };
                        let note = format!(
                            " {} job{} · {} success",
                            thousands(o.jobs),
                            if o.jobs == 1 { "" } else { "s" },
                            percent(o.success_rate)
                        );
                        view! { li { DvmLink(dvm=dvm, range=r) span(class="muted") { (note) } } }
                    })
                    .collect();
                view! { ul(class="competitors") { (items) } }
            };
            view! { div(class="competitor-kind") { h3 { KindLink(kind=k, range=r) } (list) } }
        })
        .collect();
    if blocks.is_empty() {
        return view! {};
    }
    view! { section(class="panel") { h2 { "Competitors on its kinds" } (blocks) } }
}
