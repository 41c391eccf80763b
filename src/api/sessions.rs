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
use super::{caller, request_meta, BearerAuth, JsonBody, NoContent};

/// Credentials. `practice` is the practice's slug (as in its portal link `/p/{slug}/`).
#[derive(Object, Deserialize)]
#[oai(deny_unknown_fields)]
#[serde(deny_unknown_fields)]
pub struct SignInRequest {
    pub practice: String,
    pub email: String,
    pub password: String,
    /// The `device_token` of an earlier sign-in as the same person (browsers send the
    /// `confide-device` cookie instead). Such a device keeps its own count of failed
    /// sign-ins, so that guesses from elsewhere cannot lock the person out of it.
    #[oai(write_only)]
    pub device_token: Option<String>,
}

/// A new session. Send the token as `Authorization: Bearer <token>`.
#[derive(Object)]
pub struct SignInResponse {
    pub token: String,
    /// The latest the session can last; it ends sooner after 30 idle minutes.
    pub expires_at: DateTime<Utc>,
    /// Identifies this device: send it as `device_token` at the next sign-in.
    pub device_token: String,
    pub user: MeOut,
}

#[derive(ApiResponse)]
pub enum SignedIn {
    /// Signed in. The `confide-device` cookie remembers this browser as a trusted device.
    #[oai(status = 201)]
    Created(Json<SignInResponse>, #[oai(header = "Set-Cookie")] String),
}

/// The cookie that remembers a browser as a trusted device.
pub const DEVICE_COOKIE: &str = "confide-device";

/// A cookie's value from the request's `Cookie` headers.
pub fn cookie_value(req: &Request, name: &str) -> Option<String> {
    req.headers()
        .get_all(poem::http::header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(key, _)| *key == name)
        .map(|(_, value)| value.to_string())
}

pub fn device_cookie(state: &AppState, token: &str) -> String {
    let max_age = state.config.auth.trusted_device_days * 86_400;
    let secure = if state.public_url.starts_with("https://") {
        "; Secure"
    } else {
        ""
    };
    format!("{DEVICE_COOKIE}={token}; Path=/; Max-Age={max_age}; HttpOnly; SameSite=Strict{secure}")
}

pub struct SessionsApi(pub AppState);

#[OpenApi(tag = "super::Tag::Sessions")]
impl SessionsApi {
    /// Signs in. A wrong address and a wrong password get the same answer; repeated
    /// failures are throttled (429 with Retry-After).
    #[oai(path = "/sessions", method = "post", operation_id = "sign_in")]
    async fn sign_in(&self, req: &Request, body: JsonBody<SignInRequest>) -> AppResult<SignedIn> {
        let meta = request_meta(req, &self.0.config);
        let body = body.0;
        let device = body
            .device_token
            .or_else(|| cookie_value(req, DEVICE_COOKIE));
        let done = session_service::sign_in(
            &self.0,
            &meta,
            &body.practice,
            &body.email,
            &body.password,
            device.as_deref(),
        )
        .await?;
        let cookie = device_cookie(&self.0, &done.device_token);
        let user = MeOut::from(Me {
            person: done.person,
            practice_slug: done.practice.slug,
            practice_name: done.practice.name,
            autoresponder: None,
        });
        Ok(SignedIn::Created(
            Json(SignInResponse {
                token: done.token,
                expires_at: to_datetime(done.expires_at),
                device_token: done.device_token,
                user,
            }),
            cookie,
        ))
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
