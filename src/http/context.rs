//! Who is asking from where: the request id and the client address, fixed once per request by
//! the middleware and read by audit and logging.

use std::net::IpAddr;
use std::sync::Arc;

use actix_web::dev::ServiceRequest;
use actix_web::http::header::HeaderMap;
use actix_web::{FromRequest, HttpMessage, HttpRequest};
use uuid::Uuid;

use crate::audit::GroupCommit;
use crate::error::AppError;

#[derive(Clone, Debug)]
pub struct RequestContext {
    pub request_id: String,
    pub client_ip: Option<IpAddr>,
    /// `X-Access-Purpose` when sent and valid; recorded in the request's audit event.
    pub purpose: Option<String>,
    /// Where this request's events that commit on their own are committed, together with
    /// concurrent requests' (`audit::append_alone`). None for an operator's command.
    pub commits: Option<Arc<GroupCommit>>,
}

pub const REQUEST_ID_HEADER: &str = "x-request-id";

impl RequestContext {
    /// Context of work the service or an operator's command does by itself (bootstrap, key
    /// operations, the sequencer): no client, a fresh id to correlate its log lines.
    pub fn system() -> Self {
        Self { request_id: format!("system-{}", Uuid::new_v4()), client_ip: None, purpose: None, commits: None }
    }

    pub fn from_service_request(
        req: &ServiceRequest,
        trusted_proxies: &[IpAddr],
        commits: Option<Arc<GroupCommit>>,
    ) -> Self {
        let request_id = req
            .headers()
            .get(REQUEST_ID_HEADER)
            .and_then(|v| v.to_str().ok())
            .filter(|v| is_acceptable_request_id(v))
            .map_or_else(|| Uuid::new_v4().to_string(), str::to_string);
        let peer = req.peer_addr().map(|a| a.ip());
        let client_ip = peer.map(|peer| client_ip(peer, req.headers(), trusted_proxies));
        // Purposes are free text in any language: UTF-8 header bytes are accepted.
        let purpose = req
            .headers()
            .get(super::purpose::PURPOSE_HEADER)
            .and_then(|v| std::str::from_utf8(v.as_bytes()).ok())
            .and_then(super::purpose::Purpose::parse)
            .map(|p| p.as_str().to_string());
        Self { request_id, client_ip, purpose, commits }
    }
}

/// A client-chosen request id is kept (so it can be correlated across systems) only when it is
/// short and plain: it lands in logs and in the audit trail.
fn is_acceptable_request_id(v: &str) -> bool {
    (1..=64).contains(&v.len()) && v.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_' || b == b'.')
}

/// The TCP peer, unless the peer is a trusted proxy: then the right-most `X-Forwarded-For` entry
/// that is not itself a trusted proxy. Entries left of it were written by the client and prove
/// nothing.
pub fn client_ip(peer: IpAddr, headers: &HeaderMap, trusted: &[IpAddr]) -> IpAddr {
    if !trusted.contains(&peer) {
        return peer;
    }
    let forwarded: Vec<IpAddr> = headers
        .get_all("x-forwarded-for")
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .filter_map(|s| s.trim().parse().ok())
        .collect();
    forwarded.into_iter().rev().find(|ip| !trusted.contains(ip)).unwrap_or(peer)
}

impl FromRequest for RequestContext {
    type Error = AppError;
    type Future = std::future::Ready<Result<Self, AppError>>;

    fn from_request(req: &HttpRequest, _: &mut actix_web::dev::Payload) -> Self::Future {
        std::future::ready(
            req.extensions()
                .get::<RequestContext>()
                .cloned()
                .ok_or_else(|| AppError::internal("request context middleware not installed")),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use actix_web::http::header::{HeaderName, HeaderValue};

    fn headers(xff: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(HeaderName::from_static("x-forwarded-for"), HeaderValue::from_str(xff).unwrap());
        h
    }

    #[test]
    fn forwarded_for_is_ignored_from_untrusted_peers() {
        let peer: IpAddr = "203.0.113.9".parse().unwrap();
        assert_eq!(client_ip(peer, &headers("1.2.3.4"), &[]), peer);
    }

    #[test]
    fn trusted_proxy_yields_the_rightmost_untrusted_hop() {
        let proxy: IpAddr = "10.0.0.10".parse().unwrap();
        let got = client_ip(proxy, &headers("6.6.6.6, 198.51.100.7, 10.0.0.10"), &[proxy]);
        assert_eq!(got, "198.51.100.7".parse::<IpAddr>().unwrap());
    }

    #[test]
    fn hostile_request_ids_are_replaced() {
        assert!(is_acceptable_request_id("abc-123"));
        assert!(!is_acceptable_request_id("a\nb"));
        assert!(!is_acceptable_request_id(&"x".repeat(65)));
        assert!(!is_acceptable_request_id(""));
    }
}
