//! Distribution functions used by the tests: standard normal, Student t and chi-square.
//!
//! Thin wrappers over `statrs` that pick the numerically better tail (survival functions are
//! evaluated directly, never as `1 - cdf`) and polish Student-t quantiles with Newton steps so
//! that they agree with scipy to near machine precision.

use statrs::distribution::{ChiSquared, Continuous, ContinuousCDF, Normal, StudentsT};
use statrs::function::erf;

/// Standard normal cumulative distribution function `Φ(x)`.
pub fn normal_cdf(x: f64) -> f64 {
    0.5 * erf::erfc(-x / std::f64::consts::SQRT_2)
}

/// Standard normal survival function `1 − Φ(x)`, accurate in the upper tail.
pub fn normal_sf(x: f64) -> f64 {
    0.5 * erf::erfc(x / std::f64::consts::SQRT_2)
}

/// Standard normal density `φ(x)`.
pub fn normal_pdf(x: f64) -> f64 {
    (-0.5 * x * x).exp() / (2.0 * std::f64::consts::PI).sqrt()
}

/// Standard normal quantile `Φ⁻¹(p)` for `p` in `(0, 1)`; `±∞` at the ends, NaN outside.
pub fn normal_quantile(p: f64) -> f64 {
    if p.is_nan() || !(0.0..=1.0).contains(&p) {
        return f64::NAN;
    }
    if p == 0.0 {
        return f64::NEG_INFINITY;
    }
    if p == 1.0 {
        return f64::INFINITY;
    }
    // statrs' inverse is accurate to ~1e-11 relative in the far tails; one Newton step on the
    // better-conditioned tail brings it to machine precision.
    let mut z = std_normal().inverse_cdf(p);
    for _ in 0..2 {
        let f = normal_pdf(z);
        if f <= 0.0 || !z.is_finite() {
            break;
        }
        z -= if p < 0.5 { (normal_cdf(z) - p) / f } else { ((1.0 - p) - normal_sf(z)) / f };
    }
    z
}

/// Upper quantile of the standard normal: the `z` with `1 − Φ(z) = q`.
pub fn normal_upper_quantile(q: f64) -> f64 {
    -normal_quantile(q)
}

fn std_normal() -> Normal {
    // Parameters are constants and valid.
    Normal::new(0.0, 1.0).unwrap_or_else(|_| unreachable!("N(0,1) is valid"))
}

fn student(dof: f64) -> Option<StudentsT> {
    StudentsT::new(0.0, 1.0, dof).ok()
}

/// Student-t cumulative distribution function with `dof` degrees of freedom
/// (NaN if `dof` is not positive).
pub fn student_t_cdf(x: f64, dof: f64) -> f64 {
    student(dof).map_or(f64::NAN, |t| t.cdf(x))
}

/// Student-t survival function `P(T > x)`, evaluated without cancellation.
pub fn student_t_sf(x: f64, dof: f64) -> f64 {
    student(dof).map_or(f64::NAN, |t| t.sf(x))
}

/// Upper Student-t quantile: the `t` with `P(T > t) = q`, for `q` in `(0, 1)`.
///
/// Starts from `statrs`' inverse and applies Newton steps on the survival function so the
/// result is accurate to a few ulps even for very large degrees of freedom.
pub fn student_t_upper_quantile(q: f64, dof: f64) -> f64 {
    let Some(dist) = student(dof) else { return f64::NAN };
    if q == 0.0 {
        return f64::INFINITY;
    }
    if q == 1.0 {
        return f64::NEG_INFINITY;
    }
    if q.is_nan() || !(0.0..1.0).contains(&q) {
        return f64::NAN;
    }
    let mut t = dist.inverse_cdf(1.0 - q);
    if !t.is_finite() {
        t = normal_upper_quantile(q);
    }
    for _ in 0..8 {
        let f = dist.pdf(t);
        if f <= 0.0 || !f.is_finite() {
            break;
        }
        let step = (dist.sf(t) - q) / f;
        t += step;
        if step.abs() <= 1e-15 * t.abs().max(1.0) {
            break;
        }
    }
    t
}

/// Chi-square survival function `P(X > x)` with `dof` degrees of freedom (1 if `x ≤ 0`).
pub fn chi_squared_sf(x: f64, dof: f64) -> f64 {
    if x <= 0.0 {
        return 1.0;
    }
    ChiSquared::new(dof).map_or(f64::NAN, |c| c.sf(x))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normal_quantile_round_trips() {
        for &p in &[1e-10, 0.001, 0.025, 0.5, 0.8, 0.975] {
            let z = normal_quantile(p);
            assert!((normal_cdf(z) - p).abs() < 1e-13 * p, "{p}: {z} -> {}", normal_cdf(z));
        }
    }

    #[test]
    fn t_quantile_converges_to_normal_for_huge_dof() {
        let t = student_t_upper_quantile(0.025, 1e7);
        assert!((t - 1.959963984540054).abs() < 1e-5);
        let t = student_t_upper_quantile(0.025, 10.0);
        assert!((t - 2.2281388519862753).abs() < 1e-12, "{t}");
    }
}
