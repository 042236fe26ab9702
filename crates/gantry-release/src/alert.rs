//! Alert rules over the same measurements as guardrails, with Prometheus' state machine:
//! inactive → pending (breach shorter than `for`) → firing → resolved (delivery.md §4.1).
//!
//! Differences from Prometheus, on purpose: a measurement error leaves the state unchanged
//! (Prometheus skips the evaluation too, but also logs a rule-health error, which the server
//! should do from [`Verdict::Error`]); resolved instances stay `resolved` for
//! `resolved_retention_ms` (15 min) so the notifier can still send the resolved notice.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::guardrail::{Check, MeasureState, Measurement, Verdict};
use crate::time::{MINUTE_MS, SECOND_MS};
use crate::{Effect, ReleaseError, Timestamp};

/// An action taken when an alert starts firing.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum AlertAction {
    /// Abort the rollout of this flag in this environment.
    AbortRollout {
        /// Flag key.
        flag: String,
        /// Environment name.
        environment: String,
    },
    /// Turn the flag off.
    KillSwitch {
        /// Flag key.
        flag: String,
        /// Environment name.
        environment: String,
    },
    /// Turn maintenance mode on (switching it off again stays a human decision).
    MaintenanceMode,
}

impl AlertAction {
    fn effect(&self) -> Effect {
        match self {
            AlertAction::AbortRollout { flag, environment } => {
                Effect::AbortRollout { flag: flag.clone(), environment: environment.clone() }
            }
            AlertAction::KillSwitch { flag, environment } => Effect::KillSwitch { flag: flag.clone(), environment: environment.clone() },
            AlertAction::MaintenanceMode => Effect::MaintenanceMode { enabled: true },
        }
    }
}

/// An alert rule.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AlertRule {
    /// Alert name (the `alertname` label).
    pub name: String,
    /// What is measured and when it is bad.
    #[serde(flatten)]
    pub check: Check,
    /// Time between evaluations (default 1 minute).
    #[serde(default = "d_interval")]
    pub interval_ms: u64,
    /// Breach must persist this long before firing (default 0: fire at once).
    #[serde(default)]
    pub for_ms: u64,
    /// Keep firing this long after the breach ends (default 0).
    #[serde(default)]
    pub keep_firing_for_ms: u64,
    /// How long a resolved alert is kept (and re-sent) before it becomes inactive (default 15 min).
    #[serde(default = "d_retention")]
    pub resolved_retention_ms: u64,
    /// Labels added to the alert (`alertname` is added automatically).
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    /// Annotations (summary, description, runbook_url, …).
    #[serde(default)]
    pub annotations: BTreeMap<String, String>,
    /// Actions when it starts firing.
    #[serde(default)]
    pub actions: Vec<AlertAction>,
}

fn d_interval() -> u64 {
    60 * SECOND_MS
}
fn d_retention() -> u64 {
    15 * MINUTE_MS
}

impl AlertRule {
    /// Checks the settings.
    pub fn validate(&self) -> Result<(), ReleaseError> {
        self.check.validate(&self.name)?;
        if self.interval_ms == 0 {
            return Err(ReleaseError::InvalidSetting { name: self.name.clone(), field: "interval_ms", problem: "must be positive" });
        }
        Ok(())
    }

    /// The alert's labels: the rule's plus `alertname`.
    pub fn alert_labels(&self) -> BTreeMap<String, String> {
        let mut l = self.labels.clone();
        l.insert("alertname".into(), self.name.clone());
        l
    }
}

/// Prometheus alert states.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AlertStatus {
    /// Not breaching.
    #[default]
    Inactive,
    /// Breaching for less than `for`.
    Pending,
    /// Firing.
    Firing,
    /// Was firing, now resolved (kept for the retention period).
    Resolved,
}

/// Persistable state of one alert instance.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct AlertState {
    /// Current status.
    pub status: AlertStatus,
    /// Start of the current breach (pending start).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub active_since: Option<Timestamp>,
    /// When it started firing (`startsAt`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fired_at: Option<Timestamp>,
    /// Last evaluation that breached.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_breach_at: Option<Timestamp>,
    /// First evaluation without a breach while firing (start of `keep_firing_for`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub keep_firing_since: Option<Timestamp>,
    /// When it resolved (`endsAt`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resolved_at: Option<Timestamp>,
    /// Latest evaluation.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_eval_at: Option<Timestamp>,
    /// Latest measured value.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<f64>,
    /// Counter history.
    #[serde(default)]
    pub measure: MeasureState,
}

/// A status change.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct AlertChange {
    /// Before.
    pub from: AlertStatus,
    /// After.
    pub to: AlertStatus,
    /// When.
    pub at: Timestamp,
}

/// What [`evaluate_alert`] returns.
#[derive(Debug, Clone, PartialEq)]
pub struct AlertOutcome {
    /// The state to persist.
    pub state: AlertState,
    /// The single-measurement verdict.
    pub verdict: Verdict,
    /// The status change, if any.
    pub change: Option<AlertChange>,
    /// Actions to apply (only on the change to firing).
    pub effects: Vec<Effect>,
}

impl AlertState {
    /// Whether an evaluation is due (`interval_ms` after the last one).
    pub fn is_due(&self, rule: &AlertRule, now: Timestamp) -> bool {
        self.last_eval_at.is_none_or(|t| now >= t.plus(rule.interval_ms))
    }
}

/// Evaluates a rule once. A measurement error changes nothing but the evaluation time.
pub fn evaluate_alert(rule: &AlertRule, state: &AlertState, m: &Measurement, now: Timestamp) -> AlertOutcome {
    let mut st = state.clone();
    let a = rule.check.assess(&mut st.measure, m, now);
    st.last_eval_at = Some(now);
    if a.value.is_some() {
        st.value = a.value;
    }
    let from = st.status;
    if a.verdict != Verdict::Error {
        let breach = a.verdict == Verdict::Failed;
        if breach {
            st.last_breach_at = Some(now);
            st.keep_firing_since = None;
        }
        st.status = match (from, breach) {
            (AlertStatus::Inactive | AlertStatus::Resolved, true) => {
                st.active_since = Some(now);
                st.resolved_at = None;
                if rule.for_ms == 0 {
                    st.fired_at = Some(now);
                    AlertStatus::Firing
                } else {
                    AlertStatus::Pending
                }
            }
            (AlertStatus::Pending, true) => {
                if now.since(st.active_since.unwrap_or(now)) >= rule.for_ms {
                    st.fired_at = Some(now);
                    AlertStatus::Firing
                } else {
                    AlertStatus::Pending
                }
            }
            (AlertStatus::Pending, false) => {
                st.active_since = None;
                AlertStatus::Inactive
            }
            (AlertStatus::Firing, true) => AlertStatus::Firing,
            (AlertStatus::Firing, false) => {
                // As Prometheus: keep firing for `keep_firing_for` after the first miss.
                let since = *st.keep_firing_since.get_or_insert(now);
                if rule.keep_firing_for_ms > 0 && now.since(since) < rule.keep_firing_for_ms {
                    AlertStatus::Firing
                } else {
                    st.resolved_at = Some(now);
                    st.active_since = None;
                    st.keep_firing_since = None;
                    AlertStatus::Resolved
                }
            }
            (AlertStatus::Resolved, false) => {
                if now.since(st.resolved_at.unwrap_or(now)) >= rule.resolved_retention_ms {
                    AlertStatus::Inactive
                } else {
                    AlertStatus::Resolved
                }
            }
            (AlertStatus::Inactive, false) => AlertStatus::Inactive,
        };
    }
    let change = (st.status != from).then_some(AlertChange { from, to: st.status, at: now });
    let effects = if st.status == AlertStatus::Firing && from != AlertStatus::Firing {
        rule.actions.iter().map(AlertAction::effect).collect()
    } else {
        Vec::new()
    };
    AlertOutcome { state: st, verdict: a.verdict, change, effects }
}

/// The alert as the notifier sees it (firing or resolved only; pending alerts are never sent).
pub fn to_alert(rule: &AlertRule, state: &AlertState, generator_url: Option<&str>) -> Option<crate::notify::Alert> {
    let status = match state.status {
        AlertStatus::Firing => crate::notify::NotifyStatus::Firing,
        AlertStatus::Resolved => crate::notify::NotifyStatus::Resolved,
        _ => return None,
    };
    let labels = rule.alert_labels();
    Some(crate::notify::Alert {
        fingerprint: crate::notify::fingerprint(&labels),
        labels,
        annotations: rule.annotations.clone(),
        status,
        starts_at: state.fired_at.unwrap_or_default(),
        ends_at: if status == crate::notify::NotifyStatus::Resolved { state.resolved_at } else { None },
        generator_url: generator_url.map(str::to_owned),
    })
}
