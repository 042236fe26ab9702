//! Decision quality by simulation (a smaller, fast version of `examples/simulate.rs`).

use crate::sim::{plan, simulate, Scenario};

#[test]
fn healthy_releases_are_rarely_rolled_back_and_doubled_error_rates_are_caught() {
    let plan = plan(0.05);
    let healthy = simulate(&plan, &Scenario::realistic(1.0), 1_000, 11);
    assert!(healthy.rolled_back < 10, "healthy rolled back {} of 1000", healthy.rolled_back);
    assert!(healthy.completed > 980, "{healthy:?}");
    let doubled = simulate(&plan, &Scenario::realistic(2.0), 1_000, 12);
    assert!(doubled.rolled_back > 950, "doubled caught {} of 1000", doubled.rolled_back);
    let (p50, p95) = (doubled.quantile(0.5).unwrap(), doubled.quantile(0.95).unwrap());
    assert!(p95 <= 50.0, "p95 detection {p95} min (median {p50})");
}

#[test]
fn plain_threshold_rule_catches_gross_regressions_fast() {
    let plan = plan(0.05);
    let bad = simulate(&plan, &Scenario::realistic(10.0), 300, 13);
    assert_eq!(bad.rolled_back, 300);
    // Window 5 min + for 5 min: never before minute 6 (first window over 5 %) + 5.
    assert!(bad.quantile(0.0).unwrap() >= 6.0);
    assert!(bad.quantile(0.95).unwrap() <= 20.0, "{bad:?}");
}
