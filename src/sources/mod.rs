//! Sources: registration under a generated pseudonym and URN, the sealed identity,
//! deconfliction, and the status lifecycle.

pub mod identity;
pub mod model;
pub mod pseudonym;
pub mod queries;
pub mod routes;
pub mod scope;
pub mod urn;
mod words;
