//! The 404 page: says what was not found and where to go instead.

use sycamore::prelude::*;

#[component(inline_props)]
pub fn NotFound(what: String) -> View {
    #[cfg(target_arch = "wasm32")]
    crate::browser::set_title("Not found: dvmdash");
    view! {
        section(class="panel not-found", data-page="not-found") {
            h1 { "Not found" }
            p(data-stat="not_found") { (what.clone()) " was not found." }
            p {
                "Try the "
                a(href="/dvm-stats") { "list of DVMs" }
                ", the "
                a(href="/kind-stats") { "job kinds" }
                " or the "
                a(href="/") { "overview" }
                "."
            }
        }
    }
}
