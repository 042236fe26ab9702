//! End-to-end tests of the `gantry` binary: real processes, real SQLite files
//! (and a real PostgreSQL server for the replica tests).

mod cli;
mod compat;
mod crash;
mod dashboard_e2e;
mod postgres;
mod remote;
mod rollout;
mod support;
