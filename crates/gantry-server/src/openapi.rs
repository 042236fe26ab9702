//! The OpenAPI 3.1 document (`GET /api/openapi.json`), generated from one
//! route table. A test calls every route in the table against the real
//! router, so the document cannot list a route that does not exist; the
//! document itself is snapshot-tested so every API change shows in review.

use serde_json::{json, Map, Value};

/// Who may call a route.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// No token.
    Public,
    /// Admin tokens.
    Admin,
    /// Admin or server tokens.
    Server,
    /// Any valid token.
    AnyToken,
}

/// One documented route.
#[derive(Debug, Clone, Copy)]
pub struct RouteDoc {
    /// HTTP method (lower case).
    pub method: &'static str,
    /// Path template (`{key}` parameters).
    pub path: &'static str,
    /// One-line summary.
    pub summary: &'static str,
    /// Access.
    pub access: Access,
    /// Request body schema name, if any.
    pub body: Option<&'static str>,
    /// Success status.
    pub ok: u16,
}

const fn r(
    method: &'static str,
    path: &'static str,
    summary: &'static str,
    access: Access,
    body: Option<&'static str>,
    ok: u16,
) -> RouteDoc {
    RouteDoc { method, path, summary, access, body, ok }
}

/// Every route Gantry serves.
pub const ROUTES: &[RouteDoc] = &[
    r("get", "/api/v1/projects", "List projects", Access::Admin, None, 200),
    r("get", "/api/v1/environments", "List environments", Access::Admin, None, 200),
    r("post", "/api/v1/environments", "Create an environment", Access::Admin, Some("Environment"), 201),
    r("get", "/api/v1/environments/{name}", "Read an environment", Access::Admin, None, 200),
    r("put", "/api/v1/environments/{name}", "Replace an environment (If-Match)", Access::Admin, Some("Environment"), 200),
    r("delete", "/api/v1/environments/{name}", "Delete an environment", Access::Admin, None, 204),
    r("get", "/api/v1/flags", "List flags (q, tag, limit, cursor)", Access::Admin, None, 200),
    r("post", "/api/v1/flags", "Create a flag", Access::Admin, Some("Flag"), 201),
    r("get", "/api/v1/flags/{key}", "Read a flag (ETag)", Access::Admin, None, 200),
    r("put", "/api/v1/flags/{key}", "Replace a flag (If-Match)", Access::Admin, Some("Flag"), 200),
    r("delete", "/api/v1/flags/{key}", "Delete a flag (If-Match)", Access::Admin, None, 204),
    r(
        "put",
        "/api/v1/flags/{key}/environments/{env}",
        "Replace a flag's configuration in one environment",
        Access::Admin,
        Some("EnvironmentConfig"),
        200,
    ),
    r("post", "/api/v1/flags/{key}/environments/{env}/on", "Switch a flag on in one environment", Access::Admin, None, 200),
    r("post", "/api/v1/flags/{key}/environments/{env}/off", "Switch a flag off in one environment (kill switch)", Access::Admin, None, 200),
    r("get", "/api/v1/flags/{key}/usage", "Usage of a flag per environment (stale-flag signal)", Access::Admin, None, 200),
    r("get", "/api/v1/segments", "List segments", Access::Admin, None, 200),
    r("post", "/api/v1/segments", "Create a segment", Access::Admin, Some("Segment"), 201),
    r("get", "/api/v1/segments/{id}", "Read a segment", Access::Admin, None, 200),
    r("put", "/api/v1/segments/{id}", "Replace a segment (If-Match)", Access::Admin, Some("Segment"), 200),
    r("delete", "/api/v1/segments/{id}", "Delete an unused segment", Access::Admin, None, 204),
    r("get", "/api/v1/tokens", "List API tokens (never secrets)", Access::Admin, None, 200),
    r("post", "/api/v1/tokens", "Create an API token (secret shown once)", Access::Admin, Some("CreateTokenRequest"), 201),
    r("delete", "/api/v1/tokens/{id}", "Revoke an API token", Access::Admin, None, 204),
    r("get", "/api/v1/audit", "List audit entries, newest first", Access::Admin, None, 200),
    r("get", "/api/v1/audit/verify", "Verify the audit hash chain", Access::Admin, None, 200),
    r("get", "/api/v1/export", "Export environments, flags and segments", Access::Admin, None, 200),
    r("post", "/api/v1/import", "Import an export document", Access::Admin, Some("ExportDocument"), 200),
    r(
        "post",
        "/api/v1/import/unleash",
        "Import an Unleash client-features document into an environment",
        Access::Admin,
        Some("UnleashClientFeatures"),
        200,
    ),
    r("get", "/api/v1/usage", "Usage of every flag", Access::Admin, None, 200),
    r("get", "/api/v1/experiments", "List experiments", Access::Admin, None, 200),
    r("post", "/api/v1/experiments", "Create an experiment (draft)", Access::Admin, Some("Experiment"), 201),
    r("get", "/api/v1/experiments/{key}", "Read an experiment (ETag)", Access::Admin, None, 200),
    r("put", "/api/v1/experiments/{key}", "Replace an experiment's definition (If-Match)", Access::Admin, Some("Experiment"), 200),
    r("delete", "/api/v1/experiments/{key}", "Delete an experiment that is not running", Access::Admin, None, 204),
    r("post", "/api/v1/experiments/{key}/start", "Start an experiment", Access::Admin, None, 200),
    r("post", "/api/v1/experiments/{key}/stop", "Stop an experiment", Access::Admin, None, 200),
    r("get", "/api/v1/experiments/{key}/results", "Results per metric and variant, SRM check, verdicts", Access::Admin, None, 200),
    r("get", "/api/v1/rollouts", "List rollouts", Access::Admin, None, 200),
    r(
        "post",
        "/api/v1/rollouts",
        "Create a rollout on a flag in an environment (starts it unless start: false)",
        Access::Admin,
        Some("CreateRolloutRequest"),
        201,
    ),
    r("get", "/api/v1/rollouts/{environment}/{flag}", "Read a rollout: plan, state, next wake-up (ETag)", Access::Admin, None, 200),
    r("delete", "/api/v1/rollouts/{environment}/{flag}", "Delete a rollout that is not running (If-Match)", Access::Admin, None, 204),
    r(
        "post",
        "/api/v1/rollouts/{environment}/{flag}/promote",
        "Go to the next step now ({full: true}: to the end)",
        Access::Admin,
        None,
        200,
    ),
    r("post", "/api/v1/rollouts/{environment}/{flag}/pause", "Pause a rollout", Access::Admin, None, 200),
    r("post", "/api/v1/rollouts/{environment}/{flag}/resume", "Resume (or start) a rollout", Access::Admin, None, 200),
    r("post", "/api/v1/rollouts/{environment}/{flag}/abort", "Abort a rollout: the flag goes back to 0 %", Access::Admin, None, 200),
    r("post", "/api/v1/rollouts/{environment}/{flag}/retry", "Start a rolled-back or aborted rollout over", Access::Admin, None, 200),
    r("get", "/api/v1/schedules", "List scheduled changes", Access::Admin, None, 200),
    r(
        "post",
        "/api/v1/schedules",
        "Schedule timed changes or a calendar ramp of a flag",
        Access::Admin,
        Some("CreateScheduleRequest"),
        201,
    ),
    r("get", "/api/v1/schedules/{key}", "Read a schedule (ETag)", Access::Admin, None, 200),
    r("delete", "/api/v1/schedules/{key}", "Delete a schedule (If-Match)", Access::Admin, None, 204),
    r("get", "/api/v1/alert-rules", "List alert rules with their states", Access::Admin, None, 200),
    r(
        "post",
        "/api/v1/alert-rules",
        "Create an alert rule (for, keep-firing, labels, actions)",
        Access::Admin,
        Some("AlertRuleRequest"),
        201,
    ),
    r("get", "/api/v1/alert-rules/{name}", "Read an alert rule and its state (ETag)", Access::Admin, None, 200),
    r("delete", "/api/v1/alert-rules/{name}", "Delete an alert rule (If-Match)", Access::Admin, None, 204),
    r("get", "/api/v1/notifiers", "List notifier channels (URL origins only)", Access::Admin, None, 200),
    r(
        "post",
        "/api/v1/notifiers",
        "Create a notifier: webhook (Alertmanager v4 body) or Slack",
        Access::Admin,
        Some("NotifierRequest"),
        201,
    ),
    r("get", "/api/v1/notifiers/{key}", "Read a notifier with its delivery counters", Access::Admin, None, 200),
    r("delete", "/api/v1/notifiers/{key}", "Delete a notifier (If-Match)", Access::Admin, None, 204),
    r("get", "/api/v1/triggers", "List inbound triggers (never their secrets)", Access::Admin, None, 200),
    r(
        "post",
        "/api/v1/triggers",
        "Create an inbound trigger: its secret URL is shown once",
        Access::Admin,
        Some("CreateTriggerRequest"),
        201,
    ),
    r("delete", "/api/v1/triggers/{id}", "Revoke an inbound trigger", Access::Admin, None, 204),
    r("post", "/api/v1/triggers/hook/{secret}", "Fire a trigger (the secret in the path is the credential)", Access::Public, None, 202),
    r(
        "get",
        "/api/v1/experiments/{key}/results/history",
        "Results over time (cumulative by first exposure), for lift charts",
        Access::Admin,
        None,
        200,
    ),
    r(
        "post",
        "/api/v1/events",
        "Ingest exposure and track events (202 when durable; 429 when busy)",
        Access::AnyToken,
        Some("EventBatch"),
        202,
    ),
    r("get", "/api/v1/config", "The environment's configuration for SDKs (ETag, 304)", Access::Server, None, 200),
    r("get", "/api/v1/stream", "Server-sent events: snapshot, then changes", Access::Server, None, 200),
    r("post", "/ofrep/v1/evaluate/flags", "OFREP: evaluate every flag (ETag, 304)", Access::AnyToken, Some("OfrepRequest"), 200),
    r("post", "/ofrep/v1/evaluate/flags/{key}", "OFREP: evaluate one flag", Access::AnyToken, Some("OfrepRequest"), 200),
    r("get", "/ofrep/v1/events", "OFREP change notification (SSE refetchEvaluation)", Access::AnyToken, None, 200),
    r("get", "/api/client/features", "Unleash client API: configuration for server SDKs", Access::Server, None, 200),
    r("get", "/api/client/features/{name}", "Unleash client API: one toggle", Access::Server, None, 200),
    r("post", "/api/client/register", "Unleash client API: SDK registration", Access::Server, Some("UnleashRegistration"), 202),
    r("post", "/api/client/metrics", "Unleash client API: SDK usage metrics", Access::Server, Some("UnleashMetrics"), 202),
    r("get", "/api/frontend", "Unleash frontend API: enabled flags for a context (query)", Access::AnyToken, None, 200),
    r("post", "/api/frontend", "Unleash frontend API: enabled flags for a context (body)", Access::AnyToken, Some("UnleashContext"), 200),
    r("get", "/api/frontend/all", "Unleash frontend API: every flag for a context (query)", Access::AnyToken, None, 200),
    r("post", "/api/frontend/all", "Unleash frontend API: every flag for a context (body)", Access::AnyToken, Some("UnleashContext"), 200),
    r("get", "/api/frontend/features/{name}", "Unleash frontend API: one flag", Access::AnyToken, None, 200),
    r("post", "/api/frontend/client/metrics", "Unleash frontend API: usage metrics", Access::AnyToken, Some("UnleashMetrics"), 202),
    r("post", "/api/frontend/client/register", "Unleash frontend API: registration", Access::AnyToken, Some("UnleashRegistration"), 202),
    r("get", "/api/v1/environments/{name}/maintenance", "Read an environment's maintenance mode (ETag)", Access::Admin, None, 200),
    r(
        "put",
        "/api/v1/environments/{name}/maintenance",
        "Replace an environment's maintenance mode (If-Match)",
        Access::Admin,
        Some("Maintenance"),
        200,
    ),
    r("get", "/api/v1/status", "Public status: health and maintenance per environment", Access::Public, None, 200),
    r(
        "post",
        "/api/v1/apps/{app}/releases",
        "Record a deployed version (admin, or a server token of its environment)",
        Access::Server,
        Some("RecordRelease"),
        201,
    ),
    r("get", "/api/v1/apps/{app}/releases", "Release history, newest first (environment, limit, cursor)", Access::Server, None, 200),
    r("get", "/api/v1/apps/{app}/version", "Is there an update? Latest version vs current (ETag, 304)", Access::AnyToken, None, 200),
    r("get", "/health", "Liveness (application/health+json)", Access::Public, None, 200),
    r("get", "/ready", "Readiness (application/health+json)", Access::Public, None, 200),
    r("get", "/metrics", "Prometheus metrics", Access::Public, None, 200),
    r("get", "/api/openapi.json", "This document", Access::Public, None, 200),
];

fn error_codes() -> Value {
    let rows: Vec<Value> = gantry_api_types::ErrorCode::ALL.iter().map(|c| json!({"code": c.as_str(), "status": c.status()})).collect();
    Value::Array(rows)
}

/// The whole document.
pub fn document() -> Value {
    let mut paths = Map::new();
    for route in ROUTES {
        let entry = paths.entry(route.path.to_owned()).or_insert_with(|| json!({}));
        let params: Vec<Value> = route
            .path
            .split('/')
            .filter_map(|seg| seg.strip_prefix('{').and_then(|s| s.strip_suffix('}')))
            .map(|name| json!({"name": name, "in": "path", "required": true, "schema": {"type": "string"}}))
            .collect();
        let security = match route.access {
            Access::Public => json!([]),
            Access::Admin => json!([{"bearer": ["admin"]}]),
            Access::Server => json!([{"bearer": ["admin", "server"]}, {"rawToken": ["admin", "server"]}]),
            Access::AnyToken => json!([{"bearer": []}, {"rawToken": []}, {"apiKey": []}]),
        };
        let mut op = json!({
            "summary": route.summary,
            "operationId": format!("{}_{}", route.method, route.path.trim_start_matches('/').replace(['/', '{', '}', '.'], "_")),
            "security": security,
            "responses": {
                route.ok.to_string(): {"description": "Success"},
                "default": {"description": "Error", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}}
            }
        });
        if !params.is_empty() {
            op["parameters"] = Value::Array(params);
        }
        if let Some(b) = route.body {
            op["requestBody"] =
                json!({"required": true, "content": {"application/json": {"schema": {"$ref": format!("#/components/schemas/{b}")}}}});
        }
        entry[route.method] = op;
    }
    let mut schemas = Map::new();
    schemas.insert(
        "Error".into(),
        json!({"type": "object", "required": ["code", "message"], "properties": {
            "code": {"type": "string", "description": "Stable code; see x-error-codes"},
            "message": {"type": "string"},
            "fields": {"type": "array", "items": {"type": "object", "properties": {"field": {"type": "string"}, "message": {"type": "string"}}}}
        }}),
    );
    for name in ROUTES.iter().filter_map(|r| r.body) {
        schemas.entry(name.to_owned()).or_insert_with(|| json!({"type": "object", "description": format!("See docs: {name}")}));
    }
    json!({
        "openapi": "3.1.0",
        "info": {"title": "Gantry", "version": env!("CARGO_PKG_VERSION"), "description": "Feature flags, OFREP and Unleash-compatible APIs."},
        "paths": Value::Object(paths),
        "components": {
            "schemas": Value::Object(schemas),
            "securitySchemes": {
                "bearer": {"type": "http", "scheme": "bearer"},
                "rawToken": {"type": "apiKey", "in": "header", "name": "Authorization"},
                "apiKey": {"type": "apiKey", "in": "header", "name": "X-API-Key"}
            }
        },
        "x-error-codes": error_codes()
    })
}

/// `GET /api/openapi.json`.
pub async fn get_openapi() -> axum::Json<Value> {
    axum::Json(document())
}
