//! Guardrail sources outside Gantry: Prometheus instant queries and HTTP
//! health probes.
//!
//! Probes run at their own interval (checked every controller tick, before
//! the rollouts are stepped, without holding the rollouts lock); their state
//! (consecutive successes/failures, health) lives in memory, so after a
//! restart a probe starts from "unknown" and the thresholds decide again.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use gantry_api_types::GuardrailSource;
use gantry_core::Store;
use gantry_release::guardrail::Measurement;
use gantry_release::probe::{self, ProbeAttempt, ProbeSpec, ProbeState};
use gantry_release::Timestamp;
use serde_json::Value;

use crate::state::AppState;

/// Default timeout of a Prometheus query.
pub const PROMETHEUS_TIMEOUT: Duration = Duration::from_secs(5);

/// Probe states by `rollout-key#guardrail`.
#[derive(Debug, Default)]
pub struct Probes {
    states: Mutex<HashMap<String, ProbeState>>,
    http: reqwest::Client,
}

/// The probe key of a guardrail of a rollout.
pub fn probe_key(rollout: &str, guardrail: &str) -> String {
    format!("{rollout}#{guardrail}")
}

/// The probe state key of an alert rule watching a probe.
pub fn alert_probe_key(rule: &str) -> String {
    format!("alert:{rule}")
}

impl Probes {
    /// The measurement of a probe guardrail (no data until the thresholds decide).
    pub fn measurement(&self, key: &str) -> Measurement {
        let states = self.states.lock().unwrap_or_else(|p| p.into_inner());
        states.get(key).map_or(Measurement::NoData, |s| Measurement::from_probe(s.health))
    }

    /// Runs every probe that is due (concurrently), for the active rollouts
    /// and the alert rules that watch a probe.
    pub async fn run_due<S: Store>(&self, app: &AppState<S>, now: Timestamp) {
        let mut targets: Vec<(String, String, ProbeSpec)> = {
            let rollouts = app.release.rollouts.lock().await;
            rollouts
                .iter()
                .filter(|(_, e)| e.state.status.is_active())
                .flat_map(|(k, e)| {
                    e.def.sources.iter().filter_map(move |(g, s)| match s {
                        GuardrailSource::Probe { url, spec } => Some((probe_key(k, g), url.clone(), spec.clone())),
                        _ => None,
                    })
                })
                .collect()
        };
        {
            let alerts = app.release.alerts.lock().await;
            targets.extend(alerts.iter().filter_map(|(name, e)| match &e.def.source {
                GuardrailSource::Probe { url, spec } => Some((alert_probe_key(name), url.clone(), spec.clone())),
                _ => None,
            }));
        }
        let due: Vec<(String, String, ProbeSpec)> = {
            let mut states = self.states.lock().unwrap_or_else(|p| p.into_inner());
            let live: std::collections::HashSet<&String> = targets.iter().map(|(k, _, _)| k).collect();
            states.retain(|k, _| live.contains(k));
            targets
                .iter()
                .filter(|(k, _, spec)| states.entry(k.clone()).or_insert_with(|| ProbeState::started(now)).is_due(spec, now))
                .cloned()
                .collect()
        };
        let attempts = futures_util::future::join_all(due.iter().map(|(_, url, spec)| attempt(&self.http, url, spec))).await;
        let mut states = self.states.lock().unwrap_or_else(|p| p.into_inner());
        for ((key, url, spec), a) in due.iter().zip(attempts) {
            let obs = probe::classify(&a);
            if let Some(st) = states.get_mut(key) {
                if let Some(change) = st.record(spec, &obs, now) {
                    tracing::info!(probe = %key, %url, from = ?change.from, to = ?change.to, "probe health changed");
                }
            }
        }
    }
}

async fn attempt(http: &reqwest::Client, url: &str, spec: &ProbeSpec) -> ProbeAttempt {
    let req = http.get(url).header("accept", "application/health+json, application/json;q=0.9, */*;q=0.1");
    let timeout = Duration::from_millis(spec.timeout_ms.max(1));
    match tokio::time::timeout(timeout, async {
        let r = req.send().await?;
        let status = r.status().as_u16();
        let body = r.text().await.unwrap_or_default();
        Ok::<_, reqwest::Error>((status, body))
    })
    .await
    {
        Err(_) => ProbeAttempt::Timeout,
        Ok(Err(e)) => ProbeAttempt::ConnectError { message: e.to_string() },
        Ok(Ok((status, body))) => ProbeAttempt::Response { status, body },
    }
}

/// Reads one number from a Prometheus instant-query answer.
pub fn parse_prometheus(body: &Value) -> Measurement {
    if body["status"] != "success" {
        let why = body["error"].as_str().unwrap_or("query failed");
        return Measurement::Error { message: format!("prometheus: {why}") };
    }
    let data = &body["data"];
    let sample = match data["resultType"].as_str() {
        Some("vector") => match data["result"].as_array().map(Vec::as_slice) {
            Some([]) | None => return Measurement::NoData,
            Some([one]) => &one["value"],
            Some(many) => {
                return Measurement::Error {
                    message: format!("prometheus: the query returned {} series; aggregate it to one", many.len()),
                };
            }
        },
        Some("scalar") => &data["result"],
        other => return Measurement::Error { message: format!("prometheus: unsupported result type {other:?}") },
    };
    match sample[1].as_str().and_then(|v| v.parse::<f64>().ok()) {
        Some(v) if v.is_nan() => Measurement::NoData,
        Some(value) => Measurement::Value { value },
        None => Measurement::Error { message: "prometheus: unreadable sample".into() },
    }
}

/// Runs an instant query (`GET {url}/api/v1/query?query=…`).
pub async fn prometheus_query(http: &reqwest::Client, url: &str, query: &str, timeout: Duration) -> Measurement {
    let endpoint = format!("{}/api/v1/query", url.trim_end_matches('/'));
    let r = tokio::time::timeout(timeout, async {
        let r = http.get(&endpoint).query(&[("query", query)]).send().await?;
        r.json::<Value>().await
    })
    .await;
    match r {
        Err(_) => Measurement::Error { message: "prometheus: timed out".into() },
        Ok(Err(e)) => Measurement::Error { message: format!("prometheus: {e}") },
        Ok(Ok(body)) => parse_prometheus(&body),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn prometheus_answers_become_measurements() {
        let one = json!({"status": "success", "data": {"resultType": "vector", "result": [{"metric": {}, "value": [1.5, "0.25"]}]}});
        assert_eq!(parse_prometheus(&one), Measurement::Value { value: 0.25 });
        let none = json!({"status": "success", "data": {"resultType": "vector", "result": []}});
        assert_eq!(parse_prometheus(&none), Measurement::NoData);
        let two = json!({"status": "success", "data": {"resultType": "vector", "result": [{"value": [1, "1"]}, {"value": [1, "2"]}]}});
        assert!(matches!(parse_prometheus(&two), Measurement::Error { .. }));
        let scalar = json!({"status": "success", "data": {"resultType": "scalar", "result": [1, "3"]}});
        assert_eq!(parse_prometheus(&scalar), Measurement::Value { value: 3.0 });
        let err = json!({"status": "error", "errorType": "bad_data", "error": "parse error"});
        assert!(matches!(parse_prometheus(&err), Measurement::Error { message } if message.contains("parse error")));
    }
}
