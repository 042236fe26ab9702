//! Edge cases: missing and odd context data, huge and unusual strings, broken
//! definitions, large lists, the kill switch, typed values, reasons and
//! prerequisites.

use std::collections::BTreeMap;

use gantry_engine::hash::{hash_group_id, normalize, rollout_position, ROLLOUT_SEED, VARIANT_SEED};
use gantry_engine::model::{
    Condition, Constraint, EnvironmentConfig, Flag, FlagKind, Operator, Override, Payload, Percentage, Prerequisite, Rollout, Rule,
    Segment, Serve, Stickiness, Variant,
};
use gantry_engine::{CompileOptions, Context, ErrorCode, EvalInputs, Evaluation, FlagSet, Plan, Reason, Value};

const ENV: &str = "production";
const NOW: i64 = 1_700_000_000_000; // 2023-11-14T22:13:20Z

// --- builders ---

fn inputs() -> EvalInputs {
    EvalInputs::new(NOW, 0x5eed)
}

fn on() -> EnvironmentConfig {
    EnvironmentConfig { enabled: true, ..EnvironmentConfig::default() }
}

fn flag(key: &str, env: EnvironmentConfig) -> Flag {
    Flag { key: key.to_owned(), environments: BTreeMap::from([(ENV.to_owned(), env)]), ..Flag::default() }
}

fn typed_flag(key: &str, kind: FlagKind, variants: Vec<Variant>, env: EnvironmentConfig) -> Flag {
    Flag { kind, variants, ..flag(key, env) }
}

fn with_rules(rules: Vec<Rule>) -> EnvironmentConfig {
    EnvironmentConfig { rules, ..on() }
}

fn rule(constraints: Vec<Constraint>) -> Rule {
    Rule { constraints, ..Rule::default() }
}

fn rollout_rule(bp: u32, stickiness: Stickiness) -> Rule {
    Rule {
        condition: Condition::Rollout(Rollout { percentage: Percentage::from_basis_points(bp).unwrap(), stickiness, group_id: None }),
        ..Rule::default()
    }
}

/// A constraint; single-value operators get `values[0]` as their `value`.
fn cons(field: &str, op: &str, values: &[&str]) -> Constraint {
    let operator = Operator::parse(op);
    let (values, value) = if operator.is_single_value() {
        (Vec::new(), values.first().map(|v| (*v).to_owned()))
    } else {
        (values.iter().map(|v| (*v).to_owned()).collect(), None)
    };
    Constraint { context_name: field.to_owned(), operator, values, value, inverted: false, case_insensitive: false }
}

fn inverted(c: Constraint) -> Constraint {
    Constraint { inverted: true, ..c }
}

fn insensitive(c: Constraint) -> Constraint {
    Constraint { case_insensitive: true, ..c }
}

fn variant(name: &str, weight: u32, payload: Option<(&str, &str)>) -> Variant {
    Variant {
        name: name.to_owned(),
        weight,
        weight_type: None,
        stickiness: None,
        payload: payload.map(|(kind, value)| Payload { kind: kind.to_owned(), value: value.to_owned() }),
        overrides: Vec::new(),
    }
}

fn compile(flags: Vec<Flag>) -> Plan {
    compile_set(&FlagSet { flags, segments: Vec::new() })
}

fn compile_set(set: &FlagSet) -> Plan {
    Plan::compile(set, &CompileOptions::for_environment(ENV))
}

/// Compiles without diagnostics.
fn compile_clean(flags: Vec<Flag>) -> Plan {
    let plan = compile(flags);
    assert!(plan.diagnostics().is_empty(), "unexpected diagnostics: {:?}", plan.diagnostics());
    plan
}

/// Whether a one-rule flag with these constraints is on for `ctx`.
fn matches(constraints: Vec<Constraint>, ctx: &Context) -> bool {
    let plan = compile_clean(vec![flag("f", with_rules(vec![rule(constraints)]))]);
    plan.evaluate("f", ctx, inputs()).enabled
}

fn user(id: &str) -> Context {
    Context::new().with_user_id(id)
}

fn prop(name: &str, value: &str) -> Context {
    Context::new().with_property(name, value)
}

fn summary(ev: &Evaluation<'_>) -> (bool, Option<String>, Reason, Option<ErrorCode>) {
    (ev.enabled, ev.variant_name().map(str::to_owned), ev.reason, ev.error)
}

// --- empty context, unknown fields, standard-looking properties ---

#[test]
fn constraints_on_absent_fields() {
    let empty = Context::new();
    let other = prop("somethingElse", "x");
    // Operators that need a value are false on an absent field; inverting makes them true.
    let need_value: [(&str, &[&str]); 15] = [
        ("IN", &["x", ""]),
        ("STR_CONTAINS", &[""]),
        ("STR_STARTS_WITH", &[""]),
        ("STR_ENDS_WITH", &[""]),
        ("NUM_EQ", &["0"]),
        ("NUM_GT", &["-1"]),
        ("NUM_LT", &["1"]),
        ("DATE_AFTER", &["1970-01-01T00:00:00Z"]),
        ("DATE_BEFORE", &["2999-01-01T00:00:00Z"]),
        ("SEMVER_EQ", &["1.0.0"]),
        ("SEMVER_GT", &["0.0.1"]),
        ("SEMVER_LT", &["9.9.9"]),
        ("REGEX", &[".*"]),
        ("IN_CIDR", &["0.0.0.0/0"]),
        ("NUM_GTE", &["-1e300"]),
    ];
    for ctx in [&empty, &other] {
        for (op, values) in need_value {
            for field in ["unknownField", "sessionId", "remoteAddress", "appName"] {
                assert!(!matches(vec![cons(field, op, values)], ctx), "{op} on absent {field}");
                assert!(matches(vec![inverted(cons(field, op, values))], ctx), "inverted {op} on absent {field}");
            }
        }
        // NOT_IN holds on an absent field; inverted it does not.
        assert!(matches(vec![cons("unknownField", "NOT_IN", &["x"])], ctx));
        assert!(!matches(vec![inverted(cons("unknownField", "NOT_IN", &["x"]))], ctx));
        // An empty NOT_IN list holds for anything.
        assert!(matches(vec![cons("unknownField", "NOT_IN", &[])], ctx));
    }
    // An absent currentTime means "now" for DATE_* constraints.
    assert!(matches(vec![cons("currentTime", "DATE_AFTER", &["2023-11-14T22:13:19Z"])], &empty));
    assert!(!matches(vec![cons("currentTime", "DATE_AFTER", &["2023-11-14T22:13:21Z"])], &empty));
    assert!(matches(vec![cons("currentTime", "DATE_BEFORE", &["2023-11-14T22:13:21Z"])], &empty));
    assert!(!matches(vec![inverted(cons("currentTime", "DATE_BEFORE", &["2023-11-14T22:13:21Z"]))], &empty));
}

#[test]
fn empty_context_against_identity_conditions() {
    let empty = Context::new();
    let user_ids = Rule { condition: Condition::UserIds { ids: vec!["".into(), "u1".into()] }, ..Rule::default() };
    let remote = Rule { condition: Condition::RemoteAddress { ips: vec!["0.0.0.0/0".into(), "::/0".into()] }, ..Rule::default() };
    let plan = compile_clean(vec![
        flag("user-ids", with_rules(vec![user_ids])),
        flag("remote", with_rules(vec![remote])),
        flag("sticky-field", with_rules(vec![rollout_rule(10_000, Stickiness::Field("tenant".into()))])),
        flag("sticky-default-full", with_rules(vec![rollout_rule(10_000, Stickiness::Default)])),
        flag("sticky-default-zero", with_rules(vec![rollout_rule(0, Stickiness::Default)])),
        flag("plain", on()),
    ]);
    let ev = |key: &str| plan.evaluate(key, &empty, inputs());
    assert!(!ev("user-ids").enabled);
    assert!(!ev("remote").enabled);
    // A missing custom stickiness field never matches, even at 100 %.
    assert!(!ev("sticky-field").enabled);
    assert!(plan.evaluate("sticky-field", &prop("tenant", "t1"), inputs()).enabled);
    // Default stickiness without an id falls back to random: 100 % is everyone, 0 % no one.
    assert!(ev("sticky-default-full").enabled);
    assert!(!ev("sticky-default-zero").enabled);
    assert_eq!(summary(&ev("plain")), (true, None, Reason::Static, None));
    // The empty user id is an id like any other.
    assert!(plan.evaluate("user-ids", &user(""), inputs()).enabled);
}

#[test]
fn properties_named_like_standard_fields() {
    // Setting a standard name as a property sets the standard field.
    let ctx = Context::new().with_property("userId", "u1").with_property("sessionId", "s1");
    assert_eq!(ctx.user_id.as_deref(), Some("u1"));
    assert_eq!(ctx.session_id.as_deref(), Some("s1"));
    assert_eq!(ctx.properties().count(), 0);
    assert!(matches(vec![cons("userId", "IN", &["u1"])], &ctx));
    let ids = Rule { condition: Condition::UserIds { ids: vec!["u1".into()] }, ..Rule::default() };
    assert!(compile_clean(vec![flag("f", with_rules(vec![ids]))]).is_enabled("f", &ctx, inputs()));

    // Names are case-sensitive: `UserID` is a custom property, not the user id.
    let odd = Context::new().with_property("UserID", "u1");
    assert_eq!(odd.user_id, None);
    assert!(!matches(vec![cons("userId", "IN", &["u1"])], &odd));
    assert!(matches(vec![cons("UserID", "IN", &["u1"])], &odd));

    // From JSON: a top-level field beats the same name nested in `properties`,
    // and a nested standard name alone fills the standard field.
    for doc in [
        serde_json::json!({"userId": "top", "properties": {"userId": "nested"}}),
        serde_json::json!({"properties": {"userId": "nested"}, "userId": "top"}),
    ] {
        assert_eq!(Context::from_json(&doc).user_id.as_deref(), Some("top"), "{doc}");
    }
    let nested = Context::from_json(&serde_json::json!({"properties": {"userId": "nested", "plan": "gold"}}));
    assert_eq!(nested.user_id.as_deref(), Some("nested"));
    assert!(matches(vec![cons("userId", "IN", &["nested"]), cons("plan", "IN", &["gold"])], &nested));
}

// --- long strings and unusual Unicode ---

const ODD_STRINGS: [&str; 10] = [
    "👩‍👩‍👧‍👦",            // ZWJ emoji sequence
    "e\u{301}",      // e + combining acute
    "\u{202E}مرحبا", // RTL override + Arabic
    "שָׁלוֹם",          // Hebrew with points
    "a\0b",          // NUL inside
    "\0",            // only NUL
    "\u{FEFF}bom",   // byte order mark
    "\u{10FFFF}",    // highest code point
    "Z̴̡̪̫a̸l̷g̶o̵",         // stacked combining marks
    "   ",           // whitespace only
];

#[test]
fn a_one_megabyte_user_id() {
    let id: String = "a".repeat(1 << 20);
    let key = "big";
    let variants = vec![variant("x", 500, None), variant("y", 500, None)];
    let big_rule = |bp| Rule { variants: variants.clone(), ..rollout_rule(bp, Stickiness::Default) };
    let plan = compile_clean(vec![
        flag(key, with_rules(vec![big_rule(5_000)])),
        flag("listed", with_rules(vec![rule(vec![cons("userId", "IN", &[id.as_str()])])])),
        flag("suffix", with_rules(vec![rule(vec![cons("userId", "STR_ENDS_WITH", &["aaa"]), cons("userId", "REGEX", &["^a+$"])])])),
        flag("prefix-miss", with_rules(vec![rule(vec![cons("userId", "STR_STARTS_WITH", &["b"])])])),
    ]);
    let ctx = user(&id);
    let first = plan.evaluate(key, &ctx, inputs());
    let second = plan.evaluate(key, &ctx, EvalInputs::new(NOW, 12_345));
    assert_eq!(summary(&first), summary(&second));
    let in_rollout = rollout_position(hash_group_id(key, &id, ROLLOUT_SEED)) <= 5_000;
    assert_eq!(first.enabled, in_rollout);
    if in_rollout {
        let want = if normalize(key, &id, 1000, VARIANT_SEED) <= 500 { "x" } else { "y" };
        assert_eq!(first.variant_name(), Some(want));
    }
    assert!(plan.is_enabled("listed", &ctx, inputs()));
    assert!(!plan.is_enabled("listed", &user(&id[1..]), inputs()));
    assert!(plan.is_enabled("suffix", &ctx, inputs()));
    assert!(!plan.is_enabled("prefix-miss", &ctx, inputs()));
    // Regexes run in linear time, even the classic catastrophic-backtracking pattern.
    let no_match = format!("{id}!");
    let plan = compile_clean(vec![flag("redos", with_rules(vec![rule(vec![cons("userId", "REGEX", &["^(a+)+$"])])]))]);
    assert!(plan.is_enabled("redos", &ctx, inputs()));
    assert!(!plan.is_enabled("redos", &user(&no_match), inputs()));
    // As a property value and as a flag key, too.
    let long_key = "k".repeat(1 << 20);
    let plan = compile_clean(vec![flag(&long_key, with_rules(vec![rule(vec![cons("blob", "STR_CONTAINS", &["aaaa"])])]))]);
    assert!(plan.is_enabled(&long_key, &prop("blob", &id), inputs()));
    assert!(!plan.is_enabled(&long_key, &prop("blob", "aaa"), inputs()));
    assert_eq!(plan.evaluate(&long_key[1..], &Context::new(), inputs()).error, Some(ErrorCode::FlagNotFound));
}

#[test]
fn unusual_unicode_as_ids_values_and_keys() {
    for s in ODD_STRINGS {
        // As a flag key, a user id and a property value at once.
        let plan = compile_clean(vec![
            flag(s, with_rules(vec![rollout_rule(5_000, Stickiness::Default)])),
            flag("listed", with_rules(vec![rule(vec![cons("userId", "IN", &[s]), cons(s, "IN", &[s])])])),
            flag("contains", with_rules(vec![rule(vec![cons("v", "STR_CONTAINS", &[s]), cons("v", "REGEX", &[&regex::escape(s)])])])),
        ]);
        let ctx = Context::new().with_user_id(s).with_property(s, s).with_property("v", format!("<{s}>"));
        let ev = plan.evaluate(s, &ctx, inputs());
        assert_eq!(ev.flag.map(|f| f.key()), Some(s));
        assert_eq!(ev.enabled, rollout_position(hash_group_id(s, s, ROLLOUT_SEED)) <= 5_000, "{s:?}");
        assert_eq!(summary(&ev), summary(&plan.evaluate(s, &ctx, EvalInputs::new(NOW, 99))), "{s:?}");
        assert!(plan.is_enabled("listed", &ctx, inputs()), "{s:?}");
        assert!(plan.is_enabled("contains", &ctx, inputs()), "{s:?}");
        // Comparison is exact: a prefix of the string is a different value.
        let shorter: String = s.chars().take(s.chars().count() - 1).collect();
        let near = Context::new().with_user_id(shorter.as_str()).with_property(s, shorter.as_str());
        assert!(!plan.is_enabled("listed", &near, inputs()), "{s:?}");
    }
    // No normalisation: precomposed é is not e + combining acute.
    assert!(!matches(vec![cons("userId", "IN", &["e\u{301}"])], &user("\u{e9}")));
}

#[test]
fn case_insensitive_string_operators_with_non_ascii() {
    let pairs = [("ÅSE", "åse"), ("ÉCOLE", "école"), ("ΑΒΓ", "αβγ"), ("ÄPFEL-straße", "äpfel-straße")];
    for (value, pattern) in pairs {
        for op in ["STR_CONTAINS", "STR_STARTS_WITH", "STR_ENDS_WITH"] {
            // Both directions: upper-case context against lower-case pattern and vice versa.
            assert!(matches(vec![insensitive(cons("p", op, &[pattern]))], &prop("p", value)), "{op} {value} ~ {pattern}");
            assert!(matches(vec![insensitive(cons("p", op, &[value]))], &prop("p", pattern)), "{op} {pattern} ~ {value}");
            assert!(!matches(vec![cons("p", op, &[pattern])], &prop("p", value)), "{op} is case-sensitive by default");
        }
        assert!(matches(vec![insensitive(cons("p", "REGEX", &[&format!("^{pattern}$")]))], &prop("p", value)));
        assert!(!matches(vec![cons("p", "REGEX", &[&format!("^{pattern}$")])], &prop("p", value)));
    }
    // ASCII context, non-ASCII pattern and the reverse: no false match.
    assert!(!matches(vec![insensitive(cons("p", "STR_CONTAINS", &["ÅSE"]))], &prop("p", "ase")));
    assert!(!matches(vec![insensitive(cons("p", "STR_CONTAINS", &["ase"]))], &prop("p", "ÅSE")));
    // Mixed ASCII and non-ASCII patterns in one list.
    assert!(matches(vec![insensitive(cons("p", "STR_ENDS_WITH", &["XYZ", "ÅSE"]))], &prop("p", "tåse")));
    assert!(matches(vec![insensitive(cons("p", "STR_STARTS_WITH", &["ÅSE", "xy"]))], &prop("p", "XYZ")));
    // IN stays exact whatever the flag says.
    assert!(!matches(vec![insensitive(cons("p", "IN", &["åse"]))], &prop("p", "ÅSE")));
}

// --- broken definitions ---

#[test]
fn broken_definitions_fail_only_their_own_flag() {
    let number_variant = variant("n", 1000, Some(("number", "abc")));
    let json_variant = variant("j", 1000, Some(("json", "{not json")));
    let with_off = |off: &str| EnvironmentConfig { off_variant: Some(off.into()), ..on() };
    let broken: Vec<(&str, Flag)> = vec![
        ("huge-regex", flag("huge-regex", with_rules(vec![rule(vec![cons("p", "REGEX", &["\\w{1000}{1000}"])])]))),
        ("bad-regex", flag("bad-regex", with_rules(vec![rule(vec![cons("p", "REGEX", &["(?=a)"])])]))),
        ("bad-semver-v", flag("bad-semver-v", with_rules(vec![rule(vec![cons("version", "SEMVER_GT", &["v1.2.3"])])]))),
        ("bad-semver-short", flag("bad-semver-short", with_rules(vec![rule(vec![cons("version", "SEMVER_EQ", &["1.2"])])]))),
        ("bad-date", flag("bad-date", with_rules(vec![rule(vec![cons("currentTime", "DATE_AFTER", &["yesterday"])])]))),
        ("bad-number", flag("bad-number", with_rules(vec![rule(vec![cons("n", "NUM_GT", &["ten"])])]))),
        ("bad-operator", flag("bad-operator", with_rules(vec![rule(vec![cons("p", "STR_MATCHES", &["x"])])]))),
        ("missing-segment", flag("missing-segment", with_rules(vec![Rule { segments: vec![999], ..Rule::default() }]))),
        ("bad-off-variant", typed_flag("bad-off-variant", FlagKind::String, vec![variant("a", 1000, None)], with_off("nope"))),
        ("bad-number-payload", typed_flag("bad-number-payload", FlagKind::Number, vec![number_variant], on())),
        ("bad-json-payload", typed_flag("bad-json-payload", FlagKind::Json, vec![json_variant], on())),
    ];
    let bad_keys: Vec<&str> = broken.iter().map(|(k, _)| *k).collect();
    let mut flags: Vec<Flag> = broken.into_iter().map(|(_, f)| f).collect();
    // A healthy flag that references an existing segment, between the broken ones.
    flags.insert(3, flag("healthy", with_rules(vec![Rule { segments: vec![1], ..Rule::default() }])));
    let set =
        FlagSet { flags, segments: vec![Segment { id: 1, name: None, description: None, constraints: vec![cons("p", "IN", &["x"])] }] };
    let plan = compile_set(&set);

    assert_eq!(plan.diagnostics().len(), bad_keys.len(), "{:?}", plan.diagnostics());
    for key in &bad_keys {
        let diags: Vec<_> = plan.diagnostics().iter().filter(|d| d.flag == *key).collect();
        assert_eq!(diags.len(), 1, "{key}: {:?}", plan.diagnostics());
        assert!(!diags[0].message.is_empty());
        for ctx in [Context::new(), prop("p", "a").with_property("version", "2.0.0").with_property("n", "11")] {
            let ev = plan.evaluate(key, &ctx, inputs());
            assert_eq!((ev.enabled, ev.reason, ev.error), (false, Reason::Error, Some(ErrorCode::ParseError)), "{key}");
            assert_eq!(ev.error_details(), Some(diags[0].message.as_str()), "{key}");
            assert_eq!(ev.flag.and_then(|f| f.error()), Some(diags[0].message.as_str()));
        }
    }
    assert!(plan.diagnostics().iter().all(|d| d.flag != "healthy"));
    assert_eq!(summary(&plan.evaluate("healthy", &prop("p", "x"), inputs())), (true, None, Reason::TargetingMatch, None));
    assert_eq!(summary(&plan.evaluate("healthy", &prop("p", "y"), inputs())), (false, None, Reason::Default, None));
    // evaluate_all still answers every flag, in order.
    let mut seen = Vec::new();
    plan.evaluate_all(&prop("p", "x"), inputs(), |ev| seen.push((ev.flag.unwrap().key().to_owned(), ev.reason)));
    assert_eq!(seen.len(), bad_keys.len() + 1);
    assert_eq!(seen[3], ("healthy".to_owned(), Reason::TargetingMatch));
    assert!(seen.iter().filter(|(k, _)| k != "healthy").all(|(_, r)| *r == Reason::Error));
}

#[test]
fn broken_variant_definitions() {
    let cases = [
        ("empty-name", typed_flag("empty-name", FlagKind::Boolean, vec![variant("", 1000, None)], on())),
        ("number-without-payload", typed_flag("number-without-payload", FlagKind::Number, vec![variant("n", 1000, None)], on())),
        ("number-nan", typed_flag("number-nan", FlagKind::Number, vec![variant("n", 1000, Some(("number", "NaN")))], on())),
        ("number-overflow", typed_flag("number-overflow", FlagKind::Number, vec![variant("n", 1000, Some(("number", "1e400")))], on())),
        ("json-without-payload", typed_flag("json-without-payload", FlagKind::Json, vec![variant("j", 1000, None)], on())),
        (
            "weights-overflow",
            typed_flag("weights-overflow", FlagKind::Boolean, vec![variant("a", u32::MAX, None), variant("b", 1, None)], on()),
        ),
        (
            "bad-fallthrough",
            typed_flag(
                "bad-fallthrough",
                FlagKind::Boolean,
                vec![variant("a", 1, None)],
                EnvironmentConfig { fallthrough: Some(Serve::Variant("zzz".into())), ..on() },
            ),
        ),
        (
            "bad-rule-variant",
            typed_flag(
                "bad-rule-variant",
                FlagKind::Number,
                vec![variant("n", 1, Some(("number", "1")))],
                EnvironmentConfig {
                    rules: vec![Rule { variants: vec![variant("r", 1, Some(("number", "one")))], ..Rule::default() }],
                    ..on()
                },
            ),
        ),
    ];
    let keys: Vec<&str> = cases.iter().map(|(k, _)| *k).collect();
    let mut flags: Vec<Flag> = cases.into_iter().map(|(_, f)| f).collect();
    flags.push(flag("fine", on()));
    let plan = compile(flags);
    assert_eq!(plan.diagnostics().len(), keys.len(), "{:?}", plan.diagnostics());
    for key in keys {
        assert_eq!(plan.diagnostics().iter().filter(|d| d.flag == key).count(), 1, "{key}");
        let ev = plan.evaluate(key, &user("u"), inputs());
        assert_eq!((ev.enabled, ev.reason, ev.error), (false, Reason::Error, Some(ErrorCode::ParseError)), "{key}");
    }
    assert_eq!(summary(&plan.evaluate("fine", &user("u"), inputs())), (true, None, Reason::Static, None));
}

#[test]
fn duplicate_keys_are_reported_and_the_last_wins() {
    let plan = compile(vec![flag("dup", EnvironmentConfig::default()), flag("dup", on())]);
    assert_eq!(plan.diagnostics().len(), 1);
    assert_eq!(plan.diagnostics()[0].flag, "dup");
    assert!(plan.is_enabled("dup", &Context::new(), inputs()));
}

// --- large lists ---

#[test]
fn ten_thousand_value_lists() {
    let values: Vec<String> = (0..10_000).map(|i| format!("v{i}")).collect();
    let refs: Vec<&str> = values.iter().map(String::as_str).collect();
    let ids = Rule { condition: Condition::UserIds { ids: values.clone() }, ..Rule::default() };
    let plan = compile_clean(vec![
        flag("in", with_rules(vec![rule(vec![cons("p", "IN", &refs)])])),
        flag("not-in", with_rules(vec![rule(vec![cons("p", "NOT_IN", &refs)])])),
        flag("ids", with_rules(vec![ids])),
    ]);
    for hit in ["v0", "v1", "v5000", "v9999"] {
        assert!(plan.is_enabled("in", &prop("p", hit), inputs()), "{hit}");
        assert!(!plan.is_enabled("not-in", &prop("p", hit), inputs()), "{hit}");
        assert!(plan.is_enabled("ids", &user(hit), inputs()), "{hit}");
    }
    for miss in ["v10000", "V1", "v01", "", " v1", "v-1"] {
        assert!(!plan.is_enabled("in", &prop("p", miss), inputs()), "{miss:?}");
        assert!(plan.is_enabled("not-in", &prop("p", miss), inputs()), "{miss:?}");
        assert!(!plan.is_enabled("ids", &user(miss), inputs()), "{miss:?}");
    }
    assert!(!plan.is_enabled("in", &Context::new(), inputs()));
    assert!(plan.is_enabled("not-in", &Context::new(), inputs()));
    // Small and large lists agree (the engine switches representation by size).
    for n in [0usize, 1, 11, 12, 13, 100] {
        let small = compile_clean(vec![flag("f", with_rules(vec![rule(vec![cons("p", "IN", &refs[..n])])]))]);
        for probe in ["v0", "v11", "v12", "v99", "v100"] {
            assert_eq!(small.is_enabled("f", &prop("p", probe), inputs()), refs[..n].contains(&probe), "n={n} {probe}");
        }
    }
}

// --- kill switch ---

#[test]
fn kill_switch_wins_over_everything() {
    let variants = vec![variant("a", 500, Some(("string", "A"))), variant("b", 500, Some(("string", "B")))];
    let off_env = EnvironmentConfig {
        enabled: false,
        prerequisites: vec![Prerequisite { flag: "parent".into(), enabled: true, variants: Vec::new() }],
        rules: vec![rule(Vec::new()), Rule { condition: Condition::UserIds { ids: vec!["u1".into()] }, ..Rule::default() }],
        fallthrough: Some(Serve::Variant("b".into())),
        off_variant: Some("a".into()),
        variants: None,
    };
    let plan = compile_clean(vec![
        flag("parent", on()),
        typed_flag("killed", FlagKind::String, variants.clone(), off_env.clone()),
        typed_flag("killed-no-off", FlagKind::String, variants, EnvironmentConfig { off_variant: None, ..off_env }),
        // No configuration for this environment at all.
        Flag { key: "elsewhere".into(), environments: BTreeMap::from([("staging".to_owned(), on())]), ..Flag::default() },
    ]);
    for ctx in [Context::new(), user("u1")] {
        let ev = plan.evaluate("killed", &ctx, inputs());
        assert_eq!(summary(&ev), (false, Some("a".into()), Reason::Disabled, None));
        assert_eq!(ev.value(), Some(Value::String("A")));
        assert!(ev.unleash_variant().is_none());
        assert_eq!(ev.rule_index, None);
        let ev = plan.evaluate("killed-no-off", &ctx, inputs());
        assert_eq!(summary(&ev), (false, None, Reason::Disabled, None));
        assert_eq!(ev.value(), None);
        assert_eq!(summary(&plan.evaluate("elsewhere", &ctx, inputs())), (false, None, Reason::Disabled, None));
    }
    // Even a flag whose definition is broken reports the kill switch, not the error.
    let broken_off = EnvironmentConfig { enabled: false, ..with_rules(vec![rule(vec![cons("p", "REGEX", &["("])])]) };
    let plan = compile(vec![flag("broken-off", broken_off)]);
    assert_eq!(plan.diagnostics().len(), 1);
    assert_eq!(summary(&plan.evaluate("broken-off", &Context::new(), inputs())), (false, None, Reason::Disabled, None));
    // The same flag compiled for an environment it is not configured in is off.
    let staging =
        Plan::compile(&FlagSet { flags: vec![flag("f", on())], segments: Vec::new() }, &CompileOptions::for_environment("staging"));
    assert_eq!(staging.evaluate("f", &Context::new(), inputs()).reason, Reason::Disabled);
}

// --- typed values ---

#[test]
fn typed_values_through_evaluation() {
    let json = r#"{"a": [1, 2.5, "x"], "b": null}"#;
    let plan = compile_clean(vec![
        typed_flag("s", FlagKind::String, vec![variant("blue", 1000, Some(("string", "#00f")))], on()),
        typed_flag("s-name", FlagKind::String, vec![variant("just-a-name", 1000, None)], on()),
        typed_flag("int", FlagKind::Number, vec![variant("n", 1000, Some(("number", " -42 ")))], on()),
        typed_flag("float", FlagKind::Number, vec![variant("n", 1000, Some(("number", "2.5")))], on()),
        typed_flag("exp", FlagKind::Number, vec![variant("n", 1000, Some(("number", "1e3")))], on()),
        typed_flag("json", FlagKind::Json, vec![variant("j", 1000, Some(("json", json)))], on()),
        flag("bool", on()),
    ]);
    let ctx = user("u1");
    let value = |key: &str| plan.evaluate(key, &ctx, inputs()).value();
    assert_eq!(value("s"), Some(Value::String("#00f")));
    assert_eq!(value("s-name"), Some(Value::String("just-a-name")));
    assert_eq!(value("int"), Some(Value::Int(-42)));
    assert_eq!(value("float"), Some(Value::Float(2.5)));
    assert_eq!(value("exp"), Some(Value::Float(1000.0)));
    let parsed: serde_json::Value = serde_json::from_str(json).unwrap();
    assert_eq!(value("json"), Some(Value::Json(&parsed)));
    assert_eq!(value("json").unwrap().to_json(), parsed);
    assert_eq!(value("bool"), Some(Value::Bool(true)));
    assert_eq!(value("int").unwrap().to_json(), serde_json::json!(-42));
    assert_eq!(value("missing"), None);
    for key in ["s", "int", "float", "json", "bool"] {
        assert_eq!(plan.evaluate(key, &ctx, inputs()).reason, Reason::Static, "{key}");
    }
}

#[test]
fn off_variant_serves_the_off_value() {
    let variants = || vec![variant("on", 1000, Some(("number", "10"))), variant("off", 0, Some(("number", "0.5")))];
    let targeted = |off: Option<&str>, enabled: bool| EnvironmentConfig {
        enabled,
        rules: vec![rule(vec![cons("userId", "IN", &["vip"])])],
        off_variant: off.map(Into::into),
        ..EnvironmentConfig::default()
    };
    let plan = compile_clean(vec![
        typed_flag("with-off", FlagKind::Number, variants(), targeted(Some("off"), true)),
        typed_flag("with-off-killed", FlagKind::Number, variants(), targeted(Some("off"), false)),
        typed_flag("no-off", FlagKind::Number, variants(), targeted(None, true)),
        typed_flag("no-off-killed", FlagKind::Number, variants(), targeted(None, false)),
        flag("bool-killed", EnvironmentConfig::default()),
    ]);
    let ev = |key: &str, id: &str| plan.evaluate(key, &user(id), inputs());
    // Matched: the weighted variant.
    assert_eq!(ev("with-off", "vip").value(), Some(Value::Int(10)));
    assert_eq!(ev("no-off", "vip").value(), Some(Value::Int(10)));
    // No rule matched: the off variant, or nothing (the caller's default).
    assert_eq!(summary(&ev("with-off", "pleb")), (false, Some("off".into()), Reason::Default, None));
    assert_eq!(ev("with-off", "pleb").value(), Some(Value::Float(0.5)));
    assert_eq!(ev("no-off", "pleb").value(), None);
    // Kill switch: same.
    assert_eq!(ev("with-off-killed", "vip").value(), Some(Value::Float(0.5)));
    assert_eq!(ev("with-off-killed", "vip").reason, Reason::Disabled);
    assert_eq!(ev("no-off-killed", "vip").value(), None);
    // Boolean flags always have a value: their enabled state.
    assert_eq!(ev("bool-killed", "vip").value(), Some(Value::Bool(false)));
}

// --- reasons ---

#[test]
fn reasons() {
    let two_way = || vec![variant("a", 500, None), variant("b", 500, None)];
    let one_way = || vec![variant("only", 1000, None), variant("never", 0, None)];
    let mut overridden = two_way();
    overridden[1].overrides = vec![Override { context_name: "userId".into(), values: vec!["forced".into()] }];
    let named = |r: Rule| Rule { id: Some("r1".into()), ..r };
    let plan = compile_clean(vec![
        flag("static", on()),
        typed_flag("static-one-variant", FlagKind::Boolean, one_way(), on()),
        typed_flag("split-variants", FlagKind::Boolean, two_way(), on()),
        typed_flag("override", FlagKind::Boolean, overridden, on()),
        flag("split-rollout", with_rules(vec![named(rollout_rule(5_000, Stickiness::Default))])),
        flag("full-rollout", with_rules(vec![rollout_rule(10_000, Stickiness::Default)])),
        flag("constraint", with_rules(vec![rule(vec![cons("p", "IN", &["x"])]), named(rule(vec![cons("userId", "IN", &["u1"])]))])),
        flag("user-ids", with_rules(vec![Rule { condition: Condition::UserIds { ids: vec!["u1".into()] }, ..Rule::default() }])),
        flag("everyone-rule", with_rules(vec![rule(Vec::new())])),
        typed_flag(
            "fallthrough-on",
            FlagKind::Boolean,
            one_way(),
            EnvironmentConfig { fallthrough: Some(Serve::On), ..with_rules(vec![rule(vec![cons("p", "IN", &["x"])])]) },
        ),
        typed_flag(
            "fallthrough-variant",
            FlagKind::Boolean,
            two_way(),
            EnvironmentConfig { fallthrough: Some(Serve::Variant("b".into())), ..with_rules(vec![rule(vec![cons("p", "IN", &["x"])])]) },
        ),
        flag("fallthrough-off", EnvironmentConfig { fallthrough: Some(Serve::Off), ..on() }),
    ]);
    let ev = |key: &str, ctx: &Context| plan.evaluate(key, ctx, inputs());
    let u1 = user("u1");

    assert_eq!(summary(&ev("static", &u1)), (true, None, Reason::Static, None));
    assert_eq!(summary(&ev("static", &Context::new())), (true, None, Reason::Static, None));
    assert_eq!(summary(&ev("static-one-variant", &u1)), (true, Some("only".into()), Reason::Static, None));
    assert_eq!(ev("split-variants", &u1).reason, Reason::Split);
    assert_eq!(summary(&ev("override", &user("forced"))), (true, Some("b".into()), Reason::TargetingMatch, None));

    // A partial rollout is a split; find one user inside it through the public hash.
    let inside =
        (0..).map(|i| format!("user-{i}")).find(|id| rollout_position(hash_group_id("split-rollout", id, ROLLOUT_SEED)) <= 5_000).unwrap();
    let outside =
        (0..).map(|i| format!("user-{i}")).find(|id| rollout_position(hash_group_id("split-rollout", id, ROLLOUT_SEED)) > 5_000).unwrap();
    let hit = ev("split-rollout", &user(&inside));
    assert_eq!((hit.enabled, hit.reason, hit.rule_index, hit.rule_id), (true, Reason::Split, Some(0), Some("r1")));
    assert_eq!(summary(&ev("split-rollout", &user(&outside))), (false, None, Reason::Default, None));
    assert_eq!(ev("full-rollout", &u1).reason, Reason::Static);

    let hit = ev("constraint", &u1);
    assert_eq!((hit.enabled, hit.reason, hit.rule_index, hit.rule_id), (true, Reason::TargetingMatch, Some(1), Some("r1")));
    assert_eq!(ev("constraint", &prop("p", "x")).rule_index, Some(0));
    assert_eq!(summary(&ev("user-ids", &u1)), (true, None, Reason::TargetingMatch, None));
    assert_eq!(ev("everyone-rule", &u1).reason, Reason::Static);

    // No rule matched.
    assert_eq!(summary(&ev("constraint", &user("u2"))), (false, None, Reason::Default, None));
    assert_eq!(summary(&ev("user-ids", &Context::new())), (false, None, Reason::Default, None));
    assert_eq!(summary(&ev("fallthrough-on", &u1)), (true, Some("only".into()), Reason::Default, None));
    assert_eq!(summary(&ev("fallthrough-variant", &u1)), (true, Some("b".into()), Reason::Default, None));
    assert_eq!(summary(&ev("fallthrough-off", &u1)), (false, None, Reason::Default, None));

    let missing = ev("no-such-flag", &u1);
    assert_eq!(summary(&missing), (false, None, Reason::Error, Some(ErrorCode::FlagNotFound)));
    assert!(missing.flag.is_none() && missing.value().is_none() && missing.error_details().is_none());
    assert!(!plan.is_enabled("no-such-flag", &u1, inputs()));
    assert_eq!(Plan::empty().evaluate("static", &u1, inputs()).error, Some(ErrorCode::FlagNotFound));
}

// --- prerequisites ---

fn requires(key: &str, parent: &str, enabled: bool, variants: &[&str]) -> Flag {
    let p = Prerequisite { flag: parent.into(), enabled, variants: variants.iter().map(|v| (*v).to_owned()).collect() };
    flag(key, EnvironmentConfig { prerequisites: vec![p], ..on() })
}

#[test]
fn prerequisites() {
    let blue = || vec![variant("blue", 1000, None), variant("green", 0, None)];
    let vip_only = with_rules(vec![rule(vec![cons("userId", "IN", &["vip"])])]);
    let plan = compile_clean(vec![
        flag("parent-on", on()),
        flag("parent-off", EnvironmentConfig::default()),
        flag("parent-vip", vip_only),
        typed_flag("parent-blue", FlagKind::Boolean, blue(), on()),
        requires("needs-on", "parent-on", true, &[]),
        requires("needs-off-on", "parent-off", true, &[]),
        requires("wants-off-of-off", "parent-off", false, &[]),
        requires("wants-off-of-on", "parent-on", false, &[]),
        requires("needs-vip", "parent-vip", true, &[]),
        requires("needs-blue", "parent-blue", true, &["blue"]),
        requires("needs-green", "parent-blue", true, &["green"]),
        requires("needs-green-or-blue", "parent-blue", true, &["green", "blue"]),
        requires("needs-missing", "no-such-flag", true, &[]),
        requires("wants-missing-off", "no-such-flag", false, &[]),
        // Transitive: `needs-on` itself has a prerequisite, so nothing may depend on it.
        requires("needs-needs-on", "needs-on", true, &[]),
        requires("wants-off-of-chain", "needs-on", false, &[]),
        // Cycles.
        requires("cycle-a", "cycle-b", true, &[]),
        requires("cycle-b", "cycle-a", true, &[]),
        requires("self", "self", true, &[]),
        requires("self-off", "self-off", false, &[]),
    ]);
    let ctx = user("u1");
    let ev = |key: &str| plan.evaluate(key, &ctx, inputs());
    let on_ = |key: &str| ev(key).enabled;

    assert!(on_("needs-on"));
    assert_eq!(ev("needs-on").reason, Reason::Static);
    assert_eq!(summary(&ev("needs-off-on")), (false, None, Reason::Default, None));
    assert!(on_("wants-off-of-off"));
    assert!(!on_("wants-off-of-on"));
    assert!(!on_("needs-vip"));
    assert!(plan.is_enabled("needs-vip", &user("vip"), inputs()));
    assert!(on_("needs-blue"));
    assert!(!on_("needs-green"));
    assert!(on_("needs-green-or-blue"));
    assert!(!on_("needs-missing"));
    assert!(!on_("wants-missing-off"));
    // The parent evaluates on, but chains are not followed.
    assert!(on_("needs-on"));
    assert_eq!(summary(&ev("needs-needs-on")), (false, None, Reason::Default, None));
    assert!(!on_("wants-off-of-chain"));
    for key in ["cycle-a", "cycle-b", "self", "self-off"] {
        assert_eq!(summary(&ev(key)), (false, None, Reason::Default, None), "{key}");
    }
}

#[test]
fn prerequisite_on_a_broken_or_killed_parent() {
    let plan = compile(vec![
        flag("broken", with_rules(vec![rule(vec![cons("v", "SEMVER_EQ", &["nope"])])])),
        requires("needs-broken", "broken", true, &[]),
        requires("wants-broken-off", "broken", false, &[]),
        flag("killed", EnvironmentConfig { enabled: false, rules: vec![rule(Vec::new())], ..EnvironmentConfig::default() }),
        requires("needs-killed", "killed", true, &[]),
    ]);
    assert_eq!(plan.diagnostics().len(), 1);
    assert_eq!(plan.diagnostics()[0].flag, "broken");
    let ev = |key: &str| summary(&plan.evaluate(key, &Context::new(), inputs()));
    assert_eq!(ev("needs-broken"), (false, None, Reason::Default, None));
    // A broken parent counts as off.
    assert_eq!(ev("wants-broken-off"), (true, None, Reason::Static, None));
    assert_eq!(ev("needs-killed"), (false, None, Reason::Default, None));
}

#[test]
fn errors_never_serve_the_off_variant_and_host_rules_are_targeting() {
    use gantry_engine::{CompileOptions, Context, EvalInputs, FlagSet, Plan, Reason};
    let set: FlagSet = serde_json::from_value(serde_json::json!({"flags": [
        {"key": "broken", "kind": "string", "variants": [{"name": "off", "weight": 1, "payload": {"type": "string", "value": "O"}}],
         "environments": {"e": {"enabled": true, "off_variant": "off",
            "rules": [{"constraints": [{"context_name": "x", "operator": "REGEX", "value": "(?=a)"}]}]}}},
        {"key": "host", "environments": {"e": {"enabled": true, "rules": [{"condition": {"type": "hostnames", "names": ["web-1"]}}]}}}
    ]}))
    .unwrap();
    let plan = Plan::compile(&set, &CompileOptions { environment: "e".into(), hostname: Some("web-1".into()) });
    let ev = plan.evaluate("broken", &Context::new(), EvalInputs::new(0, 0));
    assert_eq!(ev.reason, Reason::Error);
    assert_eq!(ev.value(), None, "the caller's default applies on error");
    let ev = plan.evaluate("host", &Context::new(), EvalInputs::new(0, 0));
    assert_eq!((ev.enabled, ev.reason), (true, Reason::TargetingMatch));
}

// --- sticky assignment ---

#[test]
fn sticking_to_a_variant_serves_it_only_where_the_flag_serves_variants() {
    let string_variants = vec![variant("a", 50, Some(("string", "A"))), variant("b", 50, Some(("string", "B")))];
    let plan = compile_clean(vec![
        typed_flag("exp", FlagKind::String, string_variants.clone(), on()),
        typed_flag("off", FlagKind::String, string_variants, EnvironmentConfig::default()),
    ]);
    // Find a user bucketing chose `a` for, then stick them to `b`.
    let ctx = (0..100).map(|i| user(&format!("u{i}"))).find(|c| plan.evaluate("exp", c, inputs()).variant_name() == Some("a")).unwrap();
    let mut ev = plan.evaluate("exp", &ctx, inputs());
    assert!(ev.stick_to_variant("b"));
    assert_eq!(ev.variant_name(), Some("b"));
    assert_eq!(ev.value().map(|v| v.to_json()), Some(serde_json::json!("B")), "the value follows the variant");
    assert!(ev.stick_to_variant("b"), "already served: still true");
    // An unknown name (the variant was removed) leaves bucketing's choice.
    let mut ev = plan.evaluate("exp", &ctx, inputs());
    assert!(!ev.stick_to_variant("gone"));
    assert_eq!(ev.variant_name(), Some("a"));
    // A flag that is off for the unit keeps serving its off answer.
    let mut ev = plan.evaluate("off", &ctx, inputs());
    let before = summary(&ev);
    assert!(!ev.stick_to_variant("b"));
    assert_eq!(summary(&ev), before);
}
