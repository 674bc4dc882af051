//! The subject of a session: the value of the state key that names who it belongs to, as the
//! `subject` column keeps it (UTF-8 bytes, compared byte for byte on every backend).

use serde_json::Value;

/// The longest subject accepted, in characters (at most 1 020 bytes in UTF-8, the column's
/// width on MySQL).
pub const MAX_SUBJECT_CHARS: usize = 255;

/// A state value that cannot be a subject, so the write that carries it is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum InvalidSubject {
    /// The value is neither a string nor a number.
    #[error("the subject key {0:?} holds neither a string nor a number")]
    NotAStringOrNumber(String),
    /// Longer than [`MAX_SUBJECT_CHARS`], or holding a NUL character.
    #[error(
        "the subject under {0:?} is longer than {MAX_SUBJECT_CHARS} characters or contains a \
         NUL character"
    )]
    TooLongOrNul(String),
}

/// The subject that `value`, found under the state key `key`, gives a session: a string as it
/// is, a number as its decimal text; none for a missing key or `null`.
///
/// ```
/// use pavex_session_sea_orm_migration::subject_of;
/// use serde_json::json;
///
/// assert_eq!(subject_of("user_id", Some(&json!(42))), Ok(Some("42".to_owned())));
/// assert_eq!(subject_of("user_id", Some(&json!("Abc "))), Ok(Some("Abc ".to_owned())));
/// assert_eq!(subject_of("user_id", None), Ok(None));
/// assert!(subject_of("user_id", Some(&json!([1]))).is_err());
/// ```
pub fn subject_of(key: &str, value: Option<&Value>) -> Result<Option<String>, InvalidSubject> {
    let subject = match value {
        None | Some(Value::Null) => return Ok(None),
        Some(Value::String(s)) => s.clone(),
        Some(Value::Number(n)) => n.to_string(),
        Some(_) => return Err(InvalidSubject::NotAStringOrNumber(key.to_owned())),
    };
    if subject.chars().count() > MAX_SUBJECT_CHARS || subject.contains('\0') {
        return Err(InvalidSubject::TooLongOrNul(key.to_owned()));
    }
    Ok(Some(subject))
}
