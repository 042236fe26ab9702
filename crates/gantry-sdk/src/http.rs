//! The network side: initial fetch, stream with resume, reconnect with
//! jittered backoff, ETag polling while the stream is down, metrics upload.

use std::sync::Arc;
use std::time::Duration;

use futures_util::StreamExt;
use gantry_api_types::{StreamEvent, StreamSnapshot};
use rand::Rng;

use crate::sse::SseParser;
use crate::state::{Shared, Source};
use crate::Builder;

/// Uploads usage counts (kept so `close` can flush).
#[derive(Debug, Clone)]
pub(crate) struct Uploader {
    http: reqwest::Client,
    url: String,
    token: String,
    app_name: String,
    environment: Option<String>,
}

impl Uploader {
    /// Uploads queued exposure and track events in batches. A failed batch
    /// goes back into the queue (same idempotency keys, so a batch the
    /// server did store is not counted twice); what does not fit is dropped
    /// and counted.
    async fn flush_events(&self, shared: &Shared) {
        loop {
            let batch = shared.events.take(gantry_api_types::MAX_EVENTS_PER_BATCH);
            if batch.is_empty() {
                return;
            }
            let full = batch.len() == gantry_api_types::MAX_EVENTS_PER_BATCH;
            let mut req =
                self.http.post(format!("{}/api/v1/events", self.url)).bearer_auth(&self.token).json(&serde_json::json!({"events": batch}));
            if let Some(env) = &self.environment {
                req = req.header("gantry-environment", env);
            }
            let failed = match req.send().await {
                Ok(r) if r.status().is_success() => None,
                Ok(r) => Some(format!("events upload answered {}", r.status())),
                Err(e) => Some(format!("events upload failed: {e}")),
            };
            if let Some(why) = failed {
                shared.set_error(why);
                for e in batch {
                    shared.events.push(e);
                }
                return;
            }
            if !full {
                return;
            }
        }
    }

    async fn flush(&self, shared: &Shared) {
        self.flush_events(shared).await;
        let counts = shared.metrics.take();
        if counts.is_empty() {
            return;
        }
        let now = chrono_like_now();
        let toggles: serde_json::Map<String, serde_json::Value> = counts
            .iter()
            .map(|(k, (yes, no, variants))| (k.clone(), serde_json::json!({"yes": yes, "no": no, "variants": variants})))
            .collect();
        let body = serde_json::json!({
            "appName": self.app_name,
            "instanceId": "gantry-rust-sdk",
            "bucket": {"start": now, "stop": now, "toggles": toggles},
            "dropped": shared.metrics.dropped(),
        });
        let mut req = self.http.post(format!("{}/api/client/metrics", self.url)).bearer_auth(&self.token).json(&body);
        if let Some(env) = &self.environment {
            req = req.header("gantry-environment", env);
        }
        match req.send().await {
            Ok(r) if r.status().is_success() => {}
            Ok(r) => {
                shared.set_error(format!("metrics upload answered {}", r.status()));
                shared.metrics.restore(counts);
            }
            Err(e) => {
                shared.set_error(format!("metrics upload failed: {e}"));
                shared.metrics.restore(counts);
            }
        }
    }
}

fn chrono_like_now() -> String {
    // RFC 3339 without pulling in chrono: seconds precision is enough here.
    let secs = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0);
    let days = secs / 86_400;
    let (h, m, s) = ((secs / 3600) % 24, (secs / 60) % 60, secs % 60);
    // Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
    let z = days as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let mo = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = if mo <= 2 { y + 1 } else { y };
    format!("{y:04}-{mo:02}-{d:02}T{h:02}:{m:02}:{s:02}Z")
}

struct Conn {
    http: reqwest::Client,
    url: String,
    token: String,
    environment: Option<String>,
}

impl Conn {
    fn get(&self, path: &str) -> reqwest::RequestBuilder {
        let mut r = self.http.get(format!("{}{path}", self.url)).bearer_auth(&self.token);
        if let Some(env) = &self.environment {
            r = r.header("gantry-environment", env);
        }
        r
    }

    /// Fetches the configuration; `Ok(None)` = 304.
    async fn fetch(&self, etag: Option<&str>) -> Result<Option<(StreamSnapshot, Option<String>)>, String> {
        let mut req = self.get("/api/v1/config").timeout(Duration::from_secs(10));
        if let Some(e) = etag {
            req = req.header("if-none-match", e);
        }
        let r = req.send().await.map_err(|e| format!("fetching the configuration failed: {e}"))?;
        if r.status() == reqwest::StatusCode::NOT_MODIFIED {
            return Ok(None);
        }
        if !r.status().is_success() {
            return Err(format!("fetching the configuration answered {}", r.status()));
        }
        let etag = r.headers().get("etag").and_then(|v| v.to_str().ok()).map(str::to_owned);
        let snap = r.json::<StreamSnapshot>().await.map_err(|e| format!("configuration is not valid: {e}"))?;
        Ok(Some((snap, etag)))
    }
}

fn backoff(attempt: u32, max: Duration) -> Duration {
    // Full jitter over an exponential ceiling: 100 ms, 200 ms, 400 ms, ... up to `max`.
    let ceiling = Duration::from_millis(100u64.saturating_mul(1 << attempt.min(10))).min(max);
    let ms = rand::thread_rng().gen_range(ceiling.as_millis() as u64 / 2..=ceiling.as_millis() as u64);
    Duration::from_millis(ms.max(50))
}

pub(crate) fn start(shared: &Arc<Shared>, b: &Builder) {
    let (Some(url), Some(token)) = (b.url.clone(), b.token.clone()) else { return };
    let http = reqwest::Client::builder().connect_timeout(Duration::from_secs(5)).build().unwrap_or_default();
    let conn = Conn { http: http.clone(), url: url.clone(), token: token.clone(), environment: b.environment.clone() };
    let uploader = Uploader { http, url, token, app_name: b.app_name.clone(), environment: b.environment.clone() };
    *shared.uploader.lock().unwrap_or_else(|p| p.into_inner()) = Some(uploader.clone());
    let sync_task = tokio::spawn(sync_loop(shared.clone(), conn, b.poll_interval, b.max_backoff));
    let metrics_task = {
        let shared = shared.clone();
        let interval = b.metrics_interval;
        let mut stop = shared.stop.subscribe();
        tokio::spawn(async move {
            loop {
                tokio::select! {
                    _ = tokio::time::sleep(interval) => uploader.flush(&shared).await,
                    _ = stop.changed() => return,
                }
            }
        })
    };
    shared.tasks.lock().unwrap_or_else(|p| p.into_inner()).extend([sync_task, metrics_task]);
}

async fn sync_loop(shared: Arc<Shared>, conn: Conn, poll: Duration, max_backoff: Duration) {
    let mut stop = shared.stop.subscribe();
    let mut etag: Option<String> = None;
    // Initial fetch; with the server down, fall back to the cache file.
    match conn.fetch(None).await {
        Ok(Some((snap, e))) => {
            etag = e;
            shared.apply_snapshot(snap, Source::Server);
        }
        Ok(None) => {}
        Err(e) => {
            shared.set_error(e);
            if shared.load_cache() {
                tracing::info!("server unreachable: serving the cached configuration");
            }
        }
    }
    let mut attempt = 0u32;
    let mut last_poll = tokio::time::Instant::now();
    loop {
        if *stop.borrow() {
            return;
        }
        // Stream until it ends or fails.
        let connected = tokio::select! {
            r = stream_once(&shared, &conn) => r,
            _ = stop.changed() => return,
        };
        if connected {
            attempt = 0;
        }
        attempt = attempt.saturating_add(1);
        // While the stream is down, keep the configuration fresh by polling.
        if last_poll.elapsed() >= poll || attempt == 1 {
            last_poll = tokio::time::Instant::now();
            match conn.fetch(etag.as_deref()).await {
                Ok(Some((snap, e))) => {
                    etag = e;
                    if snap.revision != shared.current().snapshot.revision || shared.current().source != Source::Server {
                        shared.apply_snapshot(snap, Source::Server);
                    }
                }
                Ok(None) => {}
                Err(e) => shared.set_error(e),
            }
        }
        tokio::select! {
            _ = tokio::time::sleep(backoff(attempt, max_backoff)) => {}
            _ = stop.changed() => return,
        }
    }
}

/// One stream connection. Returns whether it connected.
async fn stream_once(shared: &Shared, conn: &Conn) -> bool {
    let current = shared.current();
    let mut req = conn.get("/api/v1/stream").header("accept", "text/event-stream");
    if current.source == Source::Server {
        req = req.header("last-event-id", current.snapshot.revision.to_string());
    }
    drop(current);
    let resp = match req.send().await {
        Ok(r) if r.status().is_success() => r,
        Ok(r) => {
            shared.set_error(format!("stream answered {}", r.status()));
            return false;
        }
        Err(e) => {
            shared.set_error(format!("stream connection failed: {e}"));
            return false;
        }
    };
    let mut body = resp.bytes_stream();
    let mut parser = SseParser::default();
    while let Some(chunk) = body.next().await {
        let Ok(chunk) = chunk else { break };
        for ev in parser.feed(&chunk) {
            match serde_json::from_str::<StreamEvent>(&ev.data) {
                Ok(e) => shared.apply_event(e),
                Err(e) => shared.set_error(format!("unreadable stream event `{}`: {e}", ev.event)),
            }
        }
    }
    true
}

pub(crate) async fn close(shared: &Shared) {
    shared.stop.send_replace(true);
    let tasks: Vec<_> = std::mem::take(&mut *shared.tasks.lock().unwrap_or_else(|p| p.into_inner()));
    for t in tasks {
        t.abort();
        let _ = t.await;
    }
    let uploader = shared.uploader.lock().unwrap_or_else(|p| p.into_inner()).clone();
    if let Some(u) = uploader {
        u.flush(shared).await;
    }
}
