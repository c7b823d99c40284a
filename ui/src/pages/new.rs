//! `/new`: DVMs and kinds first seen in the window (DVMDash issue #31).

use dvmdash_core::dto::WhatsNew;
use sycamore::prelude::*;

use super::banner;
use crate::api;
use crate::app::Ctx;
use crate::components::{DvmLink, DvmRef, Empty, KindLink, Skeleton};
use crate::format::{utc, window_words};
use crate::remote::remote;

#[component]
pub fn New() -> View {
    let ctx = use_context::<Ctx>();
    crate::browser::set_title("What's new: dvmdash");
    let range = create_selector(move || ctx.range());
    let new = remote::<WhatsNew>(move || Some(api::whats_new(range.get())));
    view! {
        div(data-page="new") {
            div(class="page-head") { h1 { "What's new" } p(class="muted") { "DVMs and job kinds seen for the first time in the window." } }
            (banner(vec![new.error]))
            (move || {
                let r = range.get();
                let Some(n) = new.data.get_clone() else {
                    return if new.error.with(Option::is_some) { view! {} } else { view! { Skeleton(lines=3) } };
                };
                let dvms: Vec<View> = n.dvms.iter().map(|d| {
                    let dvm = DvmRef { id: d.dvm_id.clone(), name: d.dvm_name.clone(), picture: None };
                    let when = utc(&d.first_seen);
                    let id = d.dvm_id.clone();
                    view! { li(data-dvm-row=id) { DvmLink(dvm=dvm, range=r) span(class="muted") { " first seen " (when) } } }
                }).collect();
                let kinds: Vec<View> = n.kinds.iter().map(|k| {
                    let when = utc(&k.first_seen);
                    let (kind, row) = (k.kind, k.kind.to_string());
                    view! { li(data-kind-row=row) { KindLink(kind=kind, range=r) span(class="muted") { " first seen " (when) } } }
                }).collect();
                let dvms = if dvms.is_empty() { view! { Empty(message=format!("No new DVM in the {}.", window_words(r))) } } else { view! { ul(class="new-list") { (dvms) } } };
                let kinds = if kinds.is_empty() { view! { Empty(message=format!("No new kind in the {}.", window_words(r))) } } else { view! { ul(class="new-list") { (kinds) } } };
                view! {
                    div(class="two-col") {
                        section(class="panel") { h2 { "New DVMs" } (dvms) }
                        section(class="panel") { h2 { "New kinds" } (kinds) }
                    }
                }
            })
        }
    }
}
