//! Crash safety: every write acknowledged with a 2xx survives `kill -9`, and
//! the audit chain still verifies.

use std::sync::{Arc, Mutex};

use serde_json::json;

use crate::support::{gantry, Server, ADMIN};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acknowledged_writes_survive_sigkill() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path());
    let base = server.base.clone();
    let http = reqwest::Client::new();
    let acked = Arc::new(Mutex::new(Vec::<String>::new()));
    let (kill_tx, kill_rx) = tokio::sync::oneshot::channel::<()>();
    let kill_tx = Arc::new(Mutex::new(Some(kill_tx)));

    // Four writers send flag creations and toggles as fast as they can.
    let mut writers = Vec::new();
    for w in 0..4 {
        let (http, base, acked, kill_tx) = (http.clone(), base.clone(), acked.clone(), kill_tx.clone());
        writers.push(tokio::spawn(async move {
            for i in 0.. {
                let key = format!("burst-{w}-{i}");
                let body = json!({"key": key, "environments": {"production": {"enabled": i % 2 == 0}}});
                let r = http.post(format!("{base}/api/v1/flags")).bearer_auth(ADMIN).json(&body).send().await;
                match r {
                    Ok(r) if r.status().is_success() => {
                        let n = {
                            let mut a = acked.lock().unwrap();
                            a.push(key);
                            a.len()
                        };
                        // Pull the plug in the middle of the burst.
                        if n == 60 {
                            if let Some(tx) = kill_tx.lock().unwrap().take() {
                                let _ = tx.send(());
                            }
                        }
                    }
                    Ok(r) => panic!("unexpected status {}", r.status()),
                    Err(_) => return, // the server is gone
                }
            }
        }));
    }
    kill_rx.await.unwrap();
    server.kill9();
    for w in writers {
        w.await.unwrap();
    }
    let acked = acked.lock().unwrap().clone();
    assert!(acked.len() >= 60);

    // Restart on the same data directory: every acknowledged flag is there.
    let server = Server::start(dir.path());
    let r = http.get(format!("{}/api/v1/flags?limit=500", server.base)).bearer_auth(ADMIN).send().await.unwrap();
    assert_eq!(r.status(), 200);
    let page: serde_json::Value = r.json().await.unwrap();
    let stored: std::collections::HashSet<String> =
        page["items"].as_array().unwrap().iter().map(|f| f["key"].as_str().unwrap().to_owned()).collect();
    let missing: Vec<&String> = acked.iter().filter(|k| !stored.contains(*k)).collect();
    assert!(missing.is_empty(), "acknowledged but lost after kill -9: {missing:?}");
    let v: serde_json::Value =
        http.get(format!("{}/api/v1/audit/verify", server.base)).bearer_auth(ADMIN).send().await.unwrap().json().await.unwrap();
    assert_eq!(v["ok"], true, "{v}");
    drop(server);

    // And the offline verifier agrees.
    let out = gantry().args(["audit", "verify", "--data-dir"]).arg(dir.path()).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stdout));
}

/// SIGTERM: open streams end cleanly (the chunked body terminates, no reset)
/// and the process exits with status 0.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_closes_streams_cleanly_and_exits_zero() {
    use futures_util::StreamExt;

    let dir = tempfile::tempdir().unwrap();
    let mut server = Server::start(dir.path());
    let http = reqwest::Client::new();
    let mut streams = Vec::new();
    for _ in 0..3 {
        let r = http
            .get(format!("{}/api/v1/stream", server.base))
            .bearer_auth(ADMIN)
            .header("gantry-environment", "production")
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
        let mut body = r.bytes_stream();
        // The snapshot event arrives first: the stream is really open.
        let first = body.next().await.expect("a first event").expect("readable");
        assert!(String::from_utf8_lossy(&first).contains("snapshot"), "{}", String::from_utf8_lossy(&first));
        streams.push(body);
    }

    let status = std::process::Command::new("kill").args(["-TERM", &server.child.id().to_string()]).status().unwrap();
    assert!(status.success());

    for mut body in streams {
        let ended = tokio::time::timeout(std::time::Duration::from_secs(10), async {
            while let Some(chunk) = body.next().await {
                chunk.expect("the stream ends cleanly, not with a transport error");
            }
        })
        .await;
        assert!(ended.is_ok(), "a stream stayed open after SIGTERM");
    }
    let mut child = std::mem::replace(&mut server.child, std::process::Command::new("true").spawn().unwrap());
    let exit = tokio::time::timeout(std::time::Duration::from_secs(10), tokio::task::spawn_blocking(move || child.wait()))
        .await
        .expect("gantry exits after SIGTERM")
        .unwrap()
        .unwrap();
    assert!(exit.success(), "exit status {exit:?}");
}
