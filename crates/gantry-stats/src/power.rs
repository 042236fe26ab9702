//! Power, minimum detectable effect and sample size.
//!
//! Two families:
//! * standardised effects with a normal test (`statsmodels` `NormalIndPower`), for planning with
//!   Cohen's d or, for proportions, Cohen's h ([`proportion_effect_size`]);
//! * relative lift with the delta-method variance GrowthBook's power calculator uses
//!   ([`relative_power`], [`relative_mde`], [`relative_sample_size`]), optionally for a
//!   sequential analysis.

use crate::dist;
use crate::frequentist::sequential_half_width;

/// Cohen's h for two proportions: `2·asin√p1 − 2·asin√p2`.
pub fn proportion_effect_size(p1: f64, p2: f64) -> f64 {
    2.0 * (p1.sqrt().asin() - p2.sqrt().asin())
}

fn two_sided_power(shift: f64, alpha: f64) -> f64 {
    let crit = dist::normal_upper_quantile(alpha / 2.0);
    dist::normal_sf(crit - shift) + dist::normal_cdf(-crit - shift)
}

/// Power of a two-sided normal test of a standardised effect `effect_size` with `n1` units in
/// the first arm and `ratio·n1` in the second.
pub fn normal_power(effect_size: f64, n1: f64, alpha: f64, ratio: f64) -> f64 {
    let n2 = n1 * ratio;
    let eff_n = 1.0 / (1.0 / n1 + 1.0 / n2);
    two_sided_power(effect_size * eff_n.sqrt(), alpha)
}

/// Solves `f(x) = target` for increasing `f` on `(lo, hi)` by bisection in log space, then
/// polishes with secant steps. Returns `None` if the target is not bracketed.
fn solve_increasing(f: impl Fn(f64) -> f64, target: f64, mut lo: f64, mut hi: f64) -> Option<f64> {
    if f(lo) > target || f(hi) < target {
        return None;
    }
    for _ in 0..200 {
        let mid = (lo * hi).sqrt();
        if f(mid) < target {
            lo = mid;
        } else {
            hi = mid;
        }
        if hi / lo - 1.0 < 1e-15 {
            break;
        }
    }
    Some(0.5 * (lo + hi))
}

/// Units needed in the first arm for `power` at `alpha` (two-sided) to detect the standardised
/// effect `effect_size`, second arm `ratio` times as large. Fractional; round up to plan.
pub fn normal_sample_size(effect_size: f64, alpha: f64, power: f64, ratio: f64) -> Option<f64> {
    let d = effect_size.abs();
    if d == 0.0 || !(0.0..1.0).contains(&power) || power <= alpha / 2.0 {
        return None;
    }
    solve_increasing(|n| normal_power(d, n, alpha, ratio), power, 1e-6, 1e15)
}

/// Smallest standardised effect detectable with `power` at `alpha` with `n1` and `ratio·n1` units.
pub fn normal_mde(n1: f64, alpha: f64, power: f64, ratio: f64) -> Option<f64> {
    if n1 <= 0.0 || !(0.0..1.0).contains(&power) || power <= alpha {
        return None;
    }
    solve_increasing(|d| normal_power(d, n1, alpha, ratio), power, 1e-12, 1e6)
}

/// Baseline of a metric for planning: control mean and per-unit variance.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Baseline {
    /// Control mean (e.g. conversion rate 0.1).
    pub mean: f64,
    /// Per-unit variance (e.g. `p(1 − p)` for conversions).
    pub variance: f64,
}

/// Standard error of the relative lift `lift` with `n_per_arm` units in each of two arms,
/// `σ²/n · (1/μ_C² + μ_T²/μ_C⁴)`, `μ_T = μ_C(1 + lift)` (equal unit variance in both arms).
pub fn relative_lift_std_error(b: &Baseline, n_per_arm: f64, lift: f64) -> f64 {
    let mc = b.mean;
    let mt = mc * (1.0 + lift);
    (b.variance / n_per_arm * (1.0 / (mc * mc) + mt * mt / mc.powi(4))).sqrt()
}

/// Power of a two-sided test at `alpha` to detect relative `lift` with `n_per_arm` units in each
/// arm. With `sequential_tuning`, the fixed-horizon standard error is replaced by the
/// sequential half-width at the planned sample divided by `z_{1−α/2}` (a lower bound on the
/// power of a sequential analysis, which may stop earlier).
pub fn relative_power(b: &Baseline, n_per_arm: f64, lift: f64, alpha: f64, sequential_tuning: Option<f64>) -> f64 {
    let mut se = relative_lift_std_error(b, n_per_arm, lift);
    if let Some(tuning) = sequential_tuning {
        let z = dist::normal_upper_quantile(alpha / 2.0);
        se = sequential_half_width(se * se, 2.0 * n_per_arm, alpha, tuning) / z;
    }
    two_sided_power(lift.abs() / se, alpha)
}

/// Minimum detectable relative lift (positive direction) with `power` at `alpha` and
/// `n_per_arm` units per arm: solves `lift / se(lift) = z_{1−α/2} + z_{power}` in closed form.
/// `None` when no lift is detectable (`n ≤ σ²k²/μ²`).
pub fn relative_mde(b: &Baseline, n_per_arm: f64, alpha: f64, power: f64) -> Option<f64> {
    let k = dist::normal_upper_quantile(alpha / 2.0) + dist::normal_quantile(power);
    let mc = b.mean;
    let c = k * k * b.variance / n_per_arm;
    let a = 1.0 - c / (mc * mc);
    if a <= 0.0 || mc == 0.0 {
        return None;
    }
    let disc = mc * mc - a * (mc * mc - c);
    let mt = (mc + disc.sqrt()) / a;
    Some(mt / mc - 1.0)
}

/// Units per arm giving `power` at `alpha` (two-sided) for relative `lift`, from the exact power
/// function of [`relative_power`]. Fractional; round up to plan.
pub fn relative_sample_size(b: &Baseline, lift: f64, alpha: f64, power: f64, sequential_tuning: Option<f64>) -> Option<f64> {
    if lift == 0.0 || b.mean == 0.0 || !(0.0..1.0).contains(&power) || power <= alpha / 2.0 {
        return None;
    }
    solve_increasing(|n| relative_power(b, n, lift, alpha, sequential_tuning), power, 1e-3, 1e15)
}
