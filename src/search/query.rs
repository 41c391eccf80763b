//! Turning a parsed query into a tantivy query for one searcher, and running it.

use chrono::{NaiveDate, NaiveTime};
use std::collections::{BTreeMap, HashMap};

use tantivy::collector::{Count, TopDocs};
use tantivy::query::Bm25StatisticsProvider;
use tantivy::query::{
    AllQuery, BooleanQuery, BoostQuery, ConstScoreQuery, EmptyQuery, Occur, PhraseQuery, Query,
    RangeQuery, TermQuery,
};
use tantivy::schema::{Field, IndexRecordOption, Value};
use tantivy::snippet::SnippetGenerator;
use tantivy::{Order, Searcher, TantivyDocument, Term};

use super::{analyzer, words as tokens, Active, Fields};
use crate::domain::search::{Clause, Query as Parsed, Text};
use crate::store::keys::PracticeKey;

/// Who searches: their id, practice, and whether they may only know staff by name.
pub struct Viewer<'a> {
    pub person_id: &'a str,
    /// The searcher's own name (a client may find their own messages by it).
    pub name: &'a str,
    pub practice_id: &'a str,
    pub is_client: bool,
    /// The practice's key: the index holds its keyed hashes of words, not words.
    pub key: &'a PracticeKey,
}

impl Viewer<'_> {
    fn blind(&self, words: &[String]) -> Vec<String> {
        words.iter().map(|w| self.key.index_token(w)).collect()
    }
}

/// The words of a parsed query's text, by their keyed hash (to weigh and mark them in
/// snippets, which are made from the plain message).
pub fn plain_words(viewer: &Viewer, parsed: &Parsed) -> HashMap<String, String> {
    let mut out = HashMap::new();
    for t in &parsed.terms {
        if let Clause::Any(text) | Clause::From(text) | Clause::To(text) | Clause::Subject(text) =
            &t.clause
        {
            for word in tokens(&text.text) {
                out.insert(viewer.key.index_token(&word), word);
            }
        }
    }
    out
}

/// The text in one field: a term, or a phrase for several words.
fn in_field(field: Field, words: &[String]) -> Box<dyn Query> {
    if words.len() == 1 {
        Box::new(TermQuery::new(
            Term::from_field_text(field, &words[0]),
            IndexRecordOption::WithFreqsAndPositions,
        ))
    } else {
        Box::new(PhraseQuery::new(
            words
                .iter()
                .map(|w| Term::from_field_text(field, w))
                .collect(),
        ))
    }
}

fn any_of(parts: Vec<Box<dyn Query>>) -> Box<dyn Query> {
    Box::new(BooleanQuery::new(
        parts.into_iter().map(|q| (Occur::Should, q)).collect(),
    ))
}

/// An exact value (an id, a flag): it filters and adds nothing to the ranking, so it is
/// not scored.
fn term(field: Field, value: &str) -> Box<dyn Query> {
    Box::new(ConstScoreQuery::new(
        Box::new(TermQuery::new(
            Term::from_field_text(field, value),
            IndexRecordOption::Basic,
        )),
        0.0,
    ))
}

/// A name clause: for a client only names they may know, or their own.
fn name_clause(
    public: Field,
    all: Field,
    own_id: Field,
    viewer: &Viewer,
    words: &[String],
) -> Box<dyn Query> {
    let blind = viewer.blind(words);
    if viewer.is_client {
        let own = tokens(viewer.name);
        if words.iter().all(|w| own.contains(w)) {
            any_of(vec![
                in_field(public, &blind),
                term(own_id, viewer.person_id),
            ])
        } else {
            in_field(public, &blind)
        }
    } else {
        in_field(all, &blind)
    }
}

fn day_start(day: NaiveDate) -> i64 {
    day.and_time(NaiveTime::MIN).and_utc().timestamp_millis()
}

fn text_clause(
    f: &Fields,
    viewer: &Viewer,
    clause: &Clause,
    text: &Text,
) -> Option<Box<dyn Query>> {
    let words = tokens(&text.text);
    if words.is_empty() {
        return None;
    }
    let blind = viewer.blind(&words);
    Some(match clause {
        Clause::Any(_) => {
            let sender = if viewer.is_client {
                f.from_name_public
            } else {
                f.from_name
            };
            any_of(vec![
                Box::new(BoostQuery::new(in_field(f.subject, &blind), 2.0)),
                in_field(f.body, &blind),
                in_field(sender, &blind),
                in_field(f.attachment_name, &blind),
            ])
        }
        Clause::From(_) if text.text == "me" && !text.phrase => term(f.from_id, viewer.person_id),
        Clause::To(_) if text.text == "me" && !text.phrase => term(f.to_id, viewer.person_id),
        Clause::From(_) => name_clause(f.from_name_public, f.from_name, f.from_id, viewer, &words),
        Clause::To(_) => name_clause(f.to_name_public, f.to_name, f.to_id, viewer, &words),
        Clause::Subject(_) => in_field(f.subject, &blind),
        _ => return None,
    })
}

/// The tantivy query for a parsed query, always limited to the viewer's practice and the
/// messages of threads they take part in. Folder and read state are not in the index:
/// the caller filters them against the database.
pub fn build(f: &Fields, viewer: &Viewer, parsed: &Parsed) -> Box<dyn Query> {
    let mut clauses: Vec<(Occur, Box<dyn Query>)> = vec![
        (Occur::Must, term(f.practice_id, viewer.practice_id)),
        (Occur::Must, term(f.reader, viewer.person_id)),
    ];
    for t in &parsed.terms {
        let q: Option<Box<dyn Query>> = match &t.clause {
            c @ (Clause::Any(text)
            | Clause::From(text)
            | Clause::To(text)
            | Clause::Subject(text)) => {
                // Punctuation alone matches nothing.
                Some(text_clause(f, viewer, c, text).unwrap_or_else(|| Box::new(EmptyQuery)))
            }
            Clause::HasAttachment => Some(term(f.has_attachment, "yes")),
            Clause::Before(day) => Some(Box::new(RangeQuery::new(
                std::ops::Bound::Unbounded,
                std::ops::Bound::Excluded(Term::from_field_i64(f.created_at, day_start(*day))),
            ))),
            Clause::After(day) => Some(Box::new(RangeQuery::new(
                std::ops::Bound::Included(Term::from_field_i64(f.created_at, day_start(*day))),
                std::ops::Bound::Unbounded,
            ))),
            Clause::In(_) | Clause::Unread(_) => None,
        };
        if let Some(q) = q {
            clauses.push((
                if t.negated {
                    Occur::MustNot
                } else {
                    Occur::Must
                },
                q,
            ));
        }
    }
    if clauses.iter().all(|(o, _)| *o != Occur::Must) {
        clauses.push((Occur::Must, Box::new(AllQuery)));
    }
    Box::new(BooleanQuery::new(clauses))
}

/// The statistics relevance is computed from: those of the documents the searcher may
/// read, never the whole index. With the index's own, how a person's messages rank (and
/// which part a snippet shows) would depend on other people's and other practices' mail.
pub struct ReaderStatistics<'a> {
    searcher: &'a Searcher,
    reader: Term,
    /// Counted once per request: every page of candidates asks again.
    counted: std::sync::Mutex<std::collections::HashMap<Term, u64>>,
}

/// A nominal length of each text field, in tokens: the average length across a reader's
/// documents would cost a walk of them all, and only normalises.
const NOMINAL_FIELD_TOKENS: u64 = 40;

impl<'a> ReaderStatistics<'a> {
    pub fn new(active: &Active, searcher: &'a Searcher, person_id: &str) -> Self {
        ReaderStatistics {
            searcher,
            reader: Term::from_field_text(active.fields.reader, person_id),
            counted: Default::default(),
        }
    }

    /// The reader's live documents that hold `term` (all of them for `None`).
    fn count(&self, term: Option<&Term>) -> tantivy::Result<u64> {
        let key = term.unwrap_or(&self.reader).clone();
        if let Some(n) = self.counted.lock().ok().and_then(|c| c.get(&key).copied()) {
            return Ok(n);
        }
        let reader = Box::new(TermQuery::new(
            self.reader.clone(),
            IndexRecordOption::Basic,
        ));
        let n = match term {
            Some(term) => self.searcher.search(
                &BooleanQuery::intersection(vec![
                    Box::new(TermQuery::new(term.clone(), IndexRecordOption::Basic)),
                    reader,
                ]),
                &Count,
            )?,
            None => self.searcher.search(&*reader, &Count)?,
        } as u64;
        if let Ok(mut counted) = self.counted.lock() {
            counted.insert(key, n);
        }
        Ok(n)
    }

    /// A snippet generator for the plain text of `field` whose words (`plain` names the
    /// word behind each hash) weigh by their rarity among the reader's documents.
    pub fn snippets(
        &self,
        query: &dyn Query,
        field: Field,
        max_chars: usize,
        plain: &HashMap<String, String>,
    ) -> tantivy::Result<SnippetGenerator> {
        let mut terms = Vec::new();
        query.query_terms(&mut |term, _| {
            if term.field() == field {
                terms.push(term.clone());
            }
        });
        let mut weights = BTreeMap::new();
        for term in terms {
            let Some(word) = term.value().as_str().and_then(|hash| plain.get(hash)) else {
                continue;
            };
            let freq = self.doc_freq(&term)?;
            if freq > 0 {
                weights.insert(word.clone(), 1.0 / (1.0 + freq as f32));
            }
        }
        Ok(SnippetGenerator::new(weights, analyzer(), field, max_chars))
    }
}

impl Bm25StatisticsProvider for ReaderStatistics<'_> {
    fn total_num_tokens(&self, _field: Field) -> tantivy::Result<u64> {
        Ok(self.total_num_docs()?.max(1) * NOMINAL_FIELD_TOKENS)
    }

    fn total_num_docs(&self) -> tantivy::Result<u64> {
        self.count(None)
    }

    fn doc_freq(&self, term: &Term) -> tantivy::Result<u64> {
        self.count(Some(term))
    }
}

/// A page of candidates (message ids), best first (or newest first when nothing in the
/// query ranks by text), starting at `offset`.
pub fn run(
    active: &Active,
    searcher: &Searcher,
    statistics: &dyn Bm25StatisticsProvider,
    query: &dyn Query,
    by_relevance: bool,
    offset: usize,
    limit: usize,
) -> tantivy::Result<Vec<String>> {
    let f = &active.fields;
    let top = TopDocs::with_limit(limit).and_offset(offset);
    let addresses: Vec<(f32, tantivy::DocAddress)> = if by_relevance {
        searcher.search_with_statistics_provider(query, &top, statistics)?
    } else {
        searcher
            .search(
                query,
                &top.order_by_fast_field::<i64>("created_at", Order::Desc),
            )?
            .into_iter()
            .map(|(at, addr)| (at as f32 * 0.0, addr))
            .collect()
    };
    let mut out = Vec::with_capacity(addresses.len());
    for (_, addr) in addresses {
        let doc: TantivyDocument = searcher.doc(addr)?;
        if let Some(id) = doc.get_first(f.message_id).and_then(|v| v.as_str()) {
            out.push(id.to_string());
        }
    }
    Ok(out)
}
