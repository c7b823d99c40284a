//! One module per page. Each reads its state from the URL (`Ctx::query`), fetches its api answers
//! through [`crate::remote`], and renders with the shared components.

pub mod admin;
pub mod directory;
pub mod dvm;
pub mod dvms;
pub mod history;
pub mod kind;
pub mod kinds;
mod list;
pub mod new;
pub mod not_found;
pub mod overview;
pub mod relays;

use dvmdash_core::dto::{GlobalPoint, TimeRange};
use sycamore::prelude::*;

use crate::components::ErrorBanner;
use crate::components::chart::{ChartSpec, Mark, Series, XAxis};
use crate::format::{cumulative, parse_time, utc};

/// The error banner of the first failing answer among `errors`, if any.
pub fn banner(errors: Vec<Signal<Option<crate::api::ApiError>>>) -> View {
    view! {
        (move || {
            errors
                .iter()
                .find_map(|e| e.get_clone())
                .map(|e| view! { ErrorBanner(message=e.describe()) })
        })
    }
}

/// A time-series chart spec from bucket times and named series.
pub fn time_spec(
    times: &[String],
    series: Vec<(&str, Vec<u64>, Mark, &'static str)>,
    cumulate: bool,
) -> ChartSpec {
    ChartSpec {
        x: XAxis::Time(times.iter().map(|t| parse_time(t).unwrap_or(0)).collect()),
        full_labels: times.iter().map(|t| utc(t)).collect(),
        x_name: "Time (UTC)".into(),
        series: series
            .into_iter()
            .map(|(name, values, mark, color)| Series {
                name: name.to_owned(),
                values: if cumulate { cumulative(&values) } else { values },
                mark: if cumulate { Mark::Line } else { mark },
                color,
            })
            .collect(),
    }
}

/// The network's job counts over time.
pub fn jobs_spec(points: &[GlobalPoint], cumulate: bool) -> ChartSpec {
    use crate::components::chart::{FEEDBACK, REQUESTS, RESULTS};
    let times: Vec<String> = points.iter().map(|p| p.time.clone()).collect();
    time_spec(
        &times,
        vec![
            (
                "Requests",
                points.iter().map(|p| p.total_requests).collect(),
                Mark::Bar,
                REQUESTS,
            ),
            (
                "Results",
                points.iter().map(|p| p.total_responses).collect(),
                Mark::Bar,
                RESULTS,
            ),
            (
                "Feedback",
                points.iter().map(|p| p.total_feedback).collect(),
                Mark::Bar,
                FEEDBACK,
            ),
        ],
        cumulate,
    )
}

/// Active customers and DVMs per bucket (distinct within each bucket, so never cumulated).
pub fn actors_spec(points: &[GlobalPoint]) -> ChartSpec {
    use crate::components::chart::{CUSTOMERS, DVMS};
    let times: Vec<String> = points.iter().map(|p| p.time.clone()).collect();
    time_spec(
        &times,
        vec![
            (
                "Customers",
                points.iter().map(|p| p.unique_users).collect(),
                Mark::Line,
                CUSTOMERS,
            ),
            (
                "DVMs",
                points.iter().map(|p| p.unique_dvms).collect(),
                Mark::Line,
                DVMS,
            ),
        ],
        false,
    )
}

/// `Window: last 24 hours, 2026-11-24 12:00 UTC to …` for a page's header.
pub fn period_text(range: TimeRange, start: &str, end: &str) -> String {
    format!(
        "{}: {} to {}",
        crate::format::window_words(range),
        utc(start),
        utc(end)
    )
}
