//! `/api/v1/users` (admin only: the scope is guarded in the route table).

use actix_web::{HttpResponse, web};
use serde::Deserialize;
use utoipa::ToSchema;
use validator::{Validate, ValidationError};
use zeroize::Zeroizing;

use super::model::{Role, Roles, RolesError, UNIT_RE, USERNAME_RE, UserView};
use super::queries::{self, NewUser, UserChanges};
use crate::access;
use crate::assignments::queries as assignment_queries;
use crate::audit::{self, Event, Outcome};
use crate::auth::actor::Actor;
use crate::auth::passwords::password_length_ok;
use crate::db::write_tx;
use crate::error::{AppError, AppResult};
use crate::http::context::RequestContext;
use crate::http::json::JsonBody;
use crate::http::pagination::{List, PageQuery};
use crate::state::AppState;

fn check_password(p: &str) -> Result<(), ValidationError> {
    if password_length_ok(p) {
        Ok(())
    } else {
        Err(ValidationError::new("length").with_message("must be 12 to 128 characters".into()))
    }
}

#[derive(Deserialize, Validate, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateUser {
    #[validate(regex(path = *USERNAME_RE, message = "must match ^[a-z0-9._-]{3,64}$"))]
    pub username: String,
    #[validate(length(min = 1, max = 100))]
    pub display_name: String,
    #[validate(custom(function = "check_password"))]
    pub password: String,
    #[validate(length(min = 1, max = 4))]
    pub roles: Vec<Role>,
    #[validate(regex(path = *UNIT_RE, message = "must match ^[A-Z0-9-]{2,32}$"))]
    pub unit: String,
}

#[derive(Deserialize, Validate, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateUser {
    #[validate(length(min = 1, max = 100))]
    pub display_name: Option<String>,
    #[validate(length(min = 1, max = 4))]
    pub roles: Option<Vec<Role>>,
    #[validate(regex(path = *UNIT_RE, message = "must match ^[A-Z0-9-]{2,32}$"))]
    pub unit: Option<String>,
    pub disabled: Option<bool>,
    /// Resets the password; the user must change it at next login.
    #[validate(custom(function = "check_password"))]
    pub password: Option<String>,
}

fn roles_field(roles: Vec<Role>) -> AppResult<Roles> {
    Roles::new(roles).map_err(|e| match e {
        RolesError::Empty => AppError::field("roles", "at least one role is required"),
        RolesError::AdminCombined => AppError::field("roles", "admin cannot be combined with another role"),
    })
}

/// A user id in a path: anything that is not a UUID cannot name a user (404).
fn path_id(raw: &str) -> AppResult<uuid::Uuid> {
    uuid::Uuid::parse_str(raw).map_err(|_| AppError::NotFound)
}

#[utoipa::path(post, path = "/api/v1/users", tag = "users", security(("bearer" = [])), request_body = CreateUser,
    responses((status = 201, body = UserView), (status = 401), (status = 403), (status = 409, description = "username taken"), (status = 422)))]
pub async fn create(
    state: web::Data<AppState>,
    ctx: RequestContext,
    actor: Actor,
    body: JsonBody,
) -> AppResult<HttpResponse> {
    let req: CreateUser = body.parse()?;
    let roles = roles_field(req.roles)?;
    let hash = state.passwords.hash(Zeroizing::new(req.password)).await?;
    let now = state.clock.now();
    let new =
        NewUser { username: req.username, display_name: req.display_name, password_hash: hash, roles, unit: req.unit };
    let user = state
        .db(move |conn| {
            write_tx(conn, |conn| {
                let user = queries::insert(conn, new, now)?;
                let event = Event::by(&actor, "user.create", Outcome::Allowed).resource("user", Some(user.id.clone()));
                audit::append(conn, &ctx, event, now)?;
                Ok(user)
            })
        })
        .await?;
    Ok(HttpResponse::Created().json(user.view()))
}

#[utoipa::path(get, path = "/api/v1/users", tag = "users", security(("bearer" = [])), params(PageQuery),
    responses((status = 200, body = inline(List<UserView>)), (status = 401), (status = 403), (status = 422)))]
pub async fn list(
    state: web::Data<AppState>,
    ctx: RequestContext,
    actor: Actor,
    query: web::Query<PageQuery>,
) -> AppResult<HttpResponse> {
    let page = query.page()?;
    let now = state.clock.now();
    let list = state
        .db(move |conn| {
            let rows = queries::list(conn, &page)?;
            audit::append_alone(
                conn,
                &ctx,
                Event::by(&actor, "user.list", Outcome::Allowed).resource("user", None),
                now,
            )?;
            Ok(List::from_rows(rows, page.limit, queries::cursor_key, |u| u.view()))
        })
        .await?;
    Ok(HttpResponse::Ok().json(list))
}

#[utoipa::path(get, path = "/api/v1/users/{id}", tag = "users", security(("bearer" = [])),
    params(("id" = uuid::Uuid, Path)), responses((status = 200, body = UserView), (status = 401), (status = 403), (status = 404)))]
pub async fn get(
    state: web::Data<AppState>,
    ctx: RequestContext,
    actor: Actor,
    id: web::Path<String>,
) -> AppResult<HttpResponse> {
    let id = path_id(&id)?;
    let now = state.clock.now();
    let user = state
        .db(move |conn| {
            let user = queries::find(conn, id)?;
            let outcome = if user.is_some() { Outcome::Allowed } else { Outcome::Denied };
            let mut event = Event::by(&actor, "user.read", outcome).resource("user", Some(id.to_string()));
            if user.is_none() {
                event = event.reason("not_found");
            }
            audit::append_alone(conn, &ctx, event, now)?;
            Ok(user)
        })
        .await?;
    Ok(HttpResponse::Ok().json(user.ok_or(AppError::NotFound)?.view()))
}

#[utoipa::path(patch, path = "/api/v1/users/{id}", tag = "users", security(("bearer" = [])), request_body = UpdateUser,
    params(("id" = uuid::Uuid, Path)),
    responses((status = 200, body = UserView), (status = 401), (status = 403), (status = 404),
        (status = 422, description = "invalid value, or a change to the caller's own roles, unit or disabled flag")))]
pub async fn update(
    state: web::Data<AppState>,
    ctx: RequestContext,
    actor: Actor,
    id: web::Path<String>,
    body: JsonBody,
) -> AppResult<HttpResponse> {
    let id = path_id(&id)?;
    let exists = {
        let probe = state.db(move |conn| queries::find(conn, id)).await?;
        probe.is_some()
    };
    if !exists {
        return Err(AppError::NotFound);
    }
    let req: UpdateUser = body.parse()?;
    access::check_self_administration(&actor, id, req.roles.is_some(), req.unit.is_some(), req.disabled.is_some())?;
    let roles = req.roles.map(roles_field).transpose()?;
    let password_hash = match req.password {
        Some(p) => Some(state.passwords.hash(Zeroizing::new(p)).await?),
        None => None,
    };
    let changes =
        UserChanges { display_name: req.display_name, roles, unit: req.unit, disabled: req.disabled, password_hash };
    let now = state.clock.now();
    let user = state
        .db(move |conn| {
            write_tx(conn, |conn| {
                let summary = changes.summary();
                let standing_changed = changes.roles.is_some() || changes.unit.is_some() || changes.disabled.is_some();
                let user = queries::update(conn, id, changes, now)?.ok_or(AppError::NotFound)?;
                let event = Event::by(&actor, "user.update", Outcome::Allowed)
                    .resource("user", Some(id.to_string()))
                    .reason(&summary);
                audit::append(conn, &ctx, event, now)?;
                if standing_changed {
                    // Access needs the role and the unit *now*: assignments that no longer fit
                    // end in this same transaction, each recorded.
                    for ended in assignment_queries::end_unfit(conn, &user, actor.user_id, now)? {
                        let event = Event::by(&actor, "assignment.end", Outcome::Allowed)
                            .resource("assignment", Some(ended.id.clone()))
                            .source(&ended.source_id)
                            .reason("assignee_no_longer_fits");
                        audit::append(conn, &ctx, event, now)?;
                    }
                }
                Ok(user)
            })
        })
        .await?;
    Ok(HttpResponse::Ok().json(user.view()))
}
