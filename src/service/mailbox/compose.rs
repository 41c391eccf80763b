//! Composing a new thread and replying to one. Each is split into `prepare_*` (reads and
//! every rule check, no writes) and `write_*` (inside the caller's transaction), so that
//! sending a draft can reuse both and stay atomic.

use crate::domain::events::EventKind;
use crate::domain::Code;
use sha2::{Digest, Sha256};

use crate::domain::mailbox::{
    check_inactive_client, check_reply, may_address, may_address_group, may_receive,
    parse_recipients, Group, MessageBody, Placement, Recipient, Subject,
};
use crate::domain::markdown;
use crate::domain::{Role, Status};
use crate::error::{AppError, AppResult};
use crate::store::messages::{self, MessageRow};
use crate::store::people::{self as people_store, ListFilter};
use crate::store::threads::{self, NewParticipant, ThreadRow};
use crate::store::{idempotency, is_unique_violation, Conn, Tx};

use super::super::audit::{record, AuditEntry};
use super::super::{attachments, notifications, person, AppState, Caller};
use super::{append_event, load_thread, preview, ThreadCtx};

/// At most this many entries in `to`, and at most this many people after groups expand.
const MAX_RECIPIENTS: usize = 500;

pub struct ComposeInput {
    pub to: Vec<String>,
    pub subject: String,
    pub body: String,
    pub attachment_ids: Vec<String>,
}

/// A message body, checked and rendered, with the uploads it will carry.
pub struct PreparedBody {
    body: MessageBody,
    html: String,
    preview: String,
    attachment_ids: Vec<String>,
    /// The draft being sent, which may hold the uploads.
    draft_id: Option<String>,
}

async fn prepare_body(
    conn: &mut Conn,
    state: &AppState,
    caller: &Caller,
    raw: &str,
    attachment_ids: &[String],
    draft_id: Option<&str>,
) -> AppResult<PreparedBody> {
    let body = MessageBody::parse(raw, state.config.limits.body_max_chars)?;
    attachments::check_usable(conn, caller, draft_id, attachment_ids).await?;
    Ok(PreparedBody {
        html: markdown::render(body.as_str()),
        preview: preview(body.as_str()),
        body,
        attachment_ids: attachment_ids.to_vec(),
        draft_id: draft_id.map(str::to_string),
    })
}

struct Addressee {
    person_id: String,
    via_group: Option<Group>,
    role: Role,
}

pub struct PreparedThread {
    subject: Subject,
    body: PreparedBody,
    addressees: Vec<Addressee>,
    groups: Vec<Group>,
}

fn not_activated(label: &str) -> AppError {
    AppError::new(
        Code::RecipientNotActivated,
        format!("to: {label} is not an active person of this practice; nothing was sent."),
    )
    .with_field("to")
}

/// Checks a new message against the rulebook and resolves its recipients. `draft_id` is
/// the draft being sent, if any.
pub async fn prepare_thread(
    conn: &mut Conn,
    state: &AppState,
    caller: &Caller,
    input: &ComposeInput,
    draft_id: Option<&str>,
) -> AppResult<PreparedThread> {
    let subject = Subject::parse(&input.subject)?;
    let recipients = parse_recipients(&input.to, MAX_RECIPIENTS)?;
    let body = prepare_body(
        conn,
        state,
        caller,
        &input.body,
        &input.attachment_ids,
        draft_id,
    )
    .await?;
    let sender = caller.role();
    let mut addressees: Vec<Addressee> = Vec::new();
    let mut groups = Vec::new();
    let add = |a: Addressee, addressees: &mut Vec<Addressee>| {
        if a.person_id == caller.person.id.as_str() {
            return;
        }
        match addressees.iter_mut().find(|x| x.person_id == a.person_id) {
            Some(existing) => existing.via_group = existing.via_group.or(a.via_group),
            None => addressees.push(a),
        }
    };
    for recipient in &recipients {
        match recipient {
            Recipient::Person(id) => {
                let Some(row) = people_store::find(conn, caller.practice_id(), id).await? else {
                    return Err(not_activated(&recipient.label()));
                };
                let target = person(row)?;
                // A client cannot tell a person they may not write to from nobody at all.
                if !may_address(sender, target.role) || !may_receive(target.status) {
                    return Err(not_activated(&recipient.label()));
                }
                add(
                    Addressee {
                        person_id: target.id.to_string(),
                        via_group: None,
                        role: target.role,
                    },
                    &mut addressees,
                );
            }
            Recipient::Group(group) => {
                if !may_address_group(sender, *group) {
                    return Err(AppError::new(
                        Code::RecipientNotAllowed,
                        format!(
                            "to: you cannot write to {}; nothing was sent.",
                            recipient.label()
                        ),
                    )
                    .with_field("to"));
                }
                let members = people_store::list(
                    conn,
                    &ListFilter {
                        practice_id: caller.practice_id(),
                        role: Some(group.role().as_str()),
                        status: Some(Status::Active.as_str()),
                        client_viewer: None,
                        after: None,
                        limit: MAX_RECIPIENTS as i64 + 1,
                    },
                )
                .await?;
                let members: Vec<_> = members
                    .into_iter()
                    .filter(|m| m.id != caller.person.id.as_str())
                    .collect();
                if members.is_empty() {
                    return Err(AppError::new(
                        Code::GroupEmpty,
                        format!(
                            "to: {} has no active members; nothing was sent.",
                            recipient.label()
                        ),
                    )
                    .with_field("to"));
                }
                groups.push(*group);
                for m in members {
                    add(
                        Addressee {
                            person_id: m.id,
                            via_group: Some(*group),
                            role: group.role(),
                        },
                        &mut addressees,
                    );
                }
            }
        }
    }
    if addressees.is_empty() {
        return Err(AppError::invalid(
            "to",
            "to: write to someone other than yourself.",
        ));
    }
    if addressees.len() > MAX_RECIPIENTS {
        return Err(AppError::invalid(
            "to",
            format!("to reaches more than {MAX_RECIPIENTS} people."),
        ));
    }
    let roles: Vec<Role> = addressees.iter().map(|a| a.role).collect();
    check_inactive_client(sender, caller.person.status, &roles)?;
    Ok(PreparedThread {
        subject,
        body,
        addressees,
        groups,
    })
}

/// Writes a prepared thread and its first message; returns (thread id, message id).
pub async fn write_thread(
    tx: &mut Tx,
    state: &AppState,
    caller: &Caller,
    p: &PreparedThread,
) -> AppResult<(String, String)> {
    let now = state.now();
    let client_count = p
        .addressees
        .iter()
        .filter(|a| a.role == Role::Client)
        .count() as i64
        + i64::from(caller.role() == Role::Client);
    let thread = ThreadRow {
        id: crate::domain::ids::ThreadId::generate().into_string(),
        practice_id: caller.practice_id().to_string(),
        subject: p.subject.as_str().to_string(),
        started_by: caller.person.id.to_string(),
        client_count,
        groups: p
            .groups
            .iter()
            .map(|g| g.as_str())
            .collect::<Vec<_>>()
            .join(" "),
        message_count: 0,
        next_seq: 0,
        preview: String::new(),
        created_at: now,
        last_activity_at: now,
    };
    threads::insert(tx, &thread).await?;
    // The sender's own copy sits, read, in their Inbox (Sent is a view over it).
    let my_group = Group::of_role(caller.role()).filter(|g| p.groups.contains(g));
    threads::insert_participant(
        tx,
        &thread,
        &NewParticipant {
            person_id: caller.person.id.as_str(),
            via_group: my_group.map(Group::as_str),
            folder: Placement::Inbox.as_stored(),
            unread: false,
            has_sent: true,
        },
    )
    .await?;
    for a in &p.addressees {
        threads::insert_participant(
            tx,
            &thread,
            &NewParticipant {
                person_id: &a.person_id,
                via_group: a.via_group.map(Group::as_str),
                folder: Placement::Inbox.as_stored(),
                unread: true,
                has_sent: false,
            },
        )
        .await?;
    }
    let message_id = write_message(tx, state, caller, &thread, &p.body).await?;
    append_event(
        tx,
        state,
        caller,
        EventKind::ThreadCreated,
        Some(&thread.id),
        Some(&message_id),
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

async fn write_message(
    tx: &mut Tx,
    state: &AppState,
    caller: &Caller,
    thread: &ThreadRow,
    body: &PreparedBody,
) -> AppResult<String> {
    let now = state.now();
    let seq = threads::claim_seq(tx, &thread.id, now, &body.preview)
        .await?
        .ok_or_else(|| AppError::not_found("thread"))?;
    let message = MessageRow {
        id: crate::domain::ids::MessageId::generate().into_string(),
        thread_id: thread.id.clone(),
        practice_id: thread.practice_id.clone(),
        sender_id: caller.person.id.to_string(),
        seq,
        body: body.body.as_str().to_string(),
        body_html: body.html.clone(),
        created_at: now,
    };
    messages::insert(tx, &message).await?;
    attachments::attach(
        tx,
        caller,
        body.draft_id.as_deref(),
        &body.attachment_ids,
        &message.id,
        &thread.id,
    )
    .await?;
    threads::deliver(tx, &thread.id, caller.person.id.as_str(), now).await?;
    let recipients: Vec<String> = threads::participant_ids(tx, &thread.id)
        .await?
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
    append_event(
        tx,
        state,
        caller,
        EventKind::MessageSent,
        Some(&thread.id),
        Some(&message.id),
    )
    .await?;
    Ok(message.id)
}

fn request_hash(input: &ComposeInput) -> String {
    let canonical =
        serde_json::json!([input.to, input.subject, input.body, input.attachment_ids]).to_string();
    hex::encode(Sha256::digest(canonical.as_bytes()))
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
    if let Some(key) = idempotency_key {
        if key.is_empty() || key.len() > 200 {
            return Err(AppError::invalid(
                "Idempotency-Key",
                "Idempotency-Key must be 1 to 200 characters.",
            ));
        }
    }
    let hash = request_hash(&input);
    let replay = |found: (String, String, String)| {
        if found.0 == hash {
            Ok((found.1, found.2))
        } else {
            Err(AppError::new(
                Code::IdempotencyKeyReused,
                "This Idempotency-Key was used for a different message.",
            )
            .with_field("Idempotency-Key"))
        }
    };
    let prepared = {
        let mut conn = state.store.read().await?;
        if let Some(key) = idempotency_key {
            if let Some(found) =
                idempotency::find(&mut conn, caller.person.id.as_str(), key).await?
            {
                return replay(found);
            }
        }
        prepare_thread(&mut conn, state, caller, &input, None).await?
    };
    let mut tx = state.store.begin().await?;
    if let Some(key) = idempotency_key {
        if let Some(found) = idempotency::find(&mut tx, caller.person.id.as_str(), key).await? {
            return replay(found);
        }
    }
    let (thread_id, message_id) = match write_thread(&mut tx, state, caller, &prepared).await {
        Ok(ids) => ids,
        Err(e) if e.code == Code::AttachmentNotFound && idempotency_key.is_some() => {
            // A concurrent retry of this send took the uploads first: answer with its result.
            drop(tx);
            let key = idempotency_key.unwrap_or_default();
            let mut conn = state.store.read().await?;
            return match idempotency::find(&mut conn, caller.person.id.as_str(), key).await? {
                Some(found) => replay(found),
                None => Err(e),
            };
        }
        Err(e) => return Err(e),
    };
    if let Some(key) = idempotency_key {
        let stored = idempotency::insert(
            &mut tx,
            caller.person.id.as_str(),
            key,
            &hash,
            &thread_id,
            &message_id,
            state.now(),
        )
        .await;
        if let Err(e) = stored {
            if is_unique_violation(&e, "idempotency_keys_pkey", "idempotency_keys.person_id") {
                // A concurrent retry won the race: answer with its result.
                drop(tx);
                let mut conn = state.store.read().await?;
                if let Some(found) =
                    idempotency::find(&mut conn, caller.person.id.as_str(), key).await?
                {
                    return replay(found);
                }
            }
            return Err(e.into());
        }
    }
    tx.commit().await?;
    Ok((thread_id, message_id))
}

/// How long a send's Idempotency-Key is remembered.
const IDEMPOTENCY_DAYS: i64 = 7;

/// Forgets idempotency keys older than a week (run by the janitor).
pub async fn forget_old_idempotency_keys(state: &AppState) -> AppResult<u64> {
    let mut conn = state.store.write().await?;
    Ok(
        idempotency::delete_older_than(&mut conn, state.now() - IDEMPOTENCY_DAYS * 86_400_000)
            .await?,
    )
}

pub struct PreparedReply {
    thread: ThreadRow,
    body: PreparedBody,
}

/// Checks a reply against the rulebook: the thread must take replies, and an inactive
/// client may reach only front office and billers.
pub async fn prepare_reply(
    conn: &mut Conn,
    state: &AppState,
    caller: &Caller,
    thread_id: &str,
    body: &str,
    attachment_ids: &[String],
    draft_id: Option<&str>,
) -> AppResult<PreparedReply> {
    let ctx: ThreadCtx = load_thread(conn, caller, thread_id).await?;
    check_reply(ctx.reply_policy())?;
    let body = prepare_body(conn, state, caller, body, attachment_ids, draft_id).await?;
    let others = ctx.roles_a_reply_reaches(caller);
    check_inactive_client(caller.role(), caller.person.status, &others)?;
    Ok(PreparedReply {
        thread: ctx.thread,
        body,
    })
}

/// Writes a prepared reply; returns the message id.
pub async fn write_reply(
    tx: &mut Tx,
    state: &AppState,
    caller: &Caller,
    p: &PreparedReply,
) -> AppResult<String> {
    let message_id = write_message(tx, state, caller, &p.thread, &p.body).await?;
    record(
        tx,
        state,
        caller,
        AuditEntry::new("reply", "message", &message_id),
    )
    .await?;
    Ok(message_id)
}

/// Replies to a thread; the reply goes to every participant. Returns the message id.
#[tracing::instrument(skip_all)]
pub async fn reply(
    state: &AppState,
    caller: &Caller,
    thread_id: &str,
    body: &str,
    attachment_ids: &[String],
) -> AppResult<String> {
    let prepared = {
        let mut conn = state.store.read().await?;
        prepare_reply(
            &mut conn,
            state,
            caller,
            thread_id,
            body,
            attachment_ids,
            None,
        )
        .await?
    };
    let mut tx = state.store.begin().await?;
    let message_id = write_reply(&mut tx, state, caller, &prepared).await?;
    tx.commit().await?;
    Ok(message_id)
}
