//! The release registry: recording (validation, idempotency, least
//! privilege, audit), history pages, the "is there an update?" check with
//! semver ordering and ETag/304, and the `release-recorded` stream event
//! (raw SSE and the SDK's `on_new_release`).

use std::time::Duration;

use gantry_sdk::GantryClient;
use gantry_testkit::TestApp;
use reqwest::Method;
use serde_json::{json, Value};

use crate::streams::open;
use crate::support::{admin_get, assert_error, send, Reply};

async fn record(app: &TestApp, token: &str, app_name: &str, body: &Value) -> Reply {
    send(app.req(Method::POST, &format!("/api/v1/apps/{app_name}/releases"), Some(token)).json(body)).await
}

fn rel(version: &str, env: &str) -> Value {
    json!({"version": version, "environment": env})
}

#[tokio::test]
async fn recording_is_validated_idempotent_least_privileged_and_audited() {
    let app = TestApp::spawn().await;
    let body = json!({"version": "1.2.0", "environment": "production", "commit": "abc1234", "notes": "faster checkout"});
    let r = record(&app, &app.tokens.server, "shop", &body).await;
    assert_eq!(r.status, 201, "{}", r.text);
    assert_eq!(
        (r.body["app"].as_str(), r.body["version"].as_str(), r.body["commit"].as_str()),
        (Some("shop"), Some("1.2.0"), Some("abc1234"))
    );
    assert!(r.body["released_at"].as_str().is_some_and(|t| t.ends_with('Z')), "{}", r.text);
    let id = r.body["id"].as_i64().unwrap();
    let audit = admin_get(&app, "/api/v1/audit?limit=1").await;
    assert_eq!(audit.body["items"][0]["action"], "release.record");
    assert_eq!(audit.body["items"][0]["target"], "shop@1.2.0");

    // A CI re-run: the same version again is 200 with the existing record, nothing new.
    let again = record(&app, &app.tokens.admin, "shop", &body).await;
    assert_eq!((again.status, again.body["id"].as_i64()), (200, Some(id)), "{}", again.text);
    assert_eq!(admin_get(&app, "/api/v1/audit?limit=1").await.body["items"][0]["seq"], audit.body["items"][0]["seq"]);

    // Least privilege: no token 401; client tokens 403; a server token only for its own environment.
    assert_error(&send(app.req(Method::POST, "/api/v1/apps/shop/releases", None).json(&body)).await, 401, "unauthorized");
    assert_error(&record(&app, &app.tokens.client, "shop", &body).await, 403, "forbidden");
    assert_error(&record(&app, &app.tokens.server_dev, "shop", &body).await, 403, "forbidden");
    assert_eq!(record(&app, &app.tokens.server_dev, "shop", &rel("1.3.0", "development")).await.status, 201);

    // Validation with stable codes and per-field errors.
    let r = record(&app, &app.tokens.admin, "shop", &json!({"version": "1 2", "environment": "nope", "commit": "xyz", "notes": "n"})).await;
    assert_error(&r, 422, "validation_failed");
    let fields: Vec<&str> = r.body["fields"].as_array().unwrap().iter().map(|f| f["field"].as_str().unwrap()).collect();
    assert_eq!(fields, ["version", "environment", "commit"]);
    assert_error(&record(&app, &app.tokens.admin, "bad%20name", &rel("1.0.0", "production")).await, 422, "invalid_key");
    assert_error(
        &record(&app, &app.tokens.admin, "shop", &json!({"version": "1", "environment": "production", "x": 1})).await,
        422,
        "validation_failed",
    );
    let r = send(
        app.req(Method::POST, "/api/v1/apps/shop/releases", Some(&app.tokens.admin)).body("{").header("content-type", "application/json"),
    )
    .await;
    assert_error(&r, 400, "invalid_json");
    app.stop().await;
}

#[tokio::test]
async fn history_pages_and_version_check_with_semver_and_etag() {
    let app = TestApp::spawn().await;
    for (v, env) in [("1.2.0", "production"), ("v1.10.0", "production"), ("1.9.0", "production"), ("2.0.0", "development")] {
        assert_eq!(record(&app, &app.tokens.admin, "shop", &rel(v, env)).await.status, 201);
    }
    // History, newest first, per environment, paginated.
    let all = admin_get(&app, "/api/v1/apps/shop/releases").await;
    let versions = |r: &Reply| -> Vec<String> {
        r.body["items"].as_array().unwrap().iter().map(|i| i["version"].as_str().unwrap().to_owned()).collect()
    };
    assert_eq!(versions(&all), ["2.0.0", "1.9.0", "v1.10.0", "1.2.0"]);
    let p1 = admin_get(&app, "/api/v1/apps/shop/releases?environment=production&limit=2").await;
    assert_eq!((versions(&p1), p1.body["total"].as_u64()), (vec!["1.9.0".to_owned(), "v1.10.0".to_owned()], Some(3)));
    let cursor = p1.body["next_cursor"].as_str().expect("a next page").to_owned();
    let p2 = admin_get(&app, &format!("/api/v1/apps/shop/releases?environment=production&limit=2&cursor={cursor}")).await;
    assert_eq!(versions(&p2), ["1.2.0"]);
    assert!(p2.body.get("next_cursor").is_none());
    // A server token sees its own environment only; client tokens may not list.
    let own = send(app.req(Method::GET, "/api/v1/apps/shop/releases", Some(&app.tokens.server))).await;
    assert_eq!(versions(&own), ["1.9.0", "v1.10.0", "1.2.0"]);
    assert_error(
        &send(app.req(Method::GET, "/api/v1/apps/shop/releases?environment=development", Some(&app.tokens.server))).await,
        403,
        "forbidden",
    );
    assert_error(&send(app.req(Method::GET, "/api/v1/apps/shop/releases", Some(&app.tokens.client))).await, 403, "forbidden");
    assert_error(&admin_get(&app, "/api/v1/apps/shop/releases?limit=0").await, 400, "invalid_query");

    // Is there an update? Client tokens may ask (apps poll it); semver precedence decides.
    let path = "/api/v1/apps/shop/version?current=1.9.0";
    let r = send(app.req(Method::GET, path, Some(&app.tokens.client))).await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(
        (r.body["latest"].as_str(), r.body["update_available"].as_bool(), r.body["ordering"].as_str(), r.body["environment"].as_str()),
        (Some("v1.10.0"), Some(true), Some("semver"), Some("production"))
    );
    let etag = r.etag();
    let not_modified = send(app.req(Method::GET, path, Some(&app.tokens.client)).header("if-none-match", &etag)).await;
    assert_eq!((not_modified.status, not_modified.etag()), (304, etag.clone()));
    let r = send(app.req(Method::GET, "/api/v1/apps/shop/version?current=1.10.0", Some(&app.tokens.client))).await;
    assert_eq!(r.body["update_available"].as_bool(), Some(false));
    let r = admin_get(&app, "/api/v1/apps/shop/version?environment=development&current=1.0.0").await;
    assert_eq!((r.body["latest"].as_str(), r.body["update_available"].as_bool()), (Some("2.0.0"), Some(true)));
    assert_error(&admin_get(&app, "/api/v1/apps/shop/version").await, 400, "invalid_query");
    assert_error(
        &send(app.req(Method::GET, "/api/v1/apps/shop/version?environment=development", Some(&app.tokens.client))).await,
        403,
        "forbidden",
    );
    assert_error(&send(app.req(Method::GET, "/api/v1/apps/shop/version", None)).await, 401, "unauthorized");
    assert_error(&send(app.req(Method::GET, "/api/v1/apps/other/version", Some(&app.tokens.client))).await, 404, "release_not_found");

    // A version that is not semver switches the app to record order; the ETag changes.
    assert_eq!(record(&app, &app.tokens.admin, "shop", &rel("build-7", "production")).await.status, 201);
    let r = send(app.req(Method::GET, path, Some(&app.tokens.client)).header("if-none-match", &etag)).await;
    assert_eq!(r.status, 200);
    assert_eq!(
        (r.body["latest"].as_str(), r.body["ordering"].as_str(), r.body["update_available"].as_bool()),
        (Some("build-7"), Some("recorded"), Some(true))
    );
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_new_release_is_announced_on_the_stream_and_to_the_sdk() {
    let app = TestApp::spawn().await;
    let mut s = open(&app, &app.tokens.server, None).await;
    assert_eq!(s.next().await.name(), "snapshot");
    let client = GantryClient::builder().server(&app.base, &app.tokens.server).build().unwrap();
    client.wait_until_ready(Duration::from_secs(10)).await.unwrap();
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    let _sub = client.on_new_release(move |r| {
        let _ = tx.send(r.clone());
    });

    // Another environment's release is not announced here; then ours is.
    assert_eq!(record(&app, &app.tokens.admin, "shop", &rel("0.9.0", "development")).await.status, 201);
    let body = json!({"version": "1.0.0", "environment": "production", "commit": "deadbeef"});
    assert_eq!(record(&app, &app.tokens.server, "shop", &body).await.status, 201);
    let ev = s.next().await;
    assert_eq!(ev.name(), "release-recorded");
    let data = ev.json();
    assert_eq!((data["release"]["app"].as_str(), data["release"]["version"].as_str()), (Some("shop"), Some("1.0.0")));
    assert_eq!(data["release"]["commit"], "deadbeef");

    // Safety net only: the callback normally fires within milliseconds.
    let got = tokio::time::timeout(Duration::from_secs(10), rx.recv()).await.expect("release callback").expect("channel open");
    assert_eq!((got.app.as_str(), got.version.as_str(), got.environment.as_str()), ("shop", "1.0.0", "production"));
    // The idempotent re-record announces nothing: the next event is the next real change.
    assert_eq!(record(&app, &app.tokens.server, "shop", &body).await.status, 200);
    assert_eq!(record(&app, &app.tokens.server, "shop", &rel("1.0.1", "production")).await.status, 201);
    let next = s.next().await;
    assert_eq!(next.json()["release"]["version"], "1.0.1");
    client.close().await;
    app.stop().await;
}

#[tokio::test]
async fn maintenance_and_releases_survive_a_restart() {
    let data = tempfile::tempdir().unwrap();
    let opts = || gantry_testkit::Options { data_dir: Some(data.path().to_owned()), ..Default::default() };
    let app = TestApp::spawn_with(opts()).await;
    assert_eq!(record(&app, &app.tokens.admin, "shop", &rel("2.1.0", "production")).await.status, 201);
    let r = send(
        app.req(Method::PUT, "/api/v1/environments/production/maintenance", Some(&app.tokens.admin))
            .json(&json!({"enabled": true, "message": "kept"})),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text);
    app.stop().await;

    let app = TestApp::spawn_with(opts()).await;
    let status = send(app.req(Method::GET, "/api/v1/status", None)).await;
    let prod = status.body["environments"].as_array().unwrap().iter().find(|e| e["name"] == "production").cloned().unwrap();
    assert_eq!((prod["maintenance"].as_bool(), prod["message"].as_str()), (Some(true), Some("kept")));
    let v = send(app.req(Method::GET, "/api/v1/apps/shop/version", Some(&app.tokens.client))).await;
    assert_eq!(v.body["latest"], "2.1.0");
    // Ids continue after the restart.
    let next = record(&app, &app.tokens.admin, "shop", &rel("2.2.0", "production")).await;
    assert_eq!(next.status, 201, "{}", next.text);
    let history = admin_get(&app, "/api/v1/apps/shop/releases").await;
    let ids: Vec<i64> = history.body["items"].as_array().unwrap().iter().map(|i| i["id"].as_i64().unwrap()).collect();
    assert_eq!(ids.len(), 2);
    assert!(ids[0] > ids[1], "{ids:?}");
    app.stop().await;
}
