//! Propagation benchmark: N SDK instances hold a stream each; a flag is
//! toggled through the admin API; we measure, per toggle and subscriber, the
//! time from sending the toggle to that subscriber serving the new value.
//!
//! `cargo run --release -p gantry-testkit --example propagation -- [subscribers] [toggles]`
//! (defaults 1000 and 25). The server runs in-process on its own runtime
//! (2 worker threads), the subscribers on another.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use gantry_sdk::{Context, GantryClient};
use gantry_testkit::TestApp;

fn pct(sorted: &[f64], p: f64) -> f64 {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

#[allow(clippy::print_stdout)]
fn main() {
    let args: Vec<usize> = std::env::args().skip(1).filter_map(|a| a.parse().ok()).collect();
    let subscribers = args.first().copied().unwrap_or(1000);
    let toggles = args.get(1).copied().unwrap_or(25);

    let server_rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    let app = server_rt.block_on(async {
        let app = TestApp::spawn().await;
        app.create_flag(serde_json::json!({"key": "propagate", "environments": {"production": {"enabled": false}}})).await;
        app
    });
    let base = app.base.clone();
    let token = app.tokens.server.clone();
    let admin = app.tokens.admin.clone();

    let client_rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    client_rt.block_on(async move {
        // Each subscriber records when it first serves the expected value of the current round.
        // Round usize::MAX until the first toggle: callbacks fired while
        // connecting (initial snapshots) must not count as round 0 samples.
        let round = Arc::new(Mutex::new((usize::MAX, false, Instant::now())));
        let lat: Arc<Mutex<Vec<Vec<f64>>>> = Arc::new(Mutex::new(vec![Vec::new(); toggles]));
        let mut clients = Vec::with_capacity(subscribers);
        let mut subs = Vec::with_capacity(subscribers);
        let t_connect = Instant::now();
        for _ in 0..subscribers {
            let c = GantryClient::builder().server(&base, &token).metrics_interval(Duration::from_secs(3600)).build().unwrap();
            let (c2, round2, lat2) = (c.clone(), round.clone(), lat.clone());
            let last_round = std::sync::atomic::AtomicUsize::new(usize::MAX);
            subs.push(c.subscribe(Some("propagate"), move |_| {
                let (r, want, t0) = *round2.lock().unwrap();
                // Count each subscriber once per toggle: the first time it serves the new value.
                if c2.is_enabled("propagate", &Context::new()) == want && last_round.swap(r, std::sync::atomic::Ordering::Relaxed) != r {
                    let ms = t0.elapsed().as_secs_f64() * 1000.0;
                    if let Some(v) = lat2.lock().unwrap().get_mut(r) {
                        v.push(ms);
                    }
                }
            }));
            clients.push(c);
        }
        for c in &clients {
            c.wait_until_ready(Duration::from_secs(60)).await.unwrap();
        }
        // Ready means "has a configuration"; wait until every stream is also
        // subscribed (the server's gauge) so we measure propagation, not connecting.
        let http = reqwest::Client::new();
        loop {
            let m = http.get(format!("{base}/metrics")).send().await.unwrap().text().await.unwrap();
            let n: usize =
                m.lines().find_map(|l| l.strip_prefix("gantry_stream_clients ")).and_then(|v| v.trim().parse().ok()).unwrap_or(0);
            if n >= subscribers {
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        println!("{subscribers} SDK subscribers connected and streaming in {:.1} s", t_connect.elapsed().as_secs_f64());
        for r in 0..toggles {
            let want = r % 2 == 0;
            *round.lock().unwrap() = (r, want, Instant::now());
            let url = format!("{base}/api/v1/flags/propagate/environments/production/{}", if want { "on" } else { "off" });
            let resp = http.post(url).bearer_auth(&admin).send().await.unwrap();
            assert!(resp.status().is_success());
            if std::env::var_os("PROPAGATION_ROUNDS").is_some() {
                println!("round {r}: admin write acknowledged after {:.1} ms", round.lock().unwrap().2.elapsed().as_secs_f64() * 1000.0);
            }
            // Wait until every subscriber has it (bounded), then a pause between toggles.
            let deadline = Instant::now() + Duration::from_secs(30);
            while lat.lock().unwrap()[r].len() < subscribers && Instant::now() < deadline {
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let per_round = lat.lock().unwrap().clone();
        if std::env::var_os("PROPAGATION_ROUNDS").is_some() {
            for (i, v) in per_round.iter().enumerate() {
                let mut v = v.clone();
                v.sort_by(|a, b| a.partial_cmp(b).unwrap());
                println!("round {i}: p50={:.1} p99={:.1} max={:.1}", pct(&v, 0.5), pct(&v, 0.99), v.last().copied().unwrap_or(f64::NAN));
            }
        }
        let missing: usize = per_round.iter().map(|v| subscribers - v.len().min(subscribers)).sum();
        let mut steady: Vec<f64> = per_round.iter().skip(1).flatten().copied().collect();
        steady.sort_by(|a, b| a.partial_cmp(b).unwrap());
        let mut first = per_round.first().cloned().unwrap_or_default();
        first.sort_by(|a, b| a.partial_cmp(b).unwrap());
        if !first.is_empty() && !steady.is_empty() {
            println!(
                "first change after connecting: p50={:.1} ms p99={:.1} ms max={:.1} ms",
                pct(&first, 0.5),
                pct(&first, 0.99),
                first.last().copied().unwrap_or(f64::NAN)
            );
            println!(
                "later changes ({} toggles): p50={:.1} ms p99={:.1} ms max={:.1} ms",
                toggles - 1,
                pct(&steady, 0.5),
                pct(&steady, 0.99),
                steady.last().copied().unwrap_or(f64::NAN)
            );
        }
        let mut all: Vec<f64> = per_round.into_iter().flatten().collect();
        all.sort_by(|a, b| a.partial_cmp(b).unwrap());
        println!(
            "toggles={toggles} samples={} missing={missing} p50={:.1} ms p99={:.1} ms max={:.1} ms",
            all.len(),
            pct(&all, 0.5),
            pct(&all, 0.99),
            all.last().copied().unwrap_or(f64::NAN)
        );
        drop(subs);
        for c in &clients {
            c.close().await;
        }
    });
    server_rt.block_on(app.stop());
}
