//! Login lockout: `lockout_threshold` consecutive failures for a username (existing or not) lock
//! it for `lockout_secs`, even for the right password.
//!
//! Every attempt is counted as a failure *before* the password is checked, in one short write
//! transaction; a success then resets the count. So N concurrent wrong attempts can never get
//! more than `threshold` password checks, and the state lives in the database where every
//! instance sees it.

use chrono::{DateTime, TimeDelta, Utc};
use diesel::prelude::*;

use crate::db::schema::login_attempts::dsl as la;
use crate::db::{DbConnection, is_unique_violation, write_tx};
use crate::error::AppError;
use crate::time::to_db;

#[derive(Debug, PartialEq, Eq)]
pub enum Gate {
    /// The attempt was counted; check the password.
    Proceed,
    /// Locked: answer 423 without checking the password.
    Locked,
}

#[derive(Clone, Copy, Debug)]
pub struct LockoutPolicy {
    pub threshold: i32,
    pub lock_for: TimeDelta,
}

pub fn claim_attempt(
    conn: &mut DbConnection,
    username: &str,
    now: DateTime<Utc>,
    policy: LockoutPolicy,
) -> Result<Gate, AppError> {
    let now_db = to_db(now);
    // Make sure the row exists; a concurrent first attempt may win the insert, which is fine.
    let inserted =
        diesel::insert_into(la::login_attempts).values((la::username.eq(username), la::failures.eq(0))).execute(conn);
    match inserted {
        Ok(_) => {}
        Err(e) if is_unique_violation(&e) => {}
        Err(e) => return Err(e.into()),
    }
    write_tx(conn, |conn| {
        // An expired lock starts a fresh count.
        diesel::update(la::login_attempts.filter(la::username.eq(username)).filter(la::locked_until.le(now_db)))
            .set((la::failures.eq(0), la::locked_until.eq(None::<chrono::NaiveDateTime>)))
            .execute(conn)?;
        let counted =
            diesel::update(la::login_attempts.filter(la::username.eq(username)).filter(la::locked_until.is_null()))
                .set((la::failures.eq(la::failures + 1), la::last_failure_at.eq(now_db)))
                .execute(conn)?;
        if counted == 0 {
            return Ok(Gate::Locked);
        }
        diesel::update(
            la::login_attempts
                .filter(la::username.eq(username))
                .filter(la::failures.ge(policy.threshold))
                .filter(la::locked_until.is_null()),
        )
        .set(la::locked_until.eq(to_db(now + policy.lock_for)))
        .execute(conn)?;
        Ok(Gate::Proceed)
    })
}

/// A correct password: the attempt counted in [`claim_attempt`] is taken back, with the rest.
pub fn record_success(conn: &mut DbConnection, username: &str) -> Result<(), AppError> {
    diesel::update(la::login_attempts.filter(la::username.eq(username)))
        .set((la::failures.eq(0), la::locked_until.eq(None::<chrono::NaiveDateTime>)))
        .execute(conn)?;
    Ok(())
}
