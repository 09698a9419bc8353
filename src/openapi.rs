//! The OpenAPI 3 document (`GET /api/v1/openapi.json`). Outside tools generate clients and tests
//! from it, so it must describe every route of the route table (a test compares them).

use std::collections::BTreeMap;

use actix_web::HttpResponse;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::openapi::{ContentBuilder, Ref, RefOr};
use utoipa::{Modify, OpenApi, ToSchema};

use crate::{assignments, audit, auth, authorisations, contacts, health, reviews, sources, users};

/// An error answer (RFC 9457). Every 4xx and 5xx response of the API has this body.
#[derive(ToSchema)]
#[allow(dead_code)] // documentation only: the error type serialises its own private struct
pub struct Problem {
    /// A stable problem type, e.g. `password-change-required`, `validation-failed`.
    #[schema(rename = "type")]
    kind: String,
    title: String,
    status: u16,
    detail: String,
    /// 422 only: field path (as in the body, e.g. `identity.legal_name`) -> messages.
    errors: Option<BTreeMap<String, Vec<String>>>,
}

#[derive(OpenApi)]
#[openapi(
    info(title = "humint", description = "Covert human source management: need-to-know access, field-level encryption, tamper-evident audit."),
    paths(
        health::healthz,
        health::readyz,
        serve,
        auth::routes::login,
        auth::routes::refresh,
        auth::routes::logout,
        auth::routes::me,
        auth::routes::change_password,
        users::routes::create,
        users::routes::list,
        users::routes::get,
        users::routes::update,
        sources::routes::register,
        sources::routes::list,
        sources::routes::get,
        sources::routes::get_identity,
        sources::routes::put_identity,
        sources::routes::change_status,
        assignments::routes::list,
        assignments::routes::create,
        assignments::routes::end,
        authorisations::routes::grant,
        authorisations::routes::list,
        authorisations::routes::cancel,
        contacts::routes::create,
        contacts::routes::list,
        contacts::routes::get,
        contacts::routes::amend,
        reviews::routes::create,
        reviews::routes::list,
        reviews::track_record::get,
        reviews::routes::due,
        audit::routes::events,
        audit::routes::verify,
        audit::routes::checkpoints,
        audit::routes::export,
    ),
    components(schemas(Problem)),
    modifiers(&Security, &ProblemBodies),
    tags(
        (name = "health"), (name = "auth"), (name = "users", description = "admin only"),
        (name = "sources", description = "handlers and controllers, need-to-know per source"),
        (name = "assignments"), (name = "authorisations"), (name = "contacts"), (name = "reviews"),
        (name = "audit", description = "compliance only"), (name = "meta")
    )
)]
pub struct ApiDoc;

struct Security;

impl Modify for Security {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).bearer_format("JWT").build()),
        );
    }
}

/// Gives every error response without a body the problem+json body, so the document says what
/// clients actually receive.
struct ProblemBodies;

impl Modify for ProblemBodies {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        for item in openapi.paths.paths.values_mut() {
            let operations =
                [item.get.as_mut(), item.post.as_mut(), item.put.as_mut(), item.patch.as_mut(), item.delete.as_mut()];
            for op in operations.into_iter().flatten() {
                for (status, response) in op.responses.responses.iter_mut() {
                    let is_error = status.starts_with('4') || status.starts_with('5');
                    if let (true, RefOr::T(response)) = (is_error, response)
                        && response.content.is_empty()
                    {
                        response.content.insert(
                            "application/problem+json".to_string(),
                            ContentBuilder::new().schema(Some(Ref::from_schema_name("Problem"))).build(),
                        );
                    }
                }
            }
        }
    }
}

#[utoipa::path(get, path = "/api/v1/openapi.json", tag = "meta", responses((status = 200, description = "this document")))]
pub async fn serve() -> HttpResponse {
    HttpResponse::Ok().json(ApiDoc::openapi())
}
