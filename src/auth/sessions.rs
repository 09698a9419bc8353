//! Sessions and refresh tokens, kept in the database so that every instance sees a revocation
//! at once.
//!
//! A refresh token is 32 random bytes (base64url), stored only as its SHA-256, and single use:
//! spending it is one conditional UPDATE, so of two concurrent refreshes exactly one wins. A
//! spent token presented again is treated as stolen: the whole session is revoked.

use chrono::{DateTime, TimeDelta, Utc};
use diesel::prelude::*;
use ring::digest;
use ring::rand::{SecureRandom, SystemRandom};
use uuid::Uuid;
use zeroize::Zeroizing;

use crate::db::DbConnection;
use crate::db::schema::{refresh_tokens, sessions, users};
use crate::error::AppError;
use crate::time::to_db;
use crate::users::model::UserRow;

/// Session lifetimes from the configuration.
#[derive(Clone, Copy, Debug)]
pub struct SessionPolicy {
    pub idle: TimeDelta,
    pub absolute: TimeDelta,
    pub refresh_ttl: TimeDelta,
}

/// Why a session ended; recorded on the row for operators.
#[derive(Clone, Copy, Debug)]
pub enum RevokeReason {
    Logout,
    RefreshReuse,
    PasswordChanged,
    UserDisabled,
}

impl RevokeReason {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Logout => "logout",
            Self::RefreshReuse => "refresh_token_reuse",
            Self::PasswordChanged => "password_changed",
            Self::UserDisabled => "user_disabled",
        }
    }
}

#[derive(Clone, Debug, Queryable, Selectable)]
#[diesel(table_name = sessions)]
pub struct SessionRow {
    pub id: String,
    pub user_id: String,
    pub created_at: chrono::NaiveDateTime,
    pub last_seen_at: chrono::NaiveDateTime,
    pub revoked_at: Option<chrono::NaiveDateTime>,
    pub revoked_reason: Option<String>,
}

impl SessionRow {
    fn is_live(&self, now: DateTime<Utc>, policy: SessionPolicy) -> bool {
        self.revoked_at.is_none()
            && self.created_at.and_utc() + policy.absolute > now
            && self.last_seen_at.and_utc() + policy.idle > now
    }
}

/// A refresh token as handed to the client. Never logged.
pub struct RefreshToken(pub Zeroizing<String>);

fn new_refresh_token() -> Result<(RefreshToken, Vec<u8>), AppError> {
    let mut bytes = Zeroizing::new([0u8; 32]);
    SystemRandom::new().fill(bytes.as_mut()).map_err(|_| AppError::internal("random source failed"))?;
    let token =
        Zeroizing::new(base64::Engine::encode(&base64::engine::general_purpose::URL_SAFE_NO_PAD, bytes.as_ref()));
    let hash = token_hash(&token);
    Ok((RefreshToken(token), hash))
}

pub fn token_hash(token: &str) -> Vec<u8> {
    digest::digest(&digest::SHA256, token.as_bytes()).as_ref().to_vec()
}

fn issue_refresh_token(
    conn: &mut DbConnection,
    session_id: &str,
    now: DateTime<Utc>,
    policy: SessionPolicy,
    session_created: DateTime<Utc>,
) -> Result<RefreshToken, AppError> {
    let (token, hash) = new_refresh_token()?;
    // A refresh token never outlives its session's absolute limit.
    let expires = (now + policy.refresh_ttl).min(session_created + policy.absolute);
    diesel::insert_into(refresh_tokens::table)
        .values((
            refresh_tokens::id.eq(Uuid::new_v4().to_string()),
            refresh_tokens::session_id.eq(session_id),
            refresh_tokens::token_hash.eq(hash),
            refresh_tokens::issued_at.eq(to_db(now)),
            refresh_tokens::expires_at.eq(to_db(expires)),
        ))
        .execute(conn)?;
    Ok(token)
}

/// Starts a session; call inside the login's write transaction.
pub fn create(
    conn: &mut DbConnection,
    user_id: Uuid,
    now: DateTime<Utc>,
    policy: SessionPolicy,
) -> Result<(Uuid, RefreshToken), AppError> {
    let session_id = Uuid::new_v4();
    diesel::insert_into(sessions::table)
        .values((
            sessions::id.eq(session_id.to_string()),
            sessions::user_id.eq(user_id.to_string()),
            sessions::created_at.eq(to_db(now)),
            sessions::last_seen_at.eq(to_db(now)),
        ))
        .execute(conn)?;
    let refresh = issue_refresh_token(conn, &session_id.to_string(), now, policy, now)?;
    Ok((session_id, refresh))
}

pub enum RefreshOutcome {
    Rotated {
        session_id: Uuid,
        user: Box<UserRow>,
        refresh_token: RefreshToken,
    },
    /// A spent token came back: the session has been revoked.
    Reused {
        session_id: Uuid,
        user_id: Uuid,
    },
    Invalid,
}

/// Spends `presented` and issues its successor; call inside a write transaction.
pub fn rotate(
    conn: &mut DbConnection,
    presented: &str,
    now: DateTime<Utc>,
    policy: SessionPolicy,
) -> Result<RefreshOutcome, AppError> {
    let hash = token_hash(presented);
    let spent = diesel::update(
        refresh_tokens::table
            .filter(refresh_tokens::token_hash.eq(&hash))
            .filter(refresh_tokens::spent_at.is_null())
            .filter(refresh_tokens::expires_at.gt(to_db(now))),
    )
    .set(refresh_tokens::spent_at.eq(to_db(now)))
    .execute(conn)?;
    let row: Option<(String, Option<chrono::NaiveDateTime>)> = refresh_tokens::table
        .filter(refresh_tokens::token_hash.eq(&hash))
        .select((refresh_tokens::session_id, refresh_tokens::spent_at))
        .first(conn)
        .optional()?;
    let Some((session_id, _)) = row else { return Ok(RefreshOutcome::Invalid) };
    let Some((session, user)) = load_session(conn, &session_id)? else { return Ok(RefreshOutcome::Invalid) };
    let session_uuid = parse_id(&session.id)?;
    if spent == 0 {
        // Expired tokens are merely invalid; a spent one that comes back is a theft signal.
        let was_spent: bool = refresh_tokens::table
            .filter(refresh_tokens::token_hash.eq(&hash))
            .filter(refresh_tokens::spent_at.is_not_null())
            .count()
            .get_result::<i64>(conn)?
            > 0;
        if was_spent && session.revoked_at.is_none() {
            revoke(conn, session_uuid, RevokeReason::RefreshReuse, now)?;
            return Ok(RefreshOutcome::Reused { session_id: session_uuid, user_id: user.id() });
        }
        return Ok(RefreshOutcome::Invalid);
    }
    if !session.is_live(now, policy) || user.disabled {
        return Ok(RefreshOutcome::Invalid);
    }
    touch(conn, &session.id, now)?;
    let refresh_token = issue_refresh_token(conn, &session.id, now, policy, session.created_at.and_utc())?;
    Ok(RefreshOutcome::Rotated { session_id: session_uuid, user: Box::new(user), refresh_token })
}

fn parse_id(id: &str) -> Result<Uuid, AppError> {
    Uuid::parse_str(id).map_err(|_| AppError::Integrity("malformed id in sessions".into()))
}

fn load_session(conn: &mut DbConnection, session_id: &str) -> Result<Option<(SessionRow, UserRow)>, AppError> {
    Ok(sessions::table
        .inner_join(users::table)
        .filter(sessions::id.eq(session_id))
        .select((SessionRow::as_select(), UserRow::as_select()))
        .first(conn)
        .optional()?)
}

/// The session named by a verified access token, if it is still alive and belongs to `user_id`
/// (revoked, idle too long, too old or a disabled user all answer `None`).
pub fn load_live(
    conn: &mut DbConnection,
    session_id: Uuid,
    user_id: Uuid,
    now: DateTime<Utc>,
    policy: SessionPolicy,
) -> Result<Option<(SessionRow, UserRow)>, AppError> {
    let Some((session, user)) = load_session(conn, &session_id.to_string())? else { return Ok(None) };
    if session.user_id != user_id.to_string() || user.disabled || !session.is_live(now, policy) {
        return Ok(None);
    }
    Ok(Some((session, user)))
}

/// Records activity; skipped when the last record is recent, so that reads stay reads.
pub const TOUCH_GRANULARITY: TimeDelta = TimeDelta::seconds(30);

pub fn touch_if_stale(conn: &mut DbConnection, session: &SessionRow, now: DateTime<Utc>) -> Result<(), AppError> {
    if session.last_seen_at.and_utc() + TOUCH_GRANULARITY <= now {
        // A write like any other: in a write transaction, so that on SQLite it takes its turn
        // with the process's other writers instead of sleeping in the busy handler.
        crate::db::write_tx(conn, |conn| touch(conn, &session.id, now))?;
    }
    Ok(())
}

fn touch(conn: &mut DbConnection, session_id: &str, now: DateTime<Utc>) -> Result<(), AppError> {
    diesel::update(sessions::table.filter(sessions::id.eq(session_id)))
        .set(sessions::last_seen_at.eq(to_db(now)))
        .execute(conn)?;
    Ok(())
}

pub fn revoke(
    conn: &mut DbConnection,
    session_id: Uuid,
    reason: RevokeReason,
    now: DateTime<Utc>,
) -> Result<(), AppError> {
    diesel::update(
        sessions::table.filter(sessions::id.eq(session_id.to_string())).filter(sessions::revoked_at.is_null()),
    )
    .set((sessions::revoked_at.eq(to_db(now)), sessions::revoked_reason.eq(reason.as_str())))
    .execute(conn)?;
    Ok(())
}

/// Revokes every live session of a user, except `keep` (the caller's own, on password change).
pub fn revoke_all_for_user(
    conn: &mut DbConnection,
    user_id: Uuid,
    keep: Option<Uuid>,
    reason: RevokeReason,
    now: DateTime<Utc>,
) -> Result<usize, AppError> {
    let keep = keep.map(|k| k.to_string()).unwrap_or_default();
    Ok(diesel::update(
        sessions::table
            .filter(sessions::user_id.eq(user_id.to_string()))
            .filter(sessions::revoked_at.is_null())
            .filter(sessions::id.ne(keep)),
    )
    .set((sessions::revoked_at.eq(to_db(now)), sessions::revoked_reason.eq(reason.as_str())))
    .execute(conn)?)
}
