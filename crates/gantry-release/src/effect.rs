//! What the server must do: the only way decisions leave this crate.

use serde::{Deserialize, Serialize};

use crate::Percentage;

/// Severity of a notice.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Severity {
    /// Progress report.
    Info,
    /// Needs a human soon (paused, awaiting approval).
    Warning,
    /// Something was rolled back or switched off.
    Critical,
}

/// A side effect for the server to apply, in order. Effects are idempotent by design: applying
/// one twice (after a crash between applying and persisting) leaves the same result.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Effect {
    /// Set the rollout percentage of one rule of a flag in an environment.
    SetPercentage {
        /// Flag key.
        flag: String,
        /// Environment name.
        environment: String,
        /// Rule (strategy) id whose percentage is ramped; `None` = the flag's rollout rule.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        rule: Option<String>,
        /// Target share.
        percentage: Percentage,
    },
    /// Turn a flag on or off in an environment (scheduled changes).
    SetEnabled {
        /// Flag key.
        flag: String,
        /// Environment name.
        environment: String,
        /// New state.
        enabled: bool,
    },
    /// Tell humans (event stream, notifiers).
    Notify {
        /// How urgent.
        severity: Severity,
        /// Flag key, if the notice is about a flag.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        flag: Option<String>,
        /// Environment name, if any.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        environment: Option<String>,
        /// One-line summary.
        summary: String,
    },
    /// Abort the rollout of a flag in an environment (feed `Command::Abort` to its state machine).
    AbortRollout {
        /// Flag key.
        flag: String,
        /// Environment name.
        environment: String,
    },
    /// Flip a kill switch: turn the flag off in the environment.
    KillSwitch {
        /// Flag key.
        flag: String,
        /// Environment name.
        environment: String,
    },
    /// Turn maintenance mode on or off.
    MaintenanceMode {
        /// New state.
        enabled: bool,
    },
}
