//! Session states encrypted at rest (feature `encryption`): each state is sealed with
//! XChaCha20-Poly1305 under the newest key of a key ring, with the session's stored id as
//! associated data, so that a database dump shows no state value and a sealed state copied onto
//! another session does not open.
//!
//! The stored bytes are `[1, key id (4 bytes, big-endian), nonce (24 bytes), ciphertext and
//! tag]`. A JSON state written before encryption was turned on starts with `{`: it is refused
//! unless the store accepts plaintext states ([`StateEncryption::accepting_plaintext`]).

use chacha20poly1305::{
    KeyInit, XChaCha20Poly1305, XNonce,
    aead::{Aead, Generate, Payload},
};
use std::{fmt, str::FromStr, sync::Arc};

/// The first byte of a sealed state: the format's version. A JSON object starts with `{`.
const SEALED_V1: u8 = 1;

/// Bytes before the ciphertext: the version, the key id and the nonce.
const HEADER_LEN: usize = 1 + 4 + 24;

/// Prefixed to the associated data, so that nothing else sealed with the same key opens as a
/// session state.
const DOMAIN: &[u8] = b"pavex_session_sea_orm state v1";

/// A 256-bit key that seals session states. Build it from 32 random bytes kept in your secret
/// store, or from their 64 hexadecimal digits; [`StateKey::generate`] makes a new one. Its
/// `Debug` shows nothing of it.
///
/// ```
/// use pavex_session_sea_orm::StateKey;
///
/// let key: StateKey = "0f".repeat(32).parse()?;
/// assert!("too short".parse::<StateKey>().is_err());
/// assert_eq!(format!("{key:?}"), "StateKey(..)");
/// # Ok::<(), pavex_session_sea_orm::InvalidStateKey>(())
/// ```
#[derive(Clone)]
pub struct StateKey(Arc<XChaCha20Poly1305>);

impl StateKey {
    /// The key with these 32 bytes.
    pub fn from_bytes(bytes: [u8; 32]) -> Self {
        Self(Arc::new(XChaCha20Poly1305::new(&bytes.into())))
    }

    /// A new random key, and its 64 hexadecimal digits to keep in your secret store. Fails only
    /// if the operating system's random number generator does.
    ///
    /// ```
    /// use pavex_session_sea_orm::StateKey;
    ///
    /// let (key, hex) = StateKey::generate()?;
    /// let again: StateKey = hex.parse()?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn generate() -> Result<(Self, String), InvalidStateKey> {
        let bytes = <[u8; 32]>::try_generate().map_err(|_| InvalidStateKey)?;
        Ok((Self::from_bytes(bytes), hex::encode(bytes)))
    }
}

impl fmt::Debug for StateKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("StateKey(..)")
    }
}

impl FromStr for StateKey {
    type Err = InvalidStateKey;

    /// 64 hexadecimal digits.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let mut bytes = [0; 32];
        hex::decode_to_slice(s.trim(), &mut bytes).map_err(|_| InvalidStateKey)?;
        Ok(Self::from_bytes(bytes))
    }
}

/// A text that is not a [`StateKey`] (64 hexadecimal digits), or no random key could be made.
/// It says nothing of the text.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("a state key is 64 hexadecimal digits (32 bytes)")]
pub struct InvalidStateKey;

/// How a store seals session states: the key that seals new writes, the keys that still open
/// older ones, and whether plaintext states (written before encryption) are accepted.
///
/// Keys have ids (a `u32` of your choosing, stored with each state): to rotate, make the new
/// key the newest and keep the old one as a previous key until every session written with it
/// has been written again or has expired; a state moves to the newest key each time its
/// session's state is written.
///
/// ```
/// use pavex_session_sea_orm::{SeaOrmSessionStore, StateEncryption, StateKey};
///
/// # fn build(db: sea_orm::DatabaseConnection) -> Result<(), Box<dyn std::error::Error>> {
/// let (newest, _) = StateKey::generate()?;           // from your secret store, in practice
/// let (previous, _) = StateKey::generate()?;
/// let encryption = StateEncryption::new(2, newest).with_previous_key(1, previous);
/// let store = SeaOrmSessionStore::new(db).with_state_encryption(encryption);
/// # Ok(())
/// # }
/// ```
#[derive(Clone)]
pub struct StateEncryption {
    /// The newest key first: it seals; every key opens the states sealed with it.
    keys: Vec<(u32, StateKey)>,
    accept_plaintext: bool,
    write_plaintext: bool,
}

impl StateEncryption {
    /// Seals with `key`, under the id `key_id`.
    pub fn new(key_id: u32, key: StateKey) -> Self {
        Self {
            keys: vec![(key_id, key)],
            accept_plaintext: false,
            write_plaintext: false,
        }
    }

    /// Also opens states sealed with `key` under `key_id` (an older key). Ids are unique: a key
    /// whose id is already in the ring is ignored.
    pub fn with_previous_key(mut self, key_id: u32, key: StateKey) -> Self {
        if !self.keys.iter().any(|(id, _)| *id == key_id) {
            self.keys.push((key_id, key));
        }
        self
    }

    /// Also reads states stored in plaintext, for a table whose sessions were written before
    /// encryption was turned on; each is sealed the next time its state is written. Turn it
    /// off once those sessions have expired: while it is on, whoever can write to the table can
    /// plant a plaintext state.
    pub fn accepting_plaintext(self) -> Self {
        Self {
            accept_plaintext: true,
            ..self
        }
    }

    /// Opens sealed states but writes plaintext ones (and reads them): the first step of
    /// turning encryption on in a fleet that is deployed one instance at a time, so that an
    /// instance still without encryption never meets a sealed state. Once every instance runs
    /// with it, deploy with [`accepting_plaintext`](Self::accepting_plaintext) instead.
    pub fn writing_plaintext(self) -> Self {
        Self {
            accept_plaintext: true,
            write_plaintext: true,
            ..self
        }
    }

    /// The bytes to store for the JSON state `plaintext` of the session stored under
    /// `stored_id`: sealed with the newest key and a fresh random nonce.
    pub(crate) fn seal(&self, stored_id: &[u8], plaintext: &[u8]) -> Result<Vec<u8>, SealError> {
        if self.write_plaintext {
            return Ok(plaintext.to_vec());
        }
        let (key_id, key) = self.keys.first().ok_or(SealError)?;
        let nonce = XNonce::try_generate().map_err(|_| SealError)?;
        let mut sealed = Vec::with_capacity(HEADER_LEN + plaintext.len() + 16);
        sealed.push(SEALED_V1);
        sealed.extend_from_slice(&key_id.to_be_bytes());
        sealed.extend_from_slice(&nonce);
        let aad = associated_data(&sealed, stored_id);
        let ciphertext = key
            .0
            .encrypt(
                &nonce,
                Payload {
                    msg: plaintext,
                    aad: &aad,
                },
            )
            .map_err(|_| SealError)?;
        sealed.extend_from_slice(&ciphertext);
        Ok(sealed)
    }

    /// The JSON state stored as `stored` for the session stored under `stored_id`.
    pub(crate) fn open(
        &self,
        stored_id: &[u8],
        stored: Vec<u8>,
    ) -> Result<Vec<u8>, UnreadableState> {
        match stored.first() {
            Some(&SEALED_V1) => {}
            Some(b'{') if self.accept_plaintext => return Ok(stored),
            Some(b'{') => return Err(UnreadableState::NotSealed),
            _ => return Err(UnreadableState::UnknownFormat),
        }
        let (header, ciphertext) = stored
            .split_at_checked(HEADER_LEN)
            .ok_or(UnreadableState::UnknownFormat)?;
        let key_id = header
            .get(1..5)
            .and_then(|id| <[u8; 4]>::try_from(id).ok())
            .map(u32::from_be_bytes)
            .ok_or(UnreadableState::UnknownFormat)?;
        let nonce = header
            .get(5..HEADER_LEN)
            .and_then(|nonce| <[u8; 24]>::try_from(nonce).ok())
            .ok_or(UnreadableState::UnknownFormat)?;
        let (_, key) = self
            .keys
            .iter()
            .find(|(id, _)| *id == key_id)
            .ok_or(UnreadableState::UnknownKey { key_id })?;
        let aad = associated_data(header, stored_id);
        key.0
            .decrypt(
                &XNonce::from(nonce),
                Payload {
                    msg: ciphertext,
                    aad: &aad,
                },
            )
            .map_err(|_| UnreadableState::Tampered)
    }
}

impl fmt::Debug for StateEncryption {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let ids: Vec<u32> = self.keys.iter().map(|(id, _)| *id).collect();
        f.debug_struct("StateEncryption")
            .field("key_ids", &ids)
            .field("accept_plaintext", &self.accept_plaintext)
            .field("write_plaintext", &self.write_plaintext)
            .finish()
    }
}

/// What the ciphertext is bound to: this format, the header (version, key id, nonce) and the
/// session's stored id.
fn associated_data(header: &[u8], stored_id: &[u8]) -> Vec<u8> {
    [DOMAIN, header, stored_id].concat()
}

/// Why a stored session state could not be read by a store with [`StateEncryption`]: the cause
/// of `LoadError::DeserializationError` (and of `ChangeIdError::Other`). The row is left as it
/// is, for you to look at.
///
/// ```
/// use pavex_session::store::errors::LoadError;
/// use pavex_session_sea_orm::UnreadableState;
///
/// fn why(e: &LoadError) -> Option<UnreadableState> {
///     match e {
///         LoadError::DeserializationError(e) => e.downcast_ref::<UnreadableState>().copied(),
///         _ => None,
///     }
/// }
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum UnreadableState {
    /// Sealed with a key id the key ring does not have (a key removed too early).
    #[error(
        "the session's state is sealed with key {key_id}, which is not in the store's key ring"
    )]
    UnknownKey {
        /// The key id stored with the state.
        key_id: u32,
    },
    /// The bytes do not open with their key: altered, or copied from another session.
    #[error(
        "the session's state does not open with its key: it was altered, or copied from another \
         session"
    )]
    Tampered,
    /// A plaintext JSON state, and the store accepts sealed states only.
    #[error("the session's state is stored in plaintext, and the store accepts sealed states only")]
    NotSealed,
    /// Neither a sealed state nor a JSON object.
    #[error("the session's state is in no format the store knows")]
    UnknownFormat,
}

/// A state could not be sealed (the system's random number generator failed).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("the session's state could not be sealed: no random nonce")]
pub(crate) struct SealError;
