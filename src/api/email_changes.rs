//! `/email-changes/{token}`: the owner of a new email address confirms it.

use poem::Request;
use poem_openapi::param::Path;
use poem_openapi::OpenApi;

use crate::error::AppResult;
use crate::service::{email_changes as email_change_service, AppState};

use super::{request_meta, NoContent};

pub struct EmailChangesApi(pub AppState);

#[OpenApi(tag = "super::Tag::Sessions")]
impl EmailChangesApi {
    /// Confirms a new email address with the token from the link sent to it. The person
    /// signs in with it from now on; every session of theirs ends. The link works once.
    #[oai(
        path = "/email-changes/:token",
        method = "post",
        operation_id = "confirm_email_change"
    )]
    async fn confirm(&self, req: &Request, token: Path<String>) -> AppResult<NoContent> {
        let meta = request_meta(req, &self.0.config);
        email_change_service::confirm(&self.0, &meta, &token.0).await?;
        Ok(NoContent::Done)
    }
}
