//! Leases: work one node of a cluster does at a time.

use super::Conn;

/// Takes (or extends) the lease `name` for `holder` until `until`, unless another holder
/// has it past `now`. Returns whether `holder` has it.
pub async fn take(
    conn: &mut Conn,
    name: &str,
    holder: &str,
    now: i64,
    until: i64,
) -> Result<bool, sqlx::Error> {
    let taken = sqlx::query(
        "INSERT INTO leases (name, holder, until) VALUES ($1, $2, $3) \
         ON CONFLICT (name) DO UPDATE SET holder = excluded.holder, until = excluded.until \
         WHERE leases.until < $4 OR leases.holder = excluded.holder",
    )
    .bind(name)
    .bind(holder)
    .bind(until)
    .bind(now)
    .execute(conn)
    .await?;
    Ok(taken.rows_affected() == 1)
}
