//! `/legal-holds`: keeping a client's or a thread's data (administrators).

use chrono::{DateTime, Utc};
use poem::Request;
use poem_openapi::param::Path;
use poem_openapi::payload::Json;
use poem_openapi::{ApiResponse, Object, OpenApi};
use serde::Deserialize;

use crate::clock::to_datetime;
use crate::domain::ids::LegalHoldId;
use crate::error::AppResult;
use crate::service::legal_holds::{self as service, HoldTarget};
use crate::service::AppState;
use crate::store::legal_holds::HoldRow;

use super::{caller, BearerAuth, JsonBody, NoContent};

/// What to hold: exactly one of a client and a thread.
#[derive(Debug, Object, Deserialize)]
#[oai(deny_unknown_fields)]
#[serde(deny_unknown_fields)]
pub struct LegalHoldRequest {
    /// A client of the practice: every thread they take part in (or took part in) is held.
    pub client_id: Option<String>,
    /// One thread of the practice.
    pub thread_id: Option<String>,
}

/// A legal hold in force.
#[derive(Debug, Object)]
pub struct LegalHoldOut {
    pub id: String,
    #[oai(skip_serializing_if_is_none)]
    pub client_id: Option<String>,
    #[oai(skip_serializing_if_is_none)]
    pub thread_id: Option<String>,
    /// The administrator who placed it.
    pub placed_by: String,
    pub placed_at: DateTime<Utc>,
}

impl From<HoldRow> for LegalHoldOut {
    fn from(h: HoldRow) -> Self {
        Self {
            id: h.id,
            client_id: h.client_id,
            thread_id: h.thread_id,
            placed_by: h.placed_by,
            placed_at: to_datetime(h.placed_at),
        }
    }
}

#[derive(Debug, Object)]
pub struct LegalHoldList {
    pub holds: Vec<LegalHoldOut>,
}

#[derive(ApiResponse)]
pub enum LegalHoldPlaced {
    /// Placed.
    #[oai(status = 201)]
    Created(Json<LegalHoldOut>),
}

pub struct LegalHoldsApi(pub AppState);

#[OpenApi(tag = "super::Tag::Audit")]
impl LegalHoldsApi {
    /// Places a legal hold on a client or a thread (administrators): while it is in force,
    /// nothing it covers is purged, and staff deleting a message or thread it covers get
    /// 409 `legal_hold`.
    #[oai(
        path = "/legal-holds",
        method = "post",
        operation_id = "place_legal_hold"
    )]
    async fn place(
        &self,
        auth: BearerAuth,
        req: &Request,
        body: JsonBody<LegalHoldRequest>,
    ) -> AppResult<LegalHoldPlaced> {
        let caller = caller(&self.0, &auth, req).await?;
        let target = HoldTarget::of(body.0.client_id, body.0.thread_id)?;
        let hold = service::place(&self.0, &caller, target).await?;
        Ok(LegalHoldPlaced::Created(Json(hold.into())))
    }

    /// The practice's legal holds in force (administrators).
    #[oai(
        path = "/legal-holds",
        method = "get",
        operation_id = "list_legal_holds"
    )]
    async fn list(&self, auth: BearerAuth, req: &Request) -> AppResult<Json<LegalHoldList>> {
        let caller = caller(&self.0, &auth, req).await?;
        let holds = service::list(&self.0, &caller).await?;
        Ok(Json(LegalHoldList {
            holds: holds.into_iter().map(Into::into).collect(),
        }))
    }

    /// Releases a legal hold (administrators); what it covered may be deleted again.
    #[oai(
        path = "/legal-holds/:id",
        method = "delete",
        operation_id = "release_legal_hold"
    )]
    async fn release(
        &self,
        auth: BearerAuth,
        req: &Request,
        id: Path<String>,
    ) -> AppResult<NoContent> {
        let caller = caller(&self.0, &auth, req).await?;
        service::release(&self.0, &caller, &LegalHoldId::from_trusted(id.0)).await?;
        Ok(NoContent::Done)
    }
}
