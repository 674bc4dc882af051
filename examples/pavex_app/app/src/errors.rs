//! What the routes return when the session store fails, and how failures are logged.
use pavex::Response;
use std::fmt;

/// A failure the client cannot fix: the session store (the database) failed, or a stored value
/// did not have the expected shape. Answered with `500 Internal Server Error`; the cause goes to
/// the error observer, not to the client.
#[derive(Debug)]
pub struct InternalError(Box<dyn std::error::Error + Send + Sync>);

impl InternalError {
    /// Wraps any error.
    pub fn new(error: impl Into<Box<dyn std::error::Error + Send + Sync>>) -> Self {
        Self(error.into())
    }
}

impl fmt::Display for InternalError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "internal error: {}", self.0)
    }
}

impl std::error::Error for InternalError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(self.0.as_ref())
    }
}

#[pavex::methods]
impl InternalError {
    /// The response for an [`InternalError`].
    #[error_handler]
    pub fn into_response(&self) -> Response {
        Response::internal_server_error()
    }
}

/// Logs every error that ends a request (ours, pavex_session's, Pavex's extractors') on stderr,
/// with its chain of causes. A real app would use `tracing` (see `pavex_tracing`).
#[pavex::error_observer]
pub async fn log_error(error: &pavex::Error) {
    let mut line = error.to_string();
    let mut source = std::error::Error::source(error);
    while let Some(cause) = source {
        line.push_str(": ");
        line.push_str(&cause.to_string());
        source = cause.source();
    }
    eprintln!("request failed: {line}");
}
