//! An OpenFeature provider for the `open-feature` crate (feature
//! `openfeature`): OpenFeature's evaluation API answered by the SDK's local
//! engine, so an application written against OpenFeature gets Gantry's
//! in-process speed, live updates and fail-static behaviour.
//!
//! ```no_run
//! # async fn demo(client: gantry_sdk::GantryClient) {
//! let mut api = open_feature::OpenFeature::default();
//! api.set_provider(gantry_sdk::openfeature::GantryProvider::new(client)).await;
//! let of = api.create_client();
//! let ctx = open_feature::EvaluationContext::default().with_targeting_key("user-7");
//! let on = of.get_bool_value("checkout", Some(&ctx), None).await.unwrap_or(false);
//! # let _ = on;
//! # }
//! ```
//!
//! Mapping: the targeting key is the user id; every custom field becomes a
//! context field (standard names such as `sessionId`, `remoteAddress` or
//! `currentTime` go to their standard slots, see
//! [`gantry_engine::Context::set`]); numbers and booleans are stringified the
//! way OFREP does it; date-times are written as RFC 3339; structures are
//! ignored. A flag whose value has another type than the one asked for is a
//! `TYPE_MISMATCH`; an unknown flag is `FLAG_NOT_FOUND`; a definition that
//! does not compile is `PARSE_ERROR`. A disabled flag that serves no value
//! (a non-boolean flag without an off value) answers `GENERAL` with the
//! message `FLAG_DISABLED`, so the application's default is used.

use std::collections::HashMap;

use open_feature::provider::{FeatureProvider, ProviderMetadata, ProviderStatus, ResolutionDetails};
use open_feature::{
    EvaluationContext, EvaluationContextFieldValue, EvaluationError, EvaluationErrorCode, EvaluationReason, EvaluationResult, FlagMetadata,
    FlagMetadataValue, StructValue, Value,
};

use crate::{Context, Details, GantryClient, Reason};

/// The Gantry OpenFeature provider.
#[derive(Debug, Clone)]
pub struct GantryProvider {
    client: GantryClient,
    metadata: ProviderMetadata,
}

impl GantryProvider {
    /// A provider answering from `client`.
    pub fn new(client: GantryClient) -> Self {
        GantryProvider { client, metadata: ProviderMetadata::new("gantry") }
    }

    /// The SDK client behind the provider.
    pub fn client(&self) -> &GantryClient {
        &self.client
    }

    fn details(&self, key: &str, ctx: &EvaluationContext) -> Result<Details, EvaluationError> {
        let d = self.client.evaluate(key, &to_context(ctx));
        match d.error {
            None => Ok(d),
            Some(gantry_engine::ErrorCode::FlagNotFound) => {
                Err(error(EvaluationErrorCode::FlagNotFound, format!("flag `{key}` not found")))
            }
            Some(gantry_engine::ErrorCode::ParseError) => {
                Err(error(EvaluationErrorCode::ParseError, format!("the definition of flag `{key}` does not compile")))
            }
            Some(gantry_engine::ErrorCode::TypeMismatch) => {
                Err(error(EvaluationErrorCode::TypeMismatch, format!("flag `{key}`: type mismatch")))
            }
            Some(gantry_engine::ErrorCode::General) => {
                Err(error(EvaluationErrorCode::General("GENERAL".into()), format!("flag `{key}` failed")))
            }
        }
    }

    fn resolve<T>(
        &self,
        key: &str,
        ctx: &EvaluationContext,
        want: &str,
        pick: impl FnOnce(&serde_json::Value) -> Option<T>,
    ) -> EvaluationResult<ResolutionDetails<T>> {
        let d = self.details(key, ctx)?;
        let Some(json) = d.value.as_ref() else {
            return Err(error(
                EvaluationErrorCode::General("FLAG_DISABLED".into()),
                format!("flag `{key}` is disabled and serves no value"),
            ));
        };
        let Some(value) = pick(json) else {
            return Err(error(EvaluationErrorCode::TypeMismatch, format!("flag `{key}` serves {}, not {want}", json_kind(json))));
        };
        Ok(resolution(value, &d))
    }
}

fn error(code: EvaluationErrorCode, message: String) -> EvaluationError {
    EvaluationError { code, message: Some(message) }
}

fn json_kind(v: &serde_json::Value) -> &'static str {
    match v {
        serde_json::Value::Null => "null",
        serde_json::Value::Bool(_) => "a boolean",
        serde_json::Value::Number(_) => "a number",
        serde_json::Value::String(_) => "a string",
        serde_json::Value::Array(_) => "an array",
        serde_json::Value::Object(_) => "an object",
    }
}

fn resolution<T>(value: T, d: &Details) -> ResolutionDetails<T> {
    let reason = match d.reason {
        Reason::Override => EvaluationReason::Other("OVERRIDE".into()),
        Reason::Engine(r) => match r {
            gantry_engine::Reason::Static => EvaluationReason::Static,
            gantry_engine::Reason::TargetingMatch => EvaluationReason::TargetingMatch,
            gantry_engine::Reason::Split => EvaluationReason::Split,
            gantry_engine::Reason::Default => EvaluationReason::Default,
            gantry_engine::Reason::Disabled => EvaluationReason::Disabled,
            gantry_engine::Reason::Error => EvaluationReason::Error,
        },
    };
    let mut meta = HashMap::new();
    if let Some(i) = d.rule_index {
        meta.insert("ruleIndex".to_owned(), FlagMetadataValue::Int(i as i64));
    }
    ResolutionDetails {
        value,
        variant: d.variant.clone(),
        reason: Some(reason),
        flag_metadata: (!meta.is_empty()).then_some(FlagMetadata { values: meta }),
    }
}

/// The engine context of an OpenFeature evaluation context.
pub fn to_context(ctx: &EvaluationContext) -> Context {
    let mut c = Context::new();
    for (name, v) in &ctx.custom_fields {
        let s = match v {
            EvaluationContextFieldValue::Bool(b) => b.to_string(),
            EvaluationContextFieldValue::Int(i) => i.to_string(),
            EvaluationContextFieldValue::Float(f) => f.to_string(),
            EvaluationContextFieldValue::String(s) => s.clone(),
            EvaluationContextFieldValue::DateTime(t) => match t.format(&time::format_description::well_known::Rfc3339) {
                Ok(s) => s,
                Err(_) => continue,
            },
            EvaluationContextFieldValue::Struct(_) => continue,
        };
        let name = if name == "targetingKey" { "userId" } else { name.as_str() };
        c.set(name, s);
    }
    // The targeting key is the user id; an explicit `userId` field wins.
    if let Some(k) = &ctx.targeting_key {
        if !ctx.custom_fields.contains_key("userId") {
            c.set("userId", k.clone());
        }
    }
    c
}

fn to_of_value(v: &serde_json::Value) -> Option<Value> {
    Some(match v {
        serde_json::Value::Null => return None,
        serde_json::Value::Bool(b) => Value::Bool(*b),
        serde_json::Value::Number(n) => match n.as_i64() {
            Some(i) => Value::Int(i),
            None => Value::Float(n.as_f64()?),
        },
        serde_json::Value::String(s) => Value::String(s.clone()),
        serde_json::Value::Array(a) => Value::Array(a.iter().filter_map(to_of_value).collect()),
        serde_json::Value::Object(o) => Value::Struct(to_struct(o)),
    })
}

fn to_struct(o: &serde_json::Map<String, serde_json::Value>) -> StructValue {
    StructValue { fields: o.iter().filter_map(|(k, v)| Some((k.clone(), to_of_value(v)?))).collect() }
}

#[open_feature::async_trait]
impl FeatureProvider for GantryProvider {
    fn status(&self) -> ProviderStatus {
        if self.client.is_ready() {
            ProviderStatus::Ready
        } else {
            ProviderStatus::NotReady
        }
    }

    fn metadata(&self) -> &ProviderMetadata {
        &self.metadata
    }

    async fn resolve_bool_value(&self, flag_key: &str, ctx: &EvaluationContext) -> EvaluationResult<ResolutionDetails<bool>> {
        self.resolve(flag_key, ctx, "a boolean", serde_json::Value::as_bool)
    }

    async fn resolve_int_value(&self, flag_key: &str, ctx: &EvaluationContext) -> EvaluationResult<ResolutionDetails<i64>> {
        self.resolve(flag_key, ctx, "an integer", |v| {
            v.as_i64().or_else(|| v.as_f64().filter(|f| f.fract() == 0.0 && f.abs() < 9.0e15).map(|f| f as i64))
        })
    }

    async fn resolve_float_value(&self, flag_key: &str, ctx: &EvaluationContext) -> EvaluationResult<ResolutionDetails<f64>> {
        self.resolve(flag_key, ctx, "a number", serde_json::Value::as_f64)
    }

    async fn resolve_string_value(&self, flag_key: &str, ctx: &EvaluationContext) -> EvaluationResult<ResolutionDetails<String>> {
        self.resolve(flag_key, ctx, "a string", |v| v.as_str().map(str::to_owned))
    }

    async fn resolve_struct_value(&self, flag_key: &str, ctx: &EvaluationContext) -> EvaluationResult<ResolutionDetails<StructValue>> {
        self.resolve(flag_key, ctx, "an object", |v| v.as_object().map(to_struct))
    }
}
