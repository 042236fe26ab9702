//! Experiment statistics for Gantry: the pure engine behind experiment results.
//!
//! This crate owns the maths of A/B(/n) analysis and nothing else: no I/O, no async, no clock.
//! Its main design decision is that **every analysis runs on per-variant sufficient statistics**
//! ([`MetricSums`]: n, Σy, Σy², plus the denominator and covariate sums and cross products
//! ratio metrics and CUPED need), so analysis cost is independent of the number of raw events
//! and sums from days, shards or slices simply add up.
//!
//! The methods reproduce GrowthBook's `gbstats` 0.8.0 where it has one (checked against it,
//! scipy and statsmodels by committed fixtures, see `scripts/stats/`):
//!
//! * [`frequentist`]: Welch t and z tests on absolute or relative (delta-method) differences,
//!   and always-valid sequential confidence sequences ([`sequential_test`]).
//! * [`bayesian`]: Gaussian effect model: chance to win, expected loss (risk), credible interval.
//! * [`estimate`]: per-arm means and variances, ratio metrics (delta method), CUPED
//!   ([`cuped_pair`]).
//! * [`srm`]: sample-ratio-mismatch chi-square check; [`correction`]: Holm and
//!   Benjamini–Hochberg; [`power`]: power, MDE and sample size.
//! * [`analyze`](analyze()): the whole experiment, with plain-words verdicts, serialisable for
//!   the results API.
//!
#![doc = include_str!("../README.md")]
#![deny(missing_docs)]
#![forbid(unsafe_code)]

pub mod analyze;
pub mod bayesian;
pub mod correction;
pub mod dist;
pub mod estimate;
pub mod frequentist;
pub mod power;
pub mod srm;
pub mod sums;

pub use analyze::{
    analyze, count_units, AnalysisError, AnalysisSettings, Comparison, Engine, ExperimentInput, ExperimentResults, MetricInput,
    MetricResult, MetricSpec, Status, UnitValues, VariantInput, VariantResult,
};
pub use bayesian::{bayesian_test, BayesianConfig, BayesianResult, GaussianPrior};
pub use correction::{benjamini_hochberg, holm, Correction};
pub use estimate::{cuped_pair, ArmEstimate, CupedPair, MetricKind};
pub use frequentist::{
    proportions_z_test, sequential_test, welch_t_test, z_test, DifferenceType, FrequentistConfig, FrequentistResult,
    DEFAULT_SEQUENTIAL_TUNING,
};
pub use srm::{srm_test, SrmResult, SRM_P_THRESHOLD};
pub use sums::MetricSums;

use serde::{Deserialize, Serialize};

/// Why a two-arm comparison cannot be computed (gbstats' "default output" cases).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StatsError {
    /// An arm has no units.
    NoUnits,
    /// Relative difference requested but the control mean is zero.
    ZeroBaseline,
    /// An arm has zero (or negative) variance, e.g. no conversions yet or n ≤ 1.
    ZeroVariance,
}

impl std::fmt::Display for StatsError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            StatsError::NoUnits => "a variant has no units",
            StatsError::ZeroBaseline => "the control mean is zero, so a relative lift is undefined",
            StatsError::ZeroVariance => "a variant has zero variance",
        })
    }
}

impl std::error::Error for StatsError {}
