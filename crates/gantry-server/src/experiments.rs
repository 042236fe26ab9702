//! Experiments: the events API (durable, bounded, idempotent ingestion),
//! per-unit aggregates folded from it, and the experiments admin API with
//! results.
//!
//! Design decisions:
//! - **Durability before acknowledgement.** An accepted batch is in the
//!   `event_batches` log (a group commit of everything that arrived
//!   meanwhile, `synchronous=FULL`) before the 202 goes out.
//! - **Bounded memory.** At most `max_pending_events` events wait for the
//!   writer; beyond that the API answers 429 with `Retry-After`, never an
//!   unbounded queue.
//! - **Aggregates, not raw events, feed the analysis.** Each experiment keeps
//!   per-unit sufficient statistics (first exposure, variant, per-metric
//!   count/sum/denominator), so the cost of an analysis grows with units, not
//!   with events. They are rebuilt from the log on start; an event counts
//!   for an experiment if it *arrived* while the experiment ran, so a replay
//!   after a restart reproduces the same aggregates.
//! - **First exposure wins.** A unit is analysed in the variant it was first
//!   exposed to, whatever it is served later (a weight change never moves a
//!   unit between arms of the analysis).

pub mod api;

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use gantry_api_types::{Event, EventKind, Experiment, ExperimentStatus, MetricDef};
use gantry_core::{EventBatchRow, Store, StoreError};
use tokio::sync::{mpsc, oneshot};

use crate::state::{AppState, Views};

/// How long idempotency keys are remembered (ms).
pub const DEDUPE_WINDOW_MS: i64 = 24 * 3600 * 1000;
/// At most this many idempotency keys are remembered (oldest go first).
pub const DEDUPE_MAX_KEYS: usize = 2_000_000;

/// An experiment as the fold needs it (times parsed, variants resolved).
#[derive(Debug, Clone)]
pub struct ActiveExperiment {
    /// Key.
    pub key: String,
    /// Flag.
    pub flag: String,
    /// Start, ms.
    pub started_ms: i64,
    /// Stop, ms.
    pub stopped_ms: Option<i64>,
    /// Variant names, control first.
    pub variants: Vec<String>,
    /// Metrics.
    pub metrics: Vec<MetricDef>,
    /// When some metric uses CUPED: the start of the pre-period, ms.
    pub pre_from_ms: Option<i64>,
}

impl ActiveExperiment {
    fn active_at(&self, ms: i64) -> bool {
        ms >= self.started_ms && self.stopped_ms.is_none_or(|s| ms < s)
    }

    /// Whether events arriving at `ms` may be pre-exposure covariate data.
    fn collects_pre_at(&self, ms: i64) -> bool {
        self.pre_from_ms.is_some_and(|from| ms >= from) && self.stopped_ms.is_none_or(|s| ms < s)
    }
}

/// At most this many not-yet-exposed units per experiment keep CUPED
/// pre-period sums; beyond, new units get no covariate (still unbiased).
pub const MAX_PRE_UNITS: usize = 1_000_000;

fn parse_ms(s: &Option<String>) -> Option<i64> {
    s.as_deref().and_then(|s| chrono::DateTime::parse_from_rfc3339(s).ok()).map(|d| d.timestamp_millis())
}

/// The variants an experiment compares: its own list, or the flag's.
pub fn experiment_variants(e: &Experiment, views: &Views) -> Vec<String> {
    if !e.variants.is_empty() {
        return e.variants.clone();
    }
    views.flags.get(&e.flag).map(|f| f.flag.variants.iter().map(|v| v.name.clone()).collect()).unwrap_or_default()
}

/// Started experiments by environment.
pub type ExperimentIndex = HashMap<String, Vec<Arc<ActiveExperiment>>>;

/// Experiments that have started, by environment (built with the views).
pub fn index_experiments(views: &Views) -> ExperimentIndex {
    let mut out = ExperimentIndex::new();
    for s in views.experiments.values() {
        let e = &s.experiment;
        if e.status == ExperimentStatus::Draft {
            continue;
        }
        let Some(started_ms) = parse_ms(&e.started_at) else { continue };
        out.entry(e.environment.clone()).or_default().push(Arc::new(ActiveExperiment {
            key: e.key.clone(),
            flag: e.flag.clone(),
            started_ms,
            stopped_ms: parse_ms(&e.stopped_at),
            variants: experiment_variants(e, views),
            metrics: e.metrics.clone(),
            pre_from_ms: e.metrics.iter().any(|m| m.cuped).then(|| started_ms - (e.pre_period_hours * 3_600_000.0) as i64),
        }));
    }
    out
}

/// Per-unit sufficient statistics of one experiment.
#[derive(Debug, Default, serde::Serialize, serde::Deserialize)]
pub struct UnitAgg {
    /// Index of the variant first exposed.
    pub variant: u16,
    /// First exposure, ms.
    pub first_ms: i64,
    /// Per metric: (event count, sum of values, sum of denominator values).
    pub metrics: Vec<[f64; 3]>,
    /// CUPED: the same per metric over the unit's pre-exposure events
    /// (empty unless the experiment uses CUPED).
    pub pre: Vec<[f64; 3]>,
}

/// One experiment's aggregates.
#[derive(Debug, Default, serde::Serialize, serde::Deserialize)]
pub struct ExperimentAgg {
    /// Units by id.
    pub units: HashMap<String, UnitAgg>,
    /// Exposures naming a variant the experiment does not compare.
    pub unknown_variant_exposures: u64,
    /// CUPED: pre-period sums of units not exposed yet.
    pub pre_units: HashMap<String, Vec<[f64; 3]>>,
    /// Batches up to this id were folded into the pre-period by the backfill
    /// that ran when the experiment started; later ones are folded live.
    pub pre_from_batch: i64,
    /// Units left without a covariate because `pre_units` was full.
    pub pre_dropped: u64,
}

/// Everything folded from the events log.
#[derive(Debug, Default)]
pub struct Aggregates {
    /// By experiment key.
    pub experiments: HashMap<String, ExperimentAgg>,
    seen: HashSet<String>,
    seen_order: VecDeque<(i64, String)>,
    /// Last folded batch id.
    pub last_batch: i64,
    /// Events folded since start (including replay).
    pub events_folded: u64,
    /// Experiments the fold has seen in the index (a new one gets a CUPED backfill).
    pub known: HashSet<String>,
}

impl Aggregates {
    fn remember(&mut self, env: &str, key: &str, now_ms: i64) -> bool {
        let k = format!("{env}\u{0}{key}");
        if self.seen.contains(&k) {
            return false;
        }
        while let Some((t, _)) = self.seen_order.front() {
            if *t > now_ms - DEDUPE_WINDOW_MS && self.seen_order.len() < DEDUPE_MAX_KEYS {
                break;
            }
            if let Some((_, old)) = self.seen_order.pop_front() {
                self.seen.remove(&old);
            }
        }
        self.seen.insert(k.clone());
        self.seen_order.push_back((now_ms, k));
        true
    }

    /// Folds one batch; returns the number of duplicates it held.
    pub fn fold(&mut self, index: &ExperimentIndex, env: &str, batch: i64, received_ms: i64, events: &[Event]) -> u64 {
        let mut dups = 0;
        let active: Vec<&Arc<ActiveExperiment>> = index
            .get(env)
            .map(|v| v.iter().filter(|e| e.active_at(received_ms) || e.collects_pre_at(received_ms)).collect())
            .unwrap_or_default();
        for e in events {
            if let Some(k) = &e.idempotency_key {
                if !self.remember(env, k, received_ms) {
                    dups += 1;
                    continue;
                }
            }
            self.events_folded += 1;
            let ts = e.timestamp.unwrap_or(received_ms);
            match e.kind {
                EventKind::Exposure => {
                    let Some(flag) = &e.flag else { continue };
                    for x in active.iter().filter(|x| &x.flag == flag && x.active_at(received_ms)) {
                        let agg = self.experiments.entry(x.key.clone()).or_default();
                        let Some(idx) = e.variant.as_ref().and_then(|v| x.variants.iter().position(|n| n == v)) else {
                            agg.unknown_variant_exposures += 1;
                            continue;
                        };
                        match agg.units.get_mut(&e.unit_id) {
                            Some(u) => u.first_ms = u.first_ms.min(ts),
                            None => {
                                let pre = agg.pre_units.remove(&e.unit_id).unwrap_or_default();
                                agg.units.insert(
                                    e.unit_id.clone(),
                                    UnitAgg { variant: idx as u16, first_ms: ts, metrics: vec![[0.0; 3]; x.metrics.len()], pre },
                                );
                            }
                        }
                    }
                }
                EventKind::Track => {
                    let Some(name) = &e.name else { continue };
                    let value = e.value.unwrap_or(1.0);
                    for x in &active {
                        if !x.metrics.iter().any(|m| &m.event == name || m.denominator_event.as_ref() == Some(name)) {
                            continue;
                        }
                        if x.collects_pre_at(received_ms) {
                            let agg = self.experiments.entry(x.key.clone()).or_default();
                            if batch > agg.pre_from_batch {
                                fold_pre(x, agg, &e.unit_id, ts, name, value);
                            }
                        }
                        if !x.active_at(received_ms) {
                            continue;
                        }
                        let Some(u) = self.experiments.get_mut(&x.key).and_then(|a| a.units.get_mut(&e.unit_id)) else { continue };
                        if ts < u.first_ms {
                            continue;
                        }
                        for (i, m) in x.metrics.iter().enumerate() {
                            let in_window = m.window_hours.is_none_or(|h| (ts - u.first_ms) as f64 <= h * 3_600_000.0);
                            if !in_window {
                                continue;
                            }
                            if u.metrics.len() <= i {
                                u.metrics.resize(i + 1, [0.0; 3]);
                            }
                            if &m.event == name {
                                u.metrics[i][0] += 1.0;
                                u.metrics[i][1] += value;
                            }
                            if m.denominator_event.as_ref() == Some(name) {
                                u.metrics[i][2] += value;
                            }
                        }
                    }
                }
            }
        }
        dups
    }
}

/// Adds a track event to a unit's CUPED pre-period sums: before its first
/// exposure (exposed units) or into the bounded map of units not exposed yet.
fn fold_pre(x: &ActiveExperiment, agg: &mut ExperimentAgg, unit: &str, ts: i64, name: &str, value: f64) {
    let slot = match agg.units.get_mut(unit) {
        Some(u) if ts < u.first_ms => &mut u.pre,
        Some(_) => return,
        None => {
            if !agg.pre_units.contains_key(unit) && agg.pre_units.len() >= MAX_PRE_UNITS {
                agg.pre_dropped += 1;
                return;
            }
            agg.pre_units.entry(unit.to_owned()).or_default()
        }
    };
    for (i, m) in x.metrics.iter().enumerate() {
        if !m.cuped || m.event != name {
            continue;
        }
        if slot.len() <= i {
            slot.resize(i + 1, [0.0; 3]);
        }
        slot[i][0] += 1.0;
        slot[i][1] += value;
    }
}

struct Job {
    environment: String,
    events: Vec<Event>,
    received_ms: i64,
    done: Option<oneshot::Sender<Result<u64, String>>>,
}

/// The ingestion front: a bounded hand-off to the single writer.
#[derive(Debug)]
pub struct Ingest {
    tx: mpsc::Sender<JobBox>,
    rx: Mutex<Option<mpsc::Receiver<JobBox>>>,
    pending: AtomicUsize,
    max_pending: usize,
    /// Automatic exposures dropped because the queue was full.
    pub dropped_auto: AtomicU64,
    /// Units already auto-exposed (hash of experiment and unit), bounded.
    auto_seen: Mutex<HashSet<u64>>,
    /// The folded aggregates.
    pub aggregates: Mutex<Aggregates>,
    /// How the aggregates were rebuilt at start-up.
    pub replay_report: Mutex<ReplayReport>,
    /// A checkpoint is saved after this many newly folded events (and at shutdown).
    pub checkpoint_every: AtomicU64,
}

/// How the aggregates were rebuilt at start-up.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ReplayReport {
    /// The batch id the checkpoint covered, when one was used.
    pub checkpoint_upto: Option<i64>,
    /// Batches replayed from the log (after the checkpoint, if any).
    pub batches: u64,
    /// Events in those batches.
    pub events: u64,
}

/// Name of the aggregates checkpoint in the store.
const CHECKPOINT: &str = "experiment-aggregates";
/// Bumped whenever the checkpoint's layout or the fold's semantics change
/// (an older checkpoint is then ignored and the log replayed in full).
const CHECKPOINT_VERSION: u32 = 1;
/// Default checkpoint cadence, in folded events.
pub const CHECKPOINT_EVERY_EVENTS: u64 = 1_000_000;

#[derive(serde::Serialize, serde::Deserialize)]
struct Checkpoint {
    version: u32,
    last_batch: i64,
    events_folded: u64,
    /// Experiments the fold knew, with the fingerprint of the definition it folded with.
    known: Vec<(String, String)>,
    experiments: Vec<(String, ExperimentAgg)>,
    seen_order: Vec<(i64, String)>,
}

/// What the fold depends on in an experiment's definition. A checkpoint is
/// only reused while every experiment it folded still has the same one.
fn fingerprint(x: &ActiveExperiment) -> String {
    use sha2::{Digest, Sha256};
    let doc = serde_json::json!([x.flag, x.started_ms, x.variants, x.metrics, x.pre_from_ms]);
    hex::encode(&Sha256::digest(doc.to_string().as_bytes())[..16])
}

impl Aggregates {
    /// Encodes the aggregates (postcard: compact, exact floats).
    fn checkpoint(&self, index: &ExperimentIndex) -> Result<Vec<u8>, postcard::Error> {
        let by_key: HashMap<&str, &Arc<ActiveExperiment>> = index.values().flatten().map(|x| (x.key.as_str(), x)).collect();
        let known = self.known.iter().filter_map(|k| by_key.get(k.as_str()).map(|x| (k.clone(), fingerprint(x)))).collect();
        #[derive(serde::Serialize)]
        struct Borrowed<'a> {
            version: u32,
            last_batch: i64,
            events_folded: u64,
            known: Vec<(String, String)>,
            experiments: Vec<(&'a String, &'a ExperimentAgg)>,
            seen_order: &'a VecDeque<(i64, String)>,
        }
        postcard::to_stdvec(&Borrowed {
            version: CHECKPOINT_VERSION,
            last_batch: self.last_batch,
            events_folded: self.events_folded,
            known,
            experiments: self.experiments.iter().collect(),
            seen_order: &self.seen_order,
        })
    }

    /// Decodes a checkpoint, unless it is from another version or folded an
    /// experiment whose definition has changed since (then: full replay).
    fn restore(bytes: &[u8], index: &ExperimentIndex) -> Option<Aggregates> {
        let c: Checkpoint = postcard::from_bytes(bytes).ok()?;
        if c.version != CHECKPOINT_VERSION {
            return None;
        }
        let by_key: HashMap<&str, &Arc<ActiveExperiment>> = index.values().flatten().map(|x| (x.key.as_str(), x)).collect();
        for (k, fp) in &c.known {
            if by_key.get(k.as_str()).is_some_and(|x| &fingerprint(x) != fp) {
                return None;
            }
        }
        let known: HashSet<String> = c.known.into_iter().map(|(k, _)| k).filter(|k| by_key.contains_key(k.as_str())).collect();
        Some(Aggregates {
            experiments: c.experiments.into_iter().filter(|(k, _)| known.contains(k)).collect(),
            seen: c.seen_order.iter().map(|(_, k)| k.clone()).collect(),
            seen_order: c.seen_order.into(),
            last_batch: c.last_batch,
            events_folded: c.events_folded,
            known,
        })
    }
}

/// A queued job (opaque).
pub struct JobBox(Job);

impl std::fmt::Debug for JobBox {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JobBox").field("environment", &self.0.environment).field("events", &self.0.events.len()).finish()
    }
}

/// Why a batch was not accepted.
#[derive(Debug, PartialEq, Eq)]
pub enum IngestError {
    /// Too much is waiting: retry later.
    Busy,
    /// Storing failed or the server is stopping.
    Failed(String),
}

impl Ingest {
    /// A front holding at most `max_pending` events in memory.
    pub fn new(max_pending: usize) -> Self {
        let (tx, rx) = mpsc::channel(1024);
        Ingest {
            tx,
            rx: Mutex::new(Some(rx)),
            pending: AtomicUsize::new(0),
            max_pending,
            dropped_auto: AtomicU64::new(0),
            auto_seen: Mutex::new(HashSet::new()),
            aggregates: Mutex::new(Aggregates::default()),
            replay_report: Mutex::new(ReplayReport::default()),
            checkpoint_every: AtomicU64::new(CHECKPOINT_EVERY_EVENTS),
        }
    }

    fn reserve(&self, n: usize) -> bool {
        let mut cur = self.pending.load(Ordering::Relaxed);
        loop {
            if cur + n > self.max_pending && cur > 0 {
                return false;
            }
            match self.pending.compare_exchange_weak(cur, cur + n, Ordering::AcqRel, Ordering::Relaxed) {
                Ok(_) => return true,
                Err(c) => cur = c,
            }
        }
    }

    /// Queues a batch and waits until it is durable; returns the duplicates.
    pub async fn submit(&self, environment: String, events: Vec<Event>, received_ms: i64) -> Result<u64, IngestError> {
        let n = events.len();
        if !self.reserve(n) {
            return Err(IngestError::Busy);
        }
        let (done, rx) = oneshot::channel();
        if self.tx.try_send(JobBox(Job { environment, events, received_ms, done: Some(done) })).is_err() {
            self.pending.fetch_sub(n, Ordering::AcqRel);
            return Err(IngestError::Busy);
        }
        match rx.await {
            Ok(Ok(d)) => Ok(d),
            Ok(Err(e)) => Err(IngestError::Failed(e)),
            Err(_) => Err(IngestError::Failed("the server is shutting down".into())),
        }
    }

    /// Records a server-side exposure (once per unit and experiment) without
    /// waiting; drops and counts it when the queue is full.
    pub fn auto_exposure(&self, environment: &str, experiment: &str, flag: &str, variant: &str, unit: &str, now_ms: i64) {
        use std::hash::{Hash, Hasher};
        let mut h = std::collections::hash_map::DefaultHasher::new();
        (environment, experiment, unit).hash(&mut h);
        let id = h.finish();
        {
            let mut seen = self.auto_seen.lock().unwrap_or_else(|p| p.into_inner());
            if !seen.insert(id) {
                return;
            }
            if seen.len() > 1_000_000 {
                seen.clear();
            }
        }
        let ev = Event {
            kind: EventKind::Exposure,
            unit_id: unit.to_owned(),
            flag: Some(flag.to_owned()),
            variant: Some(variant.to_owned()),
            name: None,
            value: None,
            timestamp: Some(now_ms),
            idempotency_key: None,
        };
        if !self.reserve(1)
            || self
                .tx
                .try_send(JobBox(Job { environment: environment.to_owned(), events: vec![ev], received_ms: now_ms, done: None }))
                .is_err()
        {
            self.dropped_auto.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// The variant `unit` was first exposed to in the started experiment
    /// `experiment` (environment `env`), if it has been exposed: the sticky
    /// assignment that server-side evaluations keep serving.
    pub fn assigned_variant(&self, index: &ExperimentIndex, env: &str, experiment: &str, unit: &str) -> Option<String> {
        let active = index.get(env)?.iter().find(|e| e.key == experiment)?;
        let aggregates = self.aggregates.lock().unwrap_or_else(|p| p.into_inner());
        let idx = aggregates.experiments.get(experiment)?.units.get(unit)?.variant;
        active.variants.get(usize::from(idx)).cloned()
    }

    /// Rebuilds the aggregates at start-up: from the checkpoint, if a usable
    /// one was saved, plus the batches after it; else from the whole log.
    pub async fn replay<St: Store>(&self, store: &St, views: &Views) -> Result<u64, StoreError> {
        let index = &views.experiment_index;
        let restored = match store.load_checkpoint(CHECKPOINT).await? {
            Some((_, bytes)) => Aggregates::restore(&bytes, index),
            None => None,
        };
        let mut report = ReplayReport::default();
        match restored {
            Some(agg) => {
                report.checkpoint_upto = Some(agg.last_batch);
                *self.aggregates.lock().unwrap_or_else(|p| p.into_inner()) = agg;
                // Experiments started after the checkpoint get their pre-period
                // from the batches it covers, exactly as they would have live.
                self.backfill_new_experiments(store, index).await;
            }
            None => {
                // A full replay folds every batch with every started
                // experiment in view: none needs a pre-period backfill.
                let mut agg = self.aggregates.lock().unwrap_or_else(|p| p.into_inner());
                *agg = Aggregates::default();
                agg.known.extend(index.values().flatten().map(|x| x.key.clone()));
            }
        }
        let mut after = self.aggregates.lock().unwrap_or_else(|p| p.into_inner()).last_batch;
        loop {
            let rows = store.events_after(after, 1000).await?;
            if rows.is_empty() {
                break;
            }
            let mut agg = self.aggregates.lock().unwrap_or_else(|p| p.into_inner());
            for r in &rows {
                after = r.id;
                agg.last_batch = r.id;
                report.batches += 1;
                let Ok(events) = serde_json::from_str::<Vec<Event>>(&r.events) else {
                    tracing::warn!(batch = r.id, "skipping an unreadable event batch");
                    continue;
                };
                report.events += events.len() as u64;
                agg.fold(index, &r.environment, r.id, r.received_ms, &events);
            }
        }
        let n = report.events;
        *self.replay_report.lock().unwrap_or_else(|p| p.into_inner()) = report;
        Ok(n)
    }

    /// Saves a checkpoint of the aggregates (encoded under the lock, written after).
    pub async fn save_checkpoint<St: Store>(&self, store: &St, index: &ExperimentIndex) -> Result<(), StoreError> {
        let encoded = {
            let agg = self.aggregates.lock().unwrap_or_else(|p| p.into_inner());
            agg.checkpoint(index).map(|bytes| (agg.last_batch, bytes))
        };
        match encoded {
            Ok((upto, bytes)) => store.save_checkpoint(CHECKPOINT, upto, bytes).await,
            Err(e) => {
                tracing::error!(error = %e, "encoding the experiment aggregates checkpoint failed");
                Ok(())
            }
        }
    }

    /// Experiments that entered the index since the last fold get their CUPED
    /// pre-period from the log: every batch folded so far (they were folded
    /// without the experiment) whose arrival falls in the pre-period. Later
    /// batches are folded live, so no event counts twice.
    async fn backfill_new_experiments<St: Store>(&self, store: &St, index: &ExperimentIndex) {
        let fresh: Vec<(String, Arc<ActiveExperiment>, i64)> = {
            let mut agg = self.aggregates.lock().unwrap_or_else(|p| p.into_inner());
            let upto = agg.last_batch;
            let mut fresh = Vec::new();
            for (env, list) in index {
                for x in list {
                    if agg.known.insert(x.key.clone()) {
                        agg.experiments.entry(x.key.clone()).or_default().pre_from_batch = upto;
                        if x.pre_from_ms.is_some() {
                            fresh.push((env.clone(), x.clone(), upto));
                        }
                    }
                }
            }
            fresh
        };
        for (env, x, upto) in fresh {
            let mut after = 0;
            'pages: loop {
                let rows = match store.events_after(after, 1000).await {
                    Ok(rows) => rows,
                    Err(e) => {
                        tracing::error!(error = %e, experiment = %x.key, "CUPED pre-period backfill failed; covariates start now");
                        break;
                    }
                };
                if rows.is_empty() {
                    break;
                }
                let mut agg = self.aggregates.lock().unwrap_or_else(|p| p.into_inner());
                let agg = agg.experiments.entry(x.key.clone()).or_default();
                for r in &rows {
                    if r.id > upto {
                        break 'pages;
                    }
                    after = r.id;
                    if r.environment != env || !x.collects_pre_at(r.received_ms) {
                        continue;
                    }
                    let Ok(events) = serde_json::from_str::<Vec<Event>>(&r.events) else { continue };
                    for e in events.iter().filter(|e| e.kind == EventKind::Track) {
                        if let Some(name) = &e.name {
                            fold_pre(&x, agg, &e.unit_id, e.timestamp.unwrap_or(r.received_ms), name, e.value.unwrap_or(1.0));
                        }
                    }
                }
            }
        }
    }
}

/// The single writer: drains the queue in group commits, then folds.
pub async fn run_writer<St: Store>(app: AppState<St>) {
    let Some(mut rx) = app.events.rx.lock().unwrap_or_else(|p| p.into_inner()).take() else { return };
    let stop = app.shutdown.clone();
    let mut folded_at_checkpoint = app.events.aggregates.lock().unwrap_or_else(|p| p.into_inner()).events_folded;
    // Other replicas sharing the database append batches too: fold them when
    // idle (and before our own, below), so every replica's results count every event.
    let mut catch_up_timer = tokio::time::interval(CATCH_UP_INTERVAL);
    catch_up_timer.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        let first = tokio::select! {
            j = rx.recv() => match j { Some(j) => j, None => break },
            () = crate::state::stopped(stop.clone()) => break,
            _ = catch_up_timer.tick() => {
                let views = app.views.load_full();
                app.events.backfill_new_experiments(&app.store, &views.experiment_index).await;
                catch_up(&app, &views.experiment_index, None).await;
                continue;
            }
        };
        let mut jobs = vec![first.0];
        let mut total = jobs[0].events.len();
        while jobs.len() < 256 && total < 200_000 {
            match rx.try_recv() {
                Ok(j) => {
                    total += j.0.events.len();
                    jobs.push(j.0);
                }
                Err(_) => break,
            }
        }
        let rows: Vec<EventBatchRow> = jobs
            .iter()
            .map(|j| EventBatchRow {
                id: 0,
                environment: j.environment.clone(),
                received_ms: j.received_ms,
                events: serde_json::to_string(&j.events).unwrap_or_else(|_| "[]".into()),
            })
            .collect();
        let stored = app.store.append_events(rows).await;
        match stored {
            Ok(ids) => {
                let views = app.views.load_full();
                let index = &views.experiment_index;
                app.events.backfill_new_experiments(&app.store, index).await;
                if let Some(first) = ids.first() {
                    catch_up(&app, index, Some(*first)).await;
                }
                let mut agg = app.events.aggregates.lock().unwrap_or_else(|p| p.into_inner());
                for (j, id) in jobs.iter_mut().zip(ids) {
                    let dups = agg.fold(index, &j.environment, id, j.received_ms, &j.events);
                    agg.last_batch = id;
                    if let Some(done) = j.done.take() {
                        let _ = done.send(Ok(dups));
                    }
                }
            }
            Err(e) => {
                tracing::error!(error = %e, "storing events failed");
                for j in &mut jobs {
                    if let Some(done) = j.done.take() {
                        let _ = done.send(Err("storing events failed; retry".into()));
                    }
                }
            }
        }
        app.events.pending.fetch_sub(total, Ordering::AcqRel);
        let folded = app.events.aggregates.lock().unwrap_or_else(|p| p.into_inner()).events_folded;
        if folded - folded_at_checkpoint >= app.events.checkpoint_every.load(Ordering::Relaxed) {
            checkpoint(&app).await;
            folded_at_checkpoint = folded;
        }
    }
    let folded = app.events.aggregates.lock().unwrap_or_else(|p| p.into_inner()).events_folded;
    if folded != folded_at_checkpoint {
        checkpoint(&app).await;
    }
}

/// How often an idle writer looks for batches other replicas appended.
pub const CATCH_UP_INTERVAL: std::time::Duration = std::time::Duration::from_secs(1);

/// Folds batches in the log that this process has not folded (appended by
/// other replicas), up to but excluding `before` when given.
async fn catch_up<St: Store>(app: &AppState<St>, index: &ExperimentIndex, before: Option<i64>) {
    loop {
        let after = app.events.aggregates.lock().unwrap_or_else(|p| p.into_inner()).last_batch;
        if before.is_some_and(|b| after + 1 >= b) {
            return;
        }
        let rows = match app.store.events_after(after, 1000).await {
            Ok(rows) => rows,
            Err(e) => {
                tracing::warn!(error = %e, "reading other replicas' event batches failed; retried later");
                return;
            }
        };
        let mut agg = app.events.aggregates.lock().unwrap_or_else(|p| p.into_inner());
        let mut more = false;
        for r in &rows {
            if before.is_some_and(|b| r.id >= b) {
                return;
            }
            more = true;
            agg.last_batch = r.id;
            let Ok(events) = serde_json::from_str::<Vec<Event>>(&r.events) else {
                tracing::warn!(batch = r.id, "skipping an unreadable event batch");
                continue;
            };
            agg.fold(index, &r.environment, r.id, r.received_ms, &events);
        }
        if !more || rows.len() < 1000 {
            return;
        }
    }
}

async fn checkpoint<St: Store>(app: &AppState<St>) {
    let views = app.views.load_full();
    if let Err(e) = app.events.save_checkpoint(&app.store, &views.experiment_index).await {
        tracing::error!(error = %e, "saving the experiment aggregates checkpoint failed; a restart replays more of the log");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn exposure(unit: &str) -> Event {
        Event {
            kind: EventKind::Exposure,
            unit_id: unit.into(),
            flag: Some("f".into()),
            variant: Some("a".into()),
            name: None,
            value: None,
            timestamp: None,
            idempotency_key: None,
        }
    }

    #[tokio::test]
    async fn a_full_queue_answers_busy_instead_of_growing() {
        // No writer runs: the first batch stays pending, the next one does not fit.
        let ingest = std::sync::Arc::new(Ingest::new(10));
        let first = {
            let ingest = ingest.clone();
            tokio::spawn(async move { ingest.submit("production".into(), (0..6).map(|i| exposure(&i.to_string())).collect(), 0).await })
        };
        while ingest.pending.load(Ordering::Acquire) == 0 {
            tokio::task::yield_now().await;
        }
        let second = ingest.submit("production".into(), (0..5).map(|i| exposure(&i.to_string())).collect(), 0).await;
        assert_eq!(second, Err(IngestError::Busy));
        assert_eq!(ingest.pending.load(Ordering::Acquire), 6);
        first.abort();
    }

    #[test]
    fn duplicates_are_counted_once_within_the_window() {
        let exp = Arc::new(ActiveExperiment {
            key: "x".into(),
            flag: "f".into(),
            started_ms: 0,
            stopped_ms: None,
            variants: vec!["a".into(), "b".into()],
            metrics: vec![],
            pre_from_ms: None,
        });
        let index: ExperimentIndex = [("production".to_owned(), vec![exp])].into();
        let mut agg = Aggregates::default();
        let keyed = |k: &str| Event { idempotency_key: Some(k.into()), ..exposure(k) };
        assert_eq!(agg.fold(&index, "production", 1, 10, &[keyed("k1"), keyed("k2")]), 0);
        assert_eq!(agg.fold(&index, "production", 2, 20, &[keyed("k1")]), 1);
        // The same key in another environment is another event.
        assert_eq!(agg.fold(&index, "staging", 3, 20, &[keyed("k1")]), 0);
        // After the window it is forgotten.
        assert_eq!(agg.fold(&index, "production", 4, 30 + DEDUPE_WINDOW_MS, &[keyed("k3")]), 0);
        assert_eq!(agg.fold(&index, "production", 5, 40 + DEDUPE_WINDOW_MS, &[keyed("k1")]), 0);
        assert_eq!(agg.experiments["x"].units.len(), 3);
    }

    #[test]
    fn cuped_pre_period_is_folded_before_exposure_and_never_twice() {
        let metric: MetricDef =
            serde_json::from_value(serde_json::json!({"name": "rev", "event": "buy", "kind": "mean", "cuped": true})).unwrap();
        let exp = Arc::new(ActiveExperiment {
            key: "x".into(),
            flag: "f".into(),
            started_ms: 1_000,
            stopped_ms: None,
            variants: vec!["a".into(), "b".into()],
            metrics: vec![metric],
            pre_from_ms: Some(100),
        });
        let index: ExperimentIndex = [("production".to_owned(), vec![exp])].into();
        let buy = |unit: &str, ts: i64, v: f64| Event {
            kind: EventKind::Track,
            name: Some("buy".into()),
            value: Some(v),
            timestamp: Some(ts),
            flag: None,
            variant: None,
            ..exposure(unit)
        };
        let expose = |unit: &str, ts: i64| Event { timestamp: Some(ts), ..exposure(unit) };
        let mut agg = Aggregates::default();
        // Before the pre-period: ignored. In it (before start): counts as covariate.
        agg.fold(&index, "production", 1, 50, &[buy("u", 50, 100.0)]);
        agg.fold(&index, "production", 2, 500, &[buy("u", 500, 7.0)]);
        // After start, still before u's exposure: covariate too.
        agg.fold(&index, "production", 3, 1_500, &[buy("u", 1_500, 3.0)]);
        agg.fold(&index, "production", 4, 2_000, &[expose("u", 2_000), buy("u", 2_100, 5.0)]);
        let u = &agg.experiments["x"].units["u"];
        assert_eq!(u.pre, vec![[2.0, 10.0, 0.0]]);
        assert_eq!(u.metrics, vec![[1.0, 5.0, 0.0]]);
        assert!(agg.experiments["x"].pre_units.is_empty(), "moved into the unit at exposure");
        // Batches up to `pre_from_batch` were covered by the start-time backfill: not folded again.
        agg.experiments.get_mut("x").unwrap().pre_from_batch = 10;
        agg.fold(&index, "production", 9, 2_200, &[buy("w", 600, 1.0)]);
        assert!(agg.experiments["x"].pre_units.is_empty());
        agg.fold(&index, "production", 11, 2_300, &[buy("w", 2_300, 1.0)]);
        assert_eq!(agg.experiments["x"].pre_units["w"], vec![[1.0, 1.0, 0.0]]);
    }

    #[test]
    fn checkpoints_round_trip_and_are_refused_after_a_definition_change() {
        let metric: MetricDef =
            serde_json::from_value(serde_json::json!({"name": "rev", "event": "buy", "kind": "mean", "cuped": true})).unwrap();
        let exp = ActiveExperiment {
            key: "x".into(),
            flag: "f".into(),
            started_ms: 1_000,
            stopped_ms: None,
            variants: vec!["a".into(), "b".into()],
            metrics: vec![metric],
            pre_from_ms: Some(100),
        };
        let index: ExperimentIndex = [("production".to_owned(), vec![Arc::new(exp.clone())])].into();
        let mut agg = Aggregates::default();
        agg.known.insert("x".into());
        let buy = |unit: &str, v: f64| Event { kind: EventKind::Track, name: Some("buy".into()), value: Some(v), ..exposure(unit) };
        agg.fold(&index, "production", 1, 500, &[buy("u", 0.1 + 0.2)]);
        agg.fold(&index, "production", 2, 2_000, &[Event { idempotency_key: Some("k".into()), ..exposure("u") }, buy("u", 1.0 / 3.0)]);
        let bytes = agg.checkpoint(&index).unwrap();

        let back = Aggregates::restore(&bytes, &index).expect("same definitions: reusable");
        assert_eq!((back.last_batch, back.events_folded), (agg.last_batch, agg.events_folded));
        let (u, v) = (&agg.experiments["x"].units["u"], &back.experiments["x"].units["u"]);
        assert_eq!((u.variant, u.first_ms, &u.metrics, &u.pre), (v.variant, v.first_ms, &v.metrics, &v.pre), "floats restored exactly");
        assert!(back.seen.contains("production\u{0}k"), "idempotency keys survive");
        assert!(back.known.contains("x"));

        // A changed definition (here: the metric's window) invalidates it.
        let mut changed = exp;
        changed.metrics[0].window_hours = Some(24.0);
        let index2: ExperimentIndex = [("production".to_owned(), vec![Arc::new(changed)])].into();
        assert!(Aggregates::restore(&bytes, &index2).is_none());
        // A deleted experiment is dropped; garbage is refused.
        let empty = ExperimentIndex::new();
        assert!(Aggregates::restore(&bytes, &empty).unwrap().experiments.is_empty());
        assert!(Aggregates::restore(b"not a checkpoint", &index).is_none());
    }
}
