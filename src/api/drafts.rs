//! `/drafts`: drafts of new threads and replies.

use chrono::{DateTime, Utc};
use poem::Request;
use poem_openapi::param::{Header, Path, Query};
use poem_openapi::payload::Json;
use poem_openapi::{ApiResponse, Object, OpenApi};
use serde::Deserialize;

use crate::clock::to_datetime;
use crate::domain::ids::DraftId;
use crate::error::AppResult;
use crate::service::mailbox::drafts::{self, DraftInput, DraftView};
use crate::service::mailbox::scheduled;
use crate::service::AppState;

use super::threads::ThreadKindName;
use super::{caller, BearerAuth, JsonBody, NoContent};

/// A draft; `thread_id` makes it a reply draft (then `to` and `subject` are not used).
#[derive(Debug, Object, Deserialize)]
#[oai(deny_unknown_fields)]
#[serde(deny_unknown_fields)]
pub struct DraftRequest {
    pub thread_id: Option<String>,
    #[serde(default)]
    pub to: Option<Vec<String>>,
    #[serde(default)]
    pub subject: Option<String>,
    #[serde(default)]
    pub body: Option<String>,
    #[serde(default)]
    pub attachment_ids: Option<Vec<String>>,
    #[serde(default)]
    pub kind: Option<ThreadKindName>,
    /// A conversation's start (see `POST /threads`).
    #[serde(default)]
    pub starts_at: Option<DateTime<Utc>>,
    /// For a conversation: the thread it is started from (see `POST /threads`).
    #[serde(default)]
    pub linked_from: Option<String>,
}

impl From<DraftRequest> for DraftInput {
    fn from(d: DraftRequest) -> Self {
        DraftInput {
            kind: d.kind.map(Into::into).unwrap_or_default(),
            starts_at: d.starts_at.map(|t| t.timestamp_millis()),
            linked_from: d.linked_from,
            thread_id: d.thread_id,
            to: d.to.unwrap_or_default(),
            subject: d.subject.unwrap_or_default(),
            body: d.body.unwrap_or_default(),
            attachment_ids: d.attachment_ids.unwrap_or_default(),
        }
    }
}

#[derive(Debug, Object)]
pub struct DraftOut {
    pub id: String,
    #[oai(skip_serializing_if_is_none)]
    pub thread_id: Option<String>,
    pub to: Vec<String>,
    pub subject: String,
    pub body: String,
    pub attachment_ids: Vec<String>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub kind: ThreadKindName,
    #[oai(skip_serializing_if_is_none)]
    pub starts_at: Option<DateTime<Utc>>,
    #[oai(skip_serializing_if_is_none)]
    pub linked_from: Option<String>,
}

impl From<DraftView> for DraftOut {
    fn from(d: DraftView) -> Self {
        Self {
            id: d.id,
            thread_id: d.thread_id,
            to: d.to,
            subject: d.subject,
            body: d.body,
            attachment_ids: d.attachment_ids,
            created_at: to_datetime(d.created_at),
            updated_at: to_datetime(d.updated_at),
            kind: d.kind.into(),
            starts_at: d.starts_at.map(to_datetime),
            linked_from: d.linked_from,
        }
    }
}

#[derive(Debug, Object)]
pub struct DraftPage {
    pub drafts: Vec<DraftOut>,
    #[oai(skip_serializing_if_is_none)]
    pub next_cursor: Option<String>,
}

/// Why a scheduled send was refused when its time came; nothing was sent.
#[derive(Debug, Object)]
pub struct FailureOut {
    /// The problem's code, as the API reports it (e.g. `recipient_not_activated`).
    pub code: String,
    pub detail: String,
}

/// A scheduled send: a draft with the time it goes at. A refused one has no time and says
/// why in `failure`.
#[derive(Debug, Object)]
pub struct ScheduledOut {
    #[oai(flatten)]
    pub draft: DraftOut,
    #[oai(skip_serializing_if_is_none)]
    pub send_at: Option<DateTime<Utc>>,
    #[oai(skip_serializing_if_is_none)]
    pub failure: Option<FailureOut>,
}

impl From<DraftView> for ScheduledOut {
    fn from(d: DraftView) -> Self {
        Self {
            send_at: d.send_at.map(to_datetime),
            failure: d
                .failure
                .clone()
                .map(|(code, detail)| FailureOut { code, detail }),
            draft: d.into(),
        }
    }
}

#[derive(Debug, Object)]
pub struct ScheduledList {
    pub scheduled: Vec<ScheduledOut>,
}

/// Changes to a scheduled send: its content (absent fields stay) and/or its time.
#[derive(Debug, Object, Deserialize)]
#[oai(deny_unknown_fields)]
#[serde(deny_unknown_fields)]
pub struct ScheduledRequest {
    #[serde(default)]
    pub to: Option<Vec<String>>,
    #[serde(default)]
    pub subject: Option<String>,
    #[serde(default)]
    pub body: Option<String>,
    #[serde(default)]
    pub attachment_ids: Option<Vec<String>>,
    /// A new time, up to a year ahead; a refused send given one is tried again then.
    #[serde(default)]
    pub send_at: Option<DateTime<Utc>>,
}

#[derive(Debug, Object)]
pub struct SentDraft {
    pub thread_id: String,
    pub message_id: String,
}

#[derive(ApiResponse)]
pub enum DraftCreated {
    /// Saved.
    #[oai(status = 201)]
    Created(Json<DraftOut>),
}

#[derive(ApiResponse)]
pub enum DraftSent {
    /// Sent; the draft is gone.
    #[oai(status = 201)]
    Created(Json<SentDraft>),
}

pub struct DraftsApi(pub AppState);

#[OpenApi(tag = "super::Tag::Mailbox")]
impl DraftsApi {
    /// Your drafts, most recently saved first.
    #[oai(path = "/drafts", method = "get", operation_id = "list_drafts")]
    async fn list(
        &self,
        auth: BearerAuth,
        req: &Request,
        cursor: Query<Option<String>>,
        limit: Query<Option<i64>>,
    ) -> AppResult<Json<DraftPage>> {
        let caller = caller(&self.0, &auth, req).await?;
        let (drafts, next_cursor) =
            drafts::list(&self.0, &caller, cursor.0.as_deref(), limit.0.unwrap_or(50)).await?;
        Ok(Json(DraftPage {
            drafts: drafts.into_iter().map(Into::into).collect(),
            next_cursor,
        }))
    }

    /// Saves a new draft.
    #[oai(path = "/drafts", method = "post", operation_id = "create_draft")]
    async fn create(
        &self,
        auth: BearerAuth,
        req: &Request,
        body: JsonBody<DraftRequest>,
    ) -> AppResult<DraftCreated> {
        let caller = caller(&self.0, &auth, req).await?;
        Ok(DraftCreated::Created(Json(
            drafts::create(&self.0, &caller, body.0.into())
                .await?
                .into(),
        )))
    }

    #[oai(path = "/drafts/:id", method = "get", operation_id = "get_draft")]
    async fn get(
        &self,
        auth: BearerAuth,
        req: &Request,
        id: Path<String>,
    ) -> AppResult<Json<DraftOut>> {
        let caller = caller(&self.0, &auth, req).await?;
        Ok(Json(
            drafts::open(&self.0, &caller, &DraftId::from_trusted(id.0))
                .await?
                .into(),
        ))
    }

    /// Saves a draft's whole content (idempotent).
    #[oai(path = "/drafts/:id", method = "put", operation_id = "save_draft")]
    async fn save(
        &self,
        auth: BearerAuth,
        req: &Request,
        id: Path<String>,
        body: JsonBody<DraftRequest>,
    ) -> AppResult<Json<DraftOut>> {
        let caller = caller(&self.0, &auth, req).await?;
        Ok(Json(
            drafts::save(
                &self.0,
                &caller,
                &DraftId::from_trusted(id.0),
                body.0.into(),
            )
            .await?
            .into(),
        ))
    }

    #[oai(path = "/drafts/:id", method = "delete", operation_id = "delete_draft")]
    async fn delete(
        &self,
        auth: BearerAuth,
        req: &Request,
        id: Path<String>,
    ) -> AppResult<NoContent> {
        let caller = caller(&self.0, &auth, req).await?;
        drafts::delete(&self.0, &caller, &DraftId::from_trusted(id.0)).await?;
        Ok(NoContent::Done)
    }

    /// Your scheduled sends and those refused, soonest first.
    #[oai(path = "/scheduled", method = "get", operation_id = "list_scheduled")]
    async fn scheduled(&self, auth: BearerAuth, req: &Request) -> AppResult<Json<ScheduledList>> {
        let caller = caller(&self.0, &auth, req).await?;
        let items = scheduled::list(&self.0, &caller).await?;
        Ok(Json(ScheduledList {
            scheduled: items.into_iter().map(Into::into).collect(),
        }))
    }

    /// Changes a scheduled send's content or time.
    #[oai(
        path = "/scheduled/:id",
        method = "patch",
        operation_id = "update_scheduled"
    )]
    async fn update_scheduled(
        &self,
        auth: BearerAuth,
        req: &Request,
        id: Path<String>,
        body: JsonBody<ScheduledRequest>,
    ) -> AppResult<Json<ScheduledOut>> {
        let caller = caller(&self.0, &auth, req).await?;
        let id = DraftId::from_trusted(id.0);
        let body = body.0;
        let content = if body.to.is_some()
            || body.subject.is_some()
            || body.body.is_some()
            || body.attachment_ids.is_some()
        {
            let current = drafts::get(&self.0, &caller, &id).await?;
            Some(DraftInput {
                thread_id: current.thread_id,
                to: body.to.unwrap_or(current.to),
                subject: body.subject.unwrap_or(current.subject),
                body: body.body.unwrap_or(current.body),
                attachment_ids: body.attachment_ids.unwrap_or(current.attachment_ids),
                kind: current.kind,
                starts_at: current.starts_at,
                linked_from: current.linked_from,
            })
        } else {
            None
        };
        let send_at = body.send_at.map(|t| t.timestamp_millis());
        let updated = scheduled::update(&self.0, &caller, &id, content, send_at).await?;
        Ok(Json(updated.into()))
    }

    /// Cancels a scheduled send (it is deleted, with its uploads).
    #[oai(
        path = "/scheduled/:id",
        method = "delete",
        operation_id = "cancel_scheduled"
    )]
    async fn cancel_scheduled(
        &self,
        auth: BearerAuth,
        req: &Request,
        id: Path<String>,
    ) -> AppResult<NoContent> {
        let caller = caller(&self.0, &auth, req).await?;
        scheduled::cancel(&self.0, &caller, &DraftId::from_trusted(id.0)).await?;
        Ok(NoContent::Done)
    }

    /// Sends a draft as a new thread or reply; if it is refused, the draft stays as it was.
    /// With `Idempotency-Key`, a retry after the draft was sent returns the first result.
    #[oai(
        path = "/drafts/:id/send",
        method = "post",
        operation_id = "send_draft"
    )]
    async fn send(
        &self,
        auth: BearerAuth,
        req: &Request,
        id: Path<String>,
        #[oai(name = "Idempotency-Key")] idempotency_key: Header<Option<String>>,
    ) -> AppResult<DraftSent> {
        let caller = caller(&self.0, &auth, req).await?;
        let (thread_id, message_id) = drafts::send(
            &self.0,
            &caller,
            &DraftId::from_trusted(id.0),
            idempotency_key.0.as_deref(),
        )
        .await?;
        Ok(DraftSent::Created(Json(SentDraft {
            thread_id,
            message_id,
        })))
    }
}
