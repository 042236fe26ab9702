//! Gantry vs `unleash-yggdrasil` on identical flags and contexts.
//!
//! Every dataset is written once as an Unleash client-features document and
//! loaded into both engines: into Gantry through the Unleash adapter and
//! [`Plan::compile`], into Yggdrasil through `take_state`. Before anything is
//! timed, the setup asserts that both engines give the same answers on the
//! benchmark contexts (and, for the 350-flag set, on a few hundred more), so
//! the two functions of each group do the same work.
//!
//! Cases:
//! - `a_one_flag`: one flag, `default` strategy, no constraints;
//! - `b_rollout_50`: a 50 % `flexibleRollout` on `userId`;
//! - `c_five_constraints`: a 100-value `IN`, `SEMVER_GTE`, `REGEX`,
//!   `NUM_GTE` and `STR_STARTS_WITH`, all holding;
//! - `d_four_variants`: four weighted variants (Gantry: evaluate and read
//!   the variant; Yggdrasil: `get_variant`);
//! - `e_all_350`: every flag of a generated 350-flag set for one context
//!   (Gantry: `evaluate_all` into a reused `Vec`; Yggdrasil: `resolve_all`).
//!
//! Single-flag cases go through the flag key on both sides (the lookup is
//! timed). Contexts are built outside the timed loop; inputs pass through
//! `black_box`.
//!
//! Run: `cargo bench -p gantry-engine --bench evaluate`.

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, Criterion};
use gantry_engine::unleash::{to_native, ClientFeatures};
use gantry_engine::{CompileOptions, Context, EvalInputs, Evaluation, Plan};
use serde_json::{json, Value};
use unleash_yggdrasil::{EngineState, UpdateMessage};

const ENV: &str = "production";
/// 2025-06-01T12:00:00Z, also the benchmark contexts' `currentTime`.
const NOW_MILLIS: i64 = 1_748_779_200_000;

// === datasets and contexts, shared by both engines ===

/// One context, convertible to either engine's type.
#[derive(Clone, Default)]
struct Ctx {
    user_id: Option<String>,
    session_id: Option<String>,
    environment: Option<String>,
    app_name: Option<String>,
    current_time: Option<String>,
    remote_address: Option<String>,
    properties: Vec<(String, String)>,
}

impl Ctx {
    fn gantry(&self) -> Context {
        let mut c = Context::new();
        c.user_id.clone_from(&self.user_id);
        c.session_id.clone_from(&self.session_id);
        c.environment.clone_from(&self.environment);
        c.app_name.clone_from(&self.app_name);
        c.current_time.clone_from(&self.current_time);
        c.remote_address.clone_from(&self.remote_address);
        for (k, v) in &self.properties {
            c.set(k, v.clone());
        }
        c
    }

    fn yggdrasil(&self) -> unleash_yggdrasil::Context {
        unleash_yggdrasil::Context {
            user_id: self.user_id.clone(),
            session_id: self.session_id.clone(),
            environment: self.environment.clone(),
            app_name: self.app_name.clone(),
            current_time: self.current_time.clone(),
            remote_address: self.remote_address.clone(),
            properties: Some(self.properties.iter().cloned().collect()),
        }
    }
}

/// The context every case is timed with.
fn bench_ctx() -> Ctx {
    let props =
        [("country", "NO"), ("plan", "gold"), ("seats", "12"), ("appVersion", "2.3.1"), ("email", "ada@example.com"), ("tenant", "acme")];
    Ctx {
        user_id: Some("user-42".into()),
        session_id: Some("sess-77".into()),
        environment: Some("production".into()),
        app_name: Some("web".into()),
        current_time: Some("2025-06-01T12:00:00Z".into()),
        remote_address: Some("10.1.2.3".into()),
        properties: props.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect(),
    }
}

fn doc(features: Vec<Value>, segments: Vec<Value>) -> Value {
    json!({ "version": 2, "features": Value::Array(features), "segments": Value::Array(segments) })
}

fn one_flag() -> Value {
    doc(vec![json!({"name": "simple", "enabled": true, "strategies": [{"name": "default", "parameters": {}}]})], vec![])
}

fn rollout() -> Value {
    doc(
        vec![json!({"name": "rollout", "enabled": true, "strategies": [
            {"name": "flexibleRollout", "parameters": {"rollout": "50", "stickiness": "userId", "groupId": "rollout"}}
        ]})],
        vec![],
    )
}

fn constrained() -> Value {
    let users: Vec<String> = (0..100).map(|i| format!("user-{i}")).collect();
    doc(
        vec![json!({"name": "constrained", "enabled": true, "strategies": [{"name": "default", "parameters": {}, "constraints": [
            {"contextName": "userId", "operator": "IN", "values": users},
            {"contextName": "appVersion", "operator": "SEMVER_GTE", "value": "1.2.0"},
            {"contextName": "email", "operator": "REGEX", "value": "^[a-z.]+@example\\.(com|org)$"},
            {"contextName": "seats", "operator": "NUM_GTE", "value": "10"},
            {"contextName": "email", "operator": "STR_STARTS_WITH", "values": ["ada", "grace"]}
        ]}]})],
        vec![],
    )
}

fn variants() -> Value {
    let v = |name: &str, weight: u32| json!({"name": name, "weight": weight, "weightType": "variable", "stickiness": "default", "payload": {"type": "string", "value": format!("{name}-payload")}});
    doc(
        vec![json!({"name": "variants", "enabled": true,
            "strategies": [{"name": "default", "parameters": {}}],
            "variants": [v("red", 100), v("green", 200), v("blue", 300), v("yellow", 400)]})],
        vec![],
    )
}

/// A deterministic pseudo-random sequence (splitmix64).
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
    fn pick<'a>(&mut self, items: &[&'a str]) -> &'a str {
        items[self.below(items.len() as u64) as usize]
    }
    fn chance(&mut self, percent: u64) -> bool {
        self.below(100) < percent
    }
}

const COUNTRIES: [&str; 6] = ["NO", "SE", "DK", "DE", "US", "FR"];
const PLANS: [&str; 4] = ["free", "pro", "gold", "enterprise"];
const VERSIONS: [&str; 5] = ["1.0.0", "1.9.3", "2.3.1", "3.0.0-beta.1", "3.1.0"];

/// One random constraint over the fields the contexts carry.
fn constraint(r: &mut Rng) -> Value {
    let inverted = r.chance(15);
    let mut c = match r.below(12) {
        0 => {
            let n = 1 + r.below(4) as usize;
            let values: Vec<&str> = (0..n).map(|_| r.pick(&COUNTRIES)).collect();
            json!({"contextName": "country", "operator": "IN", "values": values})
        }
        1 => json!({"contextName": "plan", "operator": "NOT_IN", "values": [r.pick(&PLANS)]}),
        2 => {
            let values: Vec<String> = (0..20 + r.below(60)).map(|_| format!("user-{}", r.below(1000))).collect();
            json!({"contextName": "userId", "operator": "IN", "values": values})
        }
        3 => json!({"contextName": "email", "operator": r.pick(&["STR_CONTAINS", "STR_STARTS_WITH", "STR_ENDS_WITH"]),
                     "values": [r.pick(&["example", "ada", ".com", "EXAMPLE.ORG", "grace"])], "caseInsensitive": r.chance(50)}),
        4 => {
            json!({"contextName": "seats", "operator": r.pick(&["NUM_GT", "NUM_GTE", "NUM_LT", "NUM_LTE", "NUM_EQ"]), "value": r.below(60).to_string()})
        }
        5 => json!({"contextName": "appVersion", "operator": r.pick(&["SEMVER_GT", "SEMVER_GTE", "SEMVER_LT", "SEMVER_LTE", "SEMVER_EQ"]),
                     "value": r.pick(&VERSIONS)}),
        6 => json!({"contextName": "currentTime", "operator": r.pick(&["DATE_AFTER", "DATE_BEFORE"]),
                     "value": r.pick(&["2024-01-01T00:00:00.000Z", "2025-05-31T00:00:00Z", "2025-06-02T00:00:00Z", "2030-01-01T00:00:00Z"])}),
        7 => {
            json!({"contextName": "email", "operator": "REGEX", "value": r.pick(&["^[a-z]+@example\\.com$", "@example\\.org$", "^(ada|grace)@", "[0-9]"]),
                     "caseInsensitive": r.chance(30)})
        }
        8 => json!({"contextName": "environment", "operator": "IN", "values": [r.pick(&["production", "staging"])]}),
        9 => json!({"contextName": "appName", "operator": "IN", "values": [r.pick(&["web", "ios", "android"])]}),
        10 => {
            json!({"contextName": "remoteAddress", "operator": "IN_CIDR", "values": [r.pick(&["10.0.0.0/8", "192.168.0.0/16", "10.1.2.3"])]})
        }
        _ => json!({"contextName": "tenant", "operator": "IN", "values": [r.pick(&["acme", "globex", "initech"])]}),
    };
    if inverted {
        c["inverted"] = json!(true);
    }
    c
}

fn constraints(r: &mut Rng, max: u64) -> Vec<Value> {
    (0..r.below(max + 1)).map(|_| constraint(r)).collect()
}

fn weighted_variants(r: &mut Rng, with_overrides: bool) -> Vec<Value> {
    let n = 2 + r.below(3) as u32;
    let stickiness = r.pick(&["default", "userId", "sessionId", "tenant"]);
    let mut left = 1000;
    (0..n)
        .map(|i| {
            let w = if i + 1 == n { left } else { 1 + r.below(u64::from(left / 2)) as u32 };
            left -= w;
            let mut v = json!({"name": format!("v{i}"), "weight": w, "weightType": "variable", "stickiness": stickiness,
                               "payload": {"type": "string", "value": format!("payload-{i}")}});
            if with_overrides && i == 0 {
                v["overrides"] = json!([{"contextName": "userId", "values": ["user-7", "user-42"]}]);
            }
            v
        })
        .collect()
}

fn rollout_strategy(r: &mut Rng, name: &str) -> Value {
    let stickiness = r.pick(&["default", "userId", "sessionId"]);
    let group = if r.chance(30) { format!("group-{}", r.below(5)) } else { name.to_owned() };
    json!({"name": "flexibleRollout", "parameters": {"rollout": r.below(101).to_string(), "stickiness": stickiness, "groupId": group},
           "constraints": constraints(r, 2)})
}

/// 350 varied flags and 12 segments, restricted to what both engines support
/// deterministically (no random stickiness, no host names).
fn many_flags() -> Value {
    let mut r = Rng(0x6761_6e74_7279);
    let segments: Vec<Value> =
        (1..=12).map(|id| json!({"id": id, "name": format!("segment-{id}"), "constraints": constraints(&mut r, 3)})).collect();
    let mut features = Vec::with_capacity(350);
    let mut parents: Vec<String> = Vec::new();
    for i in 0..350 {
        let name = format!("flag-{i:03}");
        let mut f = json!({"name": name, "enabled": !r.chance(8), "project": "default", "impressionData": r.chance(10)});
        let strategies: Vec<Value> = match i % 10 {
            0 => vec![json!({"name": "default", "parameters": {}})],
            1 | 2 => vec![rollout_strategy(&mut r, &name)],
            3 => vec![json!({"name": "default", "parameters": {}, "constraints": constraints(&mut r, 4)})],
            4 => {
                let segs: Vec<u64> = (0..1 + r.below(2)).map(|_| 1 + r.below(12)).collect();
                vec![json!({"name": "default", "parameters": {}, "segments": segs, "constraints": constraints(&mut r, 1)})]
            }
            5 => {
                let ids: Vec<String> = (0..5 + r.below(30)).map(|_| format!("user-{}", r.below(100))).collect();
                vec![json!({"name": "userWithId", "parameters": {"userIds": ids.join(",")}})]
            }
            6 => {
                let mut s = rollout_strategy(&mut r, &name);
                s["variants"] = json!(weighted_variants(&mut r, false));
                vec![json!({"name": "default", "parameters": {}, "constraints": [constraint(&mut r)]}), s]
            }
            7 => vec![
                json!({"name": "remoteAddress", "parameters": {"IPs": "10.1.2.3, 192.168.0.0/16"}}),
                json!({"name": "default", "parameters": {}, "constraints": constraints(&mut r, 3)}),
            ],
            8 => vec![rollout_strategy(&mut r, &name), json!({"name": "default", "parameters": {}, "constraints": constraints(&mut r, 2)})],
            _ => vec![],
        };
        f["strategies"] = json!(strategies);
        if i % 3 == 0 {
            f["variants"] = json!(weighted_variants(&mut r, i % 6 == 0));
        }
        if i % 25 == 24 && !parents.is_empty() {
            let parent = parents[r.below(parents.len() as u64) as usize].clone();
            f["dependencies"] = json!([{"feature": parent, "enabled": !r.chance(25)}]);
        } else {
            parents.push(name);
        }
        features.push(f);
    }
    doc(features, segments)
}

/// Contexts for the equivalence check of the 350-flag set. Every one has a
/// `userId`, a `sessionId` and a `tenant`, so no stickiness falls back to
/// random (which would make the two engines disagree by chance).
fn check_contexts() -> Vec<Ctx> {
    let mut r = Rng(42);
    let mut out = vec![bench_ctx()];
    for i in 0..300 {
        let mut c = bench_ctx();
        c.user_id = Some(format!("user-{}", r.below(1000)));
        c.session_id = Some(format!("sess-{i}"));
        c.environment = (!r.chance(10)).then(|| r.pick(&["production", "staging"]).to_owned());
        c.app_name = (!r.chance(10)).then(|| r.pick(&["web", "ios", "android"]).to_owned());
        c.remote_address = (!r.chance(10)).then(|| r.pick(&["10.1.2.3", "192.168.4.5", "8.8.8.8"]).to_owned());
        c.current_time = Some(r.pick(&["2023-12-31T23:59:59Z", "2025-06-01T12:00:00Z", "2031-01-01T00:00:00.000Z"]).to_owned());
        c.properties = vec![
            ("tenant".into(), r.pick(&["acme", "globex", "initech"]).into()),
            ("country".into(), r.pick(&COUNTRIES).into()),
            ("plan".into(), r.pick(&PLANS).into()),
            ("seats".into(), r.below(80).to_string()),
            ("appVersion".into(), r.pick(&VERSIONS).into()),
            ("email".into(), r.pick(&["ada@example.com", "Grace@Example.ORG", "bob7@test.io"]).into()),
        ];
        if r.chance(20) {
            c.properties.truncate(1 + r.below(5) as usize);
        }
        out.push(c);
    }
    out
}

// === loading and the equivalence check ===

struct Engines {
    plan: Plan,
    ygg: EngineState,
}

fn load(document: &Value) -> Engines {
    let features: ClientFeatures = serde_json::from_value(document.clone()).expect("gantry reads the document");
    let plan = Plan::compile(&to_native(&features, ENV), &CompileOptions::for_environment(ENV));
    assert!(plan.diagnostics().is_empty(), "gantry diagnostics: {:?}", plan.diagnostics());
    let ygg = EngineState::default();
    let message: UpdateMessage = serde_json::from_value(document.clone()).expect("yggdrasil reads the document");
    let warnings = ygg.take_state(message);
    assert!(warnings.is_none(), "yggdrasil warnings: {warnings:?}");
    Engines { plan, ygg }
}

fn inputs() -> EvalInputs {
    EvalInputs::new(NOW_MILLIS, 7)
}

/// The variant as Unleash reports it: name and payload value, `disabled` when none.
fn gantry_variant(ev: &Evaluation<'_>) -> (String, Option<String>) {
    match ev.unleash_variant() {
        Some(v) => (v.name.to_string(), v.payload.as_ref().map(|p| p.value.clone())),
        None => ("disabled".into(), None),
    }
}

fn ygg_variant(v: &unleash_yggdrasil::ExtendedVariantDef) -> (String, Option<String>) {
    (v.name.clone(), v.payload.as_ref().map(|p| p.value.clone()))
}

/// Asserts both engines agree on every flag of `e` for every context, through
/// the single-flag calls and through evaluate-all / `resolve_all`. Returns how
/// many flags were on, summed over contexts.
fn assert_equivalent(e: &Engines, contexts: &[Ctx]) -> usize {
    let mut on = 0;
    for c in contexts {
        let (gctx, yctx) = (c.gantry(), c.yggdrasil());
        let resolved = e.ygg.resolve_all(&yctx, &None).expect("state loaded");
        assert_eq!(resolved.len(), e.plan.len());
        let mut seen = 0;
        e.plan.evaluate_all(&gctx, inputs(), |ev| {
            let key = ev.flag.expect("known flag").key();
            let single = e.plan.evaluate(key, &gctx, inputs());
            assert_eq!(single.enabled, ev.enabled, "{key}");
            assert_eq!(e.ygg.is_enabled(key, &yctx, &None), ev.enabled, "is_enabled of {key} for user {:?}", c.user_id);
            let r = &resolved[key];
            assert_eq!(r.enabled, ev.enabled, "resolve_all enabled of {key} for user {:?}", c.user_id);
            assert_eq!(ygg_variant(&r.variant), gantry_variant(&ev), "variant of {key} for user {:?}", c.user_id);
            assert_eq!(ygg_variant(&e.ygg.get_variant(key, &yctx, &None)), gantry_variant(&single), "get_variant of {key}");
            on += usize::from(ev.enabled);
            seen += 1;
        });
        assert_eq!(seen, resolved.len());
    }
    on
}

// === benchmarks ===

fn single_flag(c: &mut Criterion, group: &str, document: &Value, key: &'static str, expect_on: bool) {
    let e = load(document);
    let ctx = bench_ctx();
    assert_eq!(assert_equivalent(&e, std::slice::from_ref(&ctx)), usize::from(expect_on), "{group}: unexpected outcome");
    let (gctx, yctx) = (ctx.gantry(), ctx.yggdrasil());
    let mut g = c.benchmark_group(group);
    g.bench_function("gantry", |b| b.iter(|| black_box(&e.plan).evaluate(black_box(key), black_box(&gctx), black_box(inputs()))));
    g.bench_function("yggdrasil", |b| b.iter(|| black_box(&e.ygg).is_enabled(black_box(key), black_box(&yctx), black_box(&None))));
    g.finish();
}

fn a_one_flag(c: &mut Criterion) {
    single_flag(c, "a_one_flag", &one_flag(), "simple", true);
}

fn b_rollout_50(c: &mut Criterion) {
    single_flag(c, "b_rollout_50", &rollout(), "rollout", true);
}

fn c_five_constraints(c: &mut Criterion) {
    single_flag(c, "c_five_constraints", &constrained(), "constrained", true);
}

fn d_four_variants(c: &mut Criterion) {
    let e = load(&variants());
    let ctx = bench_ctx();
    assert_eq!(assert_equivalent(&e, std::slice::from_ref(&ctx)), 1);
    let (gctx, yctx) = (ctx.gantry(), ctx.yggdrasil());
    let ev = e.plan.evaluate("variants", &gctx, inputs());
    assert!(ev.variant.is_some(), "a variant is served");
    let mut g = c.benchmark_group("d_four_variants");
    g.bench_function("gantry", |b| {
        b.iter(|| {
            let ev = black_box(&e.plan).evaluate(black_box("variants"), black_box(&gctx), black_box(inputs()));
            (ev.enabled, ev.unleash_variant().map(|v| (&*v.name, v.payload.as_ref())))
        });
    });
    g.bench_function("yggdrasil", |b| b.iter(|| black_box(&e.ygg).get_variant(black_box("variants"), black_box(&yctx), black_box(&None))));
    g.finish();
}

fn e_all_350(c: &mut Criterion) {
    let e = load(&many_flags());
    assert_eq!(e.plan.len(), 350);
    let on = assert_equivalent(&e, &check_contexts());
    let on_bench = assert_equivalent(&e, &[bench_ctx()]);
    assert!(on > 0 && on_bench > 0, "the set is not all off");
    let ctx = bench_ctx();
    let (gctx, yctx) = (ctx.gantry(), ctx.yggdrasil());
    type Row<'p> = (&'p str, bool, Option<&'p str>);
    let mut rows: Vec<Row<'_>> = Vec::with_capacity(e.plan.len());
    let mut g = c.benchmark_group("e_all_350");
    g.bench_function("gantry", |b| {
        b.iter(|| {
            rows.clear();
            black_box(&e.plan).evaluate_all(black_box(&gctx), black_box(inputs()), |ev| {
                rows.push((ev.flag.map_or("", |f| f.key()), ev.enabled, ev.unleash_variant().map(|v| &*v.name)));
            });
            black_box(&rows);
        });
    });
    g.bench_function("yggdrasil", |b| b.iter(|| black_box(&e.ygg).resolve_all(black_box(&yctx), black_box(&None))));
    g.finish();
}

criterion_group!(benches, a_one_flag, b_rollout_50, c_five_constraints, d_four_variants, e_all_350);
criterion_main!(benches);
