//! The Unleash adapter: the client-features document (`/api/client/features`)
//! and delta events, converted to and from the native model.
//!
//! Mapping: a toggle becomes a boolean flag configured in one environment;
//! strategies become rules (`default` → all, `flexibleRollout` and the
//! `gradualRollout*` family → rollout, `userWithId` → user ids,
//! `remoteAddress`, `applicationHostname`; anything else is kept verbatim as a
//! custom rule that never matches); `dependencies` become prerequisites;
//! variants, payloads, overrides, segments and constraints map one to one.

use std::collections::BTreeMap;

use serde::{Deserialize, Deserializer, Serialize};

use crate::model::{
    Condition, Constraint, EnvironmentConfig, Flag, FlagKind, FlagSet, Operator, Override, Payload, Percentage, Prerequisite, Rollout,
    Rule, Segment, Stickiness, Variant,
};

/// A `/api/client/features` document.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ClientFeatures {
    /// Format version (Unleash sends 2).
    #[serde(default = "default_version")]
    pub version: u32,
    /// The toggles.
    pub features: Vec<ClientFeature>,
    /// Segments referenced by strategies.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub segments: Option<Vec<ClientSegment>>,
    /// Query echo.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub query: Option<serde_json::Value>,
    /// Revision metadata.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub meta: Option<serde_json::Value>,
}

fn default_version() -> u32 {
    2
}

/// One toggle.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ClientFeature {
    /// Toggle name.
    pub name: String,
    /// Toggle type (`release`, ...).
    #[serde(default, rename = "type", skip_serializing_if = "Option::is_none")]
    pub feature_type: Option<String>,
    /// Description.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// On in this environment.
    pub enabled: bool,
    /// Stale mark.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stale: Option<bool>,
    /// Emit impression events.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub impression_data: Option<bool>,
    /// Project.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub project: Option<String>,
    /// Activation strategies (OR).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub strategies: Option<Vec<ClientStrategy>>,
    /// Feature variants.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub variants: Option<Vec<ClientVariant>>,
    /// Parent toggles.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dependencies: Option<Vec<ClientDependency>>,
}

/// An activation strategy.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ClientStrategy {
    /// Strategy name.
    pub name: String,
    /// Admin-side id (Gantry keeps it as the rule id).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    /// Admin-side title.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
    /// Admin-side flag: disabled strategies are ignored.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub disabled: Option<bool>,
    /// Sort order (accepted, evaluation follows array order).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sort_order: Option<i64>,
    /// Parameters; numbers and booleans are read as strings.
    #[serde(default, deserialize_with = "string_map", skip_serializing_if = "Option::is_none")]
    pub parameters: Option<BTreeMap<String, String>>,
    /// Constraints (AND).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub constraints: Option<Vec<ClientConstraint>>,
    /// Segment ids.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub segments: Option<Vec<u32>>,
    /// Strategy variants.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub variants: Option<Vec<ClientVariant>>,
}

/// A constraint.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ClientConstraint {
    /// Context field.
    pub context_name: String,
    /// Operator name.
    pub operator: String,
    /// List operand.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub values: Option<Vec<String>>,
    /// Single operand.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<String>,
    /// Negation.
    #[serde(default)]
    pub inverted: bool,
    /// Case-insensitivity.
    #[serde(default)]
    pub case_insensitive: bool,
}

/// A feature or strategy variant.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ClientVariant {
    /// Name.
    pub name: String,
    /// Weight (of 1000).
    #[serde(default)]
    pub weight: u32,
    /// `variable` or `fix`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub weight_type: Option<String>,
    /// Stickiness.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stickiness: Option<String>,
    /// Payload.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub payload: Option<Payload>,
    /// Overrides (feature variants only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub overrides: Option<Vec<ClientOverride>>,
}

/// A variant override.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ClientOverride {
    /// Context field.
    pub context_name: String,
    /// Values.
    pub values: Vec<String>,
}

/// A dependency on a parent toggle.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ClientDependency {
    /// Parent name.
    pub feature: String,
    /// Expected parent state (default true).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub enabled: Option<bool>,
    /// Expected parent variants.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub variants: Option<Vec<String>>,
}

/// A segment.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ClientSegment {
    /// Id.
    pub id: u32,
    /// Name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Constraints.
    #[serde(default)]
    pub constraints: Vec<ClientConstraint>,
}

/// A delta event (`/api/client/delta`, streaming).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "kebab-case")]
pub enum DeltaEvent {
    /// Replace everything.
    #[serde(rename_all = "camelCase")]
    Hydration {
        /// Event id.
        event_id: u64,
        /// All features.
        features: Vec<ClientFeature>,
        /// All segments.
        #[serde(default)]
        segments: Vec<ClientSegment>,
    },
    /// Upsert a feature.
    #[serde(rename_all = "camelCase")]
    FeatureUpdated {
        /// Event id.
        event_id: u64,
        /// The feature.
        feature: ClientFeature,
    },
    /// Remove a feature.
    #[serde(rename_all = "camelCase")]
    FeatureRemoved {
        /// Event id.
        event_id: u64,
        /// Its name.
        feature_name: String,
        /// Its project.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        project: Option<String>,
    },
    /// Upsert a segment.
    #[serde(rename_all = "camelCase")]
    SegmentUpdated {
        /// Event id.
        event_id: u64,
        /// The segment.
        segment: ClientSegment,
    },
    /// Remove a segment.
    #[serde(rename_all = "camelCase")]
    SegmentRemoved {
        /// Event id.
        event_id: u64,
        /// Its id.
        segment_id: u32,
    },
}

/// A delta document: `{"events": [...]}`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ClientFeaturesDelta {
    /// Events, ordered by id.
    pub events: Vec<DeltaEvent>,
}

/// Either shape of Unleash state (the client-specification `state` field).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum UnleashState {
    /// A full document.
    Full(ClientFeatures),
    /// Delta events to apply to an empty state.
    Delta(ClientFeaturesDelta),
}

impl UnleashState {
    /// The full document this state describes (deltas applied to empty).
    pub fn into_full(self) -> ClientFeatures {
        match self {
            UnleashState::Full(f) => f,
            UnleashState::Delta(d) => {
                let mut f = ClientFeatures { version: 2, ..Default::default() };
                f.apply_delta(&d.events);
                f
            }
        }
    }
}

impl ClientFeatures {
    /// Applies delta events in order.
    pub fn apply_delta(&mut self, events: &[DeltaEvent]) {
        for e in events {
            match e {
                DeltaEvent::Hydration { features, segments, .. } => {
                    self.features = features.clone();
                    self.segments = Some(segments.clone());
                }
                DeltaEvent::FeatureUpdated { feature, .. } => match self.features.iter_mut().find(|f| f.name == feature.name) {
                    Some(slot) => *slot = feature.clone(),
                    None => self.features.push(feature.clone()),
                },
                DeltaEvent::FeatureRemoved { feature_name, .. } => self.features.retain(|f| &f.name != feature_name),
                DeltaEvent::SegmentUpdated { segment, .. } => {
                    let segs = self.segments.get_or_insert_with(Vec::new);
                    match segs.iter_mut().find(|s| s.id == segment.id) {
                        Some(slot) => *slot = segment.clone(),
                        None => segs.push(segment.clone()),
                    }
                }
                DeltaEvent::SegmentRemoved { segment_id, .. } => {
                    if let Some(segs) = &mut self.segments {
                        segs.retain(|s| s.id != *segment_id);
                    }
                }
            }
        }
    }
}

fn string_map<'de, D: Deserializer<'de>>(d: D) -> Result<Option<BTreeMap<String, String>>, D::Error> {
    let raw: Option<BTreeMap<String, serde_json::Value>> = Option::deserialize(d)?;
    Ok(raw.map(|m| {
        m.into_iter()
            .filter_map(|(k, v)| {
                let s = match v {
                    serde_json::Value::String(s) => s,
                    serde_json::Value::Null => return None,
                    other => other.to_string(),
                };
                Some((k, s))
            })
            .collect()
    }))
}

// === Unleash -> native ===

/// Converts a client-features document to a native flag set, placing each
/// toggle's configuration under environment `env`.
pub fn to_native(doc: &ClientFeatures, env: &str) -> FlagSet {
    let flags = doc.features.iter().map(|f| feature_to_native(f, env)).collect();
    let segments = doc
        .segments
        .iter()
        .flatten()
        .map(|s| Segment {
            id: s.id,
            name: s.name.clone(),
            description: None,
            constraints: s.constraints.iter().map(constraint_to_native).collect(),
        })
        .collect();
    FlagSet { flags, segments }
}

/// Converts one toggle (see [`to_native`]).
pub fn feature_to_native(f: &ClientFeature, env: &str) -> Flag {
    let rules = f.strategies.iter().flatten().filter(|s| s.disabled != Some(true)).map(|s| strategy_to_rule(s, &f.name)).collect();
    let prerequisites = f
        .dependencies
        .iter()
        .flatten()
        .map(|d| Prerequisite {
            flag: d.feature.clone(),
            enabled: d.enabled.unwrap_or(true),
            variants: d.variants.clone().unwrap_or_default(),
        })
        .collect();
    let config = EnvironmentConfig { enabled: f.enabled, prerequisites, rules, fallthrough: None, off_variant: None, variants: None };
    Flag {
        key: f.name.clone(),
        kind: FlagKind::Boolean,
        description: f.description.clone(),
        tags: Vec::new(),
        project: f.project.clone(),
        flag_type: f.feature_type.clone(),
        impression_data: f.impression_data.unwrap_or(false),
        stale: f.stale.unwrap_or(false),
        variants: f.variants.iter().flatten().map(variant_to_native).collect(),
        environments: BTreeMap::from([(env.to_owned(), config)]),
    }
}

fn variant_to_native(v: &ClientVariant) -> Variant {
    Variant {
        name: v.name.clone(),
        weight: v.weight,
        weight_type: v.weight_type.clone(),
        stickiness: v.stickiness.clone(),
        payload: v.payload.clone(),
        overrides: v
            .overrides
            .iter()
            .flatten()
            .map(|o| Override { context_name: o.context_name.clone(), values: o.values.clone() })
            .collect(),
    }
}

fn constraint_to_native(c: &ClientConstraint) -> Constraint {
    Constraint {
        context_name: c.context_name.clone(),
        operator: Operator::parse(&c.operator),
        values: c.values.clone().unwrap_or_default(),
        value: c.value.clone(),
        inverted: c.inverted,
        case_insensitive: c.case_insensitive,
    }
}

fn strategy_to_rule(s: &ClientStrategy, flag: &str) -> Rule {
    let empty = BTreeMap::new();
    let p = s.parameters.as_ref().unwrap_or(&empty);
    let get = |k: &str| p.get(k).map(String::as_str);
    let list = |k: &str| {
        get(k).map(|v| v.split(',').map(|x| x.trim().to_owned()).filter(|x| !x.is_empty()).collect::<Vec<_>>()).unwrap_or_default()
    };
    let custom = || Condition::Custom { name: s.name.clone(), parameters: p.clone() };
    let whole_percent = |v: Option<&str>| v.and_then(|v| v.trim().parse::<u32>().ok()).and_then(|n| Percentage::from_basis_points(n * 100));
    let condition = match s.name.as_str() {
        "default" => Condition::All,
        "flexibleRollout" => match get("rollout").map(Percentage::parse) {
            Some(Some(pct)) => Condition::Rollout(Rollout {
                percentage: pct,
                stickiness: Stickiness::parse(get("stickiness").unwrap_or("default")),
                group_id: get("groupId").filter(|g| !g.is_empty() && *g != flag).map(str::to_owned),
            }),
            _ => custom(),
        },
        name @ ("gradualRolloutUserId" | "gradualRolloutSessionId") => match (whole_percent(get("percentage")), get("groupId")) {
            (Some(pct), Some(group)) => Condition::Rollout(Rollout {
                percentage: pct,
                stickiness: Stickiness::Field(if name == "gradualRolloutUserId" { "userId" } else { "sessionId" }.into()),
                group_id: Some(group.to_owned()).filter(|g| g != flag),
            }),
            _ => custom(),
        },
        "gradualRolloutRandom" => match whole_percent(get("percentage")) {
            Some(pct) => Condition::Rollout(Rollout {
                percentage: pct,
                stickiness: Stickiness::Random,
                group_id: get("groupId").map(str::to_owned).filter(|g| g != flag),
            }),
            None => custom(),
        },
        "userWithId" => Condition::UserIds { ids: list("userIds") },
        "remoteAddress" => Condition::RemoteAddress { ips: list("IPs") },
        "applicationHostname" => Condition::Hostnames { names: list("hostNames") },
        _ => custom(),
    };
    Rule {
        id: s.id.clone(),
        title: s.title.clone(),
        condition,
        constraints: s.constraints.iter().flatten().map(constraint_to_native).collect(),
        segments: s.segments.clone().unwrap_or_default(),
        variants: s.variants.iter().flatten().map(variant_to_native).collect(),
    }
}

// === native -> Unleash ===

/// Renders the native set as the client-features document for `env`
/// (what `/api/client/features` serves). Flags without configuration in
/// `env` are sent disabled.
pub fn from_native(set: &FlagSet, env: &str) -> ClientFeatures {
    let features = set.flags.iter().map(|f| feature_from_native(f, env)).collect();
    let segments = set
        .segments
        .iter()
        .map(|s| ClientSegment { id: s.id, name: s.name.clone(), constraints: s.constraints.iter().map(constraint_from_native).collect() })
        .collect();
    ClientFeatures { version: 2, features, segments: Some(segments), query: None, meta: None }
}

/// Renders one flag for `env` (see [`from_native`]).
pub fn feature_from_native(f: &Flag, env: &str) -> ClientFeature {
    let cfg = f.environments.get(env);
    let variants = cfg.and_then(|c| c.variants.as_ref()).unwrap_or(&f.variants);
    let mut strategies: Vec<ClientStrategy> =
        cfg.map(|c| c.rules.iter().map(|r| rule_to_strategy(r, &f.key)).collect()).unwrap_or_default();
    // Native fallthrough "on" after rules: Unleash expresses it as a final default strategy.
    if let Some(c) = cfg {
        if matches!(c.fallthrough, Some(crate::model::Serve::On)) && !c.rules.is_empty() {
            strategies.push(ClientStrategy {
                name: "default".into(),
                parameters: Some(BTreeMap::new()),
                constraints: Some(vec![]),
                ..Default::default()
            });
        }
    }
    ClientFeature {
        name: f.key.clone(),
        feature_type: f.flag_type.clone(),
        description: f.description.clone(),
        enabled: cfg.is_some_and(|c| c.enabled),
        stale: Some(f.stale),
        impression_data: Some(f.impression_data),
        project: f.project.clone(),
        strategies: Some(strategies),
        variants: Some(variants.iter().map(variant_from_native).collect()),
        dependencies: cfg.map(|c| {
            c.prerequisites
                .iter()
                .map(|p| ClientDependency {
                    feature: p.flag.clone(),
                    enabled: Some(p.enabled),
                    variants: (p.enabled && !p.variants.is_empty()).then(|| p.variants.clone()),
                })
                .collect()
        }),
    }
}

fn variant_from_native(v: &Variant) -> ClientVariant {
    ClientVariant {
        name: v.name.clone(),
        weight: v.weight,
        weight_type: v.weight_type.clone(),
        stickiness: v.stickiness.clone(),
        payload: v.payload.clone(),
        overrides: (!v.overrides.is_empty()).then(|| {
            v.overrides.iter().map(|o| ClientOverride { context_name: o.context_name.clone(), values: o.values.clone() }).collect()
        }),
    }
}

fn constraint_from_native(c: &Constraint) -> ClientConstraint {
    ClientConstraint {
        context_name: c.context_name.clone(),
        operator: c.operator.as_str().to_owned(),
        values: (!c.values.is_empty() || !c.operator.is_single_value()).then(|| c.values.clone()),
        value: c.value.clone(),
        inverted: c.inverted,
        case_insensitive: c.case_insensitive,
    }
}

fn rule_to_strategy(r: &Rule, flag: &str) -> ClientStrategy {
    let (name, parameters): (String, BTreeMap<String, String>) = match &r.condition {
        Condition::All => ("default".into(), BTreeMap::new()),
        Condition::Rollout(ro) => (
            "flexibleRollout".into(),
            BTreeMap::from([
                ("rollout".to_owned(), ro.percentage.to_string()),
                ("stickiness".to_owned(), ro.stickiness.as_str().to_owned()),
                ("groupId".to_owned(), ro.group_id.clone().unwrap_or_else(|| flag.to_owned())),
            ]),
        ),
        Condition::UserIds { ids } => ("userWithId".into(), BTreeMap::from([("userIds".to_owned(), ids.join(","))])),
        Condition::RemoteAddress { ips } => ("remoteAddress".into(), BTreeMap::from([("IPs".to_owned(), ips.join(","))])),
        Condition::Hostnames { names } => ("applicationHostname".into(), BTreeMap::from([("hostNames".to_owned(), names.join(","))])),
        Condition::Custom { name, parameters } => (name.clone(), parameters.clone()),
    };
    let mut segments = r.segments.clone();
    segments.sort_unstable();
    ClientStrategy {
        name,
        id: r.id.clone(),
        title: r.title.clone(),
        disabled: None,
        sort_order: None,
        parameters: Some(parameters),
        constraints: Some(r.constraints.iter().map(constraint_from_native).collect()),
        segments: Some(segments),
        variants: Some(r.variants.iter().map(variant_from_native).collect()),
    }
}
