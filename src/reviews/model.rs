//! Reviews as stored and shown.

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;
use validator::Validate;

use crate::db::schema::reviews;
use crate::grading::Scheme;

#[derive(Debug, Deserialize, Validate, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewReview {
    /// Default `4x4`.
    #[serde(default)]
    pub scheme: Scheme,
    /// A value of the scheme's source (reliability) scale: A B C X (4x4), 1 2 3 (3x5x2),
    /// A–F (admiralty).
    pub grade: String,
    #[validate(length(min = 1, max = 2000))]
    pub rationale: String,
    #[schema(value_type = String, format = DateTime)]
    pub next_review_due: DateTime<Utc>,
}

#[derive(Clone, Debug, Queryable, Selectable, Insertable)]
#[diesel(table_name = reviews)]
pub struct ReviewRow {
    pub id: String,
    pub source_id: String,
    pub scheme: String,
    pub grade: String,
    pub rationale: Vec<u8>,
    pub reviewed_by: String,
    pub reviewed_at: chrono::NaiveDateTime,
    pub next_review_due: chrono::NaiveDateTime,
}

#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct ReviewView {
    pub id: Uuid,
    pub scheme: String,
    pub grade: String,
    pub rationale: String,
    pub reviewed_by: Uuid,
    #[serde(serialize_with = "crate::time::serialize")]
    #[schema(value_type = String, format = DateTime)]
    pub reviewed_at: DateTime<Utc>,
    #[serde(serialize_with = "crate::time::serialize")]
    #[schema(value_type = String, format = DateTime)]
    pub next_review_due: DateTime<Utc>,
}
