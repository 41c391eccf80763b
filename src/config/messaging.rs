//! The sections on what leaves the server: `[mail]`, `[notifications]` and `[sms]`.

use serde::Deserialize;

/// How email leaves: `.eml` files under `<data_dir>/outbox/` (the default, no mail server
/// needed) or SMTP.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MailTransport {
    File,
    Smtp,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SmtpTls {
    None,
    Starttls,
    Tls,
}

#[derive(Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct MailConfig {
    pub transport: MailTransport,
    /// The sender of every email.
    pub from: String,
    pub host: String,
    pub port: u16,
    pub tls: SmtpTls,
    /// Empty: no authentication.
    pub user: String,
    pub password: String,
}

impl std::fmt::Debug for MailConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MailConfig")
            .field("transport", &self.transport)
            .field("from", &self.from)
            .field("host", &self.host)
            .field("port", &self.port)
            .field("tls", &self.tls)
            .field("user", &self.user)
            .field(
                "password",
                &if self.password.is_empty() {
                    ""
                } else {
                    "(set)"
                },
            )
            .finish()
    }
}

impl Default for MailConfig {
    fn default() -> Self {
        Self {
            transport: MailTransport::File,
            from: "Confide <no-reply@confide.invalid>".into(),
            host: "localhost".into(),
            port: 587,
            tls: SmtpTls::Starttls,
            user: String::new(),
            password: String::new(),
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct NotificationsConfig {
    /// At most one new-message notification per person per this many minutes while they
    /// have unread messages.
    pub coalesce_minutes: i64,
    /// A notification is sent this many seconds after its message at the earliest.
    pub delay_seconds: i64,
    /// Attempts before a notification is given up (with back-off between them).
    pub max_attempts: i64,
    /// How often the worker looks for due notifications, in milliseconds.
    pub poll_interval_ms: u64,
}

impl Default for NotificationsConfig {
    fn default() -> Self {
        Self {
            coalesce_minutes: 10,
            delay_seconds: 0,
            max_attempts: 10,
            poll_interval_ms: 1000,
        }
    }
}

/// An optional HTTP gateway for text messages: it receives a JSON POST
/// `{"to", "from", "text"}` with the configured Authorization header.
#[derive(Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SmsConfig {
    /// Empty: no text messages are sent.
    pub url: String,
    pub authorization: String,
    pub from: String,
}

impl std::fmt::Debug for SmsConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SmsConfig")
            .field("url", &if self.url.is_empty() { "" } else { "(set)" })
            .field(
                "authorization",
                &if self.authorization.is_empty() {
                    ""
                } else {
                    "(set)"
                },
            )
            .field("from", &self.from)
            .finish()
    }
}
