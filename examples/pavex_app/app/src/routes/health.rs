//! A readiness probe that uses the app's own `DatabaseConnection`, the pool the session store
//! shares.
use pavex::{get, http::StatusCode};
use sea_orm::DatabaseConnection;

/// `204 No Content` while the database answers, `503 Service Unavailable` otherwise.
#[get(path = "/health")]
pub async fn health(db: &DatabaseConnection) -> StatusCode {
    match db.ping().await {
        Ok(()) => StatusCode::NO_CONTENT,
        Err(_) => StatusCode::SERVICE_UNAVAILABLE,
    }
}
