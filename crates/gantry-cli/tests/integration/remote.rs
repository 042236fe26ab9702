//! `gantry release record` and `gantry maintenance` against a real spawned
//! server, over HTTP.

use std::process::Output;

use serde_json::Value;

use crate::support::{gantry, Server, ADMIN};

fn stdout_json(out: &Output) -> Value {
    assert!(out.status.success(), "command failed: {}", String::from_utf8_lossy(&out.stderr));
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("stdout is not JSON ({e}): {}", String::from_utf8_lossy(&out.stdout)))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn release_record_over_http_with_a_server_token() {
    let dir = tempfile::tempdir().unwrap();
    let out = gantry()
        .args(["token", "create", "--kind", "server", "--environment", "production", "--data-dir"])
        .arg(dir.path())
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let token = String::from_utf8(out.stdout).unwrap().trim().to_owned();
    let server = Server::start(dir.path());

    let record = |version: &str, env: &str| {
        gantry()
            .args(["release", "record", "--app", "shop", "--version", version, "--env", env, "--commit", "abc1234", "--notes", "n"])
            .args(["--server", &server.base])
            .env("GANTRY_TOKEN", &token)
            .output()
            .unwrap()
    };
    let rec = stdout_json(&record("1.4.0", "production"));
    assert_eq!((rec["app"].as_str(), rec["version"].as_str(), rec["commit"].as_str()), (Some("shop"), Some("1.4.0"), Some("abc1234")));
    // The server token may not record for another environment: a clear error, exit 1.
    let denied = record("1.4.0", "development");
    assert_eq!(denied.status.code(), Some(1));
    let err = String::from_utf8_lossy(&denied.stderr);
    assert!(err.contains("403") && err.contains("forbidden"), "{err}");

    let http = reqwest::Client::new();
    let r = http.get(format!("{}/api/v1/apps/shop/version?current=1.3.9", server.base)).bearer_auth(&token).send().await.unwrap();
    assert_eq!(r.status(), 200);
    let v: Value = r.json().await.unwrap();
    assert_eq!((v["latest"].as_str(), v["update_available"].as_bool()), (Some("1.4.0"), Some(true)));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn maintenance_on_status_off_over_http() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path());
    let run = |args: &[&str]| gantry().arg("maintenance").args(args).args(["--server", &server.base, "--token", ADMIN]).output().unwrap();

    let on =
        stdout_json(&run(&["on", "--environment", "production", "--message", "Back soon", "--allow-user", "alice", "--allow-user", "bob"]));
    assert_eq!((on["enabled"].as_bool(), on["active"].as_bool(), on["version"].as_i64()), (Some(true), Some(true), Some(1)));
    assert_eq!(on["allow_users"], serde_json::json!(["alice", "bob"]));

    // The public status endpoint shows it, without a token and without the allowlist.
    let http = reqwest::Client::new();
    let status: Value = http.get(format!("{}/api/v1/status", server.base)).send().await.unwrap().json().await.unwrap();
    let prod = status["environments"].as_array().unwrap().iter().find(|e| e["name"] == "production").cloned().unwrap();
    assert_eq!((prod["maintenance"].as_bool(), prod["message"].as_str()), (Some(true), Some("Back soon")));
    assert!(!status.to_string().contains("alice"));

    let st = stdout_json(&run(&["status", "--environment", "production"]));
    assert_eq!((st["enabled"].as_bool(), st["message"].as_str()), (Some(true), Some("Back soon")));
    // Off keeps the message and allowlist for next time.
    let off = stdout_json(&run(&["off", "--environment", "production"]));
    assert_eq!((off["enabled"].as_bool(), off["version"].as_i64()), (Some(false), Some(2)));
    assert_eq!(off["allow_users"], serde_json::json!(["alice", "bob"]));

    let bad = gantry()
        .args(["maintenance", "on", "--environment", "production", "--server", &server.base, "--token", "gantry-admin-wrong"])
        .output()
        .unwrap();
    assert_eq!(bad.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&bad.stderr).contains("unauthorized"), "{}", String::from_utf8_lossy(&bad.stderr));
    let unknown = run(&["on", "--environment", "nope"]);
    assert!(String::from_utf8_lossy(&unknown.stderr).contains("environment_not_found"), "{}", String::from_utf8_lossy(&unknown.stderr));
}
