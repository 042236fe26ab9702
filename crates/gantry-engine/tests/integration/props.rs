//! Property tests: bucketing is uniform and sticky, rollouts only grow,
//! evaluation is a pure function of its inputs, variant weights hold, and
//! percentages round-trip.
//!
//! The statistical checks run over fixed inputs (deterministic hashes of fixed
//! ids), so they can never flake; the proptest properties are exact.

use std::collections::BTreeMap;

use gantry_engine::hash::{hash_group_id, normalize, rollout_position, ROLLOUT_SEED, VARIANT_SEED};
use gantry_engine::model::{Condition, EnvironmentConfig, Flag, Percentage, Rollout, Rule, Stickiness, Variant};
use gantry_engine::{CompileOptions, Context, EvalInputs, FlagSet, Plan, Reason};
use proptest::prelude::*;

const ENV: &str = "production";

/// The 0.999 quantile of the chi-square distribution with 99 degrees of
/// freedom (100 buckets).
const CHI2_99_Q999: f64 = 148.23;

const GROUPS: [&str; 5] = ["default", "Feature.flexibleRollout.10", "checkout-redesign", "grüße-🚀", ""];

fn chi_square(counts: &[u64]) -> f64 {
    let n: u64 = counts.iter().sum();
    let expected = n as f64 / counts.len() as f64;
    counts.iter().map(|&o| (o as f64 - expected).powi(2) / expected).sum()
}

fn plan_of(flag: Flag) -> Plan {
    let set = FlagSet { flags: vec![flag], segments: Vec::new() };
    let plan = Plan::compile(&set, &CompileOptions::for_environment(ENV));
    assert!(plan.diagnostics().is_empty(), "unexpected diagnostics: {:?}", plan.diagnostics());
    plan
}

fn flag_with(key: &str, env: EnvironmentConfig, variants: Vec<Variant>) -> Flag {
    Flag { key: key.to_owned(), variants, environments: BTreeMap::from([(ENV.to_owned(), env)]), ..Flag::default() }
}

fn rollout_flag(key: &str, bp: u32, stickiness: Stickiness, group_id: Option<String>) -> Flag {
    let rule = Rule {
        condition: Condition::Rollout(Rollout { percentage: Percentage::from_basis_points(bp).unwrap(), stickiness, group_id }),
        ..Rule::default()
    };
    flag_with(key, EnvironmentConfig { enabled: true, rules: vec![rule], ..EnvironmentConfig::default() }, Vec::new())
}

fn variant(name: &str, weight: u32) -> Variant {
    Variant { name: name.to_owned(), weight, weight_type: None, stickiness: None, payload: None, overrides: Vec::new() }
}

fn inputs(seed: u64) -> EvalInputs {
    EvalInputs::new(1_700_000_000_000, seed)
}

// --- bucketing uniformity (deterministic) ---

#[test]
fn one_percent_buckets_are_uniform() {
    for seed in [ROLLOUT_SEED, VARIANT_SEED] {
        for group in GROUPS {
            let mut counts = [0u64; 100];
            for i in 0..100_000 {
                let b = normalize(group, &format!("user-{i}"), 100, seed);
                assert!((1..=100).contains(&b), "bucket {b} out of range");
                counts[(b - 1) as usize] += 1;
            }
            let stat = chi_square(&counts);
            assert!(stat < CHI2_99_Q999, "group {group:?} seed {seed}: chi-square {stat:.1} >= {CHI2_99_Q999}");
        }
    }
}

#[test]
fn rollout_positions_are_uniform_at_both_levels() {
    for group in GROUPS {
        let mut whole = [0u64; 100];
        let mut hundredths = [0u64; 100];
        for i in 0..100_000 {
            let id = format!("user-{i}");
            let pos = rollout_position(hash_group_id(group, &id, ROLLOUT_SEED));
            assert!((1..=10_000).contains(&pos), "position {pos} out of range");
            // The whole-percent part is exactly Unleash's bucket.
            assert_eq!((pos - 1) / 100 + 1, normalize(group, &id, 100, ROLLOUT_SEED));
            whole[((pos - 1) / 100) as usize] += 1;
            hundredths[((pos - 1) % 100) as usize] += 1;
        }
        for (level, counts) in [("whole percent", &whole), ("hundredths", &hundredths)] {
            let stat = chi_square(counts);
            assert!(stat < CHI2_99_Q999, "group {group:?}, {level}: chi-square {stat:.1} >= {CHI2_99_Q999}");
        }
    }
}

#[test]
fn a_rollout_includes_exactly_the_positions_up_to_its_percentage() {
    // At the boundary: a user whose position is `pos` is in at `pos` bp and out one bp lower.
    for key in ["boundary", "Feature.flexibleRollout.10"] {
        for i in 0..40 {
            let id = format!("user-{i}");
            let pos = rollout_position(hash_group_id(key, &id, ROLLOUT_SEED));
            let ctx = Context::new().with_user_id(id.clone());
            assert!(is_on(&plan_of(rollout_flag(key, pos, Stickiness::Default, None)), key, &ctx, 0), "{key}/{id} at {pos} bp");
            assert!(!is_on(&plan_of(rollout_flag(key, pos - 1, Stickiness::Default, None)), key, &ctx, 0), "{key}/{id} at {} bp", pos - 1);
            // Whole percentages agree with Unleash's bucket.
            let bucket = normalize(key, &id, 100, ROLLOUT_SEED);
            for pct in [bucket - 1, bucket] {
                assert_eq!(is_on(&plan_of(rollout_flag(key, pct * 100, Stickiness::Default, None)), key, &ctx, 0), pct >= bucket);
            }
        }
    }
}

// --- variant weights (deterministic) ---

/// Serves `weights` as flag variants to 50,000 user ids and checks every
/// observed share is within 1.5 percentage points of its weight's share.
fn assert_variant_shares(key: &str, weights: &[u32]) {
    let variants: Vec<Variant> = weights.iter().enumerate().map(|(i, &w)| variant(&format!("v{i}"), w)).collect();
    let plan = plan_of(flag_with(key, EnvironmentConfig { enabled: true, ..EnvironmentConfig::default() }, variants));
    let total: u32 = weights.iter().sum();
    let n = 50_000u32;
    let mut counts = vec![0u32; weights.len()];
    for i in 0..n {
        let ctx = Context::new().with_user_id(format!("user-{i}"));
        let ev = plan.evaluate(key, &ctx, inputs(u64::from(i)));
        assert!(ev.enabled);
        assert_eq!(ev.reason, Reason::Split);
        let name = ev.variant_name().expect("a variant is served");
        let idx: usize = name[1..].parse().unwrap();
        counts[idx] += 1;
    }
    for (i, (&w, &c)) in weights.iter().zip(&counts).enumerate() {
        let want = f64::from(w) / f64::from(total);
        let got = f64::from(c) / f64::from(n);
        assert!((got - want).abs() <= 0.015, "{key}: variant v{i} share {got:.4}, weight share {want:.4}");
    }
}

#[test]
fn variant_weights_hold_within_tolerance() {
    for key in ["weighted", "Feature.Variants.D", "checkout-é"] {
        assert_variant_shares(key, &[100, 200, 300, 400]);
        assert_variant_shares(key, &[330, 330, 340]);
        assert_variant_shares(key, &[1, 1]);
    }
}

// --- percentages (exhaustive) ---

#[test]
fn every_percentage_round_trips_through_text_and_json() {
    for bp in 0..=10_000u32 {
        let p = Percentage::from_basis_points(bp).unwrap();
        assert_eq!(p.basis_points(), bp);
        assert_eq!(Percentage::parse(&p.to_string()), Some(p), "text of {bp} bp: {p}");
        let json = serde_json::to_string(&p).unwrap();
        assert_eq!(serde_json::from_str::<Percentage>(&json).unwrap(), p, "JSON of {bp} bp: {json}");
        // The string spelling is accepted on the wire too.
        assert_eq!(serde_json::from_value::<Percentage>(serde_json::Value::String(p.to_string())).unwrap(), p);
    }
    assert_eq!(Percentage::from_basis_points(10_001), None);
    assert!(serde_json::from_str::<Percentage>("100.01").is_err());
    assert!(serde_json::from_str::<Percentage>("-1").is_err());
}

// --- properties ---

fn flag_key() -> impl Strategy<Value = String> {
    "[A-Za-z0-9._:-]{1,24}|\\PC{1,12}"
}

fn user_id() -> impl Strategy<Value = String> {
    "[a-z0-9-]{0,20}|\\PC{0,16}"
}

/// Two basis-point values, lower first.
fn ordered_bp() -> impl Strategy<Value = (u32, u32)> {
    (0..=10_000u32, 0..=10_000u32).prop_map(|(a, b)| (a.min(b), a.max(b)))
}

fn is_on(plan: &Plan, key: &str, ctx: &Context, seed: u64) -> bool {
    plan.evaluate(key, ctx, inputs(seed)).enabled
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn raising_a_rollout_never_removes_a_user(key in flag_key(), ids in prop::collection::vec(user_id(), 1..8), (p1, p2) in ordered_bp()) {
        let low = plan_of(rollout_flag(&key, p1, Stickiness::Default, None));
        let high = plan_of(rollout_flag(&key, p2, Stickiness::Default, None));
        for id in &ids {
            let ctx = Context::new().with_user_id(id.clone());
            let (on_low, on_high) = (is_on(&low, &key, &ctx, 1), is_on(&high, &key, &ctx, 2));
            prop_assert!(!on_low || on_high, "{id:?} is in at {p1} bp but out at {p2} bp");
            // And membership is exactly the Unleash-compatible position test.
            let pos = rollout_position(hash_group_id(&key, id, ROLLOUT_SEED));
            prop_assert_eq!(on_low, p1 > 0 && pos <= p1);
            prop_assert_eq!(on_high, p2 > 0 && pos <= p2);
        }
    }

    #[test]
    fn raising_a_rollout_keeps_users_for_custom_stickiness_and_groups(
        key in flag_key(),
        group in "[a-z]{1,10}",
        tenant in user_id(),
        (p1, p2) in ordered_bp(),
    ) {
        let stick = || Stickiness::Field("tenant".into());
        let low = plan_of(rollout_flag(&key, p1, stick(), Some(group.clone())));
        let high = plan_of(rollout_flag(&key, p2, stick(), Some(group.clone())));
        let ctx = Context::new().with_property("tenant", tenant.clone()).with_user_id("ignored-for-bucketing");
        let (on_low, on_high) = (is_on(&low, &key, &ctx, 3), is_on(&high, &key, &ctx, 4));
        prop_assert!(!on_low || on_high);
        let pos = rollout_position(hash_group_id(&group, &tenant, ROLLOUT_SEED));
        prop_assert_eq!(on_high, p2 > 0 && pos <= p2);
        // Without the stickiness field the context never matches.
        prop_assert!(!is_on(&high, &key, &Context::new().with_user_id(tenant), 5));
    }

    #[test]
    fn the_same_context_always_gets_the_same_answer(
        key in flag_key(),
        id in user_id(),
        bp in 0..=10_000u32,
        weights in prop::collection::vec(0..=1000u32, 1..6),
        user_stickiness in any::<bool>(),
        seeds in prop::collection::vec(any::<u64>(), 2..6),
    ) {
        let stickiness = if user_stickiness { Stickiness::Field("userId".into()) } else { Stickiness::Default };
        let mut flag = rollout_flag(&key, bp, stickiness, None);
        flag.variants = weights.iter().enumerate().map(|(i, &w)| variant(&format!("v{i}"), w)).collect();
        let plan = plan_of(flag);
        let ctx = Context::new().with_user_id(id);
        let answer = |seed: u64| {
            let ev = plan.evaluate(&key, &ctx, inputs(seed));
            (ev.enabled, ev.variant_name().map(str::to_owned), ev.reason, ev.rule_index)
        };
        let first = answer(seeds[0]);
        // Same inputs twice: same answer.
        prop_assert_eq!(&answer(seeds[0]), &first);
        // A user id makes both rollout and variant choice sticky: the random seed does not matter.
        for &seed in &seeds[1..] {
            prop_assert_eq!(&answer(seed), &first);
        }
    }

    #[test]
    fn random_stickiness_is_a_pure_function_of_the_seed(key in flag_key(), bp in 1..10_000u32, seed in any::<u64>()) {
        let plan = plan_of(rollout_flag(&key, bp, Stickiness::Random, None));
        let ctx = Context::new();
        let first = is_on(&plan, &key, &ctx, seed);
        prop_assert_eq!(is_on(&plan, &key, &ctx, seed), first);
    }

    #[test]
    fn variant_choice_follows_the_cumulative_weights(
        key in flag_key(),
        id in user_id(),
        weights in prop::collection::vec(0..=1000u32, 1..6).prop_filter("some weight", |w| w.iter().any(|&x| x > 0)),
    ) {
        let variants: Vec<Variant> = weights.iter().enumerate().map(|(i, &w)| variant(&format!("v{i}"), w)).collect();
        let plan = plan_of(flag_with(&key, EnvironmentConfig { enabled: true, ..EnvironmentConfig::default() }, variants));
        let ev = plan.evaluate(&key, &Context::new().with_user_id(id.clone()), inputs(0));
        let total: u32 = weights.iter().sum();
        let target = normalize(&key, &id, total, VARIANT_SEED);
        let mut acc = 0;
        let want = weights.iter().position(|&w| {
            acc += w;
            w > 0 && acc >= target
        });
        prop_assert_eq!(ev.variant_name().map(str::to_owned), want.map(|i| format!("v{i}")));
        let nonzero = weights.iter().filter(|&&w| w > 0).count();
        prop_assert_eq!(ev.reason, if nonzero > 1 { Reason::Split } else { Reason::Static });
    }

    #[test]
    fn percentage_parsing_never_panics_and_round_trips(s in "\\PC{0,8}|[0-9]{1,3}(\\.[0-9]{1,3})?") {
        if let Some(p) = Percentage::parse(&s) {
            prop_assert!(p.basis_points() <= 10_000);
            prop_assert_eq!(Percentage::parse(&p.to_string()), Some(p));
        }
    }

    #[test]
    fn float_percentages_round_to_the_nearest_basis_point(bp in 0..=10_000u32, jitter in -0.45f64..0.45) {
        let p = Percentage::from_percent_f64((f64::from(bp) + jitter) / 100.0);
        let in_range = (0.0..=10_000.0).contains(&(f64::from(bp) + jitter));
        prop_assert_eq!(p.map(Percentage::basis_points), in_range.then_some(bp));
    }
}
