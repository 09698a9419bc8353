//! Assignment roles and rows.

use std::str::FromStr;

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

use crate::db::schema::assignments;
use crate::users::model::Role;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum AssignmentRole {
    Handler,
    CoHandler,
    Controller,
}

impl AssignmentRole {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Handler => "handler",
            Self::CoHandler => "co_handler",
            Self::Controller => "controller",
        }
    }

    /// The user role an assignee must hold: `controller` for a controller assignment,
    /// `handler` for the other two.
    pub fn required_user_role(self) -> Role {
        match self {
            Self::Controller => Role::Controller,
            Self::Handler | Self::CoHandler => Role::Handler,
        }
    }
}

impl FromStr for AssignmentRole {
    type Err = ();
    fn from_str(s: &str) -> Result<Self, ()> {
        match s {
            "handler" => Ok(Self::Handler),
            "co_handler" => Ok(Self::CoHandler),
            "controller" => Ok(Self::Controller),
            _ => Err(()),
        }
    }
}

#[derive(Clone, Debug, Queryable, Selectable, Insertable)]
#[diesel(table_name = assignments)]
pub struct AssignmentRow {
    pub id: String,
    pub source_id: String,
    pub user_id: String,
    pub role: String,
    pub started_at: chrono::NaiveDateTime,
    pub ended_at: Option<chrono::NaiveDateTime>,
    pub assigned_by: String,
    pub ended_by: Option<String>,
}

/// An assignment in the history (API.md "Assignments").
#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct AssignmentView {
    pub id: Uuid,
    pub user_id: Uuid,
    pub display_name: String,
    pub role: String,
    #[serde(serialize_with = "crate::time::serialize")]
    #[schema(value_type = String, format = DateTime)]
    pub started_at: DateTime<Utc>,
    #[serde(serialize_with = "crate::time::serialize_opt")]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub ended_at: Option<DateTime<Utc>>,
    pub assigned_by: Uuid,
}

impl AssignmentView {
    pub fn from_row(row: &AssignmentRow, display_name: String) -> Self {
        let id = |s: &str| Uuid::parse_str(s).unwrap_or(Uuid::nil());
        Self {
            id: id(&row.id),
            user_id: id(&row.user_id),
            display_name,
            role: row.role.clone(),
            started_at: row.started_at.and_utc(),
            ended_at: row.ended_at.map(|t| t.and_utc()),
            assigned_by: id(&row.assigned_by),
        }
    }
}
