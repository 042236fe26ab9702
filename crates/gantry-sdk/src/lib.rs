//! Gantry's Rust SDK: evaluates flags locally with the engine against a
//! configuration it keeps current from the server's stream.
//!
//! - **Local evaluation**: every call evaluates in-process (nanoseconds), the
//!   network is only used to receive changes and upload usage counts.
//! - **Live updates** (feature `http`): an initial fetch of
//!   `/api/v1/config`, then `/api/v1/stream` with `Last-Event-ID` resume;
//!   reconnects with jittered backoff and re-polls the configuration with its
//!   ETag while the stream is down.
//! - **Fail-static**: the last configuration is kept while the server is
//!   unreachable and persisted to a cache file; at start-up with the server
//!   down the cache is used. A corrupt cache is reported and ignored.
//! - **Bootstrap** from a file or value for air-gapped use, and
//!   `GANTRY_FLAG_<KEY>` overrides for local development.
//!
//! Design decision: without the `http` feature the crate has no async
//! runtime; a bootstrapped client evaluates with the engine alone.
#![deny(missing_docs)]
#![forbid(unsafe_code)]

mod state;
pub mod sticky;

#[cfg(feature = "http")]
mod http;
#[cfg(feature = "http")]
mod sse;

pub mod openfeature_support;

#[cfg(feature = "openfeature")]
pub mod openfeature;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

pub use gantry_api_types::StreamSnapshot;
pub use gantry_engine::Context;
use gantry_engine::{EvalInputs, FlagKind, Value};

use state::Shared;
pub use state::{FlagChange, Source, Subscription};

/// SDK errors.
#[derive(Debug, thiserror::Error)]
pub enum SdkError {
    /// The cache or bootstrap file could not be read or parsed.
    #[error("cannot use configuration file {path}: {reason}")]
    BadFile {
        /// The file.
        path: String,
        /// Why.
        reason: String,
    },
    /// The bootstrap value is not a configuration.
    #[error("bootstrap configuration is invalid: {0}")]
    BadBootstrap(String),
    /// No configuration arrived in time.
    #[error("not ready after {0:?}")]
    NotReady(Duration),
    /// The builder is missing something.
    #[error("invalid SDK configuration: {0}")]
    Config(String),
}

/// Why a value was served, as the SDK reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reason {
    /// An engine reason (OpenFeature names).
    Engine(gantry_engine::Reason),
    /// A `GANTRY_FLAG_<KEY>` override decided.
    Override,
}

impl Reason {
    /// The OpenFeature-style name (`OVERRIDE` for overrides).
    pub fn as_str(self) -> &'static str {
        match self {
            Reason::Engine(r) => r.as_str(),
            Reason::Override => "OVERRIDE",
        }
    }
}

/// The full result of one evaluation.
#[derive(Debug, Clone, PartialEq)]
pub struct Details {
    /// Flag key.
    pub key: String,
    /// Whether the flag is on.
    pub enabled: bool,
    /// The served value (None: use your default).
    pub value: Option<serde_json::Value>,
    /// Variant name.
    pub variant: Option<String>,
    /// Why.
    pub reason: Reason,
    /// Error code, when the reason is an error.
    pub error: Option<gantry_engine::ErrorCode>,
    /// Matched rule index.
    pub rule_index: Option<usize>,
}

/// A development override from `GANTRY_FLAG_<KEY>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OverrideValue {
    /// `true`.
    On,
    /// `false`.
    Off,
    /// Anything else: this variant.
    Variant(String),
}

/// The environment-variable name of a flag's override: `GANTRY_FLAG_` plus
/// the key upper-cased with every other character replaced by `_`.
pub fn override_var(key: &str) -> String {
    let mut s = String::from("GANTRY_FLAG_");
    s.extend(key.chars().map(|c| if c.is_ascii_alphanumeric() { c.to_ascii_uppercase() } else { '_' }));
    s
}

/// Reads overrides from variables (`GANTRY_FLAG_*`), e.g. `std::env::vars()`.
pub fn overrides_from_vars(vars: impl IntoIterator<Item = (String, String)>) -> BTreeMap<String, OverrideValue> {
    vars.into_iter()
        .filter(|(k, _)| k.starts_with("GANTRY_FLAG_"))
        .map(|(k, v)| {
            let o = match v.trim() {
                "true" | "on" | "1" => OverrideValue::On,
                "false" | "off" | "0" => OverrideValue::Off,
                other => OverrideValue::Variant(other.to_owned()),
            };
            (k, o)
        })
        .collect()
}

/// Builds a [`GantryClient`].
#[derive(Debug, Clone)]
pub struct Builder {
    pub(crate) url: Option<String>,
    pub(crate) token: Option<String>,
    pub(crate) environment: Option<String>,
    pub(crate) cache_file: Option<PathBuf>,
    pub(crate) bootstrap: Option<StreamSnapshot>,
    pub(crate) bootstrap_file: Option<PathBuf>,
    pub(crate) overrides: BTreeMap<String, OverrideValue>,
    pub(crate) app_name: String,
    pub(crate) metrics_interval: Duration,
    pub(crate) poll_interval: Duration,
    pub(crate) max_backoff: Duration,
    pub(crate) metrics_queue: usize,
    pub(crate) assignments: Assignments,
}

/// The configured [`sticky::AssignmentStore`] (a wrapper so the builder stays `Debug`).
#[derive(Clone, Default)]
pub(crate) struct Assignments(pub(crate) Option<std::sync::Arc<dyn sticky::AssignmentStore>>);

impl std::fmt::Debug for Assignments {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(if self.0.is_some() { "Assignments(custom)" } else { "Assignments(memory)" })
    }
}

impl Default for Builder {
    fn default() -> Self {
        Builder {
            url: None,
            token: None,
            environment: None,
            cache_file: None,
            bootstrap: None,
            bootstrap_file: None,
            overrides: BTreeMap::new(),
            app_name: "gantry-rust-sdk".into(),
            metrics_interval: Duration::from_secs(30),
            poll_interval: Duration::from_secs(15),
            max_backoff: Duration::from_secs(3),
            metrics_queue: 10_000,
            assignments: Assignments::default(),
        }
    }
}

impl Builder {
    /// Server URL (`http://127.0.0.1:4242`) and a server token.
    pub fn server(mut self, url: impl Into<String>, token: impl Into<String>) -> Self {
        self.url = Some(url.into().trim_end_matches('/').to_owned());
        self.token = Some(token.into());
        self
    }
    /// Environment (admin tokens only; server tokens carry their own).
    pub fn environment(mut self, env: impl Into<String>) -> Self {
        self.environment = Some(env.into());
        self
    }
    /// Where sticky experiment assignments are kept (default: in memory,
    /// 100,000 of them; see [`sticky`]). A shared store keeps a unit's
    /// variant across processes when an experiment's weights change mid-run.
    pub fn assignment_store(mut self, store: std::sync::Arc<dyn sticky::AssignmentStore>) -> Self {
        self.assignments = Assignments(Some(store));
        self
    }
    /// Where the last configuration is persisted (fail-static start-up).
    pub fn cache_file(mut self, path: impl Into<PathBuf>) -> Self {
        self.cache_file = Some(path.into());
        self
    }
    /// Starts from this configuration.
    pub fn bootstrap(mut self, snapshot: StreamSnapshot) -> Self {
        self.bootstrap = Some(snapshot);
        self
    }
    /// Starts from a configuration file (a `/api/v1/config` response).
    pub fn bootstrap_file(mut self, path: impl Into<PathBuf>) -> Self {
        self.bootstrap_file = Some(path.into());
        self
    }
    /// Development overrides (see [`overrides_from_vars`]).
    pub fn overrides(mut self, o: BTreeMap<String, OverrideValue>) -> Self {
        self.overrides = o;
        self
    }
    /// Reads `GANTRY_FLAG_*` overrides from the process environment.
    pub fn overrides_from_env(self) -> Self {
        let o = overrides_from_vars(std::env::vars());
        self.overrides(o)
    }
    /// Name reported with metrics.
    pub fn app_name(mut self, name: impl Into<String>) -> Self {
        self.app_name = name.into();
        self
    }
    /// How often usage counts are uploaded.
    pub fn metrics_interval(mut self, d: Duration) -> Self {
        self.metrics_interval = d;
        self
    }
    /// How often the configuration is polled while the stream is down.
    pub fn poll_interval(mut self, d: Duration) -> Self {
        self.poll_interval = d;
        self
    }
    /// Upper bound of the reconnect backoff.
    pub fn max_backoff(mut self, d: Duration) -> Self {
        self.max_backoff = d;
        self
    }
    /// Capacity of the metrics queue (evaluations beyond it are dropped and counted).
    pub fn metrics_queue(mut self, n: usize) -> Self {
        self.metrics_queue = n.max(1);
        self
    }

    /// A client with no server: bootstrap (value or file) and overrides only.
    /// Needs no async runtime.
    pub fn build_offline(self) -> Result<GantryClient, SdkError> {
        let shared = Shared::new(&self);
        let client = GantryClient { shared: Arc::new(shared) };
        client.load_initial(&self)?;
        Ok(client)
    }

    /// A connected client: starts the background fetch/stream/metrics tasks
    /// on the current tokio runtime.
    #[cfg(feature = "http")]
    pub fn build(self) -> Result<GantryClient, SdkError> {
        if self.url.is_none() || self.token.is_none() {
            return Err(SdkError::Config("server(url, token) is required; use build_offline() without a server".into()));
        }
        let shared = Arc::new(Shared::new(&self));
        let client = GantryClient { shared: shared.clone() };
        client.load_initial(&self)?;
        http::start(&shared, &self);
        Ok(client)
    }
}

/// The SDK client. Cheap to clone; all clones share one configuration.
#[derive(Debug, Clone)]
pub struct GantryClient {
    pub(crate) shared: Arc<Shared>,
}

fn now_millis() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_millis() as i64).unwrap_or(0)
}

/// The synthetic `gantry.maintenance` flag, answered as the server answers it:
/// on (variant `maintenance`, the message as value) for a context in maintenance.
fn maintenance_details(loaded: &state::Loaded, ctx: &Context, now: i64) -> Details {
    let key = gantry_api_types::MAINTENANCE_FLAG.to_owned();
    let m = loaded.maintenance.as_ref();
    let on = m.is_some_and(|m| m.applies_to(ctx, EvalInputs::new(now, rand::random())));
    let reason =
        if m.is_some_and(|m| m.state.active_at(now)) { gantry_engine::Reason::TargetingMatch } else { gantry_engine::Reason::Disabled };
    Details {
        key,
        enabled: on,
        value: Some(serde_json::Value::Bool(on)),
        variant: on.then(|| gantry_api_types::MAINTENANCE_VARIANT.to_owned()),
        reason: Reason::Engine(reason),
        error: None,
        rule_index: None,
    }
}

impl GantryClient {
    /// A builder.
    pub fn builder() -> Builder {
        Builder::default()
    }

    fn load_initial(&self, b: &Builder) -> Result<(), SdkError> {
        if let Some(snap) = &b.bootstrap {
            self.shared.apply_snapshot(snap.clone(), Source::Bootstrap);
        } else if let Some(path) = &b.bootstrap_file {
            let snap = state::read_snapshot_file(path)?;
            self.shared.apply_snapshot(snap, Source::Bootstrap);
        }
        Ok(())
    }

    /// Where the current configuration came from.
    pub fn source(&self) -> Source {
        self.shared.current().source
    }

    /// The configuration revision in use.
    pub fn revision(&self) -> i64 {
        self.shared.current().snapshot.revision
    }

    /// The last error the background tasks met (for health reporting).
    pub fn last_error(&self) -> Option<String> {
        self.shared.last_error()
    }

    /// Why the cache file could not be used at start-up, if it could not.
    pub fn cache_error(&self) -> Option<String> {
        self.shared.cache_error.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// Records a track event (a conversion, revenue, an error, a latency)
    /// for `unit`; uploaded in batches with exposures. Never blocks: when the
    /// queue is full the event is dropped and counted ([`Self::dropped_events`]).
    pub fn track(&self, unit: &str, name: &str, value: Option<f64>) {
        self.shared.events.push(gantry_api_types::Event {
            kind: gantry_api_types::EventKind::Track,
            unit_id: unit.to_owned(),
            flag: None,
            variant: None,
            name: Some(name.to_owned()),
            value,
            timestamp: Some(now_millis()),
            idempotency_key: Some(state::new_key()),
        });
    }

    /// Exposure and track events dropped because their queue was full.
    pub fn dropped_events(&self) -> u64 {
        self.shared.events.dropped()
    }

    /// Evaluations dropped because the metrics queue was full.
    pub fn dropped_metrics(&self) -> u64 {
        self.shared.metrics.dropped()
    }

    /// Whether a configuration (server, cache or bootstrap) is loaded.
    pub fn is_ready(&self) -> bool {
        self.shared.is_ready()
    }

    /// Blocks until a configuration is loaded, or the timeout passes.
    pub fn wait_until_ready_blocking(&self, timeout: Duration) -> Result<(), SdkError> {
        if self.shared.wait_ready_blocking(timeout) {
            Ok(())
        } else {
            Err(SdkError::NotReady(timeout))
        }
    }

    /// Waits until a configuration is loaded, or the timeout passes.
    #[cfg(feature = "http")]
    pub async fn wait_until_ready(&self, timeout: Duration) -> Result<(), SdkError> {
        let mut rx = self.shared.ready_rx();
        let ready = tokio::time::timeout(timeout, async move { rx.wait_for(|r| *r).await.is_ok() }).await;
        match ready {
            Ok(true) => Ok(()),
            _ => Err(SdkError::NotReady(timeout)),
        }
    }

    /// Full evaluation details.
    pub fn evaluate(&self, key: &str, ctx: &Context) -> Details {
        let loaded = self.shared.current();
        if let Some(o) = self.shared.override_for(key) {
            let kind = loaded.plan.lookup(key).map(|i| loaded.plan.flag(i).kind());
            let (enabled, variant) = match o {
                OverrideValue::On => (true, None),
                OverrideValue::Off => (false, None),
                OverrideValue::Variant(v) => (true, Some(v.clone())),
            };
            let value = match (kind, &variant) {
                (Some(FlagKind::Boolean) | None, None) => Some(serde_json::Value::Bool(enabled)),
                (_, Some(v)) => state::override_variant_value(&loaded, key, v),
                (Some(_), None) => None,
            };
            return Details { key: key.to_owned(), enabled, value, variant, reason: Reason::Override, error: None, rule_index: None };
        }
        let now = now_millis();
        if key == gantry_api_types::MAINTENANCE_FLAG && loaded.plan.lookup(key).is_none() {
            return maintenance_details(&loaded, ctx, now);
        }
        let mut ev = loaded.plan.evaluate(key, ctx, EvalInputs::new(now, rand::random()));
        if let Some(experiment) = loaded.experiments.get(key) {
            if let (Some(v), Some(unit)) = (ev.variant_name(), ctx.standard(gantry_engine::StandardField::UserId)) {
                // Sticky: a unit keeps its first variant when the weights change mid-run.
                match self.shared.assignments.get(experiment, unit) {
                    Some(stuck) if stuck != v => {
                        if !ev.stick_to_variant(&stuck) {
                            self.shared.assignments.put(experiment, unit, v);
                        }
                    }
                    Some(_) => {}
                    None => self.shared.assignments.put(experiment, unit, v),
                }
                if let Some(v) = ev.variant_name() {
                    self.shared.events.expose(key, v, unit, now);
                }
            }
        }
        self.shared.metrics.count(&loaded, &ev);
        Details {
            key: key.to_owned(),
            enabled: ev.enabled,
            value: ev.value().map(|v| v.to_json()),
            variant: ev.variant_name().map(str::to_owned),
            reason: Reason::Engine(ev.reason),
            error: ev.error,
            rule_index: ev.rule_index,
        }
    }

    /// Whether a flag is on (unknown flags are off).
    pub fn is_enabled(&self, key: &str, ctx: &Context) -> bool {
        if self.shared.has_overrides() || self.shared.current().experiment_flags.contains(key) || key == gantry_api_types::MAINTENANCE_FLAG
        {
            return self.evaluate(key, ctx).enabled;
        }
        let loaded = self.shared.current();
        let ev = loaded.plan.evaluate(key, ctx, EvalInputs::new(now_millis(), rand::random()));
        self.shared.metrics.count(&loaded, &ev);
        ev.enabled
    }

    /// The variant served (None when off or without variants).
    pub fn variant(&self, key: &str, ctx: &Context) -> Option<String> {
        let d = self.evaluate(key, ctx);
        if d.enabled {
            d.variant
        } else {
            None
        }
    }

    fn typed<T>(&self, key: &str, ctx: &Context, default: T, pick: impl FnOnce(&serde_json::Value) -> Option<T>) -> T {
        let d = self.evaluate(key, ctx);
        d.value.as_ref().and_then(pick).unwrap_or(default)
    }

    /// A boolean flag's value, or `default` (unknown flag, wrong type, error).
    pub fn bool_value(&self, key: &str, ctx: &Context, default: bool) -> bool {
        self.typed(key, ctx, default, serde_json::Value::as_bool)
    }

    /// A string flag's value, or `default`.
    pub fn string_value(&self, key: &str, ctx: &Context, default: &str) -> String {
        self.typed(key, ctx, default.to_owned(), |v| v.as_str().map(str::to_owned))
    }

    /// A number flag's value, or `default`.
    pub fn number_value(&self, key: &str, ctx: &Context, default: f64) -> f64 {
        self.typed(key, ctx, default, serde_json::Value::as_f64)
    }

    /// A JSON flag's value, or `default`.
    pub fn json_value(&self, key: &str, ctx: &Context, default: serde_json::Value) -> serde_json::Value {
        let d = self.evaluate(key, ctx);
        match (d.value, d.error) {
            (Some(v), None) => v,
            _ => default,
        }
    }

    /// Every flag, evaluated for one context.
    pub fn evaluate_all(&self, ctx: &Context) -> Vec<Details> {
        let loaded = self.shared.current();
        let keys: Vec<String> = loaded.plan.flags().map(|(_, f)| f.key().to_owned()).collect();
        drop(loaded);
        keys.iter().map(|k| self.evaluate(k, ctx)).collect()
    }

    /// Calls `f` when `flag` changes (`None`: any flag). Drop the returned
    /// subscription to stop.
    pub fn subscribe(&self, flag: Option<&str>, f: impl Fn(&FlagChange) + Send + Sync + 'static) -> Subscription {
        self.shared.subscribe(flag.map(str::to_owned), Box::new(f))
    }

    /// The environment's maintenance settings, when maintenance was ever
    /// set for it (`enabled`, message, allowlist, end).
    pub fn maintenance(&self) -> Option<gantry_api_types::MaintenanceState> {
        self.shared.current().maintenance.as_ref().map(|m| m.state.clone())
    }

    /// Whether this context is in maintenance now: maintenance is on, not
    /// past its end, and the context is neither an allowed user id nor in an
    /// allowed segment. The same answer the server gives as the flag
    /// `gantry.maintenance` in the frontend API and OFREP.
    pub fn is_in_maintenance(&self, ctx: &Context) -> bool {
        let loaded = self.shared.current();
        loaded.maintenance.as_ref().is_some_and(|m| m.applies_to(ctx, EvalInputs::new(now_millis(), rand::random())))
    }

    /// Calls `f` for each new release of an app recorded for this
    /// environment while the client is connected (`release-recorded` stream
    /// events). Drop the returned subscription to stop.
    pub fn on_new_release(&self, f: impl Fn(&gantry_api_types::Release) + Send + Sync + 'static) -> Subscription {
        self.shared.subscribe_releases(Box::new(f))
    }

    /// Replaces the configuration (used by the transport; public for
    /// custom transports and tests).
    pub fn apply_snapshot(&self, snapshot: StreamSnapshot) {
        self.shared.apply_snapshot(snapshot, Source::Server);
    }

    /// Stops background tasks and uploads pending usage counts.
    #[cfg(feature = "http")]
    pub async fn close(&self) {
        http::close(&self.shared).await;
    }

    /// Reads usage counts accumulated since the last upload, and resets them
    /// (what the uploader sends as an Unleash metrics bucket).
    pub fn take_usage(&self) -> BTreeMap<String, (u64, u64, BTreeMap<String, u64>)> {
        self.shared.metrics.take()
    }

    /// A value by key with the engine's typed result (no JSON conversion).
    pub fn with_value<R>(&self, key: &str, ctx: &Context, f: impl FnOnce(Option<Value<'_>>) -> R) -> R {
        let loaded = self.shared.current();
        let ev = loaded.plan.evaluate(key, ctx, EvalInputs::new(now_millis(), rand::random()));
        self.shared.metrics.count(&loaded, &ev);
        f(ev.value())
    }
}
