//! One person's lists of threads: a folder's page, the counts per folder, and moving
//! every thread of a folder at once.

use sqlx::FromRow;

use super::{ThreadRow, THREAD_COLUMNS};
use crate::domain::mailbox::REMOVED;
use crate::domain::teams::{AssigneeFilter, TeamFilter};
use crate::store::keys::{Keyring, PracticeKey, SealedRow};
use crate::store::Conn;

/// Which of a person's threads a list shows.
pub enum Listing<'a> {
    /// Inbox, Archive, Trash or a custom folder (by id).
    Folder(&'a str),
    /// Threads the person wrote in.
    Sent,
    /// Threads addressed to one of the person's staff groups, maybe narrowed.
    Team(&'a str, TeamFilter),
}

/// A thread in a list, with the viewer's own state of it.
#[derive(Debug, Clone, FromRow)]
pub struct ListedThread {
    #[sqlx(flatten)]
    pub thread: ThreadRow,
    pub folder: String,
    pub unread: i64,
}

impl SealedRow for ListedThread {
    fn practice_id(&self) -> &str {
        &self.thread.practice_id
    }

    fn open_with(&mut self, key: &PracticeKey) -> Result<(), sqlx::Error> {
        self.thread.open_with(key)
    }
}

/// Which way a page of a list runs from its keyset.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    /// Older threads than the keyset, newest first.
    Older,
    /// Newer threads than the keyset, oldest first (the caller turns them around).
    Newer,
}

/// A page of a person's threads next to the keyset `from` (the newest end of the list
/// when `None`), in `direction`.
pub async fn list(
    conn: &mut Conn,
    keys: &Keyring,
    person_id: &str,
    listing: &Listing<'_>,
    from: Option<(i64, &str)>,
    direction: Direction,
    limit: i64,
) -> Result<Vec<ListedThread>, sqlx::Error> {
    let (filter, value) = filter_of(listing);
    let (from_at, from_id) = match from {
        Some((at, id)) => (at, id),
        None => (i64::MAX, ""),
    };
    let (compare, order) = match direction {
        Direction::Older => ("<", "DESC"),
        Direction::Newer => (">", "ASC"),
    };
    let mut rows: Vec<ListedThread> = sqlx::query_as(&format!(
        "SELECT {THREAD_COLUMNS}, p.folder, p.unread FROM thread_participants p \
         JOIN threads t ON t.id = p.thread_id \
         WHERE p.person_id = $1 AND {filter} \
         AND (p.last_activity_at, p.thread_id) {compare} ($3, $4) \
         ORDER BY p.last_activity_at {order}, p.thread_id {order} LIMIT $5"
    ))
    .bind(person_id)
    .bind(value)
    .bind(from_at)
    .bind(from_id)
    .bind(limit)
    .fetch_all(&mut *conn)
    .await?;
    keys.open_rows(conn, &mut rows).await?;
    Ok(rows)
}

/// The threads a person pinned.
pub async fn pinned_ids(conn: &mut Conn, person_id: &str) -> Result<Vec<String>, sqlx::Error> {
    sqlx::query_scalar("SELECT thread_id FROM thread_pins WHERE person_id = $1")
        .bind(person_id)
        .fetch_all(conn)
        .await
}

/// The pinned threads of one of a person's lists, most recently pinned first.
pub async fn pinned(
    conn: &mut Conn,
    keys: &Keyring,
    person_id: &str,
    listing: &Listing<'_>,
) -> Result<Vec<ListedThread>, sqlx::Error> {
    let (filter, value) = filter_of(listing);
    let mut rows: Vec<ListedThread> = sqlx::query_as(&format!(
        "SELECT {THREAD_COLUMNS}, p.folder, p.unread FROM thread_pins x \
         JOIN thread_participants p ON p.thread_id = x.thread_id AND p.person_id = x.person_id \
         JOIN threads t ON t.id = x.thread_id \
         WHERE x.person_id = $1 AND {filter} ORDER BY x.pinned_at DESC, x.thread_id"
    ))
    .bind(person_id)
    .bind(value)
    .fetch_all(&mut *conn)
    .await?;
    keys.open_rows(conn, &mut rows).await?;
    Ok(rows)
}

/// Pins (`Some(at)`) or unpins a thread for one person.
pub async fn set_pin(
    conn: &mut Conn,
    person_id: &str,
    thread_id: &str,
    at: Option<i64>,
) -> Result<(), sqlx::Error> {
    match at {
        Some(at) => {
            sqlx::query(
                "INSERT INTO thread_pins (person_id, thread_id, pinned_at) VALUES ($1, $2, $3) \
             ON CONFLICT (person_id, thread_id) DO NOTHING",
            )
            .bind(person_id)
            .bind(thread_id)
            .bind(at)
            .execute(conn)
            .await?
        }
        None => {
            sqlx::query("DELETE FROM thread_pins WHERE person_id = $1 AND thread_id = $2")
                .bind(person_id)
                .bind(thread_id)
                .execute(conn)
                .await?
        }
    };
    Ok(())
}

/// The `WHERE` condition of a list on `thread_participants p` and its `$2` value.
fn filter_of<'a>(listing: &Listing<'a>) -> (String, &'a str) {
    match listing {
        Listing::Folder(folder) => ("p.folder = $2".to_string(), *folder),
        Listing::Sent => ("p.has_sent = 1 AND p.folder <> $2".to_string(), REMOVED),
        Listing::Team(group, filter) => {
            let mut team = Vec::new();
            match filter.assignee {
                // `$1` is the person whose list this is.
                Some(AssigneeFilter::Mine) => team.push("tt.assignee_id = $1"),
                Some(AssigneeFilter::Unassigned) => team.push("tt.assignee_id IS NULL"),
                None => {}
            }
            match filter.done {
                Some(true) => team.push("tt.done = 1"),
                Some(false) => team.push("tt.done = 0"),
                None => {}
            }
            let narrowed = if team.is_empty() {
                String::new()
            } else {
                format!(
                    " AND EXISTS (SELECT 1 FROM team_threads tt WHERE tt.thread_id = p.thread_id \
                     AND tt.group_name = p.via_group AND {})",
                    team.join(" AND ")
                )
            };
            (
                format!("p.via_group = $2 AND p.folder <> '{REMOVED}'{narrowed}"),
                *group,
            )
        }
    }
}

/// Per list — each folder, `sent` and `team:<group>` — (list, threads, unread threads) of
/// one person, from the counts the database keeps as participant rows change (migration
/// 0009); lists the person never had are absent.
pub async fn counts(
    conn: &mut Conn,
    person_id: &str,
) -> Result<Vec<(String, i64, i64)>, sqlx::Error> {
    sqlx::query_as("SELECT list, total, unread FROM mailbox_counts WHERE person_id = $1")
        .bind(person_id)
        .fetch_all(conn)
        .await
}

/// The threads one person has in a folder.
pub async fn ids_in_folder(
    conn: &mut Conn,
    person_id: &str,
    folder: &str,
) -> Result<Vec<String>, sqlx::Error> {
    sqlx::query_scalar(
        "SELECT thread_id FROM thread_participants WHERE person_id = $1 AND folder = $2",
    )
    .bind(person_id)
    .bind(folder)
    .fetch_all(conn)
    .await
}

/// Moves every thread of one person from `from` to `to` (deleting a folder, emptying Trash).
pub async fn move_all(
    conn: &mut Conn,
    person_id: &str,
    from: &str,
    to: &str,
) -> Result<u64, sqlx::Error> {
    let done = sqlx::query(
        "UPDATE thread_participants SET folder = $1 WHERE person_id = $2 AND folder = $3",
    )
    .bind(to)
    .bind(person_id)
    .bind(from)
    .execute(conn)
    .await?;
    Ok(done.rows_affected())
}
