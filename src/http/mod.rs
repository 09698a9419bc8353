//! HTTP plumbing shared by every route: request context (id, client address), security
//! headers, JSON bodies, the access-purpose header and pagination parameters.

pub mod context;
pub mod json;
pub mod middleware;
pub mod pagination;
pub mod purpose;
