//! The example app: a sign-in flow whose sessions live in SQL, through `pavex_session` and
//! `pavex_session_sea_orm`.
//!
//! Every component the blueprint uses (routes, constructors, configuration types, error
//! handlers) must be public: pavexc generates `server_sdk`, which calls them from outside this
//! crate.
mod blueprint;
pub mod configuration;
pub mod database;
pub mod errors;
pub mod request_log;
pub mod routes;

pub use blueprint::blueprint;
