//! Property tests: invariants that must hold for any input.

use gantry_stats::bayesian::{bayesian_test, BayesianConfig};
use gantry_stats::correction::{benjamini_hochberg, holm};
use gantry_stats::frequentist::{sequential_test, welch_t_test, z_test, DifferenceType, FrequentistConfig};
use gantry_stats::{ArmEstimate, MetricSums};
use proptest::prelude::*;

fn arm_strategy() -> impl Strategy<Value = ArmEstimate> {
    (2u64..5_000_000, -50.0f64..50.0, 0.01f64..100.0).prop_map(|(n, mean, sd)| {
        let sum = mean * n as f64;
        let sum_sq = sd * sd * (n - 1) as f64 + sum * sum / n as f64;
        ArmEstimate::sample_mean(n, sum, sum_sq)
    })
}

fn config(relative: bool) -> FrequentistConfig {
    FrequentistConfig {
        difference: if relative { DifferenceType::Relative } else { DifferenceType::Absolute },
        ..FrequentistConfig::default()
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]

    #[test]
    fn holm_and_bh_are_valid_adjustments(p in proptest::collection::vec(0.0f64..=1.0, 1..40)) {
        let h = holm(&p);
        let b = benjamini_hochberg(&p);
        for i in 0..p.len() {
            prop_assert!(h[i] >= p[i] && h[i] <= 1.0);
            prop_assert!(b[i] >= p[i] && b[i] <= 1.0);
            prop_assert!(b[i] <= h[i] + 1e-15, "BH is never more conservative than Holm");
            for j in 0..p.len() {
                if p[i] <= p[j] {
                    prop_assert!(h[i] <= h[j] && b[i] <= b[j], "adjustments keep the order of raw p-values");
                }
            }
        }
    }

    #[test]
    fn intervals_contain_the_estimate_and_agree_with_p(c in arm_strategy(), t in arm_strategy(), relative in any::<bool>()) {
        let cfg = config(relative);
        for r in [welch_t_test(&c, &t, &cfg), z_test(&c, &t, &cfg), sequential_test(&c, &t, &cfg, 5000.0)].into_iter().flatten() {
            prop_assert!(r.ci[0] <= r.estimate && r.estimate <= r.ci[1]);
            prop_assert!((0.0..=1.0).contains(&r.p_value));
            // p < alpha exactly when the interval excludes the null value (up to rounding at the edge).
            let excludes = r.ci[0] > 0.0 || r.ci[1] < 0.0;
            if (r.p_value - 0.05).abs() > 1e-6 {
                prop_assert_eq!(r.p_value < 0.05, excludes);
            }
        }
        if let Ok(b) = bayesian_test(&c, &t, &BayesianConfig { difference: cfg.difference, ..BayesianConfig::default() }) {
            prop_assert!(b.ci[0] <= b.expected && b.expected <= b.ci[1]);
            prop_assert!((0.0..=1.0).contains(&b.chance_to_win));
            prop_assert!(b.risk_control >= 0.0 && b.risk_treatment >= 0.0);
        }
    }

    #[test]
    fn swapping_arms_flips_absolute_effect(c in arm_strategy(), t in arm_strategy()) {
        let cfg = config(false);
        let (ab, ba) = (welch_t_test(&c, &t, &cfg).unwrap(), welch_t_test(&t, &c, &cfg).unwrap());
        prop_assert!((ab.estimate + ba.estimate).abs() <= 1e-12 * ab.estimate.abs().max(1.0));
        prop_assert!((ab.p_value - ba.p_value).abs() <= 1e-9);
    }

    #[test]
    fn sums_are_additive(values in proptest::collection::vec((-1e3f64..1e3, -1e3f64..1e3, 0.5f64..10.0), 1..200), split in 0usize..200) {
        let split = split.min(values.len());
        let (mut whole, mut left, mut right) = (MetricSums::default(), MetricSums::default(), MetricSums::default());
        for (i, &(y, x, d)) in values.iter().enumerate() {
            let part = if i < split { &mut left } else { &mut right };
            for s in [&mut whole, part] {
                s.add_unit_with_covariate(y, x);
                s.den_sum += d;
                s.den_sum_sq += d * d;
                s.cross_den += y * d;
            }
        }
        left.merge(&right);
        prop_assert_eq!(left.n, whole.n);
        for (a, b) in [(left.sum, whole.sum), (left.sum_sq, whole.sum_sq), (left.cross_pre, whole.cross_pre), (left.cross_den, whole.cross_den)] {
            prop_assert!((a - b).abs() <= 1e-9 * b.abs().max(1.0));
        }
    }

    #[test]
    fn scaling_the_metric_keeps_relative_results(c in arm_strategy(), t in arm_strategy(), k in 0.001f64..1000.0) {
        let scale = |a: &ArmEstimate| ArmEstimate { mean: a.mean * k, unadjusted_mean: a.unadjusted_mean * k, variance: a.variance * k * k, ..*a };
        let cfg = config(true);
        if let (Ok(a), Ok(b)) = (welch_t_test(&c, &t, &cfg), welch_t_test(&scale(&c), &scale(&t), &cfg)) {
            prop_assert!((a.estimate - b.estimate).abs() <= 1e-9 * a.estimate.abs().max(1e-6));
            // statrs' Student-t tail at millions of degrees of freedom is accurate to ~2e-8 relative.
            prop_assert!((a.p_value - b.p_value).abs() <= 1e-7 * a.p_value.max(1e-12), "{} vs {}", a.p_value, b.p_value);
        }
    }
}
