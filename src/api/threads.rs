//! `/threads` and `/messages`: composing, reading, replying, one's own thread state, and
//! permanent deletion.

use chrono::{DateTime, Utc};
use poem::Request;
use poem_openapi::param::{Header, Path, Query};
use poem_openapi::payload::Json;
use poem_openapi::{ApiResponse, Enum, Object, OpenApi};
use serde::Deserialize;

use crate::clock::to_datetime;
use crate::domain::ids::{MessageId, ThreadId};
use crate::error::AppResult;
use crate::service::mailbox::compose::{self, ComposeInput};
use crate::service::mailbox::filing::{self, BulkAction};
use crate::service::mailbox::read::{self, MessageView, ThreadSummary, ThreadView};
use crate::service::mailbox::{delete, PersonRef};
use crate::service::AppState;

use super::attachments::AttachmentOut;
use super::people::RoleName;
use super::{caller, BearerAuth, JsonBody, NoContent};

/// A person inside a thread: never an email address.
#[derive(Debug, Object)]
pub struct PersonRefOut {
    /// Empty for a participant the caller may not know.
    pub id: String,
    pub name: String,
    /// Absent for a participant the caller may not know.
    #[oai(skip_serializing_if_is_none)]
    pub role: Option<RoleName>,
}

impl From<PersonRef> for PersonRefOut {
    fn from(p: PersonRef) -> Self {
        Self {
            id: p.id,
            name: p.name,
            role: p.role.map(Into::into),
        }
    }
}

/// A thread in a list.
#[derive(Debug, Object)]
pub struct ThreadSummaryOut {
    pub id: String,
    pub subject: String,
    /// Where it sits for you: inbox, archive, trash or a folder id.
    pub folder: String,
    pub unread: bool,
    pub message_count: i64,
    pub created_at: DateTime<Utc>,
    pub last_activity_at: DateTime<Utc>,
    /// The start of the latest message, as plain text.
    pub preview: String,
    /// The participants you may know.
    pub participants: Vec<PersonRefOut>,
    /// For a client: how many other clients received the thread (they are not named).
    pub other_recipients: i64,
    /// The staff groups the thread was addressed to.
    pub groups: Vec<String>,
    pub reply_allowed: bool,
    /// Whether any message of the thread carries attachments.
    pub has_attachments: bool,
    pub attachment_count: i64,
}

impl From<ThreadSummary> for ThreadSummaryOut {
    fn from(s: ThreadSummary) -> Self {
        Self {
            id: s.id,
            subject: s.subject,
            folder: s.folder,
            unread: s.unread,
            message_count: s.message_count,
            created_at: to_datetime(s.created_at),
            last_activity_at: to_datetime(s.last_activity_at),
            preview: s.preview,
            participants: s.participants.into_iter().map(Into::into).collect(),
            other_recipients: s.other_recipients,
            groups: s.groups,
            reply_allowed: s.reply_allowed,
            has_attachments: s.attachment_count > 0,
            attachment_count: s.attachment_count,
        }
    }
}

#[derive(Debug, Object)]
pub struct MessageOut {
    pub id: String,
    pub sender: PersonRefOut,
    /// The Markdown as written.
    pub body: String,
    /// The Markdown rendered and sanitized: safe to show as HTML.
    pub body_html: String,
    pub created_at: DateTime<Utc>,
    /// Whether you may permanently delete it (staff, your own message).
    pub can_delete: bool,
    /// Download each at `GET /attachments/{id}`.
    pub attachments: Vec<AttachmentOut>,
}

impl From<MessageView> for MessageOut {
    fn from(m: MessageView) -> Self {
        Self {
            id: m.id,
            sender: m.sender.into(),
            body: m.body,
            body_html: m.body_html,
            created_at: to_datetime(m.created_at),
            can_delete: m.can_delete,
            attachments: m.attachments.into_iter().map(Into::into).collect(),
        }
    }
}

/// Whether you may reply, and if not, why.
#[derive(Debug, Object)]
pub struct ReplyPolicyOut {
    pub allowed: bool,
    /// The code of the refusal: `replies_not_allowed` (two or more clients) or
    /// `client_inactive` (an inactive client and staff other than front office and billers).
    #[oai(skip_serializing_if_is_none)]
    pub reason: Option<String>,
}

/// A thread with every message.
#[derive(Debug, Object)]
pub struct ThreadOut {
    #[oai(flatten)]
    pub summary: ThreadSummaryOut,
    pub reply: ReplyPolicyOut,
    /// Whether you may permanently delete the whole thread (staff who started it).
    pub can_delete: bool,
    pub messages: Vec<MessageOut>,
}

impl From<ThreadView> for ThreadOut {
    fn from(v: ThreadView) -> Self {
        Self {
            reply: ReplyPolicyOut {
                allowed: v.reply_refusal.is_none(),
                reason: v.reply_refusal.map(|code| code.as_str().to_string()),
            },
            summary: v.summary.into(),
            can_delete: v.can_delete,
            messages: v.messages.into_iter().map(Into::into).collect(),
        }
    }
}

#[derive(Debug, Object)]
pub struct ThreadPage {
    pub threads: Vec<ThreadSummaryOut>,
    #[oai(skip_serializing_if_is_none)]
    pub next_cursor: Option<String>,
}

/// A new message. `to` holds `user:<id>` and `group:<name>` entries.
#[derive(Debug, Object, Deserialize)]
#[oai(deny_unknown_fields)]
#[serde(deny_unknown_fields)]
pub struct ComposeRequest {
    pub to: Vec<String>,
    pub subject: String,
    /// Markdown, 10 to 100,000 characters.
    pub body: String,
    #[serde(default)]
    pub attachment_ids: Option<Vec<String>>,
}

#[derive(Debug, Object, Deserialize)]
#[oai(deny_unknown_fields)]
#[serde(deny_unknown_fields)]
pub struct ReplyRequest {
    /// Markdown, 10 to 100,000 characters.
    pub body: String,
    #[serde(default)]
    pub attachment_ids: Option<Vec<String>>,
}

/// Your own state of a thread.
#[derive(Debug, Object, Deserialize)]
#[oai(deny_unknown_fields)]
#[serde(deny_unknown_fields)]
pub struct ThreadStateRequest {
    /// inbox, archive, trash or one of your folders' ids.
    pub folder: Option<String>,
    pub read: Option<bool>,
}

#[derive(Debug, Object)]
pub struct ThreadStateOut {
    pub id: String,
    pub folder: String,
    pub unread: bool,
}

#[derive(Debug, Clone, Copy, Enum, Deserialize)]
#[oai(rename_all = "snake_case")]
#[serde(rename_all = "snake_case")]
pub enum BulkActionName {
    MarkRead,
    MarkUnread,
    Move,
    Archive,
    Trash,
    Restore,
}

/// One action on up to 500 of your threads: all of them or none.
#[derive(Debug, Object, Deserialize)]
#[oai(deny_unknown_fields)]
#[serde(deny_unknown_fields)]
pub struct BulkRequest {
    pub thread_ids: Vec<String>,
    pub action: BulkActionName,
    /// For `move`: inbox, archive, trash or one of your folders' ids.
    pub folder: Option<String>,
}

#[derive(Debug, Object)]
pub struct BulkOut {
    pub updated: i64,
}

#[derive(ApiResponse)]
pub enum ThreadCreated {
    /// Sent.
    #[oai(status = 201)]
    Created(Json<ThreadOut>),
}

#[derive(ApiResponse)]
pub enum MessageCreated {
    /// Sent.
    #[oai(status = 201)]
    Created(Json<MessageOut>),
}

pub struct ThreadsApi(pub AppState);

#[OpenApi(tag = "super::Tag::Mailbox")]
impl ThreadsApi {
    /// A folder's threads, latest activity first.
    #[oai(path = "/threads", method = "get", operation_id = "list_threads")]
    async fn list(
        &self,
        auth: BearerAuth,
        req: &Request,
        /// inbox (default), sent, archive, trash, team:<group> or a folder id.
        folder: Query<Option<String>>,
        cursor: Query<Option<String>>,
        /// 1–200, default 50.
        limit: Query<Option<i64>>,
    ) -> AppResult<Json<ThreadPage>> {
        let caller = caller(&self.0, &auth, req).await?;
        let folder = folder.0.unwrap_or_else(|| "inbox".into());
        let (threads, next_cursor) = read::list(
            &self.0,
            &caller,
            &folder,
            cursor.0.as_deref(),
            limit.0.unwrap_or(50),
        )
        .await?;
        Ok(Json(ThreadPage {
            threads: threads.into_iter().map(Into::into).collect(),
            next_cursor,
        }))
    }

    /// Composes and sends a new thread. With `Idempotency-Key`, a retry returns the first
    /// result instead of sending twice.
    #[oai(path = "/threads", method = "post", operation_id = "compose")]
    async fn compose(
        &self,
        auth: BearerAuth,
        req: &Request,
        #[oai(name = "Idempotency-Key")] idempotency_key: Header<Option<String>>,
        body: JsonBody<ComposeRequest>,
    ) -> AppResult<ThreadCreated> {
        let caller = caller(&self.0, &auth, req).await?;
        let body = body.0;
        let input = ComposeInput {
            to: body.to,
            subject: body.subject,
            body: body.body,
            attachment_ids: body.attachment_ids.unwrap_or_default(),
        };
        let (thread_id, _) =
            compose::compose(&self.0, &caller, input, idempotency_key.0.as_deref()).await?;
        let view = read::view(&self.0, &caller, &thread_id, false).await?;
        Ok(ThreadCreated::Created(Json(view.into())))
    }

    /// A thread with all its messages; marks it read for you.
    #[oai(path = "/threads/:id", method = "get", operation_id = "get_thread")]
    async fn get(
        &self,
        auth: BearerAuth,
        req: &Request,
        id: Path<String>,
    ) -> AppResult<Json<ThreadOut>> {
        let caller = caller(&self.0, &auth, req).await?;
        Ok(Json(
            read::get(&self.0, &caller, &ThreadId::from_trusted(id.0.clone()))
                .await?
                .into(),
        ))
    }

    /// Moves the thread and/or marks it read or unread, for you only.
    #[oai(
        path = "/threads/:id",
        method = "patch",
        operation_id = "update_thread_state"
    )]
    async fn update(
        &self,
        auth: BearerAuth,
        req: &Request,
        id: Path<String>,
        body: JsonBody<ThreadStateRequest>,
    ) -> AppResult<Json<ThreadStateOut>> {
        let caller = caller(&self.0, &auth, req).await?;
        let (folder, unread) = filing::update(
            &self.0,
            &caller,
            &ThreadId::from_trusted(id.0.clone()),
            body.0.folder.as_deref(),
            body.0.read,
        )
        .await?;
        Ok(Json(ThreadStateOut {
            id: id.0,
            folder,
            unread,
        }))
    }

    /// One action on many of your threads at once.
    #[oai(
        path = "/threads/bulk",
        method = "post",
        operation_id = "bulk_update_threads"
    )]
    async fn bulk(
        &self,
        auth: BearerAuth,
        req: &Request,
        body: JsonBody<BulkRequest>,
    ) -> AppResult<Json<BulkOut>> {
        let caller = caller(&self.0, &auth, req).await?;
        let body = body.0;
        let action = match body.action {
            BulkActionName::MarkRead => BulkAction::MarkRead,
            BulkActionName::MarkUnread => BulkAction::MarkUnread,
            BulkActionName::Move => BulkAction::Move,
            BulkActionName::Archive => BulkAction::Archive,
            BulkActionName::Trash => BulkAction::Trash,
            BulkActionName::Restore => BulkAction::Restore,
        };
        let updated = filing::bulk(
            &self.0,
            &caller,
            &body.thread_ids,
            action,
            body.folder.as_deref(),
        )
        .await?;
        Ok(Json(BulkOut {
            updated: updated as i64,
        }))
    }

    /// Replies to a thread; the reply goes to every participant.
    #[oai(
        path = "/threads/:id/messages",
        method = "post",
        operation_id = "reply"
    )]
    async fn reply(
        &self,
        auth: BearerAuth,
        req: &Request,
        id: Path<String>,
        body: JsonBody<ReplyRequest>,
    ) -> AppResult<MessageCreated> {
        let caller = caller(&self.0, &auth, req).await?;
        let body = body.0;
        let message_id = compose::reply(
            &self.0,
            &caller,
            &ThreadId::from_trusted(id.0.clone()),
            &body.body,
            &body.attachment_ids.unwrap_or_default(),
        )
        .await?;
        let view = read::view(&self.0, &caller, &id.0, false).await?;
        let message = view
            .messages
            .into_iter()
            .find(|m| m.id == message_id)
            .ok_or_else(|| crate::error::AppError::not_found("message"))?;
        Ok(MessageCreated::Created(Json(message.into())))
    }

    /// Permanently deletes a whole thread you started (staff), in every mailbox.
    #[oai(
        path = "/threads/:id",
        method = "delete",
        operation_id = "delete_thread"
    )]
    async fn delete_thread(
        &self,
        auth: BearerAuth,
        req: &Request,
        id: Path<String>,
    ) -> AppResult<NoContent> {
        let caller = caller(&self.0, &auth, req).await?;
        delete::delete_thread(&self.0, &caller, &ThreadId::from_trusted(id.0.clone())).await?;
        Ok(NoContent::Done)
    }

    /// Permanently deletes a message you sent (staff), in every mailbox.
    #[oai(
        path = "/messages/:id",
        method = "delete",
        operation_id = "delete_message"
    )]
    async fn delete_message(
        &self,
        auth: BearerAuth,
        req: &Request,
        id: Path<String>,
    ) -> AppResult<NoContent> {
        let caller = caller(&self.0, &auth, req).await?;
        delete::delete_message(&self.0, &caller, &MessageId::from_trusted(id.0)).await?;
        Ok(NoContent::Done)
    }
}
