//! The evaluation context: who is asking.

use std::fmt;

/// The standard context fields (Unleash's top-level fields).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum StandardField {
    /// `userId` (OFREP `targetingKey`).
    UserId,
    /// `sessionId`.
    SessionId,
    /// `remoteAddress`.
    RemoteAddress,
    /// `environment`.
    Environment,
    /// `appName`.
    AppName,
    /// `currentTime` (RFC 3339).
    CurrentTime,
}

impl StandardField {
    /// Maps a context name to a standard field, if it is one.
    pub fn from_name(name: &str) -> Option<Self> {
        Some(match name {
            "userId" => StandardField::UserId,
            "sessionId" => StandardField::SessionId,
            "remoteAddress" => StandardField::RemoteAddress,
            "environment" => StandardField::Environment,
            "appName" => StandardField::AppName,
            "currentTime" => StandardField::CurrentTime,
            _ => return None,
        })
    }

    /// The Unleash name.
    pub fn name(self) -> &'static str {
        match self {
            StandardField::UserId => "userId",
            StandardField::SessionId => "sessionId",
            StandardField::RemoteAddress => "remoteAddress",
            StandardField::Environment => "environment",
            StandardField::AppName => "appName",
            StandardField::CurrentTime => "currentTime",
        }
    }
}

/// Who a flag is evaluated for. Build it once per request; evaluation only
/// borrows it.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Context {
    /// `userId`.
    pub user_id: Option<String>,
    /// `sessionId`.
    pub session_id: Option<String>,
    /// `remoteAddress`.
    pub remote_address: Option<String>,
    /// `environment`.
    pub environment: Option<String>,
    /// `appName`.
    pub app_name: Option<String>,
    /// `currentTime` (RFC 3339); absent means the evaluation's `now`.
    pub current_time: Option<String>,
    properties: Vec<(String, String)>,
}

// Context values are user data: keep them out of logs by default.
impl fmt::Debug for Context {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Context")
            .field("user_id", &self.user_id.as_ref().map(|_| "<set>"))
            .field("properties", &self.properties.len())
            .finish_non_exhaustive()
    }
}

impl Context {
    /// An empty context.
    pub fn new() -> Self {
        Self::default()
    }

    /// Sets `userId`.
    pub fn with_user_id(mut self, id: impl Into<String>) -> Self {
        self.user_id = Some(id.into());
        self
    }

    /// Sets a property (replacing an existing one of that name).
    pub fn with_property(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.set(&name.into(), value.into());
        self
    }

    /// Sets a field by its context name: standard names set the standard
    /// field, anything else a property.
    pub fn set(&mut self, name: &str, value: String) {
        match StandardField::from_name(name) {
            Some(f) => *self.standard_mut(f) = Some(value),
            None => match self.properties.iter_mut().find(|(k, _)| k == name) {
                Some(slot) => slot.1 = value,
                None => self.properties.push((name.to_owned(), value)),
            },
        }
    }

    /// Removes a custom property.
    pub fn remove_property(&mut self, name: &str) {
        self.properties.retain(|(k, _)| k != name);
    }

    /// A standard field.
    #[inline]
    pub fn standard(&self, f: StandardField) -> Option<&str> {
        match f {
            StandardField::UserId => self.user_id.as_deref(),
            StandardField::SessionId => self.session_id.as_deref(),
            StandardField::RemoteAddress => self.remote_address.as_deref(),
            StandardField::Environment => self.environment.as_deref(),
            StandardField::AppName => self.app_name.as_deref(),
            StandardField::CurrentTime => self.current_time.as_deref(),
        }
    }

    fn standard_mut(&mut self, f: StandardField) -> &mut Option<String> {
        match f {
            StandardField::UserId => &mut self.user_id,
            StandardField::SessionId => &mut self.session_id,
            StandardField::RemoteAddress => &mut self.remote_address,
            StandardField::Environment => &mut self.environment,
            StandardField::AppName => &mut self.app_name,
            StandardField::CurrentTime => &mut self.current_time,
        }
    }

    /// A custom property.
    #[inline]
    pub fn property(&self, name: &str) -> Option<&str> {
        self.properties.iter().find(|(k, _)| crate::strtab::str_eq(k, name)).map(|(_, v)| v.as_str())
    }

    /// Every custom property.
    pub fn properties(&self) -> impl Iterator<Item = (&str, &str)> {
        self.properties.iter().map(|(k, v)| (k.as_str(), v.as_str()))
    }

    /// Reads a field by context name (standard field or property).
    pub fn get(&self, name: &str) -> Option<&str> {
        match StandardField::from_name(name) {
            Some(f) => self.standard(f),
            None => self.property(name),
        }
    }

    /// Builds a context from a JSON object the way Unleash and OFREP do:
    /// standard names go to their fields (`targetingKey` is the user id),
    /// a nested `properties` object is merged, strings are kept, numbers and
    /// booleans are stringified, `null`, objects and arrays are dropped.
    pub fn from_json(value: &serde_json::Value) -> Self {
        let mut ctx = Context::new();
        let Some(obj) = value.as_object() else { return ctx };
        for (k, v) in obj {
            if k == "properties" {
                if let Some(props) = v.as_object() {
                    for (pk, pv) in props {
                        if let Some(s) = scalar_to_string(pv) {
                            ctx.set(pk, s);
                        }
                    }
                }
                continue;
            }
            let name = if k == "targetingKey" { "userId" } else { k.as_str() };
            if let Some(s) = scalar_to_string(v) {
                // An explicit userId wins over targetingKey.
                if k == "targetingKey" && obj.contains_key("userId") {
                    continue;
                }
                ctx.set(name, s);
            }
        }
        ctx
    }
}

fn scalar_to_string(v: &serde_json::Value) -> Option<String> {
    match v {
        serde_json::Value::String(s) => Some(s.clone()),
        serde_json::Value::Number(n) => Some(n.to_string()),
        serde_json::Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

/// What evaluation needs from the outside world: the time and a source of
/// randomness (used only by random stickiness).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EvalInputs {
    /// Now, in milliseconds since the Unix epoch (for DATE_* constraints
    /// when the context has no `currentTime`).
    pub now_millis: i64,
    /// Seed for random stickiness; pass a fresh random number per call.
    pub random_seed: u64,
}

impl EvalInputs {
    /// Inputs for a fixed time and seed.
    pub fn new(now_millis: i64, random_seed: u64) -> Self {
        Self { now_millis, random_seed }
    }

    /// A random number in `1..=n` derived from the seed and a salt.
    #[inline]
    pub(crate) fn random_in(&self, salt: u64, n: u32) -> u32 {
        // splitmix64 finaliser
        let mut z = self.random_seed.wrapping_add(salt.wrapping_mul(0x9e37_79b9_7f4a_7c15)).wrapping_add(0x9e37_79b9_7f4a_7c15);
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^= z >> 31;
        ((z % u64::from(n.max(1))) as u32) + 1
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_context_maps_standard_fields_and_properties() {
        let v = serde_json::json!({
            "targetingKey": "u1", "sessionId": "s", "plan": "gold", "seats": 12,
            "beta": true, "nested": {"a": 1}, "gone": null,
            "properties": {"country": "NO"}
        });
        let c = Context::from_json(&v);
        assert_eq!(c.user_id.as_deref(), Some("u1"));
        assert_eq!(c.session_id.as_deref(), Some("s"));
        assert_eq!(c.property("plan"), Some("gold"));
        assert_eq!(c.property("seats"), Some("12"));
        assert_eq!(c.property("beta"), Some("true"));
        assert_eq!(c.property("country"), Some("NO"));
        assert_eq!(c.property("nested"), None);
        assert_eq!(c.property("gone"), None);
    }

    #[test]
    fn user_id_beats_targeting_key() {
        let c = Context::from_json(&serde_json::json!({"targetingKey": "a", "userId": "b"}));
        assert_eq!(c.user_id.as_deref(), Some("b"));
    }

    #[test]
    fn random_in_stays_in_range() {
        let i = EvalInputs::new(0, 42);
        for salt in 0..1000 {
            let r = i.random_in(salt, 7);
            assert!((1..=7).contains(&r));
        }
    }
}
