//! Queueing notifications, in the transaction of what causes them, so that a crash loses
//! none. New-message notifications are coalesced: at most one per person and channel per
//! `notifications.coalesce_minutes` while they have unread messages.

use crate::domain::ids::NotificationId;
use crate::error::AppResult;
use crate::notify::Kind;
use crate::store::notifications::{self as queue, NotificationRow};
use crate::store::people as people_store;
use crate::store::Conn;

use super::{person, AppState};

/// What a new-message notification is about.
struct Cause<'a> {
    thread_id: &'a str,
    message_id: &'a str,
}

/// One notification to queue.
struct Queued<'a> {
    person_id: &'a str,
    kind: Kind,
    channel: &'a str,
    cause: Option<&'a Cause<'a>>,
    /// Where it goes, when not to the person's current address.
    address: Option<&'a str>,
}

impl<'a> Queued<'a> {
    fn email(person_id: &'a str, kind: Kind) -> Self {
        Queued {
            person_id,
            kind,
            channel: "email",
            cause: None,
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
        cause,
        address,
    } = queued;
    let now = state.now();
    let (waiting, last_sent) = queue::state_for(conn, person_id, kind.as_str(), channel).await?;
    if waiting {
        // One already waits to go out: it will cover this too.
        return Ok(());
    }
    let mut due = now + state.config.notifications.delay_seconds * 1000;
    if let (Some(last), Some(cause)) = (last_sent, cause) {
        // Told recently and something else is still unread: wait out the window. If they
        // have read everything since, this is news again.
        if queue::has_unread_besides(conn, person_id, cause.thread_id).await? {
            due = due.max(last + state.config.notifications.coalesce_minutes * 60_000);
        }
    }
    queue::insert(
        conn,
        &NotificationRow {
            id: NotificationId::generate().into_string(),
            practice_id: practice_id.into(),
            person_id: person_id.into(),
            kind: kind.as_str().into(),
            channel: channel.into(),
            message_id: cause.map(|c| c.message_id.to_string()),
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
    let cause = Cause {
        thread_id,
        message_id,
    };
    for person_id in recipients {
        let Some(row) = people_store::find(conn, practice_id, person_id).await? else {
            continue;
        };
        let recipient = person(row)?;
        if !recipient.status.is_activated() {
            continue;
        }
        let by_sms = recipient.consent_sms && recipient.mobile.is_some() && state.sms.is_some();
        for (channel, consented) in [("email", recipient.consent_email), ("sms", by_sms)] {
            if !consented {
                continue;
            }
            let queued = Queued {
                person_id,
                kind: Kind::NewMessage,
                channel,
                cause: Some(&cause),
                address: None,
            };
            enqueue(conn, state, practice_id, queued).await?;
        }
    }
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
