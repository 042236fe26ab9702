//! Multiple-testing corrections of a family of p-values.

use serde::{Deserialize, Serialize};

/// Which correction to apply to the family of p-values of one results view.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Correction {
    /// No correction.
    #[default]
    None,
    /// Holm–Bonferroni step-down (controls the family-wise error rate).
    Holm,
    /// Benjamini–Hochberg step-up (controls the false discovery rate).
    BenjaminiHochberg,
}

/// Applies `correction` to `p_values`, returning adjusted p-values in the input order.
pub fn adjust(p_values: &[f64], correction: Correction) -> Vec<f64> {
    match correction {
        Correction::None => p_values.to_vec(),
        Correction::Holm => holm(p_values),
        Correction::BenjaminiHochberg => benjamini_hochberg(p_values),
    }
}

fn ascending_order(p: &[f64]) -> Vec<usize> {
    let mut idx: Vec<usize> = (0..p.len()).collect();
    idx.sort_by(|&a, &b| p[a].total_cmp(&p[b]).then(a.cmp(&b)));
    idx
}

/// Holm step-down: `p̃(i) = max_{j ≤ i} min(1, (m − j + 1)·p(j))` over ascending p-values.
pub fn holm(p_values: &[f64]) -> Vec<f64> {
    let m = p_values.len();
    let mut out = vec![0.0; m];
    let mut running = 0.0_f64;
    for (rank, &i) in ascending_order(p_values).iter().enumerate() {
        let adj = ((m - rank) as f64 * p_values[i]).min(1.0);
        running = running.max(adj);
        out[i] = running;
    }
    out
}

/// Benjamini–Hochberg step-up: `p̃(i) = min_{j ≥ i} min(1, m·p(j)/j)` over ascending p-values.
pub fn benjamini_hochberg(p_values: &[f64]) -> Vec<f64> {
    let m = p_values.len();
    let mut out = vec![0.0; m];
    let mut running = 1.0_f64;
    let order = ascending_order(p_values);
    for (rank, &i) in order.iter().enumerate().rev() {
        let adj = (p_values[i] / ((rank + 1) as f64 / m as f64)).min(1.0);
        running = running.min(adj);
        out[i] = running;
    }
    out
}
