//! The dashboard page: summary cards and network activity for the chosen window, refreshed live.
//! The window lives in the URL (`?timeRange=24h`), so links and reloads keep it.

use dvmdash_core::dto::{GlobalPoint, GlobalStats, TimeRange};
use sycamore::futures::spawn_local_scoped;
use sycamore::prelude::*;

use crate::api;
use crate::format::{bucket_label, completion_rate, short_key, thousands};

/// How often the numbers refresh.
const REFRESH_MS: u32 = 5_000;

fn range_from_url() -> TimeRange {
    web_sys::window()
        .and_then(|w| w.location().search().ok())
        .and_then(|q| {
            q.trim_start_matches('?')
                .split('&')
                .find_map(|kv| kv.strip_prefix("timeRange=").and_then(TimeRange::parse))
        })
        .unwrap_or(TimeRange::Day)
}

fn range_to_url(range: TimeRange) {
    if let Some(history) = web_sys::window().and_then(|w| w.history().ok()) {
        let _ = history.replace_state_with_url(
            &wasm_bindgen::JsValue::NULL,
            "",
            Some(&format!("?timeRange={}", range.as_str())),
        );
    }
}

#[component]
pub fn App() -> View {
    let range = create_signal(range_from_url());
    let stats: Signal<Option<GlobalStats>> = create_signal(None);
    let error: Signal<Option<String>> = create_signal(None);

    let load = move || {
        spawn_local_scoped(async move {
            let asked = range.get();
            let result = api::global_stats(asked).await;
            // A slow answer for a window the user already left must not overwrite the new one.
            if range.get() != asked {
                return;
            }
            match result {
                Ok(s) => {
                    stats.set(Some(s));
                    error.set(None);
                }
                Err(e) => error.set(Some(e)),
            }
        });
    };
    spawn_local_scoped(async move {
        loop {
            load();
            gloo_timers::future::TimeoutFuture::new(REFRESH_MS).await;
        }
    });
    let select = move |r: TimeRange| {
        if range.get() != r {
            range.set(r);
            range_to_url(r);
            stats.set(None);
            load();
        }
    };

    let tabs: Vec<View> = TimeRange::ALL
        .iter()
        .map(|&r| {
            view! {
                button(
                    class=move || if range.get() == r { "tab active" } else { "tab" },
                    on:click=move |_| select(r),
                ) { (r.as_str()) }
            }
        })
        .collect();

    let num = move |f: fn(&GlobalStats) -> u64| {
        move || stats.with(|s| s.as_ref().map(|s| thousands(f(s))).unwrap_or_else(|| "…".into()))
    };
    let text = move |f: fn(&GlobalStats) -> Option<String>| {
        move || {
            stats.with(|s| {
                s.as_ref()
                    .map(|s| f(s).unwrap_or_else(|| "–".into()))
                    .unwrap_or_else(|| "…".into())
            })
        }
    };

    view! {
        header(class="top") {
            h1 { "dvmdash" }
            span(class="subtitle") { "Nostr Data Vending Machine activity, live" }
        }
        nav(class="tabs") { (tabs) }
        (move || error.get_clone().map(|e| view! { p(class="error", role="alert") { "Cannot load statistics: " (e) } }))
        section(class="cards") {
            Card(label="Total Job Requests", stat="total_requests", value=num(|s| s.total_requests))
            div(class="card") {
                div(class="label") { "Total Job Responses" }
                div(class="value", data-stat="total_responses") { (num(|s| s.total_responses)) }
                div(class="note") {
                    (move || stats.with(|s| s.as_ref().map(|s| format!("{} completion rate", completion_rate(s.total_requests, s.total_responses))).unwrap_or_default()))
                }
            }
            Card(label="Job Feedback", stat="total_feedback", value=num(|s| s.total_feedback))
            Card(label="Unique Users", stat="unique_users", value=num(|s| s.unique_users))
            Card(label="Unique DVMs", stat="unique_dvms", value=num(|s| s.unique_dvms))
            Card(label="Unique Kinds", stat="unique_kinds", value=num(|s| s.unique_kinds))
            Card(label="Most Popular DVM", stat="popular_dvm", value=text(|s| s.popular_dvm.as_deref().map(short_key)))
            Card(label="Most Requested Kind", stat="popular_kind", value=text(|s| s.popular_kind.map(|k| k.to_string())))
            Card(label="Most Competitive Kind", stat="competitive_kind", value=text(|s| s.competitive_kind.map(|k| k.to_string())))
        }
        section(class="chart") {
            h2 { "Network activity" }
            (move || {
                let long = matches!(range.get(), TimeRange::Week | TimeRange::Month);
                // Clone out first: building views inside `with` would create reactive nodes while the
                // signal is borrowed, which panics.
                stats.get_clone().map(|s| chart(&s.time_series, long))
            })
            p(class="legend") {
                span(class="swatch requests") {} "requests  "
                span(class="swatch responses") {} "responses (UTC)"
            }
        }
        footer {
            (move || stats.with(|s| s.as_ref().map(|s| format!("Window {} to {}, computed {}", s.period_start, s.period_end, s.timestamp)).unwrap_or_default()))
        }
    }
}

#[component(inline_props)]
fn Card<F: Fn() -> String + 'static>(label: &'static str, stat: &'static str, value: F) -> View {
    view! {
        div(class="card") {
            div(class="label") { (label) }
            div(class="value", data-stat=stat) { (value) }
        }
    }
}

/// Paired bars of requests and responses per bucket, as SVG.
fn chart(points: &[GlobalPoint], long_window: bool) -> View {
    const W: f64 = 900.0;
    const H: f64 = 220.0;
    const PAD: f64 = 24.0;
    let max = points
        .iter()
        .map(|p| p.total_requests.max(p.total_responses))
        .max()
        .unwrap_or(0)
        .max(1) as f64;
    let n = points.len().max(1) as f64;
    let slot = (W - PAD) / n;
    let bar = (slot / 2.0 - 1.0).max(1.0);
    let mut bars: Vec<View> = Vec::new();
    let label_every = (points.len() / 8).max(1);
    for (i, p) in points.iter().enumerate() {
        let x = PAD + i as f64 * slot;
        for (j, (v, class)) in [(p.total_requests, "requests"), (p.total_responses, "responses")]
            .into_iter()
            .enumerate()
        {
            let h = (v as f64 / max) * (H - 30.0);
            let title = format!("{}: {} {}", p.time, thousands(v), class);
            bars.push(view! {
                rect(class=class, x=format!("{:.1}", x + j as f64 * (bar + 1.0)), y=format!("{:.1}", H - 20.0 - h),
                     width=format!("{bar:.1}"), height=format!("{h:.1}")) {
                    svg_title { (title) }
                }
            });
        }
        if i % label_every == 0 {
            let label = bucket_label(&p.time, long_window);
            bars.push(view! {
                text(x=format!("{:.1}", x), y=format!("{:.1}", H - 4.0), class="axis") { (label) }
            });
        }
    }
    let top = thousands(max as u64);
    view! {
        svg(viewBox=format!("0 0 {W} {H}"), class="bars", aria-label="requests and responses over time") {
            text(x="0", y="12", class="axis") { (top) }
            (bars)
        }
    }
}
