//! The rollout controller: every `rollout_tick` (server clock), each active
//! rollout gets its due guardrails measured and one `rollout::step`; the
//! outcome is persisted and applied by [`super::persist`]. A tick at a `now`
//! already applied changes nothing, so ticking too often is harmless.

use gantry_api_types::GuardrailSource;
use gantry_core::Store;
use gantry_release::guardrail::{GuardrailSpec, Measurement};
use gantry_release::rollout::{self, Input, Tick};
use gantry_release::{Percentage, Timestamp};

use super::{now_of, persist, sources, PersistRequest, RolloutEntry, CONTROLLER_ACTOR};
use crate::state::{self, AppState};

/// What one tick did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct TickReport {
    /// Active rollouts looked at.
    pub active: usize,
    /// Transitions made.
    pub transitions: usize,
    /// Rollouts whose outcome could not be persisted (retried next tick).
    pub failed: usize,
    /// Scheduled changes applied.
    pub scheduled: usize,
    /// Alerts firing or recently resolved.
    pub alerts: usize,
}

async fn measure<S: Store>(app: &AppState<S>, key: &str, entry: &RolloutEntry, g: &GuardrailSpec, now: Timestamp) -> Measurement {
    let target = &entry.def.plan.target;
    match entry.def.sources.get(&g.name) {
        None | Some(GuardrailSource::Events) => app.release.signals.measure(
            &target.environment,
            &target.flag,
            g.check.metric,
            g.check.window_ms,
            now,
            entry.state.percentage < Percentage::FULL,
        ),
        Some(GuardrailSource::Prometheus { url, query, timeout_ms }) => {
            let timeout = timeout_ms.map_or(sources::PROMETHEUS_TIMEOUT, std::time::Duration::from_millis);
            sources::prometheus_query(&app.release.http, url, query, timeout).await
        }
        Some(GuardrailSource::Probe { .. }) => app.release.probes.measurement(&sources::probe_key(key, &g.name)),
    }
}

/// Runs one controller tick at `now` (tests call this with a manual clock's
/// time): due scheduled changes first, then every active rollout, then the
/// alert rules and their notifications.
pub async fn tick<S: Store>(app: &AppState<S>, now: Timestamp) -> TickReport {
    let mut report = TickReport { scheduled: super::schedules::apply_due(app, now).await, ..TickReport::default() };
    app.release.probes.run_due(app, now).await;
    tick_rollouts(app, now, &mut report).await;
    let alerts = super::alerts::evaluate_due(app, now).await;
    report.alerts = alerts.len();
    super::notify::dispatch(app, &alerts, now).await;
    report
}

async fn tick_rollouts<S: Store>(app: &AppState<S>, now: Timestamp, report: &mut TickReport) {
    // Measure without holding the lock (a Prometheus query may take seconds;
    // human commands must not wait for it), then step under the lock, only
    // rollouts that nobody changed meanwhile (the others wait for the next tick).
    let active: Vec<(String, RolloutEntry)> = {
        let rollouts = app.release.rollouts.lock().await;
        rollouts.iter().filter(|(_, e)| e.state.status.is_active()).map(|(k, e)| (k.clone(), e.clone())).collect()
    };
    let mut measured = Vec::with_capacity(active.len());
    for (key, entry) in active {
        let mut t = Tick::default();
        for g in rollout::due_guardrails(&entry.def.plan, &entry.state, now) {
            t.measurements.insert(g.name.clone(), measure(app, &key, &entry, g, now).await);
        }
        measured.push((key, entry, t));
    }
    let mut rollouts = app.release.rollouts.lock().await;
    for (key, seen, t) in measured {
        report.active += 1;
        let Some(entry) = rollouts.get(&key).cloned() else { continue };
        if entry.version != seen.version || entry.state != seen.state {
            continue;
        }
        let outcome = match rollout::step(&entry.def.plan, &entry.state, &Input::Tick(t), now) {
            Ok(o) => o,
            Err(e) => {
                tracing::warn!(rollout = %key, error = %e, "rollout state does not fit its plan; skipped");
                report.failed += 1;
                continue;
            }
        };
        let n = outcome.transitions.len();
        if !outcome.evaluations.is_empty() {
            let mut latest = app.release.evaluations.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
            let of_rollout = latest.entry(key.clone()).or_default();
            for ev in &outcome.evaluations {
                tracing::debug!(rollout = %key, guardrail = %ev.guardrail, verdict = ?ev.assessment.verdict, status = ?ev.status, "guardrail evaluated");
                of_rollout.insert(ev.guardrail.clone(), ev.clone());
            }
        }
        let req = PersistRequest { key: &key, def: &entry.def, before: Some(&entry), actor: CONTROLLER_ACTOR, extra_audit: None };
        match persist(app, &mut rollouts, req, outcome).await {
            Ok(()) => report.transitions += n,
            Err(e) => {
                tracing::warn!(rollout = %key, error = %e.message, "applying a rollout step failed; retried next tick");
                report.failed += 1;
            }
        }
    }
}

/// The background loop: ticks every `rollout_tick` until shutdown.
pub async fn run<S: Store>(app: AppState<S>) {
    let stop = app.shutdown.clone();
    loop {
        tokio::select! {
            _ = tokio::time::sleep(app.config.rollout_tick) => {}
            () = state::stopped(stop.clone()) => break,
        }
        let r = tick(&app, now_of(&app)).await;
        if r.transitions > 0 || r.failed > 0 || r.scheduled > 0 {
            tracing::info!(
                active = r.active,
                transitions = r.transitions,
                failed = r.failed,
                scheduled = r.scheduled,
                "release controller tick"
            );
        }
    }
}
