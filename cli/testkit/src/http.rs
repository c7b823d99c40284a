//! Requests to the api under test, through reqwest.

use std::sync::LazyLock;
use std::time::Duration;

/// One client for the whole test binary (connection reuse), never through a proxy: every
/// address a test asks is on loopback.
static CLIENT: LazyLock<reqwest::Client> = LazyLock::new(|| {
    reqwest::Client::builder()
        .no_proxy()
        .timeout(Duration::from_secs(120))
        .build()
        .expect("http client")
});

/// What a request got back: status (0 when the server could not be reached), the headers as
/// lowercase `name: value` lines, and the body as text.
#[derive(Debug, Clone, Default)]
pub struct Response {
    pub status: u16,
    pub head: String,
    pub body: String,
}

/// Sends one request. A connection failure is status 0 rather than a panic, so tests can poll a
/// server that is still starting.
pub async fn send(method: &str, url: &str, headers: &[(&str, &str)], body: &str) -> Response {
    let method = reqwest::Method::from_bytes(method.as_bytes()).expect("http method");
    let mut req = CLIENT.request(method, url).body(body.to_owned());
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    let Ok(resp) = req.send().await else {
        return Response::default();
    };
    let status = resp.status().as_u16();
    let head = resp
        .headers()
        .iter()
        .map(|(k, v)| format!("{}: {}\n", k.as_str(), String::from_utf8_lossy(v.as_bytes())))
        .collect::<String>()
        .to_ascii_lowercase();
    let body = resp.text().await.unwrap_or_default();
    Response { status, head, body }
}

/// `method` on `base` + `path`; returns (status, lowercase headers, body).
pub async fn request(
    base: &str,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &str,
) -> (u16, String, String) {
    let r = send(method, &format!("{base}{path}"), headers, body).await;
    (r.status, r.head, r.body)
}

/// GET returning (status, body).
pub async fn http_get(url: &str) -> (u16, String) {
    let r = send("GET", url, &[], "").await;
    (r.status, r.body)
}

/// GET returning the parsed JSON body (`None` when it is not that type) and the status.
pub async fn get_json<T: serde::de::DeserializeOwned>(url: &str) -> (Option<T>, u16) {
    let (status, body) = http_get(url).await;
    (serde_json::from_str(&body).ok(), status)
}

/// GET of an admin endpoint with the bearer `token`; panics unless it answers 2xx with JSON.
pub async fn admin_get(base: &str, path: &str, token: &str) -> serde_json::Value {
    let auth = format!("Bearer {token}");
    let r = send("GET", &format!("{base}{path}"), &[("Authorization", &auth)], "").await;
    assert!(
        (200..300).contains(&r.status),
        "GET {path}: HTTP {}: {}",
        r.status,
        r.body
    );
    serde_json::from_str(&r.body).unwrap_or_else(|e| panic!("GET {path}: {e}: {}", r.body))
}
