//! The routes: a sign-in flow with a shopping cart that survives the sign-in.
//!
//! | route | what |
//! |---|---|
//! | `GET /me` | the session as the client sees it: `{"user_id": …, "cart": […]}` (anonymous: `null`, `[]`) |
//! | `POST /cart/{item}` | adds `item` to the session's cart, signed in or not (anonymous carts are kept at sign-in) |
//! | `POST /sign-in` | JSON `{"username", "password"}`: checks them, gives the session a new id (`cycle_id`), stores the user under `user_id` and a random `sign_in_id` |
//! | `POST /sign-out` | ends the session (`invalidate`): the record is deleted and the cookie removed |
//! | `POST /me/renew-id` | gives the session a new id (`cycle_id`), state kept |
//! | `GET /devices` | one page of the signed-in user's sessions ("your devices"), the current one marked; `?after=<cursor>` for the next page, announced in a `Link` header |
//! | `POST /devices/{handle}/sign-out` | ends one of the user's sessions ("sign out this device") |
//! | `POST /devices/sign-out-others` | ends all of the user's sessions but this one ("sign out everywhere else") |
//! | `POST /devices/sign-out-everywhere` | ends all of the user's sessions, this one included, and removes the cookie ("sign out everywhere") |
pub mod account;
pub mod cart;
pub mod devices;
pub mod health;

/// The session state key of the signed-in user's id. Stored as a JSON string; the session store
/// copies it into its subject index (`crate::database::session_store`).
pub const USER_ID: &str = "user_id";
/// The session state key of the sign-in: a random id per sign-in, which every session of that
/// sign-in carries along. The session store copies it into its `sign_in` column
/// (`crate::database::session_store`), so that a sign-in ended from the device list stays ended;
/// the device routes find the request's own session in the list by it.
pub const SIGN_IN_ID: &str = "sign_in_id";
/// The session state key of the device a signed-in session is on ([`devices::DeviceMark`]).
pub const DEVICE: &str = "device";
/// The session state key of the cart: a JSON array of item names.
pub const CART: &str = "cart";
