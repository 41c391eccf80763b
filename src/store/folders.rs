//! Custom folders, one person's own.

use sqlx::FromRow;

use super::Conn;

#[derive(Debug, Clone, FromRow)]
pub struct FolderRow {
    pub id: String,
    pub practice_id: String,
    pub person_id: String,
    pub name: String,
    pub created_at: i64,
}

const COLUMNS: &str = "id, practice_id, person_id, name, created_at";

pub async fn insert(conn: &mut Conn, f: &FolderRow) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO folders (id, practice_id, person_id, name, name_norm, created_at) VALUES ($1, $2, $3, $4, $5, $6)",
    )
    .bind(&f.id)
    .bind(&f.practice_id)
    .bind(&f.person_id)
    .bind(&f.name)
    .bind(f.name.to_lowercase())
    .bind(f.created_at)
    .execute(conn)
    .await?;
    Ok(())
}

pub async fn list(conn: &mut Conn, person_id: &str) -> Result<Vec<FolderRow>, sqlx::Error> {
    sqlx::query_as(&format!(
        "SELECT {COLUMNS} FROM folders WHERE person_id = $1 ORDER BY name_norm, id"
    ))
    .bind(person_id)
    .fetch_all(conn)
    .await
}

pub async fn find(
    conn: &mut Conn,
    person_id: &str,
    id: &str,
) -> Result<Option<FolderRow>, sqlx::Error> {
    sqlx::query_as(&format!(
        "SELECT {COLUMNS} FROM folders WHERE person_id = $1 AND id = $2"
    ))
    .bind(person_id)
    .bind(id)
    .fetch_optional(conn)
    .await
}

pub async fn rename(conn: &mut Conn, id: &str, name: &str) -> Result<(), sqlx::Error> {
    sqlx::query("UPDATE folders SET name = $1, name_norm = $2 WHERE id = $3")
        .bind(name)
        .bind(name.to_lowercase())
        .bind(id)
        .execute(conn)
        .await?;
    Ok(())
}

pub async fn delete(conn: &mut Conn, id: &str) -> Result<(), sqlx::Error> {
    sqlx::query("DELETE FROM folders WHERE id = $1")
        .bind(id)
        .execute(conn)
        .await?;
    Ok(())
}
