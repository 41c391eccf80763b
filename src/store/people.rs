//! People: staff and clients of a practice.

use sqlx::FromRow;

use super::Conn;

/// A person as stored. Role and status are the names of `domain::Role`/`Status`.
#[derive(Debug, Clone, FromRow)]
pub struct PersonRow {
    pub id: String,
    pub practice_id: String,
    pub role: String,
    pub status: String,
    pub name: String,
    pub email: String,
    pub mobile: Option<String>,
    /// A new address waiting for confirmation; `email` stays in use until then.
    pub pending_email: Option<String>,
    pub consent_email: i64,
    pub consent_sms: i64,
    pub created_at: i64,
    pub updated_at: i64,
}

const COLUMNS: &str = "id, practice_id, role, status, name, email, mobile, pending_email, \
                       consent_email, consent_sms, created_at, updated_at";

/// [`PersonRow`]'s columns taken from the table under `alias` (for a join).
pub fn columns_of(alias: &str) -> String {
    COLUMNS
        .split(',')
        .map(|c| format!("{alias}.{}", c.trim()))
        .collect::<Vec<_>>()
        .join(", ")
}

pub async fn insert(
    conn: &mut Conn,
    row: &PersonRow,
    password_hash: Option<&str>,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO people (id, practice_id, role, status, name, email, email_norm, mobile, \
         consent_email, consent_sms, password_hash, created_at, updated_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)",
    )
    .bind(&row.id)
    .bind(&row.practice_id)
    .bind(&row.role)
    .bind(&row.status)
    .bind(&row.name)
    .bind(&row.email)
    .bind(row.email.to_lowercase())
    .bind(&row.mobile)
    .bind(row.consent_email)
    .bind(row.consent_sms)
    .bind(password_hash)
    .bind(row.created_at)
    .bind(row.updated_at)
    .execute(conn)
    .await?;
    Ok(())
}

/// Writes every changeable field of `row`, if the person is still as last read (their
/// `updated_at` is `read_at`); false if someone changed them meanwhile.
pub async fn update(conn: &mut Conn, row: &PersonRow, read_at: i64) -> Result<bool, sqlx::Error> {
    let done = sqlx::query(
        "UPDATE people SET role = $1, status = $2, name = $3, email = $4, email_norm = $5, \
         mobile = $6, consent_email = $7, consent_sms = $8, updated_at = $9, pending_email = $13 \
         WHERE id = $10 AND practice_id = $11 AND updated_at = $12",
    )
    .bind(&row.role)
    .bind(&row.status)
    .bind(&row.name)
    .bind(&row.email)
    .bind(row.email.to_lowercase())
    .bind(&row.mobile)
    .bind(row.consent_email)
    .bind(row.consent_sms)
    .bind(row.updated_at)
    .bind(&row.id)
    .bind(&row.practice_id)
    .bind(read_at)
    .bind(&row.pending_email)
    .execute(conn)
    .await?;
    Ok(done.rows_affected() == 1)
}

pub async fn find(
    conn: &mut Conn,
    practice_id: &str,
    id: &str,
) -> Result<Option<PersonRow>, sqlx::Error> {
    sqlx::query_as(&format!(
        "SELECT {COLUMNS} FROM people WHERE practice_id = $1 AND id = $2"
    ))
    .bind(practice_id)
    .bind(id)
    .fetch_optional(conn)
    .await
}

/// A person, locked against changes until the transaction ends (for a write that depends
/// on their role or status, such as sending them a message).
pub async fn find_for_write(
    conn: &mut Conn,
    practice_id: &str,
    id: &str,
) -> Result<Option<PersonRow>, sqlx::Error> {
    let lock = super::share_lock(conn);
    sqlx::query_as(&format!(
        "SELECT {COLUMNS} FROM people WHERE practice_id = $1 AND id = $2{lock}"
    ))
    .bind(practice_id)
    .bind(id)
    .fetch_optional(conn)
    .await
}

/// The people of `ids` found in the practice, locked like [`find_for_write`], in one
/// statement (a sender and the people they name). Ids not found are left out.
pub async fn find_many_for_write(
    conn: &mut Conn,
    practice_id: &str,
    ids: &[&str],
) -> Result<Vec<PersonRow>, sqlx::Error> {
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    let lock = super::share_lock(conn);
    let list = super::placeholders(2, ids.len());
    let sql = format!(
        "SELECT {COLUMNS} FROM people WHERE practice_id = $1 AND id IN ({list}) ORDER BY id{lock}"
    );
    let mut query = sqlx::query_as(&sql).bind(practice_id);
    for id in ids {
        query = query.bind(*id);
    }
    query.fetch_all(conn).await
}

/// The active people holding `role`, by name, locked like [`find_for_write`].
pub async fn active_in_role_for_write(
    conn: &mut Conn,
    practice_id: &str,
    role: &str,
    limit: i64,
) -> Result<Vec<PersonRow>, sqlx::Error> {
    let lock = super::share_lock(conn);
    sqlx::query_as(&format!(
        "SELECT {COLUMNS} FROM people WHERE practice_id = $1 AND role = $2 AND status = 'active' \
         ORDER BY name, id LIMIT $3{lock}"
    ))
    .bind(practice_id)
    .bind(role)
    .bind(limit)
    .fetch_all(conn)
    .await
}

/// A person by id alone, for links that carry no practice (invitations).
pub async fn find_any_practice(
    conn: &mut Conn,
    id: &str,
) -> Result<Option<PersonRow>, sqlx::Error> {
    sqlx::query_as(&format!("SELECT {COLUMNS} FROM people WHERE id = $1"))
        .bind(id)
        .fetch_optional(conn)
        .await
}

/// The person with this address (compared ignoring case) and their password hash.
pub async fn find_for_sign_in(
    conn: &mut Conn,
    practice_id: &str,
    email_norm: &str,
) -> Result<Option<(PersonRow, Option<String>)>, sqlx::Error> {
    #[derive(FromRow)]
    struct WithHash {
        #[sqlx(flatten)]
        person: PersonRow,
        password_hash: Option<String>,
    }
    let row: Option<WithHash> = sqlx::query_as(&format!(
        "SELECT {COLUMNS}, password_hash FROM people WHERE practice_id = $1 AND email_norm = $2"
    ))
    .bind(practice_id)
    .bind(email_norm)
    .fetch_optional(conn)
    .await?;
    Ok(row.map(|r| (r.person, r.password_hash)))
}

pub async fn password_hash(conn: &mut Conn, id: &str) -> Result<Option<String>, sqlx::Error> {
    sqlx::query_scalar("SELECT password_hash FROM people WHERE id = $1")
        .bind(id)
        .fetch_optional(conn)
        .await
        .map(Option::flatten)
}

/// Sets the password of an activated person; false if they are not (any longer) activated.
pub async fn set_password(
    conn: &mut Conn,
    id: &str,
    password_hash: &str,
    now: i64,
) -> Result<bool, sqlx::Error> {
    let done = sqlx::query(
        "UPDATE people SET password_hash = $1, updated_at = $2 WHERE id = $3 AND status IN ('active', 'inactive')",
    )
    .bind(password_hash)
    .bind(now)
    .bind(id)
    .execute(conn)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// Sets the first password of an invited person and activates them; false if they are
/// not (any longer) invited.
pub async fn activate_invited(
    conn: &mut Conn,
    id: &str,
    password_hash: &str,
    now: i64,
) -> Result<bool, sqlx::Error> {
    let done = sqlx::query(
        "UPDATE people SET password_hash = $1, status = 'active', updated_at = $2 WHERE id = $3 AND status = 'invited'",
    )
    .bind(password_hash)
    .bind(now)
    .bind(id)
    .execute(conn)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// Filters for a directory page.
pub struct ListFilter<'a> {
    pub practice_id: &'a str,
    pub role: Option<&'a str>,
    pub status: Option<&'a str>,
    /// When the viewer is a client: their id and the staff roles they may write to. Only
    /// they themself and active people of those roles are listed (the SQL form of
    /// `domain::people::may_see_person`).
    pub client_viewer: Option<(&'a str, Vec<&'static str>)>,
    /// Keyset position: the last (name, id) of the previous page.
    pub after: Option<(&'a str, &'a str)>,
    pub limit: i64,
}

pub async fn list(conn: &mut Conn, filter: &ListFilter<'_>) -> Result<Vec<PersonRow>, sqlx::Error> {
    let (after_name, after_id) = match filter.after {
        Some((name, id)) => (Some(name), Some(id)),
        None => (None, None),
    };
    let (viewer, roles) = match &filter.client_viewer {
        Some((id, roles)) => (Some(*id), roles.clone()),
        None => (None, Vec::new()),
    };
    let client_filter = if roles.is_empty() {
        "CAST($4 AS TEXT) IS NULL".to_string()
    } else {
        format!(
            "(CAST($4 AS TEXT) IS NULL OR id = $4 OR (role IN ({}) AND status = 'active'))",
            super::placeholders(8, roles.len())
        )
    };
    let sql = format!(
        "SELECT {COLUMNS} FROM people WHERE practice_id = $1 \
         AND (CAST($2 AS TEXT) IS NULL OR role = $2) \
         AND (CAST($3 AS TEXT) IS NULL OR status = $3) \
         AND {client_filter} \
         AND (CAST($5 AS TEXT) IS NULL OR name > $5 OR (name = $5 AND id > $6)) \
         ORDER BY name, id LIMIT $7"
    );
    let mut query = sqlx::query_as(&sql)
        .bind(filter.practice_id)
        .bind(filter.role)
        .bind(filter.status)
        .bind(viewer)
        .bind(after_name)
        .bind(after_id)
        .bind(filter.limit);
    for role in roles {
        query = query.bind(role);
    }
    query.fetch_all(conn).await
}

/// How many active people hold `role` (a staff group's size).
pub async fn count_active_in_role(
    conn: &mut Conn,
    practice_id: &str,
    role: &str,
) -> Result<i64, sqlx::Error> {
    sqlx::query_scalar(
        "SELECT COUNT(*) FROM people WHERE practice_id = $1 AND role = $2 AND status = 'active'",
    )
    .bind(practice_id)
    .bind(role)
    .fetch_one(conn)
    .await
}
