//! `/api/v1/sources/{id}/authorisations`.

use actix_web::{HttpResponse, web};

use super::model::{AuthorisationView, CancelAuthorisation, GrantAuthorisation, period};
use super::queries::{self, NewAuthorisation};
use crate::access::{self, SourceAction};
use crate::auth::actor::Actor;
use crate::error::{AppError, AppResult};
use crate::http::context::RequestContext;
use crate::http::json::JsonBody;
use crate::sources::scope::{self, audited_change};
use crate::state::AppState;

#[utoipa::path(post, path = "/api/v1/sources/{id}/authorisations", tag = "authorisations", security(("bearer" = [])),
    params(("id" = Uuid, Path)), request_body = GrantAuthorisation,
    responses((status = 201, body = AuthorisationView), (status = 401), (status = 403), (status = 404),
        (status = 422, description = "period too long or too far back, or the caller runs the source (separation of duties)")))]
pub async fn grant(
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
            let scope = scope::enter(conn, &ctx, &actor, &id, SourceAction::Manage, "authorisation.grant", now)?;
            audited_change(conn, &ctx, scope.event(&actor, "authorisation.grant"), now, |conn| {
                let req: GrantAuthorisation = body.parse()?;
                access::check_may_authorise(&scope.facts())?;
                let (valid_from, valid_until) = period(req.valid_from, req.valid_until, scope.source.juvenile, now)?;
                let source_id = scope.source.uuid();
                let key = keys.source_key(conn, source_id)?;
                let new = NewAuthorisation {
                    source_id,
                    purpose: &req.purpose,
                    valid_from,
                    valid_until,
                    granted_by: actor.user_id,
                };
                let row = queries::create(conn, &key, new, now)?;
                let event = scope.event(&actor, "authorisation.grant").resource("authorisation", Some(row.id.clone()));
                Ok((queries::view(&key, &row)?, event))
            })
        })
        .await?;
    Ok(HttpResponse::Created().json(view))
}

#[utoipa::path(get, path = "/api/v1/sources/{id}/authorisations", tag = "authorisations", security(("bearer" = [])),
    params(("id" = Uuid, Path)),
    responses((status = 200, body = Vec<AuthorisationView>, description = "newest first"), (status = 401), (status = 403), (status = 404), (status = 410)))]
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
            let scope = scope::enter(conn, &ctx, &actor, &id, SourceAction::View, "authorisation.list", now)?;
            let opened = keys.source_key(conn, scope.source.uuid()).and_then(|key| {
                queries::list(conn, &scope.source.id)?
                    .iter()
                    .map(|row| queries::view(&key, row))
                    .collect::<AppResult<Vec<_>>>()
            });
            scope.record_read(conn, &ctx, &actor, "authorisation.list", &opened, now)?;
            opened
        })
        .await?;
    Ok(HttpResponse::Ok().json(items))
}

#[utoipa::path(post, path = "/api/v1/sources/{id}/authorisations/{aid}/cancel", tag = "authorisations", security(("bearer" = [])),
    params(("id" = Uuid, Path), ("aid" = Uuid, Path)), request_body = CancelAuthorisation,
    responses((status = 200, body = AuthorisationView), (status = 401), (status = 403), (status = 404),
        (status = 409, description = "already cancelled"), (status = 422)))]
pub async fn cancel(
    state: web::Data<AppState>,
    ctx: RequestContext,
    actor: Actor,
    path: web::Path<(String, String)>,
    body: JsonBody,
) -> AppResult<HttpResponse> {
    let now = state.clock.now();
    let keys = state.keys.clone();
    let (id, aid) = path.into_inner();
    let view = state
        .db(move |conn| {
            let scope = scope::enter(conn, &ctx, &actor, &id, SourceAction::Manage, "authorisation.cancel", now)?;
            let refused = scope
                .event(&actor, "authorisation.cancel")
                .resource("authorisation", Some(aid.chars().take(64).collect()));
            audited_change(conn, &ctx, refused, now, |conn| {
                let row = queries::find(conn, &scope.source.id, &aid)?.ok_or(AppError::NotFound)?;
                let req: CancelAuthorisation = body.parse()?;
                let key = keys.source_key(conn, scope.source.uuid())?;
                if !queries::cancel(conn, &key, row.uuid(), &req.reason, actor.user_id, now)? {
                    return Err(AppError::Conflict("the authorisation is already cancelled".into()));
                }
                let updated = queries::find(conn, &scope.source.id, &row.id)?.ok_or(AppError::NotFound)?;
                let event = scope.event(&actor, "authorisation.cancel").resource("authorisation", Some(row.id.clone()));
                Ok((queries::view(&key, &updated)?, event))
            })
        })
        .await?;
    Ok(HttpResponse::Ok().json(view))
}
