//! `/invitations/{token}/accept`: an invited person chooses their password.

use poem::Request;
use poem_openapi::param::Path;
use poem_openapi::payload::Json;
use poem_openapi::{Object, OpenApi};
use serde::Deserialize;

use crate::error::AppResult;
use crate::service::{invitations as invitation_service, AppState};

use super::people::StatusName;
use super::{request_meta, JsonBody};

/// The password to sign in with from now on: at least 12 characters, hard to guess, and
/// not containing one's name or email.
#[derive(Object, Deserialize)]
#[oai(deny_unknown_fields)]
#[serde(deny_unknown_fields)]
pub struct AcceptInvitationRequest {
    pub password: String,
}

#[derive(Object)]
pub struct AcceptedInvitation {
    pub id: String,
    pub name: String,
    pub status: StatusName,
}

pub struct InvitationsApi(pub AppState);

#[OpenApi(tag = "super::Tag::Sessions")]
impl InvitationsApi {
    /// Accepts an invitation; the link then stops working.
    #[oai(
        path = "/invitations/:token/accept",
        method = "post",
        operation_id = "accept_invitation"
    )]
    async fn accept(
        &self,
        req: &Request,
        token: Path<String>,
        body: JsonBody<AcceptInvitationRequest>,
    ) -> AppResult<Json<AcceptedInvitation>> {
        let meta = request_meta(req, &self.0.config);
        let person = invitation_service::accept(&self.0, &meta, &token.0, &body.0.password).await?;
        Ok(Json(AcceptedInvitation {
            id: person.id.to_string(),
            name: person.name,
            status: person.status.into(),
        }))
    }
}
