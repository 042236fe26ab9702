//! Several replicas on one PostgreSQL database: real `gantry` processes
//! against the real server at 127.0.0.1:5432 (`GANTRY_TEST_POSTGRES_URL`
//! overrides it). Each test creates its own database and drops it. An
//! unreachable server fails the test; it does not skip.

use std::process::Stdio;
use std::sync::atomic::{AtomicU32, Ordering};

use serde_json::json;
use sqlx::{Connection, PgConnection};

use crate::support::{gantry, Server, ADMIN};

fn admin_url() -> String {
    std::env::var("GANTRY_TEST_POSTGRES_URL").unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".to_owned())
}

/// A fresh database on the test server, dropped with the value.
struct TestDb {
    name: String,
    url: String,
}

impl TestDb {
    async fn create() -> TestDb {
        static N: AtomicU32 = AtomicU32::new(0);
        let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.subsec_nanos()).unwrap_or(0);
        let name = format!("gantry_it_{}_{}_{}", std::process::id(), N.fetch_add(1, Ordering::Relaxed), nanos);
        let admin = admin_url();
        let mut conn = PgConnection::connect(&admin).await.unwrap_or_else(|e| {
            panic!("PostgreSQL is required for this test and is not reachable at {admin} ({e}); set GANTRY_TEST_POSTGRES_URL")
        });
        sqlx::query(&format!("CREATE DATABASE {name}")).execute(&mut conn).await.unwrap();
        conn.close().await.unwrap();
        let base = admin.rsplit_once('/').map_or(admin.as_str(), |(b, _)| b);
        TestDb { url: format!("{base}/{name}"), name }
    }
}

/// Drops the database even when the test failed (on a thread of its own:
/// `Drop` cannot await, and the test's runtime may be shutting down).
impl Drop for TestDb {
    fn drop(&mut self) {
        let name = self.name.clone();
        let dropped = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
            rt.block_on(async {
                let mut conn = PgConnection::connect(&admin_url()).await?;
                sqlx::query(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)")).execute(&mut conn).await?;
                conn.close().await
            })
        })
        .join();
        if !matches!(dropped, Ok(Ok(()))) {
            // Not a test failure of its own; the name says what to clean up.
            report_leftover(&self.name);
        }
    }
}

#[allow(clippy::print_stderr)]
fn report_leftover(name: &str) {
    eprintln!("could not drop the test database {name}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_replicas_share_one_postgres_database() {
    let db = TestDb::create().await;
    // The offline commands take the same option: migrate, then a server token.
    let out = gantry().args(["migrate", "--database-url", &db.url]).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(String::from_utf8_lossy(&out.stdout).contains(&db.name), "{}", String::from_utf8_lossy(&out.stdout));
    let out =
        gantry().args(["token", "create", "--kind", "server", "--environment", "production", "--database-url", &db.url]).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let server_token = String::from_utf8(out.stdout).unwrap().trim().to_owned();

    // Two replicas, each with its own (unused) data directory, select PostgreSQL
    // through GANTRY_DATABASE_URL.
    let (dir_a, dir_b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let a = Server::start_with_env(dir_a.path(), &[("GANTRY_DATABASE_URL", &db.url)]);
    let b = Server::start_with_env(dir_b.path(), &[("GANTRY_DATABASE_URL", &db.url)]);
    assert_ne!(a.base, b.base);
    assert!(std::fs::read_dir(dir_a.path()).unwrap().next().is_none(), "no SQLite file when PostgreSQL is selected");
    let http = reqwest::Client::new();

    // Replica A writes a flag through its admin API.
    let flag = json!({"key": "shared", "environments": {"production": {"enabled": true}}});
    let r = http.post(format!("{}/api/v1/flags", a.base)).bearer_auth(ADMIN).json(&flag).send().await.unwrap();
    assert_eq!(r.status(), 201, "{}", r.text().await.unwrap());

    // Replica B evaluates it once its poller has reloaded the shared database.
    let evaluate = || {
        http.post(format!("{}/ofrep/v1/evaluate/flags/shared", b.base))
            .header("x-api-key", &server_token)
            .json(&json!({"context": {"targetingKey": "u"}}))
            .send()
    };
    let mut last = (0, serde_json::Value::Null);
    for _ in 0..400 {
        let r = evaluate().await.unwrap();
        last = (r.status().as_u16(), r.json().await.unwrap_or_default());
        if last.0 == 200 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert_eq!(last.0, 200, "replica B never saw the flag written through A: {}", last.1);
    assert_eq!(last.1["value"], true, "{}", last.1);

    // The version check is the database's, not a replica's memory: creating
    // the same flag through B conflicts.
    let r = http.post(format!("{}/api/v1/flags", b.base)).bearer_auth(ADMIN).json(&flag).send().await.unwrap();
    assert_eq!(r.status(), 409, "{}", r.text().await.unwrap());

    // One audit chain for both replicas, verified by each and by the CLI.
    for base in [&a.base, &b.base] {
        let v: serde_json::Value =
            http.get(format!("{base}/api/v1/audit/verify")).bearer_auth(ADMIN).send().await.unwrap().json().await.unwrap();
        assert_eq!(v["ok"], true, "{v}");
    }
    drop(a);
    drop(b);
    let out = gantry().args(["audit", "verify", "--database-url", &db.url]).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stdout));
}

#[test]
fn a_database_url_that_is_not_postgres_is_a_configuration_error() {
    let out = gantry().args(["serve", "--database-url", "mysql://u:secret@db/g"]).stderr(Stdio::piped()).output().unwrap();
    assert_eq!(out.status.code(), Some(64));
    let err = String::from_utf8(out.stderr).unwrap();
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.contains("--database-url") && !err.contains("secret"), "{err}");
}

#[test]
fn an_unreachable_postgres_fails_with_a_clear_message() {
    let out = gantry().args(["migrate", "--database-url", "postgres://u:secret@127.0.0.1:1/g"]).stderr(Stdio::piped()).output().unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8(out.stderr).unwrap();
    assert!(err.contains("connecting to the PostgreSQL database postgres://127.0.0.1:1/g"), "{err}");
    assert!(!err.contains("secret"), "{err}");
}

/// Two replicas started at the same time on an empty database both come up:
/// whichever seeds the default environments second finds them there instead
/// of failing its start. (Whether the two starts overlap is up to the
/// scheduler; the assertions hold either way.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replicas_starting_together_on_a_fresh_database_both_come_up() {
    let db = TestDb::create().await;
    let (dir_a, dir_b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let url = db.url.clone();
    let (a, b) = std::thread::scope(|s| {
        let a = s.spawn(|| Server::start_with_env(dir_a.path(), &[("GANTRY_DATABASE_URL", &url)]));
        let b = s.spawn(|| Server::start_with_env(dir_b.path(), &[("GANTRY_DATABASE_URL", &url)]));
        (a.join().unwrap(), b.join().unwrap())
    });
    let http = reqwest::Client::new();
    for base in [&a.base, &b.base] {
        let envs: serde_json::Value =
            http.get(format!("{base}/api/v1/environments")).bearer_auth(ADMIN).send().await.unwrap().json().await.unwrap();
        let names: Vec<&str> = envs.as_array().expect("an array").iter().filter_map(|e| e["name"].as_str()).collect();
        assert_eq!(names, ["development", "staging", "production"], "{envs}");
    }
    drop(a);
    drop(b);
    // Seeded once: three environment.create entries in one intact chain.
    let out = gantry().args(["audit", "verify", "--database-url", &db.url]).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stdout));
    let mut conn = PgConnection::connect(&db.url).await.unwrap();
    let seeded: i64 =
        sqlx::query_scalar("SELECT COUNT(*) FROM audit WHERE action = 'environment.create'").fetch_one(&mut conn).await.unwrap();
    assert_eq!(seeded, 3);
    conn.close().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn experiment_results_count_events_sent_to_every_replica() {
    let db = TestDb::create().await;
    let (dir_a, dir_b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let a = Server::start_with_env(dir_a.path(), &[("GANTRY_DATABASE_URL", &db.url)]);
    let b = Server::start_with_env(dir_b.path(), &[("GANTRY_DATABASE_URL", &db.url)]);
    let http = reqwest::Client::new();
    let flag = json!({"key": "exp", "kind": "string",
        "variants": [{"name": "control", "weight": 500, "payload": {"type": "string", "value": "a"}},
                     {"name": "treatment", "weight": 500, "payload": {"type": "string", "value": "b"}}],
        "environments": {"production": {"enabled": true}}});
    let r = http.post(format!("{}/api/v1/flags", a.base)).bearer_auth(ADMIN).json(&flag).send().await.unwrap();
    assert_eq!(r.status(), 201);
    let exp = json!({"key": "e", "flag": "exp", "environment": "production",
        "metrics": [{"name": "bought", "event": "buy", "kind": "conversion"}]});
    let r = http.post(format!("{}/api/v1/experiments", a.base)).bearer_auth(ADMIN).json(&exp).send().await.unwrap();
    assert_eq!(r.status(), 201);
    let r = http.post(format!("{}/api/v1/experiments/e/start", a.base)).bearer_auth(ADMIN).send().await.unwrap();
    assert_eq!(r.status(), 200);
    // Wait until B has loaded the running experiment (its poller), then send half the traffic to each replica.
    let mut seen = false;
    for _ in 0..400 {
        let r = http.get(format!("{}/api/v1/experiments/e", b.base)).bearer_auth(ADMIN).send().await.unwrap();
        let v: serde_json::Value = r.json().await.unwrap_or_default();
        if v["status"] == "running" || v["experiment"]["status"] == "running" {
            seen = true;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert!(seen, "replica B never saw the experiment start");
    for (base, prefix) in [(&a.base, "a"), (&b.base, "b")] {
        let events: Vec<serde_json::Value> = (0..50)
            .map(|i| json!({"type": "exposure", "unit_id": format!("{prefix}-{i}"), "flag": "exp", "variant": if i % 2 == 0 { "control" } else { "treatment" }}))
            .collect();
        let r = http
            .post(format!("{base}/api/v1/events"))
            .bearer_auth(ADMIN)
            .header("gantry-environment", "production")
            .json(&json!({"events": events}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 202, "{}", r.text().await.unwrap());
    }
    // Each replica's results count all 100 units (its own at once, the other's within a catch-up).
    for base in [&a.base, &b.base] {
        let mut units = 0;
        for _ in 0..400 {
            let v: serde_json::Value =
                http.get(format!("{base}/api/v1/experiments/e/results")).bearer_auth(ADMIN).send().await.unwrap().json().await.unwrap();
            units = v["units"].as_array().map_or(0, |u| u.iter().map(|x| x[1].as_u64().unwrap_or(0)).sum());
            if units == 100 {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
        assert_eq!(units, 100, "{base} counted {units} of 100 units");
    }
}
