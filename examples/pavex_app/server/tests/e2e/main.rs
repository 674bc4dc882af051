//! The example app end to end: the real server binary (built from the pavexc-generated
//! `server_sdk`), on a free loopback port, on SQLite, PostgreSQL and MariaDB in turn, driven by
//! real HTTP clients that keep cookies like a browser.
//!
//! Each backend gets a fresh database (`PAVEX_SESSION_TEST_POSTGRES_URL`,
//! `PAVEX_SESSION_TEST_MYSQL_URL`, defaults `postgres://postgres@127.0.0.1:5432/test` and
//! `mysql://root@127.0.0.1:3306/test`; SQLite: a temporary file), dropped at the end. An
//! unreachable server fails its test. Run them with `scripts/test-pavex-app.sh` at the
//! repository's root.
mod support;

use reqwest::StatusCode;
use serde_json::json;
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

/// How many browsers sign in at once.
const CONCURRENT_CLIENTS: usize = 50;

async fn sign_in_flow(backend: Backend) {
    let database = TestDatabase::fresh(backend).await;
    let key = random_cookie_key();
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
    let status = server.stop();
    assert!(status.success(), "the server exited with {status}");
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

    let status = server.stop();
    assert!(status.success(), "the server exited with {status}");
}
