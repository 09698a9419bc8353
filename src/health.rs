//! Liveness and readiness (no authentication).

use actix_web::{HttpResponse, web};
use diesel::connection::SimpleConnection;
use serde::Serialize;
use utoipa::ToSchema;

use crate::state::AppState;

#[derive(Serialize, ToSchema)]
pub struct Status {
    /// `ok`, or `unavailable`.
    pub status: &'static str,
}

#[utoipa::path(get, path = "/healthz", tag = "health", responses((status = 200, body = Status)))]
pub async fn healthz() -> HttpResponse {
    HttpResponse::Ok().json(Status { status: "ok" })
}

/// Ready when the database answers (keys are loaded before the server starts at all).
#[utoipa::path(get, path = "/readyz", tag = "health",
    responses((status = 200, body = Status), (status = 503, body = Status)))]
pub async fn readyz(state: web::Data<AppState>) -> HttpResponse {
    let ready = state.db(|conn| conn.batch_execute("SELECT 1").map_err(crate::error::AppError::from)).await.is_ok();
    if ready {
        HttpResponse::Ok().json(Status { status: "ok" })
    } else {
        HttpResponse::ServiceUnavailable().json(Status { status: "unavailable" })
    }
}
