//! Custom folders: created from the sidebar, renamed and deleted from their own page.

use poem::web::{CsrfVerifier, Data, Path};
use poem::{handler, Body, Request, Response};

use crate::domain::ids::FolderId;
use crate::service::mailbox::folders as service;
use crate::service::AppState;

use super::{page_error, posted, see_other};

#[handler]
pub async fn create_folder(
    req: &Request,
    Path(slug): Path<String>,
    verifier: &CsrfVerifier,
    state: Data<&AppState>,
    body: Body,
) -> Response {
    let (visit, form) = or_page!(posted(&state, req, &slug, verifier, body).await);
    match service::create(&state, &visit.caller, form.get("name")).await {
        Ok(f) => see_other(&visit.href(&format!("mail/{}?done=folder_created", f.id))),
        Err(e) => page_error(e),
    }
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
    visit.then_go(
        renamed,
        &format!("mail/{}?done=folder_renamed", id.as_str()),
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
    visit.then_go(deleted, "mail/inbox?done=folder_deleted")
}
