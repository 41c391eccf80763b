//! Notifications leave here: email through lettre (SMTP, or `.eml` files in the outbox),
//! text messages through an optional HTTP gateway. What they say comes from
//! `templates/email/<name>/`; none of it is message content.

pub mod worker;

use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::Context;
use askama::Template;
use lettre::message::{Mailbox, MultiPart};
use lettre::transport::smtp::authentication::Credentials;
use lettre::{AsyncFileTransport, AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};

use crate::config::{MailConfig, MailTransport, SmsConfig, SmtpTls};

/// The kinds of email, each with a template directory.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    NewMessage,
    Invitation,
    PasswordReset,
    /// The confirmation link of a new email address, sent to that address.
    EmailChange,
    /// A notice to the old address that the account's address is being changed.
    EmailChangeNotice,
}

impl Kind {
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::NewMessage => "new_message",
            Kind::Invitation => "invitation",
            Kind::PasswordReset => "password_reset",
            Kind::EmailChange => "email_change",
            Kind::EmailChangeNotice => "email_change_notice",
        }
    }

    pub const ALL: [Kind; 5] = [
        Kind::NewMessage,
        Kind::Invitation,
        Kind::PasswordReset,
        Kind::EmailChange,
        Kind::EmailChangeNotice,
    ];

    pub fn parse(s: &str) -> Option<Kind> {
        Kind::ALL.into_iter().find(|k| k.as_str() == s)
    }
}

macro_rules! email_templates {
    ($($subject:ident $subject_path:literal, $text:ident $text_path:literal, $html:ident $html_path:literal;)*) => {$(
        #[derive(Template)]
        #[template(path = $subject_path)]
        struct $subject;

        #[derive(Template)]
        #[template(path = $text_path)]
        struct $text<'a> {
            practice: &'a str,
            link: &'a str,
        }

        #[derive(Template)]
        #[template(path = $html_path)]
        struct $html<'a> {
            practice: &'a str,
            link: &'a str,
        }
    )*};
}

email_templates! {
    NewMessageSubject "email/new_message/subject.txt",
        NewMessageText "email/new_message/body.txt",
        NewMessageHtml "email/new_message/body.html";
    InvitationSubject "email/invitation/subject.txt",
        InvitationText "email/invitation/body.txt",
        InvitationHtml "email/invitation/body.html";
    ResetSubject "email/password_reset/subject.txt",
        ResetText "email/password_reset/body.txt",
        ResetHtml "email/password_reset/body.html";
    EmailChangeSubject "email/email_change/subject.txt",
        EmailChangeText "email/email_change/body.txt",
        EmailChangeHtml "email/email_change/body.html";
    NoticeSubject "email/email_change_notice/subject.txt",
        NoticeText "email/email_change_notice/body.txt",
        NoticeHtml "email/email_change_notice/body.html";
}

/// An email's subject, plain text and HTML.
pub struct Rendered {
    pub subject: String,
    pub text: String,
    pub html: String,
}

pub fn render(kind: Kind, practice: &str, link: &str) -> anyhow::Result<Rendered> {
    let r = match kind {
        Kind::NewMessage => Rendered {
            subject: NewMessageSubject.render()?,
            text: NewMessageText { practice, link }.render()?,
            html: NewMessageHtml { practice, link }.render()?,
        },
        Kind::Invitation => Rendered {
            subject: InvitationSubject.render()?,
            text: InvitationText { practice, link }.render()?,
            html: InvitationHtml { practice, link }.render()?,
        },
        Kind::PasswordReset => Rendered {
            subject: ResetSubject.render()?,
            text: ResetText { practice, link }.render()?,
            html: ResetHtml { practice, link }.render()?,
        },
        Kind::EmailChange => Rendered {
            subject: EmailChangeSubject.render()?,
            text: EmailChangeText { practice, link }.render()?,
            html: EmailChangeHtml { practice, link }.render()?,
        },
        Kind::EmailChangeNotice => Rendered {
            subject: NoticeSubject.render()?,
            text: NoticeText { practice, link }.render()?,
            html: NoticeHtml { practice, link }.render()?,
        },
    };
    Ok(Rendered {
        subject: r.subject.trim().to_string(),
        ..r
    })
}

/// The text of an SMS: the same few words as the email, and the link.
pub fn sms_text(practice: &str, link: &str) -> String {
    format!("A new secure message from {practice} is waiting for you: {link}")
}

#[derive(Clone)]
pub enum Mailer {
    File(AsyncFileTransport<Tokio1Executor>),
    Smtp(AsyncSmtpTransport<Tokio1Executor>),
    /// Kept in memory, for unit-level tests (the integration tests use a real SMTP sink).
    Memory(Outbox),
}

/// An email as the in-memory transport keeps it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SentEmail {
    pub from: String,
    pub to: String,
    pub subject: String,
    pub text: String,
    pub html: String,
}

/// What an in-memory [`Mailer`] sent, in order.
#[derive(Clone, Default)]
pub struct Outbox(Arc<Mutex<Vec<SentEmail>>>);

impl Outbox {
    pub fn sent(&self) -> Vec<SentEmail> {
        self.0.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }
}

impl Mailer {
    pub fn from_config(config: &MailConfig, data_dir: &Path) -> anyhow::Result<Mailer> {
        Ok(match config.transport {
            MailTransport::File => {
                let dir = data_dir.join("outbox");
                std::fs::create_dir_all(&dir)
                    .with_context(|| format!("cannot create the outbox {}", dir.display()))?;
                Mailer::File(AsyncFileTransport::new(dir))
            }
            MailTransport::Smtp => {
                let builder = match config.tls {
                    SmtpTls::None => {
                        AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(&config.host)
                    }
                    SmtpTls::Starttls => {
                        AsyncSmtpTransport::<Tokio1Executor>::starttls_relay(&config.host)
                            .context("mail.host cannot be used for STARTTLS")?
                    }
                    SmtpTls::Tls => AsyncSmtpTransport::<Tokio1Executor>::relay(&config.host)
                        .context("mail.host cannot be used for TLS")?,
                };
                let mut builder = builder
                    .port(config.port)
                    .timeout(Some(Duration::from_secs(20)));
                if !config.user.is_empty() {
                    builder = builder.credentials(Credentials::new(
                        config.user.clone(),
                        config.password.clone(),
                    ));
                }
                Mailer::Smtp(builder.build())
            }
        })
    }

    /// A mailer that keeps what it sends in the returned outbox.
    pub fn in_memory() -> (Mailer, Outbox) {
        let outbox = Outbox::default();
        (Mailer::Memory(outbox.clone()), outbox)
    }

    /// Sends one email to one recipient. `id` names it for good: sent again (after a
    /// crash between the mail server's acceptance and its record), it carries the same
    /// Message-ID, by which mail systems know it as the one they have.
    pub async fn send(
        &self,
        from: &str,
        to: &str,
        id: &str,
        email: &Rendered,
    ) -> anyhow::Result<()> {
        let sender = from.parse::<Mailbox>().context("mail.from")?;
        let message_id = format!("<{id}@{}>", sender.email.domain());
        let message = Message::builder()
            .from(sender)
            .message_id(Some(message_id))
            .to(Mailbox::new(
                None,
                to.parse().context("the recipient's address")?,
            ))
            .subject(email.subject.clone())
            .multipart(MultiPart::alternative_plain_html(
                email.text.clone(),
                email.html.clone(),
            ))
            .context("building the email")?;
        match self {
            Mailer::File(t) => {
                t.send(message)
                    .await
                    .context("writing the email to the outbox")?;
            }
            Mailer::Smtp(t) => {
                t.send(message).await.context("sending the email by SMTP")?;
            }
            Mailer::Memory(outbox) => {
                outbox
                    .0
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .push(SentEmail {
                        from: from.to_string(),
                        to: to.to_string(),
                        subject: email.subject.clone(),
                        text: email.text.clone(),
                        html: email.html.clone(),
                    });
            }
        }
        Ok(())
    }
}

/// The optional SMS gateway.
#[derive(Clone)]
pub struct SmsGateway {
    http: reqwest::Client,
    config: SmsConfig,
}

impl SmsGateway {
    pub fn from_config(config: &SmsConfig) -> anyhow::Result<Option<SmsGateway>> {
        if config.url.is_empty() {
            return Ok(None);
        }
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(20))
            .build()
            .context("building the SMS gateway's HTTP client")?;
        Ok(Some(SmsGateway {
            http,
            config: config.clone(),
        }))
    }

    pub async fn send(&self, to: &str, text: &str) -> anyhow::Result<()> {
        let mut request = self
            .http
            .post(&self.config.url)
            .json(&serde_json::json!({"to": to, "from": self.config.from, "text": text}));
        if !self.config.authorization.is_empty() {
            request = request.header("authorization", &self.config.authorization);
        }
        let response = request.send().await.context("calling the SMS gateway")?;
        if !response.status().is_success() {
            anyhow::bail!("the SMS gateway answered {}", response.status());
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn the_in_memory_mailer_keeps_a_checked_email() {
        let (mailer, outbox) = Mailer::in_memory();
        let email = render(Kind::NewMessage, "Oak", "https://mail.example/p/oak/").unwrap();
        mailer
            .send(
                "Confide <no-reply@mail.example>",
                "casey@oak.example",
                "n1",
                &email,
            )
            .await
            .unwrap();
        let sent = outbox.sent();
        assert_eq!(sent.len(), 1);
        assert_eq!(sent[0].to, "casey@oak.example");
        assert_eq!(sent[0].subject, email.subject);
        // Addresses are checked as for a real transport.
        assert!(mailer
            .send("not an address", "casey@oak.example", "n2", &email)
            .await
            .is_err());
        assert!(mailer
            .send("no-reply@mail.example", "casey@", "n3", &email)
            .await
            .is_err());
        assert_eq!(outbox.sent().len(), 1);
    }

    #[test]
    fn every_kind_renders_without_content() {
        for kind in Kind::ALL {
            let r = render(kind, "Oak & Co", "https://mail.example/p/oak/").unwrap();
            assert!(!r.subject.is_empty());
            assert!(r.text.contains("https://mail.example/p/oak/"));
            assert!(r.text.contains("Oak & Co"), "plain text is not escaped");
            assert!(
                r.html.contains("Oak &#38; Co") || r.html.contains("Oak &amp; Co"),
                "{}",
                r.html
            );
        }
    }
}
