//! The OpenFeature provider (`gantry_sdk::openfeature`) driven through the
//! real `open-feature` crate's client, against a running server: values,
//! variants, reasons and error codes agree with the server's own OFREP
//! answers, FLAG_NOT_FOUND and TYPE_MISMATCH included.

use std::time::Duration;

use gantry_sdk::openfeature::GantryProvider;
use gantry_sdk::GantryClient;
use gantry_testkit::TestApp;
use open_feature::{EvaluationContext, EvaluationErrorCode, OpenFeature};
use serde_json::{json, Value};

async fn ofrep(app: &TestApp, key: &str, ctx: Value) -> (u16, Value) {
    let r = app
        .req(reqwest::Method::POST, &format!("/ofrep/v1/evaluate/flags/{key}"), Some(&app.tokens.server))
        .json(&json!({ "context": ctx }))
        .send()
        .await
        .unwrap();
    (r.status().as_u16(), r.json().await.unwrap())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn provider_agrees_with_ofrep() {
    let app = TestApp::spawn().await;
    app.create_flag(json!({"key": "beta", "environments": {"production": {"enabled": true,
        "rules": [{"condition": {"type": "user_ids", "ids": ["alice"]}}, {"condition": {"type": "rollout", "percentage": 50}}]}}}))
        .await;
    app.create_flag(json!({"key": "color", "kind": "string",
        "variants": [{"name": "red", "weight": 1, "payload": {"type": "string", "value": "#f00"}},
                     {"name": "blue", "weight": 1, "payload": {"type": "string", "value": "#00f"}}],
        "environments": {"production": {"enabled": true}}}))
        .await;
    app.create_flag(json!({"key": "limit", "kind": "number",
        "variants": [{"name": "low", "weight": 1, "payload": {"type": "number", "value": "10"}}],
        "environments": {"production": {"enabled": true}}}))
        .await;
    app.create_flag(json!({"key": "ui", "kind": "json",
        "variants": [{"name": "v1", "weight": 1, "payload": {"type": "json", "value": "{\"cols\":3,\"dense\":true,\"name\":\"grid\"}"}}],
        "environments": {"production": {"enabled": true}}}))
        .await;
    app.create_flag(json!({"key": "off", "environments": {"production": {"enabled": false}}})).await;

    let sdk = GantryClient::builder().server(&app.base, &app.tokens.server).build().unwrap();
    sdk.wait_until_ready(Duration::from_secs(10)).await.unwrap();
    let mut api = OpenFeature::default();
    api.set_provider(GantryProvider::new(sdk.clone())).await;
    let of = api.create_client();

    for user in ["alice", "bob", "carol", "dave", "erin", "frank", "grace", "heidi"] {
        let ctx = EvaluationContext::default().with_targeting_key(user).with_custom_field("plan", "pro");
        let wire = json!({"targetingKey": user, "plan": "pro"});

        for key in ["beta", "off"] {
            let d = of.get_bool_details(key, Some(&ctx), None).await.unwrap();
            let (status, o) = ofrep(&app, key, wire.clone()).await;
            assert_eq!(status, 200, "{o}");
            assert_eq!(Value::Bool(d.value), o["value"], "{key} for {user}");
            assert_eq!(d.reason.map(|r| r.to_string()).as_deref(), o["reason"].as_str(), "{key} for {user}");
        }
        let d = of.get_string_details("color", Some(&ctx), None).await.unwrap();
        let (_, o) = ofrep(&app, "color", wire.clone()).await;
        assert_eq!((Some(d.value.as_str()), d.variant.as_deref()), (o["value"].as_str(), o["variant"].as_str()), "color for {user}");
        assert_eq!(d.reason.map(|r| r.to_string()).as_deref(), Some("SPLIT"));

        let (_, o) = ofrep(&app, "limit", wire.clone()).await;
        assert_eq!(of.get_int_value("limit", Some(&ctx), None).await.unwrap(), o["value"].as_i64().unwrap());
        assert_eq!(of.get_float_value("limit", Some(&ctx), None).await.unwrap(), o["value"].as_f64().unwrap());

        let s = of.get_struct_details::<open_feature::StructValue>("ui", Some(&ctx), None).await.unwrap().value;
        assert_eq!(s.fields.get("cols"), Some(&open_feature::Value::Int(3)));
        assert_eq!(s.fields.get("dense"), Some(&open_feature::Value::Bool(true)));
        assert_eq!(s.fields.get("name"), Some(&open_feature::Value::String("grid".into())));
    }

    // Targeting by key: alice matches the user-id rule.
    let alice = EvaluationContext::default().with_targeting_key("alice");
    let d = of.get_bool_details("beta", Some(&alice), None).await.unwrap();
    assert!(d.value);
    assert_eq!(d.reason.map(|r| r.to_string()).as_deref(), Some("TARGETING_MATCH"));
    assert_eq!(d.flag_metadata.values.get("ruleIndex"), Some(&open_feature::FlagMetadataValue::Int(0)));

    // Errors: unknown flag and wrong type, as OFREP reports them.
    let e = of.get_bool_details("nope", Some(&alice), None).await.unwrap_err();
    assert_eq!(e.code, EvaluationErrorCode::FlagNotFound);
    let (status, o) = ofrep(&app, "nope", json!({"targetingKey": "alice"})).await;
    assert_eq!((status, o["errorCode"].as_str()), (404, Some("FLAG_NOT_FOUND")));
    let e = of.get_int_details("color", Some(&alice), None).await.unwrap_err();
    assert_eq!(e.code, EvaluationErrorCode::TypeMismatch, "{e:?}");
    let e = of.get_string_details("beta", Some(&alice), None).await.unwrap_err();
    assert_eq!(e.code, EvaluationErrorCode::TypeMismatch, "{e:?}");
    assert_eq!(of.get_int_value("color", Some(&alice), None).await.unwrap_or(7), 7);

    sdk.close().await;
    app.stop().await;
}
