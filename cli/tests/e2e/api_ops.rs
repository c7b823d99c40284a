//! The api's operational surface on a real socket with real Redis: the admin api behind its bearer
//! token (relay registry changes reach the coordinator and collectors without a restart), the
//! per-address rate limit, CORS for configured origins only, and the OpenAPI document.

use dvmdash_testkit as common;

use std::time::Duration;

use dvmdash_testkit::{isolated, request, wait_until};

const TOKEN: &str = "test-admin-token-0123456789";

fn auth() -> (&'static str, String) {
    ("Authorization", format!("Bearer {TOKEN}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn admin_registry_rate_limit_cors_and_openapi() {
    let (redis, clickhouse) = isolated();
    let (_relay, relay_url) = dvmdash::demo::start_relay(0).await.expect("relay");
    let mut args = common::args(redis, clickhouse, vec![relay_url.clone()]);
    args.api.admin_token = Some(dvmdash_core::config::Secret::new(TOKEN));
    args.api.rate_per_sec = 20;
    args.api.rate_burst = 40;
    args.api.cors_origins = vec!["https://dash.example".into()];
    let stack = common::start(args).await;
    let base = stack.base.clone();
    let (k, v) = auth();
    let with_token = [(k, v.as_str()), ("Content-Type", "application/json")];

    // Without the token, or with a wrong one: 401, and nothing changes.
    for (method, path, body) in [
        ("GET", "/api/admin/relays", ""),
        ("GET", "/api/admin/status", ""),
        ("GET", "/api/admin/collectors", ""),
        ("POST", "/api/admin/relays", r#"{"url":"wss://evil.example"}"#),
        ("DELETE", "/api/admin/relays?url=ws://127.0.0.1:1", ""),
        ("GET", "/api/admin/stream", ""),
        ("GET", "/api/admin/clickhouse", ""),
        ("GET", "/api/admin/dead-letters", ""),
        ("POST", "/api/admin/dead-letters/replay", r#"{"all": true}"#),
        ("POST", "/api/admin/dead-letters/discard", r#"{"all": true}"#),
        ("GET", "/api/admin/audit", ""),
    ] {
        let (status, head, _) =
            request(&base, method, path, &[("Content-Type", "application/json")], body).await;
        assert_eq!(status, 401, "{method} {path}");
        assert!(head.contains("www-authenticate: bearer"), "{head}");
        assert!(
            head.contains("cache-control: no-store"),
            "{method} {path}: {head}"
        );
        let (status, _, _) = request(
            &base,
            method,
            path,
            &[("Authorization", "Bearer wrong-token-0123456789xx")],
            body,
        )
        .await;
        assert_eq!(status, 401, "{method} {path} with a wrong token");
    }

    // With it: the registry, collectors and status, never stored by a cache.
    let (status, head, body) = request(&base, "GET", "/api/admin/relays", &with_token, "").await;
    assert_eq!(status, 200, "{body}");
    assert!(head.contains("cache-control: no-store"), "{head}");
    let relays: serde_json::Value = serde_json::from_str(&body).expect("json");
    assert_eq!(relays[0]["url"], relay_url.as_str());
    assert_eq!(relays[0]["added_by"], "config");

    let (status, _, body) = request(
        &base,
        "POST",
        "/api/admin/relays",
        &with_token,
        r#"{"url":"wss://Relay.Dvmdash.Invalid/","priority":"high"}"#,
    )
    .await;
    assert_eq!(status, 201, "{body}");
    let (status, _, _) = request(
        &base,
        "POST",
        "/api/admin/relays",
        &with_token,
        r#"{"url":"wss://relay.dvmdash.invalid"}"#,
    )
    .await;
    assert_eq!(status, 200, "adding a registered relay again is not an error");
    let (_, _, body) = request(&base, "GET", "/api/admin/relays", &with_token, "").await;
    let relays: serde_json::Value = serde_json::from_str(&body).expect("json");
    let added = relays
        .as_array()
        .and_then(|a| a.iter().find(|r| r["url"] == "wss://relay.dvmdash.invalid"))
        .cloned()
        .unwrap_or_default();
    assert_eq!(
        added["priority"], "high",
        "adding again without a priority keeps it: {body}"
    );
    let (status, _, body) = request(
        &base,
        "POST",
        "/api/admin/relays",
        &with_token,
        r#"{"url":"https://not-a-relay"}"#,
    )
    .await;
    assert_eq!(status, 400, "{body}");

    // The coordinator picks the new relay up by itself and a collector is assigned it.
    wait_until(
        "the new relay to be assigned",
        Duration::from_secs(10),
        || async {
            let (_, _, body) = request(&base, "GET", "/api/admin/status", &with_token, "").await;
            let s: serde_json::Value = serde_json::from_str(&body).map_err(|e| e.to_string())?;
            let ok = s["relays"] == 2 && s["unwatched_relays"].as_array().is_some_and(|a| a.is_empty());
            if ok { Ok(()) } else { Err(body) }
        },
    )
    .await;
    let (_, _, body) = request(&base, "GET", "/api/admin/collectors", &with_token, "").await;
    let collectors: serde_json::Value = serde_json::from_str(&body).expect("json");
    assert_eq!(collectors[0]["id"], "c1");
    assert!(
        collectors[0]["assigned"]
            .as_array()
            .is_some_and(|a| a.iter().any(|u| u == "wss://relay.dvmdash.invalid")),
        "{body}"
    );

    let (status, _, _) = request(
        &base,
        "PUT",
        "/api/admin/relays",
        &with_token,
        r#"{"url":"wss://relay.dvmdash.invalid","priority":"normal"}"#,
    )
    .await;
    assert_eq!(status, 200);
    let (status, _, _) = request(
        &base,
        "DELETE",
        "/api/admin/relays?url=wss://relay.dvmdash.invalid",
        &with_token,
        "",
    )
    .await;
    assert_eq!(status, 200);
    let (status, _, _) = request(
        &base,
        "DELETE",
        "/api/admin/relays?url=wss://relay.dvmdash.invalid",
        &with_token,
        "",
    )
    .await;
    assert_eq!(status, 404);
    wait_until(
        "the removed relay to be unassigned",
        Duration::from_secs(10),
        || async {
            let (_, _, body) = request(&base, "GET", "/api/admin/collectors", &with_token, "").await;
            if body.contains("relay.dvmdash.invalid") {
                Err(body)
            } else {
                Ok(())
            }
        },
    )
    .await;

    // A relay from DVMDASH_RELAYS that an operator removed is not seeded back by the coordinator.
    let remove_seeded = format!("/api/admin/relays?url={relay_url}");
    let (status, _, _) = request(&base, "DELETE", &remove_seeded, &with_token, "").await;
    assert_eq!(status, 200);
    tokio::time::sleep(Duration::from_secs(3)).await;
    let (_, _, body) = request(&base, "GET", "/api/admin/relays", &with_token, "").await;
    assert!(
        !body.contains(relay_url.as_str()),
        "a removed relay stays removed: {body}"
    );
    let (status, _, _) = request(
        &base,
        "POST",
        "/api/admin/relays",
        &with_token,
        &format!(r#"{{"url":"{relay_url}"}}"#),
    )
    .await;
    assert_eq!(status, 201);

    // CORS: the configured origin is allowed, others get no CORS headers.
    let preflight = |origin: &'static str| {
        let base = base.clone();
        async move {
            request(
                &base,
                "OPTIONS",
                "/api/stats/global/latest",
                &[("Origin", origin), ("Access-Control-Request-Method", "GET")],
                "",
            )
            .await
        }
    };
    let (_, head, _) = preflight("https://dash.example").await;
    assert!(
        head.contains("access-control-allow-origin: https://dash.example"),
        "{head}"
    );
    let (_, head, _) = preflight("https://evil.example").await;
    assert!(!head.contains("access-control-allow-origin"), "{head}");

    // The OpenAPI document describes the public api.
    // Every change above is audited by token fingerprint, newest first; the token is nowhere.
    let (status, _, body) = request(&base, "GET", "/api/admin/audit", &with_token, "").await;
    assert_eq!(status, 200, "{body}");
    assert!(!body.contains(TOKEN), "the audit never holds the token");
    let audit: serde_json::Value = serde_json::from_str(&body).expect("audit json");
    let entries = audit.as_array().expect("a list");
    let actions: Vec<&str> = entries.iter().filter_map(|e| e["action"].as_str()).collect();
    assert!(actions.contains(&"add") && actions.contains(&"remove"), "{audit}");
    let fingerprint = dvmdash_api::routes::admin::token_fingerprint(TOKEN);
    assert!(
        entries.iter().all(|e| e["actor"] == fingerprint.as_str()),
        "{audit}"
    );
    assert!(
        entries
            .windows(2)
            .all(|w| w[0]["at"].as_str() >= w[1]["at"].as_str()),
        "newest first"
    );
    let (status, _, _) = request(&base, "GET", "/api/admin/audit?limit=0", &with_token, "").await;
    assert_eq!(status, 400);
    let (status, head, _) = request(&base, "GET", "/api/admin/audit", &[], "").await;
    assert_eq!(status, 401);
    assert!(head.contains("cache-control: no-store"), "{head}");

    let (status, _, body) = request(&base, "GET", "/api/openapi.json", &[], "").await;
    assert_eq!(status, 200);
    let doc: serde_json::Value = serde_json::from_str(&body).expect("openapi json");
    assert!(doc["paths"]["/api/stats/global/latest"].is_object());
    // Every admin endpoint is documented with the bearer scheme it needs.
    assert_eq!(
        doc["components"]["securitySchemes"]["admin_token"]["scheme"], "bearer",
        "{doc}"
    );
    for (path, method) in [
        ("/api/admin/relays", "get"),
        ("/api/admin/relays", "post"),
        ("/api/admin/relays", "put"),
        ("/api/admin/relays", "delete"),
        ("/api/admin/collectors", "get"),
        ("/api/admin/status", "get"),
    ] {
        let op = &doc["paths"][path][method];
        assert!(
            op["security"][0]["admin_token"].is_array(),
            "{method} {path}: {op}"
        );
        assert!(op["responses"]["401"].is_object(), "{method} {path}: {op}");
    }

    // Past the per-address limit: 429 with Retry-After and a JSON body.
    let mut limited = None;
    for _ in 0..200 {
        let (status, head, body) =
            request(&base, "GET", "/api/stats/global/latest?timeRange=1h", &[], "").await;
        if status == 429 {
            limited = Some((head, body));
            break;
        }
        assert_eq!(status, 200);
    }
    let (head, body) = limited.expect("some request was rate limited");
    assert!(head.contains("retry-after:"), "{head}");
    let err: serde_json::Value = serde_json::from_str(&body).expect("json 429");
    assert_eq!(err["error"], "too many requests from this address");
    // The limit recovers.
    wait_until("the limit to recover", Duration::from_secs(10), || async {
        let (status, _, _) = request(&base, "GET", "/health", &[], "").await;
        if status == 200 {
            Ok(())
        } else {
            Err(status.to_string())
        }
    })
    .await;
    stack.stop().await;
}

/// The token is a header, never a cookie, and never written anywhere: `dvmdash api` as its own
/// process with debug logging is sent the right token, wrong ones, the token in a cookie and in
/// the query string, and changes that get audited; its whole log and every answer are searched.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_admin_token_is_never_a_cookie_nor_in_a_log_line_or_an_answer() {
    let (redis, clickhouse) = isolated();
    let port = common::free_port();
    let base = format!("http://127.0.0.1:{port}");
    let log_path = std::env::temp_dir().join(format!("dvmdash-api-log-{port}.txt"));
    let log = std::fs::File::create(&log_path).expect("log file");
    let mut api = common::browser::spawn(
        std::process::Command::new(env!("CARGO_BIN_EXE_dvmdash"))
            .arg("api")
            .env("REDIS_URL", redis.redis_url.expose())
            .env("DVMDASH_REDIS_PREFIX", &redis.redis_prefix)
            .env("CLICKHOUSE_URL", clickhouse.clickhouse_url.expose())
            .env("CLICKHOUSE_DATABASE", &clickhouse.clickhouse_database)
            .env("DVMDASH_API_ADDR", format!("127.0.0.1:{port}"))
            .env("DVMDASH_ADMIN_TOKEN", TOKEN)
            .env("DVMDASH_METRICS_ADDR", "")
            .env("DVMDASH_LOG", "debug")
            .env_remove("RUST_LOG")
            .stdout(log.try_clone().expect("log"))
            .stderr(log),
    );
    wait_until("the api to listen", Duration::from_secs(30), || {
        let base = base.clone();
        async move {
            let (status, _, body) = request(&base, "GET", "/health", &[], "").await;
            if status > 0 { Ok(()) } else { Err(body) }
        }
    })
    .await;
    let (k, v) = auth();
    let with_token = [(k, v.as_str()), ("Content-Type", "application/json")];
    let cookie = format!("dvmdash-admin-token={TOKEN}; token={TOKEN}; Authorization=Bearer {TOKEN}");
    let mut answers = String::new();
    for (method, path, body) in [
        (
            "POST",
            "/api/admin/relays",
            r#"{"url":"wss://relay.token-test.invalid"}"#,
        ),
        ("GET", "/api/admin/relays", ""),
        ("GET", "/api/admin/audit", ""),
        ("GET", "/api/admin/stream", ""),
        ("GET", "/api/admin/dead-letters", ""),
        ("POST", "/api/admin/dead-letters/discard", r#"{"all": true}"#),
        (
            "DELETE",
            "/api/admin/relays?url=wss://relay.token-test.invalid",
            "",
        ),
    ] {
        let (status, head, text) = request(&base, method, path, &with_token, body).await;
        assert!((200..300).contains(&status), "{method} {path}: {status} {text}");
        assert!(!head.to_lowercase().contains("set-cookie"), "{head}");
        answers.push_str(&head);
        answers.push_str(&text);
        // The same request carrying the token only as cookies, or in the query, is refused.
        let (status, head, text) = request(
            &base,
            method,
            path,
            &[("Cookie", cookie.as_str()), ("Content-Type", "application/json")],
            body,
        )
        .await;
        assert_eq!(status, 401, "{method} {path} with the token in a cookie");
        answers.push_str(&head);
        answers.push_str(&text);
        let sep = if path.contains('?') { '&' } else { '?' };
        let (status, _, _) = request(&base, method, &format!("{path}{sep}token={TOKEN}"), &[], body).await;
        assert_eq!(status, 401, "{method} {path} with the token in the query");
        // A wrong token that shares all but its last character.
        let near = format!("Bearer {}x", &TOKEN[..TOKEN.len() - 1]);
        let (status, head, text) =
            request(&base, method, path, &[("Authorization", near.as_str())], body).await;
        assert_eq!(status, 401, "{method} {path} with a near miss");
        answers.push_str(&head);
        answers.push_str(&text);
    }
    assert!(!answers.contains(TOKEN), "an answer held the token");
    api.0.kill().expect("stop the api");
    let _ = api.0.wait();
    let written = std::fs::read_to_string(&log_path).expect("read the log");
    let _ = std::fs::remove_file(&log_path);
    assert!(
        written.contains("admin change"),
        "the debug log was captured (it records the audited changes): {} bytes",
        written.len()
    );
    assert!(!written.contains(TOKEN), "the token is in the api's log");
    assert!(
        !written.contains(&TOKEN[..TOKEN.len() - 1]),
        "a near-miss token (or the token's prefix) is in the api's log"
    );
}
