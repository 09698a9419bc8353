//! Contact logs with graded intelligence items; append-only, corrected by amendments.

pub mod model;
pub mod routes;
pub mod store;
