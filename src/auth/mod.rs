//! Authentication: passwords, access tokens, sessions and refresh tokens, login lockout, and the
//! middleware that turns a bearer token into an [`actor::Actor`].

pub mod actor;
pub mod jwt_provider;
pub mod lockout;
pub mod passwords;
pub mod routes;
pub mod sessions;
pub mod token_cache;
pub mod tokens;
