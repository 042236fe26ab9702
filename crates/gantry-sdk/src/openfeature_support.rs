//! Mapping of SDK results to OpenFeature concepts (reasons, error codes), so
//! an OpenFeature provider can be built on [`crate::GantryClient`].

use crate::{Details, Reason};

/// The OpenFeature reason string of a result.
pub fn reason_name(d: &Details) -> &'static str {
    match d.reason {
        Reason::Override => "STATIC",
        Reason::Engine(r) => r.as_str(),
    }
}

/// The OpenFeature error code string of a result, if any.
pub fn error_code_name(d: &Details) -> Option<&'static str> {
    d.error.map(|e| e.as_str())
}
