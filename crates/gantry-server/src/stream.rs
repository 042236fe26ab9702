//! Live updates over server-sent events: the native stream
//! (`/api/v1/stream`: a snapshot, then changes, `Last-Event-ID` resume,
//! heartbeats) and the OFREP change notification (`/ofrep/v1/events`).

use std::convert::Infallible;
use std::sync::atomic::Ordering;
use std::time::Duration;

use axum::extract::{Query, State};
use axum::http::HeaderMap;
use axum::response::sse::{Event, KeepAlive, KeepAliveStream, Sse};
use axum::routing::get;
use axum::Router;
use gantry_api_types::{ErrorCode, StreamEvent, TokenKind};
use gantry_core::Store;
use serde::Deserialize;
use tokio::sync::{broadcast, mpsc};
use tokio_stream::wrappers::ReceiverStream;

use crate::error::{ApiError, ApiResult};
use crate::extract::{environment_header, Principal};
use crate::state::AppState;

/// Routes of the streams.
pub fn router<St: Store>() -> Router<AppState<St>> {
    Router::new()
        .route("/api/v1/config", get(get_config::<St>))
        .route("/api/v1/stream", get(stream_changes::<St>))
        .route("/ofrep/v1/events", get(ofrep_events::<St>))
}

/// Query of the native stream.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct StreamParams {
    /// Environment (admin tokens; server tokens use their own).
    environment: Option<String>,
}

type SseStream = Sse<KeepAliveStream<ReceiverStream<Result<Event, Infallible>>>>;

fn to_sse(e: &StreamEvent) -> Event {
    Event::default().event(e.name()).id(e.revision().to_string()).data(serde_json::to_string(e).unwrap_or_default())
}

struct ClientGauge<'a>(&'a std::sync::atomic::AtomicI64);

impl Drop for ClientGauge<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

fn last_event_id(headers: &HeaderMap) -> Option<i64> {
    headers.get("last-event-id").and_then(|v| v.to_str().ok()).and_then(|s| s.trim().parse().ok())
}

/// The environment's whole configuration for SDKs (the stream's snapshot),
/// with an ETag of its revision; `If-None-Match` gives 304.
async fn get_config<St: Store>(
    State(app): State<AppState<St>>,
    p: Principal,
    headers: HeaderMap,
    q: Result<Query<StreamParams>, axum::extract::rejection::QueryRejection>,
) -> ApiResult<axum::response::Response> {
    use axum::response::IntoResponse;
    let Query(q) = q.map_err(|e| ApiError::new(ErrorCode::InvalidQuery, e.body_text()))?;
    if p.kind == TokenKind::Client {
        return Err(ApiError::forbidden("client tokens see evaluated results only; the configuration needs a server token"));
    }
    let env = p.evaluation_environment(q.environment.as_deref().or(environment_header(&headers)))?;
    let Some(StreamEvent::Snapshot(snap)) = app.snapshot_event(&env) else {
        return Err(ApiError::new(ErrorCode::EnvironmentNotFound, format!("environment `{env}` not found")));
    };
    let etag = format!("\"{}-{}\"", snap.revision, env);
    let matches = headers.get("if-none-match").and_then(|v| v.to_str().ok()).is_some_and(|v| v.split(',').any(|t| t.trim() == etag));
    let mut res = if matches { axum::http::StatusCode::NOT_MODIFIED.into_response() } else { axum::Json(&snap).into_response() };
    if let Ok(v) = axum::http::HeaderValue::from_str(&etag) {
        res.headers_mut().insert(axum::http::header::ETAG, v);
    }
    Ok(res)
}

/// The native change stream of one environment.
async fn stream_changes<St: Store>(
    State(app): State<AppState<St>>,
    p: Principal,
    headers: HeaderMap,
    q: Result<Query<StreamParams>, axum::extract::rejection::QueryRejection>,
) -> ApiResult<SseStream> {
    let Query(q) = q.map_err(|e| ApiError::new(ErrorCode::InvalidQuery, e.body_text()))?;
    if p.kind == TokenKind::Client {
        return Err(ApiError::forbidden("client tokens see evaluated results only; the stream needs a server token"));
    }
    let env = p.evaluation_environment(q.environment.as_deref().or(environment_header(&headers)))?;
    if app.views().env(&env).is_none() {
        return Err(ApiError::new(ErrorCode::EnvironmentNotFound, format!("environment `{env}` not found")));
    }
    // Subscribe before reading the snapshot so nothing falls in between.
    let mut rx = app.changes.subscribe();
    let resume = last_event_id(&headers);
    let (tx, out) = mpsc::channel::<Result<Event, Infallible>>(64);
    let task_app = app.clone();
    tokio::spawn(async move {
        let app = task_app;
        app.metrics.stream_clients.fetch_add(1, Ordering::Relaxed);
        let _gauge = ClientGauge(&app.metrics.stream_clients);
        let shutdown = app.shutdown.clone();
        let mut sent = match resume.and_then(|id| app.changes_since(id).map(|c| (id, c))) {
            Some((id, changes)) => {
                let mut rev = id;
                for p in changes {
                    match p.events_for(&env) {
                        Some(events) => {
                            for e in &events {
                                if tx.send(Ok(to_sse(e))).await.is_err() {
                                    return;
                                }
                            }
                        }
                        None => match app.snapshot_event(&env) {
                            Some(s) => {
                                if tx.send(Ok(to_sse(&s))).await.is_err() {
                                    return;
                                }
                            }
                            None => return,
                        },
                    }
                    rev = p.revision;
                }
                rev
            }
            None => match app.snapshot_event(&env) {
                Some(s) => {
                    let rev = s.revision();
                    if tx.send(Ok(to_sse(&s))).await.is_err() {
                        return;
                    }
                    rev
                }
                None => return,
            },
        };
        loop {
            tokio::select! {
                () = crate::state::stopped(shutdown.clone()) => return,
                () = tx.closed() => return,
                msg = rx.recv() => {
                    let events = match msg {
                        Ok(p) if p.revision <= sent => continue,
                        Ok(p) => {
                            sent = p.revision;
                            p.events_for(&env)
                        }
                        Err(broadcast::error::RecvError::Lagged(_)) => None,
                        Err(broadcast::error::RecvError::Closed) => return,
                    };
                    let events = match events {
                        Some(e) => e,
                        None => match app.snapshot_event(&env) {
                            Some(s) => {
                                sent = s.revision();
                                vec![s]
                            }
                            None => return,
                        },
                    };
                    for e in &events {
                        if tx.send(Ok(to_sse(e))).await.is_err() {
                            return;
                        }
                    }
                }
            }
        }
    });
    Ok(Sse::new(ReceiverStream::new(out)).keep_alive(KeepAlive::new().interval(app.config.heartbeat).text("heartbeat")))
}

/// OFREP change notification: `refetchEvaluation` on every configuration change.
async fn ofrep_events<St: Store>(State(app): State<AppState<St>>, p: Principal, headers: HeaderMap) -> ApiResult<SseStream> {
    let env = p.evaluation_environment(environment_header(&headers))?;
    if app.views().env(&env).is_none() {
        return Err(ApiError::new(ErrorCode::EnvironmentNotFound, format!("environment `{env}` not found")));
    }
    let mut rx = app.changes.subscribe();
    let (tx, out) = mpsc::channel::<Result<Event, Infallible>>(16);
    let task_app = app;
    tokio::spawn(async move {
        let app = task_app;
        app.metrics.stream_clients.fetch_add(1, Ordering::Relaxed);
        let _gauge = ClientGauge(&app.metrics.stream_clients);
        let shutdown = app.shutdown.clone();
        loop {
            tokio::select! {
                () = crate::state::stopped(shutdown.clone()) => return,
                () = tx.closed() => return,
                msg = rx.recv() => {
                    let rev = match msg {
                        Ok(p) => p.revision,
                        Err(broadcast::error::RecvError::Lagged(_)) => app.views().revision,
                        Err(broadcast::error::RecvError::Closed) => return,
                    };
                    let data = serde_json::json!({"type": "refetchEvaluation", "etag": rev.to_string(), "lastModified": app.clock.now().timestamp()});
                    if tx.send(Ok(Event::default().event("message").id(rev.to_string()).data(data.to_string()))).await.is_err() {
                        return;
                    }
                }
            }
        }
    });
    Ok(Sse::new(ReceiverStream::new(out)).keep_alive(KeepAlive::new().interval(Duration::from_secs(30))))
}
