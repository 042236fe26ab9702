//! Integration tests of the engine: the Unleash client specification, property
//! tests of bucketing, and edge cases.

mod client_spec;
mod edge_cases;
mod props;
mod support;
