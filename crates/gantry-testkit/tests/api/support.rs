//! Small helpers shared by the API test modules.

use gantry_testkit::TestApp;
use reqwest::header::HeaderMap;
use serde_json::Value;

/// Manual clock start used by tests that need fixed times:
/// 2023-11-14T22:13:20Z.
pub const T0_MS: i64 = 1_700_000_000_000;

/// A response read to the end: status, headers and the body as JSON
/// (`Value::Null` when the body is empty or not JSON).
#[derive(Debug)]
pub struct Reply {
    pub status: u16,
    pub headers: HeaderMap,
    pub body: Value,
    pub text: String,
}

impl Reply {
    /// A header as text.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    /// The ETag header (panics when absent).
    pub fn etag(&self) -> String {
        self.header("etag").unwrap_or_else(|| panic!("no ETag on {} {}", self.status, self.text)).to_owned()
    }
}

/// Sends a request and reads the whole response.
pub async fn send(rb: reqwest::RequestBuilder) -> Reply {
    let r = rb.send().await.expect("request");
    let status = r.status().as_u16();
    let headers = r.headers().clone();
    let text = r.text().await.expect("body");
    let body = serde_json::from_str(&text).unwrap_or(Value::Null);
    Reply { status, headers, body, text }
}

/// Asserts Gantry's error envelope: the status, the stable `code` and a
/// non-empty `message`.
#[track_caller]
pub fn assert_error(r: &Reply, status: u16, code: &str) {
    assert_eq!(r.status, status, "expected {status} {code}, got {} {}", r.status, r.text);
    assert_eq!(r.body["code"], code, "wrong code in {}", r.text);
    assert!(r.body["message"].as_str().is_some_and(|m| !m.is_empty()), "error without message: {}", r.text);
    let ct = r.header("content-type").unwrap_or("");
    assert!(ct.starts_with("application/json"), "error body is not JSON ({ct}): {}", r.text);
}

/// GET as admin, read fully.
pub async fn admin_get(app: &TestApp, path: &str) -> Reply {
    send(app.req(reqwest::Method::GET, path, Some(&app.tokens.admin))).await
}

/// POST JSON as admin, read fully.
pub async fn admin_post(app: &TestApp, path: &str, body: &Value) -> Reply {
    send(app.req(reqwest::Method::POST, path, Some(&app.tokens.admin)).json(body)).await
}

/// PUT JSON as admin, read fully.
pub async fn admin_put(app: &TestApp, path: &str, body: &Value) -> Reply {
    send(app.req(reqwest::Method::PUT, path, Some(&app.tokens.admin)).json(body)).await
}

/// DELETE as admin, read fully.
pub async fn admin_delete(app: &TestApp, path: &str) -> Reply {
    send(app.req(reqwest::Method::DELETE, path, Some(&app.tokens.admin))).await
}

/// Sequence number of the newest audit entry (0 when the log is empty).
pub async fn audit_head(app: &TestApp) -> u64 {
    let r = admin_get(app, "/api/v1/audit?limit=1").await;
    assert_eq!(r.status, 200, "{}", r.text);
    r.body["total"].as_u64().expect("total")
}

/// Creates a token through the admin API; returns (id, secret).
pub async fn api_token(app: &TestApp, body: Value) -> (String, String) {
    let r = admin_post(app, "/api/v1/tokens", &body).await;
    assert_eq!(r.status, 201, "token create failed: {}", r.text);
    (r.body["id"].as_str().expect("id").to_owned(), r.body["secret"].as_str().expect("secret").to_owned())
}

/// OFREP single evaluation with a token, read fully.
pub async fn ofrep(app: &TestApp, token: &str, key: &str, context: Value) -> Reply {
    send(
        app.req(reqwest::Method::POST, &format!("/ofrep/v1/evaluate/flags/{}", gantry_testkit::urlencode(key)), Some(token))
            .json(&serde_json::json!({ "context": context })),
    )
    .await
}
