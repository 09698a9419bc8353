//! Values stored encrypted, one column each: the value is serialised as JSON and sealed under
//! its owner's data key, bound by the AAD to its table, column, row and owner
//! (docs/encryption.md). Domain modules use these two functions and never touch AES directly.

use serde::Serialize;
use serde::de::DeserializeOwned;
use uuid::Uuid;

use crate::crypto::{DataKey, FieldContext};
use crate::error::{AppError, AppResult};

/// Where a sealed value lives: table, column, row. The owner is the data key's.
#[derive(Clone, Copy, Debug)]
pub struct Place {
    pub table: &'static str,
    pub column: &'static str,
    pub row_id: Uuid,
}

impl Place {
    pub fn new(table: &'static str, column: &'static str, row_id: Uuid) -> Self {
        Self { table, column, row_id }
    }

    fn context(&self, key: &DataKey) -> FieldContext {
        FieldContext::new(self.table, self.column, self.row_id, key.owner())
    }
}

pub fn seal<T: Serialize + ?Sized>(key: &DataKey, place: Place, value: &T) -> AppResult<Vec<u8>> {
    let plain = zeroize::Zeroizing::new(serde_json::to_vec(value).map_err(AppError::internal)?);
    key.seal(&place.context(key), &plain).map_err(|e| {
        AppError::internal(format!("sealing {}.{} of row {}: {e}", place.table, place.column, place.row_id))
    })
}

/// Opens a sealed value. Any failure — wrong row, column or owner, a flipped bit, a key that is
/// not this owner's — is an integrity error naming table, column and row (never data).
pub fn open<T: DeserializeOwned>(key: &DataKey, place: Place, blob: &[u8]) -> AppResult<T> {
    let integrity =
        |what: &str| AppError::Integrity(format!("{}.{} of row {} {what}", place.table, place.column, place.row_id));
    let plain = key.open(&place.context(key), blob).map_err(|_| integrity("does not decrypt in its place"))?;
    serde_json::from_slice(&plain).map_err(|_| integrity("holds no valid value"))
}
