//! The one error type of the service, answered as `application/problem+json` (RFC 9457).
//!
//! Each variant maps to exactly one status and problem `type`. Internal causes are logged here,
//! inside the request's tracing span (which carries the request id), and never returned: error
//! bodies hold no SQL, no internal text, no key material and no decrypted value.

use std::collections::BTreeMap;
use std::fmt;

use actix_web::http::StatusCode;
use actix_web::http::header::{self, HeaderValue};
use actix_web::{HttpResponse, ResponseError};
use serde::Serialize;

/// Field path (as in the request body, e.g. `identity.legal_name`) -> messages.
pub type FieldErrors = BTreeMap<String, Vec<String>>;

#[derive(Debug, thiserror::Error)]
pub enum AppError {
    #[error("unauthorized")]
    Unauthorized,
    #[error("forbidden")]
    Forbidden,
    #[error("password change required")]
    PasswordChangeRequired,
    #[error("malformed request: {0}")]
    BadRequest(&'static str),
    #[error("access purpose required")]
    PurposeRequired,
    #[error("payload too large")]
    PayloadTooLarge,
    #[error("unsupported media type")]
    UnsupportedMediaType,
    #[error("not found")]
    NotFound,
    #[error("validation failed")]
    Validation(FieldErrors),
    #[error("conflict: {0}")]
    Conflict(String),
    #[error("gone")]
    Gone,
    #[error("account locked")]
    Locked,
    #[error("too many requests")]
    TooManyRequests { retry_after_secs: u64 },
    #[error("service unavailable: {0}")]
    Unavailable(String),
    /// Stored data failed an integrity check (e.g. a ciphertext that does not decrypt in its
    /// row). Reported as a server error without data; the cause names table/column/row only.
    #[error("integrity failure: {0}")]
    Integrity(String),
    #[error("internal error: {0}")]
    Internal(String),
}

impl AppError {
    pub fn internal(cause: impl fmt::Display) -> Self {
        Self::Internal(cause.to_string())
    }

    /// A 422 naming one field.
    pub fn field(path: impl Into<String>, message: impl Into<String>) -> Self {
        let mut errors = FieldErrors::new();
        errors.insert(path.into(), vec![message.into()]);
        Self::Validation(errors)
    }

    /// Problem `type` (a relative URI reference, stable for clients) and title.
    fn problem(&self) -> (&'static str, &'static str) {
        match self {
            Self::Unauthorized => ("unauthorized", "Authentication required"),
            Self::Forbidden => ("forbidden", "Not permitted for this role"),
            Self::PasswordChangeRequired => ("password-change-required", "Password change required"),
            Self::BadRequest(_) => ("malformed-request", "Malformed request"),
            Self::PurposeRequired => ("access-purpose-required", "X-Access-Purpose header required"),
            Self::PayloadTooLarge => ("payload-too-large", "Request body too large"),
            Self::UnsupportedMediaType => ("unsupported-media-type", "Content type must be application/json"),
            Self::NotFound => ("not-found", "Not found"),
            Self::Validation(_) => ("validation-failed", "Invalid request"),
            Self::Conflict(_) => ("conflict", "State conflict"),
            Self::Gone => ("key-destroyed", "Data destroyed"),
            Self::Locked => ("account-locked", "Account locked"),
            Self::TooManyRequests { .. } => ("too-many-requests", "Too many requests"),
            Self::Unavailable(_) => ("service-unavailable", "Service unavailable"),
            Self::Integrity(_) => ("integrity-error", "Stored data failed an integrity check"),
            Self::Internal(_) => ("internal-error", "Internal error"),
        }
    }

    /// What the client may read. Deliberately fixed strings except where the text is ours and
    /// describes the client's own input.
    fn detail(&self) -> String {
        match self {
            Self::Unauthorized => "missing, invalid, expired or revoked credentials".into(),
            Self::Forbidden => "your role may not use this endpoint".into(),
            Self::PasswordChangeRequired => "change your password at /api/v1/me/password first".into(),
            Self::BadRequest(what) => (*what).into(),
            Self::PurposeRequired => "send X-Access-Purpose with 10 to 500 characters".into(),
            Self::PayloadTooLarge => "the body exceeds the configured limit".into(),
            Self::UnsupportedMediaType => "send the body as application/json".into(),
            Self::NotFound => "no such resource".into(),
            Self::Validation(_) => "one or more fields are invalid".into(),
            Self::Conflict(what) => what.clone(),
            Self::Gone => "the data key of this record was destroyed; its fields cannot be read".into(),
            Self::Locked => "too many failed attempts; try again later".into(),
            Self::TooManyRequests { .. } => "slow down and retry later".into(),
            Self::Unavailable(_) => "the service cannot reach its database; retry later".into(),
            Self::Integrity(_) | Self::Internal(_) => "see the server log for this request id".into(),
        }
    }
}

#[derive(Serialize)]
struct Problem<'a> {
    #[serde(rename = "type")]
    kind: &'a str,
    title: &'a str,
    status: u16,
    detail: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    errors: Option<&'a FieldErrors>,
}

impl ResponseError for AppError {
    fn status_code(&self) -> StatusCode {
        match self {
            Self::Unauthorized => StatusCode::UNAUTHORIZED,
            Self::Forbidden | Self::PasswordChangeRequired => StatusCode::FORBIDDEN,
            Self::BadRequest(_) | Self::PurposeRequired => StatusCode::BAD_REQUEST,
            Self::PayloadTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            Self::UnsupportedMediaType => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            Self::NotFound => StatusCode::NOT_FOUND,
            Self::Validation(_) => StatusCode::UNPROCESSABLE_ENTITY,
            Self::Conflict(_) => StatusCode::CONFLICT,
            Self::Gone => StatusCode::GONE,
            Self::Locked => StatusCode::LOCKED,
            Self::TooManyRequests { .. } => StatusCode::TOO_MANY_REQUESTS,
            Self::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            Self::Integrity(_) | Self::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    fn error_response(&self) -> HttpResponse {
        // Log the cause here, once, inside the request span (which carries the request id).
        match self {
            Self::Internal(cause) => tracing::error!(cause = %cause, "internal error"),
            Self::Integrity(cause) => tracing::error!(cause = %cause, "integrity failure"),
            Self::Unavailable(cause) => tracing::warn!(cause = %cause, "database unavailable"),
            _ => {}
        }
        let status = self.status_code();
        let (kind, title) = self.problem();
        let errors = match self {
            Self::Validation(e) => Some(e),
            _ => None,
        };
        let body = Problem { kind, title, status: status.as_u16(), detail: self.detail(), errors };
        let mut resp = HttpResponse::build(status);
        resp.insert_header((header::CONTENT_TYPE, HeaderValue::from_static("application/problem+json")));
        match self {
            Self::TooManyRequests { retry_after_secs } => {
                resp.insert_header((header::RETRY_AFTER, retry_after_secs.to_string()));
            }
            Self::Unauthorized => {
                resp.insert_header((header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer")));
            }
            Self::Unavailable(_) => {
                resp.insert_header((header::RETRY_AFTER, "5"));
            }
            _ => {}
        }
        match serde_json::to_vec(&body) {
            Ok(bytes) => resp.body(bytes),
            Err(_) => resp.finish(),
        }
    }
}

impl From<diesel::result::Error> for AppError {
    fn from(e: diesel::result::Error) -> Self {
        use diesel::result::{DatabaseErrorKind, Error};
        match e {
            Error::NotFound => Self::NotFound,
            Error::DatabaseError(
                DatabaseErrorKind::ClosedConnection | DatabaseErrorKind::UnableToSendCommand,
                info,
            ) => Self::Unavailable(info.message().to_string()),
            other => Self::Internal(format!("database: {other}")),
        }
    }
}

impl From<diesel::r2d2::PoolError> for AppError {
    fn from(e: diesel::r2d2::PoolError) -> Self {
        Self::Unavailable(format!("pool: {e}"))
    }
}

impl From<actix_web::error::BlockingError> for AppError {
    fn from(e: actix_web::error::BlockingError) -> Self {
        Self::Internal(format!("blocking pool: {e}"))
    }
}

pub type AppResult<T> = Result<T, AppError>;

#[cfg(test)]
mod tests {
    use super::*;
    use actix_web::body::MessageBody;

    fn body_of(e: &AppError) -> serde_json::Value {
        let resp = e.error_response();
        let bytes = resp.into_body().try_into_bytes().unwrap();
        serde_json::from_slice(&bytes).unwrap()
    }

    #[test]
    fn internal_causes_never_reach_the_client() {
        let e = AppError::Internal("SELECT secret FROM users; password=hunter2".into());
        let b = body_of(&e);
        assert_eq!(b["status"], 500);
        assert!(!b.to_string().contains("hunter2"));
        assert!(!b.to_string().contains("SELECT"));
    }

    #[test]
    fn validation_errors_are_keyed_by_path() {
        let e = AppError::field("identity.legal_name", "too long");
        let b = body_of(&e);
        assert_eq!(b["status"], 422);
        assert_eq!(b["errors"]["identity.legal_name"][0], "too long");
    }

    #[test]
    fn password_change_required_has_its_problem_type() {
        let b = body_of(&AppError::PasswordChangeRequired);
        assert_eq!(b["type"], "password-change-required");
        assert_eq!(b["status"], 403);
    }
}
