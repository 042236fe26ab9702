//! API tests over real HTTP against `TestApp` (server on port 0, SQLite file).

mod admin_api;
mod alerts;
mod auth_matrix;
mod bad_input;
mod conformance;
mod evaluation_api;
mod experiments;
mod openapi;
mod openfeature;
mod rollouts;
mod sdk;
mod smoke;
mod streams;
mod support;
