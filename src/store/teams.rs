//! The team state of threads addressed to staff groups (migration 0016) and the
//! participant rows that membership of a group brings or takes away.

use sqlx::FromRow;

use super::{placeholders, Conn};

/// One team's state of a thread, with the assignee's current name.
#[derive(Debug, Clone, FromRow)]
pub struct TeamRow {
    pub thread_id: String,
    pub group_name: String,
    pub done: i64,
    pub assignee_id: Option<String>,
    pub assignee_name: Option<String>,
}

/// Makes a new thread belong to the groups it was addressed to.
pub async fn insert(
    conn: &mut Conn,
    thread_id: &str,
    practice_id: &str,
    groups: &[&str],
    now: i64,
) -> Result<(), sqlx::Error> {
    for group in groups {
        sqlx::query(
            "INSERT INTO team_threads (thread_id, group_name, practice_id, done, updated_at) \
             VALUES ($1, $2, $3, 0, $4)",
        )
        .bind(thread_id)
        .bind(*group)
        .bind(practice_id)
        .bind(now)
        .execute(&mut *conn)
        .await?;
    }
    Ok(())
}

/// The team state of some threads, each team of each thread.
pub async fn of_threads(conn: &mut Conn, ids: &[String]) -> Result<Vec<TeamRow>, sqlx::Error> {
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    let sql = format!(
        "SELECT tt.thread_id, tt.group_name, tt.done, tt.assignee_id, pe.name AS assignee_name \
         FROM team_threads tt LEFT JOIN people pe ON pe.id = tt.assignee_id \
         WHERE tt.thread_id IN ({}) ORDER BY tt.thread_id, tt.group_name",
        placeholders(1, ids.len())
    );
    let mut query = sqlx::query_as(&sql);
    for id in ids {
        query = query.bind(id);
    }
    query.fetch_all(conn).await
}

/// Assigns one team's thread to a member (`Some`) or to nobody.
pub async fn set_assignee(
    conn: &mut Conn,
    thread_id: &str,
    group: &str,
    assignee: Option<&str>,
    now: i64,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE team_threads SET assignee_id = $1, updated_at = $2 \
         WHERE thread_id = $3 AND group_name = $4",
    )
    .bind(assignee)
    .bind(now)
    .bind(thread_id)
    .bind(group)
    .execute(conn)
    .await?;
    Ok(())
}

/// Marks one team's thread done or open; true if that changed anything.
pub async fn set_done(
    conn: &mut Conn,
    thread_id: &str,
    group: &str,
    done: bool,
    now: i64,
) -> Result<bool, sqlx::Error> {
    let changed = sqlx::query(
        "UPDATE team_threads SET done = $1, updated_at = $2 \
         WHERE thread_id = $3 AND group_name = $4 AND done <> $1",
    )
    .bind(done as i64)
    .bind(now)
    .bind(thread_id)
    .bind(group)
    .execute(conn)
    .await?;
    Ok(changed.rows_affected() > 0)
}

/// Moves the copies of a thread of every member of a team from one folder to another
/// (done: Inbox to Archive; reopened: back). Copies filed elsewhere stay.
pub async fn file_for_team(
    conn: &mut Conn,
    thread_id: &str,
    group: &str,
    from: &str,
    to: &str,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE thread_participants SET folder = $1 \
         WHERE thread_id = $2 AND via_group = $3 AND folder = $4",
    )
    .bind(to)
    .bind(thread_id)
    .bind(group)
    .bind(from)
    .execute(conn)
    .await?;
    Ok(())
}

/// A new message: every team that was done with the thread has it open again.
pub async fn reopen_all(conn: &mut Conn, thread_id: &str, now: i64) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE team_threads SET done = 0, updated_at = $1 WHERE thread_id = $2 AND done = 1",
    )
    .bind(now)
    .bind(thread_id)
    .execute(conn)
    .await?;
    Ok(())
}

/// A person joins a group: a participant row for each of the group's threads they do
/// not have yet, placed as `open` or `done` say, and their existing rows of those
/// threads counted in the team folder. Returns the threads they were added to.
pub async fn join(
    conn: &mut Conn,
    practice_id: &str,
    person_id: &str,
    group: &str,
    open: (&str, bool),
    done: (&str, bool),
) -> Result<Vec<String>, sqlx::Error> {
    sqlx::query(
        "UPDATE thread_participants SET via_group = $1 \
         WHERE person_id = $2 AND via_group IS NULL AND thread_id IN \
         (SELECT thread_id FROM team_threads WHERE practice_id = $3 AND group_name = $1)",
    )
    .bind(group)
    .bind(person_id)
    .bind(practice_id)
    .execute(&mut *conn)
    .await?;
    sqlx::query_scalar(
        "INSERT INTO thread_participants (thread_id, person_id, practice_id, via_group, folder, \
         unread, has_sent, last_activity_at, direct) \
         SELECT tt.thread_id, $1, tt.practice_id, tt.group_name, \
         CASE WHEN tt.done = 1 THEN $2 ELSE $3 END, CASE WHEN tt.done = 1 THEN $4 ELSE $5 END, \
         0, t.last_activity_at, 0 \
         FROM team_threads tt JOIN threads t ON t.id = tt.thread_id \
         WHERE tt.practice_id = $6 AND tt.group_name = $7 AND NOT EXISTS \
         (SELECT 1 FROM thread_participants x WHERE x.thread_id = tt.thread_id AND x.person_id = $1) \
         ORDER BY tt.thread_id RETURNING thread_id",
    )
    .bind(person_id)
    .bind(done.0)
    .bind(open.0)
    .bind(done.1 as i64)
    .bind(open.1 as i64)
    .bind(practice_id)
    .bind(group)
    .fetch_all(conn)
    .await
}

/// A person leaves a group: the group's threads they were reached through only leave
/// their mailbox (with their pins of them); the ones they wrote in or were named in stay
/// as ordinary threads of theirs; the group's threads assigned to them are assigned to
/// nobody. Conversations are not the group's: their people stay as they started. Returns
/// (the threads unassigned, the threads that left their mailbox).
pub async fn leave(
    conn: &mut Conn,
    practice_id: &str,
    person_id: &str,
    group: &str,
    now: i64,
) -> Result<(Vec<String>, Vec<String>), sqlx::Error> {
    // The team state before the participant rows: one lock order with marking done.
    let unassigned = unassign(conn, person_id, now).await?;
    const TEAM_THREADS: &str =
        "(SELECT thread_id FROM team_threads WHERE practice_id = $3 AND group_name = $2)";
    sqlx::query(&format!(
        "DELETE FROM thread_pins WHERE person_id = $1 AND thread_id IN \
         (SELECT thread_id FROM thread_participants WHERE person_id = $1 AND via_group = $2 \
          AND has_sent = 0 AND direct = 0 AND thread_id IN {TEAM_THREADS})"
    ))
    .bind(person_id)
    .bind(group)
    .bind(practice_id)
    .execute(&mut *conn)
    .await?;
    let lost: Vec<String> = sqlx::query_scalar(&format!(
        "DELETE FROM thread_participants WHERE person_id = $1 AND via_group = $2 \
         AND has_sent = 0 AND direct = 0 AND thread_id IN {TEAM_THREADS} RETURNING thread_id"
    ))
    .bind(person_id)
    .bind(group)
    .bind(practice_id)
    .fetch_all(&mut *conn)
    .await?;
    sqlx::query(&format!(
        "UPDATE thread_participants SET via_group = NULL WHERE person_id = $1 AND via_group = $2 \
         AND thread_id IN {TEAM_THREADS}"
    ))
    .bind(person_id)
    .bind(group)
    .bind(practice_id)
    .execute(conn)
    .await?;
    Ok((unassigned, lost))
}

/// Every team thread assigned to a person is assigned to nobody (they left or were
/// disabled). Returns those threads.
pub async fn unassign(
    conn: &mut Conn,
    person_id: &str,
    now: i64,
) -> Result<Vec<String>, sqlx::Error> {
    sqlx::query_scalar(
        "UPDATE team_threads SET assignee_id = NULL, updated_at = $1 WHERE assignee_id = $2 \
         RETURNING thread_id",
    )
    .bind(now)
    .bind(person_id)
    .fetch_all(conn)
    .await
}

/// The active members of a group (by role), by name: whom a team thread may be assigned.
pub async fn members(
    conn: &mut Conn,
    practice_id: &str,
    role: &str,
) -> Result<Vec<(String, String)>, sqlx::Error> {
    sqlx::query_as(
        "SELECT id, name FROM people WHERE practice_id = $1 AND role = $2 AND status = 'active' \
         ORDER BY name, id LIMIT 500",
    )
    .bind(practice_id)
    .bind(role)
    .fetch_all(conn)
    .await
}

/// Serializes changes to who is in a practice's groups with the sends that read them, on
/// PostgreSQL (`exclusive` for a change of membership, shared for a send to a group). On
/// SQLite a writing transaction already excludes every other writer.
pub async fn lock_membership(
    conn: &mut Conn,
    practice_id: &str,
    exclusive: bool,
) -> Result<(), sqlx::Error> {
    if conn.backend_name() != "PostgreSQL" {
        return Ok(());
    }
    // NO KEY UPDATE, not UPDATE: rows that reference the practice (KEY SHARE) go on.
    let mode = if exclusive { "NO KEY UPDATE" } else { "SHARE" };
    sqlx::query(&format!(
        "SELECT id FROM practices WHERE id = $1 FOR {mode}"
    ))
    .bind(practice_id)
    .fetch_optional(conn)
    .await?;
    Ok(())
}
