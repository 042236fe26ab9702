//! The native flag model: what is stored, exported and sent to SDKs.
//!
//! These types are plain serde data with no behaviour beyond small helpers.
//! Evaluation never runs on them directly: [`crate::Plan::compile`] turns a
//! [`FlagSet`] into an evaluation-ready form first.

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// A whole configuration: every flag plus the segments they reference.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FlagSet {
    /// Flags, in a stable order (evaluate-all answers in this order).
    #[serde(default)]
    pub flags: Vec<Flag>,
    /// Reusable constraint groups, referenced from rules by id.
    #[serde(default)]
    pub segments: Vec<Segment>,
}

/// The type of value a flag serves.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum FlagKind {
    /// On/off; the value is whether the flag is enabled for the context.
    #[default]
    Boolean,
    /// The value is the selected variant's string payload.
    String,
    /// The value is the selected variant's numeric payload.
    Number,
    /// The value is the selected variant's JSON payload.
    Json,
}

/// One feature flag with its configuration per environment.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Flag {
    /// Unique key, used by every API and SDK.
    pub key: String,
    /// The type of value served.
    #[serde(default)]
    pub kind: FlagKind,
    /// Free text for humans.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// Tags (`type:value` or plain words) for search and filtering.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tags: Vec<String>,
    /// Project the flag belongs to (`default` when absent).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub project: Option<String>,
    /// Unleash flag type (`release`, `experiment`, `kill-switch`, ...).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub flag_type: Option<String>,
    /// Whether SDKs should emit impression events for this flag.
    #[serde(default, skip_serializing_if = "is_false")]
    pub impression_data: bool,
    /// Marked stale by its owners.
    #[serde(default, skip_serializing_if = "is_false")]
    pub stale: bool,
    /// The variants the flag can serve, in selection order.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub variants: Vec<Variant>,
    /// Configuration per environment name. A flag without an entry for an
    /// environment is disabled there.
    #[serde(default)]
    pub environments: BTreeMap<String, EnvironmentConfig>,
}

/// How a flag behaves in one environment.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EnvironmentConfig {
    /// The kill switch: `false` serves the off value whatever else is set.
    #[serde(default)]
    pub enabled: bool,
    /// Flags that must be in a given state first.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub prerequisites: Vec<Prerequisite>,
    /// Ordered rules; the first that matches decides.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub rules: Vec<Rule>,
    /// What is served when no rule matches. `None` follows Unleash: on when
    /// there are no rules, off when there are rules and none matched.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fallthrough: Option<Serve>,
    /// The variant whose value is served when the flag is off (kill switch,
    /// unmet prerequisite, no match). For non-boolean flags without one, the
    /// caller's code default applies.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub off_variant: Option<String>,
    /// Replaces the flag's variants in this environment when set.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub variants: Option<Vec<Variant>>,
}

/// What to serve when no rule matched.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum Serve {
    /// The flag is off for this context.
    Off,
    /// The flag is on; the variant is picked from the flag's weighted variants.
    On,
    /// The flag is on and serves this variant.
    Variant(String),
}

/// A parent flag that must be in a given state.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Prerequisite {
    /// Key of the parent flag.
    pub flag: String,
    /// Whether the parent must be on (`true`) or off (`false`).
    #[serde(default = "default_true")]
    pub enabled: bool,
    /// When non-empty and `enabled` is true, the parent's variant must be one of these.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub variants: Vec<String>,
}

/// One targeting rule: who matches, what share of them, and what they get.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Rule {
    /// Stable identifier, reported as the matched rule.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    /// Human title.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
    /// The rule's built-in condition.
    #[serde(default)]
    pub condition: Condition,
    /// All must hold.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub constraints: Vec<Constraint>,
    /// Ids of segments whose constraints must all hold.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub segments: Vec<u32>,
    /// Rule-level variants; when empty the flag's variants are used.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub variants: Vec<Variant>,
}

/// The built-in part of a rule (an Unleash strategy).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum Condition {
    /// Everyone (who passes the constraints).
    #[default]
    All,
    /// A sticky percentage of contexts.
    Rollout(Rollout),
    /// Individual targeting: these user ids, exactly.
    UserIds {
        /// The user ids.
        ids: Vec<String>,
    },
    /// The context's `remoteAddress` is one of these IPs or inside one of these CIDRs.
    RemoteAddress {
        /// IPs or CIDRs; invalid entries are ignored.
        ips: Vec<String>,
    },
    /// The evaluating host's name is one of these (case-insensitive).
    Hostnames {
        /// Host names.
        names: Vec<String>,
    },
    /// A strategy this engine does not implement; it never matches.
    Custom {
        /// Strategy name.
        name: String,
        /// Its parameters, verbatim.
        #[serde(default)]
        parameters: BTreeMap<String, String>,
    },
}

/// A sticky percentage rollout.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Rollout {
    /// Share of contexts that match.
    pub percentage: Percentage,
    /// What identifies a context for bucketing.
    #[serde(default)]
    pub stickiness: Stickiness,
    /// Hash group; defaults to the flag key. Two rules with the same group
    /// and stickiness bucket a context identically.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub group_id: Option<String>,
}

/// A percentage in basis points (0..=10 000, i.e. 0.01 % steps).
///
/// On the wire it is a decimal number of percent (`25`, `12.5`, `0.01`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Percentage(u16);

impl Percentage {
    /// 100 %.
    pub const FULL: Percentage = Percentage(10_000);
    /// 0 %.
    pub const ZERO: Percentage = Percentage(0);

    /// From basis points; `None` above 10 000.
    pub fn from_basis_points(bp: u32) -> Option<Self> {
        (bp <= 10_000).then_some(Percentage(bp as u16))
    }

    /// The value in basis points.
    pub fn basis_points(self) -> u32 {
        u32::from(self.0)
    }

    /// Parses a decimal percent (`"25"`, `"12.5"`, `" 7 "`); at most two decimals.
    pub fn parse(s: &str) -> Option<Self> {
        let s = s.trim();
        let (int, frac) = match s.split_once('.') {
            Some((i, f)) => (i, f),
            None => (s, ""),
        };
        if int.is_empty() || !int.bytes().all(|b| b.is_ascii_digit()) || int.len() > 3 {
            return None;
        }
        if frac.len() > 2 || !frac.bytes().all(|b| b.is_ascii_digit()) || (s.ends_with('.')) {
            return None;
        }
        let whole: u32 = int.parse().ok()?;
        let mut f: u32 = if frac.is_empty() { 0 } else { frac.parse().ok()? };
        if frac.len() == 1 {
            f *= 10;
        }
        Self::from_basis_points(whole * 100 + f)
    }

    /// From a floating-point percent, rounded to the nearest basis point.
    pub fn from_percent_f64(p: f64) -> Option<Self> {
        if !p.is_finite() || !(0.0..=100.0).contains(&p) {
            return None;
        }
        Self::from_basis_points((p * 100.0).round() as u32)
    }
}

impl fmt::Display for Percentage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (w, r) = (self.0 / 100, self.0 % 100);
        if r == 0 {
            write!(f, "{w}")
        } else if r % 10 == 0 {
            write!(f, "{w}.{}", r / 10)
        } else {
            write!(f, "{w}.{r:02}")
        }
    }
}

impl Serialize for Percentage {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        if self.0.is_multiple_of(100) {
            s.serialize_u32(u32::from(self.0 / 100))
        } else {
            s.serialize_f64(f64::from(self.0) / 100.0)
        }
    }
}

impl<'de> Deserialize<'de> for Percentage {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            N(f64),
            S(String),
        }
        let parsed = match Raw::deserialize(d)? {
            Raw::N(n) => Percentage::from_percent_f64(n),
            Raw::S(s) => Percentage::parse(&s),
        };
        parsed.ok_or_else(|| serde::de::Error::custom("percentage must be a number from 0 to 100 with at most two decimals"))
    }
}

/// What identifies a context for sticky bucketing.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default)]
pub enum Stickiness {
    /// `userId`, else `sessionId`, else random (Unleash `default`).
    #[default]
    Default,
    /// A fresh random bucket per evaluation.
    Random,
    /// A named context field or property; a context without it does not match.
    Field(String),
}

impl Stickiness {
    /// Parses the Unleash spelling (`default`, `random`, or a field name).
    pub fn parse(s: &str) -> Self {
        match s {
            "" | "default" => Stickiness::Default,
            "random" => Stickiness::Random,
            other => Stickiness::Field(other.to_owned()),
        }
    }

    /// The Unleash spelling.
    pub fn as_str(&self) -> &str {
        match self {
            Stickiness::Default => "default",
            Stickiness::Random => "random",
            Stickiness::Field(f) => f,
        }
    }
}

impl Serialize for Stickiness {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for Stickiness {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Ok(Stickiness::parse(&String::deserialize(d)?))
    }
}

/// A condition on one context field.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Constraint {
    /// Context field (`userId`, `sessionId`, `remoteAddress`, `environment`,
    /// `appName`, `currentTime`) or custom property name.
    pub context_name: String,
    /// The comparison.
    pub operator: Operator,
    /// Operands of list operators (IN, STR_*, IN_CIDR).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub values: Vec<String>,
    /// Operand of single-value operators (NUM_*, DATE_*, SEMVER_*, REGEX).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<String>,
    /// Negates the result (also when the field is missing).
    #[serde(default, skip_serializing_if = "is_false")]
    pub inverted: bool,
    /// Case-insensitive comparison for STR_* and REGEX.
    #[serde(default, skip_serializing_if = "is_false")]
    pub case_insensitive: bool,
}

/// Constraint operators (the Unleash set, spelled as Unleash spells them).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Operator {
    /// Equal to one of `values`.
    In,
    /// Missing, or equal to none of `values`.
    NotIn,
    /// Contains one of `values`.
    StrContains,
    /// Starts with one of `values`.
    StrStartsWith,
    /// Ends with one of `values`.
    StrEndsWith,
    /// Numerically equal.
    NumEq,
    /// Numerically greater.
    NumGt,
    /// Numerically greater or equal.
    NumGte,
    /// Numerically less.
    NumLt,
    /// Numerically less or equal.
    NumLte,
    /// Strictly later instant.
    DateAfter,
    /// Strictly earlier instant.
    DateBefore,
    /// Equal SemVer precedence.
    SemverEq,
    /// Greater SemVer precedence.
    SemverGt,
    /// Greater or equal SemVer precedence.
    SemverGte,
    /// Lower SemVer precedence.
    SemverLt,
    /// Lower or equal SemVer precedence.
    SemverLte,
    /// RE2-style regular expression search.
    Regex,
    /// IP inside one of the CIDRs.
    InCidr,
    /// An operator this engine does not know; the flag compiles to an error.
    Unknown(String),
}

impl Operator {
    const TABLE: [(&'static str, Operator); 19] = [
        ("IN", Operator::In),
        ("NOT_IN", Operator::NotIn),
        ("STR_CONTAINS", Operator::StrContains),
        ("STR_STARTS_WITH", Operator::StrStartsWith),
        ("STR_ENDS_WITH", Operator::StrEndsWith),
        ("NUM_EQ", Operator::NumEq),
        ("NUM_GT", Operator::NumGt),
        ("NUM_GTE", Operator::NumGte),
        ("NUM_LT", Operator::NumLt),
        ("NUM_LTE", Operator::NumLte),
        ("DATE_AFTER", Operator::DateAfter),
        ("DATE_BEFORE", Operator::DateBefore),
        ("SEMVER_EQ", Operator::SemverEq),
        ("SEMVER_GT", Operator::SemverGt),
        ("SEMVER_GTE", Operator::SemverGte),
        ("SEMVER_LT", Operator::SemverLt),
        ("SEMVER_LTE", Operator::SemverLte),
        ("REGEX", Operator::Regex),
        ("IN_CIDR", Operator::InCidr),
    ];

    /// Parses the Unleash spelling; anything else is [`Operator::Unknown`].
    pub fn parse(s: &str) -> Self {
        Self::TABLE.iter().find(|(name, _)| *name == s).map(|(_, op)| op.clone()).unwrap_or_else(|| Operator::Unknown(s.to_owned()))
    }

    /// The Unleash spelling.
    pub fn as_str(&self) -> &str {
        if let Operator::Unknown(s) = self {
            return s;
        }
        Self::TABLE.iter().find(|(_, op)| op == self).map(|(n, _)| *n).unwrap_or("")
    }

    /// Whether the operator reads `value` (single) rather than `values` (list).
    pub fn is_single_value(&self) -> bool {
        matches!(
            self,
            Operator::NumEq
                | Operator::NumGt
                | Operator::NumGte
                | Operator::NumLt
                | Operator::NumLte
                | Operator::DateAfter
                | Operator::DateBefore
                | Operator::SemverEq
                | Operator::SemverGt
                | Operator::SemverGte
                | Operator::SemverLt
                | Operator::SemverLte
                | Operator::Regex
        )
    }
}

impl Serialize for Operator {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for Operator {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Ok(Operator::parse(&String::deserialize(d)?))
    }
}

/// A value a flag can serve, with its weight in splits.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Variant {
    /// Name, unique within its list; reported as the OFREP `variant`.
    pub name: String,
    /// Relative weight in a split (Unleash uses a total of 1000).
    #[serde(default)]
    pub weight: u32,
    /// `variable` or `fix` (authoring hint kept for Unleash round trips).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub weight_type: Option<String>,
    /// Bucketing field for this variant list (read from the first variant).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stickiness: Option<String>,
    /// The typed payload.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub payload: Option<Payload>,
    /// Contexts that get this variant outright.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub overrides: Vec<Override>,
}

/// A variant payload. The value is text, typed by `kind`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Payload {
    /// `string`, `json`, `csv` or `number`.
    #[serde(rename = "type")]
    pub kind: String,
    /// The payload text.
    pub value: String,
}

/// Assigns a variant to contexts whose field has one of the values.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Override {
    /// Context field or property.
    pub context_name: String,
    /// Values that select the variant.
    pub values: Vec<String>,
}

/// A named, reusable group of constraints.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Segment {
    /// Numeric id (rules reference it).
    pub id: u32,
    /// Name for humans.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Free text.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// All must hold.
    #[serde(default)]
    pub constraints: Vec<Constraint>,
}

fn default_true() -> bool {
    true
}

fn is_false(b: &bool) -> bool {
    !*b
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentage_parses_and_prints() {
        for (s, bp) in [("0", 0), ("25", 2500), ("12.5", 1250), ("0.01", 1), ("100", 10_000), (" 7 ", 700)] {
            assert_eq!(Percentage::parse(s).map(Percentage::basis_points), Some(bp), "{s}");
        }
        for bad in ["", "-1", "101", "1.234", "abc", "1.", ".5", "1e2"] {
            assert_eq!(Percentage::parse(bad), None, "{bad}");
        }
        assert_eq!(Percentage::parse("12.5").map(|p| p.to_string()).as_deref(), Some("12.5"));
        assert_eq!(Percentage::parse("0.01").map(|p| p.to_string()).as_deref(), Some("0.01"));
    }

    #[test]
    fn operators_round_trip_their_names() {
        for (name, op) in Operator::TABLE.iter() {
            assert_eq!(&Operator::parse(name), op);
            assert_eq!(op.as_str(), *name);
        }
        assert_eq!(Operator::parse("NOPE"), Operator::Unknown("NOPE".into()));
    }
}
