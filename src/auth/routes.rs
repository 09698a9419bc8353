//! Login, refresh, logout, `/me` and password change (API.md, "Authentication and sessions").

use actix_web::{HttpResponse, web};
use diesel::prelude::*;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;
use validator::Validate;
use zeroize::Zeroizing;

use super::actor::Actor;
use super::lockout::{self, Gate};
use super::passwords::password_length_ok;
use super::sessions::{self, RefreshOutcome, RevokeReason};
use crate::audit::{self, Event, Outcome};
use crate::db::schema::users;
use crate::db::write_tx;
use crate::error::{AppError, AppResult};
use crate::http::context::RequestContext;
use crate::http::json::JsonBody;
use crate::state::AppState;
use crate::users::model::{Role, UserRow};

#[derive(Deserialize, Validate, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LoginRequest {
    #[validate(length(min = 1, max = 64))]
    pub username: String,
    #[validate(length(min = 1, max = 1024))]
    pub password: String,
}

#[derive(Serialize, ToSchema)]
pub struct TokenPair {
    pub access_token: String,
    pub refresh_token: String,
    /// Always `Bearer`.
    pub token_type: &'static str,
    /// Seconds until the access token expires.
    pub expires_in: i64,
    pub password_change_required: bool,
}

#[derive(Deserialize, Validate, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RefreshRequest {
    #[validate(length(min = 1, max = 256))]
    pub refresh_token: String,
}

#[derive(Deserialize, Validate, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PasswordChange {
    #[validate(length(min = 1, max = 1024))]
    pub current_password: String,
    #[validate(length(max = 1024))]
    pub new_password: String,
}

#[derive(Serialize, ToSchema)]
pub struct Me {
    pub id: Uuid,
    pub username: String,
    pub display_name: String,
    pub roles: Vec<Role>,
    pub unit: String,
    pub password_change_required: bool,
}

fn token_pair(
    state: &AppState,
    user: &UserRow,
    session_id: Uuid,
    refresh: sessions::RefreshToken,
) -> AppResult<TokenPair> {
    let minted = state.keys.tokens().mint(user.id(), session_id, state.clock.now())?;
    Ok(TokenPair {
        access_token: minted.into_token(),
        refresh_token: refresh.0.to_string(),
        token_type: "Bearer",
        expires_in: state.keys.tokens().lifetime_secs(),
        password_change_required: user.password_change_required,
    })
}

fn find_user(conn: &mut crate::db::DbConnection, username: &str) -> AppResult<Option<UserRow>> {
    Ok(users::table.filter(users::username.eq(username)).select(UserRow::as_select()).first(conn).optional()?)
}

/// The login event names the attempted username, never the password.
fn login_event(action: &'static str, username: &str, user: Option<&UserRow>, outcome: Outcome) -> Event {
    let mut event = Event::new(action, outcome).resource("user", user.map(|u| u.id.clone()));
    event.actor_username = Some(username.to_string());
    event.actor_id = user.map(|u| u.id.clone());
    event
}

#[utoipa::path(post, path = "/api/v1/auth/login", tag = "auth", request_body = LoginRequest,
    responses((status = 200, body = TokenPair), (status = 401, description = "wrong credentials"),
        (status = 423, description = "locked"), (status = 422), (status = 429), (status = 503)))]
pub async fn login(state: web::Data<AppState>, ctx: RequestContext, body: JsonBody) -> AppResult<HttpResponse> {
    let req: LoginRequest = body.parse()?;
    let password = Zeroizing::new(req.password);
    let username = req.username;
    let now = state.clock.now();
    let policy = state.lockout_policy();

    let (gate, user) = {
        let (username, ctx) = (username.clone(), ctx.clone());
        state
            .db(move |conn| {
                let gate = lockout::claim_attempt(conn, &username, now, policy)?;
                let user = find_user(conn, &username)?;
                if gate == Gate::Locked {
                    audit::append_alone(
                        conn,
                        &ctx,
                        login_event("auth.login.locked", &username, user.as_ref(), Outcome::Denied).reason("locked"),
                        now,
                    )?;
                }
                Ok((gate, user))
            })
            .await?
    };
    if gate == Gate::Locked {
        return Err(AppError::Locked);
    }
    let matches = state.passwords.verify(password, user.as_ref().map(|u| u.password_hash.clone())).await?;
    let accepted = user.filter(|u| matches && !u.disabled);
    let session_policy = state.session_policy();
    let result = state
        .db(move |conn| {
            let Some(user) = accepted else {
                let reason = if matches { "user_disabled" } else { "bad_credentials" };
                audit::append_alone(
                    conn,
                    &ctx,
                    login_event("auth.login.failed", &username, None, Outcome::Denied).reason(reason),
                    now,
                )?;
                return Ok(None);
            };
            write_tx(conn, |conn| {
                lockout::record_success(conn, &user.username)?;
                let (session_id, refresh) = sessions::create(conn, user.id(), now, session_policy)?;
                audit::append(
                    conn,
                    &ctx,
                    login_event("auth.login.succeeded", &username, Some(&user), Outcome::Allowed),
                    now,
                )?;
                Ok(Some((user, session_id, refresh)))
            })
        })
        .await?;
    let (user, session_id, refresh) = result.ok_or(AppError::Unauthorized)?;
    Ok(HttpResponse::Ok().json(token_pair(&state, &user, session_id, refresh)?))
}

#[utoipa::path(post, path = "/api/v1/auth/refresh", tag = "auth", request_body = RefreshRequest,
    responses((status = 200, body = TokenPair), (status = 401, description = "invalid, expired or reused refresh token"), (status = 422)))]
pub async fn refresh(state: web::Data<AppState>, ctx: RequestContext, body: JsonBody) -> AppResult<HttpResponse> {
    let req: RefreshRequest = body.parse()?;
    let presented = Zeroizing::new(req.refresh_token);
    let now = state.clock.now();
    let policy = state.session_policy();
    let outcome = state
        .db(move |conn| {
            write_tx(conn, |conn| {
                let outcome = sessions::rotate(conn, &presented, now, policy)?;
                let event = match &outcome {
                    RefreshOutcome::Rotated { session_id, user, .. } => Event::new("auth.refresh", Outcome::Allowed)
                        .actor_ids(Some(user.id.clone()), Some(user.username.clone()))
                        .resource("session", Some(session_id.to_string())),
                    RefreshOutcome::Reused { session_id, user_id } => {
                        Event::new("auth.refresh.reused", Outcome::Denied)
                            .actor_ids(Some(user_id.to_string()), None)
                            .resource("session", Some(session_id.to_string()))
                            .reason("refresh_token_reuse_session_revoked")
                    }
                    RefreshOutcome::Invalid => {
                        Event::new("auth.refresh", Outcome::Denied).reason("invalid_refresh_token")
                    }
                };
                audit::append(conn, &ctx, event, now)?;
                Ok(outcome)
            })
        })
        .await?;
    match outcome {
        RefreshOutcome::Rotated { session_id, user, refresh_token } => {
            Ok(HttpResponse::Ok().json(token_pair(&state, &user, session_id, refresh_token)?))
        }
        RefreshOutcome::Reused { .. } | RefreshOutcome::Invalid => Err(AppError::Unauthorized),
    }
}

#[utoipa::path(post, path = "/api/v1/auth/logout", tag = "auth", security(("bearer" = [])),
    responses((status = 204), (status = 401)))]
pub async fn logout(state: web::Data<AppState>, ctx: RequestContext, actor: Actor) -> AppResult<HttpResponse> {
    let now = state.clock.now();
    state
        .db(move |conn| {
            write_tx(conn, |conn| {
                sessions::revoke(conn, actor.session_id, RevokeReason::Logout, now)?;
                audit::append(
                    conn,
                    &ctx,
                    Event::by(&actor, "auth.logout", Outcome::Allowed)
                        .resource("session", Some(actor.session_id.to_string())),
                    now,
                )
            })
        })
        .await?;
    Ok(HttpResponse::NoContent().finish())
}

#[utoipa::path(get, path = "/api/v1/me", tag = "auth", security(("bearer" = [])),
    responses((status = 200, body = Me), (status = 401)))]
pub async fn me(actor: Actor) -> AppResult<HttpResponse> {
    Ok(HttpResponse::Ok().json(Me {
        id: actor.user_id,
        username: actor.username,
        display_name: actor.display_name,
        roles: actor.roles.iter().collect(),
        unit: actor.unit,
        password_change_required: actor.password_change_required,
    }))
}

#[utoipa::path(post, path = "/api/v1/me/password", tag = "auth", security(("bearer" = [])), request_body = PasswordChange,
    responses((status = 204, description = "changed; the user's other sessions are revoked"), (status = 401),
        (status = 422, description = "wrong current password or a new password outside 12..=128 characters"), (status = 423)))]
pub async fn change_password(
    state: web::Data<AppState>,
    ctx: RequestContext,
    actor: Actor,
    body: JsonBody,
) -> AppResult<HttpResponse> {
    let req: PasswordChange = body.parse()?;
    let (current, new) = (Zeroizing::new(req.current_password), Zeroizing::new(req.new_password));
    if !password_length_ok(&new) {
        return Err(AppError::field("new_password", "must be 12 to 128 characters"));
    }
    if *new == *current {
        return Err(AppError::field("new_password", "must differ from the current password"));
    }
    let now = state.clock.now();
    // A stolen access token must not become a password oracle: the current password is
    // counted against the same lockout as logins.
    let (username, user_id, policy) = (actor.username.clone(), actor.user_id, state.lockout_policy());
    let (gate, stored) = state
        .db(move |conn| {
            let gate = lockout::claim_attempt(conn, &username, now, policy)?;
            let stored: String = users::table.find(user_id.to_string()).select(users::password_hash).first(conn)?;
            Ok((gate, stored))
        })
        .await?;
    if gate == Gate::Locked {
        return Err(AppError::Locked);
    }
    if !state.passwords.verify(current, Some(stored)).await? {
        let denied = Event::by(&actor, "auth.password.change", Outcome::Denied).reason("wrong_current_password");
        state.db(move |conn| audit::append_alone(conn, &ctx, denied, now)).await?;
        return Err(AppError::field("current_password", "is not correct"));
    }
    let new_hash = state.passwords.hash(new).await?;
    state
        .db(move |conn| {
            write_tx(conn, |conn| {
                lockout::record_success(conn, &actor.username)?;
                diesel::update(users::table.find(actor.user_id.to_string()))
                    .set((
                        users::password_hash.eq(new_hash),
                        users::password_change_required.eq(false),
                        users::updated_at.eq(crate::time::to_db(now)),
                    ))
                    .execute(conn)?;
                let revoked = sessions::revoke_all_for_user(
                    conn,
                    actor.user_id,
                    Some(actor.session_id),
                    RevokeReason::PasswordChanged,
                    now,
                )?;
                let event = Event::by(&actor, "auth.password.change", Outcome::Allowed)
                    .resource("user", Some(actor.user_id.to_string()))
                    .reason(if revoked > 0 { "other_sessions_revoked" } else { "no_other_sessions" });
                audit::append(conn, &ctx, event, now)
            })
        })
        .await?;
    Ok(HttpResponse::NoContent().finish())
}
