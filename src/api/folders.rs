//! `/folders`: the system folders, one's own folders and one's team folder, with counts.

use poem::Request;
use poem_openapi::param::Path;
use poem_openapi::payload::Json;
use poem_openapi::{ApiResponse, Object, OpenApi};
use serde::Deserialize;

use crate::domain::ids::FolderId;
use crate::error::AppResult;
use crate::service::mailbox::folders::{self, FolderView};
use crate::service::AppState;

use super::{caller, BearerAuth, JsonBody, NoContent};

#[derive(Debug, Object)]
pub struct FolderOut {
    /// Pass as `folder` to `GET /threads`: inbox, sent, drafts, archive, trash,
    /// team:<group> or a folder id.
    pub id: String,
    pub name: String,
    /// system, custom or team.
    pub kind: String,
    pub total: i64,
    pub unread: i64,
}

impl From<FolderView> for FolderOut {
    fn from(f: FolderView) -> Self {
        Self {
            id: f.id,
            name: f.name,
            kind: f.kind.into(),
            total: f.total,
            unread: f.unread,
        }
    }
}

#[derive(Debug, Object)]
pub struct FolderList {
    pub folders: Vec<FolderOut>,
    /// Your mailbox's state as of this list: pass it to `GET /changes` later.
    pub state: String,
}

#[derive(Debug, Object, Deserialize)]
#[oai(deny_unknown_fields)]
#[serde(deny_unknown_fields)]
pub struct FolderRequest {
    /// 1–100 characters; not a built-in folder's name.
    pub name: String,
}

#[derive(Debug, Object)]
pub struct EmptiedTrash {
    /// Threads removed from your mailbox.
    pub removed: i64,
}

#[derive(ApiResponse)]
pub enum FolderCreated {
    /// Created.
    #[oai(status = 201)]
    Created(Json<FolderOut>),
}

pub struct FoldersApi(pub AppState);

#[OpenApi(tag = "super::Tag::Mailbox")]
impl FoldersApi {
    /// Your folders with their unread and total counts.
    #[oai(path = "/folders", method = "get", operation_id = "list_folders")]
    async fn list(&self, auth: BearerAuth, req: &Request) -> AppResult<Json<FolderList>> {
        let caller = caller(&self.0, &auth, req).await?;
        // Read before the list: a change meanwhile is reported again, never missed.
        let state = crate::service::changes::current_state(&self.0, &caller);
        let folders = folders::list(&self.0, &caller).await?;
        Ok(Json(FolderList {
            state,
            folders: folders.into_iter().map(Into::into).collect(),
        }))
    }

    /// Creates a folder of your own.
    #[oai(path = "/folders", method = "post", operation_id = "create_folder")]
    async fn create(
        &self,
        auth: BearerAuth,
        req: &Request,
        body: JsonBody<FolderRequest>,
    ) -> AppResult<FolderCreated> {
        let caller = caller(&self.0, &auth, req).await?;
        Ok(FolderCreated::Created(Json(
            folders::create(&self.0, &caller, &body.0.name)
                .await?
                .into(),
        )))
    }

    /// Renames a folder of your own.
    #[oai(
        path = "/folders/:id",
        method = "patch",
        operation_id = "rename_folder"
    )]
    async fn rename(
        &self,
        auth: BearerAuth,
        req: &Request,
        id: Path<String>,
        body: JsonBody<FolderRequest>,
    ) -> AppResult<Json<FolderOut>> {
        let caller = caller(&self.0, &auth, req).await?;
        Ok(Json(
            folders::rename(
                &self.0,
                &caller,
                &FolderId::from_trusted(id.0),
                &body.0.name,
            )
            .await?
            .into(),
        ))
    }

    /// Deletes a folder of your own; its threads go back to your Inbox.
    #[oai(
        path = "/folders/:id",
        method = "delete",
        operation_id = "delete_folder"
    )]
    async fn delete(
        &self,
        auth: BearerAuth,
        req: &Request,
        id: Path<String>,
    ) -> AppResult<NoContent> {
        let caller = caller(&self.0, &auth, req).await?;
        folders::delete(&self.0, &caller, &FolderId::from_trusted(id.0)).await?;
        Ok(NoContent::Done)
    }

    /// Empties your Trash: its threads leave your mailbox (and only yours).
    #[oai(
        path = "/folders/trash/empty",
        method = "post",
        operation_id = "empty_trash"
    )]
    async fn empty_trash(&self, auth: BearerAuth, req: &Request) -> AppResult<Json<EmptiedTrash>> {
        let caller = caller(&self.0, &auth, req).await?;
        let removed = folders::empty_trash(&self.0, &caller).await?;
        Ok(Json(EmptiedTrash {
            removed: removed as i64,
        }))
    }
}
