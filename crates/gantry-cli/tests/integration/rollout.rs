//! Staged rollouts end to end with real processes: the `gantry` server (its
//! controller ticking on the real clock), the `gantry rollout` CLI, a small
//! HTTP service with a healthy and a failing new version behind the flag
//! (it reports `request`/`error` events tagged with the variant it served),
//! users calling it, and a webhook receiver for alert notifications.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use serde_json::{json, Value};

use crate::support::{gantry, Server, ADMIN};

/// Safety net only: every wait polls for a state, no assertion depends on timing.
const SAFETY: Duration = Duration::from_secs(90);

fn ramp_flag(key: &str) -> Value {
    json!({"key": key, "environments": {"production": {"enabled": true, "rules": [
        {"id": "ramp", "condition": {"type": "rollout", "percentage": 0}}
    ]}}})
}

/// Runs `gantry rollout ...` against the server; returns stdout.
fn cli(base: &str, args: &[&str]) -> String {
    let out = gantry().arg("rollout").args(["--url", base, "--token", ADMIN]).args(args).output().expect("run gantry");
    assert!(out.status.success(), "gantry rollout {args:?} failed: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).expect("utf-8")
}

fn status(base: &str, flag: &str) -> Value {
    serde_json::from_str(&cli(base, &["status", "--flag", flag, "--env", "production", "--json"])).expect("status JSON")
}

/// Polls the rollout until `pred` holds (panics after the safety net).
async fn wait_for(base: &str, flag: &str, what: &str, pred: impl Fn(&Value) -> bool) -> Value {
    let deadline = tokio::time::Instant::now() + SAFETY;
    loop {
        let s = status(base, flag);
        if pred(&s) {
            return s;
        }
        assert!(tokio::time::Instant::now() < deadline, "rollout {flag} never became {what}: {s}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn setup(base: &str, http: &reqwest::Client, flags: &[&str]) -> String {
    for f in flags {
        let r = http.post(format!("{base}/api/v1/flags")).bearer_auth(ADMIN).json(&ramp_flag(f)).send().await.unwrap();
        assert_eq!(r.status(), 201);
    }
    let r = http
        .post(format!("{base}/api/v1/tokens"))
        .bearer_auth(ADMIN)
        .json(&json!({"kind": "server", "environment": "production"}))
        .send()
        .await
        .unwrap();
    let body: Value = r.json().await.unwrap();
    body["secret"].as_str().expect("secret").to_owned()
}

/// The application under rollout: a small HTTP service whose `GET /work?user=U`
/// asks Gantry (OFREP) whether the new version is on for the user, serves it
/// (the failing build answers 500 for every other request) or the old one,
/// and reports a `request` event (plus `error` on a 500) tagged with the flag
/// and the variant it served.
async fn start_service(gantry: String, token: String, flag: &'static str, failing: bool) -> String {
    use axum::extract::{Query, State};
    #[derive(Clone)]
    struct Svc {
        gantry: String,
        token: String,
        flag: &'static str,
        failing: bool,
        http: reqwest::Client,
        n: Arc<std::sync::atomic::AtomicU64>,
    }
    async fn work(State(s): State<Svc>, Query(q): Query<std::collections::HashMap<String, String>>) -> axum::http::StatusCode {
        let user = q.get("user").cloned().unwrap_or_default();
        let eval = s
            .http
            .post(format!("{}/ofrep/v1/evaluate/flags/{}", s.gantry, s.flag))
            .bearer_auth(&s.token)
            .json(&json!({"context": {"targetingKey": user}}))
            .send()
            .await;
        let on = match eval {
            Ok(r) => r.json::<Value>().await.map(|v| v["value"] == true).unwrap_or(false),
            Err(_) => false,
        };
        let fail = on && s.failing && s.n.fetch_add(1, Ordering::Relaxed) % 2 == 0;
        let variant = if on { "on" } else { "off" };
        let mut events = vec![json!({"type": "track", "unit_id": user, "flag": s.flag, "variant": variant, "name": "request"})];
        if fail {
            events.push(json!({"type": "track", "unit_id": user, "flag": s.flag, "variant": variant, "name": "error"}));
        }
        let _ = s.http.post(format!("{}/api/v1/events", s.gantry)).bearer_auth(&s.token).json(&json!({"events": events})).send().await;
        if fail {
            axum::http::StatusCode::INTERNAL_SERVER_ERROR
        } else {
            axum::http::StatusCode::OK
        }
    }
    let svc = Svc { gantry, token, flag, failing, http: reqwest::Client::new(), n: Arc::default() };
    let app = axum::Router::new().route("/work", axum::routing::get(work)).with_state(svc);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    base
}

/// Users calling a service: 10 requests per round, rounds 50 ms apart.
fn drive(service: String, stop: Arc<AtomicBool>) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let http = reqwest::Client::new();
        let mut round = 0u64;
        while !stop.load(Ordering::Relaxed) {
            let calls = (0..10u64).map(|u| http.get(format!("{service}/work?user=user-{}", (round * 10 + u) % 500)).send());
            futures_util::future::join_all(calls).await;
            round += 1;
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    })
}

/// A webhook receiver recording every body.
async fn start_receiver() -> (String, Arc<std::sync::Mutex<Vec<Value>>>) {
    let bodies: Arc<std::sync::Mutex<Vec<Value>>> = Arc::default();
    let b = bodies.clone();
    let app = axum::Router::new().route(
        "/hook",
        axum::routing::post(move |axum::Json(v): axum::Json<Value>| {
            let b = b.clone();
            async move {
                b.lock().unwrap().push(v);
                axum::http::StatusCode::OK
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    (format!("{base}/hook"), bodies)
}

async fn wait_for_notice(bodies: &std::sync::Mutex<Vec<Value>>, status: &str) -> Value {
    let deadline = tokio::time::Instant::now() + SAFETY;
    loop {
        if let Some(b) = bodies.lock().unwrap().iter().find(|b| b["status"] == status) {
            return b.clone();
        }
        assert!(tokio::time::Instant::now() < deadline, "no {status} notification");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

const GUARD: [&str; 10] =
    ["--max-error-rate", "0.05", "--window", "5s", "--interval", "300ms", "--min-requests", "10", "--steps", "10:1s,25:1s,50:1s,100"];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn healthy_rollout_reaches_full_and_failing_one_is_rolled_back() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start_with_env(dir.path(), &[("GANTRY_ROLLOUT_TICK_MS", "100")]);
    let base = server.base.clone();
    let http = reqwest::Client::new();
    let token = setup(&base, &http, &["healthy", "failing"]).await;
    let healthy_svc = start_service(base.clone(), token.clone(), "healthy", false).await;
    let failing_svc = start_service(base.clone(), token, "failing", true).await;
    let stop = Arc::new(AtomicBool::new(false));
    let t1 = drive(healthy_svc, stop.clone());
    let t2 = drive(failing_svc, stop.clone());
    // Alerting on the failing flag's new version, to a webhook receiver.
    let (hook, bodies) = start_receiver().await;
    let r = http
        .post(format!("{base}/api/v1/notifiers"))
        .bearer_auth(ADMIN)
        .json(&json!({"key": "ops", "kind": "webhook", "url": hook, "policy": {"group_wait_ms": 0, "group_interval_ms": 200}}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    let rule = json!({"name": "failing-errors", "metric": "error_rate", "condition": {"kind": "threshold", "op": ">", "value": 0.1},
        "window_ms": 2000, "interval_ms": 300, "min_requests": 5, "target": {"flag": "failing", "environment": "production"}});
    let r = http.post(format!("{base}/api/v1/alert-rules")).bearer_auth(ADMIN).json(&rule).send().await.unwrap();
    assert_eq!(r.status(), 201);

    let out = cli(&base, &[&["create", "--flag", "healthy", "--env", "production"][..], &GUARD[..]].concat());
    assert!(out.contains("progressing"), "{out}");
    cli(&base, &[&["create", "--flag", "failing", "--env", "production"][..], &GUARD[..]].concat());

    let done = wait_for(&base, "healthy", "completed", |s| s["state"]["status"].as_str().is_some_and(|st| st != "progressing")).await;
    assert_eq!(done["state"]["status"], "completed", "{done}");
    assert_eq!(done["state"]["percentage"], 100);
    let failed = wait_for(&base, "failing", "rolled back", |s| s["state"]["status"] == "rolled_back").await;
    assert_eq!(failed["state"]["guardrails"]["error-rate"]["status"], "failed", "{failed}");
    // The receiver hears the alert fire and, once the new version is gone, resolve.
    let firing = wait_for_notice(&bodies, "firing").await;
    assert_eq!((firing["version"].as_str(), firing["alerts"][0]["labels"]["alertname"].as_str()), (Some("4"), Some("failing-errors")));
    let resolved = wait_for_notice(&bodies, "resolved").await;
    assert_eq!(resolved["alerts"][0]["status"], "resolved");
    stop.store(true, Ordering::Relaxed);
    let _ = tokio::join!(t1, t2);

    // The healthy one went through every step; the flags show the outcome.
    let audit: Value = http.get(format!("{base}/api/v1/audit?limit=500")).bearer_auth(ADMIN).send().await.unwrap().json().await.unwrap();
    let entered = audit["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["target"] == "production/healthy" && e["action"] == "rollout.step_entered")
        .count();
    assert_eq!(entered, 4);
    for (flag, pct) in [("healthy", 100), ("failing", 0)] {
        let f: Value = http.get(format!("{base}/api/v1/flags/{flag}")).bearer_auth(ADMIN).send().await.unwrap().json().await.unwrap();
        assert_eq!(f["environments"]["production"]["rules"][0]["condition"]["percentage"], pct, "{flag}");
    }
    let text = cli(&base, &["status"]);
    assert!(text.contains("production/healthy  completed") && text.contains("production/failing  rolled_back"), "{text}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restarted_server_resumes_the_rollout_at_the_same_step() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start_with_env(dir.path(), &[("GANTRY_ROLLOUT_TICK_MS", "100")]);
    let base = server.base.clone();
    let http = reqwest::Client::new();
    setup(&base, &http, &["search"]).await;
    cli(&base, &["create", "--flag", "search", "--env", "production", "--steps", "10:1s,25:1h,50"]);
    let before = wait_for(&base, "search", "at step 1", |s| s["state"]["step"] == 1).await;
    server.kill9();

    let server = Server::start_with_env(dir.path(), &[("GANTRY_ROLLOUT_TICK_MS", "100")]);
    let base = server.base.clone();
    let after = status(&base, "search");
    // `last_tick_at` is bookkeeping a tick may save between our read and the
    // kill; everything that decides the rollout must be unchanged.
    let decisive = |s: &Value| {
        let mut s = s["state"].clone();
        s.as_object_mut().unwrap().remove("last_tick_at");
        s
    };
    assert_eq!(decisive(&after), decisive(&before), "same step, same hold start, after kill -9");
    let out = cli(&base, &["promote", "--flag", "search", "--env", "production"]);
    assert!(out.contains("step 3/3"), "{out}");
    let done = wait_for(&base, "search", "completed", |s| s["state"]["status"] == "completed").await;
    assert_eq!(done["state"]["percentage"], 50);
}
