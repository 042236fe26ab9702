//! Scheduled changes and calendar ramps: which changes are due, given what was applied last.

use serde::{Deserialize, Serialize};

use crate::rollout::RolloutTarget;
use crate::{Effect, Percentage, ReleaseError, Timestamp};

/// What a scheduled change does.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "action", rename_all = "snake_case")]
pub enum ScheduledAction {
    /// Turn the flag on.
    Enable,
    /// Turn the flag off.
    Disable,
    /// Set the rule's rollout percentage.
    SetPercentage {
        /// The share.
        percentage: Percentage,
    },
}

/// One change at one time.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ScheduledChange {
    /// When it takes effect.
    pub at: Timestamp,
    /// What it does.
    #[serde(flatten)]
    pub action: ScheduledAction,
}

/// Changes for one flag rule in one environment, in time order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Schedule {
    /// What changes.
    pub target: RolloutTarget,
    /// The changes, sorted by `at` (equal times apply in list order).
    pub changes: Vec<ScheduledChange>,
}

/// What [`due`] returns.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Due {
    /// Every change that came due since the last applied one, in order (for the audit log).
    pub changes: Vec<ScheduledChange>,
    /// The effects to apply: collapsed, so after downtime only the latest enable/disable and the
    /// latest percentage are applied (applying every intermediate step would be noise).
    pub effects: Vec<Effect>,
    /// The new cursor to persist (the `at` of the last change now applied); unchanged if nothing is due.
    pub last_applied: Option<Timestamp>,
    /// When the next change falls due.
    pub next_at: Option<Timestamp>,
}

impl Schedule {
    /// Checks the time order.
    pub fn validate(&self) -> Result<(), ReleaseError> {
        if self.changes.windows(2).any(|w| w[1].at < w[0].at) {
            return Err(ReleaseError::InvalidSchedule { problem: "changes are not in time order" });
        }
        Ok(())
    }

    /// A calendar ramp ("10 % on Monday, 25 % on Wednesday, …"): percentages must not decrease
    /// and times must increase. Resolving weekdays and time zones to instants is the caller's job
    /// ([`Timestamp::from_utc`] and [`Timestamp::weekday`] help).
    pub fn calendar_ramp(target: RolloutTarget, steps: &[(Timestamp, Percentage)]) -> Result<Schedule, ReleaseError> {
        if steps.windows(2).any(|w| w[1].0 <= w[0].0) {
            return Err(ReleaseError::InvalidSchedule { problem: "ramp times must increase" });
        }
        if steps.windows(2).any(|w| w[1].1 < w[0].1) {
            return Err(ReleaseError::InvalidSchedule { problem: "ramp percentages must not decrease" });
        }
        let changes =
            steps.iter().map(|(at, p)| ScheduledChange { at: *at, action: ScheduledAction::SetPercentage { percentage: *p } }).collect();
        Ok(Schedule { target, changes })
    }
}

/// The changes with `last_applied < at <= now`. Persist [`Due::last_applied`] after applying
/// the effects; calling again with the same cursor and `now` returns the same answer, and with
/// the new cursor returns nothing until the next change.
pub fn due(schedule: &Schedule, last_applied: Option<Timestamp>, now: Timestamp) -> Due {
    let fresh = |c: &&ScheduledChange| last_applied.is_none_or(|l| c.at > l);
    let changes: Vec<ScheduledChange> = schedule.changes.iter().filter(fresh).filter(|c| c.at <= now).cloned().collect();
    let next_at = schedule.changes.iter().filter(fresh).filter(|c| c.at > now).map(|c| c.at).min();
    let t = &schedule.target;
    let mut enabled = None;
    let mut percentage = None;
    for c in &changes {
        match c.action {
            ScheduledAction::Enable => enabled = Some(true),
            ScheduledAction::Disable => enabled = Some(false),
            ScheduledAction::SetPercentage { percentage: p } => percentage = Some(p),
        }
    }
    let mut effects = Vec::new();
    if let Some(p) = percentage {
        effects.push(Effect::SetPercentage {
            flag: t.flag.clone(),
            environment: t.environment.clone(),
            rule: t.rule.clone(),
            percentage: p,
        });
    }
    if let Some(e) = enabled {
        effects.push(Effect::SetEnabled { flag: t.flag.clone(), environment: t.environment.clone(), enabled: e });
    }
    let last_applied = changes.iter().map(|c| c.at).max().or(last_applied);
    Due { changes, effects, last_applied, next_at }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::time::HOUR_MS;

    fn target() -> RolloutTarget {
        RolloutTarget { flag: "f".into(), environment: "prod".into(), rule: None }
    }

    #[test]
    fn calendar_ramp_applies_in_order_and_catches_up() {
        let mon = Timestamp::from_utc(2026, 3, 2, 9, 0, 0).unwrap();
        assert_eq!(mon.weekday(), 0);
        let wed = mon.plus(48 * HOUR_MS);
        let fri = mon.plus(96 * HOUR_MS);
        let s = Schedule::calendar_ramp(target(), &[(mon, Percentage::pct(10)), (wed, Percentage::pct(25)), (fri, Percentage::pct(100))])
            .unwrap();
        let d = due(&s, None, mon.minus(1));
        assert!(d.changes.is_empty() && d.effects.is_empty());
        assert_eq!(d.next_at, Some(mon));
        let d = due(&s, None, mon);
        assert_eq!(d.changes.len(), 1);
        assert_eq!(d.last_applied, Some(mon));
        assert_eq!(d.next_at, Some(wed));
        // Idempotent with the new cursor.
        assert!(due(&s, d.last_applied, mon.plus(HOUR_MS)).changes.is_empty());
        // Down from Tuesday to Saturday: both later changes are due, one effect (100 %).
        let d = due(&s, Some(mon), fri.plus(HOUR_MS));
        assert_eq!(d.changes.len(), 2);
        assert_eq!(
            d.effects,
            vec![Effect::SetPercentage { flag: "f".into(), environment: "prod".into(), rule: None, percentage: Percentage::FULL }]
        );
        assert_eq!(d.next_at, None);
        assert!(Schedule::calendar_ramp(target(), &[(mon, Percentage::pct(25)), (wed, Percentage::pct(10))]).is_err());
        assert!(Schedule::calendar_ramp(target(), &[(wed, Percentage::pct(10)), (mon, Percentage::pct(25))]).is_err());
    }

    #[test]
    fn enable_disable_collapse() {
        let t0 = Timestamp(1_000);
        let s = Schedule {
            target: target(),
            changes: vec![
                ScheduledChange { at: t0, action: ScheduledAction::Enable },
                ScheduledChange { at: t0.plus(10), action: ScheduledAction::Disable },
            ],
        };
        s.validate().unwrap();
        let d = due(&s, None, t0.plus(10));
        assert_eq!(d.effects, vec![Effect::SetEnabled { flag: "f".into(), environment: "prod".into(), enabled: false }]);
    }
}
