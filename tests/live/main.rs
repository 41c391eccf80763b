//! Live updates and sync (DESIGN.md §3 and §5 "Live updates and sync", issue 16): what
//! `/changes` reports to whom, the event streams of the API and of the pages, and several
//! nodes on one database. Every test runs on SQLite and on PostgreSQL, but the one that
//! needs PostgreSQL's notifications between nodes.

#[path = "../common/helpers.rs"]
mod helpers;
#[path = "../common/mail.rs"]
mod mail;
#[path = "../common/s3.rs"]
mod s3;
// Only the form helpers are used here.
#[allow(dead_code)]
#[path = "../common/web.rs"]
mod web;

mod changes;
mod cluster;
mod nodes;
mod streams;

pub use helpers::{user, Cast};

use std::time::Duration;

use helpers::{Session, TestApp};
use reqwest::StatusCode;
use serde_json::Value;

/// Waits until the app's follower has read the whole event log as it is now.
pub async fn settle(app: &TestApp) {
    let end: i64 = {
        let mut conn = app.db.connect().await;
        sqlx::query_scalar("SELECT CAST(COALESCE(MAX(seq), 0) AS BIGINT) FROM events")
            .fetch_one(&mut conn)
            .await
            .unwrap()
    };
    tokio::time::timeout(Duration::from_secs(10), app.state.live.reached(end))
        .await
        .expect("the follower reads the log within 10 s");
}

/// `who`'s state now, from `GET /threads`.
pub async fn state_of(app: &TestApp, who: &Session) -> String {
    settle(app).await;
    let (status, page) = app.get("/api/v1/threads?limit=1", who).await;
    assert_eq!(status, StatusCode::OK, "{page}");
    page["state"].as_str().unwrap().to_string()
}

/// `GET /changes` since `since` (after the follower caught up), which must succeed.
pub async fn changes(app: &TestApp, who: &Session, since: &str) -> Value {
    settle(app).await;
    let (status, body) = app
        .get(&format!("/api/v1/changes?since={since}"), who)
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    body
}

/// The ids in one list of a `/changes` answer.
pub fn ids(changes: &Value, list: &str) -> Vec<String> {
    let mut ids: Vec<String> = changes[list]
        .as_array()
        .unwrap_or_else(|| panic!("no {list} in {changes}"))
        .iter()
        .map(|v| v.as_str().unwrap().to_string())
        .collect();
    ids.sort();
    ids
}

/// One Server-Sent Events stream, read event by event.
pub struct Sse {
    response: reqwest::Response,
    buffer: String,
    /// Everything read, comments included (to check that nothing else is in it).
    pub raw: String,
}

/// One event of a stream.
#[derive(Debug)]
pub struct SseEvent {
    pub event: String,
    pub id: String,
    pub data: Value,
}

impl Sse {
    /// Opens `path` with the bearer token or cookie given, and the `Last-Event-ID`.
    pub async fn open(
        app: &TestApp,
        path: &str,
        auth: (&str, &str),
        last_event_id: Option<&str>,
    ) -> Sse {
        let mut req = app.client.get(app.url(path)).header(auth.0, auth.1);
        if let Some(id) = last_event_id {
            req = req.header("last-event-id", id);
        }
        Sse::from_response(req.send().await.expect("request"))
    }

    /// Opens `path` on a server at `base` with a bearer token.
    pub async fn open_at(base: &str, path: &str, token: &str) -> Sse {
        Self::open_with(&reqwest::Client::new(), &format!("{base}{path}"), token).await
    }

    /// Opens `url` through `http` (an HTTP/2 client, say) with a bearer token.
    pub async fn open_with(http: &reqwest::Client, url: &str, token: &str) -> Sse {
        Sse::from_response(
            http.get(url)
                .bearer_auth(token)
                .send()
                .await
                .expect("request"),
        )
    }

    /// The stream `response` answered with: 200 and `text/event-stream`.
    fn from_response(response: reqwest::Response) -> Sse {
        assert_eq!(response.status(), StatusCode::OK);
        let kind = response.headers()["content-type"]
            .to_str()
            .unwrap()
            .to_string();
        assert!(kind.starts_with("text/event-stream"), "{kind}");
        Sse {
            response,
            buffer: String::new(),
            raw: String::new(),
        }
    }

    /// The next event within `wait`; `None` when the stream ended. Panics on a timeout.
    pub async fn next(&mut self, wait: Duration) -> Option<SseEvent> {
        tokio::time::timeout(wait, self.next_event())
            .await
            .unwrap_or_else(|_| panic!("no event within {wait:?}; read so far: {:?}", self.raw))
    }

    async fn next_event(&mut self) -> Option<SseEvent> {
        loop {
            if let Some(end) = self.buffer.find("\n\n") {
                let block: String = self.buffer.drain(..end + 2).collect();
                let mut event = SseEvent {
                    event: "message".into(),
                    id: String::new(),
                    data: Value::Null,
                };
                let mut comment_only = true;
                for line in block.lines() {
                    if let Some(v) = line.strip_prefix("event: ") {
                        event.event = v.to_string();
                        comment_only = false;
                    } else if let Some(v) = line.strip_prefix("id: ") {
                        event.id = v.to_string();
                    } else if let Some(v) = line.strip_prefix("data: ") {
                        event.data = serde_json::from_str(v).expect("JSON data");
                        comment_only = false;
                    }
                }
                if comment_only {
                    continue;
                }
                return Some(event);
            }
            let chunk = self.response.chunk().await.ok()??;
            let text = String::from_utf8(chunk.to_vec()).expect("UTF-8");
            self.raw.push_str(&text);
            self.buffer.push_str(&text);
        }
    }

    /// Whether the stream ends within `wait` (events before the end are skipped).
    pub async fn ends_within(&mut self, wait: Duration) -> bool {
        tokio::time::timeout(wait, async { while self.next_event().await.is_some() {} })
            .await
            .is_ok()
    }
}

/// The bearer header of a session.
pub fn bearer(who: &Session) -> (&'static str, String) {
    ("authorization", format!("Bearer {}", who.token))
}
