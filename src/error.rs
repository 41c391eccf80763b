//! One application error. Its HTTP status is decided here; causes are logged, never sent.
//! Every error leaves as `application/problem+json` with a stable `code`.

use std::fmt;

use poem::error::ResponseError;
use poem::http::{header, HeaderValue, StatusCode};
use poem::{IntoResponse, Response};
use poem_openapi::registry::{MetaMediaType, MetaResponse, MetaResponses, Registry};
use poem_openapi::types::ToJSON;
use poem_openapi::{ApiResponse, Object};

use crate::domain::RuleViolation;

pub const PROBLEM_JSON: &str = "application/problem+json";

/// The body of every error response (RFC 9457).
#[derive(Debug, Clone, Object)]
pub struct Problem {
    /// A URI naming the kind of problem.
    #[oai(rename = "type")]
    pub kind: String,
    /// A short, fixed summary of the kind of problem.
    pub title: String,
    /// The HTTP status.
    pub status: u16,
    /// A stable machine-readable code, e.g. `invalid_field`, `forbidden`.
    pub code: String,
    /// A sentence for a person, naming the field or recipient at fault.
    pub detail: String,
    /// The request field at fault, when there is one.
    #[oai(skip_serializing_if_is_none)]
    pub field: Option<String>,
}

#[derive(Debug)]
pub struct AppError {
    pub status: StatusCode,
    pub code: &'static str,
    pub detail: String,
    pub field: Option<String>,
    pub retry_after_secs: Option<u64>,
    /// The cause of an internal error: logged, never sent.
    source: Option<anyhow::Error>,
}

pub type AppResult<T> = Result<T, AppError>;

impl AppError {
    pub fn new(status: StatusCode, code: &'static str, detail: impl Into<String>) -> Self {
        Self {
            status,
            code,
            detail: detail.into(),
            field: None,
            retry_after_secs: None,
            source: None,
        }
    }

    pub fn with_field(mut self, field: impl Into<String>) -> Self {
        self.field = Some(field.into());
        self
    }

    pub fn invalid(field: &str, detail: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "invalid_field", detail).with_field(field)
    }

    pub fn unauthenticated(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::UNAUTHORIZED, "unauthenticated", detail)
    }

    pub fn forbidden(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::FORBIDDEN, "forbidden", detail)
    }

    pub fn not_found(what: &str) -> Self {
        Self::new(
            StatusCode::NOT_FOUND,
            "not_found",
            format!("No such {what}."),
        )
    }

    pub fn too_many_attempts(retry_after_secs: u64) -> Self {
        let mut error = Self::new(
            StatusCode::TOO_MANY_REQUESTS,
            "too_many_attempts",
            format!("Too many failed sign-ins; try again in {retry_after_secs} seconds."),
        );
        error.retry_after_secs = Some(retry_after_secs.max(1));
        error
    }

    pub fn internal(source: anyhow::Error) -> Self {
        Self {
            source: Some(source),
            ..Self::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                "internal_error",
                "Something went wrong on our side; nothing was changed. Please try again.",
            )
        }
    }

    /// The detail, and for an internal error its whole cause chain (for the console).
    pub fn describe(&self) -> String {
        match &self.source {
            Some(source) => format!("{}: {source:#}", self.detail),
            None => self.detail.clone(),
        }
    }

    /// The same error with another sentence.
    pub fn with_detail(mut self, detail: impl Into<String>) -> Self {
        self.detail = detail.into();
        self
    }

    /// The same error under another stable code.
    pub fn with_code(mut self, code: &'static str) -> Self {
        self.code = code;
        self
    }

    fn title(&self) -> &'static str {
        self.status.canonical_reason().unwrap_or("Error")
    }

    pub fn problem(&self) -> Problem {
        Problem {
            kind: format!("urn:confide:problem:{}", self.code),
            title: self.title().to_string(),
            status: self.status.as_u16(),
            code: self.code.to_string(),
            detail: self.detail.clone(),
            field: self.field.clone(),
        }
    }
}

impl fmt::Display for AppError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({}): {}", self.status, self.code, self.detail)
    }
}

impl std::error::Error for AppError {}

/// The status of each rule's refusal, decided in one place.
fn rule_status(code: &str) -> StatusCode {
    match code {
        "forbidden"
        | "cannot_change_own_account"
        | "recipient_not_allowed"
        | "client_inactive"
        | "consent_is_personal" => StatusCode::FORBIDDEN,
        "not_found" => StatusCode::NOT_FOUND,
        "upload_quota_exceeded" => StatusCode::PAYLOAD_TOO_LARGE,
        "upload_rate_exceeded" | "draft_quota_exceeded" => StatusCode::TOO_MANY_REQUESTS,
        "invitation_pending"
        | "email_taken"
        | "slug_taken"
        | "replies_not_allowed"
        | "folder_name_taken"
        | "quick_note_requires_single_client" => StatusCode::CONFLICT,
        _ => StatusCode::BAD_REQUEST,
    }
}

impl From<RuleViolation> for AppError {
    fn from(v: RuleViolation) -> Self {
        let mut error = AppError::new(rule_status(v.code), v.code, v.message);
        error.field = v.field.map(str::to_string);
        error
    }
}

impl From<sqlx::Error> for AppError {
    fn from(e: sqlx::Error) -> Self {
        AppError::internal(anyhow::Error::new(e).context("database"))
    }
}

impl From<anyhow::Error> for AppError {
    fn from(e: anyhow::Error) -> Self {
        AppError::internal(e)
    }
}

pub fn problem_response(problem: &Problem, retry_after: Option<u64>) -> Response {
    let body = problem.to_json_string();
    let mut resp = Response::builder()
        .status(StatusCode::from_u16(problem.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR))
        .content_type(PROBLEM_JSON)
        .body(body);
    if let Some(secs) = retry_after {
        if let Ok(value) = HeaderValue::from_str(&secs.to_string()) {
            resp.headers_mut().insert(header::RETRY_AFTER, value);
        }
    }
    resp
}

impl ResponseError for AppError {
    fn status(&self) -> StatusCode {
        self.status
    }

    fn as_response(&self) -> Response {
        if let Some(source) = &self.source {
            tracing::error!(error = format!("{source:#}"), "request failed");
        }
        problem_response(&self.problem(), self.retry_after_secs)
    }
}

impl IntoResponse for AppError {
    fn into_response(self) -> Response {
        self.as_response()
    }
}

impl ApiResponse for AppError {
    fn meta() -> MetaResponses {
        let problem = |status: u16, description: &'static str| MetaResponse {
            description,
            status: Some(status),
            status_range: None,
            content: vec![MetaMediaType {
                content_type: PROBLEM_JSON,
                schema: <Problem as poem_openapi::types::Type>::schema_ref(),
            }],
            headers: vec![],
        };
        MetaResponses {
            responses: vec![
                problem(400, "The request is invalid; `field` names the culprit."),
                problem(401, "No valid session."),
                problem(403, "A rule forbids this."),
                problem(404, "Not found, or not visible to the caller."),
                problem(409, "Conflicts with existing data."),
                problem(413, "The request body (or a quota) is too large."),
                problem(429, "Too many attempts; see Retry-After."),
                problem(500, "An internal error; nothing was changed."),
            ],
        }
    }

    fn register(registry: &mut Registry) {
        <Problem as poem_openapi::types::Type>::register(registry);
    }
}

/// Turns any error poem or poem-openapi raises by itself (unknown route, bad parameter,
/// missing bearer token…) into the same problem+json shape.
pub fn problem_from_poem_error(err: poem::Error) -> Response {
    // Keep the operation's name on the response, for the metrics' route label.
    let operation = err.data::<poem_openapi::OperationId>().copied();
    let mut resp = problem_for(err);
    if let Some(operation) = operation {
        resp.set_data(operation);
    }
    resp
}

fn problem_for(err: poem::Error) -> Response {
    if let Some(app) = err.downcast_ref::<AppError>() {
        return app.as_response();
    }
    let status = err.status();
    let (code, detail) = match status {
        StatusCode::UNAUTHORIZED => (
            "unauthenticated",
            "Sign in first: send Authorization: Bearer <token>.".to_string(),
        ),
        StatusCode::NOT_FOUND => ("not_found", "No such resource.".to_string()),
        StatusCode::METHOD_NOT_ALLOWED => (
            "method_not_allowed",
            "This method is not allowed here.".to_string(),
        ),
        StatusCode::UNSUPPORTED_MEDIA_TYPE => (
            "unsupported_media_type",
            "Send the body as application/json.".to_string(),
        ),
        StatusCode::PAYLOAD_TOO_LARGE => (
            "payload_too_large",
            "The request body is too large.".to_string(),
        ),
        s if s.is_client_error() => ("invalid_request", err.to_string()),
        _ => {
            tracing::error!(error = %err, "request failed");
            (
                "internal_error",
                "Something went wrong on our side; nothing was changed.".to_string(),
            )
        }
    };
    let error = AppError::new(status, code, detail);
    problem_response(&error.problem(), None)
}
