//! `/changes` (delta sync, after JMAP's `Foo/changes`) and `/events` (a Server-Sent
//! Events stream of new states). Neither carries content: ids and what kind changed.

use bytes::Bytes;
use futures_util::stream::BoxStream;
use futures_util::StreamExt;
use poem::{Body, IntoResponse, Request, Response};
use poem_openapi::param::{Header, Query};
use poem_openapi::payload::{Json, Payload};
use poem_openapi::registry::{
    MetaMediaType, MetaResponse, MetaResponses, MetaSchema, MetaSchemaRef, Registry,
};
use poem_openapi::types::{ToJSON, Type};
use poem_openapi::{ApiResponse, Object, OpenApi};

use crate::error::AppResult;
use crate::service::changes::{self, Beat, StateEvent};
use crate::service::{sessions as session_service, AppState};

use super::{request_meta, BearerAuth};

/// What changed in your mailbox since a state.
#[derive(Debug, Object)]
pub struct ChangesOut {
    /// The state to ask from next time.
    pub state: String,
    /// Threads new in your mailbox.
    pub created: Vec<String>,
    /// Threads of yours that changed (a message, a read, a move, a reaction…).
    pub updated: Vec<String>,
    /// Threads gone from your mailbox (deleted, emptied from Trash, no longer shared).
    pub destroyed: Vec<String>,
    /// Whether your folders or their counts changed: list them again.
    pub folders_changed: bool,
    /// Whether your drafts changed.
    pub drafts_changed: bool,
    /// More changes wait: ask again from `state` at once.
    pub has_more: bool,
}

/// One event of the stream: your new state and which kinds of things changed up to it
/// (`threads`, `folders`, `drafts`; empty for the first event of a fresh stream).
#[derive(Debug, Object)]
pub struct StateEventOut {
    pub state: String,
    pub kinds: Vec<String>,
}

impl From<StateEvent> for StateEventOut {
    fn from(e: StateEvent) -> Self {
        Self {
            state: e.state,
            kinds: e.kinds,
        }
    }
}

/// The SSE frame of a state event: `id:` the state (what `Last-Event-ID` resumes from),
/// `event: state`, `data:` the JSON (one line).
fn frame(e: StateEventOut) -> Bytes {
    let data = e.to_json_string();
    Bytes::from(format!("id: {}\nevent: state\ndata: {data}\n\n", e.state))
}

/// The event stream as a response: `text/event-stream`, a frame per state event and a
/// comment per keep-alive. The frames go to the connection as they are: poem's SSE passes
/// them through a reader with a 4 KiB buffer of its own, which every idle stream would
/// hold for nothing.
pub struct StateEvents(BoxStream<'static, Beat>);

impl StateEvents {
    pub fn new(beats: BoxStream<'static, Beat>) -> Self {
        Self(beats)
    }
}

impl Payload for StateEvents {
    const CONTENT_TYPE: &'static str = "text/event-stream";

    fn schema_ref() -> MetaSchemaRef {
        MetaSchemaRef::Inline(Box::new(MetaSchema {
            items: Some(Box::new(StateEventOut::schema_ref())),
            ..MetaSchema::new_with_format("array", "event-stream")
        }))
    }

    fn register(registry: &mut Registry) {
        StateEventOut::register(registry);
    }
}

impl ApiResponse for StateEvents {
    fn meta() -> MetaResponses {
        MetaResponses {
            responses: vec![MetaResponse {
                description: "",
                status: Some(200),
                status_range: None,
                content: vec![MetaMediaType {
                    content_type: Self::CONTENT_TYPE,
                    schema: Self::schema_ref(),
                }],
                headers: vec![],
            }],
        }
    }

    fn register(registry: &mut Registry) {
        StateEventOut::register(registry);
    }
}

impl IntoResponse for StateEvents {
    fn into_response(self) -> Response {
        let body = self.0.map(|beat| {
            Ok::<_, std::io::Error>(match beat {
                Beat::State(e) => frame(e.into()),
                Beat::KeepAlive => Bytes::from_static(b":\n\n"),
            })
        });
        Response::builder()
            .content_type(Self::CONTENT_TYPE)
            .header("X-Accel-Buffering", "no")
            .header(poem::http::header::CACHE_CONTROL, "no-cache")
            .body(Body::from_bytes_stream(body))
    }
}

pub struct ChangesApi(pub AppState);

#[OpenApi(tag = "super::Tag::Mailbox")]
impl ChangesApi {
    /// What changed for you since `since` (a `state` from `GET /threads`, `GET /folders`,
    /// an earlier `/changes` or the event stream). 410 `cannot_calculate_changes` when the
    /// state is too old or unknown: list your threads and folders again.
    #[oai(path = "/changes", method = "get", operation_id = "changes")]
    async fn changes(
        &self,
        auth: BearerAuth,
        req: &Request,
        since: Query<String>,
        /// 1–1000, default 500: the most changes in one answer (`has_more` says if more wait).
        limit: Query<Option<i64>>,
    ) -> AppResult<Json<ChangesOut>> {
        let caller = super::caller(&self.0, &auth, req).await?;
        let c = changes::since(&self.0, &caller, &since.0, limit.0.unwrap_or(500)).await?;
        Ok(Json(ChangesOut {
            state: c.state,
            created: c.created,
            updated: c.updated,
            destroyed: c.destroyed,
            folders_changed: c.folders_changed,
            drafts_changed: c.drafts_changed,
            has_more: c.has_more,
        }))
    }

    /// Server-Sent Events: `event: state` with `{state, kinds}` whenever something changes
    /// for you, never content; first your state now. Send `Last-Event-ID` to resume: the
    /// first event then says what changed since. A comment keeps the stream open; it ends
    /// when your session does.
    #[oai(path = "/events", method = "get", operation_id = "events")]
    async fn events(
        &self,
        auth: BearerAuth,
        req: &Request,
        #[oai(name = "Last-Event-ID")] last_event_id: Header<Option<String>>,
    ) -> AppResult<StateEvents> {
        // Holding a stream open is not activity: the session's idle limit still applies.
        let caller = session_service::authenticate_passively(
            &self.0,
            &auth.0.token,
            request_meta(req, &self.0.config),
        )
        .await?;
        let stream = changes::stream(self.0.clone(), caller, last_event_id.0).await?;
        Ok(StateEvents::new(stream.boxed()))
    }
}
