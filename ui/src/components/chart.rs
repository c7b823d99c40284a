//! Charts drawn by Apache ECharts (served by the api from `ui/dist`, installed from npm at build
//! time, never from a CDN). This module only describes a chart: [`ChartSpec`] is the data, and
//! [`option`] turns it into an ECharts option (pure, tested on the host). In the browser the
//! [`Chart`] component hands that option to `echarts.init(...).setOption(...)`, re-drawn when the
//! data or the theme changes; hover values, legends and axis labels are ECharts'. Every chart also
//! renders its numbers as a table under a disclosure, for screen readers and for copying.

use serde_json::{Value, json};
use sycamore::prelude::*;

use crate::format::thousands;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mark {
    Bar,
    Line,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Series {
    pub name: String,
    pub values: Vec<u64>,
    pub mark: Mark,
    /// A CSS colour, the same in both themes so a series keeps its meaning.
    pub color: &'static str,
}

/// What the x axis holds.
#[derive(Debug, Clone, PartialEq)]
pub enum XAxis {
    /// Bucket starts in unix seconds, drawn on a UTC time axis.
    Time(Vec<u64>),
    /// Named categories (`2026-11` for months).
    Category(Vec<String>),
}

#[derive(Debug, Clone, PartialEq)]
pub struct ChartSpec {
    pub x: XAxis,
    /// One label per point for the table (`2026-11-24 12:00 UTC`).
    pub full_labels: Vec<String>,
    /// The x axis' name, with its zone (`Time (UTC)`).
    pub x_name: String,
    pub series: Vec<Series>,
}

/// The fixed palette: requests, results, feedback, customers, DVMs.
pub const REQUESTS: &str = "#6366f1";
pub const RESULTS: &str = "#10b981";
pub const FEEDBACK: &str = "#f59e0b";
pub const CUSTOMERS: &str = "#0ea5e9";
pub const DVMS: &str = "#ec4899";

/// The ECharts option of a chart. `dark` picks readable text and grid colours.
pub fn option(spec: &ChartSpec, dark: bool) -> Value {
    let (text, grid) = if dark {
        ("#c9d1dc", "#2c3340")
    } else {
        ("#3b4252", "#e3e6ec")
    };
    let points = spec.full_labels.len();
    let series: Vec<Value> = spec
        .series
        .iter()
        .map(|s| {
            let data: Vec<Value> = match &spec.x {
                XAxis::Time(t) => t
                    .iter()
                    .zip(&s.values)
                    .map(|(t, v)| json!([t * 1000, v]))
                    .collect(),
                XAxis::Category(_) => s.values.iter().map(|v| json!(v)).collect(),
            };
            json!({
                "name": s.name,
                "type": match s.mark { Mark::Bar => "bar", Mark::Line => "line" },
                "data": data,
                "itemStyle": { "color": s.color },
                "lineStyle": { "color": s.color, "width": 2 },
                "showSymbol": points <= 40,
                "barMaxWidth": 28,
                "emphasis": { "focus": "series" },
            })
        })
        .collect();
    let x_axis = match &spec.x {
        XAxis::Time(_) => json!({ "type": "time" }),
        XAxis::Category(c) => json!({ "type": "category", "data": c }),
    };
    let mut o = json!({
        // Axis labels and tooltips in UTC, whatever the viewer's zone (DVMDash bug 20).
        "useUTC": true,
        "backgroundColor": "transparent",
        "animation": false,
        "textStyle": { "color": text },
        "aria": { "enabled": true },
        "legend": { "top": 0, "textStyle": { "color": text } },
        "tooltip": { "trigger": "axis", "confine": true },
        "grid": { "left": 8, "right": 16, "top": 36, "bottom": 30, "containLabel": true },
        "xAxis": {
            "name": spec.x_name,
            "nameLocation": "middle",
            "nameGap": 28,
            "axisLabel": {
                "color": text,
                "hideOverlap": true,
            },
            "axisLine": { "lineStyle": { "color": grid } },
        },
        "yAxis": {
            "type": "value",
            "minInterval": 1,
            "axisLabel": { "color": text },
            "splitLine": { "lineStyle": { "color": grid } },
        },
        "series": series,
    });
    if let (Some(dst), Some(src)) = (o["xAxis"].as_object_mut(), x_axis.as_object()) {
        dst.extend(src.clone());
    }
    if matches!(spec.x, XAxis::Time(_)) {
        // Time-axis labels by level (ECharts templates, rendered in UTC): `Dec 3`, `06:00`.
        o["xAxis"]["axisLabel"]["formatter"] = json!({
            "year": "{yyyy}", "month": "{MMM} {yyyy}", "day": "{MMM} {d}", "hour": "{HH}:{mm}", "minute": "{HH}:{mm}",
        });
    }
    o
}

/// The same numbers as a table (inside a `<details>`), for screen readers and copying.
#[component(inline_props)]
pub fn ChartTable(spec: ChartSpec) -> View {
    let head: Vec<View> = spec
        .series
        .iter()
        .map(|s| {
            let n = s.name.clone();
            view! { th(scope="col") { (n) } }
        })
        .collect();
    let rows: Vec<View> = spec
        .full_labels
        .iter()
        .enumerate()
        .map(|(i, label)| {
            let label = label.clone();
            let cells: Vec<View> = spec
                .series
                .iter()
                .map(|s| {
                    let v = s.values.get(i).copied().map(thousands).unwrap_or_default();
                    view! { td(class="num") { (v) } }
                })
                .collect();
            view! { tr { th(scope="row") { (label) } (cells) } }
        })
        .collect();
    let x_name = spec.x_name.clone();
    view! {
        details(class="chart-table") {
            summary { "Show as a table" }
            div(class="table-wrap") {
                table {
                    thead { tr { th(scope="col") { (x_name) } (head) } }
                    tbody { (rows) }
                }
            }
        }
    }
}

/// A chart with its title and table. `spec` is reactive: new data re-draws it.
#[component(inline_props)]
pub fn Chart(title: String, spec: ReadSignal<Option<ChartSpec>>) -> View {
    let node = create_node_ref();
    #[cfg(target_arch = "wasm32")]
    mount::draw(node, spec);
    let aria = title.clone();
    view! {
        section(class="panel chart") {
            h2 { (title) }
            div(class="chart-box", r#ref=node, role="img", aria-label=aria)
            (move || spec.get_clone().map(|s| view! { ChartTable(spec=s) }))
        }
    }
}

#[cfg(target_arch = "wasm32")]
mod mount {
    use std::cell::RefCell;
    use std::rc::Rc;

    use sycamore::prelude::*;
    use wasm_bindgen::prelude::*;

    use super::{ChartSpec, option};
    use crate::browser;

    #[wasm_bindgen]
    extern "C" {
        /// An ECharts instance.
        type EChart;
        #[wasm_bindgen(catch, js_namespace = echarts, js_name = init)]
        fn echarts_init(el: &web_sys::HtmlElement, theme: &str) -> Result<EChart, JsValue>;
        #[wasm_bindgen(method, js_name = setOption)]
        fn set_option(this: &EChart, option: &JsValue, not_merge: bool);
        #[wasm_bindgen(method)]
        fn resize(this: &EChart);
        #[wasm_bindgen(method)]
        fn dispose(this: &EChart);
    }

    /// Draws `spec` into `node` whenever the data or the theme changes; resizes with the window.
    pub fn draw(node: NodeRef, spec: ReadSignal<Option<ChartSpec>>) {
        let ctx = use_context::<crate::app::Ctx>();
        let chart: Rc<RefCell<Option<(EChart, bool)>>> = Rc::default();
        let c = chart.clone();
        // ECharts loads `async` beside the app (so it never delays the first numbers); until it
        // has, drawing is retried every 100 ms for up to 20 s.
        let attempts = create_signal(0u32);
        on_mount(move || {
            create_effect(move || {
                let dark = ctx.theme.get() == crate::browser::Theme::Dark;
                let Some(spec) = spec.get_clone() else { return };
                let tries = attempts.get();
                let loaded =
                    js_sys::Reflect::has(&js_sys::global(), &JsValue::from_str("echarts")).unwrap_or(false);
                if !loaded && tries < 200 {
                    sycamore::futures::spawn_local_scoped(async move {
                        gloo_timers::future::TimeoutFuture::new(100).await;
                        attempts.set(tries + 1);
                    });
                    return;
                }
                let Some(el) = node
                    .try_get()
                    .and_then(|n| n.dyn_into::<web_sys::HtmlElement>().ok())
                else {
                    return;
                };
                let mut slot = c.borrow_mut();
                // ECharts themes are fixed at init: a theme change means a new instance.
                if slot.as_ref().is_some_and(|(_, d)| *d != dark)
                    && let Some((old, _)) = slot.take()
                {
                    old.dispose();
                }
                if slot.is_none() {
                    match echarts_init(&el, if dark { "dark" } else { "" }) {
                        Ok(ch) => *slot = Some((ch, dark)),
                        Err(_) => {
                            el.set_text_content(Some(
                                "The chart library did not load; the table below has the numbers.",
                            ));
                            return;
                        }
                    }
                }
                if let Some((ch, _)) = slot.as_ref() {
                    let opt = js_sys::JSON::parse(&option(&spec, dark).to_string()).unwrap_or(JsValue::NULL);
                    ch.set_option(&opt, true);
                }
            });
        });
        let c = chart.clone();
        let resize = browser::on_window_event("resize", move || {
            if let Some((ch, _)) = c.borrow().as_ref() {
                ch.resize();
            }
        });
        on_cleanup(move || {
            drop(resize);
            if let Some((ch, _)) = chart.borrow_mut().take() {
                ch.dispose();
            }
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec() -> ChartSpec {
        ChartSpec {
            x: XAxis::Time(vec![1_764_000_000, 1_764_003_600]),
            full_labels: vec!["2026-11-24 12:00 UTC".into(), "2026-11-24 13:00 UTC".into()],
            x_name: "Time (UTC)".into(),
            series: vec![Series {
                name: "Requests".into(),
                values: vec![3, 1234],
                mark: Mark::Bar,
                color: REQUESTS,
            }],
        }
    }

    #[test]
    fn option_names_the_zone_and_keeps_values() {
        let o = option(&spec(), true);
        assert_eq!(o["xAxis"]["name"], "Time (UTC)");
        assert_eq!(o["xAxis"]["type"], "time");
        assert_eq!(o["useUTC"], true);
        assert_eq!(o["series"][0]["type"], "bar");
        assert_eq!(o["series"][0]["data"][1], json!([1_764_003_600_000u64, 1234]));
        assert_eq!(o["tooltip"]["trigger"], "axis");
        assert_ne!(
            option(&spec(), false)["textStyle"]["color"],
            o["textStyle"]["color"]
        );
    }

    #[test]
    fn table_fallback_has_every_value() {
        let html = sycamore::render_to_string(|| view! { ChartTable(spec=spec()) });
        assert!(html.contains(">Time (UTC)</th>"), "{html}");
        assert!(html.contains(">Requests</th>"), "{html}");
        assert!(html.contains("2026-11-24 13:00 UTC"));
        assert!(html.contains("1,234"));
    }
}
