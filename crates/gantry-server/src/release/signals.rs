//! Guardrail metrics from Gantry's own events.
//!
//! Applications send track events to `POST /api/v1/events` tagged with the
//! flag under rollout and the variant they were served:
//!
//! | event `name` | counts |
//! |---|---|
//! | `request` | one request of the unit's arm |
//! | `error`   | one failed request (send it in addition to `request`) |
//! | `latency` | one latency sample, `value` in milliseconds |
//!
//! Latency (`arm_value`) guardrails need `request` events too: their minimum
//! sample and no-data rules count requests.
//!
//! The arm is the variant: `disabled`, `off` or `control` (what Unleash-style
//! evaluation reports when the flag is off for the unit) is the control arm;
//! any other variant is the rollout arm. Events without a flag or variant are
//! not attributed. Events are counted on arrival (server clock), after they
//! are durable.
//!
//! Requests and errors are monotone counters per environment, flag and arm
//! (the controller hands them to the guardrails as `ArmCounters`, which
//! difference them); latency keeps at most [`MAX_SAMPLES`] recent samples per
//! arm, no older than [`MAX_AGE_MS`], and the p95 is taken over the
//! guardrail's window. At most [`MAX_TRACKED`] flag/environment pairs are
//! tracked. Counters live in memory: after a restart they start from zero,
//! which the guardrails read as a counter reset. Events are counted as
//! accepted: a retried batch whose idempotency keys were seen before is
//! counted again here (the experiments fold counts it once).

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;

use gantry_api_types::{Event, EventKind};
use gantry_release::guardrail::{ArmCounters, Measurement, Metric};
use gantry_release::Timestamp;

/// Event name counting one request.
pub const REQUEST_EVENT: &str = "request";
/// Event name counting one failed request.
pub const ERROR_EVENT: &str = "error";
/// Event name carrying one latency sample (ms).
pub const LATENCY_EVENT: &str = "latency";
/// Variants that mean "flag off for this unit": the control arm.
pub const CONTROL_VARIANTS: [&str; 3] = ["disabled", "off", "control"];
/// Latency samples kept per arm.
pub const MAX_SAMPLES: usize = 20_000;
/// Oldest latency sample kept (1 h).
pub const MAX_AGE_MS: i64 = 3_600_000;
/// Flag/environment pairs tracked.
pub const MAX_TRACKED: usize = 1_024;
/// The latency percentile reported for arm-value guardrails.
pub const PERCENTILE: f64 = 0.95;

#[derive(Debug, Default)]
struct Arm {
    requests: u64,
    errors: u64,
    latency: VecDeque<(i64, f64)>,
}

impl Arm {
    fn percentile(&self, since: i64) -> Option<f64> {
        let mut v: Vec<f64> = self.latency.iter().filter(|(t, _)| *t > since).map(|(_, x)| *x).collect();
        if v.is_empty() {
            return None;
        }
        v.sort_by(f64::total_cmp);
        let rank = ((PERCENTILE * v.len() as f64).ceil() as usize).clamp(1, v.len());
        Some(v[rank - 1])
    }

    fn counters(&self, since: i64, with_value: bool) -> ArmCounters {
        ArmCounters { requests: self.requests, errors: self.errors, value: if with_value { self.percentile(since) } else { None } }
    }

    fn seen(&self) -> bool {
        self.requests > 0 || !self.latency.is_empty()
    }
}

#[derive(Debug, Default)]
struct FlagArms {
    control: Arm,
    treatment: Arm,
}

/// Per-arm counters by (environment, flag).
#[derive(Debug, Default)]
pub struct Signals {
    inner: Mutex<HashMap<(String, String), FlagArms>>,
}

/// Whether a variant belongs to the control arm.
pub fn is_control(variant: &str) -> bool {
    CONTROL_VARIANTS.iter().any(|c| c.eq_ignore_ascii_case(variant))
}

fn attributable(e: &Event) -> bool {
    e.kind == EventKind::Track
        && e.flag.is_some()
        && e.variant.is_some()
        && e.name.as_deref().is_some_and(|n| [REQUEST_EVENT, ERROR_EVENT, LATENCY_EVENT].contains(&n))
}

/// The events of a batch that guardrails count (usually few; copied before
/// the batch goes to the writer).
pub fn relevant(events: &[Event]) -> Vec<Event> {
    events.iter().filter(|e| attributable(e)).cloned().collect()
}

impl Signals {
    /// Counts the attributable events of one durable batch.
    pub fn record(&self, environment: &str, events: &[Event], received_ms: i64) {
        let mut map = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        for e in events {
            let (true, Some(flag), Some(variant), Some(name)) = (attributable(e), &e.flag, &e.variant, &e.name) else { continue };
            let key = (environment.to_owned(), flag.clone());
            if !map.contains_key(&key) && map.len() >= MAX_TRACKED {
                continue;
            }
            let arms = map.entry(key).or_default();
            let arm = if is_control(variant) { &mut arms.control } else { &mut arms.treatment };
            match name.as_str() {
                REQUEST_EVENT => arm.requests += 1,
                ERROR_EVENT => arm.errors += 1,
                _ => {
                    if let Some(v) = e.value.filter(|v| v.is_finite()) {
                        arm.latency.push_back((received_ms, v));
                        while arm.latency.len() > MAX_SAMPLES || arm.latency.front().is_some_and(|(t, _)| *t < received_ms - MAX_AGE_MS) {
                            arm.latency.pop_front();
                        }
                    }
                }
            }
        }
    }

    /// A guardrail measurement for one flag: per-arm counters (error rate),
    /// plus the p95 latency over `window_ms` (arm value). `with_control`:
    /// whether some traffic is still outside the rollout.
    pub fn measure(
        &self,
        environment: &str,
        flag: &str,
        metric: Metric,
        window_ms: u64,
        now: Timestamp,
        with_control: bool,
    ) -> Measurement {
        let map = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        let Some(arms) = map.get(&(environment.to_owned(), flag.to_owned())) else { return Measurement::NoData };
        let since = now.minus(window_ms).millis();
        let with_value = match metric {
            Metric::ErrorRate => false,
            Metric::ArmValue => true,
            Metric::Scalar => {
                return Measurement::Error { message: "the events source gives per-arm metrics, not a scalar".into() };
            }
        };
        if !arms.treatment.seen() && !arms.control.seen() {
            return Measurement::NoData;
        }
        Measurement::Arms {
            treatment: arms.treatment.counters(since, with_value),
            control: with_control.then(|| arms.control.counters(since, with_value)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn track(name: &str, variant: &str, value: Option<f64>) -> Event {
        Event {
            kind: EventKind::Track,
            unit_id: "u".into(),
            flag: Some("f".into()),
            variant: Some(variant.into()),
            name: Some(name.into()),
            value,
            timestamp: None,
            idempotency_key: None,
        }
    }

    #[test]
    fn counts_per_arm_and_p95_over_the_window() {
        let s = Signals::default();
        let mut batch = vec![track("request", "on", None), track("error", "on", None), track("request", "disabled", None)];
        batch.extend((1..=100).map(|i| track("latency", "on", Some(f64::from(i)))));
        batch.push(track("other", "on", None));
        // An old sample outside the window does not count.
        s.record("production", &[track("latency", "on", Some(10_000.0))], 0);
        s.record("production", &batch, 90_000);
        let m = s.measure("production", "f", Metric::ArmValue, 60_000, Timestamp::from_millis(100_000), true);
        let Measurement::Arms { treatment, control } = m else { panic!("arms expected, got {m:?}") };
        assert_eq!((treatment.requests, treatment.errors), (1, 1));
        assert_eq!(treatment.value, Some(95.0));
        assert_eq!(control.map(|c| (c.requests, c.errors, c.value)), Some((1, 0, None)));
        assert_eq!(s.measure("production", "g", Metric::ErrorRate, 1, Timestamp::from_millis(0), true), Measurement::NoData);
    }

    #[test]
    fn memory_is_bounded() {
        let s = Signals::default();
        let many: Vec<Event> = (0..MAX_SAMPLES + 10).map(|_| track("latency", "on", Some(1.0))).collect();
        s.record("e", &many, 5);
        let map = s.inner.lock().unwrap();
        assert_eq!(map[&("e".to_owned(), "f".to_owned())].treatment.latency.len(), MAX_SAMPLES);
    }
}
