//! Reliability reviews by controllers, reviews falling due, and a source's track record.

pub mod model;
pub mod queries;
pub mod routes;
pub mod track_record;
