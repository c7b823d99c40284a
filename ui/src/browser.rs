//! The browser APIs the UI touches, in one place: the theme (remembered in local storage,
//! defaulting to the system preference), the URL (history API) and the router integration that
//! keeps path and query in signals, page visibility, window events and the clipboard.

use sycamore::prelude::*;
use wasm_bindgen::JsCast as _;
use wasm_bindgen::prelude::*;

const THEME_KEY: &str = "dvmdash-theme";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Theme {
    Light,
    Dark,
}

impl Theme {
    pub fn as_str(self) -> &'static str {
        match self {
            Theme::Light => "light",
            Theme::Dark => "dark",
        }
    }

    pub fn other(self) -> Self {
        match self {
            Theme::Light => Theme::Dark,
            Theme::Dark => Theme::Light,
        }
    }
}

fn window() -> web_sys::Window {
    web_sys::window().expect("a browser window")
}

fn storage() -> Option<web_sys::Storage> {
    window().local_storage().ok().flatten()
}

fn session() -> Option<web_sys::Storage> {
    window().session_storage().ok().flatten()
}

/// A value kept for this tab only (the admin token).
pub fn session_get(key: &str) -> Option<String> {
    session()
        .and_then(|s| s.get_item(key).ok().flatten())
        .filter(|v| !v.is_empty())
}

pub fn session_set(key: &str, value: &str) {
    if let Some(s) = session() {
        let _ = s.set_item(key, value);
    }
}

pub fn session_remove(key: &str) {
    if let Some(s) = session() {
        let _ = s.remove_item(key);
    }
}

/// The remembered theme, else the system's preference.
pub fn initial_theme() -> Theme {
    match storage()
        .and_then(|s| s.get_item(THEME_KEY).ok().flatten())
        .as_deref()
    {
        Some("dark") => Theme::Dark,
        Some("light") => Theme::Light,
        _ => {
            let dark = window()
                .match_media("(prefers-color-scheme: dark)")
                .ok()
                .flatten()
                .is_some_and(|m| m.matches());
            if dark { Theme::Dark } else { Theme::Light }
        }
    }
}

/// Shows `theme` (the `data-theme` attribute the stylesheet reads).
pub fn apply_theme(theme: Theme) {
    if let Some(root) = window().document().and_then(|d| d.document_element()) {
        let _ = root.set_attribute("data-theme", theme.as_str());
    }
}

/// Remembers a theme the user chose.
pub fn remember_theme(theme: Theme) {
    if let Some(s) = storage() {
        let _ = s.set_item(THEME_KEY, theme.as_str());
    }
}

pub fn location_search() -> String {
    window().location().search().unwrap_or_default()
}

pub fn location_path() -> String {
    window().location().pathname().unwrap_or_else(|_| "/".into())
}

/// Unix seconds now, from the browser's clock.
pub fn now_secs() -> u64 {
    (js_sys::Date::now() / 1000.0) as u64
}

pub fn is_hidden() -> bool {
    window().document().is_some_and(|d| d.hidden())
}

/// A listener removed when dropped.
pub struct Listener {
    target: web_sys::EventTarget,
    event: &'static str,
    closure: Closure<dyn FnMut()>,
}

impl Drop for Listener {
    fn drop(&mut self) {
        let _ = self
            .target
            .remove_event_listener_with_callback(self.event, self.closure.as_ref().unchecked_ref());
    }
}

fn listen(target: web_sys::EventTarget, event: &'static str, f: impl FnMut() + 'static) -> Listener {
    let closure = Closure::<dyn FnMut()>::new(f);
    let _ = target.add_event_listener_with_callback(event, closure.as_ref().unchecked_ref());
    Listener {
        target,
        event,
        closure,
    }
}

pub fn on_window_event(event: &'static str, f: impl FnMut() + 'static) -> Listener {
    listen(window().into(), event, f)
}

pub fn on_document_event(event: &'static str, f: impl FnMut() + 'static) -> Listener {
    let doc: web_sys::EventTarget = window().document().expect("a document").into();
    listen(doc, event, f)
}

/// Copies text to the clipboard (best effort: the browser may refuse outside a secure context).
pub fn copy(text: &str) {
    let clipboard = window().navigator().clipboard();
    let _ = clipboard.write_text(text);
}

pub fn set_title(title: &str) {
    if let Some(d) = window().document() {
        d.set_title(title);
    }
}

/// Pushes a new query string for the current path (a history entry) and publishes it.
pub fn push_search(search: Signal<String>, new_search: &str) {
    if search.with_untracked(|s| s == new_search) {
        return;
    }
    let url = format!("{}{}", location_path(), new_search);
    if let Ok(h) = window().history() {
        let _ = h.push_state_with_url(&JsValue::NULL, "", Some(&url));
    }
    search.set(new_search.to_owned());
}

/// The router integration: like sycamore-router's `HistoryIntegration`, but a link keeps its
/// query string and every query change (links, back/forward) reaches the `search` signal, which
/// holds each page's state. (Its own integration drops a link's query and ignores query-only
/// history steps.)
pub struct Integration {
    pub search: Signal<String>,
}

impl sycamore_router::Integration for Integration {
    fn current_pathname(&self) -> String {
        location_path()
    }

    fn on_popstate(&self, mut f: Box<dyn FnMut()>) {
        let search = self.search;
        let l = on_window_event("popstate", move || {
            search.set(location_search());
            f();
        });
        // Lives as long as the app.
        std::mem::forget(l);
    }

    fn click_handler(&self) -> Box<dyn Fn(web_sys::MouseEvent)> {
        let search = self.search;
        Box::new(move |ev: web_sys::MouseEvent| {
            if ev.default_prevented()
                || ev.button() != 0
                || ev.meta_key()
                || ev.ctrl_key()
                || ev.shift_key()
                || ev.alt_key()
            {
                return;
            }
            let Some(a) = ev
                .target()
                .and_then(|t| t.dyn_into::<web_sys::Element>().ok())
                .and_then(|e| e.closest("a[href]").ok().flatten())
                .and_then(|e| e.dyn_into::<web_sys::HtmlAnchorElement>().ok())
            else {
                return;
            };
            let loc = window().location();
            if a.rel() == "external" || !a.target().is_empty() || loc.origin().ok() != Some(a.origin()) {
                return;
            }
            ev.prevent_default();
            let (path, query) = (a.pathname(), a.search());
            let same_path = loc.pathname().ok().as_deref() == Some(path.as_str());
            if same_path && loc.search().ok().as_deref() == Some(query.as_str()) {
                return;
            }
            if let Ok(h) = window().history() {
                let _ = h.push_state_with_url(&JsValue::NULL, "", Some(&format!("{path}{query}")));
            }
            search.set(query);
            if !same_path {
                sycamore_router::navigate_no_history(&path);
            }
        })
    }
}
