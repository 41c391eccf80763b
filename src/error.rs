//! One application error. Its HTTP status is decided here; causes are logged, never sent.
//! Every error leaves as `application/problem+json` with a stable `code`.

use std::fmt;

use poem::error::ResponseError;
use poem::http::{header, HeaderValue, StatusCode};
use poem::{IntoResponse, Response};
use poem_openapi::registry::{MetaMediaType, MetaResponse, MetaResponses, Registry};
use poem_openapi::types::ToJSON;
use poem_openapi::{ApiResponse, Object};

use crate::domain::{Code, RuleViolation};

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
    pub code: Code,
    pub detail: String,
    pub field: Option<String>,
    pub retry_after_secs: Option<u64>,
    /// The cause of an internal error: logged, never sent.
    source: Option<anyhow::Error>,
}

pub type AppResult<T> = Result<T, AppError>;

impl AppError {
    pub fn new(code: Code, detail: impl Into<String>) -> Self {
        Self {
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

    /// A problem with one request field.
    pub fn field(code: Code, field: &str, detail: impl Into<String>) -> Self {
        Self::new(code, detail).with_field(field)
    }

    pub fn invalid(field: &str, detail: impl Into<String>) -> Self {
        Self::field(Code::InvalidField, field, detail)
    }

    pub fn unauthenticated(detail: impl Into<String>) -> Self {
        Self::new(Code::Unauthenticated, detail)
    }

    pub fn forbidden(detail: impl Into<String>) -> Self {
        Self::new(Code::Forbidden, detail)
    }

    pub fn not_found(what: &str) -> Self {
        Self::new(Code::NotFound, format!("No such {what}."))
    }

    pub fn too_many_attempts(retry_after_secs: u64) -> Self {
        let mut error = Self::new(
            Code::TooManyAttempts,
            format!("Too many failed sign-ins; try again in {retry_after_secs} seconds."),
        );
        error.retry_after_secs = Some(retry_after_secs.max(1));
        error
    }

    pub fn internal(source: anyhow::Error) -> Self {
        Self {
            source: Some(source),
            ..Self::new(
                Code::InternalError,
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

    pub fn status(&self) -> StatusCode {
        status_of(self.code)
    }

    pub fn problem(&self) -> Problem {
        problem_of(self.code, self.status(), &self.detail, self.field.clone())
    }
}

fn status_of(code: Code) -> StatusCode {
    StatusCode::from_u16(code.status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
}

fn problem_of(code: Code, status: StatusCode, detail: &str, field: Option<String>) -> Problem {
    Problem {
        kind: format!("urn:confide:problem:{}", code.as_str()),
        title: status.canonical_reason().unwrap_or("Error").to_string(),
        status: status.as_u16(),
        code: code.as_str().to_string(),
        detail: detail.to_string(),
        field,
    }
}

impl fmt::Display for AppError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} ({}): {}",
            self.status(),
            self.code.as_str(),
            self.detail
        )
    }
}

impl std::error::Error for AppError {}

impl From<RuleViolation> for AppError {
    fn from(v: RuleViolation) -> Self {
        let mut error = AppError::new(v.code, v.message);
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
        AppError::status(self)
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
                problem(410, "The sync state is too old or unknown; list again."),
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
            Code::Unauthenticated,
            "Sign in first: send Authorization: Bearer <token>.".to_string(),
        ),
        StatusCode::NOT_FOUND => (Code::NotFound, "No such resource.".to_string()),
        StatusCode::METHOD_NOT_ALLOWED => (
            Code::MethodNotAllowed,
            "This method is not allowed here.".to_string(),
        ),
        StatusCode::UNSUPPORTED_MEDIA_TYPE => (
            Code::UnsupportedMediaType,
            "Send the body as application/json.".to_string(),
        ),
        StatusCode::PAYLOAD_TOO_LARGE => (
            Code::PayloadTooLarge,
            "The request body is too large.".to_string(),
        ),
        s if s.is_client_error() => (Code::InvalidRequest, err.to_string()),
        _ => {
            tracing::error!(error = %err, "request failed");
            (
                Code::InternalError,
                "Something went wrong on our side; nothing was changed.".to_string(),
            )
        }
    };
    // A client error poem names with a status of its own (406, 411…) keeps that status.
    // …and so does a server error (502, 503…) raised outside Confide's own code.
    let status = if matches!(code, Code::InvalidRequest | Code::InternalError) {
        status
    } else {
        status_of(code)
    };
    problem_response(&problem_of(code, status, &detail, None), None)
}
