//! The REST API under `/api/v1`, documented by poem-openapi. Handlers parse, call one
//! `service::` function and map the result.

mod attachments;
mod audit;
mod body;
pub(crate) mod changes;
mod chart;
mod conversations;
pub mod document;
mod drafts;
mod email_changes;
mod folders;
mod groups;
mod invitations;
mod legal_holds;
mod me;
pub(crate) mod password_resets;

mod people;
mod search;
mod sessions;
mod threads;

use poem::Request;
use poem_openapi::auth::Bearer;
use poem_openapi::{ApiResponse, OpenApiService, SecurityScheme};

use crate::config::Config;
use crate::error::AppResult;
use crate::service::{sessions as session_service, AppState, Caller, RequestMeta};

pub use attachments::multipart_stream;
pub use body::JsonBody;
pub use sessions::{cookie_value, device_cookie, DEVICE_COOKIE};

/// `Authorization: Bearer <token>` from `POST /api/v1/sessions`.
#[derive(SecurityScheme)]
#[oai(ty = "bearer")]
pub struct BearerAuth(Bearer);

/// Where the request came from: the peer address, or the last `X-Forwarded-For` hop when
/// the server sits behind a trusted proxy. The last hop of the last line: a proxy that adds
/// a line of its own (HAProxy) rather than appending to the client's puts it there, and
/// the lines before it are the client's to forge.
pub fn request_meta(req: &Request, config: &Config) -> RequestMeta {
    let forwarded = config
        .server
        .trust_forwarded_for
        .then(|| req.headers().get_all("x-forwarded-for").iter().next_back())
        .flatten()
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.rsplit(',').next())
        .and_then(|v| v.trim().parse::<std::net::IpAddr>().ok())
        .map(|ip| ip.to_string());
    let ip = forwarded.or_else(|| {
        req.remote_addr()
            .as_socket_addr()
            .map(|a| a.ip().to_string())
    });
    RequestMeta { ip }
}

/// The signed-in caller of an operation.
pub async fn caller(state: &AppState, auth: &BearerAuth, req: &Request) -> AppResult<Caller> {
    let caller =
        session_service::authenticate(state, &auth.0.token, request_meta(req, &state.config))
            .await?;
    let span = tracing::Span::current();
    span.record("person_id", caller.person.id.as_str());
    span.record("practice_id", caller.practice_id());
    Ok(caller)
}

/// An empty success.
#[derive(ApiResponse)]
pub enum NoContent {
    /// Done.
    #[oai(status = 204)]
    Done,
}

pub type Apis = (
    sessions::SessionsApi,
    me::MeApi,
    people::PeopleApi,
    groups::GroupsApi,
    invitations::InvitationsApi,
    (audit::AuditApi, legal_holds::LegalHoldsApi),
    attachments::AttachmentsApi,
    threads::ThreadsApi,
    conversations::ConversationsApi,
    folders::FoldersApi,
    drafts::DraftsApi,
    chart::ChartApi,
    password_resets::PasswordResetsApi,
    search::SearchApi,
    email_changes::EmailChangesApi,
    changes::ChangesApi,
);

pub fn service(state: &AppState) -> OpenApiService<Apis, ()> {
    OpenApiService::new(
        (
            sessions::SessionsApi(state.clone()),
            me::MeApi(state.clone()),
            people::PeopleApi(state.clone()),
            groups::GroupsApi(state.clone()),
            invitations::InvitationsApi(state.clone()),
            (
                audit::AuditApi(state.clone()),
                legal_holds::LegalHoldsApi(state.clone()),
            ),
            attachments::AttachmentsApi(state.clone()),
            threads::ThreadsApi(state.clone()),
            conversations::ConversationsApi(state.clone()),
            folders::FoldersApi(state.clone()),
            drafts::DraftsApi(state.clone()),
            chart::ChartApi(state.clone()),
            password_resets::PasswordResetsApi(state.clone()),
            search::SearchApi(state.clone()),
            email_changes::EmailChangesApi(state.clone()),
            changes::ChangesApi(state.clone()),
        ),
        "Confide",
        env!("CARGO_PKG_VERSION"),
    )
    .description(
        "The secure mailbox API. Sign in with POST /sessions, then send \
         `Authorization: Bearer <token>`. Every error is application/problem+json with a \
         stable `code`.",
    )
    .server("/api/v1")
}

#[derive(poem_openapi::Tags)]
pub enum Tag {
    /// Signing in and out, invitations.
    Sessions,
    /// One's own profile.
    Me,
    /// The practice directory and staff groups.
    People,
    /// The audit log.
    Audit,
    /// Threads, messages, folders and drafts.
    Mailbox,
    /// Chart notes and exports.
    Chart,
}
