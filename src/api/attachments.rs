//! `/attachments`: streamed multipart uploads and safe downloads.

use chrono::{DateTime, Utc};
use poem::{Request, RequestBody};
use poem_openapi::param::Path;
use poem_openapi::payload::{Binary, Json, ParsePayload, Payload, Response};
use poem_openapi::registry::{MetaSchema, MetaSchemaRef, Registry};
use poem_openapi::{ApiResponse, Object, OpenApi};

use crate::clock::to_datetime;
use crate::domain::attachments::content_disposition;
use crate::domain::ids::AttachmentId;
use crate::domain::Code;
use crate::error::{AppError, AppResult};
use crate::service::attachments::{self as service, bad_multipart, AttachmentView};
use crate::service::{AppState, Caller};

use super::{caller, BearerAuth, NoContent};

/// An attachment: what an uploader and a thread's participants see of it.
#[derive(Debug, Object)]
pub struct AttachmentOut {
    pub id: String,
    /// For display only: cleaned of path separators and control or direction characters.
    pub name: String,
    /// In bytes.
    pub size: i64,
    /// Decided from the content, not from the name or the declared type.
    pub content_type: String,
    /// Hex SHA-256 of the content.
    pub sha256: String,
    pub created_at: DateTime<Utc>,
}

impl From<AttachmentView> for AttachmentOut {
    fn from(a: AttachmentView) -> Self {
        Self {
            id: a.id,
            name: a.name,
            size: a.size,
            content_type: a.content_type,
            sha256: a.sha256,
            created_at: to_datetime(a.created_at),
        }
    }
}

#[derive(Debug, Object)]
pub struct UploadedOut {
    /// In the order the files were sent.
    pub attachments: Vec<AttachmentOut>,
}

#[derive(ApiResponse)]
pub enum Uploaded {
    /// Stored; pending until a message, reply or draft uses them (`attachment_ids`).
    #[oai(status = 201)]
    Created(Json<UploadedOut>),
}

/// A `multipart/form-data` body read as a stream, never whole.
pub struct UploadForm(multer::Multipart<'static>);

impl Payload for UploadForm {
    const CONTENT_TYPE: &'static str = "multipart/form-data";

    fn check_content_type(content_type: &str) -> bool {
        matches!(content_type.parse::<mime::Mime>(), Ok(m)
            if m.type_() == mime::MULTIPART && m.subtype() == mime::FORM_DATA)
    }

    fn schema_ref() -> MetaSchemaRef {
        let file = MetaSchema {
            format: Some("binary"),
            ..MetaSchema::new("string")
        };
        let files = MetaSchema {
            items: Some(Box::new(MetaSchemaRef::Inline(Box::new(file)))),
            description: Some(
                "One or more files (repeat the field), each at most limits.attachment_max_bytes.",
            ),
            ..MetaSchema::new("array")
        };
        MetaSchemaRef::Inline(Box::new(MetaSchema {
            properties: vec![("file", MetaSchemaRef::Inline(Box::new(files)))],
            required: vec!["file"],
            ..MetaSchema::new("object")
        }))
    }

    fn register(_registry: &mut Registry) {}
}

impl ParsePayload for UploadForm {
    const IS_REQUIRED: bool = true;

    async fn from_request(request: &Request, body: &mut RequestBody) -> poem::Result<Self> {
        Ok(UploadForm(multipart_stream(request, body.take()?)?))
    }
}

/// Every file of an upload, received in turn; the first refusal ends it.
async fn receive_all(
    state: &AppState,
    caller: &Caller,
    form: &mut multer::Multipart<'static>,
) -> AppResult<Vec<service::Received>> {
    let mut received = Vec::new();
    while let Some(field) = form.next_field().await.map_err(bad_multipart)? {
        if field.name() != Some("file") {
            let name: String = field.name().unwrap_or("").chars().take(40).collect();
            return Err(AppError::invalid(
                "file",
                format!("Only \"file\" fields are accepted, not {name:?}; nothing was uploaded."),
            ));
        }
        if received.len() >= state.config.limits.attachments_per_upload {
            return Err(AppError::field(
                Code::TooManyFiles,
                "file",
                format!(
                    "At most {} files per upload; nothing was uploaded.",
                    state.config.limits.attachments_per_upload
                ),
            ));
        }
        // A part without a file name is a form value, not a file (RFC 7578 §4.2).
        let Some(raw_name) = field.file_name().map(str::to_string) else {
            return Err(AppError::invalid(
                "file",
                "Each \"file\" part must be a file, with a filename in its \
                 Content-Disposition; nothing was uploaded.",
            ));
        };
        received.push(service::receive(state, caller, received.len(), &raw_name, field).await?);
    }
    Ok(received)
}

/// Reads what is left of a refused upload for up to two seconds, keeping none of it.
async fn drain_form(form: &mut multer::Multipart<'static>) {
    let rest = async {
        while let Ok(Some(mut field)) = form.next_field().await {
            while let Ok(Some(_)) = field.chunk().await {}
        }
    };
    let _ = tokio::time::timeout(std::time::Duration::from_secs(2), rest).await;
}

/// A multipart body read as a stream, a chunk at a time, with a cap on the whole request
/// so that nothing (not even a body without boundaries that multer would buffer) grows
/// without bound. Also used by the pages that post files.
pub fn multipart_stream(
    request: &Request,
    body: poem::Body,
) -> crate::error::AppResult<multer::Multipart<'static>> {
    let content_type = request.content_type().unwrap_or_default();
    let boundary = multer::parse_boundary(content_type).map_err(bad_multipart)?;
    let stream = OneChunkPerPoll {
        inner: Box::pin(body.into_bytes_stream()),
        yielded: false,
    };
    let whole = request
        .data::<std::sync::Arc<crate::config::Config>>()
        .map(|c| {
            (c.limits.attachments_per_upload as u64 + 1)
                * (c.limits.attachment_max_bytes + 64 * 1024)
        })
        .unwrap_or(u64::MAX);
    let constraints =
        multer::Constraints::new().size_limit(multer::SizeLimit::new().whole_stream(whole));
    Ok(multer::Multipart::with_constraints(
        stream,
        boundary,
        constraints,
    ))
}

poem_openapi::impl_apirequest_for_payload!(UploadForm,);

/// Hands multer one chunk per poll. multer reads its input until it would block, so on a
/// fast connection it would otherwise pull megabytes into its buffer ahead of the file
/// being written; this keeps what is in memory per upload to a chunk or two.
struct OneChunkPerPoll<S> {
    inner: std::pin::Pin<Box<S>>,
    yielded: bool,
}

impl<S: futures_util::Stream> futures_util::Stream for OneChunkPerPoll<S> {
    type Item = S::Item;

    fn poll_next(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Self::Item>> {
        if self.yielded {
            self.yielded = false;
            cx.waker().wake_by_ref();
            return std::task::Poll::Pending;
        }
        let next = self.inner.as_mut().poll_next(cx);
        self.yielded = matches!(next, std::task::Poll::Ready(Some(_)));
        next
    }
}

pub struct AttachmentsApi(pub AppState);

#[OpenApi(tag = "super::Tag::Mailbox")]
impl AttachmentsApi {
    /// Uploads one or more files (form field `file`, repeatable), streamed to disk. Types
    /// are decided by content against the allow-list; a file over the size limit is
    /// refused with 413 `attachment_too_large`. All files are kept or none.
    #[oai(
        path = "/attachments",
        method = "post",
        operation_id = "upload_attachments"
    )]
    async fn upload(
        &self,
        auth: BearerAuth,
        req: &Request,
        form: UploadForm,
    ) -> AppResult<Uploaded> {
        let state = &self.0;
        let caller = caller(state, &auth, req).await?;
        service::check_quota(state, &caller).await?;
        let mut form = form.0;
        let received = match receive_all(state, &caller, &mut form).await {
            Ok(received) => received,
            Err(e) => {
                // What the client is still sending is read (and thrown away) for a moment,
                // so that it reads the refusal instead of a reset connection.
                drain_form(&mut form).await;
                return Err(e);
            }
        };
        let views = service::store_uploads(state, &caller, received).await?;
        Ok(Uploaded::Created(Json(UploadedOut {
            attachments: views.into_iter().map(Into::into).collect(),
        })))
    }

    /// Downloads an attachment: for participants of a thread whose message carries it, and
    /// for its uploader while pending. Served as a download (`Content-Disposition:
    /// attachment`, `nosniff`, `sandbox`) after its bytes pass their hash check.
    #[oai(
        path = "/attachments/:id",
        method = "get",
        operation_id = "download_attachment"
    )]
    async fn download(
        &self,
        auth: BearerAuth,
        req: &Request,
        id: Path<String>,
    ) -> AppResult<Response<Binary<poem::Body>>> {
        let caller = caller(&self.0, &auth, req).await?;
        let (row, file) =
            service::open(&self.0, &caller, &AttachmentId::from_trusted(id.0)).await?;
        let body = poem::Body::from_async_read(file);
        Ok(Response::new(Binary(body))
            .header("content-type", row.content_type.as_str())
            .header("content-disposition", content_disposition(&row.name))
            .header("x-content-type-options", "nosniff")
            .header("content-security-policy", "sandbox")
            .header("cache-control", "no-store"))
    }

    /// An attachment's details, for the same people who may download it.
    #[oai(
        path = "/attachments/:id/info",
        method = "get",
        operation_id = "get_attachment"
    )]
    async fn info(
        &self,
        auth: BearerAuth,
        req: &Request,
        id: Path<String>,
    ) -> AppResult<Json<AttachmentOut>> {
        let caller = caller(&self.0, &auth, req).await?;
        Ok(Json(
            service::info(&self.0, &caller, &AttachmentId::from_trusted(id.0))
                .await?
                .into(),
        ))
    }

    /// Deletes one of your pending uploads. Once a message carries it, an attachment goes
    /// only with a permanent deletion of its message (409 `attachment_sent`).
    #[oai(
        path = "/attachments/:id",
        method = "delete",
        operation_id = "delete_attachment"
    )]
    async fn delete(
        &self,
        auth: BearerAuth,
        req: &Request,
        id: Path<String>,
    ) -> AppResult<NoContent> {
        let caller = caller(&self.0, &auth, req).await?;
        service::delete_pending(&self.0, &caller, &AttachmentId::from_trusted(id.0)).await?;
        Ok(NoContent::Done)
    }
}
