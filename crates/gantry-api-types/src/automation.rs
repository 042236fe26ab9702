//! Release automation on the wire (issue #5): rollouts.
//!
//! Plans, states and transitions travel in `gantry-release`'s own serde model,
//! as flag definitions travel in the engine's.

use std::collections::BTreeMap;

use gantry_release::rollout::{RolloutPlan, RolloutState, Transition};
use gantry_release::Timestamp;
use serde::{Deserialize, Serialize};

/// Where a guardrail's measurements come from.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum GuardrailSource {
    /// Gantry's own track events (`POST /api/v1/events`) tagged with the rollout's flag and a
    /// variant: `request` events count requests, `error` events count failed requests, the
    /// values of `latency` events (ms) give the p95 per arm. Events whose variant is
    /// `disabled`, `off` or `control` belong to the control arm, any other variant to the
    /// rollout arm. Error-rate and arm-value guardrails only.
    #[default]
    Events,
    /// A Prometheus instant query (`GET {url}/api/v1/query`): the value of its single sample
    /// or scalar is the measurement (scalar guardrails); an empty result is no data, more than
    /// one series an error.
    Prometheus {
        /// Base URL of the Prometheus server.
        url: String,
        /// PromQL, aggregated to one series.
        query: String,
        /// Request timeout (default 5 s).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        timeout_ms: Option<u64>,
    },
    /// An HTTP health probe of a service URL (`application/health+json` understood); the
    /// measurement is 1 while the target is unhealthy and 0 while healthy (scalar guardrails,
    /// e.g. `> 0.5`), no data until the thresholds decide.
    Probe {
        /// The URL probed with GET.
        url: String,
        /// Interval, timeout and thresholds.
        #[serde(flatten)]
        spec: gantry_release::probe::ProbeSpec,
    },
}

/// Body of `POST /api/v1/rollouts`: a plan, started at once unless `start` is false.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CreateRolloutRequest {
    /// The plan (target flag and environment, steps, guardrails, failure handling).
    #[serde(flatten)]
    pub plan: RolloutPlan,
    /// Source per guardrail name; guardrails not listed use [`GuardrailSource::Events`].
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub sources: BTreeMap<String, GuardrailSource>,
    /// Start walking the steps now (default true); otherwise `pending` until `resume`/`promote`.
    #[serde(default = "yes")]
    pub start: bool,
}

fn yes() -> bool {
    true
}

/// Optional body of `POST /api/v1/rollouts/{environment}/{flag}/promote`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PromoteRequest {
    /// Skip every remaining step.
    #[serde(default)]
    pub full: bool,
    /// The step the caller saw; a mismatch is rejected (a stale double-click).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expected_step: Option<usize>,
}

/// A rollout as the admin API shows it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RolloutResponse {
    /// `environment/flag`.
    pub key: String,
    /// The plan.
    pub plan: RolloutPlan,
    /// Guardrail sources by guardrail name (absent: events).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub sources: BTreeMap<String, GuardrailSource>,
    /// Where it stands.
    pub state: RolloutState,
    /// When the controller can next change something by itself (a hold ends, a guardrail is due).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_wakeup: Option<Timestamp>,
    /// Optimistic-concurrency version (also the ETag); +1 per audited change.
    pub version: i64,
    /// Creation time (RFC 3339).
    pub created_at: String,
    /// Last audited change (RFC 3339).
    pub updated_at: String,
}

/// A rollout transition on the event stream.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RolloutNotice {
    /// Flag key.
    pub flag: String,
    /// Environment.
    pub environment: String,
    /// Who caused it (`rollout-controller`, or the token id of a human).
    pub actor: String,
    /// The transition.
    pub transition: Transition,
}

/// One step of a calendar ramp.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct RampStep {
    /// When (ms since the epoch).
    pub at: Timestamp,
    /// The share from then on.
    pub percentage: gantry_release::Percentage,
}

/// Body of `POST /api/v1/schedules`: timed changes of one flag in one environment, given
/// either as `changes` (enable, disable, set_percentage at a time) or as a calendar `ramp`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreateScheduleRequest {
    /// Unique key of the schedule.
    pub key: String,
    /// The flag (and rule) changed.
    pub target: gantry_release::rollout::RolloutTarget,
    /// Timed changes, in time order.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub changes: Vec<gantry_release::schedule::ScheduledChange>,
    /// A calendar ramp: increasing times, non-decreasing percentages.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub ramp: Vec<RampStep>,
}

/// A schedule as the admin API shows it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ScheduleResponse {
    /// Key.
    pub key: String,
    /// The changes.
    pub schedule: gantry_release::schedule::Schedule,
    /// Time of the last change applied.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_applied: Option<Timestamp>,
    /// When the next change falls due.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_at: Option<Timestamp>,
    /// Version (ETag).
    pub version: i64,
    /// Created (RFC 3339).
    pub created_at: String,
    /// Last audited change (RFC 3339).
    pub updated_at: String,
}

/// What an alert rule watches: a flag in an environment, through a source.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AlertTarget {
    /// Flag key (events are tagged with it).
    pub flag: String,
    /// Environment.
    pub environment: String,
}

/// Body of `POST /api/v1/alert-rules` (and the rule part of its answer).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AlertRuleRequest {
    /// The rule (its `name` is the key).
    #[serde(flatten)]
    pub rule: gantry_release::alert::AlertRule,
    /// What it watches.
    pub target: AlertTarget,
    /// Where measurements come from (default: events, rollout arm).
    #[serde(default)]
    pub source: GuardrailSource,
}

/// An alert rule with its state.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AlertRuleResponse {
    /// Definition.
    #[serde(flatten)]
    pub definition: AlertRuleRequest,
    /// inactive, pending, firing or resolved, with times and the last value.
    pub state: gantry_release::alert::AlertState,
    /// Version (ETag).
    pub version: i64,
}

/// Payload format of a notifier.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum NotifierKind {
    /// Generic webhook with Alertmanager's v4 body.
    Webhook,
    /// Slack incoming webhook.
    Slack,
}

/// Body of `POST /api/v1/notifiers`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NotifierRequest {
    /// Unique key (also the `receiver` in webhook bodies).
    pub key: String,
    /// Payload format.
    pub kind: NotifierKind,
    /// Where to POST.
    pub url: String,
    /// Grouping and timing (defaults as Alertmanager: 30 s, 5 min, 4 h).
    #[serde(default)]
    pub policy: gantry_release::notify::GroupPolicy,
    /// Delivery retries (429 `Retry-After` honoured).
    #[serde(default)]
    pub retry: gantry_release::notify::RetryPolicy,
}

/// A notifier as listed (the URL reduced to its origin: webhook URLs are often secrets).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NotifierResponse {
    /// Key.
    pub key: String,
    /// Format.
    pub kind: NotifierKind,
    /// Scheme and host of the URL.
    pub url_origin: String,
    /// Grouping.
    pub policy: gantry_release::notify::GroupPolicy,
    /// Notifications delivered since start.
    pub delivered: u64,
    /// Notifications given up since start.
    pub failed: u64,
    /// Version (ETag).
    pub version: i64,
}

/// What an inbound trigger does when its URL is called.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum TriggerAction {
    /// Turn the flag off in the environment (kill switch).
    DisableFlag {
        /// Flag key.
        flag: String,
        /// Environment.
        environment: String,
    },
    /// Turn the flag on in the environment.
    EnableFlag {
        /// Flag key.
        flag: String,
        /// Environment.
        environment: String,
    },
    /// Abort the flag's rollout in the environment.
    AbortRollout {
        /// Flag key.
        flag: String,
        /// Environment.
        environment: String,
    },
}

/// Body of `POST /api/v1/triggers`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreateTriggerRequest {
    /// A label (audit actor `trigger:<name>`).
    pub name: String,
    /// What calling the URL does.
    pub action: TriggerAction,
}

/// A trigger as listed (never its secret).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TriggerResponse {
    /// Id.
    pub id: String,
    /// Label.
    pub name: String,
    /// Action.
    pub action: TriggerAction,
    /// Displayable start of the secret.
    pub prefix: String,
    /// Times fired.
    pub fired: u64,
    /// Last firing (ms since the epoch).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_fired_at: Option<Timestamp>,
    /// Version (ETag).
    pub version: i64,
}

/// Answer of `POST /api/v1/triggers`: the secret URL, shown once (stored hashed).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CreatedTrigger {
    /// The trigger.
    #[serde(flatten)]
    pub trigger: TriggerResponse,
    /// The secret.
    pub secret: String,
    /// Path to POST to (no token needed): `/api/v1/triggers/hook/<secret>`.
    pub path: String,
}
