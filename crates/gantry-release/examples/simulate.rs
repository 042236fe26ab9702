//! Decision quality of the default guardrails, by simulation.
//!
//! `cargo run --release -p gantry-release --example simulate [runs] [seed]`
//!
//! Prints, for a healthy release and for releases whose error rate is multiplied, how many of
//! the simulated rollouts were rolled back, paused or completed, and the detection time (minutes
//! from start to rollback, median and p95).

#![allow(clippy::print_stdout)]

#[path = "../tests/support/sim.rs"]
mod sim;

fn main() {
    let mut args = std::env::args().skip(1);
    let runs: usize = args.next().and_then(|a| a.parse().ok()).unwrap_or(10_000);
    let seed: u64 = args.next().and_then(|a| a.parse().ok()).unwrap_or(5);
    println!("{runs} simulated rollouts per row, seed {seed}; plan 1/5/10/25/50/100 % x 10 min, ticks every minute");
    println!("traffic 2000 req/min (lognormal sigma 0.3 per minute), control error rate 1 %, shared per-minute shock Gamma(10)/10");
    println!("guardrails: sequential treatment-vs-control (mixing sd 0.01, min 200 requests/arm), error rate > 5 % for 5 min (window 5 min, min 50)");
    println!();
    println!(
        "| alpha | treatment error rate | rolled back | paused | completed | detection median (min) | detection p95 (min) | by guardrail |"
    );
    println!("|---|---|---|---|---|---|---|---|");
    for alpha in [0.05, 0.01] {
        let plan = sim::plan(alpha);
        for effect in [1.0, 1.25, 1.5, 2.0, 3.0, 10.0] {
            let s = sim::simulate(&plan, &sim::Scenario::realistic(effect), runs, seed);
            let pct = |n: usize| 100.0 * n as f64 / runs as f64;
            let q = |x: Option<f64>| x.map_or("-".to_owned(), |v| format!("{v:.0}"));
            println!(
                "| {alpha} | {:.2} % | {:.2} % | {:.2} % | {:.2} % | {} | {} | {:?} |",
                100.0 * 0.01 * effect,
                pct(s.rolled_back),
                pct(s.paused),
                pct(s.completed),
                q(s.quantile(0.5)),
                q(s.quantile(0.95)),
                s.by_guardrail
            );
        }
    }
}
