//! `/search`: the caller's own mailbox, ranked, with highlighted snippets.

use chrono::{DateTime, Utc};
use poem::Request;
use poem_openapi::payload::Json;
use poem_openapi::{Object, OpenApi};
use serde::Deserialize;

use crate::clock::to_datetime;
use crate::error::AppResult;
use crate::service::search::{self as service, Hit};
use crate::service::AppState;

use super::threads::PersonRefOut;
use super::{caller, BearerAuth, JsonBody};

#[derive(Debug, Object, Deserialize)]
#[oai(rename = "SearchRequest")]
#[serde(deny_unknown_fields)]
pub struct SearchRequest {
    /// Words and "quoted phrases" (in the subject, the body, the sender's name and file
    /// names), `-word` to leave out, and the operators `from:`, `to:`, `subject:`,
    /// `has:attachment`, `in:<folder>`, `is:unread`, `before:YYYY-MM-DD` and
    /// `after:YYYY-MM-DD`. At most 500 characters.
    pub q: String,
    /// From the previous page's `next_cursor`.
    pub cursor: Option<String>,
    /// 1–50, default 20.
    pub limit: Option<u32>,
}

#[derive(Debug, Object)]
pub struct SearchHitOut {
    pub thread_id: String,
    pub message_id: String,
    pub subject: String,
    /// The best passage of the body as HTML: the text escaped, matches in `<b>…</b>`.
    pub snippet: String,
    pub sender: PersonRefOut,
    pub created_at: DateTime<Utc>,
}

impl From<Hit> for SearchHitOut {
    fn from(h: Hit) -> Self {
        Self {
            thread_id: h.thread_id,
            message_id: h.message_id,
            subject: h.subject,
            snippet: h.snippet,
            sender: h.sender.into(),
            created_at: to_datetime(h.created_at),
        }
    }
}

#[derive(Debug, Object)]
pub struct SearchPage {
    pub hits: Vec<SearchHitOut>,
    pub next_cursor: Option<String>,
}

pub struct SearchApi(pub AppState);

#[OpenApi(tag = "super::Tag::Mailbox")]
impl SearchApi {
    /// Searches your own mailbox: only threads you take part in, re-checked against the
    /// database before they are shown. A malformed query is 400 `invalid_query` (or
    /// `query_too_long`, `query_too_complex`) naming the problem.
    #[oai(path = "/search", method = "post", operation_id = "search")]
    async fn search(
        &self,
        auth: BearerAuth,
        req: &Request,
        body: JsonBody<SearchRequest>,
    ) -> AppResult<Json<SearchPage>> {
        let caller = caller(&self.0, &auth, req).await?;
        let body = body.0;
        let (hits, next_cursor) = service::search(
            &self.0,
            &caller,
            &body.q,
            body.cursor.as_deref(),
            body.limit.unwrap_or(20) as usize,
        )
        .await?;
        Ok(Json(SearchPage {
            hits: hits.into_iter().map(Into::into).collect(),
            next_cursor,
        }))
    }
}
