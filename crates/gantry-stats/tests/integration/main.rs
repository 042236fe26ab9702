//! Integration tests of gantry-stats: reference fixtures (scipy, statsmodels, gbstats 0.8.0),
//! seeded simulations of error rates, property tests and the end-to-end `analyze`.

mod analyze;
mod fixtures;
mod properties;
mod simulation;
