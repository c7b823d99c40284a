//! `/history`: every month since the first event (kept forever): requests, results, DVMs and
//! customers, with the top DVMs and kinds of each month.

use dvmdash_core::dto::{MonthlyHistory, TimeRange};
use sycamore::prelude::*;

use super::banner;
use crate::api;
use crate::app::Ctx;
use crate::components::chart::{CUSTOMERS, Chart, ChartSpec, DVMS, Mark, REQUESTS, RESULTS, Series, XAxis};
use crate::components::{DvmLink, DvmRef, Empty, KindLink, Skeleton};
use crate::format::thousands;
use crate::remote::remote;

fn spec(h: &MonthlyHistory, jobs: bool) -> ChartSpec {
    let months: Vec<String> = h.months.iter().map(|m| m.month.clone()).collect();
    let s = |name: &str, values: Vec<u64>, mark, color| Series {
        name: name.into(),
        values,
        mark,
        color,
    };
    ChartSpec {
        x: XAxis::Category(months.clone()),
        full_labels: months,
        x_name: "Month (UTC)".into(),
        series: if jobs {
            vec![
                s(
                    "Requests",
                    h.months.iter().map(|m| m.requests).collect(),
                    Mark::Bar,
                    REQUESTS,
                ),
                s(
                    "Results",
                    h.months.iter().map(|m| m.results).collect(),
                    Mark::Bar,
                    RESULTS,
                ),
            ]
        } else {
            vec![
                s(
                    "DVMs",
                    h.months.iter().map(|m| m.dvms).collect(),
                    Mark::Line,
                    DVMS,
                ),
                s(
                    "Customers",
                    h.months.iter().map(|m| m.customers).collect(),
                    Mark::Line,
                    CUSTOMERS,
                ),
            ]
        },
    }
}

#[component]
pub fn History() -> View {
    let ctx = use_context::<Ctx>();
    crate::browser::set_title("History: dvmdash");
    let h = remote::<MonthlyHistory>(|| Some(api::history()));
    let jobs = create_memo(move || h.data.with(|d| d.as_ref().map(|d| spec(d, true))));
    let actors = create_memo(move || h.data.with(|d| d.as_ref().map(|d| spec(d, false))));
    view! {
        div(data-page="history") {
            div(class="page-head") { h1 { "History" } p(class="muted") { "Month by month since the first event, by event time (UTC). Monthly rollups are kept forever." } }
            (banner(vec![h.error]))
            (move || if h.loading() { view! { Skeleton(lines=3) } } else { view! {} })
            Chart(title="Jobs per month".to_owned(), spec=jobs)
            Chart(title="DVMs and customers per month".to_owned(), spec=actors)
            (move || {
                let Some(d) = h.data.get_clone() else { return view! {} };
                if d.months.is_empty() {
                    return view! { Empty(message="No event has been stored yet.".to_owned()) };
                }
                let r: TimeRange = ctx.range();
                let rows: Vec<View> = d.months.iter().rev().map(|m| {
                    let dvms: Vec<View> = m.top_dvms.iter().take(3).map(|t| {
                        let dvm = DvmRef { id: t.id.clone(), name: t.name.clone(), picture: None };
                        let c = format!(" {}", thousands(t.count));
                        view! { li { DvmLink(dvm=dvm, range=r) span(class="muted") { (c) } } }
                    }).collect();
                    let kinds: Vec<View> = m.top_kinds.iter().take(3).filter_map(|t| {
                        let k: u16 = t.id.parse().ok()?;
                        let c = format!(" {}", thousands(t.count));
                        Some(view! { li { KindLink(kind=k, range=r) span(class="muted") { (c) } } })
                    }).collect();
                    let (month, month2) = (m.month.clone(), m.month.clone());
                    let [requests, results, feedback, dvm_count, customers] =
                        [m.requests, m.results, m.feedback, m.dvms, m.customers].map(thousands);
                    view! {
                        tr(data-month=month) {
                            th(scope="row") { (month2) }
                            td(class="num") { (requests) }
                            td(class="num") { (results) }
                            td(class="num") { (feedback) }
                            td(class="num") { (dvm_count) }
                            td(class="num") { (customers) }
                            td { ul(class="top") { (dvms) } }
                            td { ul(class="top") { (kinds) } }
                        }
                    }
                }).collect();
                view! {
                    section(class="panel") {
                        h2 { "Months" }
                        div(class="table-wrap") { table(class="data") {
                            thead { tr {
                                th(scope="col") { "Month" } th(scope="col", class="num") { "Requests" } th(scope="col", class="num") { "Results" }
                                th(scope="col", class="num") { "Feedback" } th(scope="col", class="num") { "DVMs" } th(scope="col", class="num") { "Customers" }
                                th(scope="col") { "Top DVMs (results)" } th(scope="col") { "Top kinds (requests)" }
                            } }
                            tbody { (rows) }
                        } }
                    }
                }
            })
        }
    }
}
