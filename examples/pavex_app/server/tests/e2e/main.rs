//! The example app end to end: the real server binary (built from the pavexc-generated
//! `server_sdk`), on a free loopback port, on SQLite, PostgreSQL and MariaDB in turn, driven by
//! real HTTP clients that keep cookies like a browser.
//!
//! Each backend gets a fresh database (`PAVEX_SESSION_TEST_POSTGRES_URL`,
//! `PAVEX_SESSION_TEST_MYSQL_URL`, defaults `postgres://postgres@127.0.0.1:5432/test` and
//! `mysql://root@127.0.0.1:3306/test`; SQLite: a temporary file), dropped at the end. An
//! unreachable server fails its test. Run them with `scripts/test-pavex-app.sh` at the
//! repository's root.
//!
//! Two tests per backend, each on its own database and server: the sign-in flow (`sqlite`,
//! `postgres`, `mysql`) and the session policy with "sign out everywhere" (`*_session_policy`).
mod support;

use reqwest::StatusCode;
use serde_json::{Value, json};
use std::time::{Duration, Instant};
use support::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite() {
    sign_in_flow(Backend::Sqlite).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres() {
    sign_in_flow(Backend::Postgres).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mysql() {
    sign_in_flow(Backend::MySql).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_session_policy() {
    session_policy(Backend::Sqlite).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_session_policy() {
    session_policy(Backend::Postgres).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mysql_session_policy() {
    session_policy(Backend::MySql).await
}

/// How many browsers sign in at once.
const CONCURRENT_CLIENTS: usize = 50;

async fn sign_in_flow(backend: Backend) {
    let database = TestDatabase::fresh(backend).await;
    let key = random_cookie_key();
    // 0. The server checks the sessions table before it listens (the store's `checked()`):
    // without `migrate_on_start`, a missing table, and a table of that name that is not the
    // store's, stop it with the reason.
    for table in [
        None,
        Some("CREATE TABLE sessions (id VARCHAR(64) PRIMARY KEY, data TEXT)"),
    ] {
        if let Some(create) = table {
            database.execute(create).await;
        }
        let (status, stderr) = Server::refused(&database.url, &key);
        assert!(!status.success(), "{status}: {stderr}");
        assert!(
            stderr.contains("Refusing to start: the session store cannot use its sessions table"),
            "{stderr}"
        );
        eprintln!("[refused server] {stderr}");
    }
    database.execute("DROP TABLE sessions").await;
    // The server creates the table at start-up (`database.migrate_on_start`).
    let mut server = Server::start(&database.url, &key);
    assert_eq!(database.session_count().await, 0);
    // The app's own route on the pool it shares with the store.
    let health = Browser::new().get(&server, "/health").await;
    assert_eq!(health.status(), StatusCode::NO_CONTENT);

    // 1. Anonymous: no session, no cookie, nothing stored.
    let alice = Browser::new();
    let response = alice.get(&server, "/me").await;
    assert!(session_set_cookies(&response).is_empty());
    assert_eq!(
        json_ok(response).await,
        json!({ "user_id": null, "cart": [] })
    );
    assert_eq!(alice.session_cookie(&server), None);
    assert_eq!(database.session_count().await, 0);

    // 2. An anonymous cart: the first write creates the session (record and cookie).
    let account = json_ok(alice.post(&server, "/cart/apple").await).await;
    assert_eq!(account, json!({ "user_id": null, "cart": ["apple"] }));
    let anonymous_cookie = alice.session_cookie(&server).expect("a session cookie");
    let anonymous_id = session_id(&anonymous_cookie, &key);
    assert_eq!(
        database.record(anonymous_id).await,
        Some(json!({ "cart": ["apple"] }))
    );
    assert_eq!(database.session_count().await, 1);
    // The server logged the request, one line: method, path, status, duration.
    let line = server.wait_for_line("POST /cart/apple 200 ");
    assert!(line.ends_with(" ms"), "{line}");
    // ... read back on the next request, under the same id.
    assert_eq!(
        alice.me(&server).await,
        json!({ "user_id": null, "cart": ["apple"] })
    );
    let cookie = alice.session_cookie(&server).expect("a session cookie");
    assert_eq!(session_id(&cookie, &key), anonymous_id);

    // 3. Wrong credentials: 401, and the session is untouched.
    let wrong = json!({ "username": "alice", "password": "guess" });
    let response = alice.post_json(&server, "/sign-in", &wrong).await;
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    server.wait_for_line("POST /sign-in 401 ");
    let cookie = alice.session_cookie(&server).expect("a session cookie");
    assert_eq!(session_id(&cookie, &key), anonymous_id);
    assert_eq!(
        alice.me(&server).await,
        json!({ "user_id": null, "cart": ["apple"] })
    );

    // 4. Sign in: a new session id (`cycle_id`), the user stored, the cart kept.
    let response = alice.sign_in(&server, "alice").await;
    assert_eq!(session_set_cookies(&response).len(), 1);
    assert_eq!(
        json_ok(response).await,
        json!({ "user_id": "alice", "cart": ["apple"] })
    );
    let signed_in_cookie = alice.session_cookie(&server).expect("a session cookie");
    assert_ne!(signed_in_cookie, anonymous_cookie);
    let alice_id = session_id(&signed_in_cookie, &key);
    assert_ne!(
        alice_id, anonymous_id,
        "the sign-in must rotate the session id"
    );
    assert_eq!(
        database.record(alice_id).await,
        Some(json!({ "user_id": "alice", "cart": ["apple"] }))
    );
    assert_eq!(database.record(anonymous_id).await, None);
    assert_eq!(database.session_count().await, 1);
    // The state is read back on the next request.
    assert_eq!(
        alice.me(&server).await,
        json!({ "user_id": "alice", "cart": ["apple"] })
    );

    // 5. The cookie from before the sign-in finds no session any more: anonymous, and the
    // server tells the client to drop it. Alice's session is unharmed.
    let response = me_with_cookie(&server, &anonymous_cookie).await;
    let set_cookies = session_set_cookies(&response);
    assert!(
        set_cookies.len() == 1 && is_removal(&set_cookies[0]),
        "{set_cookies:?}"
    );
    assert_eq!(
        json_ok(response).await,
        json!({ "user_id": null, "cart": [] })
    );
    assert!(database.record(alice_id).await.is_some());

    // 6. A write that changes the state, read back on the next request.
    assert_eq!(
        json_ok(alice.post(&server, "/cart/pear").await).await,
        json!({ "user_id": "alice", "cart": ["apple", "pear"] })
    );
    assert_eq!(
        alice.me(&server).await,
        json!({ "user_id": "alice", "cart": ["apple", "pear"] })
    );
    let cookie = alice.session_cookie(&server).expect("a session cookie");
    assert_eq!(session_id(&cookie, &key), alice_id);

    // 7. A tampered cookie is anonymous; so is a forged one that names Alice's session id in
    // clear (knowing an id is not enough without the key).
    let response = me_with_cookie(&server, &tampered(&cookie)).await;
    assert_eq!(
        json_ok(response).await,
        json!({ "user_id": null, "cart": [] })
    );
    let forged = format!("%7B%220%22%3A%22{alice_id}%22%7D"); // {"0":"<id>"}
    let response = me_with_cookie(&server, &forged).await;
    assert_eq!(
        json_ok(response).await,
        json!({ "user_id": null, "cart": [] })
    );
    // The genuine cookie still works, unchanged by those requests.
    assert_eq!(
        me_with_cookie(&server, &cookie)
            .await
            .json::<serde_json::Value>()
            .await
            .expect("JSON"),
        json!({ "user_id": "alice", "cart": ["apple", "pear"] })
    );

    // 8. Many browsers at once: each signs in, fills its cart and sees only its own state.
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..CONCURRENT_CLIENTS {
        let base = server.base.clone();
        tasks.spawn(async move {
            let server = &base;
            let browser = Browser::new();
            let user = format!("user-{i}");
            let item = format!("item-{i}");
            json_ok(browser.post(server, &format!("/cart/{item}")).await).await;
            let response = browser.sign_in(server, &user).await;
            assert_eq!(
                json_ok(response).await,
                json!({ "user_id": user, "cart": [item] })
            );
            let extra = format!("extra-{i}");
            json_ok(browser.post(server, &format!("/cart/{extra}")).await).await;
            assert_eq!(
                browser.me(server).await,
                json!({ "user_id": user, "cart": [item, extra] })
            );
            (i, browser)
        });
    }
    let mut browsers = Vec::new();
    while let Some(joined) = tasks.join_next().await {
        browsers.push(joined.expect("a client task"));
    }
    browsers.sort_by_key(|(i, _)| *i);
    assert_eq!(browsers.len(), CONCURRENT_CLIENTS);
    // One record per signed-in browser plus Alice's: no anonymous record left behind.
    assert_eq!(
        database.session_count().await,
        CONCURRENT_CLIENTS as u64 + 1
    );
    // Each browser's cookie holds a session id of its own, whose record holds its own state.
    let mut ids = std::collections::HashSet::new();
    for (i, browser) in &browsers {
        let cookie = browser.session_cookie(&server).expect("a session cookie");
        let id = session_id(&cookie, &key);
        assert!(ids.insert(id), "two browsers share a session id");
        let expected = json!({
            "user_id": format!("user-{i}"),
            "cart": [format!("item-{i}"), format!("extra-{i}")],
        });
        assert_eq!(database.record(id).await, Some(expected));
    }

    // 9. Restart: stop the server (SIGTERM) and start a new process on the same database.
    // Every session still loads, through the cookies the browsers kept.
    let Stopped { status, output } = server.stop();
    assert!(status.success(), "the server exited with {status}");
    // It logged one line per request and nothing of the sessions: no cookie, no session id, no
    // state value.
    let mut secrets = vec![
        anonymous_cookie.clone(),
        signed_in_cookie.clone(),
        cookie.clone(),
        "alice".to_owned(), // the user id, in the state
    ];
    for id in [anonymous_id, alice_id] {
        secrets.extend([id.to_string(), id.simple().to_string()]);
    }
    let requests = request_log_lines(&output, &secrets);
    assert!(
        requests >= 4 * CONCURRENT_CLIENTS + 10,
        "{requests} request lines"
    );
    // On SIGTERM it stopped its expiry cleaner and printed the report: nothing had expired.
    assert_eq!(
        cleaner_report(&output),
        CleanerReport {
            deleted: 0,
            at_lifetime: 0
        }
    );
    server = Server::start(&database.url, &key);
    assert_eq!(
        alice.me(&server).await,
        json!({ "user_id": "alice", "cart": ["apple", "pear"] })
    );
    for (i, browser) in &browsers {
        assert_eq!(
            browser.me(&server).await,
            json!({ "user_id": format!("user-{i}"), "cart": [format!("item-{i}"), format!("extra-{i}")] })
        );
    }

    // 10. Sign out: the record is deleted, the cookie removed; the old cookie finds nothing.
    let before_sign_out = alice.session_cookie(&server).expect("a session cookie");
    let response = alice.post(&server, "/sign-out").await;
    assert_eq!(response.status(), StatusCode::NO_CONTENT);
    let set_cookies = session_set_cookies(&response);
    assert!(
        set_cookies.len() == 1 && is_removal(&set_cookies[0]),
        "{set_cookies:?}"
    );
    assert_eq!(alice.session_cookie(&server), None);
    assert_eq!(database.record(alice_id).await, None);
    assert_eq!(database.session_count().await, CONCURRENT_CLIENTS as u64);
    assert_eq!(
        alice.me(&server).await,
        json!({ "user_id": null, "cart": [] })
    );
    assert_eq!(
        json_ok(me_with_cookie(&server, &before_sign_out).await).await,
        json!({ "user_id": null, "cart": [] })
    );
    // The others are still signed in.
    let (i, browser) = &browsers[0];
    assert_eq!(
        browser.me(&server).await["user_id"],
        json!(format!("user-{i}"))
    );
    // An anonymous browser has no device list.
    let response = alice.get(&server, "/devices").await;
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);

    // 11. Who is signed in where: Carol signs in on a laptop, a phone and a tablet.
    devices(&server, &database, &key, &browsers[0].1).await;

    // 12. The expiry cleaner deletes expired sessions' rows; live sessions stay.
    let expired = cleaner(&server, &database, &browsers[0]).await;

    let Stopped { status, output } = server.stop();
    assert!(status.success(), "the server exited with {status}");
    request_log_lines(&output, &secrets);
    // The cleaner of this process deleted exactly the sessions that expired, all of them idle
    // (a 2 s TTL), none at the absolute lifetime.
    assert_eq!(
        cleaner_report(&output),
        CleanerReport {
            deleted: expired,
            at_lifetime: 0
        }
    );
}

/// The expiry cleaner the server runs beside the HTTP server (`session_cleanup` in the
/// configuration; a round every [`CLEANUP_PAUSE_SECONDS`] in this test): sessions that expire
/// lose their row within a round, a live one stays and loads, and `signed_in` (user-`i`'s
/// browser) is still signed in. Returns how many sessions expired.
async fn cleaner(server: &Server, database: &TestDatabase, signed_in: &(usize, Browser)) -> u64 {
    // Sessions with a 2 s TTL: live when checked, expired soon after. Created through the
    // library's store, as the server would.
    let mut expiring = Vec::new();
    for _ in 0..3 {
        let id = database.create_session(Duration::from_secs(2)).await;
        assert_eq!(database.record(id).await, Some(json!({ "cart": ["old"] })));
        expiring.push(id);
    }
    let live = database.create_session(Duration::from_secs(3600)).await;
    // Their deadline, then the next round of the cleaner: gone from the table, not merely
    // invisible.
    let deadline = Instant::now() + Duration::from_secs(20);
    for &id in &expiring {
        while database.row_exists(id).await {
            assert!(
                Instant::now() < deadline,
                "the cleaner left the expired {id}"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
    assert_eq!(
        database.record(live).await,
        Some(json!({ "cart": ["old"] }))
    );
    let (i, browser) = signed_in;
    assert_eq!(
        browser.me(server).await["user_id"],
        json!(format!("user-{i}"))
    );
    expiring.len() as u64
}

/// The device list and signing devices out (`GET /devices`, `POST /devices/{handle}/sign-out`,
/// `POST /devices/sign-out-others`), for a user signed in on three browsers, the list in pages
/// of [`DEVICES_PAGE_SIZE`] (2). `stranger` is another user's signed-in browser.
async fn devices(server: &Server, database: &TestDatabase, key: &str, stranger: &Browser) {
    let laptop = Browser::new();
    let phone = Browser::with_user_agent("Phone/1.0");
    let tablet = Browser::with_user_agent("Tablet/1.0");
    for browser in [&laptop, &phone, &tablet] {
        json_ok(browser.sign_in(server, "carol").await).await;
    }
    let id_of =
        |browser: &Browser| session_id(&browser.session_cookie(server).expect("a cookie"), key);
    let [laptop_id, phone_id, tablet_id] = [id_of(&laptop), id_of(&phone), id_of(&tablet)];
    // The sign-in stored a device mark (the User-Agent) and a sign-in id of its own per browser,
    // which the store copied into its `sign_in` column.
    let phone_mark = database.device_mark(phone_id).await.expect("a device mark");
    assert_eq!(phone_mark, json!({ "user_agent": "Phone/1.0" }));
    let laptop_mark = database
        .device_mark(laptop_id)
        .await
        .expect("a device mark");
    assert_eq!(laptop_mark, json!({ "user_agent": null }));
    let sign_in_ids = [
        database.sign_in_id(laptop_id).await.expect("a sign-in id"),
        database.sign_in_id(phone_id).await.expect("a sign-in id"),
        database.sign_in_id(tablet_id).await.expect("a sign-in id"),
    ];
    assert!(sign_in_ids[0] != sign_in_ids[1] && sign_in_ids[1] != sign_in_ids[2]);
    assert_eq!(
        database.sign_in_column(phone_id).await,
        Some(Some(sign_in_ids[1].clone()))
    );
    // The sign-in wrote the subject: three rows of Carol's in the subject column.
    assert_eq!(database.rows_of_subject("carol").await, 3);

    // The list comes in pages of two, newest sign-in first: the first page names the next in
    // its `Link` header, the second is the last. A cursor that is not one is a `400`.
    let (first, next) = tablet.devices_page(server, None).await;
    assert_eq!(first.len(), DEVICES_PAGE_SIZE);
    let next = next.expect("a link to the second page");
    let (second, last) = tablet.devices_page(server, Some(&next)).await;
    assert_eq!(second.len(), 1, "{second:?}");
    assert_eq!(last, None);
    let response = tablet.get(server, "/devices?after=not-a-cursor").await;
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    let signed_in_at = |device: &Value| {
        chrono::DateTime::parse_from_rfc3339(device["signed_in_at"].as_str().expect("a time"))
            .expect("RFC 3339")
    };
    let listed: Vec<&Value> = first.iter().chain(&second).collect();
    assert!(
        listed
            .windows(2)
            .all(|pair| signed_in_at(pair[0]) >= signed_in_at(pair[1])),
        "{listed:?}"
    );
    // The tablet signed in last: it is on the first page, the laptop on the second.
    assert_eq!(first[0]["handle"], json!(handle_of(tablet_id)));
    assert_eq!(first[0]["current"], json!(true));
    assert_eq!(second[0]["handle"], json!(handle_of(laptop_id)));

    // Each browser sees the same three sessions across the pages, its own marked current
    // (the laptop's on the second page); a handle is the store's handle of that session (the
    // hash of its id, not the id).
    let expected_handles = {
        let mut handles = vec![
            handle_of(laptop_id),
            handle_of(phone_id),
            handle_of(tablet_id),
        ];
        handles.sort();
        handles
    };
    for (browser, id, user_agent) in [
        (&laptop, laptop_id, Value::Null),
        (&phone, phone_id, json!("Phone/1.0")),
        (&tablet, tablet_id, json!("Tablet/1.0")),
    ] {
        let devices = browser.devices(server).await;
        let mut handles: Vec<String> = devices
            .iter()
            .map(|d| d["handle"].as_str().expect("a handle").to_owned())
            .collect();
        handles.sort();
        assert_eq!(handles, expected_handles);
        let current: Vec<&Value> = devices
            .iter()
            .filter(|d| d["current"] == json!(true))
            .collect();
        assert_eq!(current.len(), 1, "{devices:?}");
        assert_eq!(current[0]["handle"], json!(handle_of(id)));
        assert_eq!(current[0]["user_agent"], user_agent);
        assert!(
            !current[0]["handle"]
                .as_str()
                .unwrap_or_default()
                .contains(&id.simple().to_string())
        );
        for device in &devices {
            let time = |field: &str| {
                chrono::DateTime::parse_from_rfc3339(device[field].as_str().expect(field))
                    .unwrap_or_else(|e| panic!("{field}: {e}"))
            };
            assert!(time("signed_in_at") <= time("last_active_at"), "{device}");
            assert!(time("last_active_at") < time("expires_at"), "{device}");
        }
    }
    // Another user sees only their own session.
    let theirs = stranger.devices(server).await;
    assert_eq!(theirs.len(), 1);
    assert!(
        !expected_handles.contains(&theirs[0]["handle"].as_str().expect("a handle").to_owned())
    );

    // "Sign out this device": the laptop signs the phone out. The phone's next request is
    // anonymous, and the handle names nothing any more.
    let phone_path = format!("/devices/{}/sign-out", handle_of(phone_id));
    let response = laptop.post(server, &phone_path).await;
    assert_eq!(response.status(), StatusCode::NO_CONTENT);
    assert_eq!(database.record(phone_id).await, None);
    assert_eq!(
        phone.me(server).await,
        json!({ "user_id": null, "cart": [] })
    );
    assert_eq!(
        laptop.post(server, &phone_path).await.status(),
        StatusCode::NOT_FOUND
    );
    // Another user cannot end Carol's sessions by their handles, nor can garbage.
    let tablet_path = format!("/devices/{}/sign-out", handle_of(tablet_id));
    assert_eq!(
        stranger.post(server, &tablet_path).await.status(),
        StatusCode::NOT_FOUND
    );
    assert!(database.record(tablet_id).await.is_some());
    let response = laptop.post(server, "/devices/not-a-handle/sign-out").await;
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    assert_eq!(laptop.devices(server).await.len(), 2);

    // "Sign out everywhere else", from the tablet, with requests in flight on the sessions it
    // ends. Two are replayed here with pavex_session's own `Session`, so that they load their
    // session before the sign-out and write after it: one only cycles its id (pavex_session's
    // `change_id` finds nothing and falls back to `create`), one also adds to the cart (it
    // deletes the old id, then `create`s the new one). And Carol has more sessions than one
    // page of the store (`MAX_PAGE_SIZE`, 1 000) holds, all newer than the tablet's: the route
    // finds the tablet's own session beyond the first page.
    let phone_again = Browser::with_user_agent("Phone/1.0");
    json_ok(phone_again.sign_in(server, "carol").await).await;
    let phone_again_id = id_of(&phone_again);
    let cycling = database.in_flight(laptop_id);
    let mut shopping = database.in_flight(phone_again_id);
    for request in [&cycling, &shopping] {
        let user: Option<String> = request.get("user_id").await.expect("load the session");
        assert_eq!(user.as_deref(), Some("carol"));
    }
    shopping
        .insert("cart", vec!["late item"])
        .await
        .expect("change the state");
    let extra = pavex_session_sea_orm::MAX_PAGE_SIZE as u64;
    database.create_sessions_of("carol", extra as usize).await;
    assert_eq!(database.rows_of_subject("carol").await, 3 + extra);

    let response = tablet.post(server, "/devices/sign-out-others").await;
    assert_eq!(json_ok(response).await, json!({ "ended": 2 + extra }));
    assert_eq!(database.record(laptop_id).await, None);
    assert_eq!(database.rows_of_subject("carol").await, 1);
    // The requests in flight end: the store refuses to create their sessions again (the
    // server's `finalize_session` would fail the same way).
    for mut request in [cycling, shopping] {
        request.cycle_id();
        let finalized = request.finalize().await;
        assert!(is_signed_out(&finalized), "{:?}", finalized.err());
    }
    assert_eq!(database.rows_of_subject("carol").await, 1);
    // Over HTTP: the other browsers' next requests are anonymous, and a route that cycles the
    // session id does not bring the laptop's session back either.
    assert_eq!(
        laptop.me(server).await,
        json!({ "user_id": null, "cart": [] })
    );
    assert_eq!(
        phone_again.me(server).await,
        json!({ "user_id": null, "cart": [] })
    );
    assert_eq!(
        json_ok(laptop.post(server, "/me/renew-id").await).await,
        json!({ "user_id": null, "cart": [] })
    );
    assert_eq!(
        laptop.me(server).await,
        json!({ "user_id": null, "cart": [] })
    );
    assert_eq!(database.rows_of_subject("carol").await, 1);
    // The tablet stays signed in, alone in the list; it can renew its own id.
    assert_eq!(tablet.me(server).await["user_id"], json!("carol"));
    let left = tablet.devices(server).await;
    assert_eq!(left.len(), 1);
    assert_eq!(left[0]["handle"], json!(handle_of(tablet_id)));
    assert_eq!(
        stranger.devices(server).await.len(),
        1,
        "the other user is untouched"
    );
    assert_eq!(
        json_ok(tablet.post(server, "/me/renew-id").await).await,
        json!({ "user_id": "carol", "cart": [] })
    );
    let tablet_id = id_of(&tablet);
    assert_eq!(database.rows_of_subject("carol").await, 1);
    assert_eq!(
        tablet.devices(server).await[0]["handle"],
        json!(handle_of(tablet_id))
    );

    // Signing in again on the laptop is a new sign-in: it is not refused.
    json_ok(laptop.sign_in(server, "carol").await).await;
    assert_eq!(laptop.me(server).await["user_id"], json!("carol"));
    assert_eq!(tablet.devices(server).await.len(), 2);

    // The tablet signs itself out by its own handle: like `POST /sign-out`.
    let tablet_path = format!("/devices/{}/sign-out", handle_of(tablet_id));
    let response = tablet.post(server, &tablet_path).await;
    assert_eq!(response.status(), StatusCode::NO_CONTENT);
    assert_eq!(tablet.session_cookie(server), None);
    assert_eq!(database.rows_of_subject("carol").await, 1);
    assert_eq!(laptop.devices(server).await.len(), 1);
}

/// `session_policy.max_devices_per_user` in configuration/base.yml.
const MAX_DEVICES: usize = 5;

/// `session_policy.absolute_lifetime_days` in configuration/base.yml: 30 days.
const ABSOLUTE_LIFETIME: Duration = Duration::from_secs(30 * 24 * 3600);

/// The session policy of configuration/base.yml (OWASP ASVS 7.1.2, 7.3.2) and "sign out
/// everywhere" (7.4.5), on a server of its own: a `0` in the policy stops the server at
/// start-up; a sixth sign-in signs the first device out; a session older than the absolute
/// lifetime ends at its next write, and the cleaner counts it as ended at the lifetime; "sign
/// out everywhere" ends every session of the user, the caller's included.
async fn session_policy(backend: Backend) {
    let database = TestDatabase::fresh(backend).await;
    let key = random_cookie_key();
    // 0. A policy of 0 devices (or 0 days) is a configuration error: the server exits at
    // start-up, before it listens, with the key in its message, and does not panic.
    for field in ["max_devices_per_user", "absolute_lifetime_days"] {
        let var = format!("PX_SESSION_POLICY__{}", field.to_uppercase());
        let (status, stderr) = Server::exits_before_listening(&database.url, &key, &[(&var, "0")]);
        assert!(!status.success(), "{status}: {stderr}");
        // The key as the environment variable spells it, in upper case.
        let key_named = format!("session_policy.{field}").to_uppercase();
        assert!(
            stderr.contains("Failed to load the configuration")
                && stderr.contains(&key_named)
                && stderr.contains("expected a nonzero u32"),
            "{stderr}"
        );
        assert!(!stderr.contains("panicked"), "{stderr}");
        eprintln!("[refused server] {stderr}");
    }

    let server = Server::start(&database.url, &key);
    cap_of_devices(&server, &database, &key).await;
    absolute_lifetime(&server, &database, &key).await;
    sign_out_everywhere(&server, &database, &key).await;

    let Stopped { status, output } = server.stop();
    assert!(status.success(), "the server exited with {status}");
    request_log_lines(&output, &[]);
    // The cleaner deleted one expired session: the one that reached the absolute lifetime.
    // The sessions the cap and "sign out everywhere" ended were deleted at once, not expired.
    assert_eq!(
        cleaner_report(&output),
        CleanerReport {
            deleted: 1,
            at_lifetime: 1
        }
    );
}

/// Six browsers sign in as the same user: the sixth sign-in ends the first browser's session
/// (`AtCap::EndOldest`); the list shows the five others; the first browser is signed out, the
/// others stay signed in. A new sign-in on the first browser works, and ends the then oldest.
async fn cap_of_devices(server: &Server, database: &TestDatabase, key: &str) {
    let browsers: Vec<Browser> = (1..=MAX_DEVICES + 1)
        .map(|i| Browser::with_user_agent(&format!("Device/{i}")))
        .collect();
    let id_of =
        |browser: &Browser| session_id(&browser.session_cookie(server).expect("a cookie"), key);
    let mut ids = Vec::new();
    for (i, browser) in browsers.iter().enumerate() {
        if i == MAX_DEVICES {
            // At the cap, and nobody signed out yet.
            assert_eq!(database.rows_of_subject("dave").await, MAX_DEVICES as u64);
            assert!(database.record(ids[0]).await.is_some());
        }
        let response = browser.sign_in(server, "dave").await;
        assert_eq!(
            json_ok(response).await,
            json!({ "user_id": "dave", "cart": [] })
        );
        ids.push(id_of(browser));
        // Sign-ins in distinct milliseconds, so that "the oldest" is not a tie.
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    assert_eq!(database.rows_of_subject("dave").await, MAX_DEVICES as u64);
    assert_eq!(database.record(ids[0]).await, None);
    assert!(!database.row_exists(ids[0]).await);

    // The sixth browser's list: exactly five, the second to the sixth, its own current.
    let listed = browsers[MAX_DEVICES].devices(server).await;
    assert_eq!(listed.len(), MAX_DEVICES, "{listed:?}");
    let handles = |devices: &[Value]| {
        let mut handles: Vec<String> = devices
            .iter()
            .map(|d| d["handle"].as_str().expect("a handle").to_owned())
            .collect();
        handles.sort();
        handles
    };
    let mut expected: Vec<String> = ids[1..].iter().map(|&id| handle_of(id)).collect();
    expected.sort();
    assert_eq!(handles(&listed), expected);
    let current: Vec<&Value> = listed
        .iter()
        .filter(|d| d["current"] == json!(true))
        .collect();
    assert_eq!(current.len(), 1, "{listed:?}");
    assert_eq!(current[0]["handle"], json!(handle_of(ids[MAX_DEVICES])));
    assert_eq!(current[0]["user_agent"], json!("Device/6"));

    // The first browser is signed out; the second to the sixth are signed in.
    assert_eq!(
        browsers[0].me(server).await,
        json!({ "user_id": null, "cart": [] })
    );
    assert_eq!(
        browsers[0].get(server, "/devices").await.status(),
        StatusCode::UNAUTHORIZED
    );
    for browser in &browsers[1..] {
        assert_eq!(browser.me(server).await["user_id"], json!("dave"));
    }

    // Signing in again on the first browser is a new sign-in, which always works: it ends the
    // oldest session then, the second browser's.
    json_ok(browsers[0].sign_in(server, "dave").await).await;
    let again = id_of(&browsers[0]);
    assert_eq!(browsers[0].me(server).await["user_id"], json!("dave"));
    assert_eq!(
        browsers[1].me(server).await,
        json!({ "user_id": null, "cart": [] })
    );
    assert_eq!(database.rows_of_subject("dave").await, MAX_DEVICES as u64);
    let mut expected: Vec<String> = ids[2..]
        .iter()
        .chain([&again])
        .map(|&id| handle_of(id))
        .collect();
    expected.sort();
    assert_eq!(
        handles(&browsers[MAX_DEVICES].devices(server).await),
        expected
    );
}

/// A signed-in session whose `created_at` is moved back past the absolute lifetime (30 days and
/// a second) still loads, since its deadline has not moved; its next write (a cart item) caps
/// the deadline at `created_at` + 30 days, in the past, so the request after is signed out.
/// The user's other session is untouched. The cleaner then deletes its row, within a round.
async fn absolute_lifetime(server: &Server, database: &TestDatabase, key: &str) {
    let old = Browser::new();
    let recent = Browser::new();
    for browser in [&old, &recent] {
        json_ok(browser.sign_in(server, "erin").await).await;
    }
    assert_eq!(
        json_ok(old.post(server, "/cart/apple").await).await,
        json!({ "user_id": "erin", "cart": ["apple"] })
    );
    let id = session_id(&old.session_cookie(server).expect("a cookie"), key);

    database
        .age_session(id, ABSOLUTE_LIFETIME + Duration::from_secs(1))
        .await;
    // Its deadline (the idle timeout, 24 hours) has not moved: it still loads.
    assert_eq!(
        database.record(id).await,
        Some(json!({ "user_id": "erin", "cart": ["apple"] }))
    );
    // A request that changes the state: the handler still saw the session, but the write
    // could not extend it past its lifetime.
    assert_eq!(
        json_ok(old.post(server, "/cart/pear").await).await,
        json!({ "user_id": "erin", "cart": ["apple", "pear"] })
    );
    assert_eq!(database.record(id).await, None);
    assert_eq!(old.me(server).await, json!({ "user_id": null, "cart": [] }));
    assert_eq!(recent.me(server).await["user_id"], json!("erin"));

    // Its row stays, expired, until the cleaner (a round every second here) deletes it; the
    // user's other session stays.
    let deadline = Instant::now() + Duration::from_secs(20);
    while database.row_exists(id).await {
        assert!(
            Instant::now() < deadline,
            "the cleaner left the session past its lifetime"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(database.rows_of_subject("erin").await, 1);
    assert_eq!(recent.me(server).await["user_id"], json!("erin"));
}

/// "Sign out everywhere" (`POST /devices/sign-out-everywhere`): a user on two browsers, one
/// calls it: both are signed out, the caller's cookie is removed, a request in flight on the
/// other cannot bring it back; another user stays signed in. `401` when anonymous.
async fn sign_out_everywhere(server: &Server, database: &TestDatabase, key: &str) {
    let anonymous = Browser::new();
    let response = anonymous.post(server, "/devices/sign-out-everywhere").await;
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);

    let laptop = Browser::new();
    let phone = Browser::with_user_agent("Phone/1.0");
    let stranger = Browser::new();
    for (browser, user) in [(&laptop, "frank"), (&phone, "frank"), (&stranger, "grace")] {
        json_ok(browser.sign_in(server, user).await).await;
    }
    json_ok(laptop.post(server, "/cart/book").await).await;
    let id_of =
        |browser: &Browser| session_id(&browser.session_cookie(server).expect("a cookie"), key);
    let (laptop_id, phone_id, stranger_id) = (id_of(&laptop), id_of(&phone), id_of(&stranger));
    let laptop_cookie = laptop.session_cookie(server).expect("a cookie");
    assert_eq!(database.rows_of_subject("frank").await, 2);
    // A request in flight on the phone's session: loaded before, written after.
    let mut in_flight = database.in_flight(phone_id);
    let user: Option<String> = in_flight.get("user_id").await.expect("load the session");
    assert_eq!(user.as_deref(), Some("frank"));

    let response = laptop.post(server, "/devices/sign-out-everywhere").await;
    let set_cookies = session_set_cookies(&response);
    assert!(
        set_cookies.len() == 1 && is_removal(&set_cookies[0]),
        "{set_cookies:?}"
    );
    assert_eq!(json_ok(response).await, json!({ "ended": 2 }));
    assert_eq!(laptop.session_cookie(server), None);
    assert_eq!(database.rows_of_subject("frank").await, 0);
    assert_eq!(database.record(laptop_id).await, None);
    assert_eq!(database.record(phone_id).await, None);

    // Both browsers are signed out; the caller's old cookie finds nothing either.
    for browser in [&laptop, &phone] {
        assert_eq!(
            browser.me(server).await,
            json!({ "user_id": null, "cart": [] })
        );
    }
    assert_eq!(
        json_ok(me_with_cookie(server, &laptop_cookie).await).await,
        json!({ "user_id": null, "cart": [] })
    );
    let response = phone.post(server, "/devices/sign-out-everywhere").await;
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    // The request in flight cannot create the phone's session again under a new id.
    in_flight.cycle_id();
    let finalized = in_flight.finalize().await;
    assert!(is_signed_out(&finalized), "{:?}", finalized.err());
    assert_eq!(database.rows_of_subject("frank").await, 0);

    // The other user is still signed in.
    assert_eq!(stranger.me(server).await["user_id"], json!("grace"));
    assert!(database.record(stranger_id).await.is_some());
}
