//! Per-arm estimates (mean and unit variance) derived from [`MetricSums`], including ratio
//! metrics (delta method) and CUPED regression adjustment.

use serde::{Deserialize, Serialize};

use crate::sums::{mean, sample_covariance, sample_variance, MetricSums};

/// How a metric's unit values are distributed, which decides its variance formula.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MetricKind {
    /// Conversion / proportion: each unit is 0 or 1; unit variance `p(1 − p)` (no Bessel factor).
    Proportion,
    /// Mean of a per-unit value (e.g. revenue per user); Bessel-corrected variance.
    Mean,
    /// Sum of event values per unit; analysed like [`MetricKind::Mean`].
    Sum,
    /// Count of events per unit; analysed like [`MetricKind::Mean`].
    Count,
    /// Ratio Σnumerator / Σdenominator across units (delta-method variance).
    Ratio,
}

impl MetricKind {
    /// Whether unit values are 0/1 (binomial variance).
    pub fn is_binomial(self) -> bool {
        matches!(self, MetricKind::Proportion)
    }
}

/// Mean and unit variance of one arm, the input of every two-arm test.
///
/// `variance` is the per-unit variance; the variance of `mean` is `variance / n`.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct ArmEstimate {
    /// Units in the arm.
    pub n: u64,
    /// Point estimate used for differences (CUPED-adjusted when adjustment is on).
    pub mean: f64,
    /// Mean without regression adjustment; used as the denominator of relative lift.
    pub unadjusted_mean: f64,
    /// Per-unit variance.
    pub variance: f64,
}

impl ArmEstimate {
    /// Conversion metric with `conversions` of `n` units: variance `p(1 − p)`.
    pub fn proportion(n: u64, conversions: f64) -> Self {
        let p = mean(n, conversions);
        Self { n, mean: p, unadjusted_mean: p, variance: p * (1.0 - p) }
    }

    /// Continuous metric from `n`, Σy, Σy² (Bessel-corrected variance; 0 when n ≤ 1).
    pub fn sample_mean(n: u64, sum: f64, sum_sq: f64) -> Self {
        let m = mean(n, sum);
        Self { n, mean: m, unadjusted_mean: m, variance: sample_variance(n, sum, sum_sq) }
    }

    /// Ratio metric `R = Σm / Σd` with delta-method unit variance
    /// `s_m²/d̄² − 2·c_md·m̄/d̄³ + m̄²·s_d²/d̄⁴`.
    pub fn ratio(s: &MetricSums) -> Self {
        let n = s.n;
        let r = if s.den_sum == 0.0 { 0.0 } else { s.sum / s.den_sum };
        let m_bar = mean(n, s.sum);
        let d_bar = mean(n, s.den_sum);
        let variance = if d_bar == 0.0 || n <= 1 {
            0.0
        } else {
            let vm = sample_variance(n, s.sum, s.sum_sq);
            let vd = sample_variance(n, s.den_sum, s.den_sum_sq);
            let c = sample_covariance(n, s.sum, s.den_sum, s.cross_den);
            vm / d_bar.powi(2) - 2.0 * c * m_bar / d_bar.powi(3) + m_bar.powi(2) * vd / d_bar.powi(4)
        };
        Self { n, mean: r, unadjusted_mean: r, variance }
    }

    /// Estimate for a metric of `kind` from its sums (no CUPED).
    pub fn from_sums(kind: MetricKind, s: &MetricSums) -> Self {
        match kind {
            MetricKind::Proportion => Self::proportion(s.n, s.sum),
            MetricKind::Mean | MetricKind::Sum | MetricKind::Count => Self::sample_mean(s.n, s.sum, s.sum_sq),
            MetricKind::Ratio => Self::ratio(s),
        }
    }
}

/// Control and treatment estimates after CUPED regression adjustment.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct CupedPair {
    /// Pooled regression coefficient θ = cov(y, x) / var(x); 0 means no adjustment was applied.
    pub theta: f64,
    /// Adjusted control arm.
    pub control: ArmEstimate,
    /// Adjusted treatment arm.
    pub treatment: ArmEstimate,
}

fn kind_variance(binomial: bool, n: u64, sum: f64, sum_sq: f64) -> f64 {
    if binomial {
        let p = mean(n, sum);
        p * (1.0 - p)
    } else {
        sample_variance(n, sum, sum_sq)
    }
}

/// CUPED (regression adjustment on a pre-exposure covariate), as gbstats 0.8.0 does it.
///
/// θ is estimated on the pooled sample of both arms; if the pooled variance of the metric or of
/// the covariate is zero, θ = 0 and the unadjusted estimates are returned. Each arm's mean
/// becomes `ȳ − θx̄` and its unit variance `s_y² + θ²s_x² − 2θ·c_yx`. With `binomial`, metric and
/// covariate variances use `p(1 − p)` like proportion metrics. Ratio metrics are not supported.
pub fn cuped_pair(binomial: bool, control: &MetricSums, treatment: &MetricSums) -> CupedPair {
    let n = control.n + treatment.n;
    let var_y = kind_variance(binomial, n, control.sum + treatment.sum, control.sum_sq + treatment.sum_sq);
    let var_x = kind_variance(binomial, n, control.pre_sum + treatment.pre_sum, control.pre_sum_sq + treatment.pre_sum_sq);
    let unadjusted = |s: &MetricSums| {
        if binomial {
            ArmEstimate::proportion(s.n, s.sum)
        } else {
            ArmEstimate::sample_mean(s.n, s.sum, s.sum_sq)
        }
    };
    if var_x == 0.0 || var_y == 0.0 {
        return CupedPair { theta: 0.0, control: unadjusted(control), treatment: unadjusted(treatment) };
    }
    let cov =
        sample_covariance(n, control.sum + treatment.sum, control.pre_sum + treatment.pre_sum, control.cross_pre + treatment.cross_pre);
    let theta = cov / var_x;
    let adjust = |s: &MetricSums| {
        let y_bar = mean(s.n, s.sum);
        let x_bar = mean(s.n, s.pre_sum);
        let variance = if s.n <= 1 {
            0.0
        } else {
            let vy = kind_variance(binomial, s.n, s.sum, s.sum_sq);
            let vx = kind_variance(binomial, s.n, s.pre_sum, s.pre_sum_sq);
            let c = sample_covariance(s.n, s.sum, s.pre_sum, s.cross_pre);
            vy + theta * theta * vx - 2.0 * theta * c
        };
        ArmEstimate { n: s.n, mean: y_bar - theta * x_bar, unadjusted_mean: y_bar, variance }
    };
    CupedPair { theta, control: adjust(control), treatment: adjust(treatment) }
}
