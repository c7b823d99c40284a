//! Where the user is: the page (path, matched by `sycamore-router`) and its whole state (the query
//! string). Every page reads its state from the URL and writes changes back with `push_state`, so
//! links are shareable, reloads restore the view and back/forward step through changes.

use dvmdash_core::dto::TimeRange;
use sycamore_router::Route;

/// The dashboard's pages, at DVMDash's paths where it had them.
#[derive(Route, Debug, Clone, PartialEq, Eq)]
pub enum AppRoute {
    #[to("/")]
    Overview,
    #[to("/dvm-stats")]
    Dvms,
    #[to("/dvm-stats/<id>")]
    Dvm { id: String },
    #[to("/kind-stats")]
    Kinds,
    #[to("/kind-stats/<kind>")]
    Kind { kind: String },
    #[to("/new")]
    New,
    #[to("/history")]
    History,
    #[to("/directory")]
    Directory,
    #[to("/relays")]
    Relays,
    #[to("/admin")]
    Admin,
    #[not_found]
    NotFound,
}

/// The window every page starts with when the URL does not name one (DVMDash's default was 30d;
/// a day shows live activity best).
pub const DEFAULT_RANGE: TimeRange = TimeRange::Day;

/// A parsed query string, keeping parameter order for stable URLs.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Query(Vec<(String, String)>);

impl Query {
    /// Parses `?a=1&b=x%20y` (with or without the leading `?`).
    pub fn parse(search: &str) -> Self {
        let s = search.strip_prefix('?').unwrap_or(search);
        Query(
            form_urlencoded::parse(s.as_bytes())
                .map(|(k, v)| (k.into_owned(), v.into_owned()))
                .collect(),
        )
    }

    pub fn get(&self, key: &str) -> Option<&str> {
        self.0.iter().find(|(k, _)| k == key).map(|(_, v)| v.as_str())
    }

    /// Sets `key` (or removes it when `value` is `None` or empty).
    pub fn set(&mut self, key: &str, value: Option<&str>) -> &mut Self {
        match value.filter(|v| !v.is_empty()) {
            Some(v) => match self.0.iter_mut().find(|(k, _)| k == key) {
                Some(slot) => slot.1 = v.to_owned(),
                None => self.0.push((key.to_owned(), v.to_owned())),
            },
            None => self.0.retain(|(k, _)| k != key),
        }
        self
    }

    /// `?a=1&b=x+y`, or the empty string when there are no parameters.
    pub fn to_search(&self) -> String {
        if self.0.is_empty() {
            return String::new();
        }
        let mut s = form_urlencoded::Serializer::new(String::new());
        for (k, v) in &self.0 {
            s.append_pair(k, v);
        }
        format!("?{}", s.finish())
    }

    /// The window the URL names, else [`DEFAULT_RANGE`]; unknown values fall back too.
    pub fn range(&self) -> TimeRange {
        self.get("timeRange")
            .and_then(TimeRange::parse)
            .unwrap_or(DEFAULT_RANGE)
    }

    /// Only the window, for links to other pages (which start at their own defaults otherwise).
    pub fn range_only(&self) -> String {
        let mut q = Query::default();
        if let Some(r) = self.get("timeRange").and_then(TimeRange::parse) {
            q.set("timeRange", Some(r.as_str()));
        }
        q.to_search()
    }
}

/// State of a paged, searchable, sortable list page.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListState {
    pub range: TimeRange,
    pub search: String,
    pub sort: String,
    /// `true` for descending.
    pub desc: bool,
    /// Zero-based.
    pub page: u64,
    /// `cards` or `table`.
    pub view: String,
}

impl ListState {
    pub fn from_query(q: &Query, sorts: &[&str], default_view: &str) -> Self {
        let sort = q
            .get("sort")
            .filter(|s| sorts.contains(s))
            .unwrap_or(sorts[0])
            .to_owned();
        let view = match q.get("view") {
            Some(v @ ("cards" | "table")) => v.to_owned(),
            _ => default_view.to_owned(),
        };
        ListState {
            range: q.range(),
            search: q.get("q").unwrap_or("").chars().take(200).collect(),
            sort,
            desc: q.get("order") != Some("asc"),
            page: q
                .get("page")
                .and_then(|p| p.parse::<u64>().ok())
                .map(|p| p.saturating_sub(1).min(100_000))
                .unwrap_or(0),
            view,
        }
    }

    /// Writes the state into `q`, leaving defaults out so URLs stay short.
    pub fn write(&self, q: &mut Query, sorts: &[&str], default_view: &str) {
        q.set("timeRange", Some(self.range.as_str()));
        q.set("q", Some(self.search.trim()));
        q.set("sort", (self.sort != sorts[0]).then_some(self.sort.as_str()));
        q.set("order", (!self.desc).then_some("asc"));
        let page = (self.page + 1).to_string();
        q.set("page", (self.page > 0).then_some(page.as_str()));
        q.set("view", (self.view != default_view).then_some(self.view.as_str()));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routes() {
        let r = AppRoute::default();
        assert_eq!(r.match_path("/"), AppRoute::Overview);
        assert_eq!(r.match_path("/dvm-stats"), AppRoute::Dvms);
        assert_eq!(
            r.match_path("/dvm-stats/npub1abc"),
            AppRoute::Dvm {
                id: "npub1abc".into()
            }
        );
        assert_eq!(
            r.match_path("/kind-stats/5300"),
            AppRoute::Kind { kind: "5300".into() }
        );
        assert_eq!(r.match_path("/new"), AppRoute::New);
        assert_eq!(r.match_path("/history"), AppRoute::History);
        assert_eq!(r.match_path("/directory"), AppRoute::Directory);
        assert_eq!(r.match_path("/relays"), AppRoute::Relays);
        assert_eq!(r.match_path("/nope"), AppRoute::NotFound);
        assert_eq!(r.match_path("/dvm-stats/a/b"), AppRoute::NotFound);
    }

    #[test]
    fn query_round_trips_hostile_text() {
        let mut q = Query::parse("?timeRange=7d&q=%3Cscript%3E%20x&page=3");
        assert_eq!(q.get("q"), Some("<script> x"));
        assert_eq!(q.range(), TimeRange::Week);
        q.set("q", Some("a&b=c")).set("page", None);
        let s = q.to_search();
        assert_eq!(Query::parse(&s).get("q"), Some("a&b=c"));
        assert!(!s.contains("page"));
        assert_eq!(Query::parse("timeRange=2h").range(), DEFAULT_RANGE);
        assert_eq!(Query::default().to_search(), "");
        assert_eq!(Query::parse("?timeRange=1h&q=x").range_only(), "?timeRange=1h");
        assert_eq!(Query::parse("?timeRange=bad").range_only(), "");
    }

    #[test]
    fn list_state_defaults_and_bounds() {
        let sorts = ["last_seen", "name"];
        let s = ListState::from_query(
            &Query::parse("?sort=evil&page=0&view=x&order=up"),
            &sorts,
            "cards",
        );
        assert_eq!(
            (s.sort.as_str(), s.page, s.view.as_str(), s.desc),
            ("last_seen", 0, "cards", true)
        );
        let s = ListState::from_query(
            &Query::parse("?sort=name&order=asc&page=4&view=table&q=v"),
            &sorts,
            "cards",
        );
        assert_eq!(
            (s.sort.as_str(), s.page, s.view.as_str(), s.desc),
            ("name", 3, "table", false)
        );
        let mut q = Query::default();
        s.write(&mut q, &sorts, "cards");
        assert_eq!(ListState::from_query(&q, &sorts, "cards"), s);
        let huge = ListState::from_query(
            &Query::parse(&format!("?q={}", "x".repeat(5000))),
            &sorts,
            "cards",
        );
        assert_eq!(huge.search.len(), 200);
    }
}
