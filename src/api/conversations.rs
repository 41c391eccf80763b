//! Conversations and practice settings: a thread's announcement, completing and
//! reopening, reactions, internal notes, and the practice's own settings (admins).

use poem::Request;
use poem_openapi::param::Path;
use poem_openapi::payload::Json;
use poem_openapi::types::MaybeUndefined;
use poem_openapi::{ApiResponse, Object, OpenApi};
use serde::Deserialize;

use crate::domain::conversations::PracticeSettings;
use crate::domain::ids::{MessageId, ThreadId};
use crate::error::AppResult;
use crate::service::mailbox::conversations::{self, SettingsChange};
use crate::service::AppState;

use super::threads::NoteOut;
use super::{caller, BearerAuth, JsonBody, NoContent};

/// A thread's announcement: at most 120 characters, shown above the messages.
#[derive(Debug, Object, Deserialize)]
#[oai(deny_unknown_fields)]
#[serde(deny_unknown_fields)]
pub struct AnnouncementRequest {
    pub text: String,
}

#[derive(Debug, Object)]
pub struct AnnouncementOut {
    pub text: String,
}

/// An internal note: Markdown, 1 to 10,000 characters. Only staff participants see it.
#[derive(Debug, Object, Deserialize)]
#[oai(deny_unknown_fields)]
#[serde(deny_unknown_fields)]
pub struct NoteRequest {
    pub body: String,
}

/// Staff members to add to a thread: `user:<id>` entries.
#[derive(Debug, Object, Deserialize)]
#[oai(deny_unknown_fields)]
#[serde(deny_unknown_fields)]
pub struct ShareRequest {
    pub people: Vec<String>,
}

#[derive(Debug, Object)]
pub struct SharedOut {
    /// The people added (those already in the thread are not listed).
    pub added: Vec<String>,
}

#[derive(Debug, Object)]
pub struct NoteList {
    pub notes: Vec<NoteOut>,
}

#[derive(ApiResponse)]
pub enum NoteCreated {
    /// Added.
    #[oai(status = 201)]
    Created(Json<NoteOut>),
}

/// The practice's own settings.
#[derive(Debug, Object)]
pub struct SettingsOut {
    /// A limit on clients' message bodies, below the server's; absent: the server's.
    #[oai(skip_serializing_if_is_none)]
    pub client_message_max_chars: Option<i64>,
    /// When off, clients created from then on may only reply until staff allow them
    /// (`PATCH /people/{id}` `{may_start_threads: true}`).
    pub new_clients_can_start_threads: bool,
    /// The most people a conversation may have, its host included (2–500).
    pub conversation_max_participants: i64,
    /// Threads whose last message is older than this many years are deleted for good,
    /// with their files, unless a legal hold covers them (1–100); absent: kept forever.
    #[oai(skip_serializing_if_is_none)]
    pub retention_years: Option<i64>,
}

impl From<PracticeSettings> for SettingsOut {
    fn from(s: PracticeSettings) -> Self {
        Self {
            client_message_max_chars: s.client_message_max_chars,
            new_clients_can_start_threads: s.new_clients_can_start_threads,
            conversation_max_participants: s.conversation_max_participants,
            retention_years: s.retention_years,
        }
    }
}

/// Changes to the practice's settings; absent fields stay, `client_message_max_chars:
/// null` removes the practice's own limit, `retention_years: null` keeps threads forever.
#[derive(Debug, Object, Deserialize)]
#[oai(deny_unknown_fields)]
#[serde(deny_unknown_fields)]
pub struct SettingsRequest {
    #[serde(default)]
    pub client_message_max_chars: MaybeUndefined<i64>,
    pub new_clients_can_start_threads: Option<bool>,
    pub conversation_max_participants: Option<i64>,
    #[serde(default)]
    pub retention_years: MaybeUndefined<i64>,
}

pub struct ConversationsApi(pub AppState);

#[OpenApi(tag = "super::Tag::Mailbox")]
impl ConversationsApi {
    /// Sets the thread's announcement (staff participants).
    #[oai(
        path = "/threads/:id/announcement",
        method = "put",
        operation_id = "set_announcement"
    )]
    async fn set_announcement(
        &self,
        auth: BearerAuth,
        req: &Request,
        id: Path<String>,
        body: JsonBody<AnnouncementRequest>,
    ) -> AppResult<Json<AnnouncementOut>> {
        let caller = caller(&self.0, &auth, req).await?;
        let text = conversations::set_announcement(
            &self.0,
            &caller,
            &ThreadId::from_trusted(id.0),
            Some(&body.0.text),
        )
        .await?;
        Ok(Json(AnnouncementOut {
            text: text.unwrap_or_default(),
        }))
    }

    /// Clears the thread's announcement (staff participants).
    #[oai(
        path = "/threads/:id/announcement",
        method = "delete",
        operation_id = "clear_announcement"
    )]
    async fn clear_announcement(
        &self,
        auth: BearerAuth,
        req: &Request,
        id: Path<String>,
    ) -> AppResult<NoContent> {
        let caller = caller(&self.0, &auth, req).await?;
        conversations::set_announcement(&self.0, &caller, &ThreadId::from_trusted(id.0), None)
            .await?;
        Ok(NoContent::Done)
    }

    /// Completes the thread (staff participants): nobody posts, reacts or adds notes, and
    /// it moves to every participant's Archive.
    #[oai(
        path = "/threads/:id/complete",
        method = "post",
        operation_id = "complete_thread"
    )]
    async fn complete(
        &self,
        auth: BearerAuth,
        req: &Request,
        id: Path<String>,
    ) -> AppResult<NoContent> {
        let caller = caller(&self.0, &auth, req).await?;
        conversations::complete(&self.0, &caller, &ThreadId::from_trusted(id.0)).await?;
        Ok(NoContent::Done)
    }

    /// Shares the thread with staff members (staff participants): they see its whole
    /// history. No client is ever added to an existing thread.
    #[oai(
        path = "/threads/:id/participants",
        method = "post",
        operation_id = "share_thread"
    )]
    async fn share(
        &self,
        auth: BearerAuth,
        req: &Request,
        id: Path<String>,
        body: JsonBody<ShareRequest>,
    ) -> AppResult<Json<SharedOut>> {
        let caller = caller(&self.0, &auth, req).await?;
        let added = conversations::share(
            &self.0,
            &caller,
            &ThreadId::from_trusted(id.0),
            &body.0.people,
        )
        .await?;
        Ok(Json(SharedOut {
            added: added.into_iter().map(|id| format!("user:{id}")).collect(),
        }))
    }

    /// Reopens a completed thread (staff participants).
    #[oai(
        path = "/threads/:id/reopen",
        method = "post",
        operation_id = "reopen_thread"
    )]
    async fn reopen(
        &self,
        auth: BearerAuth,
        req: &Request,
        id: Path<String>,
    ) -> AppResult<NoContent> {
        let caller = caller(&self.0, &auth, req).await?;
        conversations::reopen(&self.0, &caller, &ThreadId::from_trusted(id.0)).await?;
        Ok(NoContent::Done)
    }

    /// Reacts to a message with one of 👍 ❤️ 🙏 😊 😮 😢 (URL-encoded); once per emoji.
    #[oai(
        path = "/messages/:id/reactions/:emoji",
        method = "put",
        operation_id = "add_reaction"
    )]
    async fn add_reaction(
        &self,
        auth: BearerAuth,
        req: &Request,
        id: Path<String>,
        emoji: Path<String>,
    ) -> AppResult<NoContent> {
        let caller = caller(&self.0, &auth, req).await?;
        conversations::react(
            &self.0,
            &caller,
            &MessageId::from_trusted(id.0),
            &emoji.0,
            true,
        )
        .await?;
        Ok(NoContent::Done)
    }

    /// Takes one's reaction back.
    #[oai(
        path = "/messages/:id/reactions/:emoji",
        method = "delete",
        operation_id = "remove_reaction"
    )]
    async fn remove_reaction(
        &self,
        auth: BearerAuth,
        req: &Request,
        id: Path<String>,
        emoji: Path<String>,
    ) -> AppResult<NoContent> {
        let caller = caller(&self.0, &auth, req).await?;
        conversations::react(
            &self.0,
            &caller,
            &MessageId::from_trusted(id.0),
            &emoji.0,
            false,
        )
        .await?;
        Ok(NoContent::Done)
    }

    /// Pins the thread for you: pinned threads list first in every list of yours.
    #[oai(path = "/threads/:id/pin", method = "put", operation_id = "pin_thread")]
    async fn pin_thread(
        &self,
        auth: BearerAuth,
        req: &Request,
        id: Path<String>,
    ) -> AppResult<NoContent> {
        let caller = caller(&self.0, &auth, req).await?;
        conversations::pin_thread(&self.0, &caller, &ThreadId::from_trusted(id.0), true).await?;
        Ok(NoContent::Done)
    }

    /// Unpins the thread for you.
    #[oai(
        path = "/threads/:id/pin",
        method = "delete",
        operation_id = "unpin_thread"
    )]
    async fn unpin_thread(
        &self,
        auth: BearerAuth,
        req: &Request,
        id: Path<String>,
    ) -> AppResult<NoContent> {
        let caller = caller(&self.0, &auth, req).await?;
        conversations::pin_thread(&self.0, &caller, &ThreadId::from_trusted(id.0), false).await?;
        Ok(NoContent::Done)
    }

    /// Pins a message at the top of its thread, for everyone in it (staff participants).
    #[oai(
        path = "/messages/:id/pin",
        method = "put",
        operation_id = "pin_message"
    )]
    async fn pin_message(
        &self,
        auth: BearerAuth,
        req: &Request,
        id: Path<String>,
    ) -> AppResult<NoContent> {
        let caller = caller(&self.0, &auth, req).await?;
        conversations::pin_message(&self.0, &caller, &MessageId::from_trusted(id.0), true).await?;
        Ok(NoContent::Done)
    }

    /// Unpins a message (staff participants).
    #[oai(
        path = "/messages/:id/pin",
        method = "delete",
        operation_id = "unpin_message"
    )]
    async fn unpin_message(
        &self,
        auth: BearerAuth,
        req: &Request,
        id: Path<String>,
    ) -> AppResult<NoContent> {
        let caller = caller(&self.0, &auth, req).await?;
        conversations::pin_message(&self.0, &caller, &MessageId::from_trusted(id.0), false).await?;
        Ok(NoContent::Done)
    }

    /// The thread's internal notes (staff participants; 404 for anyone else).
    #[oai(
        path = "/threads/:id/notes",
        method = "get",
        operation_id = "list_notes"
    )]
    async fn notes(
        &self,
        auth: BearerAuth,
        req: &Request,
        id: Path<String>,
    ) -> AppResult<Json<NoteList>> {
        let caller = caller(&self.0, &auth, req).await?;
        let notes = conversations::notes(&self.0, &caller, &ThreadId::from_trusted(id.0)).await?;
        Ok(Json(NoteList {
            notes: notes.into_iter().map(Into::into).collect(),
        }))
    }

    /// Adds an internal note (staff participants). It notifies nobody; no client sees it.
    #[oai(
        path = "/threads/:id/notes",
        method = "post",
        operation_id = "add_note"
    )]
    async fn add_note(
        &self,
        auth: BearerAuth,
        req: &Request,
        id: Path<String>,
        body: JsonBody<NoteRequest>,
    ) -> AppResult<NoteCreated> {
        let caller = caller(&self.0, &auth, req).await?;
        let note = conversations::add_note(
            &self.0,
            &caller,
            &ThreadId::from_trusted(id.0),
            &body.0.body,
        )
        .await?;
        Ok(NoteCreated::Created(Json(note.into())))
    }

    /// The practice's own settings (admins).
    #[oai(
        path = "/practice/settings",
        method = "get",
        operation_id = "get_practice_settings"
    )]
    async fn settings(&self, auth: BearerAuth, req: &Request) -> AppResult<Json<SettingsOut>> {
        let caller = caller(&self.0, &auth, req).await?;
        Ok(Json(
            conversations::settings(&self.0, &caller).await?.into(),
        ))
    }

    /// Changes the practice's own settings (admins).
    #[oai(
        path = "/practice/settings",
        method = "patch",
        operation_id = "update_practice_settings"
    )]
    async fn update_settings(
        &self,
        auth: BearerAuth,
        req: &Request,
        body: JsonBody<SettingsRequest>,
    ) -> AppResult<Json<SettingsOut>> {
        let caller = caller(&self.0, &auth, req).await?;
        let body = body.0;
        let change = SettingsChange {
            client_message_max_chars: match body.client_message_max_chars {
                MaybeUndefined::Undefined => None,
                MaybeUndefined::Null => Some(None),
                MaybeUndefined::Value(v) => Some(Some(v)),
            },
            new_clients_can_start_threads: body.new_clients_can_start_threads,
            conversation_max_participants: body.conversation_max_participants,
            retention_years: match body.retention_years {
                MaybeUndefined::Undefined => None,
                MaybeUndefined::Null => Some(None),
                MaybeUndefined::Value(v) => Some(Some(v)),
            },
        };
        Ok(Json(
            conversations::update_settings(&self.0, &caller, change)
                .await?
                .into(),
        ))
    }
}
