//! End-to-end tests of the `gantry` binary: real processes, real SQLite files.

mod cli;
mod crash;
mod support;
