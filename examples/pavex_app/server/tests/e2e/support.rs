//! What the end-to-end test drives: a fresh database per backend, the server binary as a child
//! process, and browsers (HTTP clients with a cookie jar).
use pavex::cookie::{
    Key, Processor, ProcessorConfig, RequestCookies,
    config::{CryptoAlgorithm, CryptoRule},
};
use pavex_session::{SessionId, SessionStore};
use pavex_session_sea_orm::{SeaOrmSessionStore, entity::sessions};
use reqwest::{
    Client, Response, StatusCode,
    cookie::{CookieStore, Jar},
    header::{COOKIE, SET_COOKIE},
};
use sea_orm::{
    ColumnTrait, ConnectionTrait, Database, DatabaseConnection, EntityTrait, PaginatorTrait,
    QueryFilter, prelude::Uuid,
};
use serde_json::Value;
use std::{
    io::{BufRead, BufReader},
    path::PathBuf,
    process::{Child, Command, ExitStatus, Stdio},
    sync::{Arc, mpsc},
    time::Duration,
};

/// The session cookie's name (`session.cookie.name` in configuration/base.yml).
pub const COOKIE_NAME: &str = "id";

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
        Self {
            url,
            db,
            store,
            cleanup,
        }
    }

    /// How many session records the table holds (live or not).
    pub async fn session_count(&self) -> u64 {
        sessions::Entity::find()
            .count(&self.db)
            .await
            .expect("count the sessions")
    }

    /// The server-side state stored for this session id, as a JSON object, if the record is
    /// live (read through the library's own `load`), without the `device` mark the sign-in
    /// adds (random; [`device_mark`](Self::device_mark) reads it).
    pub async fn record(&self, id: Uuid) -> Option<Value> {
        let mut state = self.full_record(id).await?;
        state
            .as_object_mut()
            .expect("a JSON object")
            .remove("device");
        Some(state)
    }

    /// The `device` mark stored in this live session's state.
    pub async fn device_mark(&self, id: Uuid) -> Option<Value> {
        self.full_record(id).await?.get("device").cloned()
    }

    async fn full_record(&self, id: Uuid) -> Option<Value> {
        let record = self
            .store
            .load(&session_id_of(id))
            .await
            .expect("load a session");
        record.map(|record| serde_json::to_value(record.state).expect("a JSON object"))
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
}

impl Server {
    /// Starts the server on `database_url` with the dev profile and the given cookie key, on a
    /// port the operating system picks (`PX_SERVER__PORT=0`), and waits until it listens.
    pub fn start(database_url: &str, cookie_key: &str) -> Self {
        // The server reads `configuration/` from its working directory: the workspace root.
        let workspace = concat!(env!("CARGO_MANIFEST_DIR"), "/..");
        let crypto_rules = format!(
            r#"[{{cookie_names=["{COOKIE_NAME}"],algorithm="encryption",key="{cookie_key}"}}]"#
        );
        let mut child = Command::new(env!("CARGO_BIN_EXE_server"))
            .current_dir(workspace)
            .env("PX_PROFILE", "dev")
            .env("PX_SERVER__IP", "127.0.0.1")
            .env("PX_SERVER__PORT", "0")
            .env("PX_SERVER__GRACEFUL_SHUTDOWN_SECONDS", "5")
            .env("PX_DATABASE__URL", database_url)
            .env("PX_COOKIES__CRYPTO_RULES", crypto_rules)
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start the server binary");
        let stdout = child.stdout.take().expect("the server's stdout");
        let (ready, announced) = mpsc::channel();
        std::thread::spawn(move || {
            let mut ready = Some(ready);
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                eprintln!("[server] {line}");
                if let Some(address) = line.strip_prefix("listening on ")
                    && let Some(ready) = ready.take()
                {
                    let _ = ready.send(address.to_owned());
                }
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
        Server { child, base }
    }

    /// Stops the server with SIGTERM, as a deployment does, and returns its exit status.
    pub fn stop(mut self) -> ExitStatus {
        let pid = self.child.id().to_string();
        let sent = Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .expect("run kill");
        assert!(sent.success(), "kill -TERM {pid} failed");
        for _ in 0..300 {
            if let Some(status) = self.child.try_wait().expect("wait for the server") {
                return status;
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

    /// `GET /devices`, which must answer 200: the signed-in user's sessions.
    pub async fn devices(&self, server: &impl Target) -> Vec<Value> {
        match json_ok(self.get(server, "/devices").await).await {
            Value::Array(devices) => devices,
            other => panic!("GET /devices answered {other}, not an array"),
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

/// The same cookie value with one character changed (still valid base64url).
pub fn tampered(cookie_value: &str) -> String {
    let mut bytes = cookie_value.as_bytes().to_vec();
    let i = bytes.len() / 2;
    bytes[i] = if bytes[i] == b'A' { b'B' } else { b'A' };
    String::from_utf8(bytes).expect("ASCII")
}
