use pavex::{Blueprint, blueprint::from};

/// The blueprint of the app: what pavexc reads to generate `server_sdk`.
pub fn blueprint() -> Blueprint {
    let mut bp = Blueprint::new();
    bp.import(from![
        // Our own components: configuration types, the `DatabaseConnection` and
        // `SeaOrmSessionStore` singletons, the error handler and the error observer.
        crate,
        // `Session`, `IncomingSession` and `SessionConfig` (configuration key `session`).
        pavex_session,
        // Sessions travel in a cookie: the cookie processor (configuration key `cookies`, where
        // the session cookie's crypto rule lives), `RequestCookies` and `ResponseCookies`.
        pavex::cookie,
        // `PathParams`, for `POST /cart/{item}` and `POST /devices/{handle}/sign-out`. pavexc
        // does not find its constructor without it.
        pavex::request::path,
        // `JsonBody` (and the `BufferedBody`/`BodySizeLimit` it is built from), for the
        // sign-in form.
        pavex::request::body,
        // `QueryParams`, for `GET /devices?after=<cursor>`.
        pavex::request::query,
    ]);
    // First, so that it wraps everything below: one log line per request, with the status the
    // client gets (after the post-processing middlewares) and the whole duration.
    bp.wrap(crate::request_log::LOG_REQUEST);
    // Order matters: `finalize_session` writes the session record and adds the session cookie
    // to `ResponseCookies`; `inject_response_cookies` then turns them into `Set-Cookie` headers.
    // The store is ours (`database::session_store`: its subject and sign-in keys, checked at
    // start-up); what turns it into the `pavex_session::SessionStore` that `Session` needs comes
    // from pavex_session_sea_orm. (An app without a subject key imports `pavex_session_sea_orm`
    // instead, which brings `SeaOrmSessionStore::new` as the constructor too.)
    bp.constructor(pavex_session_sea_orm::SESSION_STORE_FROM);
    bp.post_process(pavex_session::FINALIZE_SESSION);
    bp.post_process(pavex::cookie::INJECT_RESPONSE_COOKIES);
    bp.error_observer(crate::errors::LOG_ERROR);
    bp.routes(from![crate]);
    bp
}
