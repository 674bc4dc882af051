//! What the end-to-end test drives: a fresh database per backend, the server binary as a child
//! process, and browsers (HTTP clients with a cookie jar).
use pavex::cookie::{
    Key, Processor, ProcessorConfig, RequestCookies,
    config::{CryptoAlgorithm, CryptoRule},
};
use pavex_session::{
    IncomingSession, Session, SessionConfig, SessionId, SessionStore,
    errors::{FinalizeError, SyncError},
    store::{SessionRecordRef, SessionStorageBackend, errors::CreateError},
};
use pavex_session_sea_orm::{SeaOrmSessionStore, SessionHandle, SignedOut, entity::sessions};
use reqwest::{
    Client, Response, StatusCode,
    cookie::{CookieStore, Jar},
    header::{COOKIE, LINK, SET_COOKIE},
};
use sea_orm::{
    ColumnTrait, ConnectionTrait, Database, DatabaseConnection, EntityTrait, ExprTrait,
    PaginatorTrait, QueryFilter,
    prelude::{Expr, Uuid},
};
use serde_json::Value;
use std::{
    borrow::Cow,
    collections::HashMap,
    io::{BufRead, BufReader, Read},
    path::PathBuf,
    process::{Child, Command, ExitStatus, Stdio},
    sync::{Arc, Mutex, mpsc},
    thread::JoinHandle,
    time::{Duration, Instant},
};

/// The session cookie's name (`session.cookie.name` in configuration/base.yml).
pub const COOKIE_NAME: &str = "id";

/// The page size of `GET /devices` the test gives the server (`PX_DEVICES__PAGE_SIZE`; base.yml
/// says 20): small, so that three browsers fill two pages.
pub const DEVICES_PAGE_SIZE: usize = 2;

/// The pause between the expiry cleaner's rounds the test gives the server
/// (`PX_SESSION_CLEANUP__PAUSE_BETWEEN_ROUNDS_SECONDS`; base.yml says 300): short, so that an
/// expired session is deleted within the test.
pub const CLEANUP_PAUSE_SECONDS: u64 = 1;

/// The state keys the app's store copies into its columns (app/src/routes/mod.rs).
const USER_ID: &str = "user_id";
const SIGN_IN_ID: &str = "sign_in_id";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
    MySql,
}

/// A database of its own for one test run: a SQLite file in a fresh temporary directory, or a
/// database created on the PostgreSQL / MariaDB server. Removed on drop, also after a failure.
pub struct TestDatabase {
    pub url: String,
    /// The test's own connection, to look at the sessions table.
    pub db: DatabaseConnection,
    /// A store on that connection, to read records as the server stores them.
    store: SessionStore,
    /// A store built as the app builds its own (`app::database::session_store`: subject and
    /// sign-in keys), to replay what a request in flight does, and its session settings. Without
    /// the app's session policy (cap, absolute lifetime), so that the test can give a user more
    /// sessions than the app's sign-ins would leave.
    app_backend: SeaOrmSessionStore,
    app_store: SessionStore,
    session_config: SessionConfig,
    cleanup: Cleanup,
}

enum Cleanup {
    RemoveDir(PathBuf),
    DropDatabase {
        admin_url: String,
        statement: String,
    },
}

fn server_url(backend: Backend) -> String {
    let (var, default) = match backend {
        Backend::Postgres => (
            "PAVEX_SESSION_TEST_POSTGRES_URL",
            "postgres://postgres@127.0.0.1:5432/test",
        ),
        Backend::MySql => (
            "PAVEX_SESSION_TEST_MYSQL_URL",
            "mysql://root@127.0.0.1:3306/test",
        ),
        Backend::Sqlite => unreachable!("SQLite has no server"),
    };
    std::env::var(var).unwrap_or_else(|_| default.to_owned())
}

impl TestDatabase {
    /// A fresh, empty database. An unreachable server fails the test: nothing is skipped.
    pub async fn fresh(backend: Backend) -> Self {
        let name = format!("pavex_app_e2e_{}", Uuid::new_v4().simple());
        let (url, cleanup) = match backend {
            Backend::Sqlite => {
                let dir = std::env::temp_dir().join(&name);
                std::fs::create_dir_all(&dir).expect("create a temporary directory");
                let file = dir.join("sessions.sqlite");
                let url = format!("sqlite://{}?mode=rwc", file.display());
                (url, Cleanup::RemoveDir(dir))
            }
            Backend::Postgres | Backend::MySql => {
                let admin_url = server_url(backend);
                let admin = Database::connect(&admin_url).await.unwrap_or_else(|e| {
                    panic!(
                        "{backend:?} at {admin_url} is unreachable: {e} (is the server running?)"
                    )
                });
                admin
                    .execute_unprepared(&format!("CREATE DATABASE {name}"))
                    .await
                    .unwrap_or_else(|e| panic!("create database {name}: {e}"));
                admin.close().await.ok();
                let (server, _) = admin_url
                    .rsplit_once('/')
                    .expect("a server URL ending in a database name");
                let statement = match backend {
                    Backend::Postgres => format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"),
                    _ => format!("DROP DATABASE IF EXISTS {name}"),
                };
                (
                    format!("{server}/{name}"),
                    Cleanup::DropDatabase {
                        admin_url,
                        statement,
                    },
                )
            }
        };
        let db = Database::connect(&url)
            .await
            .unwrap_or_else(|e| panic!("connect to {url}: {e}"));
        let store = SeaOrmSessionStore::new(db.clone()).into();
        let app_backend = SeaOrmSessionStore::new(db.clone())
            .with_subject_key(USER_ID)
            .with_sign_in_key(SIGN_IN_ID);
        let app_store = app_backend.clone().into();
        Self {
            url,
            db,
            store,
            app_backend,
            app_store,
            session_config: SessionConfig::default(),
            cleanup,
        }
    }

    /// Runs one SQL statement of the test's own (to set up a wrong table).
    pub async fn execute(&self, sql: &str) {
        self.db
            .execute_unprepared(sql)
            .await
            .unwrap_or_else(|e| panic!("{sql}: {e}"));
    }

    /// How many session records the table holds (live or not).
    pub async fn session_count(&self) -> u64 {
        sessions::Entity::find()
            .count(&self.db)
            .await
            .expect("count the sessions")
    }

    /// The server-side state stored for this session id, as a JSON object, if the record is
    /// live (read through the library's own `load`), without the `sign_in_id` and the `device`
    /// mark the sign-in adds (random; [`sign_in_id`](Self::sign_in_id) and
    /// [`device_mark`](Self::device_mark) read them).
    pub async fn record(&self, id: Uuid) -> Option<Value> {
        let mut state = self.full_record(id).await?;
        let object = state.as_object_mut().expect("a JSON object");
        object.remove(SIGN_IN_ID);
        object.remove("device");
        Some(state)
    }

    /// The `device` mark stored in this live session's state.
    pub async fn device_mark(&self, id: Uuid) -> Option<Value> {
        self.full_record(id).await?.get("device").cloned()
    }

    /// The `sign_in_id` stored in this live session's state.
    pub async fn sign_in_id(&self, id: Uuid) -> Option<String> {
        let state = self.full_record(id).await?;
        Some(state.get(SIGN_IN_ID)?.as_str()?.to_owned())
    }

    /// The `sign_in` column of this session's row (the store's copy of its `sign_in_id`), read
    /// through the entity; `None` if there is no row. The column holds the id's UTF-8 bytes.
    pub async fn sign_in_column(&self, id: Uuid) -> Option<Option<String>> {
        let handle = SessionHandle::of(&session_id_of(id));
        let row = sessions::Entity::find_by_id(handle.as_bytes().to_vec())
            .one(&self.db)
            .await
            .expect("read a session row")?;
        Some(
            row.sign_in
                .map(|bytes| String::from_utf8(bytes).expect("UTF-8")),
        )
    }

    async fn full_record(&self, id: Uuid) -> Option<Value> {
        let record = self
            .store
            .load(&session_id_of(id))
            .await
            .expect("load a session");
        record.map(|record| serde_json::to_value(record.state).expect("a JSON object"))
    }

    /// A request in flight on the session `id`, replayed here with pavex_session's own
    /// `Session` (what the server's routes get) on a store built like the app's: the test
    /// decides when it loads the state and when it writes (`finalize`, what the server's
    /// `finalize_session` runs after the handler).
    pub fn in_flight(&self, id: Uuid) -> Session<'_> {
        let incoming = IncomingSession::from_parts(session_id_of(id), HashMap::new());
        Session::new(&self.app_store, &self.session_config, Some(incoming))
    }

    /// Creates `n` sessions of `user` through a store built like the app's, each with a
    /// sign-in id of its own (what `POST /sign-in` stores, without the HTTP round trips),
    /// 16 at a time.
    pub async fn create_sessions_of(&self, user: &str, n: usize) {
        let mut creates = tokio::task::JoinSet::new();
        for i in 0..n {
            if i >= 16 {
                creates
                    .join_next()
                    .await
                    .expect("a create")
                    .expect("a create task");
            }
            let (store, user) = (self.app_backend.clone(), user.to_owned());
            creates.spawn(async move {
                let state = HashMap::from([
                    (Cow::Borrowed(USER_ID), Value::from(user)),
                    (
                        Cow::Borrowed(SIGN_IN_ID),
                        Value::from(Uuid::new_v4().to_string()),
                    ),
                ]);
                let record = SessionRecordRef {
                    state: Cow::Owned(state),
                    ttl: Duration::from_secs(3600),
                };
                store
                    .create(&SessionId::random(), record)
                    .await
                    .expect("create a session");
            });
        }
        while let Some(done) = creates.join_next().await {
            done.expect("a create task");
        }
    }

    /// How many rows hold `subject` in the store's subject column, read through the entity.
    /// The column is binary: it holds the subject's UTF-8 bytes.
    pub async fn rows_of_subject(&self, subject: &str) -> u64 {
        sessions::Entity::find()
            .filter(sessions::Column::Subject.eq(subject.as_bytes().to_vec()))
            .count(&self.db)
            .await
            .expect("count a subject's sessions")
    }

    /// Creates a session with this TTL and a cart, through the library's store, as the server
    /// would; returns its id.
    pub async fn create_session(&self, ttl: Duration) -> Uuid {
        let id = Uuid::new_v4();
        let state = HashMap::from([(Cow::Borrowed("cart"), serde_json::json!(["old"]))]);
        let record = SessionRecordRef {
            state: Cow::Owned(state),
            ttl,
        };
        self.app_backend
            .create(&session_id_of(id), record)
            .await
            .expect("create a session");
        id
    }

    /// Moves this session's `created_at` back by `by`, with an `UPDATE` of the test's own
    /// (through the entity, by the row's key, the handle), as if it had been created that long
    /// ago; its deadline stays as it is. Panics unless exactly one row changed.
    pub async fn age_session(&self, id: Uuid, by: Duration) {
        let handle = SessionHandle::of(&session_id_of(id));
        let by_ms = i64::try_from(by.as_millis()).expect("a duration in i64 milliseconds");
        let done = sessions::Entity::update_many()
            .col_expr(
                sessions::Column::CreatedAt,
                Expr::col(sessions::Column::CreatedAt).sub(by_ms),
            )
            .filter(sessions::Column::Id.eq(handle.as_bytes().to_vec()))
            .exec(&self.db)
            .await
            .expect("move a session's created_at back");
        assert_eq!(done.rows_affected, 1, "no row for the session {id}");
    }

    /// Whether the table still has a row for this session id, expired or not (read through the
    /// entity, by the row's key, the handle).
    pub async fn row_exists(&self, id: Uuid) -> bool {
        let handle = SessionHandle::of(&session_id_of(id));
        sessions::Entity::find_by_id(handle.as_bytes().to_vec())
            .one(&self.db)
            .await
            .expect("read a session row")
            .is_some()
    }
}

impl Drop for TestDatabase {
    fn drop(&mut self) {
        match &self.cleanup {
            Cleanup::RemoveDir(dir) => {
                let _ = std::fs::remove_dir_all(dir);
            }
            Cleanup::DropDatabase {
                admin_url,
                statement,
            } => {
                let (admin_url, statement) = (admin_url.clone(), statement.clone());
                // Drop runs inside the test's runtime: use a runtime of our own on another thread.
                let dropped = std::thread::spawn(move || {
                    let runtime = tokio::runtime::Builder::new_current_thread()
                        .enable_all()
                        .build()?;
                    runtime.block_on(async {
                        let admin = Database::connect(&admin_url).await?;
                        admin.execute_unprepared(&statement).await?;
                        admin.close().await
                    })?;
                    Ok::<_, Box<dyn std::error::Error + Send + Sync>>(())
                })
                .join();
                if !matches!(dropped, Ok(Ok(()))) {
                    eprintln!("warning: could not drop the test database: {dropped:?}");
                }
            }
        }
    }
}

/// A random cookie key for one run, handed to the server the way production does
/// (`PX_COOKIES__CRYPTO_RULES`), and kept by the test to read the cookies it receives.
pub fn random_cookie_key() -> String {
    format!("{}{}", Uuid::new_v4().simple(), Uuid::new_v4().simple())
}

/// The server binary, started as a child process on a free loopback port.
pub struct Server {
    child: Child,
    /// `http://127.0.0.1:<port>`
    pub base: String,
    /// Every line the server printed on stdout so far.
    output: Arc<Mutex<Vec<String>>>,
    /// The thread that reads stdout; it ends when the server exits.
    reader: Option<JoinHandle<()>>,
}

/// What a stopped server left: its exit status and every line it printed on stdout.
pub struct Stopped {
    pub status: ExitStatus,
    pub output: Vec<String>,
}

impl Server {
    /// The server binary's command: the dev profile, `database_url`, the given cookie key, a
    /// port the operating system picks (`PX_SERVER__PORT=0`), [`DEVICES_PAGE_SIZE`],
    /// [`CLEANUP_PAUSE_SECONDS`].
    fn command(database_url: &str, cookie_key: &str) -> Command {
        // The server reads `configuration/` from its working directory: the workspace root.
        let workspace = concat!(env!("CARGO_MANIFEST_DIR"), "/..");
        let crypto_rules = format!(
            r#"[{{cookie_names=["{COOKIE_NAME}"],algorithm="encryption",key="{cookie_key}"}}]"#
        );
        let mut command = Command::new(env!("CARGO_BIN_EXE_server"));
        command
            .current_dir(workspace)
            .env("PX_PROFILE", "dev")
            .env("PX_SERVER__IP", "127.0.0.1")
            .env("PX_SERVER__PORT", "0")
            .env("PX_SERVER__GRACEFUL_SHUTDOWN_SECONDS", "5")
            .env("PX_DATABASE__URL", database_url)
            .env("PX_COOKIES__CRYPTO_RULES", crypto_rules)
            .env("PX_DEVICES__PAGE_SIZE", DEVICES_PAGE_SIZE.to_string())
            .env(
                "PX_SESSION_CLEANUP__PAUSE_BETWEEN_ROUNDS_SECONDS",
                CLEANUP_PAUSE_SECONDS.to_string(),
            );
        command
    }

    /// Starts the server with `migrate_on_start: false` on a database whose sessions table it
    /// must refuse, and returns its exit status and what it wrote on stderr. Panics if it
    /// listens instead, or runs on for 30 s.
    pub fn refused(database_url: &str, cookie_key: &str) -> (ExitStatus, String) {
        Self::exits_before_listening(
            database_url,
            cookie_key,
            &[("PX_DATABASE__MIGRATE_ON_START", "false")],
        )
    }

    /// Starts the server with these environment variables on top of the test's, expecting it to
    /// exit before it listens (a configuration or a table it refuses), and returns its exit
    /// status and what it wrote on stderr. Panics if it listens instead, or runs on for 30 s.
    pub fn exits_before_listening(
        database_url: &str,
        cookie_key: &str,
        env: &[(&str, &str)],
    ) -> (ExitStatus, String) {
        let mut child = Self::command(database_url, cookie_key)
            .envs(env.iter().copied())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start the server binary");
        let mut stderr = child.stderr.take().expect("the server's stderr");
        let reader = std::thread::spawn(move || {
            let mut text = String::new();
            let _ = stderr.read_to_string(&mut text);
            text
        });
        for _ in 0..300 {
            if let Some(status) = child.try_wait().expect("wait for the server") {
                let mut stdout = String::new();
                if let Some(mut out) = child.stdout.take() {
                    let _ = out.read_to_string(&mut stdout);
                }
                assert!(
                    !stdout.contains("listening on"),
                    "the server listened: {stdout}"
                );
                return (status, reader.join().expect("the stderr reader"));
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        let _ = child.kill();
        let _ = child.wait();
        panic!("the server neither refused to start nor exited within 30 s");
    }

    /// Starts the server on `database_url` with the dev profile and the given cookie key, on a
    /// port the operating system picks (`PX_SERVER__PORT=0`), and waits until it listens.
    pub fn start(database_url: &str, cookie_key: &str) -> Self {
        let mut child = Self::command(database_url, cookie_key)
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start the server binary");
        let stdout = child.stdout.take().expect("the server's stdout");
        let (ready, announced) = mpsc::channel();
        let output = Arc::new(Mutex::new(Vec::new()));
        let lines = output.clone();
        let reader = std::thread::spawn(move || {
            let mut ready = Some(ready);
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                eprintln!("[server] {line}");
                if let Some(address) = line.strip_prefix("listening on ")
                    && let Some(ready) = ready.take()
                {
                    let _ = ready.send(address.to_owned());
                }
                lines.lock().expect("the output lock").push(line);
            }
        });
        // Generous: the first start also creates the sessions table.
        let base = match announced.recv_timeout(Duration::from_secs(60)) {
            Ok(base) => base,
            Err(_) => {
                let status = child.try_wait();
                let _ = child.kill();
                panic!("the server did not announce its address (exit status: {status:?})");
            }
        };
        Server {
            child,
            base,
            output,
            reader: Some(reader),
        }
    }

    /// Waits (up to 10 s) for a line on the server's stdout that starts with `prefix`, and
    /// returns it. The server prints a request's log line before it sends the response, but
    /// the test reads the pipe on another thread, hence the wait.
    pub fn wait_for_line(&self, prefix: &str) -> String {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let output = self.output.lock().expect("the output lock").clone();
            if let Some(line) = output.iter().find(|line| line.starts_with(prefix)) {
                return line.clone();
            }
            assert!(
                Instant::now() < deadline,
                "no line starting with {prefix:?} in the server's output: {output:#?}"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Stops the server with SIGTERM, as a deployment does, and returns its exit status and
    /// everything it printed on stdout.
    pub fn stop(mut self) -> Stopped {
        let pid = self.child.id().to_string();
        let sent = Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .expect("run kill");
        assert!(sent.success(), "kill -TERM {pid} failed");
        for _ in 0..300 {
            if let Some(status) = self.child.try_wait().expect("wait for the server") {
                // The process is gone: its stdout is at its end.
                if let Some(reader) = self.reader.take() {
                    reader.join().expect("the stdout reader");
                }
                let output = self.output.lock().expect("the output lock").clone();
                return Stopped { status, output };
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        panic!("the server did not exit within 30 s of SIGTERM");
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// Where requests go: a [`Server`], or its base URL (`http://127.0.0.1:<port>`) in tasks that
/// do not own the server.
pub trait Target {
    fn base(&self) -> &str;

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base())
    }
}

impl Target for Server {
    fn base(&self) -> &str {
        &self.base
    }
}

impl Target for String {
    fn base(&self) -> &str {
        self
    }
}

/// A browser: an HTTP client that keeps the cookies it is given, as browsers do.
#[derive(Clone)]
pub struct Browser {
    client: Client,
    jar: Arc<Jar>,
}

impl Browser {
    /// A browser that sends no `User-Agent` (reqwest sends none unless told).
    pub fn new() -> Self {
        Self::build(Client::builder())
    }

    /// A browser that sends this `User-Agent`.
    pub fn with_user_agent(user_agent: &str) -> Self {
        Self::build(Client::builder().user_agent(user_agent))
    }

    fn build(builder: reqwest::ClientBuilder) -> Self {
        let jar = Arc::new(Jar::default());
        let client = builder
            .cookie_provider(jar.clone())
            .build()
            .expect("build an HTTP client");
        Self { client, jar }
    }

    pub async fn get(&self, server: &impl Target, path: &str) -> Response {
        self.client.get(server.url(path)).send().await.expect("GET")
    }

    pub async fn post(&self, server: &impl Target, path: &str) -> Response {
        self.client
            .post(server.url(path))
            .send()
            .await
            .expect("POST")
    }

    pub async fn post_json(&self, server: &impl Target, path: &str, body: &Value) -> Response {
        self.client
            .post(server.url(path))
            .json(body)
            .send()
            .await
            .expect("POST")
    }

    /// `GET /me`, which must answer 200: the session as the app sees it.
    pub async fn me(&self, server: &impl Target) -> Value {
        json_ok(self.get(server, "/me").await).await
    }

    /// `POST /sign-in` with the demo password (configuration/dev.yml).
    pub async fn sign_in(&self, server: &impl Target, username: &str) -> Response {
        let body = serde_json::json!({ "username": username, "password": "let-me-in" });
        self.post_json(server, "/sign-in", &body).await
    }

    /// `GET /devices`, page after page (each must answer 200): all the signed-in user's
    /// sessions, in the order the pages list them.
    pub async fn devices(&self, server: &impl Target) -> Vec<Value> {
        let mut devices = Vec::new();
        let mut after = None;
        loop {
            let (page, next) = self.devices_page(server, after.as_deref()).await;
            assert!(page.len() <= DEVICES_PAGE_SIZE, "{page:?}");
            devices.extend(page);
            match next {
                Some(next) => after = Some(next),
                None => return devices,
            }
        }
    }

    /// One page of `GET /devices` (`?after=<cursor>` when given), which must answer 200: its
    /// devices, and the cursor of the next page if its `Link` header names one.
    pub async fn devices_page(
        &self,
        server: &impl Target,
        after: Option<&str>,
    ) -> (Vec<Value>, Option<String>) {
        let path = match after {
            Some(cursor) => format!("/devices?after={cursor}"),
            None => "/devices".to_owned(),
        };
        let response = self.get(server, &path).await;
        let next = response.headers().get(LINK).map(|link| {
            let link = link.to_str().expect("an ASCII Link header");
            let cursor = link
                .strip_prefix("</devices?after=")
                .and_then(|rest| rest.strip_suffix(">; rel=\"next\""))
                .unwrap_or_else(|| panic!("not a link to the next page: {link}"));
            cursor.to_owned()
        });
        match json_ok(response).await {
            Value::Array(devices) => (devices, next),
            other => panic!("GET {path} answered {other}, not an array"),
        }
    }

    /// The session cookie's value in the jar, if any.
    pub fn session_cookie(&self, server: &impl Target) -> Option<String> {
        let url = server.url("/").parse().expect("a URL");
        let header = self.jar.cookies(&url)?;
        let header = header.to_str().expect("an ASCII Cookie header").to_owned();
        header.split("; ").find_map(|pair| {
            pair.strip_prefix(&format!("{COOKIE_NAME}="))
                .map(str::to_owned)
        })
    }
}

/// Sends `GET /me` with exactly this session cookie value (no jar): a replayed or forged cookie.
pub async fn me_with_cookie(server: &impl Target, cookie_value: &str) -> Response {
    Client::new()
        .get(server.url("/me"))
        .header(COOKIE, format!("{COOKIE_NAME}={cookie_value}"))
        .send()
        .await
        .expect("GET /me")
}

/// Asserts 200 and returns the JSON body.
pub async fn json_ok(response: Response) -> Value {
    let status = response.status();
    let body = response.text().await.expect("a body");
    assert_eq!(status, StatusCode::OK, "body: {body}");
    serde_json::from_str(&body).unwrap_or_else(|e| panic!("not JSON ({e}): {body}"))
}

/// The `Set-Cookie` headers of a response for the session cookie.
pub fn session_set_cookies(response: &Response) -> Vec<String> {
    response
        .headers()
        .get_all(SET_COOKIE)
        .iter()
        .map(|v| v.to_str().expect("an ASCII Set-Cookie").to_owned())
        .filter(|v| v.starts_with(&format!("{COOKIE_NAME}=")))
        .collect()
}

/// Whether a `Set-Cookie` header removes the cookie (it expires at once).
pub fn is_removal(set_cookie: &str) -> bool {
    set_cookie.contains("Max-Age=0") || set_cookie.contains("01 Jan 1970")
}

/// The `SessionId` of this UUID (`SessionId` has no constructor from a UUID; its serde form is
/// the UUID).
pub fn session_id_of(id: Uuid) -> SessionId {
    serde_json::from_value(Value::String(id.to_string())).expect("an id")
}

/// The handle the store gives the session whose id is `id`, as `GET /devices` shows it.
pub fn handle_of(id: Uuid) -> String {
    pavex_session_sea_orm::SessionHandle::of(&session_id_of(id)).to_string()
}

/// The session id inside a session cookie: the test decrypts the cookie with the server's key.
pub fn session_id(cookie_value: &str, cookie_key: &str) -> Uuid {
    let mut config = ProcessorConfig::default();
    config.crypto_rules = vec![CryptoRule {
        cookie_names: vec![COOKIE_NAME.to_owned()],
        algorithm: CryptoAlgorithm::Encryption,
        key: Key::try_from(cookie_key.as_bytes()).expect("a valid key"),
        fallbacks: vec![],
    }];
    let processor: Processor = config.into();
    let header = format!("{COOKIE_NAME}={cookie_value}");
    let mut cookies = RequestCookies::new();
    cookies
        .extend_from_header(&header, &processor)
        .expect("the cookie decrypts with the server's key");
    let cookie = cookies.get(COOKIE_NAME).expect("the session cookie");
    let wire: Value = serde_json::from_str(cookie.value()).expect("the cookie holds JSON");
    let id = wire["0"].as_str().expect("the session id, under \"0\"");
    Uuid::parse_str(id).expect("a UUID")
}

/// Whether `finalize` failed because the store refused to create the session again: its
/// sign-in was ended (`pavex_session_sea_orm::SignedOut`, the cause of `CreateError::Other`).
pub fn is_signed_out(
    result: &Result<Option<pavex::cookie::ResponseCookie<'static>>, FinalizeError>,
) -> bool {
    matches!(
        result,
        Err(FinalizeError::SyncErr(SyncError::CreateError(CreateError::Other(e))))
            if e.is::<SignedOut>()
    )
}

/// The same cookie value with one character changed (still valid base64url).
pub fn tampered(cookie_value: &str) -> String {
    let mut bytes = cookie_value.as_bytes().to_vec();
    let i = bytes.len() / 2;
    bytes[i] = if bytes[i] == b'A' { b'B' } else { b'A' };
    String::from_utf8(bytes).expect("ASCII")
}

/// The prefix of the line the server prints when it has stopped its expiry cleaner.
const CLEANER_REPORT: &str = "expiry cleaner stopped: ";

/// What the cleaner's report line says it did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CleanerReport {
    /// Expired sessions deleted.
    pub deleted: u64,
    /// Of those, the ones that had reached the absolute lifetime
    /// (`CleanupReport::ended_at_lifetime`).
    pub at_lifetime: u64,
}

/// The cleaner's report: `<deleted> expired sessions deleted (<at lifetime> at the absolute
/// lifetime) in ...`. The report must be the server's last line: the cleaner stops after the
/// HTTP server.
pub fn cleaner_report(output: &[String]) -> CleanerReport {
    let report = output
        .last()
        .and_then(|line| line.strip_prefix(CLEANER_REPORT))
        .unwrap_or_else(|| panic!("the last line is not the cleaner's report: {output:#?}"));
    report
        .split_once(" expired sessions deleted (")
        .and_then(|(deleted, rest)| {
            let (at_lifetime, _) = rest.split_once(" at the absolute lifetime) in ")?;
            Some(CleanerReport {
                deleted: deleted.parse().ok()?,
                at_lifetime: at_lifetime.parse().ok()?,
            })
        })
        .unwrap_or_else(|| panic!("not a cleaner report: {report}"))
}

/// Checks the server's stdout: besides `listening on` and the cleaner's report, only request
/// log lines, `<METHOD> <path> <status> <milliseconds> ms`, none of which holds any of
/// `secrets` (cookie values, session ids, state values). Returns how many request lines there
/// are.
pub fn request_log_lines(output: &[String], secrets: &[String]) -> usize {
    let mut requests = 0;
    for line in output {
        for secret in secrets {
            assert!(!line.contains(secret.as_str()), "{secret:?} logged: {line}");
        }
        if line.starts_with("listening on ") || line.starts_with(CLEANER_REPORT) {
            continue;
        }
        let fields: Vec<&str> = line.split(' ').collect();
        let well_formed = match fields[..] {
            [method, path, status, ms, "ms"] => {
                method.chars().all(|c| c.is_ascii_uppercase())
                    && path.starts_with('/')
                    && !path.contains('?')
                    && status.len() == 3
                    && status.parse::<u16>().is_ok()
                    && ms.parse::<f64>().is_ok()
            }
            _ => false,
        };
        assert!(well_formed, "not a request log line: {line}");
        requests += 1;
    }
    requests
}
