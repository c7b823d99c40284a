//! Every HTTP call the UI makes: the api's paths (built here, nowhere else) and one typed `GET`.
//! Paths are relative so the UI works behind any host. Answers are the api's own DTOs from
//! `dvmdash-core`.

use dvmdash_core::dto::TimeRange;

use crate::route::{ListState, Query};

/// A failed call, worded for the error banner: what failed and, when the api said, why.
#[derive(Debug, Clone, PartialEq)]
pub struct ApiError {
    /// HTTP status, or `None` when the api could not be reached at all.
    pub status: Option<u16>,
    pub message: String,
}

impl ApiError {
    pub fn is_not_found(&self) -> bool {
        self.status == Some(404)
    }

    /// One sentence for people.
    pub fn describe(&self) -> String {
        match self.status {
            None => format!(
                "The dvmdash api cannot be reached ({}). Retrying automatically.",
                self.message
            ),
            Some(429) => format!(
                "Too many requests: the api asks to slow down ({}). Retrying shortly.",
                self.message
            ),
            Some(404) => format!("Not found: {}", self.message),
            Some(400) => format!("The api refused a parameter: {}", self.message),
            Some(503) => format!("The api's database is unavailable: {}", self.message),
            Some(s) => format!("The api answered {s}: {}", self.message),
        }
    }
}

fn range(r: TimeRange) -> String {
    format!("timeRange={}", r.as_str())
}

pub fn global(r: TimeRange) -> String {
    format!("/api/stats/global/latest?{}", range(r))
}

pub fn performance(r: TimeRange, group_by: &str) -> String {
    format!("/api/stats/performance?{}&groupBy={group_by}", range(r))
}

pub fn payments(r: TimeRange, group_by: &str) -> String {
    format!("/api/stats/payments?{}&groupBy={group_by}", range(r))
}

pub fn contextvm_traffic(r: TimeRange) -> String {
    format!("/api/contextvm/traffic?{}", range(r))
}

pub fn prices(r: TimeRange, group_by: &str) -> String {
    format!("/api/stats/prices?{}&groupBy={group_by}", range(r))
}

pub fn reach(r: TimeRange) -> String {
    format!("/api/stats/reach?{}", range(r))
}

pub fn competition(r: TimeRange) -> String {
    format!("/api/stats/competition?{}", range(r))
}

pub fn whats_new(r: TimeRange) -> String {
    format!("/api/stats/new?{}", range(r))
}

pub fn history() -> String {
    "/api/history/monthly".to_owned()
}

/// A path segment: ids come from the URL bar and may hold anything.
fn segment(s: &str) -> String {
    form_urlencoded::byte_serialize(s.as_bytes())
        .collect::<String>()
        .replace('+', "%20")
}

pub fn dvm(id: &str, r: TimeRange) -> String {
    format!("/api/stats/dvm/{}?{}", segment(id), range(r))
}

/// Not windowed: the collectors' counters since they started, read every refresh.
pub fn relay_status(r: TimeRange) -> String {
    format!("/api/relays/status?timeRange={}", r.as_str())
}

pub fn relay_coverage(r: TimeRange) -> String {
    format!("/api/relays/coverage?{}", range(r))
}

/// The relays a DVM's events appear on (the last 30 days, not windowed).
pub fn dvm_relays(id: &str) -> String {
    format!("/api/dvms/{}/relays", segment(id))
}

/// One service's status, uptime and timeline (not windowed: always the last day and week).
pub fn liveness(id: &str) -> String {
    format!("/api/liveness/{}", segment(id))
}

pub fn kind(kind: &str, r: TimeRange) -> String {
    format!("/api/stats/kind/{}?{}", segment(kind), range(r))
}

/// `/api/dvms` or `/api/kinds` for one page of a list.
pub fn list(path: &str, s: &ListState, page_size: u64) -> String {
    let mut q = Query::default();
    q.set("timeRange", Some(s.range.as_str()))
        .set("limit", Some(&page_size.to_string()))
        .set("offset", Some(&(s.page * page_size).to_string()))
        .set("search", Some(s.search.trim()))
        .set("sort", Some(&s.sort))
        .set("order", Some(if s.desc { "desc" } else { "asc" }));
    format!("{path}{}", q.to_search())
}

/// `/api/directory` for one page of a family.
pub fn directory(s: &ListState, family: &str, page_size: u64) -> String {
    let mut q = Query::default();
    q.set("family", Some(family).filter(|f| *f != "all"))
        .set("limit", Some(&page_size.to_string()))
        .set("offset", Some(&(s.page * page_size).to_string()))
        .set("search", Some(s.search.trim()))
        .set("sort", Some(&s.sort))
        .set("order", Some(if s.desc { "desc" } else { "asc" }));
    format!("/api/directory{}", q.to_search())
}

pub const ADMIN_STATUS: &str = "/api/admin/status";
pub const ADMIN_RELAYS: &str = "/api/admin/relays";
pub const ADMIN_COLLECTORS: &str = "/api/admin/collectors";
pub const ADMIN_AUDIT: &str = "/api/admin/audit?limit=50";
pub const ADMIN_STREAM: &str = "/api/admin/stream";
pub const ADMIN_CLICKHOUSE: &str = "/api/admin/clickhouse";
pub const ADMIN_REPLAY: &str = "/api/admin/dead-letters/replay";
pub const ADMIN_DISCARD: &str = "/api/admin/dead-letters/discard";

/// One page of dead letters, after `after` (from the oldest when `None`).
pub fn admin_dead_letters(after: Option<&str>, page_size: u32) -> String {
    let mut q = form_urlencoded::Serializer::new(String::new());
    q.append_pair("limit", &page_size.to_string());
    if let Some(a) = after {
        q.append_pair("after", a);
    }
    format!("/api/admin/dead-letters?{}", q.finish())
}

/// `DELETE` target for one relay.
pub fn admin_relay(url: &str) -> String {
    let q: String = form_urlencoded::Serializer::new(String::new())
        .append_pair("url", url)
        .finish();
    format!("{ADMIN_RELAYS}?{q}")
}

/// One admin api call with the bearer token; JSON body in and out.
#[cfg(target_arch = "wasm32")]
pub async fn admin<T: serde::de::DeserializeOwned>(
    method: &str,
    url: &str,
    token: &str,
    body: Option<String>,
) -> Result<T, ApiError> {
    use gloo_net::http::{Method, RequestBuilder};
    let method = match method {
        "POST" => Method::POST,
        "PUT" => Method::PUT,
        "DELETE" => Method::DELETE,
        _ => Method::GET,
    };
    let req = RequestBuilder::new(url)
        .method(method)
        .header("Authorization", &format!("Bearer {token}"));
    let sent = match body {
        Some(b) => {
            req.header("Content-Type", "application/json")
                .body(b)
                .map_err(|e| ApiError {
                    status: None,
                    message: format!("cannot send: {e}"),
                })?
                .send()
                .await
        }
        None => req.send().await,
    };
    answer(sent, url).await
}

#[cfg(target_arch = "wasm32")]
pub async fn get_json<T: serde::de::DeserializeOwned>(url: &str) -> Result<T, ApiError> {
    answer(gloo_net::http::Request::get(url).send().await, url).await
}

/// An answer as the pages need it: the JSON, or an error worded from the api's body (with the wait
/// after a 429).
#[cfg(target_arch = "wasm32")]
async fn answer<T: serde::de::DeserializeOwned>(
    sent: Result<gloo_net::http::Response, gloo_net::Error>,
    url: &str,
) -> Result<T, ApiError> {
    use dvmdash_core::dto::ErrorBody;
    let resp = sent.map_err(|e| ApiError {
        status: None,
        message: format!("network error: {e}"),
    })?;
    let status = resp.status();
    if !resp.ok() {
        let retry = resp.headers().get("retry-after");
        let message = match resp.json::<ErrorBody>().await {
            Ok(body) => body.error,
            Err(_) => format!("HTTP {status}"),
        };
        let message = match retry {
            Some(s) if status == 429 => format!("{message}; retry in {s} s"),
            _ => message,
        };
        return Err(ApiError {
            status: Some(status),
            message,
        });
    }
    resp.json::<T>().await.map_err(|e| ApiError {
        status: Some(status),
        message: format!("unexpected answer from {url}: {e}"),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_escape_what_users_type() {
        assert_eq!(
            dvm("npub1x", TimeRange::Day),
            "/api/stats/dvm/npub1x?timeRange=24h"
        );
        assert_eq!(
            dvm("../admin?x=1", TimeRange::Hour),
            "/api/stats/dvm/..%2Fadmin%3Fx%3D1?timeRange=1h"
        );
        assert_eq!(
            kind("5300", TimeRange::Month),
            "/api/stats/kind/5300?timeRange=30d"
        );
        let s = ListState::from_query(
            &Query::parse("?q=a%26b&page=3&sort=name&order=asc"),
            &["last_seen", "name"],
            "cards",
        );
        assert_eq!(
            list("/api/dvms", &s, 24),
            "/api/dvms?timeRange=24h&limit=24&offset=48&search=a%26b&sort=name&order=asc"
        );
    }

    #[test]
    fn errors_say_what_failed() {
        let e = ApiError {
            status: None,
            message: "network error: refused".into(),
        };
        assert!(e.describe().contains("cannot be reached"));
        let e = ApiError {
            status: Some(429),
            message: "too many requests; retry in 2 s".into(),
        };
        assert!(e.describe().contains("Too many requests"));
        assert!(
            ApiError {
                status: Some(404),
                message: String::new()
            }
            .is_not_found()
        );
    }
}
