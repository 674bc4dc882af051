//! The server's configuration profile; the binary is `src/bin/server.rs`.
pub mod configuration;
