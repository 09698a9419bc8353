//! Middleware applied to every response: request context and log span, security headers.

use std::time::Instant;

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::header::{self, HeaderName, HeaderValue};
use actix_web::middleware::Next;
use actix_web::{Error, HttpMessage, web};
use tracing::Instrument;

use super::context::{REQUEST_ID_HEADER, RequestContext};
use crate::state::AppState;

/// Fixes the request id and client address, runs the request inside a span that carries the
/// request id (so every log line of the request has it), and logs one line per request: method,
/// path template, status, duration. Never headers, query strings or bodies: they may hold
/// tokens, passwords or names.
pub async fn request_context(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<impl MessageBody>, Error> {
    let state = req.app_data::<web::Data<AppState>>();
    let trusted = state.map(|s| s.config.trusted_proxies.clone()).unwrap_or_default();
    let commits = state.map(|s| s.audit_commits.clone());
    let ctx = RequestContext::from_service_request(&req, &trusted, commits);
    let request_id = ctx.request_id.clone();
    req.extensions_mut().insert(ctx);
    let method = req.method().to_string();
    let span = tracing::info_span!("request", request_id = %request_id);
    let started = Instant::now();
    async move {
        let mut res = next.call(req).await?;
        let route = res.request().match_pattern().unwrap_or_else(|| "<unmatched>".to_string());
        tracing::info!(
            method = %method,
            route = %route,
            status = res.status().as_u16(),
            micros = started.elapsed().as_micros() as u64,
            "request"
        );
        if let Ok(value) = HeaderValue::from_str(&request_id) {
            res.headers_mut().insert(HeaderName::from_static(REQUEST_ID_HEADER), value);
        }
        Ok(res)
    }
    .instrument(span)
    .await
}

/// Headers that keep responses out of caches and browsers' guesswork. The API serves JSON only,
/// so the content security policy allows nothing.
pub async fn security_headers(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<impl MessageBody>, Error> {
    let mut res = next.call(req).await?;
    let headers = res.headers_mut();
    for (name, value) in [
        (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        (header::CACHE_CONTROL, "no-store"),
        (header::REFERRER_POLICY, "no-referrer"),
        (header::CONTENT_SECURITY_POLICY, "default-src 'none'; frame-ancestors 'none'; base-uri 'none'"),
        (header::X_FRAME_OPTIONS, "DENY"),
    ] {
        headers.insert(name, HeaderValue::from_static(value));
    }
    Ok(res)
}
