//! Property tests: any sequence of ticks and commands keeps the state valid, and percentages
//! never decrease while progressing.

use std::collections::BTreeMap;

use gantry_release::guardrail::{ArmCounters, Condition, GuardrailSpec, Measurement, Metric, Op};
use gantry_release::rollout::{step, Command, Input, RolloutPlan, RolloutState, RolloutTarget, Status, Step, Tick};
use gantry_release::time::MINUTE_MS;
use gantry_release::{Effect, Percentage, Timestamp};
use proptest::prelude::*;

#[derive(Debug, Clone)]
enum Action {
    /// Advance the clock by this many seconds, with this treatment error rate (per mille), then tick.
    Tick(u16, u16),
    Cmd(Command),
}

fn action() -> impl Strategy<Value = Action> {
    prop_oneof![
        6 => (1u16..900, 0u16..200).prop_map(|(s, e)| Action::Tick(s, e)),
        1 => Just(Action::Cmd(Command::Start)),
        1 => (any::<bool>(), proptest::option::of(0usize..6)).prop_map(|(full, expected_step)| Action::Cmd(Command::Promote { full, expected_step })),
        1 => Just(Action::Cmd(Command::Pause)),
        1 => Just(Action::Cmd(Command::Resume)),
        1 => Just(Action::Cmd(Command::Abort)),
        1 => Just(Action::Cmd(Command::Retry)),
    ]
}

fn plan_strategy() -> impl Strategy<Value = RolloutPlan> {
    let step = prop_oneof![4 => (1u16..=100, 0u64..20).prop_map(|(p, h)| (Some(p), h)), 1 => Just((None, 0))];
    (proptest::collection::vec(step, 1..6), 0usize..3, any::<bool>()).prop_map(|(raw, on_failure, with_guardrail)| {
        let mut pcts: Vec<u16> = raw.iter().filter_map(|(p, _)| *p).collect();
        pcts.sort_unstable();
        let mut it = pcts.into_iter();
        let steps = raw
            .iter()
            .map(|(p, h)| match p {
                Some(_) => Step::Ramp { percentage: Percentage::pct(it.next().unwrap()), hold_ms: h * MINUTE_MS },
                None => Step::Approval,
            })
            .collect();
        let mut g = GuardrailSpec::new("errors", Metric::ErrorRate, Condition::Threshold { op: Op::Gt, value: 0.05 });
        g.interval_ms = MINUTE_MS;
        g.for_ms = 2 * MINUTE_MS;
        g.check.min_requests = 20;
        RolloutPlan {
            target: RolloutTarget { flag: "f".into(), environment: "e".into(), rule: None },
            steps,
            guardrails: if with_guardrail { vec![g] } else { vec![] },
            on_failure: [
                Default::default(),
                gantry_release::rollout::FailureAction::BackOneStep,
                gantry_release::rollout::FailureAction::Pause,
            ][on_failure],
            on_inconclusive: Default::default(),
            max_step_extension_ms: None,
        }
    })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn any_sequence_keeps_the_state_valid(plan in plan_strategy(), actions in proptest::collection::vec(action(), 1..80)) {
        plan.validate().unwrap();
        let mut state = RolloutState::new();
        let mut now = Timestamp::from_millis(1_700_000_000_000);
        let (mut t, mut c) = (ArmCounters::default(), ArmCounters::default());
        let mut last_progress_pct: Option<Percentage> = None;
        for a in actions {
            let input = match a {
                Action::Tick(secs, per_mille) => {
                    now = now.plus(u64::from(secs) * 1000);
                    let n = u64::from(secs) * 10;
                    let nt = (n as f64 * state.percentage.fraction()) as u64;
                    t.requests += nt;
                    t.errors += nt * u64::from(per_mille) / 1000;
                    c.requests += n - nt;
                    c.errors += (n - nt) / 100;
                    let m = Measurement::Arms { treatment: t, control: Some(c) };
                    Input::Tick(Tick { measurements: BTreeMap::from([("errors".to_owned(), m)]) })
                }
                Action::Cmd(cmd) => Input::Command(cmd),
            };
            let before = state.clone();
            // Rejected commands (Err) leave the state as it was.
            if let Ok(out) = step(&plan, &state, &input, now) {
                {
                    out.state.check(&plan).map_err(|e| TestCaseError::fail(format!("{e}: {:?}", out.state)))?;
                    // Replaying the same input at the same time after a JSON round trip is identical.
                    let restored: RolloutState = serde_json::from_str(&serde_json::to_string(&before).unwrap()).unwrap();
                    prop_assert_eq!(&step(&plan, &restored, &input, now).unwrap(), &out);
                    for e in &out.effects {
                        if let Effect::SetPercentage { percentage, .. } = e {
                            if let Some(prev) = last_progress_pct {
                                if before.status.is_active() && out.state.status.is_active() {
                                    prop_assert!(*percentage >= prev, "decreased while progressing: {prev} -> {percentage}");
                                }
                            }
                        }
                    }
                    state = out.state;
                }
            }
            last_progress_pct = if state.status.is_active() { Some(state.percentage) } else { None };
            if state.status == Status::Progressing {
                prop_assert_eq!(state.percentage, plan.percentage_at(state.step));
            }
        }
    }
}
