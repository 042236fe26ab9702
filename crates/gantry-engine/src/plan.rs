//! Compilation of a [`FlagSet`] into an evaluation [`Plan`] for one environment.
//!
//! Everything that can be parsed ahead of time is parsed here: regexes,
//! versions, dates, numbers, CIDRs, segment references, context field names
//! (to slots) and typed variant values. A definition that cannot be compiled
//! turns only its own flag into an error that evaluates to the fallback with
//! reason `ERROR`; every problem is listed in [`Plan::diagnostics`].

use std::collections::HashMap;
use std::hash::BuildHasher;
use std::net::IpAddr;

use foldhash::fast::FixedState;
use regex::Regex;

use crate::context::StandardField;
use crate::hash::{GroupHash, ROLLOUT_SEED, VARIANT_SEED};
use crate::model::{Condition, Constraint, FlagKind, FlagSet, Operator, Segment, Serve, Stickiness, Variant};
use crate::strtab::{str_eq, StrTable};

/// Options that shape a compilation.
#[derive(Debug, Clone, Default)]
pub struct CompileOptions {
    /// The environment whose configuration is compiled.
    pub environment: String,
    /// The evaluating host's name (for `Hostnames` rules); `None` never matches.
    pub hostname: Option<String>,
}

impl CompileOptions {
    /// Options for one environment.
    pub fn for_environment(env: impl Into<String>) -> Self {
        Self { environment: env.into(), hostname: None }
    }
}

/// A problem found while compiling one flag.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Diagnostic {
    /// The flag concerned.
    pub flag: String,
    /// What is wrong, for humans.
    pub message: String,
}

/// Where a context value comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Slot {
    Std(StandardField),
    Prop(Box<str>),
}

impl Slot {
    pub(crate) fn of(name: &str) -> Self {
        match StandardField::from_name(name) {
            Some(f) => Slot::Std(f),
            None => Slot::Prop(name.into()),
        }
    }
}

#[derive(Debug, Clone)]
pub(crate) enum Sticky {
    Default,
    Random,
    Field(Slot),
}

impl Sticky {
    fn of(s: &Stickiness) -> Self {
        match s {
            Stickiness::Default => Sticky::Default,
            Stickiness::Random => Sticky::Random,
            Stickiness::Field(f) => Sticky::Field(Slot::of(f)),
        }
    }
}

/// A set of strings: a scan when small, a hash table when large.
#[derive(Debug, Clone)]
pub(crate) enum StrSet {
    Small(Vec<Box<str>>),
    Large(StrTable),
}

impl StrSet {
    fn new(values: impl IntoIterator<Item = String>) -> Self {
        let v: Vec<Box<str>> = values.into_iter().map(String::into_boxed_str).collect();
        if v.len() <= 12 {
            StrSet::Small(v)
        } else {
            let mut table = StrTable::with_capacity(v.len());
            for x in &v {
                table.insert(x, 0);
            }
            StrSet::Large(table)
        }
    }

    #[inline]
    pub(crate) fn contains(&self, s: &str) -> bool {
        match self {
            StrSet::Small(v) => v.iter().any(|x| str_eq(x, s)),
            StrSet::Large(set) => set.contains(s),
        }
    }
}

#[derive(Debug, Clone, Copy)]
pub(crate) enum Cmp {
    Eq,
    Gt,
    Gte,
    Lt,
    Lte,
}

impl Cmp {
    #[inline]
    pub(crate) fn holds(self, ord: std::cmp::Ordering) -> bool {
        use std::cmp::Ordering::*;
        match self {
            Cmp::Eq => ord == Equal,
            Cmp::Gt => ord == Greater,
            Cmp::Gte => ord != Less,
            Cmp::Lt => ord == Less,
            Cmp::Lte => ord != Greater,
        }
    }
}

#[derive(Debug, Clone, Copy)]
pub(crate) enum StrOp {
    Contains,
    StartsWith,
    EndsWith,
}

#[derive(Debug, Clone)]
pub(crate) struct Cidr {
    pub(crate) net: IpAddr,
    pub(crate) prefix: u8,
}

impl Cidr {
    fn parse(s: &str) -> Option<Self> {
        let s = s.trim();
        let (ip, prefix) = match s.split_once('/') {
            Some((ip, p)) => (ip.parse::<IpAddr>().ok()?, Some(p.parse::<u8>().ok()?)),
            None => (s.parse::<IpAddr>().ok()?, None),
        };
        let max = if ip.is_ipv4() { 32 } else { 128 };
        let prefix = prefix.unwrap_or(max);
        (prefix <= max).then_some(Cidr { net: ip, prefix })
    }

    #[inline]
    pub(crate) fn contains(&self, ip: &IpAddr) -> bool {
        match (self.net, ip) {
            (IpAddr::V4(n), IpAddr::V4(a)) => {
                let mask = if self.prefix == 0 { 0 } else { u32::MAX << (32 - u32::from(self.prefix)) };
                u32::from(n) & mask == u32::from(*a) & mask
            }
            (IpAddr::V6(n), IpAddr::V6(a)) => {
                let mask = if self.prefix == 0 { 0 } else { u128::MAX << (128 - u32::from(self.prefix)) };
                u128::from(n) & mask == u128::from(*a) & mask
            }
            _ => false,
        }
    }
}

#[derive(Debug, Clone)]
pub(crate) enum Op {
    In(StrSet),
    NotIn(StrSet),
    Str { op: StrOp, values: Vec<Box<str>>, case_insensitive: bool },
    Num { cmp: Cmp, value: f64 },
    Date { after: bool, millis: i64 },
    Semver { cmp: Cmp, version: semver::Version },
    Regex(Matcher),
    Cidr(Vec<Cidr>),
}

/// A compiled `REGEX` operand: the regex, and when the pattern allows it a
/// fully built DFA that answers `is_match` without the regex's per-thread
/// cache and set-up.
#[derive(Debug, Clone)]
pub(crate) struct Matcher {
    re: Regex,
    /// The DFA and its start state for a search from the haystack's start.
    dfa: Option<(Box<regex_automata::dfa::dense::DFA<Vec<u32>>>, regex_automata::util::primitives::StateID)>,
}

impl Matcher {
    fn new(re: Regex, pattern: &str, case_insensitive: bool) -> Self {
        use regex_automata::dfa::Automaton;
        let dfa = Self::dfa(pattern, case_insensitive).and_then(|dfa| {
            let start = dfa.start_state(&regex_automata::util::start::Config::new().anchored(regex_automata::Anchored::No)).ok()?;
            Some((Box::new(dfa), start))
        });
        Matcher { dfa, re }
    }

    /// A DFA for `pattern`, when it is small and exact for `is_match`.
    fn dfa(pattern: &str, case_insensitive: bool) -> Option<regex_automata::dfa::dense::DFA<Vec<u32>>> {
        use regex_automata::dfa::{dense, StartKind};
        use regex_automata::nfa::thompson;
        let nfa = thompson::Compiler::new()
            .syntax(regex_automata::util::syntax::Config::new().case_insensitive(case_insensitive))
            .configure(thompson::Config::new().nfa_size_limit(Some(1 << 20)).which_captures(thompson::WhichCaptures::None))
            .build(pattern)
            .ok()?;
        // Patterns that can match the empty string keep the regex: its
        // handling of empty matches inside UTF-8 sequences is the reference.
        if nfa.has_empty() {
            return None;
        }
        // Unicode word boundaries make the build fail; the regex serves those.
        dense::Builder::new()
            .configure(
                dense::Config::new()
                    .start_kind(StartKind::Unanchored)
                    .dfa_size_limit(Some(256 << 10))
                    .determinize_size_limit(Some(1 << 20)),
            )
            .build_from_nfa(&nfa)
            .ok()
    }

    #[cfg(test)]
    pub(crate) fn new_for_test(pattern: &str, case_insensitive: bool) -> Self {
        let re = regex::RegexBuilder::new(pattern).case_insensitive(case_insensitive).build().expect("valid pattern");
        Self::new(re, pattern, case_insensitive)
    }

    #[cfg(test)]
    pub(crate) fn has_dfa(&self) -> bool {
        self.dfa.is_some()
    }

    #[inline]
    pub(crate) fn is_match(&self, haystack: &str) -> bool {
        use regex_automata::dfa::Automaton;
        let Some((dfa, start)) = &self.dfa else {
            return self.re.is_match(haystack);
        };
        // An unanchored scan that stops at the first match state (DFA
        // matches are reported one byte late, hence the end-of-input step).
        let mut state = *start;
        for &b in haystack.as_bytes() {
            state = dfa.next_state(state, b);
            if dfa.is_special_state(state) {
                if dfa.is_match_state(state) {
                    return true;
                }
                if dfa.is_dead_state(state) {
                    return false;
                }
                if dfa.is_quit_state(state) {
                    return self.re.is_match(haystack);
                }
            }
        }
        dfa.is_match_state(dfa.next_eoi_state(state))
    }
}

#[derive(Debug, Clone)]
pub(crate) struct CConstraint {
    pub(crate) slot: Slot,
    pub(crate) inverted: bool,
    pub(crate) op: Op,
}

#[derive(Debug, Clone)]
pub(crate) enum Cond {
    All,
    Never,
    Rollout { bp: u32, sticky: Sticky, group: GroupHash },
    UserIds(StrSet),
    Remote(Vec<Cidr>),
}

/// A variant's value, typed by the flag kind.
#[derive(Debug, Clone, PartialEq)]
pub enum TypedValue {
    /// A string.
    String(Box<str>),
    /// An integer.
    Int(i64),
    /// A floating-point number.
    Float(f64),
    /// A JSON value.
    Json(serde_json::Value),
}

/// A compiled variant, as evaluation results expose it.
#[derive(Debug, Clone)]
pub struct CompiledVariant {
    /// The variant name.
    pub name: Box<str>,
    /// Its payload as configured (Unleash view).
    pub payload: Option<crate::model::Payload>,
    /// Its typed value (non-boolean flags).
    pub value: Option<TypedValue>,
    pub(crate) weight: u32,
    pub(crate) overrides: Vec<(Slot, StrSet)>,
}

#[derive(Debug, Clone)]
pub(crate) struct VariantList {
    pub(crate) list: Vec<CompiledVariant>,
    pub(crate) total: u32,
    pub(crate) nonzero: u32,
    pub(crate) sticky: Sticky,
    pub(crate) group: GroupHash,
    pub(crate) has_overrides: bool,
}

#[derive(Debug, Clone)]
pub(crate) struct CRule {
    pub(crate) id: Option<Box<str>>,
    pub(crate) cond: Cond,
    pub(crate) constraints: Vec<CConstraint>,
    /// Has constraints, segments or an identity condition.
    pub(crate) targeted: bool,
    pub(crate) variants: Option<VariantList>,
}

#[derive(Debug, Clone)]
pub(crate) struct CPrereq {
    pub(crate) parent: Option<usize>,
    pub(crate) enabled: bool,
    pub(crate) variants: Vec<Box<str>>,
}

#[derive(Debug, Clone)]
pub(crate) enum CServe {
    /// Unleash: on when there are no rules, off otherwise.
    Implicit,
    Off,
    On,
    Variant(usize),
}

/// One compiled flag.
#[derive(Debug, Clone)]
pub struct CompiledFlag {
    pub(crate) key: Box<str>,
    pub(crate) kind: FlagKind,
    pub(crate) project: Option<Box<str>>,
    pub(crate) impression_data: bool,
    pub(crate) enabled: bool,
    pub(crate) error: Option<Box<str>>,
    pub(crate) prerequisites: Vec<CPrereq>,
    pub(crate) rules: Vec<CRule>,
    pub(crate) fallthrough: CServe,
    pub(crate) variants: VariantList,
    pub(crate) off_variant: Option<CompiledVariant>,
    pub(crate) salt: u64,
    /// The outcome, when it is the same for every context (set at compile time).
    pub(crate) fixed: Option<crate::eval::Fixed>,
}

impl CompiledFlag {
    /// The flag key.
    pub fn key(&self) -> &str {
        &self.key
    }
    /// The flag kind.
    pub fn kind(&self) -> FlagKind {
        self.kind
    }
    /// The project, if set.
    pub fn project(&self) -> Option<&str> {
        self.project.as_deref()
    }
    /// Whether SDKs should emit impression events.
    pub fn impression_data(&self) -> bool {
        self.impression_data
    }
    /// The compile error of this flag, if any.
    pub fn error(&self) -> Option<&str> {
        self.error.as_deref()
    }
    /// Whether the environment's kill switch is on (flag enabled).
    pub fn is_switched_on(&self) -> bool {
        self.enabled
    }
}

/// An index into a plan's flags, for repeated evaluation without a lookup.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct FlagIndex(pub(crate) usize);

/// An evaluation-ready configuration for one environment. Immutable; share it
/// behind an `Arc` and swap the whole plan on change.
#[derive(Debug)]
pub struct Plan {
    pub(crate) flags: Vec<CompiledFlag>,
    index: StrTable,
    environment: Box<str>,
    diagnostics: Vec<Diagnostic>,
}

impl Plan {
    /// An empty plan (every lookup is FLAG_NOT_FOUND).
    pub fn empty() -> Self {
        Plan { flags: Vec::new(), index: StrTable::default(), environment: "".into(), diagnostics: Vec::new() }
    }

    /// Compiles `set` for one environment. Never fails: bad flags are
    /// reported in [`Plan::diagnostics`] and evaluate with reason `ERROR`.
    pub fn compile(set: &FlagSet, options: &CompileOptions) -> Self {
        let segments: HashMap<u32, &Segment> = set.segments.iter().map(|s| (s.id, s)).collect();
        let positions: HashMap<&str, usize> = set.flags.iter().enumerate().map(|(i, f)| (f.key.as_str(), i)).collect();
        let mut diagnostics = Vec::new();
        let mut flags = Vec::with_capacity(set.flags.len());
        let mut index = StrTable::with_capacity(set.flags.len());
        for (i, flag) in set.flags.iter().enumerate() {
            let env = flag.environments.get(&options.environment);
            let variants_src = env.and_then(|e| e.variants.as_ref()).unwrap_or(&flag.variants);
            let salt = FixedState::with_seed(0x6761_6e74).hash_one(flag.key.as_str());
            let mut cf = CompiledFlag {
                key: flag.key.as_str().into(),
                kind: flag.kind,
                project: flag.project.as_deref().map(Into::into),
                impression_data: flag.impression_data,
                enabled: env.is_some_and(|e| e.enabled),
                error: None,
                prerequisites: Vec::new(),
                rules: Vec::new(),
                fallthrough: CServe::Implicit,
                variants: VariantList::empty(flag.key.as_str()),
                off_variant: None,
                salt,
                fixed: None,
            };
            let result = (|| -> Result<(), String> {
                cf.variants = compile_variants(variants_src, flag.kind, &flag.key, None, true)?;
                let Some(env) = env else { return Ok(()) };
                if let Some(name) = &env.off_variant {
                    let v = cf.variants.list.iter().find(|v| &*v.name == name.as_str());
                    cf.off_variant = Some(v.cloned().ok_or_else(|| format!("off_variant `{name}` is not a variant of the flag"))?);
                }
                cf.fallthrough = match &env.fallthrough {
                    None => CServe::Implicit,
                    Some(Serve::Off) => CServe::Off,
                    Some(Serve::On) => CServe::On,
                    Some(Serve::Variant(name)) => CServe::Variant(
                        cf.variants
                            .list
                            .iter()
                            .position(|v| &*v.name == name.as_str())
                            .ok_or_else(|| format!("fallthrough variant `{name}` is not a variant of the flag"))?,
                    ),
                };
                for p in &env.prerequisites {
                    cf.prerequisites.push(CPrereq {
                        parent: positions.get(p.flag.as_str()).copied(),
                        enabled: p.enabled,
                        variants: p.variants.iter().map(|v| v.as_str().into()).collect(),
                    });
                }
                for (ri, rule) in env.rules.iter().enumerate() {
                    let mut constraints = Vec::with_capacity(rule.constraints.len());
                    for c in &rule.constraints {
                        constraints.push(compile_constraint(c).map_err(|e| format!("rule {ri}: {e}"))?);
                    }
                    for sid in &rule.segments {
                        let seg = segments.get(sid).ok_or_else(|| format!("rule {ri}: segment {sid} does not exist"))?;
                        for c in &seg.constraints {
                            constraints.push(compile_constraint(c).map_err(|e| format!("segment {sid}: {e}"))?);
                        }
                    }
                    let (cond, sticky_for_variants, group) = match &rule.condition {
                        Condition::All => (Cond::All, Sticky::Default, flag.key.as_str()),
                        Condition::Rollout(r) => {
                            let group = r.group_id.as_deref().unwrap_or(flag.key.as_str());
                            (
                                Cond::Rollout {
                                    bp: r.percentage.basis_points(),
                                    sticky: Sticky::of(&r.stickiness),
                                    group: GroupHash::new(group, ROLLOUT_SEED),
                                },
                                Sticky::of(&r.stickiness),
                                group,
                            )
                        }
                        Condition::UserIds { ids } => {
                            (Cond::UserIds(StrSet::new(ids.iter().map(|s| s.trim().to_owned()))), Sticky::Default, flag.key.as_str())
                        }
                        Condition::RemoteAddress { ips } => {
                            (Cond::Remote(ips.iter().filter_map(|s| Cidr::parse(s)).collect()), Sticky::Default, flag.key.as_str())
                        }
                        Condition::Hostnames { names } => {
                            let hit = options.hostname.as_deref().is_some_and(|h| names.iter().any(|n| n.trim().eq_ignore_ascii_case(h)));
                            (if hit { Cond::All } else { Cond::Never }, Sticky::Default, flag.key.as_str())
                        }
                        Condition::Custom { .. } => (Cond::Never, Sticky::Default, flag.key.as_str()),
                    };
                    // Host-name rules compile to All/Never but are still targeting.
                    let by_host = matches!(rule.condition, Condition::Hostnames { .. });
                    let targeted = by_host || !constraints.is_empty() || !matches!(cond, Cond::All | Cond::Rollout { .. });
                    let variants = if rule.variants.is_empty() {
                        None
                    } else {
                        Some(
                            compile_variants(&rule.variants, flag.kind, group, Some(sticky_for_variants), false)
                                .map_err(|e| format!("rule {ri}: {e}"))?,
                        )
                    };
                    cf.rules.push(CRule { id: rule.id.as_deref().map(Into::into), cond, constraints, targeted, variants });
                }
                Ok(())
            })();
            if let Err(message) = result {
                cf.error = Some(message.as_str().into());
                cf.rules.clear();
                // On error the caller's default applies (OpenFeature), never the off variant.
                cf.off_variant = None;
                diagnostics.push(Diagnostic { flag: flag.key.clone(), message });
            }
            cf.fixed = crate::eval::Fixed::fold(&cf);
            if index.insert(flag.key.as_str(), i as u32) {
                diagnostics.push(Diagnostic { flag: flag.key.clone(), message: "duplicate flag key; the last definition wins".into() });
            }
            flags.push(cf);
        }
        Plan { flags, index, environment: options.environment.as_str().into(), diagnostics }
    }

    /// Problems found while compiling.
    pub fn diagnostics(&self) -> &[Diagnostic] {
        &self.diagnostics
    }

    /// The environment this plan was compiled for.
    pub fn environment(&self) -> &str {
        &self.environment
    }

    /// Number of flags.
    pub fn len(&self) -> usize {
        self.flags.len()
    }

    /// Whether the plan has no flags.
    pub fn is_empty(&self) -> bool {
        self.flags.is_empty()
    }

    /// Looks a flag up once, for repeated evaluation.
    #[inline]
    pub fn lookup(&self, key: &str) -> Option<FlagIndex> {
        self.index.get(key).map(|i| FlagIndex(i as usize))
    }

    /// The compiled flag at an index.
    pub fn flag(&self, idx: FlagIndex) -> &CompiledFlag {
        &self.flags[idx.0]
    }

    /// Every compiled flag, in definition order.
    pub fn flags(&self) -> impl ExactSizeIterator<Item = (FlagIndex, &CompiledFlag)> {
        self.flags.iter().enumerate().map(|(i, f)| (FlagIndex(i), f))
    }
}

impl VariantList {
    fn empty(group: &str) -> Self {
        VariantList {
            list: Vec::new(),
            total: 0,
            nonzero: 0,
            sticky: Sticky::Default,
            group: GroupHash::new(group, VARIANT_SEED),
            has_overrides: false,
        }
    }
}

fn compile_variants(
    src: &[Variant],
    kind: FlagKind,
    group: &str,
    sticky: Option<Sticky>,
    allow_overrides: bool,
) -> Result<VariantList, String> {
    let mut list = Vec::with_capacity(src.len());
    let mut total: u32 = 0;
    let mut nonzero = 0;
    for v in src {
        if v.name.is_empty() {
            return Err("a variant has an empty name".into());
        }
        total = total.checked_add(v.weight).ok_or("variant weights overflow")?;
        if v.weight > 0 {
            nonzero += 1;
        }
        let value = typed_value(v, kind)?;
        let overrides = if allow_overrides {
            v.overrides.iter().map(|o| (Slot::of(&o.context_name), StrSet::new(o.values.iter().cloned()))).collect()
        } else {
            Vec::new()
        };
        list.push(CompiledVariant { name: v.name.as_str().into(), payload: v.payload.clone(), value, weight: v.weight, overrides });
    }
    let sticky = sticky.unwrap_or_else(|| match src.first().and_then(|v| v.stickiness.as_deref()) {
        Some(s) => Sticky::of(&Stickiness::parse(s)),
        None => Sticky::Default,
    });
    let has_overrides = list.iter().any(|v| !v.overrides.is_empty());
    Ok(VariantList { list, total, nonzero, sticky, group: GroupHash::new(group, VARIANT_SEED), has_overrides })
}

fn typed_value(v: &Variant, kind: FlagKind) -> Result<Option<TypedValue>, String> {
    let text = v.payload.as_ref().map(|p| p.value.as_str());
    Ok(match kind {
        FlagKind::Boolean => None,
        FlagKind::String => Some(TypedValue::String(text.unwrap_or(&v.name).into())),
        FlagKind::Number => {
            let t = text.ok_or_else(|| format!("variant `{}` of a number flag needs a payload", v.name))?.trim();
            if let Ok(i) = t.parse::<i64>() {
                Some(TypedValue::Int(i))
            } else {
                match t.parse::<f64>() {
                    Ok(f) if f.is_finite() => Some(TypedValue::Float(f)),
                    _ => return Err(format!("variant `{}`: payload `{t}` is not a number", v.name)),
                }
            }
        }
        FlagKind::Json => {
            let t = text.ok_or_else(|| format!("variant `{}` of a JSON flag needs a payload", v.name))?;
            Some(TypedValue::Json(serde_json::from_str(t).map_err(|e| format!("variant `{}`: payload is not JSON: {e}", v.name))?))
        }
    })
}

/// Parses an RFC 3339 instant (what Unleash SDKs send) to milliseconds.
/// Also accepts a bare date or a date-time without offset, read as UTC.
pub(crate) fn parse_instant(s: &str) -> Option<i64> {
    let s = s.trim();
    if let Ok(dt) = chrono::DateTime::parse_from_rfc3339(s) {
        return Some(dt.timestamp_millis());
    }
    if let Ok(ndt) = chrono::NaiveDateTime::parse_from_str(s, "%Y-%m-%dT%H:%M:%S%.f") {
        return Some(ndt.and_utc().timestamp_millis());
    }
    if let Ok(d) = chrono::NaiveDate::parse_from_str(s, "%Y-%m-%d") {
        return d.and_hms_opt(0, 0, 0).map(|n| n.and_utc().timestamp_millis());
    }
    None
}

/// Strict number syntax for constraint operands: `[+-]digits[.digits][e[+-]digits]`.
fn parse_number_operand(s: &str) -> Option<f64> {
    let t = s.trim();
    let b = t.as_bytes();
    let mut i = 0;
    if i < b.len() && (b[i] == b'+' || b[i] == b'-') {
        i += 1;
    }
    let start = i;
    while i < b.len() && b[i].is_ascii_digit() {
        i += 1;
    }
    let mut digits = i - start;
    if i < b.len() && b[i] == b'.' {
        i += 1;
        let fs = i;
        while i < b.len() && b[i].is_ascii_digit() {
            i += 1;
        }
        digits += i - fs;
    }
    if digits == 0 {
        return None;
    }
    if i < b.len() && (b[i] == b'e' || b[i] == b'E') {
        i += 1;
        if i < b.len() && (b[i] == b'+' || b[i] == b'-') {
            i += 1;
        }
        let es = i;
        while i < b.len() && b[i].is_ascii_digit() {
            i += 1;
        }
        if i == es {
            return None;
        }
    }
    if i != b.len() {
        return None;
    }
    t.parse().ok().filter(|f: &f64| f.is_finite())
}

fn compile_constraint(c: &Constraint) -> Result<CConstraint, String> {
    let single = || -> Result<&str, String> {
        c.value
            .as_deref()
            .or_else(|| c.values.first().map(String::as_str).filter(|_| c.values.len() == 1))
            .ok_or_else(|| format!("operator {} on `{}` needs a `value`", c.operator.as_str(), c.context_name))
    };
    let num = |cmp| -> Result<Op, String> {
        let v = single()?;
        Ok(Op::Num { cmp, value: parse_number_operand(v).ok_or_else(|| format!("`{v}` is not a number"))? })
    };
    let sem = |cmp| -> Result<Op, String> {
        let v = single()?;
        Ok(Op::Semver { cmp, version: semver::Version::parse(v.trim()).map_err(|e| format!("`{v}` is not a semantic version: {e}"))? })
    };
    let date = |after| -> Result<Op, String> {
        let v = single()?;
        Ok(Op::Date { after, millis: parse_instant(v).ok_or_else(|| format!("`{v}` is not an RFC 3339 date-time"))? })
    };
    let strs = |op| Op::Str {
        op,
        values: c.values.iter().map(|v| if c.case_insensitive { v.to_lowercase().into_boxed_str() } else { v.as_str().into() }).collect(),
        case_insensitive: c.case_insensitive,
    };
    let op = match &c.operator {
        Operator::In => Op::In(StrSet::new(c.values.iter().cloned())),
        Operator::NotIn => Op::NotIn(StrSet::new(c.values.iter().cloned())),
        Operator::StrContains => strs(StrOp::Contains),
        Operator::StrStartsWith => strs(StrOp::StartsWith),
        Operator::StrEndsWith => strs(StrOp::EndsWith),
        Operator::NumEq => num(Cmp::Eq)?,
        Operator::NumGt => num(Cmp::Gt)?,
        Operator::NumGte => num(Cmp::Gte)?,
        Operator::NumLt => num(Cmp::Lt)?,
        Operator::NumLte => num(Cmp::Lte)?,
        Operator::DateAfter => date(true)?,
        Operator::DateBefore => date(false)?,
        Operator::SemverEq => sem(Cmp::Eq)?,
        Operator::SemverGt => sem(Cmp::Gt)?,
        Operator::SemverGte => sem(Cmp::Gte)?,
        Operator::SemverLt => sem(Cmp::Lt)?,
        Operator::SemverLte => sem(Cmp::Lte)?,
        Operator::Regex => {
            let v = single()?;
            let re = regex::RegexBuilder::new(v)
                .case_insensitive(c.case_insensitive)
                .size_limit(1 << 20)
                .build()
                .map_err(|e| format!("invalid regular expression `{v}`: {}", e.to_string().lines().last().unwrap_or("")))?;
            Op::Regex(Matcher::new(re, v, c.case_insensitive))
        }
        Operator::InCidr => Op::Cidr(c.values.iter().filter_map(|s| Cidr::parse(s)).collect()),
        Operator::Unknown(name) => return Err(format!("unknown operator `{name}`")),
    };
    Ok(CConstraint { slot: Slot::of(&c.context_name), inverted: c.inverted, op })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn number_operands_are_strict() {
        for ok in ["12", "12.0", "-1", "+3.5", "1e3", "0.25", "7."] {
            assert!(parse_number_operand(ok).is_some(), "{ok}");
        }
        for bad in ["", "abc", "1.2.3", "NaN", "inf", "1e", "--1", "."] {
            assert!(parse_number_operand(bad).is_none(), "{bad}");
        }
    }

    #[test]
    fn cidrs_parse_and_match() {
        let c = Cidr::parse("10.0.0.0/8").unwrap();
        assert!(c.contains(&"10.1.2.3".parse().unwrap()));
        assert!(!c.contains(&"11.1.2.3".parse().unwrap()));
        let h = Cidr::parse("2001:db8::/32").unwrap();
        assert!(h.contains(&"2001:db8::1".parse().unwrap()));
        assert!(!h.contains(&"10.1.2.3".parse().unwrap()));
        assert!(Cidr::parse("192.invalid").is_none());
        assert!(Cidr::parse("10.0.0.0/33").is_none());
        assert!(Cidr::parse("0.0.0.0/0").unwrap().contains(&"1.2.3.4".parse().unwrap()));
    }

    #[test]
    fn instants_parse() {
        assert_eq!(parse_instant("1970-01-01T00:00:01.000Z"), Some(1000));
        assert_eq!(parse_instant("2022-01-22T13:00:00.000+02:00"), parse_instant("2022-01-22T11:00:00Z"));
        assert_eq!(parse_instant("1970-01-02"), Some(86_400_000));
        assert_eq!(parse_instant("yesterday"), None);
    }
}
