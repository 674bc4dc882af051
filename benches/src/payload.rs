//! The session states that the benchmark writes.

use pavex_session::store::SessionRecordRef;
use serde_json::{Value, json};
use std::{borrow::Cow, collections::HashMap, time::Duration};

/// The session states written, shared by all tasks.
#[derive(Debug)]
pub struct Payload {
    /// What `create` and the prefill write.
    pub initial: HashMap<Cow<'static, str>, Value>,
    /// What `update` writes.
    pub updated: HashMap<Cow<'static, str>, Value>,
    pub ttl: Duration,
}

impl Payload {
    /// A small, typical session state (about 150 bytes of JSON) and its updated version.
    pub fn new(ttl: Duration) -> Self {
        let initial = state(json!({
            "user.id": "7f9c2ba4-e88f-4a1b-9d3c-0f1e2d3c4b5a",
            "csrf": "b3f1c9e0a7d54e2f8c6b1a9d0e7f3c2b",
            "roles": ["user"],
            "visits": 1,
        }));
        let mut updated = initial.clone();
        updated.insert("visits".into(), json!(2));
        updated.insert("flash".into(), json!("Saved"));
        Self {
            initial,
            updated,
            ttl,
        }
    }

    /// The initial state as one JSON object, for the prefill.
    pub fn initial_json(&self) -> Value {
        Value::Object(
            self.initial
                .iter()
                .map(|(k, v)| (k.to_string(), v.clone()))
                .collect(),
        )
    }

    pub(crate) fn record(&self, updated: bool) -> SessionRecordRef<'_> {
        SessionRecordRef {
            state: Cow::Borrowed(if updated {
                &self.updated
            } else {
                &self.initial
            }),
            ttl: self.ttl,
        }
    }
}

fn state(value: Value) -> HashMap<Cow<'static, str>, Value> {
    match value {
        Value::Object(map) => map.into_iter().map(|(k, v)| (k.into(), v)).collect(),
        _ => HashMap::new(),
    }
}
