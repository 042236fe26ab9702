//! Single-flag evaluation allocates nothing.
//!
//! `allocation-counter` installs a counting global allocator for this test
//! binary and counts per thread, so the measurements below see only the
//! allocations of the evaluating thread. Every flag is evaluated once before
//! measuring: the regex engine fills a per-thread cache on first use.

use gantry_engine::unleash::{to_native, ClientFeatures};
use gantry_engine::{CompileOptions, Context, EvalInputs, Plan};
use serde_json::json;

const ENV: &str = "production";
const NOW: i64 = 1_748_779_200_000; // 2025-06-01T12:00:00Z

fn plan() -> Plan {
    let users: Vec<String> = (0..100).map(|i| format!("user-{i}")).collect();
    let default = json!([{"name": "default", "parameters": {}}]);
    let variant = |name: &str, weight: u32| json!({"name": name, "weight": weight, "stickiness": "default", "payload": {"type": "string", "value": name}});
    let with = |constraints: serde_json::Value| json!([{"name": "default", "parameters": {}, "constraints": constraints}]);
    let doc = json!({"version": 2, "features": [
        {"name": "simple", "enabled": true, "strategies": default},
        {"name": "rollout", "enabled": true, "strategies": [
            {"name": "flexibleRollout", "parameters": {"rollout": "50", "stickiness": "userId", "groupId": "rollout"}}]},
        {"name": "rollout-default-stickiness", "enabled": true, "strategies": [
            {"name": "flexibleRollout", "parameters": {"rollout": "37.5", "stickiness": "default", "groupId": "g"}}]},
        {"name": "constrained", "enabled": true, "strategies": with(json!([
            {"contextName": "userId", "operator": "IN", "values": users},
            {"contextName": "appVersion", "operator": "SEMVER_GTE", "value": "1.2.0"},
            {"contextName": "email", "operator": "REGEX", "value": "^[a-z.]+@example\\.(com|org)$"},
            {"contextName": "seats", "operator": "NUM_GTE", "value": "10"},
            {"contextName": "email", "operator": "STR_STARTS_WITH", "values": ["ada", "grace"]}]))},
        {"name": "variants", "enabled": true, "strategies": default,
            "variants": [variant("red", 100), variant("green", 200), variant("blue", 300), variant("yellow", 400)]},
        {"name": "strategy-variants", "enabled": true, "strategies": [
            {"name": "flexibleRollout", "parameters": {"rollout": "100", "stickiness": "default", "groupId": "sv"},
             "variants": [variant("a", 500), variant("b", 500)]}]},
        {"name": "overrides", "enabled": true, "strategies": default,
            "variants": [{"name": "x", "weight": 500, "overrides": [{"contextName": "tenant", "values": ["acme"]}]}, variant("y", 500)]},
        {"name": "strings", "enabled": true, "strategies": with(json!([
            {"contextName": "email", "operator": "STR_CONTAINS", "values": ["EXAMPLE"], "caseInsensitive": true},
            {"contextName": "email", "operator": "STR_STARTS_WITH", "values": ["ADA"], "caseInsensitive": true},
            {"contextName": "email", "operator": "STR_ENDS_WITH", "values": [".com"]},
            {"contextName": "email", "operator": "STR_CONTAINS", "values": ["@"]},
            {"contextName": "email", "operator": "STR_ENDS_WITH", "values": [".COM"], "caseInsensitive": true}]))},
        {"name": "lists", "enabled": true, "strategies": with(json!([
            {"contextName": "country", "operator": "IN", "values": ["NO", "SE"]},
            {"contextName": "country", "operator": "NOT_IN", "values": ["US"]},
            {"contextName": "missing", "operator": "NOT_IN", "values": ["x"]},
            {"contextName": "environment", "operator": "IN", "values": ["production"]},
            {"contextName": "remoteAddress", "operator": "IN_CIDR", "values": ["10.0.0.0/8"]}]))},
        {"name": "numbers", "enabled": true, "strategies": with(json!([
            {"contextName": "seats", "operator": "NUM_EQ", "value": "12"},
            {"contextName": "seats", "operator": "NUM_GT", "value": "3.5"},
            {"contextName": "seats", "operator": "NUM_LT", "value": "100"},
            {"contextName": "seats", "operator": "NUM_LTE", "value": "12"}]))},
        {"name": "semvers", "enabled": true, "strategies": with(json!([
            {"contextName": "appVersion", "operator": "SEMVER_EQ", "value": "2.3.1"},
            {"contextName": "appVersion", "operator": "SEMVER_GT", "value": "2.3.1-beta.1"},
            {"contextName": "appVersion", "operator": "SEMVER_LT", "value": "3.0.0"},
            {"contextName": "appVersion", "operator": "SEMVER_LTE", "value": "2.3.1"}]))},
        {"name": "regexes", "enabled": true, "strategies": with(json!([
            {"contextName": "email", "operator": "REGEX", "value": "^ADA@", "caseInsensitive": true},
            {"contextName": "tenant", "operator": "REGEX", "value": "acme|globex"},
            {"contextName": "email", "operator": "REGEX", "value": "[0-9]", "inverted": true},
            {"contextName": "email", "operator": "REGEX", "value": "\\bexample\\b"}]))},
        {"name": "dates", "enabled": true, "strategies": with(json!([
            {"contextName": "currentTime", "operator": "DATE_AFTER", "value": "2025-01-01T00:00:00.000Z"},
            {"contextName": "currentTime", "operator": "DATE_BEFORE", "value": "2026-01-01T00:00:00+02:00"}]))},
        {"name": "user-ids", "enabled": true, "strategies": [{"name": "userWithId", "parameters": {"userIds": "user-1, user-42"}}]},
        {"name": "off", "enabled": false, "strategies": default},
        {"name": "no-match", "enabled": true, "strategies": with(json!([{"contextName": "country", "operator": "IN", "values": ["US"]}]))},
    ]});
    let features: ClientFeatures = serde_json::from_value(doc).expect("valid document");
    let plan = Plan::compile(&to_native(&features, ENV), &CompileOptions::for_environment(ENV));
    assert!(plan.diagnostics().is_empty(), "{:?}", plan.diagnostics());
    plan
}

fn ctx(current_time: Option<&str>) -> Context {
    let mut c = Context::new().with_user_id("user-42");
    c.session_id = Some("sess-1".into());
    c.environment = Some("production".into());
    c.remote_address = Some("10.1.2.3".into());
    c.current_time = current_time.map(Into::into);
    for (k, v) in [("appVersion", "2.3.1"), ("email", "ada@example.com"), ("seats", "12"), ("country", "NO"), ("tenant", "acme")] {
        c.set(k, v.into());
    }
    c
}

/// Every flag of the plan, with the outcome the context above must get.
const EXPECTED: [(&str, bool); 16] = [
    ("simple", true),
    ("rollout", true),
    ("rollout-default-stickiness", true),
    ("constrained", true),
    ("variants", true),
    ("strategy-variants", true),
    ("overrides", true),
    ("strings", true),
    ("lists", true),
    ("numbers", true),
    ("semvers", true),
    ("regexes", true),
    ("dates", true),
    ("user-ids", true),
    ("off", false),
    ("no-match", false),
];

#[test]
fn single_flag_evaluation_does_not_allocate() {
    let plan = plan();
    assert_eq!(plan.len(), EXPECTED.len());
    let inputs = EvalInputs::new(NOW, 99);
    // With and without `currentTime` (the latter uses the evaluation's `now`).
    for context in [ctx(Some("2025-06-01T12:00:00Z")), ctx(None)] {
        for (key, on) in EXPECTED {
            let first = plan.evaluate(key, &context, inputs);
            assert_eq!(first.enabled, on, "{key}");
            let info = allocation_counter::measure(|| {
                for seed in 0..64 {
                    let ev = plan.evaluate(std::hint::black_box(key), &context, EvalInputs::new(NOW, seed));
                    std::hint::black_box(ev.value());
                    std::hint::black_box(ev.unleash_variant().map(|v| &v.name));
                }
            });
            assert_eq!(info.count_total, 0, "{key} allocated {} times ({} bytes)", info.count_total, info.bytes_total);
        }
    }
    // Variants really were served, so the variant path was measured too.
    let c = ctx(None);
    assert_eq!(plan.evaluate("overrides", &c, inputs).variant_name(), Some("x"));
    assert!(plan.evaluate("variants", &c, inputs).variant_name().is_some());
    assert!(plan.evaluate("strategy-variants", &c, inputs).variant_name().is_some());
}

#[test]
fn the_counter_sees_allocations() {
    let info = allocation_counter::measure(|| {
        std::hint::black_box(vec![1u8; 16]);
    });
    assert!(info.count_total >= 1);
}

#[test]
fn by_index_evaluation_and_misses_do_not_allocate() {
    let plan = plan();
    let c = ctx(None);
    let inputs = EvalInputs::new(NOW, 1);
    let idx = plan.lookup("constrained").expect("known flag");
    assert!(plan.evaluate_index(idx, &c, inputs).enabled);
    let info = allocation_counter::measure(|| {
        for _ in 0..64 {
            std::hint::black_box(plan.evaluate_index(idx, &c, inputs));
            std::hint::black_box(plan.evaluate(std::hint::black_box("no-such-flag"), &c, inputs));
        }
    });
    assert_eq!(info.count_total, 0);
}
