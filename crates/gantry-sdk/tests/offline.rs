//! Local-only use: bootstrap and evaluate with no async runtime at all.

use gantry_sdk::{Context, GantryClient, Source, StreamSnapshot};

fn snapshot() -> StreamSnapshot {
    serde_json::from_value(serde_json::json!({
        "revision": 3, "environment": "production",
        "flags": [{"key": "beta", "environments": {"production": {"enabled": true,
            "rules": [{"condition": {"type": "user_ids", "ids": ["alice"]}}]}}}],
        "segments": []
    }))
    .unwrap()
}

#[test]
fn bootstrap_value_works_without_tokio() {
    let c = GantryClient::builder().bootstrap(snapshot()).build_offline().unwrap();
    assert!(c.is_ready());
    assert_eq!(c.source(), Source::Bootstrap);
    assert!(c.is_enabled("beta", &Context::new().with_user_id("alice")));
    assert!(!c.is_enabled("beta", &Context::new().with_user_id("bob")));
    assert_eq!(c.evaluate("beta", &Context::new().with_user_id("alice")).reason.as_str(), "TARGETING_MATCH");
}

#[test]
fn bootstrap_file_and_bad_file() {
    let dir = tempfile::tempdir().unwrap();
    let good = dir.path().join("config.json");
    std::fs::write(&good, serde_json::to_vec(&snapshot()).unwrap()).unwrap();
    let c = GantryClient::builder().bootstrap_file(&good).build_offline().unwrap();
    assert_eq!(c.revision(), 3);
    let bad = dir.path().join("bad.json");
    std::fs::write(&bad, b"[1,2").unwrap();
    let err = GantryClient::builder().bootstrap_file(&bad).build_offline().unwrap_err();
    assert!(err.to_string().contains("bad.json"), "{err}");
}

#[test]
fn change_subscriptions_fire_per_flag() {
    let c = GantryClient::builder().bootstrap(snapshot()).build_offline().unwrap();
    let seen = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let s2 = seen.clone();
    let _sub = c.subscribe(Some("beta"), move |ch| s2.lock().unwrap().push((ch.key.clone(), ch.exists)));
    let mut next = snapshot();
    next.revision = 4;
    next.flags[0].environments.get_mut("production").unwrap().enabled = false;
    c.apply_snapshot(next.clone());
    next.revision = 5;
    next.flags.clear();
    c.apply_snapshot(next);
    assert_eq!(*seen.lock().unwrap(), vec![("beta".to_owned(), true), ("beta".to_owned(), false)]);
}
