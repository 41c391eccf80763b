//! Reading a thread and listing a folder, as the caller may see them.

use std::collections::HashMap;

use crate::domain::conversations::{self as rules, ThreadKind, REACTIONS};
use crate::domain::events::EventKind;
use crate::domain::ids::FolderId;
use crate::domain::ids::ThreadId;
use crate::domain::mailbox::{
    check_inactive_client, may_delete_message, may_delete_thread, Group, Placement, ReplyPolicy,
};
use crate::domain::Code;
use crate::error::{AppError, AppResult};
use crate::store::attachments::AttachmentRow;
use crate::store::messages::MessageWithSender;
use crate::store::threads::{self, Direction, ListedThread, Listing, ThreadRow};
use crate::store::{
    attachments as attachment_store, conversations as conversation_store, messages,
};
use crate::store::{folders as folder_store, Conn};

use super::super::attachments::AttachmentView;
use super::super::audit::{record, AuditEntry};
use super::super::cursor::List;
use super::super::{AppState, Caller};
use super::conversations::{files_seen_by, notes_of, NoteView};
use super::teams::{teams_of, TeamView};
use super::{
    groups_of, kind_of, load_thread, preview, sender_ref, thread_event, visible_participants,
    Participant, PersonRef, ThreadCtx,
};
use crate::domain::teams::{check_filter_on, TeamFilter};

/// A thread in a list.
#[derive(Debug, Clone)]
pub struct ThreadSummary {
    pub id: String,
    pub subject: String,
    /// Where the thread sits for the caller: inbox, archive, trash or a custom folder id.
    pub folder: String,
    pub unread: bool,
    pub message_count: i64,
    pub created_at: i64,
    pub last_activity_at: i64,
    pub preview: String,
    pub participants: Vec<PersonRef>,
    /// Other clients of the thread, whom a client may not know.
    pub other_recipients: i64,
    pub groups: Vec<String>,
    pub reply_allowed: bool,
    /// Attachments across the thread's messages.
    pub attachment_count: i64,
    pub kind: ThreadKind,
    pub completed_at: Option<i64>,
    /// Whether the viewer pinned it (pinned threads list first).
    pub pinned: bool,
    /// For staff: the state of each team the thread was addressed to.
    pub teams: Vec<TeamView>,
}

/// The message a reply answers, as a short quote.
#[derive(Debug, Clone)]
pub struct Quote {
    pub message_id: String,
    pub sender: PersonRef,
    pub excerpt: String,
}

/// One reaction on a message: how many gave it and whether the viewer did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReactionCount {
    pub emoji: &'static str,
    pub count: i64,
    pub mine: bool,
}

/// A read receipt: who read a message and when (staff only).
#[derive(Debug, Clone)]
pub struct Receipt {
    pub person_id: String,
    pub name: String,
    pub read_at: i64,
}

#[derive(Debug, Clone)]
pub struct MessageView {
    pub id: String,
    pub sender: PersonRef,
    pub body: String,
    pub body_html: String,
    pub created_at: i64,
    pub can_delete: bool,
    pub attachments: Vec<AttachmentView>,
    pub in_reply_to: Option<Quote>,
    pub reactions: Vec<ReactionCount>,
    /// For staff: who has read the message and when; empty for clients.
    pub read_by: Vec<Receipt>,
    /// An autoresponder's reply.
    pub automatic: bool,
    /// Pinned by staff at the top of the thread, for everyone in it.
    pub pinned: bool,
}

#[derive(Debug, Clone)]
pub struct ThreadView {
    pub summary: ThreadSummary,
    /// Why nobody may reply, when that is so (`replies_not_allowed`).
    pub reply_refusal: Option<Code>,
    pub can_delete: bool,
    pub messages: Vec<MessageView>,
    pub announcement: Option<String>,
    pub starts_at: Option<i64>,
    /// For staff: the internal notes; always empty for clients.
    pub notes: Vec<NoteView>,
    /// The thread this conversation was started from, if the caller takes part in it.
    pub linked_from: Option<String>,
    /// Whether the caller may set the announcement, complete or reopen, add notes.
    pub staff_actions: bool,
    /// Whether the caller may react now (`None`) or the refusal's code.
    pub reaction_refusal: Option<Code>,
    /// When messages came before these: the first of these, to page back from.
    pub older: Option<String>,
}

/// Which of a thread's messages a view shows.
#[derive(Debug, Clone, Copy)]
pub enum Messages<'a> {
    /// All of them.
    All,
    /// The last `limit` before the message `before` (or the last of all).
    Latest { before: Option<&'a str>, limit: i64 },
    /// Only this one (none, if the thread holds no such message the caller sees).
    Only(&'a str),
    /// None: the thread's details alone.
    None,
    /// All of a thread the request has just written (a new thread, for its sender's
    /// answer): the thread as written. What others add in the instant after the commit
    /// (reactions, read marks, notes) shows on the next read; so the view reads none of
    /// those, no pins (a thread that did not exist cannot be pinned), and files only
    /// when the message carried some.
    Written { files: bool },
}

/// Messages a thread's page shows unless asked for another number, and at most.
pub const MESSAGE_PAGE: i64 = 50;
pub const MESSAGE_PAGE_MAX: i64 = 200;

impl Messages<'_> {
    /// The latest page, as a thread opens.
    pub fn latest() -> Self {
        Messages::Latest {
            before: None,
            limit: MESSAGE_PAGE,
        }
    }
}

fn summary(caller: &Caller, listed: &ListedThread, participants: &[Participant]) -> ThreadSummary {
    let t = &listed.thread;
    let (shown, hidden) = visible_participants(caller, t, participants);
    ThreadSummary {
        id: t.id.clone(),
        subject: t.subject.clone(),
        folder: listed.folder.clone(),
        unread: listed.unread != 0,
        message_count: t.message_count,
        created_at: t.created_at,
        last_activity_at: t.last_activity_at,
        preview: t.preview.clone(),
        participants: shown,
        other_recipients: hidden,
        groups: groups_of(caller, t),
        reply_allowed: t.client_count < 2 || kind_of(t) == ThreadKind::Conversation,
        attachment_count: 0,
        kind: kind_of(t),
        completed_at: t.completed_at,
        pinned: false,
        teams: Vec::new(),
    }
}

/// Reads a thread: marks it read for the caller and audits the read.
#[tracing::instrument(skip_all, fields(thread_id = %thread_id))]
pub async fn get(
    state: &AppState,
    caller: &Caller,
    thread_id: &ThreadId,
    messages: Messages<'_>,
) -> AppResult<ThreadView> {
    let thread_id = thread_id.as_str();
    view_of(state, caller, thread_id, true, messages).await
}

/// The thread as the caller sees it, with the messages asked for; `as_read` marks it read
/// and audits the reading (not done for the view handed back to the sender of a message).
pub async fn view_of(
    state: &AppState,
    caller: &Caller,
    thread_id: &str,
    as_read: bool,
    messages: Messages<'_>,
) -> AppResult<ThreadView> {
    // A page asked for by a message it does not hold is refused before anything is marked.
    let before_seq = match messages {
        Messages::Latest {
            before: Some(id), ..
        } => {
            let mut conn = state.store.read().await?;
            let ctx = load_thread(&mut conn, caller, thread_id).await?;
            let seq = messages::seq_in_thread(&mut conn, &ctx.thread.id, id).await?;
            // As for any id the caller has no message under: not found, naming the field.
            Some(seq.ok_or_else(|| AppError::not_found("message").with_field("before"))?)
        }
        _ => None,
    };
    let ctx = if as_read {
        mark_read(state, caller, thread_id).await?
    } else {
        let mut conn = state.store.read().await?;
        load_thread(&mut conn, caller, thread_id).await?
    };
    let mut conn = state.store.read().await?;
    let (rows, older) = match messages {
        Messages::All | Messages::Written { .. } => (
            messages::for_thread(&mut conn, &caller.keys, &ctx.thread.id).await?,
            None,
        ),
        Messages::None => (Vec::new(), None),
        Messages::Only(id) => {
            let rows = match messages::seq_in_thread(&mut conn, &ctx.thread.id, id).await? {
                Some(seq) => {
                    messages::latest_of_thread(&mut conn, &caller.keys, &ctx.thread.id, seq + 1, 1)
                        .await?
                }
                None => Vec::new(),
            };
            let rows = rows.into_iter().filter(|r| r.message.id == id).collect();
            (rows, None)
        }
        Messages::Latest { limit, .. } => {
            let before_seq = before_seq.unwrap_or(i64::MAX);
            let limit = limit.clamp(1, MESSAGE_PAGE_MAX);
            let mut rows = messages::latest_of_thread(
                &mut conn,
                &caller.keys,
                &ctx.thread.id,
                before_seq,
                limit + 1,
            )
            .await?;
            let older = (rows.len() as i64 > limit).then(|| {
                rows.remove(0);
                rows[0].message.id.clone()
            });
            (rows, older)
        }
    };
    // The messages those shown answer, where they are not shown themselves (on an
    // earlier page): their quotes need them.
    let mut answered: Vec<&str> = rows
        .iter()
        .filter_map(|r| r.message.in_reply_to.as_deref())
        .filter(|id| !rows.iter().any(|r| r.message.id == *id))
        .collect();
    answered.sort_unstable();
    answered.dedup();
    let quoted =
        messages::of_thread_by_ids(&mut conn, &caller.keys, &ctx.thread.id, &answered).await?;
    // A thread just written holds nothing others added, nor files its message did not carry.
    let (written, may_hold_files) = match messages {
        Messages::Written { files } => (true, files),
        _ => (false, true),
    };
    let files = if may_hold_files {
        let me = caller.person.id.as_str();
        files_seen_by(&mut conn, &caller.keys, me, &ctx.thread.id).await?
    } else {
        Vec::new()
    };
    let extras = if written {
        Extras {
            reactions: Vec::new(),
            reads: Vec::new(),
        }
    } else {
        Extras {
            reactions: conversation_store::reactions(&mut conn, &ctx.thread.id).await?,
            reads: if rules::sees_read_receipts(caller.role()) {
                conversation_store::reads(&mut conn, &ctx.thread.id).await?
            } else {
                Vec::new()
            },
        }
    };
    let notes = if written {
        Vec::new()
    } else {
        notes_of(&mut conn, caller, &ctx).await?
    };
    let teams = teams_of(&mut conn, caller, &with_groups([&ctx.thread]))
        .await?
        .remove(&ctx.thread.id)
        .unwrap_or_default();
    let pinned = !written
        && threads::pinned_ids(&mut conn, caller.person.id.as_str())
            .await?
            .contains(&ctx.thread.id);
    let linked_from = match &ctx.thread.linked_from {
        Some(linked) => threads::state_of(&mut conn, linked, caller.person.id.as_str())
            .await?
            .filter(|(folder, _)| Placement::from_stored(folder).is_ok_and(|p| p.is_in_mailbox()))
            .map(|_| linked.clone()),
        None => None,
    };
    drop(conn);
    let messages = message_views(caller, &ctx, &rows, &quoted, &files, &extras)?;
    let reply_refusal = reply_refusal(state, caller, &ctx);
    let timing = ctx.timing(state.now());
    let listed = ListedThread {
        folder: ctx.me().placement.as_stored().to_string(),
        unread: 0,
        thread: ctx.thread.clone(),
    };
    let mut summary = summary(caller, &listed, &ctx.participants);
    summary.pinned = pinned;
    summary.teams = teams;
    let is_starter = ctx.thread.started_by == caller.person.id.as_str();
    summary.reply_allowed = reply_refusal.is_none();
    summary.attachment_count = files.len() as i64;
    Ok(ThreadView {
        summary,
        reply_refusal,
        can_delete: may_delete_thread(caller.role(), is_starter).is_ok(),
        messages,
        announcement: ctx.thread.announcement.clone(),
        starts_at: ctx.thread.starts_at,
        notes,
        linked_from,
        staff_actions: rules::check_staff_action(caller.role()).is_ok(),
        reaction_refusal: rules::check_may_react(
            caller.role(),
            ctx.kind(),
            ctx.thread.client_count,
            timing,
        )
        .err()
        .map(|v| v.code),
        older,
    })
}

/// Loads the thread, marks it read for the caller (if it was not) and audits the read.
async fn mark_read(state: &AppState, caller: &Caller, thread_id: &str) -> AppResult<ThreadCtx> {
    let (state, caller, thread_id) = (state.clone(), caller.clone(), thread_id.to_string());
    let store = state.store.clone();
    store
        .grouped(move |tx| {
            Box::pin(async move {
                let (state, caller) = (&state, &caller);
                let ctx = load_thread(tx, caller, &thread_id).await?;
                if ctx.thread.next_seq > 0 {
                    let me = caller.person.id.as_str();
                    let through = ctx.thread.next_seq - 1;
                    conversation_store::record_read(tx, &ctx.thread.id, me, through, state.now())
                        .await?;
                }
                if ctx.me().unread {
                    let me = caller.person.id.as_str();
                    threads::set_state(tx, &ctx.thread.id, me, None, Some(false)).await?;
                    thread_event(tx, state, caller, EventKind::ThreadRead, &ctx.thread.id).await?;
                }
                record(
                    tx,
                    state,
                    caller,
                    AuditEntry::new("read_thread", "thread", &ctx.thread.id),
                )
                .await?;
                Ok(ctx)
            })
        })
        .await
}

/// What a thread's messages carry besides their text: reactions as (message, person,
/// emoji) and, for staff, read rows as (person, through seq, read at).
struct Extras {
    reactions: Vec<(String, String, String)>,
    reads: Vec<(String, i64, i64)>,
}

/// The reactions on one message, in the fixed order of the set.
fn reaction_counts(
    caller: &Caller,
    message_id: &str,
    all: &[(String, String, String)],
) -> Vec<ReactionCount> {
    REACTIONS
        .into_iter()
        .filter_map(|emoji| {
            let givers = all.iter().filter(|(m, _, e)| m == message_id && e == emoji);
            let count = givers.clone().count() as i64;
            let mine = givers
                .into_iter()
                .any(|(_, p, _)| p == caller.person.id.as_str());
            (count > 0).then_some(ReactionCount { emoji, count, mine })
        })
        .collect()
}

/// The thread's messages as the caller sees them, each with its attachments, the message
/// it answers (among `rows` or `quoted`), its reactions and (for staff) its read receipts.
fn message_views(
    caller: &Caller,
    ctx: &ThreadCtx,
    rows: &[MessageWithSender],
    quoted: &[MessageWithSender],
    files: &[AttachmentRow],
    extras: &Extras,
) -> AppResult<Vec<MessageView>> {
    let kind = ctx.kind();
    let mut files_of: HashMap<&str, Vec<AttachmentView>> = HashMap::new();
    for f in files {
        if let Some(message_id) = &f.message_id {
            files_of
                .entry(message_id.as_str())
                .or_default()
                .push(AttachmentView::from(f));
        }
    }
    rows.iter()
        .map(|m| {
            let is_sender = m.message.sender_id == caller.person.id.as_str();
            let in_reply_to = match &m.message.in_reply_to {
                Some(id) => match rows.iter().chain(quoted).find(|r| &r.message.id == id) {
                    Some(quoted) => Some(Quote {
                        message_id: id.clone(),
                        sender: sender_ref(caller, kind, quoted)?,
                        excerpt: excerpt(&quoted.message.body),
                    }),
                    None => None,
                },
                None => None,
            };
            let read_by = rules::read_by(m.message.seq, &m.message.sender_id, &extras.reads)
                .into_iter()
                .filter_map(|(person, at)| {
                    let p = ctx
                        .participants
                        .iter()
                        .find(|p| p.person_id.as_str() == person)?;
                    Some(Receipt {
                        person_id: person.to_string(),
                        name: p.name.clone(),
                        read_at: at,
                    })
                })
                .collect();
            Ok(MessageView {
                id: m.message.id.clone(),
                in_reply_to,
                reactions: reaction_counts(caller, &m.message.id, &extras.reactions),
                automatic: m.message.automatic != 0,
                pinned: m.message.pinned_at.is_some(),
                read_by,
                sender: sender_ref(caller, kind, m)?,
                body: m.message.body.clone(),
                body_html: m.message.body_html.clone(),
                created_at: m.message.created_at,
                can_delete: may_delete_message(caller.role(), is_sender).is_ok(),
                attachments: files_of.remove(m.message.id.as_str()).unwrap_or_default(),
            })
        })
        .collect()
}

/// A short quote of a message: its first 100 characters of plain text.
fn excerpt(body: &str) -> String {
    let text = preview(body);
    match text.char_indices().nth(100) {
        Some((at, _)) => format!("{}…", text[..at].trim_end()),
        None => text,
    }
}

/// Why the caller may not reply, if so: the thread is completed or (for a client) not
/// started, it has several clients, or the caller is an inactive client and the reply
/// would reach staff other than front office and billers.
fn reply_refusal(state: &AppState, caller: &Caller, ctx: &ThreadCtx) -> Option<Code> {
    if let Err(v) = rules::check_may_post(caller.role(), ctx.timing(state.now())) {
        return Some(v.code);
    }
    if ctx.reply_policy() != ReplyPolicy::Allowed {
        return Some(Code::RepliesNotAllowed);
    }
    let others = ctx.roles_a_reply_reaches(caller);
    check_inactive_client(caller.role(), caller.person.status, &others)
        .err()
        .map(|v| v.code)
}

/// A folder name as the API takes it, resolved for the caller.
pub enum FolderRef {
    /// Inbox, Archive, Trash or a custom folder: where threads are filed.
    Place(Placement),
    /// The threads the caller wrote in (a view).
    Sent,
    /// The threads addressed to the caller's staff group (a view).
    Team(Group),
}

/// Parses `inbox`, `archive`, `trash`, `sent`, `team:<group>` or a custom folder id of
/// the caller's.
pub async fn resolve_folder(conn: &mut Conn, caller: &Caller, name: &str) -> AppResult<FolderRef> {
    if let Some(place) = Placement::system(name) {
        return Ok(FolderRef::Place(place));
    }
    Ok(match name {
        "sent" => FolderRef::Sent,
        "drafts" => {
            return Err(AppError::invalid(
                "folder",
                "folder: drafts are listed at /api/v1/drafts.",
            ));
        }
        "scheduled" => {
            return Err(AppError::invalid(
                "folder",
                "folder: scheduled sends are listed at /api/v1/scheduled.",
            ));
        }
        other => match other.strip_prefix("team:") {
            Some(group) => match Group::parse(group) {
                Some(g) if Group::of_role(caller.role()) == Some(g) => FolderRef::Team(g),
                _ => return Err(AppError::not_found("folder").with_field("folder")),
            },
            None => match folder_store::find(conn, caller.person.id.as_str(), other).await? {
                Some(f) => FolderRef::Place(Placement::Folder(FolderId::from_trusted(f.id))),
                None => return Err(AppError::not_found("folder").with_field("folder")),
            },
        },
    })
}

/// A page of one of the caller's folders, latest activity first, and the next cursor.
/// Keyset pagination: a page never repeats a thread of an earlier one.
#[tracing::instrument(skip_all)]
pub async fn list(
    state: &AppState,
    caller: &Caller,
    folder: &str,
    filter: TeamFilter,
    cursor: Option<&str>,
    limit: i64,
) -> AppResult<(Vec<ThreadSummary>, Option<String>)> {
    let seek = match cursor {
        Some(c) => Seek::Older(c),
        None => Seek::Newest,
    };
    let page = audited_page(state, caller, folder, filter, seek, limit).await?;
    Ok((page.threads, page.older))
}

/// [`page`], audited while it is read: the audit row is durable before anything is shown.
pub async fn audited_page(
    state: &AppState,
    caller: &Caller,
    folder: &str,
    filter: TeamFilter,
    seek: Seek<'_>,
    limit: i64,
) -> AppResult<ThreadPage> {
    let ((), page) = futures_util::future::try_join(
        audit_listing(state, caller, folder),
        page(state, caller, folder, filter, seek, limit),
    )
    .await?;
    Ok(page)
}

/// Audits that the caller was shown a page of `folder` (subjects and previews).
async fn audit_listing(state: &AppState, caller: &Caller, folder: &str) -> AppResult<()> {
    super::super::audit::record_read(
        state,
        caller,
        AuditEntry::new("list_threads", "folder", folder),
    )
    .await
}

/// Where a page of a folder starts.
#[derive(Debug, Clone, Copy)]
pub enum Seek<'a> {
    /// The latest activity.
    Newest,
    /// The threads after this cursor (older ones).
    Older(&'a str),
    /// The threads before this cursor (newer ones).
    Newer(&'a str),
}

/// A page of a folder with the cursors of its neighbours.
pub struct ThreadPage {
    pub threads: Vec<ThreadSummary>,
    /// The next page towards older threads, if any.
    pub older: Option<String>,
    /// The page of newer threads, if this is not the first.
    pub newer: Option<String>,
}

/// A page of one of the caller's folders, latest activity first, in either direction.
pub async fn page(
    state: &AppState,
    caller: &Caller,
    folder: &str,
    filter: TeamFilter,
    seek: Seek<'_>,
    limit: i64,
) -> AppResult<ThreadPage> {
    let holder = caller.person.id.as_str();
    let (cursor, direction) = match seek {
        Seek::Newest => (None, Direction::Older),
        Seek::Older(c) => (Some(c), Direction::Older),
        Seek::Newer(c) => (Some(c), Direction::Newer),
    };
    let from: Option<(i64, String)> = cursor
        .map(|c| state.cursors.decode(List::Threads, holder, c))
        .transpose()?;
    let limit = limit.clamp(1, 200);
    let mut conn = state.store.read().await?;
    let folder = resolve_folder(&mut conn, caller, folder).await?;
    check_filter_on(matches!(folder, FolderRef::Team(_)), filter)?;
    let listing = match &folder {
        FolderRef::Place(place) => Listing::Folder(place.as_stored()),
        FolderRef::Sent => Listing::Sent,
        FolderRef::Team(g) => Listing::Team(g.as_str(), filter),
    };
    let from_key = from.as_ref().map(|(at, id)| (*at, id.as_str()));
    let pins = threads::pinned_ids(&mut conn, holder).await?;
    let mut rows = threads::list(
        &mut conn,
        &caller.keys,
        holder,
        &listing,
        from_key,
        direction,
        limit + 1,
    )
    .await?;
    let more = rows.len() as i64 > limit;
    rows.truncate(limit as usize);
    if direction == Direction::Newer {
        rows.reverse();
    }
    let key = |r: &ListedThread| (r.thread.last_activity_at, r.thread.id.clone());
    let encode = |r: &ListedThread| state.cursors.encode(List::Threads, holder, &key(r));
    // Going older, newer threads exist whenever the page started from a cursor; going
    // newer, older ones do (the cursor's own thread at least).
    let (older, newer) = match direction {
        Direction::Older => (
            rows.last().filter(|_| more).map(encode),
            rows.first().filter(|_| cursor.is_some()).map(encode),
        ),
        Direction::Newer => (
            rows.last().map(encode),
            rows.first().filter(|_| more).map(encode),
        ),
    };
    // Pinned threads list first, on the first page, and not again in their place.
    rows.retain(|r| !pins.contains(&r.thread.id));
    if cursor.is_none() && !pins.is_empty() {
        let mut first = threads::pinned(&mut conn, &caller.keys, holder, &listing).await?;
        first.append(&mut rows);
        rows = first;
    }
    let mut threads = summaries(&mut conn, caller, &rows).await?;
    for t in &mut threads {
        t.pinned = pins.contains(&t.id);
    }
    Ok(ThreadPage {
        threads,
        older,
        newer,
    })
}

/// A page of listed threads as the caller sees them: participants and attachment counts
/// read for the whole page at once.
async fn summaries(
    conn: &mut Conn,
    caller: &Caller,
    rows: &[ListedThread],
) -> AppResult<Vec<ThreadSummary>> {
    let ids: Vec<String> = rows.iter().map(|r| r.thread.id.clone()).collect();
    let mut by_thread: HashMap<String, Vec<Participant>> = HashMap::new();
    for row in threads::participants_of(conn, &ids).await? {
        let thread_id = row.thread_id.clone();
        by_thread
            .entry(thread_id)
            .or_default()
            .push(Participant::try_from(row)?);
    }
    let mut teams = teams_of(conn, caller, &with_groups(rows.iter().map(|r| &r.thread))).await?;
    let counts: HashMap<String, i64> =
        attachment_store::counts_for_threads(conn, &ids, caller.person.id.as_str())
            .await?
            .into_iter()
            .collect();
    Ok(rows
        .iter()
        .map(|r| {
            let participants = by_thread.get(&r.thread.id).map(Vec::as_slice);
            let mut s = summary(caller, r, participants.unwrap_or(&[]));
            s.attachment_count = counts.get(&r.thread.id).copied().unwrap_or(0);
            s.teams = teams.remove(&r.thread.id).unwrap_or_default();
            s
        })
        .collect())
}

/// The ids of the threads that were addressed to a group: only they have a team state
/// (the others cost no query).
fn with_groups<'a>(threads: impl IntoIterator<Item = &'a ThreadRow>) -> Vec<String> {
    threads
        .into_iter()
        .filter(|t| !t.groups.is_empty())
        .map(|t| t.id.clone())
        .collect()
}
