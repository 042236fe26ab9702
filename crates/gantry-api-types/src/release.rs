//! Maintenance mode and the release registry: wire types, and the one
//! allowlist check the server and the SDK share so both answer alike.

use std::collections::BTreeMap;

use gantry_engine::model::{Condition, EnvironmentConfig, Flag, Rule, Segment};
use gantry_engine::{CompileOptions, Context, EvalInputs, FlagSet, Plan};
use serde::{Deserialize, Serialize};

/// The synthetic flag that announces maintenance to clients that only know
/// flags (Unleash frontend SDKs, OFREP providers): on for a context that is
/// in maintenance (not on the allowlist), with the message as the payload of
/// its variant [`MAINTENANCE_VARIANT`].
pub const MAINTENANCE_FLAG: &str = "gantry.maintenance";
/// Variant name of [`MAINTENANCE_FLAG`] while it is on.
pub const MAINTENANCE_VARIANT: &str = "maintenance";
/// Key of the internal allowlist flag (never listed to clients).
const ALLOWLIST_FLAG: &str = "gantry.maintenance.allowlist";

/// Maintenance settings of one environment (the admin API body).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Maintenance {
    /// Whether maintenance mode is on.
    pub enabled: bool,
    /// What users are told (at most 1,000 characters).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    /// User ids (`userId` of the context) that keep full service.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub allow_users: Vec<String>,
    /// Segment ids: a context matching a segment's constraints keeps full service.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub allow_segments: Vec<u32>,
    /// When maintenance ends by itself (RFC 3339); absent: until switched off.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ends_at: Option<String>,
}

/// Maintenance settings as read back from the admin API.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MaintenanceResponse {
    /// Environment.
    pub environment: String,
    /// The settings.
    #[serde(flatten)]
    pub maintenance: Maintenance,
    /// In force now (`enabled` and `ends_at` not passed).
    pub active: bool,
    /// Optimistic-concurrency version (also the ETag; 0 = never set).
    pub version: i64,
    /// Last change (RFC 3339), absent when never set.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub updated_at: Option<String>,
}

/// Maintenance of one environment as SDKs receive it (stream snapshot and
/// `maintenance-updated` events).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct MaintenanceState {
    /// Switched on.
    pub enabled: bool,
    /// Message for users.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    /// Allowed user ids.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub allow_users: Vec<String>,
    /// Allowed segment ids.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub allow_segments: Vec<u32>,
    /// End (RFC 3339).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ends_at: Option<String>,
    /// End in milliseconds since the epoch (so clients need no date parser).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ends_at_ms: Option<i64>,
}

impl MaintenanceState {
    /// In force at `now_ms`: switched on and not past `ends_at`.
    pub fn active_at(&self, now_ms: i64) -> bool {
        self.enabled && self.ends_at_ms.is_none_or(|end| now_ms < end)
    }
}

/// Maintenance compiled for answering "is this context in maintenance?":
/// the allowlist becomes an internal flag (a user-id rule plus one rule per
/// segment) evaluated by the engine, so segment constraints mean exactly
/// what they mean in flag rules.
#[derive(Debug)]
pub struct CompiledMaintenance {
    /// The settings.
    pub state: MaintenanceState,
    plan: Plan,
}

impl CompiledMaintenance {
    /// Compiles the allowlist against the environment's segments.
    pub fn new(state: MaintenanceState, environment: &str, segments: &[Segment]) -> Self {
        let mut rules = Vec::new();
        if !state.allow_users.is_empty() {
            rules.push(Rule { condition: Condition::UserIds { ids: state.allow_users.clone() }, ..Default::default() });
        }
        // A segment that no longer exists allows nobody (and must not break the user list).
        for id in state.allow_segments.iter().filter(|id| segments.iter().any(|s| s.id == **id)) {
            rules.push(Rule { condition: Condition::All, segments: vec![*id], ..Default::default() });
        }
        // Without rules an enabled flag is on for everyone: an empty allowlist is off.
        let cfg = EnvironmentConfig { enabled: !rules.is_empty(), rules, ..Default::default() };
        let flag = Flag { key: ALLOWLIST_FLAG.into(), environments: BTreeMap::from([(environment.to_owned(), cfg)]), ..Default::default() };
        let used: Vec<Segment> = segments.iter().filter(|s| state.allow_segments.contains(&s.id)).cloned().collect();
        let plan = Plan::compile(&FlagSet { flags: vec![flag], segments: used }, &CompileOptions::for_environment(environment));
        CompiledMaintenance { state, plan }
    }

    /// Whether the context is on the allowlist.
    pub fn is_allowed(&self, ctx: &Context, inputs: EvalInputs) -> bool {
        self.plan.is_enabled(ALLOWLIST_FLAG, ctx, inputs)
    }

    /// Whether the context is in maintenance now: maintenance is in force
    /// and the context is not on the allowlist.
    pub fn applies_to(&self, ctx: &Context, inputs: EvalInputs) -> bool {
        self.state.active_at(inputs.now_millis) && !self.is_allowed(ctx, inputs)
    }
}

/// Public status of one environment (`GET /api/v1/status`): no allowlist.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EnvironmentStatus {
    /// Environment.
    pub name: String,
    /// Maintenance in force now.
    pub maintenance: bool,
    /// The maintenance message, while in force.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    /// When maintenance ends (RFC 3339), while in force.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ends_at: Option<String>,
}

/// The public status document.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StatusDocument {
    /// `pass` while serving, `fail` when shutting down or the store fails.
    pub status: String,
    /// Server version.
    pub version: String,
    /// Per environment.
    pub environments: Vec<EnvironmentStatus>,
}

/// `POST /api/v1/apps/{app}/releases`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RecordRelease {
    /// Version string (semantic versions are ordered as such).
    pub version: String,
    /// Environment it was deployed to (required with an admin token; a
    /// server token's own environment when absent).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub environment: Option<String>,
    /// Commit (hex, 4 to 64 digits).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub commit: Option<String>,
    /// Release notes (at most 10,000 characters).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub notes: Option<String>,
}

/// One recorded release.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Release {
    /// Record number, ascending in record order.
    pub id: i64,
    /// Application.
    pub app: String,
    /// Version.
    pub version: String,
    /// Environment.
    pub environment: String,
    /// Commit.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub commit: Option<String>,
    /// Notes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub notes: Option<String>,
    /// When it was recorded (RFC 3339).
    pub released_at: String,
    /// Who recorded it (audit actor).
    pub recorded_by: String,
}

/// `GET /api/v1/apps/{app}/version`: is there an update?
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VersionCheck {
    /// Application.
    pub app: String,
    /// Environment.
    pub environment: String,
    /// The latest version.
    pub latest: String,
    /// The caller's version, as given.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub current: Option<String>,
    /// Whether `latest` is newer than `current` (false without `current`).
    pub update_available: bool,
    /// When the latest version was recorded (RFC 3339).
    pub released_at: String,
    /// Its commit.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub commit: Option<String>,
    /// Its notes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub notes: Option<String>,
    /// `semver` when every recorded version is a semantic version, else `recorded` (record order).
    pub ordering: String,
}

#[cfg(test)]
mod tests {
    use gantry_engine::model::{Constraint, Operator};

    use super::*;

    fn staff(id: u32) -> Segment {
        Segment {
            id,
            name: None,
            description: None,
            constraints: vec![Constraint {
                context_name: "plan".into(),
                operator: Operator::In,
                values: vec!["staff".into()],
                value: None,
                inverted: false,
                case_insensitive: false,
            }],
        }
    }

    fn state(users: &[&str], segments: &[u32], ends_at_ms: Option<i64>) -> MaintenanceState {
        MaintenanceState {
            enabled: true,
            allow_users: users.iter().map(|u| (*u).to_owned()).collect(),
            allow_segments: segments.to_vec(),
            ends_at_ms,
            ..Default::default()
        }
    }

    #[test]
    fn allowlist_by_user_and_segment_until_the_end() {
        let m = CompiledMaintenance::new(state(&["alice"], &[7], Some(1_000)), "production", &[staff(7), staff(8)]);
        let at = |ms| EvalInputs::new(ms, 1);
        let bob = Context::new().with_user_id("bob");
        assert!(m.applies_to(&bob, at(999)));
        assert!(!m.applies_to(&Context::new().with_user_id("alice"), at(999)));
        assert!(!m.applies_to(&Context::new().with_user_id("carol").with_property("plan", "staff"), at(999)));
        assert!(m.applies_to(&Context::new(), at(0)), "an anonymous context is in maintenance");
        assert!(!m.applies_to(&bob, at(1_000)), "over at ends_at");
    }

    #[test]
    fn empty_allowlist_allows_nobody_and_a_missing_segment_keeps_the_user_list() {
        let m = CompiledMaintenance::new(state(&[], &[], None), "e", &[]);
        assert!(m.applies_to(&Context::new().with_user_id("x"), EvalInputs::new(0, 1)));
        let m = CompiledMaintenance::new(state(&["alice"], &[9], None), "e", &[]);
        assert!(!m.applies_to(&Context::new().with_user_id("alice"), EvalInputs::new(0, 1)));
        assert!(m.applies_to(&Context::new().with_user_id("bob").with_property("plan", "staff"), EvalInputs::new(0, 1)));
        let off = CompiledMaintenance::new(MaintenanceState::default(), "e", &[]);
        assert!(!off.applies_to(&Context::new(), EvalInputs::new(0, 1)));
    }
}
