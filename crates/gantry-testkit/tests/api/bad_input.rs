//! Bad input is refused with the right status and code, in the error
//! envelope, and nothing is stored.

use gantry_testkit::TestApp;
use reqwest::Method;
use serde_json::{json, Value};

use crate::support::{admin_get, admin_post, admin_put, assert_error, audit_head, send, Reply};

/// What must not change when a request is refused.
#[derive(Debug, PartialEq)]
struct Stored {
    flags: Value,
    segments: Value,
    environments: Value,
    audit: u64,
}

async fn stored(app: &TestApp) -> Stored {
    Stored {
        flags: admin_get(app, "/api/v1/flags").await.body,
        segments: admin_get(app, "/api/v1/segments").await.body,
        environments: admin_get(app, "/api/v1/environments").await.body,
        audit: audit_head(app).await,
    }
}

/// A server with one flag and one segment, to compare against.
async fn setup() -> (TestApp, Stored) {
    let app = TestApp::spawn().await;
    app.create_flag(json!({"key": "existing", "environments": {"production": {"enabled": true}}})).await;
    assert_eq!(admin_post(&app, "/api/v1/segments", &json!({"id": 1})).await.status, 201);
    let s = stored(&app).await;
    assert_eq!(s.flags["total"], 1);
    (app, s)
}

fn raw(app: &TestApp, method: Method, path: &str, content_type: Option<&str>, body: impl Into<reqwest::Body>) -> reqwest::RequestBuilder {
    let mut rb = app.req(method, path, Some(&app.tokens.admin)).body(body);
    if let Some(ct) = content_type {
        rb = rb.header("content-type", ct);
    }
    rb
}

#[tokio::test]
async fn malformed_json_is_400_invalid_json() {
    let (app, before) = setup().await;
    for body in ["{\"key\": ", "{key: 1}", "not json", "{\"key\": \"x\",}", ""] {
        let r = send(raw(&app, Method::POST, "/api/v1/flags", Some("application/json"), body)).await;
        assert_error(&r, 400, "invalid_json");
    }
    let r = send(raw(&app, Method::PUT, "/api/v1/flags/existing", Some("application/json"), "{\"key\": \"existing\"")).await;
    assert_error(&r, 400, "invalid_json");
    let r = send(raw(&app, Method::POST, "/api/v1/segments", Some("application/json"), "[")).await;
    assert_error(&r, 400, "invalid_json");
    let r = send(raw(&app, Method::POST, "/api/v1/import", Some("application/json"), "{\"format\": 1, ")).await;
    assert_error(&r, 400, "invalid_json");
    assert_eq!(stored(&app).await, before);
    app.stop().await;
}

#[tokio::test]
async fn unknown_or_mistyped_fields_are_422_validation_failed() {
    let (app, before) = setup().await;
    let cases = [
        ("/api/v1/flags", json!({"key": "x", "colour": "red"})),
        ("/api/v1/flags", json!({"key": "x", "environments": {"production": {"enabled": true, "enabeld": false}}})),
        ("/api/v1/flags", json!({"key": "x", "kind": "integer"})),
        ("/api/v1/flags", json!({"key": 5})),
        ("/api/v1/flags", json!({"description": "no key"})),
        (
            "/api/v1/flags",
            json!({"key": "x", "environments": {"production": {"rules": [{"condition": {"type": "rollout", "percentage": 101}}]}}}),
        ),
        ("/api/v1/flags", json!([])),
        ("/api/v1/segments", json!({"id": -1})),
        ("/api/v1/segments", json!({"id": 2, "rules": []})),
        ("/api/v1/environments", json!({"name": "qa", "region": "eu"})),
        ("/api/v1/tokens", json!({"kind": "admin", "scope": "all"})),
        ("/api/v1/import", json!({"format": 1, "environments": [], "flags": [], "segments": [], "extra": true})),
    ];
    for (path, body) in cases {
        let r = admin_post(&app, path, &body).await;
        assert_eq!(r.status, 422, "POST {path} {body}: {}", r.text);
        assert_error(&r, 422, "validation_failed");
    }
    let r = admin_put(&app, "/api/v1/flags/existing", &json!({"key": "existing", "colour": "red"})).await;
    assert_error(&r, 422, "validation_failed");
    assert_eq!(stored(&app).await, before);
    app.stop().await;
}

#[tokio::test]
async fn wrong_content_type_is_415() {
    let (app, before) = setup().await;
    let body = r#"{"key": "typed"}"#;
    for ct in [Some("text/plain"), Some("application/x-www-form-urlencoded"), None] {
        let r = send(raw(&app, Method::POST, "/api/v1/flags", ct, body)).await;
        assert_error(&r, 415, "unsupported_media_type");
        let r = send(raw(&app, Method::PUT, "/api/v1/flags/existing", ct, r#"{"key": "existing"}"#)).await;
        assert_error(&r, 415, "unsupported_media_type");
    }
    assert_eq!(stored(&app).await, before);
    // A JSON subtype is JSON.
    let r = send(raw(&app, Method::POST, "/api/v1/flags", Some("application/vnd.gantry+json"), body)).await;
    assert_eq!(r.status, 201, "{}", r.text);
    assert_eq!(stored(&app).await.flags["total"], 2);
    app.stop().await;
}

#[tokio::test]
async fn oversized_body_is_413_payload_too_large() {
    let (app, before) = setup().await;
    let big = "x".repeat((1 << 20) + 1024);
    let body = json!({"key": "big", "description": big});
    let r = admin_post(&app, "/api/v1/flags", &body).await;
    assert_error(&r, 413, "payload_too_large");
    let r = admin_put(&app, "/api/v1/flags/existing", &json!({"key": "existing", "description": big})).await;
    assert_error(&r, 413, "payload_too_large");
    let r = admin_post(
        &app,
        "/api/v1/import",
        &json!({"format": 1, "environments": [], "flags": [{"key": "big", "description": big}], "segments": []}),
    )
    .await;
    assert!(r.status == 413 || r.status == 422, "import: {} {}", r.status, r.text);
    // Routes that read the raw body answer in the envelope too.
    let ctx = json!({"context": {"blob": big}});
    for (path, token) in [
        ("/ofrep/v1/evaluate/flags/existing", &app.tokens.server),
        ("/ofrep/v1/evaluate/flags", &app.tokens.server),
        ("/api/frontend", &app.tokens.client),
        ("/api/client/metrics", &app.tokens.server),
        ("/api/client/register", &app.tokens.server),
    ] {
        let r = send(app.req(Method::POST, path, Some(token)).json(&ctx)).await;
        assert_error(&r, 413, "payload_too_large");
    }
    assert_eq!(stored(&app).await, before);
    // The connection is still usable afterwards.
    assert_eq!(admin_get(&app, "/api/v1/flags/existing").await.status, 200);
    app.stop().await;
}

#[tokio::test]
async fn invalid_keys_are_422_invalid_key() {
    let (app, before) = setup().await;
    let long = "k".repeat(101);
    for key in ["a b", "a/b", "a?b", "a#b", "100%", "tab\tkey", "quote\"d", "", long.as_str()] {
        let r = admin_post(&app, "/api/v1/flags", &json!({"key": key})).await;
        assert_error(&r, 422, "invalid_key");
    }
    for name in ["Prod", "a b", "-x", "ä", ""] {
        let r = admin_post(&app, "/api/v1/environments", &json!({"name": name})).await;
        assert_error(&r, 422, "invalid_key");
    }
    assert_eq!(stored(&app).await, before);
    // Unicode keys are fine.
    app.create_flag(json!({"key": "Hellø_Wørld.😊"})).await;
    app.stop().await;
}

fn assert_fields(r: &Reply, field_prefix: &str) {
    assert_error(r, 422, "validation_failed");
    let fields = r.body["fields"].as_array().unwrap_or_else(|| panic!("no `fields`: {}", r.text));
    assert!(!fields.is_empty(), "{}", r.text);
    assert!(
        fields.iter().all(|f| f["field"].is_string() && f["message"].as_str().is_some_and(|m| !m.is_empty())),
        "field errors have field and message: {}",
        r.text
    );
    assert!(fields.iter().any(|f| f["field"].as_str().unwrap().starts_with(field_prefix)), "no field under `{field_prefix}`: {}", r.text);
}

#[tokio::test]
async fn invalid_definitions_are_422_with_fields() {
    let (app, before) = setup().await;
    let rule = |r: Value| json!({"key": "bad", "environments": {"production": {"enabled": true, "rules": [r]}}});
    let cases = [
        (
            "bad regex",
            rule(json!({"constraints": [{"context_name": "email", "operator": "REGEX", "value": "(["}]})),
            "environments.production",
        ),
        ("unknown segment", rule(json!({"segments": [42]})), "environments.production"),
        (
            "unknown operator",
            rule(json!({"constraints": [{"context_name": "plan", "operator": "LIKE", "values": ["a"]}]})),
            "environments.production",
        ),
        ("unknown environment", json!({"key": "bad", "environments": {"nope": {"enabled": true}}}), "environments.nope"),
        ("string flag without variants", json!({"key": "bad", "kind": "string"}), "variants"),
        (
            "number flag with text payload",
            json!({"key": "bad", "kind": "number", "variants": [{"name": "v", "payload": {"type": "number", "value": "ten"}}], "environments": {"production": {"enabled": true}}}),
            "environments.production",
        ),
        (
            "duplicate variant names",
            json!({"key": "bad", "variants": [{"name": "v", "weight": 1}, {"name": "v", "weight": 1}]}),
            "variants[1].name",
        ),
    ];
    for (what, def, field) in cases {
        let r = admin_post(&app, "/api/v1/flags", &def).await;
        assert_eq!(r.status, 422, "{what}: {}", r.text);
        assert_fields(&r, field);
        // The same definition as an update of an existing flag.
        let mut upd = def.clone();
        upd["key"] = json!("existing");
        let r = admin_put(&app, "/api/v1/flags/existing", &upd).await;
        assert_eq!(r.status, 422, "{what} (update): {}", r.text);
    }
    // One environment's configuration.
    let r =
        admin_put(&app, "/api/v1/flags/existing/environments/production", &json!({"enabled": true, "rules": [{"segments": [42]}]})).await;
    assert_fields(&r, "environments.production");
    // Segments.
    assert_fields(&admin_post(&app, "/api/v1/segments", &json!({"id": 0})).await, "id");
    let r = admin_post(
        &app,
        "/api/v1/segments",
        &json!({"id": 2, "constraints": [{"context_name": "email", "operator": "REGEX", "value": "(["}]}),
    )
    .await;
    assert_fields(&r, "constraints");
    // An import is all or nothing.
    let doc = json!({"format": 1, "environments": [{"name": "imported"}], "segments": [{"id": 9}], "flags": [{"key": "good"}, rule(json!({"segments": [42]}))]});
    let r = admin_post(&app, "/api/v1/import", &doc).await;
    assert_fields(&r, "flags.bad");
    assert_fields(
        &admin_post(&app, "/api/v1/import", &json!({"format": 2, "environments": [], "flags": [], "segments": []})).await,
        "format",
    );
    assert_eq!(stored(&app).await, before);
    app.stop().await;
}

#[tokio::test]
async fn invalid_queries_are_400_invalid_query() {
    let (app, before) = setup().await;
    for q in ["limit=0", "limit=501", "limit=abc", "limit=-1", "bogus=1"] {
        assert_error(&admin_get(&app, &format!("/api/v1/flags?{q}")).await, 400, "invalid_query");
        assert_error(&admin_get(&app, &format!("/api/v1/audit?{q}")).await, 400, "invalid_query");
    }
    assert_error(&admin_get(&app, "/api/v1/audit?before=x").await, 400, "invalid_query");
    let r = send(app.req(Method::GET, "/api/v1/stream?env=production", Some(&app.tokens.server))).await;
    assert_error(&r, 400, "invalid_query");
    let r = admin_post(&app, "/api/v1/import/unleash", &json!({"version": 2, "features": []})).await;
    assert_error(&r, 400, "invalid_query");
    // A bad If-Match is a bad header.
    let r = send(
        app.req(Method::PUT, "/api/v1/flags/existing", Some(&app.tokens.admin))
            .header("if-match", "\"abc\"")
            .json(&json!({"key": "existing"})),
    )
    .await;
    assert_error(&r, 400, "invalid_header");
    let r = send(app.req(Method::GET, "/api/client/features", Some(&app.tokens.server)).header("unleash-client-spec", "five")).await;
    assert_error(&r, 400, "invalid_header");
    assert_eq!(stored(&app).await, before);
    app.stop().await;
}

#[tokio::test]
async fn unknown_routes_and_wrong_methods() {
    let (app, before) = setup().await;
    for path in ["/api/v1/nope", "/api/v2/flags", "/nope", "/api/v1/flags/existing/extra/parts", "/ofrep/v1/evaluate"] {
        for token in [Some(app.tokens.admin.as_str()), None] {
            let r = send(app.req(Method::GET, path, token)).await;
            assert_error(&r, 404, "not_found");
        }
    }
    let cases = [
        (Method::DELETE, "/api/v1/flags"),
        (Method::PATCH, "/api/v1/flags/existing"),
        (Method::POST, "/api/v1/flags/existing"),
        (Method::GET, "/ofrep/v1/evaluate/flags"),
        (Method::GET, "/ofrep/v1/evaluate/flags/existing"),
        (Method::PUT, "/api/frontend"),
        (Method::DELETE, "/api/v1/audit"),
        (Method::POST, "/api/v1/stream"),
        (Method::GET, "/api/v1/flags/existing/environments/production/on"),
        (Method::POST, "/health"),
    ];
    for (method, path) in cases {
        let r = send(app.req(method.clone(), path, Some(&app.tokens.admin)).json(&json!({"key": "existing"}))).await;
        assert_eq!(r.status, 405, "{method} {path}: {}", r.text);
        assert_error(&r, 405, "method_not_allowed");
    }
    assert_eq!(stored(&app).await, before);
    app.stop().await;
}

#[tokio::test]
async fn non_admins_get_403_before_their_body_is_read() {
    let app = gantry_testkit::TestApp::spawn().await;
    for token in [&app.tokens.server, &app.tokens.client] {
        let r = app
            .req(reqwest::Method::POST, "/api/v1/flags", Some(token))
            .header("content-type", "application/json")
            .body("{ not json")
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 403);
    }
}

#[tokio::test]
async fn imports_accept_documents_larger_than_the_default_limit() {
    let app = gantry_testkit::TestApp::spawn().await;
    // ~2 MiB Unleash document (over the 1 MiB default body limit).
    let features: Vec<serde_json::Value> = (0..4000)
        .map(|i| serde_json::json!({"name": format!("big-{i:05}"), "enabled": true, "description": "x".repeat(400), "strategies": [{"name": "default"}]}))
        .collect();
    let doc = serde_json::json!({"version": 2, "features": features});
    assert!(doc.to_string().len() > (1 << 20));
    let r = app.admin_post("/api/v1/import/unleash?environment=production", &doc).await;
    assert_eq!(r.status(), 200);
    let page: serde_json::Value = app.admin_get("/api/v1/flags?limit=1").await.json().await.unwrap();
    assert_eq!(page["total"], 4000);
    // The ordinary limit still applies elsewhere.
    let r = app.admin_post("/api/v1/flags", &serde_json::json!({"key": "k", "description": "x".repeat(2 << 20)})).await;
    assert_eq!(r.status(), 413);
}
