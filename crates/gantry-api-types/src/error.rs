//! The error envelope and the table of stable error codes.

use serde::{Deserialize, Serialize};

/// Every error body Gantry's own APIs return.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApiErrorBody {
    /// Stable snake_case code (see [`ErrorCode`]).
    pub code: String,
    /// Human-readable explanation.
    pub message: String,
    /// Per-field problems, for validation errors.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub fields: Vec<FieldError>,
}

/// One invalid field.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FieldError {
    /// JSON path of the field (`rules[0].constraints[1].value`).
    pub field: String,
    /// What is wrong with it.
    pub message: String,
}

macro_rules! codes {
    ($( $variant:ident = $code:literal, $status:literal, $doc:literal; )*) => {
        /// Stable error codes and their HTTP status: the single table.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum ErrorCode { $( #[doc = $doc] $variant, )* }

        impl ErrorCode {
            /// Every code, for documentation and tests.
            pub const ALL: &'static [ErrorCode] = &[$(ErrorCode::$variant,)*];

            /// The wire spelling.
            pub fn as_str(self) -> &'static str {
                match self { $(ErrorCode::$variant => $code,)* }
            }

            /// The HTTP status.
            pub fn status(self) -> u16 {
                match self { $(ErrorCode::$variant => $status,)* }
            }

            /// Parses the wire spelling.
            pub fn parse(s: &str) -> Option<Self> {
                match s { $($code => Some(ErrorCode::$variant),)* _ => None }
            }
        }
    };
}

codes! {
    Unauthorized = "unauthorized", 401, "No token, or an unknown, revoked or expired one.";
    Forbidden = "forbidden", 403, "The token is valid but may not do this.";
    NotFound = "not_found", 404, "The route does not exist.";
    FlagNotFound = "flag_not_found", 404, "No flag with that key.";
    SegmentNotFound = "segment_not_found", 404, "No segment with that id.";
    EnvironmentNotFound = "environment_not_found", 404, "No environment with that name.";
    TokenNotFound = "token_not_found", 404, "No token with that id.";
    ExperimentNotFound = "experiment_not_found", 404, "No experiment with that key.";
    ReleaseNotFound = "release_not_found", 404, "No release is recorded for that app in that environment.";
    RolloutNotFound = "rollout_not_found", 404, "No rollout for that flag in that environment.";
    ScheduleNotFound = "schedule_not_found", 404, "No schedule with that key.";
    AlertRuleNotFound = "alert_rule_not_found", 404, "No alert rule with that name.";
    NotifierNotFound = "notifier_not_found", 404, "No notifier with that key.";
    TriggerNotFound = "trigger_not_found", 404, "No trigger with that id (or secret).";
    InvalidState = "invalid_state", 409, "The object is not in a state that allows this (e.g. starting a running experiment).";
    MethodNotAllowed = "method_not_allowed", 405, "The route exists but not with this method.";
    AlreadyExists = "already_exists", 409, "An object with that key exists already.";
    InUse = "in_use", 409, "The object is referenced by others and cannot be removed.";
    PreconditionFailed = "precondition_failed", 412, "If-Match does not match the current version.";
    PayloadTooLarge = "payload_too_large", 413, "The body is larger than the limit.";
    UnsupportedMediaType = "unsupported_media_type", 415, "The body must be application/json.";
    InvalidJson = "invalid_json", 400, "The body is not valid JSON.";
    InvalidQuery = "invalid_query", 400, "A query parameter is invalid.";
    InvalidHeader = "invalid_header", 400, "A header is invalid.";
    ValidationFailed = "validation_failed", 422, "The body is JSON but breaks a rule; see `fields`.";
    InvalidKey = "invalid_key", 422, "A key or name has characters outside the allowed set.";
    RateLimited = "rate_limited", 429, "Too many requests; see Retry-After.";
    Internal = "internal", 500, "Something failed on the server; it is logged.";
    Unavailable = "unavailable", 503, "The server is starting or shutting down.";
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_unique_and_parse_back() {
        let mut seen = std::collections::HashSet::new();
        for c in ErrorCode::ALL {
            assert!(seen.insert(c.as_str()), "duplicate {}", c.as_str());
            assert_eq!(ErrorCode::parse(c.as_str()), Some(*c));
            assert!((400..600).contains(&c.status()));
        }
    }
}
