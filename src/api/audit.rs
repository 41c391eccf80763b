//! `/audit`: the practice's audit log, for administrators.

use chrono::{DateTime, Utc};
use poem::Request;
use poem_openapi::param::Query;
use poem_openapi::payload::Json;
use poem_openapi::{Object, OpenApi};

use crate::clock::to_datetime;
use crate::error::AppResult;
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
}
