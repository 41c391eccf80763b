//! `/threads` and `/messages`: composing, reading, replying, one's own thread state, and
//! permanent deletion.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use poem::Request;
use poem_openapi::param::{Header, Path, Query};
use poem_openapi::payload::Json;
use poem_openapi::types::MaybeUndefined;
use poem_openapi::{ApiResponse, Enum, Object, OpenApi};
use serde::Deserialize;

use crate::clock::to_datetime;
use crate::domain::conversations::ThreadKind;
use crate::domain::ids::{MessageId, ThreadId};
use crate::domain::teams::{AssigneeFilter, TeamFilter};
use crate::error::{AppError, AppResult};
use crate::service::mailbox::compose::{self, ComposeInput, ReplyInput};
use crate::service::mailbox::conversations::NoteView;
use crate::service::mailbox::filing::{self, BulkAction};
use crate::service::mailbox::read::{self, MessageView, ThreadSummary, ThreadView};
use crate::service::mailbox::scheduled;
use crate::service::mailbox::teams::{self, TeamChange, TeamView};
use crate::service::mailbox::{delete, PersonRef};
use crate::service::AppState;

use super::attachments::AttachmentOut;
use super::drafts::ScheduledOut;
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
    /// Only for the host of a conversation.
    #[oai(skip_serializing_if_is_none)]
    pub email: Option<String>,
}

impl From<PersonRef> for PersonRefOut {
    fn from(p: PersonRef) -> Self {
        Self {
            id: p.id,
            name: p.name,
            role: p.role.map(Into::into),
            email: p.email,
        }
    }
}

/// `message`: an email-style thread; `conversation`: a group conversation opened by a
/// provider or admin, in which everyone may reply.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Enum, Deserialize)]
#[oai(rename_all = "snake_case")]
#[serde(rename_all = "snake_case")]
pub enum ThreadKindName {
    Message,
    Conversation,
}

impl From<ThreadKind> for ThreadKindName {
    fn from(k: ThreadKind) -> Self {
        match k {
            ThreadKind::Message => ThreadKindName::Message,
            ThreadKind::Conversation => ThreadKindName::Conversation,
        }
    }
}

impl From<ThreadKindName> for ThreadKind {
    fn from(k: ThreadKindName) -> Self {
        match k {
            ThreadKindName::Message => ThreadKind::Message,
            ThreadKindName::Conversation => ThreadKind::Conversation,
        }
    }
}

/// The message a reply answers, as a short quote (absent once that message is deleted).
#[derive(Debug, Object)]
pub struct QuoteOut {
    pub message_id: String,
    pub sender: PersonRefOut,
    /// The start of the quoted message, as plain text.
    pub excerpt: String,
}

/// A reaction on a message: how many gave it, and whether you did.
#[derive(Debug, Object)]
pub struct ReactionOut {
    pub emoji: String,
    pub count: i64,
    pub mine: bool,
}

/// Who read a message, and when (staff only).
#[derive(Debug, Object)]
pub struct ReceiptOut {
    pub person_id: String,
    pub name: String,
    pub read_at: DateTime<Utc>,
}

/// An internal note: seen by staff participants only.
#[derive(Debug, Object)]
pub struct NoteOut {
    pub id: String,
    pub author: PersonRefOut,
    /// The Markdown as written.
    pub body: String,
    /// The Markdown rendered and sanitized.
    pub body_html: String,
    pub created_at: DateTime<Utc>,
}

impl From<NoteView> for NoteOut {
    fn from(n: NoteView) -> Self {
        Self {
            id: n.id,
            author: n.author.into(),
            body: n.body,
            body_html: n.body_html,
            created_at: to_datetime(n.created_at),
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
    pub kind: ThreadKindName,
    /// Whether you pinned it: pinned threads come first on a list's first page.
    pub pinned: bool,
    /// When staff completed the thread (nobody posts until they reopen it).
    #[oai(skip_serializing_if_is_none)]
    pub completed_at: Option<DateTime<Utc>>,
    /// For staff: each team (staff group) the thread was addressed to, with its shared
    /// state; empty for clients and for threads not addressed to a group.
    pub teams: Vec<TeamOut>,
}

/// A team's shared state of a thread addressed to its group (a team folder is a shared
/// inbox): who of the team handles it, and whether the team is done with it.
#[derive(Debug, Object)]
pub struct TeamOut {
    /// `group:<name>`.
    pub group: String,
    /// Done: archived for every member until a new message brings it back.
    pub done: bool,
    // Undocumented: a documented object field becomes `allOf` in the document.
    #[oai(skip_serializing_if_is_none)]
    pub assignee: Option<PersonRefOut>,
}

impl From<TeamView> for TeamOut {
    fn from(t: TeamView) -> Self {
        Self {
            group: format!("group:{}", t.group.as_str()),
            done: t.done,
            assignee: t.assignee.map(Into::into),
        }
    }
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
            kind: s.kind.into(),
            pinned: s.pinned,
            completed_at: s.completed_at.map(to_datetime),
            teams: s.teams.into_iter().map(Into::into).collect(),
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
    // Undocumented here: a documented object field becomes `allOf` in the document.
    #[oai(skip_serializing_if_is_none)]
    pub in_reply_to: Option<QuoteOut>,
    pub reactions: Vec<ReactionOut>,
    /// For staff only: who has read the message, and when.
    #[oai(skip_serializing_if_is_none)]
    pub read_by: Option<Vec<ReceiptOut>>,
    /// An autoresponder's reply, sent for its author while they are away.
    pub automatic: bool,
    /// Pinned by staff at the top of the thread.
    pub pinned: bool,
}

impl MessageOut {
    /// The message as `viewer_is_staff` sees it: read receipts are for staff only.
    pub fn new(m: MessageView, viewer_is_staff: bool) -> Self {
        Self {
            automatic: m.automatic,
            pinned: m.pinned,
            in_reply_to: m.in_reply_to.map(|q| QuoteOut {
                message_id: q.message_id,
                sender: q.sender.into(),
                excerpt: q.excerpt,
            }),
            reactions: m
                .reactions
                .into_iter()
                .map(|r| ReactionOut {
                    emoji: r.emoji.to_string(),
                    count: r.count,
                    mine: r.mine,
                })
                .collect(),
            read_by: viewer_is_staff.then(|| {
                m.read_by
                    .into_iter()
                    .map(|r| ReceiptOut {
                        person_id: r.person_id,
                        name: r.name,
                        read_at: to_datetime(r.read_at),
                    })
                    .collect()
            }),
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
    /// A banner staff set above the messages.
    #[oai(skip_serializing_if_is_none)]
    pub announcement: Option<String>,
    /// A conversation's scheduled start: before it only staff post.
    #[oai(skip_serializing_if_is_none)]
    pub starts_at: Option<DateTime<Utc>>,
    /// Whether you may react now; if not, `reactions_refusal` says why.
    pub reactions_allowed: bool,
    #[oai(skip_serializing_if_is_none)]
    pub reactions_refusal: Option<String>,
    /// For staff only: the internal notes.
    #[oai(skip_serializing_if_is_none)]
    pub notes: Option<Vec<NoteOut>>,
    /// The thread this conversation was started from, if you take part in it too.
    #[oai(skip_serializing_if_is_none)]
    pub linked_from: Option<String>,
    /// Earlier messages exist: the first message shown, to pass as `before` for them.
    #[oai(skip_serializing_if_is_none)]
    pub older: Option<String>,
}

impl From<ThreadView> for ThreadOut {
    fn from(v: ThreadView) -> Self {
        let staff = v.staff_actions;
        Self {
            announcement: v.announcement,
            linked_from: v.linked_from,
            older: v.older,
            starts_at: v.starts_at.map(to_datetime),
            reactions_allowed: v.reaction_refusal.is_none(),
            reactions_refusal: v.reaction_refusal.map(|c| c.as_str().to_string()),
            notes: staff.then(|| v.notes.into_iter().map(Into::into).collect()),
            reply: ReplyPolicyOut {
                allowed: v.reply_refusal.is_none(),
                reason: v.reply_refusal.map(|code| code.as_str().to_string()),
            },
            summary: v.summary.into(),
            can_delete: v.can_delete,
            messages: v
                .messages
                .into_iter()
                .map(|m| MessageOut::new(m, staff))
                .collect(),
        }
    }
}

#[derive(Debug, Object)]
pub struct ThreadPage {
    pub threads: Vec<ThreadSummaryOut>,
    /// Your mailbox's state as of this list: pass it to `GET /changes` later.
    pub state: String,
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
    #[serde(default)]
    pub kind: Option<ThreadKindName>,
    /// A conversation's start, up to a year ahead: before it only staff post.
    #[serde(default)]
    pub starts_at: Option<DateTime<Utc>>,
    /// In a conversation, from staff: attachment id → the participants (person ids) who
    /// may see that file; to everyone else it does not exist.
    #[serde(default)]
    pub attachment_visibility: Option<BTreeMap<String, Vec<String>>>,
    /// "Convert to a group": the thread (one you take part in) this conversation is
    /// started from. Its history is not copied.
    #[serde(default)]
    pub linked_from: Option<String>,
    /// Send later, up to a year ahead: answered 202 with the scheduled send.
    #[serde(default)]
    pub send_at: Option<DateTime<Utc>>,
}

#[derive(Debug, Object, Deserialize)]
#[oai(deny_unknown_fields)]
#[serde(deny_unknown_fields)]
pub struct ReplyRequest {
    /// Markdown, 10 to 100,000 characters.
    pub body: String,
    #[serde(default)]
    pub attachment_ids: Option<Vec<String>>,
    /// A message of this thread that the reply answers.
    #[serde(default)]
    pub in_reply_to: Option<String>,
    /// As on compose.
    #[serde(default)]
    pub attachment_visibility: Option<BTreeMap<String, Vec<String>>>,
    /// Send later, up to a year ahead: answered 202 with the scheduled send.
    #[serde(default)]
    pub send_at: Option<DateTime<Utc>>,
}

/// Your own state of a thread (`folder`, `read`), or your team's state of a thread
/// addressed to your group (`assignee`, `done`); one or the other in one request.
#[derive(Debug, Object, Deserialize)]
#[oai(deny_unknown_fields)]
#[serde(deny_unknown_fields)]
pub struct ThreadStateRequest {
    /// inbox, archive, trash or one of your folders' ids.
    pub folder: Option<String>,
    pub read: Option<bool>,
    /// `user:<id>`: an active member of your team handles it; null: nobody does.
    #[serde(default)]
    pub assignee: MaybeUndefined<String>,
    /// true: your team is done with it, and it moves to every member's Archive; false:
    /// it is open again, back in the Inbox of every member who had it archived.
    pub done: Option<bool>,
}

#[derive(Debug, Object)]
pub struct ThreadStateOut {
    pub id: String,
    pub folder: String,
    pub unread: bool,
    /// For staff: each team's state of the thread (see `ThreadSummary.teams`).
    pub teams: Vec<TeamOut>,
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
    /// Scheduled (with `send_at`): see `GET /scheduled`.
    #[oai(status = 202)]
    Scheduled(Json<ScheduledOut>),
}

#[derive(ApiResponse)]
pub enum MessageCreated {
    /// Sent.
    #[oai(status = 201)]
    Created(Json<MessageOut>),
    /// Scheduled (with `send_at`): see `GET /scheduled`.
    #[oai(status = 202)]
    Scheduled(Json<ScheduledOut>),
}

pub struct ThreadsApi(pub AppState);

#[OpenApi(tag = "super::Tag::Mailbox")]
impl ThreadsApi {
    /// A folder's threads, latest activity first. The threads you pinned that are in the
    /// list come first on its first page (besides `limit`), and not again further on.
    #[oai(path = "/threads", method = "get", operation_id = "list_threads")]
    // Each query parameter is an argument, so that the document describes it.
    #[allow(clippy::too_many_arguments)]
    async fn list(
        &self,
        auth: BearerAuth,
        req: &Request,
        /// inbox (default), sent, archive, trash, team:<group> or a folder id.
        folder: Query<Option<String>>,
        cursor: Query<Option<String>>,
        /// 1–200, default 50.
        limit: Query<Option<i64>>,
        /// Team folders only: `mine` (assigned to you) or `unassigned`.
        assignee: Query<Option<String>>,
        /// Team folders only: true lists what the team is done with, false what is open.
        done: Query<Option<bool>>,
    ) -> AppResult<Json<ThreadPage>> {
        let caller = caller(&self.0, &auth, req).await?;
        // Read before the list: a change meanwhile is reported again, never missed.
        let state = crate::service::changes::current_state(&self.0, &caller);
        let folder = folder.0.unwrap_or_else(|| "inbox".into());
        let filter = TeamFilter {
            assignee: assignee
                .0
                .as_deref()
                .map(AssigneeFilter::parse)
                .transpose()?,
            done: done.0,
        };
        let (threads, next_cursor) = read::list(
            &self.0,
            &caller,
            &folder,
            filter,
            cursor.0.as_deref(),
            limit.0.unwrap_or(50),
        )
        .await?;
        Ok(Json(ThreadPage {
            threads: threads.into_iter().map(Into::into).collect(),
            state,
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
            kind: body.kind.map(Into::into).unwrap_or_default(),
            starts_at: body.starts_at.map(|t| t.timestamp_millis()),
            attachment_visibility: body.attachment_visibility.unwrap_or_default(),
            linked_from: body.linked_from,
        };
        if let Some(at) = body.send_at {
            let draft =
                scheduled::schedule_thread(&self.0, &caller, input, at.timestamp_millis()).await?;
            return Ok(ThreadCreated::Scheduled(Json(draft.into())));
        }
        // Without a key the thread was just written by this request: answered as written.
        // With one, it may be an earlier send's thread, read as it is now.
        let messages = match idempotency_key.0 {
            None => read::Messages::Written {
                files: !input.attachment_ids.is_empty(),
            },
            Some(_) => read::Messages::All,
        };
        let (thread_id, _) =
            compose::compose(&self.0, &caller, input, idempotency_key.0.as_deref()).await?;
        let view = read::view_of(&self.0, &caller, &thread_id, false, messages).await?;
        Ok(ThreadCreated::Created(Json(view.into())))
    }

    /// A thread with its latest messages (`limit`, 50 unless asked, at most 200); marks it
    /// read for you. When earlier messages exist, `older` names the first message shown:
    /// pass it as `before` for the ones before it.
    #[oai(path = "/threads/:id", method = "get", operation_id = "get_thread")]
    async fn get(
        &self,
        auth: BearerAuth,
        req: &Request,
        id: Path<String>,
        /// A message of this thread: the page ends just before it.
        before: Query<Option<String>>,
        /// How many messages (1 to 200; 50 unless given).
        limit: Query<Option<i64>>,
    ) -> AppResult<Json<ThreadOut>> {
        let caller = caller(&self.0, &auth, req).await?;
        let messages = read::Messages::Latest {
            before: before.0.as_deref(),
            limit: limit.0.unwrap_or(read::MESSAGE_PAGE),
        };
        Ok(Json(
            read::get(
                &self.0,
                &caller,
                &ThreadId::from_trusted(id.0.clone()),
                messages,
            )
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
        let body = body.0;
        let thread_id = ThreadId::from_trusted(id.0.clone());
        let change = TeamChange {
            assignee: match body.assignee {
                MaybeUndefined::Undefined => None,
                MaybeUndefined::Null => Some(None),
                MaybeUndefined::Value(v) => Some(Some(v)),
            },
            done: body.done,
        };
        let (folder, unread, team_views) = if change.is_empty() {
            let (folder, unread) = filing::update(
                &self.0,
                &caller,
                &thread_id,
                body.folder.as_deref(),
                body.read,
            )
            .await?;
            let views = teams::of_thread(&self.0, &caller, thread_id.as_str()).await?;
            (folder, unread, views)
        } else if body.folder.is_some() || body.read.is_some() {
            return Err(AppError::invalid(
                if body.folder.is_some() { "folder" } else { "read" },
                "Change your own state (folder, read) or your team's (assignee, done), one at a time.",
            ));
        } else {
            teams::update(&self.0, &caller, &thread_id, change).await?
        };
        Ok(Json(ThreadStateOut {
            id: id.0,
            folder,
            unread,
            teams: team_views.into_iter().map(Into::into).collect(),
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

    /// Replies to a thread; the reply goes to every participant. With `Idempotency-Key`,
    /// a retry returns the first reply instead of sending twice.
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
        #[oai(name = "Idempotency-Key")] idempotency_key: Header<Option<String>>,
        body: JsonBody<ReplyRequest>,
    ) -> AppResult<MessageCreated> {
        let caller = caller(&self.0, &auth, req).await?;
        let body = body.0;
        let input = ReplyInput {
            body: body.body,
            attachment_ids: body.attachment_ids.unwrap_or_default(),
            in_reply_to: body.in_reply_to,
            attachment_visibility: body.attachment_visibility.unwrap_or_default(),
        };
        if let Some(at) = body.send_at {
            let thread = ThreadId::from_trusted(id.0.clone());
            let draft =
                scheduled::schedule_reply(&self.0, &caller, &thread, input, at.timestamp_millis())
                    .await?;
            return Ok(MessageCreated::Scheduled(Json(draft.into())));
        }
        let message_id = compose::reply(
            &self.0,
            &caller,
            &ThreadId::from_trusted(id.0.clone()),
            &input,
            idempotency_key.0.as_deref(),
        )
        .await?;
        let only = read::Messages::Only(&message_id);
        let view = read::view_of(&self.0, &caller, &id.0, false, only).await?;
        let message = view
            .messages
            .into_iter()
            .find(|m| m.id == message_id)
            .ok_or_else(|| crate::error::AppError::not_found("message"))?;
        Ok(MessageCreated::Created(Json(MessageOut::new(
            message,
            caller.role().is_staff(),
        ))))
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
