//! Active health probes: the pure half (cadence, thresholds, response parsing); the server does the HTTP.
//!
//! Threshold semantics follow Kubernetes probes (delivery.md §5.2): `failure_threshold`
//! consecutive failures make a target unhealthy, `success_threshold` consecutive successes make
//! it healthy again; a response that takes longer than `timeout_ms` is a failure. Bodies in
//! `application/health+json` (draft-inadarei-api-health-check, §5.1) are understood.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::time::SECOND_MS;
use crate::Timestamp;

/// Probe settings (defaults from delivery.md §9: every 10 s, 2 s timeout, unhealthy after 3, healthy after 2).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProbeSpec {
    /// Time between probes.
    #[serde(default = "d_interval")]
    pub interval_ms: u64,
    /// Per-probe timeout the server applies to the HTTP request.
    #[serde(default = "d_timeout")]
    pub timeout_ms: u64,
    /// Consecutive failures before unhealthy.
    #[serde(default = "d_failure")]
    pub failure_threshold: u32,
    /// Consecutive successes before healthy (from unknown or unhealthy).
    #[serde(default = "d_success")]
    pub success_threshold: u32,
    /// Delay before the first probe.
    #[serde(default)]
    pub initial_delay_ms: u64,
}

fn d_interval() -> u64 {
    10 * SECOND_MS
}
fn d_timeout() -> u64 {
    2 * SECOND_MS
}
fn d_failure() -> u32 {
    3
}
fn d_success() -> u32 {
    2
}

impl Default for ProbeSpec {
    fn default() -> Self {
        ProbeSpec {
            interval_ms: d_interval(),
            timeout_ms: d_timeout(),
            failure_threshold: d_failure(),
            success_threshold: d_success(),
            initial_delay_ms: 0,
        }
    }
}

/// Status words of `application/health+json`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CheckStatus {
    /// `pass`, `ok`, `up`.
    Pass,
    /// `warn`: healthy with concerns.
    Warn,
    /// `fail`, `error`, `down`.
    Fail,
}

impl CheckStatus {
    /// Parses a status word, case-insensitively.
    pub fn parse(s: &str) -> Option<Self> {
        match s.trim().to_ascii_lowercase().as_str() {
            "pass" | "ok" | "up" => Some(CheckStatus::Pass),
            "warn" => Some(CheckStatus::Warn),
            "fail" | "error" | "down" => Some(CheckStatus::Fail),
            _ => None,
        }
    }
}

/// One entry of a `checks` array.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct CheckResult {
    /// `componentId`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub component_id: Option<String>,
    /// `componentType`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub component_type: Option<String>,
    /// `observedValue`, any JSON.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_value: Option<Value>,
    /// `observedUnit`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_unit: Option<String>,
    /// `status`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<CheckStatus>,
    /// `time`, as sent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub time: Option<String>,
    /// `output`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub output: Option<String>,
}

/// A parsed `application/health+json` body.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct HealthReport {
    /// Top-level `status` (`None` if missing or unknown).
    pub status: Option<CheckStatus>,
    /// `version`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
    /// `releaseId`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub release_id: Option<String>,
    /// `output`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub output: Option<String>,
    /// `notes`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub notes: Vec<String>,
    /// `checks`, keyed `component:measurement`; a single object is read as a one-element array.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub checks: BTreeMap<String, Vec<CheckResult>>,
}

fn string(v: &Value, key: &str) -> Option<String> {
    match v.get(key)? {
        Value::String(s) => Some(s.clone()),
        Value::Null => None,
        other => Some(other.to_string()),
    }
}

impl HealthReport {
    /// Parses a body; `None` if it is not a JSON object.
    pub fn parse(body: &[u8]) -> Option<HealthReport> {
        let v: Value = serde_json::from_slice(body).ok()?;
        let obj = v.as_object()?;
        let status = obj.get("status").and_then(Value::as_str).and_then(CheckStatus::parse);
        let notes = obj.get("notes").and_then(Value::as_array).map(|a| a.iter().filter_map(|n| n.as_str().map(str::to_owned)).collect());
        let mut checks = BTreeMap::new();
        if let Some(map) = obj.get("checks").and_then(Value::as_object) {
            for (name, entries) in map {
                let one = |e: &Value| CheckResult {
                    component_id: string(e, "componentId"),
                    component_type: string(e, "componentType"),
                    observed_value: e.get("observedValue").cloned(),
                    observed_unit: string(e, "observedUnit"),
                    status: e.get("status").and_then(Value::as_str).and_then(CheckStatus::parse),
                    time: string(e, "time"),
                    output: string(e, "output"),
                };
                let list = match entries {
                    Value::Array(a) => a.iter().filter(|e| e.is_object()).map(one).collect(),
                    e @ Value::Object(_) => vec![one(e)],
                    _ => continue,
                };
                checks.insert(name.clone(), list);
            }
        }
        Some(HealthReport {
            status,
            version: string(&v, "version"),
            release_id: string(&v, "releaseId"),
            output: string(&v, "output"),
            notes: notes.unwrap_or_default(),
            checks,
        })
    }

    /// The worst status among the checks, if any has one.
    pub fn worst_check(&self) -> Option<CheckStatus> {
        self.checks.values().flatten().filter_map(|c| c.status).max()
    }
}

/// What one probe attempt produced.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum ProbeAttempt {
    /// An HTTP response arrived within the timeout.
    Response {
        /// Status code.
        status: u16,
        /// Body bytes as text (may be empty).
        #[serde(default)]
        body: String,
    },
    /// No response within `timeout_ms`.
    Timeout,
    /// Connection refused, DNS failure, TLS error, …
    ConnectError {
        /// Why.
        message: String,
    },
}

/// The reading of one attempt.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Observation {
    /// Pass, warn or fail.
    pub status: CheckStatus,
    /// The parsed body, when it was health JSON.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub report: Option<HealthReport>,
}

/// Reads an attempt: 4xx/5xx, timeouts and connection errors fail; otherwise a health JSON
/// `status` decides (a `fail` body fails even with 200), and without one any 2xx/3xx passes.
pub fn classify(attempt: &ProbeAttempt) -> Observation {
    match attempt {
        ProbeAttempt::Timeout | ProbeAttempt::ConnectError { .. } => Observation { status: CheckStatus::Fail, report: None },
        ProbeAttempt::Response { status, body } => {
            let report = if body.trim_start().starts_with('{') { HealthReport::parse(body.as_bytes()) } else { None };
            let by_code = if (200..400).contains(status) { CheckStatus::Pass } else { CheckStatus::Fail };
            let by_body = report.as_ref().and_then(|r| r.status);
            let status = match (by_code, by_body) {
                (CheckStatus::Fail, _) => CheckStatus::Fail,
                (_, Some(b)) => b,
                (c, None) => c,
            };
            Observation { status, report }
        }
    }
}

/// Health of a probed target.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ProbeHealth {
    /// Not yet decided (fewer results than the thresholds).
    #[default]
    Unknown,
    /// Healthy.
    Healthy,
    /// Healthy, but the last response said `warn`.
    Warning,
    /// Unhealthy.
    Unhealthy,
}

/// Persistable probe bookkeeping.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct ProbeState {
    /// Current health.
    pub health: ProbeHealth,
    /// Passing attempts in a row.
    pub consecutive_successes: u32,
    /// Failing attempts in a row.
    pub consecutive_failures: u32,
    /// When probing began.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub started_at: Option<Timestamp>,
    /// Latest attempt.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_attempt_at: Option<Timestamp>,
    /// Latest observation's status.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_status: Option<CheckStatus>,
}

/// A health change, for events and alerts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct HealthChange {
    /// Before.
    pub from: ProbeHealth,
    /// After.
    pub to: ProbeHealth,
    /// When.
    pub at: Timestamp,
}

impl ProbeState {
    /// A state that starts probing at `now` (after the initial delay).
    pub fn started(now: Timestamp) -> Self {
        ProbeState { started_at: Some(now), ..ProbeState::default() }
    }

    /// When the next attempt should start.
    pub fn next_attempt_at(&self, spec: &ProbeSpec) -> Timestamp {
        match self.last_attempt_at {
            Some(t) => t.plus(spec.interval_ms),
            None => self.started_at.unwrap_or_default().plus(spec.initial_delay_ms),
        }
    }

    /// Whether an attempt is due at `now`.
    pub fn is_due(&self, spec: &ProbeSpec, now: Timestamp) -> bool {
        now >= self.next_attempt_at(spec)
    }

    /// Folds one observation in; returns the change of health, if any.
    pub fn record(&mut self, spec: &ProbeSpec, obs: &Observation, now: Timestamp) -> Option<HealthChange> {
        let from = self.health;
        self.last_attempt_at = Some(now);
        self.last_status = Some(obs.status);
        if obs.status == CheckStatus::Fail {
            self.consecutive_failures += 1;
            self.consecutive_successes = 0;
            if self.consecutive_failures >= spec.failure_threshold.max(1) {
                self.health = ProbeHealth::Unhealthy;
            }
        } else {
            self.consecutive_successes += 1;
            self.consecutive_failures = 0;
            let healthy =
                matches!(from, ProbeHealth::Healthy | ProbeHealth::Warning) || self.consecutive_successes >= spec.success_threshold.max(1);
            if healthy {
                self.health = if obs.status == CheckStatus::Warn { ProbeHealth::Warning } else { ProbeHealth::Healthy };
            }
        }
        (self.health != from).then_some(HealthChange { from, to: self.health, at: now })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn resp(status: u16, body: &str) -> ProbeAttempt {
        ProbeAttempt::Response { status, body: body.to_owned() }
    }

    #[test]
    fn health_json_statuses() {
        assert_eq!(classify(&resp(200, r#"{"status":"pass"}"#)).status, CheckStatus::Pass);
        assert_eq!(classify(&resp(200, r#"{"status":"UP"}"#)).status, CheckStatus::Pass);
        assert_eq!(classify(&resp(200, r#"{"status":"ok"}"#)).status, CheckStatus::Pass);
        assert_eq!(classify(&resp(200, r#"{"status":"warn"}"#)).status, CheckStatus::Warn);
        assert_eq!(classify(&resp(200, r#"{"status":"fail"}"#)).status, CheckStatus::Fail);
        assert_eq!(classify(&resp(200, r#"{"status":"down"}"#)).status, CheckStatus::Fail);
        assert_eq!(classify(&resp(503, r#"{"status":"pass"}"#)).status, CheckStatus::Fail);
        assert_eq!(classify(&resp(204, "")).status, CheckStatus::Pass);
        assert_eq!(classify(&resp(302, "moved")).status, CheckStatus::Pass);
        assert_eq!(classify(&resp(500, "")).status, CheckStatus::Fail);
        assert_eq!(classify(&resp(200, "{not json")).status, CheckStatus::Pass);
        assert_eq!(classify(&ProbeAttempt::Timeout).status, CheckStatus::Fail);
    }

    #[test]
    fn checks_map_is_parsed() {
        let body = r#"{
          "status": "warn", "version": "1", "releaseId": "1.2.2", "notes": ["n"],
          "checks": {
            "store:responseTime": [{"componentId": "db", "observedValue": 250, "observedUnit": "ms", "status": "warn", "time": "2026-01-01T00:00:00Z"}],
            "uptime": {"componentType": "system", "observedValue": 1209600.245, "status": "pass"},
            "bad": 3
          }
        }"#;
        let r = HealthReport::parse(body.as_bytes()).unwrap();
        assert_eq!(r.status, Some(CheckStatus::Warn));
        assert_eq!(r.release_id.as_deref(), Some("1.2.2"));
        assert_eq!(r.checks.len(), 2);
        let rt = &r.checks["store:responseTime"][0];
        assert_eq!(rt.observed_unit.as_deref(), Some("ms"));
        assert_eq!(rt.observed_value, Some(serde_json::json!(250)));
        assert_eq!(r.checks["uptime"][0].status, Some(CheckStatus::Pass));
        assert_eq!(r.worst_check(), Some(CheckStatus::Warn));
    }

    #[test]
    fn thresholds_like_kubernetes() {
        let spec = ProbeSpec::default();
        let t0 = Timestamp(1_000_000);
        let mut s = ProbeState::started(t0);
        assert!(s.is_due(&spec, t0));
        let pass = classify(&resp(200, r#"{"status":"pass"}"#));
        let fail = classify(&ProbeAttempt::Timeout);
        assert_eq!(s.record(&spec, &pass, t0), None, "one success is not enough (threshold 2)");
        assert!(!s.is_due(&spec, t0.plus(9_999)));
        let ch = s.record(&spec, &pass, t0.plus(10_000)).unwrap();
        assert_eq!((ch.from, ch.to), (ProbeHealth::Unknown, ProbeHealth::Healthy));
        assert_eq!(s.record(&spec, &fail, t0.plus(20_000)), None);
        assert_eq!(s.record(&spec, &fail, t0.plus(30_000)), None);
        assert_eq!(s.record(&spec, &fail, t0.plus(40_000)).unwrap().to, ProbeHealth::Unhealthy);
        assert_eq!(s.record(&spec, &pass, t0.plus(50_000)), None);
        assert_eq!(s.record(&spec, &fail, t0.plus(60_000)), None, "a failure resets the success run");
        assert_eq!(s.record(&spec, &pass, t0.plus(70_000)), None);
        let warn = classify(&resp(200, r#"{"status":"warn"}"#));
        assert_eq!(s.record(&spec, &warn, t0.plus(80_000)).unwrap().to, ProbeHealth::Warning);
        assert_eq!(s.record(&spec, &pass, t0.plus(90_000)).unwrap().to, ProbeHealth::Healthy);
    }
}
