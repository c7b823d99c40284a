//! dvmdash-ui: the web dashboard, rendered in the browser (Sycamore, wasm32).
//!
//! - [`api`] - every HTTP call the UI makes, typed with the api's own DTOs from `dvmdash-core`
//! - [`app`] - the page: range tabs (kept in the URL), summary cards, activity chart
//! - [`format`] - number and time formatting (pure, unit-tested on the host)

pub mod format;

#[cfg(target_arch = "wasm32")]
pub mod api;
#[cfg(target_arch = "wasm32")]
pub mod app;

#[cfg(target_arch = "wasm32")]
#[wasm_bindgen::prelude::wasm_bindgen(start)]
pub fn start() {
    console_error_panic_hook::set_once();
    sycamore::render(app::App);
}
