//! `/api/v1/sources/{id}/assignments`.

use actix_web::{HttpResponse, web};
use diesel::prelude::*;
use serde::Deserialize;
use utoipa::ToSchema;
use uuid::Uuid;
use validator::Validate;

use super::model::{AssignmentRole, AssignmentView};
use super::queries;
use crate::access::SourceAction;
use crate::audit;
use crate::auth::actor::Actor;
use crate::db::schema::users;
use crate::error::{AppError, AppResult};
use crate::http::context::RequestContext;
use crate::http::json::JsonBody;
use crate::sources::scope::{self, audited_change};
use crate::state::AppState;
use crate::users::model::UserRow;

#[derive(Debug, Deserialize, Validate, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateAssignment {
    pub user_id: Uuid,
    pub role: AssignmentRole,
}

#[utoipa::path(get, path = "/api/v1/sources/{id}/assignments", tag = "assignments", security(("bearer" = [])),
    params(("id" = Uuid, Path)),
    responses((status = 200, body = Vec<AssignmentView>, description = "full history, newest first"), (status = 401), (status = 403), (status = 404)))]
pub async fn list(
    state: web::Data<AppState>,
    ctx: RequestContext,
    actor: Actor,
    id: web::Path<String>,
) -> AppResult<HttpResponse> {
    let now = state.clock.now();
    let items = state
        .db(move |conn| {
            let scope = scope::enter(conn, &ctx, &actor, &id, SourceAction::View, "assignment.list", now)?;
            let items: Vec<AssignmentView> = queries::history(conn, &scope.source.id)?
                .into_iter()
                .map(|(row, name)| AssignmentView::from_row(&row, name))
                .collect();
            audit::append_alone(conn, &ctx, scope.event(&actor, "assignment.list"), now)?;
            Ok(items)
        })
        .await?;
    Ok(HttpResponse::Ok().json(items))
}

/// The assignee must exist, be enabled, hold the role the assignment needs, belong to the
/// source's unit, and not be the caller: nobody grants themselves access.
fn check_assignee(actor: &Actor, assignee: Option<&UserRow>, role: AssignmentRole, unit: &str) -> AppResult<()> {
    let Some(user) = assignee.filter(|u| !u.disabled) else {
        return Err(AppError::field("user_id", "no such active user"));
    };
    if user.id() == actor.user_id {
        return Err(AppError::field("user_id", "you cannot assign yourself"));
    }
    if !user.roles().contains(role.required_user_role()) {
        return Err(AppError::field("role", "the user does not hold the role this assignment needs"));
    }
    if user.unit != unit {
        return Err(AppError::field("user_id", "the user belongs to another unit"));
    }
    Ok(())
}

#[utoipa::path(post, path = "/api/v1/sources/{id}/assignments", tag = "assignments", security(("bearer" = [])),
    params(("id" = Uuid, Path)), request_body = CreateAssignment,
    responses((status = 201, body = AssignmentView), (status = 401), (status = 403), (status = 404),
        (status = 409, description = "the user already holds this assignment"),
        (status = 422, description = "wrong role, other unit, disabled user or self-assignment")))]
pub async fn create(
    state: web::Data<AppState>,
    ctx: RequestContext,
    actor: Actor,
    id: web::Path<String>,
    body: JsonBody,
) -> AppResult<HttpResponse> {
    let now = state.clock.now();
    let view = state
        .db(move |conn| {
            let scope = scope::enter(conn, &ctx, &actor, &id, SourceAction::Manage, "assignment.create", now)?;
            audited_change(conn, &ctx, scope.event(&actor, "assignment.create"), now, |conn| {
                let req: CreateAssignment = body.parse()?;
                let assignee: Option<UserRow> =
                    users::table.find(req.user_id.to_string()).select(UserRow::as_select()).first(conn).optional()?;
                check_assignee(&actor, assignee.as_ref(), req.role, &scope.source.unit)?;
                let row =
                    queries::create(conn, &scope.source.id, &req.user_id.to_string(), req.role, actor.user_id, now)?;
                let name = assignee.map(|u| u.display_name).unwrap_or_default();
                let event = scope.event(&actor, "assignment.create").resource("assignment", Some(row.id.clone()));
                Ok((AssignmentView::from_row(&row, name), event))
            })
        })
        .await?;
    Ok(HttpResponse::Created().json(view))
}

#[utoipa::path(delete, path = "/api/v1/sources/{id}/assignments/{assignment_id}", tag = "assignments", security(("bearer" = [])),
    params(("id" = Uuid, Path), ("assignment_id" = Uuid, Path)),
    responses((status = 204, description = "ended; the row is kept"), (status = 401), (status = 403), (status = 404), (status = 409, description = "already ended")))]
pub async fn end(
    state: web::Data<AppState>,
    ctx: RequestContext,
    actor: Actor,
    path: web::Path<(String, String)>,
) -> AppResult<HttpResponse> {
    let now = state.clock.now();
    let (id, assignment_id) = path.into_inner();
    state
        .db(move |conn| {
            let scope = scope::enter(conn, &ctx, &actor, &id, SourceAction::Manage, "assignment.end", now)?;
            let refused = scope
                .event(&actor, "assignment.end")
                .resource("assignment", Some(assignment_id.chars().take(64).collect()));
            audited_change(conn, &ctx, refused, now, |conn| {
                let row = queries::find(conn, &scope.source.id, &assignment_id)?.ok_or(AppError::NotFound)?;
                if !queries::end(conn, &row.id, actor.user_id, now)? {
                    return Err(AppError::Conflict("the assignment has already ended".into()));
                }
                Ok(((), scope.event(&actor, "assignment.end").resource("assignment", Some(row.id))))
            })
        })
        .await?;
    Ok(HttpResponse::NoContent().finish())
}
