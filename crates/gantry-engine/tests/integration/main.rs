//! Integration tests of the engine: the Unleash client specification, property
//! tests of bucketing, edge cases, and the no-allocation guarantee.

mod alloc;
mod client_spec;
mod edge_cases;
mod props;
mod support;
