//! The sender: follows the notification queue, claims what is due (a lease, so that two
//! servers never send the same one), sends it, and retries with back-off on failure.

use std::time::Duration;

use crate::domain::Status;
use crate::service::{email_changes, invitations, password_resets, person, AppState, Person};
use crate::store::notifications::{self as queue, NotificationRow};
use crate::store::people as people_store;
use crate::store::practices::{self, PracticeRow};

use super::{render, sms_text, Kind};

/// How long a claimed notification is held before another attempt may take it: far longer
/// than a send may take (each SMTP step times out after 20 s).
const LEASE_MS: i64 = 5 * 60_000;

/// Runs until the task is aborted.
pub async fn run(state: AppState) {
    let interval = Duration::from_millis(state.config.notifications.poll_interval_ms);
    loop {
        match send_due(&state).await {
            Ok(0) => tokio::time::sleep(interval).await,
            Ok(_) => {}
            Err(e) => {
                tracing::warn!(error = format!("{e:#}"), "notification sender");
                tokio::time::sleep(interval).await;
            }
        }
    }
}

/// Notifications claimed at once: one statement claims them, one records their sends.
const BATCH: i64 = 20;

/// Sends what is due now; returns how many it handled.
pub async fn send_due(state: &AppState) -> anyhow::Result<usize> {
    let due = {
        let mut conn = state.store.read().await?;
        queue::due(&mut conn, state.now(), BATCH).await?
    };
    let claimed_at = state.now();
    let claimed = {
        let ids: Vec<String> = due.iter().map(|n| n.id.clone()).collect();
        let mut conn = state.store.write().await?;
        queue::claim_all(&mut conn, &ids, claimed_at, claimed_at + LEASE_MS).await?
    };
    let mut sent = Vec::new();
    let mut handled = 0;
    for n in due.iter().filter(|n| claimed.contains(&n.id)) {
        // Past most of the lease, another node may take the rest once it ends: leave them
        // to that attempt rather than risk sending one twice.
        if state.now() > claimed_at + LEASE_MS - LEASE_MARGIN_MS {
            break;
        }
        handled += 1;
        // The claim counted this attempt; the marks below hold only for this claim.
        let attempt = n.attempts + 1;
        match deliver(state, n).await {
            Ok(Delivery::Sent) => sent.push((n.id.clone(), attempt)),
            Ok(Delivery::NotNeeded) => {
                let mut conn = state.store.write().await?;
                queue::cancel(&mut conn, &n.id, state.now()).await?;
            }
            Err(e) => {
                let give_up = attempt >= state.config.notifications.max_attempts;
                // 2, 4, 8 … seconds, at most an hour.
                let backoff = 1000 * (1i64 << attempt.clamp(1, 12)).min(3600);
                // Errors may quote the address or the gateway's URL: keep only their kind.
                let kind = e.kind;
                tracing::warn!(notification = %n.id, attempt, give_up, error = kind, "a notification could not be sent");
                let now = state.now();
                let mut conn = state.store.write().await?;
                queue::mark_failed(&mut conn, &n.id, attempt, now, now + backoff, give_up, kind)
                    .await?;
            }
        }
    }
    mark_sent(state, &sent).await;
    Ok(handled)
}

/// How long before its lease ends a batch stops sending.
const LEASE_MARGIN_MS: i64 = 60_000;

/// Records sends; retried, because failing here would send them again after the lease.
async fn mark_sent(state: &AppState, sent: &[(String, i64)]) {
    if sent.is_empty() {
        return;
    }
    for wait in [0u64, 200, 1000, 5000] {
        tokio::time::sleep(Duration::from_millis(wait)).await;
        let done = match state.store.write().await {
            Ok(mut conn) => queue::mark_all_sent(&mut conn, sent, state.now()).await,
            Err(e) => Err(e),
        };
        match done {
            Ok(()) => return,
            Err(e) => {
                tracing::warn!(count = sent.len(), error = %e, "recording sent notifications")
            }
        }
    }
    tracing::error!(
        count = sent.len(),
        "sent notifications could not be recorded; they may be sent again"
    );
}

/// Why a delivery failed, in words that hold no address, URL or content.
struct SendError {
    kind: &'static str,
}

impl SendError {
    fn wrap(kind: &'static str) -> impl FnOnce(anyhow::Error) -> SendError {
        move |_| SendError { kind }
    }
}

impl From<sqlx::Error> for SendError {
    fn from(_: sqlx::Error) -> Self {
        SendError { kind: "database" }
    }
}

enum Delivery {
    Sent,
    NotNeeded,
}

/// Sends one claimed notification, unless it is no longer needed: its recipient or practice
/// is gone, the message it tells of was read, or what it asks of the person no longer holds.
async fn deliver(state: &AppState, n: &NotificationRow) -> Result<Delivery, SendError> {
    let Some(kind) = Kind::parse(&n.kind) else {
        return Ok(Delivery::NotNeeded);
    };
    let Some((recipient, practice)) = recipient_and_practice(state, n, kind).await? else {
        return Ok(Delivery::NotNeeded);
    };
    let Some(link) = link(state, n, kind, &recipient, &practice).await? else {
        return Ok(Delivery::NotNeeded);
    };
    let to = link
        .address
        .or_else(|| n.address.clone())
        .unwrap_or_else(|| recipient.email.clone());
    send(state, n, kind, &recipient, &practice, &link.url, &to).await
}

/// The notification's recipient and practice; `None` when either is gone or, for a new
/// message, when the person has nothing unread any more.
async fn recipient_and_practice(
    state: &AppState,
    n: &NotificationRow,
    kind: Kind,
) -> Result<Option<(Person, PracticeRow)>, SendError> {
    let mut conn = state.store.read().await?;
    let recipient = people_store::find(&mut conn, &n.practice_id, &n.person_id).await?;
    let practice = practices::find(&mut conn, &n.practice_id).await?;
    let waiting = kind != Kind::NewMessage || queue::has_unread(&mut conn, &n.person_id).await?;
    match (recipient, practice) {
        (Some(r), Some(p)) if waiting => Ok(Some((
            person(r).map_err(|_| SendError { kind: "person" })?,
            p,
        ))),
        _ => Ok(None),
    }
}

/// The link a notification carries, and where it goes when not to the address queued.
struct Link {
    url: String,
    /// `Some`: sent here instead of the queued address (an email change's new address).
    address: Option<String>,
}

/// The link for a notification of `kind`, issuing a fresh token where it needs one;
/// `None` when the person's state no longer calls for the notification.
async fn link(
    state: &AppState,
    n: &NotificationRow,
    kind: Kind,
    recipient: &Person,
    practice: &PracticeRow,
) -> Result<Option<Link>, SendError> {
    let url = match kind {
        Kind::NewMessage => {
            // Consent is checked again: it may have been withdrawn while this waited.
            let consents = match n.channel.as_str() {
                "sms" => recipient.consent_sms,
                _ => recipient.consent_email,
            };
            if !recipient.status.is_activated() || !consents {
                return Ok(None);
            }
            format!("{}/p/{}/", state.public_url, practice.slug)
        }
        Kind::Invitation => match invitation_link(state, recipient).await? {
            Some(url) => url,
            None => return Ok(None),
        },
        Kind::PasswordReset => match password_reset_link(state, recipient).await? {
            Some(url) => url,
            None => return Ok(None),
        },
        Kind::EmailChange => return email_change_link(state, recipient).await,
        Kind::EmailChangeNotice => format!("{}/p/{}/", state.public_url, practice.slug),
    };
    Ok(Some(Link { url, address: None }))
}

/// An invitation link; `None` unless the person is still invited.
async fn invitation_link(
    state: &AppState,
    recipient: &Person,
) -> Result<Option<String>, SendError> {
    if recipient.status != Status::Invited {
        return Ok(None);
    }
    // A fresh link per attempt; it replaces any earlier one.
    let mut tx = state.store.begin().await?;
    let token = invitations::issue(&mut tx, state, recipient)
        .await
        .map_err(|_| SendError { kind: "database" })?;
    tx.commit().await?;
    Ok(Some(invitations::url(state, &token)))
}

/// A fresh password-reset link; `None` unless the person is activated.
async fn password_reset_link(
    state: &AppState,
    recipient: &Person,
) -> Result<Option<String>, SendError> {
    if !recipient.status.is_activated() {
        return Ok(None);
    }
    let mut tx = state.store.begin().await?;
    let link = password_resets::issue_link(&mut tx, state, recipient)
        .await
        .map_err(|_| SendError { kind: "database" })?;
    tx.commit().await?;
    Ok(Some(link))
}

/// A fresh link confirming the person's pending email address, sent to that address;
/// `None` when no change is pending or no token was issued for it.
async fn email_change_link(
    state: &AppState,
    recipient: &Person,
) -> Result<Option<Link>, SendError> {
    let Some(pending) = recipient.pending_email.clone() else {
        return Ok(None);
    };
    let mut tx = state.store.begin().await?;
    let token = email_changes::issue(&mut tx, state, recipient, &pending)
        .await
        .map_err(|_| SendError { kind: "database" })?;
    tx.commit().await?;
    let Some(token) = token else {
        return Ok(None);
    };
    // The link goes to the new address: following it proves the person holds it.
    Ok(Some(Link {
        url: email_changes::url(state, &token),
        address: Some(pending),
    }))
}

/// Sends the notification with `link` by its channel: a text message to the person's
/// mobile (not needed without a gateway or a number), or an email to `to`.
async fn send(
    state: &AppState,
    n: &NotificationRow,
    kind: Kind,
    recipient: &Person,
    practice: &PracticeRow,
    link: &str,
    to: &str,
) -> Result<Delivery, SendError> {
    match n.channel.as_str() {
        "sms" => {
            let (Some(gateway), Some(mobile)) = (&state.sms, &recipient.mobile) else {
                return Ok(Delivery::NotNeeded);
            };
            gateway
                .send(mobile, &sms_text(&practice.name, link))
                .await
                .map_err(SendError::wrap("sms gateway"))?;
        }
        _ => {
            let email = render(kind, &practice.name, link).map_err(SendError::wrap("template"))?;
            state
                .mailer
                .send(&state.config.mail.from, to, &n.id, &email)
                .await
                .map_err(SendError::wrap("mail transport"))?;
        }
    }
    Ok(Delivery::Sent)
}
