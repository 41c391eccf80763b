//! Custom folders: created from the sidebar, renamed and deleted from their own page.

use poem::web::{CsrfVerifier, Data, Path};
use poem::{handler, Body, Request, Response};

use crate::domain::ids::FolderId;
use crate::error::AppResult;
use crate::service::mailbox::folders as service;
use crate::service::AppState;

use super::{page_error, posted, see_other, Visit};

fn answer(visit: &Visit, done: AppResult<String>) -> Response {
    match done {
        Ok(location) => see_other(&visit.href(&location)),
        Err(e) => page_error(e),
    }
}

#[handler]
pub async fn create_folder(
    req: &Request,
    Path(slug): Path<String>,
    verifier: &CsrfVerifier,
    state: Data<&AppState>,
    body: Body,
) -> Response {
    let (visit, form) = or_page!(posted(&state, req, &slug, verifier, body).await);
    let created = service::create(&state, &visit.caller, form.get("name")).await;
    answer(
        &visit,
        created.map(|f| format!("mail/{}?done=folder_created", f.id)),
    )
}

#[handler]
pub async fn rename_folder(
    req: &Request,
    Path((slug, id)): Path<(String, String)>,
    verifier: &CsrfVerifier,
    state: Data<&AppState>,
    body: Body,
) -> Response {
    let (visit, form) = or_page!(posted(&state, req, &slug, verifier, body).await);
    let id = FolderId::from_trusted(id);
    let renamed = service::rename(&state, &visit.caller, &id, form.get("name")).await;
    answer(
        &visit,
        renamed.map(|f| format!("mail/{}?done=folder_renamed", f.id)),
    )
}

#[handler]
pub async fn delete_folder(
    req: &Request,
    Path((slug, id)): Path<(String, String)>,
    verifier: &CsrfVerifier,
    state: Data<&AppState>,
    body: Body,
) -> Response {
    let (visit, _) = or_page!(posted(&state, req, &slug, verifier, body).await);
    let id = FolderId::from_trusted(id);
    let deleted = service::delete(&state, &visit.caller, &id).await;
    answer(
        &visit,
        deleted.map(|()| "mail/inbox?done=folder_deleted".to_string()),
    )
}
