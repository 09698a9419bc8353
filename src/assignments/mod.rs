//! Handler, co-handler and controller assignments of sources, with full history.

pub mod model;
pub mod queries;
pub mod routes;
