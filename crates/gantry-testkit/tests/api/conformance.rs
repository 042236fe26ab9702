//! End-to-end conformance: for each of the 279 cases of the Unleash client
//! specification, import the file's state through `POST /api/v1/import/unleash`
//! and evaluate the case through OFREP and through the frontend API.

use std::path::{Path, PathBuf};
use std::process::Command;

use gantry_testkit::{urlencode, TestApp};
use serde_json::{json, Value};

const SPEC_VERSION: &str = "6.1.0";

/// The spec directory, fetched from npm once (shared with the engine tests).
fn spec_dir() -> PathBuf {
    if let Some(d) = std::env::var_os("GANTRY_CLIENT_SPEC_DIR") {
        return PathBuf::from(d);
    }
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join(format!("../../target/test-deps/client-specification-{SPEC_VERSION}"));
    let specs = dir.join("package/specifications");
    if specs.join("index.json").exists() {
        return specs;
    }
    std::fs::create_dir_all(&dir).unwrap();
    let out = Command::new("npm")
        .args(["pack", &format!("@unleash/client-specification@{SPEC_VERSION}"), "--silent", "--pack-destination"])
        .arg(&dir)
        .output()
        .expect("npm is needed to fetch the client specification");
    assert!(out.status.success(), "npm pack failed: {}", String::from_utf8_lossy(&out.stderr));
    let tgz = dir.join(format!("unleash-client-specification-{SPEC_VERSION}.tgz"));
    assert!(Command::new("tar").arg("xzf").arg(&tgz).arg("-C").arg(&dir).status().unwrap().success());
    specs
}

/// The spec context as an OFREP context: flat, `targetingKey` = userId.
fn ofrep_context(ctx: &Value) -> Value {
    let mut out = serde_json::Map::new();
    if let Some(o) = ctx.as_object() {
        for (k, v) in o {
            match k.as_str() {
                "properties" => {
                    for (pk, pv) in v.as_object().into_iter().flatten() {
                        if !pv.is_null() {
                            out.insert(pk.clone(), pv.clone());
                        }
                    }
                }
                "userId" => {
                    out.insert("targetingKey".into(), v.clone());
                }
                _ => {
                    out.insert(k.clone(), v.clone());
                }
            }
        }
    }
    Value::Object(out)
}

#[tokio::test]
async fn all_279_cases_through_import_ofrep_and_frontend() {
    // The spec has cases for a *missing* remoteAddress; the frontend API would
    // otherwise fill it with the caller's IP (127.0.0.1), as Unleash does.
    let config = gantry_server::ServerConfig { enrich_remote_address: false, ..Default::default() };
    let app = TestApp::spawn_with(gantry_testkit::Options { config, ..Default::default() }).await;
    let dir = spec_dir();
    let index: Vec<String> = serde_json::from_str(&std::fs::read_to_string(dir.join("index.json")).unwrap()).unwrap();
    let mut failures = Vec::new();
    let mut cases = 0;
    for (i, file) in index.iter().enumerate() {
        let spec: Value = serde_json::from_str(&std::fs::read_to_string(dir.join(file)).unwrap()).unwrap();
        // A fresh environment per file, so files cannot see each other's toggles.
        let env = format!("spec-{i:02}");
        let r = app.admin_post("/api/v1/environments", &json!({"name": env})).await;
        assert_eq!(r.status(), 201);
        let r = app.admin_post(&format!("/api/v1/import/unleash?environment={env}"), &spec["state"]).await;
        assert_eq!(r.status(), 200, "{file}: import failed: {}", r.text().await.unwrap());

        let tests = spec["tests"].as_array().cloned().unwrap_or_default();
        let variant_tests = spec["variantTests"].as_array().cloned().unwrap_or_default();
        for case in tests.iter().chain(variant_tests.iter()) {
            cases += 1;
            let name = case["toggleName"].as_str().unwrap();
            let desc = format!("{file} / {} ({name})", case["description"].as_str().unwrap_or(""));
            let expected = &case["expectedResult"];
            // The state of the flag as the spec expects it.
            let (exp_enabled, exp_variant): (bool, Option<&Value>) = match expected {
                Value::Bool(b) => (*b, None),
                v => (v["feature_enabled"].as_bool().unwrap_or(false), Some(v)),
            };

            // OFREP single-flag evaluation.
            let r = app
                .req(reqwest::Method::POST, &format!("/ofrep/v1/evaluate/flags/{}", urlencode(name)), Some(&app.tokens.admin))
                .header("gantry-environment", &env)
                .json(&json!({"context": ofrep_context(&case["context"])}))
                .send()
                .await
                .unwrap();
            let status = r.status().as_u16();
            let body: Value = r.json().await.unwrap();
            // 404: unknown flag; 400 PARSE_ERROR: a definition that does not
            // compile (Unleash evaluates it off; OFREP clients get their default).
            let failed = status == 404 || (status == 400 && body["errorCode"] == "PARSE_ERROR");
            let got_enabled = if failed { false } else { body["value"].as_bool().unwrap_or(false) };
            if status != 200 && !failed {
                failures.push(format!("{desc}: OFREP status {status}: {body}"));
            } else if got_enabled != exp_enabled {
                failures.push(format!("{desc}: OFREP value {got_enabled}, expected {exp_enabled}: {body}"));
            } else if let Some(v) = exp_variant {
                if v["enabled"] == true {
                    if body["variant"] != v["name"] || body["metadata"]["payload"] != v["payload"]["value"] && !v["payload"].is_null() {
                        failures.push(format!("{desc}: OFREP variant {body} expected {v}"));
                    }
                } else if !matches!(body["variant"].as_str(), Some("on" | "off") | None) {
                    failures.push(format!("{desc}: OFREP variant {body}, expected none ({v})"));
                }
            }

            // Frontend API (all toggles, so disabled ones are visible too).
            let r = app
                .req(reqwest::Method::POST, "/api/frontend/all", Some(&app.tokens.admin))
                .header("gantry-environment", &env)
                .json(&json!({"context": case["context"]}))
                .send()
                .await
                .unwrap();
            assert_eq!(r.status(), 200);
            let fe: Value = r.json().await.unwrap();
            let toggle = fe["toggles"].as_array().unwrap().iter().find(|t| t["name"] == name).cloned();
            let (fe_enabled, fe_variant) = match &toggle {
                Some(t) => (t["enabled"].as_bool().unwrap(), t["variant"].clone()),
                None => (false, json!({"name": "disabled", "enabled": false, "feature_enabled": false})),
            };
            if fe_enabled != exp_enabled {
                failures.push(format!("{desc}: frontend enabled {fe_enabled}, expected {exp_enabled}"));
            }
            if let Some(v) = exp_variant {
                let same = fe_variant["name"] == v["name"]
                    && fe_variant["enabled"] == v["enabled"]
                    && fe_variant["feature_enabled"] == v["feature_enabled"]
                    && fe_variant.get("payload").unwrap_or(&Value::Null) == v.get("payload").unwrap_or(&Value::Null);
                if !same {
                    failures.push(format!("{desc}: frontend variant {fe_variant}, expected {v}"));
                }
            }
        }
    }
    assert_eq!(cases, 279);
    assert!(failures.is_empty(), "{} failures:\n{}", failures.len(), failures.join("\n"));
    app.stop().await;
}
