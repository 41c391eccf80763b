//! `/audit`: the practice's audit log, for administrators.

use chrono::{DateTime, Utc};
use poem::Request;
use poem_openapi::param::Query;
use poem_openapi::payload::{Binary, Json, Response};
use poem_openapi::{Object, OpenApi};

use crate::clock::to_datetime;
use crate::error::{AppError, AppResult};
use crate::service::audit::ExportFormat;
use crate::service::{audit as audit_service, AppState};

use super::{caller, BearerAuth};

/// One audit event: who did what to which object, when, from where — never content.
#[derive(Object)]
pub struct AuditEventOut {
    pub seq: i64,
    pub at: DateTime<Utc>,
    #[oai(skip_serializing_if_is_none)]
    pub actor_id: Option<String>,
    pub action: String,
    #[oai(skip_serializing_if_is_none)]
    pub object_type: Option<String>,
    #[oai(skip_serializing_if_is_none)]
    pub object_id: Option<String>,
    pub outcome: String,
    #[oai(skip_serializing_if_is_none)]
    pub ip: Option<String>,
    #[oai(skip_serializing_if_is_none)]
    pub session_ref: Option<String>,
    /// This event's link in the hash chain.
    pub hash: String,
}

#[derive(Object)]
pub struct AuditPage {
    pub events: Vec<AuditEventOut>,
    #[oai(skip_serializing_if_is_none)]
    pub next_cursor: Option<String>,
}

/// What a walk of the whole audit chain found.
#[derive(Object)]
pub struct AuditVerification {
    /// Whether every event fits the chain, the last is the head the log records, and the
    /// anchor given (if any) matches.
    pub intact: bool,
    /// Events that fit, from the first.
    pub events: i64,
    /// The last event that fits: its seq and hash (an anchor to write down elsewhere).
    pub head_seq: i64,
    pub head_hash: String,
    /// The first seq that does not fit: edited, removed, or past what the head or the
    /// anchor says.
    #[oai(skip_serializing_if_is_none)]
    pub broken_at: Option<i64>,
}

/// A moment as the export filters take it: RFC 3339 (`2026-12-01T00:00:00Z`).
fn instant(field: &str, value: Option<&str>) -> AppResult<Option<i64>> {
    value
        .map(|v| {
            DateTime::parse_from_rfc3339(v)
                .map(|t| t.timestamp_millis())
                .map_err(|_| {
                    AppError::invalid(
                        field,
                        format!(
                            "`{field}` is a date and time in RFC 3339, e.g. 2026-12-01T00:00:00Z."
                        ),
                    )
                })
        })
        .transpose()
}

pub struct AuditApi(pub AppState);

#[OpenApi(tag = "super::Tag::Audit")]
impl AuditApi {
    /// The practice's audit events, newest first (administrators only).
    #[oai(path = "/audit", method = "get", operation_id = "list_audit_events")]
    async fn list(
        &self,
        auth: BearerAuth,
        req: &Request,
        cursor: Query<Option<String>>,
        limit: Query<Option<i64>>,
    ) -> AppResult<Json<AuditPage>> {
        let caller = caller(&self.0, &auth, req).await?;
        let (rows, next_cursor) = audit_service::list(
            &self.0,
            &caller,
            audit_service::AuditFilter::default(),
            cursor.0.as_deref(),
            limit.0.unwrap_or(100),
        )
        .await?;
        let events: Vec<AuditEventOut> = rows
            .into_iter()
            .map(|r| AuditEventOut {
                seq: r.seq,
                at: to_datetime(r.at),
                actor_id: r.actor_id,
                action: r.action,
                object_type: r.object_type,
                object_id: r.object_id,
                outcome: r.outcome,
                ip: r.ip,
                session_ref: r.session_ref,
                hash: r.hash,
            })
            .collect();
        Ok(Json(AuditPage {
            events,
            next_cursor,
        }))
    }

    /// Walks the whole audit chain: every event must follow the one before and hash to
    /// what it says, and the last must be the head the log records (administrators only).
    /// `anchor` (`SEQ:HASH`, a head written down earlier) must match the event at its seq.
    #[oai(
        path = "/audit/verify",
        method = "get",
        operation_id = "verify_audit_chain"
    )]
    async fn verify(
        &self,
        auth: BearerAuth,
        req: &Request,
        anchor: Query<Option<String>>,
    ) -> AppResult<Json<AuditVerification>> {
        let caller = caller(&self.0, &auth, req).await?;
        let check = audit_service::verify_for(&self.0, &caller, anchor.0.as_deref()).await?;
        Ok(Json(AuditVerification {
            intact: check.broken_at.is_none(),
            events: check.events,
            head_seq: check.head_seq,
            head_hash: check.head_hash,
            broken_at: check.broken_at,
        }))
    }

    /// The practice's audit events, oldest first, streamed as `jsonl` (one JSON object per
    /// line, the default) or `csv`, at or after `from` and before `to` (RFC 3339), up to
    /// the moment the export began (administrators only; the export is audited too).
    #[oai(
        path = "/audit/export",
        method = "get",
        operation_id = "export_audit_events"
    )]
    async fn export(
        &self,
        auth: BearerAuth,
        req: &Request,
        format: Query<Option<String>>,
        from: Query<Option<String>>,
        to: Query<Option<String>>,
    ) -> AppResult<Response<Binary<poem::Body>>> {
        let caller = caller(&self.0, &auth, req).await?;
        let format = ExportFormat::parse(format.0.as_deref())?;
        let from = instant("from", from.0.as_deref())?;
        let to = instant("to", to.0.as_deref())?;
        let rows = audit_service::export(&self.0, &caller, format, from, to).await?;
        let name = format!(
            "attachment; filename=\"audit-{}.{}\"",
            to_datetime(self.0.now()).format("%Y%m%dT%H%M%SZ"),
            format.extension()
        );
        Ok(Response::new(Binary(poem::Body::from_bytes_stream(rows)))
            .header("content-type", format.content_type())
            .header("content-disposition", name)
            .header("cache-control", "no-store"))
    }
}
