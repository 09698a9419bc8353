//! JSON request bodies, in two steps so that API.md's order of precedence holds:
//!
//! 1. The [`JsonBody`] extractor checks content type (415), size (413) and syntax (400). It runs
//!    after authentication and the role check (401, 403), which happen in middleware.
//! 2. The handler asks `access` about the resource (404) and only then calls
//!    [`JsonBody::parse`] to get its typed, validated input (422): a body of the wrong shape
//!    sent to a resource the caller may not know still answers 404, like a missing one.

use std::borrow::Cow;
use std::future::Future;
use std::pin::Pin;

use actix_web::dev::Payload;
use actix_web::http::header;
use actix_web::web::BytesMut;
use actix_web::{FromRequest, HttpRequest};
use futures_util::StreamExt;
use serde::de::DeserializeOwned;
use validator::{Validate, ValidationErrors, ValidationErrorsKind};

use crate::error::{AppError, FieldErrors};

/// The configured body limit, registered as app data by the server.
#[derive(Clone, Copy, Debug)]
pub struct BodyLimit(pub usize);

/// A syntactically valid JSON body, not yet typed.
#[derive(Debug)]
pub struct JsonBody(serde_json::Value);

impl JsonBody {
    /// Types and validates the body: unknown fields, wrong types, missing fields and values
    /// outside their limits all answer 422 naming the field by its path in the body.
    pub fn parse<T: DeserializeOwned + Validate>(self) -> Result<T, AppError> {
        if let Some(path) = find_nul(&self.0, String::new()) {
            return Err(AppError::field(path, "must not contain NUL characters"));
        }
        let value: T = serde_path_to_error::deserialize(self.0).map_err(|e| {
            let (path, message) = describe_shape_error(&e);
            AppError::field(path, message)
        })?;
        value.validate().map_err(|e| AppError::Validation(flatten(&e)))?;
        Ok(value)
    }
}

/// The path of the first string (or key) holding U+0000. No field of the API may hold one, and
/// PostgreSQL cannot store it in text: caught here, it is the client's 422, not a server error.
fn find_nul(value: &serde_json::Value, path: String) -> Option<String> {
    let here = || if path.is_empty() { "body".to_string() } else { path.clone() };
    match value {
        serde_json::Value::String(s) => s.contains('\0').then(here),
        serde_json::Value::Array(items) => {
            items.iter().enumerate().find_map(|(i, v)| find_nul(v, format!("{}[{i}]", here())))
        }
        serde_json::Value::Object(map) => map.iter().find_map(|(k, v)| {
            let child = if path.is_empty() { k.clone() } else { format!("{path}.{k}") };
            if k.contains('\0') { Some(here()) } else { find_nul(v, child) }
        }),
        _ => None,
    }
}

/// The field path and a message for a body of the wrong shape.
fn describe_shape_error(e: &serde_path_to_error::Error<serde_json::Error>) -> (String, String) {
    let parent = e.path().to_string();
    let parent = if parent == "." { String::new() } else { parent };
    let message = e.inner().to_string();
    // serde_json appends " at line L column C"; positions mean nothing for a parsed value.
    let message = message.split(" at line ").next().unwrap_or(&message).to_string();
    // serde reports a missing field at the path of the object lacking it; an unknown one at
    // its own path already.
    if let Some(name) = message.strip_prefix("missing field `").and_then(|rest| rest.split('`').next()) {
        let path = if parent.is_empty() { name.to_string() } else { format!("{parent}.{name}") };
        return (path, "is required".to_string());
    }
    if message.starts_with("unknown field `") {
        return (if parent.is_empty() { "body".to_string() } else { parent }, "is not a known field".to_string());
    }
    let path = if parent.is_empty() { "body".to_string() } else { parent };
    (path, message)
}

/// validator's nested errors -> `a.b[1].c` paths.
pub fn flatten(errors: &ValidationErrors) -> FieldErrors {
    let mut out = FieldErrors::new();
    flatten_into(errors, "", &mut out);
    out
}

fn flatten_into(errors: &ValidationErrors, prefix: &str, out: &mut FieldErrors) {
    for (field, kind) in errors.errors() {
        let path = if prefix.is_empty() { field.to_string() } else { format!("{prefix}.{field}") };
        match kind {
            ValidationErrorsKind::Field(list) => {
                let messages = list
                    .iter()
                    .map(|e| e.message.clone().unwrap_or_else(|| Cow::Owned(e.code.to_string())).into_owned());
                out.entry(path).or_default().extend(messages);
            }
            ValidationErrorsKind::Struct(inner) => flatten_into(inner, &path, out),
            ValidationErrorsKind::List(items) => {
                for (index, inner) in items {
                    flatten_into(inner, &format!("{path}[{index}]"), out);
                }
            }
        }
    }
}

fn is_json_content_type(req: &HttpRequest) -> bool {
    let Some(value) = req.headers().get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()) else {
        return false;
    };
    let essence = value.split(';').next().unwrap_or("").trim();
    essence.eq_ignore_ascii_case("application/json")
}

impl FromRequest for JsonBody {
    type Error = AppError;
    type Future = Pin<Box<dyn Future<Output = Result<Self, AppError>>>>;

    fn from_request(req: &HttpRequest, payload: &mut Payload) -> Self::Future {
        let limit = req.app_data::<BodyLimit>().map_or(64 * 1024, |l| l.0);
        let json = is_json_content_type(req);
        let declared = req
            .headers()
            .get(header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<usize>().ok());
        let mut payload = payload.take();
        Box::pin(async move {
            if !json {
                return Err(AppError::UnsupportedMediaType);
            }
            if declared.is_some_and(|n| n > limit) {
                return Err(AppError::PayloadTooLarge);
            }
            let mut body = BytesMut::new();
            while let Some(chunk) = payload.next().await {
                let chunk = chunk.map_err(|_| AppError::BadRequest("the request body could not be read"))?;
                if body.len() + chunk.len() > limit {
                    return Err(AppError::PayloadTooLarge);
                }
                body.extend_from_slice(&chunk);
            }
            let value: serde_json::Value =
                serde_json::from_slice(&body).map_err(|_| AppError::BadRequest("the body is not valid JSON"))?;
            Ok(JsonBody(value))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;

    #[derive(Debug, Deserialize, Validate)]
    #[serde(deny_unknown_fields)]
    struct Inner {
        #[validate(length(max = 3))]
        name: String,
    }

    #[derive(Debug, Deserialize, Validate)]
    #[serde(deny_unknown_fields)]
    struct Outer {
        #[validate(nested)]
        inner: Inner,
        #[validate(nested)]
        items: Vec<Inner>,
    }

    fn errors_of(v: serde_json::Value) -> FieldErrors {
        match JsonBody(v).parse::<Outer>() {
            Err(AppError::Validation(e)) => e,
            other => panic!("expected 422, got {other:?}"),
        }
    }

    #[test]
    fn fields_are_named_by_their_path_in_the_body() {
        let e = errors_of(serde_json::json!({"inner": {"name": "toolong"}, "items": []}));
        assert!(e.contains_key("inner.name"), "{e:?}");
        let e = errors_of(serde_json::json!({"inner": {"name": "ok"}, "items": [{"name": "a"}, {"name": "long"}]}));
        assert!(e.contains_key("items[1].name"), "{e:?}");
    }

    #[test]
    fn shape_errors_name_the_field() {
        let e = errors_of(serde_json::json!({"inner": {}, "items": []}));
        assert!(e.contains_key("inner.name"), "missing: {e:?}");
        let e = errors_of(serde_json::json!({"inner": {"name": "a"}, "items": [], "extra": 1}));
        assert!(e.contains_key("extra"), "unknown: {e:?}");
        let e = errors_of(serde_json::json!({"inner": {"name": 5}, "items": []}));
        assert!(e.contains_key("inner.name"), "wrong type: {e:?}");
    }
}

#[cfg(test)]
mod nul_tests {
    use super::*;

    #[test]
    fn nul_characters_are_found_wherever_they_hide() {
        let v = serde_json::json!({"a": {"b": ["ok", "bad\u{0}"]}});
        assert_eq!(find_nul(&v, String::new()).as_deref(), Some("a.b[1]"));
        let v = serde_json::json!({"k\u{0}": 1});
        assert_eq!(find_nul(&v, String::new()).as_deref(), Some("body"));
        assert_eq!(find_nul(&serde_json::json!({"a": "fine"}), String::new()), None);
    }
}
