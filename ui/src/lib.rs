//! dvmdash-ui: the web dashboard, rendered in the browser (Sycamore, wasm32).
//!
//! - [`route`] - the pages (`sycamore-router`) and each page's state in the query string
//! - [`api`] - every api path and the one typed `GET`, with errors worded for people
//! - [`format`] - number, time and key formatting (pure, unit-tested on the host)
//! - [`components`] - cards, DVM and kind links, chips, states, pager, charts (ECharts)
//! - `pages` - one module per page; `app` - the shell (top bar, router, refresh);
//!   `remote` - an api answer kept fresh; `browser` - every browser API the UI touches
//!   (these four only build for wasm32)
//!
//! Components are pure and rendered on the host in tests with `sycamore::render_to_string`.

pub mod api;
pub mod components;
pub mod format;
pub mod route;

#[cfg(target_arch = "wasm32")]
pub mod app;
#[cfg(target_arch = "wasm32")]
pub mod browser;
#[cfg(target_arch = "wasm32")]
pub mod pages;
#[cfg(target_arch = "wasm32")]
pub mod remote;

#[cfg(target_arch = "wasm32")]
#[wasm_bindgen::prelude::wasm_bindgen(start)]
pub fn start() {
    console_error_panic_hook::set_once();
    // The page ships a placeholder for browsers without WebAssembly; the app replaces it.
    if let Some(el) = web_sys::window()
        .and_then(|w| w.document())
        .and_then(|d| d.get_element_by_id("boot"))
    {
        el.remove();
    }
    sycamore::render(app::App);
}
