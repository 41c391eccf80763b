//! Keys the server makes for itself (the cursors' signing key, the pages' CSRF key): made
//! on first start and kept in the database, so that every node and every restart agree.

use crate::store::{server_keys, Conn};

/// A 32-byte key the server makes for itself on first start and keeps in the database, so
/// that every node (and every restart) uses the same one.
pub async fn shared_key(conn: &mut Conn, name: &str) -> anyhow::Result<[u8; 32]> {
    let fresh = hex::encode(rand::random::<[u8; 32]>());
    let stored = server_keys::get_or_insert(conn, name, &fresh).await?;
    let bytes = hex::decode(stored.trim())
        .ok()
        .filter(|b| b.len() == 32)
        .ok_or_else(|| anyhow::anyhow!("the stored key {name} is not 32 bytes of hex"))?;
    let mut key = [0u8; 32];
    key.copy_from_slice(&bytes);
    Ok(key)
}
