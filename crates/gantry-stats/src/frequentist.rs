//! Frequentist two-arm tests: Welch t, z, and always-valid sequential confidence sequences,
//! on absolute or relative (delta-method) differences.

use serde::{Deserialize, Serialize};

use crate::dist;
use crate::estimate::ArmEstimate;
use crate::StatsError;

/// Which difference between treatment and control is estimated.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DifferenceType {
    /// `μ_T − μ_C`, in metric units.
    Absolute,
    /// `(μ_T − μ_C) / μ_C` (lift), variance by the delta method.
    #[default]
    Relative,
}

/// Settings of a frequentist test.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct FrequentistConfig {
    /// Absolute or relative difference.
    pub difference: DifferenceType,
    /// Two-sided significance level; the interval has coverage `1 − alpha`.
    pub alpha: f64,
    /// Null-hypothesis value of the difference (usually 0).
    pub test_value: f64,
}

impl Default for FrequentistConfig {
    fn default() -> Self {
        Self { difference: DifferenceType::Relative, alpha: 0.05, test_value: 0.0 }
    }
}

/// Result of a two-sided frequentist test.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct FrequentistResult {
    /// Point estimate of the difference.
    pub estimate: f64,
    /// Standard error of the estimate.
    pub std_error: f64,
    /// Confidence interval `[low, high]` at level `1 − alpha`.
    pub ci: [f64; 2],
    /// Two-sided p-value.
    pub p_value: f64,
    /// Test statistic `(estimate − test_value) / std_error`.
    pub statistic: f64,
    /// Welch–Satterthwaite degrees of freedom (`None` for normal-based tests).
    pub dof: Option<f64>,
}

/// Point estimate and estimator variance of the difference between two arms.
///
/// Relative differences divide by the **unadjusted** control mean and use
/// `Var = v_T/(μ_C² n_T) + v_C μ_T²/(μ_C⁴ n_C)` with unadjusted means (gbstats 0.8.0).
pub fn difference(control: &ArmEstimate, treatment: &ArmEstimate, kind: DifferenceType) -> Result<(f64, f64), StatsError> {
    if control.n == 0 || treatment.n == 0 {
        return Err(StatsError::NoUnits);
    }
    if kind == DifferenceType::Relative && (control.mean == 0.0 || control.unadjusted_mean == 0.0) {
        return Err(StatsError::ZeroBaseline);
    }
    if control.variance <= 0.0 || treatment.variance <= 0.0 || !control.variance.is_finite() || !treatment.variance.is_finite() {
        return Err(StatsError::ZeroVariance);
    }
    let (nc, nt) = (control.n as f64, treatment.n as f64);
    Ok(match kind {
        DifferenceType::Absolute => (treatment.mean - control.mean, treatment.variance / nt + control.variance / nc),
        DifferenceType::Relative => {
            let mc = control.unadjusted_mean;
            let mt = treatment.unadjusted_mean;
            let est = (treatment.mean - control.mean) / mc;
            let var = treatment.variance / (mc * mc * nt) + control.variance * mt * mt / (mc.powi(4) * nc);
            (est, var)
        }
    })
}

/// Welch–Satterthwaite degrees of freedom from the arms' unit variances.
pub fn welch_dof(control: &ArmEstimate, treatment: &ArmEstimate) -> f64 {
    let (nc, nt) = (control.n as f64, treatment.n as f64);
    let a = treatment.variance / nt;
    let b = control.variance / nc;
    (a + b).powi(2) / (a * a / (nt - 1.0) + b * b / (nc - 1.0))
}

/// Welch's unequal-variance t test (two-sided), gbstats `TwoSidedTTest`.
pub fn welch_t_test(control: &ArmEstimate, treatment: &ArmEstimate, config: &FrequentistConfig) -> Result<FrequentistResult, StatsError> {
    let (est, var) = difference(control, treatment, config.difference)?;
    let se = var.sqrt();
    let dof = welch_dof(control, treatment);
    let statistic = (est - config.test_value) / se;
    let p_value = (2.0 * dist::student_t_sf(statistic.abs(), dof)).min(1.0);
    let half = dist::student_t_upper_quantile(config.alpha / 2.0, dof) * se;
    Ok(FrequentistResult { estimate: est, std_error: se, ci: [est - half, est + half], p_value, statistic, dof: Some(dof) })
}

/// Two-sided z test (normal reference distribution, unpooled variances).
pub fn z_test(control: &ArmEstimate, treatment: &ArmEstimate, config: &FrequentistConfig) -> Result<FrequentistResult, StatsError> {
    let (est, var) = difference(control, treatment, config.difference)?;
    let se = var.sqrt();
    let statistic = (est - config.test_value) / se;
    let p_value = (2.0 * dist::normal_sf(statistic.abs())).min(1.0);
    let half = dist::normal_upper_quantile(config.alpha / 2.0) * se;
    Ok(FrequentistResult { estimate: est, std_error: se, ci: [est - half, est + half], p_value, statistic, dof: None })
}

/// Default tuning parameter of sequential tests: the total sample size (both arms) at which the
/// confidence sequence is tightest (GrowthBook's default).
pub const DEFAULT_SEQUENTIAL_TUNING: f64 = 5000.0;

/// Mixing parameter `ρ² = (−2 ln α + ln(1 − 2 ln α)) / tuning` of the confidence sequence.
pub fn sequential_rho_squared(alpha: f64, tuning: f64) -> f64 {
    let l = -2.0 * alpha.ln();
    (l + (1.0 + l).ln()) / tuning
}

/// Half-width of the asymptotic confidence sequence for an estimator with variance `var`
/// after `total_n` units (both arms).
pub fn sequential_half_width(var: f64, total_n: f64, alpha: f64, tuning: f64) -> f64 {
    let rho2 = sequential_rho_squared(alpha, tuning);
    let a = total_n * rho2 + 1.0;
    let s2 = var * total_n;
    (s2 * 2.0 * a * (a.sqrt() / alpha).ln() / (total_n * total_n * rho2)).sqrt()
}

/// Always-valid two-sided test (asymptotic confidence sequence of Waudby-Smith et al., in the
/// form gbstats `SequentialTwoSidedTTest` uses). The interval is valid at every look, so
/// results may be checked continuously. `tuning` is the total sample size (both arms) at
/// which the interval is tightest (see [`DEFAULT_SEQUENTIAL_TUNING`]).
pub fn sequential_test(
    control: &ArmEstimate,
    treatment: &ArmEstimate,
    config: &FrequentistConfig,
    tuning: f64,
) -> Result<FrequentistResult, StatsError> {
    let (est, var) = difference(control, treatment, config.difference)?;
    let total = (control.n + treatment.n) as f64;
    Ok(sequential_from_effect(est, var, total, config.alpha, config.test_value, tuning))
}

/// Sequential test from a precomputed effect estimate and estimator variance.
pub fn sequential_from_effect(est: f64, var: f64, total_n: f64, alpha: f64, test_value: f64, tuning: f64) -> FrequentistResult {
    let se = var.sqrt();
    let half = sequential_half_width(var, total_n, alpha, tuning);
    let rho2 = sequential_rho_squared(alpha, tuning);
    let a = total_n * rho2 + 1.0;
    let d = est - test_value;
    let log_e = rho2 * d * d * total_n / var / (2.0 * a) - 0.5 * a.ln();
    let p_value = (-log_e).exp().min(1.0);
    FrequentistResult { estimate: est, std_error: se, ci: [est - half, est + half], p_value, statistic: d / se, dof: None }
}

/// Result of a pooled two-proportion z test.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct ProportionsZTest {
    /// z statistic of `p_T − p_C` with the pooled null variance.
    pub statistic: f64,
    /// Two-sided p-value.
    pub p_value: f64,
}

/// Classic two-proportion z test with pooled variance under H0 (as `statsmodels`
/// `proportions_ztest([x_T, x_C], [n_T, n_C])`).
pub fn proportions_z_test(conv_control: f64, n_control: u64, conv_treatment: f64, n_treatment: u64) -> Option<ProportionsZTest> {
    let (nc, nt) = (n_control as f64, n_treatment as f64);
    if n_control == 0 || n_treatment == 0 {
        return None;
    }
    let pooled = (conv_control + conv_treatment) / (nc + nt);
    let var = pooled * (1.0 - pooled) * (1.0 / nc + 1.0 / nt);
    if var <= 0.0 {
        return None;
    }
    let z = (conv_treatment / nt - conv_control / nc) / var.sqrt();
    Some(ProportionsZTest { statistic: z, p_value: (2.0 * dist::normal_sf(z.abs())).min(1.0) })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sequential_p_below_alpha_iff_ci_excludes_zero() {
        for est in [0.001, 0.01, 0.02, 0.05] {
            let r = sequential_from_effect(est, 1e-4, 20_000.0, 0.05, 0.0, 5000.0);
            assert_eq!(r.p_value < 0.05, r.ci[0] > 0.0, "{est}");
        }
    }
}
