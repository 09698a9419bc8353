//! `/api/v1/sources...`: registration, the pseudonymised view, the sealed identity, status.
//! Each route reads like the request's story: actor, input, `access` (via `scope::enter`), one
//! transaction that does the work and records the event, the response.

use actix_web::{HttpResponse, web};
use serde::Deserialize;
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;
use validator::Validate;

use super::identity::{self, Identity};
use super::model::{RiskLevel, SourceRow, SourceStatus, SourceView};
use super::queries::{self, Audience};
use super::scope::{self, audited_change};
use super::{pseudonym, urn};
use crate::access::{self, SourceAction};
use crate::assignments::model::AssignmentRole;
use crate::assignments::queries as assignment_queries;
use crate::audit::{self, Event, Outcome};
use crate::auth::actor::Actor;
use crate::authorisations::queries as authorisation_queries;
use crate::db::{is_unique_violation, write_tx};
use crate::error::{AppError, AppResult};
use crate::http::context::RequestContext;
use crate::http::json::JsonBody;
use crate::http::pagination::{List, PageQuery};
use crate::http::purpose::Purpose;
use crate::state::AppState;
use crate::time::to_db;
use crate::users::model::Role;

#[derive(Debug, Deserialize, Validate, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RegisterSource {
    pub risk_level: RiskLevel,
    pub juvenile: bool,
    #[validate(nested)]
    pub identity: Identity,
}

#[derive(Debug, Deserialize, Validate, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ChangeStatus {
    pub status: SourceStatus,
    #[validate(length(min = 1, max = 2000))]
    pub reason: String,
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct SourceQuery {
    /// `pending` | `active` | `suspended` | `deactivated`
    pub status: Option<SourceStatus>,
    pub limit: Option<i64>,
    pub cursor: Option<String>,
}

/// Registrations retried when a concurrent one took the same pseudonym (or the first URN of a
/// year): each attempt is a fresh transaction.
const REGISTRATION_ATTEMPTS: usize = 8;

#[utoipa::path(post, path = "/api/v1/sources", tag = "sources", security(("bearer" = [])), request_body = RegisterSource,
    responses((status = 201, body = SourceView), (status = 401), (status = 403), (status = 422)))]
pub async fn register(
    state: web::Data<AppState>,
    ctx: RequestContext,
    actor: Actor,
    body: JsonBody,
) -> AppResult<HttpResponse> {
    let req: RegisterSource = body.parse()?;
    let now = state.clock.now();
    req.identity.check_dates(now.date_naive())?;
    if let Some(minor) = req.identity.is_minor_on(now.date_naive())
        && minor != req.juvenile
    {
        return Err(AppError::field("juvenile", "must agree with identity.date_of_birth (under 18 at registration)"));
    }
    let keys = state.keys.clone();
    let index = keys.keyring().blind_index_key().index(&req.identity.legal_name, req.identity.date_of_birth);
    let view = state
        .db(move |conn| {
            let mut attempt = 0;
            let row = loop {
                attempt += 1;
                let result = write_tx(conn, |conn| {
                    let source_id = Uuid::new_v4();
                    let year = chrono::Datelike::year(&now.date_naive());
                    let row = SourceRow {
                        id: source_id.to_string(),
                        urn: urn::next(conn, &actor.unit, year)?,
                        pseudonym: pseudonym::random()?,
                        unit: actor.unit.clone(),
                        status: SourceStatus::Pending.as_str().into(),
                        risk_level: req.risk_level.as_str().into(),
                        juvenile: req.juvenile,
                        registered_at: to_db(now),
                        registered_by: actor.user_id.to_string(),
                        blind_index: None,
                        duplicate_suspected: false,
                        status_drift: false,
                        reactivated: false,
                        updated_at: to_db(now),
                    };
                    diesel::RunQueryDsl::execute(
                        diesel::insert_into(crate::db::schema::sources::table).values(&row),
                        conn,
                    )?;
                    let key = keys.create_source_key(conn, source_id, now)?;
                    identity::insert(conn, &key, source_id, &req.identity, actor.user_id, now)?;
                    let role = if actor.has_role(Role::Handler) {
                        AssignmentRole::Handler
                    } else {
                        AssignmentRole::Controller
                    };
                    assignment_queries::create(conn, &row.id, &actor.user_id.to_string(), role, actor.user_id, now)?;
                    let event = Event::by(&actor, "source.register", Outcome::Allowed)
                        .resource("source", Some(row.id.clone()))
                        .source(&row.id)
                        .reason(if role == AssignmentRole::Handler {
                            "registered_as_handler"
                        } else {
                            "registered_as_controller"
                        });
                    audit::append(conn, &ctx, event, now)?;
                    queries::deconflict(conn, &ctx, &actor, &row.id, index, now)?;
                    Ok::<_, DbOrApp>(row)
                });
                match result {
                    Ok(row) => break row,
                    Err(DbOrApp::Db(e)) if is_unique_violation(&e) && attempt < REGISTRATION_ATTEMPTS => continue,
                    Err(e) => return Err(e.into()),
                }
            };
            let mut views = queries::views(conn, &actor, vec![row], now, Audience::Registrant)?;
            views.pop().ok_or_else(|| AppError::internal("registered source vanished"))
        })
        .await?;
    Ok(HttpResponse::Created().json(view))
}

/// A registration error that keeps diesel's error when it is one, so a lost race on a unique
/// column can be told apart and retried.
enum DbOrApp {
    Db(diesel::result::Error),
    App(AppError),
}

impl From<diesel::result::Error> for DbOrApp {
    fn from(e: diesel::result::Error) -> Self {
        Self::Db(e)
    }
}

impl From<AppError> for DbOrApp {
    fn from(e: AppError) -> Self {
        Self::App(e)
    }
}

impl From<DbOrApp> for AppError {
    fn from(e: DbOrApp) -> Self {
        match e {
            DbOrApp::Db(e) => e.into(),
            DbOrApp::App(e) => e,
        }
    }
}

#[utoipa::path(get, path = "/api/v1/sources", tag = "sources", security(("bearer" = [])), params(SourceQuery),
    responses((status = 200, body = inline(List<SourceView>), description = "only sources the caller may know, newest first"),
        (status = 401), (status = 403), (status = 422)))]
pub async fn list(
    state: web::Data<AppState>,
    ctx: RequestContext,
    actor: Actor,
    query: web::Query<SourceQuery>,
) -> AppResult<HttpResponse> {
    let page = PageQuery { limit: query.limit, cursor: query.cursor.clone() }.page()?;
    let status = query.status;
    let now = state.clock.now();
    let list = state
        .db(move |conn| {
            let rows = match access::source_list_scope(&actor) {
                Some(scope) => queries::list(conn, &scope, status, &page)?,
                None => Vec::new(),
            };
            let more = rows.len() as i64 > page.limit;
            let next = if more { rows.get(page.limit as usize - 1).map(queries::cursor_key) } else { None };
            let mut rows = rows;
            rows.truncate(page.limit as usize);
            let items = queries::views(conn, &actor, rows, now, Audience::Reader)?;
            let event = Event::by(&actor, "source.list", Outcome::Allowed)
                .resource("source", None)
                .reason("need_to_know_filter");
            audit::append_alone(conn, &ctx, event, now)?;
            Ok(List { items, next_cursor: next.map(|k| crate::http::pagination::encode(&k)) })
        })
        .await?;
    Ok(HttpResponse::Ok().json(list))
}

#[utoipa::path(get, path = "/api/v1/sources/{id}", tag = "sources", security(("bearer" = [])),
    params(("id" = Uuid, Path)), responses((status = 200, body = SourceView), (status = 401), (status = 403), (status = 404)))]
pub async fn get(
    state: web::Data<AppState>,
    ctx: RequestContext,
    actor: Actor,
    id: web::Path<String>,
) -> AppResult<HttpResponse> {
    let now = state.clock.now();
    let view = state
        .db(move |conn| {
            let scope = scope::enter(conn, &ctx, &actor, &id, SourceAction::View, "source.read", now)?;
            let event = scope.event(&actor, "source.read");
            let view = queries::scope_view(conn, &actor, scope, now)?;
            audit::append_alone(conn, &ctx, event, now)?;
            Ok(view)
        })
        .await?;
    Ok(HttpResponse::Ok().json(view))
}

#[utoipa::path(get, path = "/api/v1/sources/{id}/identity", tag = "sources", security(("bearer" = [])),
    params(("id" = Uuid, Path), ("X-Access-Purpose" = String, Header, description = "why (10 to 500 characters)")),
    responses((status = 200, body = Identity), (status = 400, description = "X-Access-Purpose missing or invalid"),
        (status = 401), (status = 403), (status = 404), (status = 410, description = "the source's data key was destroyed")))]
pub async fn get_identity(
    state: web::Data<AppState>,
    ctx: RequestContext,
    actor: Actor,
    _purpose: Purpose,
    id: web::Path<String>,
) -> AppResult<HttpResponse> {
    let now = state.clock.now();
    let keys = state.keys.clone();
    let identity = state
        .db(move |conn| {
            let scope = scope::enter(conn, &ctx, &actor, &id, SourceAction::Identity, "source.identity.read", now)?;
            let source_id = scope.source.uuid();
            let opened = keys.source_key(conn, source_id).and_then(|key| identity::read(conn, &key, source_id));
            scope.record_read(conn, &ctx, &actor, "source.identity.read", &opened, now)?;
            opened
        })
        .await?;
    Ok(HttpResponse::Ok().json(identity))
}

#[utoipa::path(put, path = "/api/v1/sources/{id}/identity", tag = "sources", security(("bearer" = [])), request_body = Identity,
    params(("id" = Uuid, Path), ("X-Access-Purpose" = String, Header, description = "why (10 to 500 characters)")),
    responses((status = 200, body = Identity), (status = 400), (status = 401), (status = 403), (status = 404), (status = 410), (status = 422)))]
pub async fn put_identity(
    state: web::Data<AppState>,
    ctx: RequestContext,
    actor: Actor,
    _purpose: Purpose,
    id: web::Path<String>,
    body: JsonBody,
) -> AppResult<HttpResponse> {
    let now = state.clock.now();
    let keys = state.keys.clone();
    let identity = state
        .db(move |conn| {
            let scope = scope::enter(conn, &ctx, &actor, &id, SourceAction::Identity, "source.identity.update", now)?;
            let refused = scope.event(&actor, "source.identity.update");
            audited_change(conn, &ctx, refused, now, |conn| {
                let identity: Identity = body.parse()?;
                identity
                    .check_dates(now.date_naive())
                    .map_err(|_| AppError::field("date_of_birth", "must not be in the future"))?;
                let source_id = scope.source.uuid();
                let key = keys.source_key(conn, source_id)?;
                identity::replace(conn, &key, source_id, &identity, actor.user_id, now)?;
                let index = keys.keyring().blind_index_key().index(&identity.legal_name, identity.date_of_birth);
                queries::deconflict(conn, &ctx, &actor, &scope.source.id, index, now)?;
                Ok((identity, scope.event(&actor, "source.identity.update")))
            })
        })
        .await?;
    Ok(HttpResponse::Ok().json(identity))
}

#[utoipa::path(post, path = "/api/v1/sources/{id}/status", tag = "sources", security(("bearer" = [])), request_body = ChangeStatus,
    params(("id" = Uuid, Path)),
    responses((status = 200, body = SourceView), (status = 401), (status = 403), (status = 404), (status = 422),
        (status = 409, description = "illegal transition, or activation without an authorisation in force")))]
pub async fn change_status(
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
            let scope = scope::enter(conn, &ctx, &actor, &id, SourceAction::Manage, "source.status.change", now)?;
            let refused = scope.event(&actor, "source.status.change");
            let source_id = scope.source.id.clone();
            audited_change(conn, &ctx, refused, now, |conn| {
                let req: ChangeStatus = body.parse()?;
                // Re-read inside the transaction: the transition is judged on the current state.
                let current = scope::load(conn, &source_id)?.ok_or(AppError::NotFound)?;
                let from = current
                    .status()
                    .ok_or_else(|| AppError::Integrity(format!("source {source_id} has an unknown status")))?;
                if !from.may_become(req.status) {
                    return Err(AppError::Conflict(format!(
                        "a {} source cannot become {}",
                        from.as_str(),
                        req.status.as_str()
                    )));
                }
                if req.status == SourceStatus::Active && !authorisation_queries::in_force(conn, &source_id, now)? {
                    return Err(AppError::Conflict("activation needs an authorisation in force".into()));
                }
                let reactivation = from == SourceStatus::Deactivated;
                let key = keys.source_key(conn, current.uuid())?;
                let change = queries::StatusChange {
                    source_id: current.uuid(),
                    from,
                    to: req.status,
                    reason: &req.reason,
                    by: actor.user_id,
                };
                queries::record_status_change(conn, &key, change, now)?;
                queries::set_status(conn, &source_id, req.status, reactivation, now)?;
                if reactivation {
                    // The pattern inspectors look for: deactivated before a review, back later.
                    audit::append(conn, &ctx, scope.event(&actor, "source.status.reactivated"), now)?;
                }
                let updated = scope::load(conn, &source_id)?.ok_or(AppError::NotFound)?;
                let view = queries::views(conn, &actor, vec![updated], now, Audience::Reader)?
                    .pop()
                    .ok_or_else(|| AppError::internal("source view vanished"))?;
                let transition = format!("{};{}->{}", scope.rule, from.as_str(), req.status.as_str());
                let event = scope.event(&actor, "source.status.change").reason(&transition);
                Ok((view, event))
            })
        })
        .await?;
    Ok(HttpResponse::Ok().json(view))
}
