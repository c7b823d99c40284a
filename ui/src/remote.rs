//! One api answer held by a page: fetched when its URL changes, re-fetched on every refresh tick
//! (which pauses while the tab is hidden), never overwritten by a slow answer for a URL the page
//! already left. A refresh keeps the shown data until the new answer arrives; an error keeps the
//! last good data and says what failed.

use std::rc::Rc;

use serde::de::DeserializeOwned;
use sycamore::futures::spawn_local_scoped;
use sycamore::prelude::*;

use crate::api::{self, ApiError};

pub struct Remote<T: 'static> {
    pub data: Signal<Option<Rc<T>>>,
    pub error: Signal<Option<ApiError>>,
}

impl<T> Clone for Remote<T> {
    fn clone(&self) -> Self {
        *self
    }
}
impl<T> Copy for Remote<T> {}

impl<T: 'static> Remote<T> {
    /// Loading: no data and no error yet.
    pub fn loading(&self) -> bool {
        self.data.with(Option::is_none) && self.error.with(Option::is_none)
    }
}

/// Keeps `url()` fetched. `url` returning `None` fetches nothing (a page that is not ready).
pub fn remote<T: DeserializeOwned + 'static>(url: impl Fn() -> Option<String> + 'static) -> Remote<T> {
    let ctx = use_context::<crate::app::Ctx>();
    let r = Remote {
        data: create_signal(None),
        error: create_signal(None),
    };
    let current: Signal<Option<String>> = create_signal(None);
    create_effect(move || {
        let u = url();
        ctx.tick.track();
        if current.with_untracked(|c| *c != u) {
            current.set_silent(u.clone());
            r.data.set(None);
            r.error.set(None);
        }
        let Some(u) = u else { return };
        // Scoped to this run of the effect: a newer URL or tick aborts it.
        spawn_local_scoped(async move {
            let res = api::get_json::<T>(&u).await;
            if current.with_untracked(|c| c.as_deref() != Some(u.as_str())) {
                return;
            }
            match res {
                Ok(v) => {
                    r.data.set(Some(Rc::new(v)));
                    r.error.set(None);
                }
                Err(e) => r.error.set(Some(e)),
            }
        });
    });
    r
}
