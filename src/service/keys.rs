//! The server's secret and the keys made from it (the pages' CSRF key, the cursors' and
//! sync states' signing key). The secret is `[server] secret_key` or, when that is empty,
//! the file `secret.key` in the data directory, made (0600) on first start. Every node of
//! a cluster must have the same one: its fingerprint is kept in the database, and a node
//! whose secret differs refuses to start instead of refusing every other node's forms.

use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context};
use hmac::{Hmac, Mac};
use sha2::Sha256;

use crate::config::Config;
use crate::crypto::Kek;
use crate::store::{server_keys, Conn};

/// The shortest secret accepted, in characters.
pub const MIN_SECRET_LEN: usize = 32;
const KEY_FILE: &str = "secret.key";
const KEK_FILE: &str = "confide.key";
const FINGERPRINT: &str = "secret_fingerprint_v1";

/// The server's secret; its value never leaves this type (no Debug, no Display).
pub struct Secret(Vec<u8>);

impl Secret {
    /// A key for one purpose, made from the secret (HMAC-SHA256 of the purpose's name).
    pub fn derive(&self, purpose: &str) -> [u8; 32] {
        let mut mac = Hmac::<Sha256>::new_from_slice(&self.0).expect("any key length");
        mac.update(purpose.as_bytes());
        mac.finalize().into_bytes().into()
    }

    /// What nodes compare: says whether two secrets are the same, nothing of either.
    fn fingerprint(&self) -> String {
        hex::encode(&self.derive("fingerprint")[..16])
    }
}

/// Where a node keeps its secret when the configuration gives none.
pub fn key_file(data_dir: &Path) -> PathBuf {
    data_dir.join(KEY_FILE)
}

/// The configured secret, or the key file's (made now if there is none).
pub fn load_secret(config: &Config) -> anyhow::Result<Secret> {
    let configured = config.server.secret_key.expose();
    if !configured.is_empty() {
        if configured.chars().count() < MIN_SECRET_LEN {
            bail!(
                "configuration key server.secret_key must be at least {MIN_SECRET_LEN} characters \
                 (for example the output of `openssl rand -hex 32`)"
            );
        }
        return Ok(Secret(configured.as_bytes().to_vec()));
    }
    let path = key_file(&config.storage.data_dir);
    let text = match std::fs::read_to_string(&path) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => make_key_file(
            &path,
            "made a new server secret (0600); give every node of a cluster the same one",
        )?,
        Err(e) => {
            return Err(e).with_context(|| format!("cannot read the key file {}", path.display()))
        }
    };
    let text = text.trim();
    if text.chars().count() < MIN_SECRET_LEN {
        bail!(
            "the key file {} holds fewer than {MIN_SECRET_LEN} characters; remove it to have a \
             new one made, or set server.secret_key",
            path.display()
        );
    }
    Ok(Secret(text.as_bytes().to_vec()))
}

/// The key-encryption key: `[encryption] key`, else the key file (made now if there is
/// none); `None` when encryption is off. A key file others may read is refused.
pub fn load_kek(config: &Config) -> anyhow::Result<Option<Kek>> {
    let settings = &config.encryption;
    if !settings.enabled {
        return Ok(None);
    }
    let bad = |source: &str| {
        anyhow::anyhow!(
            "{source} must hold 64 hexadecimal digits (256 bits), for example the output of \
             `openssl rand -hex 32`"
        )
    };
    if !settings.key.expose().is_empty() {
        return Kek::from_hex(settings.key.expose())
            .map(Some)
            .ok_or_else(|| bad("configuration key encryption.key"));
    }
    let path = kek_file(config);
    let text = match std::fs::read_to_string(&path) {
        Ok(text) => {
            refuse_if_shared(&path)?;
            text
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => make_key_file(
            &path,
            "made a new key-encryption key (0600); keep a copy apart from the database's \
             backups: without it the data cannot be read",
        )?,
        Err(e) => {
            return Err(e).with_context(|| format!("cannot read the key file {}", path.display()))
        }
    };
    Kek::from_hex(&text)
        .map(Some)
        .ok_or_else(|| bad(&format!("the key file {}", path.display())))
}

/// Where the key-encryption key is read from when the configuration does not hold it.
pub fn kek_file(config: &Config) -> PathBuf {
    let configured = &config.encryption.key_file;
    if configured.as_os_str().is_empty() {
        config.storage.data_dir.join(KEK_FILE)
    } else {
        configured.clone()
    }
}

/// Reads a key-encryption key from a file (for `confide keys rotate --new-key-file`).
pub fn read_kek_file(path: &Path) -> anyhow::Result<Kek> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("cannot read the key file {}", path.display()))?;
    refuse_if_shared(path)?;
    Kek::from_hex(&text).with_context(|| {
        format!(
            "the key file {} must hold 64 hexadecimal digits (256 bits)",
            path.display()
        )
    })
}

fn refuse_if_shared(path: &Path) -> anyhow::Result<()> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(path)
            .with_context(|| format!("cannot read the key file {}", path.display()))?
            .permissions()
            .mode();
        if mode & 0o077 != 0 {
            bail!(
                "the key file {} may be read by other users (mode {:o}): `chmod 600` it",
                path.display(),
                mode & 0o777
            );
        }
    }
    Ok(())
}

/// Writes a new random secret to `path`, readable by its owner only; a file another node
/// or process made meanwhile wins.
fn make_key_file(path: &Path, made: &str) -> anyhow::Result<String> {
    let secret = hex::encode(rand::random::<[u8; 32]>());
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    match options.open(path) {
        Ok(mut file) => {
            file.write_all(format!("{secret}\n").as_bytes())
                .and_then(|_| file.sync_all())
                .with_context(|| format!("cannot write the key file {}", path.display()))?;
            tracing::info!(path = %path.display(), "{made}");
            Ok(secret)
        }
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => std::fs::read_to_string(path)
            .with_context(|| format!("cannot read the key file {}", path.display())),
        Err(e) => Err(e).with_context(|| format!("cannot create the key file {}", path.display())),
    }
}

/// Checks that this node's secret is the one the database's other nodes use (the first
/// node to start records its fingerprint).
pub async fn check_fingerprint(conn: &mut Conn, secret: &Secret) -> anyhow::Result<()> {
    let mine = secret.fingerprint();
    let stored = server_keys::get_or_insert(conn, FINGERPRINT, &mine).await?;
    if stored.trim() != mine {
        bail!(
            "this node's secret is not the one the other nodes of this database use: give every \
             node the same server.secret_key (or copy secret.key from the first node's data \
             directory)"
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_for_different_purposes_differ_and_repeat() {
        let secret = Secret(b"0123456789abcdef0123456789abcdef".to_vec());
        assert_eq!(secret.derive("csrf"), secret.derive("csrf"));
        assert_ne!(secret.derive("csrf"), secret.derive("cursor"));
        let other = Secret(b"0123456789abcdef0123456789abcdeg".to_vec());
        assert_ne!(secret.fingerprint(), other.fingerprint());
    }
}
