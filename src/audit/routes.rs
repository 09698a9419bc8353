//! The compliance API (`/api/v1/audit/...`, compliance only: guarded in the route table).
//! Reading the audit trail is itself audited.

use actix_web::{HttpResponse, web};
use base64::Engine;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::check::verify_trail;
use super::sequencer::{self, CheckpointRow};
use super::store::{self, EventFilter, EventRow};
use super::{Event, Outcome};
use crate::auth::actor::Actor;
use crate::error::{AppError, AppResult};
use crate::http::context::RequestContext;
use crate::http::pagination::{CursorKey, List, PageQuery};
use crate::state::AppState;

/// An audit event as stored and hashed (API.md "Audit"). `at` is exactly the hashed string.
#[derive(Debug, Serialize, ToSchema)]
pub struct EventView {
    pub seq: i64,
    pub at: String,
    pub actor_id: Option<String>,
    pub actor_username: Option<String>,
    pub action: String,
    pub resource_type: Option<String>,
    pub resource_id: Option<String>,
    pub source_id: Option<String>,
    pub purpose: Option<String>,
    /// `allowed` | `denied`
    pub outcome: String,
    pub reason: Option<String>,
    pub request_id: Option<String>,
    pub client_ip: Option<String>,
    /// Lowercase hex.
    pub prev_hash: String,
    /// Lowercase hex.
    pub hash: String,
}

impl EventView {
    fn from_row(row: EventRow) -> Self {
        Self {
            seq: row.seq.unwrap_or_default(),
            at: row.at,
            actor_id: row.actor_id,
            actor_username: row.actor_username,
            action: row.action,
            resource_type: row.resource_type,
            resource_id: row.resource_id,
            source_id: row.source_id,
            purpose: row.purpose,
            outcome: row.outcome,
            reason: row.reason,
            request_id: row.request_id,
            client_ip: row.client_ip,
            prev_hash: row.prev_hash.map(hex::encode).unwrap_or_default(),
            hash: row.hash.map(hex::encode).unwrap_or_default(),
        }
    }
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct EventQuery {
    pub actor_id: Option<String>,
    pub source_id: Option<String>,
    pub action: Option<String>,
    /// `allowed` | `denied`
    pub outcome: Option<String>,
    /// RFC 3339; events at or after.
    pub from: Option<String>,
    /// RFC 3339; events before.
    pub to: Option<String>,
    pub limit: Option<i64>,
    pub cursor: Option<String>,
}

fn time_filter(field: &str, raw: &Option<String>) -> AppResult<Option<String>> {
    raw.as_ref()
        .map(|v| {
            chrono::DateTime::parse_from_rfc3339(v)
                .map(|t| super::format_at(&t.with_timezone(&chrono::Utc)))
                .map_err(|_| AppError::field(field, "must be an RFC 3339 date-time"))
        })
        .transpose()
}

fn short_filter(field: &str, raw: &Option<String>) -> AppResult<Option<String>> {
    match raw {
        Some(v) if v.is_empty() || v.len() > 200 || v.chars().any(char::is_control) => {
            Err(AppError::field(field, "must be 1 to 200 printable characters"))
        }
        other => Ok(other.clone()),
    }
}

impl EventQuery {
    fn filter(&self) -> AppResult<EventFilter> {
        let outcome = match self.outcome.as_deref() {
            None => None,
            Some("allowed") => Some(Outcome::Allowed),
            Some("denied") => Some(Outcome::Denied),
            Some(_) => return Err(AppError::field("outcome", "must be allowed or denied")),
        };
        Ok(EventFilter {
            actor_id: short_filter("actor_id", &self.actor_id)?,
            source_id: short_filter("source_id", &self.source_id)?,
            action: short_filter("action", &self.action)?,
            outcome,
            from: time_filter("from", &self.from)?,
            to: time_filter("to", &self.to)?,
        })
    }
}

fn reading(actor: &Actor, action: &'static str) -> Event {
    Event::by(actor, action, Outcome::Allowed).resource("audit", None).reason("role:compliance")
}

#[utoipa::path(get, path = "/api/v1/audit/events", tag = "audit", security(("bearer" = [])), params(EventQuery),
    responses((status = 200, body = inline(List<EventView>), description = "by seq, newest first"),
        (status = 401), (status = 403), (status = 422)))]
pub async fn events(
    state: web::Data<AppState>,
    ctx: RequestContext,
    actor: Actor,
    query: web::Query<EventQuery>,
) -> AppResult<HttpResponse> {
    let filter = query.filter()?;
    let page = PageQuery { limit: query.limit, cursor: query.cursor.clone() }.page()?;
    let now = state.clock.now();
    let list = state
        .db(move |conn| {
            let rows = store::query(conn, &filter, page.after.as_ref().map(|c| c.k), page.limit + 1)?;
            store::append_alone(conn, &ctx, reading(&actor, "audit.events.read"), now)?;
            Ok(List::from_rows(
                rows,
                page.limit,
                |r| CursorKey { k: r.seq.unwrap_or_default(), id: r.id.clone() },
                EventView::from_row,
            ))
        })
        .await?;
    Ok(HttpResponse::Ok().json(list))
}

#[derive(Serialize, ToSchema)]
pub struct HeadView {
    pub seq: i64,
    pub hash: String,
}

#[derive(Serialize, ToSchema)]
pub struct CheckpointView {
    pub seq: i64,
    /// Lowercase hex of the chain hash at `seq`.
    pub hash: String,
    /// The exact signed text: `humint-audit-checkpoint\n{seq}\n{hash}\n`.
    pub note: String,
    /// Standard base64 Ed25519 signature over `note`.
    pub signature: String,
    pub key_id: String,
    #[serde(serialize_with = "crate::time::serialize")]
    #[schema(value_type = String, format = DateTime)]
    pub created_at: chrono::DateTime<chrono::Utc>,
}

impl CheckpointView {
    fn from_row(row: &CheckpointRow) -> Self {
        Self {
            seq: row.seq,
            hash: hex::encode(&row.hash),
            note: row.note.clone(),
            signature: row.signature.clone(),
            key_id: row.key_id.clone(),
            created_at: crate::time::from_db(row.created_at),
        }
    }
}

#[derive(Serialize, ToSchema)]
pub struct VerifyView {
    pub valid: bool,
    pub checked: u64,
    pub head: Option<HeadView>,
    /// The lowest seq at which a hash, a link, a gap or a checkpoint fails; null when valid.
    pub first_invalid_seq: Option<i64>,
    /// `hash_mismatch`, `broken_link`, `seq_gap`, `checkpoint_signature`, `checkpoint_mismatch`, `truncated`.
    pub failure: Option<String>,
    /// The latest checkpoint that matches the chain.
    pub checkpoint: Option<CheckpointOut>,
    /// Committed events the sequencer has not chained for more than 5 seconds.
    pub unchained_events: i64,
}

#[derive(Serialize, ToSchema)]
pub struct CheckpointOut {
    pub seq: i64,
    pub hash: String,
    pub signature: String,
    pub key_id: String,
}

#[utoipa::path(get, path = "/api/v1/audit/verify", tag = "audit", security(("bearer" = [])),
    responses((status = 200, body = VerifyView), (status = 401), (status = 403)))]
pub async fn verify(state: web::Data<AppState>, ctx: RequestContext, actor: Actor) -> AppResult<HttpResponse> {
    let now = state.clock.now();
    let keyring = state.keys.keyring();
    let view = state
        .db(move |conn| {
            // Chain what has just been committed, so the answer covers every request so far.
            sequencer::chain_pending(conn)?;
            let result = verify_trail(conn, &keyring, now)?;
            store::append_alone(conn, &ctx, reading(&actor, "audit.verify"), now)?;
            let r = result.report;
            let failure = r
                .failure
                .map(|f| serde_json::to_value(f).ok().and_then(|v| v.as_str().map(str::to_string)).unwrap_or_default());
            Ok(VerifyView {
                valid: r.valid,
                checked: r.checked,
                head: r.head.as_ref().map(|(seq, hash)| HeadView { seq: *seq, hash: hash.clone() }),
                first_invalid_seq: r.first_invalid_seq,
                failure,
                checkpoint: r.latest_checkpoint.as_ref().map(|c| CheckpointOut {
                    seq: c.seq,
                    hash: c.hash_hex.clone(),
                    signature: c.signature_b64.clone(),
                    key_id: c.key_id.clone(),
                }),
                unchained_events: result.unchained_stale,
            })
        })
        .await?;
    Ok(HttpResponse::Ok().json(view))
}

#[derive(Serialize, ToSchema)]
pub struct CheckpointList {
    pub items: Vec<CheckpointView>,
    /// Standard base64 of the raw 32-byte Ed25519 audit public key.
    pub public_key: String,
    pub key_id: String,
}

#[utoipa::path(get, path = "/api/v1/audit/checkpoints", tag = "audit", security(("bearer" = [])),
    responses((status = 200, body = CheckpointList), (status = 401), (status = 403)))]
pub async fn checkpoints(state: web::Data<AppState>, ctx: RequestContext, actor: Actor) -> AppResult<HttpResponse> {
    let now = state.clock.now();
    let keyring = state.keys.keyring();
    let rows = state
        .db(move |conn| {
            let rows = sequencer::checkpoints(conn)?;
            store::append_alone(conn, &ctx, reading(&actor, "audit.checkpoints.read"), now)?;
            Ok(rows)
        })
        .await?;
    let key = keyring.audit_key();
    Ok(HttpResponse::Ok().json(CheckpointList {
        items: rows.iter().rev().map(CheckpointView::from_row).collect(),
        public_key: base64::engine::general_purpose::STANDARD.encode(key.public_key()),
        key_id: key.key_id().to_string(),
    }))
}

const EXPORT_PAGE: i64 = 2000;

#[utoipa::path(get, path = "/api/v1/audit/export", tag = "audit", security(("bearer" = [])),
    responses((status = 200, content_type = "application/x-ndjson", body = EventView, description = "every chained event, one JSON object per line, by seq ascending"),
        (status = 401), (status = 403)))]
pub async fn export(state: web::Data<AppState>, ctx: RequestContext, actor: Actor) -> AppResult<HttpResponse> {
    let now = state.clock.now();
    // The export is recorded before its first byte leaves.
    state.db(move |conn| store::append_alone(conn, &ctx, reading(&actor, "audit.export"), now)).await?;
    let stream = futures_util::stream::unfold(Some(0i64), move |after| {
        let state = state.clone();
        async move {
            let after = after?;
            let page = state.db(move |conn| store::chained_after(conn, after, EXPORT_PAGE)).await;
            match page {
                Ok(rows) if rows.is_empty() => None,
                Ok(rows) => {
                    let full = rows.len() as i64 == EXPORT_PAGE;
                    let next = store::next_page_after(after, &rows);
                    if full && next.is_none() {
                        tracing::error!(after, "audit export: seq does not advance past a page; export stopped");
                        return Some((Err(actix_web::error::ErrorInternalServerError("audit trail integrity")), None));
                    }
                    let mut out = Vec::with_capacity(rows.len() * 400);
                    for row in rows {
                        if serde_json::to_writer(&mut out, &EventView::from_row(row)).is_err() {
                            return Some((Err(actix_web::error::ErrorInternalServerError("export")), None));
                        }
                        out.push(b'\n');
                    }
                    Some((Ok(web::Bytes::from(out)), next.filter(|_| full)))
                }
                Err(e) => {
                    tracing::error!(error = %e, "audit export interrupted");
                    Some((Err(actix_web::error::ErrorServiceUnavailable("export interrupted")), None))
                }
            }
        }
    });
    Ok(HttpResponse::Ok().content_type("application/x-ndjson").streaming(stream))
}
