//! Shared pieces of every page. All of them are pure rendering (no browser API), so they are
//! tested on the host with Sycamore's `render_to_string`. Names and texts from events are
//! attacker-controlled: they only ever become text nodes or attribute values, never markup.

pub mod chart;

use dvmdash_core::dto::{Liveness, PaymentRow, TimeRange};
use sycamore::prelude::*;

use crate::format::{clip, initials, kind_label, safe_image, short_npub};

/// At most this many characters of a name are shown (the full name is in the hover title).
const NAME_MAX: usize = 60;

/// `npub1…` of a hex pubkey, or the input when it is not one.
pub fn npub_of(hex: &str) -> String {
    dvmdash_core::nip19::parse_pubkey(hex)
        .map(|pk| dvmdash_core::nip19::npub(&pk))
        .unwrap_or_else(|| hex.to_owned())
}

/// A headline number with its label (`data-stat` names it for tests and scripts).
#[component(inline_props)]
pub fn StatCard<F: Fn() -> String + 'static>(
    label: &'static str,
    stat: &'static str,
    value: F,
    #[prop(default)] note: String,
) -> View {
    let note = if note.is_empty() {
        view! {}
    } else {
        view! { div(class="note") { (note) } }
    };
    view! {
        div(class="card") {
            div(class="label") { (label) }
            div(class="value", data-stat=stat) { (value) }
            (note)
        }
    }
}

/// A DVM's picture, or its initials on a disc when it has none or its picture does not load
/// (profile pictures are often dead links or on hosts the reader's network blocks).
pub fn avatar(name: Option<&str>, picture: Option<&str>, class: &'static str) -> View {
    let text = initials(name);
    let disc = move || {
        let class = format!("{class} initials");
        let text = text.clone();
        view! { span(class=class, aria-hidden="true") { (text) } }
    };
    match safe_image(picture).map(str::to_owned) {
        Some(src) => {
            let broken = create_signal(false);
            view! {
                (move || if broken.get() {
                    disc()
                } else {
                    let src = src.clone();
                    view! {
                        img(class=class, src=src, alt="", loading="lazy", referrerpolicy="no-referrer",
                            on:error=move |_| broken.set(true))
                    }
                })
            }
        }
        None => disc(),
    }
}

/// Everything a mention of a DVM needs.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct DvmRef {
    /// Hex pubkey.
    pub id: String,
    pub name: Option<String>,
    pub picture: Option<String>,
}

/// A DVM mention: avatar and name when known, else its shortened npub (full on hover); always a
/// link to its page, carrying the current window.
#[component(inline_props)]
pub fn DvmLink(dvm: DvmRef, range: TimeRange) -> View {
    let npub = npub_of(&dvm.id);
    let name = dvm
        .name
        .as_deref()
        .map(str::trim)
        .filter(|n| !n.is_empty())
        .map(str::to_owned);
    let (text, title) = match &name {
        Some(n) => (clip(n, NAME_MAX), format!("{n}\n{npub}")),
        None => (short_npub(&npub), npub.clone()),
    };
    let href = format!("/dvm-stats/{npub}?timeRange={}", range.as_str());
    let class = if name.is_some() {
        "dvm-link"
    } else {
        "dvm-link anon"
    };
    let face = avatar(name.as_deref(), dvm.picture.as_deref(), "avatar sm");
    let id = dvm.id;
    view! {
        a(class=class, href=href, title=title, data-dvm=id) {
            (face)
            span(class="dvm-name") { (text) }
        }
    }
}

/// A kind mention linking to its page: `5300 · Nostr Content Discovery`.
#[component(inline_props)]
pub fn KindLink(kind: u16, range: TimeRange) -> View {
    let href = format!("/kind-stats/{kind}?timeRange={}", range.as_str());
    let label = kind_label(kind);
    let data = kind.to_string();
    view! { a(class="kind-link", href=href, data-kind=data) { (label) } }
}

/// Kinds as small linked chips; `class` tells served from announced.
#[component(inline_props)]
pub fn KindChips(kinds: Vec<u16>, range: TimeRange, #[prop(default = "chip")] class: &'static str) -> View {
    if kinds.is_empty() {
        return view! { span(class="chips-none muted") { "none" } };
    }
    let chips: Vec<View> = kinds
        .into_iter()
        .map(|k| {
            let href = format!("/kind-stats/{k}?timeRange={}", range.as_str());
            let title = kind_label(k);
            let text = k.to_string();
            view! { a(class=class, href=href, title=title) { (text) } }
        })
        .collect();
    view! { span(class="chips") { (chips) } }
}

/// Grey placeholder blocks while the first answer loads.
#[component(inline_props)]
pub fn Skeleton(#[prop(default = 3)] lines: usize) -> View {
    let blocks: Vec<View> = (0..lines).map(|_| view! { div(class="skeleton") }).collect();
    view! { div(class="skeletons", aria-busy="true", aria-label="Loading") { (blocks) } }
}

/// What failed, in a sentence.
#[component(inline_props)]
pub fn ErrorBanner(message: String) -> View {
    view! { div(class="banner error", role="alert") { (message) } }
}

/// Why there is nothing to show.
#[component(inline_props)]
pub fn Empty(message: String) -> View {
    view! { p(class="empty") { (message) } }
}

/// `1–24 of 310` with previous and next buttons.
#[component(inline_props)]
pub fn Pager<P: Fn(u64) + Clone + 'static>(page: u64, page_size: u64, total: u64, go: P) -> View {
    let first = if total == 0 { 0 } else { page * page_size + 1 };
    let last = ((page + 1) * page_size).min(total);
    let has_prev = page > 0;
    let has_next = last < total;
    let (prev, next) = (go.clone(), go);
    let text = format!("{first}–{last} of {}", crate::format::thousands(total));
    view! {
        nav(class="pager", aria-label="Pages") {
            button(class="btn", disabled=!has_prev, on:click=move |_| prev(page.saturating_sub(1))) { "‹ Previous" }
            span(class="pager-text", data-stat="list_range") { (text) }
            button(class="btn", disabled=!has_next, on:click=move |_| next(page + 1)) { "Next ›" }
        }
    }
}

/// A service's status as a coloured badge, explained on hover.
pub fn status_badge(s: Liveness) -> View {
    let (class, text, title) = match s {
        Liveness::Alive => (
            "badge ok",
            "alive",
            "a heartbeat in the last 15 minutes or a result or feedback within the alive window",
        ),
        Liveness::Idle => (
            "badge",
            "idle",
            "no heartbeat or result lately, but within the last 7 days",
        ),
        Liveness::Silent => ("badge warn", "silent", "no heartbeat or result for 7 days"),
    };
    view! { span(class=class, title=title, data-status=text) { (text) } }
}

/// An uptime percentage (0-100) with one decimal; a dash when there is none yet.
pub fn uptime(p: Option<f64>) -> String {
    crate::format::percent(p.map(|p| p / 100.0))
}

/// A DVM's or a kind's payments in the window: zaps received and what was asked. `what` names the
/// subject in the empty state ("this DVM", "this kind").
pub fn payments_panel(row: Option<PaymentRow>, what: &str) -> View {
    use crate::format::{msat, thousands};
    let body = match row {
        Some(p) => {
            let zaps = format!(
                "{} from {} {}",
                thousands(p.zaps),
                thousands(p.senders),
                if p.senders == 1 { "sender" } else { "senders" }
            );
            let asked = format!("{} in {} jobs", msat(p.asked_msat), thousands(p.jobs_asked));
            view! {
                dl(class="facts") {
                    div { dt { "Paid (zaps)" } dd(data-stat="paid_msat") { (msat(p.paid_msat)) } }
                    div { dt { "Zaps" } dd(data-stat="zaps") { (zaps) } }
                    div { dt { "Jobs paid for" } dd(data-stat="jobs_paid") { (thousands(p.jobs_paid)) } }
                    div { dt(title="payment-required feedback and amount tags on results") { "Asked for (all paths)" } dd(data-stat="asked_msat") { (asked) } }
                }
            }
        }
        None => {
            let message = format!("No zap paid {what} and nobody asked for payment in this window.");
            view! { Empty(message=message) }
        }
    };
    view! { section(class="panel", data-payments="") { h2 { "Payments" } (body) } }
}

#[cfg(test)]
mod tests {
    use super::*;

    const HEX: &str = "79be667ef9dcbbac55a06295ce870b07029bfcdb2dce28d959f2815b16f81798";

    #[test]
    fn dvm_link_shows_name_or_npub_and_escapes() {
        let html = sycamore::render_to_string(|| {
            view! {
                DvmLink(dvm=DvmRef { id: HEX.into(), name: Some("<script>alert(1)</script>".into()), picture: None }, range=TimeRange::Week)
            }
        });
        assert!(!html.contains("<script>"), "{html}");
        assert!(html.contains("&lt;script&gt;alert(1)&lt;/script&gt;"), "{html}");
        assert!(html.contains("href=\"/dvm-stats/npub1"), "{html}");
        assert!(html.contains("timeRange=7d"));
        let anon = sycamore::render_to_string(|| {
            view! { DvmLink(dvm=DvmRef { id: HEX.into(), name: None, picture: None }, range=TimeRange::Day) }
        });
        let npub = npub_of(HEX);
        assert!(anon.contains(&short_npub(&npub)), "{anon}");
        assert!(anon.contains(&format!("title=\"{npub}\"")), "{anon}");
    }

    #[test]
    fn avatars_only_load_web_images() {
        let html =
            sycamore::render_to_string(|| avatar(Some("Vertex DVM"), Some("javascript:alert(1)"), "avatar"));
        assert!(!html.contains("javascript"), "{html}");
        assert!(html.contains(">VD<"), "{html}");
        let img = sycamore::render_to_string(|| avatar(None, Some("https://x.y/a.png"), "avatar"));
        assert!(img.contains("src=\"https://x.y/a.png\""), "{img}");
    }

    #[test]
    fn cards_chips_and_pager() {
        let card = sycamore::render_to_string(|| {
            view! { StatCard(label="Total Job Requests", stat="total_requests", value=|| "1,234".to_owned(), note="75.0% completion rate".to_owned()) }
        });
        assert!(card.contains("data-stat=\"total_requests\""), "{card}");
        assert!(
            card.contains("1,234") && card.contains("75.0% completion rate"),
            "{card}"
        );
        let chips =
            sycamore::render_to_string(|| view! { KindChips(kinds=vec![5300, 5050], range=TimeRange::Day) });
        assert!(
            chips.contains("href=\"/kind-stats/5300?timeRange=24h\""),
            "{chips}"
        );
        assert!(
            chips.contains("title=\"5300 · Nostr Content Discovery\""),
            "{chips}"
        );
        let none = sycamore::render_to_string(|| view! { KindChips(kinds=vec![], range=TimeRange::Day) });
        assert!(none.contains("none"));
        let pager = sycamore::render_to_string(|| view! { Pager(page=1, page_size=24, total=50, go=|_| ()) });
        assert!(pager.contains("25–48 of 50"), "{pager}");
        let last = sycamore::render_to_string(|| view! { Pager(page=2, page_size=24, total=50, go=|_| ()) });
        assert!(last.contains("49–50 of 50"), "{last}");
        let link = sycamore::render_to_string(|| view! { KindLink(kind=5999, range=TimeRange::Hour) });
        assert!(link.contains("/kind-stats/5999?timeRange=1h"), "{link}");
    }
}
