//! The console's view of the events stream (backlog per consumer group and consumer, the oldest
//! pending entry) and of the dead letters: counted per reason, listed a page at a time, and
//! replayed or discarded by reason or one by one. Discarding asks for a second click.

use std::collections::BTreeMap;

use serde::Deserialize;
use sycamore::futures::spawn_local_scoped;
use sycamore::prelude::*;

use super::Console;
use crate::api;
use crate::components::Empty;
use crate::format::{clip, thousands};

/// Dead letters per page.
pub const PAGE_SIZE: u32 = 25;

#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct StreamView {
    pub length: u64,
    #[serde(default)]
    pub shards: Vec<ShardView>,
    pub dead_letters: u64,
}

/// One shard of the events stream (the whole stream when it is not split).
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct ShardView {
    pub stream: String,
    pub length: u64,
    #[serde(default)]
    pub groups: Vec<GroupView>,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct GroupView {
    pub name: String,
    pub pending: u64,
    pub lag: Option<u64>,
    #[serde(default)]
    pub consumer_list: Vec<Consumer>,
    pub oldest_pending: Option<Oldest>,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct Consumer {
    pub name: String,
    pub pending: u64,
    pub idle_ms: u64,
    pub inactive_ms: Option<u64>,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct Oldest {
    pub id: String,
    pub consumer: String,
    pub idle_ms: u64,
    pub deliveries: u64,
    pub age_ms: u64,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct LetterPage {
    pub total: u64,
    #[serde(default)]
    pub letters: Vec<Letter>,
    pub next_after: Option<String>,
    #[serde(default)]
    pub by_reason: BTreeMap<String, u64>,
    pub summary_read: u64,
    pub summary_complete: bool,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct Letter {
    pub id: String,
    pub reason: String,
    pub dead_lettered_at: String,
    pub relay: Option<String>,
    pub event_id: Option<String>,
    pub kind: Option<u64>,
    #[serde(default)]
    pub sightings: bool,
    pub replayable: bool,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
struct Summary {
    matched: u64,
    changed: u64,
    not_replayable: u64,
}

/// The dead-letter panel's own state, kept outside the panel so a refresh keeps it.
#[derive(Clone, Copy)]
pub struct LetterState {
    /// The page starts after this id (`None`: the oldest).
    pub after: Signal<Option<String>>,
    /// The discard button waiting for its confirming click.
    armed: Signal<Option<String>>,
    /// What the last replay or discard did, or why it failed.
    result: Signal<Option<(bool, String)>>,
}

impl LetterState {
    pub fn new() -> Self {
        LetterState {
            after: create_signal(None),
            armed: create_signal(None),
            result: create_signal(None),
        }
    }
}

fn millis(ms: u64) -> String {
    crate::format::duration(Some(ms as f64 / 1000.0))
}

pub fn stream_panel(s: &StreamView) -> View {
    let split = s.shards.len() > 1;
    let shards: Vec<View> = s
        .shards
        .iter()
        .enumerate()
        .map(|(i, shard)| shard_block(i, shard, split))
        .collect();
    let line = if split {
        format!(
            "{} entries over {} shards; {} dead letters.",
            thousands(s.length),
            s.shards.len(),
            thousands(s.dead_letters)
        )
    } else {
        let name = s.shards.first().map_or("The stream", |sh| sh.stream.as_str());
        format!(
            "{name} holds {} entries; {} dead letters.",
            thousands(s.length),
            thousands(s.dead_letters)
        )
    };
    view! {
        section(class="panel", data-admin-stream="") {
            h2 { "Stream" }
            p(class="muted") { (line) }
            (shards)
        }
    }
}

/// One shard's groups; under a heading of its own when the stream is split.
fn shard_block(index: usize, s: &ShardView, split: bool) -> View {
    let groups: Vec<View> = s
        .groups
        .iter()
        .map(|g| {
            let consumers: Vec<View> = g
                .consumer_list
                .iter()
                .map(|c| {
                    let (name, key) = (c.name.clone(), c.name.clone());
                    let inactive = c.inactive_ms.map_or_else(|| "–".to_owned(), millis);
                    let (pending, idle) = (thousands(c.pending), millis(c.idle_ms));
                    view! {
                        tr(data-consumer=key) {
                            td { code { (name) } }
                            td(class="num", data-col="pending") { (pending) }
                            td(class="num") { (idle) }
                            td(class="num") { (inactive) }
                        }
                    }
                })
                .collect();
            let oldest = match &g.oldest_pending {
                Some(o) => {
                    let text = format!(
                        "oldest pending {} (appended {} ago) held by {} for {}, delivered {}×",
                        o.id,
                        millis(o.age_ms),
                        o.consumer,
                        millis(o.idle_ms),
                        o.deliveries
                    );
                    view! { p(class="muted", data-oldest-pending="") { (text) } }
                }
                None => view! { p(class="muted", data-oldest-pending="") { "Nothing pending." } },
            };
            let head = format!(
                "Group {} · {} pending · {} not yet delivered",
                g.name,
                thousands(g.pending),
                g.lag.map_or_else(|| "–".to_owned(), thousands)
            );
            let key = g.name.clone();
            let table = if g.consumer_list.is_empty() {
                view! { Empty(message="No consumer has joined this group.".to_owned()) }
            } else {
                view! {
                    div(class="table-wrap") { table(class="data") {
                        thead { tr {
                            th(scope="col") { "Consumer" }
                            th(scope="col", class="num") { "Pending" }
                            th(scope="col", class="num") { "Idle" }
                            th(scope="col", class="num") { "Since last read" }
                        } }
                        tbody { (consumers) }
                    } }
                }
            };
            // Under a shard's own heading when the stream is split.
            let title = if split {
                view! { h4 { (head) } }
            } else {
                view! { h3 { (head) } }
            };
            view! { div(data-group=key) { (title) (table) (oldest) } }
        })
        .collect();
    let groups = if groups.is_empty() {
        view! { Empty(message="No consumer group yet: no ingester has started.".to_owned()) }
    } else {
        View::from(groups)
    };
    let key = s.stream.clone();
    if !split {
        return view! { div(data-shard=key) { (groups) } };
    }
    let head = format!("Shard {index} · {} entries · ", thousands(s.length));
    let name = s.stream.clone();
    view! {
        div(class="shard", data-shard=key) {
            h3 { (head) code(class="muted") { (name) } }
            (groups)
        }
    }
}

/// Runs a replay or discard and reloads the console.
fn act(
    token: Signal<Option<String>>,
    reload: Signal<u32>,
    st: LetterState,
    url: &'static str,
    body: serde_json::Value,
) {
    let Some(t) = token.get_clone_untracked() else {
        return;
    };
    st.armed.set(None);
    spawn_local_scoped(async move {
        let verb = if url == api::ADMIN_REPLAY {
            "replayed"
        } else {
            "discarded"
        };
        match api::admin::<Summary>("POST", url, &t, Some(body.to_string())).await {
            Ok(s) => {
                let mut text = format!(
                    "{} {verb} of {} matched.",
                    thousands(s.changed),
                    thousands(s.matched)
                );
                if s.not_replayable > 0 {
                    text.push_str(&format!(
                        " {} hold no event (trimmed before they were read) and stay.",
                        thousands(s.not_replayable)
                    ));
                }
                st.result.set(Some((true, text)));
            }
            Err(e) => st.result.set(Some((false, e.describe()))),
        }
        reload.update(|n| *n += 1);
    });
}

/// Replay and discard buttons for one selection; discard needs a second click.
fn buttons(
    token: Signal<Option<String>>,
    reload: Signal<u32>,
    st: LetterState,
    key: String,
    selection: serde_json::Value,
    can_replay: bool,
) -> View {
    let replay_body = selection.clone();
    let replay = move |_| act(token, reload, st, api::ADMIN_REPLAY, replay_body.clone());
    let armed_key = key.clone();
    let discard = move |_| {
        if st.armed.get_clone_untracked().as_deref() == Some(armed_key.as_str()) {
            act(token, reload, st, api::ADMIN_DISCARD, selection.clone());
        } else {
            st.armed.set(Some(armed_key.clone()));
        }
    };
    let is_armed = create_selector(move || st.armed.with(|a| a.as_deref() == Some(key.as_str())));
    view! {
        (if can_replay {
            view! { button(class="btn small", data-replay="", on:click=replay) { "Replay" } " " }
        } else {
            view! {}
        })
        button(class=move || if is_armed.get() { "btn small danger" } else { "btn small" }, data-discard="",
            data-armed=move || is_armed.get().to_string(), on:click=discard) {
            (move || if is_armed.get() { "Confirm discard" } else { "Discard" })
        }
    }
}

pub fn letters_panel(
    console: Signal<Option<Console>>,
    token: Signal<Option<String>>,
    reload: Signal<u32>,
    st: LetterState,
) -> View {
    let summary = move || {
        let Some(c) = console.get_clone() else {
            return view! {};
        };
        let page = c.letters;
        if page.total == 0 {
            return view! { Empty(message="No dead letters: every entry so far was stored.".to_owned()) };
        }
        let rows: Vec<View> = page
            .by_reason
            .iter()
            .map(|(reason, n)| {
                let shown = clip(reason, 160);
                let body = serde_json::json!({ "reason": reason });
                let key = format!("reason:{reason}");
                let b = buttons(token, reload, st, key.clone(), body, true);
                let n = thousands(*n);
                view! {
                    tr(data-reason=key) {
                        td { (shown) }
                        td(class="num", data-col="count") { (n) }
                        td(class="actions") { (b) }
                    }
                }
            })
            .collect();
        let note = if page.summary_complete {
            format!("{} dead letters, by reason:", thousands(page.total))
        } else {
            format!(
                "{} dead letters; the oldest {} by reason:",
                thousands(page.total),
                thousands(page.summary_read)
            )
        };
        view! {
            p(class="muted", data-dlq-total=page.total.to_string()) { (note) }
            div(class="table-wrap") { table(class="data", data-dlq-reasons="") {
                thead { tr {
                    th(scope="col") { "Reason" }
                    th(scope="col", class="num") { "Letters" }
                    th(scope="col") { "" }
                } }
                tbody { (rows) }
            } }
        }
    };
    let list = move || {
        let Some(c) = console.get_clone() else {
            return view! {};
        };
        let page = c.letters;
        if page.letters.is_empty() {
            return view! {};
        }
        let rows: Vec<View> = page
            .letters
            .iter()
            .map(|l| letter_row(l, token, reload, st))
            .collect();
        let next = page.next_after.clone();
        let has_next = next.is_some();
        let on_first = st.after.with(Option::is_none);
        let heading = format!("Letters, oldest first ({} per page)", PAGE_SIZE);
        view! {
            h3 { (heading) }
            div(class="table-wrap") { table(class="data", data-dlq-letters="") {
                thead { tr {
                    th(scope="col") { "Dead-lettered (UTC)" }
                    th(scope="col") { "Entry" }
                    th(scope="col") { "Relay" }
                    th(scope="col") { "Reason" }
                    th(scope="col") { "" }
                } }
                tbody { (rows) }
            } }
            div(class="toolbar") {
                button(class="btn small", disabled=on_first, data-dlq-first="", on:click=move |_| st.after.set(None)) { "Oldest" }
                button(class="btn small", disabled=!has_next, data-dlq-next="",
                    on:click=move |_| st.after.set(next.clone())) { "Next page" }
            }
        }
    };
    let result = move || {
        st.result.get_clone().map(|(ok, text)| {
            if ok {
                view! { p(class="muted", role="status", data-dlq-result="") { (text) } }
            } else {
                view! { p(class="form-error", role="alert", data-dlq-result="", data-admin-error="") { (text) } }
            }
        }).unwrap_or_default()
    };
    view! {
        section(class="panel", data-admin-dead-letters="") {
            h2 { "Dead letters" }
            p(class="muted") {
                "Entries that could not be stored, with why. Fix the cause first, then replay: an event replayed twice is stored once. The same is "
                code { "dvmdash dlq" } " from a shell."
            }
            (result)
            (summary)
            (list)
        }
    }
}

fn letter_row(l: &Letter, token: Signal<Option<String>>, reload: Signal<u32>, st: LetterState) -> View {
    let what = match (&l.event_id, l.kind, l.sightings) {
        (Some(id), Some(k), _) => format!("{}… kind {k}", &id[..id.len().min(12)]),
        (_, _, true) => "sightings".to_owned(),
        (None, Some(k), _) => format!("kind {k}"),
        _ => "not an event".to_owned(),
    };
    let relay = l
        .relay
        .as_deref()
        .map(|r| clip(r, 40))
        .unwrap_or_else(|| "–".to_owned());
    let reason = clip(&l.reason, 120);
    let title = l.reason.clone();
    let at = crate::format::utc(&l.dead_lettered_at);
    let key = l.id.clone();
    let b = buttons(
        token,
        reload,
        st,
        format!("id:{}", l.id),
        serde_json::json!({ "ids": [l.id] }),
        l.replayable,
    );
    view! {
        tr(data-letter=key) {
            td(class="muted") { (at) }
            td { code { (what) } }
            td { code { (relay) } }
            td(title=title) { (reason) }
            td(class="actions") { (b) }
        }
    }
}
