//! Maintenance mode: the admin API (ETag/If-Match, validation, audit), the
//! synthetic `gantry.maintenance` flag in the frontend API and OFREP, the
//! Unleash client document, the native stream, the public status endpoint
//! and the Rust SDK's per-user answer.

use std::time::Duration;

use gantry_sdk::{Context, GantryClient};
use gantry_testkit::{Options, TestApp};
use reqwest::Method;
use serde_json::{json, Value};

use crate::streams::open;
use crate::support::{admin_delete, admin_get, admin_post, assert_error, send, T0_MS};

const PATH: &str = "/api/v1/environments/production/maintenance";
const WAIT: Duration = Duration::from_secs(10);

async fn put(app: &TestApp, if_match: Option<&str>, body: &Value) -> crate::support::Reply {
    let mut rb = app.req(Method::PUT, PATH, Some(&app.tokens.admin)).json(body);
    if let Some(m) = if_match {
        rb = rb.header("if-match", m);
    }
    send(rb).await
}

async fn staff_segment(app: &TestApp) {
    let seg = json!({"id": 7, "name": "staff", "constraints": [{"context_name": "plan", "operator": "IN", "values": ["staff"]}]});
    assert_eq!(admin_post(app, "/api/v1/segments", &seg).await.status, 201);
}

fn toggles(body: &Value) -> Vec<String> {
    body["toggles"].as_array().expect("toggles").iter().map(|t| t["name"].as_str().unwrap_or_default().to_owned()).collect()
}

async fn frontend(app: &TestApp, query: &str) -> Value {
    let r = send(app.req(Method::GET, &format!("/api/frontend?{query}"), Some(&app.tokens.client))).await;
    assert_eq!(r.status, 200, "{}", r.text);
    r.body
}

#[tokio::test]
async fn admin_api_has_etags_validation_stable_codes_and_audit() {
    let app = TestApp::spawn().await;
    let r = admin_get(&app, PATH).await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.etag(), "\"0\"");
    assert_eq!((r.body["enabled"].as_bool(), r.body["version"].as_i64(), r.body["active"].as_bool()), (Some(false), Some(0), Some(false)));

    let body = json!({"enabled": true, "message": "Back soon", "allow_users": ["alice"], "allow_segments": [7]});
    let r = put(&app, Some("\"0\""), &body).await;
    assert_error(&r, 422, "validation_failed");
    assert_eq!(r.body["fields"][0]["field"], "allow_segments[0]");

    staff_segment(&app).await;
    let r = put(&app, Some("\"0\""), &body).await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.etag(), "\"1\"");
    assert_eq!((r.body["active"].as_bool(), r.body["message"].as_str()), (Some(true), Some("Back soon")));

    // A stale If-Match (the "never set" ETag, now taken) is refused.
    assert_error(&put(&app, Some("\"0\""), &json!({"enabled": false})).await, 412, "precondition_failed");
    assert_error(&put(&app, Some("\"9\""), &json!({"enabled": false})).await, 412, "precondition_failed");
    let r = put(&app, Some("\"1\""), &json!({"enabled": true, "ends_at": "tomorrow", "message": "x".repeat(1001)})).await;
    assert_error(&r, 422, "validation_failed");
    let fields: Vec<&str> = r.body["fields"].as_array().unwrap().iter().map(|f| f["field"].as_str().unwrap()).collect();
    assert_eq!(fields, ["message", "ends_at"]);
    assert_error(&put(&app, Some("\"1\""), &json!({"enabled": true, "surprise": 1})).await, 422, "validation_failed");
    let r = send(app.req(Method::PUT, "/api/v1/environments/nope/maintenance", Some(&app.tokens.admin)).json(&body)).await;
    assert_error(&r, 404, "environment_not_found");

    // Admin only: 401 without a token, 403 for server and client tokens (before the body is read).
    assert_error(&send(app.req(Method::GET, PATH, None)).await, 401, "unauthorized");
    assert_error(&send(app.req(Method::GET, PATH, Some(&app.tokens.server))).await, 403, "forbidden");
    assert_error(&send(app.req(Method::PUT, PATH, Some(&app.tokens.client)).json(&json!({"bad": 1}))).await, 403, "forbidden");

    // A segment on an allowlist cannot be deleted.
    assert_error(&admin_delete(&app, "/api/v1/segments/7").await, 409, "in_use");

    // Off with the current ETag; both changes are audited with before/after.
    let r = put(&app, Some("\"1\""), &json!({"enabled": false, "allow_users": ["alice"]})).await;
    assert_eq!((r.status, r.etag().as_str()), (200, "\"2\""), "{}", r.text);
    let audit = admin_get(&app, "/api/v1/audit?limit=2").await;
    let items = audit.body["items"].as_array().unwrap();
    assert_eq!(items[0]["action"], "maintenance.off");
    assert_eq!(items[0]["target"], "production");
    assert_eq!(items[0]["before"]["message"], "Back soon");
    assert_eq!(items[1]["action"], "maintenance.on");
    assert_eq!(items[1]["after"]["allow_segments"], json!([7]));
    // Once off the allowlist, the segment can go.
    assert_eq!(admin_delete(&app, "/api/v1/segments/7").await.status, 204);
    let verify = admin_get(&app, "/api/v1/audit/verify").await;
    assert_eq!(verify.status, 200, "{}", verify.text);
    app.stop().await;
}

#[tokio::test]
async fn frontend_ofrep_and_public_status_answer_per_user_until_the_end_time() {
    let app = TestApp::spawn_with(Options { manual_clock_ms: Some(T0_MS), ..Default::default() }).await;
    staff_segment(&app).await;
    app.create_flag(json!({"key": "checkout", "environments": {"production": {"enabled": true}}})).await;
    // Never set: the flag is absent from the frontend API, OFREP answers false, the status is calm.
    assert_eq!(toggles(&frontend(&app, "userId=bob").await), ["checkout"]);
    let (status, body) = app.ofrep(&app.tokens.server, "gantry.maintenance", json!({"targetingKey": "bob"})).await;
    assert_eq!((status, body["value"].as_bool(), body["reason"].as_str()), (200, Some(false), Some("DISABLED")));

    let ends = "2023-11-14T23:13:20Z"; // T0 + 1 h
    let body = json!({"enabled": true, "message": "Back at midnight", "allow_users": ["alice"], "allow_segments": [7], "ends_at": ends});
    assert_eq!(put(&app, None, &body).await.status, 200);

    // Bob is in maintenance: an enabled toggle with the message as the variant payload.
    let fe = frontend(&app, "userId=bob").await;
    assert_eq!(toggles(&fe), ["checkout", "gantry.maintenance"]);
    let t = &fe["toggles"][1];
    assert_eq!((t["enabled"].as_bool(), t["variant"]["name"].as_str()), (Some(true), Some("maintenance")));
    assert_eq!(t["variant"]["payload"], json!({"type": "string", "value": "Back at midnight"}));
    // Alice (user allowlist) and a staff member (segment allowlist) are not.
    assert_eq!(toggles(&frontend(&app, "userId=alice").await), ["checkout"]);
    assert_eq!(toggles(&frontend(&app, "userId=carol&properties%5Bplan%5D=staff").await), ["checkout"]);
    let r = send(app.req(Method::GET, "/api/frontend/features/gantry.maintenance?userId=bob", Some(&app.tokens.client))).await;
    assert_eq!((r.status, r.body["enabled"].as_bool()), (200, Some(true)), "{}", r.text);

    // OFREP: the same flag key, single and bulk.
    let (status, b) = app.ofrep(&app.tokens.client, "gantry.maintenance", json!({"targetingKey": "bob"})).await;
    assert_eq!((status, b["value"].as_bool(), b["variant"].as_str()), (200, Some(true), Some("maintenance")));
    assert_eq!(b["metadata"]["payload"], "Back at midnight");
    let (_, b) = app.ofrep(&app.tokens.client, "gantry.maintenance", json!({"targetingKey": "alice"})).await;
    assert_eq!(b["value"].as_bool(), Some(false));
    let r = send(
        app.req(Method::POST, "/ofrep/v1/evaluate/flags", Some(&app.tokens.client)).json(&json!({"context": {"targetingKey": "bob"}})),
    )
    .await;
    let m = r.body["flags"].as_array().unwrap().iter().find(|f| f["key"] == "gantry.maintenance").cloned().expect("in the bulk answer");
    assert_eq!(m["value"].as_bool(), Some(true));

    // The public status endpoint: no token, no allowlist.
    let r = send(app.req(Method::GET, "/api/v1/status", None)).await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.body["status"], "pass");
    let prod = r.body["environments"].as_array().unwrap().iter().find(|e| e["name"] == "production").cloned().unwrap();
    // `ends_at` comes back normalised (UTC, milliseconds).
    assert_eq!(
        prod,
        json!({"name": "production", "maintenance": true, "message": "Back at midnight", "ends_at": "2023-11-14T23:13:20.000Z"})
    );
    let dev = r.body["environments"].as_array().unwrap().iter().find(|e| e["name"] == "development").cloned().unwrap();
    assert_eq!(dev, json!({"name": "development", "maintenance": false}));
    assert!(!r.text.contains("alice") && !r.text.contains("allow"), "status leaks the allowlist: {}", r.text);

    // After `ends_at` (injected clock) maintenance is over everywhere.
    app.clock.as_ref().unwrap().advance(Duration::from_secs(3601));
    assert_eq!(toggles(&frontend(&app, "userId=bob").await), ["checkout"]);
    let r = send(app.req(Method::GET, "/api/v1/status", None)).await;
    assert!(r.body["environments"].as_array().unwrap().iter().all(|e| e["maintenance"] == false), "{}", r.text);
    let (_, b) = app.ofrep(&app.tokens.client, "gantry.maintenance", json!({"targetingKey": "bob"})).await;
    assert_eq!(b["value"].as_bool(), Some(false));
    app.stop().await;
}

#[tokio::test]
async fn unleash_client_document_carries_maintenance_as_an_extra_field() {
    let app = TestApp::spawn().await;
    app.create_flag(json!({"key": "checkout", "environments": {"production": {"enabled": true}}})).await;
    let before = send(app.req(Method::GET, "/api/client/features", Some(&app.tokens.server))).await;
    assert!(before.body.get("maintenance").is_none(), "{}", before.text);
    assert_eq!(put(&app, None, &json!({"enabled": true, "message": "m"})).await.status, 200);
    let r = send(app.req(Method::GET, "/api/client/features", Some(&app.tokens.server))).await;
    assert_eq!(r.status, 200);
    assert_eq!(r.body["maintenance"]["enabled"], true);
    assert_eq!(r.body["maintenance"]["message"], "m");
    // Still a valid client-features document with the same features.
    let doc: gantry_engine::unleash::ClientFeatures = serde_json::from_str(&r.text).expect("parses as client features");
    assert_eq!(doc.features.len(), 1);
    assert_ne!(r.etag(), before.etag());
    app.stop().await;
}

#[tokio::test]
async fn stream_snapshot_and_change_event_carry_maintenance() {
    let app = TestApp::spawn().await;
    let mut s = open(&app, &app.tokens.server, None).await;
    let snap = s.next().await;
    assert_eq!(snap.name(), "snapshot");
    assert!(snap.json().get("maintenance").is_none());
    assert_eq!(put(&app, None, &json!({"enabled": true, "message": "m", "allow_users": ["alice"]})).await.status, 200);
    let ev = s.next().await;
    assert_eq!(ev.name(), "maintenance-updated");
    let data = ev.json();
    assert_eq!(data["maintenance"]["enabled"], true);
    assert_eq!(data["maintenance"]["allow_users"], json!(["alice"]));
    // A development stream hears nothing of production's maintenance; a new
    // production stream gets it in the snapshot.
    let mut dev = open(&app, &app.tokens.server_dev, None).await;
    assert!(dev.next().await.json().get("maintenance").is_none());
    let mut again = open(&app, &app.tokens.server, None).await;
    assert_eq!(again.next().await.json()["maintenance"]["message"], "m");
    app.stop().await;
}

/// Waits (bounded) until `pred` holds, woken by the SDK's change callback.
async fn until(client: &GantryClient, pred: impl Fn(&GantryClient) -> bool) {
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    let _sub = client.subscribe(None, move |_| {
        let _ = tx.send(());
    });
    let deadline = tokio::time::Instant::now() + WAIT;
    while !pred(client) {
        let left = deadline.saturating_duration_since(tokio::time::Instant::now());
        assert!(!left.is_zero(), "condition not reached within {WAIT:?} (last error: {:?})", client.last_error());
        let _ = tokio::time::timeout(left, rx.recv()).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sdk_answers_maintenance_per_user_and_set_maintenance_drives_it() {
    let app = TestApp::spawn().await;
    staff_segment(&app).await;
    // Allowlist first, switched off.
    assert_eq!(put(&app, None, &json!({"enabled": false, "allow_users": ["alice"], "allow_segments": [7]})).await.status, 200);
    let client = GantryClient::builder().server(&app.base, &app.tokens.server).build().unwrap();
    client.wait_until_ready(WAIT).await.unwrap();
    let bob = Context::new().with_user_id("bob");
    let alice = Context::new().with_user_id("alice");
    let staff = Context::new().with_user_id("carol").with_property("plan", "staff");
    assert!(!client.is_in_maintenance(&bob));
    assert_eq!(client.maintenance().map(|m| m.enabled), Some(false));

    // What an alert action calls: on, with a message, keeping the allowlist.
    let r =
        gantry_server::maintenance::set_maintenance(&app.state, "production", true, Some("Upgrading".into()), "alert:test").await.unwrap();
    assert!(r.active);
    assert_eq!(r.maintenance.allow_users, ["alice"]);
    until(&client, |c| c.is_in_maintenance(&bob)).await;
    assert!(!client.is_in_maintenance(&alice));
    assert!(!client.is_in_maintenance(&staff));
    assert_eq!(client.maintenance().and_then(|m| m.message).as_deref(), Some("Upgrading"));
    // The synthetic flag answers through the ordinary flag API too.
    assert!(client.is_enabled("gantry.maintenance", &bob));
    assert!(!client.is_enabled("gantry.maintenance", &alice));
    assert_eq!(client.evaluate("gantry.maintenance", &bob).variant.as_deref(), Some("maintenance"));
    let audit = admin_get(&app, "/api/v1/audit?limit=1").await;
    assert_eq!(
        (audit.body["items"][0]["action"].as_str(), audit.body["items"][0]["actor"].as_str()),
        (Some("maintenance.on"), Some("alert:test"))
    );

    gantry_server::maintenance::set_maintenance(&app.state, "production", false, None, "alert:test").await.unwrap();
    until(&client, |c| !c.is_in_maintenance(&bob)).await;
    assert!(gantry_server::maintenance::set_maintenance(&app.state, "nope", true, None, "t").await.is_err());
    client.close().await;
    app.stop().await;
}

#[tokio::test]
async fn a_recreated_environment_does_not_inherit_maintenance() {
    let app = TestApp::spawn().await;
    assert_eq!(admin_post(&app, "/api/v1/environments", &json!({"name": "temp"})).await.status, 201);
    let path = "/api/v1/environments/temp/maintenance";
    let r = send(app.req(Method::PUT, path, Some(&app.tokens.admin)).json(&json!({"enabled": true, "allow_users": ["a"]}))).await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(admin_delete(&app, "/api/v1/environments/temp").await.status, 204);
    assert_eq!(admin_post(&app, "/api/v1/environments", &json!({"name": "temp"})).await.status, 201);
    let r = admin_get(&app, path).await;
    assert_eq!((r.body["enabled"].as_bool(), r.body["active"].as_bool()), (Some(false), Some(false)), "{}", r.text);
    assert!(r.body.get("allow_users").is_none(), "{}", r.text);
    app.stop().await;
}
