//! The `X-Access-Purpose` header: why the caller is reading or changing sensitive data.

use actix_web::{FromRequest, HttpRequest};

use crate::error::AppError;

pub const PURPOSE_HEADER: &str = "x-access-purpose";

/// A purpose of 10..=500 characters. INVARIANT: only constructed through [`Purpose::parse`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Purpose(String);

impl Purpose {
    pub fn parse(raw: &str) -> Option<Self> {
        let trimmed = raw.trim();
        let chars = trimmed.chars().count();
        if !(10..=500).contains(&chars) || trimmed.chars().any(char::is_control) {
            return None;
        }
        Some(Self(trimmed.to_string()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The purpose sent with any request, if present and valid; recorded in its audit event.
    pub fn optional(req: &HttpRequest) -> Option<Self> {
        req.headers().get(PURPOSE_HEADER).and_then(|v| std::str::from_utf8(v.as_bytes()).ok()).and_then(Self::parse)
    }
}

/// Extracting `Purpose` makes the header required: 400 when missing or invalid.
impl FromRequest for Purpose {
    type Error = AppError;
    type Future = std::future::Ready<Result<Self, AppError>>;

    fn from_request(req: &HttpRequest, _: &mut actix_web::dev::Payload) -> Self::Future {
        std::future::ready(Self::optional(req).ok_or(AppError::PurposeRequired))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn purpose_length_is_enforced_in_characters() {
        assert!(Purpose::parse("short").is_none());
        assert!(Purpose::parse("Op SAHEL-7: review").is_some());
        assert!(Purpose::parse(&"é".repeat(500)).is_some());
        assert!(Purpose::parse(&"é".repeat(501)).is_none());
        assert!(Purpose::parse("line one\nline two ok").is_none());
    }
}
