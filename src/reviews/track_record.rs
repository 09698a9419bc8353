//! `GET /api/v1/sources/{id}/track-record`: a basis for reviews that is computed, not
//! remembered — graded items by grade and handling code, contacts per month, days since the
//! last contact, and the latest review. Grades are counted per scheme, never converted.

use std::collections::BTreeMap;

use actix_web::{HttpResponse, web};
use chrono::{DateTime, Utc};
use diesel::dsl::count_star;
use diesel::prelude::*;
use serde::Serialize;
use utoipa::ToSchema;
use uuid::Uuid;

use super::model::ReviewView;
use super::queries;
use crate::access::SourceAction;
use crate::auth::actor::Actor;
use crate::db::schema::{contacts, intelligence_items};
use crate::error::AppResult;
use crate::http::context::RequestContext;
use crate::sources::scope;
use crate::state::AppState;

#[derive(Debug, Serialize, ToSchema)]
pub struct GradeCount {
    pub scheme: String,
    pub source: String,
    pub information: String,
    pub count: i64,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct HandlingCount {
    pub scheme: String,
    /// null for schemes without handling codes (admiralty).
    pub handling: Option<String>,
    pub count: i64,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct MonthCount {
    /// `YYYY-MM`
    pub month: String,
    pub count: i64,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct TrackRecord {
    pub source_id: Uuid,
    pub total_contacts: i64,
    pub total_items: i64,
    pub items_by_grade: Vec<GradeCount>,
    pub items_by_handling: Vec<HandlingCount>,
    pub contacts_per_month: Vec<MonthCount>,
    #[serde(serialize_with = "crate::time::serialize_opt")]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub last_contact_at: Option<DateTime<Utc>>,
    pub days_since_last_contact: Option<i64>,
    pub latest_review: Option<ReviewView>,
}

#[utoipa::path(get, path = "/api/v1/sources/{id}/track-record", tag = "reviews", security(("bearer" = [])),
    params(("id" = Uuid, Path)),
    responses((status = 200, body = TrackRecord), (status = 401), (status = 403), (status = 404), (status = 410)))]
pub async fn get(
    state: web::Data<AppState>,
    ctx: RequestContext,
    actor: Actor,
    id: web::Path<String>,
) -> AppResult<HttpResponse> {
    let now = state.clock.now();
    let keys = state.keys.clone();
    let record = state
        .db(move |conn| {
            let scope = scope::enter(conn, &ctx, &actor, &id, SourceAction::View, "source.track_record.read", now)?;
            let source_id = scope.source.id.clone();
            let computed = (|| {
                let by_grade: Vec<(String, String, String, i64)> = intelligence_items::table
                    .filter(intelligence_items::source_id.eq(&source_id))
                    .group_by((
                        intelligence_items::scheme,
                        intelligence_items::source_grade,
                        intelligence_items::information_grade,
                    ))
                    .select((
                        intelligence_items::scheme,
                        intelligence_items::source_grade,
                        intelligence_items::information_grade,
                        count_star(),
                    ))
                    .order((
                        intelligence_items::scheme,
                        intelligence_items::source_grade,
                        intelligence_items::information_grade,
                    ))
                    .load(conn)?;
                let by_handling: Vec<(String, Option<String>, i64)> = intelligence_items::table
                    .filter(intelligence_items::source_id.eq(&source_id))
                    .group_by((intelligence_items::scheme, intelligence_items::handling))
                    .select((intelligence_items::scheme, intelligence_items::handling, count_star()))
                    .order((intelligence_items::scheme, intelligence_items::handling))
                    .load(conn)?;
                // Timestamps only (clear text): months are bucketed here so the SQL stays the
                // same on both backends.
                let times: Vec<chrono::NaiveDateTime> = contacts::table
                    .filter(contacts::source_id.eq(&source_id))
                    .select(contacts::effective_occurred_at)
                    .load(conn)?;
                let mut months: BTreeMap<String, i64> = BTreeMap::new();
                for t in &times {
                    *months.entry(t.format("%Y-%m").to_string()).or_default() += 1;
                }
                let last = times.iter().max().map(|t| t.and_utc());
                let latest_review =
                    match queries::latest_for(conn, std::slice::from_ref(&source_id))?.remove(&source_id) {
                        Some(row) => Some(queries::view(&*keys.source_key(conn, scope.source.uuid())?, &row)?),
                        None => None,
                    };
                Ok(TrackRecord {
                    source_id: scope.source.uuid(),
                    total_contacts: times.len() as i64,
                    total_items: by_grade.iter().map(|g| g.3).sum(),
                    items_by_grade: by_grade
                        .into_iter()
                        .map(|(scheme, source, information, count)| GradeCount { scheme, source, information, count })
                        .collect(),
                    items_by_handling: by_handling
                        .into_iter()
                        .map(|(scheme, handling, count)| HandlingCount { scheme, handling, count })
                        .collect(),
                    contacts_per_month: months.into_iter().map(|(month, count)| MonthCount { month, count }).collect(),
                    last_contact_at: last,
                    days_since_last_contact: last.map(|t| (now - t).num_days()),
                    latest_review,
                })
            })();
            scope.record_read(conn, &ctx, &actor, "source.track_record.read", &computed, now)?;
            computed
        })
        .await?;
    Ok(HttpResponse::Ok().json(record))
}
