//! Sample-ratio-mismatch check: Pearson chi-square goodness of fit of observed unit counts
//! against the configured traffic weights.

use serde::{Deserialize, Serialize};

use crate::dist;

/// p-value below which a sample ratio mismatch is flagged (GrowthBook and Eppo use 0.001:
/// the check runs on every refresh, so a strict level keeps false alarms rare).
pub const SRM_P_THRESHOLD: f64 = 0.001;

/// Outcome of the SRM check.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct SrmResult {
    /// Pearson χ² statistic over variants with positive weight.
    pub chi_squared: f64,
    /// Degrees of freedom: number of variants − 1 (zero-weight variants included, as gbstats).
    pub dof: usize,
    /// Upper-tail p-value.
    pub p_value: f64,
    /// `p_value < threshold`: the observed split is implausible under the configured weights.
    pub mismatch: bool,
}

/// Chi-square test of `counts` against `weights` (any positive scale), flagged at `threshold`.
///
/// Expected counts are `w_i / Σw · Σcounts`; variants with weight ≤ 0 are skipped in the sum.
/// No units at all gives p = 1.
pub fn srm_test(counts: &[u64], weights: &[f64], threshold: f64) -> SrmResult {
    let total: f64 = counts.iter().map(|&c| c as f64).sum();
    let dof = counts.len().saturating_sub(1);
    let total_weight: f64 = weights.iter().filter(|w| **w > 0.0).sum();
    if total == 0.0 || total_weight <= 0.0 || dof == 0 {
        return SrmResult { chi_squared: 0.0, dof, p_value: 1.0, mismatch: false };
    }
    let chi_squared: f64 = counts
        .iter()
        .zip(weights)
        .filter(|(_, w)| **w > 0.0)
        .map(|(&o, &w)| {
            let e = w / total_weight * total;
            (o as f64 - e).powi(2) / e
        })
        .sum();
    let p_value = dist::chi_squared_sf(chi_squared, dof as f64);
    SrmResult { chi_squared, dof, p_value, mismatch: p_value < threshold }
}
