//! Release automation decisions for Gantry (issue #5), as pure functions over plain data.
//!
//! (Module doc to be completed.)

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
