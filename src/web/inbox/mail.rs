//! A folder's page (`/p/{slug}/mail/{folder}`) and the bulk actions on its threads.

use askama::Template;
use poem::http::StatusCode;
use poem::web::{CsrfToken, CsrfVerifier, Data, Path, Query};
use poem::{handler, Body, Request, Response};
use serde::Deserialize;

use crate::domain::mailbox::Group;
use crate::domain::teams::{AssigneeFilter, TeamFilter};
use crate::service::mailbox::filing::{self, BulkAction};
use crate::service::mailbox::folders as folder_service;
use crate::service::mailbox::read::{self, Seek, ThreadSummary};
use crate::service::mailbox::{drafts, scheduled};
use crate::service::AppState;

use super::super::form::Fields;
use super::{
    checked_form, long_time, page_error, render, see_other, short_time, visit, Chrome, Visit,
};

/// Threads on a page of a folder.
const PAGE_SIZE: i64 = 50;

/// A thread as a row of the list.
pub struct Row {
    pub id: String,
    pub subject: String,
    pub who: String,
    pub preview: String,
    pub time: String,
    pub unread: bool,
    pub attachments: i64,
    pub pinned: bool,
    /// A group conversation rather than a message thread.
    pub conversation: bool,
    /// For a thread of the viewer's team: "Done", "Unassigned" or "Assigned to …".
    pub team: Option<String>,
}

impl Row {
    fn of(s: ThreadSummary, viewer: &str, my_group: Option<Group>, now: i64) -> Row {
        let team = s.teams.iter().find(|t| Some(t.group) == my_group).map(|t| {
            match (&t.assignee, t.done) {
                (_, true) => "Done".to_string(),
                (Some(a), false) if a.id == viewer => "Assigned to you".to_string(),
                (Some(a), false) => format!("Assigned to {}", a.name),
                (None, false) => "Unassigned".to_string(),
            }
        });
        let mut names: Vec<String> = s
            .participants
            .iter()
            .filter(|p| p.id != viewer)
            .map(|p| p.name.clone())
            .collect();
        names.extend(s.groups.iter().filter_map(|g| {
            crate::domain::mailbox::Group::parse(g).map(|g| g.display_name().to_string())
        }));
        let mut who = names.join(", ");
        if s.other_recipients > 0 {
            let others = match s.other_recipients {
                1 => "1 other recipient".to_string(),
                n => format!("{n} other recipients"),
            };
            who = if who.is_empty() {
                others
            } else {
                format!("{who} and {others}")
            };
        }
        Row {
            id: s.id,
            subject: s.subject,
            who,
            preview: s.preview,
            time: short_time(s.last_activity_at, now),
            unread: s.unread,
            attachments: s.attachment_count,
            pinned: s.pinned,
            conversation: s.kind == crate::domain::conversations::ThreadKind::Conversation,
            team,
        }
    }
}

/// A draft as a row of the Drafts folder.
pub struct DraftRow {
    pub id: String,
    pub subject: String,
    pub recipients: usize,
    pub time: String,
    /// A scheduled send: when it goes, or why it was refused.
    pub send_at: Option<String>,
    pub failure: Option<String>,
    /// A reply rather than a new thread.
    pub reply: bool,
}

#[derive(Template)]
#[template(path = "web/inbox/folder.html")]
struct FolderPage {
    chrome: Chrome,
    heading: String,
    folder: String,
    rows: Vec<Row>,
    drafts: Vec<DraftRow>,
    older: Option<String>,
    newer: Option<String>,
    notice: Option<&'static str>,
    is_custom: bool,
    /// A team folder's narrowing: "", "open", "done", "mine" or "unassigned".
    show: &'static str,
}

impl FolderPage {
    fn is_team(&self) -> bool {
        self.folder.starts_with("team:")
    }

    /// The narrowing, as it continues on the next page's link.
    fn show_query(&self) -> String {
        if self.show.is_empty() {
            String::new()
        } else {
            format!("&show={}", self.show)
        }
    }

    fn is_trash(&self) -> bool {
        self.folder == "trash"
    }

    fn is_drafts(&self) -> bool {
        self.folder == "drafts" || self.folder == "scheduled"
    }

    fn is_scheduled(&self) -> bool {
        self.folder == "scheduled"
    }
}

#[derive(Deserialize)]
pub struct PageQuery {
    cursor: Option<String>,
    newer: Option<String>,
    done: Option<String>,
    /// A team folder's narrowing: open, done, mine or unassigned.
    show: Option<String>,
}

/// A team folder's narrowing as named in its links, and what it lists.
fn team_filter(show: Option<&str>) -> (&'static str, TeamFilter) {
    let by = |assignee| TeamFilter {
        assignee: Some(assignee),
        done: None,
    };
    let state = |done| TeamFilter {
        assignee: None,
        done: Some(done),
    };
    match show {
        Some("open") => ("open", state(false)),
        Some("done") => ("done", state(true)),
        Some("mine") => ("mine", by(AssigneeFilter::Mine)),
        Some("unassigned") => ("unassigned", by(AssigneeFilter::Unassigned)),
        _ => ("", TeamFilter::default()),
    }
}

/// What a finished action says at the top of the folder.
fn notice_of(done: Option<&str>) -> Option<&'static str> {
    Some(match done? {
        "read" => "Marked as read.",
        "unread" => "Marked as unread.",
        "archived" => "Moved to Archive.",
        "trashed" => "Moved to Trash.",
        "restored" => "Moved back to the Inbox.",
        "moved" => "Moved.",
        "emptied" => "Trash is empty.",
        "deleted" => "Deleted for everyone.",
        "sent" => "Your message was sent.",
        "saved" => "Your draft was saved.",
        "draft_deleted" => "The draft was deleted.",
        "scheduled" => "Your message will be sent at the time you chose.",
        "cancelled" => "The scheduled message was cancelled.",
        "folder_created" => "The folder was created.",
        "folder_renamed" => "The folder was renamed.",
        "folder_deleted" => "The folder was deleted; its threads are back in the Inbox.",
        _ => return None,
    })
}

#[handler]
pub async fn folder_page(
    req: &Request,
    Path((slug, folder)): Path<(String, String)>,
    Query(query): Query<PageQuery>,
    csrf: &CsrfToken,
    state: Data<&AppState>,
) -> Response {
    let visit = or_page!(visit(&state, req, &slug).await);
    let chrome = or_page!(visit.chrome(&state, csrf, &folder).await);
    let Some(heading) = chrome
        .folders
        .iter()
        .find(|f| f.id == folder)
        .map(|f| f.name.clone())
    else {
        return super::not_found();
    };
    let is_custom = chrome.custom_folders().any(|f| f.id == folder);
    let (show, _) = team_filter(
        query
            .show
            .as_deref()
            .filter(|_| folder.starts_with("team:")),
    );
    let mut page = FolderPage {
        is_custom,
        chrome,
        heading,
        folder: folder.clone(),
        rows: Vec::new(),
        drafts: Vec::new(),
        older: None,
        newer: None,
        notice: notice_of(query.done.as_deref()),
        show,
    };
    let filled = if folder == "drafts" {
        fill_drafts(&state, &visit, &mut page, query.cursor.as_deref()).await
    } else if folder == "scheduled" {
        fill_scheduled(&state, &visit, &mut page).await
    } else {
        fill_threads(&state, &visit, &mut page, &query).await
    };
    match filled {
        Ok(()) => render(StatusCode::OK, &page),
        Err(e) => page_error(e),
    }
}

async fn fill_threads(
    state: &AppState,
    visit: &Visit,
    page: &mut FolderPage,
    query: &PageQuery,
) -> crate::error::AppResult<()> {
    let seek = match (&query.cursor, &query.newer) {
        (Some(c), _) => Seek::Older(c),
        (None, Some(c)) => Seek::Newer(c),
        (None, None) => Seek::Newest,
    };
    let (_, filter) = team_filter(Some(page.show));
    let listed =
        read::audited_page(state, &visit.caller, &page.folder, filter, seek, PAGE_SIZE).await?;
    let my_group = Group::of_role(visit.caller.role());
    let now = state.now();
    let viewer = visit.caller.person.id.as_str();
    page.rows = listed
        .threads
        .into_iter()
        .map(|s| Row::of(s, viewer, my_group, now))
        .collect();
    page.older = listed.older;
    page.newer = listed.newer;
    Ok(())
}

async fn fill_drafts(
    state: &AppState,
    visit: &Visit,
    page: &mut FolderPage,
    cursor: Option<&str>,
) -> crate::error::AppResult<()> {
    let (list, next) = drafts::list(state, &visit.caller, cursor, PAGE_SIZE).await?;
    let now = state.now();
    page.drafts = list
        .into_iter()
        .map(|d| DraftRow {
            reply: d.thread_id.is_some(),
            id: d.id,
            subject: d.subject,
            recipients: d.to.len(),
            time: short_time(d.updated_at, now),
            send_at: None,
            failure: None,
        })
        .collect();
    page.older = next;
    Ok(())
}

async fn fill_scheduled(
    state: &AppState,
    visit: &Visit,
    page: &mut FolderPage,
) -> crate::error::AppResult<()> {
    let list = scheduled::list(state, &visit.caller).await?;
    let now = state.now();
    page.drafts = list
        .into_iter()
        .map(|d| DraftRow {
            reply: d.thread_id.is_some(),
            send_at: d.send_at.map(|at| long_time(at).0),
            failure: d.failure.map(|(_, detail)| detail),
            id: d.id,
            subject: d.subject,
            recipients: d.to.len(),
            time: short_time(d.updated_at, now),
        })
        .collect();
    Ok(())
}

/// Cancels a scheduled send.
#[handler]
pub async fn cancel_scheduled(
    req: &Request,
    Path((slug, id)): Path<(String, String)>,
    verifier: &CsrfVerifier,
    state: Data<&AppState>,
    body: Body,
) -> Response {
    let visit = or_page!(visit(&state, req, &slug).await);
    let _form = or_page!(checked_form(verifier, body).await);
    let id = crate::domain::ids::DraftId::from_trusted(id);
    visit.then_go(
        scheduled::cancel(&state, &visit.caller, &id).await,
        "mail/scheduled?done=cancelled",
    )
}

/// One action on the checked threads of a folder (or of the thread page), then back.
#[handler]
pub async fn bulk(
    req: &Request,
    Path(slug): Path<String>,
    verifier: &CsrfVerifier,
    state: Data<&AppState>,
    body: Body,
) -> Response {
    let visit = or_page!(visit(&state, req, &slug).await);
    let form = or_page!(checked_form(verifier, body).await);
    let back = back_to(&form);
    let (action, done) = match form.get("action") {
        "empty_trash" => {
            return visit.then_go(
                folder_service::empty_trash(&state, &visit.caller).await,
                "mail/trash?done=emptied",
            );
        }
        "mark_read" => (BulkAction::MarkRead, "read"),
        "mark_unread" => (BulkAction::MarkUnread, "unread"),
        "archive" => (BulkAction::Archive, "archived"),
        "trash" => (BulkAction::Trash, "trashed"),
        "restore" => (BulkAction::Restore, "restored"),
        "move" => (BulkAction::Move, "moved"),
        _ => {
            return page_error(crate::error::AppError::invalid(
                "action",
                "Choose what to do with the selected messages.",
            ))
        }
    };
    let ids = form.all("thread_id");
    if ids.is_empty() {
        return see_other(&visit.href(&format!("mail/{back}")));
    }
    let target = Some(form.get("folder")).filter(|f| !f.is_empty());
    visit.then_go(
        filing::bulk(&state, &visit.caller, &ids, action, target).await,
        &format!("mail/{back}?done={done}"),
    )
}

/// The folder to go back to after an action: the one it was taken from, if it is a plain
/// folder name or id.
fn back_to(form: &Fields) -> String {
    let from = form.get("from");
    let plain = !from.is_empty()
        && from.len() <= 64
        && from
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_:".contains(c));
    if plain {
        from.to_string()
    } else {
        "inbox".to_string()
    }
}
