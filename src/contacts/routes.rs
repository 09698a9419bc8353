//! `/api/v1/sources/{id}/contacts` and `/api/v1/contacts/{id}...`: the handlers' hot path.

use actix_web::{HttpResponse, web};
use chrono::{DateTime, TimeDelta, Utc};
use serde::Deserialize;
use serde_json::Value;
use utoipa::ToSchema;
use validator::Validate;

use super::model::{AmendmentView, ContactType, ContactView, MAX_DURATION_MINUTES, MAX_TEXT, NewContact};
use super::store::{self, NewAmendment};
use crate::access::SourceAction;
use crate::audit;
use crate::auth::actor::Actor;
use crate::error::{AppError, AppResult, FieldErrors};
use crate::http::context::RequestContext;
use crate::http::json::JsonBody;
use crate::http::pagination::{List, PageQuery, encode};
use crate::sources::scope::{self, SourceScope, audited_change};
use crate::state::AppState;

/// Clock skew tolerated for "not in the future".
const SKEW: TimeDelta = TimeDelta::minutes(5);

fn check_contact(input: &NewContact, now: DateTime<Utc>) -> AppResult<()> {
    let mut errors = FieldErrors::new();
    if input.occurred_at > now + SKEW {
        errors.entry("occurred_at".into()).or_default().push("must not be in the future".into());
    }
    for (i, item) in input.intelligence.iter().enumerate() {
        item.grading.check(&format!("intelligence[{i}].grading"), &mut errors);
    }
    if errors.is_empty() { Ok(()) } else { Err(AppError::Validation(errors)) }
}

/// Records drift on the source and for compliance when a contact falls outside every
/// authorisation.
fn record_drift(
    conn: &mut crate::db::DbConnection,
    ctx: &RequestContext,
    actor: &Actor,
    scope: &SourceScope,
    contact_id: &str,
    now: DateTime<Utc>,
) -> AppResult<()> {
    store::flag_source_drift(conn, &scope.source.id)?;
    let event = scope
        .event(actor, "contact.status_drift")
        .resource("contact", Some(contact_id.to_string()))
        .reason("no_authorisation_in_force");
    audit::append(conn, ctx, event, now)
}

#[utoipa::path(post, path = "/api/v1/sources/{id}/contacts", tag = "contacts", security(("bearer" = [])),
    params(("id" = uuid::Uuid, Path)), request_body = NewContact,
    responses((status = 201, body = ContactView), (status = 401), (status = 403), (status = 404), (status = 410),
        (status = 422, description = "invalid field or grade, or occurred_at in the future")))]
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
            let scope = scope::enter(conn, &ctx, &actor, &id, SourceAction::LogContact, "contact.create", now)?;
            audited_change(conn, &ctx, scope.event(&actor, "contact.create"), now, |conn| {
                let input: NewContact = body.parse()?;
                check_contact(&input, now)?;
                let drift = store::is_status_drift(conn, &scope.source.id, input.occurred_at)?;
                let key = keys.source_key(conn, scope.source.uuid())?;
                let (row, items) = store::insert(conn, &key, scope.source.uuid(), &input, actor.user_id, drift, now)?;
                if drift {
                    record_drift(conn, &ctx, &actor, &scope, &row.id, now)?;
                }
                let view = store::new_view(&key, &row, &items)?;
                Ok((view, scope.event(&actor, "contact.create").resource("contact", Some(row.id.clone()))))
            })
        })
        .await?;
    Ok(HttpResponse::Created().json(view))
}

#[utoipa::path(get, path = "/api/v1/sources/{id}/contacts", tag = "contacts", security(("bearer" = [])),
    params(("id" = uuid::Uuid, Path), PageQuery),
    responses((status = 200, body = inline(List<ContactView>), description = "newest occurred_at first"),
        (status = 401), (status = 403), (status = 404), (status = 410), (status = 422)))]
pub async fn list(
    state: web::Data<AppState>,
    ctx: RequestContext,
    actor: Actor,
    id: web::Path<String>,
    query: web::Query<PageQuery>,
) -> AppResult<HttpResponse> {
    let page = query.page()?;
    let now = state.clock.now();
    let keys = state.keys.clone();
    let list = state
        .db(move |conn| {
            let scope = scope::enter(conn, &ctx, &actor, &id, SourceAction::View, "contact.list", now)?;
            let opened = (|| {
                let mut rows = store::page(conn, &scope.source.id, &page)?;
                let more = rows.len() as i64 > page.limit;
                rows.truncate(page.limit as usize);
                let next_cursor = if more { rows.last().map(|r| encode(&store::cursor_key(r))) } else { None };
                // One data key for the whole page, never one unwrap per field.
                let key = keys.source_key(conn, scope.source.uuid())?;
                Ok(List { items: store::views(conn, &key, &rows)?, next_cursor })
            })();
            scope.record_read(conn, &ctx, &actor, "contact.list", &opened, now)?;
            opened
        })
        .await?;
    Ok(HttpResponse::Ok().json(list))
}

#[utoipa::path(get, path = "/api/v1/contacts/{id}", tag = "contacts", security(("bearer" = [])),
    params(("id" = uuid::Uuid, Path)),
    responses((status = 200, body = ContactView), (status = 401), (status = 403), (status = 404), (status = 410)))]
pub async fn get(
    state: web::Data<AppState>,
    ctx: RequestContext,
    actor: Actor,
    id: web::Path<String>,
) -> AppResult<HttpResponse> {
    let now = state.clock.now();
    let keys = state.keys.clone();
    let view = state
        .db(move |conn| {
            let scope = scope::enter_via(
                conn,
                &ctx,
                &actor,
                "contact",
                &id,
                store::source_of,
                SourceAction::View,
                "contact.read",
                now,
            )?;
            let opened = (|| {
                let row = store::find(conn, &id)?.ok_or(AppError::NotFound)?;
                let key = keys.source_key(conn, scope.source.uuid())?;
                store::views(conn, &key, std::slice::from_ref(&row))?.pop().ok_or(AppError::NotFound)
            })();
            scope.record_read(conn, &ctx, &actor, "contact.read", &opened, now)?;
            opened
        })
        .await?;
    Ok(HttpResponse::Ok().json(view))
}

#[derive(Debug, Deserialize, Validate, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AmendContact {
    /// One of `occurred_at`, `duration_minutes`, `contact_type`, `location`, `summary`,
    /// `tasking`, `welfare_concerns`.
    #[validate(length(min = 1, max = 64))]
    pub field: String,
    #[schema(value_type = Object)]
    pub new_value: Value,
    #[validate(length(min = 1, max = 2000))]
    pub reason: String,
}

/// The new value, checked as its field requires and in canonical form.
fn checked_value(field: &str, value: &Value, now: DateTime<Utc>) -> AppResult<Value> {
    let bad = |m: &str| AppError::field("new_value", m);
    let text = |required: bool| -> AppResult<Value> {
        match value {
            Value::Null if !required => Ok(Value::Null),
            Value::String(s) if (!required || !s.trim().is_empty()) && s.chars().count() as u64 <= MAX_TEXT => {
                Ok(value.clone())
            }
            _ => Err(bad(if required {
                "must be text of 1 to 20000 characters"
            } else {
                "must be null or text of at most 20000 characters"
            })),
        }
    };
    match field {
        "occurred_at" => {
            let t = value
                .as_str()
                .and_then(|s| DateTime::parse_from_rfc3339(s).ok())
                .map(|t| crate::time::truncate_micros(t.with_timezone(&Utc)))
                .ok_or_else(|| bad("must be an RFC 3339 date-time"))?;
            if t > now + SKEW {
                return Err(bad("must not be in the future"));
            }
            Ok(Value::String(crate::time::format_api(&t)))
        }
        "duration_minutes" => match value {
            Value::Null => Ok(Value::Null),
            Value::Number(n) if n.as_i64().is_some_and(|m| (0..=i64::from(MAX_DURATION_MINUTES)).contains(&m)) => {
                Ok(value.clone())
            }
            _ => Err(bad("must be null or minutes from 0 to 10080")),
        },
        "contact_type" => serde_json::from_value::<ContactType>(value.clone())
            .map(|t| Value::String(t.as_str().into()))
            .map_err(|_| bad("must be meeting, phone, message or other")),
        "summary" => text(true),
        "location" | "tasking" | "welfare_concerns" => text(false),
        _ => Err(AppError::field("field", "is not an amendable field")),
    }
}

#[utoipa::path(post, path = "/api/v1/contacts/{id}/amendments", tag = "contacts", security(("bearer" = [])),
    params(("id" = uuid::Uuid, Path)), request_body = AmendContact,
    responses((status = 201, body = AmendmentView), (status = 401), (status = 403), (status = 404), (status = 410),
        (status = 422, description = "not an amendable field, or an invalid value")))]
pub async fn amend(
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
            let scope = scope::enter_via(
                conn,
                &ctx,
                &actor,
                "contact",
                &id,
                store::source_of,
                SourceAction::AmendContact,
                "contact.amend",
                now,
            )?;
            let refused = scope.event(&actor, "contact.amend").resource("contact", Some(id.clone()));
            audited_change(conn, &ctx, refused, now, |conn| {
                let req: AmendContact = body.parse()?;
                let new = checked_value(&req.field, &req.new_value, now)?;
                let contact = store::find(conn, &id)?.ok_or(AppError::NotFound)?;
                let key = keys.source_key(conn, scope.source.uuid())?;
                let current =
                    store::views(conn, &key, std::slice::from_ref(&contact))?.pop().ok_or(AppError::NotFound)?;
                let previous = store::current(&current, &req.field)?;
                let amendment = NewAmendment {
                    contact: &contact,
                    field: &req.field,
                    previous: &previous,
                    new: &new,
                    reason: &req.reason,
                    by: actor.user_id,
                };
                let row = store::insert_amendment(conn, &key, amendment, now)?;
                if req.field == "occurred_at" {
                    // Re-judged on the corrected time; the source's flag, once set, stays.
                    let t =
                        new.as_str().and_then(|s| DateTime::parse_from_rfc3339(s).ok()).map(|t| t.with_timezone(&Utc));
                    let t = t.ok_or_else(|| AppError::internal("canonical occurred_at"))?;
                    let drift = store::is_status_drift(conn, &scope.source.id, t)?;
                    store::set_effective_time(conn, &contact.id, t, drift)?;
                    if drift {
                        record_drift(conn, &ctx, &actor, &scope, &contact.id, now)?;
                    }
                }
                let event = scope
                    .event(&actor, "contact.amend")
                    .resource("contact", Some(contact.id.clone()))
                    .reason(&format!("{};{}", scope.rule, req.field));
                Ok((store::amendment_view(&key, &row)?, event))
            })
        })
        .await?;
    Ok(HttpResponse::Created().json(view))
}
