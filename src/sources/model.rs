//! Sources as typed values: status, risk level, the stored row and the pseudonymised view.

use std::str::FromStr;

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

use crate::db::schema::sources;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum SourceStatus {
    Pending,
    Active,
    Suspended,
    Deactivated,
}

impl SourceStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Active => "active",
            Self::Suspended => "suspended",
            Self::Deactivated => "deactivated",
        }
    }

    /// API.md: `pending` → `active` ⇄ `suspended`; any → `deactivated`; `deactivated` →
    /// `active` (a reactivation, flagged for good). Everything else is a 409.
    pub fn may_become(self, to: SourceStatus) -> bool {
        use SourceStatus::*;
        matches!(
            (self, to),
            (Pending, Active)
                | (Active, Suspended)
                | (Suspended, Active)
                | (Pending | Active | Suspended, Deactivated)
                | (Deactivated, Active)
        )
    }
}

impl FromStr for SourceStatus {
    type Err = ();
    fn from_str(s: &str) -> Result<Self, ()> {
        match s {
            "pending" => Ok(Self::Pending),
            "active" => Ok(Self::Active),
            "suspended" => Ok(Self::Suspended),
            "deactivated" => Ok(Self::Deactivated),
            _ => Err(()),
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum RiskLevel {
    Low,
    Medium,
    High,
}

impl RiskLevel {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Low => "low",
            Self::Medium => "medium",
            Self::High => "high",
        }
    }
}

#[derive(Clone, Debug, Queryable, Selectable, Insertable)]
#[diesel(table_name = sources)]
pub struct SourceRow {
    pub id: String,
    pub urn: String,
    pub pseudonym: String,
    pub unit: String,
    pub status: String,
    pub risk_level: String,
    pub juvenile: bool,
    pub registered_at: chrono::NaiveDateTime,
    pub registered_by: String,
    pub blind_index: Option<i64>,
    pub duplicate_suspected: bool,
    pub status_drift: bool,
    pub reactivated: bool,
    pub updated_at: chrono::NaiveDateTime,
}

impl SourceRow {
    pub fn uuid(&self) -> Uuid {
        Uuid::parse_str(&self.id).unwrap_or(Uuid::nil())
    }

    pub fn status(&self) -> Option<SourceStatus> {
        self.status.parse().ok()
    }
}

/// An active assignment as shown inside a source.
#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct AssignmentSummary {
    pub id: Uuid,
    pub user_id: Uuid,
    pub display_name: String,
    /// `handler` | `co_handler` | `controller`
    pub role: String,
    #[serde(serialize_with = "crate::time::serialize")]
    #[schema(value_type = String, format = DateTime)]
    pub started_at: DateTime<Utc>,
}

#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct AuthorisationSummary {
    pub id: Uuid,
    #[serde(serialize_with = "crate::time::serialize")]
    #[schema(value_type = String, format = DateTime)]
    pub valid_until: DateTime<Utc>,
}

#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct ReliabilitySummary {
    pub scheme: String,
    pub grade: String,
    #[serde(serialize_with = "crate::time::serialize")]
    #[schema(value_type = String, format = DateTime)]
    pub reviewed_at: DateTime<Utc>,
}

/// The pseudonymised view (API.md "Sources"). It never contains identity fields.
#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct SourceView {
    pub id: Uuid,
    pub urn: String,
    pub pseudonym: String,
    pub unit: String,
    pub status: SourceStatus,
    pub risk_level: String,
    pub juvenile: bool,
    #[serde(serialize_with = "crate::time::serialize")]
    #[schema(value_type = String, format = DateTime)]
    pub registered_at: DateTime<Utc>,
    pub registered_by: Uuid,
    /// Any of `duplicate_suspected` (controllers of the unit only), `status_drift`,
    /// `reactivated`, `review_overdue`, `authorisation_expired`.
    pub flags: Vec<&'static str>,
    pub assignments: Vec<AssignmentSummary>,
    pub authorisation: Option<AuthorisationSummary>,
    pub reliability: Option<ReliabilitySummary>,
}

#[cfg(test)]
mod tests {
    use super::SourceStatus::{self, *};

    #[test]
    fn only_the_transitions_of_the_contract_are_allowed() {
        let all = [Pending, Active, Suspended, Deactivated];
        let allowed: Vec<(SourceStatus, SourceStatus)> = all
            .iter()
            .flat_map(|from| all.iter().map(move |to| (*from, *to)))
            .filter(|(from, to)| from.may_become(*to))
            .collect();
        assert_eq!(
            allowed,
            vec![
                (Pending, Active),
                (Pending, Deactivated),
                (Active, Suspended),
                (Active, Deactivated),
                (Suspended, Active),
                (Suspended, Deactivated),
                (Deactivated, Active)
            ]
        );
    }
}
