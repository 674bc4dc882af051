//! The routes: a sign-in flow with a shopping cart that survives the sign-in.
//!
//! | route | what |
//! |---|---|
//! | `GET /me` | the session as the client sees it: `{"user_id": …, "cart": […]}` (anonymous: `null`, `[]`) |
//! | `POST /cart/{item}` | adds `item` to the session's cart, signed in or not (anonymous carts are kept at sign-in) |
//! | `POST /sign-in` | JSON `{"username", "password"}`: checks them, gives the session a new id (`cycle_id`), stores the user under `user_id` |
//! | `POST /sign-out` | ends the session (`invalidate`): the record is deleted and the cookie removed |
pub mod account;
pub mod cart;
pub mod health;

/// The session state key of the signed-in user's id. Stored as a JSON string.
pub const USER_ID: &str = "user_id";
/// The session state key of the cart: a JSON array of item names.
pub const CART: &str = "cart";
