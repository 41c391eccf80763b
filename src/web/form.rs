//! Reading the pages' forms: `application/x-www-form-urlencoded` bodies (already bounded
//! by `limits`) with repeated fields, and `multipart/form-data` posts whose files stream to
//! disk while their text fields stay within the form limit.

use futures_util::TryStreamExt;
use poem::Request;

use crate::error::{AppError, AppResult};
use crate::service::attachments::{bad_multipart, receive, Received};
use crate::service::{AppState, Caller};

/// More fields than any page's form has.
const MAX_FIELDS: usize = 1000;

/// A form's fields in the order they came, names repeated as often as they were sent.
#[derive(Debug, Default, Clone)]
pub struct Fields(Vec<(String, String)>);

impl Fields {
    /// Parses a urlencoded body.
    pub fn parse(body: &[u8]) -> Fields {
        Fields(
            form_urlencoded::parse(body)
                .map(|(k, v)| (k.into_owned(), v.into_owned()))
                .collect(),
        )
    }

    /// Reads a urlencoded request body (bounded by the request limits in front of every
    /// route).
    pub async fn read(body: poem::Body) -> AppResult<Fields> {
        let bytes = body
            .into_bytes()
            .await
            .map_err(|_| AppError::invalid("body", "The form could not be read; send it again."))?;
        Ok(Fields::parse(&bytes))
    }

    /// The first value of a field, or "" when it was not sent.
    pub fn get(&self, name: &str) -> &str {
        self.0
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
            .unwrap_or("")
    }

    /// Every non-empty value of a repeated field.
    pub fn all(&self, name: &str) -> Vec<String> {
        self.0
            .iter()
            .filter(|(k, v)| k == name && !v.is_empty())
            .map(|(_, v)| v.clone())
            .collect()
    }

    fn push(&mut self, name: String, value: String) {
        self.0.push((name, value));
    }
}

/// A multipart form: its text fields, the files it carried (received on disk, not yet
/// stored), and the first file refused (too large, a type not allowed), whose reason the
/// page shows while keeping the rest of the form.
pub struct Posted {
    pub fields: Fields,
    pub files: Vec<Received>,
    pub refused: Option<AppError>,
}

/// Reads a form that may carry files in its `file` fields: urlencoded or multipart.
pub async fn read_posted(
    state: &AppState,
    caller: &Caller,
    req: &Request,
    body: poem::Body,
) -> AppResult<Posted> {
    let content_type = req.content_type().unwrap_or_default();
    let is_multipart = content_type
        .parse::<mime::Mime>()
        .is_ok_and(|m| m.type_() == mime::MULTIPART && m.subtype() == mime::FORM_DATA);
    if !is_multipart {
        return Ok(Posted {
            fields: Fields::read(body).await?,
            files: Vec::new(),
            refused: None,
        });
    }
    let mut form = crate::api::multipart_stream(req, body)?;
    let text_limit = state.config.limits.form_body_max_bytes;
    let mut posted = Posted {
        fields: Fields::default(),
        files: Vec::new(),
        refused: None,
    };
    let mut text_bytes = 0usize;
    let mut fields = 0usize;
    while let Some(field) = form.next_field().await.map_err(bad_multipart)? {
        fields += 1;
        if fields > MAX_FIELDS {
            return Err(AppError::invalid("body", "The form has too many fields."));
        }
        let name = field.name().unwrap_or("").to_string();
        text_bytes += name.len();
        match field.file_name().map(str::to_string) {
            // A file input left empty still sends a part with an empty name.
            Some(raw_name) if name == "file" && !raw_name.is_empty() => {
                receive_one(state, caller, &mut posted, raw_name, field).await?;
            }
            Some(_) => {}
            None => {
                let value = read_text(field, text_limit - text_bytes.min(text_limit)).await?;
                text_bytes += value.len();
                posted.fields.push(name, value);
            }
        }
    }
    Ok(posted)
}

/// Receives one file of a form, or notes why it was refused (the first refusal only).
async fn receive_one(
    state: &AppState,
    caller: &Caller,
    posted: &mut Posted,
    raw_name: String,
    field: multer::Field<'static>,
) -> AppResult<()> {
    let max_files = state.config.limits.attachments_per_upload;
    if posted.files.len() >= max_files {
        posted.refused.get_or_insert_with(|| {
            AppError::field(
                crate::domain::Code::TooManyFiles,
                "file",
                format!("At most {max_files} files per message."),
            )
        });
        return Ok(());
    }
    match receive(state, caller, posted.files.len(), &raw_name, field).await {
        Ok(file) => posted.files.push(file),
        Err(e) if e.status().is_client_error() => {
            posted
                .refused
                .get_or_insert_with(|| refused_on_a_page(state, &raw_name, e));
        }
        Err(e) => return Err(e),
    }
    Ok(())
}

/// A refused file as a form says it: the others and the rest of the form are kept, so the
/// API's "nothing was uploaded" would be wrong here; the size limit is said in words.
fn refused_on_a_page(state: &AppState, raw_name: &str, e: AppError) -> AppError {
    let name: String = raw_name.chars().take(80).collect();
    let detail = if e.code == crate::domain::Code::AttachmentTooLarge {
        let limit = super::inbox::human_size(state.config.limits.attachment_max_bytes as i64);
        format!("\"{name}\" is larger than {limit}, the most a file may be. It was not attached.")
    } else {
        e.detail
            .replace("; nothing was uploaded.", ". It was not attached.")
            .to_string()
    };
    e.with_detail(detail)
}

/// A text field of a multipart form, refused past `limit` bytes.
async fn read_text(field: multer::Field<'static>, limit: usize) -> AppResult<String> {
    let name = field
        .name()
        .unwrap_or("")
        .chars()
        .take(40)
        .collect::<String>();
    let mut bytes = Vec::new();
    let mut chunks = field;
    while let Some(chunk) = chunks.try_next().await.map_err(bad_multipart)? {
        if bytes.len() + chunk.len() > limit {
            return Err(AppError::new(
                crate::domain::Code::PayloadTooLarge,
                format!(
                    "The form's text is too long (at most {} KiB).",
                    limit / 1024
                ),
            )
            .with_field(name));
        }
        bytes.extend_from_slice(&chunk);
    }
    String::from_utf8(bytes)
        .map_err(|_| AppError::invalid(&name, format!("{name} is not valid text.")))
}
