//! The admin API: success and failure paths of flags, environments,
//! segments, tokens, audit, export/import and usage.

use gantry_testkit::{Options, TestApp};
use reqwest::Method;
use serde_json::{json, Value};

use crate::support::{admin_delete, admin_get, admin_post, admin_put, api_token, assert_error, audit_head, ofrep, send, T0_MS};

async fn put_if_match(app: &TestApp, path: &str, if_match: &str, body: &Value) -> crate::support::Reply {
    send(app.req(Method::PUT, path, Some(&app.tokens.admin)).header("if-match", if_match).json(body)).await
}

#[tokio::test]
async fn flag_crud_with_versions_and_preconditions() {
    let app = TestApp::spawn().await;
    let def = json!({"key": "crud", "description": "first", "tags": ["team:web"], "environments": {"production": {"enabled": true}}});
    let r = admin_post(&app, "/api/v1/flags", &def).await;
    assert_eq!(r.status, 201, "{}", r.text);
    assert_eq!(r.etag(), "\"1\"");
    assert_eq!(r.body["key"], "crud");
    assert_eq!(r.body["version"], 1);
    assert_eq!(r.body["description"], "first");
    assert!(r.body["created_at"].is_string() && r.body["updated_at"].is_string(), "{}", r.text);

    // Duplicate.
    let r = admin_post(&app, "/api/v1/flags", &json!({"key": "crud", "description": "second"})).await;
    assert_error(&r, 409, "already_exists");

    // Read.
    let r = admin_get(&app, "/api/v1/flags/crud").await;
    assert_eq!(r.status, 200);
    assert_eq!(r.etag(), "\"1\"");
    assert_eq!(r.body["description"], "first", "the duplicate create changed nothing");
    assert_error(&admin_get(&app, "/api/v1/flags/missing").await, 404, "flag_not_found");

    // Stale If-Match: 412 and nothing changes.
    let changed = json!({"key": "crud", "description": "changed", "environments": {"production": {"enabled": false}}});
    let r = put_if_match(&app, "/api/v1/flags/crud", "\"7\"", &changed).await;
    assert_error(&r, 412, "precondition_failed");
    let r = admin_get(&app, "/api/v1/flags/crud").await;
    assert_eq!((r.body["version"].as_i64(), r.body["description"].as_str()), (Some(1), Some("first")));
    let (s, v) = app.ofrep(&app.tokens.server, "crud", json!({})).await;
    assert_eq!((s, &v["value"]), (200, &json!(true)), "a refused update does not reach evaluation");

    // Matching If-Match (quoted, bare and weak forms): version + 1 each time.
    let r = put_if_match(&app, "/api/v1/flags/crud", "\"1\"", &changed).await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!((r.body["version"].as_i64(), r.etag()), (Some(2), "\"2\"".to_owned()));
    assert_eq!(r.body["description"], "changed");
    let r = put_if_match(&app, "/api/v1/flags/crud", "2", &def).await;
    assert_eq!((r.status, r.body["version"].as_i64()), (200, Some(3)), "{}", r.text);
    let r = put_if_match(&app, "/api/v1/flags/crud", "W/\"3\"", &changed).await;
    assert_eq!((r.status, r.body["version"].as_i64()), (200, Some(4)), "{}", r.text);
    // Unconditional.
    let r = admin_put(&app, "/api/v1/flags/crud", &def).await;
    assert_eq!((r.status, r.body["version"].as_i64()), (200, Some(5)), "{}", r.text);
    let (_, v) = app.ofrep(&app.tokens.server, "crud", json!({})).await;
    assert_eq!(v["value"], true);

    // Keys cannot be renamed; unknown flags cannot be updated.
    assert_error(&admin_put(&app, "/api/v1/flags/crud", &json!({"key": "other"})).await, 422, "validation_failed");
    assert_error(&admin_put(&app, "/api/v1/flags/missing", &json!({"key": "missing"})).await, 404, "flag_not_found");
    assert_eq!(admin_get(&app, "/api/v1/flags/crud").await.body["version"], 5);

    // Delete: stale If-Match refused, then gone.
    let r = send(app.req(Method::DELETE, "/api/v1/flags/crud", Some(&app.tokens.admin)).header("if-match", "\"1\"")).await;
    assert_error(&r, 412, "precondition_failed");
    assert_eq!(admin_get(&app, "/api/v1/flags/crud").await.status, 200);
    let r = send(app.req(Method::DELETE, "/api/v1/flags/crud", Some(&app.tokens.admin)).header("if-match", "\"5\"")).await;
    assert_eq!(r.status, 204, "{}", r.text);
    assert_error(&admin_get(&app, "/api/v1/flags/crud").await, 404, "flag_not_found");
    assert_error(&admin_delete(&app, "/api/v1/flags/crud").await, 404, "flag_not_found");
    let (s, v) = app.ofrep(&app.tokens.server, "crud", json!({})).await;
    assert_eq!((s, &v["errorCode"]), (404, &json!("FLAG_NOT_FOUND")));
    app.stop().await;
}

#[tokio::test]
async fn prerequisite_parent_cannot_be_deleted() {
    let app = TestApp::spawn().await;
    app.create_flag(json!({"key": "parent", "environments": {"production": {"enabled": true}}})).await;
    app.create_flag(json!({"key": "child", "environments": {"production": {"enabled": true, "prerequisites": [{"flag": "parent"}]}}}))
        .await;
    assert_error(&admin_delete(&app, "/api/v1/flags/parent").await, 409, "in_use");
    assert_eq!(admin_get(&app, "/api/v1/flags/parent").await.status, 200);
    assert_eq!(admin_delete(&app, "/api/v1/flags/child").await.status, 204);
    assert_eq!(admin_delete(&app, "/api/v1/flags/parent").await.status, 204);
    app.stop().await;
}

#[tokio::test]
async fn environment_configuration_and_kill_switch() {
    let app = TestApp::spawn().await;
    app.create_flag(json!({"key": "ks", "environments": {"production": {"enabled": true}, "development": {"enabled": true}}})).await;
    let (_, v) = app.ofrep(&app.tokens.server, "ks", json!({})).await;
    assert_eq!((&v["value"], &v["reason"]), (&json!(true), &json!("STATIC")));

    // Kill switch.
    let r = admin_post(&app, "/api/v1/flags/ks/environments/production/off", &json!(null)).await;
    assert_eq!((r.status, r.body["version"].as_i64()), (200, Some(2)), "{}", r.text);
    assert_eq!(r.body["environments"]["production"]["enabled"], false);
    let (s, v) = app.ofrep(&app.tokens.server, "ks", json!({"targetingKey": "u1"})).await;
    assert_eq!((s, &v["value"], &v["reason"]), (200, &json!(false), &json!("DISABLED")), "{v}");
    // Other environments keep their state.
    let (_, v) = app.ofrep(&app.tokens.server_dev, "ks", json!({})).await;
    assert_eq!(v["value"], true);
    // And back on.
    let r = admin_post(&app, "/api/v1/flags/ks/environments/production/on", &json!(null)).await;
    assert_eq!((r.status, r.body["version"].as_i64()), (200, Some(3)), "{}", r.text);
    let (_, v) = app.ofrep(&app.tokens.server, "ks", json!({})).await;
    assert_eq!(v["value"], true);
    // Switching with a stale If-Match is refused.
    let r =
        send(app.req(Method::POST, "/api/v1/flags/ks/environments/production/off", Some(&app.tokens.admin)).header("if-match", "\"1\""))
            .await;
    assert_error(&r, 412, "precondition_failed");
    let (_, v) = app.ofrep(&app.tokens.server, "ks", json!({})).await;
    assert_eq!(v["value"], true);

    // Replace one environment's configuration.
    let cfg = json!({"enabled": true, "rules": [{"id": "gold", "constraints": [{"context_name": "plan", "operator": "IN", "values": ["gold"]}]}]});
    let r = admin_put(&app, "/api/v1/flags/ks/environments/production", &cfg).await;
    assert_eq!((r.status, r.body["version"].as_i64()), (200, Some(4)), "{}", r.text);
    assert_eq!(r.body["environments"]["development"]["enabled"], true, "other environments untouched");
    let (_, v) = app.ofrep(&app.tokens.server, "ks", json!({"plan": "gold"})).await;
    assert_eq!((&v["value"], &v["reason"], &v["metadata"]["ruleId"]), (&json!(true), &json!("TARGETING_MATCH"), &json!("gold")), "{v}");
    let (_, v) = app.ofrep(&app.tokens.server, "ks", json!({"plan": "free"})).await;
    assert_eq!(v["value"], false, "{v}");

    // Switching a new environment creates its configuration.
    let r = admin_post(&app, "/api/v1/flags/ks/environments/staging/on", &json!(null)).await;
    assert_eq!(r.body["environments"]["staging"]["enabled"], true, "{}", r.text);

    // Failures.
    assert_error(&admin_post(&app, "/api/v1/flags/ks/environments/nope/on", &json!(null)).await, 404, "environment_not_found");
    assert_error(&admin_post(&app, "/api/v1/flags/missing/environments/production/on", &json!(null)).await, 404, "flag_not_found");
    assert_error(&admin_put(&app, "/api/v1/flags/missing/environments/production", &json!({"enabled": true})).await, 404, "flag_not_found");
    let r = admin_put(&app, "/api/v1/flags/ks/environments/nope", &json!({"enabled": true})).await;
    assert_error(&r, 422, "validation_failed");
    assert_eq!(r.body["fields"][0]["field"], "environments.nope", "{}", r.text);
    assert_eq!(admin_get(&app, "/api/v1/flags/ks").await.body["version"], 5);
    app.stop().await;
}

#[tokio::test]
async fn flag_list_paginates_and_searches() {
    let app = TestApp::spawn().await;
    for i in 1..=7 {
        let tags = if i % 2 == 0 { json!(["even"]) } else { json!(["odd"]) };
        app.create_flag(json!({"key": format!("page-{i:02}"), "tags": tags})).await;
    }
    app.create_flag(json!({"key": "zeta", "description": "Mentions the PAGE word", "tags": ["even"]})).await;
    app.create_flag(json!({"key": "alpha"})).await;

    // Walk all pages of 3.
    let mut keys = Vec::new();
    let mut cursor: Option<String> = None;
    let mut pages = 0;
    loop {
        let path = match &cursor {
            Some(c) => format!("/api/v1/flags?limit=3&cursor={c}"),
            None => "/api/v1/flags?limit=3".to_owned(),
        };
        let r = admin_get(&app, &path).await;
        assert_eq!(r.status, 200, "{}", r.text);
        assert_eq!(r.body["total"], 9);
        let items = r.body["items"].as_array().expect("items");
        assert!(items.len() <= 3);
        keys.extend(items.iter().map(|f| f["key"].as_str().unwrap().to_owned()));
        pages += 1;
        match r.body.get("next_cursor").and_then(Value::as_str) {
            Some(c) => {
                assert_eq!(Some(c), items.last().and_then(|f| f["key"].as_str()), "cursor is the last key of the page");
                cursor = Some(c.to_owned());
            }
            None => break,
        }
        assert!(pages < 10, "pagination does not end");
    }
    assert_eq!(pages, 3);
    let mut sorted = keys.clone();
    sorted.sort();
    assert_eq!(keys, sorted, "pages are in key order");
    assert_eq!(keys.len(), 9, "every flag exactly once: {keys:?}");
    assert_eq!(keys.first().map(String::as_str), Some("alpha"));

    // A full page has no cursor.
    let r = admin_get(&app, "/api/v1/flags?limit=9").await;
    assert_eq!(r.body["items"].as_array().unwrap().len(), 9);
    assert!(r.body.get("next_cursor").is_none(), "{}", r.text);

    // Search by key or description, case-insensitively.
    let r = admin_get(&app, "/api/v1/flags?q=page").await;
    assert_eq!(r.body["total"], 8, "{}", r.text);
    assert!(r.body["items"].as_array().unwrap().iter().any(|f| f["key"] == "zeta"));
    let r = admin_get(&app, "/api/v1/flags?q=PAGE-0").await;
    assert_eq!(r.body["total"], 7);
    // By tag, and combined.
    let r = admin_get(&app, "/api/v1/flags?tag=even").await;
    let got: Vec<&str> = r.body["items"].as_array().unwrap().iter().map(|f| f["key"].as_str().unwrap()).collect();
    assert_eq!(got, ["page-02", "page-04", "page-06", "zeta"]);
    let r = admin_get(&app, "/api/v1/flags?tag=even&q=page-&limit=2").await;
    assert_eq!(r.body["total"], 3);
    assert_eq!(r.body["items"].as_array().unwrap().len(), 2);
    assert_eq!(r.body["next_cursor"], "page-04");
    let r = admin_get(&app, "/api/v1/flags?tag=even&q=page-&limit=2&cursor=page-04").await;
    let got: Vec<&str> = r.body["items"].as_array().unwrap().iter().map(|f| f["key"].as_str().unwrap()).collect();
    assert_eq!(got, ["page-06"]);
    let r = admin_get(&app, "/api/v1/flags?q=nothing-matches").await;
    assert_eq!((r.body["total"].as_u64(), r.body["items"].as_array().map(Vec::len)), (Some(0), Some(0)));
    app.stop().await;
}

#[tokio::test]
async fn segments_crud_and_in_use() {
    let app = TestApp::spawn().await;
    let seg = json!({"id": 1, "name": "beta", "constraints": [{"context_name": "plan", "operator": "IN", "values": ["beta"]}]});
    let r = admin_post(&app, "/api/v1/segments", &seg).await;
    assert_eq!((r.status, r.etag()), (201, "\"1\"".to_owned()), "{}", r.text);
    assert_eq!((r.body["id"].as_u64(), r.body["version"].as_i64()), (Some(1), Some(1)));
    assert_error(&admin_post(&app, "/api/v1/segments", &seg).await, 409, "already_exists");

    let r = admin_get(&app, "/api/v1/segments/1").await;
    assert_eq!((r.status, r.body["name"].as_str()), (200, Some("beta")));
    assert_error(&admin_get(&app, "/api/v1/segments/2").await, 404, "segment_not_found");
    assert_error(&admin_get(&app, "/api/v1/segments/abc").await, 404, "segment_not_found");

    // Conditional update.
    let seg2 = json!({"id": 1, "name": "beta", "constraints": [{"context_name": "plan", "operator": "IN", "values": ["beta", "gold"]}]});
    assert_error(&put_if_match(&app, "/api/v1/segments/1", "\"9\"", &seg2).await, 412, "precondition_failed");
    let r = put_if_match(&app, "/api/v1/segments/1", "\"1\"", &seg2).await;
    assert_eq!((r.status, r.body["version"].as_i64()), (200, Some(2)), "{}", r.text);
    assert_error(&admin_put(&app, "/api/v1/segments/1", &json!({"id": 2})).await, 422, "validation_failed");
    assert_error(&admin_put(&app, "/api/v1/segments/5", &json!({"id": 5})).await, 404, "segment_not_found");
    let r = admin_get(&app, "/api/v1/segments").await;
    assert_eq!(r.body.as_array().map(Vec::len), Some(1));

    // A flag that uses it.
    app.create_flag(json!({"key": "seg-user", "environments": {"production": {"enabled": true, "rules": [{"segments": [1]}]}}})).await;
    let (_, v) = app.ofrep(&app.tokens.server, "seg-user", json!({"plan": "gold"})).await;
    assert_eq!(v["value"], true, "{v}");
    let (_, v) = app.ofrep(&app.tokens.server, "seg-user", json!({"plan": "free"})).await;
    assert_eq!(v["value"], false, "{v}");
    let r = admin_delete(&app, "/api/v1/segments/1").await;
    assert_error(&r, 409, "in_use");
    assert!(r.body["message"].as_str().unwrap().contains("seg-user"), "{}", r.text);
    assert_eq!(admin_get(&app, "/api/v1/segments/1").await.status, 200);

    // Once unused it can go.
    assert_eq!(admin_delete(&app, "/api/v1/flags/seg-user").await.status, 204);
    assert_eq!(admin_delete(&app, "/api/v1/segments/1").await.status, 204);
    assert_error(&admin_get(&app, "/api/v1/segments/1").await, 404, "segment_not_found");
    assert_error(&admin_delete(&app, "/api/v1/segments/1").await, 404, "segment_not_found");
    app.stop().await;
}

#[tokio::test]
async fn environments_lifecycle() {
    let app = TestApp::spawn().await;
    let r = admin_get(&app, "/api/v1/environments").await;
    let names: Vec<&str> = r.body.as_array().unwrap().iter().map(|e| e["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["development", "staging", "production"]);

    let r = admin_post(&app, "/api/v1/environments", &json!({"name": "qa", "description": "QA"})).await;
    assert_eq!(r.status, 201, "{}", r.text);
    assert!(r.header("etag").is_some());
    assert_eq!(r.body["name"], "qa");
    assert_error(&admin_post(&app, "/api/v1/environments", &json!({"name": "qa"})).await, 409, "already_exists");
    assert_error(&admin_post(&app, "/api/v1/environments", &json!({"name": "Q A"})).await, 422, "invalid_key");
    let r = admin_get(&app, "/api/v1/environments/qa").await;
    assert_eq!((r.status, r.body["description"].as_str()), (200, Some("QA")));
    assert_error(&admin_get(&app, "/api/v1/environments/nope").await, 404, "environment_not_found");

    // Update.
    let r = admin_put(&app, "/api/v1/environments/qa", &json!({"name": "qa", "description": "Quality", "protected": true})).await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(admin_get(&app, "/api/v1/environments/qa").await.body["protected"], true);
    assert_error(&admin_put(&app, "/api/v1/environments/qa", &json!({"name": "other"})).await, 422, "validation_failed");

    // A flag can be configured there and a token scoped to it.
    app.create_flag(json!({"key": "qa-flag", "environments": {"qa": {"enabled": true}}})).await;
    let (id, secret) = api_token(&app, json!({"kind": "server", "environment": "qa"})).await;
    let (s, v) = app.ofrep(&secret, "qa-flag", json!({})).await;
    assert_eq!((s, &v["value"]), (200, &json!(true)));

    // In use by an active token.
    let r = admin_delete(&app, "/api/v1/environments/qa").await;
    assert_error(&r, 409, "in_use");
    assert_eq!(admin_get(&app, "/api/v1/environments/qa").await.status, 200);
    assert_eq!(admin_delete(&app, &format!("/api/v1/tokens/{id}")).await.status, 204);
    let r = admin_delete(&app, "/api/v1/environments/qa").await;
    assert_eq!(r.status, 204, "{}", r.text);
    let r = admin_get(&app, "/api/v1/environments").await;
    assert!(!r.body.as_array().unwrap().iter().any(|e| e["name"] == "qa"));
    assert_error(&admin_get(&app, "/api/v1/environments/qa").await, 404, "environment_not_found");
    assert_error(&admin_delete(&app, "/api/v1/environments/qa").await, 404, "environment_not_found");

    // Flags that were configured there can still be edited: the kill switch
    // and a GET-then-PUT round trip work, and the stale configuration goes.
    let r = admin_get(&app, "/api/v1/flags/qa-flag").await;
    assert!(r.body["environments"].get("qa").is_some(), "kept until saved: {}", r.text);
    let r = admin_post(&app, "/api/v1/flags/qa-flag/environments/production/off", &json!(null)).await;
    assert_eq!(r.status, 200, "kill switch after an environment was deleted: {}", r.text);
    assert!(r.body["environments"].get("qa").is_none(), "{}", r.text);
    let (s, v) = app.ofrep(&app.tokens.server, "qa-flag", json!({})).await;
    assert_eq!((s, &v["reason"]), (200, &json!("DISABLED")));
    app.create_flag(json!({"key": "qa-flag-2", "environments": {"production": {"enabled": true}}})).await;
    // New references to an unknown environment are still refused.
    let r = admin_put(&app, "/api/v1/flags/qa-flag-2", &json!({"key": "qa-flag-2", "environments": {"qa": {"enabled": true}}})).await;
    assert_error(&r, 422, "validation_failed");
    app.stop().await;
}

#[tokio::test]
async fn round_trip_after_environment_deletion() {
    let app = TestApp::spawn().await;
    app.create_flag(
        json!({"key": "rt", "description": "d", "environments": {"staging": {"enabled": true}, "production": {"enabled": true}}}),
    )
    .await;
    assert_eq!(admin_delete(&app, "/api/v1/environments/staging").await.status, 204);
    let got = admin_get(&app, "/api/v1/flags/rt").await;
    let mut def = got.body.clone();
    for k in ["version", "created_at", "updated_at"] {
        def.as_object_mut().unwrap().remove(k);
    }
    def["description"] = json!("edited");
    let r = put_if_match(&app, "/api/v1/flags/rt", &got.etag(), &def).await;
    assert_eq!(r.status, 200, "GET then PUT of the same flag: {}", r.text);
    assert_eq!(r.body["description"], "edited");
    assert_eq!(r.body["environments"], json!({"production": {"enabled": true}}));
    let r = admin_put(&app, "/api/v1/flags/rt/environments/production", &json!({"enabled": false})).await;
    assert_eq!(r.status, 200, "{}", r.text);
    app.stop().await;
}

#[tokio::test]
async fn tokens_secret_shown_once_and_revocation() {
    let app = TestApp::spawn().await;
    let r = admin_post(&app, "/api/v1/tokens", &json!({"kind": "server", "environment": "production", "name": "ci"})).await;
    assert_eq!(r.status, 201, "{}", r.text);
    let id = r.body["id"].as_str().unwrap().to_owned();
    let secret = r.body["secret"].as_str().unwrap().to_owned();
    let prefix = r.body["prefix"].as_str().unwrap().to_owned();
    assert!(!secret.is_empty() && secret.starts_with(&prefix), "prefix {prefix} of {secret}");
    assert_eq!(
        (r.body["kind"].as_str(), r.body["environment"].as_str(), r.body["name"].as_str()),
        (Some("server"), Some("production"), Some("ci"))
    );

    // The list never shows a secret.
    let r = admin_get(&app, "/api/v1/tokens").await;
    assert_eq!(r.status, 200);
    let listed = r.body.as_array().unwrap();
    assert_eq!(listed.len(), 5, "four test tokens and the new one");
    assert!(listed.iter().all(|t| t.get("secret").is_none() && t.get("secret_hash").is_none()), "{}", r.text);
    assert!(!r.text.contains(&secret), "secret leaked into the list");
    let mine = listed.iter().find(|t| t["id"] == id.as_str()).expect("listed");
    assert_eq!(mine["prefix"], prefix.as_str());
    assert!(mine.get("revoked_at").is_none());
    // Nor does the audit log.
    assert!(!admin_get(&app, "/api/v1/audit").await.text.contains(&secret), "secret leaked into the audit log");

    // It works, then is revoked.
    let r = send(app.req(Method::GET, "/api/client/features", Some(&secret))).await;
    assert_eq!(r.status, 200);
    assert_eq!(admin_delete(&app, &format!("/api/v1/tokens/{id}")).await.status, 204);
    let r = send(app.req(Method::GET, "/api/client/features", Some(&secret))).await;
    assert_error(&r, 401, "unauthorized");
    let r = admin_get(&app, "/api/v1/tokens").await;
    let mine = r.body.as_array().unwrap().iter().find(|t| t["id"] == id.as_str()).cloned().expect("still listed");
    assert!(mine["revoked_at"].is_string(), "{mine}");
    assert_error(&admin_delete(&app, "/api/v1/tokens/no-such-token").await, 404, "token_not_found");

    // Invalid requests.
    let before = admin_get(&app, "/api/v1/tokens").await.body.as_array().unwrap().len();
    assert_error(&admin_post(&app, "/api/v1/tokens", &json!({"kind": "server"})).await, 422, "validation_failed");
    assert_error(
        &admin_post(&app, "/api/v1/tokens", &json!({"kind": "admin", "environment": "production"})).await,
        422,
        "validation_failed",
    );
    assert_error(
        &admin_post(&app, "/api/v1/tokens", &json!({"kind": "client", "environment": "nope"})).await,
        404,
        "environment_not_found",
    );
    assert_error(&admin_post(&app, "/api/v1/tokens", &json!({"kind": "admin", "expires_at": "tomorrow"})).await, 422, "validation_failed");
    assert_error(&admin_post(&app, "/api/v1/tokens", &json!({"kind": "root"})).await, 422, "validation_failed");
    assert_eq!(admin_get(&app, "/api/v1/tokens").await.body.as_array().unwrap().len(), before, "no token stored by a refused request");
    app.stop().await;
}

#[tokio::test]
async fn audit_records_every_change_and_verifies() {
    let app = TestApp::spawn().await;
    let admin_id = admin_get(&app, "/api/v1/tokens").await.body.as_array().unwrap().iter().find(|t| t["kind"] == "admin").unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let actor = format!("token:{admin_id}");
    let head = audit_head(&app).await;
    assert!(head > 0, "environment seeding and test tokens are audited");

    app.create_flag(json!({"key": "audited", "description": "v1"})).await;
    assert_eq!(admin_put(&app, "/api/v1/flags/audited", &json!({"key": "audited", "description": "v2"})).await.status, 200);
    assert_eq!(admin_post(&app, "/api/v1/flags/audited/environments/production/on", &json!(null)).await.status, 200);
    assert_eq!(admin_post(&app, "/api/v1/segments", &json!({"id": 3})).await.status, 201);
    assert_eq!(admin_post(&app, "/api/v1/environments", &json!({"name": "qa"})).await.status, 201);
    assert_eq!(admin_delete(&app, "/api/v1/flags/audited").await.status, 204);
    // Refused writes leave no trace.
    assert_eq!(admin_post(&app, "/api/v1/segments", &json!({"id": 3})).await.status, 409);
    assert_eq!(admin_delete(&app, "/api/v1/flags/audited").await.status, 404);

    let r = admin_get(&app, "/api/v1/audit?limit=6").await;
    assert_eq!(r.status, 200);
    assert_eq!(r.body["total"].as_u64(), Some(head + 6));
    let items = r.body["items"].as_array().unwrap();
    let got: Vec<(&str, &str)> = items.iter().map(|e| (e["action"].as_str().unwrap(), e["target"].as_str().unwrap())).collect();
    assert_eq!(
        got,
        [
            ("flag.delete", "audited"),
            ("environment.create", "qa"),
            ("segment.create", "3"),
            ("flag.switch_on", "audited"),
            ("flag.update", "audited"),
            ("flag.create", "audited"),
        ],
        "newest first"
    );
    for e in items {
        assert_eq!(e["actor"], actor.as_str(), "{e}");
        assert!(e["at"].is_string() && e["hash"].is_string() && e["prev_hash"].is_string(), "{e}");
    }
    let seqs: Vec<u64> = items.iter().map(|e| e["seq"].as_u64().unwrap()).collect();
    assert_eq!(seqs, (head + 1..=head + 6).rev().collect::<Vec<_>>());
    for w in items.windows(2) {
        assert_eq!(w[0]["prev_hash"], w[1]["hash"], "hash chain");
    }
    let by_action = |a: &str| items.iter().find(|e| e["action"] == a).unwrap().clone();
    let create = by_action("flag.create");
    assert!(create["before"].is_null());
    assert_eq!(create["after"]["description"], "v1");
    let update = by_action("flag.update");
    assert_eq!((&update["before"]["description"], &update["after"]["description"]), (&json!("v1"), &json!("v2")));
    let on = by_action("flag.switch_on");
    assert!(on["before"]["environments"].get("production").is_none());
    assert_eq!(on["after"]["environments"]["production"]["enabled"], true);
    let delete = by_action("flag.delete");
    assert_eq!(delete["before"]["key"], "audited");
    assert!(delete["after"].is_null());

    // Paging backwards.
    let r = admin_get(&app, &format!("/api/v1/audit?limit=2&before={}", head + 5)).await;
    let seqs: Vec<u64> = r.body["items"].as_array().unwrap().iter().map(|e| e["seq"].as_u64().unwrap()).collect();
    assert_eq!(seqs, [head + 4, head + 3]);

    let r = admin_get(&app, "/api/v1/audit/verify").await;
    assert_eq!(r.status, 200);
    assert_eq!((r.body["ok"].as_bool(), r.body["entries"].as_u64()), (Some(true), Some(head + 6)), "{}", r.text);
    assert!(r.body.get("first_bad_seq").is_none());
    app.stop().await;
}

#[tokio::test]
async fn export_then_import_into_a_fresh_server() {
    let src = TestApp::spawn().await;
    assert_eq!(admin_post(&src, "/api/v1/environments", &json!({"name": "qa", "sort_order": 5})).await.status, 201);
    let seg = json!({"id": 4, "name": "gold", "constraints": [{"context_name": "plan", "operator": "IN", "values": ["gold"]}]});
    assert_eq!(admin_post(&src, "/api/v1/segments", &seg).await.status, 201);
    src.create_flag(json!({
        "key": "exp-bool", "description": "bool", "tags": ["a"],
        "environments": {
            "production": {"enabled": true, "rules": [{"id": "r1", "segments": [4]}, {"condition": {"type": "rollout", "percentage": 12.5, "stickiness": "userId"}}]},
            "qa": {"enabled": true}
        }
    }))
    .await;
    src.create_flag(json!({
        "key": "exp-string", "kind": "string",
        "variants": [{"name": "a", "weight": 500, "payload": {"type": "string", "value": "A"}}, {"name": "b", "weight": 500, "payload": {"type": "string", "value": "B"}}],
        "environments": {"production": {"enabled": true, "off_variant": "a"}}
    }))
    .await;
    src.create_flag(json!({"key": "exp-off"})).await;
    let exported = admin_get(&src, "/api/v1/export").await;
    assert_eq!(exported.status, 200);
    assert_eq!(exported.body["format"], 1);
    assert_eq!(exported.body["flags"].as_array().unwrap().len(), 3);

    let dst = TestApp::spawn().await;
    let r = admin_post(&dst, "/api/v1/import", &exported.body).await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.body["flags_created"], 3);
    assert_eq!(r.body["flags_updated"], 0);
    assert_eq!(r.body["segments"], 1);
    let again = admin_get(&dst, "/api/v1/export").await;
    assert_eq!(again.body, exported.body, "the import reproduces the export");

    // Same answers from both servers.
    for ctx in [json!({"targetingKey": "u1", "plan": "gold"}), json!({"targetingKey": "u2"}), json!({"targetingKey": "u3", "plan": "free"})]
    {
        let a = ofrep_bulk(&src, &ctx).await;
        let b = ofrep_bulk(&dst, &ctx).await;
        assert_eq!(a, b, "{ctx}");
    }
    // Importing again updates instead of creating.
    let r = admin_post(&dst, "/api/v1/import", &exported.body).await;
    assert_eq!((r.body["flags_created"].as_u64(), r.body["flags_updated"].as_u64()), (Some(0), Some(3)), "{}", r.text);
    src.stop().await;
    dst.stop().await;
}

async fn ofrep_bulk(app: &TestApp, ctx: &Value) -> Value {
    let r = send(app.req(Method::POST, "/ofrep/v1/evaluate/flags", Some(&app.tokens.server)).json(&json!({"context": ctx}))).await;
    assert_eq!(r.status, 200, "{}", r.text);
    r.body
}

#[tokio::test]
async fn usage_counts_evaluations() {
    let app = TestApp::spawn_with(Options { manual_clock_ms: Some(T0_MS), ..Default::default() }).await;
    app.create_flag(json!({"key": "used", "environments": {"production": {"enabled": true, "rules": [{"constraints": [{"context_name": "plan", "operator": "IN", "values": ["gold"]}]}]}}})).await;
    app.create_flag(json!({"key": "unused"})).await;
    let r = admin_get(&app, "/api/v1/flags/used/usage").await;
    assert_eq!((r.status, r.body.as_array().map(Vec::len)), (200, Some(0)), "no usage yet: {}", r.text);

    for _ in 0..3 {
        let r = ofrep(&app, &app.tokens.server, "used", json!({"plan": "gold"})).await;
        assert_eq!(r.body["value"], true);
    }
    for _ in 0..2 {
        let r = ofrep(&app, &app.tokens.client, "used", json!({"plan": "free"})).await;
        assert_eq!(r.body["value"], false);
    }
    // A development evaluation is counted separately.
    let r = ofrep(&app, &app.tokens.server_dev, "used", json!({})).await;
    assert_eq!(r.body["value"], false);

    let r = admin_get(&app, "/api/v1/flags/used/usage").await;
    assert_eq!(r.status, 200, "{}", r.text);
    let rows = r.body.as_array().unwrap();
    let prod = rows.iter().find(|u| u["environment"] == "production").expect("production usage");
    assert_eq!((prod["flag"].as_str(), prod["yes"].as_u64(), prod["no"].as_u64()), (Some("used"), Some(3), Some(2)), "{prod}");
    assert_eq!(prod["last_evaluated_at"], "2023-11-14T22:13:20.000Z");
    let dev = rows.iter().find(|u| u["environment"] == "development").expect("development usage");
    assert_eq!((dev["yes"].as_u64(), dev["no"].as_u64()), (Some(0), Some(1)));
    assert_eq!(rows.len(), 2);

    // The overview lists it too; unknown flags are 404.
    let r = admin_get(&app, "/api/v1/usage").await;
    assert!(r.body.as_array().unwrap().iter().any(|u| u["flag"] == "used" && u["environment"] == "production" && u["yes"] == 3));
    assert!(!r.body.as_array().unwrap().iter().any(|u| u["flag"] == "unused"));
    assert_error(&admin_get(&app, "/api/v1/flags/missing/usage").await, 404, "flag_not_found");
    app.stop().await;
}
