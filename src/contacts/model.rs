//! Contacts, intelligence items and amendments as the API sees them.

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;
use validator::Validate;

use crate::db::schema::{contact_amendments, contacts, intelligence_items};
use crate::grading::Grading;

pub const MAX_TEXT: u64 = 20_000;
pub const MAX_ITEMS: u64 = 50;
/// A week: longer "contacts" are several contacts.
pub const MAX_DURATION_MINUTES: i32 = 10_080;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum ContactType {
    Meeting,
    Phone,
    Message,
    Other,
}

impl ContactType {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Meeting => "meeting",
            Self::Phone => "phone",
            Self::Message => "message",
            Self::Other => "other",
        }
    }
}

#[derive(Clone, Debug, Deserialize, Serialize, Validate, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewItem {
    #[validate(length(min = 1, max = 20000))]
    pub content: String,
    pub grading: Grading,
}

#[derive(Clone, Debug, Deserialize, Validate, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewContact {
    /// Not in the future (5 minutes of clock skew tolerated); may precede registration.
    #[schema(value_type = String, format = DateTime)]
    pub occurred_at: DateTime<Utc>,
    #[serde(default)]
    #[validate(range(min = 0, max = 10080))]
    pub duration_minutes: Option<i32>,
    pub contact_type: ContactType,
    #[serde(default)]
    #[validate(length(max = 20000))]
    pub location: Option<String>,
    #[validate(length(min = 1, max = 20000))]
    pub summary: String,
    #[serde(default)]
    #[validate(length(max = 20000))]
    pub tasking: Option<String>,
    #[serde(default)]
    #[validate(length(max = 20000))]
    pub welfare_concerns: Option<String>,
    #[validate(length(max = 50), nested)]
    pub intelligence: Vec<NewItem>,
}

#[derive(Clone, Debug, Queryable, Selectable, Insertable)]
#[diesel(table_name = contacts)]
pub struct ContactRow {
    pub id: String,
    pub source_id: String,
    pub occurred_at: chrono::NaiveDateTime,
    pub effective_occurred_at: chrono::NaiveDateTime,
    pub duration_minutes: Option<i32>,
    pub contact_type: String,
    pub location: Vec<u8>,
    pub summary: Vec<u8>,
    pub tasking: Vec<u8>,
    pub welfare_concerns: Vec<u8>,
    pub recorded_by: String,
    pub recorded_at: chrono::NaiveDateTime,
    pub status_drift: bool,
}

impl ContactRow {
    pub fn uuid(&self) -> Uuid {
        Uuid::parse_str(&self.id).unwrap_or(Uuid::nil())
    }
}

#[derive(Clone, Debug, Queryable, Selectable, Insertable)]
#[diesel(table_name = intelligence_items)]
pub struct ItemRow {
    pub id: String,
    pub contact_id: String,
    pub source_id: String,
    pub position: i32,
    pub content: Vec<u8>,
    pub scheme: String,
    pub source_grade: String,
    pub information_grade: String,
    pub handling: Option<String>,
    pub handling_conditions: Option<Vec<u8>>,
}

#[derive(Clone, Debug, Queryable, Selectable, Insertable)]
#[diesel(table_name = contact_amendments)]
pub struct AmendmentRow {
    pub id: String,
    pub contact_id: String,
    pub field: String,
    pub previous_value: Vec<u8>,
    pub new_value: Vec<u8>,
    pub reason: Vec<u8>,
    pub amended_by: String,
    pub amended_at: chrono::NaiveDateTime,
}

#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct GradingView {
    pub scheme: String,
    pub source: String,
    pub information: String,
    pub handling: Option<String>,
    pub handling_conditions: Option<String>,
}

#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct ItemView {
    pub id: Uuid,
    pub content: String,
    pub grading: GradingView,
}

#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct AmendmentView {
    pub id: Uuid,
    pub field: String,
    #[schema(value_type = Object)]
    pub previous_value: serde_json::Value,
    #[schema(value_type = Object)]
    pub new_value: serde_json::Value,
    pub reason: String,
    pub amended_by: Uuid,
    #[serde(serialize_with = "crate::time::serialize")]
    #[schema(value_type = String, format = DateTime)]
    pub amended_at: DateTime<Utc>,
}

/// A contact with its amendments applied; `amendments` keeps every previous value.
#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct ContactView {
    pub id: Uuid,
    pub source_id: Uuid,
    #[serde(serialize_with = "crate::time::serialize")]
    #[schema(value_type = String, format = DateTime)]
    pub occurred_at: DateTime<Utc>,
    pub duration_minutes: Option<i32>,
    pub contact_type: String,
    pub location: Option<String>,
    pub summary: String,
    pub tasking: Option<String>,
    pub welfare_concerns: Option<String>,
    pub recorded_by: Uuid,
    #[serde(serialize_with = "crate::time::serialize")]
    #[schema(value_type = String, format = DateTime)]
    pub recorded_at: DateTime<Utc>,
    /// `status_drift` when no authorisation was in force at `occurred_at`.
    pub flags: Vec<&'static str>,
    pub intelligence: Vec<ItemView>,
    pub amendments: Vec<AmendmentView>,
}
