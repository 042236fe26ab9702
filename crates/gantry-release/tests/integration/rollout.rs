//! Rollout scenarios with an injected clock.

use std::collections::BTreeMap;

use gantry_release::guardrail::{ArmCounters, Condition, GuardrailSpec, GuardrailStatus, Measurement, Metric, NoDataPolicy, Op, Verdict};
use gantry_release::rollout::{
    next_wakeup, step, Cause, Command, Event, FailureAction, InconclusiveAction, Input, Outcome, RolloutPlan, RolloutState, RolloutTarget,
    Status, Step, Tick,
};
use gantry_release::time::MINUTE_MS;
use gantry_release::{Effect, Percentage, ReleaseError, Timestamp};

const T0: Timestamp = Timestamp::from_millis(1_800_000_000_000);

fn at(min: u64) -> Timestamp {
    T0.plus(min * MINUTE_MS)
}

fn ramp(p: u16, hold_min: u64) -> Step {
    Step::Ramp { percentage: Percentage::pct(p), hold_ms: hold_min * MINUTE_MS }
}

fn threshold_guardrail() -> GuardrailSpec {
    let mut g = GuardrailSpec::new("error-rate", Metric::ErrorRate, Condition::Threshold { op: Op::Gt, value: 0.05 });
    g.interval_ms = MINUTE_MS;
    g.for_ms = 5 * MINUTE_MS;
    g.check.min_requests = 100;
    g
}

fn plan(steps: Vec<Step>, guardrails: Vec<GuardrailSpec>) -> RolloutPlan {
    let p = RolloutPlan {
        target: RolloutTarget { flag: "new-checkout".into(), environment: "prod".into(), rule: Some("r1".into()) },
        steps,
        guardrails,
        on_failure: FailureAction::RollbackToZero,
        on_inconclusive: InconclusiveAction::Pause,
        max_step_extension_ms: None,
    };
    p.validate().unwrap();
    p
}

/// Drives a rollout minute by minute; traffic per minute and treatment error rate from closures.
struct Driver {
    plan: RolloutPlan,
    state: RolloutState,
    t: ArmCounters,
    c: ArmCounters,
    log: Vec<Outcome>,
}

impl Driver {
    fn new(plan: RolloutPlan) -> Self {
        Driver { plan, state: RolloutState::new(), t: ArmCounters::default(), c: ArmCounters::default(), log: Vec::new() }
    }

    fn cmd(&mut self, c: Command, now: Timestamp) -> Result<(), ReleaseError> {
        let out = step(&self.plan, &self.state, &Input::Command(c), now)?;
        self.state = out.state.clone();
        self.state.check(&self.plan).unwrap();
        self.log.push(out);
        Ok(())
    }

    /// One minute of traffic (`requests` total, treatment error rate `t_rate`, control 1 %), then a tick.
    fn minute(&mut self, now: Timestamp, requests: u64, t_rate: f64) -> &Outcome {
        let nt = (requests as f64 * self.state.percentage.fraction()).round() as u64;
        self.t.requests += nt;
        self.t.errors += (nt as f64 * t_rate).round() as u64;
        self.c.requests += requests - nt;
        self.c.errors += ((requests - nt) as f64 * 0.01).round() as u64;
        let m = Measurement::Arms { treatment: self.t, control: Some(self.c) };
        let measurements = self.plan.guardrails.iter().map(|g| (g.name.clone(), m.clone())).collect();
        self.tick(Tick { measurements }, now)
    }

    fn tick(&mut self, tick: Tick, now: Timestamp) -> &Outcome {
        let out = step(&self.plan, &self.state, &Input::Tick(tick), now).unwrap();
        self.state = out.state.clone();
        self.state.check(&self.plan).unwrap();
        self.log.push(out);
        self.log.last().unwrap()
    }

    fn percentages(&self) -> Vec<Percentage> {
        self.log
            .iter()
            .flat_map(|o| o.effects.iter())
            .filter_map(|e| match e {
                Effect::SetPercentage { percentage, .. } => Some(*percentage),
                _ => None,
            })
            .collect()
    }

    fn events(&self) -> Vec<Event> {
        self.log.iter().flat_map(|o| o.transitions.iter().map(|t| t.event.clone())).collect()
    }
}

#[test]
fn healthy_rollout_walks_every_step_after_its_hold() {
    let mut d = Driver::new(plan(vec![ramp(1, 10), ramp(10, 10), ramp(50, 10), ramp(100, 0)], vec![threshold_guardrail()]));
    d.cmd(Command::Start, T0).unwrap();
    assert_eq!(d.state.percentage, Percentage::pct(1));
    let mut entered = Vec::new();
    for m in 1..=60 {
        // 20 000 requests/min so even 1 % clears the minimum sample.
        let out = d.minute(at(m), 20_000, 0.01).clone();
        for t in out.transitions.iter().filter(|t| t.event == Event::StepEntered) {
            entered.push((m, t.step));
        }
        if d.state.status == Status::Completed {
            break;
        }
    }
    assert_eq!(d.state.status, Status::Completed);
    assert_eq!(entered, vec![(10, 1), (20, 2), (30, 3)], "each hold is exactly 10 minutes");
    assert_eq!(d.percentages(), vec![Percentage::pct(1), Percentage::pct(10), Percentage::pct(50), Percentage::pct(100)]);
    assert_eq!(d.state.finished_at, Some(at(30)));
}

#[test]
fn threshold_breach_must_last_for_before_rollback() {
    let mut d = Driver::new(plan(vec![ramp(10, 60), ramp(100, 0)], vec![threshold_guardrail()]));
    d.cmd(Command::Start, T0).unwrap();
    for m in 1..=5 {
        d.minute(at(m), 10_000, 0.01);
    }
    // 10 % errors from minute 6 on. The 5-minute window crosses 5 % at minute 8; the breach
    // must then persist 5 more minutes (evaluations at 8..=13) before it counts.
    let mut rolled_back_at = None;
    for m in 6..=30 {
        let out = d.minute(at(m), 10_000, 0.10).clone();
        if out.transitions.iter().any(|t| t.event == Event::RolledBack) {
            rolled_back_at = Some(m);
            break;
        }
        if m < 13 {
            assert!(d.state.status.is_active());
        }
    }
    assert_eq!(rolled_back_at, Some(13));
    assert_eq!(d.state.status, Status::RolledBack);
    assert_eq!(d.state.percentage, Percentage::ZERO);
    assert_eq!(d.percentages().last(), Some(&Percentage::ZERO));
    assert!(d.state.pause_cause.is_none());
    let last = d.log.last().unwrap();
    assert!(last.effects.iter().any(|e| matches!(e, Effect::Notify { severity: gantry_release::Severity::Critical, .. })));
}

#[test]
fn a_short_blip_resets_the_for_timer() {
    let mut d = Driver::new(plan(vec![ramp(10, 60), ramp(100, 0)], vec![threshold_guardrail()]));
    d.cmd(Command::Start, T0).unwrap();
    let mut min = 0;
    for _ in 0..5 {
        // 3 bad minutes, 3 good: the 5-minute window flips but never stays over 5 % for 5 minutes.
        for _ in 0..3 {
            min += 1;
            d.minute(at(min), 10_000, 0.12);
        }
        for _ in 0..3 {
            min += 1;
            d.minute(at(min), 10_000, 0.0);
        }
    }
    assert!(d.state.status.is_active(), "{:?}", d.state.status);
    assert!(d.events().iter().any(|e| matches!(e, Event::GuardrailChanged { to: GuardrailStatus::Breaching, .. })));
}

#[test]
fn minimum_sample_and_no_data_hold_promotion_then_pause() {
    let mut g = threshold_guardrail();
    g.check.min_requests = 1_000;
    let mut d = Driver::new(plan(vec![ramp(1, 5), ramp(100, 0)], vec![g]));
    d.cmd(Command::Start, T0).unwrap();
    // 1 % of 10 000/min = 100/min: a 5-minute window never reaches 1 000.
    for m in 1..=9 {
        d.minute(at(m), 10_000, 0.01);
        assert_eq!(d.state.status, Status::Progressing, "minute {m}: extended, not advanced");
        assert_eq!(d.state.step, 0);
    }
    let last_eval = d.log.last().unwrap().evaluations[0].clone();
    assert_eq!(last_eval.assessment.verdict, Verdict::Inconclusive);
    // Hold 5 + extension 5 (= hold) → pause at minute 10.
    d.minute(at(10), 10_000, 0.01);
    assert_eq!(d.state.status, Status::Paused);
    assert_eq!(d.state.pause_cause, Some(Cause::ExtensionExhausted { guardrail: "error-rate".into() }));
    assert_eq!(d.state.percentage, Percentage::pct(1), "inconclusive never rolls back by default");
}

#[test]
fn no_data_policies() {
    for (policy, expect) in [
        (NoDataPolicy::Success, Status::Completed),
        (NoDataPolicy::Inconclusive, Status::Paused),
        (NoDataPolicy::Failure, Status::RolledBack),
    ] {
        let mut g = threshold_guardrail();
        g.check.on_no_data = policy;
        g.for_ms = 0;
        let mut d = Driver::new(plan(vec![ramp(5, 3), ramp(100, 0)], vec![g]));
        d.cmd(Command::Start, T0).unwrap();
        for m in 1..=20 {
            // The server has nothing for this guardrail (missing key = no data).
            d.tick(Tick::default(), at(m));
        }
        assert_eq!(d.state.status, expect, "{policy:?}");
    }
}

#[test]
fn approval_wait_pause_resume_keep_the_hold() {
    let mut d = Driver::new(plan(vec![ramp(5, 10), Step::Approval, ramp(50, 10), ramp(100, 0)], vec![]));
    d.cmd(Command::Start, T0).unwrap();
    d.tick(Tick::default(), at(4));
    d.cmd(Command::Pause, at(4)).unwrap();
    // Paused for 20 minutes: ticks do nothing.
    for m in 5..=24 {
        assert!(d.tick(Tick::default(), at(m)).transitions.is_empty());
    }
    d.cmd(Command::Resume, at(24)).unwrap();
    assert_eq!(d.state.hold_started_at, Some(at(20)), "hold shifted by the pause");
    d.tick(Tick::default(), at(29));
    assert_eq!(d.state.step, 0, "6 of 10 minutes held");
    d.tick(Tick::default(), at(30));
    assert_eq!((d.state.status, d.state.step), (Status::AwaitingApproval, 1));
    assert!(d.log.last().unwrap().effects.iter().any(|e| matches!(e, Effect::Notify { .. })));
    for m in 31..=200 {
        d.tick(Tick::default(), at(m));
    }
    assert_eq!(d.state.status, Status::AwaitingApproval, "an approval step waits forever");
    assert_eq!(
        d.cmd(Command::Promote { full: false, expected_step: Some(0) }, at(201)),
        Err(ReleaseError::StaleStep { expected: 0, actual: 1 })
    );
    d.cmd(Command::Promote { full: false, expected_step: Some(1) }, at(201)).unwrap();
    assert_eq!((d.state.status, d.state.step, d.state.percentage), (Status::Progressing, 2, Percentage::pct(50)));
    d.cmd(Command::Promote { full: true, expected_step: None }, at(202)).unwrap();
    assert_eq!((d.state.status, d.state.percentage), (Status::Completed, Percentage::FULL));
    assert!(matches!(d.cmd(Command::Resume, at(203)), Err(ReleaseError::CommandNotAllowed { .. })));
}

#[test]
fn abort_and_retry_start_over_with_fresh_analysis() {
    let mut d = Driver::new(plan(vec![ramp(10, 10), ramp(100, 0)], vec![threshold_guardrail()]));
    d.cmd(Command::Start, T0).unwrap();
    d.minute(at(1), 10_000, 0.01);
    d.cmd(Command::Abort, at(2)).unwrap();
    assert_eq!((d.state.status, d.state.percentage), (Status::Aborted, Percentage::ZERO));
    assert!(d.tick(Tick::default(), at(3)).effects.is_empty());
    assert!(matches!(d.cmd(Command::Abort, at(3)), Err(ReleaseError::CommandNotAllowed { .. })));
    d.cmd(Command::Retry, at(5)).unwrap();
    assert_eq!((d.state.status, d.state.step, d.state.percentage), (Status::Progressing, 0, Percentage::pct(10)));
    assert_eq!(d.state.guardrails["error-rate"].evaluations, 0);
    for m in 6..=20 {
        d.minute(at(m), 10_000, 0.01);
    }
    assert_eq!(d.state.status, Status::Completed);
}

#[test]
fn back_one_step_pauses_at_the_previous_percentage_and_resume_reenters() {
    let mut p = plan(vec![ramp(5, 5), ramp(20, 30), ramp(100, 0)], vec![threshold_guardrail()]);
    p.on_failure = FailureAction::BackOneStep;
    p.guardrails[0].for_ms = 0;
    let mut d = Driver::new(p);
    d.cmd(Command::Start, T0).unwrap();
    for m in 1..=6 {
        d.minute(at(m), 10_000, 0.01);
    }
    assert_eq!(d.state.step, 1);
    let mut m = 6;
    while d.state.status == Status::Progressing {
        m += 1;
        d.minute(at(m), 10_000, 0.30);
    }
    assert_eq!((d.state.status, d.state.step, d.state.percentage), (Status::Paused, 0, Percentage::pct(5)));
    assert!(d.events().contains(&Event::SteppedBack));
    d.cmd(Command::Resume, at(m + 1)).unwrap();
    assert_eq!((d.state.status, d.state.step, d.state.percentage), (Status::Progressing, 0, Percentage::pct(5)));
    assert_eq!(d.state.guardrails["error-rate"].status, GuardrailStatus::Ok);
    // Percentages never went up while going back: 5, 20, then 5.
    assert_eq!(d.percentages(), vec![Percentage::pct(5), Percentage::pct(20), Percentage::pct(5)]);
}

#[test]
fn consecutive_errors_become_an_error_verdict() {
    let mut g = threshold_guardrail();
    g.consecutive_error_limit = 2;
    let mut d = Driver::new(plan(vec![ramp(10, 60), ramp(100, 0)], vec![g]));
    d.cmd(Command::Start, T0).unwrap();
    let err = || Tick { measurements: BTreeMap::from([("error-rate".to_owned(), Measurement::Error { message: "timeout".into() })]) };
    d.tick(err(), at(1));
    d.tick(err(), at(2));
    assert!(d.state.status.is_active());
    d.tick(err(), at(3));
    assert_eq!(d.state.status, Status::RolledBack);
    assert!(matches!(d.log.last().unwrap().transitions.last().unwrap().cause, Cause::GuardrailErrored { .. }));
}

#[test]
fn same_tick_twice_and_old_ticks_change_nothing() {
    let mut d = Driver::new(plan(vec![ramp(10, 10), ramp(100, 0)], vec![threshold_guardrail()]));
    d.cmd(Command::Start, T0).unwrap();
    for m in 1..=5 {
        d.minute(at(m), 10_000, 0.01);
    }
    let before = d.state.clone();
    let tick = Tick { measurements: BTreeMap::from([("error-rate".to_owned(), Measurement::Arms { treatment: d.t, control: Some(d.c) })]) };
    let again = step(&d.plan, &before, &Input::Tick(tick.clone()), at(5)).unwrap();
    assert_eq!(again.state, before);
    assert!(again.transitions.is_empty() && again.effects.is_empty() && again.evaluations.is_empty());
    let older = step(&d.plan, &before, &Input::Tick(tick), at(4)).unwrap();
    assert_eq!(older.state, before);
    assert_eq!(next_wakeup(&d.plan, &before), Some(at(6)));
}

#[test]
fn restart_from_json_mid_step_resumes_without_repeat_or_skip() {
    let build = || plan(vec![ramp(1, 10), ramp(10, 10), Step::Approval, ramp(50, 10), ramp(100, 0)], vec![threshold_guardrail()]);
    // Reference: one process runs through.
    let mut a = Driver::new(build());
    // Restarted: state goes through JSON after every input, and the process is down from
    // minute 14 to minute 17 (no ticks), as after a crash.
    let mut b = Driver::new(build());
    a.cmd(Command::Start, T0).unwrap();
    b.cmd(Command::Start, T0).unwrap();
    for m in 1..=40 {
        if m == 25 {
            a.cmd(Command::Promote { full: false, expected_step: Some(2) }, at(m)).unwrap();
            b.cmd(Command::Promote { full: false, expected_step: Some(2) }, at(m)).unwrap();
        }
        let oa = a.minute(at(m), 20_000, 0.01).clone();
        let json = serde_json::to_string(&b.state).unwrap();
        b.state = serde_json::from_str(&json).unwrap();
        if (14..17).contains(&m) {
            // Traffic still flows while the controller is down; counters keep growing.
            let nt = (20_000.0 * b.state.percentage.fraction()).round() as u64;
            b.t.requests += nt;
            b.t.errors += (nt as f64 * 0.01).round() as u64;
            b.c.requests += 20_000 - nt;
            b.c.errors += ((20_000 - nt) as f64 * 0.01).round() as u64;
            continue;
        }
        let ob = b.minute(at(m), 20_000, 0.01).clone();
        if m < 14 {
            assert_eq!(oa, ob, "minute {m}: identical before the outage");
        }
    }
    let steps = |d: &Driver| {
        d.log.iter().flat_map(|o| o.transitions.iter()).filter(|t| t.event == Event::StepEntered).map(|t| t.step).collect::<Vec<_>>()
    };
    assert_eq!(steps(&a), vec![0, 1, 3, 4]);
    assert_eq!(steps(&b), vec![0, 1, 3, 4], "no step repeated or skipped across the restart");
    assert_eq!(a.state.status, Status::Completed);
    assert_eq!(b.state.status, Status::Completed);
    assert_eq!(a.percentages(), b.percentages());
}

#[test]
fn invalid_plans_are_rejected() {
    let p = |steps| RolloutPlan {
        target: RolloutTarget { flag: "f".into(), environment: "e".into(), rule: None },
        steps,
        guardrails: vec![],
        on_failure: FailureAction::Pause,
        on_inconclusive: InconclusiveAction::Pause,
        max_step_extension_ms: None,
    };
    assert_eq!(p(vec![]).validate(), Err(ReleaseError::EmptyPlan));
    assert!(matches!(p(vec![ramp(50, 1), ramp(10, 1)]).validate(), Err(ReleaseError::DecreasingStep { index: 1, .. })));
    let mut bad = p(vec![ramp(10, 1)]);
    bad.guardrails = vec![threshold_guardrail(), threshold_guardrail()];
    assert!(matches!(bad.validate(), Err(ReleaseError::DuplicateGuardrail { .. })));
    bad.guardrails =
        vec![GuardrailSpec::new("s", Metric::Scalar, Condition::Sequential { alpha: 0.05, mixing_sd: 0.01, relative_margin: 0.0 })];
    assert!(matches!(bad.validate(), Err(ReleaseError::InvalidSetting { .. })));
    // The wire form round-trips and fills defaults.
    let json = r#"{"target":{"flag":"f","environment":"prod"},
        "steps":[{"kind":"ramp","percentage":12.5,"hold_ms":60000},{"kind":"approval"},{"kind":"ramp","percentage":100}],
        "guardrails":[{"name":"errors","metric":"error_rate","condition":{"kind":"threshold","op":">","value":0.05},"for_ms":300000}],
        "on_failure":"back_one_step"}"#;
    let plan: RolloutPlan = serde_json::from_str(json).unwrap();
    plan.validate().unwrap();
    assert_eq!(plan.guardrails[0].interval_ms, 30_000);
    assert_eq!(plan.guardrails[0].failure_limit, Some(0));
    assert_eq!(plan.guardrails[0].consecutive_error_limit, 4);
    assert_eq!(serde_json::from_str::<RolloutPlan>(&serde_json::to_string(&plan).unwrap()).unwrap(), plan);
}
