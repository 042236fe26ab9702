//! The results endpoint's work on a large experiment, from the server's own
//! per-unit aggregates: 1,000,000 units, 3 variants (33/33/34), 5 metrics
//! (conversion, capped revenue with CUPED, count, ratio, a lower-is-better
//! mean). Times `experiment_input` (aggregates → sufficient statistics) plus
//! `analyze`, i.e. `GET /api/v1/experiments/{key}/results` minus HTTP, and the
//! 12-point results history.
//!
//! `cargo run --release -p gantry-testkit --example analysis -- [units] [runs]`

use std::time::Instant;

use gantry_api_types::Experiment;
use gantry_server::experiments::api::{experiment_input, experiment_inputs_at, settings_of};
use gantry_server::experiments::{ExperimentAgg, UnitAgg};

fn uniform(i: u64, salt: u64) -> f64 {
    let mut x = i.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ salt;
    x = (x ^ (x >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    x ^= x >> 31;
    (x >> 11) as f64 / (1u64 << 53) as f64
}

#[allow(clippy::print_stdout)]
fn main() {
    let args: Vec<usize> = std::env::args().skip(1).filter_map(|a| a.parse().ok()).collect();
    let units = args.first().copied().unwrap_or(1_000_000);
    let runs = args.get(1).copied().unwrap_or(10);
    let e: Experiment = serde_json::from_value(serde_json::json!({
        "key": "big", "flag": "f", "environment": "production", "variants": ["control", "a", "b"],
        "metrics": [
            {"name": "converted", "event": "buy", "kind": "conversion", "role": "primary"},
            {"name": "revenue", "event": "buy", "kind": "mean", "cap": 500.0, "cuped": true},
            {"name": "pageviews", "event": "view", "kind": "count"},
            {"name": "error_rate", "event": "error", "kind": "ratio", "denominator_event": "request"},
            {"name": "latency", "event": "latency", "kind": "mean", "higher_is_better": false}
        ],
        "started_at": "2026-11-01T00:00:00Z", "status": "running"
    }))
    .unwrap();
    let mut agg = ExperimentAgg::default();
    for i in 0..units as u64 {
        let r = uniform(i, 1);
        let variant = if r < 0.33 {
            0
        } else if r < 0.66 {
            1
        } else {
            2
        };
        let buys = if uniform(i, 2) < 0.1 { 1.0 } else { 0.0 };
        let metrics = vec![
            [buys, buys * 40.0, 0.0],
            [buys, buys * 40.0 * (1.0 + uniform(i, 3)), 0.0],
            [(uniform(i, 4) * 10.0).floor(), (uniform(i, 4) * 10.0).floor(), 0.0],
            [1.0, if uniform(i, 5) < 0.02 { 1.0 } else { 0.0 }, 20.0],
            [1.0, 100.0 + 50.0 * uniform(i, 6), 0.0],
        ];
        let pre = vec![[0.0; 3], [buys, 35.0 * uniform(i, 7), 0.0]];
        agg.units.insert(format!("user-{i}"), UnitAgg { variant, first_ms: 1_700_000_000_000 + i as i64, metrics, pre });
    }
    let variants: Vec<String> = e.variants.clone();
    let weights = [33.0, 33.0, 34.0];
    let settings = settings_of(&e);
    let mut times = Vec::with_capacity(runs);
    for _ in 0..runs {
        let t = Instant::now();
        let input = experiment_input(&e, &variants, &weights, Some(&agg));
        let res = gantry_stats::analyze::analyze(&input, &settings).unwrap();
        std::hint::black_box(res);
        times.push(t.elapsed().as_secs_f64() * 1000.0);
    }
    times.sort_by(|a, b| a.partial_cmp(b).unwrap());
    println!(
        "results from aggregates: {units} units, 3 variants, 5 metrics: median {:.1} ms, max {:.1} ms over {runs} runs",
        times[runs / 2],
        times[runs - 1]
    );
    let t = Instant::now();
    let cutoffs: Vec<i64> = (1..=12).map(|i| 1_700_000_000_000 + (units as i64) * i / 12).collect();
    for input in experiment_inputs_at(&e, &variants, &weights, Some(&agg), &cutoffs) {
        std::hint::black_box(gantry_stats::analyze::analyze(&input, &settings).unwrap());
    }
    println!("12-point results history: {:.1} ms", t.elapsed().as_secs_f64() * 1000.0);
}
