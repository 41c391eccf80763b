//! Throttling of password guesses, per account (practice + email) and per client address
//! (an IPv4 address or an IPv6 /64). Every attempt is counted before the password is
//! checked; a successful one is taken back.

use std::net::IpAddr;

use crate::auth::token_hash;
use crate::error::{AppError, AppResult};
use crate::store::sign_in_attempts;

use super::{AppState, RequestMeta};

/// The windows an attempt was counted in, to take it back if it succeeds.
pub struct Attempt {
    counted: Vec<(&'static str, String, i64)>,
}

/// The account key: never the address itself.
pub fn account_key(practice_slug: &str, email_norm: &str) -> String {
    token_hash(&format!("{practice_slug}\n{email_norm}"))
}

/// The key of a trusted device (one that signed in as the person before): its failures are
/// its own, apart from the account's.
pub fn device_key(device_token: &str) -> String {
    token_hash(&format!("device\n{device_token}"))
}

/// The key of a signed-in session re-entering its password (to change it, or the email).
pub fn session_key(session_id: &str) -> String {
    token_hash(&format!("session\n{session_id}"))
}

/// The address key: IPv6 clients get a whole /64, as one subscriber usually does.
pub fn address_key(ip: &str) -> String {
    match ip.parse::<IpAddr>() {
        Ok(IpAddr::V6(v6)) => {
            let s = v6.segments();
            format!("{:x}:{:x}:{:x}:{:x}::/64", s[0], s[1], s[2], s[3])
        }
        _ => ip.to_string(),
    }
}

/// Counts an attempt on `account_key` (and the caller's address); refuses it with 429
/// and Retry-After when a limit is passed.
pub async fn count_attempt(
    state: &AppState,
    meta: &RequestMeta,
    account_key: &str,
) -> AppResult<Result<Attempt, AppError>> {
    let auth = &state.config.auth;
    let now = state.now();
    let window = auth.failure_window_minutes * 60_000;
    let mut keys = vec![(
        "account",
        account_key.to_string(),
        auth.max_failures_per_account,
    )];
    if let Some(ip) = &meta.ip {
        keys.push(("address", address_key(ip), auth.max_failures_per_address));
    }
    let mut tx = state.store.begin().await?;
    let mut counted = Vec::new();
    let mut retry_after: Option<i64> = None;
    for (scope, key, limit) in keys {
        let (count, window_start) =
            sign_in_attempts::count_attempt(&mut tx, scope, &key, now, now - window).await?;
        if count > limit {
            let secs = ((window_start + window - now).max(1000) + 999) / 1000;
            retry_after = Some(retry_after.unwrap_or(0).max(secs));
        }
        counted.push((scope, key, window_start));
    }
    tx.commit().await?;
    Ok(match retry_after {
        Some(secs) => Err(AppError::too_many_attempts(secs as u64)),
        None => Ok(Attempt { counted }),
    })
}

/// The attempt succeeded: the account starts afresh and the address gets its attempt back.
pub async fn succeeded(conn: &mut crate::store::Conn, attempt: &Attempt) -> AppResult<()> {
    for (scope, key, window_start) in &attempt.counted {
        if *scope == "account" {
            sign_in_attempts::clear(conn, scope, key).await?;
        } else {
            sign_in_attempts::uncount(conn, scope, key, *window_start).await?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ipv6_clients_are_counted_per_64() {
        assert_eq!(address_key("2001:db8:1:2:aaaa::1"), "2001:db8:1:2::/64");
        assert_eq!(address_key("2001:db8:1:2:bbbb::9"), "2001:db8:1:2::/64");
        assert_eq!(address_key("203.0.113.7"), "203.0.113.7");
    }
}
