//! End-to-end tests of the `gantry` binary.
