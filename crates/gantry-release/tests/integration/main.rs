//! Integration tests of `gantry-release`: long scenarios with an injected clock, restarts from
//! JSON, property tests and decision quality by simulation.

#[path = "../support/sim.rs"]
mod sim;

mod alerts;
mod properties;
mod rollout;
mod simulation;
