//! The basic path: create a flag, evaluate it through every API.

use gantry_testkit::TestApp;
use serde_json::json;

#[tokio::test]
async fn create_then_evaluate_everywhere() {
    let app = TestApp::spawn().await;
    app.create_flag(json!({"key": "checkout", "environments": {"production": {"enabled": true}}})).await;
    let (s, body) = app.ofrep(&app.tokens.server, "checkout", json!({"targetingKey": "u1"})).await;
    assert_eq!(s, 200);
    assert_eq!(body["value"], true);
    assert_eq!(body["reason"], "STATIC");
    let r = app.http.get(app.url("/api/frontend?userId=u1")).header("authorization", &app.tokens.client).send().await.unwrap();
    assert_eq!(r.status(), 200);
    let fe: serde_json::Value = r.json().await.unwrap();
    assert_eq!(fe["toggles"][0]["name"], "checkout");
    let r = app.http.get(app.url("/api/client/features")).header("authorization", &app.tokens.server).send().await.unwrap();
    assert_eq!(r.status(), 200);
    let doc: serde_json::Value = r.json().await.unwrap();
    assert_eq!(doc["features"][0]["enabled"], true);
    app.stop().await;
}
