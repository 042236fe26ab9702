//! Reaction time of an automatic rollback (issue #5): a server with the real
//! clock and its controller ticking every `interval`; per run, a rollout with
//! an error-rate guardrail (evaluated every `interval`) gets a warm-up
//! reading, then 50 % errors. Measured per run, on the server's stream:
//!
//! * **evaluation → rollback**: from the `at` of the `rolled_back`
//!   transition (the evaluation that confirmed the breach) to the arrival of
//!   the `flag-updated` event carrying 0 % (the flag at its rollback state,
//!   as SDKs see it). The requirement is at most one interval + 1 s.
//! * **data → rollback**: from the moment the failing events were accepted
//!   to that same arrival (includes waiting for the next evaluation, so it is
//!   bounded by about one interval plus the above).
//!
//! `cargo run -p gantry-testkit --example reaction -- [runs] [interval_ms]` (defaults 20, 1000).

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use futures_util::StreamExt;
use gantry_server::ServerConfig;
use gantry_testkit::{Options, TestApp};
use serde_json::{json, Value};

fn now_ms() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis() as i64)
}

fn pct(sorted: &[i64], p: f64) -> i64 {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

fn events(flag: &str, requests: usize, errors: usize) -> Value {
    let mut v: Vec<Value> = (0..requests)
        .map(|i| json!({"type": "track", "unit_id": format!("u{i}"), "flag": flag, "variant": "on", "name": "request"}))
        .collect();
    v.extend((0..errors).map(|i| json!({"type": "track", "unit_id": format!("u{i}"), "flag": flag, "variant": "on", "name": "error"})));
    json!({ "events": v })
}

#[allow(clippy::print_stdout)]
#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let args: Vec<u64> = std::env::args().skip(1).filter_map(|a| a.parse().ok()).collect();
    let runs = args.first().copied().unwrap_or(20) as usize;
    let interval = args.get(1).copied().unwrap_or(1000);
    let config = ServerConfig { rollout_tick: Duration::from_millis(interval), ..Default::default() };
    let app = TestApp::spawn_with(Options { config, ..Default::default() }).await;
    let http = reqwest::Client::new();
    let res = http.get(app.url("/api/v1/stream")).bearer_auth(&app.tokens.server).send().await.expect("stream");
    let mut stream = res.bytes_stream();
    let mut buf = String::new();
    let (mut eval_to_flag, mut data_to_flag) = (Vec::new(), Vec::new());
    for run in 0..runs {
        let flag = format!("reaction-{run}");
        app.create_flag(json!({"key": flag, "environments": {"production": {"enabled": true, "rules": [
            {"id": "ramp", "condition": {"type": "rollout", "percentage": 0}}
        ]}}}))
        .await;
        let plan = json!({"target": {"flag": flag, "environment": "production"},
            "steps": [{"kind": "ramp", "percentage": 50, "hold_ms": 3_600_000}, {"kind": "ramp", "percentage": 100}],
            "guardrails": [{"name": "errors", "metric": "error_rate", "condition": {"kind": "threshold", "op": ">", "value": 0.05},
                "window_ms": 60_000, "interval_ms": interval, "min_requests": 10}]});
        let r = app.admin_post("/api/v1/rollouts", &plan).await;
        assert_eq!(r.status(), 201);
        // Warm-up reading (healthy), then wait until it was evaluated.
        let r =
            app.req(reqwest::Method::POST, "/api/v1/events", Some(&app.tokens.server)).json(&events(&flag, 20, 0)).send().await.unwrap();
        assert_eq!(r.status(), 202);
        loop {
            let r: Value = app.admin_get(&format!("/api/v1/rollouts/production/{flag}")).await.json().await.unwrap();
            if r["state"]["guardrails"]["errors"]["evaluations"].as_u64().unwrap_or(0) >= 1 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        let r =
            app.req(reqwest::Method::POST, "/api/v1/events", Some(&app.tokens.server)).json(&events(&flag, 40, 20)).send().await.unwrap();
        assert_eq!(r.status(), 202);
        let posted = now_ms();
        // Read the stream until this flag's rollback arrives.
        let (mut ramped, mut flag_at_zero): (bool, Option<i64>) = (false, None);
        let eval_at = 'read: loop {
            while let Some(pos) = buf.find("\n\n") {
                let block: String = buf.drain(..pos + 2).collect();
                let Some(data) = block.lines().find_map(|l| l.strip_prefix("data:")) else { continue };
                let Ok(v) = serde_json::from_str::<Value>(data.trim()) else { continue };
                match v["type"].as_str() {
                    Some("flag-updated") if v["flag"]["key"] == flag.as_str() => {
                        let p = &v["flag"]["environments"]["production"]["rules"][0]["condition"]["percentage"];
                        // Its creation at 0 % and the ramp to 50 % come first.
                        if p == 50 {
                            ramped = true;
                        } else if p == 0 && ramped && flag_at_zero.is_none() {
                            flag_at_zero = Some(now_ms());
                        }
                    }
                    Some("rollout")
                        if v["rollout"]["flag"] == flag.as_str() && v["rollout"]["transition"]["event"]["kind"] == "rolled_back" =>
                    {
                        break 'read v["rollout"]["transition"]["at"].as_i64().expect("at");
                    }
                    _ => {}
                }
            }
            let chunk =
                tokio::time::timeout(Duration::from_secs(30), stream.next()).await.expect("rollback within 30 s").expect("stream open");
            buf.push_str(&String::from_utf8_lossy(&chunk.expect("chunk")));
        };
        let arrived = flag_at_zero.expect("flag-updated with 0 % precedes the rollout event");
        eval_to_flag.push(arrived - eval_at);
        data_to_flag.push(arrived - posted);
    }
    eval_to_flag.sort_unstable();
    data_to_flag.sort_unstable();
    println!("runs: {runs}, evaluation interval: {interval} ms (controller tick = interval)");
    for (name, v) in [("evaluation -> flag at 0 % on the stream", &eval_to_flag), ("failing data accepted -> flag at 0 %", &data_to_flag)] {
        println!("{name}: median {} ms, p95 {} ms, max {} ms", pct(v, 0.5), pct(v, 0.95), v[v.len() - 1]);
    }
    let bound = interval as i64 + 1000;
    println!(
        "requirement (evaluation -> rollback <= interval + 1 s = {bound} ms): {}",
        if eval_to_flag[eval_to_flag.len() - 1] <= bound { "met" } else { "NOT met" }
    );
}
