//! Queueing notifications, in the transaction of what causes them, so that a crash loses
//! none. New-message notifications are coalesced: at most one per person and channel per
//! `notifications.coalesce_minutes` while they have unread messages.

use crate::domain::ids::NotificationId;
use crate::domain::Status;
use crate::error::AppResult;
use crate::notify::Kind;
use crate::store::notifications::{self as queue, NotificationRow};
use crate::store::Conn;

use super::AppState;

/// One notification to queue.
struct Queued<'a> {
    person_id: &'a str,
    kind: Kind,
    channel: &'a str,
    /// Where it goes, when not to the person's current address.
    address: Option<&'a str>,
}

impl<'a> Queued<'a> {
    fn email(person_id: &'a str, kind: Kind) -> Self {
        Queued {
            person_id,
            kind,
            channel: "email",
            address: None,
        }
    }
}

async fn enqueue(
    conn: &mut Conn,
    state: &AppState,
    practice_id: &str,
    queued: Queued<'_>,
) -> AppResult<()> {
    let Queued {
        person_id,
        kind,
        channel,
        address,
    } = queued;
    let now = state.now();
    let (waiting, _) = queue::state_for(conn, person_id, kind.as_str(), channel).await?;
    if waiting {
        // One already waits to go out: it will cover this too.
        return Ok(());
    }
    let due = now + state.config.notifications.delay_seconds * 1000;
    queue::insert(
        conn,
        &NotificationRow {
            id: NotificationId::generate().into_string(),
            practice_id: practice_id.into(),
            person_id: person_id.into(),
            kind: kind.as_str().into(),
            channel: channel.into(),
            message_id: None,
            address: address.map(str::to_string),
            created_at: now,
            due_at: due,
            attempts: 0,
        },
    )
    .await?;
    Ok(())
}

/// Queues new-message notifications for the recipients of a message who have an
/// activated account and have consented: by email, and by SMS when a gateway is set up
/// and they gave a mobile number.
pub async fn new_message(
    conn: &mut Conn,
    state: &AppState,
    practice_id: &str,
    thread_id: &str,
    message_id: &str,
    recipients: &[String],
) -> AppResult<()> {
    let kind = Kind::NewMessage;
    let now = state.now();
    let delay = state.config.notifications.delay_seconds * 1000;
    let window = state.config.notifications.coalesce_minutes * 60_000;
    let mut rows = Vec::new();
    for r in queue::recipients(conn, practice_id, kind.as_str(), thread_id, recipients).await? {
        if !r.status.parse::<Status>().is_ok_and(Status::is_activated) {
            continue;
        }
        let by_sms = r.consent_sms != 0 && r.has_mobile != 0 && state.sms.is_some();
        let channels = [
            (
                "email",
                r.consent_email != 0,
                r.email_waiting,
                r.email_last_sent,
            ),
            ("sms", by_sms, r.sms_waiting, r.sms_last_sent),
        ];
        for (channel, consented, waiting, last_sent) in channels {
            // One already waiting to go out covers this too.
            if !consented || waiting > 0 {
                continue;
            }
            let mut due = now + delay;
            if let Some(last) = last_sent.filter(|_| r.unread_elsewhere != 0) {
                // Told recently and something else is still unread: wait out the window.
                // If they have read everything since, this is news again.
                due = due.max(last + window);
            }
            rows.push(NotificationRow {
                id: NotificationId::generate().into_string(),
                practice_id: practice_id.into(),
                person_id: r.id.clone(),
                kind: kind.as_str().into(),
                channel: channel.into(),
                message_id: Some(message_id.to_string()),
                address: None,
                created_at: now,
                due_at: due,
                attempts: 0,
            });
        }
    }
    queue::insert_all(conn, &rows).await?;
    Ok(())
}

/// Queues an invitation email, replacing one still waiting (whose link a resend has just
/// revoked); its link (and token) is made when it is sent.
pub async fn invitation(
    conn: &mut Conn,
    state: &AppState,
    practice_id: &str,
    person_id: &str,
) -> AppResult<()> {
    queue::cancel_open(conn, person_id, Kind::Invitation.as_str(), state.now()).await?;
    enqueue(
        conn,
        state,
        practice_id,
        Queued::email(person_id, Kind::Invitation),
    )
    .await
}

/// Queues a password-reset email; its link (and token) is made when it is sent.
pub async fn password_reset(
    conn: &mut Conn,
    state: &AppState,
    practice_id: &str,
    person_id: &str,
) -> AppResult<()> {
    enqueue(
        conn,
        state,
        practice_id,
        Queued::email(person_id, Kind::PasswordReset),
    )
    .await
}

/// Queues the confirmation link of a person's new (pending) address, to that address, and
/// a notice without content to `old_address`; what an earlier change queued is replaced.
pub async fn email_change(
    conn: &mut Conn,
    state: &AppState,
    practice_id: &str,
    person_id: &str,
    old_address: &str,
) -> AppResult<()> {
    for kind in [Kind::EmailChange, Kind::EmailChangeNotice] {
        queue::cancel_open(conn, person_id, kind.as_str(), state.now()).await?;
    }
    enqueue(
        conn,
        state,
        practice_id,
        Queued::email(person_id, Kind::EmailChange),
    )
    .await?;
    enqueue(
        conn,
        state,
        practice_id,
        Queued {
            address: Some(old_address),
            ..Queued::email(person_id, Kind::EmailChangeNotice)
        },
    )
    .await
}

/// Messages were deleted: what only they would have announced is cancelled; a waiting
/// notification that also covers other unread messages stays, untied from them.
pub async fn messages_deleted(
    conn: &mut Conn,
    state: &AppState,
    message_ids: &[String],
) -> AppResult<()> {
    for (id, person_id) in queue::open_for_messages(conn, message_ids).await? {
        if queue::has_unread(conn, &person_id).await? {
            queue::detach(conn, &id).await?;
        } else {
            queue::cancel(conn, &id, state.now()).await?;
        }
    }
    Ok(())
}
