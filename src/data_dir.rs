//! The data directory holds the database, attachments, the search index and the mail
//! outbox (whose `.eml` files carry live links): only the server's user may read it. It is
//! 0700 and every file in it 0600: new ones through the process's umask, existing ones
//! fixed at start.

use std::path::Path;

use anyhow::Context;

/// Makes every file and directory this process creates from now on private to its user.
pub fn restrict_new_files() {
    #[cfg(unix)]
    // SAFETY: umask only sets the process's file mode creation mask; it cannot fail.
    unsafe {
        libc::umask(0o077);
    }
}

/// Creates the data directory (0700) or fixes the modes of an existing one and of
/// everything in it, saying in the log what it fixed.
pub fn prepare(dir: &Path) -> anyhow::Result<()> {
    std::fs::create_dir_all(dir)
        .with_context(|| format!("cannot create storage.data_dir {}", dir.display()))?;
    // A symbolic link is followed once, to the directory it names.
    let dir = &std::fs::canonicalize(dir)
        .with_context(|| format!("cannot resolve storage.data_dir {}", dir.display()))?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(dir)
            .with_context(|| format!("cannot read storage.data_dir {}", dir.display()))?
            .permissions()
            .mode();
        if mode & 0o077 != 0 {
            tracing::warn!(
                data_dir = %dir.display(),
                mode = format!("{:o}", mode & 0o777),
                "the data directory was open to other users; making it private (0700, files 0600)"
            );
        }
        let fixed = fix_modes(dir)?;
        if fixed > 0 {
            tracing::info!(
                data_dir = %dir.display(),
                fixed,
                "made files and directories in the data directory private (0700, files 0600)"
            );
        }
    }
    Ok(())
}

/// Sets directories to 0700 and files to 0600 where they allow more; returns how many it
/// changed. Symbolic links are left alone (and not followed).
#[cfg(unix)]
fn fix_modes(dir: &Path) -> anyhow::Result<usize> {
    use std::os::unix::fs::PermissionsExt;
    let mut fixed = 0;
    let mut pending = vec![dir.to_path_buf()];
    while let Some(path) = pending.pop() {
        let meta = std::fs::symlink_metadata(&path)
            .with_context(|| format!("cannot read {}", path.display()))?;
        let wanted = if meta.is_dir() {
            0o700
        } else if meta.is_file() {
            0o600
        } else {
            continue;
        };
        if meta.permissions().mode() & 0o777 != wanted {
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(wanted))
                .with_context(|| format!("cannot make {} private", path.display()))?;
            fixed += 1;
        }
        if meta.is_dir() {
            for entry in std::fs::read_dir(&path)
                .with_context(|| format!("cannot list {}", path.display()))?
            {
                pending.push(entry?.path());
            }
        }
    }
    Ok(fixed)
}

#[cfg(all(test, unix))]
mod tests {
    use std::os::unix::fs::PermissionsExt;

    use super::*;

    fn mode(path: &Path) -> u32 {
        std::fs::metadata(path).unwrap().permissions().mode() & 0o777
    }

    #[test]
    fn an_open_data_directory_is_made_private() {
        let root = tempfile::tempdir().unwrap();
        let dir = root.path().join("data");
        std::fs::create_dir_all(dir.join("outbox")).unwrap();
        std::fs::write(dir.join("outbox/a.eml"), "link").unwrap();
        std::fs::write(dir.join("confide.db"), "db").unwrap();
        for (path, m) in [
            (dir.clone(), 0o755),
            (dir.join("outbox"), 0o755),
            (dir.join("outbox/a.eml"), 0o644),
            (dir.join("confide.db"), 0o666),
        ] {
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(m)).unwrap();
        }
        prepare(&dir).unwrap();
        assert_eq!(mode(&dir), 0o700);
        assert_eq!(mode(&dir.join("outbox")), 0o700);
        assert_eq!(mode(&dir.join("outbox/a.eml")), 0o600);
        assert_eq!(mode(&dir.join("confide.db")), 0o600);
        assert_eq!(fix_modes(&dir).unwrap(), 0, "nothing left to fix");
    }
}
