//! Chart notes (`/threads/{id}/quick-note`, `/people/{id}/chart-notes`, `/chart-notes/{id}`)
//! and thread exports (`/threads/{id}/export`).

use chrono::{DateTime, Utc};
use poem::http::{header, StatusCode};
use poem::{IntoResponse, Request, Response};
use poem_openapi::param::{Path, Query};
use poem_openapi::payload::Json;
use poem_openapi::registry::{
    MetaMediaType, MetaResponse, MetaResponses, MetaSchema, MetaSchemaRef, Registry,
};
use poem_openapi::types::{ToJSON, Type};
use poem_openapi::{ApiResponse, Object, OpenApi};
use serde::Deserialize;

use crate::clock::to_datetime;
use crate::domain::ids::{ChartNoteId, PersonId, ThreadId};
use crate::error::{AppError, AppResult};
use crate::service::chart::{self, ChartNoteView};
use crate::service::AppState;

use super::{caller, BearerAuth, JsonBody};

#[derive(Debug, Object)]
pub struct NoteVersionOut {
    pub version: i64,
    pub content: String,
    pub author_id: String,
    pub author_name: String,
    pub created_at: DateTime<Utc>,
}

/// A chart note with every version, the current one last.
#[derive(Debug, Object)]
pub struct ChartNoteOut {
    pub id: String,
    pub client_id: String,
    pub client_name: String,
    #[oai(skip_serializing_if_is_none)]
    pub source_thread_id: Option<String>,
    /// The current content (Markdown).
    pub content: String,
    pub version: i64,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub versions: Vec<NoteVersionOut>,
}

impl From<ChartNoteView> for ChartNoteOut {
    fn from(n: ChartNoteView) -> Self {
        let current = n.current().cloned();
        Self {
            content: current
                .as_ref()
                .map(|v| v.content.clone())
                .unwrap_or_default(),
            version: current.as_ref().map(|v| v.version).unwrap_or(0),
            id: n.id,
            client_id: n.client_id,
            client_name: n.client_name,
            source_thread_id: n.source_thread_id,
            created_at: to_datetime(n.created_at),
            updated_at: to_datetime(n.updated_at),
            versions: n
                .versions
                .into_iter()
                .map(|v| NoteVersionOut {
                    version: v.version,
                    content: v.content,
                    author_id: v.author_id,
                    author_name: v.author_name,
                    created_at: to_datetime(v.created_at),
                })
                .collect(),
        }
    }
}

#[derive(Debug, Object)]
pub struct ChartNoteList {
    pub chart_notes: Vec<ChartNoteOut>,
}

/// Without `content`, the note is the thread's transcript. The thread's internal notes
/// are added only with `include_notes: true`.
#[derive(Debug, Object, Deserialize)]
#[oai(deny_unknown_fields)]
#[serde(deny_unknown_fields)]
pub struct QuickNoteRequest {
    pub content: Option<String>,
    pub include_notes: Option<bool>,
}

/// The amended content; the earlier versions are kept.
#[derive(Debug, Object, Deserialize)]
#[oai(deny_unknown_fields)]
#[serde(deny_unknown_fields)]
pub struct AmendRequest {
    pub content: String,
}

#[derive(ApiResponse)]
pub enum NoteCreated {
    /// Saved to the client's chart.
    #[oai(status = 201)]
    Created(Json<ChartNoteOut>),
}

/// A document in one of several representations.
pub enum Document {
    Markdown(String),
    Fhir(serde_json::Value),
    Json(ChartNoteOut),
    Csv { body: String, filename: String },
}

impl IntoResponse for Document {
    fn into_response(self) -> Response {
        match self {
            Document::Markdown(text) => Response::builder()
                .content_type("text/markdown; charset=utf-8")
                .body(text),
            Document::Fhir(value) => Response::builder()
                .content_type("application/fhir+json")
                .body(value.to_string()),
            Document::Json(note) => Response::builder()
                .content_type("application/json; charset=utf-8")
                .body(note.to_json_string()),
            Document::Csv { body, filename } => Response::builder()
                .content_type("text/csv; charset=utf-8")
                .header(
                    header::CONTENT_DISPOSITION,
                    format!("attachment; filename=\"{filename}\""),
                )
                .body(body),
        }
        .with_status(StatusCode::OK)
        .into_response()
    }
}

impl ApiResponse for Document {
    fn meta() -> MetaResponses {
        let text = || MetaSchemaRef::Inline(Box::new(MetaSchema::new("string")));
        let media = |content_type: &'static str, schema: MetaSchemaRef| MetaMediaType {
            content_type,
            schema,
        };
        MetaResponses {
            responses: vec![MetaResponse {
                description: "The document: Markdown (default), FHIR R4 DocumentReference, JSON, or CSV for exports.",
                status: Some(200),
                status_range: None,
                content: vec![
                    media("text/markdown; charset=utf-8", text()),
                    media("application/fhir+json", MetaSchemaRef::Inline(Box::new(MetaSchema::new("object")))),
                    media("application/json; charset=utf-8", ChartNoteOut::schema_ref()),
                    media("text/csv; charset=utf-8", text()),
                ],
                headers: vec![],
            }],
        }
    }

    fn register(registry: &mut Registry) {
        ChartNoteOut::register(registry);
    }
}

pub struct ChartApi(pub AppState);

#[OpenApi(tag = "super::Tag::Chart")]
impl ChartApi {
    /// Saves a chart note to the client of a thread with exactly one client (staff who
    /// take part in it). Without `content`, the note is the thread's transcript.
    #[oai(
        path = "/threads/:id/quick-note",
        method = "post",
        operation_id = "quick_note"
    )]
    async fn quick_note(
        &self,
        auth: BearerAuth,
        req: &Request,
        id: Path<String>,
        body: JsonBody<QuickNoteRequest>,
    ) -> AppResult<NoteCreated> {
        let caller = caller(&self.0, &auth, req).await?;
        let note = chart::quick_note(
            &self.0,
            &caller,
            &ThreadId::from_trusted(id.0.clone()),
            body.0.content.as_deref(),
            body.0.include_notes.unwrap_or(false),
        )
        .await?;
        Ok(NoteCreated::Created(Json(note.into())))
    }

    /// A client's chart notes, newest first (staff only).
    #[oai(
        path = "/people/:id/chart-notes",
        method = "get",
        operation_id = "list_chart_notes"
    )]
    async fn list(
        &self,
        auth: BearerAuth,
        req: &Request,
        id: Path<String>,
    ) -> AppResult<Json<ChartNoteList>> {
        let caller = caller(&self.0, &auth, req).await?;
        let notes = chart::list(&self.0, &caller, &PersonId::from_trusted(id.0)).await?;
        Ok(Json(ChartNoteList {
            chart_notes: notes.into_iter().map(Into::into).collect(),
        }))
    }

    /// One chart note: `format=markdown` (default), `fhir` (an HL7 FHIR R4
    /// DocumentReference) or `json` (with every version). Staff only.
    #[oai(
        path = "/chart-notes/:id",
        method = "get",
        operation_id = "get_chart_note"
    )]
    async fn get(
        &self,
        auth: BearerAuth,
        req: &Request,
        id: Path<String>,
        format: Query<Option<String>>,
    ) -> AppResult<Document> {
        let caller = caller(&self.0, &auth, req).await?;
        let format = format.0.unwrap_or_else(|| "markdown".into());
        if !matches!(format.as_str(), "markdown" | "fhir" | "json") {
            return Err(AppError::invalid(
                "format",
                "format must be markdown, fhir or json.",
            ));
        }
        let note = chart::get(&self.0, &caller, &ChartNoteId::from_trusted(id.0)).await?;
        Ok(match format.as_str() {
            "fhir" => Document::Fhir(chart::as_fhir(&note)),
            "json" => Document::Json(note.into()),
            _ => Document::Markdown(
                note.current()
                    .map(|v| v.content.clone())
                    .unwrap_or_default(),
            ),
        })
    }

    /// Amends a chart note: a new version; earlier versions are kept, nothing is deleted.
    #[oai(
        path = "/chart-notes/:id",
        method = "put",
        operation_id = "amend_chart_note"
    )]
    async fn amend(
        &self,
        auth: BearerAuth,
        req: &Request,
        id: Path<String>,
        body: JsonBody<AmendRequest>,
    ) -> AppResult<Json<ChartNoteOut>> {
        let caller = caller(&self.0, &auth, req).await?;
        Ok(Json(
            chart::amend(
                &self.0,
                &caller,
                &ChartNoteId::from_trusted(id.0),
                &body.0.content,
            )
            .await?
            .into(),
        ))
    }

    /// A thread's transcript as CSV, one row per message (participants only).
    #[oai(
        path = "/threads/:id/export",
        method = "get",
        operation_id = "export_thread"
    )]
    async fn export(
        &self,
        auth: BearerAuth,
        req: &Request,
        id: Path<String>,
        format: Query<Option<String>>,
    ) -> AppResult<Document> {
        let caller = caller(&self.0, &auth, req).await?;
        if format.0.as_deref().unwrap_or("csv") != "csv" {
            return Err(AppError::invalid("format", "format must be csv."));
        }
        let body =
            chart::export_csv(&self.0, &caller, &ThreadId::from_trusted(id.0.clone())).await?;
        Ok(Document::Csv {
            body,
            filename: format!(
                "thread-{}.csv",
                id.0.chars()
                    .filter(char::is_ascii_alphanumeric)
                    .collect::<String>()
            ),
        })
    }
}
