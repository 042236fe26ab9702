//! Evaluation of a compiled [`Plan`] for one context. Allocation-free on
//! every path except case-insensitive comparison of non-ASCII text.

use std::net::IpAddr;

use crate::context::{Context, EvalInputs, StandardField};
use crate::hash::rollout_position;
use crate::model::FlagKind;
use crate::plan::{
    CConstraint, CRule, CServe, CompiledFlag, CompiledVariant, Cond, FlagIndex, Op, Plan, Slot, Sticky, StrOp, TypedValue, VariantList,
};
use crate::strtab::bytes_eq;

/// Why a value was served (the OpenFeature / OFREP reasons).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Reason {
    /// The value is fixed: no rule or split decided it.
    Static,
    /// A targeting rule (constraints, segments, user list) matched.
    TargetingMatch,
    /// A percentage rollout or weighted variant split decided.
    Split,
    /// No rule matched, or a prerequisite failed: the default was served.
    Default,
    /// The flag is switched off in this environment.
    Disabled,
    /// The flag could not be evaluated; see the error code.
    Error,
}

impl Reason {
    /// The OpenFeature spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Reason::Static => "STATIC",
            Reason::TargetingMatch => "TARGETING_MATCH",
            Reason::Split => "SPLIT",
            Reason::Default => "DEFAULT",
            Reason::Disabled => "DISABLED",
            Reason::Error => "ERROR",
        }
    }
}

/// Evaluation error codes (the OpenFeature codes the engine can produce).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ErrorCode {
    /// No flag with that key.
    FlagNotFound,
    /// The flag's definition does not compile.
    ParseError,
    /// The caller asked for a type the flag does not serve.
    TypeMismatch,
    /// Anything else.
    General,
}

impl ErrorCode {
    /// The OpenFeature spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorCode::FlagNotFound => "FLAG_NOT_FOUND",
            ErrorCode::ParseError => "PARSE_ERROR",
            ErrorCode::TypeMismatch => "TYPE_MISMATCH",
            ErrorCode::General => "GENERAL",
        }
    }
}

/// A served value, borrowed from the plan.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Value<'p> {
    /// Boolean flags.
    Bool(bool),
    /// String flags.
    String(&'p str),
    /// Integer number flags.
    Int(i64),
    /// Fractional number flags.
    Float(f64),
    /// JSON flags.
    Json(&'p serde_json::Value),
}

impl Value<'_> {
    /// An owned JSON rendering.
    pub fn to_json(&self) -> serde_json::Value {
        match *self {
            Value::Bool(b) => b.into(),
            Value::String(s) => s.into(),
            Value::Int(i) => i.into(),
            Value::Float(f) => serde_json::Number::from_f64(f).map(serde_json::Value::Number).unwrap_or(serde_json::Value::Null),
            Value::Json(j) => j.clone(),
        }
    }
}

/// The outcome of evaluating one flag for one context.
#[derive(Debug, Clone, Copy)]
pub struct Evaluation<'p> {
    /// The flag, when it exists.
    pub flag: Option<&'p CompiledFlag>,
    /// Whether the flag is on for this context (Unleash `isEnabled`).
    pub enabled: bool,
    /// The variant served, if any.
    pub variant: Option<&'p CompiledVariant>,
    /// Why.
    pub reason: Reason,
    /// Index of the rule that matched.
    pub rule_index: Option<usize>,
    /// Id of the rule that matched, when it has one.
    pub rule_id: Option<&'p str>,
    /// Set when `reason` is `Error`.
    pub error: Option<ErrorCode>,
}

impl<'p> Evaluation<'p> {
    fn not_found() -> Self {
        Evaluation {
            flag: None,
            enabled: false,
            variant: None,
            reason: Reason::Error,
            rule_index: None,
            rule_id: None,
            error: Some(ErrorCode::FlagNotFound),
        }
    }

    fn off(flag: &'p CompiledFlag, reason: Reason) -> Self {
        Evaluation {
            flag: Some(flag),
            enabled: false,
            variant: flag.off_variant.as_ref(),
            reason,
            rule_index: None,
            rule_id: None,
            error: None,
        }
    }

    /// The served value: the enabled state for boolean flags, the variant's
    /// typed value otherwise. `None` means "use the caller's default".
    pub fn value(&self) -> Option<Value<'p>> {
        let flag = self.flag?;
        if flag.kind == FlagKind::Boolean {
            return Some(Value::Bool(self.enabled));
        }
        Some(match self.variant?.value.as_ref()? {
            TypedValue::String(s) => Value::String(s),
            TypedValue::Int(i) => Value::Int(*i),
            TypedValue::Float(f) => Value::Float(*f),
            TypedValue::Json(j) => Value::Json(j),
        })
    }

    /// The variant name, if a variant was served.
    pub fn variant_name(&self) -> Option<&'p str> {
        self.variant.map(|v| &*v.name)
    }

    /// Serves the variant called `name` instead of the one bucketing chose,
    /// for sticky assignment (a unit keeps the variant it was first given
    /// when an experiment's weights change). Applies only when the flag is on
    /// and a variant was served; the variant is looked up in the list that
    /// served it (the matched rule's, else the flag's). Returns whether the
    /// served variant is now `name`.
    pub fn stick_to_variant(&mut self, name: &str) -> bool {
        let (Some(flag), Some(current)) = (self.flag, self.variant) else { return false };
        if !self.enabled {
            return false;
        }
        if &*current.name == name {
            return true;
        }
        let rule_list = self.rule_index.and_then(|i| flag.rules.get(i)).and_then(|r| r.variants.as_ref());
        match rule_list.unwrap_or(&flag.variants).list.iter().find(|v| &*v.name == name) {
            Some(v) => {
                self.variant = Some(v);
                true
            }
            None => false,
        }
    }

    /// The variant as Unleash reports it: the served variant when the flag is
    /// on, else none (`disabled`).
    pub fn unleash_variant(&self) -> Option<&'p CompiledVariant> {
        if self.enabled {
            self.variant
        } else {
            None
        }
    }

    /// A human-readable error detail, when the flag failed to compile.
    pub fn error_details(&self) -> Option<&'p str> {
        self.flag.and_then(|f| f.error.as_deref())
    }
}

/// The outcome of a flag whose evaluation does not depend on the context or
/// the inputs (switched off, broken, or serving one fixed answer to
/// everyone), computed once at compile time by the ordinary evaluation path.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Fixed {
    enabled: bool,
    variant: FixedVariant,
    reason: Reason,
    rule_index: Option<usize>,
    /// Whether the matched rule has an id (saves reading the rule when not).
    rule_has_id: bool,
    error: Option<ErrorCode>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum FixedVariant {
    None,
    Off,
    Flag(usize),
}

impl Fixed {
    /// The fixed outcome of `flag`, if it has one.
    pub(crate) fn fold(flag: &CompiledFlag) -> Option<Fixed> {
        if !is_context_free(flag) {
            return None;
        }
        let plan = Plan::empty();
        let ev = plan.evaluate_dynamic(flag, &Context::new(), EvalInputs::new(0, 0));
        let variant = match ev.variant {
            None => FixedVariant::None,
            Some(v) if flag.off_variant.as_ref().is_some_and(|o| std::ptr::eq(o, v)) => FixedVariant::Off,
            Some(v) => FixedVariant::Flag(flag.variants.list.iter().position(|x| std::ptr::eq(x, v))?),
        };
        Some(Fixed {
            enabled: ev.enabled,
            variant,
            reason: ev.reason,
            rule_index: ev.rule_index,
            rule_has_id: ev.rule_id.is_some(),
            error: ev.error,
        })
    }

    #[inline(always)]
    fn evaluation<'p>(&self, flag: &'p CompiledFlag) -> Evaluation<'p> {
        Evaluation {
            flag: Some(flag),
            enabled: self.enabled,
            variant: match self.variant {
                FixedVariant::None => None,
                FixedVariant::Off => flag.off_variant.as_ref(),
                FixedVariant::Flag(i) => flag.variants.list.get(i),
            },
            reason: self.reason,
            rule_index: self.rule_index,
            rule_id: if self.rule_has_id { self.rule_index.and_then(|i| flag.rules.get(i)).and_then(|r| r.id.as_deref()) } else { None },
            error: self.error,
        }
    }
}

/// Whether evaluating `flag` reads neither the context nor the inputs.
fn is_context_free(flag: &CompiledFlag) -> bool {
    if !flag.enabled || flag.error.is_some() {
        return true;
    }
    if !flag.prerequisites.is_empty() {
        return false;
    }
    // A variant pick is fixed only when there is nothing to pick from.
    let no_pick = |list: &VariantList| list.total == 0 && !list.has_overrides;
    for rule in &flag.rules {
        let always = match &rule.cond {
            Cond::Never => continue,
            Cond::Rollout { bp: 0, .. } => continue,
            Cond::All => true,
            Cond::Rollout { bp, sticky, .. } => *bp >= 10_000 && !matches!(sticky, Sticky::Field(_)),
            Cond::UserIds(_) | Cond::Remote(_) => false,
        };
        if !always || !rule.constraints.is_empty() {
            return false;
        }
        return no_pick(rule.variants.as_ref().unwrap_or(&flag.variants));
    }
    match flag.fallthrough {
        CServe::Implicit if flag.rules.is_empty() => no_pick(&flag.variants),
        CServe::On => no_pick(&flag.variants),
        CServe::Implicit | CServe::Off | CServe::Variant(_) => true,
    }
}

// === impl Plan ===

impl Plan {
    /// Evaluates a flag by key.
    #[inline]
    pub fn evaluate(&self, key: &str, ctx: &Context, inputs: EvalInputs) -> Evaluation<'_> {
        match self.lookup(key) {
            Some(idx) => self.evaluate_index(idx, ctx, inputs),
            None => Evaluation::not_found(),
        }
    }

    /// Evaluates a flag by a previously looked-up index.
    #[inline]
    pub fn evaluate_index(&self, idx: FlagIndex, ctx: &Context, inputs: EvalInputs) -> Evaluation<'_> {
        let flag = &self.flags[idx.0];
        if let Some(fixed) = &flag.fixed {
            return fixed.evaluation(flag);
        }
        self.evaluate_dynamic(flag, ctx, inputs)
    }

    /// The full evaluation: kill switch, prerequisites, rules, fallthrough.
    fn evaluate_dynamic<'p>(&'p self, flag: &'p CompiledFlag, ctx: &Context, inputs: EvalInputs) -> Evaluation<'p> {
        if !flag.enabled {
            return Evaluation::off(flag, Reason::Disabled);
        }
        if flag.error.is_some() {
            let mut ev = Evaluation::off(flag, Reason::Error);
            ev.error = Some(ErrorCode::ParseError);
            return ev;
        }
        if !flag.prerequisites.is_empty() && !self.prerequisites_hold(flag, ctx, inputs) {
            return Evaluation::off(flag, Reason::Default);
        }
        eval_body(flag, ctx, inputs)
    }

    /// Whether a flag is on for a context (Unleash `isEnabled`); unknown flags are off.
    #[inline]
    pub fn is_enabled(&self, key: &str, ctx: &Context, inputs: EvalInputs) -> bool {
        self.evaluate(key, ctx, inputs).enabled
    }

    /// Evaluates every flag, in definition order, handing each result to `f`.
    pub fn evaluate_all<'p>(&'p self, ctx: &Context, inputs: EvalInputs, mut f: impl FnMut(Evaluation<'p>)) {
        for i in 0..self.flags.len() {
            f(self.evaluate_index(FlagIndex(i), ctx, inputs));
        }
    }

    /// Whether every prerequisite of `flag` holds for this context.
    fn prerequisites_hold(&self, flag: &CompiledFlag, ctx: &Context, inputs: EvalInputs) -> bool {
        flag.prerequisites.iter().all(|p| {
            // Unleash semantics: the parent must exist and have no
            // prerequisites of its own (no transitive chains, no cycles).
            let Some(parent) = p.parent.map(|i| &self.flags[i]).filter(|f| f.prerequisites.is_empty()) else {
                return false;
            };
            let pe = if parent.error.is_none() { eval_body(parent, ctx, inputs) } else { Evaluation::off(parent, Reason::Error) };
            if p.enabled {
                pe.enabled
                    && (p.variants.is_empty() || {
                        let name = pe.unleash_variant().map_or("disabled", |v| &*v.name);
                        p.variants.iter().any(|v| &**v == name)
                    })
            } else {
                !pe.enabled
            }
        })
    }
}

/// Rules, fallthrough and variant choice for an enabled, compiled flag.
#[inline]
fn eval_body<'p>(flag: &'p CompiledFlag, ctx: &Context, inputs: EvalInputs) -> Evaluation<'p> {
    if !flag.enabled {
        return Evaluation::off(flag, Reason::Disabled);
    }
    for (ri, rule) in flag.rules.iter().enumerate() {
        if rule_matches(rule, ctx, inputs, flag.salt ^ ri as u64) {
            let (variant, how) = match &rule.variants {
                Some(list) => pick_variant(list, ctx, inputs, flag.salt.rotate_left(7) ^ ri as u64),
                None => pick_variant(&flag.variants, ctx, inputs, flag.salt.rotate_left(7)),
            };
            let reason = match how {
                Pick::Override => Reason::TargetingMatch,
                Pick::Split => Reason::Split,
                Pick::Fixed | Pick::None => match rule.cond {
                    Cond::Rollout { bp, .. } if bp < 10_000 => Reason::Split,
                    _ if rule.targeted => Reason::TargetingMatch,
                    _ => Reason::Static,
                },
            };
            return Evaluation {
                flag: Some(flag),
                enabled: true,
                variant,
                reason,
                rule_index: Some(ri),
                rule_id: rule.id.as_deref(),
                error: None,
            };
        }
    }
    let on = |reason_fixed: Reason| {
        let (variant, how) = pick_variant(&flag.variants, ctx, inputs, flag.salt.rotate_left(7));
        let reason = match how {
            Pick::Override => Reason::TargetingMatch,
            Pick::Split => Reason::Split,
            Pick::Fixed | Pick::None => reason_fixed,
        };
        Evaluation { flag: Some(flag), enabled: true, variant, reason, rule_index: None, rule_id: None, error: None }
    };
    match flag.fallthrough {
        CServe::Implicit if flag.rules.is_empty() => on(Reason::Static),
        CServe::Implicit | CServe::Off => Evaluation::off(flag, Reason::Default),
        CServe::On => on(Reason::Default),
        CServe::Variant(i) => Evaluation {
            flag: Some(flag),
            enabled: true,
            variant: flag.variants.list.get(i),
            reason: Reason::Default,
            rule_index: None,
            rule_id: None,
            error: None,
        },
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Pick {
    None,
    Override,
    Fixed,
    Split,
}

#[inline]
fn slot_value<'c>(ctx: &'c Context, slot: &Slot) -> Option<&'c str> {
    match slot {
        Slot::Std(f) => ctx.standard(*f),
        Slot::Prop(name) => ctx.property(name),
    }
}

#[inline]
fn sticky_value<'c>(ctx: &'c Context, sticky: &Sticky) -> Result<Option<&'c str>, ()> {
    match sticky {
        Sticky::Default => Ok(ctx.user_id.as_deref().or(ctx.session_id.as_deref())),
        Sticky::Random => Ok(None),
        Sticky::Field(slot) => slot_value(ctx, slot).map(Some).ok_or(()),
    }
}

#[inline(always)]
fn pick_variant<'p>(list: &'p VariantList, ctx: &Context, inputs: EvalInputs, salt: u64) -> (Option<&'p CompiledVariant>, Pick) {
    // Most flags have no variants: decide that without a call.
    if list.total == 0 && !list.has_overrides {
        return (None, Pick::None);
    }
    pick_some_variant(list, ctx, inputs, salt)
}

#[inline(never)]
fn pick_some_variant<'p>(list: &'p VariantList, ctx: &Context, inputs: EvalInputs, salt: u64) -> (Option<&'p CompiledVariant>, Pick) {
    if list.has_overrides {
        for v in &list.list {
            for (slot, values) in &v.overrides {
                if slot_value(ctx, slot).is_some_and(|s| values.contains(s)) {
                    return (Some(v), Pick::Override);
                }
            }
        }
    }
    if list.total == 0 {
        return (None, Pick::None);
    }
    // A missing custom stickiness field falls back to a random pick.
    let target = match sticky_value(ctx, &list.sticky).ok().flatten() {
        Some(id) => list.group.normalize(id, list.total),
        None => inputs.random_in(salt, list.total),
    };
    let mut acc = 0u32;
    for v in &list.list {
        acc += v.weight;
        if v.weight > 0 && acc >= target {
            return (Some(v), if list.nonzero > 1 { Pick::Split } else { Pick::Fixed });
        }
    }
    (None, Pick::None)
}

#[inline(always)]
fn rule_matches(rule: &CRule, ctx: &Context, inputs: EvalInputs, salt: u64) -> bool {
    // The trivial conditions inline; the others out of line, so that the rule
    // loop stays small (no hoisted set-up for work most flags never do).
    let cond = match &rule.cond {
        Cond::All => true,
        Cond::Never => false,
        cond => cond_holds(cond, ctx, inputs, salt),
    };
    cond && (rule.constraints.is_empty() || constraints_hold(&rule.constraints, ctx, inputs))
}

#[inline(never)]
fn cond_holds(cond: &Cond, ctx: &Context, inputs: EvalInputs, salt: u64) -> bool {
    match cond {
        Cond::All => true,
        Cond::Never => false,
        Cond::Rollout { bp, sticky, group } => {
            if *bp == 0 {
                false
            } else if *bp >= 10_000 && !matches!(sticky, Sticky::Field(_)) {
                true
            } else {
                match sticky_value(ctx, sticky) {
                    Err(()) => false,
                    Ok(Some(id)) => rollout_position(group.hash(id)) <= *bp,
                    Ok(None) => inputs.random_in(salt, 10_000) <= *bp,
                }
            }
        }
        Cond::UserIds(set) => ctx.user_id.as_deref().is_some_and(|u| set.contains(u)),
        Cond::Remote(cidrs) => ctx
            .remote_address
            .as_deref()
            .and_then(|a| a.trim().parse::<IpAddr>().ok())
            .is_some_and(|ip| cidrs.iter().any(|c| c.contains(&ip))),
    }
}

/// Kept out of line so that flags without constraints run a small loop.
#[inline(never)]
fn constraints_hold(constraints: &[CConstraint], ctx: &Context, inputs: EvalInputs) -> bool {
    constraints.iter().all(|c| constraint_holds(c, ctx, inputs))
}

#[inline]
fn constraint_holds(c: &CConstraint, ctx: &Context, inputs: EvalInputs) -> bool {
    let value = slot_value(ctx, &c.slot);
    let raw = match (&c.op, value) {
        (Op::NotIn(_), None) => true,
        (Op::Date { after, millis }, v) if matches!(c.slot, Slot::Std(StandardField::CurrentTime)) || v.is_some() => {
            let at = match v {
                Some(s) => crate::plan::parse_instant(s),
                None => Some(inputs.now_millis),
            };
            at.is_some_and(|t| if *after { t > *millis } else { t < *millis })
        }
        (_, None) => false,
        (Op::In(set), Some(v)) => set.contains(v),
        (Op::NotIn(set), Some(v)) => !set.contains(v),
        (Op::Str { op, values, case_insensitive }, Some(v)) => str_match(*op, values, v, *case_insensitive),
        (Op::Num { cmp, value }, Some(v)) => match parse_f64(trim(v)) {
            Some(n) if n.is_finite() => match n.partial_cmp(value) {
                Some(ord) => cmp.holds(ord),
                None => false,
            },
            _ => false,
        },
        (Op::Date { .. }, Some(_)) => false,
        (Op::Semver { cmp, version }, Some(v)) => semver_precedence(trim(v), version).is_some_and(|ord| cmp.holds(ord)),
        (Op::Regex(re), Some(v)) => re.is_match(v),
        (Op::Cidr(cidrs), Some(v)) => trim(v).parse::<IpAddr>().is_ok_and(|ip| cidrs.iter().any(|n| n.contains(&ip))),
    };
    raw != c.inverted
}

/// `str::trim`, skipping the Unicode scan when both ends are visible ASCII.
#[inline]
fn trim(s: &str) -> &str {
    let visible = |b: &u8| (0x21..0x7f).contains(b);
    match (s.as_bytes().first(), s.as_bytes().last()) {
        (Some(a), Some(z)) if visible(a) && visible(z) => s,
        _ => s.trim(),
    }
}

/// `s.parse::<f64>().ok()`, with a fast path for short integers (exact:
/// up to 15 digits every integer is an `f64`).
#[inline]
fn parse_f64(s: &str) -> Option<f64> {
    let b = s.as_bytes();
    let (negative, digits) = match b.first() {
        Some(b'-') => (true, &b[1..]),
        _ => (false, b),
    };
    if !digits.is_empty() && digits.len() <= 15 && digits.iter().all(u8::is_ascii_digit) {
        let n = digits.iter().fold(0u64, |acc, d| acc * 10 + u64::from(d - b'0')) as f64;
        return Some(if negative { -n } else { n });
    }
    s.parse::<f64>().ok()
}

/// `semver::Version::parse(s)` compared by precedence with `target`, without
/// the general parser when `s` is a plain `MAJOR.MINOR.PATCH`.
#[inline]
fn semver_precedence(s: &str, target: &semver::Version) -> Option<std::cmp::Ordering> {
    match plain_version(s) {
        Some(triple) => {
            let ord = triple.cmp(&(target.major, target.minor, target.patch));
            // A release ranks above any pre-release of the same version.
            Some(ord.then(if target.pre.is_empty() { std::cmp::Ordering::Equal } else { std::cmp::Ordering::Greater }))
        }
        None => semver::Version::parse(s).ok().map(|v| v.cmp_precedence(target)),
    }
}

/// `MAJOR.MINOR.PATCH` as `semver` reads it (digits, no leading zeros);
/// `None` for anything else, which then takes the general parser.
#[inline]
fn plain_version(s: &str) -> Option<(u64, u64, u64)> {
    let b = s.as_bytes();
    let mut parts = [0u64; 3];
    let mut i = 0;
    for (k, part) in parts.iter_mut().enumerate() {
        if k > 0 {
            if b.get(i) != Some(&b'.') {
                return None;
            }
            i += 1;
        }
        let start = i;
        while i < b.len() && b[i].is_ascii_digit() {
            i += 1;
        }
        let len = i - start;
        if len == 0 || len > 18 || (len > 1 && b[start] == b'0') {
            return None;
        }
        *part = b[start..i].iter().fold(0u64, |acc, d| acc * 10 + u64::from(d - b'0'));
    }
    (i == b.len()).then_some((parts[0], parts[1], parts[2]))
}

#[inline]
fn str_match(op: StrOp, values: &[Box<str>], v: &str, ci: bool) -> bool {
    if !ci {
        return values.iter().any(|p| match op {
            StrOp::Contains => v.contains(&**p),
            StrOp::StartsWith => v.len() >= p.len() && bytes_eq(&v.as_bytes()[..p.len()], p.as_bytes()),
            StrOp::EndsWith => v.len() >= p.len() && bytes_eq(&v.as_bytes()[v.len() - p.len()..], p.as_bytes()),
        });
    }
    // Patterns were lower-cased at compile time.
    if v.is_ascii() && values.iter().all(|p| p.is_ascii()) {
        let vb = v.as_bytes();
        return values.iter().any(|p| {
            let pb = p.as_bytes();
            match op {
                StrOp::StartsWith => vb.len() >= pb.len() && vb[..pb.len()].eq_ignore_ascii_case(pb),
                StrOp::EndsWith => vb.len() >= pb.len() && vb[vb.len() - pb.len()..].eq_ignore_ascii_case(pb),
                StrOp::Contains => pb.is_empty() || vb.windows(pb.len()).any(|w| w.eq_ignore_ascii_case(pb)),
            }
        });
    }
    let lower = v.to_lowercase();
    values.iter().any(|p| match op {
        StrOp::Contains => lower.contains(&**p),
        StrOp::StartsWith => lower.starts_with(&**p),
        StrOp::EndsWith => lower.ends_with(&**p),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fast_trim_agrees_with_trim() {
        for s in ["", " ", "a", " a", "a ", "\u{a0}a", "a\u{2003}", "\t1.2.3\n", "x\u{1c}", "ø", "1 2"] {
            assert_eq!(trim(s), s.trim(), "{s:?}");
        }
    }

    #[test]
    fn fast_numbers_agree_with_the_parser() {
        for s in [
            "0",
            "-0",
            "12",
            "-12",
            "007",
            "999999999999999",
            "9999999999999999",
            "12345678901234567890",
            "",
            "-",
            "+1",
            "1.5",
            "1e3",
            "inf",
            "NaN",
            "1_0",
            "١",
        ] {
            let fast = parse_f64(s);
            let slow = s.parse::<f64>().ok();
            assert_eq!(fast.map(f64::to_bits), slow.map(f64::to_bits), "{s:?}");
        }
    }

    #[test]
    fn fast_semver_agrees_with_the_parser() {
        let targets = ["1.2.3", "1.2.3-beta.1", "0.0.0", "2.0.0-rc.1+build.5", "18446744073709551615.0.0"];
        let inputs = [
            "1.2.3",
            "1.2.4",
            "1.2.2",
            "1.3.0",
            "0.9.9",
            "2.0.0",
            "0.0.0",
            "01.2.3",
            "1.02.3",
            "1.2.03",
            "1.2",
            "1.2.3.4",
            "1.2.3-beta.1",
            "1.2.3+build",
            "",
            ".1.2",
            "1..2",
            "18446744073709551615.0.0",
            "18446744073709551616.0.0",
            "999999999999999999.1.1",
            "v1.2.3",
        ];
        for t in targets {
            let target = semver::Version::parse(t).unwrap();
            for s in inputs {
                let slow = semver::Version::parse(s).ok().map(|v| v.cmp_precedence(&target));
                assert_eq!(semver_precedence(s, &target), slow, "{s:?} vs {t:?}");
            }
        }
    }

    fn compile(doc: serde_json::Value) -> Plan {
        let features: crate::unleash::ClientFeatures = serde_json::from_value(doc).unwrap();
        Plan::compile(&crate::unleash::to_native(&features, "e"), &crate::CompileOptions::for_environment("e"))
    }

    #[test]
    fn folded_flags_answer_like_the_full_evaluation() {
        let plan = compile(serde_json::json!({"version": 2, "features": [
            {"name": "on", "enabled": true, "strategies": [{"name": "default"}]},
            {"name": "no-strategies", "enabled": true},
            {"name": "off", "enabled": false, "strategies": [{"name": "default"}]},
            {"name": "full-rollout", "enabled": true, "strategies": [{"name": "flexibleRollout", "parameters": {"rollout": "100", "stickiness": "default"}}]},
            {"name": "zero-then-on", "enabled": true, "strategies": [
                {"name": "flexibleRollout", "parameters": {"rollout": "0"}}, {"name": "default", "id": "s2"}]},
            {"name": "custom-only", "enabled": true, "strategies": [{"name": "myCustom"}]},
            {"name": "variants", "enabled": true, "strategies": [{"name": "default"}], "variants": [{"name": "a", "weight": 1}]},
            {"name": "half", "enabled": true, "strategies": [{"name": "flexibleRollout", "parameters": {"rollout": "50"}}]},
            {"name": "child", "enabled": true, "dependencies": [{"feature": "on"}]},
        ]}));
        let folded: Vec<&str> = plan.flags().filter(|(_, f)| f.fixed.is_some()).map(|(_, f)| f.key()).collect();
        assert_eq!(folded, ["on", "no-strategies", "off", "full-rollout", "zero-then-on", "custom-only"]);
        let contexts = [Context::new(), Context::new().with_user_id("u1"), Context::new().with_user_id("u2").with_property("x", "y")];
        for (_, flag) in plan.flags() {
            for ctx in &contexts {
                for seed in 0..4 {
                    let inputs = EvalInputs::new(1_000, seed);
                    let fast = plan.evaluate(flag.key(), ctx, inputs);
                    let full = plan.evaluate_dynamic(flag, ctx, inputs);
                    assert_eq!(
                        (fast.enabled, fast.variant_name(), fast.reason, fast.rule_index, fast.rule_id, fast.error),
                        (full.enabled, full.variant_name(), full.reason, full.rule_index, full.rule_id, full.error),
                        "{}",
                        flag.key()
                    );
                }
            }
        }
    }

    #[test]
    fn dfa_regexes_agree_with_the_regex_crate() {
        let patterns = ["^[a-z.]+@example\\.(com|org)$", "abc", "(?i)straße", "\\d{3}-\\d{4}", "^$", "a*", "\\bword\\b", "ø+", "[^a]"];
        let hays = ["ada@example.com", "x", "", "STRASSE", "straße", "STRAßE", "555-1234", "a word here", "øøø", "aaa", "ba", "é"];
        for p in patterns {
            for ci in [false, true] {
                let re = regex::RegexBuilder::new(p).case_insensitive(ci).build().unwrap();
                let m = crate::plan::Matcher::new_for_test(p, ci);
                let expect_dfa = !matches!(p, "^$" | "a*" | "\\bword\\b");
                assert_eq!(m.has_dfa(), expect_dfa, "{p:?}");
                for h in hays {
                    assert_eq!(m.is_match(h), re.is_match(h), "{p:?} ci={ci} on {h:?}");
                }
            }
        }
    }
}
