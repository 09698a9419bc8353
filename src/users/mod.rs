//! User accounts: model, queries and the admin routes.

pub mod model;
pub mod queries;
pub mod routes;
