//! Practices.

use sqlx::FromRow;

use super::keys::Keyring;
use super::Conn;

#[derive(Debug, Clone, FromRow)]
pub struct PracticeRow {
    pub id: String,
    pub slug: String,
    pub name: String,
    pub created_at: i64,
}

/// Records a practice and makes its first data key.
pub async fn insert(conn: &mut Conn, keys: &Keyring, row: &PracticeRow) -> Result<(), sqlx::Error> {
    sqlx::query("INSERT INTO practices (id, slug, name, created_at) VALUES ($1, $2, $3, $4)")
        .bind(&row.id)
        .bind(&row.slug)
        .bind(&row.name)
        .bind(row.created_at)
        .execute(&mut *conn)
        .await?;
    keys.create(conn, &row.id, row.created_at).await
}

pub async fn find_by_slug(conn: &mut Conn, slug: &str) -> Result<Option<PracticeRow>, sqlx::Error> {
    sqlx::query_as("SELECT id, slug, name, created_at FROM practices WHERE slug = $1")
        .bind(slug)
        .fetch_optional(conn)
        .await
}

pub async fn find(conn: &mut Conn, id: &str) -> Result<Option<PracticeRow>, sqlx::Error> {
    sqlx::query_as("SELECT id, slug, name, created_at FROM practices WHERE id = $1")
        .bind(id)
        .fetch_optional(conn)
        .await
}

pub async fn count(conn: &mut Conn) -> Result<i64, sqlx::Error> {
    sqlx::query_scalar("SELECT COUNT(*) FROM practices")
        .fetch_one(conn)
        .await
}

/// Every practice, by slug.
pub async fn all(conn: &mut Conn) -> Result<Vec<PracticeRow>, sqlx::Error> {
    sqlx::query_as("SELECT id, slug, name, created_at FROM practices ORDER BY slug")
        .fetch_all(conn)
        .await
}
