//! Server-sent event streams: the native stream (`/api/v1/stream`) with its
//! snapshot, change events and `Last-Event-ID` resume, and the OFREP change
//! notification (`/ofrep/v1/events`).

use std::pin::Pin;
use std::time::Duration;

use futures_util::{Stream, StreamExt};
use gantry_testkit::TestApp;
use reqwest::Method;
use serde_json::{json, Value};

use crate::support::{admin_delete, admin_post, admin_put};

/// Safety net only: no assertion depends on timing.
const EVENT_TIMEOUT: Duration = Duration::from_secs(10);

/// One parsed server-sent event.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct SseEvent {
    event: Option<String>,
    id: Option<String>,
    data: String,
}

impl SseEvent {
    pub(crate) fn json(&self) -> Value {
        serde_json::from_str(&self.data).unwrap_or_else(|e| panic!("event data is not JSON ({e}): {}", self.data))
    }

    fn id(&self) -> i64 {
        self.id.as_deref().and_then(|i| i.parse().ok()).unwrap_or_else(|| panic!("event without numeric id: {self:?}"))
    }

    pub(crate) fn name(&self) -> &str {
        self.event.as_deref().unwrap_or("message")
    }
}

/// A tiny SSE reader over a response's byte stream.
pub(crate) struct SseReader {
    stream: Pin<Box<dyn Stream<Item = reqwest::Result<Vec<u8>>> + Send>>,
    buf: Vec<u8>,
}

impl SseReader {
    fn new(res: reqwest::Response) -> Self {
        let ct = res.headers().get("content-type").and_then(|v| v.to_str().ok()).unwrap_or("").to_owned();
        assert!(ct.starts_with("text/event-stream"), "not an event stream: {ct}");
        SseReader { stream: Box::pin(res.bytes_stream().map(|r| r.map(|b| b.to_vec()))), buf: Vec::new() }
    }

    /// Parses one block of lines; `None` for comment-only blocks (heartbeats).
    fn parse(block: &str) -> Option<SseEvent> {
        let (mut event, mut id, mut data, mut any) = (None, None, Vec::new(), false);
        for line in block.split('\n') {
            let line = line.strip_suffix('\r').unwrap_or(line);
            if line.is_empty() || line.starts_with(':') {
                continue;
            }
            let (field, value) = line.split_once(':').unwrap_or((line, ""));
            let value = value.strip_prefix(' ').unwrap_or(value);
            match field {
                "event" => event = Some(value.to_owned()),
                "id" => id = Some(value.to_owned()),
                "data" => data.push(value.to_owned()),
                _ => continue,
            }
            any = true;
        }
        any.then(|| SseEvent { event, id, data: data.join("\n") })
    }

    async fn next_inner(&mut self) -> Option<SseEvent> {
        loop {
            while let Some(pos) = self.buf.windows(2).position(|w| w == b"\n\n") {
                let block: Vec<u8> = self.buf.drain(..pos + 2).collect();
                if let Some(e) = Self::parse(&String::from_utf8_lossy(&block)) {
                    return Some(e);
                }
            }
            match self.stream.next().await {
                Some(Ok(chunk)) => self.buf.extend_from_slice(&chunk),
                Some(Err(e)) => panic!("stream failed: {e}"),
                None => return None,
            }
        }
    }

    /// The next event (panics if none arrives within the safety timeout).
    pub(crate) async fn next(&mut self) -> SseEvent {
        tokio::time::timeout(EVENT_TIMEOUT, self.next_inner()).await.expect("no event within the safety timeout").expect("stream ended")
    }
}

pub(crate) async fn open(app: &TestApp, token: &str, last_event_id: Option<&str>) -> SseReader {
    let mut rb = app.req(Method::GET, "/api/v1/stream", Some(token));
    if let Some(id) = last_event_id {
        rb = rb.header("last-event-id", id);
    }
    let res = rb.send().await.expect("request");
    assert_eq!(res.status(), 200);
    SseReader::new(res)
}

async fn switch(app: &TestApp, key: &str, env: &str, on: bool) {
    let r = admin_post(app, &format!("/api/v1/flags/{key}/environments/{env}/{}", if on { "on" } else { "off" }), &json!(null)).await;
    assert_eq!(r.status, 200, "{}", r.text);
}

fn two_env_flag(key: &str) -> Value {
    json!({"key": key, "environments": {"production": {"enabled": true}, "development": {"enabled": false, "rules": [{"id": "dev-rule"}]}}})
}

#[tokio::test]
async fn snapshot_then_change_events_for_one_environment() {
    let app = TestApp::spawn().await;
    app.create_flag(two_env_flag("streamed")).await;
    assert_eq!(admin_post(&app, "/api/v1/segments", &json!({"id": 2, "name": "s"})).await.status, 201);

    let mut s = open(&app, &app.tokens.server, None).await;
    let snap = s.next().await;
    assert_eq!(snap.name(), "snapshot");
    let data = snap.json();
    assert_eq!(data["type"], "snapshot");
    assert_eq!(data["environment"], "production");
    assert_eq!(data["revision"].as_i64(), Some(snap.id()));
    let flags = data["flags"].as_array().unwrap();
    assert_eq!(flags.len(), 1);
    assert_eq!(flags[0]["key"], "streamed");
    assert_eq!(flags[0]["environments"], json!({"production": {"enabled": true}}), "only this environment's configuration");
    assert_eq!(data["segments"][0]["id"], 2);
    let rev = snap.id();

    // A flag change: only the production configuration travels.
    switch(&app, "streamed", "production", false).await;
    let e = s.next().await;
    assert_eq!((e.name(), e.id()), ("flag-updated", rev + 1));
    let d = e.json();
    assert_eq!((&d["type"], d["revision"].as_i64()), (&json!("flag-updated"), Some(rev + 1)));
    assert_eq!(d["flag"]["key"], "streamed");
    assert_eq!(d["flag"]["environments"], json!({"production": {"enabled": false}}), "{d}");

    // A change in another environment still announces the flag, without that environment's data.
    switch(&app, "streamed", "development", true).await;
    let e = s.next().await;
    assert_eq!((e.name(), e.id()), ("flag-updated", rev + 2));
    assert_eq!(e.json()["flag"]["environments"], json!({"production": {"enabled": false}}));
    assert!(!e.data.contains("dev-rule"), "development data leaked: {}", e.data);

    // Creation, deletion, segments.
    app.create_flag(json!({"key": "second", "environments": {"production": {"enabled": true}}})).await;
    let e = s.next().await;
    assert_eq!((e.name(), e.id(), e.json()["flag"]["key"].as_str()), ("flag-updated", rev + 3, Some("second")));
    assert_eq!(admin_delete(&app, "/api/v1/flags/second").await.status, 204);
    let e = s.next().await;
    assert_eq!((e.name(), e.id(), e.json()["key"].as_str()), ("flag-deleted", rev + 4, Some("second")));
    assert_eq!(admin_put(&app, "/api/v1/segments/2", &json!({"id": 2, "name": "renamed"})).await.status, 200);
    let e = s.next().await;
    assert_eq!((e.name(), e.id(), e.json()["segment"]["name"].as_str()), ("segment-updated", rev + 5, Some("renamed")));

    // Structural changes (an import) send a fresh snapshot.
    let doc = json!({"format": 1, "environments": [], "segments": [], "flags": [{"key": "imported", "environments": {"production": {"enabled": true}}}]});
    assert_eq!(admin_post(&app, "/api/v1/import", &doc).await.status, 200);
    let e = s.next().await;
    assert_eq!((e.name(), e.id()), ("snapshot", rev + 6));
    let keys: Vec<String> = e.json()["flags"].as_array().unwrap().iter().map(|f| f["key"].as_str().unwrap().to_owned()).collect();
    assert_eq!(keys, ["imported", "streamed"]);

    // Refused writes send nothing: the next event is the next real change.
    assert_eq!(admin_post(&app, "/api/v1/segments", &json!({"id": 2})).await.status, 409);
    switch(&app, "streamed", "production", true).await;
    let e = s.next().await;
    assert_eq!((e.name(), e.id()), ("flag-updated", rev + 7));
    app.stop().await;
}

#[tokio::test]
async fn development_stream_sees_development_configuration() {
    let app = TestApp::spawn().await;
    app.create_flag(two_env_flag("streamed")).await;
    let mut s = open(&app, &app.tokens.server_dev, None).await;
    let snap = s.next().await;
    let d = snap.json();
    assert_eq!(d["environment"], "development");
    assert_eq!(
        d["flags"][0]["environments"],
        json!({"development": {"enabled": false, "rules": [{"id": "dev-rule", "condition": {"type": "all"}}]}})
    );
    switch(&app, "streamed", "development", true).await;
    let e = s.next().await;
    assert_eq!(e.json()["flag"]["environments"]["development"]["enabled"], true);
    assert!(e.json()["flag"]["environments"].get("production").is_none());

    // Admin tokens pick the environment with ?environment=.
    let res = app.req(Method::GET, "/api/v1/stream?environment=development", Some(&app.tokens.admin)).send().await.unwrap();
    assert_eq!(res.status(), 200);
    let mut a = SseReader::new(res);
    let snap = a.next().await;
    assert_eq!((snap.name(), snap.json()["environment"].as_str()), ("snapshot", Some("development")));
    app.stop().await;
}

#[tokio::test]
async fn last_event_id_resumes_without_a_snapshot() {
    let app = TestApp::spawn().await;
    app.create_flag(two_env_flag("a")).await;
    app.create_flag(two_env_flag("b")).await;

    let mut s = open(&app, &app.tokens.server, None).await;
    let snap = s.next().await;
    assert_eq!(snap.name(), "snapshot");
    let rev = snap.id();
    drop(s);

    // Two changes while disconnected.
    switch(&app, "a", "production", false).await;
    switch(&app, "b", "production", false).await;

    // Resume: exactly the two missed events, then live changes.
    let mut s = open(&app, &app.tokens.server, Some(&rev.to_string())).await;
    let e1 = s.next().await;
    let e2 = s.next().await;
    assert_eq!((e1.name(), e1.id(), e1.json()["flag"]["key"].as_str()), ("flag-updated", rev + 1, Some("a")));
    assert_eq!((e2.name(), e2.id(), e2.json()["flag"]["key"].as_str()), ("flag-updated", rev + 2, Some("b")));
    assert_eq!(e1.json()["flag"]["environments"]["production"]["enabled"], false);
    // Nothing else was queued: the next event is the next change (no snapshot, no repeats).
    switch(&app, "a", "production", true).await;
    let e3 = s.next().await;
    assert_eq!((e3.name(), e3.id(), e3.json()["flag"]["key"].as_str()), ("flag-updated", rev + 3, Some("a")));
    drop(s);

    // Resuming at the current revision: nothing missed, no snapshot.
    let mut s = open(&app, &app.tokens.server, Some(&(rev + 3).to_string())).await;
    switch(&app, "b", "production", true).await;
    let e = s.next().await;
    assert_eq!((e.name(), e.id()), ("flag-updated", rev + 4));
    drop(s);

    // An id from the future, or not a number: a snapshot.
    for id in [(rev + 1000).to_string(), "not-a-number".to_owned()] {
        let mut s = open(&app, &app.tokens.server, Some(&id)).await;
        let e = s.next().await;
        assert_eq!((e.name(), e.id()), ("snapshot", rev + 4), "Last-Event-ID {id}");
        let flags = e.json()["flags"].as_array().unwrap().clone();
        assert_eq!(flags.len(), 2);
        assert!(flags.iter().all(|f| f["environments"]["production"]["enabled"] == true));
    }

    // A gap that crosses a structural change resumes with a snapshot.
    assert_eq!(admin_post(&app, "/api/v1/environments", &json!({"name": "qa"})).await.status, 201);
    let mut s = open(&app, &app.tokens.server, Some(&(rev + 4).to_string())).await;
    let e = s.next().await;
    assert_eq!((e.name(), e.id()), ("snapshot", rev + 5));
    app.stop().await;
}

#[tokio::test]
async fn ofrep_events_announce_changes() {
    let app = TestApp::spawn().await;
    app.create_flag(two_env_flag("watched")).await;
    let res = app.req(Method::GET, "/ofrep/v1/events", Some(&app.tokens.client)).send().await.unwrap();
    assert_eq!(res.status(), 200);
    let mut s = SseReader::new(res);
    switch(&app, "watched", "production", false).await;
    let e = s.next().await;
    let d = e.json();
    assert_eq!(d["type"], "refetchEvaluation");
    assert_eq!(d["etag"].as_str(), e.id.as_deref());
    // The evaluation now reflects it.
    let (_, v) = app.ofrep(&app.tokens.client, "watched", json!({})).await;
    assert_eq!(v["value"], false);
    app.stop().await;
}
