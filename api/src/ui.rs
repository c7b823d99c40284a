//! Serving the built web UI: static files, and for every page path `index.html` with that page's
//! own link-preview tags (title, description with its headline numbers, the DVM's picture), so a
//! link pasted into a Nostr client or a chat shows what it points to. Client-side routes survive a
//! reload because every page path gets the same app. When the UI was not built, a short page says
//! how to build it instead of a bare 404.
//!
//! Preview numbers come from the response cache under the api's own keys, so a preview never costs
//! more than the page's first api call; a preview that takes longer than [`PREVIEW_BUDGET`] falls
//! back to the generic tags rather than delaying the page.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::{Query, State};
use axum::http::{StatusCode, Uri, header};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::MethodRouter;
use dvmdash_core::dto::{DvmStats, GlobalStats, KindStats, TimeRange};
use dvmdash_core::fmt::group_digits;
use serde::Deserialize;
use tower_http::services::ServeDir;

use crate::AppState;
use crate::routes::stats::{cached_body, dvm_key, global_key, kind_key};

const NOT_BUILT: &str = "<!doctype html><html><head><title>dvmdash</title></head><body>\
<h1>dvmdash</h1><p>The web UI has not been built. Run <code>scripts/build-ui.sh</code> (the demo \
command does it for you), or set <code>DVMDASH_UI_DIR</code>. The API works meanwhile: \
<a href=\"/api/stats/global/latest?timeRange=1h\">/api/stats/global/latest</a>, \
<a href=\"/health\">/health</a>.</p></body></html>";

/// The generated tags replace everything between these two comments of `index.html`.
const START: &str = "<!-- preview -->";
const END: &str = "<!-- /preview -->";
/// Longest wait for a preview's numbers before the generic tags are served.
pub const PREVIEW_BUDGET: Duration = Duration::from_millis(400);
const SITE: &str = "dvmdash";

/// What a link to one page says about itself.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Preview {
    pub title: String,
    pub description: String,
    /// An absolute http(s) image URL (a DVM's picture); anything else is dropped.
    pub image: Option<String>,
}

/// Escapes text for an HTML attribute or element: names and abouts are attacker-controlled.
pub fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            // Control characters have no place in a preview (and some break parsers).
            c if c.is_control() => out.push(' '),
            c => out.push(c),
        }
    }
    out
}

/// At most `max` characters of the trimmed text, with an ellipsis when cut.
fn clip(s: &str, max: usize) -> String {
    dvmdash_core::fmt::clip(s.trim(), max)
}

/// The `<head>` tags of a preview: title, description, OpenGraph and Twitter card, all escaped.
pub fn preview_tags(p: &Preview) -> String {
    let title = escape(&clip(&p.title, 120));
    let description = escape(&clip(&p.description, 300));
    let mut out = format!(
        "<title>{title}</title>\n\
         <meta name=\"description\" content=\"{description}\">\n\
         <meta property=\"og:site_name\" content=\"{SITE}\">\n\
         <meta property=\"og:type\" content=\"website\">\n\
         <meta property=\"og:title\" content=\"{title}\">\n\
         <meta property=\"og:description\" content=\"{description}\">\n\
         <meta name=\"twitter:title\" content=\"{title}\">\n\
         <meta name=\"twitter:description\" content=\"{description}\">\n"
    );
    let image = p
        .image
        .as_deref()
        .map(str::trim)
        .filter(|u| (u.starts_with("https://") || u.starts_with("http://")) && u.len() <= 2048);
    match image {
        Some(url) => {
            let url = escape(url);
            out.push_str(&format!(
                "<meta property=\"og:image\" content=\"{url}\">\n\
                 <meta name=\"twitter:image\" content=\"{url}\">\n\
                 <meta name=\"twitter:card\" content=\"summary\">\n"
            ));
        }
        None => out.push_str("<meta name=\"twitter:card\" content=\"summary\">\n"),
    }
    out
}

/// `index.html` with the block between the preview markers replaced by `tags`.
pub fn inject(index: &str, tags: &str) -> String {
    match (index.find(START), index.find(END)) {
        (Some(s), Some(e)) if s < e => {
            format!("{}{START}\n{tags}{}", &index[..s], &index[e..])
        }
        _ => index.replacen("</head>", &format!("{tags}</head>"), 1),
    }
}

fn window_words(r: TimeRange) -> &'static str {
    match r {
        TimeRange::Hour => "the last hour",
        TimeRange::Day => "the last 24 hours",
        TimeRange::Week => "the last 7 days",
        TimeRange::Month => "the last 30 days",
    }
}

fn n(v: u64) -> String {
    group_digits(v, ',')
}

/// A DVM's display name: its profile name, else its shortened npub.
fn dvm_label(name: Option<&str>, npub: &str) -> String {
    match name.map(str::trim).filter(|n| !n.is_empty()) {
        Some(n) => n.to_owned(),
        None if npub.len() > 20 => format!("{}…{}", &npub[..12], &npub[npub.len() - 6..]),
        None => npub.to_owned(),
    }
}

pub fn overview_preview(g: &GlobalStats, r: TimeRange) -> Preview {
    Preview {
        title: "dvmdash: Nostr Data Vending Machine activity".into(),
        description: format!(
            "In {}: {} job requests, {} results, {} feedback, {} active DVMs, {} customers, {} kinds.",
            window_words(r),
            n(g.total_requests),
            n(g.total_responses),
            n(g.total_feedback),
            n(g.unique_dvms),
            n(g.unique_users),
            n(g.unique_kinds)
        ),
        image: None,
    }
}

pub fn dvm_preview(d: &DvmStats, r: TimeRange) -> Preview {
    let name = dvm_label(d.dvm_name.as_deref(), &d.npub);
    let about = d.dvm_about.as_deref().map(|a| clip(a, 160)).unwrap_or_default();
    let numbers = format!(
        "{} results and {} feedback in {}; serves kinds {}.",
        n(d.total_responses),
        n(d.total_feedback),
        window_words(r),
        if d.served_kinds.is_empty() {
            "none yet".to_owned()
        } else {
            d.served_kinds
                .iter()
                .map(u16::to_string)
                .collect::<Vec<_>>()
                .join(", ")
        }
    );
    Preview {
        title: format!("{name}: DVM on dvmdash"),
        description: if about.is_empty() {
            numbers
        } else {
            format!("{about} · {numbers}")
        },
        image: d.dvm_picture.clone(),
    }
}

pub fn kind_preview(k: &KindStats, r: TimeRange) -> Preview {
    let label = match &k.name {
        Some(name) => format!("Kind {} ({name})", k.kind),
        None => format!("Kind {}", k.kind),
    };
    Preview {
        title: format!("{label}: DVM job kind on dvmdash"),
        description: format!(
            "In {}: {} requests, {} results; {} DVMs have served it.",
            window_words(r),
            n(k.total_requests),
            n(k.total_responses),
            n(k.num_supporting_dvms)
        ),
        image: None,
    }
}

fn static_preview(title: &str, description: &str) -> Preview {
    Preview {
        title: format!("{title}: dvmdash"),
        description: description.into(),
        image: None,
    }
}

/// The page a path names, as the UI's router sees it.
#[derive(Debug, Clone, PartialEq)]
pub enum Page {
    Overview,
    Dvms,
    Dvm(String),
    Kinds,
    Kind(String),
    New,
    History,
    Directory,
    Relays,
    Admin,
    NotFound,
}

pub fn page_of(path: &str) -> Page {
    let parts: Vec<&str> = path.split('/').filter(|p| !p.is_empty()).collect();
    match parts.as_slice() {
        [] => Page::Overview,
        ["dvm-stats"] => Page::Dvms,
        ["dvm-stats", id] => Page::Dvm((*id).to_owned()),
        ["kind-stats"] => Page::Kinds,
        ["kind-stats", k] => Page::Kind((*k).to_owned()),
        ["new"] => Page::New,
        ["history"] => Page::History,
        ["directory"] => Page::Directory,
        ["relays"] => Page::Relays,
        ["admin"] => Page::Admin,
        _ => Page::NotFound,
    }
}

#[derive(Debug, Deserialize, Default)]
struct PageQuery {
    #[serde(rename = "timeRange")]
    time_range: Option<String>,
}

/// The preview of a page and the status the page deserves (404 for unknown paths, DVMs, kinds).
async fn preview_for(state: &AppState, page: &Page, range: TimeRange) -> (Preview, StatusCode) {
    let ok = StatusCode::OK;
    let missing = |what: &str| {
        (
            static_preview("Not found", &format!("{what} was not found on dvmdash.")),
            StatusCode::NOT_FOUND,
        )
    };
    match page {
        Page::Overview => match fetch::<GlobalStats, _, _>(state, global_key(range), move |s| async move {
            s.global(range).await
        })
        .await
        {
            Ok(Some(g)) => (overview_preview(&g, range), ok),
            _ => (generic(), ok),
        },
        Page::Dvm(id) => {
            let Some(pk) = dvmdash_core::nip19::parse_pubkey(id) else {
                return missing("This DVM id");
            };
            match fetch::<DvmStats, _, _>(state, dvm_key(&pk, range), move |s| async move {
                s.dvm(pk, range).await
            })
            .await
            {
                Ok(Some(d)) => (dvm_preview(&d, range), ok),
                Ok(None) => missing("This DVM"),
                Err(()) => (static_preview("DVM", "A Data Vending Machine on dvmdash."), ok),
            }
        }
        Page::Kind(k) => {
            let Ok(kind) = k.parse::<u16>() else {
                return missing("This kind");
            };
            match fetch::<KindStats, _, _>(state, kind_key(kind, range), move |s| async move {
                s.kind(kind, range).await
            })
            .await
            {
                Ok(Some(k)) => (kind_preview(&k, range), ok),
                Ok(None) => missing("This kind"),
                Err(()) => (
                    static_preview(&format!("Kind {kind}"), "A DVM job kind on dvmdash."),
                    ok,
                ),
            }
        }
        Page::Dvms => (
            static_preview(
                "DVMs",
                "Every Nostr Data Vending Machine seen: results, success rate, latency, kinds served.",
            ),
            ok,
        ),
        Page::Kinds => (
            static_preview(
                "Job kinds",
                "Every NIP-90 job kind in use: requests, results and the DVMs serving it.",
            ),
            ok,
        ),
        Page::New => (
            static_preview("What's new", "DVMs and job kinds seen for the first time."),
            ok,
        ),
        Page::History => (
            static_preview(
                "History",
                "Nostr DVM activity month by month since the first event.",
            ),
            ok,
        ),
        Page::Directory => (
            static_preview(
                "Directory",
                "Every DVM-like service (NIP-89, ContextVM, encrypted DVMs) and whether it is alive now.",
            ),
            ok,
        ),
        Page::Relays => (
            static_preview(
                "Relays",
                "Which watched relays carry the Nostr DVM traffic, and which carry events no other relay does.",
            ),
            ok,
        ),
        Page::Admin => (
            static_preview("Admin", "The dvmdash operators' console (admin token required)."),
            ok,
        ),
        Page::NotFound => missing("This page"),
    }
}

fn generic() -> Preview {
    Preview {
        title: "dvmdash: Nostr Data Vending Machine activity".into(),
        description: "Live statistics of Nostr Data Vending Machines (NIP-90): requests, results, DVMs, kinds, latency and success rates.".into(),
        image: None,
    }
}

/// `Ok(Some)` the answer, `Ok(None)` a 404 from the api, `Err` anything else (slow, failing).
async fn fetch<T, F, Fut>(state: &AppState, key: String, f: F) -> Result<Option<T>, ()>
where
    T: serde::de::DeserializeOwned,
    F: Fn(crate::service::Service) -> Fut + Send + Sync + 'static,
    Fut: std::future::Future<Output = crate::error::ApiResult<axum::body::Bytes>> + Send + 'static,
{
    match tokio::time::timeout(PREVIEW_BUDGET, cached_body(state, key, false, f)).await {
        Ok(Ok((body, _))) => serde_json::from_slice(&body).map(Some).map_err(|_| ()),
        Ok(Err(crate::error::ApiError::NotFound(_))) => Ok(None),
        _ => Err(()),
    }
}

#[derive(Clone)]
struct Pages {
    state: AppState,
    index: Arc<str>,
}

async fn page(State(p): State<Pages>, uri: Uri, Query(q): Query<PageQuery>) -> Response {
    let range = q
        .time_range
        .as_deref()
        .and_then(TimeRange::parse)
        .unwrap_or(TimeRange::Day);
    let page = page_of(uri.path());
    let (preview, status) = preview_for(&p.state, &page, range).await;
    (
        status,
        [(header::CACHE_CONTROL, "no-cache")],
        Html(inject(&p.index, &preview_tags(&preview))),
    )
        .into_response()
}

pub fn service(dir: &Path, state: AppState) -> MethodRouter {
    let index = dir.join("index.html");
    match std::fs::read_to_string(&index) {
        Ok(html) => {
            let pages = Pages {
                state,
                index: Arc::from(html),
            };
            let page = axum::handler::Handler::with_state(page, pages);
            // Directories (`/`) are pages too, not ServeDir's raw index.html.
            axum::routing::get_service(
                // Pre-gzipped copies (written by the UI build) are sent to browsers that take gzip.
                ServeDir::new(dir)
                    .precompressed_gzip()
                    .append_index_html_on_directories(false)
                    .fallback(page),
            )
        }
        Err(_) => axum::routing::get(|| async {
            (StatusCode::SERVICE_UNAVAILABLE, Html(NOT_BUILT)).into_response()
        }),
    }
}

pub fn check(dir: &Path) {
    if !dir.join("index.html").is_file() {
        tracing::warn!(dir = %dir.display(), "web ui not built; serving an explanation page at /");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_hostile_names_everywhere() {
        let d = DvmStats {
            dvm_name: Some("<script>alert(\"x\")</script>&'".into()),
            dvm_about: Some("about\u{0}<b>".into()),
            dvm_picture: Some("https://e.x/p.png\"><script>".into()),
            npub: "npub1".into(),
            ..Default::default()
        };
        let tags = preview_tags(&dvm_preview(&d, TimeRange::Day));
        assert!(!tags.contains("<script>"), "{tags}");
        assert!(!tags.contains("<b>"), "{tags}");
        assert!(
            tags.contains("&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;&amp;&#39;"),
            "{tags}"
        );
        assert!(tags.contains("og:image\" content=\"https://e.x/p.png&quot;&gt;&lt;script&gt;\""));
        // Every attribute value stays inside its quotes: an even number of quotes per line.
        for line in tags.lines() {
            assert_eq!(line.matches('"').count() % 2, 0, "{line}");
        }
    }

    #[test]
    fn only_web_images_and_bounded_text() {
        let p = Preview {
            title: "t".repeat(500),
            description: "d".repeat(5000),
            image: Some("javascript:alert(1)".into()),
        };
        let tags = preview_tags(&p);
        assert!(!tags.contains("og:image"));
        assert!(tags.len() < 2000, "{}", tags.len());
        assert!(tags.contains('…'));
    }

    #[test]
    fn headline_numbers_in_descriptions() {
        let g = GlobalStats {
            total_requests: 12_345,
            total_responses: 678,
            unique_dvms: 9,
            ..Default::default()
        };
        let p = overview_preview(&g, TimeRange::Week);
        assert!(p.description.contains("12,345 job requests"), "{}", p.description);
        assert!(p.description.contains("678 results"));
        assert!(p.description.contains("the last 7 days"));
        let k = KindStats {
            kind: 5300,
            name: Some("Content discovery".into()),
            total_requests: 40,
            ..Default::default()
        };
        assert_eq!(
            kind_preview(&k, TimeRange::Hour).title,
            "Kind 5300 (Content discovery): DVM job kind on dvmdash"
        );
        let d = DvmStats {
            npub: "npub1qqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqq".into(),
            served_kinds: vec![5300, 5301],
            total_responses: 3,
            ..Default::default()
        };
        let p = dvm_preview(&d, TimeRange::Day);
        assert_eq!(p.title, "npub1qqqqqqq…qqqqqq: DVM on dvmdash");
        assert!(
            p.description.contains("serves kinds 5300, 5301"),
            "{}",
            p.description
        );
    }

    #[test]
    fn injects_between_markers_or_before_head_end() {
        let index = "<html><head><meta charset=\"utf-8\">\n<!-- preview -->\n<title>old</title>\n<!-- /preview -->\n</head></html>";
        let out = inject(index, "<title>new</title>\n");
        assert!(
            out.contains("<title>new</title>") && !out.contains("old"),
            "{out}"
        );
        assert_eq!(out.matches("<!-- /preview -->").count(), 1);
        let bare = inject("<html><head></head></html>", "<title>x</title>");
        assert_eq!(bare, "<html><head><title>x</title></head></html>");
    }

    #[test]
    fn routes_match_the_ui() {
        assert_eq!(page_of("/"), Page::Overview);
        assert_eq!(page_of("/dvm-stats"), Page::Dvms);
        assert_eq!(page_of("/dvm-stats/"), Page::Dvms);
        assert_eq!(page_of("/dvm-stats/npub1x"), Page::Dvm("npub1x".into()));
        assert_eq!(page_of("/kind-stats/5300"), Page::Kind("5300".into()));
        assert_eq!(page_of("/new"), Page::New);
        assert_eq!(page_of("/history"), Page::History);
        assert_eq!(page_of("/directory"), Page::Directory);
        assert_eq!(page_of("/relays"), Page::Relays);
        assert_eq!(page_of("/admin"), Page::Admin);
        assert_eq!(page_of("/nope/deeper"), Page::NotFound);
    }
}
