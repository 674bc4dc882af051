//! How a session id is kept in the table: as a hash, never as the id itself.
//!
//! A session id is the secret in the session cookie. Storing only its hash means that whoever
//! reads the table (a leaked backup, a replica opened to analysts, a read-only SQL injection
//! elsewhere in the app) learns nothing that opens a session: the id cannot be computed back
//! from its hash, and the ids are 122 random bits, so guessing one is hopeless.

use sea_orm_migration::sea_orm::prelude::Uuid;
use sha2::{Digest, Sha256};

/// The length in bytes of a stored id: a SHA-256 digest truncated to 128 bits.
pub const STORED_ID_LEN: usize = 16;

/// The key under which the session with id `id` is stored: the first 16 bytes of the SHA-256
/// of the id's 16 bytes.
///
/// 128 bits are as hard to reverse as the id's own 122 random bits, and half the width of the
/// whole digest in the primary key and in every index entry that carries it (a truncated digest,
/// NIST SP 800-107r1 section 5.1; the measured sizes are in the repository's `docs/schema.md`).
///
/// ```
/// use pavex_session_sea_orm_migration::{STORED_ID_LEN, stored_id};
/// use sea_orm_migration::sea_orm::prelude::Uuid;
///
/// let id = Uuid::from_u128(42);
/// let key = stored_id(&id);
/// assert_eq!(key.len(), STORED_ID_LEN);
/// assert_eq!(key, stored_id(&id)); // the same id, the same key
/// assert_ne!(&key, id.as_bytes()); // not the id itself
/// // The first 16 bytes of SHA-256 of the id's bytes (here 15 zeros and 42).
/// let hex: String = key.iter().map(|b| format!("{b:02x}")).collect();
/// assert_eq!(hex, "f7d10d05713c7e049ae22e8b19bff812");
/// ```
pub fn stored_id(id: &Uuid) -> [u8; STORED_ID_LEN] {
    let digest: [u8; 32] = Sha256::digest(id.as_bytes()).into();
    let mut key = [0; STORED_ID_LEN];
    key.copy_from_slice(&digest[..STORED_ID_LEN]);
    key
}
