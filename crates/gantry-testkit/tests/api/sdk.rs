//! The Rust SDK against a real server: live updates, fail-static, cache,
//! overrides, metrics, reconnect after a restart.

use std::collections::BTreeMap;
use std::time::Duration;

use gantry_sdk::{Context, GantryClient, OverrideValue, Source};
use gantry_testkit::{Options, TestApp};
use serde_json::json;

const WAIT: Duration = Duration::from_secs(10);

async fn flag_on(app: &TestApp, key: &str, on: bool) {
    let r = app
        .req(
            reqwest::Method::POST,
            &format!("/api/v1/flags/{key}/environments/production/{}", if on { "on" } else { "off" }),
            Some(&app.tokens.admin),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
}

/// Waits (bounded) until `pred` holds, driven by the SDK's change callback.
async fn until(client: &GantryClient, pred: impl Fn(&GantryClient) -> bool) {
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    let _sub = client.subscribe(None, move |_| {
        let _ = tx.send(());
    });
    let deadline = tokio::time::Instant::now() + WAIT;
    while !pred(client) {
        let left = deadline.saturating_duration_since(tokio::time::Instant::now());
        assert!(!left.is_zero(), "condition not reached within {WAIT:?} (last error: {:?})", client.last_error());
        // Woken by a change, or re-check after a short while (e.g. source changes without flag changes).
        let _ = tokio::time::timeout(left.min(Duration::from_millis(200)), rx.recv()).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn live_updates_reach_the_sdk() {
    let app = TestApp::spawn().await;
    app.create_flag(json!({"key": "live", "environments": {"production": {"enabled": false}}})).await;
    let client = GantryClient::builder().server(&app.base, &app.tokens.server).build().unwrap();
    client.wait_until_ready(WAIT).await.unwrap();
    let ctx = Context::new().with_user_id("u1");
    assert!(!client.is_enabled("live", &ctx));
    assert_eq!(client.source(), Source::Server);
    for round in 0..3 {
        flag_on(&app, "live", round % 2 == 0).await;
        until(&client, |c| c.is_enabled("live", &ctx) == (round % 2 == 0)).await;
    }
    // New flags arrive too, with their typed values.
    app.create_flag(json!({"key": "color", "kind": "string", "variants": [{"name": "blue", "weight": 1, "payload": {"type": "string", "value": "#00f"}}],
        "environments": {"production": {"enabled": true}}}))
    .await;
    until(&client, |c| c.string_value("color", &ctx, "none") == "#00f").await;
    let d = client.evaluate("color", &ctx);
    assert_eq!((d.variant.as_deref(), d.reason.as_str()), (Some("blue"), "STATIC"));
    assert_eq!(client.evaluate("missing", &ctx).error, Some(gantry_engine::ErrorCode::FlagNotFound));
    client.close().await;
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fail_static_cache_and_restart() {
    let cache_dir = tempfile::tempdir().unwrap();
    let cache = cache_dir.path().join("gantry-cache.json");
    let data = tempfile::tempdir().unwrap();
    let app = TestApp::spawn_with(Options { data_dir: Some(data.path().to_owned()), ..Default::default() }).await;
    let addr: std::net::SocketAddr = app.base.trim_start_matches("http://").parse().unwrap();
    app.create_flag(json!({"key": "kept", "environments": {"production": {"enabled": true}}})).await;
    let server_token = app.tokens.server.clone();
    let client = GantryClient::builder()
        .server(&app.base, &server_token)
        .cache_file(&cache)
        .max_backoff(Duration::from_millis(500))
        .build()
        .unwrap();
    client.wait_until_ready(WAIT).await.unwrap();
    let ctx = Context::new().with_user_id("u");
    assert!(client.is_enabled("kept", &ctx));
    assert!(cache.exists(), "the configuration is persisted");

    // Server down: the SDK keeps serving the last known configuration.
    app.stop().await;
    for _ in 0..20 {
        assert!(client.is_enabled("kept", &ctx));
    }

    // A new SDK instance starting while the server is down uses the cache.
    let offline = GantryClient::builder().server(format!("http://{addr}"), &server_token).cache_file(&cache).build().unwrap();
    offline.wait_until_ready(WAIT).await.unwrap();
    assert_eq!(offline.source(), Source::Cache);
    assert!(offline.is_enabled("kept", &ctx));
    offline.close().await;

    // Server back on the same address and data: the SDK reconnects and converges.
    let app = TestApp::spawn_with(Options { data_dir: Some(data.path().to_owned()), listen: Some(addr), ..Default::default() }).await;
    flag_on(&app, "kept", false).await;
    until(&client, |c| !c.is_enabled("kept", &ctx)).await;
    client.close().await;
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn corrupt_cache_is_reported_and_defaults_are_served() {
    let dir = tempfile::tempdir().unwrap();
    let cache = dir.path().join("cache.json");
    std::fs::write(&cache, b"{ this is not json").unwrap();
    // Nothing listens on this port: bind, note it, drop it.
    let addr = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap();
    let client = GantryClient::builder().server(format!("http://{addr}"), "gantry-server-x").cache_file(&cache).build().unwrap();
    let deadline = tokio::time::Instant::now() + WAIT;
    while client.cache_error().is_none() {
        assert!(tokio::time::Instant::now() < deadline, "no cache error reported: {:?}", client.last_error());
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let err = client.cache_error().unwrap();
    assert!(err.contains("cache.json") && err.contains("not a Gantry configuration"), "{err}");
    assert_eq!(client.source(), Source::Empty);
    assert!(client.bool_value("anything", &Context::new(), true), "defaults are served");
    client.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn overrides_win_and_say_so() {
    let app = TestApp::spawn().await;
    app.create_flag(json!({"key": "new-ui", "environments": {"production": {"enabled": true}}})).await;
    app.create_flag(json!({"key": "theme", "kind": "string", "variants": [
        {"name": "light", "weight": 1, "payload": {"type": "string", "value": "L"}},
        {"name": "dark", "weight": 0, "payload": {"type": "string", "value": "D"}}],
        "environments": {"production": {"enabled": true}}}))
        .await;
    let overrides: BTreeMap<String, OverrideValue> = gantry_sdk::overrides_from_vars([
        ("GANTRY_FLAG_NEW_UI".to_owned(), "false".to_owned()),
        ("GANTRY_FLAG_THEME".to_owned(), "dark".to_owned()),
    ]);
    let client = GantryClient::builder().server(&app.base, &app.tokens.server).overrides(overrides).build().unwrap();
    client.wait_until_ready(WAIT).await.unwrap();
    let ctx = Context::new();
    let d = client.evaluate("new-ui", &ctx);
    assert_eq!((d.enabled, d.reason.as_str()), (false, "OVERRIDE"));
    let d = client.evaluate("theme", &ctx);
    assert_eq!((d.value, d.variant.as_deref(), d.reason.as_str()), (Some(json!("D")), Some("dark"), "OVERRIDE"));
    client.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn close_flushes_usage_to_the_server() {
    let app = TestApp::spawn().await;
    app.create_flag(json!({"key": "counted", "environments": {"production": {"enabled": true}}})).await;
    let client = GantryClient::builder().server(&app.base, &app.tokens.server).metrics_interval(Duration::from_secs(3600)).build().unwrap();
    client.wait_until_ready(WAIT).await.unwrap();
    for i in 0..25 {
        assert!(client.is_enabled("counted", &Context::new().with_user_id(format!("u{i}"))));
    }
    client.close().await;
    let usage: serde_json::Value = app.admin_get("/api/v1/flags/counted/usage").await.json().await.unwrap();
    assert_eq!(usage[0]["yes"], 25, "{usage}");
    assert_eq!(client.dropped_metrics(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hundred_clients_survive_a_server_crash_and_converge_after_restart() {
    let data = tempfile::tempdir().unwrap();
    let app = TestApp::spawn_with(Options { data_dir: Some(data.path().to_owned()), ..Default::default() }).await;
    let addr: std::net::SocketAddr = app.base.trim_start_matches("http://").parse().unwrap();
    app.create_flag(json!({"key": "fault", "environments": {"production": {"enabled": true}}})).await;
    let token = app.tokens.server.clone();
    let mut clients = Vec::new();
    for _ in 0..100 {
        clients.push(
            GantryClient::builder()
                .server(&app.base, &token)
                .max_backoff(Duration::from_secs(1))
                .metrics_interval(Duration::from_secs(3600))
                .build()
                .unwrap(),
        );
    }
    for c in &clients {
        c.wait_until_ready(WAIT).await.unwrap();
    }
    let ctx = Context::new().with_user_id("u");
    app.kill().await;
    // Every client keeps serving the last known value while the server is gone.
    for c in &clients {
        assert!(c.is_enabled("fault", &ctx));
    }
    let app = TestApp::spawn_with(Options { data_dir: Some(data.path().to_owned()), listen: Some(addr), ..Default::default() }).await;
    let started = std::time::Instant::now();
    flag_on(&app, "fault", false).await;
    for c in &clients {
        until(c, |c| !c.is_enabled("fault", &ctx)).await;
    }
    // Reported, not asserted (timing belongs in benchmarks): see docs/benchmarks.md.
    #[allow(clippy::print_stdout)]
    {
        println!("100 clients converged {:.0} ms after the restarted server's change", started.elapsed().as_secs_f64() * 1000.0);
    }
    for c in &clients {
        c.close().await;
    }
    app.stop().await;
}
