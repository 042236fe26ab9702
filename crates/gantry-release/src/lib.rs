//! Release automation decisions for Gantry (issue #5), as pure functions over plain data.
//!
//! This crate owns the *decisions* of progressive delivery: rollout plans and their state
//! machine, guardrail verdicts (including a sequential treatment-vs-control test), scheduled
//! changes, health-probe bookkeeping, alert rules and the notification policy with its payloads.
//! It does no I/O, reads no clock and draws no randomness: the caller passes `now`
//! ([`Timestamp`], milliseconds since the epoch) and seeds, and applies the returned
//! [`Effect`]s. Every state is `serde` data, so it can be persisted and restored exactly (the
//! floating-point sums that decisions depend on are serialised losslessly).
//!
//! # Driving it from the server
//!
//! * **Rollouts** ([`rollout`]): persist the [`rollout::RolloutPlan`] and one
//!   [`rollout::RolloutState`] per rollout. On each controller tick (every few seconds, or at
//!   [`rollout::next_wakeup`]) ask [`rollout::due_guardrails`] what to measure, build a
//!   [`rollout::Tick`] with one [`guardrail::Measurement`] per due guardrail, call
//!   [`rollout::step`], and in one transaction store the new state, the transitions (audit log,
//!   event stream) and the effects (outbox); then apply the effects. Human commands go through
//!   the same [`rollout::step`]. A crash between storing and applying is safe: effects are
//!   idempotent and a repeated tick at the same `now` does nothing.
//! * **Counters, not windows**: for error-rate guardrails pass the current per-arm request and
//!   error *counters* ([`guardrail::ArmCounters`], any origin, e.g. the Prometheus counters the
//!   server already exports). The state keeps earlier readings and derives both the sliding
//!   window and the disjoint increments the sequential test needs. Window *values* that cannot
//!   be differenced (p95 latency, custom metrics) are computed by the server over the
//!   guardrail's `window_ms`.
//! * **Schedules** ([`schedule`]): persist the `last_applied` cursor; call
//!   [`schedule::due`] each tick and apply [`schedule::Due::effects`].
//! * **Probes** ([`probe`]): run the HTTP request when [`probe::ProbeState::is_due`], pass the
//!   result through [`probe::classify`] into [`probe::ProbeState::record`].
//! * **Alerts** ([`alert`], [`notify`]): evaluate each rule when due with
//!   [`alert::evaluate_alert`]; apply its effects (abort rollout, kill switch, maintenance
//!   mode); feed [`alert::to_alert`] results into [`notify::NotifyState::ingest`]; send what
//!   [`notify::NotifyState::flush`] returns as [`notify::webhook_payload`] or
//!   [`notify::slack_payload`], retrying per [`notify::next_attempt`].
//!
//! # Semantics chosen
//!
//! Following the proposal in `delivery.md` §9:
//!
//! * A plan is ordered steps: a ramp (percentage + hold) or an approval wait (Argo's `pause: {}`).
//!   Ramp percentages must not decrease; while progressing the emitted percentage only rises,
//!   so with sticky bucketing a ramp only adds users.
//! * Each evaluation is Successful, Failed, Inconclusive or Error (Argo). A breach must persist
//!   for `for_ms` (Prometheus `for`) before it counts; counted failures are budgeted by
//!   `failure_limit` (total, default 0 = first one) and optionally `consecutive_failure_limit`
//!   (the "N in a row" users ask for); more than `consecutive_error_limit` (4) errors in a row
//!   act like a failure. `min_requests` turns thin windows into Inconclusive, and the no-data
//!   policy is explicit (success / inconclusive / failure).
//! * Failed or errored guardrails trigger `on_failure`: back to 0 % (`rolled_back`, default),
//!   back one step and pause, or pause. Guardrails run while progressing or awaiting approval,
//!   not while paused (a paused rollout is in human hands).
//! * Where a control arm exists, [`guardrail::Condition::Sequential`] compares error rates
//!   with a one-sided always-valid test (normal-mixture confidence sequence on a stratified
//!   difference, [`sequential`]), so looking every interval does not inflate false alarms and
//!   a shock shared by both arms cancels out. Thresholds relative to control
//!   ("p95 > 2 × control") and absolute thresholds ("error rate > 5 % for 5 min") are plain
//!   conditions.
//! * Alerts follow Prometheus: inactive → pending → firing → resolved, with `for` and
//!   `keep_firing_for` (counted from the first miss); notifications follow Alertmanager
//!   (group_wait 30 s, group_interval 5 min, repeat 4 h, resolved notices sent) and the webhook
//!   body is the v4 schema, so existing receivers work.
//!
//! Where this deviates from §9, and why:
//!
//! * **Inconclusive does not pause at once.** Argo pauses on the first inconclusive result
//!   (`inconclusiveLimit` 0), which is the top complaint for low-traffic services. Here an
//!   inconclusive guardrail only *holds promotion*: a step advances after its hold only when
//!   every guardrail's latest verdict is Successful; the step is extended (by its hold, or
//!   `max_step_extension_ms`) and then paused (or failed, `on_inconclusive`), as LaunchDarkly
//!   extends a step before reverting. An explicit `inconclusive_limit` still gives Argo's behaviour.
//! * **Resuming after an automatic pause resets the analysis** and re-enters the step with a fresh
//!   hold: a human has overridden the evidence, and otherwise the same budget would fire again at once.
//!   A manual pause, by contrast, just stops the hold clock.
//! * **No separate `failed`/`degraded` status**: a guardrail failure is `rolled_back` (at 0 %) or
//!   `paused` with its cause; `retry` starts over from step 0.
//! * `progress_deadline`, stickiness settings and background analysis starting at a later step
//!   are not modelled: guardrails run over the whole rollout.

#![forbid(unsafe_code)]
#![deny(missing_docs)]

pub mod alert;
mod effect;
mod error;
pub mod guardrail;
pub mod notify;
mod percent;
pub mod probe;
pub mod rng;
pub mod rollout;
pub mod schedule;
pub mod sequential;
pub mod time;

pub use effect::{Effect, Severity};
pub use error::ReleaseError;
pub use percent::Percentage;
pub use time::Timestamp;
