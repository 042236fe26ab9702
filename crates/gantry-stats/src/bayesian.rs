//! Bayesian effect model (gbstats 0.8.0 `EffectBayesianABTest`): a Gaussian prior on the
//! treatment effect combined with the Gaussian likelihood of the estimated effect.

use serde::{Deserialize, Serialize};

use crate::dist;
use crate::estimate::ArmEstimate;
use crate::frequentist::{difference, DifferenceType};
use crate::StatsError;

/// Gaussian prior on the effect.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct GaussianPrior {
    /// Prior mean of the effect.
    pub mean: f64,
    /// Prior variance of the effect.
    pub variance: f64,
    /// Whether the prior is used; an improper (flat) prior makes the posterior equal the likelihood.
    pub proper: bool,
}

impl GaussianPrior {
    /// The flat prior, gbstats' default: posterior = likelihood.
    pub const IMPROPER: Self = Self { mean: 0.0, variance: 1.0, proper: false };

    /// GrowthBook's default proper prior when enabled: `N(0, 0.3²)` on relative lift.
    pub const DEFAULT_PROPER: Self = Self { mean: 0.0, variance: 0.09, proper: true };
}

impl Default for GaussianPrior {
    fn default() -> Self {
        Self::IMPROPER
    }
}

/// Settings of the Bayesian test.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct BayesianConfig {
    /// Absolute or relative effect.
    pub difference: DifferenceType,
    /// Credible interval level is `1 − alpha`.
    pub alpha: f64,
    /// Lower values are better ("inverse" metric): chance to win and risks are mirrored.
    pub inverse: bool,
    /// Prior on the effect.
    pub prior: GaussianPrior,
    /// Scale in which `prior` is expressed; converted with the control mean when it differs
    /// from `difference`.
    pub prior_scale: DifferenceType,
}

impl Default for BayesianConfig {
    fn default() -> Self {
        Self {
            difference: DifferenceType::Relative,
            alpha: 0.05,
            inverse: false,
            prior: GaussianPrior::IMPROPER,
            prior_scale: DifferenceType::Relative,
        }
    }
}

/// Result of the Bayesian test.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct BayesianResult {
    /// Posterior mean of the effect.
    pub expected: f64,
    /// Posterior standard deviation.
    pub std_dev: f64,
    /// Equal-tailed credible interval `[α/2, 1 − α/2]`.
    pub ci: [f64; 2],
    /// Posterior probability that treatment beats control (direction aware for inverse metrics).
    pub chance_to_win: f64,
    /// Expected loss of shipping control (effect units).
    pub risk_control: f64,
    /// Expected loss of shipping treatment (effect units).
    pub risk_treatment: f64,
}

/// Runs the Gaussian effect model on two arms.
pub fn bayesian_test(control: &ArmEstimate, treatment: &ArmEstimate, config: &BayesianConfig) -> Result<BayesianResult, StatsError> {
    let (data_mean, data_var) = difference(control, treatment, config.difference)?;
    let mc = control.unadjusted_mean;
    let prior = match (config.difference, config.prior_scale) {
        (DifferenceType::Relative, DifferenceType::Absolute) => {
            GaussianPrior { mean: config.prior.mean / mc.abs(), variance: config.prior.variance / (mc * mc), ..config.prior }
        }
        (DifferenceType::Absolute, DifferenceType::Relative) => {
            GaussianPrior { mean: config.prior.mean * mc.abs(), variance: config.prior.variance * mc * mc, ..config.prior }
        }
        _ => config.prior,
    };
    Ok(posterior(data_mean, data_var, &prior, config.alpha, config.inverse))
}

/// Combines an effect estimate (`data_mean`, estimator variance `data_var`) with a prior.
pub fn posterior(data_mean: f64, data_var: f64, prior: &GaussianPrior, alpha: f64, inverse: bool) -> BayesianResult {
    let (m, precision) = if prior.proper {
        let p = 1.0 / data_var + 1.0 / prior.variance;
        ((data_mean / data_var + prior.mean / prior.variance) / p, p)
    } else {
        (data_mean, 1.0 / data_var)
    };
    let s = (1.0 / precision).sqrt();
    let z = dist::normal_upper_quantile(alpha / 2.0);
    let up = dist::normal_cdf(m / s); // P(effect > 0)
    let ctw = if inverse { dist::normal_sf(m / s) } else { up };
    // E[max(Δ, 0)] and E[max(−Δ, 0)] of Δ ~ N(m, s²).
    let density = s * dist::normal_pdf(m / s);
    let gain = m * up + density;
    let loss = density - m * dist::normal_sf(m / s);
    let (risk_control, risk_treatment) = if inverse { (loss, gain) } else { (gain, loss) };
    BayesianResult { expected: m, std_dev: s, ci: [m - z * s, m + z * s], chance_to_win: ctw, risk_control, risk_treatment }
}
