//! Whole-experiment analysis: every metric × treatment variant compared with control, SRM
//! check, multiple-testing correction and a plain-words verdict. Output types are serde
//! serialisable for the results API.

use serde::{Deserialize, Serialize};

use crate::bayesian::{bayesian_test, BayesianConfig, GaussianPrior};
use crate::correction::{adjust, Correction};
use crate::dist;
use crate::estimate::{cuped_pair, ArmEstimate, MetricKind};
use crate::frequentist::{difference, sequential_test, welch_t_test, DifferenceType, FrequentistConfig};
use crate::srm::{srm_test, SrmResult, SRM_P_THRESHOLD};
use crate::sums::{accumulate, accumulate_ratio, accumulate_with_covariate, MetricSums};
use crate::StatsError;

/// Which inference engine produces intervals and decisions.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Engine {
    /// Welch t test (or a sequential confidence sequence when `sequential` is set).
    #[default]
    Frequentist,
    /// Gaussian effect model: chance to win, risk and credible interval.
    Bayesian,
}

/// Experiment-wide analysis settings.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct AnalysisSettings {
    /// Inference engine.
    pub engine: Engine,
    /// Frequentist only: analyse with an always-valid confidence sequence tuned for this total
    /// sample size (both arms), e.g. [`crate::DEFAULT_SEQUENTIAL_TUNING`]. Safe to peek.
    pub sequential_tuning: Option<f64>,
    /// Significance level (frequentist) / `1 −` credible level (Bayesian).
    pub alpha: f64,
    /// Difference the interval and test are about; both lifts are always reported.
    pub difference: DifferenceType,
    /// Multiple-testing correction over all metrics × treatment variants (frequentist only).
    pub correction: Correction,
    /// Bayesian prior on the effect (in `difference` units).
    pub prior: GaussianPrior,
    /// Below this many units in control or treatment the verdict is "Not enough data yet".
    pub min_units_per_variant: u64,
    /// SRM flag threshold on the chi-square p-value.
    pub srm_threshold: f64,
    /// Bayesian: chance to win above which treatment wins (and below `1 −` which it loses).
    pub chance_to_win_threshold: f64,
}

impl Default for AnalysisSettings {
    fn default() -> Self {
        Self {
            engine: Engine::Frequentist,
            sequential_tuning: None,
            alpha: 0.05,
            difference: DifferenceType::Relative,
            correction: Correction::None,
            prior: GaussianPrior::IMPROPER,
            min_units_per_variant: 100,
            srm_threshold: SRM_P_THRESHOLD,
            chance_to_win_threshold: 0.95,
        }
    }
}

/// One arm of the experiment; the first variant is the control.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct VariantInput {
    /// Display name, used in verdicts (e.g. "Treatment B").
    pub name: String,
    /// Configured traffic weight (any positive scale, e.g. 33/33/34).
    pub weight: f64,
    /// Units (users) exposed to the variant, used for the SRM check.
    pub units: u64,
}

/// Definition of a metric.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MetricSpec {
    /// Metric name.
    pub name: String,
    /// Metric kind (decides the variance formula).
    pub kind: MetricKind,
    /// Lower values are better (e.g. latency, churn).
    #[serde(default)]
    pub lower_is_better: bool,
    /// Per-unit values above this are replaced by it (outlier capping), applied when sums are
    /// built from unit values (ratio metrics: the numerator).
    #[serde(default)]
    pub cap: Option<f64>,
    /// Use the pre-exposure covariate sums for CUPED variance reduction (not for ratio metrics).
    #[serde(default)]
    pub cuped: bool,
}

/// A metric with its sufficient statistics, one entry per variant (same order as variants).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MetricInput {
    /// Definition.
    pub spec: MetricSpec,
    /// Sums per variant.
    pub sums: Vec<MetricSums>,
}

/// Everything [`analyze`] needs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ExperimentInput {
    /// Variants, control first.
    pub variants: Vec<VariantInput>,
    /// Metrics.
    pub metrics: Vec<MetricInput>,
}

/// Per-unit values of one metric in columnar form (one entry per unit, aligned with the
/// variant-index column).
#[derive(Debug, Clone, Copy)]
pub enum UnitValues<'a> {
    /// One value per unit.
    Values(&'a [f64]),
    /// Ratio metric: numerator and denominator per unit.
    Ratio {
        /// Numerators.
        num: &'a [f64],
        /// Denominators.
        den: &'a [f64],
    },
    /// Value and pre-exposure covariate per unit (CUPED).
    WithCovariate {
        /// Values in the experiment window.
        values: &'a [f64],
        /// Same metric before exposure.
        covariate: &'a [f64],
    },
}

impl MetricInput {
    /// Builds the metric's sums from columnar unit data, applying the spec's cap.
    pub fn from_units(spec: MetricSpec, variant_of_unit: &[u32], values: UnitValues<'_>, variants: usize) -> Self {
        let cap = spec.cap;
        let sums = match values {
            UnitValues::Values(v) => accumulate(variant_of_unit, v, variants, cap),
            UnitValues::Ratio { num, den } => accumulate_ratio(variant_of_unit, num, den, variants, cap),
            UnitValues::WithCovariate { values, covariate } => accumulate_with_covariate(variant_of_unit, values, covariate, variants, cap),
        };
        Self { spec, sums }
    }
}

/// Counts units per variant from a variant-index column (indices `>= variants` ignored).
pub fn count_units(variant_of_unit: &[u32], variants: usize) -> Vec<u64> {
    let mut counts = vec![0u64; variants];
    for &v in variant_of_unit {
        if let Some(c) = counts.get_mut(v as usize) {
            *c += 1;
        }
    }
    counts
}

/// Why an experiment could not be analysed at all.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "code", rename_all = "snake_case")]
pub enum AnalysisError {
    /// Fewer than two variants.
    TooFewVariants,
    /// A metric does not have one set of sums per variant.
    SumsLengthMismatch {
        /// The metric's name.
        metric: String,
    },
    /// A setting is out of range (e.g. alpha outside (0, 1)).
    InvalidSetting {
        /// Which setting.
        setting: String,
    },
}

impl std::fmt::Display for AnalysisError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            AnalysisError::TooFewVariants => f.write_str("an experiment needs a control and at least one treatment"),
            AnalysisError::SumsLengthMismatch { metric } => write!(f, "metric {metric:?} must have one set of sums per variant"),
            AnalysisError::InvalidSetting { setting } => write!(f, "invalid analysis setting {setting}"),
        }
    }
}

impl std::error::Error for AnalysisError {}

/// Analysis of a whole experiment.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ExperimentResults {
    /// Settings used.
    pub settings: AnalysisSettings,
    /// Sample-ratio-mismatch check on variant units.
    pub srm: SrmResult,
    /// Per-metric results.
    pub metrics: Vec<MetricResult>,
}

/// Results of one metric.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MetricResult {
    /// Metric name.
    pub name: String,
    /// Metric kind.
    pub kind: MetricKind,
    /// One entry per variant, control first.
    pub variants: Vec<VariantResult>,
}

/// One variant of one metric.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct VariantResult {
    /// Variant name.
    pub variant: String,
    /// Units with this metric in the variant.
    pub units: u64,
    /// Observed (unadjusted) metric value: mean per unit, conversion rate, or ratio.
    pub mean: f64,
    /// Comparison with control; `None` for the control itself.
    pub comparison: Option<Comparison>,
}

/// A treatment compared with control on one metric.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Comparison {
    /// Estimated absolute difference treatment − control (CUPED-adjusted when enabled).
    pub absolute_lift: f64,
    /// Estimated relative lift (absolute lift / control mean); `None` when control mean is 0.
    pub relative_lift: Option<f64>,
    /// Whether `interval` (and the test) is about the absolute or relative difference.
    pub difference: DifferenceType,
    /// Confidence (frequentist) or credible (Bayesian) interval; widened to reflect the
    /// multiple-testing correction when one applies. `None` when no inference was possible, or
    /// when the correction leaves it unbounded (adjusted p-value ≈ 1; JSON has no infinity).
    pub interval: Option<[f64; 2]>,
    /// Frequentist p-value (two-sided).
    pub p_value: Option<f64>,
    /// p-value after the multiple-testing correction (equals `p_value` without one).
    pub adjusted_p_value: Option<f64>,
    /// Bayesian posterior probability that treatment is better.
    pub chance_to_win: Option<f64>,
    /// Bayesian expected loss of choosing control.
    pub risk_control: Option<f64>,
    /// Bayesian expected loss of choosing treatment.
    pub risk_treatment: Option<f64>,
    /// CUPED coefficient θ used (0 when adjustment was impossible); `None` without CUPED.
    pub cuped_theta: Option<f64>,
    /// Why no inference could be made, if so.
    pub error: Option<StatsError>,
    /// Decision category.
    pub status: Status,
    /// The decision in plain words.
    pub verdict: String,
}

/// Decision category of a comparison.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    /// Treatment is significantly better.
    Wins,
    /// Treatment is significantly worse.
    Loses,
    /// No significant difference.
    NoSignificantDifference,
    /// Too few units, or no variance yet.
    NotEnoughData,
    /// The traffic split does not match the weights; results are not trustworthy.
    SampleRatioMismatch,
}

struct Raw {
    est: f64,
    ci: [f64; 2],
    p_value: Option<f64>,
    bayes: Option<crate::bayesian::BayesianResult>,
}

/// Analyses an experiment from sufficient statistics. Cost is O(metrics × variants).
pub fn analyze(input: &ExperimentInput, settings: &AnalysisSettings) -> Result<ExperimentResults, AnalysisError> {
    let k = input.variants.len();
    if k < 2 {
        return Err(AnalysisError::TooFewVariants);
    }
    if settings.alpha.is_nan() || settings.alpha <= 0.0 || settings.alpha >= 1.0 {
        return Err(AnalysisError::InvalidSetting { setting: "alpha".into() });
    }
    if settings.sequential_tuning.is_some_and(|t| t.is_nan() || t <= 0.0) {
        return Err(AnalysisError::InvalidSetting { setting: "sequential_tuning".into() });
    }
    if let Some(m) = input.metrics.iter().find(|m| m.sums.len() != k) {
        return Err(AnalysisError::SumsLengthMismatch { metric: m.spec.name.clone() });
    }
    let units: Vec<u64> = input.variants.iter().map(|v| v.units).collect();
    let weights: Vec<f64> = input.variants.iter().map(|v| v.weight).collect();
    let srm = srm_test(&units, &weights, settings.srm_threshold);

    // First pass: raw inference for every metric × treatment.
    let mut raw: Vec<Vec<Option<Result<Raw, StatsError>>>> = Vec::with_capacity(input.metrics.len());
    let mut metrics = Vec::with_capacity(input.metrics.len());
    for metric in &input.metrics {
        let spec = &metric.spec;
        let control_sums = &metric.sums[0];
        let mut row = Vec::with_capacity(k);
        let mut variants = Vec::with_capacity(k);
        for (j, sums) in metric.sums.iter().enumerate() {
            let plain = ArmEstimate::from_sums(spec.kind, sums);
            let mut result =
                VariantResult { variant: input.variants[j].name.clone(), units: sums.n, mean: plain.unadjusted_mean, comparison: None };
            if j == 0 {
                row.push(None);
                variants.push(result);
                continue;
            }
            let (control, treatment, theta) = if spec.cuped && spec.kind != MetricKind::Ratio {
                let pair = cuped_pair(spec.kind.is_binomial(), control_sums, sums);
                (pair.control, pair.treatment, Some(pair.theta))
            } else {
                (ArmEstimate::from_sums(spec.kind, control_sums), plain, None)
            };
            let absolute_lift = treatment.mean - control.mean;
            let relative_lift = (control.unadjusted_mean != 0.0).then(|| absolute_lift / control.unadjusted_mean);
            let inference = infer(&control, &treatment, spec, settings);
            result.comparison = Some(Comparison {
                absolute_lift,
                relative_lift,
                difference: settings.difference,
                interval: None,
                p_value: None,
                adjusted_p_value: None,
                chance_to_win: None,
                risk_control: None,
                risk_treatment: None,
                cuped_theta: theta,
                error: inference.as_ref().err().copied(),
                status: Status::NotEnoughData,
                verdict: String::new(),
            });
            row.push(Some(inference));
            variants.push(result);
        }
        raw.push(row);
        metrics.push(MetricResult { name: spec.name.clone(), kind: spec.kind, variants });
    }

    // Multiple-testing correction over the family of available p-values.
    let family: Vec<(usize, usize, f64)> = raw
        .iter()
        .enumerate()
        .flat_map(|(i, row)| {
            row.iter().enumerate().filter_map(move |(j, r)| match r {
                Some(Ok(Raw { p_value: Some(p), .. })) => Some((i, j, *p)),
                _ => None,
            })
        })
        .collect();
    let correction = if settings.engine == Engine::Frequentist { settings.correction } else { Correction::None };
    let adjusted = adjust(&family.iter().map(|f| f.2).collect::<Vec<_>>(), correction);
    let mut adjusted_p = vec![vec![None; k]; input.metrics.len()];
    for (&(i, j, _), &p) in family.iter().zip(&adjusted) {
        adjusted_p[i][j] = Some(p);
    }

    // Second pass: fill numbers and verdicts.
    for (i, metric) in metrics.iter_mut().enumerate() {
        let spec = &input.metrics[i].spec;
        let control_units = input.metrics[i].sums[0].n;
        for (j, variant) in metric.variants.iter_mut().enumerate().skip(1) {
            let name = variant.variant.clone();
            let Some(cmp) = variant.comparison.as_mut() else { continue };
            let enough = control_units >= settings.min_units_per_variant && variant.units >= settings.min_units_per_variant;
            let Some(Ok(r)) = &raw[i][j] else {
                cmp.status = if srm.mismatch { Status::SampleRatioMismatch } else { Status::NotEnoughData };
                cmp.verdict = verdict_text(cmp.status, &name, None, settings);
                continue;
            };
            let mut ci = r.ci;
            if let (Some(p), Some(p_adj)) = (r.p_value, adjusted_p[i][j]) {
                cmp.p_value = Some(p);
                cmp.adjusted_p_value = Some(p_adj);
                if correction != Correction::None {
                    ci = adjusted_interval(r.est, r.ci, p_adj, settings.alpha);
                }
            }
            if let Some(b) = &r.bayes {
                cmp.chance_to_win = Some(b.chance_to_win);
                cmp.risk_control = Some(b.risk_control);
                cmp.risk_treatment = Some(b.risk_treatment);
            }
            cmp.interval = ci.iter().all(|x| x.is_finite()).then_some(ci);
            let better = if spec.lower_is_better { r.est < 0.0 } else { r.est > 0.0 };
            let decisive = match settings.engine {
                Engine::Frequentist => cmp.adjusted_p_value.is_some_and(|p| p < settings.alpha),
                Engine::Bayesian => {
                    let ctw = cmp.chance_to_win.unwrap_or(0.5);
                    ctw > settings.chance_to_win_threshold || ctw < 1.0 - settings.chance_to_win_threshold
                }
            };
            cmp.status = if srm.mismatch {
                Status::SampleRatioMismatch
            } else if !enough {
                Status::NotEnoughData
            } else if !decisive {
                Status::NoSignificantDifference
            } else if better {
                Status::Wins
            } else {
                Status::Loses
            };
            cmp.verdict = verdict_text(cmp.status, &name, Some((r.est, ci, cmp.chance_to_win)), settings);
        }
    }

    Ok(ExperimentResults { settings: *settings, srm, metrics })
}

fn infer(control: &ArmEstimate, treatment: &ArmEstimate, spec: &MetricSpec, s: &AnalysisSettings) -> Result<Raw, StatsError> {
    match s.engine {
        Engine::Frequentist => {
            let cfg = FrequentistConfig { difference: s.difference, alpha: s.alpha, test_value: 0.0 };
            let r = match s.sequential_tuning {
                Some(tuning) => sequential_test(control, treatment, &cfg, tuning)?,
                None => welch_t_test(control, treatment, &cfg)?,
            };
            Ok(Raw { est: r.estimate, ci: r.ci, p_value: Some(r.p_value), bayes: None })
        }
        Engine::Bayesian => {
            // Validate inputs the same way for both engines.
            difference(control, treatment, s.difference)?;
            let cfg = BayesianConfig {
                difference: s.difference,
                alpha: s.alpha,
                inverse: spec.lower_is_better,
                prior: s.prior,
                prior_scale: s.difference,
            };
            let b = bayesian_test(control, treatment, &cfg)?;
            Ok(Raw { est: b.expected, ci: b.ci, p_value: None, bayes: Some(b) })
        }
    }
}

/// Interval implied by an adjusted p-value (GrowthBook's display rule): `σ = |Δ / z_{1−p̃/2}|`,
/// `Δ ± z_{1−α/2}·σ`, kept only when wider than the raw interval; unbounded when `p̃ ≈ 1`.
fn adjusted_interval(est: f64, raw: [f64; 2], p_adj: f64, alpha: f64) -> [f64; 2] {
    if p_adj > 0.999_999 {
        return [f64::NEG_INFINITY, f64::INFINITY];
    }
    let sigma = (est / dist::normal_upper_quantile(p_adj / 2.0)).abs();
    let half = dist::normal_upper_quantile(alpha / 2.0) * sigma;
    if 2.0 * half > raw[1] - raw[0] {
        [est - half, est + half]
    } else {
        raw
    }
}

/// Formats `x` with a sign and three significant digits (percent when `pct`).
fn signed(x: f64, pct: bool) -> String {
    if !x.is_finite() {
        return if x > 0.0 { "+∞".into() } else { "−∞".into() };
    }
    let v = if pct { x * 100.0 } else { x };
    let mag = if v == 0.0 { 0 } else { v.abs().log10().floor() as i32 };
    let decimals = if pct { (1 - mag).clamp(1, 6) } else { (2 - mag).clamp(0, 6) } as usize;
    let s = format!("{:+.*}", decimals, v);
    let s = s.replacen('-', "−", 1);
    if pct {
        format!("{s}%")
    } else {
        s
    }
}

fn verdict_text(status: Status, name: &str, numbers: Option<(f64, [f64; 2], Option<f64>)>, s: &AnalysisSettings) -> String {
    let pct = s.difference == DifferenceType::Relative;
    let level = format!("{}%", ((1.0 - s.alpha) * 100.0 * 10.0).round() / 10.0);
    let detail = numbers.map(|(est, ci, ctw)| {
        let kind = if s.engine == Engine::Bayesian { "credible interval" } else { "CI" };
        let mut d = format!("{} ({level} {kind} {} to {}", signed(est, pct), signed(ci[0], pct), signed(ci[1], pct));
        if let Some(ctw) = ctw {
            d.push_str(&format!("; chance to win {:.1}%", ctw * 100.0));
        }
        d.push(')');
        d
    });
    match (status, detail) {
        (Status::SampleRatioMismatch, _) => "Sample ratio mismatch — results are not trustworthy".into(),
        (Status::NotEnoughData, _) | (_, None) => "Not enough data yet".into(),
        (Status::Wins, Some(d)) => format!("{name} wins: {d}"),
        (Status::Loses, Some(d)) => format!("{name} loses: {d}"),
        (Status::NoSignificantDifference, Some(d)) => format!("No significant difference: {d}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_signed_numbers() {
        assert_eq!(signed(0.041, true), "+4.1%");
        assert_eq!(signed(0.005, true), "+0.50%");
        assert_eq!(signed(-0.0123, true), "−1.2%");
        assert_eq!(signed(0.3, false), "+0.300");
        assert_eq!(signed(1234.5, false), "+1234");
    }
}
