//! Preparing encryption at rest when a node starts: every practice gets a data key, and
//! content stored before encryption is sealed in place, a page at a time, each page in
//! one transaction with its progress mark, so an interrupted start resumes where it
//! stopped and never seals a value twice. On PostgreSQL one node does this at a time
//! (an advisory lock); the others wait, then find it done. Attachment bytes stored plain
//! are sealed too, under their keyed address, and the plain copies removed.

use std::collections::HashMap;

use anyhow::{bail, Context};

use crate::crypto::Kek;

use crate::service::attachments::{release_blobs, remove_blobs};
use crate::service::AppState;
use crate::store::keys::PracticeKey;
use crate::store::keys::{self, Keyring};
use crate::store::sealing::{self, Table, TABLES};
use crate::store::{Backend, Store};

/// Rows sealed per transaction.
const PAGE: i64 = 500;
/// The progress mark that says everything stored before encryption is sealed.
const ALL: &str = "all";

pub async fn prepare(state: &AppState) -> anyhow::Result<()> {
    let store = &state.store;
    let mut lock = None;
    if store.backend() == Backend::Postgres {
        let mut conn = store.write().await?;
        sealing::lock(&mut conn).await?;
        lock = Some(conn);
    }
    let done = prepare_locked(state).await;
    if let Some(mut conn) = lock {
        sealing::unlock(&mut conn).await?;
    }
    done
}

async fn prepare_locked(state: &AppState) -> anyhow::Result<()> {
    let (store, keys, now) = (&state.store, &*state.keys, state.now());
    let Some(kek) = keys.kek() else {
        let mut conn = store.write().await?;
        if sealing::anything_sealed(&mut conn).await? {
            bail!(
                "this database's content is encrypted, so it cannot be served with \
                 encryption.enabled = false: turn encryption back on, with the key it was \
                 encrypted with"
            );
        }
        return Ok(());
    };
    {
        let mut conn = store.write().await?;
        for key in keys::all_wrapped(&mut conn).await? {
            if key.kek_id != kek.id() {
                bail!(
                    "the practices' data keys are wrapped under key-encryption key {}, but \
                     this node's key is {}: give it the key the other nodes use \
                     (encryption.key_file or CONFIDE__ENCRYPTION__KEY)",
                    key.kek_id,
                    kek.id()
                );
            }
        }
        if let Some((_, true)) = sealing::progress(&mut conn, ALL).await? {
            return Ok(());
        }
    }
    let mut tx = store.begin().await?;
    for practice_id in keys::practices_without_key(&mut tx).await? {
        keys.create(&mut tx, &practice_id, now).await?;
    }
    tx.commit().await?;
    let mut sealed = 0u64;
    for table in TABLES {
        sealed += seal_table(store, keys, table)
            .await
            .with_context(|| format!("cannot encrypt the existing rows of {}", table.name))?;
    }
    let files = seal_files(state)
        .await
        .context("cannot encrypt the attachment bytes stored before encryption")?;
    if files > 0 {
        tracing::info!(
            files,
            "encrypted the attachment bytes stored before encryption at rest"
        );
    }
    let mut conn = store.write().await?;
    if sealed > 0 {
        // The plain values stay behind in free pages and the write-ahead log (SQLite) or
        // in dead row versions (PostgreSQL) until the tables are rewritten.
        sealing::rewrite_tables(&mut conn, store.backend())
            .await
            .context("cannot rewrite the tables after encrypting their content")?;
        tracing::info!(
            rows = sealed,
            "encrypted the content stored before encryption at rest"
        );
    }
    sealing::set_progress(&mut conn, ALL, "", true).await?;
    Ok(())
}

/// Seals the rows of one table from where the last attempt stopped; returns how many.
async fn seal_table(store: &Store, keys: &Keyring, table: &Table) -> anyhow::Result<u64> {
    let mut after = {
        let mut conn = store.write().await?;
        match sealing::progress(&mut conn, table.name).await? {
            Some((_, true)) => return Ok(0),
            Some((last, false)) => last,
            None => {
                sealing::set_progress(&mut conn, table.name, "", false).await?;
                String::new()
            }
        }
    };
    let mut count = 0u64;
    loop {
        let mut tx = store.begin().await?;
        let rows = sealing::page(&mut tx, table, &after, PAGE).await?;
        let Some(last) = rows.last().map(|r| r.page_key.clone()) else {
            sealing::set_progress(&mut tx, table.name, &after, true).await?;
            tx.commit().await?;
            return Ok(count);
        };
        for row in &rows {
            let key = keys.practice(&mut tx, &row.practice_id).await?;
            let sealed: Vec<Option<String>> = table
                .fields
                .iter()
                .zip(&row.values)
                .map(|(field, value)| key.seal_opt(*field, &row.row_id, value.as_deref()))
                .collect();
            sealing::update(&mut tx, table, row, &sealed).await?;
        }
        sealing::set_progress(&mut tx, table.name, &last, false).await?;
        tx.commit().await?;
        count += rows.len() as u64;
        after = last;
    }
}

/// The progress mark of sealing attachment bytes.
const FILES: &str = "files";
/// Attachments whose bytes are sealed per transaction.
const FILE_PAGE: i64 = 200;

/// Seals the bytes of every attachment stored plain, a page at a time from where the
/// last attempt stopped: each distinct file of the page is sealed with its practice's key
/// into a temporary file and put in place under its keyed address, then the page's rows
/// are pointed there in one transaction with the progress mark, and the plain bytes go
/// once nothing points at them. An interrupted page is sealed again (the same content
/// under the same address). Returns how many attachments were done.
async fn seal_files(state: &AppState) -> anyhow::Result<u64> {
    let store = &state.store;
    let mut after = {
        let mut conn = store.write().await?;
        match sealing::progress(&mut conn, FILES).await? {
            Some((_, true)) => return Ok(0),
            Some((last, false)) => last,
            None => {
                sealing::set_progress(&mut conn, FILES, "", false).await?;
                String::new()
            }
        }
    };
    let (mut count, mut missing) = (0u64, 0u64);
    loop {
        let files = {
            let mut conn = store.read().await?;
            sealing::plain_files(&mut conn, &after, FILE_PAGE).await?
        };
        let Some(last) = files.last().map(|f| f.id.clone()) else {
            let mut conn = store.write().await?;
            sealing::set_progress(&mut conn, FILES, &after, true).await?;
            if missing > 0 {
                // They answer as damaged, as they did before.
                tracing::warn!(
                    missing,
                    "attachments whose bytes were already missing stay so"
                );
            }
            return Ok(count);
        };
        missing += seal_page(state, &files, &last).await?;
        count += files.len() as u64;
        after = last;
    }
}

/// Seals one page of plain files (see [`seal_files`]); returns how many had no bytes.
async fn seal_page(
    state: &AppState,
    files: &[sealing::PlainFile],
    last: &str,
) -> anyhow::Result<u64> {
    let mut missing = 0;
    // Address → its sealed bytes, made once per page.
    let mut temps: HashMap<String, Option<crate::blobs::TempFile>> = HashMap::new();
    let mut rows = Vec::with_capacity(files.len());
    for file in files {
        let key = {
            let mut conn = state.store.read().await?;
            state.keys.practice(&mut conn, &file.practice_id).await?
        };
        let address = key.file_address(&file.sha256);
        if !temps.contains_key(&address) {
            let temp = match state.blobs.open(&file.sha256).await {
                Ok(plain) => Some(seal_into_temp(state, &key, plain).await?),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
                Err(e) => return Err(e.into()),
            };
            if let Some(temp) = &temp {
                state.blobs.stage(&address, temp).await?;
            }
            temps.insert(address.clone(), temp);
        }
        if temps[&address].is_none() {
            missing += 1;
        }
        let sealed = key.seal(
            crate::crypto::Field::AttachmentDigest,
            &file.id,
            &file.sha256,
        );
        rows.push((file, address, sealed));
    }
    let mut addresses: Vec<(&String, i64)> = rows.iter().map(|(f, a, _)| (a, f.size)).collect();
    // Blob rows are locked in one order (by address) everywhere.
    addresses.sort();
    addresses.dedup_by(|a, b| a.0 == b.0);
    let mut tx = state.store.begin().await?;
    for (address, size) in addresses {
        crate::store::attachments::upsert_blob(&mut tx, address, size, state.now()).await?;
        if let Some(temp) = &temps[address] {
            state.blobs.ensure(address, temp).await?;
        }
    }
    for (file, address, sealed) in &rows {
        sealing::set_sealed_file(&mut tx, &file.id, address, sealed).await?;
    }
    let plain: Vec<String> = files.iter().map(|f| f.sha256.clone()).collect();
    let released = release_blobs(&mut tx, plain)
        .await
        .map_err(|e| anyhow::anyhow!(e.describe()))?;
    sealing::set_progress(&mut tx, FILES, last, false).await?;
    tx.commit().await?;
    remove_blobs(state, &released).await;
    Ok(missing)
}

/// Seals a plain file into a new temporary file, 64 KiB at a time.
async fn seal_into_temp(
    state: &AppState,
    key: &PracticeKey,
    mut plain: crate::blobs::BlobFile,
) -> anyhow::Result<crate::blobs::TempFile> {
    use tokio::io::AsyncReadExt;
    let mut out = SealedTemp::new(state, key).await?;
    let mut buf = vec![0u8; crate::crypto::files::CHUNK];
    loop {
        let n = plain.read(&mut buf).await?;
        if n == 0 {
            break;
        }
        out.write(&buf[..n]).await?;
    }
    Ok(out.finish().await?)
}

/// A temporary file written sealed, piece by piece.
struct SealedTemp {
    temp: crate::blobs::TempFile,
    out: tokio::fs::File,
    sealer: crate::crypto::files::FileSealer,
    sealed: Vec<u8>,
}

impl SealedTemp {
    async fn new(state: &AppState, key: &PracticeKey) -> anyhow::Result<Self> {
        let sealer = key
            .file_sealer()
            .context("encryption is on, so files are sealed")?;
        let (temp, out) = state.blobs.temp_file().await?;
        Ok(SealedTemp {
            temp,
            out,
            sealed: sealer.header().to_vec(),
            sealer,
        })
    }

    async fn write(&mut self, piece: &[u8]) -> std::io::Result<()> {
        use tokio::io::AsyncWriteExt;
        self.sealer.update(piece, &mut self.sealed);
        self.out.write_all(&self.sealed).await?;
        self.sealed.clear();
        Ok(())
    }

    /// Writes the last chunk and syncs the file.
    async fn finish(mut self) -> std::io::Result<crate::blobs::TempFile> {
        use tokio::io::AsyncWriteExt;
        self.sealer.finish(&mut self.sealed);
        self.out.write_all(&self.sealed).await?;
        self.out.flush().await?;
        self.out.sync_all().await?;
        Ok(self.temp)
    }
}

/// `confide keys status`: this node's key, then one line per data key.
pub async fn status(store: &Store, kek: &Kek) -> anyhow::Result<Vec<String>> {
    let mut conn = store.read().await?;
    let slugs: HashMap<String, String> = crate::store::practices::all(&mut conn)
        .await?
        .into_iter()
        .map(|p| (p.id, p.slug))
        .collect();
    let sealed = matches!(sealing::progress(&mut conn, ALL).await?, Some((_, true)));
    let mut lines = vec![
        format!("this node's key-encryption key: {}", kek.id()),
        format!(
            "content stored before encryption: {}",
            if sealed {
                "all encrypted"
            } else {
                "not yet encrypted (a start does it)"
            }
        ),
    ];
    for key in keys::all_wrapped(&mut conn).await? {
        let practice = slugs.get(&key.practice_id).map_or("?", String::as_str);
        let state = if key.kek_id == kek.id() {
            ""
        } else {
            " (NOT this node's key)"
        };
        lines.push(format!(
            "practice {practice}: data key generation {} wrapped under {}{state}",
            key.generation, key.kek_id
        ));
    }
    Ok(lines)
}

/// `confide keys rotate`: wraps every data key under `new`, one key per transaction;
/// those already under it are left alone, so an interrupted rotation is run again.
/// Returns how many data keys are under `new` now.
pub async fn rotate(store: &Store, old: &Kek, new: &Kek) -> anyhow::Result<usize> {
    let all = {
        let mut conn = store.read().await?;
        keys::all_wrapped(&mut conn).await?
    };
    let mut count = 0;
    for key in &all {
        if key.kek_id == new.id() {
            count += 1;
            continue;
        }
        if key.kek_id != old.id() {
            bail!(
                "the data key of practice {} is wrapped under {}, which is neither the \
                 configured key ({}) nor the new one ({})",
                key.practice_id,
                key.kek_id,
                old.id(),
                new.id()
            );
        }
        let bytes = old
            .unwrap(&key.practice_id, key.generation, &key.wrapped)
            .map_err(|why| {
                anyhow::anyhow!(
                    "the data key of practice {} does not unwrap: {why}",
                    key.practice_id
                )
            })?;
        let wrapped = new.wrap(&key.practice_id, key.generation, &bytes);
        let mut tx = store.begin().await?;
        if !keys::rewrap(&mut tx, key, new.id(), &wrapped).await? {
            bail!(
                "the data key of practice {} changed during the rotation; run it again",
                key.practice_id
            );
        }
        tx.commit().await?;
        count += 1;
    }
    Ok(count)
}

/// What `confide keys rekey` did.
pub struct Rekeyed {
    pub generation: u32,
    pub values: u64,
    pub files: u64,
    pub passes: u32,
}

/// The progress mark of a practice's re-encryption: its new generation, and whether the
/// work is finished.
fn rekey_mark(practice_id: &str) -> String {
    format!("rekey:{practice_id}")
}

/// `confide keys rekey`: makes a new data key (generation) for the practice and seals
/// every value and file sealed with an older one again with it, while the servers run.
/// Each page is re-read and rewritten under lock in one transaction, so nothing a server
/// writes meanwhile is lost. Servers take up the new generation within
/// `encryption.refresh_seconds`; passes repeat until one finds nothing older after that
/// time. Run again after an interruption, it goes on with the same generation.
pub async fn rekey(state: &AppState, slug: &str) -> anyhow::Result<Rekeyed> {
    let store = &state.store;
    let practice = {
        let mut conn = store.read().await?;
        crate::store::practices::find_by_slug(&mut conn, slug)
            .await?
            .with_context(|| format!("there is no practice {slug:?}"))?
    };
    let mark = rekey_mark(&practice.id);
    let generation = {
        let mut tx = store.begin().await?;
        let generation = match sealing::progress(&mut tx, &mark).await? {
            Some((generation, false)) => generation.parse()?,
            _ => {
                let generation = state
                    .keys
                    .add_generation(&mut tx, &practice.id, state.now())
                    .await?;
                sealing::set_progress(&mut tx, &mark, &generation.to_string(), false).await?;
                generation
            }
        };
        tx.commit().await?;
        generation
    };
    state.keys.forget(&practice.id);
    let made_at = {
        let mut conn = store.read().await?;
        keys::wrapped_keys(&mut conn, &practice.id)
            .await?
            .into_iter()
            .find(|k| k.generation == generation)
            .map(|k| k.created_at)
            .context("the new data key is gone")?
    };
    // Every node has read the keys again by then, and writes with the new generation.
    let settled = made_at + 2 * 1000 * state.config.encryption.refresh_seconds as i64;
    let mut done = Rekeyed {
        generation,
        values: 0,
        files: 0,
        passes: 0,
    };
    loop {
        let key = {
            let mut conn = store.read().await?;
            state.keys.practice(&mut conn, &practice.id).await?
        };
        anyhow::ensure!(
            key.generation() == generation,
            "generation {generation} is not the practice's newest data key"
        );
        let started = state.clock.now_ms();
        let mut resealed = 0;
        for table in TABLES {
            resealed += rekey_table(state, table, &practice.id, &key)
                .await
                .with_context(|| format!("cannot re-encrypt the rows of {}", table.name))?;
        }
        let files = rekey_files(state, &practice.id, &key)
            .await
            .context("cannot re-encrypt the attachment bytes")?;
        done.values += resealed;
        done.files += files;
        done.passes += 1;
        if resealed + files == 0 && started >= settled {
            break;
        }
        if resealed + files == 0 {
            let wait = (settled - started).max(0) as u64;
            tokio::time::sleep(std::time::Duration::from_millis(wait)).await;
        }
    }
    let mut conn = store.write().await?;
    sealing::set_progress(&mut conn, &mark, &generation.to_string(), true).await?;
    Ok(done)
}

/// Seals again, page by page under lock, the practice's values in `table` that an older
/// generation sealed; returns how many rows changed.
async fn rekey_table(
    state: &AppState,
    table: &Table,
    practice_id: &str,
    key: &PracticeKey,
) -> anyhow::Result<u64> {
    let versions = table.name == "chart_note_versions";
    if versions {
        // The versions' no-change trigger lets content change only while this is marked.
        let mut conn = state.store.write().await?;
        sealing::set_progress(&mut conn, table.name, "", false).await?;
    }
    let mut after = String::new();
    let mut count = 0;
    let walked = async {
        loop {
            let mut tx = state.store.begin().await?;
            let rows =
                sealing::page_for_update(&mut tx, table, &after, PAGE, state.store.backend())
                    .await?;
            let Some(last) = rows.last().map(|r| r.page_key.clone()) else {
                return anyhow::Ok(());
            };
            for row in rows.iter().filter(|r| r.practice_id == practice_id) {
                let mut changed = false;
                let mut sealed = Vec::with_capacity(row.values.len());
                for (field, value) in table.fields.iter().zip(&row.values) {
                    let again = match value {
                        Some(v) => key
                            .reseal(*field, &row.row_id, v)
                            .map_err(crate::store::keys::unsealable)?,
                        None => None,
                    };
                    changed |= again.is_some();
                    sealed.push(again.or_else(|| value.clone()));
                }
                if changed {
                    sealing::update(&mut tx, table, row, &sealed).await?;
                    count += 1;
                }
            }
            tx.commit().await?;
            after = last;
        }
    }
    .await;
    if versions {
        let mut conn = state.store.write().await?;
        sealing::set_progress(&mut conn, table.name, "", true).await?;
    }
    walked?;
    Ok(count)
}

/// Seals again the practice's files an older generation sealed, each in place under its
/// address while its blob row is held; returns how many.
async fn rekey_files(
    state: &AppState,
    practice_id: &str,
    key: &PracticeKey,
) -> anyhow::Result<u64> {
    use tokio::io::AsyncReadExt;
    let mut after = String::new();
    let mut count = 0;
    loop {
        let page = {
            let mut conn = state.store.read().await?;
            sealing::sealed_files(&mut conn, practice_id, &after, FILE_PAGE).await?
        };
        let Some(last) = page.last().map(|(a, _)| a.clone()) else {
            return Ok(count);
        };
        for (address, size) in &page {
            let mut tx = state.store.begin().await?;
            if !sealing::hold_blob(&mut tx, address).await? {
                continue;
            }
            let mut stored = match state.blobs.open(address).await {
                Ok(file) => file,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
                Err(e) => return Err(e.into()),
            };
            let mut header = [0u8; crate::crypto::files::HEADER_LEN];
            stored.read_exact(&mut header).await?;
            if crate::crypto::files::generation_of(&header) == Some(key.generation()) {
                continue;
            }
            let mut opener = key
                .file_opener(&header)
                .map_err(|why| anyhow::anyhow!("the file {address} does not open: {why}"))?;
            let mut out = SealedTemp::new(state, key).await?;
            let size = *size as u64;
            let chunks = crate::crypto::files::chunks(size);
            let mut chunk = Vec::new();
            for i in 0..chunks {
                chunk.resize(crate::crypto::files::chunk_len(size, i), 0);
                stored.read_exact(&mut chunk).await?;
                opener
                    .open_next(&mut chunk, i + 1 == chunks)
                    .map_err(|why| anyhow::anyhow!("the file {address} does not open: {why}"))?;
                out.write(&chunk).await?;
            }
            let temp = out.finish().await?;
            state.blobs.replace(address, &temp).await?;
            tx.commit().await?;
            count += 1;
        }
        after = last;
    }
}
