//! What the store tells `tracing`: every operation, the subject API included, runs in an `INFO`
//! span of its own, and nothing recorded while it runs (span fields, the store's events, sqlx's
//! statement log, turned on here) holds a session id or a state value.

mod common;

use common::{Backend, fresh_db};
use pavex_session::{
    SessionId,
    store::{SessionRecordRef, SessionStorageBackend},
};
use pavex_session_sea_orm::{AtCap, SeaOrmSessionStore, SessionHandle};
use sea_orm::{ConnectOptions, Database};
use std::{
    borrow::Cow,
    collections::HashMap,
    fmt::{Debug, Write as _},
    num::NonZeroUsize,
    sync::{
        Arc, Mutex, OnceLock,
        atomic::{AtomicU64, Ordering as AtomicOrdering},
    },
    time::Duration,
};
use tracing::{
    Event, Level, Metadata, Subscriber,
    field::{Field, Visit},
    instrument::WithSubscriber as _,
    span::{Attributes, Id, Record},
};
use tracing_subscriber::{
    Registry,
    layer::{Context, Layer, SubscriberExt as _},
};

/// Every span opened and every event emitted, as text: `span <name> <level> <fields>` or
/// `event <target> <fields>`.
#[derive(Clone, Default)]
struct Recorded(Arc<Mutex<Vec<String>>>);

impl Recorded {
    fn push(&self, line: String) {
        self.0.lock().expect("not poisoned").push(line);
    }

    fn lines(&self) -> Vec<String> {
        self.0.lock().expect("not poisoned").clone()
    }
}

struct Fields<'a>(&'a mut String);

impl Visit for Fields<'_> {
    fn record_debug(&mut self, field: &Field, value: &dyn Debug) {
        let _ = write!(self.0, " {}={value:?}", field.name());
    }
}

impl<S: Subscriber> Layer<S> for Recorded {
    fn on_new_span(&self, attrs: &Attributes<'_>, _id: &Id, _ctx: Context<'_, S>) {
        let metadata = attrs.metadata();
        let mut line = format!("span {} {}", metadata.name(), metadata.level());
        attrs.record(&mut Fields(&mut line));
        self.push(line);
    }

    fn on_record(&self, _id: &Id, values: &Record<'_>, _ctx: Context<'_, S>) {
        let mut line = "record".to_owned();
        values.record(&mut Fields(&mut line));
        self.push(line);
    }

    fn on_event(&self, event: &Event<'_>, _ctx: Context<'_, S>) {
        let mut line = format!("event {}", event.metadata().target());
        event.record(&mut Fields(&mut line));
        self.push(line);
    }
}

/// What reaches the process-wide subscriber: sqlx's SQLite driver runs statements, and logs them,
/// on a worker thread of its own, outside the test's scoped subscriber. Shared by the tests of
/// this file, which run at once: each looks for its backend's statements in it, and for secrets.
fn global() -> &'static Recorded {
    static GLOBAL: OnceLock<Recorded> = OnceLock::new();
    GLOBAL.get_or_init(|| {
        let recorded = Recorded::default();
        tracing::subscriber::set_global_default(Everywhere {
            recorded: recorded.clone(),
            next_id: AtomicU64::new(1),
        })
        .expect("the only global subscriber of this test binary");
        recorded
    })
}

/// The process-wide subscriber: records like [`Recorded`], but is not a `Registry`. A `Registry`
/// as the global default panics when the SQLite worker thread drops a span of the test's own
/// (scoped) `Registry`, as it does for the spans of sea-orm's transactions: it closes the
/// span's parent through the thread's default subscriber, which does not know it.
struct Everywhere {
    recorded: Recorded,
    next_id: AtomicU64,
}

impl Subscriber for Everywhere {
    fn enabled(&self, _: &Metadata<'_>) -> bool {
        true
    }

    fn new_span(&self, attrs: &Attributes<'_>) -> Id {
        let metadata = attrs.metadata();
        let mut line = format!("span {} {}", metadata.name(), metadata.level());
        attrs.record(&mut Fields(&mut line));
        self.recorded.push(line);
        Id::from_u64(self.next_id.fetch_add(1, AtomicOrdering::Relaxed))
    }

    fn record(&self, _: &Id, values: &Record<'_>) {
        let mut line = "record".to_owned();
        values.record(&mut Fields(&mut line));
        self.recorded.push(line);
    }

    fn record_follows_from(&self, _: &Id, _: &Id) {}

    fn event(&self, event: &Event<'_>) {
        let mut line = format!("event {}", event.metadata().target());
        event.record(&mut Fields(&mut line));
        self.recorded.push(line);
    }

    fn enter(&self, _: &Id) {}

    fn exit(&self, _: &Id) {}
}

const STATE_SECRET: &str = "state-value-5c1e";

fn record<'a>(state: &'a HashMap<Cow<'static, str>, serde_json::Value>) -> SessionRecordRef<'a> {
    SessionRecordRef {
        state: Cow::Borrowed(state),
        ttl: Duration::from_secs(3600),
    }
}

async fn every_operation_runs_in_its_span_and_records_no_secret(backend: Backend) {
    let test_db = fresh_db(backend).await;
    // sqlx's statement log on, at INFO: it must not carry ids or states either.
    let mut options = ConnectOptions::new(&test_db.url);
    options
        .max_connections(2)
        .sqlx_logging(true)
        .sqlx_logging_level(tracing::log::LevelFilter::Info);
    let db = Database::connect(options).await.expect("connect");
    // Every option that changes a statement: the cap's transaction, the lifetime's audited
    // expiry (states stay plaintext here, so that a leak of one would be seen).
    let store = SeaOrmSessionStore::new(db)
        .with_subject_key("user_id")
        .with_sign_in_key("sign_in")
        .with_max_sessions_per_subject(std::num::NonZeroU32::new(5).unwrap(), AtCap::EndOldest)
        .with_absolute_lifetime(Duration::from_secs(30 * 24 * 3600));
    store.migrate().await.expect("migrate");

    let everywhere = global();
    let recorded = Recorded::default();
    let subscriber = Registry::default().with(recorded.clone());
    let [first, second, renamed, fresh] = [(); 4].map(|()| SessionId::random());
    let state = HashMap::from([
        (Cow::Borrowed("user_id"), serde_json::json!("alice")),
        (Cow::Borrowed("sign_in"), serde_json::json!("s-1")),
        (Cow::Borrowed("secret"), serde_json::json!(STATE_SECRET)),
    ]);
    let other_sign_in = HashMap::from([
        (Cow::Borrowed("user_id"), serde_json::json!("alice")),
        (Cow::Borrowed("sign_in"), serde_json::json!("s-2")),
        (Cow::Borrowed("secret"), serde_json::json!(STATE_SECRET)),
    ]);
    async {
        store.create(&first, record(&state)).await.expect("create");
        store
            .create(&second, record(&other_sign_in))
            .await
            .expect("create");
        assert!(store.load(&first).await.expect("load").is_some());
        store.update(&first, record(&state)).await.expect("update");
        store
            .update_ttl(&first, Duration::from_secs(7200))
            .await
            .expect("update_ttl");
        store.change_id(&first, &renamed).await.expect("change_id");
        assert_eq!(store.sessions_of("alice").await.expect("list").len(), 2);
        assert_eq!(store.count_sessions_of("alice").await.expect("count"), 2);
        assert!(
            store
                .end_session_of("alice", &SessionHandle::of(&second))
                .await
                .expect("end one")
        );
        assert_eq!(
            store
                .end_sessions_of_created_before(
                    "alice",
                    chrono::Utc::now() - chrono::Duration::days(1)
                )
                .await
                .expect("end before"),
            0
        );
        assert_eq!(
            store.end_sessions_of("alice", None).await.expect("end all"),
            1
        );
        store
            .create(&first, record(&state))
            .await
            .expect_err("a revoked sign-in is refused");
        store
            .create(&fresh, record(&HashMap::new()))
            .await
            .expect("create");
        store.delete(&fresh).await.expect("delete");
        store
            .delete_expired(Some(NonZeroUsize::new(10).expect("not zero")))
            .await
            .expect("delete_expired");
        let batch = NonZeroUsize::new(10).expect("not zero");
        let yesterday = chrono::Utc::now() - chrono::Duration::days(1);
        store
            .end_sessions_created_before(yesterday, batch, |_| {})
            .await
            .expect("end in bulk before");
        store
            .end_all_sessions(batch, |_| {})
            .await
            .expect("end in bulk");
    }
    .with_subscriber(subscriber)
    .await;

    let lines = recorded.lines();
    for name in [
        "Create server-side session record",
        "Load server-side session record",
        "Update server-side session record",
        "Update TTL for server-side session record",
        "Change id for server-side session record",
        "Delete server-side session record",
        "Delete expired records",
        "List the sessions of a subject",
        "List a page of the sessions of a subject",
        "Count the sessions of a subject",
        "End a session of a subject",
        "End the sessions of a subject",
        "End the sessions of a subject created before an instant",
        "End every session",
        "End the sessions created before an instant",
    ] {
        let expected = format!("span {name} {}", Level::INFO);
        assert!(
            lines.iter().any(|line| line.starts_with(&expected)),
            "no INFO span {name:?} among {lines:#?}"
        );
    }
    // The statement log: each backend's clock expression marks its statements.
    let clock = match backend {
        Backend::Postgres => "date_part('epoch', CURRENT_TIMESTAMP)",
        Backend::MySql => "@@timestamp",
        _ => "julianday()",
    };
    let lines: Vec<String> = lines.into_iter().chain(everywhere.lines()).collect();
    assert!(
        lines
            .iter()
            .any(|line| line.starts_with("event sqlx::query") && line.contains(clock)),
        "sqlx's statement log was on, yet none of the store's statements was recorded"
    );
    let mut secrets = vec![STATE_SECRET.to_owned()];
    for id in [&first, &second, &renamed, &fresh] {
        let uuid = id.inner();
        secrets.push(uuid.to_string());
        secrets.push(uuid.simple().to_string());
    }
    for line in &lines {
        for secret in &secrets {
            assert!(
                !line.to_lowercase().contains(&secret.to_lowercase()),
                "{secret:?} was recorded: {line}"
            );
        }
    }
}

// `shared`: the store opens connections of its own, which an in-memory SQLite database does not
// share.
on_every_backend!(shared: every_operation_runs_in_its_span_and_records_no_secret);
