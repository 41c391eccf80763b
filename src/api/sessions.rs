//! `/sessions`: signing in and out.

use chrono::{DateTime, Utc};
use poem::Request;
use poem_openapi::payload::Json;
use poem_openapi::{ApiResponse, Object, OpenApi};
use serde::Deserialize;

use crate::clock::to_datetime;
use crate::error::AppResult;
use crate::service::people::Me;
use crate::service::{sessions as session_service, AppState};

use super::me::MeOut;
use super::{caller, request_meta, BearerAuth, Body, NoContent};

/// Credentials. `practice` is the practice's slug (as in its portal link `/p/{slug}/`).
#[derive(Object, Deserialize)]
#[oai(deny_unknown_fields)]
#[serde(deny_unknown_fields)]
pub struct SignInRequest {
    pub practice: String,
    pub email: String,
    pub password: String,
}

/// A new session. Send the token as `Authorization: Bearer <token>`.
#[derive(Object)]
pub struct SignInResponse {
    pub token: String,
    /// The latest the session can last; it ends sooner after 30 idle minutes.
    pub expires_at: DateTime<Utc>,
    pub user: MeOut,
}

#[derive(ApiResponse)]
pub enum SignedIn {
    /// Signed in.
    #[oai(status = 201)]
    Created(Json<SignInResponse>),
}

pub struct SessionsApi(pub AppState);

#[OpenApi(tag = "super::Tag::Sessions")]
impl SessionsApi {
    /// Signs in. A wrong address and a wrong password get the same answer; repeated
    /// failures are throttled (429 with Retry-After).
    #[oai(path = "/sessions", method = "post", operation_id = "sign_in")]
    async fn sign_in(&self, req: &Request, body: Body<SignInRequest>) -> AppResult<SignedIn> {
        let meta = request_meta(req, &self.0.config);
        let body = body.0;
        let done =
            session_service::sign_in(&self.0, &meta, &body.practice, &body.email, &body.password)
                .await?;
        let user = MeOut::from(Me {
            person: done.person,
            practice_slug: done.practice.slug,
            practice_name: done.practice.name,
        });
        Ok(SignedIn::Created(Json(SignInResponse {
            token: done.token,
            expires_at: to_datetime(done.expires_at),
            user,
        })))
    }

    /// Signs out: the token stops working.
    #[oai(
        path = "/sessions/current",
        method = "delete",
        operation_id = "sign_out"
    )]
    async fn sign_out(&self, auth: BearerAuth, req: &Request) -> AppResult<NoContent> {
        let caller = caller(&self.0, &auth, req).await?;
        session_service::sign_out(&self.0, &caller).await?;
        Ok(NoContent::Done)
    }
}
