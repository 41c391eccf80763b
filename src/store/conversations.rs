//! The conversation tables: a thread's announcement and completion, reactions, read
//! receipts, internal notes, practice settings and reply-only clients.

use sqlx::FromRow;

use super::keys::{Keyring, PracticeKey, SealedRow};
use super::Conn;
use crate::crypto::Field;

/// Sets (or with `None` clears) a thread's announcement, sealed with `key`.
pub async fn set_announcement(
    conn: &mut Conn,
    key: &PracticeKey,
    thread_id: &str,
    text: Option<&str>,
) -> Result<(), sqlx::Error> {
    sqlx::query("UPDATE threads SET announcement = $1 WHERE id = $2")
        .bind(key.seal_opt(Field::ThreadAnnouncement, thread_id, text))
        .bind(thread_id)
        .execute(conn)
        .await?;
    Ok(())
}

/// Marks a thread completed by `by` at `at`, or with `None` reopens it.
pub async fn set_completed(
    conn: &mut Conn,
    thread_id: &str,
    completed: Option<(i64, &str)>,
) -> Result<(), sqlx::Error> {
    sqlx::query("UPDATE threads SET completed_at = $1, completed_by = $2 WHERE id = $3")
        .bind(completed.map(|(at, _)| at))
        .bind(completed.map(|(_, by)| by))
        .bind(thread_id)
        .execute(conn)
        .await?;
    Ok(())
}

/// Moves a thread to every participant's Archive, except where it sits in the Trash or
/// was emptied from it.
pub async fn archive_for_everyone(conn: &mut Conn, thread_id: &str) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE thread_participants SET folder = 'archive' \
         WHERE thread_id = $1 AND folder NOT IN ('archive', 'trash', 'removed')",
    )
    .bind(thread_id)
    .execute(conn)
    .await?;
    Ok(())
}

/// Adds a reaction; false if the person had already given it.
pub async fn add_reaction(
    conn: &mut Conn,
    thread_id: &str,
    message_id: &str,
    person_id: &str,
    emoji: &str,
    at: i64,
) -> Result<bool, sqlx::Error> {
    let done = sqlx::query(
        "INSERT INTO reactions (message_id, thread_id, person_id, emoji, created_at) \
         VALUES ($1, $2, $3, $4, $5) ON CONFLICT (message_id, person_id, emoji) DO NOTHING",
    )
    .bind(message_id)
    .bind(thread_id)
    .bind(person_id)
    .bind(emoji)
    .bind(at)
    .execute(conn)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// Takes a reaction back; false if there was none.
pub async fn remove_reaction(
    conn: &mut Conn,
    message_id: &str,
    person_id: &str,
    emoji: &str,
) -> Result<bool, sqlx::Error> {
    let done = sqlx::query(
        "DELETE FROM reactions WHERE message_id = $1 AND person_id = $2 AND emoji = $3",
    )
    .bind(message_id)
    .bind(person_id)
    .bind(emoji)
    .execute(conn)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// A thread's reactions as (message id, person id, emoji), oldest first.
pub async fn reactions(
    conn: &mut Conn,
    thread_id: &str,
) -> Result<Vec<(String, String, String)>, sqlx::Error> {
    sqlx::query_as(
        "SELECT message_id, person_id, emoji FROM reactions WHERE thread_id = $1 \
         ORDER BY created_at, person_id",
    )
    .bind(thread_id)
    .fetch_all(conn)
    .await
}

/// Records that a person has read a thread through message `through_seq`, unless an
/// earlier read already covers it.
pub async fn record_read(
    conn: &mut Conn,
    thread_id: &str,
    person_id: &str,
    through_seq: i64,
    at: i64,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO thread_reads (thread_id, person_id, through_seq, read_at) \
         SELECT $1, $2, $3, $4 WHERE NOT EXISTS (SELECT 1 FROM thread_reads \
         WHERE thread_id = $1 AND person_id = $2 AND through_seq >= $3)",
    )
    .bind(thread_id)
    .bind(person_id)
    .bind(through_seq)
    .bind(at)
    .execute(conn)
    .await?;
    Ok(())
}

/// A thread's reads as (person id, through seq, read at).
pub async fn reads(
    conn: &mut Conn,
    thread_id: &str,
) -> Result<Vec<(String, i64, i64)>, sqlx::Error> {
    sqlx::query_as(
        "SELECT person_id, through_seq, read_at FROM thread_reads WHERE thread_id = $1 \
         ORDER BY read_at",
    )
    .bind(thread_id)
    .fetch_all(conn)
    .await
}

/// An internal note with its author's name and role.
#[derive(Debug, Clone, FromRow)]
pub struct NoteRow {
    pub id: String,
    pub thread_id: String,
    pub practice_id: String,
    pub author_id: String,
    pub author_name: String,
    pub author_role: String,
    pub body: String,
    pub body_html: String,
    pub created_at: i64,
}

impl SealedRow for NoteRow {
    fn practice_id(&self) -> &str {
        &self.practice_id
    }

    fn open_with(&mut self, key: &PracticeKey) -> Result<(), sqlx::Error> {
        key.open_in_place(Field::NoteBody, &self.id, &mut self.body)?;
        key.open_in_place(Field::NoteHtml, &self.id, &mut self.body_html)
    }
}

pub struct NewNote<'a> {
    pub id: &'a str,
    pub thread_id: &'a str,
    pub practice_id: &'a str,
    pub author_id: &'a str,
    pub body: &'a str,
    pub body_html: &'a str,
    pub created_at: i64,
}

pub async fn insert_note(
    conn: &mut Conn,
    key: &PracticeKey,
    n: &NewNote<'_>,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO thread_notes (id, thread_id, practice_id, author_id, body, body_html, \
         created_at) VALUES ($1, $2, $3, $4, $5, $6, $7)",
    )
    .bind(n.id)
    .bind(n.thread_id)
    .bind(n.practice_id)
    .bind(n.author_id)
    .bind(key.seal(Field::NoteBody, n.id, n.body))
    .bind(key.seal(Field::NoteHtml, n.id, n.body_html))
    .bind(n.created_at)
    .execute(conn)
    .await?;
    Ok(())
}

/// A thread's internal notes, oldest first.
pub async fn notes(
    conn: &mut Conn,
    keys: &Keyring,
    thread_id: &str,
) -> Result<Vec<NoteRow>, sqlx::Error> {
    let mut rows = sqlx::query_as(
        "SELECT n.id, n.thread_id, n.practice_id, n.author_id, pe.name AS author_name, pe.role AS author_role, \
         n.body, n.body_html, n.created_at FROM thread_notes n JOIN people pe ON pe.id = n.author_id \
         WHERE n.thread_id = $1 ORDER BY n.created_at, n.id",
    )
    .bind(thread_id)
    .fetch_all(&mut *conn)
    .await?;
    keys.open_rows(conn, &mut rows).await?;
    Ok(rows)
}

/// A practice's settings as stored.
#[derive(Debug, Clone, FromRow)]
pub struct SettingsRow {
    pub client_message_max_chars: Option<i64>,
    pub new_clients_can_start_threads: i64,
    pub conversation_max_participants: i64,
    pub retention_years: Option<i64>,
}

pub async fn settings(
    conn: &mut Conn,
    practice_id: &str,
) -> Result<Option<SettingsRow>, sqlx::Error> {
    sqlx::query_as(
        "SELECT client_message_max_chars, new_clients_can_start_threads, \
         conversation_max_participants, retention_years FROM practice_settings \
         WHERE practice_id = $1",
    )
    .bind(practice_id)
    .fetch_optional(conn)
    .await
}

pub async fn save_settings(
    conn: &mut Conn,
    practice_id: &str,
    s: &SettingsRow,
    at: i64,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO practice_settings (practice_id, client_message_max_chars, \
         new_clients_can_start_threads, conversation_max_participants, retention_years, \
         updated_at) \
         VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (practice_id) DO UPDATE SET \
         client_message_max_chars = excluded.client_message_max_chars, \
         new_clients_can_start_threads = excluded.new_clients_can_start_threads, \
         conversation_max_participants = excluded.conversation_max_participants, \
         retention_years = excluded.retention_years, \
         updated_at = excluded.updated_at",
    )
    .bind(practice_id)
    .bind(s.client_message_max_chars)
    .bind(s.new_clients_can_start_threads)
    .bind(s.conversation_max_participants)
    .bind(s.retention_years)
    .bind(at)
    .execute(conn)
    .await?;
    Ok(())
}

/// Whether a client may only reply.
pub async fn is_reply_only(conn: &mut Conn, person_id: &str) -> Result<bool, sqlx::Error> {
    let found: Option<i64> =
        sqlx::query_scalar("SELECT 1 FROM reply_only_clients WHERE person_id = $1")
            .bind(person_id)
            .fetch_optional(conn)
            .await?;
    Ok(found.is_some())
}

/// Makes a client reply-only (`true`) or lets them start threads (`false`).
pub async fn set_reply_only(
    conn: &mut Conn,
    practice_id: &str,
    person_id: &str,
    reply_only: bool,
    at: i64,
) -> Result<(), sqlx::Error> {
    if reply_only {
        sqlx::query(
            "INSERT INTO reply_only_clients (person_id, practice_id, created_at) \
             VALUES ($1, $2, $3) ON CONFLICT (person_id) DO NOTHING",
        )
        .bind(person_id)
        .bind(practice_id)
        .bind(at)
        .execute(conn)
        .await?;
    } else {
        sqlx::query("DELETE FROM reply_only_clients WHERE person_id = $1")
            .bind(person_id)
            .execute(conn)
            .await?;
    }
    Ok(())
}

/// Limits an attachment to some people of its thread.
pub async fn limit_attachment(
    conn: &mut Conn,
    attachment_id: &str,
    thread_id: &str,
    people: &[String],
) -> Result<(), sqlx::Error> {
    for person in people {
        sqlx::query(
            "INSERT INTO attachment_audience (attachment_id, thread_id, person_id) \
             VALUES ($1, $2, $3) ON CONFLICT (attachment_id, person_id) DO NOTHING",
        )
        .bind(attachment_id)
        .bind(thread_id)
        .bind(person)
        .execute(&mut *conn)
        .await?;
    }
    Ok(())
}

/// The people one attachment is limited to (none: everyone in its thread).
pub async fn audience_of(conn: &mut Conn, attachment_id: &str) -> Result<Vec<String>, sqlx::Error> {
    sqlx::query_scalar("SELECT person_id FROM attachment_audience WHERE attachment_id = $1")
        .bind(attachment_id)
        .fetch_all(conn)
        .await
}

/// The limited attachments of a thread, as (attachment id, person id) rows.
pub async fn audiences(
    conn: &mut Conn,
    thread_id: &str,
) -> Result<Vec<(String, String)>, sqlx::Error> {
    sqlx::query_as("SELECT attachment_id, person_id FROM attachment_audience WHERE thread_id = $1")
        .bind(thread_id)
        .fetch_all(conn)
        .await
}

/// A staff member's autoresponder as stored: its text and its periods as JSON.
pub async fn autoresponder(
    conn: &mut Conn,
    person_id: &str,
) -> Result<Option<(String, String)>, sqlx::Error> {
    sqlx::query_as("SELECT text, periods FROM autoresponders WHERE person_id = $1")
        .bind(person_id)
        .fetch_optional(conn)
        .await
}

/// Sets (`Some((text, periods JSON))`) or removes a staff member's autoresponder.
pub async fn set_autoresponder(
    conn: &mut Conn,
    practice_id: &str,
    person_id: &str,
    value: Option<(&str, &str)>,
    at: i64,
) -> Result<(), sqlx::Error> {
    match value {
        Some((text, periods)) => {
            sqlx::query(
                "INSERT INTO autoresponders (person_id, practice_id, text, periods, updated_at) \
                 VALUES ($1, $2, $3, $4, $5) ON CONFLICT (person_id) DO UPDATE SET \
                 text = excluded.text, periods = excluded.periods, updated_at = excluded.updated_at",
            )
            .bind(person_id)
            .bind(practice_id)
            .bind(text)
            .bind(periods)
            .bind(at)
            .execute(conn)
            .await?;
        }
        None => {
            sqlx::query("DELETE FROM autoresponders WHERE person_id = $1")
                .bind(person_id)
                .execute(conn)
                .await?;
        }
    }
    Ok(())
}

/// The autoresponders of `people` as (person id, text, periods JSON).
pub async fn autoresponders_of(
    conn: &mut Conn,
    people: &[String],
) -> Result<Vec<(String, String, String)>, sqlx::Error> {
    if people.is_empty() {
        return Ok(Vec::new());
    }
    let sql = format!(
        "SELECT a.person_id, a.text, a.periods FROM autoresponders a \
         JOIN people p ON p.id = a.person_id \
         WHERE a.person_id IN ({}) AND p.status IN ('active', 'inactive')",
        super::placeholders(1, people.len())
    );
    let mut q = sqlx::query_as(&sql);
    for p in people {
        q = q.bind(p);
    }
    q.fetch_all(conn).await
}

/// When `responder` last answered `client` automatically in a thread.
pub async fn last_auto_reply(
    conn: &mut Conn,
    thread_id: &str,
    responder: &str,
    client: &str,
) -> Result<Option<i64>, sqlx::Error> {
    sqlx::query_scalar(
        "SELECT sent_at FROM auto_replies WHERE thread_id = $1 AND responder_id = $2 \
         AND client_id = $3",
    )
    .bind(thread_id)
    .bind(responder)
    .bind(client)
    .fetch_optional(conn)
    .await
}

pub async fn record_auto_reply(
    conn: &mut Conn,
    thread_id: &str,
    responder: &str,
    client: &str,
    at: i64,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO auto_replies (thread_id, responder_id, client_id, sent_at) \
         VALUES ($1, $2, $3, $4) ON CONFLICT (thread_id, responder_id, client_id) \
         DO UPDATE SET sent_at = excluded.sent_at",
    )
    .bind(thread_id)
    .bind(responder)
    .bind(client)
    .bind(at)
    .execute(conn)
    .await?;
    Ok(())
}
