//! Analysis of an experiment with 1,000,000 units, 3 variants (33/33/34) and 5 metrics:
//! from columnar unit data (reduce to sufficient statistics, then analyse), and the analysis
//! step alone from sufficient statistics.

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, Criterion};
use gantry_stats::{
    analyze, count_units, AnalysisSettings, Engine, ExperimentInput, MetricInput, MetricKind, MetricSpec, UnitValues, VariantInput,
};

const UNITS: usize = 1_000_000;
const VARIANTS: usize = 3;

/// Deterministic columnar unit data: variant index plus five metric columns (conversion,
/// revenue with a pre-period covariate, count, ratio numerator/denominator).
struct Units {
    variant: Vec<u32>,
    conversion: Vec<f64>,
    revenue: Vec<f64>,
    revenue_pre: Vec<f64>,
    sessions: Vec<f64>,
    clicks: Vec<f64>,
    views: Vec<f64>,
    latency: Vec<f64>,
}

fn units() -> Units {
    let mut state = 0x853C_49E6_748F_EA9B_u64;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        (state >> 11) as f64 / (1u64 << 53) as f64
    };
    let mut u = Units {
        variant: Vec::with_capacity(UNITS),
        conversion: Vec::with_capacity(UNITS),
        revenue: Vec::with_capacity(UNITS),
        revenue_pre: Vec::with_capacity(UNITS),
        sessions: Vec::with_capacity(UNITS),
        clicks: Vec::with_capacity(UNITS),
        views: Vec::with_capacity(UNITS),
        latency: Vec::with_capacity(UNITS),
    };
    for _ in 0..UNITS {
        let r = next();
        let v = if r < 0.33 {
            0
        } else if r < 0.66 {
            1
        } else {
            2
        };
        let lift = 1.0 + 0.02 * v as f64;
        let pre = (next() * 50.0).floor();
        u.variant.push(v);
        u.conversion.push(f64::from(u8::from(next() < 0.1 * lift)));
        u.revenue_pre.push(pre);
        u.revenue.push(0.8 * pre + next() * 20.0 * lift);
        u.sessions.push((next() * 6.0).floor());
        let views = 1.0 + (next() * 10.0).floor();
        u.views.push(views);
        u.clicks.push((views * next() * 0.3 * lift).floor());
        u.latency.push(100.0 + next() * 400.0);
    }
    u
}

fn spec(name: &str, kind: MetricKind) -> MetricSpec {
    MetricSpec { name: name.into(), kind, lower_is_better: false, cap: None, cuped: false }
}

fn reduce(u: &Units) -> ExperimentInput {
    let counts = count_units(&u.variant, VARIANTS);
    let variants = ["control", "B", "C"]
        .iter()
        .zip([33.0, 33.0, 34.0])
        .zip(counts)
        .map(|((name, weight), units)| VariantInput { name: (*name).into(), weight, units })
        .collect();
    let mut revenue = spec("revenue", MetricKind::Mean);
    revenue.cuped = true;
    revenue.cap = Some(60.0);
    let mut latency = spec("latency", MetricKind::Mean);
    latency.lower_is_better = true;
    let v = &u.variant;
    ExperimentInput {
        variants,
        metrics: vec![
            MetricInput::from_units(spec("conversion", MetricKind::Proportion), v, UnitValues::Values(&u.conversion), VARIANTS),
            MetricInput::from_units(revenue, v, UnitValues::WithCovariate { values: &u.revenue, covariate: &u.revenue_pre }, VARIANTS),
            MetricInput::from_units(spec("sessions", MetricKind::Count), v, UnitValues::Values(&u.sessions), VARIANTS),
            MetricInput::from_units(spec("ctr", MetricKind::Ratio), v, UnitValues::Ratio { num: &u.clicks, den: &u.views }, VARIANTS),
            MetricInput::from_units(latency, v, UnitValues::Values(&u.latency), VARIANTS),
        ],
    }
}

fn bench(c: &mut Criterion) {
    let data = units();
    let frequentist = AnalysisSettings::default();
    let bayesian = AnalysisSettings { engine: Engine::Bayesian, ..AnalysisSettings::default() };
    let sequential = AnalysisSettings { sequential_tuning: Some(5000.0), ..AnalysisSettings::default() };

    let mut group = c.benchmark_group("analyze_1m_units_3_variants_5_metrics");
    group.sample_size(10);
    group.bench_function("from_unit_columns", |b| {
        b.iter(|| analyze(&reduce(black_box(&data)), black_box(&frequentist)));
    });
    group.finish();

    let input = reduce(&data);
    let mut group = c.benchmark_group("analyze_from_sufficient_stats");
    group.bench_function("frequentist", |b| b.iter(|| analyze(black_box(&input), black_box(&frequentist))));
    group.bench_function("bayesian", |b| b.iter(|| analyze(black_box(&input), black_box(&bayesian))));
    group.bench_function("sequential", |b| b.iter(|| analyze(black_box(&input), black_box(&sequential))));
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
