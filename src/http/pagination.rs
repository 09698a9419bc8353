//! `?limit=N&cursor=...` (API.md "Lists") and keyset cursors.
//!
//! A cursor is opaque to clients: base64url of the last item's sort key and id, so the next page
//! starts strictly after it even when many items share the same sort key.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use crate::error::AppError;

pub const DEFAULT_LIMIT: i64 = 50;
pub const MAX_LIMIT: i64 = 200;

#[derive(Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct PageQuery {
    /// 1..=200, default 50.
    pub limit: Option<i64>,
    /// `next_cursor` of the previous page.
    pub cursor: Option<String>,
}

/// The position after which a page starts: the last item's sort key and id.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CursorKey {
    pub k: i64,
    pub id: String,
}

#[derive(Debug)]
pub struct Page {
    pub limit: i64,
    pub after: Option<CursorKey>,
}

impl PageQuery {
    pub fn page(&self) -> Result<Page, AppError> {
        let limit = self.limit.unwrap_or(DEFAULT_LIMIT);
        if !(1..=MAX_LIMIT).contains(&limit) {
            return Err(AppError::field("limit", "must be between 1 and 200"));
        }
        let after = match &self.cursor {
            None => None,
            Some(raw) => Some(decode(raw).ok_or_else(|| AppError::field("cursor", "is not a valid cursor"))?),
        };
        Ok(Page { limit, after })
    }
}

fn decode(raw: &str) -> Option<CursorKey> {
    if raw.len() > 512 {
        return None;
    }
    let bytes = URL_SAFE_NO_PAD.decode(raw).ok()?;
    serde_json::from_slice(&bytes).ok()
}

pub fn encode(key: &CursorKey) -> String {
    URL_SAFE_NO_PAD.encode(serde_json::to_vec(key).unwrap_or_default())
}

#[derive(Debug, Serialize, ToSchema)]
pub struct List<T: Serialize> {
    pub items: Vec<T>,
    pub next_cursor: Option<String>,
}

impl<T: Serialize> List<T> {
    /// `rows` were fetched with `limit + 1`: the extra row only says that another page exists.
    pub fn from_rows<R>(mut rows: Vec<R>, limit: i64, key: impl Fn(&R) -> CursorKey, view: impl Fn(R) -> T) -> Self {
        let more = rows.len() as i64 > limit;
        rows.truncate(limit as usize);
        let next_cursor = if more { rows.last().map(|r| encode(&key(r))) } else { None };
        Self { items: rows.into_iter().map(view).collect(), next_cursor }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limits_and_cursors_are_checked() {
        assert!(PageQuery { limit: Some(0), cursor: None }.page().is_err());
        assert!(PageQuery { limit: Some(201), cursor: None }.page().is_err());
        assert_eq!(PageQuery::default().page().unwrap().limit, 50);
        assert!(PageQuery { limit: None, cursor: Some("%%%".into()) }.page().is_err());
        let key = CursorKey { k: 42, id: "abc".into() };
        let q = PageQuery { limit: Some(5), cursor: Some(encode(&key)) };
        assert_eq!(q.page().unwrap().after, Some(key));
    }
}
