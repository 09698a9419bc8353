//! Authorisation rows, periods and views.

use chrono::{DateTime, Months, TimeDelta, Utc};
use diesel::prelude::*;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;
use validator::Validate;

use crate::db::schema::authorisations;
use crate::error::{AppError, AppResult};

/// CHIS Code of Practice 4.17: adults 12 months; juveniles 4 (SI 2018/715).
pub const ADULT_MONTHS: u32 = 12;
pub const JUVENILE_MONTHS: u32 = 4;
/// Urgent oral grants are written up afterwards, within 72 hours.
pub const MAX_BACKDATE: TimeDelta = TimeDelta::hours(72);

#[derive(Clone, Debug, Queryable, Selectable, Insertable)]
#[diesel(table_name = authorisations)]
pub struct AuthorisationRow {
    pub id: String,
    pub source_id: String,
    pub purpose: Vec<u8>,
    pub valid_from: chrono::NaiveDateTime,
    pub valid_until: chrono::NaiveDateTime,
    pub granted_by: String,
    pub granted_at: chrono::NaiveDateTime,
    pub cancelled_at: Option<chrono::NaiveDateTime>,
    pub cancelled_by: Option<String>,
    pub cancel_reason: Option<Vec<u8>>,
}

impl AuthorisationRow {
    pub fn uuid(&self) -> Uuid {
        Uuid::parse_str(&self.id).unwrap_or(Uuid::nil())
    }

    /// In force at `t`: `valid_from ≤ t < min(valid_until, cancelled_at)`.
    pub fn in_force_at(&self, t: DateTime<Utc>) -> bool {
        let end = match self.cancelled_at {
            Some(c) => c.min(self.valid_until),
            None => self.valid_until,
        };
        self.valid_from.and_utc() <= t && t < end.and_utc()
    }
}

#[derive(Debug, Deserialize, Validate, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct GrantAuthorisation {
    #[validate(length(min = 1, max = 2000))]
    pub purpose: String,
    #[schema(value_type = String, format = DateTime)]
    pub valid_from: DateTime<Utc>,
    #[schema(value_type = Option<String>, format = DateTime)]
    pub valid_until: Option<DateTime<Utc>>,
}

#[derive(Debug, Deserialize, Validate, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CancelAuthorisation {
    #[validate(length(min = 1, max = 2000))]
    pub reason: String,
}

/// `valid_until` defaults to, and may not exceed, 12 calendar months after `valid_from` (4 for
/// a juvenile), the end of the month clamped (31 January + 1 month = 28/29 February).
pub fn period(
    valid_from: DateTime<Utc>,
    valid_until: Option<DateTime<Utc>>,
    juvenile: bool,
    now: DateTime<Utc>,
) -> AppResult<(DateTime<Utc>, DateTime<Utc>)> {
    if valid_from < now - MAX_BACKDATE {
        return Err(AppError::field("valid_from", "may be at most 72 hours in the past"));
    }
    let months = if juvenile { JUVENILE_MONTHS } else { ADULT_MONTHS };
    let max = valid_from
        .checked_add_months(Months::new(months))
        .ok_or_else(|| AppError::field("valid_from", "is out of range"))?;
    let until = valid_until.unwrap_or(max);
    if until <= valid_from {
        return Err(AppError::field("valid_until", "must be after valid_from"));
    }
    if until > max {
        let what = if juvenile {
            "may be at most 4 months after valid_from for a juvenile"
        } else {
            "may be at most 12 months after valid_from"
        };
        return Err(AppError::field("valid_until", what));
    }
    Ok((crate::time::truncate_micros(valid_from), crate::time::truncate_micros(until)))
}

#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct AuthorisationView {
    pub id: Uuid,
    pub purpose: String,
    #[serde(serialize_with = "crate::time::serialize")]
    #[schema(value_type = String, format = DateTime)]
    pub valid_from: DateTime<Utc>,
    #[serde(serialize_with = "crate::time::serialize")]
    #[schema(value_type = String, format = DateTime)]
    pub valid_until: DateTime<Utc>,
    pub granted_by: Uuid,
    #[serde(serialize_with = "crate::time::serialize_opt")]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub cancelled_at: Option<DateTime<Utc>>,
    /// Present once cancelled.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cancel_reason: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    #[test]
    fn twelve_months_accepted_and_one_day_more_refused() {
        let now = t("2026-01-31T10:00:00Z");
        let (_, until) = period(now, None, false, now).unwrap();
        assert_eq!(until, t("2027-01-31T10:00:00Z"));
        assert!(period(now, Some(t("2027-01-31T10:00:00Z")), false, now).is_ok());
        assert!(period(now, Some(t("2027-02-01T10:00:00Z")), false, now).is_err());
    }

    #[test]
    fn juveniles_get_four_months_with_the_month_end_clamped() {
        let now = t("2026-10-31T09:00:00Z");
        let (_, until) = period(now, None, true, now).unwrap();
        assert_eq!(until, t("2027-02-28T09:00:00Z"));
        assert!(period(now, Some(t("2027-03-01T09:00:00Z")), true, now).is_err());
    }

    #[test]
    fn backdating_is_limited_to_72_hours() {
        let now = t("2026-11-28T10:00:00Z");
        assert!(period(now - TimeDelta::hours(72), None, false, now).is_ok());
        assert!(period(now - TimeDelta::hours(72) - TimeDelta::seconds(1), None, false, now).is_err());
        assert!(period(now, Some(now), false, now).is_err());
    }
}
