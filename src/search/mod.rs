//! The search index (tantivy), one document per message, under `<data_dir>/search/`.
//!
//! `search/CURRENT` names the live index directory. One writer (the indexer thread) follows
//! the event log, commits at least once a second and stores the last sequence it indexed
//! in each commit's payload, so that after a crash it resumes from there. A rebuild
//! (`confide reindex`, or a missing or unreadable index at start) writes a whole new
//! directory and then switches `CURRENT`; the server keeps answering from the old one
//! meanwhile and moves over when it sees the switch.
//!
//! The index holds no words (a blind index): every token of a subject, body, name or
//! file name is replaced, when indexing and when querying, by a keyed hash with the
//! practice's index key (`PracticeKey::index_token`), and those hashes are what the
//! text fields hold, in order, so that phrases still match. Nothing but ids is stored;
//! snippets are made from the decrypted message.

pub mod indexer;
pub mod query;

use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};

use anyhow::Context;
use tantivy::schema::{
    Field, IndexRecordOption, Schema, TextFieldIndexing, TextOptions, FAST, INDEXED, STORED, STRING,
};
use tantivy::tokenizer::{
    AsciiFoldingFilter, LowerCaser, RemoveLongFilter, SimpleTokenizer, TextAnalyzer,
    WhitespaceTokenizer,
};

use crate::store::keys::PracticeKey;
use tantivy::{Index, IndexReader, ReloadPolicy};

/// Bumped whenever the schema or the analyzer changes: an index of another version is
/// rebuilt.
pub const SCHEMA_VERSION: u32 = 2;
/// The text fields' tokenizer: they hold keyed hashes separated by spaces.
pub const BLIND: &str = "confide_blind";

#[derive(Clone, Copy)]
pub struct Fields {
    pub message_id: Field,
    pub thread_id: Field,
    pub practice_id: Field,
    /// Everyone who takes part in the message's thread.
    pub reader: Field,
    pub from_id: Field,
    pub to_id: Field,
    pub subject: Field,
    pub body: Field,
    pub from_name: Field,
    /// The sender's name if a client may know it (staff other than external agents).
    pub from_name_public: Field,
    pub to_name: Field,
    pub to_name_public: Field,
    pub attachment_name: Field,
    pub has_attachment: Field,
    pub created_at: Field,
}

pub fn schema() -> (Schema, Fields) {
    let mut b = Schema::builder();
    let text = TextOptions::default().set_indexing_options(
        TextFieldIndexing::default()
            .set_tokenizer(BLIND)
            .set_index_option(IndexRecordOption::WithFreqsAndPositions),
    );
    let fields = Fields {
        message_id: b.add_text_field("message_id", STRING | STORED),
        thread_id: b.add_text_field("thread_id", STRING | STORED),
        practice_id: b.add_text_field("practice_id", STRING),
        reader: b.add_text_field("reader", STRING),
        from_id: b.add_text_field("from_id", STRING),
        to_id: b.add_text_field("to_id", STRING),
        subject: b.add_text_field("subject", text.clone()),
        body: b.add_text_field("body", text.clone()),
        from_name: b.add_text_field("from_name", text.clone()),
        from_name_public: b.add_text_field("from_name_public", text.clone()),
        to_name: b.add_text_field("to_name", text.clone()),
        to_name_public: b.add_text_field("to_name_public", text.clone()),
        attachment_name: b.add_text_field("attachment_name", text),
        has_attachment: b.add_text_field("has_attachment", STRING),
        created_at: b.add_i64_field("created_at", INDEXED | FAST),
    };
    (b.build(), fields)
}

/// Words: split on anything not alphanumeric, lower-cased, accents folded (so "Muller"
/// finds "Müller"), very long tokens dropped.
pub fn analyzer() -> TextAnalyzer {
    TextAnalyzer::builder(SimpleTokenizer::default())
        .filter(RemoveLongFilter::limit(60))
        .filter(LowerCaser)
        .filter(AsciiFoldingFilter)
        .build()
}

/// The words of `text`, as [`analyzer`] finds them.
pub fn words(text: &str) -> Vec<String> {
    let mut analyzer = analyzer();
    let mut stream = analyzer.token_stream(text);
    let mut out = Vec::new();
    while stream.advance() {
        out.push(stream.token().text.clone());
    }
    out
}

/// `text` as a text field holds it: the keyed hash of each word, in order.
pub fn blind_text(key: &PracticeKey, text: &str) -> String {
    words(text)
        .iter()
        .map(|w| key.index_token(w))
        .collect::<Vec<_>>()
        .join(" ")
}

fn register_tokenizers(index: &Index) {
    index
        .tokenizers()
        .register(BLIND, TextAnalyzer::from(WhitespaceTokenizer::default()));
}

/// An open index directory with its reader.
pub struct Active {
    pub name: String,
    pub index: Index,
    pub reader: IndexReader,
    pub fields: Fields,
}

/// The commit payload: where in the event log the index stands.
#[derive(serde::Serialize, serde::Deserialize)]
pub struct Payload {
    pub schema: u32,
    pub seq: i64,
}

impl Active {
    /// Opens the index directory `name` under `root` (as another process may, to read).
    pub fn open(root: &Path, name: &str) -> anyhow::Result<Active> {
        let dir = root.join(name);
        let mut index = Index::open_in_dir(&dir)
            .with_context(|| format!("opening the search index {}", dir.display()))?;
        register_tokenizers(&index);
        // A query searches the index's segments side by side.
        let threads = std::thread::available_parallelism().map_or(1, |n| n.get().min(4));
        index.set_multithread_executor(threads)?;
        let (_, fields) = schema();
        let reader = index
            .reader_builder()
            .reload_policy(ReloadPolicy::Manual)
            .try_into()?;
        Ok(Active {
            name: name.to_string(),
            index,
            reader,
            fields,
        })
    }

    /// The committed payload, if it is one of this version.
    pub fn payload(&self) -> Option<Payload> {
        let metas = self.index.load_metas().ok()?;
        let payload: Payload = serde_json::from_str(metas.payload.as_deref()?).ok()?;
        (payload.schema == SCHEMA_VERSION).then_some(payload)
    }
}

/// Creates a new empty index directory (not yet current); returns its name.
pub fn create_index(root: &Path) -> anyhow::Result<(String, Index)> {
    std::fs::create_dir_all(root).with_context(|| format!("creating {}", root.display()))?;
    let name = format!("index-{}", crate::domain::ids::new_random_id());
    let dir = root.join(&name);
    std::fs::create_dir_all(&dir)?;
    let (schema, _) = schema();
    let index = Index::create_in_dir(&dir, schema)?;
    register_tokenizers(&index);
    Ok((name, index))
}

/// Makes `name` the current index, atomically.
pub fn switch_current(root: &Path, name: &str) -> anyhow::Result<()> {
    let tmp = root.join("CURRENT.tmp");
    {
        use std::io::Write;
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(name.as_bytes())?;
        f.sync_all()?;
    }
    std::fs::rename(&tmp, root.join("CURRENT"))?;
    std::fs::File::open(root)?.sync_all()?;
    Ok(())
}

pub fn read_current(root: &Path) -> Option<String> {
    let name = std::fs::read_to_string(root.join("CURRENT")).ok()?;
    let name = name.trim().to_string();
    (name.starts_with("index-") && !name.contains('/') && root.join(&name).is_dir()).then_some(name)
}

/// Removes index directories other than the current one.
pub fn remove_stale(root: &Path, current: &str) {
    if let Ok(entries) = std::fs::read_dir(root) {
        for e in entries.flatten() {
            let name = e.file_name().to_string_lossy().to_string();
            if name.starts_with("index-") && name != current {
                let _ = std::fs::remove_dir_all(e.path());
            }
        }
    }
}

/// The search index as the server uses it: the current directory, swapped when a rebuild
/// finishes.
#[derive(Clone)]
pub struct SearchIndex {
    root: PathBuf,
    active: Arc<RwLock<Option<Arc<Active>>>>,
}

impl SearchIndex {
    pub fn new(data_dir: &Path) -> SearchIndex {
        SearchIndex {
            root: data_dir.join("search"),
            active: Arc::new(RwLock::new(None)),
        }
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The index searches use now; None until the first one is ready.
    pub fn active(&self) -> Option<Arc<Active>> {
        self.active
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    pub(crate) fn set_active(&self, active: Arc<Active>) {
        *self.active.write().unwrap_or_else(|e| e.into_inner()) = Some(active);
    }

    /// Opens the current index directory, if there is a usable one of this version.
    pub(crate) fn open_current(&self) -> Option<Arc<Active>> {
        let name = read_current(&self.root)?;
        match Active::open(&self.root, &name) {
            Ok(a) if a.payload().is_some() => Some(Arc::new(a)),
            Ok(_) => {
                tracing::warn!("the search index is of another version: rebuilding it");
                None
            }
            Err(e) => {
                tracing::warn!(error = %format!("{e:#}"), "the search index cannot be opened: rebuilding it");
                None
            }
        }
    }
}
