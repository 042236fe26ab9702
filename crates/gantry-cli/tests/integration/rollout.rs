//! Staged rollouts end to end with real processes: the `gantry` server (its
//! controller ticking on the real clock), the `gantry rollout` CLI, and a
//! traffic generator standing in for an application: it evaluates the flag
//! over OFREP for a crowd of users and reports `request` (and, for the
//! failing version, `error`) events tagged with the variant it served.

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

/// The application: every round, 20 users evaluate `flag`; the rollout arm
/// of a failing version fails every other request.
fn traffic(base: String, token: String, flag: &'static str, failing: bool, stop: Arc<AtomicBool>) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let http = reqwest::Client::new();
        let mut round = 0u64;
        while !stop.load(Ordering::Relaxed) {
            let mut events = Vec::new();
            for u in 0..20u64 {
                let user = format!("user-{}", (round * 20 + u) % 500);
                let r = http
                    .post(format!("{base}/ofrep/v1/evaluate/flags/{flag}"))
                    .bearer_auth(&token)
                    .json(&json!({"context": {"targetingKey": user}}))
                    .send()
                    .await;
                let Ok(r) = r else { break };
                let Ok(v) = r.json::<Value>().await else { break };
                let on = v["value"] == true;
                let variant = if on { "on" } else { "off" };
                events.push(json!({"type": "track", "unit_id": user, "flag": flag, "variant": variant, "name": "request"}));
                if on && failing && u % 2 == 0 {
                    events.push(json!({"type": "track", "unit_id": user, "flag": flag, "variant": variant, "name": "error"}));
                }
            }
            let _ = http.post(format!("{base}/api/v1/events")).bearer_auth(&token).json(&json!({"events": events})).send().await;
            round += 1;
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    })
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
    let stop = Arc::new(AtomicBool::new(false));
    let t1 = traffic(base.clone(), token.clone(), "healthy", false, stop.clone());
    let t2 = traffic(base.clone(), token, "failing", true, stop.clone());

    let out = cli(&base, &[&["create", "--flag", "healthy", "--env", "production"][..], &GUARD[..]].concat());
    assert!(out.contains("progressing"), "{out}");
    cli(&base, &[&["create", "--flag", "failing", "--env", "production"][..], &GUARD[..]].concat());

    let done = wait_for(&base, "healthy", "completed", |s| s["state"]["status"].as_str().is_some_and(|st| st != "progressing")).await;
    assert_eq!(done["state"]["status"], "completed", "{done}");
    assert_eq!(done["state"]["percentage"], 100);
    let failed = wait_for(&base, "failing", "rolled back", |s| s["state"]["status"] == "rolled_back").await;
    assert_eq!(failed["state"]["guardrails"]["error-rate"]["status"], "failed", "{failed}");
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
    assert_eq!(after["state"], before["state"], "same step, same hold start, after kill -9");
    let out = cli(&base, &["promote", "--flag", "search", "--env", "production"]);
    assert!(out.contains("step 3/3"), "{out}");
    let done = wait_for(&base, "search", "completed", |s| s["state"]["status"] == "completed").await;
    assert_eq!(done["state"]["percentage"], 50);
}
