//! The HTTP calls of the UI. Paths are relative so the UI works behind any prefix-less host.

use dvmdash_core::dto::{ErrorBody, GlobalStats, TimeRange};
use gloo_net::http::Request;

/// `GET /api/stats/global/latest?timeRange=…`
pub async fn global_stats(range: TimeRange) -> Result<GlobalStats, String> {
    let url = format!("/api/stats/global/latest?timeRange={}", range.as_str());
    let resp = Request::get(&url)
        .send()
        .await
        .map_err(|e| format!("network error: {e}"))?;
    if !resp.ok() {
        let status = resp.status();
        return Err(match resp.json::<ErrorBody>().await {
            Ok(body) => format!("{status}: {}", body.error),
            Err(_) => format!("server answered {status}"),
        });
    }
    resp.json::<GlobalStats>()
        .await
        .map_err(|e| format!("unexpected answer: {e}"))
}
