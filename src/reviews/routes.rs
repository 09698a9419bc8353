//! `/api/v1/sources/{id}/reviews` and `/api/v1/reviews/due`.

use actix_web::{HttpResponse, web};
use chrono::{DateTime, TimeDelta, Utc};
use diesel::prelude::*;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

use super::model::{NewReview, ReviewView};
use super::queries;
use crate::access::SourceAction;
use crate::audit::{self, Event, Outcome};
use crate::auth::actor::Actor;
use crate::authorisations::queries as authorisation_queries;
use crate::db::schema::sources;
use crate::error::{AppError, AppResult};
use crate::http::context::RequestContext;
use crate::http::json::JsonBody;
use crate::sources::model::{SourceRow, SourceStatus};
use crate::sources::scope::{self, audited_change};
use crate::state::AppState;

#[utoipa::path(post, path = "/api/v1/sources/{id}/reviews", tag = "reviews", security(("bearer" = [])),
    params(("id" = Uuid, Path)), request_body = NewReview,
    responses((status = 201, body = ReviewView), (status = 401), (status = 403), (status = 404), (status = 410),
        (status = 422, description = "a grade outside the scheme's source scale, or a due date in the past")))]
pub async fn create(
    state: web::Data<AppState>,
    ctx: RequestContext,
    actor: Actor,
    id: web::Path<String>,
    body: JsonBody,
) -> AppResult<HttpResponse> {
    let now = state.clock.now();
    let keys = state.keys.clone();
    let view = state
        .db(move |conn| {
            let scope = scope::enter(conn, &ctx, &actor, &id, SourceAction::Manage, "review.create", now)?;
            audited_change(conn, &ctx, scope.event(&actor, "review.create"), now, |conn| {
                let input: NewReview = body.parse()?;
                if !input.scheme.source_values().contains(&input.grade.as_str()) {
                    let allowed = input.scheme.source_values().join(", ");
                    return Err(AppError::field(
                        "grade",
                        format!("must be one of {allowed} for scheme {}", input.scheme.as_str()),
                    ));
                }
                if input.next_review_due <= now {
                    return Err(AppError::field("next_review_due", "must be in the future"));
                }
                let key = keys.source_key(conn, scope.source.uuid())?;
                let row = queries::insert(conn, &key, scope.source.uuid(), &input, actor.user_id, now)?;
                let event = scope.event(&actor, "review.create").resource("review", Some(row.id.clone()));
                Ok((queries::view(&key, &row)?, event))
            })
        })
        .await?;
    Ok(HttpResponse::Created().json(view))
}

#[utoipa::path(get, path = "/api/v1/sources/{id}/reviews", tag = "reviews", security(("bearer" = [])),
    params(("id" = Uuid, Path)),
    responses((status = 200, body = Vec<ReviewView>, description = "history, newest first"), (status = 401), (status = 403), (status = 404), (status = 410)))]
pub async fn list(
    state: web::Data<AppState>,
    ctx: RequestContext,
    actor: Actor,
    id: web::Path<String>,
) -> AppResult<HttpResponse> {
    let now = state.clock.now();
    let keys = state.keys.clone();
    let items = state
        .db(move |conn| {
            let scope = scope::enter(conn, &ctx, &actor, &id, SourceAction::View, "review.list", now)?;
            let opened = keys.source_key(conn, scope.source.uuid()).and_then(|key| {
                queries::history(conn, &scope.source.id)?
                    .iter()
                    .map(|r| queries::view(&key, r))
                    .collect::<AppResult<Vec<_>>>()
            });
            scope.record_read(conn, &ctx, &actor, "review.list", &opened, now)?;
            opened
        })
        .await?;
    Ok(HttpResponse::Ok().json(items))
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct DueQuery {
    /// Days ahead, 0..=366; default 30.
    pub within_days: Option<i64>,
}

/// A source of the caller's unit with a review or an authorisation falling due.
#[derive(Debug, Serialize, ToSchema)]
pub struct DueItem {
    pub source_id: Uuid,
    pub urn: String,
    pub pseudonym: String,
    pub status: String,
    /// The latest review's `next_review_due`; null when never reviewed.
    #[serde(serialize_with = "crate::time::serialize_opt")]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub review_due: Option<DateTime<Utc>>,
    /// `valid_until` of the authorisation in force; null when none is.
    #[serde(serialize_with = "crate::time::serialize_opt")]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub authorisation_valid_until: Option<DateTime<Utc>>,
    /// Any of `review_overdue`, `review_due`, `never_reviewed`, `authorisation_due`,
    /// `authorisation_expired`.
    pub reasons: Vec<&'static str>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct DueList {
    pub items: Vec<DueItem>,
}

fn due_reasons(
    status: SourceStatus,
    review_due: Option<DateTime<Utc>>,
    authorisation_until: Option<DateTime<Utc>>,
    now: DateTime<Utc>,
    horizon: DateTime<Utc>,
) -> Vec<&'static str> {
    let mut reasons = Vec::new();
    match review_due {
        Some(d) if d < now => reasons.push("review_overdue"),
        Some(d) if d <= horizon => reasons.push("review_due"),
        None => reasons.push("never_reviewed"),
        _ => {}
    }
    match authorisation_until {
        Some(u) if u <= horizon => reasons.push("authorisation_due"),
        None if status == SourceStatus::Active => reasons.push("authorisation_expired"),
        _ => {}
    }
    reasons
}

#[utoipa::path(get, path = "/api/v1/reviews/due", tag = "reviews", security(("bearer" = [])), params(DueQuery),
    responses((status = 200, body = DueList, description = "sources of the caller's unit, soonest due first"),
        (status = 401), (status = 403), (status = 422)))]
pub async fn due(
    state: web::Data<AppState>,
    ctx: RequestContext,
    actor: Actor,
    query: web::Query<DueQuery>,
) -> AppResult<HttpResponse> {
    let days = query.within_days.unwrap_or(30);
    if !(0..=366).contains(&days) {
        return Err(AppError::field("within_days", "must be between 0 and 366"));
    }
    let now = state.clock.now();
    let horizon = now + TimeDelta::days(days);
    let list = state
        .db(move |conn| {
            // Controllers oversee every source of their own unit (the role gate admits only them).
            let rows: Vec<SourceRow> = sources::table
                .filter(sources::unit.eq(&actor.unit))
                .filter(sources::status.ne(SourceStatus::Deactivated.as_str()))
                .select(SourceRow::as_select())
                .load(conn)?;
            let ids: Vec<String> = rows.iter().map(|r| r.id.clone()).collect();
            let latest = queries::latest_for(conn, &ids)?;
            let mut in_force: std::collections::HashMap<String, DateTime<Utc>> = std::collections::HashMap::new();
            for a in authorisation_queries::current_for(conn, &ids, now)?.into_iter().filter(|a| a.in_force_at(now)) {
                let until = a.valid_until.and_utc();
                let entry = in_force.entry(a.source_id.clone()).or_insert(until);
                *entry = (*entry).max(until);
            }
            let mut items = Vec::new();
            for row in rows {
                let Some(status) = row.status() else { continue };
                let review_due = latest.get(&row.id).map(|r| r.next_review_due.and_utc());
                let authorisation_valid_until = in_force.get(&row.id).copied();
                let reasons = due_reasons(status, review_due, authorisation_valid_until, now, horizon);
                if reasons.is_empty() {
                    continue;
                }
                items.push(DueItem {
                    source_id: row.uuid(),
                    urn: row.urn,
                    pseudonym: row.pseudonym,
                    status: row.status,
                    review_due,
                    authorisation_valid_until,
                    reasons,
                });
            }
            items.sort_by_key(|i| [i.review_due, i.authorisation_valid_until].into_iter().flatten().min());
            let event = Event::by(&actor, "review.due.list", Outcome::Allowed)
                .resource("source", None)
                .reason("controller_of_unit");
            audit::append_alone(conn, &ctx, event, now)?;
            Ok(DueList { items })
        })
        .await?;
    Ok(HttpResponse::Ok().json(list))
}
