//! API tests over real HTTP against `TestApp` (server on port 0, SQLite file).

mod admin_api;
mod alerts;
mod auth_matrix;
mod bad_input;
mod conformance;
mod dashboard;
mod evaluation_api;
mod experiments;
mod maintenance;
mod openapi;
mod openfeature;
mod releases;
mod rollouts;
mod sdk;
mod smoke;
mod streams;
mod support;
