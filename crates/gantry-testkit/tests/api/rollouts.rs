//! Rollouts (issue #5): the admin API, the controller driven by a manual
//! clock, guardrails fed by Gantry's own events, audit, stream events and
//! resuming after a restart.

use std::time::Duration;

use gantry_release::Timestamp;
use gantry_server::release::controller::{self, TickReport};
use gantry_server::ServerConfig;
use gantry_testkit::{Options, TestApp};
use reqwest::Method;
use serde_json::{json, Value};

use crate::support::{admin_delete, admin_get, admin_post, assert_error, send, T0_MS};

const SEC: i64 = 1_000;

fn options(data_dir: Option<std::path::PathBuf>, now_ms: i64) -> Options {
    // The background loop never fires during a test: every tick is explicit.
    let config = ServerConfig { rollout_tick: Duration::from_secs(24 * 3600), ..Default::default() };
    Options { manual_clock_ms: Some(now_ms), config, data_dir, listen: None }
}

async fn spawn() -> TestApp {
    TestApp::spawn_with(options(None, T0_MS)).await
}

/// Sets the manual clock and runs one controller tick at that time.
async fn tick_at(app: &TestApp, ms: i64) -> TickReport {
    app.clock.as_ref().expect("manual clock").set(ms);
    controller::tick(&app.state, Timestamp::from_millis(ms)).await
}

fn ramp_flag(key: &str) -> Value {
    json!({"key": key, "environments": {"production": {"enabled": true, "rules": [
        {"id": "ramp", "condition": {"type": "rollout", "percentage": 0}}
    ]}}})
}

fn plan(flag: &str, steps: Value) -> Value {
    let mut p = json!({"target": {"flag": flag, "environment": "production"}});
    p["steps"] = steps;
    p
}

fn ramps(pcts: &[u32], hold_ms: i64) -> Value {
    Value::Array(pcts.iter().map(|p| json!({"kind": "ramp", "percentage": p, "hold_ms": hold_ms})).collect())
}

async fn rule_percentage(app: &TestApp, flag: &str) -> f64 {
    let r = admin_get(app, &format!("/api/v1/flags/{flag}")).await;
    r.body["environments"]["production"]["rules"][0]["condition"]["percentage"]
        .as_f64()
        .unwrap_or_else(|| panic!("no percentage: {}", r.text))
}

async fn rollout(app: &TestApp, flag: &str) -> Value {
    let r = admin_get(app, &format!("/api/v1/rollouts/production/{flag}")).await;
    assert_eq!(r.status, 200, "{}", r.text);
    r.body
}

/// Audit actions on `target`, oldest first, with their actors.
async fn audit_of(app: &TestApp, target: &str) -> Vec<(String, String)> {
    let r = admin_get(app, "/api/v1/audit?limit=500").await;
    let mut out: Vec<(String, String)> = r.body["items"]
        .as_array()
        .expect("items")
        .iter()
        .filter(|e| e["target"] == target)
        .map(|e| (e["action"].as_str().unwrap_or_default().to_owned(), e["actor"].as_str().unwrap_or_default().to_owned()))
        .collect();
    out.reverse();
    out
}

fn track(flag: &str, variant: &str, name: &str, n: usize) -> Vec<Value> {
    (0..n).map(|i| json!({"type": "track", "unit_id": format!("u{i}"), "flag": flag, "variant": variant, "name": name})).collect()
}

async fn post_events(app: &TestApp, events: Vec<Value>) {
    let r = send(app.req(Method::POST, "/api/v1/events", Some(&app.tokens.server)).json(&json!({ "events": events }))).await;
    assert_eq!(r.status, 202, "{}", r.text);
}

#[tokio::test]
async fn rollout_walks_every_step_and_writes_the_flag_percentage() {
    let app = spawn().await;
    app.create_flag(ramp_flag("checkout")).await;
    let mut stream = crate::streams::open(&app, &app.tokens.server, None).await;
    assert_eq!(stream.next().await.name(), "snapshot");

    let r = admin_post(&app, "/api/v1/rollouts", &plan("checkout", ramps(&[10, 25, 50, 100], 60_000))).await;
    assert_eq!(r.status, 201, "{}", r.text);
    assert_eq!(r.etag(), "\"1\"");
    assert_eq!((r.body["state"]["status"].as_str(), r.body["state"]["step"].as_u64()), (Some("progressing"), Some(0)));
    assert_eq!(rule_percentage(&app, "checkout").await, 10.0);
    // The stream carries the percentage change and the transition.
    let e = stream.next().await;
    assert_eq!(e.name(), "flag-updated");
    for kind in ["started", "step_entered"] {
        let e = stream.next().await;
        assert_eq!((e.name(), e.json()["rollout"]["transition"]["event"]["kind"].as_str()), ("rollout", Some(kind)));
    }

    // Before the hold ends nothing moves; a repeated tick is harmless.
    assert_eq!(tick_at(&app, T0_MS + 59 * SEC).await.transitions, 0);
    assert_eq!(rule_percentage(&app, "checkout").await, 10.0);
    for (i, pct) in [(1, 25.0), (2, 50.0), (3, 100.0)] {
        let report = tick_at(&app, T0_MS + i * 60 * SEC).await;
        assert_eq!(report.transitions, 1, "step {i}: {report:?}");
        assert_eq!(rule_percentage(&app, "checkout").await, pct);
        assert_eq!(tick_at(&app, T0_MS + i * 60 * SEC).await.transitions, 0, "same now again");
        let e = stream.next().await;
        assert_eq!(e.name(), "flag-updated");
        assert_eq!(stream.next().await.json()["rollout"]["actor"], "rollout-controller");
    }
    let report = tick_at(&app, T0_MS + 4 * 60 * SEC).await;
    assert_eq!(report.transitions, 1);
    let r = rollout(&app, "checkout").await;
    assert_eq!((r["state"]["status"].as_str(), r["state"]["percentage"].as_f64()), (Some("completed"), Some(100.0)));
    assert_eq!(tick_at(&app, T0_MS + 5 * 60 * SEC).await.active, 0, "finished rollouts are not ticked");

    let audit = audit_of(&app, "production/checkout").await;
    let actions: Vec<&str> = audit.iter().map(|(a, _)| a.as_str()).collect();
    assert_eq!(
        actions,
        [
            "rollout.create",
            "rollout.started",
            "rollout.step_entered",
            "rollout.step_entered",
            "rollout.step_entered",
            "rollout.step_entered",
            "rollout.completed"
        ]
    );
    assert!(audit[3..].iter().all(|(_, actor)| actor == "rollout-controller"), "{audit:?}");
    let flag_audit = audit_of(&app, "checkout").await;
    let ramps: Vec<&(String, String)> = flag_audit.iter().filter(|(a, _)| a == "flag.rollout_percentage").collect();
    assert_eq!(ramps.len(), 4, "{flag_audit:?}");
    assert!(ramps[1..].iter().all(|(_, actor)| actor == "rollout-controller"));
    let v = admin_get(&app, "/api/v1/audit/verify").await;
    assert_eq!(v.body["ok"], true);
}

#[tokio::test]
async fn rollout_commands_etags_and_errors() {
    let app = spawn().await;
    app.create_flag(ramp_flag("search")).await;
    let path = "/api/v1/rollouts/production/search";

    // Validation: unknown flag, a flag without a rollout rule, decreasing steps.
    let r = admin_post(&app, "/api/v1/rollouts", &plan("nope", ramps(&[10], 0))).await;
    assert_error(&r, 422, "validation_failed");
    app.create_flag(json!({"key": "plain", "environments": {"production": {"enabled": true}}})).await;
    let r = admin_post(&app, "/api/v1/rollouts", &plan("plain", ramps(&[10], 0))).await;
    assert_error(&r, 422, "validation_failed");
    assert_eq!(r.body["fields"][0]["field"], "target.rule");
    let r = admin_post(&app, "/api/v1/rollouts", &plan("search", ramps(&[50, 10], 0))).await;
    assert_error(&r, 422, "validation_failed");
    assert_error(&admin_get(&app, path).await, 404, "rollout_not_found");

    let mut body = plan(
        "search",
        json!([{"kind": "ramp", "percentage": 20, "hold_ms": 60000}, {"kind": "approval"}, {"kind": "ramp", "percentage": 100}]),
    );
    body["start"] = json!(false);
    let r = admin_post(&app, "/api/v1/rollouts", &body).await;
    assert_eq!(r.status, 201, "{}", r.text);
    assert_eq!(r.body["state"]["status"], "pending");
    assert_eq!(rule_percentage(&app, "search").await, 0.0);
    assert_error(&admin_post(&app, "/api/v1/rollouts", &body).await, 409, "already_exists");

    // resume starts a pending rollout.
    let r = admin_post(&app, &format!("{path}/resume"), &json!({})).await;
    assert_eq!((r.status, r.body["state"]["status"].as_str()), (200, Some("progressing")), "{}", r.text);
    assert_eq!(rule_percentage(&app, "search").await, 20.0);
    let etag = r.etag();

    // A stale If-Match is refused; a fresh one works.
    let r = send(app.req(Method::POST, &format!("{path}/pause"), Some(&app.tokens.admin)).header("if-match", "\"1\"")).await;
    assert_error(&r, 412, "precondition_failed");
    let r = send(app.req(Method::POST, &format!("{path}/pause"), Some(&app.tokens.admin)).header("if-match", etag)).await;
    assert_eq!((r.status, r.body["state"]["status"].as_str()), (200, Some("paused")), "{}", r.text);
    // Paused: the hold does not run out.
    assert_eq!(tick_at(&app, T0_MS + 600 * SEC).await.transitions, 0);
    assert_error(&admin_post(&app, &format!("{path}/pause"), &json!({})).await, 409, "invalid_state");
    let r = admin_post(&app, &format!("{path}/resume"), &json!({})).await;
    assert_eq!(r.body["state"]["status"], "progressing");
    // Promote reaches the approval step; promote again approves it.
    let r = send(app.req(Method::POST, &format!("{path}/promote"), Some(&app.tokens.admin))).await;
    assert_eq!((r.body["state"]["status"].as_str(), r.body["state"]["step"].as_u64()), (Some("awaiting_approval"), Some(1)), "{}", r.text);
    let r = admin_post(&app, &format!("{path}/promote"), &json!({"expected_step": 0})).await;
    assert_error(&r, 409, "invalid_state");
    // Deleting a running rollout, or its flag, is refused.
    assert_error(&admin_delete(&app, path).await, 409, "invalid_state");
    assert_error(&admin_delete(&app, "/api/v1/flags/search").await, 409, "in_use");
    let r = admin_post(&app, &format!("{path}/abort"), &json!({})).await;
    assert_eq!(r.body["state"]["status"], "aborted");
    assert_eq!(rule_percentage(&app, "search").await, 0.0);
    let r = admin_post(&app, &format!("{path}/retry"), &json!({})).await;
    assert_eq!((r.body["state"]["status"].as_str(), r.body["state"]["step"].as_u64()), (Some("progressing"), Some(0)));
    assert_eq!(rule_percentage(&app, "search").await, 20.0);
    let r = admin_post(&app, &format!("{path}/promote"), &json!({"full": true})).await;
    assert_eq!(r.body["state"]["status"], "completed", "{}", r.text);
    assert_eq!(rule_percentage(&app, "search").await, 100.0);

    let list = admin_get(&app, "/api/v1/rollouts").await;
    assert_eq!(list.body.as_array().map(Vec::len), Some(1));
    let r = send(app.req(Method::DELETE, path, Some(&app.tokens.admin)).header("if-match", "\"1\"")).await;
    assert_error(&r, 412, "precondition_failed");
    assert_eq!(admin_delete(&app, path).await.status, 204);
    assert_error(&admin_get(&app, path).await, 404, "rollout_not_found");
    // Humans are the actors of their commands.
    let audit = audit_of(&app, "production/search").await;
    assert!(audit.iter().all(|(_, actor)| actor != "rollout-controller"), "{audit:?}");
    assert_eq!(audit.last().map(|(a, _)| a.as_str()), Some("rollout.delete"));
}

#[tokio::test]
async fn rollout_is_rolled_back_when_the_error_rate_guardrail_fails() {
    let app = spawn().await;
    app.create_flag(ramp_flag("pay")).await;
    let mut body = plan("pay", ramps(&[10, 50, 100], 60_000));
    body["guardrails"] = json!([{
        "name": "errors", "metric": "error_rate", "condition": {"kind": "threshold", "op": ">", "value": 0.05},
        "window_ms": 60000, "interval_ms": 10000, "min_requests": 20
    }]);
    let r = admin_post(&app, "/api/v1/rollouts", &body).await;
    assert_eq!(r.status, 201, "{}", r.text);

    // First reading: nothing to difference yet.
    post_events(&app, [track("pay", "on", "request", 50), track("pay", "disabled", "request", 50)].concat()).await;
    tick_at(&app, T0_MS + SEC).await;
    assert_eq!(rollout(&app, "pay").await["state"]["status"], "progressing");
    // Then 40 % of the rollout arm's requests fail.
    post_events(
        &app,
        [track("pay", "on", "request", 50), track("pay", "on", "error", 20), track("pay", "disabled", "request", 50)].concat(),
    )
    .await;
    // Not due yet (interval 10 s): nothing happens.
    assert_eq!(tick_at(&app, T0_MS + 5 * SEC).await.transitions, 0);
    let report = tick_at(&app, T0_MS + 11 * SEC).await;
    assert!(report.transitions >= 1, "{report:?}");
    let r = rollout(&app, "pay").await;
    assert_eq!(r["state"]["status"], "rolled_back", "{r}");
    assert_eq!(r["state"]["guardrails"]["errors"]["status"], "failed", "{r}");
    assert_eq!(rule_percentage(&app, "pay").await, 0.0);
    let audit = audit_of(&app, "production/pay").await;
    assert!(audit.contains(&("rollout.rolled_back".to_owned(), "rollout-controller".to_owned())), "{audit:?}");
}

#[tokio::test]
async fn healthy_traffic_lets_a_guarded_rollout_complete() {
    let app = spawn().await;
    app.create_flag(ramp_flag("cart")).await;
    let mut body = plan("cart", ramps(&[25, 100], 20_000));
    body["guardrails"] = json!([{
        "name": "errors", "metric": "error_rate", "condition": {"kind": "threshold", "op": ">", "value": 0.05},
        "window_ms": 60000, "interval_ms": 10000, "min_requests": 20
    }]);
    assert_eq!(admin_post(&app, "/api/v1/rollouts", &body).await.status, 201);
    let mut t = T0_MS;
    for _ in 0..12 {
        post_events(
            &app,
            [track("cart", "on", "request", 40), track("cart", "on", "error", 1), track("cart", "off", "request", 40)].concat(),
        )
        .await;
        t += 10 * SEC;
        tick_at(&app, t).await;
    }
    let r = rollout(&app, "cart").await;
    assert_eq!(r["state"]["status"], "completed", "{r}");
    assert_eq!(rule_percentage(&app, "cart").await, 100.0);
}

#[tokio::test]
async fn rollout_resumes_at_the_same_step_after_a_restart() {
    let data = tempfile::tempdir().expect("tempdir");
    let app = TestApp::spawn_with(options(Some(data.path().to_owned()), T0_MS)).await;
    app.create_flag(ramp_flag("search")).await;
    let mut body = plan("search", ramps(&[10, 25, 50], 60_000));
    body["guardrails"] = json!([{"name": "errors", "metric": "error_rate", "condition": {"kind": "threshold", "op": ">", "value": 0.5},
        "interval_ms": 10000, "on_no_data": "success"}]);
    let r = admin_post(&app, "/api/v1/rollouts", &body).await;
    assert_eq!(r.status, 201, "{}", r.text);
    assert!(tick_at(&app, T0_MS + 60 * SEC).await.transitions >= 1);
    // An evaluation without a transition: saved quietly, restored too.
    post_events(&app, track("search", "on", "request", 5)).await;
    assert_eq!(tick_at(&app, T0_MS + 70 * SEC).await.transitions, 0);
    let before = rollout(&app, "search").await;
    assert_eq!(before["state"]["step"], 1);
    assert!(before["state"]["guardrails"]["errors"]["evaluations"].as_u64() >= Some(2), "{before}");
    app.stop().await;

    let app = TestApp::spawn_with(options(Some(data.path().to_owned()), T0_MS + 90 * SEC)).await;
    let after = rollout(&app, "search").await;
    assert_eq!(after["state"], before["state"], "the state survives the restart exactly");
    assert_eq!(after["version"], before["version"]);
    assert_eq!(rule_percentage(&app, "search").await, 25.0);
    // Half-way through step 1's hold: no repeat, no skip.
    assert_eq!(tick_at(&app, T0_MS + 90 * SEC).await.transitions, 0);
    assert!(tick_at(&app, T0_MS + 120 * SEC).await.transitions >= 1);
    let r = rollout(&app, "search").await;
    assert_eq!((r["state"]["step"].as_u64(), r["state"]["percentage"].as_f64()), (Some(2), Some(50.0)));
    let entered = audit_of(&app, "production/search").await.iter().filter(|(a, _)| a == "rollout.step_entered").count();
    assert_eq!(entered, 3, "each step entered exactly once");
}

async fn enabled(app: &TestApp, flag: &str) -> bool {
    let r = admin_get(app, &format!("/api/v1/flags/{flag}")).await;
    r.body["environments"]["production"]["enabled"].as_bool().unwrap_or_else(|| panic!("{}", r.text))
}

#[tokio::test]
async fn scheduled_changes_and_calendar_ramps_apply_on_the_tick() {
    let app = spawn().await;
    let mut f = ramp_flag("promo");
    f["environments"]["production"]["enabled"] = json!(false);
    app.create_flag(f).await;
    let body = json!({"key": "promo-launch", "target": {"flag": "promo", "environment": "production"}, "changes": [
        {"at": T0_MS + 10 * SEC, "action": "enable"},
        {"at": T0_MS + 20 * SEC, "action": "set_percentage", "percentage": 30},
        {"at": T0_MS + 30 * SEC, "action": "disable"}
    ]});
    let r = admin_post(&app, "/api/v1/schedules", &body).await;
    assert_eq!(r.status, 201, "{}", r.text);
    assert_eq!(r.body["next_at"], T0_MS + 10 * SEC);
    assert_error(&admin_post(&app, "/api/v1/schedules", &body).await, 409, "already_exists");

    assert_eq!(tick_at(&app, T0_MS + 9 * SEC).await.scheduled, 0);
    assert!(!enabled(&app, "promo").await);
    assert_eq!(tick_at(&app, T0_MS + 10 * SEC).await.scheduled, 1);
    assert!(enabled(&app, "promo").await);
    assert_eq!(tick_at(&app, T0_MS + 10 * SEC).await.scheduled, 0, "applied once");
    // Down over two changes: both are audited, the latest state is applied.
    assert_eq!(tick_at(&app, T0_MS + 35 * SEC).await.scheduled, 2);
    assert!(!enabled(&app, "promo").await);
    assert_eq!(rule_percentage(&app, "promo").await, 30.0);
    let audit = audit_of(&app, "promo-launch").await;
    let applied = audit.iter().filter(|(a, actor)| a == "schedule.applied" && actor == "release-scheduler").count();
    assert_eq!(applied, 3, "{audit:?}");
    let r = admin_get(&app, "/api/v1/schedules/promo-launch").await;
    assert_eq!((r.body["last_applied"].as_i64(), r.body.get("next_at")), (Some(T0_MS + 30 * SEC), None), "{}", r.text);

    // A calendar ramp: 10 % on day 1, 25 % on day 3, 100 % on day 5.
    app.create_flag(ramp_flag("beta")).await;
    const DAY: i64 = 86_400 * SEC;
    let ramp = |pcts: [u32; 3]| {
        json!({"key": "beta-ramp", "target": {"flag": "beta", "environment": "production"}, "ramp": [
            {"at": T0_MS + DAY, "percentage": pcts[0]}, {"at": T0_MS + 3 * DAY, "percentage": pcts[1]}, {"at": T0_MS + 5 * DAY, "percentage": pcts[2]}
        ]})
    };
    assert_error(&admin_post(&app, "/api/v1/schedules", &ramp([10, 5, 100])).await, 422, "validation_failed");
    assert_eq!(admin_post(&app, "/api/v1/schedules", &ramp([10, 25, 100])).await.status, 201);
    tick_at(&app, T0_MS + DAY).await;
    assert_eq!(rule_percentage(&app, "beta").await, 10.0);
    tick_at(&app, T0_MS + 3 * DAY + SEC).await;
    assert_eq!(rule_percentage(&app, "beta").await, 25.0);
    tick_at(&app, T0_MS + 6 * DAY).await;
    assert_eq!(rule_percentage(&app, "beta").await, 100.0);
    assert_eq!(admin_get(&app, "/api/v1/schedules").await.body.as_array().map(Vec::len), Some(2));
    assert_eq!(admin_delete(&app, "/api/v1/schedules/beta-ramp").await.status, 204);
    assert_error(&admin_get(&app, "/api/v1/schedules/beta-ramp").await, 404, "schedule_not_found");
}

/// A tiny service: `/metrics` (Prometheus text, gauge `test_error_ratio`)
/// and `/health` (`application/health+json`, pass or fail).
#[derive(Clone, Default)]
struct Service {
    ratio_bits: std::sync::Arc<std::sync::atomic::AtomicU64>,
    failing: std::sync::Arc<std::sync::atomic::AtomicBool>,
}

impl Service {
    async fn start() -> (String, Service) {
        use std::sync::atomic::Ordering;
        let svc = Service::default();
        let (m, h) = (svc.clone(), svc.clone());
        let app = axum::Router::new()
            .route(
                "/metrics",
                axum::routing::get(move || {
                    let v = f64::from_bits(m.ratio_bits.load(Ordering::SeqCst));
                    async move { format!("# TYPE test_error_ratio gauge\ntest_error_ratio {v}\n") }
                }),
            )
            .route(
                "/health",
                axum::routing::get(move || {
                    let status = if h.failing.load(Ordering::SeqCst) { "fail" } else { "pass" };
                    async move { ([("content-type", "application/health+json")], format!("{{\"status\":\"{status}\"}}")) }
                }),
            );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        tokio::spawn(async move { axum::serve(listener, app).await });
        (format!("{addr}"), svc)
    }

    fn set_ratio(&self, v: f64) {
        self.ratio_bits.store(v.to_bits(), std::sync::atomic::Ordering::SeqCst);
    }
}

#[tokio::test]
async fn an_alert_rule_can_watch_a_health_probe() {
    let app = spawn().await;
    let (svc_addr, svc) = Service::start().await;
    app.create_flag(ramp_flag("api")).await;
    let rule = json!({
        "name": "api-down", "metric": "scalar", "condition": {"kind": "threshold", "op": ">", "value": 0.5}, "interval_ms": 1000,
        "target": {"flag": "api", "environment": "production"},
        "source": {"type": "probe", "url": format!("http://{svc_addr}/health"), "interval_ms": 1000, "failure_threshold": 2, "success_threshold": 1}
    });
    let r = admin_post(&app, "/api/v1/alert-rules", &rule).await;
    assert_eq!(r.status, 201, "{}", r.text);
    async fn status(app: &TestApp) -> serde_json::Value {
        admin_get(app, "/api/v1/alert-rules/api-down").await.body["state"]["status"].clone()
    }
    tick_at(&app, T0_MS).await;
    assert_eq!(status(&app).await, "inactive");
    svc.failing.store(true, std::sync::atomic::Ordering::SeqCst);
    tick_at(&app, T0_MS + SEC).await;
    tick_at(&app, T0_MS + 2 * SEC).await;
    tick_at(&app, T0_MS + 3 * SEC).await;
    assert_eq!(status(&app).await, "firing");
    svc.failing.store(false, std::sync::atomic::Ordering::SeqCst);
    tick_at(&app, T0_MS + 4 * SEC).await;
    tick_at(&app, T0_MS + 5 * SEC).await;
    assert_eq!(status(&app).await, "resolved");
    // A probe gives a scalar; other metrics are refused.
    let mut bad = rule.clone();
    bad["name"] = json!("bad");
    bad["metric"] = json!("error_rate");
    assert_eq!(admin_post(&app, "/api/v1/alert-rules", &bad).await.status, 422);
}

#[tokio::test]
async fn a_failing_health_probe_rolls_the_rollout_back() {
    let app = spawn().await;
    let (svc_addr, svc) = Service::start().await;
    app.create_flag(ramp_flag("api")).await;
    let mut body = plan("api", ramps(&[10, 100], 3_600_000));
    body["guardrails"] =
        json!([{"name": "health", "metric": "scalar", "condition": {"kind": "threshold", "op": ">", "value": 0.5}, "interval_ms": 1000}]);
    body["sources"] = json!({"health": {"type": "probe", "url": format!("http://{svc_addr}/health"), "interval_ms": 1000, "failure_threshold": 2, "success_threshold": 1}});
    let r = admin_post(&app, "/api/v1/rollouts", &body).await;
    assert_eq!(r.status, 201, "{}", r.text);
    tick_at(&app, T0_MS).await;
    let r = rollout(&app, "api").await;
    assert_eq!(r["state"]["guardrails"]["health"]["status"], "ok", "{r}");
    svc.failing.store(true, std::sync::atomic::Ordering::SeqCst);
    tick_at(&app, T0_MS + SEC).await;
    assert_eq!(rollout(&app, "api").await["state"]["status"], "progressing", "one failure is below the threshold");
    tick_at(&app, T0_MS + 2 * SEC).await;
    let r = rollout(&app, "api").await;
    assert_eq!(r["state"]["status"], "rolled_back", "{r}");
    assert_eq!(rule_percentage(&app, "api").await, 0.0);
    // A probe source needs a scalar guardrail.
    let mut bad = plan("api", ramps(&[10], 0));
    bad["guardrails"] = json!([{"name": "h", "metric": "error_rate", "condition": {"kind": "threshold", "op": ">", "value": 0.5}}]);
    bad["sources"] = json!({"h": {"type": "probe", "url": "http://127.0.0.1:1/health"}});
    assert_error(&admin_post(&app, "/api/v1/rollouts", &bad).await, 422, "validation_failed");
}

/// A real Prometheus server (Debian's `prometheus` package) scraping [`Service`].
struct Prometheus {
    child: std::process::Child,
    base: String,
    _dir: tempfile::TempDir,
}

impl Drop for Prometheus {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Prometheus {
    async fn start(target: &str) -> Prometheus {
        let dir = tempfile::tempdir().expect("tempdir");
        let config = format!(
            "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\nscrape_configs:\n  - job_name: svc\n    static_configs:\n      - targets: ['{target}']\n"
        );
        std::fs::write(dir.path().join("prometheus.yml"), config).expect("write config");
        let port = std::net::TcpListener::bind("127.0.0.1:0").expect("bind").local_addr().expect("addr").port();
        let child = std::process::Command::new("prometheus")
            .arg(format!("--config.file={}", dir.path().join("prometheus.yml").display()))
            .arg(format!("--storage.tsdb.path={}", dir.path().join("data").display()))
            .arg(format!("--web.listen-address=127.0.0.1:{port}"))
            .arg("--log.level=warn")
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap_or_else(|e| {
                panic!("cannot start `prometheus` ({e}). This test needs a real Prometheus: scripts/test.sh installs Debian's package (apt-get install -y prometheus)")
            });
        Prometheus { child, base: format!("http://127.0.0.1:{port}"), _dir: dir }
    }

    /// Polls the instant query until it returns `want` (the scrape happened).
    async fn wait_for_value(&self, query: &str, want: f64) {
        let http = reqwest::Client::new();
        let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
        loop {
            let r = http.get(format!("{}/api/v1/query", self.base)).query(&[("query", query)]).send().await;
            if let Ok(r) = r {
                if let Ok(v) = r.json::<Value>().await {
                    let got = v["data"]["result"][0]["value"][1].as_str().and_then(|s| s.parse::<f64>().ok());
                    if got == Some(want) {
                        return;
                    }
                }
            }
            assert!(tokio::time::Instant::now() < deadline, "prometheus at {} never returned {want} for {query}", self.base);
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

#[tokio::test]
async fn a_prometheus_guardrail_rolls_the_rollout_back() {
    let app = spawn().await;
    let (svc_addr, svc) = Service::start().await;
    let prom = Prometheus::start(&svc_addr).await;
    prom.wait_for_value("test_error_ratio", 0.0).await;
    app.create_flag(ramp_flag("prom")).await;
    let mut body = plan("prom", ramps(&[10, 100], 3_600_000));
    body["guardrails"] =
        json!([{"name": "errors", "metric": "scalar", "condition": {"kind": "threshold", "op": ">", "value": 0.1}, "interval_ms": 1000}]);
    body["sources"] = json!({"errors": {"type": "prometheus", "url": prom.base, "query": "max(test_error_ratio)"}});
    let r = admin_post(&app, "/api/v1/rollouts", &body).await;
    assert_eq!(r.status, 201, "{}", r.text);
    tick_at(&app, T0_MS + SEC).await;
    let r = rollout(&app, "prom").await;
    assert_eq!(
        (r["state"]["status"].as_str(), r["state"]["guardrails"]["errors"]["status"].as_str()),
        (Some("progressing"), Some("ok")),
        "{r}"
    );

    svc.set_ratio(0.5);
    prom.wait_for_value("test_error_ratio", 0.5).await;
    tick_at(&app, T0_MS + 3 * SEC).await;
    let r = rollout(&app, "prom").await;
    assert_eq!(r["state"]["status"], "rolled_back", "{r}");
    assert_eq!(rule_percentage(&app, "prom").await, 0.0);
}

fn latency(flag: &str, variant: &str, ms: f64, n: usize) -> Vec<Value> {
    (0..n)
        .map(|i| json!({"type": "track", "unit_id": format!("u{i}"), "flag": flag, "variant": variant, "name": "latency", "value": ms}))
        .collect()
}

#[tokio::test]
async fn p95_latency_twice_the_control_arm_rolls_back() {
    let app = spawn().await;
    app.create_flag(ramp_flag("slow")).await;
    let mut body = plan("slow", ramps(&[20, 100], 3_600_000));
    body["guardrails"] = json!([{
        "name": "p95", "metric": "arm_value", "condition": {"kind": "relative_to_control", "op": ">", "factor": 2.0},
        "window_ms": 60000, "interval_ms": 10000, "min_requests": 20
    }]);
    assert_eq!(admin_post(&app, "/api/v1/rollouts", &body).await.status, 201);
    let round = |t_ms: f64| {
        [
            track("slow", "on", "request", 30),
            latency("slow", "on", t_ms, 30),
            track("slow", "disabled", "request", 30),
            latency("slow", "disabled", 100.0, 30),
        ]
        .concat()
    };
    // Same latency in both arms: fine.
    post_events(&app, round(110.0)).await;
    tick_at(&app, T0_MS + SEC).await;
    post_events(&app, round(110.0)).await;
    tick_at(&app, T0_MS + 11 * SEC).await;
    let r = rollout(&app, "slow").await;
    assert_eq!(
        (r["state"]["status"].as_str(), r["state"]["guardrails"]["p95"]["status"].as_str()),
        (Some("progressing"), Some("ok")),
        "{r}"
    );
    // The new version's p95 is far above twice the control's.
    post_events(&app, round(900.0)).await;
    tick_at(&app, T0_MS + 21 * SEC).await;
    let r = rollout(&app, "slow").await;
    assert_eq!(r["state"]["status"], "rolled_back", "{r}");
    assert_eq!(rule_percentage(&app, "slow").await, 0.0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_sdk_follows_a_rollout_and_reads_its_stream_events() {
    let app = spawn().await;
    app.create_flag(ramp_flag("sdk-ramp")).await;
    let client = gantry_sdk::GantryClient::builder().server(&app.base, &app.tokens.server).build().expect("client");
    client.wait_until_ready(Duration::from_secs(10)).await.expect("ready");
    let ctx = gantry_sdk::Context::new().with_user_id("u1");
    assert!(!client.is_enabled("sdk-ramp", &ctx));
    let r = admin_post(&app, "/api/v1/rollouts", &plan("sdk-ramp", ramps(&[100], 0))).await;
    assert_eq!(r.status, 201, "{}", r.text);
    let revision = app.state.views().revision;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while !(client.is_enabled("sdk-ramp", &ctx) && client.revision() >= revision) {
        assert!(tokio::time::Instant::now() < deadline, "the SDK never saw the rollout (last error: {:?})", client.last_error());
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // A later change arrives after the `rollout` events of the same commit,
    // which were understood, not reported as errors.
    app.create_flag(json!({"key": "later", "environments": {"production": {"enabled": true}}})).await;
    while !client.is_enabled("later", &ctx) {
        assert!(tokio::time::Instant::now() < deadline, "the SDK never saw the later flag");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(client.last_error(), None);
    client.close().await;
}
