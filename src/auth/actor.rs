//! The authenticated caller, established once per request by [`authenticate`] before any body is
//! read (so 401 and 403 win over 400/413/415, as API.md orders them).

use actix_web::body::{EitherBody, MessageBody};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::header;
use actix_web::middleware::Next;
use actix_web::{Error, FromRequest, HttpMessage, HttpRequest, ResponseError, web};
use uuid::Uuid;

use super::sessions;
use crate::audit::{self, Event, Outcome};
use crate::error::AppError;
use crate::http::context::RequestContext;
use crate::state::AppState;
use crate::users::model::{Role, Roles};

#[derive(Clone, Debug)]
pub struct Actor {
    pub user_id: Uuid,
    pub username: String,
    pub display_name: String,
    pub roles: Roles,
    pub unit: String,
    pub session_id: Uuid,
    pub password_change_required: bool,
}

impl Actor {
    pub fn has_role(&self, role: Role) -> bool {
        self.roles.contains(role)
    }
}

impl FromRequest for Actor {
    type Error = AppError;
    type Future = std::future::Ready<Result<Self, AppError>>;

    fn from_request(req: &HttpRequest, _: &mut actix_web::dev::Payload) -> Self::Future {
        // Absent only if a route was registered outside the authenticated scope: fail closed.
        std::future::ready(req.extensions().get::<Actor>().cloned().ok_or(AppError::Unauthorized))
    }
}

/// Paths a user who must change their password may still use.
const ALLOWED_BEFORE_PASSWORD_CHANGE: [&str; 3] = ["/api/v1/me", "/api/v1/me/password", "/api/v1/auth/logout"];

fn bearer(req: &ServiceRequest) -> Option<String> {
    let value = req.headers().get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("bearer") || token.is_empty() || token.len() > 4096 {
        return None;
    }
    Some(token.trim().to_string())
}

/// Verifies the token, then checks the session row (revoked, idle, too old, user disabled) on
/// every request, then the password-change gate. Puts the [`Actor`] into the request.
pub async fn authenticate(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<EitherBody<impl MessageBody>>, Error> {
    match resolve_actor(&req).await {
        Ok(actor) => {
            let gated = actor.password_change_required && !ALLOWED_BEFORE_PASSWORD_CHANGE.contains(&req.path());
            if gated {
                let refusal = deny(&req, &actor, "password_change_required", AppError::PasswordChangeRequired).await;
                return Ok(reject(req, refusal));
            }
            req.extensions_mut().insert(actor);
            Ok(next.call(req).await?.map_into_left_body())
        }
        Err(e) => Ok(reject(req, e)),
    }
}

fn reject<B>(req: ServiceRequest, e: AppError) -> ServiceResponse<EitherBody<B>> {
    req.into_response(e.error_response()).map_into_right_body()
}

/// Records a refusal in the audit trail before answering it. If the event cannot be recorded
/// the answer is 503 instead (no unaudited decision either way).
async fn deny(req: &ServiceRequest, actor: &Actor, reason: &'static str, refusal: AppError) -> AppError {
    let (Some(state), Some(ctx)) =
        (req.app_data::<web::Data<AppState>>().cloned(), req.extensions().get::<RequestContext>().cloned())
    else {
        return AppError::internal("state or request context missing");
    };
    let endpoint = format!("{} {}", req.method(), req.match_pattern().unwrap_or_else(|| req.path().to_string()));
    let event = Event::by(actor, "access.denied", Outcome::Denied).resource("endpoint", Some(endpoint)).reason(reason);
    let now = state.clock.now();
    match state.db(move |conn| audit::append_alone(conn, &ctx, event, now)).await {
        Ok(()) => refusal,
        Err(e) => e,
    }
}

async fn resolve_actor(req: &ServiceRequest) -> Result<Actor, AppError> {
    let state = req.app_data::<web::Data<AppState>>().ok_or_else(|| AppError::internal("state missing"))?.clone();
    let token = bearer(req).ok_or(AppError::Unauthorized)?;
    let now = state.clock.now();
    let claims = state.keys.tokens().verify(&token, now).map_err(|e| {
        tracing::info!(reason = e.reason().as_str(), "access token rejected");
        AppError::Unauthorized
    })?;
    let policy = state.session_policy();
    let (session_id, user_id) = (claims.session_id(), claims.user_id());
    let found = state
        .db(move |conn| {
            let Some((session, user)) = sessions::load_live(conn, session_id, user_id, now, policy)? else {
                return Ok(None);
            };
            sessions::touch_if_stale(conn, &session, now)?;
            Ok(Some(user))
        })
        .await?;
    let user = found.ok_or(AppError::Unauthorized)?;
    Ok(Actor {
        user_id,
        username: user.username.clone(),
        display_name: user.display_name.clone(),
        roles: user.roles(),
        unit: user.unit.clone(),
        session_id,
        password_change_required: user.password_change_required,
    })
}

/// Scope guard: only the given roles may use the scope at all (403 otherwise). Runs after
/// [`authenticate`] and before any body is read.
pub async fn require_roles(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
    allowed: &'static [Role],
) -> Result<ServiceResponse<EitherBody<impl MessageBody>>, Error> {
    let actor = req.extensions().get::<Actor>().cloned();
    let Some(actor) = actor else { return Ok(reject(req, AppError::Unauthorized)) };
    if !crate::access::role_may_use(&actor, allowed) {
        let refusal = deny(&req, &actor, "role_not_permitted", AppError::Forbidden).await;
        return Ok(reject(req, refusal));
    }
    Ok(next.call(req).await?.map_into_left_body())
}
