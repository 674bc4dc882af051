use pavex::{Blueprint, blueprint::from};

/// The blueprint of the app: what pavexc reads to generate `server_sdk`.
pub fn blueprint() -> Blueprint {
    let mut bp = Blueprint::new();
    bp.import(from![
        // Our own components: configuration types, the `DatabaseConnection` singleton, the
        // error handler and the error observer.
        crate,
        // `Session`, `IncomingSession` and `SessionConfig` (configuration key `session`).
        pavex_session,
        // `SeaOrmSessionStore::new` (it takes our `DatabaseConnection`) and its conversion into
        // `pavex_session::SessionStore`, both singletons.
        pavex_session_sea_orm,
        // Sessions travel in a cookie: the cookie processor (configuration key `cookies`, where
        // the session cookie's crypto rule lives), `RequestCookies` and `ResponseCookies`.
        pavex::cookie,
        // `PathParams`, for `POST /cart/{item}`. pavexc does not find its constructor without it.
        pavex::request::path,
        // `JsonBody` (and the `BufferedBody`/`BodySizeLimit` it is built from), for the
        // sign-in form.
        pavex::request::body,
    ]);
    // Order matters: `finalize_session` writes the session record and adds the session cookie
    // to `ResponseCookies`; `inject_response_cookies` then turns them into `Set-Cookie` headers.
    bp.post_process(pavex_session::FINALIZE_SESSION);
    bp.post_process(pavex::cookie::INJECT_RESPONSE_COOKIES);
    bp.error_observer(crate::errors::LOG_ERROR);
    bp.routes(from![crate]);
    bp
}
