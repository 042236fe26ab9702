//! Evaluation APIs: OFREP, the Unleash client API and the frontend API.

use gantry_testkit::TestApp;
use reqwest::Method;
use serde_json::{json, Value};

use crate::support::{admin_get, admin_post, admin_put, ofrep, send, Reply};

fn variant(name: &str, kind: &str, value: &str) -> Value {
    json!({"name": name, "weight": 1000, "payload": {"type": kind, "value": value}})
}

async fn bulk(app: &TestApp, token: &str, ctx: Value, if_none_match: Option<&str>) -> Reply {
    let mut rb = app.req(Method::POST, "/ofrep/v1/evaluate/flags", Some(token)).json(&json!({"context": ctx}));
    if let Some(e) = if_none_match {
        rb = rb.header("if-none-match", e);
    }
    send(rb).await
}

#[tokio::test]
async fn ofrep_single_success_fields() {
    let app = TestApp::spawn().await;
    app.create_flag(json!({
        "key": "targeted", "project": "web",
        "variants": [{"name": "blue", "weight": 1000, "payload": {"type": "string", "value": "navy"}}],
        "environments": {"production": {"enabled": true, "rules": [
            {"id": "no-match", "constraints": [{"context_name": "plan", "operator": "IN", "values": ["none"]}]},
            {"id": "gold-users", "constraints": [{"context_name": "plan", "operator": "IN", "values": ["gold"]}]}
        ]}}
    }))
    .await;
    let r = ofrep(&app, &app.tokens.server, "targeted", json!({"targetingKey": "u1", "plan": "gold"})).await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.body["key"], "targeted");
    assert_eq!(r.body["value"], true);
    assert_eq!(r.body["reason"], "TARGETING_MATCH");
    assert_eq!(r.body["variant"], "blue");
    let m = &r.body["metadata"];
    assert_eq!((&m["project"], &m["ruleId"], &m["ruleIndex"]), (&json!("web"), &json!("gold-users"), &json!(1)), "{m}");
    assert_eq!((&m["payloadType"], &m["payload"]), (&json!("string"), &json!("navy")));
    assert!(r.body.get("errorCode").is_none());

    // No rule matched: off, reason DEFAULT, and a boolean variant name.
    let r = ofrep(&app, &app.tokens.server, "targeted", json!({"targetingKey": "u1", "plan": "free"})).await;
    assert_eq!((&r.body["value"], &r.body["reason"]), (&json!(false), &json!("DEFAULT")), "{}", r.text);
    assert!(r.body["variant"].is_string() && r.body["metadata"].is_object(), "{}", r.text);

    // A flag that does not exist in this environment's config: disabled.
    app.create_flag(json!({"key": "dev-only", "environments": {"development": {"enabled": true}}})).await;
    let r = ofrep(&app, &app.tokens.server, "dev-only", json!({})).await;
    assert_eq!(
        (r.status, &r.body["value"], &r.body["reason"], &r.body["variant"]),
        (200, &json!(false), &json!("DISABLED"), &json!("off")),
        "{}",
        r.text
    );
    let r = ofrep(&app, &app.tokens.server_dev, "dev-only", json!({})).await;
    assert_eq!((&r.body["value"], &r.body["variant"]), (&json!(true), &json!("on")), "{}", r.text);
    app.stop().await;
}

#[tokio::test]
async fn ofrep_typed_values() {
    let app = TestApp::spawn().await;
    let on = json!({"production": {"enabled": true}});
    app.create_flag(json!({"key": "s", "kind": "string", "variants": [variant("green", "string", "#00ff00")], "environments": on})).await;
    app.create_flag(json!({"key": "n-int", "kind": "number", "variants": [variant("answer", "number", "42")], "environments": on})).await;
    app.create_flag(json!({"key": "n-float", "kind": "number", "variants": [variant("half", "number", "2.5")], "environments": on})).await;
    app.create_flag(json!({"key": "n-whole-float", "kind": "number", "variants": [variant("one", "number", "1.0")], "environments": on}))
        .await;
    app.create_flag(
        json!({"key": "j", "kind": "json", "variants": [variant("cfg", "json", r#"{"limits": [1, 2], "on": true}"#)], "environments": on}),
    )
    .await;

    let r = ofrep(&app, &app.tokens.server, "s", json!({})).await;
    assert_eq!((&r.body["value"], &r.body["variant"]), (&json!("#00ff00"), &json!("green")), "{}", r.text);
    let r = ofrep(&app, &app.tokens.server, "n-int", json!({})).await;
    assert!(r.body["value"].is_i64(), "{}", r.text);
    assert_eq!(r.body["value"], 42);
    let r = ofrep(&app, &app.tokens.server, "n-float", json!({})).await;
    assert_eq!(r.body["value"].as_f64(), Some(2.5), "{}", r.text);
    let r = ofrep(&app, &app.tokens.server, "n-whole-float", json!({})).await;
    assert!(r.body["value"].is_f64(), "a float keeps its fraction on the wire: {}", r.text);
    assert!(r.text.contains("\"value\":1.0"), "{}", r.text);
    let r = ofrep(&app, &app.tokens.server, "j", json!({})).await;
    assert_eq!(r.body["value"], json!({"limits": [1, 2], "on": true}), "{}", r.text);

    // The same types in the bulk answer.
    let r = bulk(&app, &app.tokens.server, json!({}), None).await;
    let by_key = |k: &str| r.body["flags"].as_array().unwrap().iter().find(|f| f["key"] == k).cloned().unwrap_or(Value::Null);
    assert_eq!(by_key("s")["value"], "#00ff00");
    assert!(by_key("n-int")["value"].is_i64());
    assert!(by_key("n-whole-float")["value"].is_f64(), "{}", r.text);
    assert_eq!(by_key("j")["value"]["limits"], json!([1, 2]));
    app.stop().await;
}

#[tokio::test]
async fn ofrep_errors_and_lenient_bodies() {
    let app = TestApp::spawn().await;
    app.create_flag(json!({"key": "present", "environments": {"production": {"enabled": true}}})).await;

    // Unknown flag.
    let r = ofrep(&app, &app.tokens.server, "absent", json!({})).await;
    assert_eq!(r.status, 404, "{}", r.text);
    assert_eq!((&r.body["key"], &r.body["errorCode"]), (&json!("absent"), &json!("FLAG_NOT_FOUND")));
    assert!(r.body["errorDetails"].as_str().is_some_and(|d| !d.is_empty()), "{}", r.text);

    // Bodies that are not an object, or a context that is not an object.
    for (body, code) in [
        ("not json", "PARSE_ERROR"),
        ("[1, 2]", "PARSE_ERROR"),
        ("{\"context\": 5}", "INVALID_CONTEXT"),
        ("{\"context\": [\"a\"]}", "INVALID_CONTEXT"),
    ] {
        let r = send(
            app.req(Method::POST, "/ofrep/v1/evaluate/flags/present", Some(&app.tokens.server))
                .header("content-type", "application/json")
                .body(body),
        )
        .await;
        assert_eq!(r.status, 400, "{body}: {}", r.text);
        assert_eq!((&r.body["key"], &r.body["errorCode"]), (&json!("present"), &json!(code)), "{body}: {}", r.text);
        assert!(r.body["errorDetails"].as_str().is_some_and(|d| !d.is_empty()), "{}", r.text);
        // Bulk answers the same way, without a key.
        let r = send(
            app.req(Method::POST, "/ofrep/v1/evaluate/flags", Some(&app.tokens.server))
                .header("content-type", "application/json")
                .body(body),
        )
        .await;
        assert_eq!(r.status, 400, "bulk {body}: {}", r.text);
        assert!(r.body["errorCode"].is_string() && r.body["errorDetails"].is_string(), "{}", r.text);
    }

    // Missing context (empty object, empty body, null context) is fine.
    for body in ["{}", "", "   ", "{\"context\": null}"] {
        let r = send(
            app.req(Method::POST, "/ofrep/v1/evaluate/flags/present", Some(&app.tokens.server))
                .header("content-type", "application/json")
                .body(body),
        )
        .await;
        assert_eq!((r.status, &r.body["value"]), (200, &json!(true)), "{body:?}: {}", r.text);
        let r = send(app.req(Method::POST, "/ofrep/v1/evaluate/flags", Some(&app.tokens.server)).body(body)).await;
        assert_eq!(r.status, 200, "bulk {body:?}: {}", r.text);
    }

    // A definition that no longer compiles (its segment is missing after an
    // Unleash import) answers ERROR with details, not a server error.
    let doc =
        json!({"version": 2, "features": [{"name": "broken", "enabled": true, "strategies": [{"name": "default", "segments": [99]}]}]});
    let r = admin_post(&app, "/api/v1/import/unleash?environment=production", &doc).await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert!(!r.body["diagnostics"].as_array().unwrap().is_empty(), "{}", r.text);
    let r = ofrep(&app, &app.tokens.server, "broken", json!({})).await;
    assert_eq!(r.status, 400, "OFREP single-flag failures are 400 with key + errorCode: {}", r.text);
    assert_eq!(
        (&r.body["key"], &r.body["reason"], &r.body["errorCode"]),
        (&json!("broken"), &json!("ERROR"), &json!("PARSE_ERROR")),
        "{}",
        r.text
    );
    assert!(r.body["errorDetails"].is_string());
    app.stop().await;
}

#[tokio::test]
async fn ofrep_bulk_etag_and_not_modified() {
    let app = TestApp::spawn().await;
    app.create_flag(json!({"key": "a", "environments": {"production": {"enabled": true}}})).await;
    app.create_flag(json!({"key": "b"})).await;
    app.create_flag(
        json!({"key": "c", "kind": "string", "variants": [variant("x", "string", "X")], "environments": {"production": {"enabled": true}}}),
    )
    .await;

    let r = bulk(&app, &app.tokens.server, json!({"targetingKey": "u1"}), None).await;
    assert_eq!(r.status, 200, "{}", r.text);
    let flags = r.body["flags"].as_array().unwrap();
    let keys: Vec<&str> = flags.iter().map(|f| f["key"].as_str().unwrap()).collect();
    assert_eq!(keys, ["a", "b", "c"], "every flag, including disabled ones");
    assert_eq!(flags[0]["value"], true);
    assert_eq!((&flags[1]["value"], &flags[1]["reason"]), (&json!(false), &json!("DISABLED")));
    assert_eq!(flags[2]["value"], "X");
    assert_eq!(r.body["metadata"]["environment"], "production");
    let etag = r.etag();

    // Unchanged: 304 with the same ETag, no body.
    let r = bulk(&app, &app.tokens.server, json!({"targetingKey": "u1"}), Some(&etag)).await;
    assert_eq!(r.status, 304);
    assert_eq!(r.etag(), etag);
    assert!(r.text.is_empty());
    let r = bulk(&app, &app.tokens.server, json!({"targetingKey": "u1"}), Some(&format!("\"other\", W/{etag}"))).await;
    assert_eq!(r.status, 304, "weak and listed ETags match too");
    let r = bulk(&app, &app.tokens.server, json!({"targetingKey": "u1"}), Some("\"stale\"")).await;
    assert_eq!(r.status, 200);

    // A change makes a new ETag; the old one no longer matches.
    assert_eq!(admin_post(&app, "/api/v1/flags/b/environments/production/on", &json!(null)).await.status, 200);
    let r = bulk(&app, &app.tokens.server, json!({"targetingKey": "u1"}), Some(&etag)).await;
    assert_eq!(r.status, 200);
    assert_ne!(r.etag(), etag);
    assert_eq!(r.body["flags"][1]["value"], true);

    // Admin tokens evaluate in the environment they name.
    let by_server = bulk(&app, &app.tokens.server, json!({"targetingKey": "u1"}), None).await;
    let r = send(
        app.req(Method::POST, "/ofrep/v1/evaluate/flags", Some(&app.tokens.admin))
            .header("gantry-environment", "production")
            .json(&json!({"context": {"targetingKey": "u1"}})),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.body, by_server.body);
    let r = send(
        app.req(Method::POST, "/ofrep/v1/evaluate/flags/a", Some(&app.tokens.admin))
            .header("gantry-environment", "production")
            .json(&json!({})),
    )
    .await;
    assert_eq!((r.status, &r.body["value"]), (200, &json!(true)));
    let r = send(
        app.req(Method::POST, "/ofrep/v1/evaluate/flags/a", Some(&app.tokens.admin))
            .header("gantry-environment", "development")
            .json(&json!({})),
    )
    .await;
    assert_eq!((r.status, &r.body["value"]), (200, &json!(false)));
    app.stop().await;
}

async fn client_features(app: &TestApp, spec: Option<&str>, if_none_match: Option<&str>) -> Reply {
    let mut rb = app.http.get(app.url("/api/client/features")).header("authorization", &app.tokens.server);
    if let Some(s) = spec {
        rb = rb.header("unleash-client-spec", s);
    }
    if let Some(e) = if_none_match {
        rb = rb.header("if-none-match", e);
    }
    send(rb).await
}

#[tokio::test]
async fn unleash_client_features_etag_and_segments() {
    let app = TestApp::spawn().await;
    let seg = json!({"id": 7, "name": "gold", "constraints": [{"context_name": "plan", "operator": "IN", "values": ["gold"]}]});
    assert_eq!(admin_post(&app, "/api/v1/segments", &seg).await.status, 201);
    app.create_flag(json!({"key": "segmented", "environments": {"production": {"enabled": true, "rules": [{"segments": [7]}]}}})).await;
    app.create_flag(json!({"key": "plain", "environments": {"production": {"enabled": false}}})).await;

    let r = client_features(&app, None, None).await;
    assert_eq!(r.status, 200, "{}", r.text);
    let etag = r.etag();
    let features = r.body["features"].as_array().unwrap();
    assert_eq!(features.len(), 2);
    let seg_feature = features.iter().find(|f| f["name"] == "segmented").unwrap();
    assert_eq!(seg_feature["enabled"], true);
    assert!(r.body.get("segments").is_none(), "old clients get segments inlined: {}", r.text);
    let strategy = &seg_feature["strategies"][0];
    assert!(strategy.get("segments").is_none_or(Value::is_null), "{strategy}");
    assert_eq!(strategy["constraints"][0]["contextName"], "plan", "{strategy}");
    assert_eq!(r.body["query"]["inlineSegmentConstraints"], true);
    // Same for clients below 4.2.0.
    let r = client_features(&app, Some("4.1.9"), None).await;
    assert!(r.body.get("segments").is_none(), "{}", r.text);

    // 4.2.0 and later: segments separate.
    for spec in ["4.2.0", "5.1.0", "6.1.0-beta.1"] {
        let r = client_features(&app, Some(spec), None).await;
        assert_eq!(r.status, 200);
        assert_eq!(r.body["segments"][0]["id"], 7, "{spec}: {}", r.text);
        assert_eq!(r.body["segments"][0]["constraints"][0]["contextName"], "plan");
        let f = r.body["features"].as_array().unwrap().iter().find(|f| f["name"] == "segmented").cloned().unwrap();
        assert_eq!(f["strategies"][0]["segments"], json!([7]), "{f}");
    }

    // 304 while unchanged, with the ETag.
    let r = client_features(&app, None, Some(&etag)).await;
    assert_eq!(r.status, 304);
    assert!(r.text.is_empty());
    assert_eq!(r.etag(), etag);
    // The change shows, with a new ETag.
    assert_eq!(admin_post(&app, "/api/v1/flags/plain/environments/production/on", &json!(null)).await.status, 200);
    let r = client_features(&app, None, Some(&etag)).await;
    assert_eq!(r.status, 200);
    assert_ne!(r.etag(), etag);
    let plain = r.body["features"].as_array().unwrap().iter().find(|f| f["name"] == "plain").cloned().unwrap();
    assert_eq!(plain["enabled"], true);
    let r2 = client_features(&app, None, Some(&r.etag())).await;
    assert_eq!(r2.status, 304);

    // A new flag appears too.
    app.create_flag(json!({"key": "newcomer"})).await;
    let r = client_features(&app, None, None).await;
    assert_eq!(r.body["features"].as_array().unwrap().len(), 3);
    // namePrefix filters.
    let r = send(app.http.get(app.url("/api/client/features?namePrefix=seg")).header("authorization", &app.tokens.server)).await;
    let names: Vec<&str> = r.body["features"].as_array().unwrap().iter().map(|f| f["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["segmented"]);

    // One toggle.
    let r = send(app.http.get(app.url("/api/client/features/plain")).header("authorization", &app.tokens.server)).await;
    assert_eq!((r.status, &r.body["name"], &r.body["enabled"]), (200, &json!("plain"), &json!(true)), "{}", r.text);
    let r = send(app.http.get(app.url("/api/client/features/ghost")).header("authorization", &app.tokens.server)).await;
    crate::support::assert_error(&r, 404, "flag_not_found");
    app.stop().await;
}

#[tokio::test]
async fn unleash_client_metrics_feed_usage() {
    let app = TestApp::spawn().await;
    app.create_flag(json!({"key": "m", "environments": {"production": {"enabled": true}}})).await;
    let metrics = json!({
        "appName": "checkout", "instanceId": "i-1",
        "bucket": {"start": "2024-01-01T00:00:00Z", "stop": "2024-01-01T00:01:00Z", "toggles": {
            "m": {"yes": 5, "no": 2, "variants": {"red": 3}},
            "ghost": {"yes": 9, "no": 9}
        }}
    });
    let r = send(app.http.post(app.url("/api/client/metrics")).header("authorization", &app.tokens.server).json(&metrics)).await;
    assert_eq!(r.status, 202, "{}", r.text);
    let r = send(
        app.http
            .post(app.url("/api/client/register"))
            .header("authorization", &app.tokens.server)
            .json(&json!({"appName": "checkout", "strategies": ["default"]})),
    )
    .await;
    assert_eq!(r.status, 202, "{}", r.text);
    let r =
        send(app.http.post(app.url("/api/client/register")).header("authorization", &app.tokens.server).json(&json!({"strategies": []})))
            .await;
    crate::support::assert_error(&r, 422, "validation_failed");

    let r = admin_get(&app, "/api/v1/flags/m/usage").await;
    let prod = r.body.as_array().unwrap().iter().find(|u| u["environment"] == "production").cloned().expect("usage row");
    assert_eq!((prod["yes"].as_u64(), prod["no"].as_u64()), (Some(5), Some(2)), "{prod}");
    assert_eq!(prod["variants"]["red"], 3);
    assert!(prod["last_evaluated_at"].is_string());
    // Unknown toggles are ignored.
    let r = admin_get(&app, "/api/v1/usage").await;
    assert!(!r.body.as_array().unwrap().iter().any(|u| u["flag"] == "ghost"), "{}", r.text);

    // Evaluations add to SDK-reported counts.
    let r = ofrep(&app, &app.tokens.server, "m", json!({})).await;
    assert_eq!(r.body["value"], true);
    let r = send(
        app.http
            .post(app.url("/api/frontend/client/metrics"))
            .header("authorization", &app.tokens.client)
            .json(&json!({"bucket": {"toggles": {"m": {"yes": 0, "no": 4}}}})),
    )
    .await;
    assert_eq!(r.status, 202);
    let r = admin_get(&app, "/api/v1/flags/m/usage").await;
    let prod = r.body.as_array().unwrap().iter().find(|u| u["environment"] == "production").cloned().unwrap();
    assert_eq!((prod["yes"].as_u64(), prod["no"].as_u64()), (Some(6), Some(6)), "{prod}");
    app.stop().await;
}

async fn frontend_get(app: &TestApp, query: &str, if_none_match: Option<&str>) -> Reply {
    let mut rb = app.http.get(app.url(&format!("/api/frontend{query}"))).header("authorization", &app.tokens.client);
    if let Some(e) = if_none_match {
        rb = rb.header("if-none-match", e);
    }
    send(rb).await
}

/// Toggle names in answer order (the flags' key order).
fn toggle_names(r: &Reply) -> Vec<String> {
    r.body["toggles"]
        .as_array()
        .unwrap_or_else(|| panic!("no toggles: {}", r.text))
        .iter()
        .map(|t| t["name"].as_str().unwrap().to_owned())
        .collect()
}

#[tokio::test]
async fn frontend_api_contexts_filtering_and_etags() {
    let app = TestApp::spawn().await;
    app.create_flag(json!({"key": "always", "environments": {"production": {"enabled": true}}})).await;
    app.create_flag(json!({"key": "off"})).await;
    app.create_flag(json!({"key": "gold-plan", "environments": {"production": {"enabled": true, "rules": [
        {"constraints": [{"context_name": "plan", "operator": "IN", "values": ["gold member"]}]}
    ]}}}))
    .await;
    app.create_flag(json!({"key": "vip-user", "environments": {"production": {"enabled": true, "rules": [{"condition": {"type": "user_ids", "ids": ["u 1"]}}]}}})).await;
    app.create_flag(json!({"key": "colour", "kind": "string", "variants": [variant("red", "string", "#f00")], "environments": {"production": {"enabled": true}}})).await;

    // Only enabled toggles; `off` never shows.
    let r = frontend_get(&app, "", None).await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(toggle_names(&r), ["always", "colour"]);
    assert_eq!(r.header("cache-control"), Some("no-cache"));
    let colour = r.body["toggles"].as_array().unwrap().iter().find(|t| t["name"] == "colour").cloned().unwrap();
    assert_eq!(colour["enabled"], true);
    assert_eq!(colour["variant"]["name"], "red");
    assert_eq!(colour["variant"]["payload"], json!({"type": "string", "value": "#f00"}));
    let always = &r.body["toggles"][0];
    assert_eq!((&always["variant"]["name"], &always["variant"]["enabled"]), (&json!("disabled"), &json!(false)));

    // Browser SDK query encoding: properties[x]=, percent-encoded brackets and values.
    let r = frontend_get(&app, "?userId=u%201&properties[plan]=gold%20member", None).await;
    assert_eq!(toggle_names(&r), ["always", "colour", "gold-plan", "vip-user"]);
    let r = frontend_get(&app, "?properties%5Bplan%5D=gold+member", None).await;
    assert_eq!(toggle_names(&r), ["always", "colour", "gold-plan"]);
    let r = frontend_get(&app, "?plan=gold%20member", None).await;
    assert_eq!(toggle_names(&r), ["always", "colour", "gold-plan"], "unknown parameters are properties");
    let r = frontend_get(&app, "?properties[plan]=silver", None).await;
    assert_eq!(toggle_names(&r), ["always", "colour"]);

    // POST with {context}, or the context itself.
    let post = |body: Value| send(app.http.post(app.url("/api/frontend")).header("authorization", &app.tokens.client).json(&body));
    let r = post(json!({"context": {"userId": "u 1", "properties": {"plan": "gold member"}}})).await;
    assert_eq!(toggle_names(&r), ["always", "colour", "gold-plan", "vip-user"]);
    let r = post(json!({"userId": "u 1"})).await;
    assert_eq!(toggle_names(&r), ["always", "colour", "vip-user"]);
    let r = post(json!({})).await;
    assert_eq!(toggle_names(&r), ["always", "colour"]);
    let r = send(
        app.http
            .post(app.url("/api/frontend"))
            .header("authorization", &app.tokens.client)
            .header("content-type", "application/json")
            .body("["),
    )
    .await;
    crate::support::assert_error(&r, 400, "invalid_json");

    // /all shows disabled toggles too, with enabled=false.
    let r = send(app.http.get(app.url("/api/frontend/all")).header("authorization", &app.tokens.client)).await;
    assert_eq!(toggle_names(&r), ["always", "colour", "gold-plan", "off", "vip-user"]);
    let off = r.body["toggles"].as_array().unwrap().iter().find(|t| t["name"] == "off").cloned().unwrap();
    assert_eq!((&off["enabled"], &off["variant"]["name"]), (&json!(false), &json!("disabled")));
    // One feature.
    let r = send(
        app.http
            .get(app.url("/api/frontend/features/gold-plan?properties[plan]=gold%20member"))
            .header("authorization", &app.tokens.client),
    )
    .await;
    assert_eq!((r.status, &r.body["enabled"]), (200, &json!(true)), "{}", r.text);
    let r = send(app.http.get(app.url("/api/frontend/features/off")).header("authorization", &app.tokens.client)).await;
    assert_eq!((r.status, &r.body["enabled"]), (200, &json!(false)), "{}", r.text);
    let r = send(app.http.get(app.url("/api/frontend/features/ghost")).header("authorization", &app.tokens.client)).await;
    crate::support::assert_error(&r, 404, "flag_not_found");

    // ETag and 304, per context; a change invalidates.
    let r = frontend_get(&app, "?userId=u%201", None).await;
    let etag = r.etag();
    let r = frontend_get(&app, "?userId=u%201", Some(&etag)).await;
    assert_eq!((r.status, r.etag()), (304, etag.clone()));
    let other = frontend_get(&app, "?userId=u2", Some(&etag)).await;
    assert_eq!(other.status, 200, "another context's answer differs");
    assert_ne!(other.etag(), etag);
    let r = admin_put(&app, "/api/v1/flags/off/environments/production", &json!({"enabled": true})).await;
    assert_eq!(r.status, 200);
    let r = frontend_get(&app, "?userId=u%201", Some(&etag)).await;
    assert_eq!(r.status, 200);
    assert!(toggle_names(&r).contains(&"off".to_owned()));
    app.stop().await;
}
