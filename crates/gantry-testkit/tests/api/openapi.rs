//! The OpenAPI document: snapshot-tested, and every documented route exists.

use gantry_testkit::TestApp;

#[tokio::test]
async fn document_matches_snapshot() {
    let app = TestApp::spawn().await;
    let r = app.http.get(app.url("/api/openapi.json")).send().await.unwrap();
    assert_eq!(r.status(), 200);
    let doc: serde_json::Value = r.json().await.unwrap();
    assert_eq!(doc["openapi"], "3.1.0");
    insta::assert_json_snapshot!("openapi", doc, {".info.version" => "[version]"});
}

#[tokio::test]
async fn every_documented_route_is_routed() {
    let app = TestApp::spawn().await;
    for route in gantry_server::openapi::ROUTES {
        let path = route
            .path
            .replace("{key}", "no-such-flag")
            .replace("{env}", "production")
            .replace("{name}", "no-such")
            .replace("{id}", "999999");
        let method = reqwest::Method::from_bytes(route.method.to_uppercase().as_bytes()).unwrap();
        let r = app.req(method, &path, Some(&app.tokens.admin)).header("gantry-environment", "production").send().await.unwrap();
        let status = r.status().as_u16();
        let code = if route.path.ends_with("stream") || route.path.ends_with("events") {
            None
        } else {
            r.json::<serde_json::Value>().await.ok().and_then(|b| b.get("code").and_then(|c| c.as_str()).map(str::to_owned))
        };
        // A missing object is fine (404 with a specific code); a missing route is not.
        assert!(
            status != 405 && code.as_deref() != Some("not_found"),
            "{} {} is documented but not routed ({status} {code:?})",
            route.method,
            route.path
        );
    }
}
