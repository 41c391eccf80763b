//! Composing a new thread and replying to one. Each is split into `prepare_*` (the input's
//! own checks, on a read connection) and `write_*` (the rules about people and threads,
//! then the writes, inside the caller's transaction), so that sending a draft can reuse
//! both and stay atomic, and no rule is checked on a state older than the write.

use std::collections::BTreeMap;

use crate::domain::conversations::{
    answers, body_limit, check_attachment_visibility, check_linked_from, check_may_post,
    check_may_start_thread, check_participant_count, check_starts_at, may_host, ThreadKind,
};
use crate::domain::events::EventKind;
use crate::domain::ids::ThreadId;
use crate::domain::Code;

use crate::domain::conversations::{Autoresponder, Period};
use crate::domain::mailbox::{
    check_inactive_client, check_reply, parse_recipients, Group, MessageBody, Placement, Recipient,
    Subject,
};
use crate::domain::markdown;
use crate::domain::Role;
use crate::error::{AppError, AppResult};
use crate::store::conversations as conversation_store;
use crate::store::events::NewEvent;
use crate::store::messages::{self, MessageRow};
use crate::store::threads::{self, NewParticipant, ThreadRow};
use crate::store::{Conn, Tx};

use super::super::audit::{record, AuditEntry};
use super::super::{attachments, notifications, AppState, Caller};
use super::conversations::practice_settings;
use super::idempotency::Idempotent;
use super::recipients::{self, MAX_RECIPIENTS};
use super::teams;
use super::{kind_of, load_thread, load_thread_for_write, preview, record_events, ThreadCtx};

#[derive(Debug, Default)]
pub struct ComposeInput {
    pub to: Vec<String>,
    pub subject: String,
    pub body: String,
    pub attachment_ids: Vec<String>,
    /// A message thread (the default) or a conversation (providers and admins).
    pub kind: ThreadKind,
    /// A conversation's scheduled start (ms since the epoch).
    pub starts_at: Option<i64>,
    /// In a conversation, from staff: attachment id → the participants who may see it.
    pub attachment_visibility: BTreeMap<String, Vec<String>>,
    /// For a conversation: the thread it is started from ("convert to a group"), which
    /// the caller takes part in. Its history is not copied.
    pub linked_from: Option<String>,
}

impl ComposeInput {
    /// What an Idempotency-Key stands for: a retry must send exactly this again.
    pub fn canonical(&self) -> serde_json::Value {
        // A plain message hashes as it did before conversations, so that keys stored
        // then still match their retries.
        if self.kind == ThreadKind::Message
            && self.starts_at.is_none()
            && self.attachment_visibility.is_empty()
            && self.linked_from.is_none()
        {
            return serde_json::json!([self.to, self.subject, self.body, self.attachment_ids]);
        }
        serde_json::json!([
            self.to,
            self.subject,
            self.body,
            self.attachment_ids,
            self.kind.as_str(),
            self.starts_at,
            self.attachment_visibility,
            self.linked_from
        ])
    }
}

/// A reply.
#[derive(Debug, Default)]
pub struct ReplyInput {
    pub body: String,
    pub attachment_ids: Vec<String>,
    /// A message of the same thread this reply answers.
    pub in_reply_to: Option<String>,
    /// As on compose: attachment id → the participants who may see it.
    pub attachment_visibility: BTreeMap<String, Vec<String>>,
}

/// A message body, checked and rendered, with the uploads it will carry.
pub struct PreparedBody {
    body: MessageBody,
    html: String,
    preview: String,
    attachment_ids: Vec<String>,
    /// The draft being sent, which may hold the uploads.
    draft_id: Option<String>,
    /// Attachment id → who may see it, as asked (checked against the thread when written).
    visibility: BTreeMap<String, Vec<String>>,
}

async fn prepare_body(
    conn: &mut Conn,
    state: &AppState,
    caller: &Caller,
    raw: &str,
    attachment_ids: &[String],
    visibility: &BTreeMap<String, Vec<String>>,
    draft_id: Option<&str>,
) -> AppResult<PreparedBody> {
    let mut max = state.config.limits.body_max_chars;
    if caller.role() == Role::Client {
        let settings = practice_settings(conn, caller.practice_id()).await?;
        max = body_limit(caller.role(), max, settings.client_message_max_chars);
    }
    let body = MessageBody::parse(raw, max)?;
    attachments::check_usable(conn, caller, draft_id, attachment_ids).await?;
    Ok(PreparedBody {
        html: markdown::render(body.as_str()),
        preview: preview(body.as_str()),
        body,
        attachment_ids: attachment_ids.to_vec(),
        draft_id: draft_id.map(str::to_string),
        visibility: visibility.clone(),
    })
}

pub struct PreparedThread {
    subject: Subject,
    body: PreparedBody,
    recipients: Vec<Recipient>,
    kind: ThreadKind,
    starts_at: Option<i64>,
    linked_from: Option<String>,
}

/// Checks a new message's subject, `to` and body. Who the recipients are, and whether the
/// caller may reach them, is decided inside the write ([`write_thread`]). `draft_id` is the
/// draft being sent, if any.
pub async fn prepare_thread(
    conn: &mut Conn,
    state: &AppState,
    caller: &Caller,
    input: &ComposeInput,
    draft_id: Option<&str>,
) -> AppResult<PreparedThread> {
    let subject = Subject::parse(&input.subject)?;
    let recipients = parse_recipients(&input.to, MAX_RECIPIENTS)?;
    if input.kind == ThreadKind::Conversation {
        may_host(caller.role())?;
    }
    if let Some(at) = input.starts_at {
        check_starts_at(input.kind, at, state.now())?;
    }
    if let Some(linked) = &input.linked_from {
        check_linked_from(input.kind)?;
        load_thread(conn, caller, linked)
            .await
            .map_err(|e| e.with_field("linked_from"))?;
    }
    let body = prepare_body(
        conn,
        state,
        caller,
        &input.body,
        &input.attachment_ids,
        &input.attachment_visibility,
        draft_id,
    )
    .await?;
    Ok(PreparedThread {
        subject,
        body,
        recipients,
        kind: input.kind,
        starts_at: input.starts_at,
        linked_from: input.linked_from.clone(),
    })
}

/// Writes a prepared thread and its first message; returns (thread id, message id).
pub async fn write_thread(
    tx: &mut Tx,
    state: &AppState,
    caller: &Caller,
    p: &PreparedThread,
) -> AppResult<(String, String)> {
    if crate::domain::teams::belongs_to_teams(p.kind)
        && p.recipients
            .iter()
            .any(|r| matches!(r, Recipient::Group(_)))
    {
        // Who is in a group cannot change while its members are read and given the thread.
        crate::store::teams::lock_membership(tx, caller.practice_id(), false).await?;
    }
    let to = addressees(tx, caller, p).await?;
    let thread = new_thread(state, caller, p, &to);
    let key = caller.key(tx).await?;
    threads::insert(tx, &key, &thread).await?;
    let everyone = add_participants(tx, caller, &thread, &to).await?;
    teams::adopt(tx, &thread, &to.groups).await?;
    let message_id = write_message(
        tx,
        state,
        caller,
        &thread,
        &p.body,
        None,
        Destination::New { everyone },
    )
    .await?;
    record(
        tx,
        state,
        caller,
        AuditEntry::new("send_message", "message", &message_id),
    )
    .await?;
    Ok((thread.id, message_id))
}

/// Whom a prepared thread reaches, with every rule about them checked: who may write to
/// whom, a reply-only client, a conversation's size.
async fn addressees(
    conn: &mut Conn,
    caller: &Caller,
    p: &PreparedThread,
) -> AppResult<recipients::Addressees> {
    let to = recipients::resolve(conn, caller, &p.recipients).await?;
    if caller.role() == Role::Client {
        let reply_only = conversation_store::is_reply_only(conn, caller.person.id.as_str()).await?;
        check_may_start_thread(caller.role(), reply_only)?;
    }
    if p.kind == ThreadKind::Conversation {
        let max = practice_settings(conn, caller.practice_id())
            .await?
            .conversation_max_participants;
        check_participant_count(to.people.len() + 1, max)?;
    }
    Ok(to)
}

/// Everything sending a new thread checks, on the state as it is now, without writing:
/// for a message to be sent later, so that what would be refused now is refused now.
pub async fn check_thread_now(
    conn: &mut Conn,
    state: &AppState,
    caller: &Caller,
    input: &ComposeInput,
) -> AppResult<()> {
    let prepared = prepare_thread(conn, state, caller, input, None).await?;
    addressees(conn, caller, &prepared).await.map(drop)
}

/// The row of a new thread, before its first message.
fn new_thread(
    state: &AppState,
    caller: &Caller,
    p: &PreparedThread,
    to: &recipients::Addressees,
) -> ThreadRow {
    let now = state.now();
    let client_count = to.people.iter().filter(|a| a.role == Role::Client).count() as i64
        + i64::from(caller.role() == Role::Client);
    // As its first message leaves it (see `Destination::New`).
    let groups: Vec<&str> = to.groups.iter().map(|g| g.as_str()).collect();
    ThreadRow {
        id: crate::domain::ids::ThreadId::generate().into_string(),
        practice_id: caller.practice_id().to_string(),
        subject: p.subject.as_str().to_string(),
        started_by: caller.person.id.to_string(),
        client_count,
        groups: groups.join(" "),
        message_count: 1,
        next_seq: 1,
        preview: p.body.preview.clone(),
        created_at: now,
        last_activity_at: now,
        kind: p.kind.as_str().to_string(),
        announcement: None,
        starts_at: p.starts_at,
        completed_at: None,
        completed_by: None,
        linked_from: p.linked_from.clone(),
    }
}

/// Puts the new thread in everyone's Inbox: the sender's copy read (Sent is a view over
/// it), everyone else's unread. Rows go in by person id: each row takes its person's
/// counter rows (migration 0009), and one order everywhere means two sends between the
/// same people cannot wait on each other. Returns everyone's id.
async fn add_participants(
    tx: &mut Tx,
    caller: &Caller,
    thread: &ThreadRow,
    to: &recipients::Addressees,
) -> AppResult<Vec<String>> {
    let my_group = Group::of_role(caller.role()).filter(|g| to.groups.contains(g));
    let mut rows = vec![NewParticipant {
        person_id: caller.person.id.as_str(),
        via_group: my_group.map(Group::as_str),
        direct: true,
        folder: Placement::Inbox.as_stored(),
        unread: false,
        has_sent: true,
    }];
    rows.extend(to.people.iter().map(|a| NewParticipant {
        person_id: &a.person_id,
        via_group: a.via_group.map(Group::as_str),
        direct: a.direct,
        folder: Placement::Inbox.as_stored(),
        unread: true,
        has_sent: false,
    }));
    rows.sort_by(|a, b| a.person_id.cmp(b.person_id));
    threads::insert_participants(tx, thread, &rows).await?;
    Ok(rows.iter().map(|r| r.person_id.to_string()).collect())
}

/// Where a message is written.
enum Destination {
    /// As the first of a thread just written with `everyone` in it: the thread row has
    /// its count, preview and time, and the participant rows are as delivered.
    New { everyone: Vec<String> },
    /// Into a thread that was there: its sequence number taken, everyone's row delivered.
    Existing,
}

async fn write_message(
    tx: &mut Tx,
    state: &AppState,
    caller: &Caller,
    thread: &ThreadRow,
    body: &PreparedBody,
    in_reply_to: Option<&str>,
    into: Destination,
) -> AppResult<String> {
    let key = caller.key(tx).await?;
    let fresh = matches!(into, Destination::New { .. });
    let (now, seq) = match &into {
        // Written with its count, preview and time already (`new_thread`).
        Destination::New { .. } => (thread.last_activity_at, 0),
        Destination::Existing => {
            let now = state.now();
            let seq = threads::claim_seq(tx, &key, &thread.id, now, &body.preview)
                .await?
                .ok_or_else(|| AppError::not_found("thread"))?;
            (now, seq)
        }
    };
    let message = MessageRow {
        id: crate::domain::ids::MessageId::generate().into_string(),
        thread_id: thread.id.clone(),
        practice_id: thread.practice_id.clone(),
        sender_id: caller.person.id.to_string(),
        seq,
        body: body.body.as_str().to_string(),
        body_html: body.html.clone(),
        created_at: now,
        in_reply_to: in_reply_to.map(str::to_string),
        automatic: 0,
        pinned_at: None,
    };
    messages::insert(tx, &key, &message).await?;
    attachments::attach(
        tx,
        caller,
        body.draft_id.as_deref(),
        &body.attachment_ids,
        &message.id,
        &thread.id,
    )
    .await?;
    let everyone = match into {
        Destination::New { everyone } => everyone,
        Destination::Existing => threads::participant_ids(tx, &thread.id).await?,
    };
    let visibility = check_attachment_visibility(
        kind_of(thread),
        caller.role(),
        &body.attachment_ids,
        &body.visibility,
        &everyone,
    )?;
    for (attachment, people) in &visibility {
        conversation_store::limit_attachment(tx, attachment, &thread.id, people).await?;
    }
    // The team state before the participant rows: one lock order with marking done.
    teams::on_message(tx, thread, now).await?;
    // Who had emptied it from their Trash: the message brings it back to them, new. A new
    // thread's rows were written as delivered, and no one can have emptied it yet.
    let back = if fresh {
        Vec::new()
    } else {
        let back = crate::store::changes::removed_readers(tx, &thread.id).await?;
        threads::deliver(tx, &thread.id, caller.person.id.as_str(), now).await?;
        back
    };
    let recipients: Vec<String> = everyone
        .into_iter()
        .filter(|id| id != caller.person.id.as_str())
        .collect();
    notifications::new_message(
        tx,
        state,
        &thread.practice_id,
        &thread.id,
        &message.id,
        &recipients,
    )
    .await?;
    let back: Vec<&str> = back.iter().map(String::as_str).collect();
    let mut events = vec![(EventKind::MessageSent, back.as_slice())];
    if fresh {
        events.push((EventKind::ThreadCreated, &[]));
    }
    record_events(tx, state, caller, &thread.id, &message.id, &events).await?;
    if caller.role() == Role::Client {
        auto_replies(tx, state, caller, thread, &recipients).await?;
    }
    Ok(message.id)
}

/// The automatic replies a client's message gets: one from each staff participant whose
/// autoresponder is on now, unless they answered this client in this thread in the last
/// 30 minutes. In the same transaction as the message.
async fn auto_replies(
    tx: &mut Tx,
    state: &AppState,
    caller: &Caller,
    thread: &ThreadRow,
    recipients: &[String],
) -> AppResult<()> {
    let now = state.now();
    let client = caller.person.id.as_str();
    for (responder, text, periods) in conversation_store::autoresponders_of(tx, recipients).await? {
        let periods: Vec<Period> = serde_json::from_str(&periods).map_err(|e| {
            AppError::internal(anyhow::Error::new(e).context("reading an autoresponder"))
        })?;
        let auto = Autoresponder { text, periods };
        if !auto.is_active(now) {
            continue;
        }
        let last = conversation_store::last_auto_reply(tx, &thread.id, &responder, client).await?;
        if !answers(caller.role(), false, last, now) {
            continue;
        }
        write_automatic(tx, state, thread, &responder, &auto.text).await?;
        conversation_store::record_auto_reply(tx, &thread.id, &responder, client, now).await?;
    }
    Ok(())
}

/// Writes an autoresponder's reply from `responder`: marked automatic, delivered and
/// notified like any message, but the responder's own copy stays unread (they did not
/// read the client's message).
async fn write_automatic(
    tx: &mut Tx,
    state: &AppState,
    thread: &ThreadRow,
    responder: &str,
    text: &str,
) -> AppResult<()> {
    let now = state.now();
    let key = state.keys.practice(tx, &thread.practice_id).await?;
    let seq = threads::claim_seq(tx, &key, &thread.id, now, &preview(text))
        .await?
        .ok_or_else(|| AppError::not_found("thread"))?;
    let message = MessageRow {
        id: crate::domain::ids::MessageId::generate().into_string(),
        thread_id: thread.id.clone(),
        practice_id: thread.practice_id.clone(),
        sender_id: responder.to_string(),
        seq,
        body: text.to_string(),
        body_html: markdown::render(text),
        created_at: now,
        in_reply_to: None,
        automatic: 1,
        pinned_at: None,
    };
    messages::insert(tx, &key, &message).await?;
    let back = crate::store::changes::removed_readers(tx, &thread.id).await?;
    threads::deliver(tx, &thread.id, responder, now).await?;
    threads::set_state(tx, &thread.id, responder, None, Some(true)).await?;
    let others: Vec<String> = threads::participant_ids(tx, &thread.id)
        .await?
        .into_iter()
        .filter(|id| id != responder)
        .collect();
    notifications::new_message(
        tx,
        state,
        &thread.practice_id,
        &thread.id,
        &message.id,
        &others,
    )
    .await?;
    let event = NewEvent {
        practice_id: &thread.practice_id,
        kind: EventKind::MessageSent,
        thread_id: Some(&thread.id),
        message_id: Some(&message.id),
        actor_id: Some(responder),
        at: now,
    };
    let back: Vec<&str> = back.iter().map(String::as_str).collect();
    crate::service::changes::record(tx, state, &event, &back).await?;
    Ok(())
}

/// Composes and sends a new thread. With an idempotency key, a retry of the same request
/// returns the first result instead of sending again. Returns (thread id, message id).
#[tracing::instrument(skip_all)]
pub async fn compose(
    state: &AppState,
    caller: &Caller,
    input: ComposeInput,
    idempotency_key: Option<&str>,
) -> AppResult<(String, String)> {
    let key = Idempotent::new(caller, input.canonical(), idempotency_key)?;
    let prepared = {
        let mut conn = state.store.read().await?;
        if let Some(ids) = earlier(&key, &mut conn).await? {
            return Ok(ids);
        }
        prepare_thread(&mut conn, state, caller, &input, None).await?
    };
    let written = {
        let (state, caller, key) = (state.clone(), caller.clone(), key.clone());
        state.store.clone().grouped(move |tx| {
            Box::pin(async move {
                if let Some(ids) = earlier(&key, tx).await? {
                    return Ok(ids);
                }
                let ids = write_thread(tx, &state, &caller, &prepared).await?;
                if let Some(key) = &key {
                    key.remember(tx, &state, &ids).await?;
                }
                Ok(ids)
            })
        })
    }
    .await;
    after_write(state, key.as_ref(), written).await
}

/// A send's answer once written: a keyed send that lost a race to a concurrent retry
/// of itself (which took the uploads first, or remembered the key first) answers with
/// that retry's result.
async fn after_write(
    state: &AppState,
    key: Option<&Idempotent>,
    written: AppResult<(String, String)>,
) -> AppResult<(String, String)> {
    match (written, key) {
        (Err(e), Some(key))
            if e.code == Code::AttachmentNotFound || e.code == Code::InternalError =>
        {
            key.earlier_or(state, e).await
        }
        (written, _) => written,
    }
}

/// The earlier result under the send's key, if it has one and it was used.
async fn earlier(key: &Option<Idempotent>, conn: &mut Conn) -> AppResult<Option<(String, String)>> {
    match key {
        Some(key) => key.earlier(conn).await,
        None => Ok(None),
    }
}

pub struct PreparedReply {
    thread_id: String,
    body: PreparedBody,
    in_reply_to: Option<String>,
}

/// The checks a reply passes both when prepared and on the state it commits on: the
/// thread takes replies from the caller now, and an inactive client reaches only front
/// office and billers.
fn check_reply_rules(
    state: &AppState,
    caller: &Caller,
    ctx: &ThreadCtx,
    status: crate::domain::Status,
) -> AppResult<()> {
    check_may_post(caller.role(), ctx.timing(state.now()))?;
    check_reply(ctx.reply_policy())?;
    check_inactive_client(caller.role(), status, &ctx.roles_a_reply_reaches(caller))?;
    Ok(())
}

/// The message a reply names in `in_reply_to`: one of the same thread.
async fn check_in_reply_to(
    conn: &mut Conn,
    caller: &Caller,
    ctx: &ThreadCtx,
    id: Option<&str>,
) -> AppResult<()> {
    let Some(id) = id else { return Ok(()) };
    match messages::find(conn, &caller.keys, &ctx.thread.practice_id, id).await? {
        Some(m) if m.thread_id == ctx.thread.id => Ok(()),
        _ => Err(AppError::invalid(
            "in_reply_to",
            "in_reply_to must name a message of this thread.",
        )),
    }
}

/// Checks a reply against the rulebook and its body. [`write_reply`] checks the rules
/// again on the state it commits on.
pub async fn prepare_reply(
    conn: &mut Conn,
    state: &AppState,
    caller: &Caller,
    thread_id: &str,
    input: &ReplyInput,
    draft_id: Option<&str>,
) -> AppResult<PreparedReply> {
    let ctx: ThreadCtx = load_thread(conn, caller, thread_id).await?;
    check_reply_rules(state, caller, &ctx, caller.person.status)?;
    check_in_reply_to(conn, caller, &ctx, input.in_reply_to.as_deref()).await?;
    let body = prepare_body(
        conn,
        state,
        caller,
        &input.body,
        &input.attachment_ids,
        &input.attachment_visibility,
        draft_id,
    )
    .await?;
    Ok(PreparedReply {
        thread_id: thread_id.to_string(),
        body,
        in_reply_to: input.in_reply_to.clone(),
    })
}

/// Writes a prepared reply after checking the rules again on the state it commits on.
/// Returns the message id.
pub async fn write_reply(
    tx: &mut Tx,
    state: &AppState,
    caller: &Caller,
    p: &PreparedReply,
) -> AppResult<String> {
    let ctx: ThreadCtx = load_thread_for_write(tx, caller, &p.thread_id).await?;
    let status = recipients::sender_status(tx, caller).await?;
    check_reply_rules(state, caller, &ctx, status)?;
    check_in_reply_to(tx, caller, &ctx, p.in_reply_to.as_deref()).await?;
    let message_id = write_message(
        tx,
        state,
        caller,
        &ctx.thread,
        &p.body,
        p.in_reply_to.as_deref(),
        Destination::Existing,
    )
    .await?;
    record(
        tx,
        state,
        caller,
        AuditEntry::new("reply", "message", &message_id),
    )
    .await?;
    Ok(message_id)
}

/// Replies to a thread; the reply goes to every participant. With an idempotency key, a
/// retry of the same reply returns the first message instead of sending again. Returns
/// the message id.
#[tracing::instrument(skip_all, fields(thread_id = %thread_id))]
pub async fn reply(
    state: &AppState,
    caller: &Caller,
    thread_id: &ThreadId,
    input: &ReplyInput,
    idempotency_key: Option<&str>,
) -> AppResult<String> {
    let thread_id = thread_id.as_str();
    let canonical = serde_json::json!([
        "reply",
        thread_id,
        input.body,
        input.attachment_ids,
        input.in_reply_to,
        input.attachment_visibility
    ]);
    let key = Idempotent::new(caller, canonical, idempotency_key)?;
    let prepared = {
        let mut conn = state.store.read().await?;
        if let Some((_, message_id)) = earlier(&key, &mut conn).await? {
            return Ok(message_id);
        }
        prepare_reply(&mut conn, state, caller, thread_id, input, None).await?
    };
    let written = {
        let (state, caller, key) = (state.clone(), caller.clone(), key.clone());
        state.store.clone().grouped(move |tx| {
            Box::pin(async move {
                if let Some(ids) = earlier(&key, tx).await? {
                    return Ok(ids);
                }
                let message_id = write_reply(tx, &state, &caller, &prepared).await?;
                let ids = (prepared.thread_id.clone(), message_id);
                if let Some(key) = &key {
                    key.remember(tx, &state, &ids).await?;
                }
                Ok(ids)
            })
        })
    }
    .await;
    after_write(state, key.as_ref(), written)
        .await
        .map(|(_, message_id)| message_id)
}
