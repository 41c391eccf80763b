//! What the inbox's script asks the server: a stream of the person's new states (the same
//! as the API's `/events`, with the session cookie), and, where a browser cannot keep a
//! stream, whether anything the open page shows has changed (a digest of the person's
//! folder counts and of the newest thread of the open folder; nothing of anyone else's
//! activity), so that it refreshes only then.

use futures_util::StreamExt;
use poem::web::{Data, Path, Query};
use poem::{handler, IntoResponse, Request, Response};
use serde::Deserialize;
use sha2::{Digest, Sha256};

use crate::api::changes::StateEvents;
use crate::error::AppResult;
use crate::service::changes;
use crate::service::mailbox::folders;
use crate::service::mailbox::read::{self, Seek};
use crate::service::AppState;

use super::{page_error, passive_visit, Visit};

#[derive(Deserialize)]
pub struct UpdatesQuery {
    folder: Option<String>,
}

/// A short digest of the caller's mailbox as the open page shows it: it changes when a
/// count changes or the open folder's newest thread moves.
async fn version(state: &AppState, visit: &Visit, folder: &str) -> AppResult<String> {
    let mut hasher = Sha256::new();
    for f in folders::list(state, &visit.caller).await? {
        hasher.update(format!("{}:{}:{};", f.id, f.total, f.unread));
    }
    if folder != "drafts" {
        if let Ok(page) = read::page(
            state,
            &visit.caller,
            folder,
            Default::default(),
            Seek::Newest,
            1,
        )
        .await
        {
            for t in page.threads {
                hasher.update(format!("{}:{}:{}", t.id, t.last_activity_at, t.unread));
            }
        }
    }
    Ok(hex::encode(&hasher.finalize()[..12]))
}

/// `GET /p/{slug}/events`: Server-Sent Events of the person's new states, as
/// `GET /api/v1/events`. Holding it open does not keep the session alive.
#[handler]
pub async fn events(req: &Request, Path(slug): Path<String>, state: Data<&AppState>) -> Response {
    let visit = match passive_visit(&state, req, &slug).await {
        Ok(v) => v,
        Err(page) => return page,
    };
    let last = req.header("last-event-id").map(str::to_string);
    match changes::stream(state.clone(), visit.caller, last).await {
        Ok(stream) => StateEvents::new(stream.boxed()).into_response(),
        Err(e) => page_error(e),
    }
}

/// `GET /p/{slug}/updates?folder=`: the digest, as plain text (never cached).
#[handler]
pub async fn updates(
    req: &Request,
    Path(slug): Path<String>,
    Query(query): Query<UpdatesQuery>,
    state: Data<&AppState>,
) -> Response {
    let visit = match passive_visit(&state, req, &slug).await {
        Ok(v) => v,
        // The script sees the redirect to sign-in as a change and reloads into it.
        Err(page) => return page,
    };
    let folder = query.folder.unwrap_or_else(|| "inbox".into());
    match version(&state, &visit, &folder).await {
        Ok(v) => v
            .with_content_type("text/plain; charset=utf-8")
            .into_response(),
        Err(e) => page_error(e),
    }
}
