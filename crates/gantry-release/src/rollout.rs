//! The rollout state machine: a plan, a persisted state and one pure transition function.
//!
//! [`step`] takes the plan, the last persisted [`RolloutState`], one [`Input`] (a tick with the
//! latest measurements, or a human command) and `now`, and returns the next state plus what
//! happened ([`Transition`]s for the audit log and event stream), what to do ([`Effect`]s) and
//! the guardrail [`Evaluation`]s made (for metrics). Nothing else is read or written.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::guardrail::{Assessment, GuardrailSpec, GuardrailState, GuardrailStatus, Measurement};
use crate::{Effect, Percentage, ReleaseError, Severity, Timestamp};

/// What a rollout ramps: one rule of a flag in one environment.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RolloutTarget {
    /// Flag key.
    pub flag: String,
    /// Environment name.
    pub environment: String,
    /// Rule (strategy) id; `None` = the flag's rollout rule.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rule: Option<String>,
}

/// One step of a plan.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Step {
    /// Serve `percentage`, then hold for `hold_ms` (and until the guardrails are conclusive).
    Ramp {
        /// Traffic share of the new variant.
        percentage: Percentage,
        /// Minimum time at this percentage.
        #[serde(default)]
        hold_ms: u64,
    },
    /// Keep the current percentage until someone promotes (Argo `pause: {}`).
    Approval,
}

/// What a failed (or errored) guardrail does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FailureAction {
    /// Back to 0 % and status `rolled_back` (default; `retry` starts over).
    #[default]
    RollbackToZero,
    /// Back to the previous step's percentage and pause there.
    BackOneStep,
    /// Keep the percentage and pause.
    Pause,
}

/// What happens when a step's hold and extension run out without conclusive guardrails.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum InconclusiveAction {
    /// Pause for a human (default).
    #[default]
    Pause,
    /// Treat as a failure (`on_failure`), like LaunchDarkly reverting after an extended step.
    Fail,
}

/// A rollout plan for one flag rule in one environment.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RolloutPlan {
    /// What is ramped.
    pub target: RolloutTarget,
    /// Ordered steps; ramp percentages must not decrease.
    pub steps: Vec<Step>,
    /// Guardrails evaluated while progressing or awaiting approval.
    #[serde(default)]
    pub guardrails: Vec<GuardrailSpec>,
    /// On a failed or errored guardrail.
    #[serde(default)]
    pub on_failure: FailureAction,
    /// When the step extension runs out.
    #[serde(default)]
    pub on_inconclusive: InconclusiveAction,
    /// How long past its hold a step may wait for conclusive guardrails; `None` = the step's
    /// hold again (at least one evaluation interval).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_step_extension_ms: Option<u64>,
}

impl RolloutPlan {
    /// Checks the plan: steps present, ramps non-decreasing, guardrails valid and uniquely named.
    pub fn validate(&self) -> Result<(), ReleaseError> {
        if self.steps.is_empty() {
            return Err(ReleaseError::EmptyPlan);
        }
        let mut prev = Percentage::ZERO;
        for (index, s) in self.steps.iter().enumerate() {
            if let Step::Ramp { percentage, .. } = s {
                if *percentage < prev {
                    return Err(ReleaseError::DecreasingStep {
                        index,
                        percentage_bp: percentage.basis_points(),
                        previous_bp: prev.basis_points(),
                    });
                }
                prev = *percentage;
            }
        }
        let mut names = std::collections::BTreeSet::new();
        for g in &self.guardrails {
            g.validate()?;
            if !names.insert(g.name.as_str()) {
                return Err(ReleaseError::DuplicateGuardrail { name: g.name.clone() });
            }
        }
        Ok(())
    }

    /// The percentage in force at step `index`: the latest ramp at or before it, else 0.
    pub fn percentage_at(&self, index: usize) -> Percentage {
        self.steps
            .iter()
            .take(index + 1)
            .filter_map(|s| match s {
                Step::Ramp { percentage, .. } => Some(*percentage),
                Step::Approval => None,
            })
            .next_back()
            .unwrap_or(Percentage::ZERO)
    }

    /// The percentage after the last step.
    pub fn final_percentage(&self) -> Percentage {
        self.percentage_at(self.steps.len().saturating_sub(1))
    }
}

/// Lifecycle of a rollout.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    /// Created, not started.
    #[default]
    Pending,
    /// Walking the steps.
    Progressing,
    /// At an approval step.
    AwaitingApproval,
    /// Stopped by a human or by a guardrail (`pause_cause` says which).
    Paused,
    /// All steps done.
    Completed,
    /// A guardrail failed and traffic went back to 0 %.
    RolledBack,
    /// Stopped by a human; traffic back to 0 %.
    Aborted,
}

impl Status {
    /// Completed, rolled back or aborted.
    pub fn is_finished(self) -> bool {
        matches!(self, Status::Completed | Status::RolledBack | Status::Aborted)
    }

    /// Progressing or awaiting approval: guardrails run and ticks matter.
    pub fn is_active(self) -> bool {
        matches!(self, Status::Progressing | Status::AwaitingApproval)
    }
}

/// Why something happened.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Cause {
    /// A human command.
    Command,
    /// The step's hold elapsed with all guardrails clear.
    HoldElapsed,
    /// A guardrail exhausted its failure budget.
    GuardrailFailed {
        /// Its name.
        guardrail: String,
    },
    /// A guardrail had too many errors in a row.
    GuardrailErrored {
        /// Its name.
        guardrail: String,
    },
    /// A guardrail had too many inconclusive results.
    GuardrailInconclusive {
        /// Its name.
        guardrail: String,
    },
    /// The step extension ran out while this guardrail was not conclusive.
    ExtensionExhausted {
        /// Its name.
        guardrail: String,
    },
    /// A guardrail evaluation.
    Evaluation,
}

impl Cause {
    /// Whether a guardrail (not a human or the timer) caused it.
    pub fn is_guardrail(&self) -> bool {
        !matches!(self, Cause::Command | Cause::HoldElapsed | Cause::Evaluation)
    }
}

/// What a transition was.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Event {
    /// `start`.
    Started,
    /// `retry` after a rollback or abort.
    Retried,
    /// A step began (`step` is its index).
    StepEntered,
    /// A step was skipped by `promote`.
    Promoted {
        /// `promote --full`: all remaining steps skipped.
        full: bool,
    },
    /// Now waiting for approval.
    AwaitingApproval,
    /// Paused.
    Paused,
    /// Resumed after a pause.
    Resumed,
    /// Went back one step after a failure (and paused).
    SteppedBack,
    /// Rolled back to 0 %.
    RolledBack,
    /// Aborted.
    Aborted,
    /// All steps done.
    Completed,
    /// A guardrail's status changed.
    GuardrailChanged {
        /// Its name.
        guardrail: String,
        /// Before.
        from: GuardrailStatus,
        /// After.
        to: GuardrailStatus,
    },
}

/// One entry for the audit log and event stream.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Transition {
    /// When.
    pub at: Timestamp,
    /// What.
    pub event: Event,
    /// Why.
    pub cause: Cause,
    /// Status before.
    pub from: Status,
    /// Status after.
    pub to: Status,
    /// Step index after.
    pub step: usize,
    /// Percentage after.
    pub percentage: Percentage,
}

/// The persisted state of one rollout. Store it (JSON) after every [`step`] together with the
/// effects to apply; a restored state continues exactly where it stopped.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct RolloutState {
    /// Lifecycle status.
    pub status: Status,
    /// Index of the current step.
    pub step: usize,
    /// Percentage last set (the server's rule should show this).
    pub percentage: Percentage,
    /// First `start`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub started_at: Option<Timestamp>,
    /// When the current step was entered.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub step_entered_at: Option<Timestamp>,
    /// Start of the hold, moved forward by manual pauses (time paused does not count).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hold_started_at: Option<Timestamp>,
    /// When the current pause began.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub paused_at: Option<Timestamp>,
    /// Why it is paused.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pause_cause: Option<Cause>,
    /// When it completed, rolled back or was aborted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub finished_at: Option<Timestamp>,
    /// Latest tick applied (older ticks are ignored).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_tick_at: Option<Timestamp>,
    /// Guardrail bookkeeping by name.
    #[serde(default)]
    pub guardrails: BTreeMap<String, GuardrailState>,
}

impl RolloutState {
    /// A rollout that has not started.
    pub fn new() -> Self {
        RolloutState::default()
    }

    /// Checks the invariants against the plan (used by tests; cheap enough for a debug assert).
    pub fn check(&self, plan: &RolloutPlan) -> Result<(), ReleaseError> {
        let bad = |problem| Err(ReleaseError::StateMismatch { problem });
        if self.step >= plan.steps.len() {
            return bad("step index beyond the plan");
        }
        if self.percentage > plan.percentage_at(self.step) {
            return bad("percentage above the current step's");
        }
        match self.status {
            Status::Pending if self.percentage != Percentage::ZERO || self.step != 0 => bad("pending rollout with traffic"),
            Status::Progressing | Status::AwaitingApproval if self.percentage != plan.percentage_at(self.step) => {
                bad("active rollout not at its step's percentage")
            }
            Status::Progressing if matches!(plan.steps[self.step], Step::Approval) => bad("progressing on an approval step"),
            Status::AwaitingApproval if !matches!(plan.steps[self.step], Step::Approval) => bad("awaiting approval on a ramp step"),
            Status::Progressing | Status::AwaitingApproval if self.hold_started_at.is_none() => bad("active without a hold start"),
            Status::Paused if self.paused_at.is_none() || self.pause_cause.is_none() => bad("paused without time or cause"),
            Status::RolledBack | Status::Aborted if self.percentage != Percentage::ZERO => bad("stopped rollout with traffic"),
            Status::Completed if self.percentage != plan.final_percentage() => bad("completed below the final percentage"),
            _ => Ok(()),
        }
    }
}

/// A human command.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "command", rename_all = "snake_case")]
pub enum Command {
    /// Begin at step 0 (from `pending`).
    Start,
    /// Go to the next step now (approves an approval step, skips a hold, overrides a pause);
    /// `full` skips all remaining steps. `expected_step` rejects a stale double-click.
    Promote {
        /// Skip to the end.
        #[serde(default)]
        full: bool,
        /// The step the caller saw; a mismatch is rejected.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        expected_step: Option<usize>,
    },
    /// Stop automatic progress, keeping the percentage.
    Pause,
    /// Continue after a pause.
    Resume,
    /// Stop and go back to 0 %.
    Abort,
    /// Start over from step 0 after a rollback or abort.
    Retry,
}

impl Command {
    fn name(&self) -> &'static str {
        match self {
            Command::Start => "start",
            Command::Promote { .. } => "promote",
            Command::Pause => "pause",
            Command::Resume => "resume",
            Command::Abort => "abort",
            Command::Retry => "retry",
        }
    }
}

/// The latest measurements, keyed by guardrail name. A due guardrail without an entry is
/// evaluated as [`Measurement::NoData`].
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct Tick {
    /// Measurements by guardrail name.
    #[serde(default)]
    pub measurements: BTreeMap<String, Measurement>,
}

/// One input to [`step`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "input", rename_all = "snake_case")]
pub enum Input {
    /// Time passed; here is the data.
    Tick(Tick),
    /// A human (or an alert action) said so.
    Command(Command),
}

/// One guardrail evaluation made during a tick (export as metrics; too chatty for the audit log).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Evaluation {
    /// Guardrail name.
    pub guardrail: String,
    /// When.
    pub at: Timestamp,
    /// The single-measurement result.
    pub assessment: Assessment,
    /// Guardrail status afterwards.
    pub status: GuardrailStatus,
    /// Dry-run guardrails never act.
    pub dry_run: bool,
}

/// What [`step`] returns.
#[derive(Debug, Clone, PartialEq)]
pub struct Outcome {
    /// The state to persist.
    pub state: RolloutState,
    /// What happened, in order.
    pub transitions: Vec<Transition>,
    /// What the server must do, in order.
    pub effects: Vec<Effect>,
    /// Guardrail evaluations made.
    pub evaluations: Vec<Evaluation>,
}

/// Applies one input. Ticks never fail; a command that does not fit the status is rejected with
/// the state unchanged. A tick at or before the last applied tick changes nothing, so a repeated
/// tick is harmless.
pub fn step(plan: &RolloutPlan, state: &RolloutState, input: &Input, now: Timestamp) -> Result<Outcome, ReleaseError> {
    if state.step >= plan.steps.len() {
        return Err(ReleaseError::StateMismatch { problem: "step index beyond the plan" });
    }
    let mut cx = Machine { plan, st: state.clone(), now, transitions: Vec::new(), effects: Vec::new(), evaluations: Vec::new() };
    match input {
        Input::Tick(t) => cx.tick(t),
        Input::Command(c) => cx.command(c)?,
    }
    Ok(Outcome { state: cx.st, transitions: cx.transitions, effects: cx.effects, evaluations: cx.evaluations })
}

/// Guardrails due for evaluation at `now`: the server only needs to measure these.
pub fn due_guardrails<'p>(plan: &'p RolloutPlan, state: &RolloutState, now: Timestamp) -> Vec<&'p GuardrailSpec> {
    if !state.status.is_active() {
        return Vec::new();
    }
    plan.guardrails.iter().filter(|g| state.guardrails.get(&g.name).and_then(|s| s.next_eval_at).is_none_or(|t| t <= now)).collect()
}

/// When the next tick can change something (a guardrail falls due or a hold ends); `None` when
/// only a command can. A hint for the controller's sleep: ticking more often is harmless.
pub fn next_wakeup(plan: &RolloutPlan, state: &RolloutState) -> Option<Timestamp> {
    if !state.status.is_active() {
        return None;
    }
    let evals = plan.guardrails.iter().map(|g| state.guardrails.get(&g.name).and_then(|s| s.next_eval_at).unwrap_or_default());
    let hold = match (&plan.steps[state.step.min(plan.steps.len() - 1)], state.status, state.hold_started_at) {
        (Step::Ramp { hold_ms, .. }, Status::Progressing, Some(h)) => {
            let end = h.plus(*hold_ms);
            let ext = plan.max_step_extension_ms.unwrap_or(*hold_ms);
            Some(if state.last_tick_at.is_some_and(|t| t >= end) { end.plus(ext) } else { end })
        }
        _ => None,
    };
    evals.chain(hold).min()
}

struct Machine<'p> {
    plan: &'p RolloutPlan,
    st: RolloutState,
    now: Timestamp,
    transitions: Vec<Transition>,
    effects: Vec<Effect>,
    evaluations: Vec<Evaluation>,
}

// === impl Machine ===

impl Machine<'_> {
    fn record(&mut self, event: Event, cause: Cause, from: Status) {
        self.transitions.push(Transition {
            at: self.now,
            event,
            cause,
            from,
            to: self.st.status,
            step: self.st.step,
            percentage: self.st.percentage,
        });
    }

    fn notify(&mut self, severity: Severity, summary: String) {
        let t = &self.plan.target;
        self.effects.push(Effect::Notify { severity, flag: Some(t.flag.clone()), environment: Some(t.environment.clone()), summary });
    }

    fn set_percentage(&mut self, p: Percentage) {
        if p != self.st.percentage {
            self.st.percentage = p;
            let t = &self.plan.target;
            self.effects.push(Effect::SetPercentage {
                flag: t.flag.clone(),
                environment: t.environment.clone(),
                rule: t.rule.clone(),
                percentage: p,
            });
        }
    }

    fn enter_step(&mut self, index: usize, cause: Cause) {
        let from = self.st.status;
        self.st.step = index;
        self.st.step_entered_at = Some(self.now);
        self.st.hold_started_at = Some(self.now);
        self.st.paused_at = None;
        self.st.pause_cause = None;
        match self.plan.steps[index] {
            Step::Ramp { percentage, .. } => {
                self.set_percentage(percentage);
                self.st.status = Status::Progressing;
                self.record(Event::StepEntered, cause, from);
            }
            Step::Approval => {
                // Normally unchanged; after a step back, promoting restores the step's share.
                self.set_percentage(self.plan.percentage_at(index));
                self.st.status = Status::AwaitingApproval;
                self.record(Event::AwaitingApproval, cause, from);
                let msg = format!(
                    "{} in {}: step {} awaits approval at {}",
                    self.plan.target.flag, self.plan.target.environment, index, self.st.percentage
                );
                self.notify(Severity::Warning, msg);
            }
        }
    }

    fn complete(&mut self, cause: Cause) {
        let from = self.st.status;
        self.st.step = self.plan.steps.len() - 1;
        self.set_percentage(self.plan.final_percentage());
        self.st.status = Status::Completed;
        self.st.finished_at = Some(self.now);
        self.st.paused_at = None;
        self.st.pause_cause = None;
        self.record(Event::Completed, cause, from);
        let msg = format!("{} in {}: rollout completed at {}", self.plan.target.flag, self.plan.target.environment, self.st.percentage);
        self.notify(Severity::Info, msg);
    }

    fn advance(&mut self, cause: Cause) {
        if self.st.step + 1 < self.plan.steps.len() {
            self.enter_step(self.st.step + 1, cause);
        } else {
            self.complete(cause);
        }
    }

    fn pause(&mut self, event: Event, cause: Cause) {
        let from = self.st.status;
        self.st.status = Status::Paused;
        self.st.paused_at = Some(self.now);
        self.st.pause_cause = Some(cause.clone());
        let notify = cause.is_guardrail() && event == Event::Paused;
        self.record(event, cause, from);
        if notify {
            let msg = format!(
                "{} in {}: rollout paused at {} by a guardrail",
                self.plan.target.flag, self.plan.target.environment, self.st.percentage
            );
            self.notify(Severity::Warning, msg);
        }
    }

    fn stop(&mut self, status: Status, event: Event, cause: Cause) {
        let from = self.st.status;
        self.set_percentage(Percentage::ZERO);
        self.st.status = status;
        self.st.finished_at = Some(self.now);
        self.st.paused_at = None;
        self.st.pause_cause = None;
        self.record(event, cause, from);
    }

    fn fail(&mut self, cause: Cause) {
        let t = &self.plan.target;
        let what = match &cause {
            Cause::GuardrailFailed { guardrail } | Cause::GuardrailErrored { guardrail } | Cause::GuardrailInconclusive { guardrail } => {
                guardrail.clone()
            }
            Cause::ExtensionExhausted { guardrail } => format!("{guardrail} (inconclusive)"),
            _ => String::new(),
        };
        let (flag, env) = (t.flag.clone(), t.environment.clone());
        match self.plan.on_failure {
            FailureAction::RollbackToZero => {
                self.stop(Status::RolledBack, Event::RolledBack, cause);
                self.notify(Severity::Critical, format!("{flag} in {env}: rolled back to 0% (guardrail {what})"));
            }
            FailureAction::BackOneStep => {
                let prev = self.plan.steps[..self.st.step].iter().rposition(|s| matches!(s, Step::Ramp { .. }));
                let (index, pct) = match prev {
                    Some(i) => (i, self.plan.percentage_at(i)),
                    None => (0, Percentage::ZERO),
                };
                self.st.step = index;
                self.set_percentage(pct);
                self.st.hold_started_at = Some(self.now);
                self.pause(Event::SteppedBack, cause);
                self.notify(Severity::Critical, format!("{flag} in {env}: stepped back to {pct} and paused (guardrail {what})"));
            }
            FailureAction::Pause => self.pause(Event::Paused, cause),
        }
    }

    fn reset_analysis(&mut self) {
        for g in self.st.guardrails.values_mut() {
            g.reset_analysis();
        }
    }

    fn command(&mut self, c: &Command) -> Result<(), ReleaseError> {
        let status = self.st.status;
        let not_allowed = || ReleaseError::CommandNotAllowed { command: c.name(), status };
        match c {
            Command::Start => {
                if status != Status::Pending {
                    return Err(not_allowed());
                }
                self.st.started_at = Some(self.now);
                self.st.guardrails = self
                    .plan
                    .guardrails
                    .iter()
                    .map(|g| (g.name.clone(), GuardrailState { next_eval_at: Some(self.now), ..GuardrailState::default() }))
                    .collect();
                self.record(Event::Started, Cause::Command, status);
                self.enter_step(0, Cause::Command);
            }
            Command::Promote { full, expected_step } => {
                if !(status.is_active() || status == Status::Paused) {
                    return Err(not_allowed());
                }
                if let Some(expected) = *expected_step {
                    if expected != self.st.step {
                        return Err(ReleaseError::StaleStep { expected, actual: self.st.step });
                    }
                }
                if status == Status::Paused && self.st.pause_cause.as_ref().is_some_and(Cause::is_guardrail) {
                    self.reset_analysis();
                }
                self.record(Event::Promoted { full: *full }, Cause::Command, status);
                if *full {
                    self.complete(Cause::Command);
                } else {
                    self.advance(Cause::Command);
                }
            }
            Command::Pause => {
                if !status.is_active() {
                    return Err(not_allowed());
                }
                self.pause(Event::Paused, Cause::Command);
            }
            Command::Resume => {
                if status != Status::Paused {
                    return Err(not_allowed());
                }
                let automatic = self.st.pause_cause.as_ref().is_some_and(Cause::is_guardrail);
                self.record(Event::Resumed, Cause::Command, status);
                if automatic {
                    // A human overrides a guardrail: fresh analysis, fresh hold at this step.
                    self.reset_analysis();
                    self.enter_step(self.st.step, Cause::Command);
                } else {
                    let paused_for = self.now.since(self.st.paused_at.unwrap_or(self.now));
                    self.st.hold_started_at = self.st.hold_started_at.map(|h| h.plus(paused_for));
                    self.st.paused_at = None;
                    self.st.pause_cause = None;
                    self.st.status = match self.plan.steps[self.st.step] {
                        Step::Approval => Status::AwaitingApproval,
                        Step::Ramp { .. } => Status::Progressing,
                    };
                    if let Some(t) = self.transitions.last_mut() {
                        t.to = self.st.status;
                    }
                }
            }
            Command::Abort => {
                if status.is_finished() {
                    return Err(not_allowed());
                }
                self.stop(Status::Aborted, Event::Aborted, Cause::Command);
                let t = &self.plan.target;
                let msg = format!("{} in {}: rollout aborted", t.flag, t.environment);
                self.notify(Severity::Warning, msg);
            }
            Command::Retry => {
                if !matches!(status, Status::RolledBack | Status::Aborted) {
                    return Err(not_allowed());
                }
                self.st.finished_at = None;
                self.st.started_at.get_or_insert(self.now);
                for g in &self.plan.guardrails {
                    let gs = self.st.guardrails.entry(g.name.clone()).or_default();
                    gs.reset_analysis();
                    gs.next_eval_at = Some(self.now);
                }
                self.record(Event::Retried, Cause::Command, status);
                self.enter_step(0, Cause::Command);
            }
        }
        Ok(())
    }

    fn tick(&mut self, tick: &Tick) {
        if !self.st.status.is_active() || self.st.last_tick_at.is_some_and(|t| self.now <= t) {
            return;
        }
        self.st.last_tick_at = Some(self.now);
        self.evaluate(tick);

        // Act on terminal guardrails (first in plan order wins).
        let mut act = None;
        for g in self.plan.guardrails.iter().filter(|g| !g.dry_run) {
            let cause = match self.st.guardrails.get(&g.name).map(|s| s.status) {
                Some(GuardrailStatus::Failed) => Cause::GuardrailFailed { guardrail: g.name.clone() },
                Some(GuardrailStatus::Errored) => Cause::GuardrailErrored { guardrail: g.name.clone() },
                Some(GuardrailStatus::Inconclusive) => Cause::GuardrailInconclusive { guardrail: g.name.clone() },
                _ => continue,
            };
            act = Some(cause);
            break;
        }
        match act {
            Some(c @ Cause::GuardrailInconclusive { .. }) => return self.pause(Event::Paused, c),
            Some(c) => return self.fail(c),
            None => {}
        }

        // Advance through every step whose hold is over and whose guardrails are clear.
        for _ in 0..=self.plan.steps.len() {
            if self.st.status != Status::Progressing {
                break;
            }
            let Step::Ramp { hold_ms, .. } = self.plan.steps[self.st.step] else { break };
            let hold_end = self.st.hold_started_at.unwrap_or(self.now).plus(hold_ms);
            if self.now < hold_end {
                break;
            }
            let blocker = self
                .plan
                .guardrails
                .iter()
                .filter(|g| !g.dry_run)
                .find(|g| !self.st.guardrails.get(&g.name).is_some_and(GuardrailState::clears_promotion));
            match blocker {
                None => self.advance(Cause::HoldElapsed),
                Some(g) => {
                    let ext = self.plan.max_step_extension_ms.unwrap_or(hold_ms).max(g.interval_ms);
                    if self.now >= hold_end.plus(ext) {
                        let cause = Cause::ExtensionExhausted { guardrail: g.name.clone() };
                        match self.plan.on_inconclusive {
                            InconclusiveAction::Pause => self.pause(Event::Paused, cause),
                            InconclusiveAction::Fail => self.fail(cause),
                        }
                    }
                    break;
                }
            }
        }
    }

    fn evaluate(&mut self, tick: &Tick) {
        let now = self.now;
        for spec in &self.plan.guardrails {
            let gs = self.st.guardrails.entry(spec.name.clone()).or_default();
            if gs.next_eval_at.is_some_and(|t| t > now) {
                continue;
            }
            let m = tick.measurements.get(&spec.name).unwrap_or(&Measurement::NoData);
            let assessment = spec.check.assess(&mut gs.measure, m, now);
            let before = gs.status;
            gs.record(spec, &assessment, now);
            let after = gs.status;
            self.evaluations.push(Evaluation { guardrail: spec.name.clone(), at: now, assessment, status: after, dry_run: spec.dry_run });
            if before != after {
                let status = self.st.status;
                self.record(Event::GuardrailChanged { guardrail: spec.name.clone(), from: before, to: after }, Cause::Evaluation, status);
            }
        }
    }
}
