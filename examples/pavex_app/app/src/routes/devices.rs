//! "Your devices": the signed-in user's sessions, and signing them out, through the store's
//! subject index (`SeaOrmSessionStore::with_subject_key`, see `crate::database::session_store`).
//!
//! `pavex_session` does not tell a handler its own session's id, so the sign-in puts a random
//! device id in the state (`super::DEVICE`); the current session is the one in the list whose
//! state holds the same device id.
use super::{DEVICE, USER_ID};
use crate::errors::InternalError;
use pavex::{Response, get, post, request::path::PathParams, response::body::Json};
use pavex_session::Session;
use pavex_session_sea_orm::{SeaOrmSessionStore, SessionHandle, SubjectSession};

/// What the sign-in stores under [`DEVICE`]: which device the session is on.
#[derive(serde::Serialize, serde::Deserialize, Debug, Clone, PartialEq, Eq)]
pub struct DeviceMark {
    /// A random id, one per sign-in.
    pub id: String,
    /// The browser's `User-Agent` at sign-in, if it sent one, to show in the list.
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
    /// RFC 3339, UTC.
    pub signed_in_at: String,
    /// The last write of the session (RFC 3339, UTC).
    pub last_active_at: String,
    /// When the session ends unless it is used again (RFC 3339, UTC).
    pub expires_at: String,
}

/// The body of `POST /devices/sign-out-others`.
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

/// The signed-in user's sessions, most recently active first: `401` when anonymous.
#[get(path = "/devices")]
pub async fn devices(
    session: &Session<'_>,
    store: &SeaOrmSessionStore,
) -> Result<Response, InternalError> {
    let Some(signed_in) = SignedIn::of(session).await? else {
        return Ok(Response::unauthorized());
    };
    let devices: Vec<Device> = signed_in
        .sessions(store)
        .await?
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
    json(devices)
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

/// The user and device of a signed-in session.
struct SignedIn {
    user_id: String,
    device: Option<DeviceMark>,
}

impl SignedIn {
    async fn of(session: &Session<'_>) -> Result<Option<Self>, InternalError> {
        let Some(user_id) = session.get(USER_ID).await.map_err(InternalError::new)? else {
            return Ok(None);
        };
        let device = session.get(DEVICE).await.map_err(InternalError::new)?;
        Ok(Some(Self { user_id, device }))
    }

    async fn sessions(
        &self,
        store: &SeaOrmSessionStore,
    ) -> Result<Vec<SubjectSession>, InternalError> {
        store
            .sessions_of(&self.user_id)
            .await
            .map_err(InternalError::new)
    }

    /// The handle of the request's own session, found in the list by its device mark.
    async fn current_handle(
        &self,
        store: &SeaOrmSessionStore,
    ) -> Result<Option<SessionHandle>, InternalError> {
        let sessions = self.sessions(store).await?;
        Ok(sessions
            .iter()
            .find(|s| self.is_current(s))
            .map(|s| s.handle))
    }

    fn is_current(&self, session: &SubjectSession) -> bool {
        self.device.is_some() && mark_of(session) == self.device
    }
}

fn mark_of(session: &SubjectSession) -> Option<DeviceMark> {
    let mark = session.state.get(DEVICE)?;
    serde_json::from_value(mark.clone()).ok()
}

fn json(body: impl serde::Serialize) -> Result<Response, InternalError> {
    let body = Json::new(body).map_err(InternalError::new)?;
    Ok(Response::ok().set_typed_body(body))
}
