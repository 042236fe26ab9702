//! Gantry's control-plane domain: validated names and keys, the [`Store`]
//! trait every backend implements, the hash-chained audit log, API token
//! secrets and the injectable [`Clock`].
//!
//! Design decision: writes are expressed as a [`Commit`] — a list of
//! [`Mutation`]s with optimistic-concurrency expectations plus their audit
//! entries — that a backend applies atomically. The trait stays small, and
//! every backend gets the same guarantees (412 on a stale version, audit in
//! the same transaction) from one contract.
#![forbid(unsafe_code)]

pub mod audit;
pub mod clock;
#[cfg(feature = "test-support")]
pub mod conformance;
pub mod store;
pub mod token;
pub mod validate;

pub use clock::{Clock, ManualClock, SystemClock};
pub use store::{
    AuditDraft, AuditEntry, Commit, Committed, EventBatchRow, Expect, Mutation, ReleaseObject, Snapshot, Store, StoreError,
    StoredEnvironment, StoredExperiment, StoredFlag, StoredMaintenance, StoredReleaseObject, StoredSegment, StoredToken, UsageRow,
};
