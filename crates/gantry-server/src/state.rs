//! The server's in-memory state: the domain as last committed, one compiled
//! view per environment, the change feed and usage counters.
//!
//! Reads (evaluation, listings) never touch the database: they load the
//! current [`Views`] through an atomic pointer. Writes are serialised by one
//! async mutex, committed to the [`Store`] (with their audit entries), then
//! applied to memory, recompiled and published to streams.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::{Arc, Mutex};

use arc_swap::ArcSwap;
use gantry_api_types::{CompiledMaintenance, Environment, MaintenanceState, Release, StreamEvent, StreamSnapshot, TokenKind};
use gantry_core::{
    AuditDraft, Clock, Commit, Committed, Mutation, Snapshot, Store, StoreError, StoredFlag, StoredSegment, StoredToken, UsageRow,
};
use gantry_engine::model::{Flag, Segment};
use gantry_engine::unleash;
use gantry_engine::{CompileOptions, FlagSet, Plan};
use sha2::{Digest, Sha256};
use tokio::sync::{broadcast, watch};

use crate::metrics::Metrics;
use crate::ServerConfig;

/// One environment's compiled, ready-to-serve view.
#[derive(Debug)]
pub struct EnvView {
    /// Environment name.
    pub name: String,
    /// The compiled plan.
    pub plan: Plan,
    /// The flags with only this environment's configuration (for SDK streams).
    pub flagset: FlagSet,
    /// Configuration revision the view was built from.
    pub revision: i64,
    /// Maintenance mode, when it was ever set for this environment.
    pub maintenance: Option<Arc<CompiledMaintenance>>,
    /// `/api/client/features` body (segments separate), rendered on first use.
    unleash_body: std::sync::OnceLock<bytes_body::Body>,
    /// Same with segment constraints inlined (SDKs older than spec 4.2.0).
    unleash_inline_body: std::sync::OnceLock<bytes_body::Body>,
}

impl EnvView {
    /// The `/api/client/features` body and its ETag, rendered once per
    /// configuration revision on first request.
    pub fn unleash_body(&self, inline_segments: bool) -> &bytes_body::Body {
        let render = |inline: bool| {
            let mut doc = unleash::from_native(&self.flagset, &self.name);
            doc.query = Some(serde_json::json!({"environment": self.name, "inlineSegmentConstraints": false}));
            doc.meta = Some(serde_json::json!({"revisionId": self.revision}));
            if inline {
                doc = inline_segments_of(&doc, &self.name);
            }
            let json = match &self.maintenance {
                // An extra top-level field: Unleash SDKs ignore what they do not know.
                Some(m) => {
                    let mut v = serde_json::to_value(&doc).unwrap_or_default();
                    if let Some(o) = v.as_object_mut() {
                        o.insert("maintenance".into(), serde_json::to_value(&m.state).unwrap_or_default());
                    }
                    v.to_string()
                }
                None => serde_json::to_string(&doc).unwrap_or_default(),
            };
            bytes_body::Body { etag: etag_of(&json), json: json.into() }
        };
        if inline_segments {
            self.unleash_inline_body.get_or_init(|| render(true))
        } else {
            self.unleash_body.get_or_init(|| render(false))
        }
    }
}

/// Pre-rendered JSON bodies with their ETags.
pub mod bytes_body {
    /// A pre-rendered body.
    #[derive(Debug, Clone)]
    pub struct Body {
        /// JSON text.
        pub json: std::sync::Arc<str>,
        /// Strong ETag, quoted.
        pub etag: String,
    }
}

/// Everything readers need, swapped as a whole on each change.
#[derive(Debug, Default)]
pub struct Views {
    /// Configuration revision.
    pub revision: i64,
    /// Environments in display order.
    pub environments: Vec<gantry_core::StoredEnvironment>,
    /// Flags by key.
    pub flags: BTreeMap<String, StoredFlag>,
    /// Segments by id.
    pub segments: BTreeMap<u32, StoredSegment>,
    /// Compiled view per environment.
    pub envs: HashMap<String, Arc<EnvView>>,
    /// Tokens by id.
    pub tokens: BTreeMap<String, StoredToken>,
    /// Token ids by secret hash.
    pub token_hashes: HashMap<String, String>,
    /// Experiments by key.
    pub experiments: BTreeMap<String, gantry_core::StoredExperiment>,
    /// Running experiment per environment and flag: env → flag → experiment key.
    pub running: HashMap<String, HashMap<String, String>>,
    /// Started experiments per environment, as the events fold needs them
    /// (derived once per change, not per ingested batch).
    pub experiment_index: crate::experiments::ExperimentIndex,
    /// Maintenance settings by environment (only those ever set).
    pub maintenance: HashMap<String, gantry_core::StoredMaintenance>,
    /// Recorded releases by app, in record order.
    pub releases: BTreeMap<String, Vec<Release>>,
}

impl Views {
    /// The named environment's view.
    pub fn env(&self, name: &str) -> Option<&Arc<EnvView>> {
        self.envs.get(name)
    }

    /// All flags as a native set (every environment).
    pub fn flagset(&self) -> FlagSet {
        FlagSet {
            flags: self.flags.values().map(|f| f.flag.clone()).collect(),
            segments: self.segments.values().map(|s| s.segment.clone()).collect(),
        }
    }
}

/// A committed change, as published to streams.
#[derive(Debug, Clone)]
pub enum Change {
    /// A flag was written.
    Flag(Flag),
    /// A flag was deleted.
    FlagDeleted(String),
    /// A segment was written.
    Segment(Segment),
    /// A segment was deleted.
    SegmentDeleted(u32),
    /// Maintenance mode of an environment changed.
    Maintenance {
        /// Environment.
        environment: String,
        /// The new settings.
        state: MaintenanceState,
    },
    /// A release was recorded.
    Release(Release),
    /// Environments or many things changed: subscribers take a snapshot.
    Reset,
    /// A rollout changed state (only subscribers of its environment see it).
    Rollout(gantry_api_types::RolloutNotice),
}

/// A change with its revision.
#[derive(Debug, Clone)]
pub struct Published {
    /// Revision after the change.
    pub revision: i64,
    /// What changed.
    pub changes: Vec<Change>,
}

impl Published {
    /// The stream events of this change for one environment. `None` means the
    /// subscriber must take a fresh snapshot.
    pub fn events_for(&self, env: &str) -> Option<Vec<StreamEvent>> {
        let mut out = Vec::with_capacity(self.changes.len());
        for c in &self.changes {
            match c {
                Change::Maintenance { environment, state } => {
                    if environment == env {
                        out.push(StreamEvent::MaintenanceUpdated { revision: self.revision, maintenance: state.clone() });
                    }
                    continue;
                }
                Change::Release(r) => {
                    if r.environment == env {
                        out.push(StreamEvent::ReleaseRecorded { revision: self.revision, release: r.clone() });
                    }
                    continue;
                }
                _ => {}
            }
            out.push(match c {
                Change::Flag(f) => StreamEvent::FlagUpdated { revision: self.revision, flag: flag_for_env(f, env) },
                Change::FlagDeleted(k) => StreamEvent::FlagDeleted { revision: self.revision, key: k.clone() },
                Change::Segment(s) => StreamEvent::SegmentUpdated { revision: self.revision, segment: s.clone() },
                Change::SegmentDeleted(id) => StreamEvent::SegmentDeleted { revision: self.revision, id: *id },
                Change::Rollout(n) if n.environment == env => StreamEvent::Rollout { revision: self.revision, rollout: n.clone() },
                Change::Rollout(_) => continue,
                Change::Reset | Change::Maintenance { .. } | Change::Release(_) => return None,
            });
        }
        Some(out)
    }
}

/// A flag reduced to one environment's configuration.
pub fn flag_for_env(f: &Flag, env: &str) -> Flag {
    let mut f = f.clone();
    f.environments.retain(|k, _| k == env);
    f
}

/// Usage counts by environment, then flag.
pub type UsageRows = HashMap<String, HashMap<String, UsageRow>>;

/// Usage counters: cumulative since start, and the part not yet flushed.
/// Keyed environment → flag so counting looks keys up by `&str` and, once a
/// flag has been seen, allocates nothing.
#[derive(Debug, Default)]
pub struct UsageCounters {
    total: UsageRows,
    pending: UsageRows,
}

fn usage_row<'m>(map: &'m mut UsageRows, env: &str, flag: &str) -> &'m mut UsageRow {
    if !map.contains_key(env) {
        map.insert(env.to_owned(), HashMap::new());
    }
    let flags = map.get_mut(env).expect("inserted above");
    if !flags.contains_key(flag) {
        flags.insert(flag.to_owned(), UsageRow { flag: flag.to_owned(), environment: env.to_owned(), ..Default::default() });
    }
    flags.get_mut(flag).expect("inserted above")
}

impl UsageCounters {
    /// Counts `n` evaluations of one flag.
    pub fn count(&mut self, env: &str, flag: &str, enabled: bool, variant: Option<&str>, at_ms: i64, n: u64) {
        for map in [&mut self.total, &mut self.pending] {
            let row = usage_row(map, env, flag);
            row.last_evaluated_ms = row.last_evaluated_ms.max(at_ms);
            if enabled {
                row.yes += n;
            } else {
                row.no += n;
            }
            if let Some(v) = variant {
                match row.variants.get_mut(v) {
                    Some(c) => *c += n,
                    None => {
                        row.variants.insert(v.to_owned(), n);
                    }
                }
            }
        }
    }

    /// Counts `n` evaluations that served `variant` (SDK-reported).
    pub fn count_variant(&mut self, env: &str, flag: &str, variant: &str, n: u64) {
        for map in [&mut self.total, &mut self.pending] {
            *usage_row(map, env, flag).variants.entry(variant.to_owned()).or_default() += n;
        }
    }

    /// Rows not yet flushed (copies).
    pub fn pending_rows(&self) -> Vec<UsageRow> {
        self.pending.values().flat_map(|m| m.values().cloned()).collect()
    }

    /// Takes the rows not yet flushed.
    pub fn take_pending(&mut self) -> Vec<UsageRow> {
        std::mem::take(&mut self.pending).into_values().flat_map(HashMap::into_values).collect()
    }

    /// Cumulative evaluation counts as (environment, flag, count), sorted.
    pub fn totals(&self) -> Vec<(String, String, u64)> {
        let mut v: Vec<_> = self.total.iter().flat_map(|(e, m)| m.iter().map(move |(f, r)| (e.clone(), f.clone(), r.yes + r.no))).collect();
        v.sort();
        v
    }
}

/// Shared state of one server.
#[derive(Debug)]
pub struct Inner<S> {
    /// Storage.
    pub store: S,
    /// Clock.
    pub clock: Arc<dyn Clock>,
    /// Configuration.
    pub config: ServerConfig,
    /// Current views.
    pub views: ArcSwap<Views>,
    write_lock: tokio::sync::Mutex<()>,
    /// Change feed.
    pub changes: broadcast::Sender<Arc<Published>>,
    history: Mutex<VecDeque<Arc<Published>>>,
    /// Usage counters.
    pub usage: Mutex<UsageCounters>,
    /// Metrics.
    pub metrics: Metrics,
    /// Flips to true on shutdown; streams end.
    pub shutdown: watch::Receiver<bool>,
    shutdown_tx: watch::Sender<bool>,
    /// Hash of the `GANTRY_ADMIN_TOKEN` value, if configured.
    pub env_admin_hash: Option<String>,
    /// Event ingestion and experiment aggregates.
    pub events: crate::experiments::Ingest,
    /// Dashboard sessions.
    pub dashboard: crate::dashboard::Sessions,
    /// Release automation: rollouts and their guardrail metrics.
    pub release: crate::release::Release,
}

/// The application state handed to every handler. Cheap to clone.
#[derive(Debug)]
pub struct AppState<S> {
    /// The shared state.
    pub inner: Arc<Inner<S>>,
}

impl<S> Clone for AppState<S> {
    fn clone(&self) -> Self {
        AppState { inner: self.inner.clone() }
    }
}

impl<S> std::ops::Deref for AppState<S> {
    type Target = Inner<S>;
    fn deref(&self) -> &Inner<S> {
        &self.inner
    }
}

const HISTORY: usize = 1024;

/// Default environments of a new installation.
pub fn default_environments() -> Vec<Environment> {
    [("development", false, 0), ("staging", false, 1), ("production", true, 2)]
        .into_iter()
        .map(|(n, protected, sort_order)| Environment { name: n.into(), description: None, protected, sort_order })
        .collect()
}

impl<S: Store> AppState<S> {
    /// Loads the state from the store, seeding default environments on a
    /// fresh database.
    pub async fn load(store: S, clock: Arc<dyn Clock>, config: ServerConfig) -> Result<Self, StoreError> {
        let mut snap = store.load().await?;
        if snap.environments.is_empty() && snap.revision == 0 {
            let commit = Commit {
                mutations: default_environments()
                    .into_iter()
                    .map(|e| Mutation::PutEnvironment { environment: e, expect: gantry_core::Expect::Absent })
                    .collect(),
                audit: default_environments()
                    .into_iter()
                    .map(|e| AuditDraft {
                        actor: "system".into(),
                        action: "environment.create".into(),
                        target_kind: "environment".into(),
                        target: e.name.clone(),
                        before: None,
                        after: serde_json::to_value(&e).ok(),
                    })
                    .collect(),
                at: clock.now(),
            };
            match store.commit(commit).await {
                // Another replica on the same database seeded them first.
                Ok(_) | Err(StoreError::AlreadyExists { kind: "environment", .. }) => {}
                Err(e) => return Err(e),
            }
            snap = store.load().await?;
        }
        let env_admin_hash = config.admin_token.as_deref().map(gantry_core::token::hash);
        let (shutdown_tx, shutdown) = watch::channel(false);
        let (changes, _) = broadcast::channel(4096);
        let views = build_views(snap, config.hostname.as_deref());
        let max_pending_events = config.max_pending_events;
        let release = crate::release::Release::load(&store).await?;
        let app = AppState {
            inner: Arc::new(Inner {
                store,
                clock,
                config,
                views: ArcSwap::from_pointee(views),
                write_lock: tokio::sync::Mutex::new(()),
                changes,
                history: Mutex::new(VecDeque::with_capacity(HISTORY)),
                usage: Mutex::new(UsageCounters::default()),
                metrics: Metrics::default(),
                shutdown,
                shutdown_tx,
                env_admin_hash,
                events: crate::experiments::Ingest::new(max_pending_events),
                dashboard: crate::dashboard::Sessions::default(),
                release,
            }),
        };
        let views = app.views();
        let replayed = app.events.replay(&app.store, &views).await?;
        if replayed > 0 {
            tracing::info!(events = replayed, "experiment aggregates rebuilt from the events log");
        }
        Ok(app)
    }

    /// Current views.
    pub fn views(&self) -> Arc<Views> {
        self.views.load_full()
    }

    /// Tells streams and background jobs to stop.
    pub fn begin_shutdown(&self) {
        let _ = self.shutdown_tx.send(true);
    }

    /// Runs `build` under the write lock against the current views, commits
    /// what it returns, reloads and publishes. `build` returns the commit's
    /// mutations, audit drafts and the changes to publish (or an error).
    pub async fn write<E>(
        &self,
        build: impl FnOnce(&Views) -> Result<(Vec<Mutation>, Vec<AuditDraft>, Vec<Change>), E>,
    ) -> Result<Result<Committed, StoreError>, E> {
        let _guard = self.write_lock.lock().await;
        let current = self.views();
        let (mutations, audit, changes) = build(&current)?;
        let commit = Commit { mutations, audit, at: self.clock.now() };
        let committed = match self.store.commit(commit).await {
            Ok(c) => c,
            Err(e) => return Ok(Err(e)),
        };
        // Reload from the store: the single source of truth for versions and times.
        let snap = match self.store.load().await {
            Ok(s) => s,
            Err(e) => return Ok(Err(e)),
        };
        let views = build_views(snap, self.config.hostname.as_deref());
        self.views.store(Arc::new(views));
        let published = Arc::new(Published { revision: committed.revision, changes });
        {
            let mut h = self.history.lock().unwrap_or_else(|p| p.into_inner());
            if h.len() == HISTORY {
                h.pop_front();
            }
            h.push_back(published.clone());
        }
        let _ = self.changes.send(published);
        Ok(Ok(committed))
    }

    /// Reloads when another process (the CLI, another replica) committed
    /// since the last load. Returns whether it reloaded.
    pub async fn reload_if_changed(&self) -> Result<bool, StoreError> {
        if self.store.revision().await? <= self.views().revision {
            return Ok(false);
        }
        let _guard = self.write_lock.lock().await;
        let snap = self.store.load().await?;
        if snap.revision <= self.views().revision {
            return Ok(false);
        }
        let revision = snap.revision;
        self.views.store(Arc::new(build_views(snap, self.config.hostname.as_deref())));
        let published = Arc::new(Published { revision, changes: vec![Change::Reset] });
        {
            let mut h = self.history.lock().unwrap_or_else(|p| p.into_inner());
            if h.len() == HISTORY {
                h.pop_front();
            }
            h.push_back(published.clone());
        }
        let _ = self.changes.send(published);
        Ok(true)
    }

    /// Changes after `revision`, if the history still holds all of them.
    pub fn changes_since(&self, revision: i64) -> Option<Vec<Arc<Published>>> {
        let h = self.history.lock().unwrap_or_else(|p| p.into_inner());
        let current = self.views().revision;
        if revision > current {
            return None;
        }
        let out: Vec<_> = h.iter().filter(|p| p.revision > revision).cloned().collect();
        // Complete only if the oldest returned change directly follows `revision`
        // or nothing is missing.
        let complete = out.first().map_or(revision == current, |p| p.revision == revision + 1);
        complete.then_some(out)
    }

    /// The snapshot event of one environment.
    pub fn snapshot_event(&self, env: &str) -> Option<StreamEvent> {
        let views = self.views();
        let view = views.env(env)?;
        Some(StreamEvent::Snapshot(StreamSnapshot {
            revision: views.revision,
            environment: env.to_owned(),
            flags: view.flagset.flags.clone(),
            segments: view.flagset.segments.clone(),
            experiment_flags: views.running.get(env).map(|m| m.keys().cloned().collect()).unwrap_or_default(),
            experiments: views.running.get(env).map(|m| m.iter().map(|(f, e)| (f.clone(), e.clone())).collect()).unwrap_or_default(),
            maintenance: view.maintenance.as_ref().map(|m| m.state.clone()),
        }))
    }

    /// Writes pending usage counters to the store.
    pub async fn flush_usage(&self) -> Result<(), StoreError> {
        let rows: Vec<UsageRow> = {
            let mut u = self.usage.lock().unwrap_or_else(|p| p.into_inner());
            u.take_pending()
        };
        self.store.add_usage(rows).await
    }

    /// Looks a token up by its secret. Returns the principal's kind and scope.
    pub fn authenticate(&self, secret: &str) -> Option<(String, TokenKind, Option<String>)> {
        let hash = gantry_core::token::hash(secret);
        if let Some(env_hash) = &self.env_admin_hash {
            if gantry_core::token::ct_eq(env_hash, &hash) {
                return Some(("env-admin".into(), TokenKind::Admin, None));
            }
        }
        let views = self.views();
        let id = views.token_hashes.get(&hash)?;
        let t = views.tokens.get(id)?;
        // The map lookup found it by hash; compare again in constant time.
        if !gantry_core::token::ct_eq(&t.secret_hash, &hash) || t.revoked_at.is_some() {
            return None;
        }
        if t.expires_at.is_some_and(|e| e <= self.clock.now()) {
            return None;
        }
        Some((t.id.clone(), t.kind, t.environment.clone()))
    }
}

fn etag_of(json: &str) -> String {
    let h = Sha256::digest(json.as_bytes());
    format!("\"{}\"", hex::encode(&h[..12]))
}

/// Compiles every environment's view from a snapshot.
pub fn build_views(snap: Snapshot, hostname: Option<&str>) -> Views {
    let flags: BTreeMap<String, StoredFlag> = snap.flags.into_iter().map(|f| (f.flag.key.clone(), f)).collect();
    let segments: BTreeMap<u32, StoredSegment> = snap.segments.into_iter().map(|s| (s.segment.id, s)).collect();
    let all = FlagSet {
        flags: flags.values().map(|f| f.flag.clone()).collect(),
        segments: segments.values().map(|s| s.segment.clone()).collect(),
    };
    let mut envs = HashMap::new();
    for e in &snap.environments {
        let name = e.environment.name.clone();
        let plan = Plan::compile(&all, &CompileOptions { environment: name.clone(), hostname: hostname.map(str::to_owned) });
        let flagset = FlagSet { flags: all.flags.iter().map(|f| flag_for_env(f, &name)).collect(), segments: all.segments.clone() };
        let maintenance = snap
            .maintenance
            .iter()
            .find(|m| m.environment == name)
            .map(|m| Arc::new(CompiledMaintenance::new(crate::maintenance::state_of(&m.maintenance), &name, &all.segments)));
        let view = EnvView {
            name: name.clone(),
            plan,
            flagset,
            revision: snap.revision,
            maintenance,
            unleash_body: std::sync::OnceLock::new(),
            unleash_inline_body: std::sync::OnceLock::new(),
        };
        envs.insert(name, Arc::new(view));
    }
    let token_hashes = snap.tokens.iter().map(|t| (t.secret_hash.clone(), t.id.clone())).collect();
    let mut running: HashMap<String, HashMap<String, String>> = HashMap::new();
    for x in &snap.experiments {
        let e = &x.experiment;
        if e.status == gantry_api_types::ExperimentStatus::Running {
            running.entry(e.environment.clone()).or_default().insert(e.flag.clone(), e.key.clone());
        }
    }
    let mut releases: BTreeMap<String, Vec<Release>> = BTreeMap::new();
    for r in snap.releases {
        releases.entry(r.app.clone()).or_default().push(r);
    }
    let maintenance = snap.maintenance.into_iter().map(|m| (m.environment.clone(), m)).collect();
    let mut views = Views {
        revision: snap.revision,
        environments: snap.environments,
        flags,
        segments,
        envs,
        tokens: snap.tokens.into_iter().map(|t| (t.id.clone(), t)).collect(),
        token_hashes,
        experiments: snap.experiments.into_iter().map(|x| (x.experiment.key.clone(), x)).collect(),
        running,
        experiment_index: HashMap::new(),
        maintenance,
        releases,
    };
    views.experiment_index = crate::experiments::index_experiments(&views);
    views
}

/// The document with segment constraints copied into each strategy (what
/// Unleash sends to SDKs that announce a client spec below 4.2.0).
fn inline_segments_of(doc: &unleash::ClientFeatures, env: &str) -> unleash::ClientFeatures {
    let segs: HashMap<u32, &unleash::ClientSegment> = doc.segments.iter().flatten().map(|s| (s.id, s)).collect();
    let mut out = doc.clone();
    for f in &mut out.features {
        for s in f.strategies.iter_mut().flatten() {
            for id in s.segments.take().unwrap_or_default() {
                match segs.get(&id) {
                    Some(seg) => s.constraints.get_or_insert_with(Vec::new).extend(seg.constraints.iter().cloned()),
                    // A missing segment must keep the strategy off: an impossible constraint.
                    None => s.constraints.get_or_insert_with(Vec::new).push(unleash::ClientConstraint {
                        context_name: "gantry-missing-segment".into(),
                        operator: "IN".into(),
                        values: Some(vec![]),
                        ..Default::default()
                    }),
                }
            }
        }
    }
    out.segments = None;
    out.query = Some(serde_json::json!({"environment": env, "inlineSegmentConstraints": true}));
    out
}

/// Resolves once shutdown has begun.
pub async fn stopped(mut rx: watch::Receiver<bool>) {
    let _ = rx.wait_for(|s| *s).await;
}
