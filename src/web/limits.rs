//! One bound on every request, in front of every route: its body is read here, counted as
//! the bytes arrive (a false or missing Content-Length changes nothing), and refused with
//! 413 past the limit for its kind: HTML forms `limits.form_body_max_bytes`, anything else
//! `limits.json_body_max_bytes`. The whole request (reading the body and answering) must
//! finish within `server.request_timeout_secs`. Streamed uploads are the exception: their
//! own limit counts each file, and a body that sends nothing for
//! `server.body_idle_timeout_secs` is cut off.

use std::sync::Arc;
use std::time::Duration;

use bytes::BytesMut;
use futures_util::{Stream, StreamExt, TryStreamExt};
use poem::http::{header, Method};
use poem::{Body, Endpoint, IntoResponse, Request, Response};

use crate::config::Config;
use crate::domain::Code;
use crate::error::AppError;

/// Routes whose body is a stream of files, read by the handler as it arrives: the API's
/// uploads, and the pages' forms that carry files (compose, reply), which bound their own
/// text fields.
fn is_streamed_upload(req: &Request) -> bool {
    if req.method() != Method::POST {
        return false;
    }
    let path = req.uri().path();
    let page_with_files = path.starts_with("/p/")
        && (path.ends_with("/compose") || path.ends_with("/reply"))
        && req
            .content_type()
            .and_then(|ct| ct.parse::<mime::Mime>().ok())
            .is_some_and(|m| m.essence_str() == "multipart/form-data");
    path == "/api/v1/attachments" || page_with_files
}

fn is_form(req: &Request) -> bool {
    req.content_type()
        .and_then(|ct| ct.parse::<mime::Mime>().ok())
        .is_some_and(|m| m.essence_str() == "application/x-www-form-urlencoded")
}

/// The refusal in the shape the caller reads: problem+json for the API, a page otherwise.
fn refuse(path: &str, error: AppError) -> Response {
    if path.starts_with("/api/") {
        error.into_response()
    } else {
        super::pages::error_page(error.status(), &error.detail)
    }
}

fn too_large(limit: usize) -> AppError {
    AppError::new(
        Code::PayloadTooLarge,
        format!(
            "The request body must be at most {} KiB ({limit} bytes).",
            limit / 1024
        ),
    )
}

fn too_slow() -> AppError {
    AppError::new(
        Code::RequestTimeout,
        "The request took too long to arrive; send it again.",
    )
}

/// A refused body is read on (and thrown away) up to this much and this long before the
/// answer goes out: a client still sending when the server closes gets a reset instead of
/// the answer.
const DRAIN_MAX_BYTES: usize = 1024 * 1024;
const DRAIN_MAX_TIME: Duration = Duration::from_secs(2);

async fn drain(stream: impl Stream<Item = std::io::Result<bytes::Bytes>>) {
    let read = async {
        let mut stream = std::pin::pin!(stream);
        let mut seen = 0;
        while let Some(Ok(chunk)) = stream.next().await {
            seen += chunk.len();
            if seen > DRAIN_MAX_BYTES {
                break;
            }
        }
    };
    let _ = tokio::time::timeout(DRAIN_MAX_TIME, read).await;
}

/// Reads at most `limit` bytes of the body; `None` if there are more (the rest is drained).
async fn read_bounded(body: Body, limit: usize) -> std::io::Result<Option<BytesMut>> {
    let mut stream = Box::pin(body.into_bytes_stream());
    let mut buffer = BytesMut::new();
    while let Some(chunk) = stream.try_next().await? {
        if buffer.len() + chunk.len() > limit {
            drop(buffer);
            drain(stream).await;
            return Ok(None);
        }
        buffer.extend_from_slice(&chunk);
    }
    Ok(Some(buffer))
}

/// Ends a streamed body with an error when no bytes arrive for `idle`.
fn with_idle_timeout(
    body: Body,
    idle: Duration,
) -> impl Stream<Item = std::io::Result<bytes::Bytes>> + Send + 'static {
    let stream = body.into_bytes_stream();
    futures_util::stream::unfold(Box::pin(stream), move |mut stream| async move {
        match tokio::time::timeout(idle, stream.next()).await {
            Ok(Some(item)) => Some((item, stream)),
            Ok(None) => None,
            Err(_) => Some((
                Err(std::io::Error::new(
                    std::io::ErrorKind::TimedOut,
                    "the request body stalled",
                )),
                stream,
            )),
        }
    })
}

pub async fn request_limits<E: Endpoint>(
    ep: Arc<E>,
    mut req: Request,
    config: Arc<Config>,
) -> poem::Result<Response> {
    let path = req.uri().path().to_string();
    let server = &config.server;
    if is_streamed_upload(&req) {
        let body = req.take_body();
        let idle = Duration::from_secs(server.body_idle_timeout_secs);
        req.set_body(Body::from_bytes_stream(with_idle_timeout(body, idle)));
        return ep.call(req).await.map(IntoResponse::into_response);
    }
    let limit = if is_form(&req) {
        config.limits.form_body_max_bytes
    } else {
        config.limits.json_body_max_bytes
    };
    let declared = req
        .header(header::CONTENT_LENGTH)
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > limit as u64) {
        drain(req.take_body().into_bytes_stream()).await;
        return Ok(refuse(&path, too_large(limit)));
    }
    let deadline = Duration::from_secs(server.request_timeout_secs);
    let started = std::time::Instant::now();
    let body = req.take_body();
    match tokio::time::timeout(deadline, read_bounded(body, limit)).await {
        Ok(Ok(Some(bytes))) => req.set_body(Body::from_bytes(bytes.freeze())),
        Ok(Ok(None)) => return Ok(refuse(&path, too_large(limit))),
        Ok(Err(_)) => {
            let error = AppError::new(Code::InvalidRequest, "The request body was cut off.");
            return Ok(refuse(&path, error));
        }
        Err(_) => return Ok(refuse(&path, too_slow())),
    }
    let remaining = deadline.saturating_sub(started.elapsed());
    match tokio::time::timeout(remaining, ep.call(req)).await {
        Ok(result) => result.map(IntoResponse::into_response),
        Err(_) => {
            // The path may hold a token: it is not logged.
            tracing::warn!("a request took longer than server.request_timeout_secs");
            let error = AppError::new(
                Code::ServerTimeout,
                "The server took too long to answer; try again.",
            );
            Ok(refuse(&path, error))
        }
    }
}
