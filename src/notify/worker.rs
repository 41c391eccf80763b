//! The sender: follows the notification queue, claims what is due (a lease, so that two
//! servers never send the same one), sends it, and retries with back-off on failure.

use std::time::Duration;

use anyhow::Context;

use crate::auth::{new_token, token_hash};
use crate::domain::Status;
use crate::service::{invitations, person, AppState};
use crate::store::notifications::{self as queue, NotificationRow};
use crate::store::{people as people_store, practices, tokens};

use super::{render, sms_text, Kind};

/// How long a claimed notification is held before another attempt may take it: longer
/// than an SMTP attempt may take (20 s).
const LEASE_MS: i64 = 30_000;
pub const RESET_VALID_MS: i64 = 3_600_000;

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

/// Sends what is due now; returns how many it handled.
pub async fn send_due(state: &AppState) -> anyhow::Result<usize> {
    let now = state.now();
    let due = {
        let mut conn = state.store.read().await?;
        queue::due(&mut conn, now, 20).await?
    };
    let mut handled = 0;
    for n in due {
        let claimed = {
            let mut conn = state.store.write().await?;
            queue::claim(&mut conn, &n.id, now, now + LEASE_MS).await?
        };
        if !claimed {
            continue;
        }
        handled += 1;
        let outcome = deliver(state, &n).await;
        let now = state.now();
        let mut conn = state.store.write().await?;
        match outcome {
            Ok(Delivery::Sent) => queue::mark_sent(&mut conn, &n.id, now).await?,
            Ok(Delivery::NotNeeded) => queue::cancel(&mut conn, &n.id, now).await?,
            Err(e) => {
                let attempts = n.attempts + 1;
                let give_up = attempts >= state.config.notifications.max_attempts;
                // 2, 4, 8 … seconds, at most an hour.
                let backoff = 1000 * (1i64 << attempts.clamp(1, 12)).min(3600);
                let error: String = format!("{e:#}").chars().take(500).collect();
                tracing::warn!(notification = %n.id, attempts, give_up, "a notification could not be sent");
                queue::mark_failed(&mut conn, &n.id, now, now + backoff, give_up, &error).await?;
            }
        }
    }
    Ok(handled)
}

enum Delivery {
    Sent,
    NotNeeded,
}

async fn deliver(state: &AppState, n: &NotificationRow) -> anyhow::Result<Delivery> {
    let kind = Kind::parse(&n.kind).context("unknown notification kind")?;
    let (recipient, practice) = {
        let mut conn = state.store.read().await?;
        let recipient = people_store::find(&mut conn, &n.practice_id, &n.person_id).await?;
        let practice = practices::find(&mut conn, &n.practice_id).await?;
        let waiting =
            kind != Kind::NewMessage || queue::has_unread(&mut conn, &n.person_id).await?;
        match (recipient, practice) {
            (Some(r), Some(p)) if waiting => (person(r).map_err(|e| anyhow::anyhow!("{e}"))?, p),
            _ => return Ok(Delivery::NotNeeded),
        }
    };
    let link = match kind {
        Kind::NewMessage => {
            if !recipient.status.is_activated() {
                return Ok(Delivery::NotNeeded);
            }
            format!("{}/p/{}/", state.public_url, practice.slug)
        }
        Kind::Invitation => {
            if recipient.status != Status::Invited {
                return Ok(Delivery::NotNeeded);
            }
            // A fresh link per attempt; it replaces any earlier one.
            let mut tx = state.store.begin().await?;
            let token = invitations::issue(&mut tx, state, &recipient)
                .await
                .map_err(|e| anyhow::anyhow!("{e}"))?;
            tx.commit().await?;
            invitations::url(state, &token)
        }
        Kind::PasswordReset => {
            if !recipient.status.is_activated() {
                return Ok(Delivery::NotNeeded);
            }
            let token = new_token();
            let now = state.now();
            let mut tx = state.store.begin().await?;
            tokens::revoke_unused(&mut tx, "password_reset", Some(recipient.id.as_str())).await?;
            tokens::insert(
                &mut tx,
                &token_hash(&token),
                "password_reset",
                Some(recipient.id.as_str()),
                now,
                now + RESET_VALID_MS,
            )
            .await?;
            tx.commit().await?;
            format!("{}/password-resets/{token}", state.public_url)
        }
    };
    match n.channel.as_str() {
        "sms" => {
            let (Some(gateway), Some(mobile)) = (&state.sms, &recipient.mobile) else {
                return Ok(Delivery::NotNeeded);
            };
            gateway
                .send(mobile, &sms_text(&practice.name, &link))
                .await?;
        }
        _ => {
            let email = render(kind, &practice.name, &link)?;
            state
                .mailer
                .send(&state.config.mail.from, &recipient.email, &email)
                .await?;
        }
    }
    Ok(Delivery::Sent)
}
