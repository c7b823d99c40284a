//! Serving the built web UI: static files, and `index.html` for every other path so client-side
//! routes survive a reload. When the UI was not built, a short page says how to build it instead of
//! a bare 404.

use std::path::Path;

use axum::http::StatusCode;
use axum::response::{Html, IntoResponse};
use axum::routing::MethodRouter;
use tower_http::services::{ServeDir, ServeFile};

const NOT_BUILT: &str = "<!doctype html><html><head><title>dvmdash</title></head><body>\
<h1>dvmdash</h1><p>The web UI has not been built. Run <code>scripts/build-ui.sh</code> (the demo \
command does it for you), or set <code>DVMDASH_UI_DIR</code>. The API works meanwhile: \
<a href=\"/api/stats/global/latest?timeRange=1h\">/api/stats/global/latest</a>, \
<a href=\"/health\">/health</a>.</p></body></html>";

pub fn service(dir: &Path) -> MethodRouter {
    let index = dir.join("index.html");
    if index.is_file() {
        axum::routing::get_service(ServeDir::new(dir).fallback(ServeFile::new(index)))
    } else {
        axum::routing::get(|| async { (StatusCode::SERVICE_UNAVAILABLE, Html(NOT_BUILT)).into_response() })
    }
}

pub fn check(dir: &Path) {
    if !dir.join("index.html").is_file() {
        tracing::warn!(dir = %dir.display(), "web ui not built; serving an explanation page at /");
    }
}
