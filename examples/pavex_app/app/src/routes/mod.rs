//! The routes: a sign-in flow with a shopping cart that survives the sign-in.
//!
//! | route | what |
//! |---|---|
//! | `GET /me` | the session as the client sees it: `{"user_id": …, "cart": […]}` (anonymous: `null`, `[]`) |
//! | `POST /cart/{item}` | adds `item` to the session's cart, signed in or not (anonymous carts are kept at sign-in) |
//! | `POST /sign-in` | JSON `{"username", "password"}`: checks them, gives the session a new id (`cycle_id`), stores the user under `user_id` |
//! | `POST /sign-out` | ends the session (`invalidate`): the record is deleted and the cookie removed |
//! | `GET /devices` | the signed-in user's sessions ("your devices"), the current one marked |
//! | `POST /devices/{handle}/sign-out` | ends one of the user's sessions ("sign out this device") |
//! | `POST /devices/sign-out-others` | ends all of the user's sessions but this one ("sign out everywhere else") |
pub mod account;
pub mod cart;
pub mod devices;
pub mod health;

/// The session state key of the signed-in user's id. Stored as a JSON string; the session store
/// copies it into its subject index (`crate::session_store`).
pub const USER_ID: &str = "user_id";
/// The session state key of the device a signed-in session is on ([`devices::DeviceMark`]).
pub const DEVICE: &str = "device";
/// The session state key of the cart: a JSON array of item names.
pub const CART: &str = "cart";
