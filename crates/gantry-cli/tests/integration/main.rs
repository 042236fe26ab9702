//! End-to-end tests of the `gantry` binary: real processes, real SQLite files.

mod cli;
mod compat;
mod crash;
mod dashboard_e2e;
mod remote;
mod rollout;
mod support;
