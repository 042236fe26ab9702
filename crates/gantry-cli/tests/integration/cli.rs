//! The binary's commands and start-up behaviour.

use std::process::Stdio;

use crate::support::{gantry, Server};

#[test]
fn invalid_configuration_exits_64_with_one_line() {
    let out = gantry().args(["serve"]).env("GANTRY_LISTEN", "not-an-address").stderr(Stdio::piped()).output().unwrap();
    assert_eq!(out.status.code(), Some(64));
    let err = String::from_utf8(out.stderr).unwrap();
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.contains("GANTRY_LISTEN"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admin_token_is_printed_on_first_start_only() {
    let dir = tempfile::tempdir().unwrap();
    let first = Server::start(dir.path());
    let line = first.banner.iter().find(|l| l.contains("admin token")).cloned().expect("first start prints an admin token");
    let token = line.rsplit(' ').next().unwrap().to_owned();
    let http = reqwest::Client::new();
    let r = http.get(format!("{}/api/v1/flags", first.base)).bearer_auth(&token).send().await.unwrap();
    assert_eq!(r.status(), 200);
    drop(first);
    let second = Server::start(dir.path());
    assert!(second.banner.iter().all(|l| !l.contains("admin token")), "{:?}", second.banner);
    // The printed token still works after a restart (it is stored hashed).
    let r = http.get(format!("{}/api/v1/flags", second.base)).bearer_auth(&token).send().await.unwrap();
    assert_eq!(r.status(), 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn token_create_works_before_first_start_and_import_unleash_from_cli() {
    let dir = tempfile::tempdir().unwrap();
    let out =
        gantry().args(["token", "create", "--kind", "server", "--environment", "staging", "--data-dir"]).arg(dir.path()).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let server_token = String::from_utf8(out.stdout).unwrap().trim().to_owned();
    assert!(server_token.starts_with("gantry-server-"));
    let bad =
        gantry().args(["token", "create", "--kind", "server", "--environment", "nope", "--data-dir"]).arg(dir.path()).output().unwrap();
    assert!(!bad.status.success());

    let file = dir.path().join("unleash.json");
    std::fs::write(
        &file,
        r##"{"version":2,"features":[{"name":"imported","enabled":true,"strategies":[{"name":"default"}],
            "variants":[{"name":"blue","weight":1000,"payload":{"type":"string","value":"#00f"}}]}]}"##,
    )
    .unwrap();
    let out =
        gantry().args(["import", "unleash"]).arg(&file).args(["--environment", "staging", "--data-dir"]).arg(dir.path()).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));

    let server = Server::start(dir.path());
    let http = reqwest::Client::new();
    // The CLI-created token is accepted; the imported toggle answers with its variant.
    let r = http
        .post(format!("{}/ofrep/v1/evaluate/flags/imported", server.base))
        .header("x-api-key", &server_token)
        .json(&serde_json::json!({"context": {"targetingKey": "u"}}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let body: serde_json::Value = r.json().await.unwrap();
    assert_eq!(body["value"], true);
    assert_eq!(body["variant"], "blue");
    // Unleash SDK style: raw token in Authorization.
    let r = http.get(format!("{}/api/client/features", server.base)).header("authorization", &server_token).send().await.unwrap();
    assert_eq!(r.status(), 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_token_created_by_the_cli_while_serving_is_accepted() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path());
    let out = gantry()
        .args(["token", "create", "--kind", "client", "--environment", "production", "--data-dir"])
        .arg(dir.path())
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let token = String::from_utf8(out.stdout).unwrap().trim().to_owned();
    let http = reqwest::Client::new();
    // The server notices the other process's commit by polling the store's revision.
    let mut status = 0;
    for _ in 0..200 {
        status = http.get(format!("{}/api/frontend", server.base)).header("authorization", &token).send().await.unwrap().status().as_u16();
        if status == 200 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert_eq!(status, 200);
}
