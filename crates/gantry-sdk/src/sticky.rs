//! Sticky experiment assignments: a unit keeps the variant it was first
//! served in a running experiment, even when the experiment's weights change
//! mid-run (GrowthBook calls this sticky bucketing; Optimizely a user profile
//! service). Without it, changing 50/50 to 10/90 moves units that already saw
//! one arm into the other, which contaminates both arms.
//!
//! The SDK asks an [`AssignmentStore`] before serving a variant of a flag
//! with a running experiment. The default, [`MemoryAssignments`], remembers
//! the most recent assignments of this process; plug in a shared store (a
//! cookie, Redis, your user table) to make assignments sticky across
//! processes and restarts. Server-side evaluations (OFREP, frontend API) are
//! sticky on their own: the server answers from its exposure log.

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;

/// Where assignments are remembered. Implementations must be cheap and must
/// not block for long: they are called on the evaluation path, only for flags
/// with a running experiment.
pub trait AssignmentStore: Send + Sync {
    /// The variant `unit` was assigned in `experiment`, if any.
    fn get(&self, experiment: &str, unit: &str) -> Option<String>;
    /// Records that `unit` was served `variant` in `experiment`.
    fn put(&self, experiment: &str, unit: &str, variant: &str);
}

/// (experiment, unit) → variant, plus insertion order for eviction.
type Remembered = (HashMap<(String, String), String>, VecDeque<(String, String)>);

/// The default store: in process memory, bounded; beyond `capacity` the
/// oldest assignments are forgotten (those units fall back to bucketing).
#[derive(Debug)]
pub struct MemoryAssignments {
    capacity: usize,
    inner: Mutex<Remembered>,
}

impl MemoryAssignments {
    /// Remembers up to `capacity` assignments.
    pub fn new(capacity: usize) -> Self {
        MemoryAssignments { capacity: capacity.max(1), inner: Mutex::new((HashMap::new(), VecDeque::new())) }
    }

    /// How many assignments are remembered.
    pub fn len(&self) -> usize {
        self.inner.lock().unwrap_or_else(|p| p.into_inner()).0.len()
    }

    /// Whether nothing is remembered.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl Default for MemoryAssignments {
    /// 100,000 assignments (a few MiB).
    fn default() -> Self {
        MemoryAssignments::new(100_000)
    }
}

impl AssignmentStore for MemoryAssignments {
    fn get(&self, experiment: &str, unit: &str) -> Option<String> {
        let g = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        g.0.get(&(experiment.to_owned(), unit.to_owned())).cloned()
    }

    fn put(&self, experiment: &str, unit: &str, variant: &str) {
        let mut g = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        let key = (experiment.to_owned(), unit.to_owned());
        if g.0.insert(key.clone(), variant.to_owned()).is_none() {
            g.1.push_back(key);
        }
        while g.0.len() > self.capacity {
            let Some(old) = g.1.pop_front() else { break };
            g.0.remove(&old);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn remembers_per_experiment_and_forgets_the_oldest_beyond_capacity() {
        let m = MemoryAssignments::new(2);
        m.put("e1", "u1", "a");
        m.put("e2", "u1", "b");
        assert_eq!(m.get("e1", "u1").as_deref(), Some("a"));
        assert_eq!(m.get("e2", "u1").as_deref(), Some("b"));
        m.put("e1", "u2", "b");
        assert_eq!(m.len(), 2);
        assert_eq!(m.get("e1", "u1"), None, "the oldest went first");
        assert_eq!(m.get("e1", "u2").as_deref(), Some("b"));
    }
}
