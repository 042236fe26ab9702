//! Experiments and the events API (`/api/v1/experiments`, `/api/v1/events`).

use serde::{Deserialize, Serialize};

/// Largest batch the events API takes in one request.
pub const MAX_EVENTS_PER_BATCH: usize = 10_000;

/// An experiment on a flag's variants in one environment.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Experiment {
    /// Key (`[a-z0-9][a-z0-9_.-]*`).
    pub key: String,
    /// The flag whose variants are compared.
    pub flag: String,
    /// The environment it runs in.
    pub environment: String,
    /// Display name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// What the team expects and why.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hypothesis: Option<String>,
    /// The variants compared, control first. Empty: every variant of the
    /// flag, in its order. Their weights are the flag's.
    #[serde(default)]
    pub variants: Vec<String>,
    /// Metrics (primary, secondary, guardrail).
    #[serde(default)]
    pub metrics: Vec<MetricDef>,
    /// Lifecycle state. Set through `start` and `stop`.
    #[serde(default)]
    pub status: ExperimentStatus,
    /// When it started (RFC 3339).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub started_at: Option<String>,
    /// When it stopped (RFC 3339).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stopped_at: Option<String>,
    /// Statistics engine of the results.
    #[serde(default)]
    pub engine: StatsEngine,
    /// Significance level (0.05 unless set).
    #[serde(default = "default_alpha")]
    pub alpha: f64,
    /// CUPED pre-period: a unit's events from this many hours before the
    /// experiment started until its first exposure are its covariate
    /// (metrics with `cuped: true`). 336 (14 days) unless set.
    #[serde(default = "default_pre_period_hours")]
    pub pre_period_hours: f64,
}

fn default_alpha() -> f64 {
    0.05
}

fn default_pre_period_hours() -> f64 {
    336.0
}

/// Lifecycle of an experiment.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ExperimentStatus {
    /// Defined, not collecting.
    #[default]
    Draft,
    /// Collecting exposures and metric events.
    Running,
    /// No longer collecting; results stay.
    Stopped,
}

/// How results are judged.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StatsEngine {
    /// Fixed-horizon Welch/z tests (decide once, at the planned sample).
    #[default]
    Frequentist,
    /// Always-valid confidence sequences: safe to look at any time.
    Sequential,
    /// Gaussian Bayesian: chance to beat control and expected loss.
    Bayesian,
}

/// A metric of an experiment, computed per unit from track events that
/// happen after the unit's first exposure (within the window, if any).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MetricDef {
    /// Metric name (unique within the experiment).
    pub name: String,
    /// The track event it counts (`name` of the events).
    pub event: String,
    /// What is computed per unit.
    pub kind: MetricKind,
    /// Primary, secondary or guardrail.
    #[serde(default)]
    pub role: MetricRole,
    /// Only events within this many hours after the first exposure count.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub window_hours: Option<f64>,
    /// Per-unit values above this are capped (outliers).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cap: Option<f64>,
    /// Ratio metrics: the denominator event (e.g. `request` for errors per request).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub denominator_event: Option<String>,
    /// Whether an increase is good (false for errors, latency).
    #[serde(default = "default_true")]
    pub higher_is_better: bool,
    /// Variance reduction with CUPED: the same metric over the unit's
    /// pre-exposure events is the covariate (not for ratio metrics).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub cuped: bool,
}

fn default_true() -> bool {
    true
}

/// Per-unit computation of a metric.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MetricKind {
    /// 1 if the unit did the event at least once, else 0.
    Conversion,
    /// Mean over units of the per-unit sum of values (revenue per user).
    Mean,
    /// Same per-unit values as `mean`, reported as totals too.
    Sum,
    /// Number of events per unit.
    Count,
    /// Sum of the event over the sum of the denominator event, per arm.
    Ratio,
}

/// Role of a metric in the decision.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MetricRole {
    /// The metric the decision is made on.
    Primary,
    /// Informative.
    #[default]
    Secondary,
    /// Must not get worse.
    Guardrail,
}

/// A stored experiment with its version (the ETag).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ExperimentResponse {
    /// The definition.
    #[serde(flatten)]
    pub experiment: Experiment,
    /// Optimistic-concurrency version.
    pub version: i64,
}

/// Kind of an ingested event.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EventKind {
    /// A unit saw a flag's variant.
    Exposure,
    /// A unit did something (a conversion, revenue, an error, a latency).
    Track,
}

/// One event of the events API.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Event {
    /// Exposure or track.
    #[serde(rename = "type")]
    pub kind: EventKind,
    /// The unit (user id, session id, …) the event belongs to.
    pub unit_id: String,
    /// Exposure: the flag (required). Track: optional tag (per-arm metrics).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub flag: Option<String>,
    /// The variant seen (exposure) or tagged (track).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub variant: Option<String>,
    /// Track: the event name (required).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Track: a value (revenue, latency in ms); 1 when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<f64>,
    /// When it happened, ms since the Unix epoch (arrival time when absent).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timestamp: Option<i64>,
    /// Retries with the same key are counted once.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub idempotency_key: Option<String>,
}

/// Body of `POST /api/v1/events`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EventBatch {
    /// Up to [`MAX_EVENTS_PER_BATCH`] events.
    pub events: Vec<Event>,
}

/// Answer of `POST /api/v1/events` (202: durably stored).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct EventsAccepted {
    /// Events stored.
    pub accepted: u64,
    /// Of those, repeats of an idempotency key seen before (counted once).
    pub duplicates: u64,
}
