//! Monte-Carlo harness for rollout decisions: simulated traffic with noise, driven through
//! `rollout::step` minute by minute with an injected clock. Shared by the integration test
//! (`simulation` module) and `examples/simulate.rs`.

#![allow(dead_code)]

use std::collections::BTreeMap;

use gantry_release::guardrail::{ArmCounters, Condition, GuardrailSpec, Measurement, Metric, Op};
use gantry_release::rng::SplitMix64;
use gantry_release::rollout::{step, Cause, Command, Input, RolloutPlan, RolloutState, RolloutTarget, Status, Step, Tick};
use gantry_release::time::MINUTE_MS;
use gantry_release::{Percentage, Timestamp};

/// Traffic and release model.
#[derive(Debug, Clone)]
pub struct Scenario {
    /// Mean requests per minute over both arms.
    pub requests_per_min: f64,
    /// Log-normal sigma of the per-minute traffic multiplier.
    pub traffic_sigma: f64,
    /// Control error rate.
    pub base_error_rate: f64,
    /// Treatment error rate = base × this.
    pub effect: f64,
    /// Gamma shape of the per-minute error-rate shock shared by both arms (overdispersion;
    /// larger = calmer; `f64::INFINITY` = none).
    pub shock_shape: f64,
}

impl Scenario {
    /// 2 000 requests/min (±30 % per minute), 1 % errors, shared shocks with CV ≈ 0.32.
    pub fn realistic(effect: f64) -> Self {
        Scenario { requests_per_min: 2000.0, traffic_sigma: 0.3, base_error_rate: 0.01, effect, shock_shape: 10.0 }
    }
}

/// The plan used for the decision-quality figures: 1 → 5 → 10 → 25 → 50 → 100 %, 10 minutes
/// each, a sequential comparison against control and a plain "error rate > 5 % for 5 minutes".
pub fn plan(alpha: f64) -> RolloutPlan {
    let mut seq =
        GuardrailSpec::new("errors-vs-control", Metric::ErrorRate, Condition::Sequential { alpha, mixing_sd: 0.01, relative_margin: 0.0 });
    seq.interval_ms = MINUTE_MS;
    seq.check.min_requests = 200;
    let mut thr = GuardrailSpec::new("error-rate", Metric::ErrorRate, Condition::Threshold { op: Op::Gt, value: 0.05 });
    thr.interval_ms = MINUTE_MS;
    thr.for_ms = 5 * MINUTE_MS;
    thr.check.min_requests = 50;
    RolloutPlan {
        target: RolloutTarget { flag: "checkout-v2".into(), environment: "production".into(), rule: None },
        steps: [1, 5, 10, 25, 50, 100].iter().map(|p| Step::Ramp { percentage: Percentage::pct(*p), hold_ms: 10 * MINUTE_MS }).collect(),
        guardrails: vec![seq, thr],
        on_failure: Default::default(),
        on_inconclusive: Default::default(),
        max_step_extension_ms: None,
    }
}

/// How one simulated rollout ended.
#[derive(Debug, Clone, PartialEq)]
pub struct Run {
    /// Final status.
    pub status: Status,
    /// Minutes from start to the final status change.
    pub minutes: f64,
    /// The guardrail that acted, if any.
    pub cause: Option<String>,
}

struct Rng(SplitMix64);

impl Rng {
    fn u(&mut self) -> f64 {
        self.0.next_f64().max(1e-300)
    }
    fn normal(&mut self) -> f64 {
        let (a, b) = (self.u(), self.u());
        (-2.0 * a.ln()).sqrt() * (std::f64::consts::TAU * b).cos()
    }
    fn gamma(&mut self, k: f64) -> f64 {
        // Marsaglia–Tsang, k >= 1.
        let d = k - 1.0 / 3.0;
        let c = 1.0 / (9.0 * d).sqrt();
        loop {
            let x = self.normal();
            let v = (1.0 + c * x).powi(3);
            if v > 0.0 && self.u().ln() < 0.5 * x * x + d - d * v + d * v.ln() {
                return d * v;
            }
        }
    }
    fn poisson(&mut self, lambda: f64) -> u64 {
        if lambda <= 0.0 {
            return 0;
        }
        if lambda < 30.0 {
            let (l, mut k, mut p) = ((-lambda).exp(), 0u64, 1.0);
            loop {
                p *= self.u();
                if p <= l {
                    return k;
                }
                k += 1;
            }
        }
        (lambda + lambda.sqrt() * self.normal()).round().max(0.0) as u64
    }
    fn binomial(&mut self, n: u64, p: f64) -> u64 {
        if n == 0 || p <= 0.0 {
            return 0;
        }
        if p >= 1.0 {
            return n;
        }
        if n < 64 {
            return (0..n).filter(|_| self.u() < p).count() as u64;
        }
        let mean = n as f64 * p;
        if mean < 25.0 {
            return self.poisson(mean).min(n);
        }
        if n as f64 * (1.0 - p) < 25.0 {
            return n - self.poisson(n as f64 * (1.0 - p)).min(n);
        }
        (mean + (mean * (1.0 - p)).sqrt() * self.normal()).round().clamp(0.0, n as f64) as u64
    }
}

/// Runs one rollout to its end (or 4 hours), ticking every minute.
pub fn run(plan: &RolloutPlan, sc: &Scenario, seed: u64) -> Run {
    let mut rng = Rng(SplitMix64::new(seed));
    let t0 = Timestamp::from_millis(1_800_000_000_000);
    let mut state = step(plan, &RolloutState::new(), &Input::Command(Command::Start), t0).expect("start").state;
    let (mut t, mut c) = (ArmCounters::default(), ArmCounters::default());
    for minute in 1..=240u64 {
        let now = t0.plus(minute * MINUTE_MS);
        let share = state.percentage.fraction();
        let traffic = sc.requests_per_min * (sc.traffic_sigma * rng.normal() - sc.traffic_sigma * sc.traffic_sigma / 2.0).exp();
        let n = rng.poisson(traffic);
        let nt = rng.binomial(n, share);
        let shock = if sc.shock_shape.is_finite() { rng.gamma(sc.shock_shape) / sc.shock_shape } else { 1.0 };
        let p = (sc.base_error_rate * shock).min(1.0);
        t.requests += nt;
        t.errors += rng.binomial(nt, (p * sc.effect).min(1.0));
        c.requests += n - nt;
        c.errors += rng.binomial(n - nt, p);
        let m = Measurement::Arms { treatment: t, control: Some(c) };
        let measurements: BTreeMap<_, _> = plan.guardrails.iter().map(|g| (g.name.clone(), m.clone())).collect();
        let out = step(plan, &state, &Input::Tick(Tick { measurements }), now).expect("tick");
        state = out.state;
        if !state.status.is_active() {
            let cause = match state.pause_cause.clone().or_else(|| out.transitions.last().map(|x| x.cause.clone())) {
                Some(
                    Cause::GuardrailFailed { guardrail } | Cause::GuardrailErrored { guardrail } | Cause::ExtensionExhausted { guardrail },
                ) => Some(guardrail),
                _ => None,
            };
            return Run { status: state.status, minutes: minute as f64, cause };
        }
    }
    Run { status: state.status, minutes: 240.0, cause: None }
}

/// Summary of many runs.
#[derive(Debug, Clone)]
pub struct Summary {
    /// Runs.
    pub runs: usize,
    /// Rolled back.
    pub rolled_back: usize,
    /// Paused (inconclusive).
    pub paused: usize,
    /// Completed.
    pub completed: usize,
    /// Minutes to rollback, sorted.
    pub detection_minutes: Vec<f64>,
    /// Rollbacks by guardrail.
    pub by_guardrail: BTreeMap<String, usize>,
}

impl Summary {
    /// Quantile of the detection times (nearest rank).
    pub fn quantile(&self, q: f64) -> Option<f64> {
        let v = &self.detection_minutes;
        if v.is_empty() {
            return None;
        }
        let idx = ((q * v.len() as f64).ceil() as usize).clamp(1, v.len()) - 1;
        Some(v[idx])
    }
}

/// Runs `runs` rollouts with seeds derived from `seed`.
pub fn simulate(plan: &RolloutPlan, sc: &Scenario, runs: usize, seed: u64) -> Summary {
    let mut s = Summary { runs, rolled_back: 0, paused: 0, completed: 0, detection_minutes: Vec::new(), by_guardrail: BTreeMap::new() };
    let mut seeds = SplitMix64::new(seed);
    for _ in 0..runs {
        let r = run(plan, sc, seeds.next_u64());
        match r.status {
            Status::RolledBack => {
                s.rolled_back += 1;
                s.detection_minutes.push(r.minutes);
                *s.by_guardrail.entry(r.cause.unwrap_or_default()).or_default() += 1;
            }
            Status::Paused => s.paused += 1,
            Status::Completed => s.completed += 1,
            _ => {}
        }
    }
    s.detection_minutes.sort_by(f64::total_cmp);
    s
}
