//! Events of the native server-sent event stream (`/api/v1/stream`).

use gantry_engine::model::{Flag, Segment};
use serde::{Deserialize, Serialize};

use crate::release::{MaintenanceState, Release};

/// The full configuration of one environment, as streams and SDKs see it:
/// each flag carries only that environment's configuration.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct StreamSnapshot {
    /// Configuration revision (the event id).
    pub revision: i64,
    /// Environment.
    pub environment: String,
    /// Flags.
    pub flags: Vec<Flag>,
    /// Segments.
    pub segments: Vec<Segment>,
    /// Flags with a running experiment: SDKs report exposures of these.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub experiment_flags: Vec<String>,
    /// The running experiment of each of those flags (flag key → experiment
    /// key): SDKs keep sticky assignments per experiment.
    #[serde(default, skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub experiments: std::collections::BTreeMap<String, String>,
    /// Maintenance mode of the environment, when it was ever set.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub maintenance: Option<MaintenanceState>,
}

/// One stream event. The SSE `event:` field is the variant name in
/// kebab-case; `id:` is the revision.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "kebab-case")]
pub enum StreamEvent {
    /// Everything (first event, or after a resume gap).
    Snapshot(StreamSnapshot),
    /// A flag was created or changed.
    FlagUpdated {
        /// Revision.
        revision: i64,
        /// The flag (this environment's configuration only).
        flag: Flag,
    },
    /// A flag was deleted.
    FlagDeleted {
        /// Revision.
        revision: i64,
        /// Its key.
        key: String,
    },
    /// A segment was created or changed.
    SegmentUpdated {
        /// Revision.
        revision: i64,
        /// The segment.
        segment: Segment,
    },
    /// A segment was deleted.
    SegmentDeleted {
        /// Revision.
        revision: i64,
        /// Its id.
        id: u32,
    },
    /// Maintenance mode of the environment changed.
    MaintenanceUpdated {
        /// Revision.
        revision: i64,
        /// The new settings.
        maintenance: MaintenanceState,
    },
    /// A new version of an app was recorded for this environment.
    ReleaseRecorded {
        /// Revision.
        revision: i64,
        /// The release.
        release: Release,
    },
    /// A rollout on a flag of this environment changed state (release automation).
    Rollout {
        /// Revision.
        revision: i64,
        /// What happened.
        rollout: crate::RolloutNotice,
    },
}

impl StreamEvent {
    /// The SSE event name.
    pub fn name(&self) -> &'static str {
        match self {
            StreamEvent::Snapshot(_) => "snapshot",
            StreamEvent::FlagUpdated { .. } => "flag-updated",
            StreamEvent::FlagDeleted { .. } => "flag-deleted",
            StreamEvent::SegmentUpdated { .. } => "segment-updated",
            StreamEvent::SegmentDeleted { .. } => "segment-deleted",
            StreamEvent::MaintenanceUpdated { .. } => "maintenance-updated",
            StreamEvent::ReleaseRecorded { .. } => "release-recorded",
            StreamEvent::Rollout { .. } => "rollout",
        }
    }

    /// The revision this event brings the subscriber to.
    pub fn revision(&self) -> i64 {
        match self {
            StreamEvent::Snapshot(s) => s.revision,
            StreamEvent::FlagUpdated { revision, .. }
            | StreamEvent::FlagDeleted { revision, .. }
            | StreamEvent::SegmentUpdated { revision, .. }
            | StreamEvent::SegmentDeleted { revision, .. }
            | StreamEvent::MaintenanceUpdated { revision, .. }
            | StreamEvent::ReleaseRecorded { revision, .. }
            | StreamEvent::Rollout { revision, .. } => *revision,
        }
    }
}
