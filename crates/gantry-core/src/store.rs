//! The storage contract. Backends (SQLite today, PostgreSQL next) implement
//! [`Store`]; the server is generic over it.

use std::future::Future;

use chrono::{DateTime, Utc};
use gantry_api_types::{Environment, Experiment, Maintenance, Release, TokenKind};
use gantry_engine::model::{Flag, Segment};

/// Errors of a storage backend.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The object does not exist.
    #[error("{kind} `{key}` not found")]
    NotFound {
        /// `flag`, `segment`, `environment`, `token`.
        kind: &'static str,
        /// Its key.
        key: String,
    },
    /// The object exists already.
    #[error("{kind} `{key}` already exists")]
    AlreadyExists {
        /// Kind.
        kind: &'static str,
        /// Key.
        key: String,
    },
    /// The stored version is not the expected one.
    #[error("{kind} `{key}` is at version {current}, not the expected one")]
    VersionMismatch {
        /// Kind.
        kind: &'static str,
        /// Key.
        key: String,
        /// Current version.
        current: i64,
    },
    /// The database failed.
    #[error("storage backend failed")]
    Backend(#[source] Box<dyn std::error::Error + Send + Sync>),
}

/// A flag as stored.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredFlag {
    /// The definition.
    pub flag: Flag,
    /// Version, 1 on creation, +1 per change.
    pub version: i64,
    /// Created.
    pub created_at: DateTime<Utc>,
    /// Last changed.
    pub updated_at: DateTime<Utc>,
}

/// A segment as stored.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredSegment {
    /// The definition.
    pub segment: Segment,
    /// Version.
    pub version: i64,
}

/// An environment as stored.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredEnvironment {
    /// The definition.
    pub environment: Environment,
    /// Version.
    pub version: i64,
}

/// A token as stored: the hash, never the secret.
#[derive(Clone, PartialEq, Eq)]
pub struct StoredToken {
    /// Id.
    pub id: String,
    /// Kind.
    pub kind: TokenKind,
    /// Environment scope (server and client tokens).
    pub environment: Option<String>,
    /// Label.
    pub name: Option<String>,
    /// Displayable prefix of the secret.
    pub prefix: String,
    /// SHA-256 of the secret, hex.
    pub secret_hash: String,
    /// Created.
    pub created_at: DateTime<Utc>,
    /// Expiry.
    pub expires_at: Option<DateTime<Utc>>,
    /// Revocation.
    pub revoked_at: Option<DateTime<Utc>>,
}

impl std::fmt::Debug for StoredToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StoredToken")
            .field("id", &self.id)
            .field("kind", &self.kind)
            .field("environment", &self.environment)
            .finish_non_exhaustive()
    }
}

/// An experiment as stored.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredExperiment {
    /// The definition.
    pub experiment: Experiment,
    /// Version.
    pub version: i64,
}

/// Maintenance settings of one environment as stored.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredMaintenance {
    /// Environment name.
    pub environment: String,
    /// The settings.
    pub maintenance: Maintenance,
    /// Version, 1 on creation.
    pub version: i64,
    /// Last change.
    pub updated_at: DateTime<Utc>,
}

/// One durably stored batch of ingested events (the events log).
#[derive(Debug, Clone, PartialEq)]
pub struct EventBatchRow {
    /// Sequence number, assigned by the store (ascending).
    pub id: i64,
    /// Environment the events belong to.
    pub environment: String,
    /// Arrival time, ms since the epoch.
    pub received_ms: i64,
    /// The events, as a JSON array of [`gantry_api_types::Event`].
    pub events: String,
}

/// A release-automation object (a rollout, and later schedules, alert rules,
/// triggers): a definition document, versioned and audited like flags, plus
/// a runtime state document that the controller may also save quietly
/// ([`Store::save_release_state`]) between audited transitions.
#[derive(Debug, Clone, PartialEq)]
pub struct ReleaseObject {
    /// `rollout`, ...
    pub kind: String,
    /// Key within the kind (rollouts: `environment/flag`).
    pub key: String,
    /// The definition (JSON).
    pub doc: serde_json::Value,
    /// The runtime state (JSON).
    pub state: serde_json::Value,
}

/// A release-automation object as stored.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredReleaseObject {
    /// The object.
    pub object: ReleaseObject,
    /// Version: 1 on creation, +1 per audited change (quiet state saves keep it).
    pub version: i64,
    /// Created.
    pub created_at: DateTime<Utc>,
    /// Last audited change.
    pub updated_at: DateTime<Utc>,
}

/// Everything a server needs in memory.
#[derive(Debug, Clone, Default)]
pub struct Snapshot {
    /// Configuration revision (0 for an empty database).
    pub revision: i64,
    /// Environments.
    pub environments: Vec<StoredEnvironment>,
    /// Flags.
    pub flags: Vec<StoredFlag>,
    /// Segments.
    pub segments: Vec<StoredSegment>,
    /// Tokens (including revoked ones).
    pub tokens: Vec<StoredToken>,
    /// Experiments.
    pub experiments: Vec<StoredExperiment>,
    /// Maintenance settings per environment (only those ever set).
    pub maintenance: Vec<StoredMaintenance>,
    /// Recorded releases, in record order (ascending id).
    pub releases: Vec<Release>,
}

/// An optimistic-concurrency expectation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Expect {
    /// The object must not exist (create).
    Absent,
    /// The object must exist at exactly this version.
    Version(i64),
    /// The object must exist, any version.
    Exists,
    /// Create or replace.
    Any,
}

/// One change inside a [`Commit`].
#[derive(Debug, Clone)]
pub enum Mutation {
    /// Create or replace a flag.
    PutFlag {
        /// The flag.
        flag: Flag,
        /// Expectation.
        expect: Expect,
    },
    /// Delete a flag.
    DeleteFlag {
        /// Key.
        key: String,
        /// Expectation.
        expect: Expect,
    },
    /// Create or replace a segment.
    PutSegment {
        /// The segment.
        segment: Segment,
        /// Expectation.
        expect: Expect,
    },
    /// Delete a segment.
    DeleteSegment {
        /// Id.
        id: u32,
        /// Expectation.
        expect: Expect,
    },
    /// Create or replace an environment.
    PutEnvironment {
        /// The environment.
        environment: Environment,
        /// Expectation.
        expect: Expect,
    },
    /// Delete an environment.
    DeleteEnvironment {
        /// Name.
        name: String,
        /// Expectation.
        expect: Expect,
    },
    /// Create or replace an experiment.
    PutExperiment {
        /// The experiment.
        experiment: Experiment,
        /// Expectation.
        expect: Expect,
    },
    /// Delete an experiment.
    DeleteExperiment {
        /// Key.
        key: String,
        /// Expectation.
        expect: Expect,
    },
    /// Create or replace a release-automation object (definition and state).
    PutReleaseObject {
        /// The object.
        object: ReleaseObject,
        /// Expectation.
        expect: Expect,
    },
    /// Delete a release-automation object.
    DeleteReleaseObject {
        /// Kind.
        kind: String,
        /// Key.
        key: String,
        /// Expectation.
        expect: Expect,
    },
    /// Insert a token.
    InsertToken(StoredToken),
    /// Revoke a token.
    RevokeToken {
        /// Id.
        id: String,
    },
    /// Create or replace an environment's maintenance settings (kind
    /// `maintenance`, keyed by environment).
    PutMaintenance {
        /// Environment name.
        environment: String,
        /// The settings.
        maintenance: Maintenance,
        /// Expectation.
        expect: Expect,
    },
    /// Append a release record with the id given (the next one, chosen by
    /// the writer under its lock; a taken id fails with `AlreadyExists`).
    /// The id is the mutation's entry in [`Committed::versions`].
    InsertRelease(Release),
}

/// An audit entry to write with a commit.
#[derive(Debug, Clone, PartialEq)]
pub struct AuditDraft {
    /// Who.
    pub actor: String,
    /// What (`flag.update`).
    pub action: String,
    /// Kind of object.
    pub target_kind: String,
    /// Its key.
    pub target: String,
    /// Before.
    pub before: Option<serde_json::Value>,
    /// After.
    pub after: Option<serde_json::Value>,
}

/// A stored audit entry.
#[derive(Debug, Clone, PartialEq)]
pub struct AuditEntry {
    /// Sequence number from 1.
    pub seq: i64,
    /// Time, RFC 3339.
    pub at: String,
    /// Who.
    pub actor: String,
    /// What.
    pub action: String,
    /// Kind of object.
    pub target_kind: String,
    /// Its key.
    pub target: String,
    /// Before.
    pub before: Option<serde_json::Value>,
    /// After.
    pub after: Option<serde_json::Value>,
    /// Previous entry's hash.
    pub prev_hash: String,
    /// This entry's hash.
    pub hash: String,
}

/// An atomic write: all mutations and audit entries, or nothing.
#[derive(Debug, Clone)]
pub struct Commit {
    /// Changes, applied in order.
    pub mutations: Vec<Mutation>,
    /// Audit entries, chained in order.
    pub audit: Vec<AuditDraft>,
    /// The commit time.
    pub at: DateTime<Utc>,
}

/// What a commit produced.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Committed {
    /// The new configuration revision.
    pub revision: i64,
    /// The new version of each mutated object, in mutation order (0 for deletions).
    pub versions: Vec<i64>,
}

/// Usage counters of one flag in one environment.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct UsageRow {
    /// Flag key.
    pub flag: String,
    /// Environment.
    pub environment: String,
    /// Last evaluation, ms since the epoch.
    pub last_evaluated_ms: i64,
    /// On answers.
    pub yes: u64,
    /// Off answers.
    pub no: u64,
    /// Per-variant counts.
    pub variants: std::collections::BTreeMap<String, u64>,
}

/// The storage contract. Every method is atomic; futures are `Send` so
/// handlers can await them.
pub trait Store: Sized + Clone + Send + Sync + 'static {
    /// Loads everything the server keeps in memory.
    fn load(&self) -> impl Future<Output = Result<Snapshot, StoreError>> + Send;

    /// The current configuration revision (cheap; polled to notice writes
    /// made by other processes).
    fn revision(&self) -> impl Future<Output = Result<i64, StoreError>> + Send;

    /// Applies a commit atomically, checking every expectation first.
    fn commit(&self, commit: Commit) -> impl Future<Output = Result<Committed, StoreError>> + Send;

    /// Audit entries with `seq < before` (newest first), at most `limit`.
    fn audit_page(&self, before: Option<i64>, limit: u32) -> impl Future<Output = Result<Vec<AuditEntry>, StoreError>> + Send;

    /// Every audit entry, oldest first.
    fn audit_all(&self) -> impl Future<Output = Result<Vec<AuditEntry>, StoreError>> + Send;

    /// Adds usage counters (summing counts, keeping the latest time).
    fn add_usage(&self, rows: Vec<UsageRow>) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// All usage counters.
    fn usage(&self) -> impl Future<Output = Result<Vec<UsageRow>, StoreError>> + Send;

    /// Appends event batches durably, in one transaction (group commit);
    /// returns their ids in order. Ids ascend across calls.
    fn append_events(&self, batches: Vec<EventBatchRow>) -> impl Future<Output = Result<Vec<i64>, StoreError>> + Send;

    /// Event batches with `id > after`, oldest first, at most `limit`.
    fn events_after(&self, after: i64, limit: u32) -> impl Future<Output = Result<Vec<EventBatchRow>, StoreError>> + Send;

    /// Durably replaces the checkpoint `name`: state derived from the events
    /// log up to batch `upto` (so a restart replays only later batches).
    fn save_checkpoint(&self, name: &str, upto: i64, data: Vec<u8>) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// The checkpoint `name` and the batch id it covers, if one was saved.
    fn load_checkpoint(&self, name: &str) -> impl Future<Output = Result<Option<(i64, Vec<u8>)>, StoreError>> + Send;

    /// Every release-automation object of one kind, by key.
    fn release_objects(&self, kind: &str) -> impl Future<Output = Result<Vec<StoredReleaseObject>, StoreError>> + Send;

    /// Replaces the runtime state of a release-automation object without an
    /// audit entry, a version or a revision change (guardrail bookkeeping
    /// between transitions). `NotFound` when the object is gone.
    fn save_release_state(&self, kind: &str, key: &str, state: serde_json::Value) -> impl Future<Output = Result<(), StoreError>> + Send;
}
