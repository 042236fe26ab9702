//! API tests over real HTTP against `TestApp` (server on port 0, SQLite file).

mod conformance;
mod openapi;
mod smoke;
