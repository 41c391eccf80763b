//! Notifications without content, invitations and password resets, over real SMTP
//! (DESIGN.md §2 Notifications, Invitations). Every test runs on SQLite and, when
//! CONFIDE_TEST_POSTGRES_URL is set, on PostgreSQL.

#[path = "../common/helpers.rs"]
mod helpers;
#[path = "../common/mail.rs"]
mod mail;

mod crash;
mod email_changes;
mod invitations;
mod messages;

pub use mail::{use_sink, with_sink};

/// The token at the end of a link from an email.
pub fn token_of(link: &str) -> String {
    link.rsplit('/').next().unwrap().to_string()
}
