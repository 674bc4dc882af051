//! How a session id is kept in the table: as its SHA-256, never as the id itself.
//!
//! A session id is the secret in the session cookie. Storing only its hash means that whoever
//! reads the table (a leaked backup, a replica opened to analysts, a read-only SQL injection
//! elsewhere in the app) learns nothing that opens a session: the id cannot be computed back
//! from its hash, and the ids are 122 random bits, so guessing one is hopeless.

use sea_orm_migration::sea_orm::prelude::Uuid;
use sha2::{Digest, Sha256};

/// The length in bytes of a stored id (a SHA-256 digest).
pub const STORED_ID_LEN: usize = 32;

/// The key under which the session with id `id` is stored: the SHA-256 of the id's 16 bytes.
///
/// ```
/// use pavex_session_sea_orm_migration::{STORED_ID_LEN, stored_id};
/// use sea_orm_migration::sea_orm::prelude::Uuid;
///
/// let id = Uuid::from_u128(42);
/// let key = stored_id(&id);
/// assert_eq!(key.len(), STORED_ID_LEN);
/// assert_eq!(key, stored_id(&id)); // the same id, the same key
/// assert!(!key.windows(16).any(|w| w == id.as_bytes())); // the id itself is not in it
/// ```
pub fn stored_id(id: &Uuid) -> [u8; STORED_ID_LEN] {
    Sha256::digest(id.as_bytes()).into()
}
