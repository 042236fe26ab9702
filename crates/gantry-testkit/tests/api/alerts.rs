//! Alert rules and notifiers (issue #5): a rule over Gantry's own events goes
//! inactive → firing → resolved on a manual clock; on firing it aborts the
//! rollout and flips the kill switch; a local webhook receiver (real HTTP on
//! port 0) gets the Alertmanager v4 body after a 429 with `Retry-After`, then
//! the resolved notice; a Slack notifier gets the Slack format.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::IntoResponse;
use gantry_release::Timestamp;
use gantry_server::release::controller;
use gantry_server::ServerConfig;
use gantry_testkit::{Options, TestApp};
use reqwest::Method;
use serde_json::{json, Value};

use crate::support::{admin_delete, admin_get, admin_post, assert_error, send, T0_MS};

const SEC: i64 = 1_000;
/// Safety net only: waits poll for what arrived.
const SAFETY: Duration = Duration::from_secs(30);

#[derive(Clone, Default)]
struct Receiver {
    /// (path, body) of every request, including refused ones.
    bodies: Arc<Mutex<Vec<(String, Value)>>>,
    /// Requests to `/hook` still to refuse with 429 + `Retry-After: 1`.
    refuse: Arc<AtomicUsize>,
}

async fn receive(State(r): State<Receiver>, uri: axum::http::Uri, body: axum::body::Bytes) -> impl IntoResponse {
    let v: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    r.bodies.lock().unwrap().push((uri.path().to_owned(), v));
    let refuse = uri.path() == "/hook" && r.refuse.fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1)).is_ok();
    let mut headers = HeaderMap::new();
    if refuse {
        headers.insert("retry-after", HeaderValue::from_static("1"));
        (StatusCode::TOO_MANY_REQUESTS, headers)
    } else {
        (StatusCode::OK, headers)
    }
}

async fn start_receiver(refuse_first: usize) -> (String, Receiver) {
    let r = Receiver::default();
    r.refuse.store(refuse_first, Ordering::SeqCst);
    let app = axum::Router::new().route("/{*path}", axum::routing::post(receive)).with_state(r.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    (base, r)
}

impl Receiver {
    /// Waits until `n` requests arrived on `path`; returns their bodies.
    async fn wait_for(&self, path: &str, n: usize) -> Vec<Value> {
        let deadline = tokio::time::Instant::now() + SAFETY;
        loop {
            let got: Vec<Value> = self.bodies.lock().unwrap().iter().filter(|(p, _)| p == path).map(|(_, b)| b.clone()).collect();
            if got.len() >= n {
                return got;
            }
            assert!(tokio::time::Instant::now() < deadline, "only {} of {n} notifications on {path}: {got:?}", got.len());
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

async fn tick_at(app: &TestApp, ms: i64) {
    app.clock.as_ref().expect("manual clock").set(ms);
    controller::tick(&app.state, Timestamp::from_millis(ms)).await;
}

fn track(name: &str, n: usize) -> Vec<Value> {
    (0..n).map(|i| json!({"type": "track", "unit_id": format!("u{i}"), "flag": "pay", "variant": "on", "name": name})).collect()
}

async fn post_events(app: &TestApp, events: Vec<Value>) {
    let r = send(app.req(Method::POST, "/api/v1/events", Some(&app.tokens.server)).json(&json!({ "events": events }))).await;
    assert_eq!(r.status, 202, "{}", r.text);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn alert_fires_acts_notifies_through_a_429_and_resolves() {
    let config = ServerConfig { rollout_tick: Duration::from_secs(24 * 3600), ..Default::default() };
    let app = TestApp::spawn_with(Options { manual_clock_ms: Some(T0_MS), config, data_dir: None, listen: None }).await;
    let (hook, receiver) = start_receiver(1).await;
    app.create_flag(json!({"key": "pay", "environments": {"production": {"enabled": true, "rules": [
        {"id": "ramp", "condition": {"type": "rollout", "percentage": 0}}
    ]}}}))
    .await;
    let r = admin_post(
        &app,
        "/api/v1/rollouts",
        &json!({"target": {"flag": "pay", "environment": "production"}, "steps": [{"kind": "ramp", "percentage": 50, "hold_ms": 3600000}]}),
    )
    .await;
    assert_eq!(r.status, 201, "{}", r.text);
    let policy = json!({"group_wait_ms": 0, "group_interval_ms": 1000, "repeat_interval_ms": 3600000});
    let retry = json!({"base_delay_ms": 50, "jitter": 0.0});
    for (key, kind, path) in [("ops", "webhook", "/hook"), ("chat", "slack", "/slack")] {
        let r = admin_post(
            &app,
            "/api/v1/notifiers",
            &json!({"key": key, "kind": kind, "url": format!("{hook}{path}"), "policy": policy, "retry": retry}),
        )
        .await;
        assert_eq!(r.status, 201, "{}", r.text);
        assert_eq!(r.body["url_origin"], hook, "the URL path is not shown");
    }
    let rule = json!({
        "name": "pay-errors", "metric": "error_rate", "condition": {"kind": "threshold", "op": ">", "value": 0.1},
        "window_ms": 10000, "interval_ms": 10000, "min_requests": 10,
        "labels": {"severity": "critical"}, "annotations": {"summary": "payment errors above 10 %"},
        "target": {"flag": "pay", "environment": "production"},
        "actions": [{"type": "abort_rollout", "flag": "pay", "environment": "production"}, {"type": "kill_switch", "flag": "pay", "environment": "production"},
                    {"type": "maintenance_mode"}]
    });
    let r = admin_post(&app, "/api/v1/alert-rules", &rule).await;
    assert_eq!(r.status, 201, "{}", r.text);
    assert_error(&admin_post(&app, "/api/v1/alert-rules", &rule).await, 409, "already_exists");

    // Warm-up reading, then 40 % errors.
    post_events(&app, track("request", 50)).await;
    tick_at(&app, T0_MS + SEC).await;
    assert_eq!(admin_get(&app, "/api/v1/alert-rules/pay-errors").await.body["state"]["status"], "inactive");
    post_events(&app, [track("request", 50), track("error", 20)].concat()).await;
    tick_at(&app, T0_MS + 11 * SEC).await;
    let r = admin_get(&app, "/api/v1/alert-rules/pay-errors").await;
    assert_eq!(r.body["state"]["status"], "firing", "{}", r.text);

    // Actions: the rollout is aborted and the flag switched off, by the alert.
    let ro = admin_get(&app, "/api/v1/rollouts/production/pay").await;
    assert_eq!(ro.body["state"]["status"], "aborted", "{}", ro.text);
    let f = admin_get(&app, "/api/v1/flags/pay").await;
    assert_eq!(f.body["environments"]["production"]["enabled"], false);
    let audit = admin_get(&app, "/api/v1/audit?limit=50").await;
    let by_alert: Vec<&str> = audit.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["actor"] == "alert:pay-errors")
        .filter_map(|e| e["action"].as_str())
        .collect();
    let m = admin_get(&app, "/api/v1/environments/production/maintenance").await;
    assert_eq!(m.body["enabled"], true, "the alert turned maintenance mode on: {}", m.text);
    for action in ["alert.firing", "flag.switch_off", "rollout.aborted", "maintenance.on"] {
        assert!(by_alert.contains(&action), "{action} missing in {by_alert:?}");
    }

    // The webhook was refused once (429, Retry-After: 1), then accepted.
    let bodies = receiver.wait_for("/hook", 2).await;
    assert_eq!(bodies[0], bodies[1], "the retry carries the same notification");
    let b = &bodies[1];
    assert_eq!((b["version"].as_str(), b["status"].as_str(), b["receiver"].as_str()), (Some("4"), Some("firing"), Some("ops")), "{b}");
    assert_eq!(b["alerts"][0]["labels"]["alertname"], "pay-errors");
    assert_eq!(b["alerts"][0]["labels"]["severity"], "critical");
    assert_eq!(b["alerts"][0]["endsAt"], "0001-01-01T00:00:00Z");
    assert!(b["groupKey"].as_str().is_some_and(|k| k.contains("pay-errors")), "{b}");
    let slack = receiver.wait_for("/slack", 1).await;
    assert!(slack[0]["text"].as_str().is_some_and(|t| t.starts_with("[FIRING:1]")), "{}", slack[0]);
    assert_eq!(slack[0]["attachments"][0]["color"], "danger");

    // Healthy again: resolved, and both channels get the resolved notice.
    post_events(&app, track("request", 50)).await;
    tick_at(&app, T0_MS + 21 * SEC).await;
    assert_eq!(admin_get(&app, "/api/v1/alert-rules/pay-errors").await.body["state"]["status"], "resolved");
    let bodies = receiver.wait_for("/hook", 3).await;
    assert_eq!(bodies[2]["status"], "resolved", "{}", bodies[2]);
    assert_ne!(bodies[2]["alerts"][0]["endsAt"], "0001-01-01T00:00:00Z");
    let slack = receiver.wait_for("/slack", 2).await;
    assert!(slack[1]["text"].as_str().is_some_and(|t| t.starts_with("[RESOLVED]")), "{}", slack[1]);
    // Nothing more is sent for the resolved group.
    tick_at(&app, T0_MS + 31 * SEC).await;
    let n = admin_get(&app, "/api/v1/notifiers/ops").await;
    assert_eq!(n.body["delivered"], 2, "{}", n.text);
    assert_eq!(receiver.bodies.lock().unwrap().iter().filter(|(p, _)| p == "/hook").count(), 3);

    assert_eq!(admin_get(&app, "/api/v1/notifiers").await.body.as_array().map(Vec::len), Some(2));
    assert_eq!(admin_delete(&app, "/api/v1/alert-rules/pay-errors").await.status, 204);
    assert_error(&admin_get(&app, "/api/v1/alert-rules/pay-errors").await, 404, "alert_rule_not_found");
    assert_eq!(admin_delete(&app, "/api/v1/notifiers/chat").await.status, 204);
    assert_error(&admin_get(&app, "/api/v1/notifiers/chat").await, 404, "notifier_not_found");
}

#[tokio::test]
async fn inbound_triggers_flip_a_flag_and_abort_a_rollout_until_revoked() {
    let app = TestApp::spawn().await;
    app.create_flag(json!({"key": "chk", "environments": {"production": {"enabled": true, "rules": [
        {"id": "ramp", "condition": {"type": "rollout", "percentage": 0}}
    ]}}}))
    .await;
    let r = admin_post(
        &app,
        "/api/v1/rollouts",
        &json!({"target": {"flag": "chk", "environment": "production"}, "steps": [{"kind": "ramp", "percentage": 20, "hold_ms": 3600000}]}),
    )
    .await;
    assert_eq!(r.status, 201, "{}", r.text);

    let r = admin_post(
        &app,
        "/api/v1/triggers",
        &json!({"name": "pager", "action": {"type": "disable_flag", "flag": "chk", "environment": "production"}}),
    )
    .await;
    assert_eq!(r.status, 201, "{}", r.text);
    let (kill_id, kill_path) = (r.body["id"].as_str().unwrap().to_owned(), r.body["path"].as_str().unwrap().to_owned());
    let secret = r.body["secret"].as_str().unwrap().to_owned();
    assert!(kill_path.ends_with(&secret));
    let list = admin_get(&app, "/api/v1/triggers").await;
    assert!(!list.text.contains(&secret) && !list.text.contains("secret_hash"), "{}", list.text);
    // The secret is stored hashed only.
    let audit = admin_get(&app, "/api/v1/audit?limit=10").await;
    assert!(!audit.text.contains(&secret));

    // Fired without a token.
    let r = send(app.req(Method::POST, &kill_path, None)).await;
    assert_eq!((r.status, r.body["applied"].as_bool()), (202, Some(true)), "{}", r.text);
    let f = admin_get(&app, "/api/v1/flags/chk").await;
    assert_eq!(f.body["environments"]["production"]["enabled"], false);
    let audit = admin_get(&app, "/api/v1/audit?limit=10").await;
    let actions: Vec<&str> = audit.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["actor"] == "trigger:pager")
        .filter_map(|e| e["action"].as_str())
        .collect();
    assert!(actions.contains(&"trigger.fired") && actions.contains(&"flag.switch_off"), "{actions:?}");

    let r = admin_post(
        &app,
        "/api/v1/triggers",
        &json!({"name": "abort", "action": {"type": "abort_rollout", "flag": "chk", "environment": "production"}}),
    )
    .await;
    let abort_path = r.body["path"].as_str().unwrap().to_owned();
    let r = send(app.req(Method::POST, &abort_path, None)).await;
    assert_eq!((r.status, r.body["applied"].as_bool()), (202, Some(true)), "{}", r.text);
    assert_eq!(admin_get(&app, "/api/v1/rollouts/production/chk").await.body["state"]["status"], "aborted");
    let r = send(app.req(Method::POST, &abort_path, None)).await;
    assert_eq!(r.body["applied"], false, "nothing left to abort");

    // Revoked: the URL stops working; a wrong secret never worked.
    assert_eq!(admin_delete(&app, &format!("/api/v1/triggers/{kill_id}")).await.status, 204);
    assert_error(&send(app.req(Method::POST, &kill_path, None)).await, 404, "trigger_not_found");
    assert_error(&send(app.req(Method::POST, "/api/v1/triggers/hook/gantry-trigger-nope", None)).await, 404, "trigger_not_found");
    let list = admin_get(&app, "/api/v1/triggers").await;
    assert_eq!(list.body.as_array().map(Vec::len), Some(1));
    assert_eq!(list.body[0]["fired"], 2);
}
