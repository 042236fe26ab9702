//! Per-variant sufficient statistics and the accumulator that builds them from unit values.
//!
//! Everything downstream is computed from these sums, so analysis cost is O(1) per variant and
//! metric whatever the number of events. Sums are additive: statistics for any window, day or
//! slice are obtained by [`MetricSums::merge`].

use serde::{Deserialize, Serialize};

/// Sufficient statistics of one metric in one variant.
///
/// * Plain metrics use `n`, `sum`, `sum_sq` (Σy, Σy²).
/// * Ratio metrics (numerator `y`, denominator `d` per unit) also use `den_sum`, `den_sum_sq`
///   and `cross_den` (Σy·d).
/// * CUPED uses the pre-exposure covariate `x`: `pre_sum`, `pre_sum_sq` and `cross_pre` (Σy·x).
///
/// Unused fields stay zero.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct MetricSums {
    /// Number of units (e.g. users) in the variant, including units with a zero value.
    pub n: u64,
    /// Σ y over units (ratio metrics: Σ numerator).
    pub sum: f64,
    /// Σ y².
    pub sum_sq: f64,
    /// Ratio metrics: Σ denominator.
    pub den_sum: f64,
    /// Ratio metrics: Σ denominator².
    pub den_sum_sq: f64,
    /// Ratio metrics: Σ numerator·denominator.
    pub cross_den: f64,
    /// CUPED: Σ pre-exposure covariate.
    pub pre_sum: f64,
    /// CUPED: Σ covariate².
    pub pre_sum_sq: f64,
    /// CUPED: Σ y·covariate.
    pub cross_pre: f64,
}

impl MetricSums {
    /// Sums of a plain metric from `n`, Σy and Σy².
    pub fn new(n: u64, sum: f64, sum_sq: f64) -> Self {
        Self { n, sum, sum_sq, ..Self::default() }
    }

    /// Sums of a conversion metric: `conversions` of `n` units converted (y ∈ {0, 1}).
    pub fn proportion(n: u64, conversions: f64) -> Self {
        Self::new(n, conversions, conversions)
    }

    /// Sums of a ratio metric.
    pub fn ratio(n: u64, num: (f64, f64), den: (f64, f64), cross: f64) -> Self {
        Self { n, sum: num.0, sum_sq: num.1, den_sum: den.0, den_sum_sq: den.1, cross_den: cross, ..Self::default() }
    }

    /// Adds a CUPED covariate block (Σx, Σx², Σy·x) to these sums.
    pub fn with_covariate(mut self, pre_sum: f64, pre_sum_sq: f64, cross_pre: f64) -> Self {
        self.pre_sum = pre_sum;
        self.pre_sum_sq = pre_sum_sq;
        self.cross_pre = cross_pre;
        self
    }

    /// Adds one unit with value `y`.
    #[inline]
    pub fn add_unit(&mut self, y: f64) {
        self.n += 1;
        self.sum += y;
        self.sum_sq += y * y;
    }

    /// Adds one unit of a ratio metric with numerator `y` and denominator `d`.
    #[inline]
    pub fn add_ratio_unit(&mut self, y: f64, d: f64) {
        self.add_unit(y);
        self.den_sum += d;
        self.den_sum_sq += d * d;
        self.cross_den += y * d;
    }

    /// Adds one unit with value `y` and pre-exposure covariate `x` (CUPED).
    #[inline]
    pub fn add_unit_with_covariate(&mut self, y: f64, x: f64) {
        self.add_unit(y);
        self.pre_sum += x;
        self.pre_sum_sq += x * x;
        self.cross_pre += y * x;
    }

    /// Adds another set of sums (another day, slice or shard) to these.
    pub fn merge(&mut self, other: &Self) {
        self.n += other.n;
        self.sum += other.sum;
        self.sum_sq += other.sum_sq;
        self.den_sum += other.den_sum;
        self.den_sum_sq += other.den_sum_sq;
        self.cross_den += other.cross_den;
        self.pre_sum += other.pre_sum;
        self.pre_sum_sq += other.pre_sum_sq;
        self.cross_pre += other.cross_pre;
    }

    /// Mean Σy/n (0 when empty).
    pub fn mean(&self) -> f64 {
        mean(self.n, self.sum)
    }
}

pub(crate) fn mean(n: u64, sum: f64) -> f64 {
    if n == 0 {
        0.0
    } else {
        sum / n as f64
    }
}

/// Bessel-corrected variance from sums (0 when n ≤ 1).
pub(crate) fn sample_variance(n: u64, sum: f64, sum_sq: f64) -> f64 {
    if n <= 1 {
        return 0.0;
    }
    let n = n as f64;
    (sum_sq - sum * sum / n) / (n - 1.0)
}

/// Bessel-corrected covariance from sums (0 when n ≤ 1).
pub(crate) fn sample_covariance(n: u64, sum_a: f64, sum_b: f64, cross: f64) -> f64 {
    if n <= 1 {
        return 0.0;
    }
    let n = n as f64;
    (cross - sum_a * sum_b / n) / (n - 1.0)
}

/// Reduces columnar per-unit data (one variant index and one value per unit) to one
/// [`MetricSums`] per variant, capping values at `cap` when given.
///
/// Units with a variant index `>= variants` are ignored.
pub fn accumulate(variant_of_unit: &[u32], values: &[f64], variants: usize, cap: Option<f64>) -> Vec<MetricSums> {
    let mut out = vec![MetricSums::default(); variants];
    let cap = cap.unwrap_or(f64::INFINITY);
    for (&v, &y) in variant_of_unit.iter().zip(values) {
        if let Some(s) = out.get_mut(v as usize) {
            s.add_unit(y.min(cap));
        }
    }
    out
}

/// Like [`accumulate`] for a ratio metric: numerator (capped at `cap`) and denominator per unit.
pub fn accumulate_ratio(variant_of_unit: &[u32], num: &[f64], den: &[f64], variants: usize, cap: Option<f64>) -> Vec<MetricSums> {
    let mut out = vec![MetricSums::default(); variants];
    let cap = cap.unwrap_or(f64::INFINITY);
    for ((&v, &y), &d) in variant_of_unit.iter().zip(num).zip(den) {
        if let Some(s) = out.get_mut(v as usize) {
            s.add_ratio_unit(y.min(cap), d);
        }
    }
    out
}

/// Like [`accumulate`] with a pre-exposure covariate per unit (CUPED); both are capped at `cap`.
pub fn accumulate_with_covariate(
    variant_of_unit: &[u32],
    values: &[f64],
    covariate: &[f64],
    variants: usize,
    cap: Option<f64>,
) -> Vec<MetricSums> {
    let mut out = vec![MetricSums::default(); variants];
    let cap = cap.unwrap_or(f64::INFINITY);
    for ((&v, &y), &x) in variant_of_unit.iter().zip(values).zip(covariate) {
        if let Some(s) = out.get_mut(v as usize) {
            s.add_unit_with_covariate(y.min(cap), x.min(cap));
        }
    }
    out
}
