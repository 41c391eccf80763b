//! Search: the query is POSTed (never put in a URL), the results show highlighted
//! snippets, and further results come with another POST.

use askama::Template;
use poem::http::StatusCode;
use poem::web::{CsrfToken, CsrfVerifier, Data, Path};
use poem::{handler, Body, Request, Response};

use crate::service::search as service;
use crate::service::AppState;

use super::{checked_form, page_error, render, short_time, visit, Chrome};

const PAGE_SIZE: usize = 20;

pub struct Result {
    pub thread_id: String,
    pub subject: String,
    /// HTML-escaped by the search, matches in `<b>`.
    pub snippet: String,
    pub sender: String,
    pub time: String,
}

#[derive(Template)]
#[template(path = "web/inbox/search.html")]
struct SearchPage {
    chrome: Chrome,
    q: String,
    results: Vec<Result>,
    next: Option<String>,
    error: Option<String>,
}

#[handler]
pub async fn search(
    req: &Request,
    Path(slug): Path<String>,
    csrf: &CsrfToken,
    verifier: &CsrfVerifier,
    state: Data<&AppState>,
    body: Body,
) -> Response {
    let visit = or_page!(visit(&state, req, &slug).await);
    let form = or_page!(checked_form(verifier, body).await);
    let chrome = or_page!(visit.chrome(&state, csrf, "").await);
    let q = form.get("q").trim().to_string();
    let cursor = Some(form.get("cursor")).filter(|c| !c.is_empty());
    let mut page = SearchPage {
        chrome,
        q: q.clone(),
        results: Vec::new(),
        next: None,
        error: None,
    };
    if q.is_empty() {
        return render(StatusCode::OK, &page);
    }
    let now = state.now();
    match service::search(&state, &visit.caller, &q, cursor, PAGE_SIZE).await {
        Ok((hits, next)) => {
            page.results = hits
                .into_iter()
                .map(|h| Result {
                    thread_id: h.thread_id,
                    subject: h.subject,
                    snippet: h.snippet,
                    sender: h.sender.name,
                    time: short_time(h.created_at, now),
                })
                .collect();
            page.next = next;
            render(StatusCode::OK, &page)
        }
        Err(e) if e.status().is_client_error() => {
            page.error = Some(e.detail.clone());
            render(e.status(), &page)
        }
        Err(e) => page_error(e),
    }
}
