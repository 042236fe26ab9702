//! The Gantry evaluation engine.
//!
//! It owns the native flag model ([`model`]), compiles a configuration into an
//! evaluation [`Plan`] for one environment, and evaluates flags against a
//! [`Context`] with Unleash-exact bucketing ([`hash`]). The [`unleash`]
//! adapter converts Unleash client-features documents to and from the native
//! model.
//!
//! Design decision: the engine is pure. It performs no I/O, reads no clock and
//! draws no randomness of its own: the caller passes the current time and a
//! random seed in [`EvalInputs`]. Configuration is compiled once per change
//! into an immutable [`Plan`]; readers share it through an atomically swapped
//! [`Engine`] snapshot, so evaluation takes no locks and, for a single flag,
//! allocates nothing.
#![deny(missing_docs)]
#![forbid(unsafe_code)]

pub mod context;
pub mod eval;
pub mod hash;
pub mod model;
pub mod plan;
mod strtab;
pub mod unleash;

use std::sync::Arc;

pub use context::{Context, EvalInputs, StandardField};
pub use eval::{ErrorCode, Evaluation, Reason, Value};
pub use model::{Flag, FlagKind, FlagSet};
pub use plan::{CompileOptions, CompiledFlag, CompiledVariant, Diagnostic, FlagIndex, Plan, TypedValue};

/// A shareable, atomically replaceable plan. Cloning is cheap; every clone
/// sees updates.
#[derive(Debug, Clone)]
pub struct Engine {
    current: Arc<arc_swap::ArcSwap<Plan>>,
}

impl Default for Engine {
    fn default() -> Self {
        Self::new(Plan::empty())
    }
}

impl Engine {
    /// An engine serving `plan`.
    pub fn new(plan: Plan) -> Self {
        Engine { current: Arc::new(arc_swap::ArcSwap::from_pointee(plan)) }
    }

    /// The current snapshot. Hold it for as long as one request needs a
    /// consistent view.
    pub fn snapshot(&self) -> Arc<Plan> {
        self.current.load_full()
    }

    /// Replaces the plan; readers holding an older snapshot keep it.
    pub fn swap(&self, plan: Plan) -> Arc<Plan> {
        self.current.swap(Arc::new(plan))
    }

    /// Compiles `set` and swaps it in, returning the diagnostics.
    pub fn load(&self, set: &FlagSet, options: &CompileOptions) -> Vec<Diagnostic> {
        let plan = Plan::compile(set, options);
        let diags = plan.diagnostics().to_vec();
        self.swap(plan);
        diags
    }
}
