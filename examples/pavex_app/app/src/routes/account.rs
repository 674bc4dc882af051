//! Sign in, read the session, sign out.
use super::{CART, DEVICE, SIGN_IN_ID, USER_ID, devices::DeviceMark};
use crate::{configuration::AuthConfig, errors::InternalError};
use pavex::{
    Response, get,
    http::header::USER_AGENT,
    post,
    request::{RequestHead, body::JsonBody},
    response::body::Json,
};
use pavex_session::Session;

/// The body of `POST /sign-in`.
#[derive(serde::Deserialize, Debug)]
pub struct Credentials {
    /// The user's name; it becomes the session's `user_id`.
    pub username: String,
    /// The user's password.
    pub password: String,
}

/// The session as `GET /me` (and every route that changes it) reports it.
#[derive(serde::Serialize, Debug)]
pub struct Account {
    /// The signed-in user, `null` when anonymous.
    pub user_id: Option<String>,
    /// The cart, empty if there is none.
    pub cart: Vec<String>,
}

impl Account {
    /// Reads the account out of the session (loading its server-side state on first use).
    pub async fn of(session: &Session<'_>) -> Result<Self, InternalError> {
        Ok(Self {
            user_id: session.get(USER_ID).await.map_err(InternalError::new)?,
            cart: session
                .get(CART)
                .await
                .map_err(InternalError::new)?
                .unwrap_or_default(),
        })
    }

    /// `200 OK` with the account as JSON.
    pub fn into_response(self) -> Result<Response, InternalError> {
        let body = Json::new(self).map_err(InternalError::new)?;
        Ok(Response::ok().set_typed_body(body))
    }
}

/// The session: who is signed in, and the cart.
#[get(path = "/me")]
pub async fn me(session: &Session<'_>) -> Result<Response, InternalError> {
    Account::of(session).await?.into_response()
}

/// Signs a user in: `401 Unauthorized` (and the session untouched) on wrong credentials;
/// otherwise the session gets a new id, the user is stored under `user_id` (which the store
/// copies into its subject index), a new random sign-in id under `sign_in_id` (which the store
/// copies into its sign-in column) and the device under `device`.
#[post(path = "/sign-in")]
pub async fn sign_in(
    credentials: JsonBody<Credentials>,
    auth: &AuthConfig,
    head: &RequestHead,
    session: &mut Session<'_>,
) -> Result<Response, InternalError> {
    let Credentials { username, password } = credentials.0;
    if !is_valid_username(&username) || !same_secret(&password, &auth.demo_password) {
        return Ok(Response::unauthorized());
    }
    // A new id for the signed-in session, so that an id planted or seen before the sign-in
    // (session fixation) is worthless: the record moves to the new id, the old id finds
    // nothing. The state (an anonymous cart) comes along.
    session.cycle_id();
    session
        .insert(USER_ID, username)
        .await
        .map_err(InternalError::new)?;
    // Names this sign-in: the device routes find the current session in the list by it, and
    // once they end the sign-in the store refuses to create a session for it again.
    session
        .insert(SIGN_IN_ID, uuid::Uuid::new_v4().to_string())
        .await
        .map_err(InternalError::new)?;
    // What the device list shows about this session (see `routes::devices`).
    let device = DeviceMark {
        user_agent: head
            .headers
            .get(USER_AGENT)
            .and_then(|agent| agent.to_str().ok())
            .map(|agent| agent.chars().take(200).collect()),
    };
    session
        .insert(DEVICE, device)
        .await
        .map_err(InternalError::new)?;
    Account::of(session).await?.into_response()
}

/// Gives the session a new id, its state kept, as an app does when a session's privileges
/// change; answers with the account, like `GET /me`. A session that no longer exists (signed
/// out, here or from another device) stays gone: there is nothing to move, and a request that
/// loaded the session just before it was ended cannot create it again under the new id (the
/// store refuses a session of an ended sign-in).
#[post(path = "/me/renew-id")]
pub async fn renew_id(session: &mut Session<'_>) -> Result<Response, InternalError> {
    let account = Account::of(session).await?;
    session.cycle_id();
    account.into_response()
}

/// Signs out: the server-side record is deleted and the cookie removed, whatever it held.
#[post(path = "/sign-out")]
pub fn sign_out(session: &mut Session<'_>) -> Response {
    session.invalidate();
    Response::no_content()
}

fn is_valid_username(username: &str) -> bool {
    !username.is_empty()
        && username.len() <= 64
        && username
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_' || b == b'.')
}

/// Compares without stopping at the first difference, so the time taken does not tell how much
/// of a guess was right.
fn same_secret(given: &str, expected: &str) -> bool {
    let (given, expected) = (given.as_bytes(), expected.as_bytes());
    let mut difference = given.len() ^ expected.len();
    for (i, byte) in expected.iter().enumerate() {
        difference |= usize::from(byte ^ given.get(i).copied().unwrap_or(0));
    }
    difference == 0
}
