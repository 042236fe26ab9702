//! Gantry's wire types: request and response bodies shared by the server,
//! the SDK and the CLI, the single error envelope and its code table.
//!
//! Design decision: serde only (no HTTP framework), so the SDK stays light.
//! Flag definitions travel in the engine's own model ([`gantry_engine::model`]).
#![deny(missing_docs)]
#![forbid(unsafe_code)]

mod automation;
mod error;
mod experiment;
mod release;
mod stream;

pub use automation::{
    AlertRuleRequest, AlertRuleResponse, AlertTarget, CreateRolloutRequest, CreateScheduleRequest, CreateTriggerRequest, CreatedTrigger,
    GuardrailSource, NotifierKind, NotifierRequest, NotifierResponse, PromoteRequest, RampStep, RolloutNotice, RolloutResponse,
    ScheduleResponse, TriggerAction, TriggerResponse,
};
pub use error::{ApiErrorBody, ErrorCode, FieldError};
pub use experiment::{
    Event, EventBatch, EventKind, EventsAccepted, Experiment, ExperimentResponse, ExperimentStatus, MetricDef, MetricKind, MetricRole,
    StatsEngine, MAX_EVENTS_PER_BATCH,
};
pub use release::{
    CompiledMaintenance, EnvironmentStatus, Maintenance, MaintenanceResponse, MaintenanceState, RecordRelease, Release, StatusDocument,
    VersionCheck, MAINTENANCE_FLAG, MAINTENANCE_VARIANT,
};
pub use stream::{StreamEvent, StreamSnapshot};

use gantry_engine::model::{Flag, Segment};
use serde::{Deserialize, Serialize};

/// Version prefix of the admin API.
pub const API_V1: &str = "/api/v1";

/// A page of results with an opaque cursor for the next one.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Page<T> {
    /// The items.
    pub items: Vec<T>,
    /// Pass as `cursor` to get the next page; absent on the last page.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_cursor: Option<String>,
    /// Number of items matching the query, over all pages.
    pub total: u64,
}

/// A stored flag with its bookkeeping.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FlagResponse {
    /// The definition.
    #[serde(flatten)]
    pub flag: Flag,
    /// Optimistic-concurrency version (also the ETag).
    pub version: i64,
    /// Creation time (RFC 3339).
    pub created_at: String,
    /// Last change (RFC 3339).
    pub updated_at: String,
}

/// A stored segment with its version.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SegmentResponse {
    /// The definition.
    #[serde(flatten)]
    pub segment: Segment,
    /// Optimistic-concurrency version.
    pub version: i64,
}

/// An environment.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Environment {
    /// Name (`production`, ...): lower-case letters, digits, `-` and `_`.
    pub name: String,
    /// Free text.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// Changes here ask for confirmation in the dashboard.
    #[serde(default)]
    pub protected: bool,
    /// Display order.
    #[serde(default)]
    pub sort_order: i64,
}

/// A project (one default project today).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Project {
    /// Id.
    pub id: String,
    /// Name.
    pub name: String,
}

/// Kinds of API token.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TokenKind {
    /// Everything.
    Admin,
    /// Server SDKs: one environment's full configuration, and metrics.
    Server,
    /// Client/frontend SDKs: one environment's evaluated results only.
    Client,
}

impl TokenKind {
    /// The lower-case name.
    pub fn as_str(self) -> &'static str {
        match self {
            TokenKind::Admin => "admin",
            TokenKind::Server => "server",
            TokenKind::Client => "client",
        }
    }
}

/// Request to create a token.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreateTokenRequest {
    /// Token kind.
    pub kind: TokenKind,
    /// Required for server and client tokens.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub environment: Option<String>,
    /// Label for humans.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Optional expiry (RFC 3339).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<String>,
}

/// A token as listed (never the secret).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TokenInfo {
    /// Id.
    pub id: String,
    /// Kind.
    pub kind: TokenKind,
    /// Environment scope.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub environment: Option<String>,
    /// Label.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// First characters of the secret, to recognise it.
    pub prefix: String,
    /// Creation time.
    pub created_at: String,
    /// Expiry.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<String>,
    /// Revocation time.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub revoked_at: Option<String>,
}

/// A newly created token: the only time the secret is shown.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CreatedToken {
    /// The token's listing.
    #[serde(flatten)]
    pub info: TokenInfo,
    /// The secret to put in `Authorization`.
    pub secret: String,
}

/// One audit log entry.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AuditEntryResponse {
    /// Sequence number (1, 2, ...).
    pub seq: i64,
    /// When (RFC 3339).
    pub at: String,
    /// Who (token id or `system`).
    pub actor: String,
    /// What (`flag.create`, `flag.update`, ...).
    pub action: String,
    /// Kind of object (`flag`, `segment`, ...).
    pub target_kind: String,
    /// Its key.
    pub target: String,
    /// State before.
    pub before: Option<serde_json::Value>,
    /// State after.
    pub after: Option<serde_json::Value>,
    /// Hash of the previous entry.
    pub prev_hash: String,
    /// This entry's hash.
    pub hash: String,
}

/// Result of checking the audit chain.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditVerification {
    /// Whether every link holds.
    pub ok: bool,
    /// Entries checked.
    pub entries: u64,
    /// First sequence number that does not verify.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub first_bad_seq: Option<i64>,
}

/// Usage of one flag in one environment (the stale-flag signal).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FlagUsage {
    /// Flag key.
    pub flag: String,
    /// Environment.
    pub environment: String,
    /// Last evaluation seen (RFC 3339).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_evaluated_at: Option<String>,
    /// Evaluations that answered on.
    pub yes: u64,
    /// Evaluations that answered off.
    pub no: u64,
    /// Count per variant name.
    pub variants: std::collections::BTreeMap<String, u64>,
}

/// The whole state, as exported and imported.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExportDocument {
    /// Format version (1).
    pub format: u32,
    /// Environments.
    pub environments: Vec<Environment>,
    /// Flags.
    pub flags: Vec<Flag>,
    /// Segments.
    pub segments: Vec<Segment>,
}

/// Summary of an import.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ImportSummary {
    /// Flags created.
    pub flags_created: u64,
    /// Flags updated.
    pub flags_updated: u64,
    /// Segments written.
    pub segments: u64,
    /// Compile problems found in the imported flags.
    pub diagnostics: Vec<String>,
}

/// Health document (`application/health+json`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Health {
    /// `pass`, `warn` or `fail`.
    pub status: String,
    /// Server version.
    pub version: String,
}
