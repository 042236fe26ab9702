//! End-to-end `analyze`: verdicts, SRM, corrections, engines and the JSON shape.

use gantry_stats::{
    analyze, count_units, AnalysisError, AnalysisSettings, Correction, Engine, ExperimentInput, MetricInput, MetricKind, MetricSpec,
    MetricSums, Status, UnitValues, VariantInput,
};

fn spec(name: &str, kind: MetricKind) -> MetricSpec {
    MetricSpec { name: name.into(), kind, lower_is_better: false, cap: None, cuped: false }
}

fn variants(units: &[u64]) -> Vec<VariantInput> {
    let names = ["Control", "Treatment B", "Treatment C"];
    units.iter().zip(names).map(|(&u, n)| VariantInput { name: n.into(), weight: 1.0, units: u }).collect()
}

fn conversion_experiment(conv_t: f64) -> ExperimentInput {
    ExperimentInput {
        variants: variants(&[10_000, 10_000]),
        metrics: vec![MetricInput {
            spec: spec("signup", MetricKind::Proportion),
            sums: vec![MetricSums::proportion(10_000, 1000.0), MetricSums::proportion(10_000, conv_t)],
        }],
    }
}

#[test]
fn significant_lift_wins_with_gbstats_numbers() {
    let res = analyze(&conversion_experiment(1100.0), &AnalysisSettings::default()).unwrap();
    let b = &res.metrics[0].variants[1];
    let cmp = b.comparison.as_ref().unwrap();
    assert_eq!(cmp.status, Status::Wins);
    // Worked example E1-c of the reference notes (gbstats relative TwoSidedTTest).
    assert!((cmp.p_value.unwrap() - 0.0278895288).abs() < 1e-9);
    assert_eq!(cmp.verdict, "Treatment B wins: +10.0% (95% CI +1.1% to +18.9%)");
    assert!((b.mean - 0.11).abs() < 1e-15);
    assert!(!res.srm.mismatch);
}

#[test]
fn small_difference_is_not_significant_and_losses_are_reported() {
    let res = analyze(&conversion_experiment(1010.0), &AnalysisSettings::default()).unwrap();
    let cmp = res.metrics[0].variants[1].comparison.clone().unwrap();
    assert_eq!(cmp.status, Status::NoSignificantDifference);
    assert!(cmp.verdict.starts_with("No significant difference: +1.0% (95% CI"), "{}", cmp.verdict);

    let res = analyze(&conversion_experiment(880.0), &AnalysisSettings::default()).unwrap();
    assert_eq!(res.metrics[0].variants[1].comparison.as_ref().unwrap().status, Status::Loses);
}

#[test]
fn lower_is_better_metrics_win_on_decrease() {
    let mut exp = conversion_experiment(880.0);
    exp.metrics[0].spec.lower_is_better = true;
    let res = analyze(&exp, &AnalysisSettings::default()).unwrap();
    let cmp = res.metrics[0].variants[1].comparison.as_ref().unwrap();
    assert_eq!(cmp.status, Status::Wins, "{}", cmp.verdict);
}

#[test]
fn too_few_units_is_not_enough_data() {
    let exp = ExperimentInput {
        variants: variants(&[40, 40]),
        metrics: vec![MetricInput {
            spec: spec("signup", MetricKind::Proportion),
            sums: vec![MetricSums::proportion(40, 2.0), MetricSums::proportion(40, 20.0)],
        }],
    };
    let res = analyze(&exp, &AnalysisSettings::default()).unwrap();
    let cmp = res.metrics[0].variants[1].comparison.as_ref().unwrap();
    assert_eq!(cmp.status, Status::NotEnoughData);
    assert_eq!(cmp.verdict, "Not enough data yet");
    // Zero conversions: no variance, no inference.
    let exp = ExperimentInput {
        variants: variants(&[400, 400]),
        metrics: vec![MetricInput {
            spec: spec("signup", MetricKind::Proportion),
            sums: vec![MetricSums::proportion(400, 0.0), MetricSums::proportion(400, 0.0)],
        }],
    };
    let cmp = analyze(&exp, &AnalysisSettings::default()).unwrap().metrics[0].variants[1].comparison.clone().unwrap();
    assert_eq!(cmp.status, Status::NotEnoughData);
    assert!(cmp.error.is_some());
}

#[test]
fn sample_ratio_mismatch_overrides_the_verdict() {
    let mut exp = conversion_experiment(1100.0);
    exp.variants[1].units = 10_600;
    let res = analyze(&exp, &AnalysisSettings::default()).unwrap();
    assert!(res.srm.mismatch && res.srm.p_value < 0.001);
    let cmp = res.metrics[0].variants[1].comparison.as_ref().unwrap();
    assert_eq!(cmp.status, Status::SampleRatioMismatch);
    assert_eq!(cmp.verdict, "Sample ratio mismatch — results are not trustworthy");
}

fn three_arm_experiment() -> ExperimentInput {
    let mut vs = variants(&[3300, 3310, 3390]);
    for (v, w) in vs.iter_mut().zip([33.0, 33.0, 34.0]) {
        v.weight = w;
    }
    ExperimentInput {
        variants: vs,
        metrics: vec![
            MetricInput {
                spec: spec("signup", MetricKind::Proportion),
                sums: vec![MetricSums::proportion(3300, 330.0), MetricSums::proportion(3310, 380.0), MetricSums::proportion(3390, 345.0)],
            },
            MetricInput {
                spec: spec("revenue", MetricKind::Mean),
                sums: vec![
                    MetricSums::new(3300, 16_500.0, 200_000.0),
                    MetricSums::new(3310, 17_000.0, 205_000.0),
                    MetricSums::new(3390, 17_100.0, 210_000.0),
                ],
            },
        ],
    }
}

#[test]
fn holm_correction_is_applied_over_metrics_and_variants() {
    let exp = three_arm_experiment();
    let raw = analyze(&exp, &AnalysisSettings::default()).unwrap();
    let holm = analyze(&exp, &AnalysisSettings { correction: Correction::Holm, ..AnalysisSettings::default() }).unwrap();
    assert!(!raw.srm.mismatch);
    for (m_raw, m_holm) in raw.metrics.iter().zip(&holm.metrics) {
        for (v_raw, v_holm) in m_raw.variants.iter().zip(&m_holm.variants).skip(1) {
            let (a, b) = (v_raw.comparison.as_ref().unwrap(), v_holm.comparison.as_ref().unwrap());
            assert_eq!(a.p_value, b.p_value);
            assert!(b.adjusted_p_value.unwrap() >= a.p_value.unwrap());
            let ia = a.interval.unwrap();
            if let Some(ib) = b.interval {
                assert!(ib[0] <= ia[0] && ib[1] >= ia[1], "adjusted interval is at least as wide");
            }
        }
    }
}

#[test]
fn bayesian_and_sequential_engines() {
    let exp = conversion_experiment(1100.0);
    let bayes = analyze(&exp, &AnalysisSettings { engine: Engine::Bayesian, ..AnalysisSettings::default() }).unwrap();
    let cmp = bayes.metrics[0].variants[1].comparison.as_ref().unwrap();
    // E1-d: chance to win 0.986060949, risk [0.100222873, 0.000222872677].
    assert!((cmp.chance_to_win.unwrap() - 0.986060949).abs() < 1e-9);
    assert!((cmp.risk_treatment.unwrap() - 0.000222872677).abs() < 1e-12);
    assert_eq!(cmp.status, Status::Wins);
    assert!(cmp.verdict.contains("chance to win 98.6%"), "{}", cmp.verdict);

    let seq = analyze(&exp, &AnalysisSettings { sequential_tuning: Some(5000.0), ..AnalysisSettings::default() }).unwrap();
    let cmp = seq.metrics[0].variants[1].comparison.as_ref().unwrap();
    // E1-g: sequential p 0.549037944: the same data is not yet conclusive when peeking is allowed.
    assert!((cmp.p_value.unwrap() - 0.549037944).abs() < 1e-9);
    assert_eq!(cmp.status, Status::NoSignificantDifference);
}

#[test]
fn builds_from_unit_columns_with_capping_cuped_and_ratio() {
    let n = 6000usize;
    let variant: Vec<u32> = (0..n).map(|i| (i % 2) as u32).collect();
    let pre: Vec<f64> = (0..n).map(|i| ((i * 37) % 101) as f64 / 10.0).collect();
    let value: Vec<f64> = (0..n).map(|i| pre[i] * 0.9 + ((i * 13) % 7) as f64 + if i % 2 == 1 { 0.4 } else { 0.0 }).collect();
    let mut spiky = value.clone();
    spiky[1] = 1e9; // outlier, capped away
    let den: Vec<f64> = (0..n).map(|i| 1.0 + (i % 3) as f64).collect();
    let units = count_units(&variant, 2);
    let mut cuped = spec("value", MetricKind::Mean);
    cuped.cuped = true;
    let mut capped = spec("capped", MetricKind::Sum);
    capped.cap = Some(100.0);
    let exp = ExperimentInput {
        variants: variants(&units),
        metrics: vec![
            MetricInput::from_units(cuped, &variant, UnitValues::WithCovariate { values: &value, covariate: &pre }, 2),
            MetricInput::from_units(spec("plain", MetricKind::Mean), &variant, UnitValues::Values(&value), 2),
            MetricInput::from_units(capped, &variant, UnitValues::Values(&spiky), 2),
            MetricInput::from_units(spec("ratio", MetricKind::Ratio), &variant, UnitValues::Ratio { num: &value, den: &den }, 2),
        ],
    };
    let res =
        analyze(&exp, &AnalysisSettings { difference: gantry_stats::DifferenceType::Absolute, ..AnalysisSettings::default() }).unwrap();
    let width = |m: usize| {
        let ci = res.metrics[m].variants[1].comparison.as_ref().unwrap().interval.unwrap();
        ci[1] - ci[0]
    };
    let cuped_cmp = res.metrics[0].variants[1].comparison.as_ref().unwrap();
    assert!(cuped_cmp.cuped_theta.unwrap() > 0.5);
    assert!(width(0) < 0.7 * width(1), "CUPED narrows the interval: {} vs {}", width(0), width(1));
    assert!(res.metrics[2].variants[1].mean < 20.0, "outlier capped");
    assert!(res.metrics[3].variants[1].comparison.as_ref().unwrap().interval.is_some());
}

#[test]
fn results_serialise_to_json() {
    let res = analyze(&three_arm_experiment(), &AnalysisSettings::default()).unwrap();
    let json = serde_json::to_value(&res).unwrap();
    assert_eq!(json["metrics"][0]["variants"][1]["comparison"]["status"], "no_significant_difference");
    assert_eq!(json["settings"]["engine"], "frequentist");
    assert!(json["srm"]["p_value"].is_number());
    let back: gantry_stats::ExperimentResults = serde_json::from_value(json).unwrap();
    assert_eq!(back, res);
}

#[test]
fn malformed_input_is_an_error() {
    let mut exp = conversion_experiment(1100.0);
    exp.metrics[0].sums.pop();
    assert_eq!(analyze(&exp, &AnalysisSettings::default()), Err(AnalysisError::SumsLengthMismatch { metric: "signup".into() }));
    exp.variants.pop();
    assert_eq!(analyze(&exp, &AnalysisSettings::default()), Err(AnalysisError::TooFewVariants));
}
