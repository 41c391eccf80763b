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

use confide::config::{MailTransport, SmtpTls};
use confide::Config;
use helpers::{Backend, TestApp};
use mail::SmtpSink;

/// Points the server's mail at the sink and makes the sender quick.
pub fn use_sink(config: &mut Config, port: u16) {
    config.mail.transport = MailTransport::Smtp;
    config.mail.host = "127.0.0.1".into();
    config.mail.port = port;
    config.mail.tls = SmtpTls::None;
    config.notifications.poll_interval_ms = 50;
}

/// A server whose mail goes to a fresh SMTP sink; `None` when aiosmtpd is missing.
pub async fn with_sink(
    backend: Backend,
    tweak: impl FnOnce(&mut Config),
) -> Option<(TestApp, SmtpSink)> {
    let sink = SmtpSink::start(mail::free_port())?;
    let port = sink.port;
    let app = TestApp::spawn_with(backend, |c| {
        use_sink(c, port);
        tweak(c);
    })
    .await;
    Some((app, sink))
}

/// The token at the end of a link from an email.
pub fn token_of(link: &str) -> String {
    link.rsplit('/').next().unwrap().to_string()
}
