//! Unique reference numbers `{UNIT}-{YEAR}-{NNNNN}`, from one counter row per unit and year.
//!
//! The counter is advanced inside the registration's write transaction: on PostgreSQL the
//! UPDATE takes the row lock (concurrent registrations on several instances queue on it), on
//! SQLite the transaction holds the write lock. The first registration of a year inserts the
//! row; if two race to insert, one fails on the primary key and the registration is retried.

use diesel::prelude::*;

use crate::db::DbConnection;
use crate::db::schema::urn_counters::dsl as c;

/// Diesel's own error is returned so that a lost insert race (unique violation) can be retried.
pub fn next(conn: &mut DbConnection, unit: &str, year: i32) -> QueryResult<String> {
    let advanced = diesel::update(c::urn_counters.filter(c::unit.eq(unit)).filter(c::year.eq(year)))
        .set(c::last_value.eq(c::last_value + 1))
        .execute(conn)?;
    let value = if advanced == 0 {
        diesel::insert_into(c::urn_counters)
            .values((c::unit.eq(unit), c::year.eq(year), c::last_value.eq(1i64)))
            .execute(conn)?;
        1
    } else {
        c::urn_counters.filter(c::unit.eq(unit)).filter(c::year.eq(year)).select(c::last_value).first::<i64>(conn)?
    };
    Ok(format!("{unit}-{year}-{value:05}"))
}
