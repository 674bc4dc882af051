//! "Your devices": the signed-in user's sessions, and signing them out, through the store's
//! subject index (`SeaOrmSessionStore::with_subject_key`, see `crate::database::session_store`).
//!
//! `pavex_session` does not tell a handler its own session's id, so the sign-in puts a random
//! sign-in id in the state (`super::SIGN_IN_ID`); the current session is the one of the user's
//! sessions whose state holds the same sign-in id. The store also records that id
//! (`with_sign_in_key`): a sign-in that `end_session_of`/`end_sessions_of` ended is never
//! created again, not even by a request that loaded it just before and then cycles its id.
use super::{DEVICE, SIGN_IN_ID, USER_ID};
use crate::{configuration::DevicesConfig, errors::InternalError};
use pavex::{
    Response, get,
    http::{HeaderValue, header::LINK},
    post,
    request::{path::PathParams, query::QueryParams},
    response::body::Json,
};
use pavex_session::Session;
use pavex_session_sea_orm::{
    MAX_PAGE_SIZE, PageCursor, SeaOrmSessionStore, SessionHandle, SessionsPage, SubjectSession,
};

/// What the sign-in stores under [`DEVICE`]: what the device list shows about the session.
#[derive(serde::Serialize, serde::Deserialize, Debug, Clone, PartialEq, Eq)]
pub struct DeviceMark {
    /// The browser's `User-Agent` at sign-in, if it sent one.
    pub user_agent: Option<String>,
}

/// One entry of `GET /devices`.
#[derive(serde::Serialize, Debug)]
pub struct Device {
    /// Names the session without being its cookie (the hex of the stored id hash); what
    /// `POST /devices/{handle}/sign-out` takes.
    pub handle: String,
    /// Whether this is the session of the request that asked.
    pub current: bool,
    pub user_agent: Option<String>,
    /// When the session's record was created, at the sign-in (RFC 3339, UTC); the list is
    /// sorted by it, newest first.
    pub signed_in_at: String,
    /// The last write of the session (RFC 3339, UTC).
    pub last_active_at: String,
    /// When the session ends unless it is used again (RFC 3339, UTC).
    pub expires_at: String,
}

/// The query of `GET /devices`.
#[derive(serde::Deserialize, Debug)]
pub struct DevicesQuery {
    /// Where the page starts: the cursor of the previous page's `Link: <...>; rel="next"`.
    /// Absent: the first page.
    pub after: Option<String>,
}

/// The body of `POST /devices/sign-out-others` and `POST /devices/sign-out-everywhere`.
#[derive(serde::Serialize, Debug)]
pub struct Ended {
    /// How many sessions were ended.
    pub ended: u64,
}

/// The path parameters of `POST /devices/{handle}/sign-out`.
#[PathParams]
pub struct DeviceHandle {
    pub handle: String,
}

/// One page of the signed-in user's sessions, the most recently created first: at most
/// `devices.page_size` of them, as a JSON array. When there are more, the response has a
/// `Link: </devices?after=<cursor>>; rel="next"` header: the same request with that `after`
/// gives the next page. `401` when anonymous, `400` for an `after` that is not a cursor.
#[get(path = "/devices")]
pub async fn devices(
    query: &QueryParams<DevicesQuery>,
    config: &DevicesConfig,
    session: &Session<'_>,
    store: &SeaOrmSessionStore,
) -> Result<Response, InternalError> {
    let Some(signed_in) = SignedIn::of(session).await? else {
        return Ok(Response::unauthorized());
    };
    let after = match query.0.after.as_deref().map(str::parse::<PageCursor>) {
        None => None,
        Some(Ok(cursor)) => Some(cursor),
        Some(Err(_)) => return Ok(Response::bad_request()),
    };
    let page = signed_in
        .page(store, config.page_size, after.as_ref())
        .await?;
    let devices: Vec<Device> = page
        .iter()
        .map(|s| Device {
            handle: s.handle.to_string(),
            current: signed_in.is_current(s),
            user_agent: mark_of(s).and_then(|mark| mark.user_agent),
            signed_in_at: s.created_at.to_rfc3339(),
            last_active_at: s.updated_at.to_rfc3339(),
            expires_at: s.expires_at.to_rfc3339(),
        })
        .collect();
    let response = json(devices)?;
    Ok(match &page.next {
        // A cursor is `<digits>.<hex>`: nothing in it needs escaping in a URL or a header.
        Some(next) => {
            let link = format!("</devices?after={next}>; rel=\"next\"");
            response.insert_header(
                LINK,
                HeaderValue::try_from(link).map_err(InternalError::new)?,
            )
        }
        None => response,
    })
}

/// "Sign out this device": ends one of the user's sessions by its handle (`204`); `404` if the
/// handle names no live session of this user (another user's included), `400` if it is not a
/// handle. The current session's own handle signs this browser out, like `POST /sign-out`.
#[post(path = "/devices/{handle}/sign-out")]
pub async fn sign_out_device(
    params: PathParams<DeviceHandle>,
    session: &mut Session<'_>,
    store: &SeaOrmSessionStore,
) -> Result<Response, InternalError> {
    let Some(signed_in) = SignedIn::of(session).await? else {
        return Ok(Response::unauthorized());
    };
    let Ok(handle) = params.0.handle.parse::<SessionHandle>() else {
        return Ok(Response::bad_request());
    };
    if signed_in.current_handle(store).await? == Some(handle) {
        session.invalidate();
        return Ok(Response::no_content());
    }
    match store.end_session_of(&signed_in.user_id, &handle).await {
        Ok(true) => Ok(Response::no_content()),
        Ok(false) => Ok(Response::not_found()),
        Err(e) => Err(InternalError::new(e)),
    }
}

/// "Sign out everywhere else": ends every session of the user but the current one, at once.
#[post(path = "/devices/sign-out-others")]
pub async fn sign_out_others(
    session: &Session<'_>,
    store: &SeaOrmSessionStore,
) -> Result<Response, InternalError> {
    let Some(signed_in) = SignedIn::of(session).await? else {
        return Ok(Response::unauthorized());
    };
    let current = signed_in.current_handle(store).await?;
    // No current session in the table means it has just been ended elsewhere: ending all
    // is then what "everywhere else" leaves.
    let ended = store
        .end_sessions_of(&signed_in.user_id, current.as_ref())
        .await
        .map_err(InternalError::new)?;
    json(Ended { ended })
}

/// "Sign out everywhere": ends every session of the user, this one included, at once, and
/// removes this browser's cookie (`invalidate`); answers how many sessions were ended,
/// `{"ended": n}`. `401` when anonymous. The other browsers are anonymous from their next
/// request on, and a request in flight on one of them cannot bring it back (the store revokes
/// their sign-ins).
#[post(path = "/devices/sign-out-everywhere")]
pub async fn sign_out_everywhere(
    session: &mut Session<'_>,
    store: &SeaOrmSessionStore,
) -> Result<Response, InternalError> {
    let Some(signed_in) = SignedIn::of(session).await? else {
        return Ok(Response::unauthorized());
    };
    let ended = store
        .end_sessions_of(&signed_in.user_id, None)
        .await
        .map_err(InternalError::new)?;
    // The record is already gone (the store ended it with the others); this removes the
    // cookie, and `finalize_session` takes the missing record as deleted.
    session.invalidate();
    json(Ended { ended })
}

/// The user and sign-in of a signed-in session.
struct SignedIn {
    user_id: String,
    sign_in_id: Option<String>,
}

impl SignedIn {
    async fn of(session: &Session<'_>) -> Result<Option<Self>, InternalError> {
        let Some(user_id) = session.get(USER_ID).await.map_err(InternalError::new)? else {
            return Ok(None);
        };
        let sign_in_id = session.get(SIGN_IN_ID).await.map_err(InternalError::new)?;
        Ok(Some(Self {
            user_id,
            sign_in_id,
        }))
    }

    /// One page of the user's sessions.
    async fn page(
        &self,
        store: &SeaOrmSessionStore,
        page_size: u32,
        after: Option<&PageCursor>,
    ) -> Result<SessionsPage, InternalError> {
        store
            .sessions_of_after(&self.user_id, page_size, after)
            .await
            .map_err(InternalError::new)
    }

    /// The handle of the request's own session, found among the user's sessions by its
    /// sign-in id: page after page (of the largest size), so that it is found however many
    /// sessions the user has and wherever the device list would show it.
    async fn current_handle(
        &self,
        store: &SeaOrmSessionStore,
    ) -> Result<Option<SessionHandle>, InternalError> {
        if self.sign_in_id.is_none() {
            return Ok(None);
        }
        let mut after = None;
        loop {
            let page = self.page(store, MAX_PAGE_SIZE, after.as_ref()).await?;
            if let Some(current) = page.iter().find(|s| self.is_current(s)) {
                return Ok(Some(current.handle));
            }
            match page.next {
                Some(next) => after = Some(next),
                None => return Ok(None),
            }
        }
    }

    fn is_current(&self, session: &SubjectSession) -> bool {
        self.sign_in_id.is_some() && sign_in_id_of(session) == self.sign_in_id
    }
}

fn sign_in_id_of(session: &SubjectSession) -> Option<String> {
    let id = session.state.get(SIGN_IN_ID)?;
    serde_json::from_value(id.clone()).ok()
}

fn mark_of(session: &SubjectSession) -> Option<DeviceMark> {
    let mark = session.state.get(DEVICE)?;
    serde_json::from_value(mark.clone()).ok()
}

fn json(body: impl serde::Serialize) -> Result<Response, InternalError> {
    let body = Json::new(body).map_err(InternalError::new)?;
    Ok(Response::ok().set_typed_body(body))
}
