//! Pages (askama templates) and what wraps every response: security headers, metrics.

mod form;
mod inbox;
mod limits;
mod pages;

use std::sync::Arc;
use std::time::Instant;

use poem::http::{header, HeaderValue};
use poem::{handler, Endpoint, IntoResponse, Request, Response};
use poem_openapi::OperationId;
use sha2::{Digest, Sha256};
use tracing::Instrument;

use crate::domain::Code;
use crate::service::AppState;

pub use inbox::*;
pub use limits::request_limits;
pub use pages::{
    email_change_page, email_change_submit, invitation_page, invitation_submit, reset_page,
    reset_submit, setup_page, setup_submit,
};

/// Everything may come only from this server; nothing may frame it; no inline script.
const STRICT_CSP: &str = "default-src 'none'; base-uri 'none'; form-action 'self'; \
                          frame-ancestors 'none'; img-src 'self'; style-src 'self'; \
                          script-src 'self'; connect-src 'self'";

/// Content-Security-Policy for the interactive API docs: their inline scripts are allowed
/// by hash, nothing else inline runs.
pub fn docs_csp(docs_html: &str) -> String {
    let mut hashes = String::new();
    let mut rest = docs_html;
    while let Some(start) = rest.find("<script") {
        let after = &rest[start..];
        let Some(open_end) = after.find('>') else {
            break;
        };
        let tag = &after[..open_end];
        let body_start = open_end + 1;
        let Some(close) = after[body_start..].find("</script>") else {
            break;
        };
        if !tag.contains("src=") {
            let digest = Sha256::digest(&after.as_bytes()[body_start..body_start + close]);
            hashes.push_str(&format!(
                " 'sha256-{}'",
                data_encoding::BASE64.encode(&digest)
            ));
        }
        rest = &after[body_start + close..];
    }
    format!(
        "default-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'; \
         img-src 'self' data:; font-src 'self' data:; style-src 'self' 'unsafe-inline'; \
         connect-src 'self'; script-src{hashes}"
    )
}

/// Refuses a path or query holding an encoded NUL (`%00`): no id, token or parameter of
/// this server has one, and the database would refuse it in text.
pub async fn refuse_nul<E: Endpoint>(ep: Arc<E>, req: Request) -> poem::Result<Response> {
    let uri = req.uri().to_string();
    if uri.to_ascii_lowercase().contains("%00") {
        let error = crate::error::AppError::new(
            Code::InvalidRequest,
            "The address must not contain NUL characters.",
        );
        return Ok(crate::error::problem_response(&error.problem(), None));
    }
    ep.call(req).await.map(IntoResponse::into_response)
}

/// Adds the security headers to every response; API and page responses are never cached.
/// Under https (`public_url`), browsers are told to use nothing else for a year.
pub async fn security_headers<E: Endpoint>(
    ep: Arc<E>,
    req: Request,
    docs_csp: Arc<String>,
    hsts: bool,
) -> poem::Result<Response> {
    let path = req.uri().path().to_string();
    let mut resp = ep.call(req).await?.into_response();
    let headers = resp.headers_mut();
    let csp = if path == "/api/docs" || path == "/api/docs/" {
        docs_csp.as_str()
    } else {
        STRICT_CSP
    };
    if let Ok(value) = HeaderValue::from_str(csp) {
        headers
            .entry(header::CONTENT_SECURITY_POLICY)
            .or_insert(value);
    }
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    if hsts {
        headers.insert(
            header::STRICT_TRANSPORT_SECURITY,
            HeaderValue::from_static("max-age=31536000; includeSubDomains"),
        );
    }
    headers.insert(
        "cross-origin-opener-policy",
        HeaderValue::from_static("same-origin"),
    );
    if !path.starts_with("/static/") {
        headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    }
    Ok(resp)
}

/// The metrics label of a request: the API operation, or the fixed shape of the page path.
/// Raw paths are never used: they may hold tokens, and ids would explode the label space.
fn route_label(path: &str, resp: &Response) -> String {
    if let Some(op) = resp.data::<OperationId>() {
        return op.0.to_string();
    }
    let fixed = [
        "/healthz",
        "/readyz",
        "/metrics",
        "/api/docs",
        "/api/openapi.json",
    ];
    if let Some(p) = fixed.iter().find(|p| **p == path) {
        return (*p).to_string();
    }
    if path.starts_with("/p/") {
        return inbox::page_label(path);
    }
    for (prefix, label) in [
        ("/setup/", "/setup/{token}"),
        ("/invitations/", "/invitations/{token}"),
        ("/password-resets/", "/password-resets/{token}"),
        ("/email-changes/", "/email-changes/{token}"),
        ("/static/", "/static/{file}"),
    ] {
        if path.starts_with(prefix) {
            return label.to_string();
        }
    }
    "unmatched".to_string()
}

/// Counts requests and measures their latency by route; logs each without its path.
pub async fn observe<E: Endpoint>(
    ep: Arc<E>,
    req: Request,
    state: AppState,
) -> poem::Result<Response> {
    let started = Instant::now();
    // Only the standard methods name a label: anything else would grow it without bound.
    let method = match req.method().as_str() {
        m @ ("GET" | "HEAD" | "POST" | "PUT" | "PATCH" | "DELETE" | "OPTIONS") => m.to_string(),
        _ => "other".to_string(),
    };
    let path = req.uri().path().to_string();
    // One span a request: the services' spans (with the ids they act on) nest in it, and
    // `api::caller` adds who is asking. Never the path, which may hold a link's token.
    let span = tracing::info_span!(
        "request",
        id = %request_id(),
        %method,
        route = tracing::field::Empty,
        person_id = tracing::field::Empty,
        practice_id = tracing::field::Empty,
    );
    let resp = ep.call(req).instrument(span.clone()).await?.into_response();
    let route = route_label(&path, &resp);
    span.record("route", route.as_str());
    let _in_request = span.enter();
    let status = resp.status().as_u16().to_string();
    let elapsed = started.elapsed();
    state
        .metrics
        .requests
        .with_label_values(&[route.as_str(), method.as_str(), status.as_str()])
        .inc();
    state
        .metrics
        .latency
        .with_label_values(&[route.as_str(), method.as_str()])
        .observe(elapsed.as_secs_f64());
    tracing::debug!(%method, %route, %status, elapsed_ms = elapsed.as_millis() as u64, "request");
    Ok(resp)
}

/// A short random id that ties one request's log lines together.
fn request_id() -> String {
    hex::encode(rand::random::<[u8; 6]>())
}

#[handler]
pub fn healthz() -> &'static str {
    "ok"
}

#[handler]
pub async fn readyz(state: poem::web::Data<&AppState>) -> Response {
    if state.store.ping().await {
        "ready".into_response()
    } else {
        let error =
            crate::error::AppError::new(Code::DatabaseUnreachable, "The database does not answer.");
        crate::error::problem_response(&error.problem(), None)
    }
}

/// Prometheus metrics: with `metrics.token` set, for requests bearing it; without, only for
/// requests from this machine that no proxy forwarded (and never behind a proxy the server
/// is told it sits behind: a proxy on the same machine connects from loopback too).
#[handler]
pub fn metrics(req: &Request, state: poem::web::Data<&AppState>) -> Response {
    let token = &state.config.metrics.token;
    let allowed = if token.is_empty() {
        let local = req
            .remote_addr()
            .as_socket_addr()
            .is_some_and(|a| a.ip().is_loopback());
        let forwarded = ["x-forwarded-for", "forwarded", "x-real-ip"]
            .iter()
            .any(|h| req.header(h).is_some());
        local && !forwarded && !state.config.server.trust_forwarded_for
    } else {
        req.header(header::AUTHORIZATION)
            .and_then(|v| v.strip_prefix("Bearer "))
            .is_some_and(|given| {
                // Compared through hashes, so the time taken tells nothing of the token.
                Sha256::digest(given.as_bytes()) == Sha256::digest(token.as_bytes())
            })
    };
    if !allowed {
        let error = crate::error::AppError::unauthenticated(if token.is_empty() {
            "Metrics are served to this machine only; set metrics.token to read them from elsewhere."
        } else {
            "Send Authorization: Bearer <metrics.token>."
        });
        return crate::error::problem_response(&error.problem(), None);
    }
    Response::builder()
        .content_type("text/plain; version=0.0.4")
        .body(state.metrics.render(state.live.open_streams()))
}

/// The inbox's own script: no library, nothing from another host.
#[handler]
pub fn script() -> Response {
    Response::builder()
        .content_type("text/javascript; charset=utf-8")
        .header(header::CACHE_CONTROL, "public, max-age=3600")
        .body(include_str!("../../templates/static/inbox.js"))
}

#[handler]
pub fn stylesheet() -> Response {
    Response::builder()
        .content_type("text/css; charset=utf-8")
        .header(header::CACHE_CONTROL, "public, max-age=3600")
        .body(include_str!("../../templates/static/confide.css"))
}
