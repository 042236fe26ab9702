//! Evaluation of a compiled [`Plan`] for one context. Allocation-free on
//! every path except case-insensitive comparison of non-ASCII text.

use std::net::IpAddr;

use crate::context::{Context, EvalInputs, StandardField};
use crate::hash::{hash_group_id, normalize, rollout_position, ROLLOUT_SEED, VARIANT_SEED};
use crate::model::FlagKind;
use crate::plan::{CConstraint, CRule, CServe, CompiledFlag, CompiledVariant, Cond, FlagIndex, Op, Plan, Slot, StrOp, Sticky, TypedValue, VariantList};

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
        Evaluation { flag: None, enabled: false, variant: None, reason: Reason::Error, rule_index: None, rule_id: None, error: Some(ErrorCode::FlagNotFound) }
    }

    fn off(flag: &'p CompiledFlag, reason: Reason) -> Self {
        Evaluation { flag: Some(flag), enabled: false, variant: flag.off_variant.as_ref(), reason, rule_index: None, rule_id: None, error: None }
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
            return Evaluation { flag: Some(flag), enabled: true, variant, reason, rule_index: Some(ri), rule_id: rule.id.as_deref(), error: None };
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

#[inline]
fn pick_variant<'p>(list: &'p VariantList, ctx: &Context, inputs: EvalInputs, salt: u64) -> (Option<&'p CompiledVariant>, Pick) {
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
        Some(id) => normalize(&list.group, id, list.total, VARIANT_SEED),
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

#[inline]
fn rule_matches(rule: &CRule, ctx: &Context, inputs: EvalInputs, salt: u64) -> bool {
    let cond = match &rule.cond {
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
                    Ok(Some(id)) => rollout_position(hash_group_id(group, id, ROLLOUT_SEED)) <= *bp,
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
    };
    cond && rule.constraints.iter().all(|c| constraint_holds(c, ctx, inputs))
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
        (Op::Num { cmp, value }, Some(v)) => match v.trim().parse::<f64>() {
            Ok(n) if n.is_finite() => match n.partial_cmp(value) {
                Some(ord) => cmp.holds(ord),
                None => false,
            },
            _ => false,
        },
        (Op::Date { .. }, Some(_)) => false,
        (Op::Semver { cmp, version }, Some(v)) => match semver::Version::parse(v.trim()) {
            Ok(ctx_v) => cmp.holds(ctx_v.cmp_precedence(version)),
            Err(_) => false,
        },
        (Op::Regex(re), Some(v)) => re.is_match(v),
        (Op::Cidr(cidrs), Some(v)) => v.trim().parse::<IpAddr>().is_ok_and(|ip| cidrs.iter().any(|n| n.contains(&ip))),
    };
    raw != c.inverted
}

#[inline]
fn str_match(op: StrOp, values: &[Box<str>], v: &str, ci: bool) -> bool {
    if !ci {
        return values.iter().any(|p| match op {
            StrOp::Contains => v.contains(&**p),
            StrOp::StartsWith => v.starts_with(&**p),
            StrOp::EndsWith => v.ends_with(&**p),
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
