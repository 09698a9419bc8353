//! Authorisations of sources: who granted what, for which purpose, from when until when, and
//! cancellations. Purposes and cancellation reasons are sealed under the source's data key.

pub mod model;
pub mod queries;
pub mod routes;
