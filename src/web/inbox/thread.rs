//! A thread's page: its messages, the reply form (or why there is none), the actions on
//! the thread; replying; and downloading attachments.

use askama::Template;
use poem::http::StatusCode;
use poem::web::{CsrfToken, CsrfVerifier, Data, Path, Query};
use poem::{handler, Body, IntoResponse, Request, Response};
use serde::Deserialize;

use crate::domain::attachments::content_disposition;
use crate::domain::chart::may_take_quick_note;
use crate::domain::conversations::{reaction_name, ThreadKind, REACTIONS};
use crate::domain::ids::{AttachmentId, ThreadId};
use crate::domain::mailbox::Group;
use crate::domain::Role;
use crate::service::attachments::{self as attachment_service, AttachmentView};
use crate::service::mailbox::compose::{self, ReplyInput};
use crate::service::mailbox::conversations::NoteView;
use crate::service::mailbox::read::{self, MessageView, Quote};
use crate::service::mailbox::teams::{self, TeamView};
use crate::service::AppState;

use super::super::form::read_posted;
use super::compose::{gather_files, Attached};
use super::{
    csrf_refusal, human_size, long_time, page_error, render, reply_refusal_text, role_name,
    see_other, visit, Chrome, Visit,
};

pub struct Message {
    pub id: String,
    pub can_delete: bool,
    pub sender: String,
    pub role: Option<&'static str>,
    pub time: String,
    pub datetime: String,
    pub body_html: String,
    pub files: Vec<Attached>,
    /// The message this one answers: its sender and a short quote.
    pub quote: Option<Quoted>,
    /// Every reaction of the set, with its count and whether the viewer gave it.
    pub reactions: Vec<Reaction>,
    /// For staff: who has read it, and when, in words; empty otherwise.
    pub read_by: String,
    pub automatic: bool,
    pub pinned: bool,
    /// The start of its text, for the pinned block at the top.
    pub excerpt: String,
}

pub struct Quoted {
    pub id: String,
    pub sender: String,
    pub excerpt: String,
}

impl Quoted {
    fn of(q: Quote) -> Quoted {
        Quoted {
            id: q.message_id,
            sender: q.sender.name,
            excerpt: q.excerpt,
        }
    }
}

pub struct Reaction {
    pub emoji: &'static str,
    /// The emoji in words.
    pub name: &'static str,
    pub count: i64,
    pub mine: bool,
}

impl Message {
    fn of(m: MessageView) -> Message {
        let (time, datetime) = long_time(m.created_at);
        let reactions = REACTIONS
            .into_iter()
            .map(|emoji| {
                let given = m.reactions.iter().find(|r| r.emoji == emoji);
                Reaction {
                    emoji,
                    name: reaction_name(emoji),
                    count: given.map_or(0, |r| r.count),
                    mine: given.is_some_and(|r| r.mine),
                }
            })
            .collect();
        let read_by: Vec<String> = m
            .read_by
            .iter()
            .map(|r| format!("{} ({})", r.name, long_time(r.read_at).0))
            .collect();
        Message {
            can_delete: m.can_delete,
            id: m.id,
            sender: m.sender.name,
            role: m.sender.role.map(role_name),
            time,
            datetime,
            body_html: m.body_html,
            files: m.attachments.into_iter().map(Attached::of).collect(),
            quote: m.in_reply_to.map(Quoted::of),
            reactions,
            read_by: read_by.join(", "),
            automatic: m.automatic,
            pinned: m.pinned,
            excerpt: crate::service::mailbox::preview(&m.body),
        }
    }
}

pub struct Note {
    pub author: String,
    pub time: String,
    pub datetime: String,
    pub body_html: String,
}

impl Note {
    fn of(n: NoteView) -> Note {
        let (time, datetime) = long_time(n.created_at);
        Note {
            author: n.author.name,
            time,
            datetime,
            body_html: n.body_html,
        }
    }
}

/// A team's state of the thread, for staff: the viewer's own team with its forms.
pub struct TeamBox {
    pub name: &'static str,
    pub done: bool,
    pub assignee: Option<String>,
    /// The viewer's own team: they assign it and mark it done.
    pub mine: bool,
    /// For the viewer's team: its members as (id, name, assigned).
    pub members: Vec<(String, String, bool)>,
}

impl TeamBox {
    fn of(t: &TeamView, my_group: Option<Group>, members: &[(String, String)]) -> TeamBox {
        let mine = Some(t.group) == my_group;
        let assigned = t.assignee.as_ref().map(|a| a.id.as_str());
        TeamBox {
            name: t.group.display_name(),
            done: t.done,
            assignee: t.assignee.as_ref().map(|a| a.name.clone()),
            mine,
            members: if mine {
                members
                    .iter()
                    .map(|(id, name)| (id.clone(), name.clone(), Some(id.as_str()) == assigned))
                    .collect()
            } else {
                Vec::new()
            },
        }
    }
}

#[derive(Template)]
#[template(path = "web/inbox/thread.html")]
struct ThreadPage {
    chrome: Chrome,
    id: String,
    /// Earlier messages exist: the first shown, to page back from.
    older: Option<String>,
    /// These are earlier messages: the latest are a link away.
    earlier: bool,
    subject: String,
    who: String,
    folder: String,
    messages: Vec<Message>,
    refusal: Option<&'static str>,
    can_delete: bool,
    /// Staff who may save a quick note to the client's chart from this thread.
    can_note: bool,
    notice: Option<&'static str>,
    conversation: bool,
    /// Whether the viewer pinned the thread.
    pinned: bool,
    announcement: Option<String>,
    /// When a conversation starts, while it has not.
    starts: Option<String>,
    /// When the thread was completed, while it is.
    completed: Option<String>,
    /// Staff participants: the announcement, completing, notes.
    staff: bool,
    can_react: bool,
    notes: Vec<Note>,
    /// For staff: the state of each team the thread was addressed to.
    teams: Vec<TeamBox>,
    /// The message the reply answers (chosen with "Reply to this").
    reply_to: Option<Quoted>,
    /// Makes a resent reply form (a double click, a retry) send once.
    send_key: String,
    /// The reply being written, when it has to be shown again.
    body: String,
    kept: Vec<Attached>,
    error: Option<String>,
    error_field: String,
}

/// The thread page, with a reply that did not go through when there is one.
async fn thread_view(
    state: &AppState,
    visit: &Visit,
    csrf: &CsrfToken,
    id: &str,
    as_read: bool,
    reply_to: Option<&str>,
    before: Option<&str>,
) -> Result<ThreadPage, Response> {
    let messages = read::Messages::Latest {
        before,
        limit: read::MESSAGE_PAGE,
    };
    let view = read::view_of(state, &visit.caller, id, as_read, messages)
        .await
        .map_err(page_error)?;
    let now = state.now();
    let reply_to = reply_to.and_then(|wanted| {
        let m = view.messages.iter().find(|m| m.id == wanted)?;
        Some(Quoted {
            id: m.id.clone(),
            sender: m.sender.name.clone(),
            excerpt: crate::service::mailbox::preview(&m.body),
        })
    });
    let folder = view.summary.folder.clone();
    let chrome = visit.chrome(state, csrf, &folder).await?;
    let summary = view.summary;
    let clients = summary
        .participants
        .iter()
        .filter(|p| p.role == Some(Role::Client))
        .count() as i64
        + summary.other_recipients;
    let can_note = may_take_quick_note(visit.caller.role(), clients).is_ok();
    let my_group = Group::of_role(visit.caller.role());
    let members = if summary.teams.iter().any(|t| Some(t.group) == my_group) {
        teams::my_team(state, &visit.caller)
            .await
            .map_err(page_error)?
    } else {
        Vec::new()
    };
    let team_boxes = summary
        .teams
        .iter()
        .map(|t| TeamBox::of(t, my_group, &members))
        .collect();
    let viewer = visit.caller.person.id.as_str();
    let mut names: Vec<String> = summary
        .participants
        .iter()
        .filter(|p| p.id != viewer)
        .map(|p| p.name.clone())
        .collect();
    if summary.other_recipients > 0 {
        names.push(format!(
            "{} other client{}",
            summary.other_recipients,
            if summary.other_recipients == 1 {
                ""
            } else {
                "s"
            }
        ));
    }
    Ok(ThreadPage {
        older: view.older.clone(),
        earlier: before.is_some(),
        chrome,
        conversation: summary.kind == ThreadKind::Conversation,
        pinned: summary.pinned,
        announcement: view.announcement,
        starts: view
            .starts_at
            .filter(|at| *at > now)
            .map(|at| long_time(at).0),
        completed: summary.completed_at.map(|at| long_time(at).0),
        staff: view.staff_actions,
        can_react: view.reaction_refusal.is_none(),
        notes: view.notes.into_iter().map(Note::of).collect(),
        teams: team_boxes,
        reply_to,
        send_key: crate::domain::ids::new_random_id(),
        id: summary.id,
        subject: summary.subject,
        who: names.join(", "),
        folder,
        messages: view.messages.into_iter().map(Message::of).collect(),
        refusal: view.reply_refusal.map(reply_refusal_text),
        can_delete: view.can_delete,
        can_note,
        notice: None,
        body: String::new(),
        kept: Vec::new(),
        error: None,
        error_field: String::new(),
    })
}

#[derive(Deserialize)]
pub struct ThreadQuery {
    done: Option<String>,
    /// A message to answer ("Reply to this").
    reply_to: Option<String>,
    /// Earlier messages: the page ends just before this one.
    before: Option<String>,
}

#[handler]
pub async fn thread_page(
    req: &Request,
    Path((slug, id)): Path<(String, String)>,
    Query(query): Query<ThreadQuery>,
    csrf: &CsrfToken,
    state: Data<&AppState>,
) -> Response {
    let visit = or_page!(visit(&state, req, &slug).await);
    let (reply_to, before) = (query.reply_to.as_deref(), query.before.as_deref());
    match thread_view(&state, &visit, csrf, &id, true, reply_to, before).await {
        Ok(mut page) => {
            page.notice = match query.done.as_deref() {
                Some("noted") => Some("Saved to the client's chart."),
                Some("deleted") => Some("The message was deleted for everyone."),
                Some("shared") => Some("Shared: they now see the whole thread."),
                Some("team") => Some("Saved for the team."),
                _ => None,
            };
            render(StatusCode::OK, &page)
        }
        Err(page) => page,
    }
}

#[handler]
pub async fn reply(
    req: &Request,
    Path((slug, id)): Path<(String, String)>,
    csrf: &CsrfToken,
    verifier: &CsrfVerifier,
    state: Data<&AppState>,
    body: Body,
) -> Response {
    let visit = or_page!(visit(&state, req, &slug).await);
    let posted = or_page!(read_posted(&state, &visit.caller, req, body)
        .await
        .map_err(page_error));
    if let Some(page) = csrf_refusal(verifier, posted.fields.get("csrf_token")) {
        return page;
    }
    let (fields, files, refused) = gather_files(&state, &visit.caller, posted).await;
    let text = fields.get("body").to_string();
    let error = match refused {
        Some(e) => e,
        None => {
            let input = ReplyInput {
                body: text.clone(),
                attachment_ids: files.iter().map(|f| f.id.clone()).collect(),
                in_reply_to: Some(fields.get("in_reply_to").to_string()).filter(|m| !m.is_empty()),
                ..Default::default()
            };
            let thread = ThreadId::from_trusted(id.clone());
            let key = Some(fields.get("send_key")).filter(|k| !k.is_empty());
            match compose::reply(&state, &visit.caller, &thread, &input, key).await {
                Ok(message_id) => {
                    return see_other(&visit.href(&format!("threads/{id}#m-{message_id}")));
                }
                Err(e) => e,
            }
        }
    };
    if !error.status().is_client_error() || error.status() == StatusCode::NOT_FOUND {
        return page_error(error);
    }
    let reply_to = Some(fields.get("in_reply_to")).filter(|m| !m.is_empty());
    match thread_view(&state, &visit, csrf, &id, false, reply_to, None).await {
        Ok(mut page) => {
            page.body = text;
            page.kept = files.into_iter().map(Attached::of).collect();
            page.error_field = error.field.clone().unwrap_or_else(|| "body".into());
            page.error = Some(error.detail.clone());
            render(error.status(), &page)
        }
        Err(page) => page,
    }
}

/// Downloads an attachment: for the same people as the API, after the same hash check.
#[handler]
pub async fn download(
    req: &Request,
    Path((slug, id)): Path<(String, String)>,
    state: Data<&AppState>,
) -> Response {
    let visit = or_page!(visit(&state, req, &slug).await);
    let id = AttachmentId::from_trusted(id);
    match attachment_service::open(&state, &visit.caller, &id).await {
        Ok((row, file)) => Body::from_async_read(file)
            .with_content_type(row.content_type.as_str())
            .with_header("content-disposition", content_disposition(&row.name))
            .with_header("content-security-policy", "sandbox")
            .into_response(),
        Err(e) => page_error(e),
    }
}

impl Attached {
    pub fn of(v: AttachmentView) -> Attached {
        Attached {
            size: human_size(v.size),
            id: v.id,
            name: v.name,
        }
    }
}
