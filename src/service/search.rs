//! Searching one's own mailbox. The index narrows the candidates (practice, threads the
//! searcher takes part in, the words and operators); every candidate is then re-checked
//! against the database, which also applies folder and read state, before it is shown.

use crate::domain::ids::FolderId;
use crate::domain::mailbox::Placement;
use crate::domain::Code;

use crate::domain::search::{parse, Query};
use crate::error::{AppError, AppResult};
use crate::search::query::{self, Viewer};
use crate::search::Active;
use crate::store::folders as folder_store;
use crate::store::search::{self as search_store, VisibleHit};
use tantivy::snippet::SnippetGenerator;
use tantivy::Searcher;

use super::audit::{record_read, AuditEntry};
use super::cursor::List;
use super::mailbox::read::{resolve_folder, FolderRef};
use super::mailbox::{sender_ref_of, PersonRef};
use super::{AppState, Caller};

#[derive(Debug, Clone)]
pub struct Hit {
    pub thread_id: String,
    pub message_id: String,
    pub subject: String,
    /// The best passage of the body, HTML-escaped, matches in `<b>…</b>`.
    pub snippet: String,
    pub sender: PersonRef,
    pub created_at: i64,
}

/// Candidates taken from the index at a time after the first page's worth, and at most
/// per request.
const BATCH: usize = 50;
const SCAN_MAX: usize = 1000;

/// Search pages are offsets into the caller's ranked matches; beyond this, refine the query.
const OFFSET_MAX: usize = 100_000;

fn decode_offset(state: &AppState, caller: &Caller, cursor: Option<&str>) -> AppResult<usize> {
    let Some(c) = cursor else { return Ok(0) };
    let offset: usize = state
        .cursors
        .decode(List::Search, caller.person.id.as_str(), c)?;
    if offset > OFFSET_MAX {
        return Err(AppError::invalid(
            "cursor",
            "cursor is not one this server handed out.",
        ));
    }
    Ok(offset)
}

fn encode_offset(state: &AppState, caller: &Caller, offset: usize) -> String {
    state
        .cursors
        .encode(List::Search, caller.person.id.as_str(), &offset)
}

/// The folder an `in:` names: a system folder, sent, team:<group>, or a folder of the
/// caller's by id or by name.
async fn folder_of(state: &AppState, caller: &Caller, name: &str) -> AppResult<FolderRef> {
    let mut conn = state.store.read().await?;
    let unknown = || {
        AppError::field(
            Code::InvalidQuery,
            "q",
            format!(
                "q: in: names no folder of yours called {:?}",
                name.chars().take(60).collect::<String>()
            ),
        )
    };
    match resolve_folder(&mut conn, caller, name).await {
        Ok(f) => Ok(f),
        Err(e) if e.code == Code::NotFound => {
            let wanted = name.to_lowercase();
            folder_store::list(&mut conn, caller.person.id.as_str())
                .await?
                .into_iter()
                .find(|f| f.name.to_lowercase() == wanted)
                .map(|f| FolderRef::Place(Placement::Folder(FolderId::from_trusted(f.id))))
                .ok_or_else(unknown)
        }
        Err(_) => Err(unknown()),
    }
}

fn keep(hit: &VisibleHit, folder: &Option<FolderRef>, unread: Option<bool>) -> bool {
    let in_folder = match folder {
        None => true,
        Some(FolderRef::Place(place)) => hit.folder == place.as_stored(),
        Some(FolderRef::Sent) => hit.has_sent != 0,
        Some(FolderRef::Team(g)) => hit.via_group.as_deref() == Some(g.as_str()),
    };
    in_folder && unread.is_none_or(|u| (hit.unread != 0) == u)
}

/// Searches the caller's mailbox; returns a page of hits and the next cursor. The search
/// is audited (that it happened, and by whom), never the query.
#[tracing::instrument(skip_all)]
pub async fn search(
    state: &AppState,
    caller: &Caller,
    q: &str,
    cursor: Option<&str>,
    limit: usize,
) -> AppResult<(Vec<Hit>, Option<String>)> {
    let parsed: Query = parse(q).map_err(|e| AppError::field(e.code, "q", e.message))?;
    let offset = decode_offset(state, caller, cursor)?;
    let limit = limit.clamp(1, 50);
    let filters = Filters {
        folder: match parsed.folder() {
            Some(name) => Some(folder_of(state, caller, name).await?),
            None => None,
        },
        unread: parsed.unread(),
    };
    let active = state.search.active().ok_or_else(|| {
        AppError::new(
            Code::SearchUnavailable,
            "The search index is being built; please try again in a moment.",
        )
    })?;
    let key = {
        let mut conn = state.store.read().await?;
        caller.key(&mut conn).await?
    };
    let viewer = Viewer {
        person_id: caller.person.id.as_str(),
        name: &caller.person.name,
        practice_id: caller.practice_id(),
        is_client: caller.role() == crate::domain::Role::Client,
        key: &key,
    };
    let searcher = active.reader.searcher();
    let scan = Scan {
        query: query::build(&active.fields, &viewer, &parsed),
        plain: query::plain_words(&viewer, &parsed),
        statistics: query::ReaderStatistics::new(&active, &searcher, caller.person.id.as_str()),
        by_relevance: parsed.has_text(),
        active: &active,
        searcher: &searcher,
    };
    // The audit row is committed (with whatever else is being written) while the index
    // and the database answer: polled first, it is handed to the group commit before the
    // search starts, and nothing is shown before it is durable.
    let ((), (hits, next)) = futures_util::future::try_join(
        audit_search(state, caller),
        collect(state, caller, &scan, &filters, offset, limit),
    )
    .await?;
    Ok((hits, next.map(|at| encode_offset(state, caller, at))))
}

/// What `in:` and `is:` ask of a hit, checked against the database's view of it.
struct Filters {
    folder: Option<FolderRef>,
    unread: Option<bool>,
}

/// One search over the index, with the caller's own statistics.
struct Scan<'a> {
    active: &'a Active,
    searcher: &'a Searcher,
    statistics: query::ReaderStatistics<'a>,
    query: Box<dyn tantivy::query::Query>,
    /// The query's words by their hash, for snippets.
    plain: std::collections::HashMap<String, String>,
    by_relevance: bool,
}

impl Scan<'_> {
    /// The ids of `count` candidate messages from `offset` on, best first.
    fn candidates(&self, offset: usize, count: usize) -> AppResult<Vec<String>> {
        tokio::task::block_in_place(|| {
            query::run(
                self.active,
                self.searcher,
                &self.statistics,
                &*self.query,
                self.by_relevance,
                offset,
                count,
            )
        })
        .map_err(|e| AppError::internal(anyhow::Error::new(e).context("searching")))
    }
}

/// A page of hits: candidates from the index, each re-checked against the database (still
/// the caller's, in the folder and state asked for). Returns the hits and, when there may
/// be more, the offset the next page starts at.
async fn collect(
    state: &AppState,
    caller: &Caller,
    scan: &Scan<'_>,
    filters: &Filters,
    mut offset: usize,
    limit: usize,
) -> AppResult<(Vec<Hit>, Option<usize>)> {
    let snippets = tokio::task::block_in_place(|| {
        scan.statistics
            .snippets(&*scan.query, scan.active.fields.body, 200, &scan.plain)
    })
    .map_err(|e| AppError::internal(anyhow::Error::new(e).context("preparing snippets")))?;
    let mut hits = Vec::new();
    let mut scanned = 0;
    // A page's worth first: most candidates pass the re-check.
    let mut batch = limit;
    while scanned < SCAN_MAX {
        let candidates = scan.candidates(offset, batch)?;
        let confirmed = {
            let mut conn = state.store.read().await?;
            let me = caller.person.id.as_str();
            search_store::visible(
                &mut conn,
                &caller.keys,
                caller.practice_id(),
                me,
                &candidates,
            )
            .await?
        };
        for (i, id) in candidates.iter().enumerate() {
            let Some(hit) = confirmed.iter().find(|h| &h.id == id) else {
                continue;
            };
            if !keep(hit, &filters.folder, filters.unread) {
                continue;
            }
            hits.push(hit_of(caller, &snippets, hit)?);
            if hits.len() == limit {
                let more = i + 1 < candidates.len() || candidates.len() == batch;
                return Ok((hits, more.then_some(offset + i + 1)));
            }
        }
        scanned += candidates.len();
        offset += candidates.len();
        if candidates.len() < batch {
            return Ok((hits, None));
        }
        batch = BATCH;
    }
    // Rare filters over many matches: hand back a cursor to go on from here.
    Ok((hits, Some(offset)))
}

/// A confirmed match as the caller sees it, with the best passage of its body.
fn hit_of(caller: &Caller, snippets: &SnippetGenerator, hit: &VisibleHit) -> AppResult<Hit> {
    let text = crate::domain::markdown::plain_text(&hit.body);
    let mut snippet = snippets.snippet(&text).to_html();
    if snippet.is_empty() {
        let start: String = text.chars().take(200).collect();
        snippet = html_escape(&start);
    }
    Ok(Hit {
        thread_id: hit.thread_id.clone(),
        message_id: hit.id.clone(),
        subject: hit.subject.clone(),
        snippet,
        sender: sender_ref_of(caller, &hit.sender_id, &hit.sender_name, &hit.sender_role)?,
        created_at: hit.created_at,
    })
}

/// Audits that the caller searched (never what for): even if the search then fails, as
/// the row is written while it runs.
async fn audit_search(state: &AppState, caller: &Caller) -> AppResult<()> {
    let entry = AuditEntry {
        action: "search",
        object_type: None,
        object_id: None,
        outcome: "success",
    };
    record_read(state, caller, entry).await
}

fn html_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}
