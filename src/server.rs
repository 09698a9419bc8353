//! The route table and the application: every route and every middleware, in one place.

use std::net::TcpListener;

use actix_web::dev::Server;
use actix_web::middleware::from_fn;
use actix_web::{App, HttpRequest, HttpServer, web};

use crate::auth::actor::{authenticate, require_roles};
use crate::error::AppError;
use crate::http::json::BodyLimit;
use crate::http::middleware::{request_context, security_headers};
use crate::state::AppState;
use crate::users::model::Role;
use crate::{assignments, audit, auth, authorisations, contacts, health, openapi, reviews, sources, users};

/// Every route, as (method, path template). A test checks that the server answers each of these
/// and that the OpenAPI document describes exactly these.
pub const ROUTE_TABLE: &[(&str, &str)] = &[
    ("GET", "/healthz"),
    ("GET", "/readyz"),
    ("GET", "/api/v1/openapi.json"),
    ("POST", "/api/v1/auth/login"),
    ("POST", "/api/v1/auth/refresh"),
    ("POST", "/api/v1/auth/logout"),
    ("GET", "/api/v1/me"),
    ("POST", "/api/v1/me/password"),
    ("POST", "/api/v1/users"),
    ("GET", "/api/v1/users"),
    ("GET", "/api/v1/users/{id}"),
    ("PATCH", "/api/v1/users/{id}"),
    ("POST", "/api/v1/sources"),
    ("GET", "/api/v1/sources"),
    ("GET", "/api/v1/sources/{id}"),
    ("GET", "/api/v1/sources/{id}/identity"),
    ("PUT", "/api/v1/sources/{id}/identity"),
    ("POST", "/api/v1/sources/{id}/status"),
    ("GET", "/api/v1/sources/{id}/assignments"),
    ("POST", "/api/v1/sources/{id}/assignments"),
    ("DELETE", "/api/v1/sources/{id}/assignments/{assignment_id}"),
    ("POST", "/api/v1/sources/{id}/authorisations"),
    ("GET", "/api/v1/sources/{id}/authorisations"),
    ("POST", "/api/v1/sources/{id}/authorisations/{aid}/cancel"),
    ("POST", "/api/v1/sources/{id}/contacts"),
    ("GET", "/api/v1/sources/{id}/contacts"),
    ("GET", "/api/v1/contacts/{id}"),
    ("POST", "/api/v1/contacts/{id}/amendments"),
    ("POST", "/api/v1/sources/{id}/reviews"),
    ("GET", "/api/v1/sources/{id}/reviews"),
    ("GET", "/api/v1/sources/{id}/track-record"),
    ("GET", "/api/v1/reviews/due"),
    ("GET", "/api/v1/audit/events"),
    ("GET", "/api/v1/audit/verify"),
    ("GET", "/api/v1/audit/checkpoints"),
    ("GET", "/api/v1/audit/export"),
];

/// Public routes first; everything else under `/api/v1` passes [`authenticate`] and, per scope,
/// a role guard — both before any body is read.
pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/healthz", web::get().to(health::healthz))
        .route("/readyz", web::get().to(health::readyz))
        .service(
            web::scope("/api/v1")
                .route("/openapi.json", web::get().to(openapi::serve))
                .route("/auth/login", web::post().to(auth::routes::login))
                .route("/auth/refresh", web::post().to(auth::routes::refresh))
                .service(
                    web::scope("")
                        .wrap(from_fn(authenticate))
                        .route("/auth/logout", web::post().to(auth::routes::logout))
                        .route("/me", web::get().to(auth::routes::me))
                        .route("/me/password", web::post().to(auth::routes::change_password))
                        .service(
                            web::scope("/users")
                                .wrap(from_fn(admin_only))
                                .route("", web::post().to(users::routes::create))
                                .route("", web::get().to(users::routes::list))
                                .route("/{id}", web::get().to(users::routes::get))
                                .route("/{id}", web::patch().to(users::routes::update)),
                        )
                        .service(
                            // Handlers and controllers only; the controller's own work is guarded
                            // per resource. Need-to-know per source is `access`'s, in the handlers.
                            web::scope("/sources")
                                .wrap(from_fn(source_roles))
                                .route("", web::post().to(sources::routes::register))
                                .route("", web::get().to(sources::routes::list))
                                .route("/{id}", web::get().to(sources::routes::get))
                                .route("/{id}/identity", web::get().to(sources::routes::get_identity))
                                .route("/{id}/identity", web::put().to(sources::routes::put_identity))
                                .service(
                                    web::resource("/{id}/status")
                                        .wrap(from_fn(controller_only))
                                        .route(web::post().to(sources::routes::change_status)),
                                )
                                .service(
                                    web::resource("/{id}/assignments")
                                        .route(web::get().to(assignments::routes::list))
                                        .route(
                                            web::post().to(assignments::routes::create).wrap(from_fn(controller_only)),
                                        ),
                                )
                                .service(
                                    web::resource("/{id}/assignments/{assignment_id}")
                                        .wrap(from_fn(controller_only))
                                        .route(web::delete().to(assignments::routes::end)),
                                )
                                .service(
                                    web::resource("/{id}/authorisations")
                                        .route(web::get().to(authorisations::routes::list))
                                        .route(
                                            web::post()
                                                .to(authorisations::routes::grant)
                                                .wrap(from_fn(controller_only)),
                                        ),
                                )
                                .service(
                                    web::resource("/{id}/authorisations/{aid}/cancel")
                                        .wrap(from_fn(controller_only))
                                        .route(web::post().to(authorisations::routes::cancel)),
                                )
                                .service(
                                    web::resource("/{id}/contacts")
                                        .route(web::get().to(contacts::routes::list))
                                        .route(web::post().to(contacts::routes::create).wrap(from_fn(handler_only))),
                                )
                                .service(
                                    web::resource("/{id}/reviews")
                                        .route(web::get().to(reviews::routes::list))
                                        .route(web::post().to(reviews::routes::create).wrap(from_fn(controller_only))),
                                )
                                .route("/{id}/track-record", web::get().to(reviews::track_record::get)),
                        )
                        .service(
                            web::scope("/contacts")
                                .wrap(from_fn(source_roles))
                                .route("/{id}", web::get().to(contacts::routes::get))
                                .route("/{id}/amendments", web::post().to(contacts::routes::amend)),
                        )
                        .service(
                            web::scope("/reviews")
                                .wrap(from_fn(controller_only))
                                .route("/due", web::get().to(reviews::routes::due)),
                        )
                        .service(
                            web::scope("/audit")
                                .wrap(from_fn(compliance_only))
                                .route("/events", web::get().to(audit::routes::events))
                                .route("/verify", web::get().to(audit::routes::verify))
                                .route("/checkpoints", web::get().to(audit::routes::checkpoints))
                                .route("/export", web::get().to(audit::routes::export)),
                        ),
                ),
        )
        .default_service(web::to(not_found));
}

async fn admin_only(
    req: actix_web::dev::ServiceRequest,
    next: actix_web::middleware::Next<impl actix_web::body::MessageBody + 'static>,
) -> Result<actix_web::dev::ServiceResponse<impl actix_web::body::MessageBody>, actix_web::Error> {
    require_roles(req, next, &[Role::Admin]).await
}

async fn source_roles(
    req: actix_web::dev::ServiceRequest,
    next: actix_web::middleware::Next<impl actix_web::body::MessageBody + 'static>,
) -> Result<actix_web::dev::ServiceResponse<impl actix_web::body::MessageBody>, actix_web::Error> {
    require_roles(req, next, &[Role::Handler, Role::Controller]).await
}

async fn handler_only(
    req: actix_web::dev::ServiceRequest,
    next: actix_web::middleware::Next<impl actix_web::body::MessageBody + 'static>,
) -> Result<actix_web::dev::ServiceResponse<impl actix_web::body::MessageBody>, actix_web::Error> {
    require_roles(req, next, &[Role::Handler]).await
}

async fn controller_only(
    req: actix_web::dev::ServiceRequest,
    next: actix_web::middleware::Next<impl actix_web::body::MessageBody + 'static>,
) -> Result<actix_web::dev::ServiceResponse<impl actix_web::body::MessageBody>, actix_web::Error> {
    require_roles(req, next, &[Role::Controller]).await
}

async fn compliance_only(
    req: actix_web::dev::ServiceRequest,
    next: actix_web::middleware::Next<impl actix_web::body::MessageBody + 'static>,
) -> Result<actix_web::dev::ServiceResponse<impl actix_web::body::MessageBody>, actix_web::Error> {
    require_roles(req, next, &[Role::Compliance]).await
}

async fn not_found() -> Result<actix_web::HttpResponse, AppError> {
    Err(AppError::NotFound)
}

/// Query strings of the wrong shape are client errors of the body kind: 422 naming the field.
fn query_error(err: actix_web::error::QueryPayloadError, _: &HttpRequest) -> actix_web::Error {
    let message = err.to_string();
    let field = message
        .split('`')
        .nth(1)
        .filter(|f| f.chars().all(|c| c.is_ascii_alphanumeric() || c == '_'))
        .unwrap_or("query")
        .to_string();
    AppError::field(field, "invalid query parameter").into()
}

/// Threads each worker may run blocking work on. All of it is database work on a pooled
/// connection, or a password hash behind its own semaphore: a thread beyond the worker's share
/// of the pool would only wait for a connection, and each idle thread keeps its stack and its
/// allocator heap (actix's default, 512 / workers, let 64 connections grow the process to ~80
/// threads and ~350 MiB). Queued work waits in the runtime's queue instead of on a thread.
pub fn blocking_threads_per_worker(config: &crate::config::Config, workers: usize) -> usize {
    (config.db_pool_size as usize).div_ceil(workers.max(1)) + config.password_hash_concurrency
}

/// Starts the HTTP server on `listener` (port 0 in tests).
pub fn run(state: web::Data<AppState>, listener: TcpListener) -> std::io::Result<Server> {
    let limit = state.config.json_limit_bytes;
    let workers = std::thread::available_parallelism().map_or(2, |n| n.get());
    let blocking = blocking_threads_per_worker(&state.config, workers);
    let server = HttpServer::new(move || {
        App::new()
            .app_data(state.clone())
            .app_data(BodyLimit(limit))
            .app_data(web::QueryConfig::default().error_handler(query_error))
            .app_data(web::PathConfig::default().error_handler(|_, _| AppError::NotFound.into()))
            .wrap(from_fn(security_headers))
            .wrap(from_fn(request_context))
            .configure(routes)
    })
    .workers(workers)
    .worker_max_blocking_threads(blocking)
    .listen(listener)?
    .run();
    Ok(server)
}
