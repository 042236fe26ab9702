//! Handlers: `POST /api/v1/events` and the experiments admin API.

use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use gantry_api_types::{
    ErrorCode, Event, EventBatch, EventKind, EventsAccepted, Experiment, ExperimentResponse, ExperimentStatus, MetricKind, StatsEngine,
    MAX_EVENTS_PER_BATCH,
};
use gantry_core::clock::rfc3339;
use gantry_core::validate::{self, Invalid};
use gantry_core::{AuditDraft, Expect, Mutation, Store};
use gantry_stats::analyze::{AnalysisSettings, Engine, ExperimentInput, ExperimentResults, MetricInput, MetricSpec, VariantInput};
use gantry_stats::MetricSums;
use serde::{Deserialize, Serialize};

use super::{experiment_variants, IngestError};
use crate::admin::{if_match, with_etag};
use crate::error::{ApiError, ApiResult};
use crate::extract::{environment_header, AdminPrincipal, Json, Principal};
use crate::state::{AppState, Change, Views};

/// Body limit of the events route (8 MiB: a full batch of 10,000 events).
pub const EVENTS_BODY_LIMIT: usize = 8 << 20;

/// Routes.
pub fn router<St: Store>() -> Router<AppState<St>> {
    Router::new()
        .route("/api/v1/events", post(post_events::<St>).layer(axum::extract::DefaultBodyLimit::max(EVENTS_BODY_LIMIT)))
        .route("/api/v1/experiments", get(list_experiments::<St>).post(create_experiment::<St>))
        .route("/api/v1/experiments/{key}", get(get_experiment::<St>).put(update_experiment::<St>).delete(delete_experiment::<St>))
        .route("/api/v1/experiments/{key}/start", post(start_experiment::<St>))
        .route("/api/v1/experiments/{key}/stop", post(stop_experiment::<St>))
        .route("/api/v1/experiments/{key}/results", get(get_results::<St>))
        .route("/api/v1/experiments/{key}/results/history", get(get_results_history::<St>))
}

// === events ===

fn invalid(field: String, message: &str) -> Invalid {
    Invalid::new(field, message)
}

fn check_event(i: usize, e: &Event, now_ms: i64) -> Vec<Invalid> {
    let mut out = Vec::new();
    let at = |f: &str| format!("events[{i}].{f}");
    if e.unit_id.is_empty() || e.unit_id.chars().count() > 256 {
        out.push(invalid(at("unit_id"), "must be 1 to 256 characters"));
    }
    match e.kind {
        EventKind::Exposure if e.flag.as_deref().is_none_or(str::is_empty) => out.push(invalid(at("flag"), "an exposure names its flag")),
        EventKind::Track if e.name.as_deref().is_none_or(|n| n.is_empty() || n.chars().count() > 128) => {
            out.push(invalid(at("name"), "a track event has a name of 1 to 128 characters"));
        }
        _ => {}
    }
    if e.value.is_some_and(|v| !v.is_finite()) {
        out.push(invalid(at("value"), "must be a finite number"));
    }
    if e.idempotency_key.as_deref().is_some_and(|k| k.is_empty() || k.chars().count() > 128) {
        out.push(invalid(at("idempotency_key"), "must be 1 to 128 characters"));
    }
    if e.timestamp.is_some_and(|t| t < 0 || t > now_ms + 24 * 3600 * 1000) {
        out.push(invalid(at("timestamp"), "must be ms since the epoch, not more than a day ahead"));
    }
    out
}

/// Ingests a batch of exposure and track events. 202 once they are durable;
/// 429 with `Retry-After` when too much is waiting.
async fn post_events<St: Store>(
    State(app): State<AppState<St>>,
    p: Principal,
    headers: HeaderMap,
    Json(batch): Json<EventBatch>,
) -> ApiResult<Response> {
    let env = p.evaluation_environment(environment_header(&headers))?;
    if app.views().env(&env).is_none() {
        return Err(ApiError::new(ErrorCode::EnvironmentNotFound, format!("environment `{env}` not found")));
    }
    if batch.events.len() > MAX_EVENTS_PER_BATCH {
        return Err(ApiError::validation(vec![invalid("events".into(), &format!("at most {MAX_EVENTS_PER_BATCH} events per batch"))]));
    }
    let now = app.clock.now_millis();
    let problems: Vec<Invalid> = batch.events.iter().enumerate().flat_map(|(i, e)| check_event(i, e, now)).take(50).collect();
    if !problems.is_empty() {
        return Err(ApiError::validation(problems));
    }
    let n = batch.events.len() as u64;
    if n == 0 {
        return Ok((StatusCode::ACCEPTED, axum::Json(EventsAccepted { accepted: 0, duplicates: 0 })).into_response());
    }
    // Release guardrails count request/error/latency events once they are durable.
    let guardrail_events = crate::release::signals::relevant(&batch.events);
    let guardrail_env = (!guardrail_events.is_empty()).then(|| env.clone());
    match app.events.submit(env, batch.events, now).await {
        Ok(duplicates) => {
            if let Some(env) = guardrail_env {
                app.release.signals.record(&env, &guardrail_events, now);
            }
            Ok((StatusCode::ACCEPTED, axum::Json(EventsAccepted { accepted: n, duplicates })).into_response())
        }
        Err(IngestError::Busy) => {
            let mut r =
                ApiError::new(ErrorCode::RateLimited, "too many events are waiting to be stored; retry after a second").into_response();
            r.headers_mut().insert("retry-after", HeaderValue::from_static("1"));
            Ok(r)
        }
        Err(IngestError::Failed(why)) => Err(ApiError::new(ErrorCode::Unavailable, why)),
    }
}

// === experiments ===

fn not_found(key: &str) -> ApiError {
    ApiError::new(ErrorCode::ExperimentNotFound, format!("experiment `{key}` not found"))
}

fn audit(p: &Principal, action: &str, key: &str, before: Option<&Experiment>, after: Option<&Experiment>) -> AuditDraft {
    AuditDraft {
        actor: p.actor(),
        action: action.into(),
        target_kind: "experiment".into(),
        target: key.into(),
        before: before.and_then(|e| serde_json::to_value(e).ok()),
        after: after.and_then(|e| serde_json::to_value(e).ok()),
    }
}

/// Checks a definition against the current flags and environments.
fn check_experiment(v: &Views, e: &Experiment) -> Result<(), ApiError> {
    let mut out = Vec::new();
    if let Err(m) = validate::flag_key(&e.key) {
        out.push(invalid("key".into(), &m));
    }
    if !v.environments.iter().any(|x| x.environment.name == e.environment) {
        out.push(invalid("environment".into(), "no such environment"));
    }
    match v.flags.get(&e.flag) {
        None => out.push(invalid("flag".into(), "no such flag")),
        Some(f) => {
            for (i, name) in e.variants.iter().enumerate() {
                if !f.flag.variants.iter().any(|x| &x.name == name) {
                    out.push(invalid(format!("variants[{i}]"), "the flag has no variant of that name"));
                }
            }
            if experiment_variants(e, v).len() < 2 {
                out.push(invalid("variants".into(), "an experiment compares a control and at least one treatment"));
            }
        }
    }
    if !(e.alpha > 0.0 && e.alpha < 0.5) {
        out.push(invalid("alpha".into(), "must be in (0, 0.5)"));
    }
    if !(e.pre_period_hours.is_finite() && (0.0..=24.0 * 365.0).contains(&e.pre_period_hours)) {
        out.push(invalid("pre_period_hours".into(), "must be between 0 and 8760 (one year)"));
    }
    let mut names = std::collections::HashSet::new();
    for (i, m) in e.metrics.iter().enumerate() {
        if m.name.is_empty() || !names.insert(m.name.as_str()) {
            out.push(invalid(format!("metrics[{i}].name"), "must be non-empty and unique"));
        }
        if m.event.is_empty() {
            out.push(invalid(format!("metrics[{i}].event"), "must name a track event"));
        }
        if m.cuped && m.kind == MetricKind::Ratio {
            out.push(invalid(format!("metrics[{i}].cuped"), "CUPED is not available for ratio metrics"));
        }
        if (m.kind == MetricKind::Ratio) != m.denominator_event.is_some() {
            out.push(invalid(format!("metrics[{i}].denominator_event"), "ratio metrics (and only they) need a denominator event"));
        }
        if m.window_hours.is_some_and(|h| !(h.is_finite() && h > 0.0)) || m.cap.is_some_and(|c| !(c.is_finite() && c > 0.0)) {
            out.push(invalid(format!("metrics[{i}]"), "window_hours and cap must be positive numbers"));
        }
    }
    if out.is_empty() {
        Ok(())
    } else {
        Err(ApiError::validation(out))
    }
}

/// Lists experiments.
async fn list_experiments<St: Store>(State(app): State<AppState<St>>, _a: AdminPrincipal) -> Json<Vec<ExperimentResponse>> {
    Json(app.views().experiments.values().map(|s| ExperimentResponse { experiment: s.experiment.clone(), version: s.version }).collect())
}

/// Reads an experiment.
async fn get_experiment<St: Store>(State(app): State<AppState<St>>, _a: AdminPrincipal, Path(key): Path<String>) -> ApiResult<Response> {
    let v = app.views();
    let s = v.experiments.get(&key).ok_or_else(|| not_found(&key))?;
    Ok(with_etag(StatusCode::OK, s.version, ExperimentResponse { experiment: s.experiment.clone(), version: s.version }))
}

/// Creates an experiment (as a draft: start it with `/start`).
async fn create_experiment<St: Store>(
    State(app): State<AppState<St>>,
    AdminPrincipal(p): AdminPrincipal,
    Json(mut e): Json<Experiment>,
) -> ApiResult<Response> {
    e.status = ExperimentStatus::Draft;
    e.started_at = None;
    e.stopped_at = None;
    let r = app
        .write(|v| {
            check_experiment(v, &e)?;
            Ok::<_, ApiError>((
                vec![Mutation::PutExperiment { experiment: e.clone(), expect: Expect::Absent }],
                vec![audit(&p, "experiment.create", &e.key, None, Some(&e))],
                vec![],
            ))
        })
        .await?;
    let c = r.map_err(ApiError::from)?;
    Ok(with_etag(StatusCode::CREATED, c.versions[0], ExperimentResponse { experiment: e, version: c.versions[0] }))
}

/// Replaces an experiment's definition. Status and times are kept; the
/// flag and environment of a started experiment cannot change.
async fn update_experiment<St: Store>(
    State(app): State<AppState<St>>,
    AdminPrincipal(p): AdminPrincipal,
    Path(key): Path<String>,
    headers: HeaderMap,
    Json(mut e): Json<Experiment>,
) -> ApiResult<Response> {
    if e.key != key {
        return Err(ApiError::validation(vec![invalid("key".into(), "must equal the key in the path")]));
    }
    let expect = if_match(&headers)?;
    let r = app
        .write(|v| {
            let before = v.experiments.get(&key).map(|s| s.experiment.clone()).ok_or_else(|| not_found(&key))?;
            e.status = before.status;
            e.started_at = before.started_at.clone();
            e.stopped_at = before.stopped_at.clone();
            if before.status != ExperimentStatus::Draft
                && (before.flag != e.flag || before.environment != e.environment || before.variants != e.variants)
            {
                return Err(ApiError::new(ErrorCode::InvalidState, "a started experiment keeps its flag, environment and variants"));
            }
            check_experiment(v, &e)?;
            Ok((
                vec![Mutation::PutExperiment { experiment: e.clone(), expect }],
                vec![audit(&p, "experiment.update", &key, Some(&before), Some(&e))],
                vec![],
            ))
        })
        .await?;
    let c = r.map_err(ApiError::from)?;
    Ok(with_etag(StatusCode::OK, c.versions[0], ExperimentResponse { experiment: e, version: c.versions[0] }))
}

/// Deletes an experiment that is not running.
async fn delete_experiment<St: Store>(
    State(app): State<AppState<St>>,
    AdminPrincipal(p): AdminPrincipal,
    Path(key): Path<String>,
    headers: HeaderMap,
) -> ApiResult<StatusCode> {
    let expect = if_match(&headers)?;
    let r = app
        .write(|v| {
            let before = v.experiments.get(&key).map(|s| s.experiment.clone()).ok_or_else(|| not_found(&key))?;
            if before.status == ExperimentStatus::Running {
                return Err(ApiError::new(ErrorCode::InvalidState, "stop the experiment before deleting it"));
            }
            Ok((
                vec![Mutation::DeleteExperiment { key: key.clone(), expect }],
                vec![audit(&p, "experiment.delete", &key, Some(&before), None)],
                vec![],
            ))
        })
        .await?;
    r.map_err(ApiError::from)?;
    Ok(StatusCode::NO_CONTENT)
}

async fn transition<St: Store>(app: AppState<St>, p: Principal, key: String, start: bool) -> ApiResult<Response> {
    let now = rfc3339(app.clock.now());
    let mut after = None;
    let r = app
        .write(|v| {
            let s = v.experiments.get(&key).ok_or_else(|| not_found(&key))?;
            let before = s.experiment.clone();
            let mut e = before.clone();
            match (start, before.status) {
                (true, ExperimentStatus::Draft) => {
                    if let Some(other) = v.experiments.values().find(|o| {
                        o.experiment.status == ExperimentStatus::Running
                            && o.experiment.flag == e.flag
                            && o.experiment.environment == e.environment
                    }) {
                        return Err(ApiError::new(
                            ErrorCode::InvalidState,
                            format!("experiment `{}` already runs on this flag and environment", other.experiment.key),
                        ));
                    }
                    check_experiment(v, &e)?;
                    e.status = ExperimentStatus::Running;
                    e.started_at = Some(now.clone());
                }
                (false, ExperimentStatus::Running) => {
                    e.status = ExperimentStatus::Stopped;
                    e.stopped_at = Some(now.clone());
                }
                (true, s) | (false, s) => {
                    return Err(ApiError::new(
                        ErrorCode::InvalidState,
                        format!(
                            "the experiment is {}; it cannot be {}",
                            serde_json::to_value(s).unwrap_or_default(),
                            if start { "started" } else { "stopped" }
                        ),
                    ))
                }
            }
            after = Some(e.clone());
            Ok((
                vec![Mutation::PutExperiment { experiment: e.clone(), expect: Expect::Version(s.version) }],
                vec![audit(&p, if start { "experiment.start" } else { "experiment.stop" }, &key, Some(&before), Some(&e))],
                // SDKs learn which flags report exposures from a fresh snapshot.
                vec![Change::Reset],
            ))
        })
        .await?;
    let c = r.map_err(ApiError::from)?;
    let e = after.ok_or_else(|| not_found(&key))?;
    Ok(with_etag(StatusCode::OK, c.versions[0], ExperimentResponse { experiment: e, version: c.versions[0] }))
}

/// Starts a draft experiment: from now on exposures and metric events count.
pub(crate) async fn start_experiment<St: Store>(
    State(app): State<AppState<St>>,
    AdminPrincipal(p): AdminPrincipal,
    Path(key): Path<String>,
) -> ApiResult<Response> {
    transition(app, p, key, true).await
}

/// Stops a running experiment; its results stay.
pub(crate) async fn stop_experiment<St: Store>(
    State(app): State<AppState<St>>,
    AdminPrincipal(p): AdminPrincipal,
    Path(key): Path<String>,
) -> ApiResult<Response> {
    transition(app, p, key, false).await
}

/// Results of an experiment, per metric and variant.
#[derive(Debug, Serialize)]
pub struct ResultsResponse {
    /// Experiment key.
    pub experiment: String,
    /// Status.
    pub status: ExperimentStatus,
    /// Exposed units per variant (control first).
    pub units: Vec<(String, u64)>,
    /// Exposures that named a variant outside the experiment.
    pub unknown_variant_exposures: u64,
    /// The analysis.
    #[serde(flatten)]
    pub analysis: ExperimentResults,
}

fn stats_kind(k: MetricKind) -> gantry_stats::MetricKind {
    match k {
        MetricKind::Conversion => gantry_stats::MetricKind::Proportion,
        MetricKind::Mean => gantry_stats::MetricKind::Mean,
        MetricKind::Sum => gantry_stats::MetricKind::Sum,
        MetricKind::Count => gantry_stats::MetricKind::Count,
        MetricKind::Ratio => gantry_stats::MetricKind::Ratio,
    }
}

/// Builds the analysis input from the aggregates: per-unit values reduced to
/// per-variant sufficient statistics (capping applied per unit).
pub fn experiment_input(e: &Experiment, variants: &[String], weights: &[f64], agg: Option<&super::ExperimentAgg>) -> ExperimentInput {
    experiment_input_until(e, variants, weights, agg, None)
}

/// As [`experiment_input`], counting only units first exposed at or before
/// `cutoff_ms` (the cumulative view at that time, for results over time).
pub fn experiment_input_until(
    e: &Experiment,
    variants: &[String],
    weights: &[f64],
    agg: Option<&super::ExperimentAgg>,
    cutoff_ms: Option<i64>,
) -> ExperimentInput {
    let k = variants.len();
    let mut bucket = Bucket::new(e, k);
    if let Some(agg) = agg {
        for u in agg.units.values().filter(|u| usize::from(u.variant) < k && cutoff_ms.is_none_or(|c| u.first_ms <= c)) {
            bucket.add(e, usize::from(u.variant), u);
        }
    }
    build_input(e, variants, weights, bucket)
}

/// The cumulative inputs at each of the ascending `cutoffs` in one pass over
/// the units: each unit lands in the bucket of the first cut-off at or after
/// its first exposure, and the buckets are then summed cumulatively.
pub fn experiment_inputs_at(
    e: &Experiment,
    variants: &[String],
    weights: &[f64],
    agg: Option<&super::ExperimentAgg>,
    cutoffs: &[i64],
) -> Vec<ExperimentInput> {
    let k = variants.len();
    let mut buckets: Vec<Bucket> = cutoffs.iter().map(|_| Bucket::new(e, k)).collect();
    if let Some(agg) = agg {
        for u in agg.units.values() {
            let v = u.variant as usize;
            let b = cutoffs.partition_point(|c| *c < u.first_ms);
            if v >= k || b >= buckets.len() {
                continue;
            }
            buckets[b].add(e, v, u);
        }
    }
    let mut out = Vec::with_capacity(cutoffs.len());
    let mut running = Bucket::new(e, k);
    for b in buckets {
        running.merge(&b);
        out.push(build_input(e, variants, weights, running.clone()));
    }
    out
}

/// Units and per-metric sufficient statistics per variant.
#[derive(Clone)]
struct Bucket {
    units: Vec<u64>,
    sums: Vec<Vec<MetricSums>>,
}

impl Bucket {
    fn new(e: &Experiment, k: usize) -> Self {
        Bucket { units: vec![0; k], sums: vec![vec![MetricSums::default(); k]; e.metrics.len()] }
    }

    /// Adds one unit's values (capping applied per unit).
    fn add(&mut self, e: &Experiment, v: usize, u: &super::UnitAgg) {
        self.units[v] += 1;
        for (i, m) in e.metrics.iter().enumerate() {
            let [count, sum, den] = u.metrics.get(i).copied().unwrap_or([0.0; 3]);
            let value = |count: f64, sum: f64| {
                let capped = |x: f64| m.cap.map_or(x, |c| x.min(c));
                match m.kind {
                    MetricKind::Conversion => f64::from(u8::from(count > 0.0)),
                    MetricKind::Mean | MetricKind::Sum | MetricKind::Ratio => capped(sum),
                    MetricKind::Count => capped(count),
                }
            };
            let y = value(count, sum);
            let s = &mut self.sums[i][v];
            s.n += 1;
            s.sum += y;
            s.sum_sq += y * y;
            if m.cuped && m.kind != MetricKind::Ratio {
                let [pre_count, pre_sum, _] = u.pre.get(i).copied().unwrap_or([0.0; 3]);
                let x = value(pre_count, pre_sum);
                s.pre_sum += x;
                s.pre_sum_sq += x * x;
                s.cross_pre += y * x;
            }
            if m.kind == MetricKind::Ratio {
                s.den_sum += den;
                s.den_sum_sq += den * den;
                s.cross_den += y * den;
            }
        }
    }

    fn merge(&mut self, other: &Bucket) {
        for (a, b) in self.units.iter_mut().zip(&other.units) {
            *a += b;
        }
        for (a, b) in self.sums.iter_mut().zip(&other.sums) {
            for (x, y) in a.iter_mut().zip(b) {
                x.merge(y);
            }
        }
    }
}

fn build_input(e: &Experiment, variants: &[String], weights: &[f64], b: Bucket) -> ExperimentInput {
    ExperimentInput {
        variants: variants
            .iter()
            .zip(weights)
            .zip(&b.units)
            .map(|((name, w), n)| VariantInput { name: name.clone(), weight: *w, units: *n })
            .collect(),
        metrics: e
            .metrics
            .iter()
            .zip(b.sums)
            .map(|(m, sums)| MetricInput {
                spec: MetricSpec {
                    name: m.name.clone(),
                    kind: stats_kind(m.kind),
                    lower_is_better: !m.higher_is_better,
                    cap: None,
                    cuped: m.cuped && m.kind != MetricKind::Ratio,
                },
                sums,
            })
            .collect(),
    }
}

/// The analysis settings of an experiment.
pub fn settings_of(e: &Experiment) -> AnalysisSettings {
    let mut s = AnalysisSettings { alpha: e.alpha, ..AnalysisSettings::default() };
    match e.engine {
        StatsEngine::Frequentist => {}
        StatsEngine::Sequential => s.sequential_tuning = Some(gantry_stats::DEFAULT_SEQUENTIAL_TUNING),
        StatsEngine::Bayesian => s.engine = Engine::Bayesian,
    }
    s
}

/// Query of the results history.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HistoryQuery {
    /// Number of evenly spaced points from the start to now (or the stop), 2–50; 12 unless set.
    pub points: Option<usize>,
}

/// Results over time: the cumulative analysis of the units exposed by each point.
#[derive(Debug, Serialize)]
pub struct ResultsHistory {
    /// Experiment key.
    pub experiment: String,
    /// Oldest first.
    pub points: Vec<HistoryPoint>,
}

/// One point of [`ResultsHistory`].
#[derive(Debug, Serialize)]
pub struct HistoryPoint {
    /// The cut-off (RFC 3339): units first exposed at or before it count.
    pub at: String,
    /// Units per variant at that time.
    pub units: Vec<(String, u64)>,
    /// The analysis of those units.
    #[serde(flatten)]
    pub analysis: ExperimentResults,
}

/// Results over time (cumulative by first exposure), for the lift chart.
async fn get_results_history<St: Store>(
    State(app): State<AppState<St>>,
    _a: AdminPrincipal,
    Path(key): Path<String>,
    q: Result<Query<HistoryQuery>, axum::extract::rejection::QueryRejection>,
) -> ApiResult<Json<ResultsHistory>> {
    let Query(q) = q.map_err(|e| ApiError::new(ErrorCode::InvalidQuery, e.body_text()))?;
    let n = q.points.unwrap_or(12);
    if !(2..=50).contains(&n) {
        return Err(ApiError::new(ErrorCode::InvalidQuery, "points must be between 2 and 50"));
    }
    history_of(&app, key, n).map(Json)
}

/// The results at `n` evenly spaced points from the start to now (or the stop).
pub(crate) fn history_of<St: Store>(app: &AppState<St>, key: String, n: usize) -> ApiResult<ResultsHistory> {
    let v = app.views();
    let e = &v.experiments.get(&key).ok_or_else(|| not_found(&key))?.experiment;
    let parse = |s: &Option<String>| s.as_deref().and_then(|s| chrono::DateTime::parse_from_rfc3339(s).ok()).map(|d| d.timestamp_millis());
    let Some(start) = parse(&e.started_at) else {
        return Err(ApiError::new(ErrorCode::InvalidState, "the experiment has not started"));
    };
    let end = parse(&e.stopped_at).unwrap_or_else(|| app.clock.now_millis()).max(start);
    let variants = experiment_variants(e, &v);
    let weights: Vec<f64> = variants
        .iter()
        .map(|n| v.flags.get(&e.flag).and_then(|f| f.flag.variants.iter().find(|x| &x.name == n)).map_or(1.0, |x| f64::from(x.weight)))
        .collect();
    let settings = settings_of(e);
    let cutoffs: Vec<i64> = (1..=n).map(|i| start + ((end - start) as f64 * i as f64 / n as f64).round() as i64).collect();
    let inputs = {
        let agg = app.events.aggregates.lock().unwrap_or_else(|p| p.into_inner());
        experiment_inputs_at(e, &variants, &weights, agg.experiments.get(&key), &cutoffs)
    };
    let mut points = Vec::with_capacity(n);
    for (at, input) in cutoffs.into_iter().zip(inputs) {
        let analysis = gantry_stats::analyze::analyze(&input, &settings)
            .map_err(|err| ApiError::new(ErrorCode::InvalidState, format!("cannot analyse: {err}")))?;
        points.push(HistoryPoint {
            at: chrono::DateTime::from_timestamp_millis(at)
                .map(|d| d.to_rfc3339_opts(chrono::SecondsFormat::Millis, true))
                .unwrap_or_default(),
            units: input.variants.iter().map(|x| (x.name.clone(), x.units)).collect(),
            analysis,
        });
    }
    Ok(ResultsHistory { experiment: key, points })
}

/// Analyses an experiment now (from the in-memory per-unit aggregates).
async fn get_results<St: Store>(
    State(app): State<AppState<St>>,
    _a: AdminPrincipal,
    Path(key): Path<String>,
) -> ApiResult<Json<ResultsResponse>> {
    results_of(&app, key).map(Json)
}

/// The current analysis of an experiment (shared by the API and the dashboard).
pub(crate) fn results_of<St: Store>(app: &AppState<St>, key: String) -> ApiResult<ResultsResponse> {
    let v = app.views();
    let e = &v.experiments.get(&key).ok_or_else(|| not_found(&key))?.experiment;
    let variants = experiment_variants(e, &v);
    let weights: Vec<f64> = variants
        .iter()
        .map(|n| v.flags.get(&e.flag).and_then(|f| f.flag.variants.iter().find(|x| &x.name == n)).map_or(1.0, |x| f64::from(x.weight)))
        .collect();
    let (input, unknown) = {
        let agg = app.events.aggregates.lock().unwrap_or_else(|p| p.into_inner());
        let a = agg.experiments.get(&key);
        (experiment_input(e, &variants, &weights, a), a.map_or(0, |a| a.unknown_variant_exposures))
    };
    let analysis = gantry_stats::analyze::analyze(&input, &settings_of(e))
        .map_err(|err| ApiError::new(ErrorCode::InvalidState, format!("cannot analyse: {err}")))?;
    Ok(ResultsResponse {
        experiment: key,
        status: e.status,
        units: input.variants.iter().map(|x| (x.name.clone(), x.units)).collect(),
        unknown_variant_exposures: unknown,
        analysis,
    })
}
