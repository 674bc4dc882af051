//! The cart: a value in the session state that routes change.
use super::CART;
use crate::{errors::InternalError, routes::account::Account};
use pavex::{Response, post, request::path::PathParams};
use pavex_session::Session;

/// The path parameters of `POST /cart/{item}`.
#[PathParams]
pub struct CartItem {
    /// The item to add.
    pub item: String,
}

/// Adds an item to the session's cart and returns the account. Works signed in or not: an
/// anonymous session is created on the first item, and kept (under a new id) at sign-in.
#[post(path = "/cart/{item}")]
pub async fn add_to_cart(
    params: PathParams<CartItem>,
    session: &mut Session<'_>,
) -> Result<Response, InternalError> {
    let mut cart: Vec<String> = session
        .get(CART)
        .await
        .map_err(InternalError::new)?
        .unwrap_or_default();
    cart.push(params.0.item);
    session
        .insert(CART, cart)
        .await
        .map_err(InternalError::new)?;
    Account::of(session).await?.into_response()
}
