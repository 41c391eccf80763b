//! Chart notes and their versions (append-only).

use sqlx::FromRow;

use super::keys::{Keyring, PracticeKey, SealedRow};
use super::Conn;
use crate::crypto::Field;

#[derive(Debug, Clone, FromRow)]
pub struct ChartNoteRow {
    pub id: String,
    pub practice_id: String,
    pub client_id: String,
    pub author_id: String,
    pub source_thread_id: Option<String>,
    pub version: i64,
    pub created_at: i64,
    pub updated_at: i64,
}

#[derive(Debug, Clone, FromRow)]
pub struct VersionRow {
    pub note_id: String,
    pub practice_id: String,
    pub version: i64,
    pub content: String,
    pub author_id: String,
    pub author_name: String,
    pub created_at: i64,
}

/// What a version's content is sealed to: its note and number.
fn version_row_id(note_id: &str, version: i64) -> String {
    format!("{note_id}/{version}")
}

impl SealedRow for VersionRow {
    fn practice_id(&self) -> &str {
        &self.practice_id
    }

    fn open_with(&mut self, key: &PracticeKey) -> Result<(), sqlx::Error> {
        let row = version_row_id(&self.note_id, self.version);
        key.open_in_place(Field::ChartNoteContent, &row, &mut self.content)
    }
}

const COLUMNS: &str =
    "id, practice_id, client_id, author_id, source_thread_id, version, created_at, updated_at";

pub async fn insert(conn: &mut Conn, note: &ChartNoteRow) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO chart_notes (id, practice_id, client_id, author_id, source_thread_id, version, created_at, updated_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
    )
    .bind(&note.id)
    .bind(&note.practice_id)
    .bind(&note.client_id)
    .bind(&note.author_id)
    .bind(&note.source_thread_id)
    .bind(note.version)
    .bind(note.created_at)
    .bind(note.updated_at)
    .execute(conn)
    .await?;
    Ok(())
}

/// Records a version of a note, its content sealed with `key`.
pub async fn insert_version(
    conn: &mut Conn,
    key: &PracticeKey,
    note_id: &str,
    version: i64,
    content: &str,
    author_id: &str,
    at: i64,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO chart_note_versions (note_id, version, content, author_id, created_at) VALUES ($1, $2, $3, $4, $5)",
    )
    .bind(note_id)
    .bind(version)
    .bind(key.seal(
        Field::ChartNoteContent,
        &version_row_id(note_id, version),
        content,
    ))
    .bind(author_id)
    .bind(at)
    .execute(conn)
    .await?;
    Ok(())
}

/// Takes the next version number of a note (a row lock on PostgreSQL, so concurrent
/// amendments queue); `None` if the note does not exist.
pub async fn next_version(
    conn: &mut Conn,
    practice_id: &str,
    id: &str,
    at: i64,
) -> Result<Option<i64>, sqlx::Error> {
    sqlx::query_scalar(
        "UPDATE chart_notes SET version = version + 1, updated_at = $1 WHERE practice_id = $2 AND id = $3 RETURNING version",
    )
    .bind(at)
    .bind(practice_id)
    .bind(id)
    .fetch_optional(conn)
    .await
}

pub async fn find(
    conn: &mut Conn,
    practice_id: &str,
    id: &str,
) -> Result<Option<ChartNoteRow>, sqlx::Error> {
    sqlx::query_as(&format!(
        "SELECT {COLUMNS} FROM chart_notes WHERE practice_id = $1 AND id = $2"
    ))
    .bind(practice_id)
    .bind(id)
    .fetch_optional(conn)
    .await
}

/// A client's notes, newest first.
pub async fn for_client(
    conn: &mut Conn,
    practice_id: &str,
    client_id: &str,
) -> Result<Vec<ChartNoteRow>, sqlx::Error> {
    sqlx::query_as(&format!(
        "SELECT {COLUMNS} FROM chart_notes WHERE practice_id = $1 AND client_id = $2 ORDER BY created_at DESC, id DESC"
    ))
    .bind(practice_id)
    .bind(client_id)
    .fetch_all(conn)
    .await
}

/// Every version of a note, oldest first, with its author's name.
pub async fn versions(
    conn: &mut Conn,
    keys: &Keyring,
    note_id: &str,
) -> Result<Vec<VersionRow>, sqlx::Error> {
    let mut rows = sqlx::query_as(
        "SELECT v.note_id, cn.practice_id, v.version, v.content, v.author_id, \
         pe.name AS author_name, v.created_at FROM chart_note_versions v \
         JOIN chart_notes cn ON cn.id = v.note_id \
         JOIN people pe ON pe.id = v.author_id WHERE v.note_id = $1 ORDER BY v.version",
    )
    .bind(note_id)
    .fetch_all(&mut *conn)
    .await?;
    keys.open_rows(conn, &mut rows).await?;
    Ok(rows)
}
