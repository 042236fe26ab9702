//! Event-ingestion benchmark: concurrent clients POST batches of exposure
//! and track events to `/api/v1/events` over loopback; every 202 means the
//! batch is durable in SQLite (WAL, `synchronous=FULL`). Reports sustained
//! events per second, request latency, and, in the same run, a peer
//! baseline: the same batches inserted straight into SQLite by one writer
//! (a row per event, one transaction per batch), the usual "just write
//! events to a table" design.
//!
//! `cargo run --release -p gantry-testkit --example ingest -- [seconds] [clients] [batch]`
//! (defaults 15, 8 and 5000).

use std::time::{Duration, Instant};

use gantry_testkit::TestApp;
use serde_json::json;

fn batch(client: usize, round: usize, size: usize) -> serde_json::Value {
    let events: Vec<serde_json::Value> = (0..size)
        .map(|i| {
            let unit = format!("u{}", (client * 7919 + round * 104_729 + i) % 1_000_000);
            if i % 5 == 0 {
                json!({"type": "exposure", "unit_id": unit, "flag": "checkout", "variant": if i % 2 == 0 { "control" } else { "treatment" }})
            } else {
                json!({"type": "track", "unit_id": unit, "name": "purchase", "value": (i % 97) as f64})
            }
        })
        .collect();
    json!({ "events": events })
}

fn pct(sorted: &[f64], p: f64) -> f64 {
    sorted[(((sorted.len() as f64) - 1.0) * p).round() as usize]
}

#[allow(clippy::print_stdout)]
fn main() {
    let args: Vec<usize> = std::env::args().skip(1).filter_map(|a| a.parse().ok()).collect();
    let secs = args.first().copied().unwrap_or(15) as u64;
    let clients = args.get(1).copied().unwrap_or(8);
    let size = args.get(2).copied().unwrap_or(5000);

    let server_rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    let app = server_rt.block_on(async {
        let app = TestApp::spawn().await;
        app.create_flag(json!({"key": "checkout", "variants": [{"name": "control", "weight": 1}, {"name": "treatment", "weight": 1}],
            "environments": {"production": {"enabled": true}}}))
        .await;
        let r = app
            .admin_post(
                "/api/v1/experiments",
                &json!({"key": "bench", "flag": "checkout", "environment": "production",
                "metrics": [{"name": "converted", "event": "purchase", "kind": "conversion"}, {"name": "revenue", "event": "purchase", "kind": "mean"}]}),
            )
            .await;
        assert_eq!(r.status(), 201);
        assert_eq!(app.admin_post("/api/v1/experiments/bench/start", &json!({})).await.status(), 200);
        app
    });
    let url = app.url("/api/v1/events");
    let token = app.tokens.server.clone();
    // Bodies are prepared up front: the client side should cost as little as possible.
    let bodies: Vec<Vec<u8>> = (0..64).map(|r| serde_json::to_vec(&batch(r % clients, r, size)).unwrap()).collect();

    let client_rt = tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build().unwrap();
    let (events, lats, rejected) = client_rt.block_on(async move {
        let http = reqwest::Client::new();
        let deadline = Instant::now() + Duration::from_secs(secs);
        let mut tasks = Vec::new();
        for c in 0..clients {
            let (http, url, token, bodies) = (http.clone(), url.clone(), token.clone(), bodies.clone());
            tasks.push(tokio::spawn(async move {
                let (mut n, mut lat, mut rejected) = (0u64, Vec::new(), 0u64);
                let mut i = c;
                while Instant::now() < deadline {
                    let t = Instant::now();
                    let r = http
                        .post(&url)
                        .bearer_auth(&token)
                        .header("content-type", "application/json")
                        .body(bodies[i % bodies.len()].clone())
                        .send()
                        .await
                        .unwrap();
                    match r.status().as_u16() {
                        202 => {
                            n += size as u64;
                            lat.push(t.elapsed().as_secs_f64() * 1000.0);
                        }
                        429 => rejected += 1,
                        s => panic!("unexpected status {s}"),
                    }
                    let _ = r.bytes().await;
                    i += clients;
                }
                (n, lat, rejected)
            }));
        }
        let (mut n, mut lat, mut rej) = (0, Vec::new(), 0);
        for t in tasks {
            let (a, b, c) = t.await.unwrap();
            n += a;
            lat.extend(b);
            rej += c;
        }
        (n, lat, rej)
    });
    let mut lats = lats;
    lats.sort_by(f64::total_cmp);
    let gantry_rate = events as f64 / secs as f64;
    println!(
        "gantry /api/v1/events: {events} events in {secs} s = {:.0} events/s ({} clients, {size}/batch); request p50 {:.1} ms, p99 {:.1} ms; 429s: {rejected}",
        gantry_rate,
        clients,
        pct(&lats, 0.5),
        pct(&lats, 0.99)
    );
    let units = server_rt.block_on(async {
        let r: serde_json::Value = app.admin_get("/api/v1/experiments/bench/results").await.json().await.unwrap();
        r["units"].clone()
    });
    println!("experiment units after the run: {units}");

    // Peer baseline in the same run: one row per event into SQLite (same durability settings).
    let peer_rate = server_rt.block_on(async {
        use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqliteSynchronous};
        let dir = tempfile::tempdir().unwrap();
        let opts = SqliteConnectOptions::new()
            .filename(dir.path().join("peer.db"))
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Full);
        let pool = sqlx::SqlitePool::connect_with(opts).await.unwrap();
        sqlx::query("CREATE TABLE events (id INTEGER PRIMARY KEY, kind TEXT, unit TEXT, flag TEXT, variant TEXT, name TEXT, value REAL, ts INTEGER)")
            .execute(&pool)
            .await
            .unwrap();
        let parsed: Vec<gantry_api_types::EventBatch> = (0..8).map(|r| serde_json::from_value(batch(r, r, size)).unwrap()).collect();
        let start = Instant::now();
        let mut n = 0u64;
        let mut r = 0;
        while start.elapsed() < Duration::from_secs(secs.min(10)) {
            let b = &parsed[r % parsed.len()];
            let mut tx = pool.begin().await.unwrap();
            for e in &b.events {
                sqlx::query("INSERT INTO events (kind, unit, flag, variant, name, value, ts) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)")
                    .bind(if e.kind == gantry_api_types::EventKind::Exposure { "exposure" } else { "track" })
                    .bind(&e.unit_id)
                    .bind(&e.flag)
                    .bind(&e.variant)
                    .bind(&e.name)
                    .bind(e.value)
                    .bind(0i64)
                    .execute(&mut *tx)
                    .await
                    .unwrap();
            }
            tx.commit().await.unwrap();
            n += b.events.len() as u64;
            r += 1;
        }
        n as f64 / start.elapsed().as_secs_f64()
    });
    println!(
        "peer (row per event, sqlx, one tx per batch, no HTTP): {peer_rate:.0} events/s; ratio gantry/peer = {:.2}",
        gantry_rate / peer_rate
    );
    server_rt.block_on(app.stop());
}
