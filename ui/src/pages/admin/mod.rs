//! `/admin`: the operators' console over the admin api. Usable only with `DVMDASH_ADMIN_TOKEN`:
//! entered once, kept in this tab's session storage (never a cookie, so no request can carry it
//! without this page) and sent as a bearer header. A refused token says so and is forgotten.
//! Relays can be added, removed and prioritized (the api's validation errors are shown inline);
//! dead letters can be replayed or discarded ([`pipeline`]). Collectors, their assignments, the
//! coordinator's leader, the stream backlog and ClickHouse's tables ([`storage`]) are read-only.
//! Nothing here runs queries or controls processes.

mod pipeline;
mod storage;

use serde::Deserialize;
use sycamore::futures::spawn_local_scoped;
use sycamore::prelude::*;

use crate::api::{self, ApiError};
use crate::app::Ctx;
use crate::components::Empty;
use crate::format::{clip, thousands};
use pipeline::{LetterPage, LetterState, StreamView};
use storage::StorageView;

const TOKEN_KEY: &str = "dvmdash-admin-token";

#[derive(Debug, Clone, PartialEq, Deserialize)]
struct Status {
    stream_length: u64,
    pending: u64,
    lag: Option<u64>,
    dead_letters: u64,
    collectors: u64,
    relays: u64,
    #[serde(default)]
    unwatched_relays: Vec<String>,
    coordinator_leader: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
struct Relay {
    url: String,
    #[serde(default)]
    priority: String,
    #[serde(default)]
    added_by: String,
    #[serde(default)]
    collectors: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
struct Collector {
    id: String,
    heartbeat_age_ms: Option<u64>,
    #[serde(default)]
    assigned: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
struct AuditEntry {
    at: String,
    actor: String,
    action: String,
    #[serde(alias = "relay")]
    target: String,
    detail: String,
}

/// Everything the console shows, read together.
#[derive(Debug, Clone, PartialEq)]
struct Console {
    status: Status,
    relays: Vec<Relay>,
    collectors: Vec<Collector>,
    audit: Vec<AuditEntry>,
    stream: StreamView,
    letters: LetterPage,
    storage: StorageView,
}

async fn load(token: &str, after: Option<&str>) -> Result<Console, ApiError> {
    let letters = api::admin_dead_letters(after, pipeline::PAGE_SIZE);
    Ok(Console {
        status: api::admin("GET", api::ADMIN_STATUS, token, None).await?,
        relays: api::admin("GET", api::ADMIN_RELAYS, token, None).await?,
        collectors: api::admin("GET", api::ADMIN_COLLECTORS, token, None).await?,
        audit: api::admin("GET", api::ADMIN_AUDIT, token, None).await?,
        stream: api::admin("GET", api::ADMIN_STREAM, token, None).await?,
        letters: api::admin("GET", &letters, token, None).await?,
        storage: api::admin("GET", api::ADMIN_CLICKHOUSE, token, None).await?,
    })
}

#[component]
pub fn Admin() -> View {
    let ctx = use_context::<Ctx>();
    crate::browser::set_title("Admin: dvmdash");
    let token = create_signal(crate::browser::session_get(TOKEN_KEY));
    let login_error = create_signal(None::<String>);
    let console = create_signal(None::<Console>);
    let load_error = create_signal(None::<String>);
    let action_error = create_signal(None::<String>);
    let reload = create_signal(0u32);
    // The add form's fields live here, not in the panel: the console re-renders on every refresh
    // and must not wipe what the operator is typing.
    let form = AddForm {
        url: create_signal(String::new()),
        priority: create_signal("normal".to_owned()),
    };
    let letters = LetterState::new();

    let forget = move |why: Option<String>| {
        crate::browser::session_remove(TOKEN_KEY);
        token.set(None);
        console.set(None);
        login_error.set(why);
    };
    create_effect(move || {
        ctx.tick.track();
        reload.track();
        let after = letters.after.get_clone();
        let Some(t) = token.get_clone() else { return };
        spawn_local_scoped(async move {
            match load(&t, after.as_deref()).await {
                Ok(c) => {
                    if console.with_untracked(|old| old.as_ref() != Some(&c)) {
                        console.set(Some(c));
                    }
                    load_error.set(None);
                }
                Err(e) if e.status == Some(401) => forget(Some(
                    "That token was refused (401): check DVMDASH_ADMIN_TOKEN.".to_owned(),
                )),
                Err(e) => load_error.set(Some(e.describe())),
            }
        });
    });

    let body = move || {
        if token.with(Option::is_none) {
            return login_form(token, login_error);
        }
        let act = Actions {
            token,
            reload,
            error: action_error,
        };
        // Each part follows the console on its own; the add form is built once per token, so a
        // refresh never takes the operator's focus or typing away.
        let loaded = create_selector(move || console.with(Option::is_some));
        // Views are built from a clone: building them inside `with` would create reactive nodes
        // while the signal is borrowed (a panic in Sycamore).
        let part =
            move |f: fn(&Console) -> View| move || console.get_clone().map(|c| f(&c)).unwrap_or_default();
        view! {
            div(class="toolbar") {
                button(class="btn small", data-admin-lock="", on:click=move |_| forget(None)) { "Forget the token" }
            }
            (move || if loaded.get() { view! {} } else { view! { p(class="muted") { "Checking the token…" } } })
            (part(|c| status_panel(&c.status)))
            (move || if loaded.get() { relays_panel(console, act, form) } else { view! {} })
            (part(|c| collectors_panel(&c.collectors)))
            (part(|c| pipeline::stream_panel(&c.stream)))
            (move || if loaded.get() { pipeline::letters_panel(console, token, reload, letters) } else { view! {} })
            (part(|c| storage::storage_panel(&c.storage)))
            (part(|c| audit_panel(&c.audit)))
        }
    };
    view! {
        div(data-page="admin") {
            div(class="page-head") {
                h1 { "Admin" }
                p(class="muted") { "The relay registry, collectors, the stream and its dead letters, and ClickHouse's tables, behind the admin token. Changes only the relay registry and the dead letters." }
            }
            (move || load_error.get_clone().map(|e| view! { div(class="banner error", role="alert") { (e) } }).unwrap_or_default())
            (body)
        }
    }
}

fn login_form(token: Signal<Option<String>>, error: Signal<Option<String>>) -> View {
    let typed = create_signal(String::new());
    let submit = move |e: web_sys::SubmitEvent| {
        e.prevent_default();
        let t = typed.get_clone_untracked().trim().to_owned();
        if t.is_empty() {
            error.set(Some("Enter the admin token.".to_owned()));
            return;
        }
        crate::browser::session_set(TOKEN_KEY, &t);
        error.set(None);
        token.set(Some(t));
    };
    view! {
        section(class="panel", data-admin-login="") {
            h2 { "Admin token" }
            form(on:submit=submit) {
                label(r#for="admin-token") { "DVMDASH_ADMIN_TOKEN" }
                div(class="toolbar") {
                    input(id="admin-token", class="search", r#type="password", autocomplete="off",
                        maxlength="512", bind:value=typed)
                    button(class="btn", r#type="submit") { "Unlock" }
                }
            }
            p(class="muted") { "Kept in this tab only (session storage) and sent as a bearer header." }
            (move || error.get_clone().map(|e| view! { p(class="form-error", role="alert", data-admin-error="") { (e) } }).unwrap_or_default())
        }
    }
}

fn status_panel(s: &Status) -> View {
    let cells = [
        ("Stream", thousands(s.stream_length), "stream_length"),
        ("Pending", thousands(s.pending), "pending"),
        (
            "Not yet delivered",
            s.lag.map_or_else(|| "–".to_owned(), thousands),
            "lag",
        ),
        ("Dead letters", thousands(s.dead_letters), "dead_letters"),
        ("Collectors", thousands(s.collectors), "collectors"),
        ("Relays", thousands(s.relays), "relays"),
    ];
    let cards: Vec<View> = cells
        .into_iter()
        .map(|(label, value, stat)| {
            view! { div(class="card") { div(class="label") { (label) } div(class="value", data-stat=stat) { (value) } } }
        })
        .collect();
    let leader = s.coordinator_leader.clone().unwrap_or_else(|| "none".to_owned());
    let unwatched = if s.unwatched_relays.is_empty() {
        "none".to_owned()
    } else {
        s.unwatched_relays.join(", ")
    };
    view! {
        section(class="cards", data-admin-status="") { (cards) }
        p(class="muted") {
            "Coordinator leader: " code(data-stat="leader") { (leader) }
            " · unwatched relays: " span(data-stat="unwatched") { (unwatched) }
        }
    }
}

/// What a registry change needs: the token, a way to reload, and where to say what went wrong.
#[derive(Clone, Copy)]
struct Actions {
    token: Signal<Option<String>>,
    reload: Signal<u32>,
    error: Signal<Option<String>>,
}

impl Actions {
    fn run(self, method: &'static str, url: String, body: Option<String>) {
        let Some(t) = self.token.get_clone_untracked() else {
            return;
        };
        spawn_local_scoped(async move {
            match api::admin::<serde_json::Value>(method, &url, &t, body).await {
                // Adding a registered relay changes nothing: say so where the operator typed it.
                Ok(v) if v["added"] == false => self.error.set(Some(format!(
                    "{} is already registered.",
                    v["url"].as_str().unwrap_or("That relay")
                ))),
                Ok(_) => self.error.set(None),
                Err(e) => self.error.set(Some(e.describe())),
            }
            self.reload.update(|n| *n += 1);
        });
    }
}

/// The add-relay form's fields.
#[derive(Clone, Copy)]
struct AddForm {
    url: Signal<String>,
    priority: Signal<String>,
}

fn relays_panel(console: Signal<Option<Console>>, act: Actions, form: AddForm) -> View {
    let (new_url, new_priority) = (form.url, form.priority);
    let add = move |e: web_sys::SubmitEvent| {
        e.prevent_default();
        let body = serde_json::json!({
            "url": new_url.get_clone_untracked().trim(),
            "priority": new_priority.get_clone_untracked(),
        });
        act.run("POST", api::ADMIN_RELAYS.to_owned(), Some(body.to_string()));
        new_url.set(String::new());
    };
    let table = move || {
        console
            .get_clone()
            .map(|c| relays_table(&c.relays, act))
            .unwrap_or_default()
    };
    view! {
        section(class="panel", data-admin-relays="") {
            h2 { "Relays" }
            (table)
            form(class="toolbar", on:submit=add, data-admin-add="") {
                input(class="search", r#type="text", placeholder="wss://relay.example.com", aria-label="Relay URL",
                    maxlength="512", bind:value=new_url)
                select(aria-label="Priority", bind:value=new_priority) {
                    option(value="normal") { "normal" }
                    option(value="high") { "high" }
                }
                button(class="btn", r#type="submit") { "Add relay" }
            }
            (move || act.error.get_clone().map(|e| view! { p(class="form-error", role="alert", data-admin-error="") { (e) } }).unwrap_or_default())
        }
    }
}

/// The registry's rows with their buttons.
fn relays_table(relays: &[Relay], act: Actions) -> View {
    let rows: Vec<View> = relays
        .iter()
        .map(|r| {
            let (url, key, title) = (r.url.clone(), r.url.clone(), r.url.clone());
            let shown = clip(&r.url, 60);
            let who = if r.collectors.is_empty() { "none".to_owned() } else { r.collectors.join(", ") };
            let high = r.priority == "high";
            let (to_remove, to_toggle) = (r.url.clone(), r.url.clone());
            let remove = move |_| act.run("DELETE", api::admin_relay(&to_remove), None);
            let toggle = move |_| {
                let body = serde_json::json!({ "url": to_toggle, "priority": if high { "normal" } else { "high" } });
                act.run("PUT", api::ADMIN_RELAYS.to_owned(), Some(body.to_string()));
            };
            let priority = r.priority.clone();
            let added_by = r.added_by.clone();
            view! {
                tr(data-admin-relay=key) {
                    td { code(title=title) { (shown) } }
                    td(data-col="priority") { (priority) }
                    td(data-col="collectors") { (who) }
                    td(class="muted") { (added_by) }
                    td {
                        button(class="btn small", on:click=toggle) { (if high { "Make normal" } else { "Make high" }) }
                        " "
                        button(class="btn small", data-remove=url, on:click=remove) { "Remove" }
                    }
                }
            }
        })
        .collect();
    if relays.is_empty() {
        view! { Empty(message="No relay is registered.".to_owned()) }
    } else {
        view! {
            div(class="table-wrap") { table(class="data") {
                thead { tr {
                    th(scope="col") { "Relay" }
                    th(scope="col") { "Priority" }
                    th(scope="col") { "Collectors" }
                    th(scope="col") { "Added by" }
                    th(scope="col") { "" }
                } }
                tbody { (rows) }
            } }
        }
    }
}

/// The latest registry changes, newest first, each with the fingerprint of the token that made it.
fn audit_panel(entries: &[AuditEntry]) -> View {
    let items: Vec<View> = entries
        .iter()
        .take(50)
        .map(|e| {
            let (at, actor, action, target, detail) = (
                crate::format::utc(&e.at),
                e.actor.clone(),
                e.action.clone(),
                clip(&e.target, 60),
                e.detail.clone(),
            );
            let key = action.clone();
            view! {
                li(data-audit=key) {
                    span(class="muted") { (at) } " · " code { (actor) } " · " strong { (action) } " "
                    code { (target) } ": " (detail)
                }
            }
        })
        .collect();
    let body = if entries.is_empty() {
        view! { Empty(message="No change was made through the admin api yet.".to_owned()) }
    } else {
        view! { ul(class="plain") { (items) } }
    };
    view! { section(class="panel", data-admin-audit="") { h2 { "Recent changes" } (body) } }
}

fn collectors_panel(collectors: &[Collector]) -> View {
    if collectors.is_empty() {
        return view! { section(class="panel", data-admin-collectors="") { h2 { "Collectors" } Empty(message="No collector is registered.".to_owned()) } };
    }
    let rows: Vec<View> = collectors
        .iter()
        .map(|c| {
            let (id, key) = (c.id.clone(), c.id.clone());
            let age = c
                .heartbeat_age_ms
                .map_or_else(|| "–".to_owned(), |ms| format!("{:.1} s", ms as f64 / 1000.0));
            let assigned = if c.assigned.is_empty() {
                "none".to_owned()
            } else {
                c.assigned.join(", ")
            };
            view! {
                tr(data-admin-collector=key) {
                    td { code { (id) } }
                    td(class="num") { (age) }
                    td(data-col="assigned") { (assigned) }
                }
            }
        })
        .collect();
    view! {
        section(class="panel", data-admin-collectors="") {
            h2 { "Collectors" }
            div(class="table-wrap") { table(class="data") {
                thead { tr {
                    th(scope="col") { "Collector" }
                    th(scope="col", class="num") { "Heartbeat age" }
                    th(scope="col") { "Assigned relays" }
                } }
                tbody { (rows) }
            } }
        }
    }
}
