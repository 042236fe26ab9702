//! Experiments end to end: the Rust SDK exposes units and tracks
//! conversions with a known true effect, events travel over HTTP into the
//! durable log, and the results API's interval covers the truth. Plus the
//! events API's contract: validation (nothing stored), idempotency, and
//! aggregates rebuilt after a restart.

use std::time::Duration;

use gantry_sdk::{Context, GantryClient};
use gantry_testkit::{Options, TestApp};
use serde_json::{json, Value};

/// A deterministic uniform number in [0, 1) for a string (SplitMix64).
fn uniform(s: &str, salt: u64) -> f64 {
    let mut x = s.bytes().fold(salt ^ 0x9E37_79B9_7F4A_7C15, |h, b| (h ^ u64::from(b)).wrapping_mul(0x100_0000_01B3));
    x = (x ^ (x >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    x ^= x >> 31;
    (x >> 11) as f64 / (1u64 << 53) as f64
}

async fn setup_experiment(app: &TestApp, engine: &str) {
    app.create_flag(json!({"key": "checkout", "kind": "string",
        "variants": [{"name": "control", "weight": 500, "payload": {"type": "string", "value": "old"}},
                     {"name": "treatment", "weight": 500, "payload": {"type": "string", "value": "new"}}],
        "environments": {"production": {"enabled": true}}}))
        .await;
    let r = app
        .admin_post(
            "/api/v1/experiments",
            &json!({"key": "checkout-exp", "flag": "checkout", "environment": "production", "engine": engine,
            "hypothesis": "the new checkout converts better",
            "metrics": [
                {"name": "converted", "event": "purchase", "kind": "conversion", "role": "primary"},
                {"name": "revenue", "event": "purchase", "kind": "mean", "cap": 500.0}
            ]}),
        )
        .await;
    assert_eq!(r.status(), 201, "{}", r.text().await.unwrap());
    let r = app.admin_post("/api/v1/experiments/checkout-exp/start", &json!({})).await;
    assert_eq!(r.status(), 200, "{}", r.text().await.unwrap());
}

async fn results(app: &TestApp) -> Value {
    let r = app.admin_get("/api/v1/experiments/checkout-exp/results").await;
    assert_eq!(r.status(), 200);
    r.json().await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sdk_driven_experiment_recovers_the_true_effect() {
    let app = TestApp::spawn().await;
    setup_experiment(&app, "frequentist").await;
    let sdk = GantryClient::builder().server(&app.base, &app.tokens.server).metrics_interval(Duration::from_secs(3600)).build().unwrap();
    sdk.wait_until_ready(Duration::from_secs(10)).await.unwrap();

    // True conversion rates: 10 % in control, 13 % in treatment (relative lift +30 %).
    let (p_control, p_treatment) = (0.10, 0.13);
    let true_lift = p_treatment / p_control - 1.0;
    let n = 6000;
    let mut served = [0u32; 2];
    for i in 0..n {
        let user = format!("user-{i}");
        let ctx = Context::new().with_user_id(&user);
        let variant = sdk.variant("checkout", &ctx).expect("a variant");
        let t = usize::from(variant == "treatment");
        served[t] += 1;
        // Evaluating again is not a second exposure.
        assert_eq!(sdk.variant("checkout", &ctx).as_deref(), Some(variant.as_str()));
        if uniform(&user, 1) < [p_control, p_treatment][t] {
            sdk.track(&user, "purchase", Some(20.0 + 80.0 * uniform(&user, 2)));
        }
    }
    assert_eq!(sdk.dropped_events(), 0);
    sdk.close().await; // flushes exposures and track events

    let r = results(&app).await;
    let units: Vec<u64> = r["units"].as_array().unwrap().iter().map(|u| u[1].as_u64().unwrap()).collect();
    assert_eq!(units, vec![u64::from(served[0]), u64::from(served[1])], "{r}");
    assert_eq!(r["srm"]["mismatch"], json!(false), "{}", r["srm"]);
    let conv = &r["metrics"][0];
    assert_eq!(conv["name"], "converted");
    let cmp = &conv["variants"][1]["comparison"];
    let [lo, hi] = [cmp["interval"][0].as_f64().unwrap(), cmp["interval"][1].as_f64().unwrap()];
    assert!(lo <= true_lift && true_lift <= hi, "interval [{lo}, {hi}] misses the true lift {true_lift}: {cmp}");
    assert!(cmp["p_value"].as_f64().unwrap() < 0.05, "{cmp}");
    assert_eq!(cmp["status"], "wins", "{cmp}");
    assert!(cmp["verdict"].as_str().unwrap().contains("treatment"), "{cmp}");
    // Revenue per unit is reported for both arms.
    assert!(r["metrics"][1]["variants"][0]["mean"].as_f64().unwrap() > 0.0);
    app.stop().await;
}

/// Same figures to 1e-6 relative: sums over a hash map may differ in the
/// last bits between processes (summation order).
fn close(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => {
            let (x, y) = (x.as_f64().unwrap(), y.as_f64().unwrap());
            (x - y).abs() <= 1e-6 * x.abs().max(y.abs()).max(1e-300)
        }
        (Value::Array(x), Value::Array(y)) => x.len() == y.len() && x.iter().zip(y).all(|(a, b)| close(a, b)),
        (Value::Object(x), Value::Object(y)) => x.len() == y.len() && x.iter().all(|(k, v)| y.get(k).is_some_and(|w| close(v, w))),
        _ => a == b,
    }
}

async fn post_events(app: &TestApp, token: &str, body: Value) -> (u16, Value) {
    let r = app.req(reqwest::Method::POST, "/api/v1/events", Some(token)).json(&body).send().await.unwrap();
    (r.status().as_u16(), r.json().await.unwrap_or(Value::Null))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_api_validates_dedupes_and_survives_restart() {
    let data = tempfile::tempdir().unwrap();
    let app = TestApp::spawn_with(Options { data_dir: Some(data.path().to_owned()), ..Default::default() }).await;
    setup_experiment(&app, "bayesian").await;

    // Bad input: a 422 naming the field, and nothing of the batch is stored.
    let (s, b) = post_events(
        &app,
        &app.tokens.client,
        json!({"events": [
            {"type": "exposure", "unit_id": "u1", "flag": "checkout", "variant": "control"},
            {"type": "track", "unit_id": "u1"}
        ]}),
    )
    .await;
    assert_eq!((s, b["code"].as_str()), (422, Some("validation_failed")), "{b}");
    assert_eq!(b["fields"][0]["field"], "events[1].name");
    let (s, b) = post_events(&app, &app.tokens.client, json!({"events": [{"type": "click", "unit_id": "u1"}]})).await;
    assert_eq!((s, b["code"].as_str()), (422, Some("validation_failed")), "{b}");
    let (s, b) = post_events(&app, &app.tokens.client, json!({"events": [], "extra": 1})).await;
    assert_eq!(s, 422, "{b}");
    let (s, _) = post_events(&app, "nope", json!({"events": []})).await;
    assert_eq!(s, 401);
    assert_eq!(results(&app).await["units"], json!([["control", 0], ["treatment", 0]]));

    // Exposures and conversions, sent twice with the same idempotency keys.
    let mut events = Vec::new();
    for i in 0..200 {
        let v = if i % 2 == 0 { "control" } else { "treatment" };
        events.push(
            json!({"type": "exposure", "unit_id": format!("u{i}"), "flag": "checkout", "variant": v, "idempotency_key": format!("e{i}")}),
        );
        if i % 4 == 1 || i % 8 == 0 {
            events.push(
                json!({"type": "track", "unit_id": format!("u{i}"), "name": "purchase", "value": 10.0, "idempotency_key": format!("t{i}")}),
            );
        }
    }
    let batch = json!({ "events": events });
    let (s, b) = post_events(&app, &app.tokens.server, batch.clone()).await;
    assert_eq!((s, b["accepted"].as_u64(), b["duplicates"].as_u64()), (202, Some(275), Some(0)), "{b}");
    let (s, b) = post_events(&app, &app.tokens.server, batch).await;
    assert_eq!((s, b["duplicates"].as_u64()), (202, Some(275)), "{b}");

    let before = results(&app).await;
    assert_eq!(before["units"], json!([["control", 100], ["treatment", 100]]));
    assert_eq!(before["metrics"][0]["variants"][0]["mean"], json!(0.25));
    assert_eq!(before["metrics"][0]["variants"][1]["mean"], json!(0.5));
    let cmp = &before["metrics"][0]["variants"][1]["comparison"];
    assert!(cmp["chance_to_win"].as_f64().is_some_and(|c| c > 0.99), "{cmp}");

    // Stop, then crash and restart: the aggregates are rebuilt from the log.
    assert_eq!(app.admin_post("/api/v1/experiments/checkout-exp/stop", &json!({})).await.status(), 200);
    app.kill().await;
    let app = TestApp::spawn_with(Options { data_dir: Some(data.path().to_owned()), ..Default::default() }).await;
    let after = results(&app).await;
    assert_eq!(after["units"], before["units"]);
    assert_eq!(after["metrics"], before["metrics"]);
    // A stopped experiment no longer collects.
    let (s, _) = post_events(
        &app,
        &app.tokens.server,
        json!({"events": [{"type": "exposure", "unit_id": "late", "flag": "checkout", "variant": "control"}]}),
    )
    .await;
    assert_eq!(s, 202);
    assert_eq!(results(&app).await["units"], before["units"]);
    // Lifecycle errors are 409 with a stable code.
    let r = app.admin_post("/api/v1/experiments/checkout-exp/stop", &json!({})).await;
    assert_eq!(r.status(), 409);
    let r = app.admin_get("/api/v1/experiments/missing/results").await;
    assert_eq!(r.status(), 404);
    let audit: Value = app.admin_get("/api/v1/audit?limit=10").await.json().await.unwrap();
    assert!(audit.to_string().contains("experiment.stop"), "{audit}");
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_side_evaluations_are_exposures() {
    let app = TestApp::spawn().await;
    setup_experiment(&app, "sequential").await;
    let mut served = std::collections::BTreeMap::new();
    for i in 0..40 {
        let user = format!("ofrep-{i}");
        // Twice through OFREP and once through the frontend API: one exposure per unit.
        for _ in 0..2 {
            let (s, o) = app.ofrep(&app.tokens.client, "checkout", json!({"targetingKey": user})).await;
            assert_eq!(s, 200, "{o}");
            served.insert(user.clone(), o["variant"].as_str().unwrap().to_owned());
        }
        let r = app
            .req(reqwest::Method::POST, "/api/frontend", Some(&app.tokens.client))
            .json(&json!({"context": {"userId": user}}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
    }
    let want = |v: &str| served.values().filter(|x| x.as_str() == v).count() as u64;
    let expected = json!([["control", want("control")], ["treatment", want("treatment")]]);
    // Exposures are queued without blocking evaluation: wait (bounded) until folded.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let r = results(&app).await;
        if r["units"] == expected {
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "units {} never reached {expected}", r["units"]);
        tokio::time::sleep(Duration::from_millis(5)).await; // poll interval, not a readiness guess
    }
    app.stop().await;
}

/// Evaluates `checkout` for each user through OFREP with `token` (and, for
/// an admin token, the environment named in `Gantry-Environment`).
async fn ofrep_variants(app: &TestApp, users: impl Iterator<Item = String>, env: Option<&str>) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for user in users {
        let mut req = app
            .req(reqwest::Method::POST, "/ofrep/v1/evaluate/flags/checkout", Some(&app.tokens.admin))
            .json(&json!({"context": {"targetingKey": user}}));
        if let Some(env) = env {
            req = req.header("gantry-environment", env);
        }
        let r = req.send().await.unwrap();
        assert_eq!(r.status(), 200);
        let o: Value = r.json().await.unwrap();
        out.push((user, o["variant"].as_str().unwrap().to_owned()));
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn changing_weights_mid_run_does_not_reshuffle_assigned_units() {
    let data = tempfile::tempdir().unwrap();
    let app = TestApp::spawn_with(Options { data_dir: Some(data.path().to_owned()), ..Default::default() }).await;
    setup_experiment(&app, "frequentist").await;
    let old_users = || (0..300).map(|i| format!("early-{i}"));
    let first = ofrep_variants(&app, old_users(), Some("production")).await;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while results(&app).await["units"].as_array().unwrap().iter().map(|u| u[1].as_u64().unwrap()).sum::<u64>() < 300 {
        assert!(tokio::time::Instant::now() < deadline, "exposures were not folded");
        tokio::time::sleep(Duration::from_millis(5)).await; // poll interval, not a readiness guess
    }

    // 50/50 → 10/90 mid-run, the same definition in staging (no experiment there).
    let flag = json!({"key": "checkout", "kind": "string",
        "variants": [{"name": "control", "weight": 100, "payload": {"type": "string", "value": "old"}},
                     {"name": "treatment", "weight": 900, "payload": {"type": "string", "value": "new"}}],
        "environments": {"production": {"enabled": true}, "staging": {"enabled": true}}});
    let r = app.admin_put("/api/v1/flags/checkout", &flag).await;
    assert_eq!(r.status(), 200, "{}", r.text().await.unwrap());

    // Plain bucketing (staging) would move a good share of the early units...
    let unsticky = ofrep_variants(&app, old_users(), Some("staging")).await;
    let moved = first.iter().zip(&unsticky).filter(|(a, b)| a.1 != b.1).count();
    assert!(moved > 60, "the weight change moves {moved} of 300 under plain bucketing");
    // ...but in the running experiment every early unit keeps its variant, through OFREP and the frontend API.
    assert_eq!(ofrep_variants(&app, old_users(), Some("production")).await, first);
    for (user, variant) in first.iter().take(50) {
        let r = app
            .req(reqwest::Method::POST, "/api/frontend", Some(&app.tokens.client))
            .json(&json!({"context": {"userId": user}}))
            .send()
            .await
            .unwrap();
        let b: Value = r.json().await.unwrap();
        let t = b["toggles"].as_array().unwrap().iter().find(|t| t["name"] == "checkout").unwrap();
        assert_eq!(t["variant"]["name"].as_str(), Some(variant.as_str()), "{t}");
        assert_eq!(t["variant"]["payload"]["value"], json!(if variant == "control" { "old" } else { "new" }));
    }
    // New units follow the new weights.
    let late = ofrep_variants(&app, (0..500).map(|i| format!("late-{i}")), Some("production")).await;
    let treated = late.iter().filter(|(_, v)| v == "treatment").count();
    assert!(treated > 400, "{treated} of 500 new units in treatment at 90 %");

    // Assignments survive a crash: they are rebuilt from the durable event log.
    app.kill().await;
    let app = TestApp::spawn_with(Options { data_dir: Some(data.path().to_owned()), ..Default::default() }).await;
    assert_eq!(ofrep_variants(&app, old_users(), Some("production")).await, first);
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sdk_assignments_stay_sticky_across_a_weight_change_and_a_shared_store() {
    use gantry_sdk::sticky::{AssignmentStore, MemoryAssignments};
    use std::sync::Arc;
    let app = TestApp::spawn().await;
    setup_experiment(&app, "frequentist").await;
    let store = Arc::new(MemoryAssignments::new(10_000));
    let sdk = |store: Option<Arc<MemoryAssignments>>| {
        let mut b = GantryClient::builder().server(&app.base, &app.tokens.server).metrics_interval(Duration::from_secs(3600));
        if let Some(s) = store {
            b = b.assignment_store(s);
        }
        b.build().unwrap()
    };
    let first_sdk = sdk(Some(store.clone()));
    first_sdk.wait_until_ready(Duration::from_secs(10)).await.unwrap();
    let users: Vec<String> = (0..300).map(|i| format!("sdk-{i}")).collect();
    let variant_of = |c: &GantryClient, u: &str| c.variant("checkout", &Context::new().with_user_id(u)).unwrap();
    let first: Vec<String> = users.iter().map(|u| variant_of(&first_sdk, u)).collect();
    assert_eq!(store.len(), 300);
    assert_eq!(store.get("checkout-exp", "sdk-0").as_deref(), Some(first[0].as_str()), "keyed by the experiment");

    let before = first_sdk.revision();
    let flag = json!({"key": "checkout", "kind": "string",
        "variants": [{"name": "control", "weight": 100, "payload": {"type": "string", "value": "old"}},
                     {"name": "treatment", "weight": 900, "payload": {"type": "string", "value": "new"}}],
        "environments": {"production": {"enabled": true}}});
    assert_eq!(app.admin_put("/api/v1/flags/checkout", &flag).await.status(), 200);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while first_sdk.revision() == before {
        assert!(tokio::time::Instant::now() < deadline, "the change never reached the SDK");
        tokio::time::sleep(Duration::from_millis(5)).await; // poll interval
    }

    // An SDK with its own, empty memory shows what plain bucketing now does...
    let fresh = sdk(None);
    fresh.wait_until_ready(Duration::from_secs(10)).await.unwrap();
    let moved = users.iter().zip(&first).filter(|(u, v)| &variant_of(&fresh, u) != *v).count();
    assert!(moved > 60, "plain bucketing moves {moved} of 300");
    // ...while the same SDK, and a second one sharing the store, keep every early unit where it was.
    let second_sdk = sdk(Some(store.clone()));
    second_sdk.wait_until_ready(Duration::from_secs(10)).await.unwrap();
    for (u, v) in users.iter().zip(&first) {
        assert_eq!(&variant_of(&first_sdk, u), v);
        assert_eq!(&variant_of(&second_sdk, u), v);
        let value = first_sdk.string_value("checkout", &Context::new().with_user_id(u), "default");
        assert_eq!(value, if v == "control" { "old" } else { "new" }, "the value follows the sticky variant");
    }
    // New units follow the new weights.
    let treated = (0..500).filter(|i| variant_of(&first_sdk, &format!("new-{i}")) == "treatment").count();
    assert!(treated > 400, "{treated} of 500 new units in treatment at 90 %");
    for c in [first_sdk, second_sdk, fresh] {
        c.close().await;
    }
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cuped_uses_pre_exposure_events_and_narrows_the_interval() {
    let data = tempfile::tempdir().unwrap();
    let app = TestApp::spawn_with(Options { data_dir: Some(data.path().to_owned()), ..Default::default() }).await;
    app.create_flag(json!({"key": "price", "kind": "string",
        "variants": [{"name": "control", "weight": 500, "payload": {"type": "string", "value": "a"}},
                     {"name": "treatment", "weight": 500, "payload": {"type": "string", "value": "b"}}],
        "environments": {"production": {"enabled": true}}}))
        .await;
    let r = app
        .admin_post(
            "/api/v1/experiments",
            &json!({"key": "price-exp", "flag": "price", "environment": "production", "engine": "frequentist",
            "metrics": [
                {"name": "revenue_cuped", "event": "buy", "kind": "mean", "role": "primary", "cuped": true},
                {"name": "revenue_plain", "event": "buy", "kind": "mean"}
            ]}),
        )
        .await;
    assert_eq!(r.status(), 201, "{}", r.text().await.unwrap());
    let n = 2000;
    let base = |u: usize| 50.0 + 100.0 * uniform(&format!("unit-{u}"), 7);
    // Pre-period spend (before the experiment starts) predicts later spend strongly.
    let pre: Vec<Value> =
        (0..n).map(|u| json!({"type": "track", "unit_id": format!("unit-{u}"), "name": "buy", "value": base(u)})).collect();
    assert_eq!(post_events(&app, &app.tokens.server, json!({"events": pre})).await.0, 202);
    assert_eq!(app.admin_post("/api/v1/experiments/price-exp/start", &json!({})).await.status(), 200);

    let true_effect = 4.0;
    let mut events = Vec::new();
    for u in 0..n {
        let unit = format!("unit-{u}");
        let treated = uniform(&unit, 8) < 0.5;
        events
            .push(json!({"type": "exposure", "unit_id": unit, "flag": "price", "variant": if treated { "treatment" } else { "control" }}));
        let noise = 10.0 * (uniform(&unit, 9) - 0.5);
        let value = base(u) + noise + if treated { true_effect } else { 0.0 };
        events.push(json!({"type": "track", "unit_id": unit, "name": "buy", "value": value}));
    }
    assert_eq!(post_events(&app, &app.tokens.server, json!({"events": events})).await.0, 202);

    let r: Value = app.admin_get("/api/v1/experiments/price-exp/results").await.json().await.unwrap();
    let units: u64 = r["units"].as_array().unwrap().iter().map(|u| u[1].as_u64().unwrap()).sum();
    assert_eq!(units, n as u64, "{r}");
    let cmp = |i: usize| r["metrics"][i]["variants"][1]["comparison"].clone();
    let (cuped, plain) = (cmp(0), cmp(1));
    let width = |c: &Value| c["interval"][1].as_f64().unwrap() - c["interval"][0].as_f64().unwrap();
    let theta = cuped["cuped_theta"].as_f64().unwrap();
    assert!((0.8..1.2).contains(&theta), "theta {theta} (pre-period predicts 1:1)");
    assert_eq!(plain["cuped_theta"], Value::Null);
    assert!(width(&cuped) < 0.25 * width(&plain), "CUPED {cuped} vs plain {plain}");
    // The interval (relative lift unless the analysis says absolute) covers the true effect.
    let control_mean = r["metrics"][0]["variants"][0]["mean"].as_f64().unwrap();
    let truth = if cuped["difference"] == json!("absolute") { true_effect } else { true_effect / control_mean };
    let [lo, hi] = [cuped["interval"][0].as_f64().unwrap(), cuped["interval"][1].as_f64().unwrap()];
    assert!(lo <= truth && truth <= hi, "[{lo}, {hi}] misses {truth}: {cuped}");
    // After a crash the replay of the log rebuilds the same covariates.
    app.kill().await;
    let app = TestApp::spawn_with(Options { data_dir: Some(data.path().to_owned()), ..Default::default() }).await;
    let again: Value = app.admin_get("/api/v1/experiments/price-exp/results").await.json().await.unwrap();
    assert!(close(&again["metrics"], &r["metrics"]), "{} vs {}", again["metrics"], r["metrics"]);
    app.stop().await;
}

/// Exposures and purchases for units `from..to` (treatment converts more).
fn traffic(from: usize, to: usize) -> Value {
    let mut events = Vec::new();
    for u in from..to {
        let unit = format!("ck-{u}");
        let treated = uniform(&unit, 3) < 0.5;
        events.push(
            json!({"type": "exposure", "unit_id": unit, "flag": "checkout", "variant": if treated { "treatment" } else { "control" }}),
        );
        if uniform(&unit, 4) < if treated { 0.3 } else { 0.2 } {
            events.push(json!({"type": "track", "unit_id": unit, "name": "purchase", "value": 10.0 + 90.0 * uniform(&unit, 5)}));
        }
    }
    json!({"events": events})
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restarts_resume_from_the_aggregates_checkpoint() {
    let data = tempfile::tempdir().unwrap();
    let spawn = || TestApp::spawn_with(Options { data_dir: Some(data.path().to_owned()), ..Default::default() });
    let app = spawn().await;
    setup_experiment(&app, "frequentist").await;
    for chunk in 0..3 {
        assert_eq!(post_events(&app, &app.tokens.server, traffic(chunk * 500, chunk * 500 + 500)).await.0, 202);
    }
    let before = results(&app).await;
    assert_eq!(before["units"].as_array().unwrap().iter().map(|u| u[1].as_u64().unwrap()).sum::<u64>(), 1500);
    // A clean shutdown saves a checkpoint: the restart replays nothing.
    app.stop().await;
    let app = spawn().await;
    let report = app.state.events.replay_report.lock().unwrap().clone();
    assert_eq!((report.checkpoint_upto.is_some(), report.batches), (true, 0), "{report:?}");
    let after = results(&app).await;
    assert!(close(&after["metrics"], &before["metrics"]) && after["units"] == before["units"], "{after} vs {before}");

    // After a crash, only the batches since the checkpoint are replayed.
    assert_eq!(post_events(&app, &app.tokens.server, traffic(1500, 2000)).await.0, 202);
    let before = results(&app).await;
    app.kill().await;
    let app = spawn().await;
    let crashed = app.state.events.replay_report.lock().unwrap().clone();
    assert_eq!((crashed.checkpoint_upto, crashed.batches), (report.checkpoint_upto, 1), "{crashed:?}");
    let after = results(&app).await;
    assert!(close(&after["metrics"], &before["metrics"]) && after["units"] == before["units"], "{after} vs {before}");
    // Idempotency keys remembered before the checkpoint still dedupe after it.
    let keyed = json!({"events": [{"type": "track", "unit_id": "ck-1", "name": "purchase", "idempotency_key": "once"}]});
    assert_eq!(post_events(&app, &app.tokens.server, keyed.clone()).await.1["duplicates"], json!(0));
    app.stop().await;
    let app = spawn().await;
    assert_eq!(post_events(&app, &app.tokens.server, keyed).await.1["duplicates"], json!(1));
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn results_history_is_cumulative_by_first_exposure() {
    let app = TestApp::spawn_with(Options { manual_clock_ms: Some(crate::support::T0_MS), ..Default::default() }).await;
    setup_experiment(&app, "frequentist").await;
    let r = app.admin_get("/api/v1/experiments/checkout-exp/results/history?points=1").await;
    assert_eq!(r.status(), 400);
    // Three hours of traffic, 300 units an hour.
    for hour in 0..3 {
        app.clock.as_ref().unwrap().advance(std::time::Duration::from_secs(3600));
        assert_eq!(post_events(&app, &app.tokens.server, traffic(hour * 300, hour * 300 + 300)).await.0, 202);
    }
    let r = app.admin_get("/api/v1/experiments/checkout-exp/results/history?points=3").await;
    assert_eq!(r.status(), 200);
    let h: Value = r.json().await.unwrap();
    let totals: Vec<u64> = h["points"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["units"].as_array().unwrap().iter().map(|u| u[1].as_u64().unwrap()).sum())
        .collect();
    assert_eq!(totals, vec![300, 600, 900], "{h}");
    // The last point is the current result.
    let now = results(&app).await;
    assert!(close(&h["points"][2]["metrics"], &now["metrics"]));
    assert!(h["points"][0]["metrics"][0]["variants"][1]["comparison"]["interval"].is_array());
    app.stop().await;
}
