//! Sessions as a Pavex app sees them: `pavex_session`'s own per-request flow (cookie in,
//! `Session`, `finalize_session` with a cookie `Processor`, cookie out) over our store, on every
//! backend. Each "request" parses the `Cookie` header that the previous response's `Set-Cookie`
//! left in the browser, exactly as a Pavex app does.

mod common;

use common::{Backend, TestDb, store_on};
use futures::future::join_all;
use pavex::{
    Response,
    cookie::{
        Key, Processor, ProcessorConfig, ResponseCookies,
        config::{CryptoAlgorithm, CryptoRule},
        extract_request_cookies,
    },
    http::{HeaderMap, HeaderValue, Method, StatusCode, Version, header::COOKIE},
    request::RequestHead,
};
use pavex_session::{
    IncomingSession, Session, SessionConfig, SessionStore,
    config::{MissingServerState, TtlExtensionTrigger},
    errors::{FinalizeError, SyncError},
    finalize_session,
    store::errors::UpdateError,
};
use pavex_session_sea_orm::entity::sessions;
use sea_orm::{ColumnTrait, EntityTrait, PaginatorTrait, QueryFilter, sea_query::Expr};
use serde_json::json;
use std::{num::NonZeroUsize, time::Duration};

const TTL: Duration = Duration::from_secs(3600);

/// The server side: the store as a Pavex app builds it, its session config and cookie processor.
struct App {
    store: SessionStore,
    /// The same store, for what `SessionStore` does not offer (the device list).
    sessions: pavex_session_sea_orm::SeaOrmSessionStore,
    config: SessionConfig,
    processor: Processor,
}

/// The client side: the session cookie the browser holds, as `name=value`.
#[derive(Default, Clone)]
struct Browser {
    cookie: Option<String>,
}

impl App {
    async fn on(backend: Backend, config: SessionConfig) -> (TestDb, App) {
        let (db, backend) = store_on(backend).await;
        let backend = backend
            .with_subject_key("user_id")
            .with_sign_in_key("sign_in_id");
        let mut processor = ProcessorConfig::default();
        processor.crypto_rules = vec![CryptoRule {
            cookie_names: vec![config.cookie.name.clone()],
            algorithm: CryptoAlgorithm::Encryption,
            key: Key::generate(),
            fallbacks: vec![],
        }];
        // Exactly what `bp.import(from![pavex_session_sea_orm])` provides.
        let store = SessionStore::from(backend.clone());
        let app = App {
            store,
            sessions: backend,
            config,
            processor: processor.into(),
        };
        (db, app)
    }

    /// The session of a request from `browser`, as Pavex's extractors build it.
    fn session(&self, browser: &Browser) -> Session<'_> {
        let mut headers = HeaderMap::new();
        if let Some(cookie) = &browser.cookie {
            headers.insert(COOKIE, HeaderValue::from_str(cookie).unwrap());
        }
        let head = RequestHead {
            method: Method::GET,
            target: "/".parse().unwrap(),
            version: Version::HTTP_11,
            headers,
        };
        let cookies = extract_request_cookies(&head, &self.processor).unwrap();
        let incoming = IncomingSession::extract(&cookies, &self.config.cookie);
        Session::new(&self.store, &self.config, incoming)
    }

    /// Finalizes the session as the post-processing middleware does and hands the
    /// `Set-Cookie` header back to the browser. Returns whether a cookie was set.
    async fn respond(
        &self,
        browser: &mut Browser,
        session: Session<'_>,
    ) -> Result<bool, FinalizeError> {
        let mut cookies = ResponseCookies::new();
        finalize_session(
            Response::new(StatusCode::OK),
            &mut cookies,
            &self.processor,
            session,
        )
        .await?;
        let set_cookie: Vec<String> = cookies.header_values(&self.processor).collect();
        let Some(header) = set_cookie.first() else {
            return Ok(false);
        };
        let pair = header.split(';').next().unwrap().trim().to_owned();
        // A removal cookie expires at the Unix epoch.
        let removal = header.contains("Expires=Thu, 01 Jan 1970");
        browser.cookie = if removal { None } else { Some(pair) };
        Ok(true)
    }
}

/// The one session record in the table.
async fn only_session(db: &TestDb) -> sessions::Model {
    let mut all = sessions::Entity::find().all(&db.db).await.unwrap();
    assert_eq!(all.len(), 1, "exactly one session record: {all:?}");
    all.remove(0)
}

async fn record_count(db: &TestDb) -> u64 {
    sessions::Entity::find().count(&db.db).await.unwrap()
}

async fn set_remaining_ttl(db: &TestDb, id: &[u8], remaining: Duration) {
    let deadline = db.db_now_millis().await + remaining.as_millis() as i64;
    sessions::Entity::update_many()
        .col_expr(sessions::Column::Deadline, Expr::val(deadline))
        .filter(sessions::Column::Id.eq(id.to_vec()))
        .exec(&db.db)
        .await
        .unwrap();
}

fn config() -> SessionConfig {
    let mut config = SessionConfig::new();
    config.state.ttl = TTL;
    config
}

async fn a_new_session_gets_a_cookie_and_the_next_request_reads_it(backend: Backend) {
    let (db, app) = App::on(backend, config()).await;
    let mut browser = Browser::default();

    // A request that never touches the session stores nothing and sets no cookie.
    let untouched = app.session(&browser);
    assert!(!app.respond(&mut browser, untouched).await.unwrap());
    assert_eq!(record_count(&db).await, 0);

    let mut session = app.session(&browser);
    session.insert("user_id", 42).await.unwrap();
    assert!(app.respond(&mut browser, session).await.unwrap());
    assert!(browser.cookie.is_some());
    let record = only_session(&db).await;
    assert_eq!(state_of(&record), json!({"user_id": 42}));

    let session = app.session(&browser);
    assert_eq!(session.get::<i32>("user_id").await.unwrap(), Some(42));
    app.respond(&mut browser, session).await.unwrap();
    assert_eq!(only_session(&db).await.id, record.id, "the same session");
}

/// Logs a fresh browser in and returns its session record.
async fn log_in(app: &App, db: &TestDb, browser: &mut Browser) -> sessions::Model {
    let mut session = app.session(browser);
    session.insert("user_id", 7).await.unwrap();
    app.respond(browser, session).await.unwrap();
    only_session(db).await
}

/// A request that only reads the session.
async fn read_only_request(app: &App, browser: &mut Browser) -> Option<i32> {
    let session = app.session(browser);
    let user = session.get::<i32>("user_id").await.unwrap();
    app.respond(browser, session).await.unwrap();
    user
}

async fn changed_state_is_written_and_reads_extend_the_ttl_per_the_rule(backend: Backend) {
    // Default rule: extend on loads and changes, once less than 80% of the TTL is left.
    let (db, app) = App::on(backend, config()).await;
    let mut browser = Browser::default();
    let id = log_in(&app, &db, &mut browser).await.id;

    set_remaining_ttl(&db, &id, TTL.mul_f32(0.9)).await;
    let before = only_session(&db).await.deadline;
    assert_eq!(read_only_request(&app, &mut browser).await, Some(7));
    assert_eq!(
        only_session(&db).await.deadline,
        before,
        "90% left: no update_ttl"
    );

    set_remaining_ttl(&db, &id, TTL.mul_f32(0.5)).await;
    let now = db.db_now_millis().await;
    assert_eq!(read_only_request(&app, &mut browser).await, Some(7));
    let extended = only_session(&db).await;
    assert!(
        extended.deadline.0.timestamp_millis() >= now + TTL.as_millis() as i64,
        "50% left: extended"
    );
    assert_eq!(
        state_of(&extended),
        json!({"user_id": 7}),
        "update_ttl keeps the state"
    );

    // A change is written, with a fresh TTL.
    set_remaining_ttl(&db, &id, TTL.mul_f32(0.9)).await;
    let now = db.db_now_millis().await;
    let mut session = app.session(&browser);
    session.insert("theme", "dark").await.unwrap();
    app.respond(&mut browser, session).await.unwrap();
    let updated = only_session(&db).await;
    assert_eq!(state_of(&updated), json!({"user_id": 7, "theme": "dark"}));
    assert!(updated.deadline.0.timestamp_millis() >= now + TTL.as_millis() as i64);
}

async fn reads_never_extend_the_ttl_when_only_changes_do(backend: Backend) {
    let mut config = config();
    config.state.extend_ttl = TtlExtensionTrigger::OnStateChanges;
    let (db, app) = App::on(backend, config).await;
    let mut browser = Browser::default();
    let id = log_in(&app, &db, &mut browser).await.id;
    set_remaining_ttl(&db, &id, TTL.mul_f32(0.1)).await;
    let before = only_session(&db).await.deadline;
    assert_eq!(read_only_request(&app, &mut browser).await, Some(7));
    assert_eq!(only_session(&db).await.deadline, before);
}

async fn reads_always_extend_the_ttl_without_a_threshold(backend: Backend) {
    let mut config = config();
    config.state.ttl_extension_threshold = None;
    let (db, app) = App::on(backend, config).await;
    let mut browser = Browser::default();
    let id = log_in(&app, &db, &mut browser).await.id;
    set_remaining_ttl(&db, &id, TTL.mul_f32(0.99)).await;
    let now = db.db_now_millis().await;
    assert_eq!(read_only_request(&app, &mut browser).await, Some(7));
    assert!(only_session(&db).await.deadline.0.timestamp_millis() >= now + TTL.as_millis() as i64);
}

async fn cycle_id_moves_the_state_and_retires_the_old_cookie(backend: Backend) {
    let (db, app) = App::on(backend, config()).await;
    let mut browser = Browser::default();
    let old = log_in(&app, &db, &mut browser).await;
    let mut stolen = browser.clone();

    let mut session = app.session(&browser);
    session.cycle_id();
    app.respond(&mut browser, session).await.unwrap();
    let new = only_session(&db).await;
    assert_ne!(new.id, old.id);
    assert_eq!(
        (new.state, new.deadline),
        (old.state, old.deadline),
        "state and deadline carried"
    );
    assert_eq!(read_only_request(&app, &mut browser).await, Some(7));

    // The old cookie finds nothing, and is told to go away.
    assert_eq!(read_only_request(&app, &mut stolen).await, None);
    assert!(stolen.cookie.is_none());
    assert_eq!(record_count(&db).await, 1);
}

async fn invalidate_removes_the_record_and_the_cookie(backend: Backend) {
    let (db, app) = App::on(backend, config()).await;
    let mut browser = Browser::default();
    log_in(&app, &db, &mut browser).await;
    let mut old_tab = browser.clone();

    let mut session = app.session(&browser);
    session.invalidate();
    assert!(
        app.respond(&mut browser, session).await.unwrap(),
        "a removal cookie is sent"
    );
    assert!(browser.cookie.is_none());
    assert_eq!(record_count(&db).await, 0);

    // A request with the old cookie starts clean.
    assert_eq!(read_only_request(&app, &mut old_tab).await, None);
    assert!(old_tab.cookie.is_none());
    let mut session = app.session(&old_tab);
    session.insert("user_id", 8).await.unwrap();
    app.respond(&mut old_tab, session).await.unwrap();
    assert_eq!(state_of(&only_session(&db).await), json!({"user_id": 8}));
}

async fn an_expired_record_is_missing_server_state(backend: Backend) {
    // Reject (the default): the session is invalidated.
    let (db, app) = App::on(backend, config()).await;
    let mut browser = Browser::default();
    let id = log_in(&app, &db, &mut browser).await.id;
    set_remaining_ttl(&db, &id, Duration::ZERO).await;
    assert_eq!(read_only_request(&app, &mut browser).await, None);
    assert!(browser.cookie.is_none(), "the cookie is removed");

    // Allow: the session goes on with an empty state, stored again over the expired record.
    let mut config = config();
    config.state.missing_server_state = MissingServerState::Allow;
    let (db, app) = App::on(backend, config).await;
    let mut browser = Browser::default();
    let id = log_in(&app, &db, &mut browser).await.id;
    set_remaining_ttl(&db, &id, Duration::ZERO).await;
    assert_eq!(read_only_request(&app, &mut browser).await, None);
    assert!(browser.cookie.is_some(), "the session cookie stays");
    let revived = only_session(&db).await;
    assert_eq!(state_of(&revived), json!({}));
    assert_eq!(revived.id, id);
    assert!(
        revived.deadline.0.timestamp_millis() > db.db_now_millis().await,
        "live again"
    );
}

async fn delete_expired_through_the_session_store(backend: Backend) {
    let (db, app) = App::on(backend, config()).await;
    let mut browsers = vec![Browser::default(); 5];
    for browser in &mut browsers {
        let mut session = app.session(browser);
        session.insert("user_id", 1).await.unwrap();
        app.respond(browser, session).await.unwrap();
    }
    let all = sessions::Entity::find().all(&db.db).await.unwrap();
    for record in &all[..3] {
        set_remaining_ttl(&db, &record.id, Duration::ZERO).await;
    }
    let batch = NonZeroUsize::new(2);
    assert_eq!(app.store.delete_expired(batch).await.unwrap(), 2);
    assert_eq!(app.store.delete_expired(batch).await.unwrap(), 1);
    assert_eq!(app.store.delete_expired(batch).await.unwrap(), 0);
    assert_eq!(record_count(&db).await, 2);
    let live: Vec<_> = all[3..].iter().map(|r| r.id.clone()).collect();
    let mut readable = 0;
    for browser in &mut browsers {
        if read_only_request(&app, browser).await == Some(1) {
            readable += 1;
        }
    }
    assert_eq!(readable, 2);
    for id in live {
        assert!(
            sessions::Entity::find_by_id(id.clone())
                .one(&db.db)
                .await
                .unwrap()
                .is_some()
        );
    }
}

async fn concurrent_requests_lose_no_acknowledged_write(backend: Backend) {
    let (db, app) = App::on(backend, config()).await;

    // 32 visitors, each logging in, then writing, then reading, all at once.
    let visitors = (0..32).map(|i| {
        let app = &app;
        async move {
            let mut browser = Browser::default();
            let mut session = app.session(&browser);
            session.insert("user_id", i).await.unwrap();
            app.respond(&mut browser, session).await.unwrap();
            let mut session = app.session(&browser);
            session.insert("cart", vec![i, i + 1]).await.unwrap();
            app.respond(&mut browser, session).await.unwrap();
            let session = app.session(&browser);
            let read = (
                session.get::<i32>("user_id").await.unwrap(),
                session.get::<Vec<i32>>("cart").await.unwrap(),
            );
            app.respond(&mut browser, session).await.unwrap();
            assert_eq!(read, (Some(i), Some(vec![i, i + 1])), "visitor {i}");
        }
    });
    join_all(visitors).await;
    assert_eq!(record_count(&db).await, 32);

    // Eight tabs of one user writing at once: each write succeeds, the last one wins whole.
    let mut browser = Browser::default();
    let mut session = app.session(&browser);
    session.insert("user_id", 99).await.unwrap();
    app.respond(&mut browser, session).await.unwrap();
    let tabs = (0..8).map(|i| {
        let (app, mut tab) = (&app, browser.clone());
        async move {
            let mut session = app.session(&tab);
            session.insert("tab", i).await.unwrap();
            app.respond(&mut tab, session).await.unwrap();
        }
    });
    join_all(tabs).await;
    let session = app.session(&browser);
    let (user, tab) = (
        session.get::<i32>("user_id").await.unwrap(),
        session.get::<i32>("tab").await.unwrap(),
    );
    assert_eq!(user, Some(99));
    assert!(matches!(tab, Some(0..8)), "{tab:?}");
}

async fn a_logout_is_not_undone_by_concurrent_writes(backend: Backend) {
    let (db, app) = App::on(backend, config()).await;
    for _ in 0..5 {
        let mut browser = Browser::default();
        let id = {
            let mut session = app.session(&browser);
            session.insert("user_id", 1).await.unwrap();
            app.respond(&mut browser, session).await.unwrap();
            let all = sessions::Entity::find().all(&db.db).await.unwrap();
            assert_eq!(all.len(), 1);
            all[0].id.clone()
        };
        let logout = {
            let (app, mut tab) = (&app, browser.clone());
            async move {
                let mut session = app.session(&tab);
                session.invalidate();
                app.respond(&mut tab, session).await
            }
        };
        let writers = (0..4).map(|i| {
            let (app, mut tab) = (&app, browser.clone());
            async move {
                let mut session = app.session(&tab);
                // A write that loaded the state before the logout, and saves after it.
                session.insert("tab", i).await.unwrap();
                app.respond(&mut tab, session).await
            }
        });
        let (logged_out, writes) = futures::join!(logout, join_all(writers));
        logged_out.unwrap();
        for write in writes {
            match write {
                Ok(_) => {}
                // The record was already gone: the contract's UnknownId, surfaced by pavex_session.
                Err(FinalizeError::SyncErr(SyncError::UpdateError(
                    UpdateError::UnknownIdError(_),
                ))) => {}
                Err(e) => panic!("unexpected error: {e:?}"),
            }
        }
        assert!(
            sessions::Entity::find_by_id(id.clone())
                .one(&db.db)
                .await
                .unwrap()
                .is_none(),
            "the logout stands"
        );
    }
}

/// Sign in rotates the id and writes the subject; the device list shows each browser; "sign out
/// everywhere else" from one browser leaves the others anonymous on their next request.
async fn sign_out_everywhere_else(backend: Backend) {
    let (_db, app) = App::on(backend, config()).await;
    let mut browsers = vec![Browser::default(); 3];
    for (n, browser) in browsers.iter_mut().enumerate() {
        // An anonymous visit first, then the sign-in on the same session.
        let mut session = app.session(browser);
        session.insert("cart", n).await.unwrap();
        app.respond(browser, session).await.unwrap();
        let before = browser.cookie.clone();
        let mut session = app.session(browser);
        session.cycle_id();
        session.insert("user_id", 7).await.unwrap();
        // What the app keeps to recognise this device in the list.
        session
            .insert("device", format!("browser {n}"))
            .await
            .unwrap();
        app.respond(browser, session).await.unwrap();
        assert_ne!(browser.cookie, before, "the sign-in rotates the cookie");
    }
    let devices = app.sessions.sessions_of("7").await.unwrap();
    assert_eq!(devices.len(), 3);

    // Browser 0 signs out everywhere else: it finds its own handle by its device name.
    let mine = devices
        .iter()
        .find(|d| d.state["device"] == json!("browser 0"))
        .unwrap()
        .handle;
    assert_eq!(
        app.sessions
            .end_sessions_of("7", Some(&mine))
            .await
            .unwrap(),
        2
    );
    assert_eq!(read_only_request(&app, &mut browsers[0]).await, Some(7));
    for browser in &mut browsers[1..] {
        assert_eq!(read_only_request(&app, browser).await, None, "signed out");
    }
    assert_eq!(app.sessions.count_sessions_of("7").await.unwrap(), 1);
}

/// Signs `browser` in as user 7, with a sign-in id as the app puts in the state at sign-in.
async fn sign_in(app: &App, browser: &mut Browser, sign_in_id: &str) {
    let mut session = app.session(browser);
    session.cycle_id();
    session.insert("user_id", 7).await.unwrap();
    session.insert("sign_in_id", sign_in_id).await.unwrap();
    app.respond(browser, session).await.unwrap();
}

/// Whether a finalize error is the store refusing to recreate a signed-out session.
fn is_signed_out(e: &FinalizeError) -> bool {
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(e) = source {
        if e.is::<pavex_session_sea_orm::SignedOut>() {
            return true;
        }
        source = e.source();
    }
    format!("{e:?}").contains("SignedOut")
}

/// A request in flight on a phone that was just signed out everywhere, and that cycles its id
/// (a re-authentication, a privilege change), cannot bring the sign-in back: pavex_session
/// falls back to `create` under the new id, and the store refuses it. Both of
/// pavex_session's paths: a changed state (`delete` then `create`) and an unchanged one
/// (`change_id` finds nothing, then `create`). One device signed out leaves the others alone,
/// and signing in again works.
async fn a_signed_out_session_stays_signed_out(backend: Backend) {
    let (db, app) = App::on(backend, config()).await;
    let (mut phone, mut laptop) = (Browser::default(), Browser::default());
    for (changed, sign_in_id) in [(true, "phone-1"), (false, "phone-2")] {
        sign_in(&app, &mut phone, sign_in_id).await;
        let mut in_flight = app.session(&phone);
        assert_eq!(in_flight.get::<i32>("user_id").await.unwrap(), Some(7));
        assert_eq!(app.sessions.end_sessions_of("7", None).await.unwrap(), 1);
        in_flight.cycle_id();
        if changed {
            in_flight.insert("privilege", "admin").await.unwrap();
        }
        let refused = app.respond(&mut phone, in_flight).await.unwrap_err();
        assert!(is_signed_out(&refused), "{refused:?}");
        assert_eq!(record_count(&db).await, 0, "nothing came back");
        assert_eq!(read_only_request(&app, &mut phone).await, None);
    }
    // One device signed out: the other device's sign-in still renames its session.
    sign_in(&app, &mut phone, "phone-3").await;
    sign_in(&app, &mut laptop, "laptop-1").await;
    let devices = app.sessions.sessions_of("7").await.unwrap();
    let phone_handle = devices
        .iter()
        .find(|d| d.state["sign_in_id"] == json!("phone-3"))
        .unwrap()
        .handle;
    let mut on_phone = app.session(&phone);
    let mut on_laptop = app.session(&laptop);
    assert_eq!(on_phone.get::<i32>("user_id").await.unwrap(), Some(7));
    assert_eq!(on_laptop.get::<i32>("user_id").await.unwrap(), Some(7));
    assert!(
        app.sessions
            .end_session_of("7", &phone_handle)
            .await
            .unwrap()
    );
    on_phone.cycle_id();
    on_laptop.cycle_id();
    assert!(is_signed_out(
        &app.respond(&mut phone, on_phone).await.unwrap_err()
    ));
    app.respond(&mut laptop, on_laptop).await.unwrap();
    assert_eq!(read_only_request(&app, &mut laptop).await, Some(7));
    assert_eq!(read_only_request(&app, &mut phone).await, None);
    // A new sign-in on the phone, after all that, is not refused.
    sign_in(&app, &mut phone, "phone-4").await;
    assert_eq!(read_only_request(&app, &mut phone).await, Some(7));
    assert_eq!(app.sessions.count_sessions_of("7").await.unwrap(), 2);
}

on_every_backend!(
    sign_out_everywhere_else,
    a_signed_out_session_stays_signed_out,
    a_new_session_gets_a_cookie_and_the_next_request_reads_it,
    changed_state_is_written_and_reads_extend_the_ttl_per_the_rule,
    reads_never_extend_the_ttl_when_only_changes_do,
    reads_always_extend_the_ttl_without_a_threshold,
    cycle_id_moves_the_state_and_retires_the_old_cookie,
    invalidate_removes_the_record_and_the_cookie,
    an_expired_record_is_missing_server_state,
    delete_expired_through_the_session_store,
    concurrent_requests_lose_no_acknowledged_write,
    a_logout_is_not_undone_by_concurrent_writes,
);

/// A stored row's state, parsed from the bytes of its JSON text.
fn state_of(row: &pavex_session_sea_orm::entity::sessions::Model) -> serde_json::Value {
    serde_json::from_slice(&row.state).expect("the state is JSON")
}
