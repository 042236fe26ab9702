//! Gantry's HTTP server: the admin API, OFREP, the Unleash client and
//! frontend APIs, live streams and operations endpoints, composed over one
//! [`AppState`] that is generic over the [`Store`].
//!
//! Design decision: evaluation never touches the database. Every write is
//! committed (with its audit entry) and then swapped into an in-memory view
//! per environment; readers load that view through an atomic pointer.
#![forbid(unsafe_code)]

pub mod admin;
pub mod dashboard;
pub mod error;
pub mod evaluation;
pub mod experiments;
pub mod extract;
pub mod maintenance;
pub mod metrics;
pub mod openapi;
pub mod ops;
pub mod release;
pub mod releases;
pub mod state;
pub mod stream;

use std::future::Future;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use axum::extract::{DefaultBodyLimit, MatchedPath, Request, State};
use axum::http::header;
use axum::middleware::{self, Next};
use axum::response::Response;
use axum::Router;
use gantry_core::Store;
use tower_http::cors::{Any, CorsLayer};

pub use state::AppState;

/// Runtime settings of the server (the CLI fills it from its layered config).
#[derive(Clone)]
pub struct ServerConfig {
    /// Extra admin token accepted as-is (`GANTRY_ADMIN_TOKEN`).
    pub admin_token: Option<String>,
    /// Stream heartbeat interval.
    pub heartbeat: Duration,
    /// How often usage counters are written to the store.
    pub usage_flush: Duration,
    /// How often the store is polled for changes made by other processes.
    pub reload_poll: Duration,
    /// Time limit for producing a response.
    pub request_timeout: Duration,
    /// Body size limit (bytes) for ordinary requests; imports allow 64 MiB.
    pub max_body_bytes: usize,
    /// Host name for `applicationHostname` rules.
    pub hostname: Option<String>,
    /// Frontend API: fill a missing `remoteAddress` with the caller's IP, as
    /// Unleash and Unleash Edge do.
    pub enrich_remote_address: bool,
    /// Events API: at most this many events wait for the writer (beyond: 429).
    pub max_pending_events: usize,
    /// How often the release controller ticks (rollouts advance, guardrails are measured).
    pub rollout_tick: Duration,
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            admin_token: None,
            heartbeat: Duration::from_secs(15),
            usage_flush: Duration::from_secs(10),
            reload_poll: Duration::from_secs(1),
            request_timeout: Duration::from_secs(30),
            max_body_bytes: 1 << 20,
            hostname: None,
            enrich_remote_address: true,
            max_pending_events: 1_000_000,
            rollout_tick: Duration::from_secs(10),
        }
    }
}

impl std::fmt::Debug for ServerConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServerConfig")
            .field("admin_token", &self.admin_token.as_ref().map(|_| "<redacted>"))
            .field("heartbeat", &self.heartbeat)
            .field("usage_flush", &self.usage_flush)
            .field("reload_poll", &self.reload_poll)
            .field("request_timeout", &self.request_timeout)
            .field("max_body_bytes", &self.max_body_bytes)
            .field("hostname", &self.hostname)
            .field("enrich_remote_address", &self.enrich_remote_address)
            .field("max_pending_events", &self.max_pending_events)
            .field("rollout_tick", &self.rollout_tick)
            .finish()
    }
}

async fn observe<St: Store>(State(app): State<AppState<St>>, req: Request, next: Next) -> Response {
    let route = req.extensions().get::<MatchedPath>().map(|m| m.as_str().to_owned()).unwrap_or_else(|| "unmatched".into());
    let method = req.method().as_str().to_owned();
    let start = Instant::now();
    let res = next.run(req).await;
    let secs = start.elapsed().as_secs_f64();
    app.metrics.observe_request(&route, &method, res.status().as_u16(), secs);
    tracing::debug!(http.route = %route, http.method = %method, http.status = res.status().as_u16(), latency_ms = secs * 1000.0, "request");
    res
}

/// Routes that read the raw body (OFREP, the Unleash APIs) get axum's
/// plain-text 413 when it is over the limit: answer with the error envelope
/// like every other error.
async fn envelope_plain_413(res: Response) -> Response {
    let plain = res.headers().get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).is_some_and(|c| c.starts_with("text/plain"));
    if res.status() == axum::http::StatusCode::PAYLOAD_TOO_LARGE && plain {
        let e = error::ApiError::new(gantry_api_types::ErrorCode::PayloadTooLarge, "the request body is larger than the limit");
        return axum::response::IntoResponse::into_response(e);
    }
    res
}

/// The whole application router.
pub fn router<St: Store>(state: AppState<St>) -> Router {
    let cors = CorsLayer::new()
        .allow_origin(Any)
        .allow_methods(Any)
        .allow_headers(Any)
        .expose_headers([header::ETAG])
        .max_age(Duration::from_secs(86_400));
    let limit = state.config.max_body_bytes;
    Router::new()
        .merge(admin::router::<St>())
        .merge(evaluation::router::<St>())
        .merge(experiments::api::router::<St>())
        .merge(release::api::router::<St>())
        .merge(stream::router::<St>())
        .merge(ops::router::<St>())
        .merge(maintenance::router::<St>())
        .merge(releases::router::<St>())
        .merge(dashboard::router::<St>())
        .route("/api/openapi.json", axum::routing::get(openapi::get_openapi))
        .fallback(ops::not_found)
        .method_not_allowed_fallback(|| async {
            error::ApiError::new(gantry_api_types::ErrorCode::MethodNotAllowed, "method not allowed on this route")
        })
        .layer(middleware::map_response(envelope_plain_413))
        .layer(DefaultBodyLimit::max(limit))
        .layer(middleware::from_fn_with_state(state.clone(), observe::<St>))
        .layer(tower_http::timeout::TimeoutLayer::with_status_code(
            axum::http::StatusCode::SERVICE_UNAVAILABLE,
            state.config.request_timeout,
        ))
        .layer(cors)
        .with_state(state)
}

/// Serves until `shutdown` resolves, then ends streams, drains requests and
/// flushes usage counters. The one entry point for `main` and tests.
pub async fn serve<St: Store>(
    state: AppState<St>,
    listener: tokio::net::TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let flusher = {
        let app = state.clone();
        tokio::spawn(async move {
            let stop = app.shutdown.clone();
            loop {
                tokio::select! {
                    _ = tokio::time::sleep(app.config.usage_flush) => {}
                    () = state::stopped(stop.clone()) => break,
                }
                if let Err(e) = app.flush_usage().await {
                    tracing::warn!(error = %e, "usage flush failed");
                }
            }
        })
    };
    let poller = {
        let app = state.clone();
        tokio::spawn(async move {
            let stop = app.shutdown.clone();
            loop {
                tokio::select! {
                    _ = tokio::time::sleep(app.config.reload_poll) => {}
                    () = state::stopped(stop.clone()) => break,
                }
                match app.reload_if_changed().await {
                    Ok(true) => tracing::info!(revision = app.views().revision, "reloaded changes made by another process"),
                    Ok(false) => {}
                    Err(e) => tracing::warn!(error = %e, "polling the store for changes failed"),
                }
            }
        })
    };
    // Dropping `serve` (an abort) also aborts the events writer, as a crash
    // would: it neither folds further nor saves a checkpoint.
    let mut writer = AbortOnDrop(tokio::spawn(experiments::run_writer(state.clone())));
    let mut controller = AbortOnDrop(tokio::spawn(release::controller::run(state.clone())));
    let app = router(state.clone());
    let st = state.clone();
    // Stream events are small writes: send them at once instead of waiting for
    // delayed ACKs (Nagle).
    let listener = axum::serve::ListenerExt::tap_io(listener, |tcp| {
        let _ = tcp.set_nodelay(true);
    });
    let result = axum::serve(listener, app.into_make_service_with_connect_info::<SocketAddr>())
        .with_graceful_shutdown(async move {
            shutdown.await;
            st.begin_shutdown();
        })
        .await;
    state.begin_shutdown();
    let _ = flusher.await;
    let _ = poller.await;
    let _ = (&mut writer.0).await;
    let _ = (&mut controller.0).await;
    if let Err(e) = state.flush_usage().await {
        tracing::warn!(error = %e, "final usage flush failed");
    }
    result
}

/// Aborts the task when dropped.
struct AbortOnDrop<T>(tokio::task::JoinHandle<T>);

impl<T> Drop for AbortOnDrop<T> {
    fn drop(&mut self) {
        self.0.abort();
    }
}
