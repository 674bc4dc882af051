//! Serializes a [`Duration`](std::time::Duration) as fractional seconds, for the JSON output
//! (`#[serde(with = "crate::secs")]`).

use serde::Serializer;
use std::time::Duration;

/// Serializes `d` as seconds (`f64`).
pub fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_f64(d.as_secs_f64())
}
