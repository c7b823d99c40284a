//! Request metrics, labelled by matched route (never the raw path, which would be unbounded).

use std::time::Instant;

use axum::extract::{MatchedPath, Request};
use axum::middleware::Next;
use axum::response::Response;
use metrics::{counter, histogram};

pub const REQUESTS: &str = "dvmdash_api_requests_total";
pub const REQUEST_SECONDS: &str = "dvmdash_api_request_duration_seconds";
pub const CACHE_HITS: &str = "dvmdash_api_cache_hits_total";
pub const CACHE_MISSES: &str = "dvmdash_api_cache_misses_total";
pub const CACHE_REFRESHES: &str = "dvmdash_api_cache_refreshes_total";
pub const CACHE_STALE: &str = "dvmdash_api_cache_stale_total";
pub const CACHE_ENTRIES: &str = "dvmdash_api_cache_entries";
pub const CACHE_BYTES: &str = "dvmdash_api_cache_bytes";

pub fn describe() {
    metrics::describe_counter!(REQUESTS, "HTTP requests answered, by method, route and status");
    metrics::describe_counter!(CACHE_HITS, "statistics answered from the response cache");
    metrics::describe_counter!(CACHE_MISSES, "statistics computed for a request (or failed)");
    metrics::describe_counter!(
        CACHE_REFRESHES,
        "answers recomputed in the background before they went stale"
    );
    metrics::describe_counter!(
        CACHE_STALE,
        "answers served behind the data while their recomputation ran in the background"
    );
    metrics::describe_gauge!(CACHE_ENTRIES, "answers held in the response cache");
    metrics::describe_gauge!(
        CACHE_BYTES,
        metrics::Unit::Bytes,
        "bytes of answers held in the response cache"
    );
    for name in [CACHE_HITS, CACHE_MISSES, CACHE_REFRESHES, CACHE_STALE] {
        metrics::counter!(name).increment(0);
    }
    metrics::describe_histogram!(
        REQUEST_SECONDS,
        metrics::Unit::Seconds,
        "HTTP request duration by route"
    );
}

pub async fn track(req: Request, next: Next) -> Response {
    let started = Instant::now();
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map(|p| p.as_str().to_owned())
        .unwrap_or_else(|| {
            if req.uri().path().starts_with("/api/") {
                "unmatched"
            } else {
                "ui"
            }
            .to_owned()
        });
    // Any token is a valid method to hyper; keep the label set bounded.
    let method: &'static str = match req.method().as_str() {
        "GET" => "GET",
        "HEAD" => "HEAD",
        "POST" => "POST",
        "PUT" => "PUT",
        "DELETE" => "DELETE",
        "OPTIONS" => "OPTIONS",
        "PATCH" => "PATCH",
        _ => "other",
    };
    let resp = next.run(req).await;
    let status = resp.status().as_u16().to_string();
    counter!(REQUESTS, "method" => method, "route" => route.clone(), "status" => status).increment(1);
    histogram!(REQUEST_SECONDS, "route" => route).record(started.elapsed().as_secs_f64());
    resp
}
