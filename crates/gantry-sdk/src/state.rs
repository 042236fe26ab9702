//! The SDK's shared state: the loaded configuration and compiled plan,
//! overrides, change listeners, readiness and usage counting.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{Receiver, SyncSender, TrySendError};
use std::sync::{Arc, Condvar, Mutex, Weak};
use std::time::Duration;

use arc_swap::ArcSwap;
use gantry_api_types::{CompiledMaintenance, Release, StreamSnapshot, MAINTENANCE_FLAG};
use gantry_engine::{CompileOptions, Evaluation, FlagKind, FlagSet, Plan};

use crate::{Builder, OverrideValue, SdkError};

/// Where the configuration in use came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    /// Nothing loaded yet: every flag serves its default.
    Empty,
    /// A bootstrap value or file.
    Bootstrap,
    /// The cache file (server unreachable at start-up).
    Cache,
    /// The server.
    Server,
}

/// A change to one flag.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FlagChange {
    /// The flag.
    pub key: String,
    /// False when the flag was removed.
    pub exists: bool,
    /// The configuration revision after the change.
    pub revision: i64,
}

pub(crate) struct Loaded {
    pub(crate) snapshot: StreamSnapshot,
    pub(crate) plan: Plan,
    pub(crate) source: Source,
    /// Flag names as shared strings (queued metrics without copying keys).
    names: HashMap<Box<str>, Arc<str>>,
    /// Flags with a running experiment (their evaluations are exposures).
    pub(crate) experiment_flags: std::collections::HashSet<String>,
    /// Flag key → running experiment key (the flag key when the server does not say).
    pub(crate) experiments: HashMap<String, String>,
    /// Maintenance mode with its allowlist compiled, when set.
    pub(crate) maintenance: Option<CompiledMaintenance>,
}

/// Exposure and track events waiting for upload: a bounded queue; when it
/// is full, events are dropped and counted. Exposures are sent once per
/// flag and unit (a bounded memory of what was sent).
pub(crate) struct EventQueue {
    tx: SyncSender<gantry_api_types::Event>,
    rx: Mutex<Receiver<gantry_api_types::Event>>,
    dropped: AtomicU64,
    exposed: Mutex<std::collections::HashSet<u64>>,
}

impl EventQueue {
    fn new(capacity: usize) -> Self {
        let (tx, rx) = std::sync::mpsc::sync_channel(capacity);
        EventQueue { tx, rx: Mutex::new(rx), dropped: AtomicU64::new(0), exposed: Mutex::new(std::collections::HashSet::new()) }
    }

    pub(crate) fn push(&self, e: gantry_api_types::Event) {
        if self.tx.try_send(e).is_err() {
            self.dropped.fetch_add(1, Ordering::Relaxed);
        }
    }

    pub(crate) fn expose(&self, flag: &str, variant: &str, unit: &str, now_ms: i64) {
        use std::hash::{Hash, Hasher};
        let mut h = std::collections::hash_map::DefaultHasher::new();
        (flag, variant, unit).hash(&mut h);
        {
            let Ok(mut seen) = self.exposed.try_lock() else {
                // Busy: try again at the next evaluation rather than block.
                return;
            };
            if !seen.insert(h.finish()) {
                return;
            }
            if seen.len() > 200_000 {
                seen.clear();
            }
        }
        self.push(gantry_api_types::Event {
            kind: gantry_api_types::EventKind::Exposure,
            unit_id: unit.to_owned(),
            flag: Some(flag.to_owned()),
            variant: Some(variant.to_owned()),
            name: None,
            value: None,
            timestamp: Some(now_ms),
            idempotency_key: Some(new_key()),
        });
    }

    pub(crate) fn dropped(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }

    /// Up to `max` queued events.
    pub(crate) fn take(&self, max: usize) -> Vec<gantry_api_types::Event> {
        let rx = self.rx.lock().unwrap_or_else(|p| p.into_inner());
        let mut out = Vec::new();
        while out.len() < max {
            match rx.try_recv() {
                Ok(e) => out.push(e),
                Err(_) => break,
            }
        }
        out
    }
}

/// A random idempotency key, so a retried upload is counted once.
pub(crate) fn new_key() -> String {
    format!("{:032x}", rand::random::<u128>())
}

type Listener = Box<dyn Fn(&FlagChange) + Send + Sync>;
type ReleaseListener = Box<dyn Fn(&Release) + Send + Sync>;

/// Usage counts: a map behind `try_lock`, a bounded queue when the map is
/// busy, and a drop counter when both are full. Evaluation never blocks.
/// Per flag: (yes, no, count per variant).
pub(crate) type Counts = BTreeMap<String, (u64, u64, BTreeMap<String, u64>)>;
/// One queued evaluation: flag, enabled, variant.
type Queued = (Arc<str>, bool, Option<Box<str>>);

pub(crate) struct Metrics {
    counts: Mutex<Counts>,
    tx: SyncSender<Queued>,
    rx: Mutex<Receiver<Queued>>,
    dropped: AtomicU64,
}

impl Metrics {
    fn new(capacity: usize) -> Self {
        let (tx, rx) = std::sync::mpsc::sync_channel(capacity);
        Metrics { counts: Mutex::new(BTreeMap::new()), tx, rx: Mutex::new(rx), dropped: AtomicU64::new(0) }
    }

    pub(crate) fn count(&self, loaded: &Loaded, ev: &Evaluation<'_>) {
        let Some(flag) = ev.flag else { return };
        let variant = ev.unleash_variant().map_or("disabled", |v| &*v.name);
        if let Ok(mut m) = self.counts.try_lock() {
            bump(&mut m, flag.key(), ev.enabled, variant, 1);
            return;
        }
        let name = loaded.names.get(flag.key()).cloned().unwrap_or_else(|| Arc::from(flag.key()));
        match self.tx.try_send((name, ev.enabled, Some(variant.into()))) {
            Ok(()) => {}
            Err(TrySendError::Full(_) | TrySendError::Disconnected(_)) => {
                self.dropped.fetch_add(1, Ordering::Relaxed);
            }
        }
    }

    pub(crate) fn dropped(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }

    pub(crate) fn take(&self) -> BTreeMap<String, (u64, u64, BTreeMap<String, u64>)> {
        let mut m = self.counts.lock().unwrap_or_else(|p| p.into_inner());
        if let Ok(rx) = self.rx.lock() {
            while let Ok((name, enabled, variant)) = rx.try_recv() {
                bump(&mut m, &name, enabled, variant.as_deref().unwrap_or("disabled"), 1);
            }
        }
        std::mem::take(&mut *m)
    }

    /// Puts counts back after a failed upload.
    #[cfg(feature = "http")]
    pub(crate) fn restore(&self, counts: BTreeMap<String, (u64, u64, BTreeMap<String, u64>)>) {
        let mut m = self.counts.lock().unwrap_or_else(|p| p.into_inner());
        for (k, (y, n, vars)) in counts {
            let e = m.entry(k).or_default();
            e.0 += y;
            e.1 += n;
            for (v, c) in vars {
                *e.2.entry(v).or_default() += c;
            }
        }
    }
}

fn bump(m: &mut BTreeMap<String, (u64, u64, BTreeMap<String, u64>)>, key: &str, enabled: bool, variant: &str, n: u64) {
    let e = match m.get_mut(key) {
        Some(e) => e,
        None => m.entry(key.to_owned()).or_default(),
    };
    if enabled {
        e.0 += n;
    } else {
        e.1 += n;
    }
    match e.2.get_mut(variant) {
        Some(c) => *c += n,
        None => {
            e.2.insert(variant.to_owned(), n);
        }
    }
}

pub(crate) struct Shared {
    pub(crate) environment: Option<String>,
    state: ArcSwap<Loaded>,
    overrides: BTreeMap<String, OverrideValue>,
    listeners: Mutex<Vec<(u64, Option<String>, Listener)>>,
    release_listeners: Mutex<Vec<(u64, ReleaseListener)>>,
    next_listener: AtomicU64,
    ready: Mutex<bool>,
    ready_cv: Condvar,
    #[cfg(feature = "http")]
    ready_tx: tokio::sync::watch::Sender<bool>,
    last_error: Mutex<Option<String>>,
    pub(crate) cache_error: Mutex<Option<String>>,
    pub(crate) cache_file: Option<PathBuf>,
    pub(crate) metrics: Metrics,
    pub(crate) events: EventQueue,
    pub(crate) assignments: Arc<dyn crate::sticky::AssignmentStore>,
    #[cfg(feature = "http")]
    pub(crate) tasks: Mutex<Vec<tokio::task::JoinHandle<()>>>,
    #[cfg(feature = "http")]
    pub(crate) stop: tokio::sync::watch::Sender<bool>,
    #[cfg(feature = "http")]
    pub(crate) uploader: Mutex<Option<crate::http::Uploader>>,
}

impl std::fmt::Debug for Shared {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Shared").field("environment", &self.environment).field("source", &self.current().source).finish_non_exhaustive()
    }
}

/// Stops notifications when dropped.
pub struct Subscription {
    shared: Weak<Shared>,
    id: u64,
}

impl std::fmt::Debug for Subscription {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Subscription").field("id", &self.id).finish()
    }
}

impl Drop for Subscription {
    fn drop(&mut self) {
        if let Some(s) = self.shared.upgrade() {
            s.listeners.lock().unwrap_or_else(|p| p.into_inner()).retain(|(id, _, _)| *id != self.id);
            s.release_listeners.lock().unwrap_or_else(|p| p.into_inner()).retain(|(id, _)| *id != self.id);
        }
    }
}

fn compile(snapshot: StreamSnapshot, source: Source) -> Loaded {
    let set = FlagSet { flags: snapshot.flags.clone(), segments: snapshot.segments.clone() };
    let plan = Plan::compile(&set, &CompileOptions::for_environment(snapshot.environment.clone()));
    let names = plan.flags().map(|(_, f)| (Box::from(f.key()), Arc::from(f.key()))).collect();
    let experiment_flags: std::collections::HashSet<String> = snapshot.experiment_flags.iter().cloned().collect();
    let experiments =
        experiment_flags.iter().map(|f| (f.clone(), snapshot.experiments.get(f).cloned().unwrap_or_else(|| f.clone()))).collect();
    let maintenance = snapshot.maintenance.clone().map(|m| CompiledMaintenance::new(m, &snapshot.environment, &snapshot.segments));
    Loaded { snapshot, plan, source, names, experiment_flags, experiments, maintenance }
}

impl Shared {
    pub(crate) fn new(b: &Builder) -> Self {
        #[cfg(feature = "http")]
        let (ready_tx, _) = tokio::sync::watch::channel(false);
        #[cfg(feature = "http")]
        let (stop, _) = tokio::sync::watch::channel(false);
        // Overrides are looked up by flag key: keep the variable names.
        Shared {
            environment: b.environment.clone(),
            state: ArcSwap::from_pointee(compile(StreamSnapshot::default(), Source::Empty)),
            overrides: b.overrides.clone(),
            listeners: Mutex::new(Vec::new()),
            release_listeners: Mutex::new(Vec::new()),
            next_listener: AtomicU64::new(1),
            ready: Mutex::new(false),
            ready_cv: Condvar::new(),
            #[cfg(feature = "http")]
            ready_tx,
            last_error: Mutex::new(None),
            cache_error: Mutex::new(None),
            cache_file: b.cache_file.clone(),
            metrics: Metrics::new(b.metrics_queue),
            events: EventQueue::new(b.metrics_queue),
            assignments: b.assignments.0.clone().unwrap_or_else(|| Arc::new(crate::sticky::MemoryAssignments::default())),
            #[cfg(feature = "http")]
            tasks: Mutex::new(Vec::new()),
            #[cfg(feature = "http")]
            stop,
            #[cfg(feature = "http")]
            uploader: Mutex::new(None),
        }
    }

    pub(crate) fn current(&self) -> Arc<Loaded> {
        self.state.load_full()
    }

    pub(crate) fn has_overrides(&self) -> bool {
        !self.overrides.is_empty()
    }

    pub(crate) fn override_for(&self, key: &str) -> Option<&OverrideValue> {
        if self.overrides.is_empty() {
            return None;
        }
        self.overrides.get(&crate::override_var(key))
    }

    pub(crate) fn set_error(&self, e: impl Into<String>) {
        let e = e.into();
        tracing::warn!(error = %e, "gantry sdk");
        *self.last_error.lock().unwrap_or_else(|p| p.into_inner()) = Some(e);
    }

    pub(crate) fn last_error(&self) -> Option<String> {
        self.last_error.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    pub(crate) fn is_ready(&self) -> bool {
        *self.ready.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub(crate) fn wait_ready_blocking(&self, timeout: Duration) -> bool {
        let g = self.ready.lock().unwrap_or_else(|p| p.into_inner());
        let (g, _) = self.ready_cv.wait_timeout_while(g, timeout, |r| !*r).unwrap_or_else(|p| p.into_inner());
        *g
    }

    #[cfg(feature = "http")]
    pub(crate) fn ready_rx(&self) -> tokio::sync::watch::Receiver<bool> {
        self.ready_tx.subscribe()
    }

    fn mark_ready(&self) {
        *self.ready.lock().unwrap_or_else(|p| p.into_inner()) = true;
        self.ready_cv.notify_all();
        #[cfg(feature = "http")]
        self.ready_tx.send_replace(true);
    }

    pub(crate) fn subscribe(self: &Arc<Self>, flag: Option<String>, f: Listener) -> Subscription {
        let id = self.next_listener.fetch_add(1, Ordering::Relaxed);
        self.listeners.lock().unwrap_or_else(|p| p.into_inner()).push((id, flag, f));
        Subscription { shared: Arc::downgrade(self), id }
    }

    pub(crate) fn subscribe_releases(self: &Arc<Self>, f: ReleaseListener) -> Subscription {
        let id = self.next_listener.fetch_add(1, Ordering::Relaxed);
        self.release_listeners.lock().unwrap_or_else(|p| p.into_inner()).push((id, f));
        Subscription { shared: Arc::downgrade(self), id }
    }

    #[cfg(feature = "http")]
    fn notify_release(&self, r: &Release) {
        let listeners = self.release_listeners.lock().unwrap_or_else(|p| p.into_inner());
        for (_, f) in listeners.iter() {
            f(r);
        }
    }

    /// Replaces the whole configuration and notifies listeners of what changed.
    pub(crate) fn apply_snapshot(&self, snapshot: StreamSnapshot, source: Source) {
        let old = self.current();
        let before: HashMap<&str, &gantry_engine::Flag> = old.snapshot.flags.iter().map(|f| (f.key.as_str(), f)).collect();
        let mut changes = Vec::new();
        for f in &snapshot.flags {
            if before.get(f.key.as_str()).is_none_or(|b| *b != f) {
                changes.push(FlagChange { key: f.key.clone(), exists: true, revision: snapshot.revision });
            }
        }
        let segments_changed = old.snapshot.segments != snapshot.segments;
        for k in before.keys() {
            if !snapshot.flags.iter().any(|f| f.key == *k) {
                changes.push(FlagChange { key: (*k).to_owned(), exists: false, revision: snapshot.revision });
            }
        }
        if old.snapshot.maintenance != snapshot.maintenance {
            // Listeners of the synthetic maintenance flag hear about maintenance changes.
            changes.push(FlagChange {
                key: MAINTENANCE_FLAG.to_owned(),
                exists: snapshot.maintenance.is_some(),
                revision: snapshot.revision,
            });
        }
        if segments_changed {
            // Segment edits change every flag that uses them: report all.
            for f in &snapshot.flags {
                if !changes.iter().any(|c| c.key == f.key) {
                    changes.push(FlagChange { key: f.key.clone(), exists: true, revision: snapshot.revision });
                }
            }
        }
        let persist = source == Source::Server;
        let loaded = compile(snapshot, source);
        if persist {
            if let Some(path) = &self.cache_file {
                if let Err(e) = write_snapshot_file(path, &loaded.snapshot) {
                    self.set_error(format!("cannot write cache file {}: {e}", path.display()));
                }
            }
        }
        self.state.store(Arc::new(loaded));
        self.mark_ready();
        if !changes.is_empty() {
            let listeners = self.listeners.lock().unwrap_or_else(|p| p.into_inner());
            for c in &changes {
                for (_, filter, f) in listeners.iter() {
                    if filter.as_deref().is_none_or(|k| k == c.key) {
                        f(c);
                    }
                }
            }
        }
    }

    /// Applies one stream event to the current configuration.
    #[cfg(feature = "http")]
    pub(crate) fn apply_event(&self, event: gantry_api_types::StreamEvent) {
        use gantry_api_types::StreamEvent;
        let mut snap = self.current().snapshot.clone();
        let mut release = None;
        match event {
            StreamEvent::Snapshot(s) => snap = s,
            StreamEvent::FlagUpdated { revision, flag } => {
                snap.revision = revision;
                match snap.flags.iter_mut().find(|f| f.key == flag.key) {
                    Some(slot) => *slot = flag,
                    None => snap.flags.push(flag),
                }
            }
            StreamEvent::FlagDeleted { revision, key } => {
                snap.revision = revision;
                snap.flags.retain(|f| f.key != key);
            }
            StreamEvent::SegmentUpdated { revision, segment } => {
                snap.revision = revision;
                match snap.segments.iter_mut().find(|s| s.id == segment.id) {
                    Some(slot) => *slot = segment,
                    None => snap.segments.push(segment),
                }
            }
            StreamEvent::SegmentDeleted { revision, id } => {
                snap.revision = revision;
                snap.segments.retain(|s| s.id != id);
            }
            StreamEvent::MaintenanceUpdated { revision, maintenance } => {
                snap.revision = revision;
                snap.maintenance = Some(maintenance);
            }
            StreamEvent::ReleaseRecorded { revision, release: r } => {
                snap.revision = revision;
                release = Some(r);
            }
            // Release-automation notices change no configuration by themselves
            // (a percentage change arrives as `flag-updated`).
            StreamEvent::Rollout { revision, .. } => snap.revision = snap.revision.max(revision),
        }
        self.apply_snapshot(snap, Source::Server);
        if let Some(r) = release {
            self.notify_release(&r);
        }
    }

    /// Loads the cache file at start-up when the server is unreachable.
    #[cfg(feature = "http")]
    pub(crate) fn load_cache(&self) -> bool {
        let Some(path) = &self.cache_file else { return false };
        if !path.exists() {
            return false;
        }
        match read_snapshot_file(path) {
            Ok(s) => {
                self.apply_snapshot(s, Source::Cache);
                true
            }
            Err(e) => {
                let msg = format!("{e}; serving defaults");
                *self.cache_error.lock().unwrap_or_else(|p| p.into_inner()) = Some(msg.clone());
                self.set_error(msg);
                false
            }
        }
    }
}

/// The typed value of a variant named by an override.
pub(crate) fn override_variant_value(loaded: &Loaded, key: &str, variant: &str) -> Option<serde_json::Value> {
    let flag = loaded.snapshot.flags.iter().find(|f| f.key == key)?;
    let env = flag.environments.get(&loaded.snapshot.environment);
    let variants = env.and_then(|e| e.variants.as_ref()).unwrap_or(&flag.variants);
    let v = variants.iter().find(|v| v.name == variant);
    let text = v.and_then(|v| v.payload.as_ref()).map(|p| p.value.as_str());
    match flag.kind {
        FlagKind::Boolean => Some(serde_json::Value::Bool(true)),
        FlagKind::String => Some(serde_json::Value::String(text.unwrap_or(variant).to_owned())),
        FlagKind::Number => text.and_then(|t| serde_json::from_str(t).ok()),
        FlagKind::Json => text.and_then(|t| serde_json::from_str(t).ok()),
    }
}

pub(crate) fn read_snapshot_file(path: &Path) -> Result<StreamSnapshot, SdkError> {
    let bad = |reason: String| SdkError::BadFile { path: path.display().to_string(), reason };
    let text = std::fs::read_to_string(path).map_err(|e| bad(e.to_string()))?;
    serde_json::from_str(&text).map_err(|e| bad(format!("not a Gantry configuration: {e}")))
}

fn write_snapshot_file(path: &Path, snap: &StreamSnapshot) -> std::io::Result<()> {
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, serde_json::to_vec(snap).map_err(std::io::Error::other)?)?;
    std::fs::rename(&tmp, path)
}
