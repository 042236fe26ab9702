//! The crate's one error type.

use crate::rollout::Status;

/// Why a plan, a command or an input was rejected. The state is never changed by a rejected input.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ReleaseError {
    /// A percentage above 100 %.
    #[error("percentage out of range: {basis_points} basis points (maximum 10000)")]
    PercentageOutOfRange {
        /// The rejected value.
        basis_points: u32,
    },
    /// A rollout plan without steps.
    #[error("a rollout plan needs at least one step")]
    EmptyPlan,
    /// A ramp step lower than an earlier one (ramps only ever add users).
    #[error("step {index} lowers the percentage ({percentage_bp} bp after {previous_bp} bp); ramps must not decrease")]
    DecreasingStep {
        /// Index of the offending step.
        index: usize,
        /// Its percentage in basis points.
        percentage_bp: u32,
        /// The highest earlier percentage in basis points.
        previous_bp: u32,
    },
    /// Two guardrails (or alert rules) with one name.
    #[error("duplicate guardrail name {name:?}")]
    DuplicateGuardrail {
        /// The repeated name.
        name: String,
    },
    /// A guardrail or rule setting that cannot work.
    #[error("invalid setting {field} of {name:?}: {problem}")]
    InvalidSetting {
        /// Guardrail, rule or policy name.
        name: String,
        /// Field name.
        field: &'static str,
        /// What is wrong.
        problem: &'static str,
    },
    /// A command that does not apply in the current status.
    #[error("command {command} is not allowed while the rollout is {status:?}")]
    CommandNotAllowed {
        /// The command's name.
        command: &'static str,
        /// The status it was sent in.
        status: Status,
    },
    /// `promote` with an `expected_step` that is no longer current (a concurrent promote won).
    #[error("stale promote: expected step {expected}, rollout is at step {actual}")]
    StaleStep {
        /// Step the caller saw.
        expected: usize,
        /// Current step.
        actual: usize,
    },
    /// A persisted state that does not fit the plan (step index beyond the plan, for example).
    #[error("state does not match the plan: {problem}")]
    StateMismatch {
        /// What does not fit.
        problem: &'static str,
    },
    /// A schedule whose entries are not in time order, or a calendar ramp that decreases.
    #[error("invalid schedule: {problem}")]
    InvalidSchedule {
        /// What is wrong.
        problem: &'static str,
    },
}
