//! `/password-resets`: forgotten passwords.

use poem::Request;
use poem_openapi::param::Path;
use poem_openapi::payload::Json;
use poem_openapi::{ApiResponse, Object, OpenApi};
use serde::Deserialize;

use crate::error::AppResult;
use crate::service::{password_resets, AppState};

use super::{request_meta, JsonBody, NoContent};

/// The account to reset: the practice's slug and the email address.
#[derive(Object, Deserialize)]
#[oai(deny_unknown_fields)]
#[serde(deny_unknown_fields)]
pub struct ResetRequest {
    pub practice: String,
    pub email: String,
}

/// The new password: at least 12 characters, hard to guess, without one's name or email.
#[derive(Object, Deserialize)]
#[oai(deny_unknown_fields)]
#[serde(deny_unknown_fields)]
pub struct NewPasswordRequest {
    pub password: String,
}

#[derive(Object)]
pub struct Queued {
    /// What happens next.
    pub detail: String,
}

#[derive(ApiResponse)]
pub enum Accepted {
    /// Accepted; the same answer whether or not the address exists.
    #[oai(status = 202)]
    Accepted(Json<Queued>),
}

pub struct PasswordResetsApi(pub AppState);

#[OpenApi(tag = "super::Tag::Sessions")]
impl PasswordResetsApi {
    /// Asks for a reset link. The answer never says whether the address exists.
    #[oai(
        path = "/password-resets",
        method = "post",
        operation_id = "request_password_reset"
    )]
    async fn request(&self, req: &Request, body: JsonBody<ResetRequest>) -> AppResult<Accepted> {
        let meta = request_meta(req, &self.0.config);
        password_resets::request(&self.0, &meta, &body.0.practice, &body.0.email).await?;
        Ok(Accepted::Accepted(Json(Queued {
            detail:
                "If this address belongs to an account, a link to reset its password is on its way."
                    .into(),
        })))
    }

    /// Sets a new password with the emailed link; every session of the account ends.
    #[oai(
        path = "/password-resets/:token",
        method = "post",
        operation_id = "reset_password"
    )]
    async fn complete(
        &self,
        req: &Request,
        token: Path<String>,
        body: JsonBody<NewPasswordRequest>,
    ) -> AppResult<NoContent> {
        let meta = request_meta(req, &self.0.config);
        password_resets::complete(&self.0, &meta, &token.0, &body.0.password).await?;
        Ok(NoContent::Done)
    }
}
