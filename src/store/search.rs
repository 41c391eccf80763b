//! What the search index is built from, and the re-check of its results.

use sqlx::FromRow;

use super::events::{InFlight, IN_FLIGHT_COLUMN};
use super::keys::{Keyring, PracticeKey, SealedRow};
use super::{placeholders, Conn};
use crate::crypto::Field;
use crate::domain::mailbox::REMOVED;

/// An event the indexer follows.
#[derive(Debug, Clone, FromRow)]
pub struct EventRow {
    pub seq: i64,
    pub kind: String,
    pub thread_id: Option<String>,
    pub message_id: Option<String>,
}

/// The events after `seq`, in order, at most `limit`, and (on PostgreSQL, when there are
/// any) the transactions running as they were read.
pub async fn events_after(
    conn: &mut Conn,
    seq: i64,
    limit: i64,
) -> Result<(Vec<EventRow>, Option<InFlight>), sqlx::Error> {
    if conn.backend_name() != "PostgreSQL" {
        let rows = sqlx::query_as(
            "SELECT seq, kind, thread_id, message_id FROM events WHERE seq > $1 ORDER BY seq LIMIT $2",
        )
        .bind(seq)
        .bind(limit)
        .fetch_all(conn)
        .await?;
        return Ok((rows, None));
    }
    type Row = (i64, String, Option<String>, Option<String>, i64);
    let rows: Vec<Row> = sqlx::query_as(&format!(
        "SELECT seq, kind, thread_id, message_id, {IN_FLIGHT_COLUMN} FROM events \
         WHERE seq > $1 ORDER BY seq LIMIT $2"
    ))
    .bind(seq)
    .bind(limit)
    .fetch_all(conn)
    .await?;
    let in_flight = rows.first().map(|r| InFlight { oldest: r.4 });
    let rows = rows
        .into_iter()
        .map(|(seq, kind, thread_id, message_id, _)| EventRow {
            seq,
            kind,
            thread_id,
            message_id,
        })
        .collect();
    Ok((rows, in_flight))
}

/// A message with what its index document needs.
#[derive(Debug, Clone, FromRow)]
pub struct MessageDoc {
    pub id: String,
    pub thread_id: String,
    pub seq: i64,
    pub practice_id: String,
    pub sender_id: String,
    pub body: String,
    pub created_at: i64,
    pub subject: String,
    pub sender_name: String,
    pub sender_role: String,
}

impl SealedRow for MessageDoc {
    fn practice_id(&self) -> &str {
        &self.practice_id
    }

    fn open_with(&mut self, key: &PracticeKey) -> Result<(), sqlx::Error> {
        key.open_in_place(Field::MessageBody, &self.id, &mut self.body)?;
        key.open_in_place(Field::ThreadSubject, &self.thread_id, &mut self.subject)
    }
}

const DOC_SELECT: &str =
    "SELECT m.id, m.thread_id, m.seq, m.practice_id, m.sender_id, m.body, m.created_at, \
     t.subject, pe.name AS sender_name, pe.role AS sender_role FROM messages m \
     JOIN threads t ON t.id = m.thread_id JOIN people pe ON pe.id = m.sender_id";

pub async fn message_docs(
    conn: &mut Conn,
    keys: &Keyring,
    ids: &[String],
) -> Result<Vec<MessageDoc>, sqlx::Error> {
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    let sql = format!(
        "{DOC_SELECT} WHERE m.id IN ({})",
        placeholders(1, ids.len())
    );
    let mut q = sqlx::query_as(&sql);
    for id in ids {
        q = q.bind(id);
    }
    let mut rows = q.fetch_all(&mut *conn).await?;
    keys.open_rows(conn, &mut rows).await?;
    Ok(rows)
}

/// A page of every message after (`thread_id`, `seq`), in that order (for a full rebuild:
/// a page then spans few threads, whose participants are read once).
pub async fn message_docs_after(
    conn: &mut Conn,
    keys: &Keyring,
    thread_id: &str,
    seq: i64,
    limit: i64,
) -> Result<Vec<MessageDoc>, sqlx::Error> {
    let mut rows = sqlx::query_as(&format!(
        "{DOC_SELECT} WHERE m.thread_id >= $1 AND (m.thread_id > $1 OR m.seq > $2) \
         ORDER BY m.thread_id, m.seq LIMIT $3"
    ))
    .bind(thread_id)
    .bind(seq)
    .bind(limit)
    .fetch_all(&mut *conn)
    .await?;
    keys.open_rows(conn, &mut rows).await?;
    Ok(rows)
}

/// (thread id, person id, name, role) of the participants of `thread_ids`.
pub async fn participants(
    conn: &mut Conn,
    thread_ids: &[String],
) -> Result<Vec<(String, String, String, String)>, sqlx::Error> {
    if thread_ids.is_empty() {
        return Ok(Vec::new());
    }
    let sql = format!(
        "SELECT p.thread_id, p.person_id, pe.name, pe.role FROM thread_participants p \
         JOIN people pe ON pe.id = p.person_id WHERE p.thread_id IN ({})",
        placeholders(1, thread_ids.len())
    );
    let mut q = sqlx::query_as(&sql);
    for id in thread_ids {
        q = q.bind(id);
    }
    q.fetch_all(conn).await
}

/// The ids of a thread's messages (to index them again when its readers change).
pub async fn message_ids_of_thread(
    conn: &mut Conn,
    thread_id: &str,
) -> Result<Vec<String>, sqlx::Error> {
    sqlx::query_scalar("SELECT id FROM messages WHERE thread_id = $1 ORDER BY seq")
        .bind(thread_id)
        .fetch_all(conn)
        .await
}

/// (message id, file name) of the attachments of `message_ids`.
/// (Files limited to some participants are left out: the index has no per-file readers.)
pub async fn attachment_names(
    conn: &mut Conn,
    keys: &Keyring,
    message_ids: &[String],
) -> Result<Vec<(String, String)>, sqlx::Error> {
    if message_ids.is_empty() {
        return Ok(Vec::new());
    }
    let sql = format!(
        "SELECT a.message_id, a.id, a.practice_id, a.name FROM attachments a WHERE a.message_id IN ({}) \
         AND NOT EXISTS (SELECT 1 FROM attachment_audience x WHERE x.attachment_id = a.id)",
        placeholders(1, message_ids.len())
    );
    let mut q = sqlx::query_as(&sql);
    for id in message_ids {
        q = q.bind(id);
    }
    let mut rows: Vec<NamedFile> = q.fetch_all(&mut *conn).await?;
    keys.open_rows(conn, &mut rows).await?;
    Ok(rows.into_iter().map(|f| (f.message_id, f.name)).collect())
}

#[derive(Clone, FromRow)]
struct NamedFile {
    message_id: String,
    id: String,
    practice_id: String,
    name: String,
}

impl SealedRow for NamedFile {
    fn practice_id(&self) -> &str {
        &self.practice_id
    }

    fn open_with(&mut self, key: &PracticeKey) -> Result<(), sqlx::Error> {
        key.open_in_place(Field::AttachmentName, &self.id, &mut self.name)
    }
}

/// A search hit as the database confirms it: the message exists, in the searcher's
/// practice, in a thread still in the searcher's mailbox.
#[derive(Debug, Clone)]
pub struct VisibleHit {
    pub id: String,
    pub thread_id: String,
    pub sender_id: String,
    pub body: String,
    pub created_at: i64,
    pub subject: String,
    pub sender_name: String,
    pub sender_role: String,
    pub folder: String,
    pub unread: i64,
    pub has_sent: i64,
    pub via_group: Option<String>,
}

#[derive(FromRow)]
struct HitMessage {
    id: String,
    thread_id: String,
    sender_id: String,
    body: String,
    created_at: i64,
    subject: String,
    sender_name: String,
    sender_role: String,
    /// The searcher's place in the thread; none when they are not in it.
    folder: Option<String>,
    unread: Option<i64>,
    has_sent: Option<i64>,
    via_group: Option<String>,
}

/// One round trip: the messages by their keys, and the searcher's place in each one's
/// thread as lookups of the participants' key (as a join, both SQLite and PostgreSQL
/// preferred to walk every thread the searcher takes part in: 100,000 for a busy provider).
pub async fn visible(
    conn: &mut Conn,
    keys: &Keyring,
    practice_id: &str,
    person_id: &str,
    message_ids: &[String],
) -> Result<Vec<VisibleHit>, sqlx::Error> {
    if message_ids.is_empty() {
        return Ok(Vec::new());
    }
    let place = |column: &str| {
        format!(
            "(SELECT tp.{column} FROM thread_participants tp \
             WHERE tp.thread_id = m.thread_id AND tp.person_id = $2) AS {column}"
        )
    };
    let sql = format!(
        "SELECT m.id, m.thread_id, m.sender_id, m.body, m.created_at, t.subject, \
         pe.name AS sender_name, pe.role AS sender_role, {}, {}, {}, {} \
         FROM messages m JOIN threads t ON t.id = m.thread_id \
         JOIN people pe ON pe.id = m.sender_id \
         WHERE m.id IN ({}) AND m.practice_id = $1",
        place("folder"),
        place("unread"),
        place("has_sent"),
        place("via_group"),
        placeholders(3, message_ids.len())
    );
    let mut q = sqlx::query_as(&sql).bind(practice_id).bind(person_id);
    for id in message_ids {
        q = q.bind(id);
    }
    let messages: Vec<HitMessage> = q.fetch_all(&mut *conn).await?;
    if messages.is_empty() {
        return Ok(Vec::new());
    }
    let key = keys.practice(conn, practice_id).await?;
    messages
        .into_iter()
        .filter_map(|mut m| {
            let folder = m.folder.take().filter(|f| f != REMOVED)?;
            let opened = key
                .open_in_place(Field::MessageBody, &m.id, &mut m.body)
                .and_then(|()| {
                    key.open_in_place(Field::ThreadSubject, &m.thread_id, &mut m.subject)
                });
            if let Err(e) = opened {
                return Some(Err(e));
            }
            Some(Ok(VisibleHit {
                id: m.id,
                thread_id: m.thread_id,
                sender_id: m.sender_id,
                body: m.body,
                created_at: m.created_at,
                subject: m.subject,
                sender_name: m.sender_name,
                sender_role: m.sender_role,
                folder,
                unread: m.unread.unwrap_or(0),
                has_sent: m.has_sent.unwrap_or(0),
                via_group: m.via_group,
            }))
        })
        .collect()
}
