//! The sterile identity: every field sealed under the source's data key, bound to its row
//! (`source_identities`, row id = source id) and column. Returned only by the identity
//! endpoints; never part of a source view or list.

use chrono::{DateTime, NaiveDate, Utc};
use diesel::prelude::*;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;
use validator::{Validate, ValidationError};

use crate::crypto::DataKey;
use crate::db::DbConnection;
use crate::db::schema::source_identities;
use crate::error::{AppError, AppResult};
use crate::sealed::{self, Place};
use crate::time::to_db;

const TABLE: &str = "source_identities";

fn each_alias(aliases: &[String]) -> Result<(), ValidationError> {
    if aliases.iter().any(|a| a.trim().is_empty() || a.chars().count() > 200) {
        return Err(ValidationError::new("length").with_message("each alias must be 1 to 200 characters".into()));
    }
    Ok(())
}

/// A true identity (API.md "Sources").
#[derive(Clone, Debug, Deserialize, Serialize, Validate, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Identity {
    #[validate(length(min = 1, max = 200))]
    pub legal_name: String,
    #[serde(default)]
    #[validate(length(max = 20), custom(function = "each_alias"))]
    pub aliases: Vec<String>,
    /// `YYYY-MM-DD`
    #[serde(default)]
    #[schema(value_type = Option<String>, format = Date)]
    pub date_of_birth: Option<NaiveDate>,
    #[serde(default)]
    #[validate(length(max = 200))]
    pub nationality: Option<String>,
    #[serde(default)]
    #[validate(length(max = 200))]
    pub phone: Option<String>,
    #[serde(default)]
    #[validate(length(max = 200))]
    pub address: Option<String>,
    #[serde(default)]
    #[validate(length(max = 10000))]
    pub notes: Option<String>,
}

impl Identity {
    /// Under 18 on `on`? `None` without a date of birth.
    pub fn is_minor_on(&self, on: NaiveDate) -> Option<bool> {
        let dob = self.date_of_birth?;
        Some(on.years_since(dob).is_none_or(|age| age < 18))
    }

    /// A date of birth in the future is a typo, not a person.
    pub fn check_dates(&self, today: NaiveDate) -> AppResult<()> {
        match self.date_of_birth {
            Some(d) if d > today => Err(AppError::field("identity.date_of_birth", "must not be in the future")),
            _ => Ok(()),
        }
    }
}

fn seal<T: Serialize>(key: &DataKey, column: &'static str, source_id: Uuid, value: &T) -> AppResult<Vec<u8>> {
    // Each field is sealed as its JSON value, so an absent field and a present one look alike
    // in storage: not even the presence of a phone number shows.
    sealed::seal(key, Place::new(TABLE, column, source_id), value)
}

fn open<T: DeserializeOwned>(key: &DataKey, column: &'static str, source_id: Uuid, blob: &[u8]) -> AppResult<T> {
    sealed::open(key, Place::new(TABLE, column, source_id), blob)
}

#[derive(Queryable, Selectable, Insertable, AsChangeset)]
#[diesel(table_name = source_identities)]
struct IdentityRow {
    source_id: String,
    legal_name: Vec<u8>,
    aliases: Vec<u8>,
    date_of_birth: Vec<u8>,
    nationality: Vec<u8>,
    phone: Vec<u8>,
    address: Vec<u8>,
    notes: Vec<u8>,
    updated_at: chrono::NaiveDateTime,
    updated_by: String,
}

fn sealed_row(
    key: &DataKey,
    source_id: Uuid,
    identity: &Identity,
    by: Uuid,
    now: DateTime<Utc>,
) -> AppResult<IdentityRow> {
    Ok(IdentityRow {
        source_id: source_id.to_string(),
        legal_name: seal(key, "legal_name", source_id, &identity.legal_name)?,
        aliases: seal(key, "aliases", source_id, &identity.aliases)?,
        date_of_birth: seal(key, "date_of_birth", source_id, &identity.date_of_birth)?,
        nationality: seal(key, "nationality", source_id, &identity.nationality)?,
        phone: seal(key, "phone", source_id, &identity.phone)?,
        address: seal(key, "address", source_id, &identity.address)?,
        notes: seal(key, "notes", source_id, &identity.notes)?,
        updated_at: to_db(now),
        updated_by: by.to_string(),
    })
}

pub fn insert(
    conn: &mut DbConnection,
    key: &DataKey,
    source_id: Uuid,
    identity: &Identity,
    by: Uuid,
    now: DateTime<Utc>,
) -> AppResult<()> {
    let row = sealed_row(key, source_id, identity, by, now)?;
    diesel::insert_into(source_identities::table).values(&row).execute(conn)?;
    Ok(())
}

pub fn replace(
    conn: &mut DbConnection,
    key: &DataKey,
    source_id: Uuid,
    identity: &Identity,
    by: Uuid,
    now: DateTime<Utc>,
) -> AppResult<()> {
    let row = sealed_row(key, source_id, identity, by, now)?;
    let n = diesel::update(source_identities::table.find(source_id.to_string())).set(&row).execute(conn)?;
    if n != 1 {
        return Err(AppError::Integrity(format!("source {source_id} has no identity row")));
    }
    Ok(())
}

pub fn read(conn: &mut DbConnection, key: &DataKey, source_id: Uuid) -> AppResult<Identity> {
    let row: IdentityRow = source_identities::table
        .find(source_id.to_string())
        .select(IdentityRow::as_select())
        .first(conn)
        .optional()?
        .ok_or_else(|| AppError::Integrity(format!("source {source_id} has no identity row")))?;
    Ok(Identity {
        legal_name: open(key, "legal_name", source_id, &row.legal_name)?,
        aliases: open(key, "aliases", source_id, &row.aliases)?,
        date_of_birth: open(key, "date_of_birth", source_id, &row.date_of_birth)?,
        nationality: open(key, "nationality", source_id, &row.nationality)?,
        phone: open(key, "phone", source_id, &row.phone)?,
        address: open(key, "address", source_id, &row.address)?,
        notes: open(key, "notes", source_id, &row.notes)?,
    })
}
