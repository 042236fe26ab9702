//! Release automation (issue #5): the server wiring around the pure
//! `gantry-release` crate.
//!
//! * Rollouts are stored as release objects (kind `rollout`, key
//!   `environment/flag`): the definition ([`RolloutDef`]: plan plus guardrail
//!   sources) and the [`RolloutState`]. They are kept in memory behind one
//!   async mutex, which serialises every transition (controller ticks and
//!   human commands).
//! * Every transition is one store commit: the new state, the flag whose
//!   rollout percentage changed (through the same write path as the admin API,
//!   so streams and SDKs see it at once) and one audit entry per transition
//!   and per flag change. The stream carries a `rollout` event per transition.
//!   Guardrail bookkeeping between transitions is saved quietly (no audit
//!   entry, no revision), so a restart resumes with the same counters.
//! * The controller ([`controller`]) ticks every `rollout_tick`, driven by the
//!   injected clock; tests call [`controller::tick`] at a chosen `now`.
//! * Guardrail metrics come from Gantry's own events ([`signals`]).

pub mod alerts;
pub mod api;
pub mod controller;
pub mod notify;
pub mod schedules;
pub mod signals;
pub mod sources;
pub mod triggers;

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use gantry_api_types::{ErrorCode, GuardrailSource, RolloutNotice, RolloutResponse};
use gantry_core::clock::rfc3339;
use gantry_core::{AuditDraft, Expect, Mutation, ReleaseObject, Store, StoreError};
use gantry_engine::model::{Condition, Flag};
use gantry_release::rollout::{self, Outcome, RolloutPlan, RolloutState};
use gantry_release::{Effect, Percentage, Timestamp};
use serde::{Deserialize, Serialize};

use crate::error::ApiError;
use crate::state::{AppState, Change, Views};

/// Kind of rollout objects in the store.
pub const ROLLOUT_KIND: &str = "rollout";
/// Audit actor of the controller's own transitions.
pub const CONTROLLER_ACTOR: &str = "rollout-controller";

/// The persisted definition of a rollout.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RolloutDef {
    /// The plan.
    pub plan: RolloutPlan,
    /// Guardrail sources by name (absent: events).
    #[serde(default)]
    pub sources: BTreeMap<String, GuardrailSource>,
}

/// One rollout in memory.
#[derive(Debug, Clone)]
pub struct RolloutEntry {
    /// Definition.
    pub def: RolloutDef,
    /// Current state.
    pub state: RolloutState,
    /// Version (+1 per audited change).
    pub version: i64,
    /// Created.
    pub created_at: DateTime<Utc>,
    /// Last audited change.
    pub updated_at: DateTime<Utc>,
}

impl RolloutEntry {
    /// The admin API view.
    pub fn response(&self) -> RolloutResponse {
        RolloutResponse {
            key: rollout_key(&self.def.plan.target.environment, &self.def.plan.target.flag),
            plan: self.def.plan.clone(),
            sources: self.def.sources.clone(),
            state: self.state.clone(),
            next_wakeup: rollout::next_wakeup(&self.def.plan, &self.state),
            version: self.version,
            created_at: rfc3339(self.created_at),
            updated_at: rfc3339(self.updated_at),
        }
    }
}

/// Rollouts by key.
pub type Rollouts = BTreeMap<String, RolloutEntry>;

/// Release-automation state of one server.
#[derive(Debug, Default)]
pub struct Release {
    /// Rollouts by `environment/flag`; the lock serialises transitions.
    pub rollouts: tokio::sync::Mutex<Rollouts>,
    /// Scheduled changes by key.
    pub schedules: tokio::sync::Mutex<schedules::Schedules>,
    /// Alert rules by name.
    pub alerts: tokio::sync::Mutex<alerts::Alerts>,
    /// Notifier channels by key.
    pub notifiers: tokio::sync::Mutex<notify::Notifiers>,
    /// Per-arm counters from ingested events.
    pub signals: signals::Signals,
    /// Health-probe states.
    pub probes: sources::Probes,
    /// Inbound triggers by id.
    pub triggers: tokio::sync::Mutex<triggers::Triggers>,
    /// HTTP client of Prometheus queries.
    pub http: reqwest::Client,
    /// The latest evaluation of each guardrail, by rollout key and guardrail
    /// name (for the dashboard: value, threshold, sample size). Not
    /// persisted: empty again after a restart until the next evaluation.
    pub evaluations: std::sync::Mutex<BTreeMap<String, BTreeMap<String, rollout::Evaluation>>>,
}

/// Decodes a stored release object's definition and state (a stored
/// document that no longer parses is a backend error: start-up stops).
pub(crate) fn decode<D: serde::de::DeserializeOwned, S: serde::de::DeserializeOwned>(
    doc: serde_json::Value,
    state: serde_json::Value,
) -> Result<(D, S), StoreError> {
    let backend = |e: serde_json::Error| StoreError::Backend(Box::new(e));
    Ok((serde_json::from_value(doc).map_err(backend)?, serde_json::from_value(state).map_err(backend)?))
}

impl Release {
    /// Loads the persisted rollouts.
    pub async fn load<S: Store>(store: &S) -> Result<Self, StoreError> {
        let mut map = Rollouts::new();
        for o in store.release_objects(ROLLOUT_KIND).await? {
            let (def, state): (RolloutDef, RolloutState) = decode(o.object.doc, o.object.state)?;
            map.insert(o.object.key, RolloutEntry { def, state, version: o.version, created_at: o.created_at, updated_at: o.updated_at });
        }
        Ok(Release {
            rollouts: tokio::sync::Mutex::new(map),
            schedules: tokio::sync::Mutex::new(schedules::load(store).await?),
            alerts: tokio::sync::Mutex::new(alerts::load(store).await?),
            notifiers: tokio::sync::Mutex::new(notify::load(store).await?),
            signals: signals::Signals::default(),
            probes: sources::Probes::default(),
            triggers: tokio::sync::Mutex::new(triggers::load(store).await?),
            http: reqwest::Client::new(),
            evaluations: std::sync::Mutex::default(),
        })
    }
}

/// `environment/flag`.
pub fn rollout_key(environment: &str, flag: &str) -> String {
    format!("{environment}/{flag}")
}

/// The current time as the release crate wants it.
pub fn now_of<S: Store>(app: &AppState<S>) -> Timestamp {
    Timestamp::from_millis(app.clock.now_millis())
}

/// Sets the percentage of the rule a rollout ramps: the rule with id `rule`,
/// or the first rule with a `rollout` condition.
pub fn set_rule_percentage(flag: &mut Flag, environment: &str, rule: Option<&str>, p: Percentage) -> Result<(), String> {
    let key = flag.key.clone();
    let cfg = flag.environments.get_mut(environment).ok_or_else(|| format!("flag `{key}` has no configuration in `{environment}`"))?;
    let target = cfg.rules.iter_mut().find(|r| match rule {
        Some(id) => r.id.as_deref() == Some(id),
        None => matches!(r.condition, Condition::Rollout(_)),
    });
    match target.map(|r| &mut r.condition) {
        Some(Condition::Rollout(ro)) => {
            ro.percentage = gantry_engine::model::Percentage::from_basis_points(p.basis_points())
                .ok_or_else(|| "percentage out of range".to_owned())?;
            Ok(())
        }
        Some(_) => Err(format!("rule `{}` of flag `{key}` is not a percentage rollout", rule.unwrap_or_default())),
        None => Err(match rule {
            Some(id) => format!("flag `{key}` has no rule `{id}` in `{environment}`"),
            None => format!("flag `{key}` has no rule with a `rollout` condition in `{environment}`"),
        }),
    }
}

fn event_name(t: &rollout::Transition) -> String {
    serde_json::to_value(&t.event).ok().and_then(|v| v.get("kind").and_then(|k| k.as_str()).map(str::to_owned)).unwrap_or_default()
}

/// Flags edited by effects: key → (before, after, audit action).
type FlagEdits = BTreeMap<String, (Flag, Flag, &'static str)>;

/// Flags changed by effects, and notices for humans.
fn flag_changes(v: &Views, effects: &[Effect]) -> Result<(FlagEdits, Vec<String>), String> {
    let mut flags = FlagEdits::new();
    let mut notices = Vec::new();
    let mut edit = |key: &str, action: &'static str, f: &mut dyn FnMut(&mut Flag) -> Result<(), String>| -> Result<(), String> {
        if !flags.contains_key(key) {
            let current = v.flags.get(key).map(|s| s.flag.clone()).ok_or_else(|| format!("flag `{key}` not found"))?;
            flags.insert(key.to_owned(), (current.clone(), current, action));
        }
        let slot = flags.get_mut(key).expect("inserted above");
        slot.2 = action;
        f(&mut slot.1)
    };
    for e in effects {
        match e {
            Effect::SetPercentage { flag, environment, rule, percentage } => {
                edit(flag, "flag.rollout_percentage", &mut |f| set_rule_percentage(f, environment, rule.as_deref(), *percentage))?;
            }
            Effect::SetEnabled { flag, environment, enabled } => {
                edit(flag, if *enabled { "flag.switch_on" } else { "flag.switch_off" }, &mut |f| {
                    f.environments.entry(environment.clone()).or_default().enabled = *enabled;
                    Ok(())
                })?;
            }
            Effect::KillSwitch { flag, environment } => {
                edit(flag, "flag.switch_off", &mut |f| {
                    f.environments.entry(environment.clone()).or_default().enabled = false;
                    Ok(())
                })?;
            }
            Effect::Notify { severity, summary, .. } => notices.push(format!("{severity:?}: {summary}")),
            // Not produced by rollouts (alert actions are applied by their own wiring).
            Effect::AbortRollout { .. } | Effect::MaintenanceMode { .. } => {}
        }
    }
    Ok((flags, notices))
}

pub(crate) fn to_value<T: Serialize>(v: &T) -> Result<serde_json::Value, ApiError> {
    serde_json::to_value(v).map_err(|e| ApiError::new(ErrorCode::Internal, e.to_string()))
}

/// One commit: the release object, the flags its effects change (each with
/// an audit entry by `actor`), the given audit entries, and the stream
/// changes. Returns the commit and the human notices among the effects.
pub(crate) async fn commit_with_effects<S: Store>(
    app: &AppState<S>,
    actor: &str,
    object: ReleaseObject,
    expect: Expect,
    mut audit: Vec<AuditDraft>,
    mut changes: Vec<Change>,
    effects: &[Effect],
) -> Result<(gantry_core::Committed, Vec<String>), ApiError> {
    let mut notices = Vec::new();
    let r = app
        .write(|v| {
            let (flags, n) = flag_changes(v, effects).map_err(|m| ApiError::new(ErrorCode::InvalidState, m))?;
            notices = n;
            let mut mutations = vec![Mutation::PutReleaseObject { object, expect }];
            for (k, (old, new, action)) in flags {
                if old == new {
                    continue;
                }
                audit.push(AuditDraft {
                    actor: actor.to_owned(),
                    action: action.into(),
                    target_kind: "flag".into(),
                    target: k.clone(),
                    before: serde_json::to_value(&old).ok(),
                    after: serde_json::to_value(&new).ok(),
                });
                mutations.push(Mutation::PutFlag { flag: new.clone(), expect: Expect::Exists });
                changes.insert(0, Change::Flag(new));
            }
            Ok::<_, ApiError>((mutations, audit, changes))
        })
        .await?;
    Ok((r?, notices))
}

/// What [`persist`] needs besides the outcome.
#[derive(Debug)]
pub struct PersistRequest<'a> {
    /// Rollout key.
    pub key: &'a str,
    /// Definition (new or unchanged).
    pub def: &'a RolloutDef,
    /// State before the step (`None`: the rollout is being created).
    pub before: Option<&'a RolloutEntry>,
    /// Who.
    pub actor: &'a str,
    /// Extra audit entry written first (creation).
    pub extra_audit: Option<AuditDraft>,
}

/// Persists a step's outcome and applies its effects. Transitions or effects
/// make one commit (state, flags, audit, stream); otherwise a changed state is
/// saved quietly. The in-memory entry is updated only after the store agreed.
pub async fn persist<S: Store>(
    app: &AppState<S>,
    rollouts: &mut Rollouts,
    req: PersistRequest<'_>,
    outcome: Outcome,
) -> Result<(), ApiError> {
    let PersistRequest { key, def, before, actor, extra_audit } = req;
    let audited = before.is_none() || !outcome.transitions.is_empty() || !outcome.effects.is_empty();
    if !audited {
        if before.is_some_and(|b| b.state != outcome.state) {
            let state = to_value(&outcome.state)?;
            app.store.save_release_state(ROLLOUT_KIND, key, state).await?;
            if let Some(e) = rollouts.get_mut(key) {
                e.state = outcome.state;
            }
        }
        return Ok(());
    }
    let env = def.plan.target.environment.clone();
    let flag_key = def.plan.target.flag.clone();
    let object = ReleaseObject { kind: ROLLOUT_KIND.into(), key: key.to_owned(), doc: to_value(def)?, state: to_value(&outcome.state)? };
    let expect = before.map_or(Expect::Absent, |b| Expect::Version(b.version));
    let mut audit: Vec<AuditDraft> = extra_audit.into_iter().collect();
    let mut changes = Vec::new();
    for t in &outcome.transitions {
        audit.push(AuditDraft {
            actor: actor.to_owned(),
            action: format!("rollout.{}", event_name(t)),
            target_kind: "rollout".into(),
            target: key.to_owned(),
            before: None,
            after: serde_json::to_value(t).ok(),
        });
        changes.push(Change::Rollout(RolloutNotice {
            flag: flag_key.clone(),
            environment: env.clone(),
            actor: actor.to_owned(),
            transition: t.clone(),
        }));
    }
    let (committed, notices) = commit_with_effects(app, actor, object, expect, audit, changes, &outcome.effects).await?;
    for n in &notices {
        tracing::info!(rollout = %key, notice = %n, "rollout notice");
    }
    let now = app.clock.now();
    let version = committed.versions.first().copied().unwrap_or(1);
    let created_at = before.map_or(now, |b| b.created_at);
    rollouts.insert(key.to_owned(), RolloutEntry { def: def.clone(), state: outcome.state, version, created_at, updated_at: now });
    Ok(())
}

/// Aborts the active rollout of a flag in an environment (alert actions,
/// triggers). `Ok(false)` when there is none to abort.
pub async fn abort_rollout<S: Store>(
    app: &AppState<S>,
    flag: &str,
    environment: &str,
    actor: &str,
    now: Timestamp,
) -> Result<bool, ApiError> {
    let key = rollout_key(environment, flag);
    let mut rollouts = app.release.rollouts.lock().await;
    let Some(entry) = rollouts.get(&key).cloned() else { return Ok(false) };
    if entry.state.status.is_finished() {
        return Ok(false);
    }
    let input = rollout::Input::Command(rollout::Command::Abort);
    let outcome =
        rollout::step(&entry.def.plan, &entry.state, &input, now).map_err(|e| ApiError::new(ErrorCode::InvalidState, e.to_string()))?;
    let req = PersistRequest { key: &key, def: &entry.def, before: Some(&entry), actor, extra_audit: None };
    persist(app, &mut rollouts, req, outcome).await?;
    Ok(true)
}

/// The key of a rollout of `flag` that is not finished, if any (flag deletion is refused then).
pub async fn unfinished_rollout_of<S: Store>(app: &AppState<S>, flag: &str) -> Option<String> {
    let rollouts = app.release.rollouts.lock().await;
    rollouts.iter().find(|(_, e)| e.def.plan.target.flag == flag && !e.state.status.is_finished()).map(|(k, _)| k.clone())
}
