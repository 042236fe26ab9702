//! Guardrails: turning one measurement into a verdict, and verdicts into a guardrail status.
//!
//! [`Check`] is the part shared with alert rules (what to measure and when it is bad);
//! [`GuardrailSpec`] adds cadence, `for`, budgets and dry-run (Argo's metric fields, delivery.md §9).

use serde::{Deserialize, Serialize};

use crate::sequential::{lower_bound, StratifiedDiff};
use crate::time::{MINUTE_MS, SECOND_MS};
use crate::{ReleaseError, Timestamp};

/// What a check looks at.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Metric {
    /// Errors ÷ requests over the window, from [`Measurement::Arms`] counters.
    ErrorRate,
    /// The per-arm window value of [`ArmCounters::value`] (p95 latency in ms, or a custom metric).
    ArmValue,
    /// A single number from [`Measurement::Value`] (a Prometheus instant query, a probe's failing ratio).
    Scalar,
}

/// A comparison operator; the condition is the *bad* case.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Op {
    /// Bad when greater.
    #[serde(rename = ">")]
    Gt,
    /// Bad when greater or equal.
    #[serde(rename = ">=")]
    Ge,
    /// Bad when smaller.
    #[serde(rename = "<")]
    Lt,
    /// Bad when smaller or equal.
    #[serde(rename = "<=")]
    Le,
}

impl Op {
    fn holds(self, a: f64, b: f64) -> bool {
        match self {
            Op::Gt => a > b,
            Op::Ge => a >= b,
            Op::Lt => a < b,
            Op::Le => a <= b,
        }
    }
}

/// When a measurement counts as a breach.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Condition {
    /// The treatment (or scalar) value `op` a fixed threshold, e.g. error rate `>` 0.05.
    Threshold {
        /// Operator.
        op: Op,
        /// Threshold in the metric's unit (a fraction for error rates).
        value: f64,
    },
    /// Treatment `op` `factor` × control, e.g. p95 latency `>` 2 × control. With `floor`, the
    /// treatment must also be `op` the floor (so 0.2 % vs 0.1 % errors is not a breach).
    RelativeToControl {
        /// Operator.
        op: Op,
        /// Factor applied to the control value.
        factor: f64,
        /// Absolute floor the treatment value must also cross.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        floor: Option<f64>,
    },
    /// One-sided always-valid test that the treatment error rate exceeds the control's by more
    /// than `relative_margin` × control rate (error rates only; see [`crate::sequential`]).
    Sequential {
        /// Level of the test (chance of ever flagging a release that is no worse). Default 0.05.
        #[serde(default = "default_alpha")]
        alpha: f64,
        /// Standard deviation of the mixing distribution, in error-rate units: the size of
        /// regression the test is tuned for. Default 0.01 (one percentage point).
        #[serde(default = "default_mixing_sd")]
        mixing_sd: f64,
        /// Tolerated relative increase (0.1 = treatment may be 10 % worse). Default 0.
        #[serde(default)]
        relative_margin: f64,
    },
}

fn default_alpha() -> f64 {
    0.05
}
fn default_mixing_sd() -> f64 {
    0.01
}

/// What an empty measurement means.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum NoDataPolicy {
    /// No traffic is fine (quiet services).
    Success,
    /// No verdict; blocks promotion until data arrive (default).
    #[default]
    Inconclusive,
    /// No data is a breach (Flagger's behaviour).
    Failure,
}

/// What to measure, over which window, and when it is bad. Shared by guardrails and alert rules.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Check {
    /// What is measured.
    pub metric: Metric,
    /// When it is bad.
    pub condition: Condition,
    /// Window the rates are computed over (default 5 minutes).
    #[serde(default = "default_window")]
    pub window_ms: u64,
    /// Fewer treatment (or control, when compared) requests than this in the window (for
    /// [`Condition::Sequential`]: in total) give [`Verdict::Inconclusive`]. Default 0.
    #[serde(default)]
    pub min_requests: u64,
    /// What [`Measurement::NoData`] (or a window without requests) means.
    #[serde(default)]
    pub on_no_data: NoDataPolicy,
}

fn default_window() -> u64 {
    5 * MINUTE_MS
}

/// Counters of one arm, as the server has them now.
///
/// `requests` and `errors` are monotone counters (any origin: since process start, since the
/// rollout started, …); the crate keeps earlier readings and differences them, so the server
/// never computes windows for them. A decrease is read as a counter reset (Prometheus' `increase`).
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize, Deserialize)]
pub struct ArmCounters {
    /// Requests served so far.
    pub requests: u64,
    /// Of which failed.
    pub errors: u64,
    /// For [`Metric::ArmValue`]: the value over the check's window ending now (p95 latency in ms,
    /// a custom metric), computed by the server.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<f64>,
}

/// One observation handed to a guardrail or alert rule.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Measurement {
    /// Per-arm counters; `control` is the part of traffic not in the rollout (absent at 100 %).
    Arms {
        /// The new variant.
        treatment: ArmCounters,
        /// The old variant, if any traffic still gets it.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        control: Option<ArmCounters>,
    },
    /// A number (Prometheus instant query with one sample, a probe's failing ratio).
    Value {
        /// The value; NaN counts as no data.
        value: f64,
    },
    /// The source answered with nothing (empty vector, no traffic).
    NoData,
    /// The source failed (timeout, bad query).
    Error {
        /// Why, for the audit log.
        message: String,
    },
}

impl Measurement {
    /// A health probe as a scalar: 1.0 when unhealthy, 0.0 when healthy (check with `> 0.5`).
    pub fn from_probe(health: crate::probe::ProbeHealth) -> Self {
        match health {
            crate::probe::ProbeHealth::Unknown => Measurement::NoData,
            h => Measurement::Value { value: if h == crate::probe::ProbeHealth::Unhealthy { 1.0 } else { 0.0 } },
        }
    }
}

/// The four outcomes of one evaluation (Argo Rollouts).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    /// Within bounds.
    Successful,
    /// Breach.
    Failed,
    /// Not enough information (too few requests, no data under the inconclusive policy, warming up).
    Inconclusive,
    /// The measurement itself failed.
    Error,
}

/// Why an evaluation ended as it did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Basis {
    /// The value was compared with the condition.
    Compared,
    /// Below `min_requests`.
    MinSample,
    /// No data; the verdict comes from the policy.
    NoData,
    /// First counter reading: nothing to difference yet.
    WarmingUp,
    /// The source reported an error, or the measurement kind does not fit the metric.
    SourceError,
}

/// The result of measuring a [`Check`] once.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Assessment {
    /// Verdict of this single measurement (before `for` and budgets).
    pub verdict: Verdict,
    /// Why.
    pub basis: Basis,
    /// Treatment (or scalar) value compared, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<f64>,
    /// Control value compared, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub control_value: Option<f64>,
    /// For sequential checks: the lower confidence bound of treatment − control error rate.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lower_bound: Option<f64>,
    /// Treatment requests the verdict rests on (window, or total for sequential checks).
    pub requests: u64,
}

/// Counter history of one check: enough earlier readings to cover the window, plus the
/// sequential test's sums. Part of the persisted state.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct MeasureState {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    last_raw_treatment: Option<[u64; 2]>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    last_raw_control: Option<[u64; 2]>,
    #[serde(default)]
    ring: Vec<Snapshot>,
    /// Sums of the sequential comparison.
    #[serde(default)]
    pub sequential: StratifiedDiff,
}

#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
struct Snapshot {
    at: Timestamp,
    /// Reset-corrected counters: treatment requests, errors, control requests, errors.
    v: [u64; 4],
}

fn increase(last: Option<u64>, raw: u64) -> u64 {
    match last {
        None => 0,
        Some(l) if raw >= l => raw - l,
        Some(_) => raw,
    }
}

impl MeasureState {
    /// Records a reading; returns (window delta, increment since the previous reading), both
    /// `None` on the very first reading.
    fn push(&mut self, t: &ArmCounters, c: Option<&ArmCounters>, now: Timestamp, window_ms: u64) -> Option<([u64; 4], [u64; 4])> {
        let prev = self.ring.last().map(|s| s.v);
        let mut v = prev.unwrap_or([0; 4]);
        let lt = self.last_raw_treatment;
        v[0] += increase(lt.map(|x| x[0]), t.requests);
        v[1] += increase(lt.map(|x| x[1]), t.errors);
        self.last_raw_treatment = Some([t.requests, t.errors]);
        if let Some(c) = c {
            let lc = self.last_raw_control;
            v[2] += increase(lc.map(|x| x[0]), c.requests);
            v[3] += increase(lc.map(|x| x[1]), c.errors);
            self.last_raw_control = Some([c.requests, c.errors]);
        }
        let Some(prev) = prev else {
            self.ring.push(Snapshot { at: now, v });
            return None;
        };
        // Baseline: the newest earlier reading at or before the window start, else the oldest.
        let start = now.minus(window_ms);
        let base_idx = self.ring.iter().rposition(|s| s.at <= start).unwrap_or(0);
        self.ring.drain(..base_idx);
        let base = self.ring[0].v;
        self.ring.push(Snapshot { at: now, v });
        let sub = |a: [u64; 4], b: [u64; 4]| [a[0] - b[0], a[1] - b[1], a[2] - b[2], a[3] - b[3]];
        Some((sub(v, base), sub(v, prev)))
    }
}

fn no_data(check: &Check) -> Assessment {
    let verdict = match check.on_no_data {
        NoDataPolicy::Success => Verdict::Successful,
        NoDataPolicy::Inconclusive => Verdict::Inconclusive,
        NoDataPolicy::Failure => Verdict::Failed,
    };
    Assessment { verdict, basis: Basis::NoData, value: None, control_value: None, lower_bound: None, requests: 0 }
}

fn simple(verdict: Verdict, basis: Basis, requests: u64) -> Assessment {
    Assessment { verdict, basis, value: None, control_value: None, lower_bound: None, requests }
}

impl Check {
    /// Checks that the settings can work.
    pub fn validate(&self, name: &str) -> Result<(), ReleaseError> {
        let bad = |field, problem| Err(ReleaseError::InvalidSetting { name: name.to_owned(), field, problem });
        match &self.condition {
            Condition::Threshold { value, .. } if !value.is_finite() => return bad("condition.value", "must be finite"),
            Condition::RelativeToControl { factor, .. } if !(factor.is_finite() && *factor > 0.0) => {
                return bad("condition.factor", "must be positive")
            }
            Condition::RelativeToControl { .. } if self.metric == Metric::Scalar => {
                return bad("condition", "a scalar metric has no control arm")
            }
            Condition::Sequential { .. } if self.metric != Metric::ErrorRate => {
                return bad("condition", "sequential tests compare error rates only")
            }
            Condition::Sequential { alpha, mixing_sd, relative_margin } => {
                if !(*alpha > 0.0 && *alpha < 0.5) {
                    return bad("condition.alpha", "must be in (0, 0.5)");
                }
                if !(mixing_sd.is_finite() && *mixing_sd > 0.0) {
                    return bad("condition.mixing_sd", "must be positive");
                }
                if !(relative_margin.is_finite() && *relative_margin >= 0.0) {
                    return bad("condition.relative_margin", "must be non-negative");
                }
            }
            _ => {}
        }
        if self.window_ms == 0 {
            return bad("window_ms", "must be positive");
        }
        Ok(())
    }

    /// Measures once: updates the counter history in `ms` and returns the verdict.
    pub fn assess(&self, ms: &mut MeasureState, m: &Measurement, now: Timestamp) -> Assessment {
        match (self.metric, m) {
            (_, Measurement::Error { .. }) => simple(Verdict::Error, Basis::SourceError, 0),
            (_, Measurement::NoData) => no_data(self),
            (Metric::Scalar, Measurement::Value { value }) if value.is_nan() => no_data(self),
            (Metric::Scalar, Measurement::Value { value }) => match &self.condition {
                Condition::Threshold { op, value: th } => Assessment {
                    verdict: if op.holds(*value, *th) { Verdict::Failed } else { Verdict::Successful },
                    basis: Basis::Compared,
                    value: Some(*value),
                    control_value: None,
                    lower_bound: None,
                    requests: 0,
                },
                _ => simple(Verdict::Error, Basis::SourceError, 0),
            },
            (Metric::ErrorRate | Metric::ArmValue, Measurement::Arms { treatment, control }) => {
                self.assess_arms(ms, treatment, control.as_ref(), now)
            }
            _ => simple(Verdict::Error, Basis::SourceError, 0),
        }
    }

    fn assess_arms(&self, ms: &mut MeasureState, t: &ArmCounters, c: Option<&ArmCounters>, now: Timestamp) -> Assessment {
        let Some((win, inc)) = ms.push(t, c, now, self.window_ms) else {
            return simple(Verdict::Inconclusive, Basis::WarmingUp, 0);
        };
        if let Condition::Sequential { alpha, mixing_sd, relative_margin } = self.condition {
            ms.sequential.add(inc[0], inc[1], inc[2], inc[3]);
            let s = &ms.sequential;
            if win[0] == 0 && s.treatment_requests == 0 {
                return no_data(self);
            }
            let n = s.treatment_requests.min(s.control_requests);
            let Some(est) = s.estimate().filter(|_| n >= self.min_requests.max(1)) else {
                return simple(Verdict::Inconclusive, Basis::MinSample, s.treatment_requests);
            };
            let lb = lower_bound(&est, mixing_sd, alpha);
            let margin = relative_margin * est.control_rate;
            return Assessment {
                verdict: if lb > margin { Verdict::Failed } else { Verdict::Successful },
                basis: Basis::Compared,
                value: Some(est.treatment_rate),
                control_value: Some(est.control_rate),
                lower_bound: Some(lb),
                requests: s.treatment_requests,
            };
        }
        let (t_req, t_err, c_req, c_err) = (win[0], win[1], win[2], win[3]);
        if t_req == 0 {
            return no_data(self);
        }
        let compares = matches!(self.condition, Condition::RelativeToControl { .. });
        if t_req < self.min_requests || (compares && c_req < self.min_requests.max(1)) {
            return simple(Verdict::Inconclusive, Basis::MinSample, t_req);
        }
        let (tv, cv) = match self.metric {
            Metric::ErrorRate => {
                let rate = |e: u64, n: u64| if n == 0 { None } else { Some((e.min(n)) as f64 / n as f64) };
                (rate(t_err, t_req), rate(c_err, c_req))
            }
            _ => (t.value.filter(|v| !v.is_nan()), c.and_then(|c| c.value).filter(|v| !v.is_nan())),
        };
        let Some(tv) = tv else { return no_data(self) };
        let failed = match &self.condition {
            Condition::Threshold { op, value } => op.holds(tv, *value),
            Condition::RelativeToControl { op, factor, floor } => {
                let Some(cv) = cv else {
                    return simple(Verdict::Inconclusive, Basis::MinSample, t_req);
                };
                op.holds(tv, factor * cv) && floor.is_none_or(|f| op.holds(tv, f))
            }
            Condition::Sequential { .. } => unreachable!("handled above"),
        };
        Assessment {
            verdict: if failed { Verdict::Failed } else { Verdict::Successful },
            basis: Basis::Compared,
            value: Some(tv),
            control_value: if compares { cv } else { None },
            lower_bound: None,
            requests: t_req,
        }
    }
}

/// A guardrail of a rollout plan.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GuardrailSpec {
    /// Unique name within the plan; the key of its measurement in a tick.
    pub name: String,
    /// What is measured and when it is bad.
    #[serde(flatten)]
    pub check: Check,
    /// Time between evaluations (default 30 s).
    #[serde(default = "default_interval")]
    pub interval_ms: u64,
    /// A breach must persist this long (every evaluation failing) before it counts (default 0).
    #[serde(default)]
    pub for_ms: u64,
    /// Counted failures tolerated over the run; one more fails the guardrail (Argo `failureLimit`,
    /// default 0 = first counted failure). `None` disables the total limit.
    #[serde(default = "default_failure_limit")]
    pub failure_limit: Option<u32>,
    /// Counted failures in a row tolerated; one more fails the guardrail. `None` = no limit (default).
    #[serde(default)]
    pub consecutive_failure_limit: Option<u32>,
    /// Errors in a row tolerated; one more makes the guardrail [`GuardrailStatus::Errored`] (default 4).
    #[serde(default = "default_consecutive_error_limit")]
    pub consecutive_error_limit: u32,
    /// Inconclusive evaluations tolerated before the rollout pauses; `None` = unlimited (default):
    /// inconclusive results then only hold promotion back (see the step extension).
    #[serde(default)]
    pub inconclusive_limit: Option<u32>,
    /// Evaluated and reported, never acted on.
    #[serde(default)]
    pub dry_run: bool,
}

fn default_interval() -> u64 {
    30 * SECOND_MS
}
fn default_failure_limit() -> Option<u32> {
    Some(0)
}
fn default_consecutive_error_limit() -> u32 {
    4
}

impl GuardrailSpec {
    /// A guardrail with the defaults above.
    pub fn new(name: impl Into<String>, metric: Metric, condition: Condition) -> Self {
        GuardrailSpec {
            name: name.into(),
            check: Check { metric, condition, window_ms: default_window(), min_requests: 0, on_no_data: NoDataPolicy::default() },
            interval_ms: default_interval(),
            for_ms: 0,
            failure_limit: default_failure_limit(),
            consecutive_failure_limit: None,
            consecutive_error_limit: default_consecutive_error_limit(),
            inconclusive_limit: None,
            dry_run: false,
        }
    }

    /// Checks that the settings can work.
    pub fn validate(&self) -> Result<(), ReleaseError> {
        self.check.validate(&self.name)?;
        if self.interval_ms == 0 {
            return Err(ReleaseError::InvalidSetting { name: self.name.clone(), field: "interval_ms", problem: "must be positive" });
        }
        Ok(())
    }
}

/// Where a guardrail stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum GuardrailStatus {
    /// No breach (or nothing measured yet).
    #[default]
    Ok,
    /// Breaching: inside `for`, or counted failures still within budget.
    Breaching,
    /// Failure budget exhausted: act (`on_failure`).
    Failed,
    /// Too many errors in a row: act as on failure (Argo aborts on Error).
    Errored,
    /// Too many inconclusive results: pause for a human.
    Inconclusive,
}

impl GuardrailStatus {
    /// Failed, errored or inconclusive: stays so until the analysis is reset (resume, retry).
    pub fn is_terminal(self) -> bool {
        matches!(self, GuardrailStatus::Failed | GuardrailStatus::Errored | GuardrailStatus::Inconclusive)
    }
}

/// Bookkeeping of one guardrail; part of the persisted rollout state.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct GuardrailState {
    /// Status after the latest evaluation.
    pub status: GuardrailStatus,
    /// When the next evaluation is due.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_eval_at: Option<Timestamp>,
    /// Latest evaluation time.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_eval_at: Option<Timestamp>,
    /// Latest single-measurement verdict.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_verdict: Option<Verdict>,
    /// Start of the current run of failed evaluations (for `for`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub breach_since: Option<Timestamp>,
    /// Evaluations so far.
    pub evaluations: u32,
    /// Counted failures (breaches older than `for`).
    pub failures: u32,
    /// Counted failures since the last success.
    pub consecutive_failures: u32,
    /// Errors in a row.
    pub consecutive_errors: u32,
    /// Inconclusive evaluations.
    pub inconclusives: u32,
    /// Counter history and sequential sums.
    #[serde(default)]
    pub measure: MeasureState,
}

impl GuardrailState {
    /// Folds one assessment into the bookkeeping (the `for` timer and the budgets).
    pub fn record(&mut self, spec: &GuardrailSpec, a: &Assessment, now: Timestamp) {
        self.evaluations += 1;
        self.last_eval_at = Some(now);
        self.next_eval_at = Some(now.plus(spec.interval_ms));
        self.last_verdict = Some(a.verdict);
        if self.status.is_terminal() {
            return;
        }
        match a.verdict {
            Verdict::Successful => {
                self.breach_since = None;
                self.consecutive_failures = 0;
                self.consecutive_errors = 0;
                self.status = GuardrailStatus::Ok;
            }
            Verdict::Inconclusive => {
                self.breach_since = None;
                self.consecutive_errors = 0;
                self.inconclusives += 1;
                self.status = match spec.inconclusive_limit {
                    Some(limit) if self.inconclusives > limit => GuardrailStatus::Inconclusive,
                    _ if self.consecutive_failures > 0 => GuardrailStatus::Breaching,
                    _ => GuardrailStatus::Ok,
                };
            }
            Verdict::Error => {
                self.consecutive_errors += 1;
                if self.consecutive_errors > spec.consecutive_error_limit {
                    self.status = GuardrailStatus::Errored;
                }
            }
            Verdict::Failed => {
                self.consecutive_errors = 0;
                let since = *self.breach_since.get_or_insert(now);
                if now.since(since) >= spec.for_ms {
                    self.failures += 1;
                    self.consecutive_failures += 1;
                }
                let over = |limit: Option<u32>, n: u32| limit.is_some_and(|l| n > l);
                self.status = if over(spec.failure_limit, self.failures) || over(spec.consecutive_failure_limit, self.consecutive_failures)
                {
                    GuardrailStatus::Failed
                } else {
                    GuardrailStatus::Breaching
                };
            }
        }
    }

    /// Forgets verdicts, budgets and the sequential sums, keeping the counter readings (so the
    /// next window is still computed) and the evaluation cadence.
    pub fn reset_analysis(&mut self) {
        let measure = MeasureState { sequential: StratifiedDiff::default(), ..std::mem::take(&mut self.measure) };
        *self = GuardrailState { next_eval_at: self.next_eval_at, measure, ..GuardrailState::default() };
    }

    /// The latest verdict was a success and nothing is breaching: promotion may proceed.
    pub fn clears_promotion(&self) -> bool {
        self.status == GuardrailStatus::Ok && self.last_verdict == Some(Verdict::Successful)
    }
}
