//! Seeded simulations of error rates: A/A false positives of the fixed-horizon test, the
//! sequential test under continuous peeking, and SRM detection.
//!
//! Deterministic: a small xoshiro256** generator with fixed seeds. Sizes are the minimum the
//! checks need so the suite stays fast in debug builds; each look is O(1) because arms are kept
//! as running sufficient statistics.

use gantry_stats::frequentist::{sequential_test, welch_t_test, DifferenceType, FrequentistConfig};
use gantry_stats::srm::srm_test;
use gantry_stats::{ArmEstimate, MetricSums};

/// xoshiro256** seeded through SplitMix64.
struct Rng([u64; 4]);

impl Rng {
    fn new(seed: u64) -> Self {
        let mut x = seed;
        let mut next = || {
            x = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
            let mut z = x;
            z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
            z ^ (z >> 31)
        };
        Self([next(), next(), next(), next()])
    }

    fn next_u64(&mut self) -> u64 {
        let s = &mut self.0;
        let result = s[1].wrapping_mul(5).rotate_left(7).wrapping_mul(9);
        let t = s[1] << 17;
        s[2] ^= s[0];
        s[3] ^= s[1];
        s[1] ^= s[2];
        s[0] ^= s[3];
        s[2] ^= t;
        s[3] = s[3].rotate_left(45);
        result
    }

    /// Uniform in [0, 1).
    fn uniform(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 * (1.0 / (1u64 << 53) as f64)
    }

    /// Standard normal (Box–Muller, one value per call).
    fn normal(&mut self) -> f64 {
        let u1 = 1.0 - self.uniform();
        let u2 = self.uniform();
        (-2.0 * u1.ln()).sqrt() * (2.0 * std::f64::consts::PI * u2).cos()
    }
}

/// Simulated rates are printed for `cargo test -- --nocapture`.
#[allow(clippy::print_stderr)]
fn report(line: &str) {
    eprintln!("{line}");
}

fn arm(s: &MetricSums) -> ArmEstimate {
    ArmEstimate::sample_mean(s.n, s.sum, s.sum_sq)
}

#[test]
fn aa_false_positive_rate_of_fixed_horizon_test_is_alpha() {
    const EXPERIMENTS: usize = 4000;
    const UNITS_PER_ARM: usize = 300;
    let mut rng = Rng::new(6);
    let cfg = FrequentistConfig { difference: DifferenceType::Relative, ..FrequentistConfig::default() };
    let mut false_positives = 0;
    for _ in 0..EXPERIMENTS {
        let (mut c, mut t) = (MetricSums::default(), MetricSums::default());
        for _ in 0..UNITS_PER_ARM {
            c.add_unit(10.0 + 3.0 * rng.normal());
            t.add_unit(10.0 + 3.0 * rng.normal());
        }
        let r = welch_t_test(&arm(&c), &arm(&t), &cfg).expect("test");
        false_positives += usize::from(r.p_value < 0.05);
    }
    let rate = false_positives as f64 / EXPERIMENTS as f64;
    report(&format!("A/A fixed-horizon false-positive rate: {rate}"));
    assert!((0.04..=0.06).contains(&rate), "A/A false-positive rate {rate}");
}

#[test]
fn sequential_test_survives_peeking_after_every_100_units() {
    const EXPERIMENTS: usize = 2000;
    const UNITS: usize = 4000;
    const LOOK_EVERY: usize = 100;
    let mut rng = Rng::new(7);
    let cfg = FrequentistConfig { difference: DifferenceType::Relative, ..FrequentistConfig::default() };
    let (mut seq_hits, mut naive_hits) = (0usize, 0usize);
    for _ in 0..EXPERIMENTS {
        let mut arms = [MetricSums::default(), MetricSums::default()];
        let (mut seq_sig, mut naive_sig) = (false, false);
        for unit in 1..=UNITS {
            // 50/50 random assignment, conversion rate 20 % in both arms.
            let a = usize::from(rng.uniform() < 0.5);
            arms[a].add_unit(f64::from(u8::from(rng.uniform() < 0.2)));
            if unit % LOOK_EVERY == 0 {
                let (c, t) = (ArmEstimate::proportion(arms[0].n, arms[0].sum), ArmEstimate::proportion(arms[1].n, arms[1].sum));
                if let Ok(r) = sequential_test(&c, &t, &cfg, 5000.0) {
                    seq_sig |= r.p_value < 0.05;
                }
                if !naive_sig {
                    if let Ok(r) = welch_t_test(&c, &t, &cfg) {
                        naive_sig |= r.p_value < 0.05;
                    }
                }
            }
        }
        seq_hits += usize::from(seq_sig);
        naive_hits += usize::from(naive_sig);
    }
    let seq_rate = seq_hits as f64 / EXPERIMENTS as f64;
    let naive_rate = naive_hits as f64 / EXPERIMENTS as f64;
    report(&format!("peeking every 100 units: sequential {seq_rate}, fixed-horizon {naive_rate}"));
    assert!(seq_rate <= 0.05, "sequential ever-significant rate {seq_rate}");
    // The fixed-horizon test peeked 40 times is badly inflated; that is why the sequential one exists.
    assert!(naive_rate > 0.15, "naive peeking rate {naive_rate}");
}

#[test]
fn srm_check_catches_51_49_at_100k_units_and_rarely_false_alarms() {
    const RUNS: usize = 500;
    const UNITS: f64 = 100_000.0;
    let mut rng = Rng::new(8);
    // Binomial(100 000, p) via its normal approximation (exact enough at this size).
    let mut draw = |p: f64| {
        let x = (UNITS * p + (UNITS * p * (1.0 - p)).sqrt() * rng.normal()).round();
        let a = x.clamp(0.0, UNITS) as u64;
        [a, UNITS as u64 - a]
    };
    let weights = [50.0, 50.0];
    let caught = (0..RUNS).filter(|_| srm_test(&draw(0.51), &weights, 0.001).mismatch).count();
    // Power of χ² at p < 0.001 for a 1-point imbalance at 100k units is Φ(6.32 − 3.29) ≈ 0.9988.
    assert!(caught as f64 >= 0.99 * RUNS as f64, "51/49 flagged in only {caught} of {RUNS} runs");
    let false_alarms = (0..RUNS * 4).filter(|_| srm_test(&draw(0.5), &weights, 0.001).mismatch).count();
    report(&format!("SRM: 51/49 caught {caught}/{RUNS}; 50/50 false alarms {false_alarms}/{}", RUNS * 4));
    assert!(false_alarms <= 8, "{false_alarms} false SRM alarms in {} balanced runs", RUNS * 4);
}
