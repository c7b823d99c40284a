//! What the operators' tools read, as files of the repository: the Grafana dashboards and the
//! metric contract in `docs/telemetry.md`. Shared by the dashboard test (which runs every panel)
//! and the Prometheus test (which scrapes a running stack against the contract).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde_json::Value;

/// The repository root.
pub fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// Every dashboard in `grafana/dashboards`, by file name.
pub fn dashboards() -> Vec<(String, Value)> {
    let dir = repo().join("grafana/dashboards");
    let mut out = Vec::new();
    for entry in std::fs::read_dir(&dir).expect("grafana/dashboards exists") {
        let path = entry.expect("entry").path();
        if path.extension().and_then(|e| e.to_str()) == Some("json") {
            let text = std::fs::read_to_string(&path).expect("read dashboard");
            let json: Value =
                serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
            let name = path
                .file_name()
                .unwrap_or_default()
                .to_string_lossy()
                .into_owned();
            out.push((name, json));
        }
    }
    assert!(!out.is_empty(), "no dashboards found");
    out.sort_by(|a, b| a.0.cmp(&b.0));
    out
}

/// Panels, including those nested in collapsed rows.
pub fn panels(d: &Value) -> Vec<Value> {
    let mut out = Vec::new();
    for p in d["panels"].as_array().into_iter().flatten() {
        out.push(p.clone());
        for inner in p["panels"].as_array().into_iter().flatten() {
            out.push(inner.clone());
        }
    }
    out
}

/// The datasource uid of a target, falling back to its panel's (as Grafana does).
pub fn datasource_uid(panel: &Value, target: &Value) -> Option<String> {
    let ds = if target["datasource"].is_object() {
        &target["datasource"]
    } else {
        &panel["datasource"]
    };
    ds["uid"].as_str().map(str::to_owned)
}

/// A metric of the contract: its type column (`C`ounter, `G`auge, `H`istogram).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MetricType {
    Counter,
    Gauge,
    Histogram,
}

/// Every metric the tables of `docs/telemetry.md` list, with its type.
pub fn documented_metrics() -> BTreeMap<String, MetricType> {
    let text = std::fs::read_to_string(repo().join("docs/telemetry.md")).expect("docs/telemetry.md");
    let mut out = BTreeMap::new();
    for line in text.lines() {
        let cells: Vec<&str> = line.split('|').map(str::trim).collect();
        // "| `name` | C | labels | ..." splits into ["", "`name`", "C", ...].
        let (Some(name), Some(ty)) = (cells.get(1), cells.get(2)) else {
            continue;
        };
        let Some(name) = name.strip_prefix('`').and_then(|n| n.strip_suffix('`')) else {
            continue;
        };
        let ty = match *ty {
            "C" => MetricType::Counter,
            "G" => MetricType::Gauge,
            "H" => MetricType::Histogram,
            _ => continue,
        };
        assert!(
            out.insert(name.to_owned(), ty).is_none(),
            "docs/telemetry.md lists {name} twice"
        );
    }
    assert!(
        out.len() > 20,
        "docs/telemetry.md: only {} metrics found",
        out.len()
    );
    out
}

/// The series names a scrape shows for a documented metric (a histogram is three).
pub fn exposed_names(name: &str, ty: MetricType) -> Vec<String> {
    match ty {
        MetricType::Histogram => ["_bucket", "_sum", "_count"]
            .iter()
            .map(|s| format!("{name}{s}"))
            .collect(),
        _ => vec![name.to_owned()],
    }
}

/// One query of a dashboard panel, with where it stands (for failure messages).
#[derive(Debug, Clone)]
pub struct PanelTarget {
    pub dashboard: String,
    pub panel: String,
    pub target: Value,
}

/// Every query, in every dashboard, that goes to the datasource `uid`.
pub fn targets_of(uid: &str) -> Vec<PanelTarget> {
    let mut out = Vec::new();
    for (dashboard, d) in dashboards() {
        for p in panels(&d) {
            for t in p["targets"].as_array().into_iter().flatten() {
                if datasource_uid(&p, t).as_deref() == Some(uid) {
                    out.push(PanelTarget {
                        dashboard: dashboard.clone(),
                        panel: p["title"].as_str().unwrap_or("?").to_owned(),
                        target: t.clone(),
                    });
                }
            }
        }
    }
    out
}
