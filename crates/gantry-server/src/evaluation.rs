//! Evaluation surfaces: OFREP (`/ofrep/v1`), the Unleash client API
//! (`/api/client`) and the Unleash frontend API (`/api/frontend`). All of
//! them evaluate against the in-memory compiled plan of the caller's
//! environment; none touches the database.

use std::net::SocketAddr;

use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use gantry_api_types::{ErrorCode, TokenKind, MAINTENANCE_FLAG};
use gantry_core::Store;
use gantry_engine::{Context, EvalInputs, Evaluation, FlagKind, Value};
use serde_json::{json, Map};
use sha2::{Digest, Sha256};

use crate::error::{ApiError, ApiResult};
use crate::extract::{environment_header, ClientAddr, Principal};
use crate::state::{AppState, EnvView};

/// Routes of the evaluation APIs.
pub fn router<St: Store>() -> Router<AppState<St>> {
    Router::new()
        .route("/ofrep/v1/evaluate/flags", post(ofrep_bulk::<St>))
        .route("/ofrep/v1/evaluate/flags/{key}", post(ofrep_single::<St>))
        .route("/api/client/features", get(client_features::<St>))
        .route("/api/client/features/{name}", get(client_feature::<St>))
        .route("/api/client/register", post(server_register::<St>))
        .route("/api/client/metrics", post(client_metrics::<St>))
        .route("/api/frontend", get(frontend_get::<St>).post(frontend_post::<St>))
        .route("/api/frontend/all", get(frontend_all_get::<St>).post(frontend_all_post::<St>))
        .route("/api/frontend/features/{name}", get(frontend_feature_get::<St>))
        .route("/api/frontend/client/metrics", post(frontend_metrics::<St>))
        .route("/api/frontend/client/register", post(client_register::<St>))
}

// === shared ===

fn inputs<St: Store>(app: &AppState<St>) -> EvalInputs {
    EvalInputs::new(app.clock.now_millis(), rand::random())
}

fn view<St: Store>(app: &AppState<St>, p: &Principal, headers: &HeaderMap) -> ApiResult<std::sync::Arc<EnvView>> {
    let env = p.evaluation_environment(environment_header(headers))?;
    app.views().env(&env).cloned().ok_or_else(|| ApiError::new(ErrorCode::EnvironmentNotFound, format!("environment `{env}` not found")))
}

fn count<'p, St: Store>(app: &AppState<St>, env: &str, evals: impl IntoIterator<Item = &'p Evaluation<'p>>) {
    let now = app.clock.now_millis();
    let mut u = app.usage.lock().unwrap_or_else(|p| p.into_inner());
    for ev in evals {
        if let Some(f) = ev.flag {
            u.count(env, f.key(), ev.enabled, Some(ev.unleash_variant().map_or("disabled", |v| &*v.name)), now, 1);
        }
    }
}

/// Server-side evaluations of a flag under a running experiment are
/// exposures of the evaluated unit (recorded once per unit, never blocking),
/// and sticky: a unit that already has an exposure in the experiment keeps
/// that variant even after the weights change (as long as the flag still
/// serves it a variant), so a mid-run weight change never reshuffles units
/// already assigned.
fn expose<St: Store>(app: &AppState<St>, env: &str, ctx: &Context, evals: &mut [Evaluation<'_>]) {
    let views = app.views.load();
    let Some(running) = views.running.get(env) else { return };
    let Some(unit) = ctx.standard(gantry_engine::StandardField::UserId) else { return };
    let now = app.clock.now_millis();
    for ev in evals {
        let Some(f) = ev.flag else { continue };
        let Some(exp) = running.get(f.key()) else { continue };
        if ev.variant.is_none() {
            continue;
        }
        if let Some(name) = app.events.assigned_variant(&views.experiment_index, env, exp, unit) {
            ev.stick_to_variant(&name);
        }
        if let Some(v) = ev.variant_name() {
            app.events.auto_exposure(env, exp, f.key(), v, unit, now);
        }
    }
}

fn strong_etag(body: &[u8]) -> String {
    format!("\"{}\"", hex::encode(&Sha256::digest(body)[..12]))
}

fn if_none_match(headers: &HeaderMap, etag: &str) -> bool {
    headers.get(header::IF_NONE_MATCH).and_then(|v| v.to_str().ok()).is_some_and(|v| {
        v.split(',').any(|t| {
            let t = t.trim();
            t == etag || t.strip_prefix("W/") == Some(etag) || t == "*"
        })
    })
}

/// 304 with the current ETag (RFC 9110 §15.4.5: a 304 carries the ETag a 200 would have).
fn not_modified(etag: &str) -> Response {
    let mut r = StatusCode::NOT_MODIFIED.into_response();
    if let Ok(v) = HeaderValue::from_str(etag) {
        r.headers_mut().insert(header::ETAG, v);
    }
    r
}

fn json_response(status: StatusCode, body: Vec<u8>, etag: Option<&str>) -> Response {
    let mut r = (status, body).into_response();
    r.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    if let Some(e) = etag.and_then(|e| HeaderValue::from_str(e).ok()) {
        r.headers_mut().insert(header::ETAG, e);
    }
    r
}

/// Reads a JSON body leniently: empty → `{}`; otherwise must be an object.
fn body_object(body: &Bytes) -> Result<serde_json::Value, String> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(json!({}));
    }
    let v: serde_json::Value = serde_json::from_slice(body).map_err(|e| format!("body is not valid JSON: {e}"))?;
    if v.is_object() {
        Ok(v)
    } else {
        Err("body must be a JSON object".into())
    }
}

// === OFREP ===

fn ofrep_context(body: &serde_json::Value, env: &str) -> Result<Context, String> {
    let ctx = match body.get("context") {
        None | Some(serde_json::Value::Null) => json!({}),
        Some(c @ serde_json::Value::Object(_)) => c.clone(),
        Some(_) => return Err("`context` must be an object".into()),
    };
    let mut c = Context::from_json(&ctx);
    if c.environment.is_none() {
        c.environment = Some(env.to_owned());
    }
    Ok(c)
}

fn ofrep_metadata(ev: &Evaluation<'_>) -> serde_json::Value {
    let mut m = Map::new();
    if let Some(f) = ev.flag {
        if let Some(p) = f.project() {
            m.insert("project".into(), p.into());
        }
    }
    if let Some(id) = ev.rule_id {
        m.insert("ruleId".into(), id.into());
    }
    if let Some(i) = ev.rule_index {
        m.insert("ruleIndex".into(), (i as u64).into());
    }
    if let Some(p) = ev.variant.and_then(|v| v.payload.as_ref()) {
        m.insert("payloadType".into(), p.kind.clone().into());
        m.insert("payload".into(), p.value.clone().into());
    }
    serde_json::Value::Object(m)
}

/// The OFREP success or per-flag error object of one evaluation.
fn ofrep_object(key: &str, ev: &Evaluation<'_>) -> serde_json::Value {
    if let Some(code) = ev.error {
        let details = match code {
            gantry_engine::ErrorCode::FlagNotFound => format!("flag `{key}` not found"),
            _ => ev.error_details().map(|d| format!("flag definition does not compile: {d}")).unwrap_or_else(|| "evaluation failed".into()),
        };
        let mut o = json!({"key": key, "errorCode": code.as_str(), "errorDetails": details, "reason": "ERROR"});
        if let (Some(v), Some(_)) = (ev.value(), ev.flag) {
            // The fallback value is still useful to clients that read it.
            o["value"] = v.to_json();
        }
        return o;
    }
    let variant = match (ev.variant_name(), ev.flag.map(|f| f.kind())) {
        (Some(n), _) => n.to_owned(),
        (None, Some(FlagKind::Boolean)) => if ev.enabled { "on" } else { "off" }.to_owned(),
        (None, _) => "default".to_owned(),
    };
    let mut o = json!({"key": key, "reason": ev.reason.as_str(), "variant": variant, "metadata": ofrep_metadata(ev)});
    if let Some(v) = ev.value() {
        o["value"] = match v {
            // Keep fractional numbers fractional on the wire (Python checks isinstance).
            Value::Float(f) => serde_json::Number::from_f64(f).map_or(serde_json::Value::Null, serde_json::Value::Number),
            other => other.to_json(),
        };
    }
    o
}

/// OFREP single-flag evaluation.
async fn ofrep_single<St: Store>(
    State(app): State<AppState<St>>,
    p: Principal,
    Path(key): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let view = match view(&app, &p, &headers) {
        Ok(v) => v,
        Err(e) => return e.into_response(),
    };
    let body = match body_object(&body) {
        Ok(b) => b,
        Err(msg) => {
            return (StatusCode::BAD_REQUEST, axum::Json(json!({"key": key, "errorCode": "PARSE_ERROR", "errorDetails": msg})))
                .into_response()
        }
    };
    let ctx = match ofrep_context(&body, &view.name) {
        Ok(c) => c,
        Err(msg) => {
            return (StatusCode::BAD_REQUEST, axum::Json(json!({"key": key, "errorCode": "INVALID_CONTEXT", "errorDetails": msg})))
                .into_response()
        }
    };
    if key == MAINTENANCE_FLAG && (view.maintenance.is_some() || view.plan.lookup(&key).is_none()) {
        return (StatusCode::OK, axum::Json(crate::maintenance::ofrep_object(&view, &ctx, inputs(&app)))).into_response();
    }
    let mut ev = view.plan.evaluate(&key, &ctx, inputs(&app));
    expose(&app, &view.name, &ctx, std::slice::from_mut(&mut ev));
    count(&app, &view.name, [&ev]);
    let obj = ofrep_object(&key, &ev);
    // OFREP single-flag failures are 4xx with `key` + `errorCode` (spec
    // §evaluationFailure). A 200 carrying `errorCode` is read as a success
    // by the JS provider (value served, code lost) and fails the Python
    // provider (no `variant`): both must see PARSE_ERROR.
    let status = match ev.error {
        Some(gantry_engine::ErrorCode::FlagNotFound) => StatusCode::NOT_FOUND,
        Some(_) => StatusCode::BAD_REQUEST,
        None => StatusCode::OK,
    };
    (status, axum::Json(obj)).into_response()
}

/// OFREP bulk evaluation, with ETag and 304.
async fn ofrep_bulk<St: Store>(State(app): State<AppState<St>>, p: Principal, headers: HeaderMap, body: Bytes) -> Response {
    let view = match view(&app, &p, &headers) {
        Ok(v) => v,
        Err(e) => return e.into_response(),
    };
    let ctx = match body_object(&body).and_then(|b| ofrep_context(&b, &view.name)) {
        Ok(c) => c,
        Err(msg) => {
            return (StatusCode::BAD_REQUEST, axum::Json(json!({"errorCode": "INVALID_CONTEXT", "errorDetails": msg}))).into_response()
        }
    };
    let inputs = inputs(&app);
    let mut evals = Vec::with_capacity(view.plan.len());
    view.plan.evaluate_all(&ctx, inputs, |ev| evals.push(ev));
    expose(&app, &view.name, &ctx, &mut evals);
    count(&app, &view.name, evals.iter());
    let mut flags: Vec<serde_json::Value> = evals.iter().filter_map(|ev| ev.flag.map(|f| ofrep_object(f.key(), ev))).collect();
    if view.maintenance.is_some() {
        flags.retain(|f| f["key"] != MAINTENANCE_FLAG);
        flags.push(crate::maintenance::ofrep_object(&view, &ctx, inputs));
    }
    let body = serde_json::to_vec(&json!({
        "flags": flags,
        "metadata": {"environment": view.name},
    }))
    .unwrap_or_default();
    let etag = strong_etag(&body);
    if if_none_match(&headers, &etag) {
        let mut r = StatusCode::NOT_MODIFIED.into_response();
        r.headers_mut().insert(header::ETAG, HeaderValue::from_str(&etag).unwrap_or(HeaderValue::from_static("\"\"")));
        return r;
    }
    json_response(StatusCode::OK, body, Some(&etag))
}

// === Unleash client API ===

fn require_server(p: &Principal) -> ApiResult<()> {
    match p.kind {
        TokenKind::Admin | TokenKind::Server => Ok(()),
        TokenKind::Client => Err(ApiError::forbidden("client tokens may only use the frontend and OFREP APIs; use a server token")),
    }
}

fn wants_inline_segments(headers: &HeaderMap) -> ApiResult<bool> {
    let Some(v) = headers.get("unleash-client-spec") else { return Ok(true) };
    let s = v.to_str().map_err(|_| ApiError::new(ErrorCode::InvalidHeader, "Unleash-Client-Spec is not text"))?.trim();
    let parts: Vec<u64> = s
        .split('.')
        .take(3)
        .map(|x| x.split(['-', '+']).next().unwrap_or("").parse::<u64>())
        .collect::<Result<_, _>>()
        .map_err(|_| ApiError::new(ErrorCode::InvalidHeader, "Unleash-Client-Spec must be a semantic version"))?;
    let (major, minor) = (parts.first().copied().unwrap_or(0), parts.get(1).copied().unwrap_or(0));
    Ok((major, minor) < (4, 2))
}

/// `GET /api/client/features`: the environment's configuration for server SDKs.
async fn client_features<St: Store>(
    State(app): State<AppState<St>>,
    p: Principal,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> ApiResult<Response> {
    require_server(&p)?;
    let view = view(&app, &p, &headers)?;
    let body = view.unleash_body(wants_inline_segments(&headers)?);
    let name_prefix = query.as_deref().and_then(|q| q.split('&').find_map(|kv| kv.strip_prefix("namePrefix="))).map(percent_decode);
    if let Some(prefix) = name_prefix {
        // Filtered responses are rendered per request.
        let mut doc: gantry_engine::unleash::ClientFeatures =
            serde_json::from_str(&body.json).map_err(|_| ApiError::new(ErrorCode::Internal, "render failed"))?;
        doc.features.retain(|f| f.name.starts_with(&prefix));
        let bytes = match &view.maintenance {
            Some(m) => {
                let mut v = serde_json::to_value(&doc).unwrap_or_default();
                if let Some(o) = v.as_object_mut() {
                    o.insert("maintenance".into(), serde_json::to_value(&m.state).unwrap_or_default());
                }
                serde_json::to_vec(&v).unwrap_or_default()
            }
            None => serde_json::to_vec(&doc).unwrap_or_default(),
        };
        let etag = strong_etag(&bytes);
        if if_none_match(&headers, &etag) {
            return Ok(not_modified(&etag));
        }
        return Ok(json_response(StatusCode::OK, bytes, Some(&etag)));
    }
    if if_none_match(&headers, &body.etag) {
        return Ok(not_modified(&body.etag));
    }
    Ok(json_response(StatusCode::OK, body.json.as_bytes().to_vec(), Some(&body.etag)))
}

/// `GET /api/client/features/{name}`: one toggle.
async fn client_feature<St: Store>(
    State(app): State<AppState<St>>,
    p: Principal,
    headers: HeaderMap,
    Path(name): Path<String>,
) -> ApiResult<Response> {
    require_server(&p)?;
    let view = view(&app, &p, &headers)?;
    let views = app.views();
    let flag = views.flags.get(&name).ok_or_else(|| ApiError::new(ErrorCode::FlagNotFound, format!("flag `{name}` not found")))?;
    Ok(axum::Json(gantry_engine::unleash::feature_from_native(&flag.flag, &view.name)).into_response())
}

/// `POST /api/client/register`: server SDKs only, like the rest of `/api/client`.
async fn server_register<St: Store>(
    State(app): State<AppState<St>>,
    p: Principal,
    headers: HeaderMap,
    body: Bytes,
) -> ApiResult<StatusCode> {
    require_server(&p)?;
    client_register(State(app), p, headers, body).await
}

/// `POST /api/frontend/client/register` (and, after its check, the client API's): accepted.
async fn client_register<St: Store>(
    State(app): State<AppState<St>>,
    p: Principal,
    headers: HeaderMap,
    body: Bytes,
) -> ApiResult<StatusCode> {
    let _ = view(&app, &p, &headers)?;
    let v = body_object(&body).map_err(|m| ApiError::new(ErrorCode::InvalidJson, m))?;
    if v.get("appName").and_then(|a| a.as_str()).is_none() {
        return Err(ApiError::new(ErrorCode::ValidationFailed, "`appName` is required"));
    }
    tracing::debug!(app.name = v["appName"].as_str().unwrap_or(""), "sdk registered");
    Ok(StatusCode::ACCEPTED)
}

fn ingest_metrics<St: Store>(app: &AppState<St>, env: &str, body: &Bytes) -> ApiResult<StatusCode> {
    let v = body_object(body).map_err(|m| ApiError::new(ErrorCode::InvalidJson, m))?;
    let Some(toggles) = v.get("bucket").and_then(|b| b.get("toggles")).and_then(|t| t.as_object()) else {
        return Ok(StatusCode::ACCEPTED);
    };
    let now = app.clock.now_millis();
    let known = app.views();
    let mut u = app.usage.lock().unwrap_or_else(|p| p.into_inner());
    for (name, t) in toggles {
        if !known.flags.contains_key(name) {
            continue;
        }
        let yes = t.get("yes").and_then(serde_json::Value::as_u64).unwrap_or(0);
        let no = t.get("no").and_then(serde_json::Value::as_u64).unwrap_or(0);
        if yes > 0 {
            u.count(env, name, true, None, now, yes);
        }
        if no > 0 {
            u.count(env, name, false, None, now, no);
        }
        if let Some(vars) = t.get("variants").and_then(|v| v.as_object()) {
            for (vn, n) in vars {
                let n = n.as_u64().unwrap_or(0);
                if n > 0 {
                    u.count_variant(env, name, vn, n);
                }
            }
        }
    }
    Ok(StatusCode::ACCEPTED)
}

/// `POST /api/client/metrics`: SDK usage counts feed the stale-flag signal.
async fn client_metrics<St: Store>(
    State(app): State<AppState<St>>,
    p: Principal,
    headers: HeaderMap,
    body: Bytes,
) -> ApiResult<StatusCode> {
    require_server(&p)?;
    let view = view(&app, &p, &headers)?;
    ingest_metrics(&app, &view.name, &body)
}

/// `POST /api/frontend/client/metrics`.
async fn frontend_metrics<St: Store>(
    State(app): State<AppState<St>>,
    p: Principal,
    headers: HeaderMap,
    body: Bytes,
) -> ApiResult<StatusCode> {
    let view = view(&app, &p, &headers)?;
    ingest_metrics(&app, &view.name, &body)
}

// === Unleash frontend API ===

fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < b.len() => match u8::from_str_radix(std::str::from_utf8(&b[i + 1..i + 3]).unwrap_or("zz"), 16) {
                Ok(v) => {
                    out.push(v);
                    i += 2;
                }
                Err(_) => out.push(b'%'),
            },
            c => out.push(c),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Context from the browser SDK's query string: top-level fields and
/// `properties[name]=value`; unknown parameters become properties.
fn context_from_query(query: Option<&str>) -> Context {
    let mut ctx = Context::new();
    for kv in query.unwrap_or("").split('&').filter(|s| !s.is_empty()) {
        let (k, v) = kv.split_once('=').unwrap_or((kv, ""));
        let (k, v) = (percent_decode(k), percent_decode(v));
        let name = k.strip_prefix("properties[").and_then(|r| r.strip_suffix(']')).unwrap_or(&k);
        ctx.set(name, v);
    }
    ctx
}

fn context_from_body(body: &Bytes) -> ApiResult<Context> {
    let v = body_object(body).map_err(|m| ApiError::new(ErrorCode::InvalidJson, m))?;
    let inner = match v.get("context") {
        Some(c) if c.is_object() => c.clone(),
        _ => v,
    };
    Ok(Context::from_json(&inner))
}

fn enrich(ctx: &mut Context, env: &str, addr: Option<SocketAddr>) {
    if ctx.remote_address.is_none() {
        // `addr` is None when enrichment is configured off.
        ctx.remote_address = addr.map(|a| a.ip().to_string());
    }
    if ctx.environment.is_none() {
        ctx.environment = Some(env.to_owned());
    }
}

fn toggle_json(ev: &Evaluation<'_>) -> serde_json::Value {
    let f = ev.flag.map(|f| (f.key(), f.impression_data())).unwrap_or(("", false));
    let variant = match ev.unleash_variant() {
        Some(v) => {
            let mut o = json!({"name": &*v.name, "enabled": true, "feature_enabled": true, "featureEnabled": true});
            if let Some(p) = &v.payload {
                o["payload"] = json!({"type": p.kind, "value": p.value});
            }
            o
        }
        None => json!({"name": "disabled", "enabled": false, "feature_enabled": ev.enabled, "featureEnabled": ev.enabled}),
    };
    json!({"name": f.0, "enabled": ev.enabled, "impressionData": f.1, "impression_data": f.1, "variant": variant})
}

/// Writes one toggle as JSON (same shape as [`toggle_json`]) without
/// building a `serde_json::Value`.
fn write_toggle(out: &mut Vec<u8>, ev: &Evaluation<'_>) {
    let (name, impression) = ev.flag.map(|f| (f.key(), f.impression_data())).unwrap_or(("", false));
    let tf = |b: bool| if b { "true" } else { "false" };
    let s = |out: &mut Vec<u8>, v: &str| {
        let _ = serde_json::to_writer(&mut *out, v);
    };
    out.extend_from_slice(b"{\"name\":");
    s(out, name);
    out.extend_from_slice(b",\"enabled\":");
    out.extend_from_slice(tf(ev.enabled).as_bytes());
    out.extend_from_slice(b",\"impressionData\":");
    out.extend_from_slice(tf(impression).as_bytes());
    out.extend_from_slice(b",\"impression_data\":");
    out.extend_from_slice(tf(impression).as_bytes());
    out.extend_from_slice(b",\"variant\":{\"name\":");
    match ev.unleash_variant() {
        Some(v) => {
            s(out, &v.name);
            out.extend_from_slice(b",\"enabled\":true,\"feature_enabled\":true,\"featureEnabled\":true");
            if let Some(p) = &v.payload {
                out.extend_from_slice(b",\"payload\":{\"type\":");
                s(out, &p.kind);
                out.extend_from_slice(b",\"value\":");
                s(out, &p.value);
                out.push(b'}');
            }
        }
        None => {
            out.extend_from_slice(b"\"disabled\",\"enabled\":false,\"feature_enabled\":");
            out.extend_from_slice(tf(ev.enabled).as_bytes());
            out.extend_from_slice(b",\"featureEnabled\":");
            out.extend_from_slice(tf(ev.enabled).as_bytes());
        }
    }
    out.extend_from_slice(b"}}");
}

/// A cheap strong ETag for per-context responses (change detection only).
fn fast_etag(body: &[u8]) -> String {
    use std::hash::BuildHasher;
    let h = foldhash::fast::FixedState::with_seed(0x6761_6e74_7279).hash_one(body);
    format!("\"{h:016x}-{}\"", body.len())
}

fn frontend_response<St: Store>(app: &AppState<St>, view: &EnvView, ctx: &Context, headers: &HeaderMap, all: bool) -> Response {
    let inputs = inputs(app);
    let mut evals = Vec::with_capacity(view.plan.len());
    view.plan.evaluate_all(ctx, inputs, |ev| evals.push(ev));
    expose(app, &view.name, ctx, &mut evals);
    count(app, &view.name, evals.iter());
    let mut body = Vec::with_capacity(64 + evals.len() * 160);
    body.extend_from_slice(b"{\"toggles\":[");
    let mut first = true;
    let maintenance = crate::maintenance::frontend_toggle(view, ctx, inputs);
    for ev in evals.iter().filter(|ev| all || ev.enabled) {
        if view.maintenance.is_some() && ev.flag.is_some_and(|f| f.key() == MAINTENANCE_FLAG) {
            continue;
        }
        if !first {
            body.push(b',');
        }
        first = false;
        write_toggle(&mut body, ev);
    }
    if let Some(t) = maintenance {
        if !first {
            body.push(b',');
        }
        let _ = serde_json::to_writer(&mut body, &t);
    }
    body.extend_from_slice(b"]}");
    let etag = fast_etag(&body);
    if if_none_match(headers, &etag) {
        return not_modified(&etag);
    }
    let mut r = json_response(StatusCode::OK, body, Some(&etag));
    r.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    r
}

async fn frontend<St: Store>(
    app: AppState<St>,
    p: Principal,
    headers: HeaderMap,
    mut ctx: Context,
    addr: Option<SocketAddr>,
    all: bool,
) -> ApiResult<Response> {
    let view = view(&app, &p, &headers)?;
    enrich(&mut ctx, &view.name, addr.filter(|_| app.config.enrich_remote_address));
    Ok(frontend_response(&app, &view, &ctx, &headers, all))
}

/// `GET /api/frontend`: enabled flags for the context in the query.
async fn frontend_get<St: Store>(
    State(app): State<AppState<St>>,
    p: Principal,
    headers: HeaderMap,
    RawQuery(q): RawQuery,
    ClientAddr(addr): ClientAddr,
) -> ApiResult<Response> {
    frontend(app, p, headers, context_from_query(q.as_deref()), addr, false).await
}

/// `POST /api/frontend`: enabled flags for the context in the body.
async fn frontend_post<St: Store>(
    State(app): State<AppState<St>>,
    p: Principal,
    headers: HeaderMap,
    ClientAddr(addr): ClientAddr,
    body: Bytes,
) -> ApiResult<Response> {
    let ctx = context_from_body(&body)?;
    frontend(app, p, headers, ctx, addr, false).await
}

/// `GET /api/frontend/all`: every flag, enabled or not.
async fn frontend_all_get<St: Store>(
    State(app): State<AppState<St>>,
    p: Principal,
    headers: HeaderMap,
    RawQuery(q): RawQuery,
    ClientAddr(addr): ClientAddr,
) -> ApiResult<Response> {
    frontend(app, p, headers, context_from_query(q.as_deref()), addr, true).await
}

/// `POST /api/frontend/all`.
async fn frontend_all_post<St: Store>(
    State(app): State<AppState<St>>,
    p: Principal,
    headers: HeaderMap,
    ClientAddr(addr): ClientAddr,
    body: Bytes,
) -> ApiResult<Response> {
    let ctx = context_from_body(&body)?;
    frontend(app, p, headers, ctx, addr, true).await
}

/// `GET /api/frontend/features/{name}`: one flag (404 when unknown).
async fn frontend_feature_get<St: Store>(
    State(app): State<AppState<St>>,
    p: Principal,
    headers: HeaderMap,
    Path(name): Path<String>,
    RawQuery(q): RawQuery,
    ClientAddr(addr): ClientAddr,
) -> ApiResult<Response> {
    let view = view(&app, &p, &headers)?;
    let mut ctx = context_from_query(q.as_deref());
    enrich(&mut ctx, &view.name, addr.filter(|_| app.config.enrich_remote_address));
    if name == MAINTENANCE_FLAG && view.maintenance.is_some() {
        return crate::maintenance::frontend_toggle(&view, &ctx, inputs(&app))
            .map(|t| axum::Json(t).into_response())
            .ok_or_else(|| ApiError::new(ErrorCode::FlagNotFound, format!("flag `{name}` is not enabled for this context")));
    }
    let ev = view.plan.evaluate(&name, &ctx, inputs(&app));
    if ev.flag.is_none() {
        return Err(ApiError::new(ErrorCode::FlagNotFound, format!("flag `{name}` not found")));
    }
    count(&app, &view.name, [&ev]);
    Ok(axum::Json(toggle_json(&ev)).into_response())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_context_parses_browser_sdk_encoding() {
        let c = context_from_query(Some("userId=u%201&appName=web&properties%5Bplan%5D=gold&properties[beta]=on&country=NO"));
        assert_eq!(c.user_id.as_deref(), Some("u 1"));
        assert_eq!(c.app_name.as_deref(), Some("web"));
        assert_eq!(c.property("plan"), Some("gold"));
        assert_eq!(c.property("beta"), Some("on"));
        assert_eq!(c.property("country"), Some("NO"));
    }

    #[test]
    fn written_toggles_equal_the_value_rendering() {
        let set: gantry_engine::FlagSet = serde_json::from_value(json!({"flags": [
            {"key": "a\"b", "impression_data": true, "variants": [{"name": "v", "weight": 1, "payload": {"type": "string", "value": "x\ny"}}],
             "environments": {"e": {"enabled": true}}},
            {"key": "off", "environments": {"e": {"enabled": false}}},
            {"key": "plain", "environments": {"e": {"enabled": true}}}
        ]}))
        .unwrap();
        let plan = gantry_engine::Plan::compile(&set, &gantry_engine::CompileOptions::for_environment("e"));
        plan.evaluate_all(&Context::new(), EvalInputs::new(0, 1), |ev| {
            let mut out = Vec::new();
            write_toggle(&mut out, &ev);
            let written: serde_json::Value = serde_json::from_slice(&out).unwrap();
            assert_eq!(written, toggle_json(&ev));
        });
    }

    #[test]
    fn percent_decoding_is_lenient() {
        assert_eq!(percent_decode("a%20b+c"), "a b c");
        assert_eq!(percent_decode("100%"), "100%");
        assert_eq!(percent_decode("%zz"), "%zz");
        assert_eq!(percent_decode("%C3%B8"), "ø");
    }
}
