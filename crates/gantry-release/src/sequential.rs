//! One-sided always-valid comparison of two error rates (treatment worse than control).
//!
//! Data arrive as disjoint per-evaluation increments (strata). Each stratum contributes its
//! difference of error rates with the Cochran–Mantel–Haenszel-style weight
//! `w = n_t·n_c / (n_t + n_c)`, so a shock common to both arms in one interval (a slow database
//! for a minute) cancels out, and ramping the treatment share over time (which puts treatment
//! data into later intervals than most control data) cannot bias the estimate.
//!
//! The decision boundary is the normal-mixture (mSPRT) confidence sequence: with estimate `d`,
//! its variance `V` and mixing variance `τ²`, the likelihood ratio
//! `Λ = √(V/(V+τ²))·exp(τ²d²/(2V(V+τ²)))` crosses `1/α` exactly when `|d|` exceeds
//! `W = √(V(V+τ²)/τ² · (2 ln(1/α) + ln((V+τ²)/V)))`. We only act on the harmful side
//! (`d − W > margin`), which keeps the one-sided error at or below `α` no matter how often it
//! is looked at (stats.md §2.3 and §4.4, "simpler always-valid alternative").

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// An `f64` that survives a JSON round trip bit for bit (written as its shortest exact decimal
/// string), so a restored state decides exactly like the original.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct ExactF64(pub f64);

impl Serialize for ExactF64 {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.0.to_string())
    }
}

impl<'de> Deserialize<'de> for ExactF64 {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse::<f64>().map(ExactF64).map_err(serde::de::Error::custom)
    }
}

/// Running sums of the stratified difference of error rates (treatment − control).
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct StratifiedDiff {
    /// Treatment requests added so far.
    pub treatment_requests: u64,
    /// Treatment errors added so far.
    pub treatment_errors: u64,
    /// Control requests added so far.
    pub control_requests: u64,
    /// Control errors added so far.
    pub control_errors: u64,
    sum_w: ExactF64,
    sum_wd: ExactF64,
    sum_w2_nt: ExactF64,
    sum_w2_nc: ExactF64,
}

/// The current estimate of a [`StratifiedDiff`].
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct DiffEstimate {
    /// Stratified difference of error rates, treatment − control.
    pub diff: f64,
    /// Its estimated variance.
    pub variance: f64,
    /// Pooled treatment error rate.
    pub treatment_rate: f64,
    /// Pooled control error rate.
    pub control_rate: f64,
}

impl StratifiedDiff {
    /// Adds one interval's increments. Strata where an arm saw no request carry no comparison
    /// and are counted only in the totals.
    pub fn add(&mut self, t_requests: u64, t_errors: u64, c_requests: u64, c_errors: u64) {
        let (t_errors, c_errors) = (t_errors.min(t_requests), c_errors.min(c_requests));
        self.treatment_requests += t_requests;
        self.treatment_errors += t_errors;
        self.control_requests += c_requests;
        self.control_errors += c_errors;
        if t_requests == 0 || c_requests == 0 {
            return;
        }
        let (nt, nc) = (t_requests as f64, c_requests as f64);
        let w = nt * nc / (nt + nc);
        let d = t_errors as f64 / nt - c_errors as f64 / nc;
        self.sum_w.0 += w;
        self.sum_wd.0 += w * d;
        self.sum_w2_nt.0 += w * w / nt;
        self.sum_w2_nc.0 += w * w / nc;
    }

    /// The estimate, or `None` before any stratum had both arms.
    pub fn estimate(&self) -> Option<DiffEstimate> {
        if self.sum_w.0 <= 0.0 {
            return None;
        }
        // Pooled arm rates with a half-count continuity floor, so zero errors never gives a zero variance.
        let rate = |e: u64, n: u64| (e as f64 + 0.5) / (n as f64 + 1.0);
        let pt = rate(self.treatment_errors, self.treatment_requests);
        let pc = rate(self.control_errors, self.control_requests);
        let sw = self.sum_w.0;
        let variance = (pt * (1.0 - pt) * self.sum_w2_nt.0 + pc * (1.0 - pc) * self.sum_w2_nc.0) / (sw * sw);
        Some(DiffEstimate {
            diff: self.sum_wd.0 / sw,
            variance,
            treatment_rate: self.treatment_errors as f64 / self.treatment_requests.max(1) as f64,
            control_rate: self.control_errors as f64 / self.control_requests.max(1) as f64,
        })
    }
}

/// Half-width of the normal-mixture confidence sequence for an estimate with variance
/// `variance`, mixing standard deviation `mixing_sd` and level `alpha`.
pub fn mixture_half_width(variance: f64, mixing_sd: f64, alpha: f64) -> f64 {
    if variance.is_nan() || variance <= 0.0 {
        return 0.0;
    }
    let tau2 = mixing_sd * mixing_sd;
    let ratio = (variance + tau2) / variance;
    (variance * (variance + tau2) / tau2 * (2.0 * (1.0 / alpha).ln() + ratio.ln())).sqrt()
}

/// Lower confidence bound of `diff` (always valid at level `alpha`, one side used).
pub fn lower_bound(est: &DiffEstimate, mixing_sd: f64, alpha: f64) -> f64 {
    est.diff - mixture_half_width(est.variance, mixing_sd, alpha)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn equal_arms_give_zero_difference() {
        let mut s = StratifiedDiff::default();
        for _ in 0..10 {
            s.add(1000, 10, 9000, 90);
        }
        let e = s.estimate().unwrap();
        assert!(e.diff.abs() < 1e-12);
        assert!(lower_bound(&e, 0.01, 0.05) < 0.0);
    }

    #[test]
    fn common_shock_cancels() {
        // Interval 2 has 10x the error rate in both arms but most treatment traffic; a pooled
        // comparison would call the treatment worse, the stratified one does not.
        let mut s = StratifiedDiff::default();
        s.add(100, 1, 9900, 99);
        s.add(5000, 500, 5000, 500);
        let e = s.estimate().unwrap();
        assert!(e.diff.abs() < 1e-12, "{e:?}");
        assert!(e.treatment_rate > 2.0 * e.control_rate, "pooled rates would mislead");
    }

    #[test]
    fn doubling_is_detected_with_enough_data() {
        let mut s = StratifiedDiff::default();
        for _ in 0..20 {
            s.add(1000, 20, 1000, 10);
        }
        let e = s.estimate().unwrap();
        assert!((e.diff - 0.01).abs() < 1e-12);
        assert!(lower_bound(&e, 0.01, 0.05) > 0.0);
        // The bound widens as alpha shrinks.
        assert!(mixture_half_width(e.variance, 0.01, 0.001) > mixture_half_width(e.variance, 0.01, 0.05));
    }

    #[test]
    fn exact_f64_round_trips() {
        for v in [0.1 + 0.2, 1.0 / 3.0, 5e-324, 1.7976931348623157e308, -0.0] {
            let j = serde_json::to_string(&ExactF64(v)).unwrap();
            let back: ExactF64 = serde_json::from_str(&j).unwrap();
            assert_eq!(back.0.to_bits(), v.to_bits());
        }
    }
}
