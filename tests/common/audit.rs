//! The store's audit events ([`pavex_session_sea_orm::AUDIT_TARGET`]), captured while a future
//! runs.

use pavex_session_sea_orm::AUDIT_TARGET;
use std::{
    collections::BTreeMap,
    fmt::{Debug, Write as _},
    sync::{Arc, Mutex},
};
use tracing::{
    Event, Metadata, Subscriber,
    field::{Field, Visit},
    span,
    subscriber::Interest,
};
use tracing_subscriber::{
    Registry,
    layer::{Context, Layer, SubscriberExt as _},
};

/// The audit events emitted while a future runs (see [`Audit::subscriber`]), each as its fields.
#[derive(Clone)]
pub struct Audit(Arc<Mutex<Vec<BTreeMap<String, String>>>>);

impl Default for Audit {
    fn default() -> Self {
        always_interested();
        Self(Arc::default())
    }
}

impl Audit {
    /// Each event as `reason subject handle`.
    pub fn lines(&self) -> Vec<String> {
        self.events()
            .iter()
            .map(|fields| {
                let field = |name: &str| fields.get(name).cloned().unwrap_or_default();
                format!(
                    "{} {} {}",
                    field("reason"),
                    field("subject"),
                    field("handle")
                )
            })
            .collect()
    }

    /// Each event's fields.
    pub fn events(&self) -> Vec<BTreeMap<String, String>> {
        self.0.lock().expect("not poisoned").clone()
    }

    /// A subscriber that records into this, for `WithSubscriber::with_subscriber`.
    pub fn subscriber(&self) -> impl Subscriber + Send + Sync + 'static {
        always_interested();
        Registry::default().with(self.clone())
    }
}

/// Makes sure a process-wide subscriber exists. `tracing` caches, per call site, whether any
/// subscriber wants its events; with only scoped subscribers (each test's, on its own threads)
/// a call site first reached on a thread where none is in scope can be cached as unwanted, and
/// a test's subscriber then never sees its events. Call it before the first session is ended;
/// another global subscriber (a test binary's own) serves as well, so the error is ignored.
///
/// The global one is [`Interested`], not a `Registry`: a `Registry` panics when asked about a
/// span another subscriber made, which sqlx's SQLite worker thread (whose default the global
/// subscriber is) does with the test's spans, and the worker's death hangs the test.
pub fn always_interested() {
    static GLOBAL: std::sync::Once = std::sync::Once::new();
    GLOBAL.call_once(|| {
        tracing::subscriber::set_global_default(Interested).ok();
    });
}

/// A subscriber that records nothing and keeps every call site's interest open ("sometimes"),
/// so that each event asks the subscriber in scope.
struct Interested;

impl Subscriber for Interested {
    fn register_callsite(&self, _: &'static Metadata<'static>) -> Interest {
        Interest::sometimes()
    }

    fn enabled(&self, _: &Metadata<'_>) -> bool {
        false
    }

    fn new_span(&self, _: &span::Attributes<'_>) -> span::Id {
        span::Id::from_u64(1)
    }

    fn record(&self, _: &span::Id, _: &span::Record<'_>) {}

    fn record_follows_from(&self, _: &span::Id, _: &span::Id) {}

    fn event(&self, _: &Event<'_>) {}

    fn enter(&self, _: &span::Id) {}

    fn exit(&self, _: &span::Id) {}
}

struct Fields<'a>(&'a mut BTreeMap<String, String>);

impl Visit for Fields<'_> {
    fn record_debug(&mut self, field: &Field, value: &dyn Debug) {
        let mut text = String::new();
        let _ = write!(text, "{value:?}");
        self.0
            .insert(field.name().to_owned(), text.trim_matches('"').to_owned());
    }

    fn record_str(&mut self, field: &Field, value: &str) {
        self.0.insert(field.name().to_owned(), value.to_owned());
    }
}

impl<S: Subscriber> Layer<S> for Audit {
    fn on_event(&self, event: &Event<'_>, _ctx: Context<'_, S>) {
        if event.metadata().target() != AUDIT_TARGET {
            return;
        }
        let mut fields = BTreeMap::new();
        event.record(&mut Fields(&mut fields));
        self.0.lock().expect("not poisoned").push(fields);
    }
}

/// Every event of the store's crate (any target of `pavex_session_sea_orm`, any level) emitted
/// while a future runs, each as one line: what a failing race test prints of each racer.
#[derive(Clone, Default)]
pub struct StoreEvents(Arc<Mutex<Vec<String>>>);

impl StoreEvents {
    /// Each event as `LEVEL target: field=value ...`.
    pub fn lines(&self) -> Vec<String> {
        self.0.lock().expect("not poisoned").clone()
    }

    /// A subscriber that records into this, for `WithSubscriber::with_subscriber`.
    pub fn subscriber(&self) -> impl Subscriber + Send + Sync + 'static {
        always_interested();
        Registry::default().with(self.clone())
    }
}

impl<S: Subscriber> Layer<S> for StoreEvents {
    fn on_event(&self, event: &Event<'_>, _ctx: Context<'_, S>) {
        let metadata = event.metadata();
        if !metadata.target().starts_with("pavex_session_sea_orm") {
            return;
        }
        let mut fields = BTreeMap::new();
        event.record(&mut Fields(&mut fields));
        let fields: Vec<String> = fields.iter().map(|(k, v)| format!("{k}={v}")).collect();
        let line = format!(
            "{} {}: {}",
            metadata.level(),
            metadata.target(),
            fields.join(" ")
        );
        self.0.lock().expect("not poisoned").push(line);
    }
}
