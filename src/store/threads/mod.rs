//! Threads and their participants. Each participant has their own folder and read state.

mod lists;

pub use lists::{
    counts, ids_in_folder, list, move_all, pinned, pinned_ids, set_pin, Direction, ListedThread,
    Listing,
};

use sqlx::FromRow;

use super::keys::{Keyring, PracticeKey, SealedRow};
use super::{placeholders, Conn};
use crate::crypto::Field;

#[derive(Debug, Clone, FromRow)]
pub struct ThreadRow {
    pub id: String,
    pub practice_id: String,
    pub subject: String,
    pub started_by: String,
    pub client_count: i64,
    pub groups: String,
    pub message_count: i64,
    pub next_seq: i64,
    pub preview: String,
    pub created_at: i64,
    pub last_activity_at: i64,
    /// `message` or `conversation` (see `domain::conversations::ThreadKind`).
    pub kind: String,
    pub announcement: Option<String>,
    pub starts_at: Option<i64>,
    pub completed_at: Option<i64>,
    pub completed_by: Option<String>,
    /// The thread a conversation was started from ("convert to a group").
    pub linked_from: Option<String>,
}

impl SealedRow for ThreadRow {
    fn practice_id(&self) -> &str {
        &self.practice_id
    }

    fn open_with(&mut self, key: &PracticeKey) -> Result<(), sqlx::Error> {
        key.open_in_place(Field::ThreadSubject, &self.id, &mut self.subject)?;
        key.open_in_place(Field::ThreadPreview, &self.id, &mut self.preview)?;
        key.open_opt_in_place(Field::ThreadAnnouncement, &self.id, &mut self.announcement)
    }
}

pub(super) const THREAD_COLUMNS: &str =
    "t.id, t.practice_id, t.subject, t.started_by, t.client_count, t.groups, \
     t.message_count, t.next_seq, t.preview, t.created_at, t.last_activity_at, t.kind, \
     t.announcement, t.starts_at, t.completed_at, t.completed_by, t.linked_from";

/// Records a new thread, sealing its subject, preview and announcement with `key`.
pub async fn insert(conn: &mut Conn, key: &PracticeKey, t: &ThreadRow) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO threads (id, practice_id, subject, started_by, client_count, groups, message_count, \
         next_seq, preview, created_at, last_activity_at, kind, announcement, starts_at, \
         linked_from) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15)",
    )
    .bind(&t.id)
    .bind(&t.practice_id)
    .bind(key.seal(Field::ThreadSubject, &t.id, &t.subject))
    .bind(&t.started_by)
    .bind(t.client_count)
    .bind(&t.groups)
    .bind(t.message_count)
    .bind(t.next_seq)
    .bind(key.seal(Field::ThreadPreview, &t.id, &t.preview))
    .bind(t.created_at)
    .bind(t.last_activity_at)
    .bind(&t.kind)
    .bind(key.seal_opt(Field::ThreadAnnouncement, &t.id, t.announcement.as_deref()))
    .bind(t.starts_at)
    .bind(&t.linked_from)
    .execute(conn)
    .await?;
    Ok(())
}

pub async fn find(
    conn: &mut Conn,
    keys: &Keyring,
    practice_id: &str,
    id: &str,
) -> Result<Option<ThreadRow>, sqlx::Error> {
    let mut row = sqlx::query_as(&format!(
        "SELECT {THREAD_COLUMNS} FROM threads t WHERE t.practice_id = $1 AND t.id = $2"
    ))
    .bind(practice_id)
    .bind(id)
    .fetch_optional(&mut *conn)
    .await?;
    keys.open_row(conn, &mut row).await?;
    Ok(row)
}

/// A participant as stored, with the person's current name, role and status.
#[derive(Debug, Clone, FromRow)]
pub struct ParticipantRow {
    pub thread_id: String,
    pub person_id: String,
    pub name: String,
    pub email: String,
    pub role: String,
    pub status: String,
    pub via_group: Option<String>,
    pub folder: String,
    pub unread: i64,
    pub has_sent: i64,
}

pub struct NewParticipant<'a> {
    pub person_id: &'a str,
    pub via_group: Option<&'a str>,
    /// Named themselves (in `to`, as the sender, or shared in), not only reached through
    /// `via_group`: leaving the group does not take the thread away.
    pub direct: bool,
    pub folder: &'a str,
    pub unread: bool,
    pub has_sent: bool,
}

pub async fn insert_participant(
    conn: &mut Conn,
    thread: &ThreadRow,
    p: &NewParticipant<'_>,
) -> Result<(), sqlx::Error> {
    insert_participants(conn, thread, std::slice::from_ref(p)).await
}

/// Rows one participant INSERT takes (9 values each).
const PARTICIPANTS_PER_INSERT: usize = 100;

/// Inserts a new thread's participant rows, in the order given, in one statement per 100:
/// the counter rows' triggers run once for them all.
pub async fn insert_participants(
    conn: &mut Conn,
    thread: &ThreadRow,
    rows: &[NewParticipant<'_>],
) -> Result<(), sqlx::Error> {
    for chunk in rows.chunks(PARTICIPANTS_PER_INSERT) {
        let values = (0..chunk.len())
            .map(|i| format!("({})", super::placeholders(i * 9 + 1, 9)))
            .collect::<Vec<_>>()
            .join(", ");
        let sql = format!(
            "INSERT INTO thread_participants (thread_id, person_id, practice_id, via_group, \
             folder, unread, has_sent, last_activity_at, direct) VALUES {values}"
        );
        let mut query = sqlx::query(&sql);
        for p in chunk {
            query = query
                .bind(&thread.id)
                .bind(p.person_id)
                .bind(&thread.practice_id)
                .bind(p.via_group)
                .bind(p.folder)
                .bind(p.unread as i64)
                .bind(p.has_sent as i64)
                .bind(thread.last_activity_at)
                .bind(p.direct as i64);
        }
        query.execute(&mut *conn).await?;
    }
    Ok(())
}

const PARTICIPANT_COLUMNS: &str =
    "p.thread_id, p.person_id, pe.name, pe.email, pe.role, pe.status, p.via_group, \
     p.folder, p.unread, p.has_sent";

/// A thread's participants. `for_write`: their people rows are locked against changes
/// until the transaction ends (for a write that depends on their roles and statuses).
pub async fn participants(
    conn: &mut Conn,
    thread_id: &str,
    for_write: bool,
) -> Result<Vec<ParticipantRow>, sqlx::Error> {
    let lock = match (for_write, super::share_lock(conn)) {
        (true, " FOR SHARE") => " FOR SHARE OF pe",
        _ => "",
    };
    sqlx::query_as(&format!(
        "SELECT {PARTICIPANT_COLUMNS} FROM thread_participants p JOIN people pe ON pe.id = p.person_id \
         WHERE p.thread_id = $1 ORDER BY pe.name, p.person_id{lock}"
    ))
    .bind(thread_id)
    .fetch_all(conn)
    .await
}

/// The participants of several threads at once (for a page of a folder). Two lookups by
/// primary key, joined here: with a long IN list PostgreSQL plans the one-query join with
/// a scan of `people` (8 ms for a page, against well under 1 ms this way).
pub async fn participants_of(
    conn: &mut Conn,
    thread_ids: &[String],
) -> Result<Vec<ParticipantRow>, sqlx::Error> {
    if thread_ids.is_empty() {
        return Ok(Vec::new());
    }
    let memberships = memberships_of(conn, thread_ids).await?;
    let mut person_ids: Vec<&str> = memberships.iter().map(|m| m.person_id.as_str()).collect();
    person_ids.sort_unstable();
    person_ids.dedup();
    let people = people_named(conn, &person_ids).await?;
    Ok(join_participants(memberships, &people))
}

/// A `thread_participants` row, without the person's own columns.
#[derive(FromRow)]
struct Membership {
    thread_id: String,
    person_id: String,
    via_group: Option<String>,
    folder: String,
    unread: i64,
    has_sent: i64,
}

/// The columns of `people` a participant row shows.
#[derive(FromRow)]
struct Named {
    id: String,
    name: String,
    email: String,
    role: String,
    status: String,
}

/// The `thread_participants` rows of `thread_ids` (not empty), in one query.
async fn memberships_of(
    conn: &mut Conn,
    thread_ids: &[String],
) -> Result<Vec<Membership>, sqlx::Error> {
    let sql = format!(
        "SELECT thread_id, person_id, via_group, folder, unread, has_sent FROM thread_participants \
         WHERE thread_id IN ({})",
        placeholders(1, thread_ids.len())
    );
    let mut query = sqlx::query_as(&sql);
    for id in thread_ids {
        query = query.bind(id);
    }
    query.fetch_all(&mut *conn).await
}

/// Name, role and status of `person_ids`, by id, read 500 people at a time.
async fn people_named(
    conn: &mut Conn,
    person_ids: &[&str],
) -> Result<std::collections::HashMap<String, Named>, sqlx::Error> {
    let mut people = std::collections::HashMap::new();
    for chunk in person_ids.chunks(500) {
        let sql = format!(
            "SELECT id, name, email, role, status FROM people WHERE id IN ({})",
            placeholders(1, chunk.len())
        );
        let mut query = sqlx::query_as(&sql);
        for id in chunk {
            query = query.bind(*id);
        }
        let named: Vec<Named> = query.fetch_all(&mut *conn).await?;
        people.extend(named.into_iter().map(|n| (n.id.clone(), n)));
    }
    Ok(people)
}

/// Joins memberships with their people (a membership whose person was not found is left
/// out), ordered by name, then person id.
fn join_participants(
    memberships: Vec<Membership>,
    people: &std::collections::HashMap<String, Named>,
) -> Vec<ParticipantRow> {
    let mut rows: Vec<ParticipantRow> = memberships
        .into_iter()
        .filter_map(|m| {
            let person = people.get(&m.person_id)?;
            Some(ParticipantRow {
                thread_id: m.thread_id,
                person_id: m.person_id,
                name: person.name.clone(),
                email: person.email.clone(),
                role: person.role.clone(),
                status: person.status.clone(),
                via_group: m.via_group,
                folder: m.folder,
                unread: m.unread,
                has_sent: m.has_sent,
            })
        })
        .collect();
    rows.sort_by(|a, b| (&a.name, &a.person_id).cmp(&(&b.name, &b.person_id)));
    rows
}

/// Takes the next message number of a thread and records the new message's time and
/// preview. The update comes first so that concurrent replies queue on the thread's row
/// (PostgreSQL) or on the write lock (SQLite) and never share a number.
pub async fn claim_seq(
    conn: &mut Conn,
    key: &PracticeKey,
    thread_id: &str,
    at: i64,
    preview: &str,
) -> Result<Option<i64>, sqlx::Error> {
    let next: Option<i64> = sqlx::query_scalar(
        "UPDATE threads SET message_count = message_count + 1, next_seq = next_seq + 1, \
         last_activity_at = $1, preview = $2 WHERE id = $3 RETURNING next_seq",
    )
    .bind(at)
    .bind(key.seal(Field::ThreadPreview, thread_id, preview))
    .bind(thread_id)
    .fetch_optional(conn)
    .await?;
    Ok(next.map(|n| n - 1))
}

/// After a new message: everyone's activity time; for everyone but the sender the thread
/// comes back to the Inbox, unread.
pub async fn deliver(
    conn: &mut Conn,
    thread_id: &str,
    sender_id: &str,
    at: i64,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE thread_participants SET last_activity_at = $1, \
         folder = CASE WHEN person_id = $2 THEN folder ELSE 'inbox' END, \
         unread = CASE WHEN person_id = $2 THEN 0 ELSE 1 END, \
         has_sent = CASE WHEN person_id = $2 THEN 1 ELSE has_sent END \
         WHERE thread_id = $3",
    )
    .bind(at)
    .bind(sender_id)
    .bind(thread_id)
    .execute(conn)
    .await?;
    Ok(())
}

/// After a message was deleted: the counters and preview of what remains.
pub async fn record_removal(
    conn: &mut Conn,
    key: &PracticeKey,
    thread_id: &str,
    preview: &str,
) -> Result<(), sqlx::Error> {
    sqlx::query("UPDATE threads SET message_count = message_count - 1, preview = $1 WHERE id = $2")
        .bind(key.seal(Field::ThreadPreview, thread_id, preview))
        .bind(thread_id)
        .execute(conn)
        .await?;
    Ok(())
}

/// Changes one person's folder and/or read state of a thread.
pub async fn set_state(
    conn: &mut Conn,
    thread_id: &str,
    person_id: &str,
    folder: Option<&str>,
    unread: Option<bool>,
) -> Result<u64, sqlx::Error> {
    let done = sqlx::query(
        "UPDATE thread_participants SET folder = COALESCE(CAST($1 AS TEXT), folder), \
         unread = COALESCE(CAST($2 AS BIGINT), unread) WHERE thread_id = $3 AND person_id = $4",
    )
    .bind(folder)
    .bind(unread.map(i64::from))
    .bind(thread_id)
    .bind(person_id)
    .execute(conn)
    .await?;
    Ok(done.rows_affected())
}

/// The ids of everyone in a thread.
pub async fn participant_ids(conn: &mut Conn, thread_id: &str) -> Result<Vec<String>, sqlx::Error> {
    sqlx::query_scalar("SELECT person_id FROM thread_participants WHERE thread_id = $1")
        .bind(thread_id)
        .fetch_all(conn)
        .await
}

/// One person's (folder, unread) of a thread, if they take part in it.
pub async fn state_of(
    conn: &mut Conn,
    thread_id: &str,
    person_id: &str,
) -> Result<Option<(String, bool)>, sqlx::Error> {
    let row: Option<(String, i64)> = sqlx::query_as(
        "SELECT folder, unread FROM thread_participants WHERE thread_id = $1 AND person_id = $2",
    )
    .bind(thread_id)
    .bind(person_id)
    .fetch_optional(conn)
    .await?;
    Ok(row.map(|(folder, unread)| (folder, unread != 0)))
}

pub async fn delete(conn: &mut Conn, thread_id: &str) -> Result<(), sqlx::Error> {
    sqlx::query("DELETE FROM thread_participants WHERE thread_id = $1")
        .bind(thread_id)
        .execute(&mut *conn)
        .await?;
    sqlx::query("DELETE FROM threads WHERE id = $1")
        .bind(thread_id)
        .execute(conn)
        .await?;
    Ok(())
}

/// A person is in a thread in their own right from now on (shared in again), not only
/// through a group.
pub async fn mark_direct(
    conn: &mut Conn,
    thread_id: &str,
    person_id: &str,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE thread_participants SET direct = 1 WHERE thread_id = $1 AND person_id = $2",
    )
    .bind(thread_id)
    .bind(person_id)
    .execute(conn)
    .await?;
    Ok(())
}
