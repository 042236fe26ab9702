//! Every case of `@unleash/client-specification` through the Unleash adapter
//! and the native engine.

use gantry_engine::unleash::{self, UnleashState};
use gantry_engine::{CompileOptions, Context, EvalInputs, Plan};
use serde::Deserialize;

use crate::support::spec_dir;

#[derive(Deserialize)]
struct SpecFile {
    name: String,
    state: UnleashState,
    #[serde(default)]
    tests: Vec<Case<bool>>,
    #[serde(default, rename = "variantTests")]
    variant_tests: Vec<Case<ExpectedVariant>>,
}

#[derive(Deserialize)]
struct Case<T> {
    description: String,
    context: serde_json::Value,
    #[serde(rename = "toggleName")]
    toggle_name: String,
    #[serde(rename = "expectedResult")]
    expected: T,
}

#[derive(Deserialize, Debug, PartialEq)]
struct ExpectedVariant {
    name: String,
    #[serde(default)]
    payload: Option<gantry_engine::model::Payload>,
    enabled: bool,
    feature_enabled: bool,
}

/// Loads every file listed in `index.json`, in order.
fn load() -> Vec<SpecFile> {
    let dir = spec_dir();
    let index: Vec<String> = serde_json::from_str(&std::fs::read_to_string(dir.join("index.json")).unwrap()).unwrap();
    index
        .iter()
        .map(|f| serde_json::from_str(&std::fs::read_to_string(dir.join(f)).unwrap()).unwrap_or_else(|e| panic!("{f}: {e}")))
        .collect()
}

const ENV: &str = "spec";

fn inputs(i: usize) -> EvalInputs {
    // A fixed "now" and a varying seed: random strategies are only tested at 0 and 100 %.
    EvalInputs::new(1_700_000_000_000, 0x5eed ^ (i as u64).wrapping_mul(0x9e37_79b9))
}

#[test]
fn all_279_cases_pass() {
    let files = load();
    assert_eq!(files.len(), 22, "the pinned suite has 22 files");
    let mut failures = Vec::new();
    let mut count = 0usize;
    for file in &files {
        let doc = file.state.clone().into_full();
        let set = unleash::to_native(&doc, ENV);
        let plan = Plan::compile(&set, &CompileOptions::for_environment(ENV));
        for (i, case) in file.tests.iter().enumerate() {
            count += 1;
            let ctx = Context::from_json(&case.context);
            let got = plan.evaluate(&case.toggle_name, &ctx, inputs(i)).enabled;
            if got != case.expected {
                failures.push(format!("{} / {}: {} expected {} got {got}", file.name, case.description, case.toggle_name, case.expected));
            }
        }
        for (i, case) in file.variant_tests.iter().enumerate() {
            count += 1;
            let ctx = Context::from_json(&case.context);
            let ev = plan.evaluate(&case.toggle_name, &ctx, inputs(i));
            let got = match ev.unleash_variant() {
                Some(v) => ExpectedVariant { name: v.name.to_string(), payload: v.payload.clone(), enabled: true, feature_enabled: true },
                None => ExpectedVariant { name: "disabled".into(), payload: None, enabled: false, feature_enabled: ev.enabled },
            };
            if got != case.expected {
                failures
                    .push(format!("{} / {}: {} expected {:?} got {got:?}", file.name, case.description, case.toggle_name, case.expected));
            }
        }
    }
    assert_eq!(count, 279, "the pinned suite has 279 cases");
    assert!(failures.is_empty(), "{} of {count} cases failed:\n{}", failures.len(), failures.join("\n"));
}

#[test]
fn unleash_round_trip_keeps_native_model_and_answers() {
    for file in load() {
        let doc = file.state.clone().into_full();
        let native = unleash::to_native(&doc, ENV);
        let back = unleash::from_native(&native, ENV);
        let again = unleash::to_native(&back, ENV);
        assert_eq!(native, again, "{}: native -> unleash -> native changed the model", file.name);
        // JSON round trip of the native model itself.
        let json = serde_json::to_string(&native).unwrap();
        let parsed: gantry_engine::FlagSet = serde_json::from_str(&json).unwrap();
        assert_eq!(native, parsed, "{}: native JSON round trip", file.name);
        // And the re-exported document answers every case the same way.
        let p1 = Plan::compile(&native, &CompileOptions::for_environment(ENV));
        let p2 = Plan::compile(&again, &CompileOptions::for_environment(ENV));
        for (i, case) in file.tests.iter().enumerate() {
            let ctx = Context::from_json(&case.context);
            assert_eq!(p1.evaluate(&case.toggle_name, &ctx, inputs(i)).enabled, p2.evaluate(&case.toggle_name, &ctx, inputs(i)).enabled);
        }
    }
}
