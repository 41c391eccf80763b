//! Attachment bytes, content-addressed by SHA-256: a directory under the data directory
//! (the default) or an S3-compatible object store. Uploads are first streamed to a
//! temporary file on local disk, synced, and only then stored under their hash.

use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use futures_util::StreamExt;
use object_store::aws::AmazonS3Builder;
use object_store::path::Path as ObjectPath;
use object_store::{ObjectStore, WriteMultipart};
use tokio::io::{AsyncReadExt, AsyncSeekExt, AsyncWriteExt};

use crate::config::StorageConfig;

/// `s3://bucket/prefix` split into (bucket, prefix without slashes at either end).
pub fn parse_s3_url(url: &str) -> Result<(String, String), String> {
    let rest = url
        .strip_prefix("s3://")
        .ok_or_else(|| format!("{url:?} is neither empty nor s3://bucket/prefix"))?;
    let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
    let valid = |c: char| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '.';
    if bucket.len() < 3 || bucket.len() > 63 || !bucket.chars().all(valid) {
        return Err(format!("{bucket:?} is not an S3 bucket name"));
    }
    Ok((bucket.to_string(), prefix.trim_matches('/').to_string()))
}

#[derive(Clone)]
enum Backend {
    Local {
        root: PathBuf,
    },
    S3 {
        store: Arc<dyn ObjectStore>,
        prefix: String,
    },
}

/// Where attachment bytes live.
#[derive(Clone)]
pub struct BlobStore {
    backend: Backend,
    /// Uploads in progress and downloads from the object store are spooled here.
    temp_dir: PathBuf,
}

/// Lower-case hex SHA-256: the only names this store ever builds paths from.
fn checked(sha256: &str) -> io::Result<&str> {
    if sha256.len() == 64
        && sha256
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    {
        Ok(sha256)
    } else {
        Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "not a SHA-256 hex digest",
        ))
    }
}

fn to_io(e: object_store::Error) -> io::Error {
    match e {
        object_store::Error::NotFound { .. } => io::Error::new(io::ErrorKind::NotFound, e),
        e => io::Error::other(e),
    }
}

/// A temporary file that is removed when dropped, unless it was moved into place.
pub struct TempFile {
    path: PathBuf,
}

impl TempFile {
    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for TempFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

/// An opened stored file, read from the start.
pub type BlobFile = tokio::fs::File;

impl BlobStore {
    pub fn from_config(storage: &StorageConfig) -> anyhow::Result<Self> {
        let temp_dir = storage.data_dir.join("tmp");
        std::fs::create_dir_all(&temp_dir)
            .map_err(|e| anyhow::anyhow!("cannot create {}: {e}", temp_dir.display()))?;
        // Whatever a process left half-written over a day ago is of no use to anyone (a
        // younger file may belong to another server sharing this directory).
        if let Ok(entries) = std::fs::read_dir(&temp_dir) {
            for entry in entries.flatten() {
                let old = entry
                    .metadata()
                    .and_then(|m| m.modified())
                    .ok()
                    .and_then(|t| t.elapsed().ok())
                    .is_some_and(|age| age > std::time::Duration::from_secs(86_400));
                if old {
                    let _ = std::fs::remove_file(entry.path());
                }
            }
        }
        let backend = if storage.attachments.is_empty() {
            let root = storage.data_dir.join("attachments");
            std::fs::create_dir_all(&root)
                .map_err(|e| anyhow::anyhow!("cannot create {}: {e}", root.display()))?;
            Backend::Local { root }
        } else {
            let (bucket, prefix) =
                parse_s3_url(&storage.attachments).map_err(|e| anyhow::anyhow!(e))?;
            let s3 = &storage.s3;
            let mut builder = AmazonS3Builder::new()
                .with_bucket_name(bucket)
                .with_region(&s3.region)
                .with_allow_http(s3.allow_http);
            if !s3.endpoint.is_empty() {
                builder = builder
                    .with_endpoint(&s3.endpoint)
                    .with_virtual_hosted_style_request(false);
            }
            if !s3.access_key_id.is_empty() {
                builder = builder
                    .with_access_key_id(&s3.access_key_id)
                    .with_secret_access_key(&s3.secret_access_key);
            }
            let store = builder
                .build()
                .map_err(|e| anyhow::anyhow!("storage.attachments: {e}"))?;
            Backend::S3 {
                store: Arc::new(store),
                prefix,
            }
        };
        Ok(BlobStore { backend, temp_dir })
    }

    pub fn is_local(&self) -> bool {
        matches!(self.backend, Backend::Local { .. })
    }

    /// A new empty temporary file, opened for writing.
    pub async fn temp_file(&self) -> io::Result<(TempFile, tokio::fs::File)> {
        let name = format!("{}.part", crate::domain::ids::new_random_id());
        let path = self.temp_dir.join(name);
        let file = tokio::fs::OpenOptions::new()
            .write(true)
            .read(true)
            .create_new(true)
            .open(&path)
            .await?;
        Ok((TempFile { path }, file))
    }

    fn local_path(root: &Path, sha256: &str) -> PathBuf {
        root.join(&sha256[0..2]).join(&sha256[2..4]).join(sha256)
    }

    fn object_path(prefix: &str, sha256: &str) -> ObjectPath {
        if prefix.is_empty() {
            ObjectPath::from(format!("{}/{}", &sha256[0..2], sha256))
        } else {
            ObjectPath::from(format!("{prefix}/{}/{}", &sha256[0..2], sha256))
        }
    }

    /// Before the database transaction: for the object store, uploads the bytes unless
    /// they are there already. The local directory does nothing yet.
    pub async fn stage(&self, sha256: &str, temp: &TempFile) -> io::Result<()> {
        let sha256 = checked(sha256)?;
        match &self.backend {
            Backend::Local { .. } => Ok(()),
            Backend::S3 { store, prefix } => {
                let path = Self::object_path(prefix, sha256);
                match store.head(&path).await {
                    Ok(_) => Ok(()),
                    Err(object_store::Error::NotFound { .. }) => {
                        upload(store.as_ref(), &path, temp.path()).await
                    }
                    Err(e) => Err(to_io(e)),
                }
            }
        }
    }

    /// Inside the transaction that records the blob (holding its row): makes sure the
    /// bytes are in place. Locally the synced temporary file is renamed over the final
    /// name (same content, so this also mends a damaged copy) and the directory synced;
    /// in the object store, anything removed meanwhile is uploaded again.
    pub async fn ensure(&self, sha256: &str, temp: &TempFile) -> io::Result<()> {
        let sha256 = checked(sha256)?;
        match &self.backend {
            Backend::Local { root } => {
                let target = Self::local_path(root, sha256);
                let dir = target
                    .parent()
                    .expect("a blob path has a parent")
                    .to_owned();
                let source = temp.path().to_owned();
                let root = root.clone();
                tokio::task::spawn_blocking(move || -> io::Result<()> {
                    if !dir.is_dir() {
                        std::fs::create_dir_all(&dir)?;
                        // New directories must survive a crash too.
                        for d in [dir.parent().unwrap_or(&root), root.as_path()] {
                            std::fs::File::open(d)?.sync_all()?;
                        }
                    }
                    if source.exists() {
                        std::fs::rename(&source, &target)?;
                        std::fs::File::open(&dir)?.sync_all()?;
                    } else if !target.exists() {
                        // The same content twice in one upload: the first rename moved it.
                        return Err(io::Error::new(
                            io::ErrorKind::NotFound,
                            "the upload's temporary file is gone",
                        ));
                    }
                    Ok(())
                })
                .await
                .map_err(io::Error::other)?
            }
            Backend::S3 { store, prefix } => {
                let path = Self::object_path(prefix, sha256);
                match store.head(&path).await {
                    Ok(_) => Ok(()),
                    Err(object_store::Error::NotFound { .. }) => {
                        upload(store.as_ref(), &path, temp.path()).await
                    }
                    Err(e) => Err(to_io(e)),
                }
            }
        }
    }

    /// Puts new bytes in place of stored ones (the same content sealed anew, by
    /// `confide keys rekey`): locally an atomic rename over the old file, in the object
    /// store a new upload over the old object. The caller holds the blob's row.
    pub async fn replace(&self, sha256: &str, temp: &TempFile) -> io::Result<()> {
        let sha256 = checked(sha256)?;
        match &self.backend {
            Backend::Local { root } => {
                let target = Self::local_path(root, sha256);
                let source = temp.path().to_owned();
                tokio::task::spawn_blocking(move || -> io::Result<()> {
                    std::fs::rename(&source, &target)?;
                    let dir = target.parent().expect("a blob path has a parent");
                    std::fs::File::open(dir)?.sync_all()
                })
                .await
                .map_err(io::Error::other)?
            }
            Backend::S3 { store, prefix } => {
                upload(
                    store.as_ref(),
                    &Self::object_path(prefix, sha256),
                    temp.path(),
                )
                .await
            }
        }
    }

    /// Opens stored bytes for reading. From the object store they are first spooled to an
    /// unlinked temporary file, so that the caller can verify them before serving them.
    pub async fn open(&self, sha256: &str) -> io::Result<BlobFile> {
        let sha256 = checked(sha256)?;
        match &self.backend {
            Backend::Local { root } => tokio::fs::File::open(Self::local_path(root, sha256)).await,
            Backend::S3 { store, prefix } => {
                let path = Self::object_path(prefix, sha256);
                let got = store.get(&path).await.map_err(to_io)?;
                let (temp, mut file) = self.temp_file().await?;
                drop(temp); // unlinked now; the open handle keeps the bytes until closed
                let mut stream = got.into_stream();
                while let Some(chunk) = stream.next().await {
                    file.write_all(&chunk.map_err(to_io)?).await?;
                }
                file.flush().await?;
                file.seek(io::SeekFrom::Start(0)).await?;
                Ok(file)
            }
        }
    }

    /// Removes stored bytes; already gone is fine.
    pub async fn delete(&self, sha256: &str) -> io::Result<()> {
        let sha256 = checked(sha256)?;
        match &self.backend {
            Backend::Local { root } => {
                match tokio::fs::remove_file(Self::local_path(root, sha256)).await {
                    Err(e) if e.kind() != io::ErrorKind::NotFound => Err(e),
                    _ => Ok(()),
                }
            }
            Backend::S3 { store, prefix } => {
                match store.delete(&Self::object_path(prefix, sha256)).await {
                    Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
                    Err(e) => Err(to_io(e)),
                }
            }
        }
    }

    /// Where a locally stored blob lives (tests damage it on purpose).
    pub fn local_file(&self, sha256: &str) -> Option<PathBuf> {
        match &self.backend {
            Backend::Local { root } => Some(Self::local_path(root, checked(sha256).ok()?)),
            Backend::S3 { .. } => None,
        }
    }

    /// Overwrites stored bytes as they are, bypassing every check (tests use it to
    /// simulate damage in the object store).
    pub async fn overwrite_raw(&self, sha256: &str, bytes: Vec<u8>) -> io::Result<()> {
        let sha256 = checked(sha256)?;
        match &self.backend {
            Backend::Local { root } => {
                tokio::fs::write(Self::local_path(root, sha256), bytes).await
            }
            Backend::S3 { store, prefix } => store
                .put(&Self::object_path(prefix, sha256), bytes.into())
                .await
                .map(|_| ())
                .map_err(to_io),
        }
    }

    /// Whether stored bytes exist.
    pub async fn exists(&self, sha256: &str) -> io::Result<bool> {
        let sha256 = checked(sha256)?;
        match &self.backend {
            Backend::Local { root } => tokio::fs::try_exists(Self::local_path(root, sha256)).await,
            Backend::S3 { store, prefix } => {
                match store.head(&Self::object_path(prefix, sha256)).await {
                    Ok(_) => Ok(true),
                    Err(object_store::Error::NotFound { .. }) => Ok(false),
                    Err(e) => Err(to_io(e)),
                }
            }
        }
    }
}

/// Part size of multipart uploads to the object store (S3's minimum is 5 MiB).
const PART_BYTES: usize = 5 * 1024 * 1024;

/// Streams a file to the object store: one PUT when small, a multipart upload otherwise,
/// so that at most one part is held in memory.
async fn upload(store: &dyn ObjectStore, path: &ObjectPath, source: &Path) -> io::Result<()> {
    let mut file = tokio::fs::File::open(source).await?;
    let len = file.metadata().await?.len();
    if len <= PART_BYTES as u64 {
        let mut bytes = Vec::with_capacity(len as usize);
        file.read_to_end(&mut bytes).await?;
        store.put(path, bytes.into()).await.map_err(to_io)?;
        return Ok(());
    }
    let upload = store.put_multipart(path).await.map_err(to_io)?;
    let mut writer = WriteMultipart::new_with_chunk_size(upload, PART_BYTES);
    let mut buf = vec![0u8; 256 * 1024];
    let written = async {
        loop {
            let n = file.read(&mut buf).await?;
            if n == 0 {
                break;
            }
            writer.wait_for_capacity(1).await.map_err(to_io)?;
            writer.write(&buf[..n]);
        }
        io::Result::Ok(())
    }
    .await;
    match written {
        Ok(()) => writer.finish().await.map(|_| ()).map_err(to_io),
        Err(e) => {
            // No half-finished multipart upload is left in the bucket.
            let _ = writer.abort().await;
            Err(e)
        }
    }
}
